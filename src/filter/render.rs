//! The graphics-thread side of the filter: render the target, downscale it on the GPU, read the
//! small image back through a ring of stage surfaces, upload the newest mask, composite.

use super::settings::Mode;
use super::{Background, Filter, RenderParams};
use backdrop_core::mask::roi::Region;
use backdrop_core::segmentation::stats::Rolling;
use backdrop_core::segmentation::worker::{lock, Shared};
use backdrop_obs::gfx::{
    Blend, CoefficientTexture, ColorSpace, Effect, Graphics, Param, StageSurface, TexRender,
    Texture,
};
use backdrop_obs::module;
use backdrop_obs::source::{video_frame_time, Source, SourceRef};
use std::ffi::CStr;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Stage surfaces in the readback ring: the frame staged now is mapped one frame later, when
/// its copy has finished, so a map never waits on the GPU.
const RING: usize = 2;

/// Widest image (px) the blur passes run on; wider sources are downscaled at least to it first.
/// At 960 px a 1080p source blurs at half size (as strength 8 did anyway) and a 4K one at a
/// quarter, where strength 8's taps are half a texel apart: still a smooth Gaussian.
const MAX_BLUR_WIDTH: f32 = 960.0;

/// What one [`Gpu::exchange`] did.
#[derive(Default)]
struct Exchange {
    /// Time to map and copy the staged frame to the worker (ms) and the bytes read back.
    readback: Option<(f64, u64)>,
    /// Time to upload a new mask (ms).
    upload_ms: Option<f64>,
    /// Whether this frame was staged for the worker.
    staged: bool,
    /// Whether the worker had a model (its input size known): before, nothing can be staged.
    model_ready: bool,
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
    /// Frames with new content rendered while the worker had a model (the frames it can be
    /// given; before the first model load none is staged).
    pub new_frames_with_model: u64,
    /// `Filter::async_frames` at the last rendered frame.
    last_async_frames: u64,
    /// `video_render` calls that drew the filter's result; more than `frames` when the source
    /// is drawn more than once per frame (a projector, studio mode), whose extra draws reuse
    /// the frame's result.
    pub draws: u64,
    /// Whether the last draw showed the chosen background picture (an image, a source's or a
    /// video's frame) behind the person; false in the other modes, and while the picture is
    /// missing or not decoded yet (the background is blurred then).
    pub background_shown: bool,
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
            new_frames_with_model: 0,
            last_async_frames: 0,
            draws: 0,
            background_shown: false,
        }
    }
}

/// The effect's parameters (`data/effects/backdrop.effect`); `None` where the effect lacks one.
struct Params {
    image: Option<Param>,
    mask: Option<Param>,
    background: Option<Param>,
    color: Option<Param>,
    threshold: Option<Param>,
    softness: Option<Param>,
    feather: Option<Param>,
    bg_scale: Option<Param>,
    bg_offset: Option<Param>,
    out_texel: Option<Param>,
    blur_step: Option<Param>,
    region: Option<Param>,
    mask_region: Option<Param>,
    block_uv: Option<Param>,
    field: Option<Param>,
    hologram: Option<Param>,
    seed: Option<Param>,
    frame_size: Option<Param>,
    linear_light: Option<Param>,
}

/// Setters that skip a parameter the effect does not declare.
fn set_texture(g: &Graphics, p: Option<Param>, t: Texture) {
    if let Some(p) = p {
        p.set_texture(g, t);
    }
}
fn set_float(g: &Graphics, p: Option<Param>, v: f32) {
    if let Some(p) = p {
        p.set_float(g, v);
    }
}
fn set_vec2(g: &Graphics, p: Option<Param>, v: [f32; 2]) {
    if let Some(p) = p {
        p.set_vec2(g, v);
    }
}
fn set_vec4(g: &Graphics, p: Option<Param>, v: [f32; 4]) {
    if let Some(p) = p {
        p.set_vec4(g, v);
    }
}

struct Gpu {
    effect: Effect,
    p: Params,
    /// Colour space of `frame`, `blur_a`, `blur_b` and `feed_frame`: the target's own (see
    /// [`Filter::color_space`]). The model's input (`small`) and the focal field are 8-bit.
    space: ColorSpace,
    frame: TexRender,
    small: TexRender,
    blur_a: TexRender,
    blur_b: TexRender,
    /// Focal blur: the blurred person alpha (`field_a`) and its scratch target.
    field_a: TexRender,
    field_b: TexRender,
    /// The background feed's frame (modes `source`, `video`) at the feed's own size, and that
    /// size while it holds this frame's picture.
    feed_frame: TexRender,
    feed_size: Option<(u32, u32)>,
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
    /// `video_frame_time` of the last full render: a second draw in the same video frame
    /// (preview + program + projector) reuses the work.
    frame_time: u64,
    size: (u32, u32),
    /// Whether `blur_a` holds a blur of the current frame.
    blurred: bool,
    /// Whether `field_a` holds the focal field of the current frame.
    focal_ready: bool,
}

impl Gpu {
    fn new(g: &Graphics, space: ColorSpace) -> Result<Self, String> {
        let path = module::data_file("effects/backdrop.effect").ok_or_else(|| {
            "effects/backdrop.effect is missing from the plugin's data folder".to_string()
        })?;
        let effect =
            Effect::from_file(g, &path).map_err(|e| format!("effect does not compile: {e}"))?;
        let get = |name: &CStr| effect.param(name);
        let p = Params {
            image: get(c"image"),
            mask: get(c"mask"),
            background: get(c"background"),
            color: get(c"color"),
            threshold: get(c"threshold"),
            softness: get(c"softness"),
            feather: get(c"feather"),
            bg_scale: get(c"bg_scale"),
            bg_offset: get(c"bg_offset"),
            out_texel: get(c"out_texel"),
            blur_step: get(c"blur_step"),
            region: get(c"region"),
            mask_region: get(c"mask_region"),
            block_uv: get(c"block_uv"),
            field: get(c"field"),
            hologram: get(c"hologram"),
            seed: get(c"seed"),
            frame_size: get(c"frame_size"),
            linear_light: get(c"linear_light"),
        };
        let tr = |space| {
            TexRender::with_space(g, space)
                .ok_or_else(|| "cannot create a render target".to_string())
        };
        let srgb = ColorSpace::Srgb;
        Ok(Self {
            p,
            space,
            frame: tr(space)?,
            small: tr(srgb)?,
            blur_a: tr(space)?,
            blur_b: tr(space)?,
            field_a: tr(srgb)?,
            field_b: tr(srgb)?,
            feed_frame: tr(space)?,
            feed_size: None,
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
            focal_ready: false,
        })
    }

    /// Makes the full-size targets anew for `space` when the target's colour space changed (an
    /// HDR file opened in the same media source, a canvas switched to HDR).
    fn set_space(&mut self, g: &Graphics, space: ColorSpace) -> Result<(), String> {
        if space == self.space {
            return Ok(());
        }
        let tr = || {
            TexRender::with_space(g, space)
                .ok_or_else(|| "cannot create a render target".to_string())
        };
        (self.frame, self.blur_a, self.blur_b, self.feed_frame) = (tr()?, tr()?, tr()?, tr()?);
        self.space = space;
        self.frame_time = u64::MAX;
        Ok(())
    }

    /// Renders the filter's target into `frame` (premultiplied, source size, in `space`). First in the
    /// chain the target is the parent: a plain synchronous one draws with the default effect,
    /// anything else draws itself.
    fn render_target(&mut self, g: &Graphics, filter: SourceRef, width: u32, height: u32) -> bool {
        let (Some(target), Some(parent)) = (filter.filter_target(), filter.filter_parent()) else {
            return false;
        };
        let Some(_rendering) = self.frame.begin(g, width, height) else {
            return false;
        };
        let _blend = g.blend(Blend::One, Blend::Zero);
        if target == parent && !target.is_custom_draw() && !target.is_async() {
            target.default_render(g);
        } else {
            target.video_render(g);
        }
        true
    }

    /// Draws `input` into `out` (begun at `w` x `h`) with `technique`, replacing its content.
    #[allow(clippy::too_many_arguments)]
    fn pass(
        g: &Graphics,
        effect: &Effect,
        out: &mut TexRender,
        (w, h): (u32, u32),
        technique: &CStr,
        image: Option<Param>,
        input: Option<Texture>,
    ) -> bool {
        let Some(input) = input else { return false };
        let Some(_rendering) = out.begin(g, w, h) else {
            return false;
        };
        let _blend = g.blend(Blend::One, Blend::Zero);
        set_texture(g, image, input);
        effect.draw(g, technique, input, w, h)
    }

    /// Step 1 of the exchange with the worker: map the copy staged a frame ago (it has finished
    /// on the GPU by now) and hand it to the worker. Returns the readback time (ms) and bytes.
    fn hand_over_previous(
        &mut self,
        g: &Graphics,
        shared: &Shared,
        frame_no: u64,
        (mw, mh): (u32, u32),
    ) -> Option<(f64, u64)> {
        let prev = ((frame_no + RING as u64 - 1) % RING as u64) as usize;
        let staged_at = self.ring_frame[prev];
        if staged_at == 0 || staged_at + 1 != frame_no {
            return None;
        }
        let (source_size, region) = (self.size, self.ring_region[prev]);
        let surface = self.ring[prev]
            .as_mut()
            .filter(|s| (s.width, s.height) == (mw, mh))?;
        let t = Instant::now();
        surface.read(g, |data, linesize| {
            shared.submit(data, (mw, mh, linesize), staged_at, source_size, region)
        })?;
        Some((t.elapsed().as_secs_f64() * 1e3, mw as u64 * mh as u64 * 4))
    }

    /// Step 2: downscale this frame on the GPU to the model's input (the region the worker
    /// asked for) and queue its copy into a ring slot, to be handed over next frame.
    fn stage_current(&mut self, g: &Graphics, frame_no: u64, (mw, mh): (u32, u32)) -> bool {
        set_vec2(g, self.p.out_texel, [1.0 / mw as f32, 1.0 / mh as f32]);
        self.set_light(g);
        let region = self.next_region;
        set_vec4(g, self.p.region, region.to_array());
        let frame = self.frame.texture();
        if !Self::pass(
            g,
            &self.effect,
            &mut self.small,
            (mw, mh),
            c"Downscale",
            self.p.image,
            frame,
        ) {
            return false;
        }
        let slot = (frame_no % RING as u64) as usize;
        if self.ring[slot]
            .as_ref()
            .is_none_or(|s| (s.width, s.height) != (mw, mh))
        {
            self.ring[slot] = StageSurface::new(g, mw, mh);
        }
        let (Some(surface), Some(small)) = (self.ring[slot].as_mut(), self.small.texture()) else {
            return false;
        };
        surface.stage(g, small);
        self.ring_frame[slot] = frame_no;
        self.ring_region[slot] = region;
        true
    }

    /// Step 3: upload the worker's newest mask, if it published one since the last upload
    /// (try_lock: the graphics thread never waits for the worker). Returns the upload time, ms.
    fn upload_mask(&mut self, g: &Graphics, shared: &Shared) -> Option<f64> {
        let out = shared.output.try_lock().ok()?;
        self.mask_frame = self.mask_frame.max(out.frame);
        self.next_region = out.next_region;
        let expected = 2 * out.width as usize * out.height as usize;
        if out.sequence == self.mask_sequence
            || out.width == 0
            || out.coefficients.len() != expected
        {
            return None;
        }
        let t = Instant::now();
        if self
            .mask
            .as_ref()
            .is_none_or(|m| (m.width, m.height) != (out.width, out.height))
        {
            self.mask = CoefficientTexture::new(g, out.width, out.height);
        }
        let m = self.mask.as_mut()?;
        m.upload(g, &out.coefficients);
        self.mask_sequence = out.sequence;
        self.mask_region = out.region;
        Some(t.elapsed().as_secs_f64() * 1e3)
    }

    /// The exchange with the worker for frame `frame_no`: hand over the previous frame's copy,
    /// stage this one when `stage`, upload a new mask.
    fn exchange(&mut self, g: &Graphics, filter: &Filter, frame_no: u64, stage: bool) -> Exchange {
        let shared = &filter.worker.shared;
        let mut done = Exchange::default();
        if let Some(input) = shared.model_input_size() {
            done.model_ready = true;
            done.readback = self.hand_over_previous(g, shared, frame_no, input);
            done.staged = stage && self.stage_current(g, frame_no, input);
        }
        done.upload_ms = self.upload_mask(g, shared);
        done
    }

    /// Sets `linear_light`, which `to_display` reads, for the next technique. libobs clears
    /// every parameter's value when a technique ends (`gs_technique_end`), so this comes before
    /// each draw that reads it; set once per frame, later draws logged "Parameter
    /// 'linear_light' set to invalid size 0" every frame and kept a stale value.
    fn set_light(&self, g: &Graphics) {
        let linear = if self.space.is_linear() { 1.0 } else { 0.0 };
        set_float(g, self.p.linear_light, linear);
    }

    /// Sets the mask texture, threshold and light parameters used by `person_alpha` in the
    /// effect.
    fn set_mask_params(&self, g: &Graphics, params: &RenderParams) {
        self.set_light(g);
        if let Some(m) = &self.mask {
            set_texture(g, self.p.mask, m.texture());
        }
        set_float(g, self.p.threshold, params.threshold);
        set_vec4(g, self.p.mask_region, self.mask_region.to_array());
        set_float(g, self.p.softness, params.edge_softness);
        set_float(g, self.p.feather, params.feather_shift);
    }

    /// Blurs the frame's background into `blur_a`, weighting each pixel by 1 - person alpha
    /// (see `PSDownscaleMasked`), so the person's colours do not bleed into it.
    fn blur(&mut self, g: &Graphics, size: (u32, u32), params: &RenderParams) {
        self.set_mask_params(g, params);
        let input = self.frame.texture();
        self.blurred = Self::blur_passes(
            g,
            (&self.effect, &self.p),
            (c"DownscaleMasked", input),
            size,
            params.blur_strength,
            (&mut self.blur_a, &mut self.blur_b),
        );
    }

    /// Focal blur's field: the person alpha blurred with sigma = focal_distance / 2.5, in
    /// `field_a` (see `PSFocal`).
    fn focal_field(&mut self, g: &Graphics, size: (u32, u32), params: &RenderParams) {
        self.set_mask_params(g, params);
        let input = self.frame.texture();
        self.focal_ready = Self::blur_passes(
            g,
            (&self.effect, &self.p),
            (c"PersonAlpha", input),
            size,
            // sigma ~ strength / 2
            params.focal_distance * 0.8,
            (&mut self.field_a, &mut self.field_b),
        );
    }

    /// A Gaussian blur of sigma ~ `strength` / 2 px of the `(w, h)` frame into `out.0`: the
    /// `first` technique downscales `input` by a factor that grows with the strength, then two
    /// separable 9-tap passes run at that size, so the cost does not grow with the strength.
    fn blur_passes(
        g: &Graphics,
        (effect, p): (&Effect, &Params),
        (first, input): (&CStr, Option<Texture>),
        (width, height): (u32, u32),
        strength: f32,
        (a, b): (&mut TexRender, &mut TexRender),
    ) -> bool {
        // Gaussian sigma ~ strength / 2 px at full size; taps are sigma / 2 apart (see effect).
        // The blurred image is never wider than MAX_BLUR_WIDTH: a weak blur of a 4K source would
        // otherwise run its passes at half size (docs/performance.md, 4K).
        let factor = (strength / 4.0)
            .floor()
            .max(1.0)
            .max((width as f32 / MAX_BLUR_WIDTH).ceil());
        let bw = ((width as f32 / factor).ceil() as u32).max(1);
        let bh = ((height as f32 / factor).ceil() as u32).max(1);
        let step = (strength / (4.0 * factor)).max(0.25);
        set_vec2(g, p.out_texel, [1.0 / bw as f32, 1.0 / bh as f32]);
        let (img, size) = (p.image, (bw, bh));
        Self::pass(g, effect, a, size, first, img, input)
            && {
                set_vec2(g, p.blur_step, [step / bw as f32, 0.0]);
                Self::pass(g, effect, b, size, c"Blur", img, a.texture())
            }
            && {
                set_vec2(g, p.blur_step, [0.0, step / bh as f32]);
                Self::pass(g, effect, a, size, c"Blur", img, b.texture())
            }
    }

    /// Draws the background feed's source into `feed_frame` at its own size; `feed_size` says
    /// whether there is a picture (a media source that has not decoded a frame has size 0).
    fn render_feed(&mut self, g: &Graphics, feed: Option<&Source>) {
        self.feed_size = None;
        let Some(source) = feed.map(Source::get) else {
            return;
        };
        let (w, h) = source.base_size();
        if w == 0 || h == 0 {
            return;
        }
        let Some(_rendering) = self.feed_frame.begin(g, w, h) else {
            return;
        };
        let _blend = g.blend(Blend::One, Blend::Zero);
        source.video_render(g);
        self.feed_size = Some((w, h));
    }

    /// Draws the composite into the current render target with premultiplied-alpha blending.
    /// `image` is the background image of mode `image`; modes `source` and `video` show the
    /// feed drawn this frame. Without either they blur.
    fn composite(
        &mut self,
        g: &Graphics,
        params: &RenderParams,
        image: Option<(Texture, (u32, u32))>,
        seed: f32,
    ) -> bool {
        let (w, h) = self.size;
        let Some(frame) = self.frame.texture() else {
            return false;
        };
        let srgb_image = self.space.is_linear() && params.mode == Mode::Image && image.is_some();
        let background = match params.mode {
            Mode::Image => image,
            Mode::Source | Mode::Video => self
                .feed_size
                .and_then(|size| Some((self.feed_frame.texture()?, size))),
            _ => None,
        };
        let technique: &CStr = match (self.mask.is_some(), params.mode) {
            (false, _) => c"Passthrough",
            (true, Mode::Color) => c"Color",
            (true, Mode::Transparent) => c"Transparent",
            (true, Mode::Pixelate) => c"Pixelate",
            (true, Mode::Focal) if self.focal_ready => c"Focal",
            (true, Mode::Image | Mode::Source | Mode::Video) if background.is_some() => {
                c"Background"
            }
            (true, _) => c"BlurredBackground",
        };
        self.set_mask_params(g, params);
        let p = &self.p;
        set_texture(g, p.image, frame);
        set_vec4(g, p.color, params.color);
        let block = params.pixel_size.max(1.0);
        set_vec2(g, p.block_uv, [block / w as f32, block / h as f32]);
        set_vec2(g, p.frame_size, [w as f32, h as f32]);
        set_float(g, p.hologram, if params.hologram { 1.0 } else { 0.0 });
        set_float(g, p.seed, seed);
        if let Some(field) = self.field_a.texture().filter(|_| self.focal_ready) {
            set_texture(g, p.field, field);
        }
        match background {
            Some((tex, (iw, ih))) => {
                // "cover": fill the frame, keep the image's aspect, crop the overflow
                let s = (w as f32 / iw as f32).max(h as f32 / ih as f32);
                let (sx, sy) = (w as f32 / (iw as f32 * s), h as f32 / (ih as f32 * s));
                match (p.background, srgb_image) {
                    // An 8-bit image in a linear-light composite: decoded by the sampler.
                    (Some(param), true) => param.set_texture_srgb(g, tex),
                    _ => set_texture(g, p.background, tex),
                }
                set_vec2(g, p.bg_scale, [sx, sy]);
                set_vec2(g, p.bg_offset, [(1.0 - sx) * 0.5, (1.0 - sy) * 0.5]);
            }
            _ => {
                if let Some(blurred) = self.blur_a.texture() {
                    set_texture(g, p.background, blurred);
                }
                set_vec2(g, p.bg_scale, [1.0, 1.0]);
                set_vec2(g, p.bg_offset, [0.0, 0.0]);
            }
        }
        let _blend = g.blend(Blend::One, Blend::InvSrcAlpha);
        self.effect.draw(g, technique, frame, w, h);
        technique == c"Background"
    }
}

/// Whether the filter's parent is an async source (its frames arrive through `filter_video`).
fn parent_is_async(filter: SourceRef) -> bool {
    filter.filter_parent().is_some_and(|p| p.is_async())
}

impl Filter {
    /// The colour spaces the filter draws in, the target's own among them: SDR 8-bit, SDR half
    /// float, HDR (extended Rec. 709, linear, 1.0 = SDR white). libobs converts where the caller
    /// wants another (`source_render` in obs-source.c); scRGB targets are asked for extended 709.
    const SPACES: [ColorSpace; 3] = [
        ColorSpace::Srgb,
        ColorSpace::Srgb16F,
        ColorSpace::Extended709,
    ];

    fn color_space_of(target: SourceRef) -> ColorSpace {
        target.color_space(&Self::SPACES)
    }

    /// `video_get_color_space`: the space the filter draws in, its target's own (so an HDR
    /// source stays HDR through it); [`ColorSpace::Srgb`] without a target.
    pub fn color_space(&self) -> ColorSpace {
        self.source
            .filter_target()
            .map_or(ColorSpace::Srgb, Self::color_space_of)
    }

    /// `video_render`, with the graphics context entered. Returns false when the filter cannot
    /// draw this frame; the caller then skips the filter so the video keeps flowing.
    pub fn render(&self, g: &Graphics) -> bool {
        // A background source that draws this filter's own source comes back here.
        if self.rendering.swap(true, Ordering::Acquire) {
            return false;
        }
        let drawn = self.render_once(g);
        self.rendering.store(false, Ordering::Release);
        drawn
    }

    fn render_once(&self, g: &Graphics) -> bool {
        let Some(target) = self.source.filter_target() else {
            return false;
        };
        let (w, h) = target.base_size();
        if w == 0 || h == 0 {
            return false;
        }
        let space = Self::color_space_of(target);
        let mut state = lock(&self.gpu);
        if state.gpu.is_none() {
            if state.error.is_some() {
                return false;
            }
            match Gpu::new(g, space) {
                Ok(gpu) => state.gpu = Some(gpu),
                Err(e) => {
                    log::warn!("{e}");
                    state.error = Some(e);
                    return false;
                }
            }
        }
        let gpu = state.gpu.as_mut().expect("created above");
        if let Err(e) = gpu.set_space(g, space) {
            log::warn!("{e}");
            return false;
        }
        // 8-bit targets store what the shaders write (sRGB-encoded); half-float ones are linear
        // and not affected. libobs renders this filter with linear sRGB on (OBS_SOURCE_SRGB).
        let _srgb_off = g.framebuffer_srgb(false);
        let started = Instant::now();
        let params = *lock(&self.params);
        // A strong reference for this render (the feed's lock is not held while drawing).
        let feed = if params.mode.shows_source() {
            lock(&self.feed).as_ref().and_then(|f| f.source())
        } else {
            None
        };
        let now = video_frame_time();
        let fresh = {
            let gpu = state.gpu.as_mut().expect("created above");
            gpu.frame_time != now || gpu.size != (w, h) || gpu.frame.texture().is_none()
        };
        if fresh {
            state.frames += 1;
            let frame_no = state.frames;
            let gpu = state.gpu.as_mut().expect("created above");
            gpu.frame_time = now;
            gpu.size = (w, h);
            gpu.blurred = false;
            gpu.focal_ready = false;
            if !gpu.render_target(g, self.source, w, h) {
                return false;
            }
            gpu.render_feed(g, feed.as_ref());
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
            let done = gpu.exchange(g, self, frame_no, stage);
            if done.staged {
                state.frames_staged += 1;
            }
            if new_content && done.model_ready {
                state.new_frames_with_model += 1;
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
        let needs_blur = match params.mode {
            Mode::Blur | Mode::Focal => true,
            Mode::Image => image.is_none(),
            Mode::Source | Mode::Video => gpu.feed_size.is_none(),
            Mode::Color | Mode::Transparent | Mode::Pixelate => false,
        };
        if needs_blur && !gpu.blurred && gpu.mask.is_some() {
            gpu.blur(g, (w, h), &params);
            if !gpu.blurred {
                return false;
            }
        }
        if params.mode == Mode::Focal && !gpu.focal_ready && gpu.mask.is_some() {
            gpu.focal_field(g, (w, h), &params);
        }
        // The hologram's scan bands change every frame.
        let seed = (frames % 997) as f32;
        let shown = gpu.composite(g, &params, image, seed);
        drop(background);
        let has_mask = gpu.mask.is_some();
        let age = frames.saturating_sub(gpu.mask_frame) as f64;
        state.draws += 1;
        state.background_shown = shown;
        if fresh {
            if has_mask {
                state.mask_age.push(age);
            }
            state.render_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        true
    }
}
