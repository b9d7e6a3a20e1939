//! The Backdrop filter (`backdrop_filter`): lifecycle, settings, status and statistics, in safe
//! Rust (`ffi` calls in from libobs). The per-frame GPU work lives in [`render`].

mod feed;
pub mod properties;
mod render;
pub mod settings;

use backdrop_core::segmentation::manifest::{self, Manifest};
use backdrop_core::segmentation::worker::{lock, Backend, State, Worker};
use backdrop_obs::gfx::ImageFile;
use backdrop_obs::module;
use backdrop_obs::source::SourceRef;
use feed::{Feed, Origin};
use log::warn;
use settings::{Effect, Mode, Settings};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Per-frame parameters the graphics thread reads (copied, no allocation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RenderParams {
    pub mode: Mode,
    pub threshold: f32,
    pub edge_softness: f32,
    /// The soft edge's shift in half-widths (`Feather::shift`).
    pub feather_shift: f32,
    /// Block size of the pixelated background, px.
    pub pixel_size: f32,
    /// Focal blur: distance of full blur from the silhouette, px.
    pub focal_distance: f32,
    /// The hologram effect on the person.
    pub hologram: bool,
    pub blur_strength: f32,
    pub color: [f32; 4],
    /// Hand a frame to the worker every Nth frame.
    pub inference_interval: u32,
}

/// The loaded background image, or why it could not be loaded.
struct Background {
    path: String,
    image: Result<ImageFile, String>,
    /// The file's modification time when `image` was read (or last tried).
    modified: Option<std::time::SystemTime>,
    /// When the file was last looked at by [`Filter::tick`].
    checked: std::time::Instant,
    /// Why the file on disk cannot be read now, while the last image read is still shown
    /// (deleted, replaced by something that is not an image).
    stale: Option<String>,
}

/// How often [`Filter::tick`] looks at the background image file for changes (as OBS's own
/// image source does, `image_source_tick`: once a second).
const IMAGE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn modified(path: &str) -> std::io::Result<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified())
}

impl RenderParams {
    /// The render side of `s`.
    fn from(s: &Settings) -> Self {
        Self {
            mode: s.mode,
            threshold: s.threshold,
            edge_softness: s.edge_softness,
            feather_shift: s.feather.shift(),
            pixel_size: s.pixel_size as f32,
            focal_distance: s.focal_distance,
            hologram: s.effect == Effect::Hologram,
            blur_strength: s.blur_strength,
            color: s.color_rgba(),
            inference_interval: s.inference_interval,
        }
    }
}

/// One filter instance.
pub struct Filter {
    source: SourceRef,
    worker: Worker,
    params: Mutex<RenderParams>,
    settings: Mutex<Settings>,
    background: Mutex<Option<Background>>,
    /// The source or video shown behind the person in modes `source` and `video`.
    feed: Mutex<Option<Feed>>,
    gpu: Mutex<render::GpuState>,
    /// Set while `video_render` runs: a background source that draws this filter's own source
    /// (found only at run time, e.g. a scene that gets it later) re-enters `render`, which then
    /// passes video through instead of drawing itself inside itself.
    rendering: std::sync::atomic::AtomicBool,
    /// New frames of the async parent seen by `filter_video` (0 for a synchronous parent).
    async_frames: AtomicU64,
    /// Background images read successfully (the first, and each reload of a changed file).
    image_loads: AtomicU64,
    /// The message of a panic in `video_render`: from then on the filter passes video through.
    panic: Mutex<Option<String>>,
}

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
    /// A filter on `source` with the default settings and its worker thread started.
    ///
    /// # Errors
    /// The worker thread cannot be started.
    pub fn new(source: SourceRef) -> Result<Self, String> {
        let worker = Worker::start().map_err(|e| format!("cannot start worker thread: {e}"))?;
        let d = Settings::default();
        Ok(Self {
            source,
            worker,
            params: Mutex::new(RenderParams::from(&d)),
            settings: Mutex::new(d),
            background: Mutex::new(None),
            feed: Mutex::new(None),
            gpu: Mutex::new(render::GpuState::default()),
            rendering: std::sync::atomic::AtomicBool::new(false),
            async_frames: AtomicU64::new(0),
            image_loads: AtomicU64::new(0),
            panic: Mutex::new(None),
        })
    }

    /// The filter's own source.
    pub fn source(&self) -> SourceRef {
        self.source
    }

    /// `filter_video`: the async parent has a new frame for this tick.
    pub fn new_async_frame(&self) {
        self.async_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a panic in `video_render` latched the filter into pass-through.
    pub fn panicked(&self) -> bool {
        lock(&self.panic).is_some()
    }

    /// Latches the filter into pass-through after a panic in `video_render`; logs it once.
    pub fn latch_panic(&self, message: &str) {
        let mut panic = lock(&self.panic);
        if panic.is_none() {
            log::error!("internal error in video_render: {message}; passing video through");
            *panic = Some(message.to_string());
        }
    }

    /// Applies new settings: render parameters at once, and a new worker request. The request
    /// goes out on every update, not only when a setting the worker needs changed: the worker
    /// then looks at the model file again and reads it anew when it was replaced on disk (a
    /// model upgraded while OBS runs); an unchanged request costs it a `stat` and one inferred
    /// frame.
    pub fn update(&self, s: Settings) {
        *lock(&self.settings) = s.clone();
        *lock(&self.params) = RenderParams::from(&s);
        if s.mode == Mode::Image {
            self.load_background(&s.image_path);
        }
        self.choose_feed(&s);
        let manifest = find_model(&s.model, &s.custom_model_path);
        self.worker.shared.set_request(s.request(manifest));
    }

    /// Makes the feed the settings ask for when it differs from the current one (none outside
    /// modes `source` and `video`); the old one gives back its references and sources.
    fn choose_feed(&self, s: &Settings) {
        let wanted = match s.mode {
            Mode::Source => Some(Origin::Named(s.background_source.clone())),
            Mode::Video => Some(Origin::Video(s.background_video.clone())),
            _ => None,
        };
        let mut feed = lock(&self.feed);
        if feed.as_ref().map(Feed::origin) != wanted.as_ref() {
            // The old feed first: its media source goes before a new one starts.
            *feed = None;
            *feed = wanted.map(Feed::new);
        }
    }

    /// `video_tick`: keeps the background feed's source found and its references right, and
    /// follows a rename of it into the settings.
    pub fn tick(&self) {
        if lock(&self.settings).mode == Mode::Image {
            self.check_background_file();
        }
        let renamed = lock(&self.feed).as_mut().and_then(|f| f.tick(self.source));
        if let Some(name) = renamed {
            if let Some(settings) = self.source.settings() {
                settings.set_string("background_source", &name);
            }
            lock(&self.settings).background_source = name;
        }
    }

    /// Once a second: reloads the background image when its file changed. A file that is gone
    /// or no longer an image keeps the last image read on screen, says so in the status and
    /// logs it once; a readable one again replaces it.
    fn check_background_file(&self) {
        let mut guard = lock(&self.background);
        let Some(bg) = guard.as_mut() else { return };
        if bg.path.trim().is_empty() || bg.checked.elapsed() < IMAGE_CHECK_EVERY {
            return;
        }
        bg.checked = std::time::Instant::now();
        let shown = bg.image.is_ok();
        match modified(&bg.path) {
            Err(e) => {
                let why = format!("cannot read {}: {e}", bg.path);
                if shown && bg.stale.as_ref() != Some(&why) {
                    warn!("background image: {why}; showing the last image read");
                    bg.stale = Some(why);
                }
                bg.modified = None;
            }
            Ok(m) if Some(m) != bg.modified => {
                bg.modified = Some(m);
                match ImageFile::load(std::path::Path::new(&bg.path)) {
                    Ok(image) => {
                        log::info!("background image {} changed: reloaded", bg.path);
                        bg.image = Ok(image);
                        bg.stale = None;
                        self.image_loads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if shown => {
                        if bg.stale.as_ref() != Some(&e) {
                            warn!("background image: {e}; showing the last image read");
                        }
                        bg.stale = Some(e);
                    }
                    Err(e) => bg.image = Err(e),
                }
            }
            Ok(_) => {}
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
        if image.is_ok() {
            self.image_loads.fetch_add(1, Ordering::Relaxed);
        }
        *bg = Some(Background {
            path: path.to_string(),
            image,
            modified: modified(path).ok(),
            checked: std::time::Instant::now(),
            stale: None,
        });
    }

    /// The status line for the properties view and whether it reports an error.
    pub fn status(&self) -> (String, bool) {
        let c = self.condition();
        (c.text, c.error_kind.is_some() || c.warning_kind.is_some())
    }

    /// What the filter is doing, for people (`text`) and for tools (the kinds).
    fn condition(&self) -> Condition {
        let state = lock(&self.worker.shared.state).clone();
        let error = |kind: &'static str, message: &str| Condition {
            error_kind: Some(kind),
            ..Condition::ok(
                "error",
                fill(&module::text_string("Status.Error"), &[message]),
            )
        };
        let mut c = match state {
            State::Starting => Condition::ok("starting", module::text_string("Status.Starting")),
            State::Loading(id) => Condition::ok(
                "loading",
                fill(&module::text_string("Status.Loading"), &[&id]),
            ),
            State::Running(model, provider) => {
                // One lock at a time: the graphics thread takes gpu -> input.
                let age = lock(&self.gpu).mask_age.median().unwrap_or(0.0);
                let t = lock(&self.worker.shared.timings);
                let mut c = Condition::ok(
                    "running",
                    fill(
                        &module::text_string("Status.Running"),
                        &[
                            &model,
                            &format!("{:.1}", t.inference.median().unwrap_or(0.0)),
                            &format!("{:.1}", t.total.median().unwrap_or(0.0)),
                            &format!("{age:.0}"),
                        ],
                    ),
                );
                c.provider = Some(provider.key());
                c
            }
            State::Error(kind, e) => error(kind.as_str(), &e),
        };
        if c.state == "running" {
            if let Some(why) = lock(&self.worker.shared.model_warning).clone() {
                c.text.push('\n');
                c.text
                    .push_str(&fill(&module::text_string("Status.ModelOutput"), &[&why]));
                c.warning_kind = Some("model_output");
            }
            if let Some(why) = lock(&self.worker.shared.model_file_warning).clone() {
                c.text.push('\n');
                c.text
                    .push_str(&fill(&module::text_string("Status.ModelFile"), &[&why]));
                c.warning_kind = Some("model_file");
            }
            let remote = lock(&self.worker.shared.remote);
            match remote.backend {
                Backend::Local => {}
                Backend::Remote => {
                    c.text.push('\n');
                    c.text.push_str(&fill(
                        &module::text_string("Status.Remote"),
                        &[&format!("{:.1}", remote.round_trip.median().unwrap_or(0.0))],
                    ));
                }
                Backend::Fallback => {
                    c.text.push('\n');
                    c.text.push_str(&fill(
                        &module::text_string("Status.RemoteFallback"),
                        &[remote.reason.as_deref().unwrap_or("")],
                    ));
                    c.warning_kind = Some("inference_server");
                }
            }
        }
        if let Some(e) = lock(&self.gpu).error.clone() {
            c = error("graphics", &e);
        }
        if let Some(p) = lock(&self.panic).clone() {
            c = error("internal", &format!("internal error in video_render: {p}"));
        }
        if lock(&self.settings).mode == Mode::Image {
            match &*lock(&self.background) {
                Some(Background { image: Err(e), .. }) => {
                    c.text.push('\n');
                    c.text
                        .push_str(&fill(&module::text_string("Status.ImageError"), &[e]));
                    c.warning_kind = Some("background_image");
                }
                Some(Background { stale: Some(e), .. }) => {
                    c.text.push('\n');
                    c.text
                        .push_str(&fill(&module::text_string("Status.ImageStale"), &[e]));
                    c.warning_kind = Some("background_image");
                }
                _ => {}
            }
        }
        if let Some(e) = lock(&self.feed)
            .as_ref()
            .and_then(|f| f.error().map(str::to_string))
        {
            let (key, kind) = match lock(&self.settings).mode {
                Mode::Video => ("Status.VideoError", "background_video"),
                _ => ("Status.SourceError", "background_source"),
            };
            c.text.push('\n');
            c.text.push_str(&fill(&module::text_string(key), &[&e]));
            c.warning_kind = Some(kind);
        }
        c
    }

    /// Statistics as a JSON object (for the `get_stats` procedure and the headless host).
    pub fn stats_json(&self) -> String {
        let shared = &self.worker.shared;
        let (mask_frames, mask_w, mask_h) = {
            let o = lock(&shared.output);
            (o.sequence, o.width, o.height)
        };
        let condition = self.condition();
        let is_error = condition.error_kind.is_some() || condition.warning_kind.is_some();
        let (
            frames,
            draws,
            new_frames,
            new_with_model,
            staged,
            render_ms,
            mask_age,
            readback_ms,
            upload_ms,
            readback_bytes,
            background_shown,
        ) = {
            let gpu = lock(&self.gpu);
            (
                gpu.frames,
                gpu.draws,
                gpu.new_frames,
                gpu.new_frames_with_model,
                gpu.frames_staged,
                gpu.render_ms.clone(),
                gpu.mask_age.clone(),
                gpu.readback_ms.clone(),
                gpu.upload_ms.clone(),
                gpu.readback_bytes,
                gpu.background_shown,
            )
        };
        let (inferred, skipped, warped, mirrored, confirmed, region, detections, person) = {
            let o = lock(&shared.output);
            (
                o.inferred,
                o.skipped,
                o.warped,
                o.mirrored,
                o.confirmed,
                o.region,
                o.detections,
                o.person_share,
            )
        };
        let q = |r: &backdrop_core::segmentation::stats::Rolling, p: f64| r.quantile(p);
        let remote = {
            let r = lock(&shared.remote);
            serde_json::json!({
                // local | remote | fallback (on this computer because the server failed)
                "inference": r.backend.as_str(),
                "remote_reason": r.reason,
                "remote_payload": r.payload,
                "remote_frames": r.frames,
                "remote_misses": r.misses,
                "remote_fallbacks": r.fallbacks,
                "remote_recoveries": r.recoveries,
                "remote_round_trip_ms_median": q(&r.round_trip, 0.5),
                "remote_round_trip_ms_p95": q(&r.round_trip, 0.95),
                "remote_bytes_sent": r.bytes_sent,
                "remote_bytes_received": r.bytes_received,
            })
        };
        let gpu_objects = backdrop_obs::gfx::live_objects();
        let t = lock(&shared.timings);
        let mut stats = serde_json::json!({
            "status": condition.text,
            "error": is_error,
            // starting | loading | running | error
            "state": condition.state,
            // model | runtime | inference | internal | graphics (null unless state is error)
            "error_kind": condition.error_kind,
            // background_image | background_source | background_video: the chosen background
            // cannot be shown; the filter blurs instead. inference_server: the server is not
            // used (remote_reason says why); the model runs on this computer. model_output: the
            // model's output has been NaN or one value everywhere for a second. model_file: the
            // model file was replaced by one that cannot be loaded; the model read before runs
            "warning_kind": condition.warning_kind,
            // the execution provider the model runs on (cpu when the chosen one is unavailable)
            "execution_provider": condition.provider,
            "mask_frames": confirmed,
            "masks_published": mask_frames,
            "frames_inferred": inferred,
            "frames_skipped": skipped,
            // shown with the last inferred mask moved along the person's motion (cadence)
            "frames_warped": warped,
            // inferred twice, as is and mirrored, the masks averaged (mirror_average)
            "frames_mirrored": mirrored,
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
            // the last frame showed the chosen background picture (modes image, source, video)
            "background_shown": background_shown,
            // mean person probability of the newest inferred mask, 0..1 (of its region)
            "mask_person_share": person,
            "frames_rendered": frames,
            // video_render calls drawn (a second view draws a frame's result again)
            "draws": draws,
            // rendered frames with new content (an async parent's new frames) and those staged
            // for the worker
            "frames_new": new_frames,
            // of those, rendered while the worker had a model (before its first load none can
            // be staged)
            "frames_new_with_model": new_with_model,
            "frames_staged": staged,
            "async_frames": self.async_frames.load(Ordering::Relaxed),
            // background images read: the first, and each reload of a changed file
            "background_image_loads": self.image_loads.load(Ordering::Relaxed),
            "frames_dropped": shared.frames_dropped.load(std::sync::atomic::Ordering::Relaxed),
            // ONNX Runtime sessions built so far (a switch back to the model used before builds none)
            "model_loads": shared.model_loads.load(std::sync::atomic::Ordering::Relaxed),
            "preprocess_ms_median": q(&t.preprocess, 0.5),
            "inference_ms_median": q(&t.inference, 0.5),
            "inference_ms_p95": q(&t.inference, 0.95),
            "postprocess_ms_median": q(&t.postprocess, 0.5),
            "worker_ms_median": q(&t.total, 0.5),
            "worker_ms_p95": q(&t.total, 0.95),
            // thread CPU time (preemption left out)
            "inference_cpu_ms_median": q(&t.inference_cpu, 0.5),
            "worker_cpu_ms_median": q(&t.total_cpu, 0.5),
            // a warped frame: motion search + warp (thread CPU)
            "warp_ms_median": q(&t.warp, 0.5),
            "warp_cpu_ms_median": q(&t.warp_cpu, 0.5),
            "render_ms_median": q(&render_ms, 0.5),
            "render_ms_p95": q(&render_ms, 0.95),
            "mask_age_median": q(&mask_age, 0.5),
            "mask_age_max": q(&mask_age, 1.0),
            // graphics objects alive in the process, made through the plugin's wrappers (all
            // Backdrop filters together): constant while the filter runs, unless it leaks
            "gpu_objects": {
                "texrenders": gpu_objects.texrenders,
                "stage_surfaces": gpu_objects.stage_surfaces,
                "textures": gpu_objects.textures,
                "effects": gpu_objects.effects,
                "images": gpu_objects.images,
                "total": gpu_objects.total(),
            },
        });
        if let (Some(all), Some(remote)) = (stats.as_object_mut(), remote.as_object()) {
            all.extend(remote.clone());
        }
        stats.to_string()
    }
}

/// What the filter is doing: see [`Filter::condition`].
struct Condition {
    state: &'static str,
    error_kind: Option<&'static str>,
    warning_kind: Option<&'static str>,
    /// The execution provider the model runs on (`cpu`, `cuda`, ...), while running.
    provider: Option<&'static str>,
    text: String,
}

impl Condition {
    fn ok(state: &'static str, text: String) -> Self {
        Self {
            state,
            error_kind: None,
            warning_kind: None,
            provider: None,
            text,
        }
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
