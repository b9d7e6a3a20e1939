//! The graphics-thread side of the filter: render the target, downscale it on the GPU, read the
//! small image back through a ring of stage surfaces, upload the newest mask, composite.

use super::settings::Mode;
use super::{Background, Filter, RenderParams};
use crate::mask::roi::Region;
use crate::obs::gfx::{CoefficientTexture, Effect, StageSurface, TexRender};
use crate::obs::{module, sys};
use crate::segmentation::stats::Rolling;
use crate::segmentation::worker::lock;
use std::ffi::CStr;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Stage surfaces in the readback ring: the frame staged now is mapped one frame later, when
/// its copy has finished, so a map never waits on the GPU.
const RING: usize = 2;

/// What one [`Gpu::exchange`] did.
#[derive(Default)]
struct Exchange {
    /// Time to map and copy the staged frame to the worker (ms) and the bytes read back.
    readback: Option<(f64, u64)>,
    /// Time to upload a new mask (ms).
    upload_ms: Option<f64>,
    /// Whether this frame was staged for the worker.
    staged: bool,
}

/// Graphics-thread state of one filter, behind a mutex in [`Filter`].
pub(crate) struct GpuState {
    gpu: Option<Gpu>,
    /// Why the GPU side cannot run (effect missing or not compiling); shown in the status.
    pub error: Option<String>,
    /// Frames rendered (first render of each video frame).
    pub frames: u64,
    /// Time of our render work per frame, ms (CPU side of the graphics thread).
    pub render_ms: Rolling,
    /// Age of the mask used, in frames.
    pub mask_age: Rolling,
    /// Map + copy of the staged small frame, ms.
    pub readback_ms: Rolling,
    /// Mask texture upload, ms.
    pub upload_ms: Rolling,
    /// Bytes read back from the GPU, in total.
    pub readback_bytes: u64,
    /// Frames with new content: every rendered frame of a synchronous parent, only the new
    /// frames of an async one (see `Filter::async_frames`).
    pub new_frames: u64,
    /// Frames downscaled and staged for the worker.
    pub frames_staged: u64,
    /// `Filter::async_frames` at the last rendered frame.
    last_async_frames: u64,
    /// `video_render` calls that drew the filter's result; more than `frames` when the source
    /// is drawn more than once per frame (a projector, studio mode), whose extra draws reuse
    /// the frame's result.
    pub draws: u64,
}

impl Default for GpuState {
    fn default() -> Self {
        Self {
            gpu: None,
            error: None,
            frames: 0,
            render_ms: Rolling::new(300),
            mask_age: Rolling::new(300),
            readback_ms: Rolling::new(300),
            upload_ms: Rolling::new(300),
            readback_bytes: 0,
            new_frames: 0,
            frames_staged: 0,
            last_async_frames: 0,
            draws: 0,
        }
    }
}

struct Params {
    image: *mut sys::gs_eparam_t,
    mask: *mut sys::gs_eparam_t,
    background: *mut sys::gs_eparam_t,
    color: *mut sys::gs_eparam_t,
    threshold: *mut sys::gs_eparam_t,
    softness: *mut sys::gs_eparam_t,
    bg_scale: *mut sys::gs_eparam_t,
    bg_offset: *mut sys::gs_eparam_t,
    out_texel: *mut sys::gs_eparam_t,
    blur_step: *mut sys::gs_eparam_t,
    region: *mut sys::gs_eparam_t,
    mask_region: *mut sys::gs_eparam_t,
}

struct Gpu {
    effect: Effect,
    p: Params,
    frame: TexRender,
    small: TexRender,
    blur_a: TexRender,
    blur_b: TexRender,
    ring: [Option<StageSurface>; RING],
    /// Frame counter each ring slot was staged at (0 = empty).
    ring_frame: [u64; RING],
    /// Region of the frame each ring slot shows.
    ring_region: [Region; RING],
    /// Region the worker wants the next small frame from (see `mask::roi`).
    next_region: Region,
    /// Region of the frame the uploaded mask covers.
    mask_region: Region,
    mask: Option<CoefficientTexture>,
    mask_sequence: u64,
    mask_frame: u64,
    /// `obs_get_video_frame_time` of the last full render: a second draw in the same video frame
    /// (preview + program + projector) reuses the work.
    frame_time: u64,
    size: (u32, u32),
    /// Whether `blur_a` holds a blur of the current frame.
    blurred: bool,
}

// SAFETY: only used on the graphics thread (or in destroy, with the graphics context entered).
unsafe impl Send for Gpu {}

impl Gpu {
    fn new() -> Result<Self, String> {
        let path = module::data_file("effects/backdrop.effect").ok_or_else(|| {
            "effects/backdrop.effect is missing from the plugin's data folder".to_string()
        })?;
        let effect =
            Effect::from_file(&path).map_err(|e| format!("effect does not compile: {e}"))?;
        let get = |name: &CStr| effect.param(name);
        let p = Params {
            image: get(c"image"),
            mask: get(c"mask"),
            background: get(c"background"),
            color: get(c"color"),
            threshold: get(c"threshold"),
            softness: get(c"softness"),
            bg_scale: get(c"bg_scale"),
            bg_offset: get(c"bg_offset"),
            out_texel: get(c"out_texel"),
            blur_step: get(c"blur_step"),
            region: get(c"region"),
            mask_region: get(c"mask_region"),
        };
        let tr = || TexRender::new().ok_or_else(|| "cannot create a render target".to_string());
        Ok(Self {
            p,
            frame: tr()?,
            small: tr()?,
            blur_a: tr()?,
            blur_b: tr()?,
            effect,
            ring: [None, None],
            ring_frame: [0; RING],
            ring_region: [Region::FULL; RING],
            next_region: Region::FULL,
            mask_region: Region::FULL,
            mask: None,
            mask_sequence: 0,
            mask_frame: 0,
            frame_time: u64::MAX,
            size: (0, 0),
            blurred: false,
        })
    }

    /// Renders the filter target into `frame` (premultiplied BGRA, source size).
    unsafe fn render_target(
        &mut self,
        source: *mut sys::obs_source_t,
        width: u32,
        height: u32,
    ) -> bool {
        let target = sys::obs_filter_get_target(source);
        let parent = sys::obs_filter_get_parent(source);
        if target.is_null() || parent.is_null() {
            return false;
        }
        let flags = sys::obs_source_get_output_flags(target);
        let custom_draw = flags & sys::OBS_SOURCE_CUSTOM_DRAW != 0;
        let is_async = flags & sys::OBS_SOURCE_ASYNC != 0;
        if !self.frame.begin(width, height) {
            return false;
        }
        sys::gs_blend_state_push();
        sys::gs_blend_function(
            sys::gs_blend_type::GS_BLEND_ONE,
            sys::gs_blend_type::GS_BLEND_ZERO,
        );
        if target == parent && !custom_draw && !is_async {
            sys::obs_source_default_render(target);
        } else {
            sys::obs_source_video_render(target);
        }
        sys::gs_blend_state_pop();
        self.frame.end();
        true
    }

    /// Draws `input` into `out` (begun at `w` x `h`) with `technique`, replacing its content.
    unsafe fn pass(
        effect: &Effect,
        out: &mut TexRender,
        w: u32,
        h: u32,
        technique: &CStr,
        image_param: *mut sys::gs_eparam_t,
        input: *mut sys::gs_texture_t,
    ) -> bool {
        if input.is_null() || !out.begin(w, h) {
            return false;
        }
        sys::gs_blend_state_push();
        sys::gs_blend_function(
            sys::gs_blend_type::GS_BLEND_ONE,
            sys::gs_blend_type::GS_BLEND_ZERO,
        );
        sys::gs_effect_set_texture(image_param, input);
        while sys::gs_effect_loop(effect.raw(), technique.as_ptr()) {
            sys::gs_draw_sprite(input, 0, w, h);
        }
        sys::gs_blend_state_pop();
        out.end();
        true
    }

    /// Hands the small frame staged one frame earlier to the worker, downscales and stages this
    /// frame when `stage` is set, and uploads a new mask if the worker published one. Never
    /// waits for the GPU or the worker. Returns what it did, for the stats.
    unsafe fn exchange(&mut self, filter: &Filter, frame_no: u64, stage: bool) -> Exchange {
        let shared = &filter.worker.shared;
        let mut done = Exchange::default();
        if let Some((mw, mh)) = shared.model_input_size() {
            // 1. Map the copy staged a frame ago: it has finished on the GPU by now.
            let prev = ((frame_no + RING as u64 - 1) % RING as u64) as usize;
            let staged_at = self.ring_frame[prev];
            if staged_at != 0 && staged_at + 1 == frame_no {
                let source_size = self.size;
                let region = self.ring_region[prev];
                if let Some(surface) = self.ring[prev]
                    .as_mut()
                    .filter(|s| (s.width, s.height) == (mw, mh))
                {
                    let t = Instant::now();
                    let read = surface.read(|data, linesize| {
                        shared.submit(data, (mw, mh, linesize), staged_at, source_size, region)
                    });
                    if read.is_some() {
                        done.readback =
                            Some((t.elapsed().as_secs_f64() * 1e3, mw as u64 * mh as u64 * 4));
                    }
                }
            }
            // 2. Downscale on the GPU and stage this frame, if it is one the worker should see.
            if stage {
                set_vec2(self.p.out_texel, 1.0 / mw as f32, 1.0 / mh as f32);
                let region = self.next_region;
                set_vec4(self.p.region, region.to_array());
                let frame_tex = self.frame.texture();
                if Self::pass(
                    &self.effect,
                    &mut self.small,
                    mw,
                    mh,
                    c"Downscale",
                    self.p.image,
                    frame_tex,
                ) {
                    let slot = (frame_no % RING as u64) as usize;
                    if self.ring[slot]
                        .as_ref()
                        .is_none_or(|s| (s.width, s.height) != (mw, mh))
                    {
                        self.ring[slot] = StageSurface::new(mw, mh);
                    }
                    if let Some(surface) = self.ring[slot].as_mut() {
                        surface.stage(self.small.texture());
                        done.staged = true;
                        self.ring_frame[slot] = frame_no;
                        self.ring_region[slot] = region;
                    }
                }
            }
        }
        // 3. Upload a new mask if the worker published one (try_lock: never wait for it).
        if let Ok(out) = shared.output.try_lock() {
            self.mask_frame = self.mask_frame.max(out.frame);
            self.next_region = out.next_region;
            let expected = 2 * out.width as usize * out.height as usize;
            if out.sequence != self.mask_sequence
                && out.width > 0
                && out.coefficients.len() == expected
            {
                let t = Instant::now();
                if self
                    .mask
                    .as_ref()
                    .is_none_or(|m| (m.width, m.height) != (out.width, out.height))
                {
                    self.mask = CoefficientTexture::new(out.width, out.height);
                }
                if let Some(m) = self.mask.as_mut() {
                    m.upload(&out.coefficients);
                    self.mask_sequence = out.sequence;
                    self.mask_region = out.region;
                    done.upload_ms = Some(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        done
    }

    /// Sets the mask texture and threshold parameters used by `person_alpha` in the effect.
    unsafe fn set_mask_params(&self, params: &RenderParams) {
        if let Some(m) = &self.mask {
            sys::gs_effect_set_texture(self.p.mask, m.raw());
        }
        sys::gs_effect_set_float(self.p.threshold, params.threshold);
        set_vec4(self.p.mask_region, self.mask_region.to_array());
        sys::gs_effect_set_float(self.p.softness, params.edge_softness);
    }

    /// Blurs the frame's background into `blur_a`, weighting each pixel by 1 - person alpha
    /// (see `PSDownscaleMasked`), so the person's colours do not bleed into it.
    unsafe fn blur(&mut self, width: u32, height: u32, params: &RenderParams) {
        let strength = params.blur_strength;
        self.set_mask_params(params);
        // Gaussian sigma ~ strength / 2 px at full size; taps are sigma / 2 apart (see effect).
        let factor = (strength / 4.0).floor().max(1.0);
        let bw = ((width as f32 / factor).ceil() as u32).max(1);
        let bh = ((height as f32 / factor).ceil() as u32).max(1);
        let step = (strength / (4.0 * factor)).max(0.25);
        set_vec2(self.p.out_texel, 1.0 / bw as f32, 1.0 / bh as f32);
        let (e, img) = (&self.effect, self.p.image);
        self.blurred = Self::pass(
            e,
            &mut self.blur_a,
            bw,
            bh,
            c"DownscaleMasked",
            img,
            self.frame.texture(),
        ) && {
            set_vec2(self.p.blur_step, step / bw as f32, 0.0);
            Self::pass(
                e,
                &mut self.blur_b,
                bw,
                bh,
                c"Blur",
                img,
                self.blur_a.texture(),
            )
        } && {
            set_vec2(self.p.blur_step, 0.0, step / bh as f32);
            Self::pass(
                e,
                &mut self.blur_a,
                bw,
                bh,
                c"Blur",
                img,
                self.blur_b.texture(),
            )
        };
    }

    /// Draws the composite into the current render target with premultiplied-alpha blending.
    unsafe fn composite(
        &mut self,
        params: &RenderParams,
        background: Option<(*mut sys::gs_texture_t, (u32, u32))>,
    ) {
        let (w, h) = self.size;
        let frame_tex = self.frame.texture();
        let mask_ready = self.mask.is_some();
        let technique: &CStr = match (mask_ready, params.mode) {
            (false, _) => c"Passthrough",
            (true, Mode::Color) => c"Color",
            (true, Mode::Transparent) => c"Transparent",
            (true, Mode::Image) if background.is_some() => c"Background",
            (true, Mode::Blur | Mode::Image) => c"BlurredBackground",
        };
        self.set_mask_params(params);
        let p = &self.p;
        sys::gs_effect_set_texture(p.image, frame_tex);
        let [r, g, b, a] = params.color;
        let color = sys::vec4 {
            __bindgen_anon_1: sys::vec4__bindgen_ty_1 { ptr: [r, g, b, a] },
        };
        sys::gs_effect_set_vec4(p.color, &color);
        match background {
            Some((tex, (iw, ih))) if params.mode == Mode::Image => {
                // "cover": fill the frame, keep the image's aspect, crop the overflow
                let s = (w as f32 / iw as f32).max(h as f32 / ih as f32);
                let (sx, sy) = (w as f32 / (iw as f32 * s), h as f32 / (ih as f32 * s));
                sys::gs_effect_set_texture(p.background, tex);
                set_vec2(p.bg_scale, sx, sy);
                set_vec2(p.bg_offset, (1.0 - sx) * 0.5, (1.0 - sy) * 0.5);
            }
            _ => {
                sys::gs_effect_set_texture(p.background, self.blur_a.texture());
                set_vec2(p.bg_scale, 1.0, 1.0);
                set_vec2(p.bg_offset, 0.0, 0.0);
            }
        }
        sys::gs_blend_state_push();
        sys::gs_blend_function(
            sys::gs_blend_type::GS_BLEND_ONE,
            sys::gs_blend_type::GS_BLEND_INVSRCALPHA,
        );
        while sys::gs_effect_loop(self.effect.raw(), technique.as_ptr()) {
            sys::gs_draw_sprite(frame_tex, 0, w, h);
        }
        sys::gs_blend_state_pop();
    }
}

/// Whether the filter's parent is an async source (its frames arrive through `filter_video`).
unsafe fn parent_is_async(filter: *mut sys::obs_source_t) -> bool {
    let parent = sys::obs_filter_get_parent(filter);
    !parent.is_null() && sys::obs_source_get_output_flags(parent) & sys::OBS_SOURCE_ASYNC != 0
}

unsafe fn set_vec4(param: *mut sys::gs_eparam_t, v: [f32; 4]) {
    let v = sys::vec4 {
        __bindgen_anon_1: sys::vec4__bindgen_ty_1 { ptr: v },
    };
    sys::gs_effect_set_vec4(param, &v);
}

unsafe fn set_vec2(param: *mut sys::gs_eparam_t, x: f32, y: f32) {
    let v = sys::vec2 {
        __bindgen_anon_1: sys::vec2__bindgen_ty_1 { ptr: [x, y] },
    };
    sys::gs_effect_set_vec2(param, &v);
}

impl Filter {
    /// `video_render`. Returns false when the filter cannot draw this frame; the caller then
    /// skips the filter so the video keeps flowing.
    pub(crate) fn render(&self) -> bool {
        unsafe {
            let target = sys::obs_filter_get_target(self.source);
            if target.is_null() {
                return false;
            }
            let (w, h) = (
                sys::obs_source_get_base_width(target),
                sys::obs_source_get_base_height(target),
            );
            if w == 0 || h == 0 {
                return false;
            }
            let mut state = lock(&self.gpu);
            if state.gpu.is_none() {
                if state.error.is_some() {
                    return false;
                }
                match Gpu::new() {
                    Ok(g) => state.gpu = Some(g),
                    Err(e) => {
                        crate::warn!("{e}");
                        state.error = Some(e);
                        return false;
                    }
                }
            }
            let started = Instant::now();
            let params = *lock(&self.params);
            let now = sys::obs_get_video_frame_time();
            let fresh;
            {
                let gpu = state.gpu.as_mut().expect("created above");
                fresh =
                    gpu.frame_time != now || gpu.size != (w, h) || gpu.frame.texture().is_null();
            }
            if fresh {
                state.frames += 1;
                let frame_no = state.frames;
                let gpu = state.gpu.as_mut().expect("created above");
                gpu.frame_time = now;
                gpu.size = (w, h);
                gpu.blurred = false;
                if !gpu.render_target(self.source, w, h) {
                    return false;
                }
                // An async parent (webcam, media file) that showed no new frame this tick gives
                // the worker nothing new to see.
                let async_frames = self.async_frames.load(Ordering::Relaxed);
                let new_content =
                    !parent_is_async(self.source) || async_frames != state.last_async_frames;
                state.last_async_frames = async_frames;
                if new_content {
                    state.new_frames += 1;
                }
                let stage =
                    new_content && state.new_frames % params.inference_interval.max(1) as u64 == 0;
                let gpu = state.gpu.as_mut().expect("created above");
                let done = gpu.exchange(self, frame_no, stage);
                if done.staged {
                    state.frames_staged += 1;
                }
                if let Some((ms, bytes)) = done.readback {
                    state.readback_ms.push(ms);
                    state.readback_bytes += bytes;
                }
                if let Some(ms) = done.upload_ms {
                    state.upload_ms.push(ms);
                }
            }
            let background = lock(&self.background);
            let image = match (&*background, params.mode) {
                (Some(Background { image: Ok(img), .. }), Mode::Image) => {
                    Some((img.texture(), img.size()))
                }
                _ => None,
            };
            let frames = state.frames;
            let gpu = state.gpu.as_mut().expect("created above");
            let needs_blur = matches!(params.mode, Mode::Blur)
                || (params.mode == Mode::Image && image.is_none());
            if needs_blur && !gpu.blurred && gpu.mask.is_some() {
                gpu.blur(w, h, &params);
            }
            if needs_blur && !gpu.blurred && gpu.mask.is_some() {
                return false;
            }
            gpu.composite(&params, image);
            drop(background);
            let has_mask = gpu.mask.is_some();
            let age = frames.saturating_sub(gpu.mask_frame) as f64;
            state.draws += 1;
            if fresh {
                if has_mask {
                    state.mask_age.push(age);
                }
                state.render_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
            true
        }
    }
}
