//! The Backdrop filter (`backdrop_filter`): registration, lifecycle, settings and properties.
//! The per-frame GPU work lives in [`render`].

mod properties;
mod render;
pub mod settings;

use crate::obs::data::Data;
use crate::obs::gfx::ImageFile;
use crate::obs::{cstring, module, sys};
use crate::segmentation::manifest::{self, Manifest};
use crate::segmentation::worker::{lock, Request, State, Worker};
use crate::{guard, warn};
use settings::{Mode, Settings};
use std::ffi::c_void;
use std::os::raw::c_char;
use std::path::PathBuf;
use std::sync::Mutex;

/// The filter's id, as stored in scene collections.
pub const FILTER_ID: &std::ffi::CStr = c"backdrop_filter";

/// Registers `backdrop_filter` with libobs.
pub fn register() {
    let info = sys::obs_source_info {
        id: FILTER_ID.as_ptr(),
        type_: sys::obs_source_type::OBS_SOURCE_TYPE_FILTER,
        output_flags: sys::OBS_SOURCE_VIDEO,
        get_name: Some(get_name),
        create: Some(create),
        destroy: Some(destroy),
        get_defaults: Some(get_defaults),
        get_properties: Some(get_properties),
        update: Some(update),
        video_render: Some(video_render),
        // Called on the graphics thread's tick once per new frame of an async parent (webcam,
        // media source): the render path hands only new frames to the worker.
        filter_video: Some(filter_video),
        ..Default::default()
    };
    unsafe { sys::obs_register_source_s(&info, std::mem::size_of::<sys::obs_source_info>()) };
}

/// Per-frame parameters the graphics thread reads (copied, no allocation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RenderParams {
    pub mode: Mode,
    pub threshold: f32,
    pub edge_softness: f32,
    pub blur_strength: f32,
    pub color: [f32; 4],
    /// Hand a frame to the worker every Nth frame.
    pub inference_interval: u32,
}

/// The loaded background image, or why it could not be loaded.
struct Background {
    path: String,
    image: Result<ImageFile, String>,
}

/// One filter instance.
pub struct Filter {
    source: *mut sys::obs_source_t,
    worker: Worker,
    params: Mutex<RenderParams>,
    settings: Mutex<Settings>,
    background: Mutex<Option<Background>>,
    gpu: Mutex<render::GpuState>,
    /// New frames of the async parent seen by `filter_video` (0 for a synchronous parent).
    async_frames: std::sync::atomic::AtomicU64,
}

// SAFETY: the raw source pointer is only passed back to libobs, which is thread-safe for the
// calls made with it; all mutable state is behind mutexes.
unsafe impl Send for Filter {}
unsafe impl Sync for Filter {}

/// The folder holding model manifests: `<plugin data>/models`.
pub fn models_dir() -> Option<PathBuf> {
    module::data_file("models")
}

/// All models whose manifests are valid, sorted by file name.
pub fn available_models() -> Vec<Manifest> {
    models_dir()
        .map(|d| manifest::scan(&d).0)
        .unwrap_or_default()
}

impl Filter {
    fn new(source: *mut sys::obs_source_t) -> Result<Self, String> {
        let worker = Worker::start().map_err(|e| format!("cannot start worker thread: {e}"))?;
        let d = Settings::default();
        Ok(Self {
            source,
            worker,
            params: Mutex::new(RenderParams {
                mode: d.mode,
                threshold: d.threshold,
                edge_softness: d.edge_softness,
                blur_strength: d.blur_strength,
                color: d.color_rgba(),
                inference_interval: d.inference_interval,
            }),
            settings: Mutex::new(d),
            background: Mutex::new(None),
            gpu: Mutex::new(render::GpuState::default()),
            async_frames: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn update(&self, s: Settings) {
        let previous = std::mem::replace(&mut *lock(&self.settings), s.clone());
        *lock(&self.params) = RenderParams {
            mode: s.mode,
            threshold: s.threshold,
            edge_softness: s.edge_softness,
            blur_strength: s.blur_strength,
            color: s.color_rgba(),
            inference_interval: s.inference_interval,
        };
        if s.mode == Mode::Image {
            self.load_background(&s.image_path);
        }
        let worker_changed = s.worker_differs(&previous);
        let first = lock(&self.worker.shared.state).clone() == State::Starting;
        if worker_changed || first {
            let (manifest, missing) = match find_model(&s.model, &s.custom_model_path) {
                Ok(m) => (Some(m), String::new()),
                Err(e) => (None, e),
            };
            self.worker.shared.set_request(Request {
                manifest,
                missing,
                refine: s.refine_params(),
                motion_threshold: s.motion_threshold,
                session: s.session_options(),
                aspect: s.aspect,
            });
        }
    }

    /// Loads the background image when its path changed; a failure is kept for the status line
    /// and logged once.
    fn load_background(&self, path: &str) {
        let mut bg = lock(&self.background);
        if bg.as_ref().is_some_and(|b| b.path == path) {
            return;
        }
        let image = if path.trim().is_empty() {
            Err("no image chosen".to_string())
        } else {
            ImageFile::load(std::path::Path::new(path))
        };
        if let Err(e) = &image {
            if !path.trim().is_empty() {
                warn!("background image: {e}");
            }
        }
        *bg = Some(Background {
            path: path.to_string(),
            image,
        });
    }

    /// The status line for the properties view and whether it reports an error.
    pub fn status(&self) -> (String, bool) {
        let state = lock(&self.worker.shared.state).clone();
        let (mut text, mut is_error) = match state {
            State::Starting => (module::text_string("Status.Starting"), false),
            State::Loading(id) => (fill(&module::text_string("Status.Loading"), &[&id]), false),
            State::Running(model) => {
                // One lock at a time: the graphics thread takes gpu -> input.
                let age = lock(&self.gpu).mask_age.median().unwrap_or(0.0);
                let t = lock(&self.worker.shared.timings);
                (
                    fill(
                        &module::text_string("Status.Running"),
                        &[
                            &model,
                            &format!("{:.1}", t.inference.median().unwrap_or(0.0)),
                            &format!("{:.1}", t.total.median().unwrap_or(0.0)),
                            &format!("{age:.0}"),
                        ],
                    ),
                    false,
                )
            }
            State::Error(e) => (fill(&module::text_string("Status.Error"), &[&e]), true),
        };
        if let Some(e) = lock(&self.gpu).error.clone() {
            text = fill(&module::text_string("Status.Error"), &[&e]);
            is_error = true;
        }
        if lock(&self.settings).mode == Mode::Image {
            if let Some(Background { image: Err(e), .. }) = &*lock(&self.background) {
                text.push('\n');
                text.push_str(&fill(&module::text_string("Status.ImageError"), &[e]));
                is_error = true;
            }
        }
        (text, is_error)
    }

    /// Statistics as a JSON object (for the `get_stats` procedure and the headless host).
    pub fn stats_json(&self) -> String {
        let shared = &self.worker.shared;
        let (mask_frames, mask_w, mask_h) = {
            let o = lock(&shared.output);
            (o.sequence, o.width, o.height)
        };
        let (status, is_error) = self.status();
        let (
            frames,
            draws,
            new_frames,
            staged,
            render_ms,
            mask_age,
            readback_ms,
            upload_ms,
            readback_bytes,
        ) = {
            let gpu = lock(&self.gpu);
            (
                gpu.frames,
                gpu.draws,
                gpu.new_frames,
                gpu.frames_staged,
                gpu.render_ms.clone(),
                gpu.mask_age.clone(),
                gpu.readback_ms.clone(),
                gpu.upload_ms.clone(),
                gpu.readback_bytes,
            )
        };
        let (inferred, skipped, confirmed, region, detections) = {
            let o = lock(&shared.output);
            (o.inferred, o.skipped, o.confirmed, o.region, o.detections)
        };
        let t = lock(&shared.timings);
        let q = |r: &crate::segmentation::stats::Rolling, p: f64| r.quantile(p);
        serde_json::json!({
            "status": status,
            "error": is_error,
            "mask_frames": confirmed,
            "masks_published": mask_frames,
            "frames_inferred": inferred,
            "frames_skipped": skipped,
            "readback_ms_median": q(&readback_ms, 0.5),
            "readback_ms_p95": q(&readback_ms, 0.95),
            "readback_bytes_per_frame": if frames > 0 { readback_bytes as f64 / frames as f64 } else { 0.0 },
            "upload_ms_median": q(&upload_ms, 0.5),
            "upload_ms_p95": q(&upload_ms, 0.95),
            "mask_width": mask_w,
            "mask_height": mask_h,
            // the part of the frame the newest mask covers, frame uv [x, y, w, h] (mask::roi)
            "mask_region": region.to_array(),
            "detection_passes": detections,
            "frames_rendered": frames,
            // video_render calls drawn (a second view draws a frame's result again)
            "draws": draws,
            // rendered frames with new content (an async parent's new frames) and those staged
            // for the worker
            "frames_new": new_frames,
            "frames_staged": staged,
            "async_frames": self.async_frames.load(std::sync::atomic::Ordering::Relaxed),
            "frames_dropped": shared.frames_dropped.load(std::sync::atomic::Ordering::Relaxed),
            "preprocess_ms_median": q(&t.preprocess, 0.5),
            "inference_ms_median": q(&t.inference, 0.5),
            "inference_ms_p95": q(&t.inference, 0.95),
            "postprocess_ms_median": q(&t.postprocess, 0.5),
            "worker_ms_median": q(&t.total, 0.5),
            "worker_ms_p95": q(&t.total, 0.95),
            // thread CPU time (preemption left out)
            "inference_cpu_ms_median": q(&t.inference_cpu, 0.5),
            "worker_cpu_ms_median": q(&t.total_cpu, 0.5),
            "render_ms_median": q(&render_ms, 0.5),
            "render_ms_p95": q(&render_ms, 0.95),
            "mask_age_median": q(&mask_age, 0.5),
            "mask_age_max": q(&mask_age, 1.0),
        })
        .to_string()
    }
}

/// Replaces `%1`, `%2`, ... in a locale string.
fn fill(template: &str, args: &[&str]) -> String {
    let mut out = template.to_string();
    for (i, a) in args.iter().enumerate().rev() {
        out = out.replace(&format!("%{}", i + 1), a);
    }
    out
}

/// Finds the model with id `id` among the installed manifests, or the user's own model when
/// `id` is [`settings::CUSTOM_MODEL`].
fn find_model(id: &str, custom_path: &str) -> Result<Manifest, String> {
    if id == settings::CUSTOM_MODEL {
        return load_custom_model(custom_path);
    }
    let Some(dir) = models_dir() else {
        return Err("the plugin's data/models folder is missing".into());
    };
    let (models, errors) = manifest::scan(&dir);
    if let Some(m) = models.into_iter().find(|m| m.id == id) {
        return Ok(m);
    }
    match errors.first() {
        Some(e) => Err(format!("model '{id}' not available ({e})")),
        None => Err(format!("model '{id}' not found in {}", dir.display())),
    }
}

/// Loads the user's own model: a manifest `.json`, or an `.onnx` with a `.json` manifest of the
/// same name beside it. Errors say what to fix.
pub fn load_custom_model(path: &str) -> Result<Manifest, String> {
    let path = path.trim();
    if path.is_empty() {
        return Err(
            "choose a model manifest (.json) or an .onnx file with a .json beside it".into(),
        );
    }
    let path = std::path::Path::new(path);
    let manifest_path = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
    {
        let sidecar = path.with_extension("json");
        if !sidecar.is_file() {
            return Err(format!(
                "{} has no manifest beside it ({})",
                path.display(),
                sidecar.display()
            ));
        }
        sidecar
    } else {
        path.to_path_buf()
    };
    Manifest::load(&manifest_path).map_err(|e| e.to_string())
}

unsafe fn filter<'a>(data: *mut c_void) -> Option<&'a Filter> {
    (data as *const Filter).as_ref()
}

unsafe extern "C" fn get_name(_type_data: *mut c_void) -> *const c_char {
    guard("get_name", c"Backdrop".as_ptr(), || {
        module::text("Backdrop")
    })
}

unsafe extern "C" fn create(
    settings: *mut sys::obs_data_t,
    source: *mut sys::obs_source_t,
) -> *mut c_void {
    guard("create", std::ptr::null_mut(), || {
        match Filter::new(source) {
            Ok(f) => {
                let f = Box::new(f);
                f.update(Settings::read(Data(settings)));
                let raw = Box::into_raw(f);
                register_procs(source, raw);
                raw as *mut c_void
            }
            Err(e) => {
                crate::error!("{e}");
                std::ptr::null_mut()
            }
        }
    })
}

unsafe extern "C" fn destroy(data: *mut c_void) {
    guard("destroy", (), || {
        if !data.is_null() {
            // Joins the worker (it finishes the frame in flight, a few ms) and frees GPU objects.
            drop(Box::from_raw(data as *mut Filter));
        }
    })
}

unsafe extern "C" fn get_defaults(settings: *mut sys::obs_data_t) {
    guard("get_defaults", (), || {
        Settings::write_defaults(Data(settings))
    })
}

unsafe extern "C" fn get_properties(data: *mut c_void) -> *mut sys::obs_properties_t {
    guard("get_properties", std::ptr::null_mut(), || {
        properties::build(filter(data))
    })
}

unsafe extern "C" fn update(data: *mut c_void, settings: *mut sys::obs_data_t) {
    guard("update", (), || {
        if let Some(f) = filter(data) {
            f.update(Settings::read(Data(settings)));
        }
    })
}

unsafe extern "C" fn video_render(data: *mut c_void, _effect: *mut sys::gs_effect_t) {
    let Some(f) = filter(data) else { return };
    if !guard("video_render", false, || f.render()) {
        // Not ready, or a bug: the video never stops because of us.
        sys::obs_source_skip_video_filter(f.source);
    }
}

/// `filter_video`: an async parent chose a new frame for display this tick. Counts it and passes
/// the frame on unchanged (libobs holds a reference around the call).
unsafe extern "C" fn filter_video(
    data: *mut c_void,
    frame: *mut sys::obs_source_frame,
) -> *mut sys::obs_source_frame {
    if let Some(f) = filter(data) {
        f.async_frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    frame
}

/// Registers `void get_stats(out string json)` on the filter's procedure handler.
unsafe fn register_procs(source: *mut sys::obs_source_t, filter: *mut Filter) {
    let ph = sys::obs_source_get_proc_handler(source);
    if ph.is_null() {
        return;
    }
    let decl = cstring("void get_stats(out string json)");
    sys::proc_handler_add(
        ph,
        decl.as_ptr(),
        Some(get_stats_proc),
        filter as *mut c_void,
    );
}

unsafe extern "C" fn get_stats_proc(data: *mut c_void, cd: *mut sys::calldata_t) {
    guard("get_stats", (), || {
        if let Some(f) = filter(data) {
            let json = cstring(&f.stats_json());
            let bytes = json.as_bytes_with_nul();
            sys::calldata_set_data(
                cd,
                c"json".as_ptr(),
                bytes.as_ptr() as *const c_void,
                bytes.len(),
            );
        }
    })
}
