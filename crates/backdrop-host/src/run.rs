//! The session: start libobs, load modules and the plugin, then either process images one by one
//! ("still mode") or run a source continuously ("run mode"), and write `report.json`.

use crate::capture::CAPTURE;
use crate::cli::{FilterChoice, Fps, InputSpec, Options};
use crate::host::{self, XDisplay};
use crate::logging;
use crate::perf;
use crate::png_out;
use crate::record::Recorder;
use crate::sources::{self, Chain, Data};
use crate::tap;
use crate::virtualcam::VirtualCam;
use anyhow::{bail, Context, Result};
use backdrop_obs::sys;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Main-loop poll interval.
const POLL: Duration = Duration::from_millis(2);
/// How often still mode reads the filter's stats while waiting for masks.
const SETTLE_POLL: Duration = Duration::from_millis(5);
/// How often the filter's stats are read during a run.
const STATS_EVERY: Duration = Duration::from_millis(250);
/// How long a capture request may wait for the tap before it takes the output frame alone.
const TAP_GRACE: Duration = Duration::from_secs(2);
/// The settings storm starts once this many frames were captured.
const STORM_AFTER_FRAMES: u64 = 5;
/// Canvas used before the input's size is known, and for 0x0 colour inputs.
const PLACEHOLDER_CANVAS: (u32, u32) = (320, 240);
/// Still mode stops waiting for masks when the filter has reported an error this long.
const ERROR_GIVE_UP: Duration = Duration::from_secs(3);
/// Frames still shown after a video reports its end (its last frame is queued), at least.
const END_TAIL: Duration = Duration::from_millis(100);
/// Frame rate when neither `--fps` nor the video says otherwise.
const DEFAULT_FPS: Fps = Fps { num: 30, den: 1 };

/// Set by SIGINT/SIGTERM: the run ends early but cleanly (recording finalised, report written).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Signal handler: only stores a flag (async-signal-safe) and restores the default action, so a
/// second Ctrl-C kills the process.
extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether the run ends only on SIGINT/SIGTERM: a webcam, or a looping video sent to the virtual
/// camera, without `--frames`/`--duration`.
pub fn runs_until_signal(o: &Options) -> bool {
    o.frames.is_none()
        && o.duration.is_none()
        && match o.inputs.first() {
            Some(InputSpec::Webcam(_)) => true,
            Some(InputSpec::Video(_)) => o.virtualcam && o.looping,
            _ => false,
        }
}

/// Whether these options run in still mode (images one by one, result once settled).
pub fn is_still_mode(o: &Options) -> bool {
    o.inputs.iter().all(|i| matches!(i, InputSpec::Image(_)))
        && o.frames.is_none()
        && o.duration.is_none()
        && o.record.is_none()
        && o.stills == 0
        && o.remove_filter_after_frames.is_none()
        && o.settings_storm.is_none()
        && o.resize_at_frame.is_none()
}

/// Runs everything; returns the process exit code (0 ok, 3 a run error: a wait timed out, an
/// input failed, a signal); setup failures are `Err` (exit code 1).
pub fn run(o: &Options) -> Result<ExitCode> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create output folder {}", o.out.display()))?;
    logging::install(&o.out.join("obs.log"))?;
    // backdrop-core used in this process (the bare inference of --bare-inference-runs) logs
    // through `log`: into the OBS log, as the plugin's copy does.
    backdrop_obs::log::install();
    let plugin_so = o.plugin_dir.join("bin/64bit/obs-backdrop.so");
    if o.filter == FilterChoice::Backdrop && !plugin_so.is_file() {
        bail!(
            "plugin not found: {} (build and stage the plugin, or pass --plugin DIR; \
             --no-filter / --passthrough-filter run without it)",
            plugin_so.display()
        );
    }
    if !is_still_mode(o)
        && o.frames.is_none()
        && o.duration.is_none()
        && !matches!(o.inputs[0], InputSpec::Video(_) | InputSpec::Webcam(_))
    {
        bail!("this input needs --frames N or --duration SECONDS");
    }
    for input in &o.inputs {
        if let InputSpec::Image(p) | InputSpec::Video(p) = input {
            if !p.is_file() {
                bail!("input {} not found", p.display());
            }
        }
    }
    // The background image is deliberately not checked: a missing one is the filter's to report.
    if let Some(p) = o.resize_image.iter().find(|p| !p.is_file()) {
        bail!("image {} not found", p.display());
    }
    // Both before any other thread exists: the environment is read by ONNX Runtime's loader.
    perf::prepare_runtime(o);
    if o.count_allocations {
        crate::alloc_count::set_trace_every(o.trace_allocations_every);
        crate::alloc_count::enable();
    }
    install_signal_handlers();
    let display = XDisplay::open()?;
    host::startup(&display, &o.locale)?;
    let outcome = session(o, &plugin_so);
    let shutdown_started = Instant::now();
    let leaks = host::shutdown();
    let shutdown_ms = shutdown_started.elapsed().as_secs_f64() * 1e3;
    let _ = writeln!(
        std::io::stderr(),
        "backdrop-render: bmem allocations still live after obs_shutdown: {leaks}"
    );
    drop(display);
    let mut outcome = outcome?;
    outcome.report["elapsed_s"] = json!(t0.elapsed().as_secs_f64());
    outcome.report["bmem_leaks"] = json!(leaks);
    // obs_shutdown, with the destruction of what the session released
    outcome.report["shutdown_ms"] = json!(shutdown_ms);
    let path = o.out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&outcome.report)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    let _ = writeln!(std::io::stdout(), "{}", outcome.summary);
    if outcome.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for e in &outcome.errors {
            let _ = writeln!(std::io::stderr(), "backdrop-render: error: {e}");
        }
        Ok(ExitCode::from(3))
    }
}

/// What a session produced.
struct Outcome {
    report: Value,
    summary: String,
    /// Timeouts and other run errors (exit code 3); setup failures are `Err` instead.
    errors: Vec<String>,
}

/// Facts about a video file from `ffprobe` (when installed).
#[derive(Debug, Default)]
struct Probe {
    width: u32,
    height: u32,
    fps: Option<Fps>,
    duration_s: Option<f64>,
}

fn ffprobe(path: &Path) -> Option<Probe> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,r_frame_rate:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let s = v.get("streams")?.get(0)?;
    Some(Probe {
        width: s.get("width")?.as_u64()? as u32,
        height: s.get("height")?.as_u64()? as u32,
        fps: s
            .get("r_frame_rate")
            .and_then(|r| r.as_str())
            .and_then(|r| Fps::parse(r).ok()),
        duration_s: v
            .get("format")
            .and_then(|f| f.get("duration"))
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse().ok()),
    })
}

/// Loads the OBS modules and the plugin, registers the tap, checks the filter type.
fn load_modules(o: &Options, plugin_so: &Path) -> Result<()> {
    let (bin, data) = (&o.obs_plugins_dir, &o.obs_data_dir);
    host::load_system_module("image-source", bin, data)?;
    host::load_system_module("obs-ffmpeg", bin, data)?;
    match host::load_system_module("obs-x264", bin, data) {
        Ok(()) => {}
        Err(e) if o.record.is_none() => logging::host(&format!("warning: {e:#}")),
        Err(e) => return Err(e),
    }
    match host::load_system_module("obs-filters", bin, data) {
        Ok(()) => {}
        Err(e) if o.filter != FilterChoice::Passthrough => {
            logging::host(&format!("warning: {e:#}"))
        }
        Err(e) => return Err(e),
    }
    let webcam = matches!(o.inputs.first(), Some(InputSpec::Webcam(_)));
    if webcam || o.virtualcam {
        // v4l2_input, and virtualcam_output when v4l2loopback is installed.
        host::load_system_module("linux-v4l2", bin, data)?;
    }
    if o.filter == FilterChoice::Backdrop {
        host::load_module(plugin_so, &o.plugin_dir.join("data"))
            .context("loading the obs-backdrop plugin")?;
    }
    tap::register();
    unsafe { sys::obs_post_load_modules() };
    if o.filter == FilterChoice::Backdrop && !host::filter_type_registered(sources::BACKDROP_ID) {
        bail!(
            "the plugin loaded but filter type '{}' is not registered (see {}/obs.log)",
            sources::BACKDROP_ID,
            o.out.display()
        );
    }
    Ok(())
}

/// Everything between `obs_startup` and `obs_shutdown`; all OBS objects are released on return.
fn session(o: &Options, plugin_so: &Path) -> Result<Outcome> {
    host::reset_audio()?;
    let probe = match &o.inputs[0] {
        InputSpec::Video(p) if !is_still_mode(o) => ffprobe(p),
        _ => None,
    };
    let fps = o
        .fps
        .or(probe.as_ref().and_then(|p| p.fps))
        .unwrap_or(DEFAULT_FPS);
    let initial = o.canvas.unwrap_or(match (&o.inputs[0], &probe) {
        (InputSpec::Color { width, height, .. }, _) if *width > 0 && *height > 0 => {
            (*width, *height)
        }
        (InputSpec::Video(_), Some(p)) if p.width > 0 && p.height > 0 => (p.width, p.height),
        _ => PLACEHOLDER_CANVAS,
    });
    host::reset_video(initial.0, initial.1, fps)?;
    load_modules(o, plugin_so)?;
    logging::host(&format!(
        "libobs {}, canvas {}x{} @ {}/{} fps, filter {:?}, {} input(s)",
        host::from_c(unsafe { sys::obs_get_version_string() }),
        initial.0,
        initial.1,
        fps.num,
        fps.den,
        o.filter,
        o.inputs.len()
    ));
    let mut canvas = Canvas {
        size: initial,
        fps,
        capturing: false,
    };
    sources::add_sources(o)?;
    let outcome = if is_still_mode(o) {
        still_session(o, &mut canvas)
    } else {
        run_session(o, &mut canvas, probe)
    };
    sources::remove_added_sources();
    canvas.stop_capture();
    unsafe { sys::obs_set_output_source(0, std::ptr::null_mut()) };
    outcome
}

/// The canvas size and whether the raw callback is connected (it blocks `obs_reset_video`).
struct Canvas {
    size: (u32, u32),
    fps: Fps,
    capturing: bool,
}

impl Canvas {
    /// Resets video to `size` if it differs (disconnecting the capture first).
    fn ensure_size(&mut self, size: (u32, u32)) -> Result<()> {
        if size == self.size {
            return Ok(());
        }
        self.stop_capture();
        unsafe { sys::obs_set_output_source(0, std::ptr::null_mut()) };
        host::reset_video(size.0, size.1, self.fps)?;
        self.size = size;
        Ok(())
    }
    fn start_capture(&mut self) {
        if !self.capturing {
            CAPTURE.start(self.size.0, self.size.1);
            self.capturing = true;
        }
    }
    fn stop_capture(&mut self) {
        if self.capturing {
            CAPTURE.stop();
            self.capturing = false;
        }
    }
}

/// Waits (polling every [`POLL`]) until `f` returns Some or `timeout` passes.
fn wait_for<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    wait_for_every(timeout, POLL, f)
}

/// Waits (polling every `interval`) until `f` returns Some or `timeout` passes.
fn wait_for_every<T>(
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// Requests an (original, result) pair and waits for it; falls back to the output frame alone
/// when the tap does not render within [`TAP_GRACE`].
fn capture_pair(timeout: Duration) -> Option<crate::capture::Pair> {
    let id = CAPTURE.request_pair();
    let t0 = Instant::now();
    let pair = wait_for(timeout, || {
        if t0.elapsed() > TAP_GRACE && CAPTURE.waiting_for_tap(id) {
            CAPTURE.downgrade_to_result_only(id);
        }
        CAPTURE.take_pair(id)
    });
    if pair.is_none() {
        CAPTURE.cancel(id);
    }
    pair
}

/// Whether stats carry `"error": true`.
fn stats_error(stats: &Option<Value>) -> bool {
    stats
        .as_ref()
        .and_then(|s| s.get("error"))
        .and_then(|e| e.as_bool())
        .unwrap_or(false)
}

fn stat_f64(stats: &Option<Value>, key: &str) -> Option<f64> {
    stats.as_ref()?.get(key)?.as_f64()
}

fn short_stats(stats: &Option<Value>) -> String {
    match stats {
        None => "no filter stats".into(),
        Some(s) => format!(
            "masks {}, inference median {} ms, status {}",
            sources::mask_frames(s).map_or("?".into(), |m| m.to_string()),
            stat_f64(stats, "inference_ms_median").map_or("?".into(), |v| format!("{v:.2}")),
            s.get("status").map_or("?".into(), |v| v.to_string())
        ),
    }
}

/// Base report fields shared by both modes.
fn base_report(o: &Options, canvas: &Canvas, frames: u64, stats: &Option<Value>) -> Value {
    let (be, bw) = logging::backdrop_counts();
    json!({
        "mode": if is_still_mode(o) { "still" } else { "run" },
        "filter": match o.filter {
            FilterChoice::Backdrop => "backdrop",
            FilterChoice::None => "none",
            FilterChoice::Passthrough => "passthrough",
        },
        "frames_captured": frames,
        "width": canvas.size.0,
        "height": canvas.size.1,
        "fps": canvas.fps.as_f64(),
        "measured_fps": CAPTURE.measured_fps(),
        "backdrop_errors": be,
        "backdrop_warnings": bw,
        "obs_errors": logging::error_count(),
        "stats": stats,
        "lagged_frames": unsafe { sys::obs_get_lagged_frames() },
        "total_frames": unsafe { sys::obs_get_total_frames() },
    })
}

// ---------------------------------------------------------------------------------------------
// Still mode

/// Processes each image: fresh source + filter, canvas at the image size, wait for `--settle`
/// masks, then one (original, result) pair -> `<stem>.png` and `<stem>.result.png`.
fn still_session(o: &Options, canvas: &mut Canvas) -> Result<Outcome> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut last_stats = None;
    let mut total_frames = 0;
    let (mut n_ok, t0) = (0usize, Instant::now());
    for (i, input) in o.inputs.iter().enumerate() {
        if interrupted() {
            errors.push(format!("interrupted before input {}", input.describe()));
            break;
        }
        let entry = match still_one(o, canvas, input, i, &mut last_stats, &mut total_frames) {
            Ok(e) => e,
            Err(e) => json!({"path": input.describe(), "result_png": null, "settled": false,
                             "error": format!("{e:#}")}),
        };
        if let Some(err) = entry.get("error").and_then(|e| e.as_str()) {
            logging::host(&format!("{}: {err}", input.describe()));
            errors.push(format!("{}: {err}", input.describe()));
        } else {
            n_ok += 1;
        }
        entries.push(entry);
    }
    let mut report = base_report(o, canvas, total_frames, &last_stats);
    report["inputs"] = Value::Array(entries);
    let summary = format!(
        "backdrop-render: {n_ok}/{} image(s) done in {:.1} s, {total_frames} frames, {}, \
         backdrop errors {} warnings {}",
        o.inputs.len(),
        t0.elapsed().as_secs_f64(),
        short_stats(&last_stats),
        report["backdrop_errors"],
        report["backdrop_warnings"],
    );
    Ok(Outcome {
        report,
        summary,
        errors,
    })
}

fn still_one(
    o: &Options,
    canvas: &mut Canvas,
    input: &InputSpec,
    index: usize,
    last_stats: &mut Option<Value>,
    total_frames: &mut u64,
) -> Result<Value> {
    let t0 = Instant::now();
    let mut chain = Chain::create_source(input, o, false, index)?;
    let (w, h) = chain.size();
    if w == 0 || h == 0 {
        bail!("image could not be loaded (size 0x0; see obs.log)");
    }
    canvas.ensure_size(o.canvas.unwrap_or((w, h)))?;
    chain.add_filters(o, true)?;
    canvas.start_capture();
    let frames0 = CAPTURE.frames();
    unsafe { sys::obs_set_output_source(0, chain.source) };

    // Settle: N masks of this content (fresh filter: counted from 0), else N output frames.
    let has_stats = chain.stats().is_some();
    let mut stats = None;
    let mut error_since: Option<Instant> = None;
    let mut gave_up = false;
    let settled = wait_for_every(o.timeout, SETTLE_POLL, || {
        if has_stats {
            stats = chain.stats();
            let m = stats.as_ref().and_then(sources::mask_frames).unwrap_or(0);
            // A filter that reports an error and makes no masks for a while will not settle.
            if stats_error(&stats) && m == 0 {
                if error_since.get_or_insert_with(Instant::now).elapsed() > ERROR_GIVE_UP {
                    gave_up = true;
                    return Some(false);
                }
            } else {
                error_since = None;
            }
            (m >= o.settle).then_some(true)
        } else {
            (CAPTURE.frames() >= frames0 + o.settle.max(1)).then_some(true)
        }
    })
    .unwrap_or(false);
    let settle_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let pair = capture_pair(o.timeout);
    if has_stats {
        stats = chain.stats().or(stats);
    }
    *total_frames += CAPTURE.frames() - frames0;
    unsafe { sys::obs_set_output_source(0, std::ptr::null_mut()) };
    drop(chain);
    if stats.is_some() {
        last_stats.clone_from(&stats);
    }

    let stem = input.stem();
    let mut entry = json!({
        "path": input.describe(),
        "result_png": null,
        "width": w,
        "height": h,
        "settled": settled,
        "settle_ms": settle_ms,
        "stats": stats,
    });
    let Some(pair) = pair else {
        entry["error"] = json!(format!(
            "no output frame within {:.0} s",
            o.timeout.as_secs_f64()
        ));
        return Ok(entry);
    };
    let side = o.out.join(format!("{stem}.png"));
    let result = o.out.join(format!("{stem}.result.png"));
    png_out::write_side_by_side(&side, pair.original.as_ref(), &pair.result)?;
    png_out::write_frame(&result, &pair.result)?;
    entry["result_png"] = json!(result.display().to_string());
    entry["side_by_side_png"] = json!(side.display().to_string());
    entry["original_from_tap"] = json!(pair.original.is_some());
    if gave_up {
        entry["error"] = json!(format!(
            "the filter reports an error and makes no masks (stats: {})",
            short_stats(&stats)
        ));
    } else if !settled {
        entry["error"] = json!(format!(
            "timed out after {:.0} s waiting for {} masks (stats: {})",
            o.timeout.as_secs_f64(),
            o.settle,
            short_stats(&stats)
        ));
    }
    Ok(entry)
}

// ---------------------------------------------------------------------------------------------
// Run mode

/// A still requested during the run.
struct PendingStill {
    path: PathBuf,
    id: u64,
    at: Instant,
}

/// Continuous run of one input: optional recording, stills, fault injection.
fn run_session(o: &Options, canvas: &mut Canvas, probe: Option<Probe>) -> Result<Outcome> {
    let input = &o.inputs[0];
    let mut errors: Vec<String> = Vec::new();
    let mut chain = Chain::create_source(input, o, o.looping, 0)?;
    if let Some(name) = &o.add_scene_with_input {
        sources::add_scene_with(name, chain.source)?;
    }

    // Canvas size: --canvas, else the source's own size once known.
    if o.canvas.is_none() {
        let size = match input {
            InputSpec::Video(_) | InputSpec::Webcam(_) if probe.is_none() => {
                // No ffprobe (or a webcam): let the source show its first frame to learn the
                // size.
                unsafe { sys::obs_set_output_source(0, chain.source) };
                let s = wait_for(o.timeout, || {
                    let s = chain.size();
                    (s.0 > 0 && s.1 > 0).then_some(s)
                });
                unsafe { sys::obs_set_output_source(0, std::ptr::null_mut()) };
                s.with_context(|| {
                    format!(
                        "{}: no frame within {:.0} s (see obs.log)",
                        input.describe(),
                        o.timeout.as_secs_f64()
                    )
                })?
            }
            _ => {
                let s = chain.size();
                if s.0 > 0 && s.1 > 0 {
                    s
                } else {
                    canvas.size
                }
            }
        };
        canvas.ensure_size(size)?;
        if matches!(input, InputSpec::Video(_)) && probe.is_none() {
            unsafe { sys::obs_source_media_restart(chain.source) };
        }
    }
    let mut source_size = chain.size();
    let with_tap = o.stills > 0 || matches!(input, InputSpec::Image(_));
    chain.add_filters(o, with_tap)?;
    let removal_planned = o.remove_filter_after_frames.is_some() && !chain.filter.is_null();
    // A removal keeps the run going past --frames for its grace second: count every frame.
    // So do a schedule counted from a later frame (--schedule-when-shown) and a storm that
    // must see its updates through (one per new frame) before the run ends.
    let keeps_counting = removal_planned
        || o.remove_added_sources_after_frames.is_some()
        || o.churn != (0, 0)
        || o.schedule_when_shown
        || o.settings_storm.is_some();
    CAPTURE.set_frame_limit(if keeps_counting { None } else { o.frames });
    // The main view draws every output channel in order: more channels, more draws per frame.
    for channel in 0..o.views {
        unsafe { sys::obs_set_output_source(channel, chain.source) };
    }
    if matches!(input, InputSpec::Video(_) | InputSpec::Webcam(_)) {
        // Start capturing and recording with the video's first frame, not the black canvas
        // while the decoder opens, so recorded frame i is source frame i.
        let shown = wait_for(o.timeout, || {
            let s = chain.size();
            (s.0 > 0 && s.1 > 0).then_some(())
        });
        if shown.is_none() {
            bail!(
                "the video showed no frame within {:.0} s (see obs.log)",
                o.timeout.as_secs_f64()
            );
        }
    }
    canvas.start_capture();
    // A virtual camera that cannot start is one clear error; the filter and the run go on.
    let mut report_virtualcam_error = None;
    let virtualcam = if o.virtualcam {
        match VirtualCam::start() {
            Ok(v) => Some(v),
            Err(e) => {
                let msg = format!("{e:#}");
                // In obs.log when it happens; on stderr once, with the run's other errors.
                logging::write_line(&format!("[backdrop-render] error: {msg}"));
                report_virtualcam_error = Some(msg.clone());
                errors.push(msg);
                if runs_until_signal(o) {
                    // Nothing to run for without the camera.
                    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                None
            }
        }
    } else {
        None
    };
    let until_signal = runs_until_signal(o);
    let recorder = match &o.record {
        Some(p) => Some(Recorder::start(p)?),
        None => None,
    };
    let t0 = Instant::now();
    let mut window = perf::Window::new(o.perf_warmup);

    // Expected length, for spreading stills and bounding the run.
    let fps = canvas.fps.as_f64();
    let expected_s = o
        .frames
        .map(|n| n as f64 / fps)
        .or(o.duration)
        .or(probe.as_ref().and_then(|p| p.duration_s));
    let mut expected_frames = o
        .frames
        .or(o.duration.map(|d| (d * fps) as u64))
        .or(expected_s.map(|s| (s * fps) as u64));
    let mut targets: Vec<u64> = Vec::new();
    let make_targets = |total: u64| -> Vec<u64> {
        (0..o.stills as u64)
            .map(|i| ((i * 2 + 1) * total / (2 * o.stills as u64)).max(1))
            .collect()
    };
    if let Some(total) = expected_frames {
        targets = make_targets(total);
    }
    let mut next_still = 0usize;
    // The output frame the schedule (--frames, stills, removals, renames) counts from: the
    // first, or with --schedule-when-shown the first showing the background, once known.
    let mut schedule_from: Option<u64> = (!o.schedule_when_shown).then_some(0);
    let mut pending: Vec<PendingStill> = Vec::new();
    let mut stills_written: Vec<String> = Vec::new();

    let mut last_stats = chain.stats();
    let mut last_stats_at = Instant::now();
    let mut removal_at: Option<(Instant, u64)> = None;
    let mut sources_removed_at: Option<(Instant, u64)> = None;
    let mut sources_renamed_at: Option<u64> = None;
    let mut storm = Storm::default();
    let mut resize_done_at: Option<u64> = None;
    let mut media_ended = false;
    let mut ended_at: Option<Instant> = None;
    let mut churn = (o.churn != (0, 0)).then(|| crate::soak::Churn::new(o.churn.0, o.churn.1));
    let mut soak = o
        .soak
        .map(|(period, warmup)| crate::soak::Soak::new(period, warmup, o.views, o.duration));
    let mut timeline = match &o.timeline {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("--timeline {}", p.display()))?,
        )),
        None => None,
    };

    loop {
        std::thread::sleep(POLL);
        let frames = CAPTURE.frames();
        let elapsed = t0.elapsed();
        window.poll(&chain, elapsed);

        if last_stats_at.elapsed() >= STATS_EVERY {
            if let Some(s) = chain.stats() {
                last_stats = Some(s);
            }
            last_stats_at = Instant::now();
            if schedule_from.is_none()
                && last_stats.as_ref().is_some_and(|s| {
                    sources::mask_frames(s).unwrap_or(0) > 0 && s["background_shown"] == true
                })
            {
                logging::host(&format!(
                    "background shown at frame {frames}: the schedule counts from here"
                ));
                schedule_from = Some(frames);
            }
            if let Some(t) = timeline.as_mut() {
                let (rss_kb, threads, fds) = crate::soak::process_sample();
                let line = json!({
                    "rss_kb": rss_kb,
                    "threads": threads,
                    "fds": fds,
                    "t": elapsed.as_secs_f64(),
                    "frames": frames,
                    // OBS's lagged graphics frames since start
                    "lagged": unsafe { sys::obs_get_lagged_frames() },
                    "stats": last_stats,
                });
                if let Err(e) = writeln!(t, "{line}").and_then(|()| t.flush()) {
                    errors.push(format!("timeline: {e}"));
                    timeline = None;
                }
            }
        }
        // Frames into the schedule (None: it has not started).
        let sched = schedule_from.map(|from| frames.saturating_sub(from));

        // Video length known only from the source: spread stills once it is.
        if expected_frames.is_none() {
            let ms = chain.media_duration_ms();
            if ms > 0 {
                let total = (ms as f64 / 1000.0 * fps) as u64;
                expected_frames = Some(total);
                targets = make_targets(total);
            }
        }

        // Fault injection.
        if let Some(n) = o.remove_filter_after_frames {
            if removal_at.is_none() && sched >= Some(n) && !chain.filter.is_null() {
                last_stats = chain.stats().or(last_stats);
                logging::host(&format!("removing the filter at frame {frames}"));
                chain.remove_filter();
                removal_at = Some((Instant::now(), frames));
            }
        }
        if let Some(n) = o.remove_added_sources_after_frames {
            if sources_removed_at.is_none() && sched >= Some(n) {
                let count = sources::remove_added_sources();
                logging::host(&format!(
                    "removed {count} added source(s) at frame {frames}"
                ));
                sources_removed_at = Some((Instant::now(), frames));
            }
        }
        if let Some(n) = o.rename_added_sources_after_frames {
            if sources_renamed_at.is_none() && sched >= Some(n) {
                let count = sources::rename_added_sources();
                logging::host(&format!(
                    "renamed {count} added source(s) at frame {frames}"
                ));
                sources_renamed_at = Some(frames);
            }
        }
        storm.step(o, &chain, frames);
        if let Some(file) = &o.settings_file {
            apply_settings_file(file, &chain);
        }
        if let Some(s) = soak.as_mut() {
            s.step(&chain, elapsed, &last_stats);
        }
        if let Some(c) = churn.as_mut() {
            c.step(o, &chain, frames, &last_stats);
        }
        if let Some((f, w, h)) = o.resize_at_frame {
            if resize_done_at.is_none() && frames >= f {
                resize_input(o, &chain, w, h);
                resize_done_at = Some(frames);
            }
        }

        // Stills.
        while next_still < targets.len() && sched >= Some(targets[next_still]) {
            next_still += 1;
            pending.push(PendingStill {
                path: o.out.join(format!("still_{next_still:04}.png")),
                id: CAPTURE.request_pair(),
                at: Instant::now(),
            });
        }
        service_stills(o, &mut pending, &mut stills_written, &mut errors);

        // End of run.
        if matches!(input, InputSpec::Video(_)) {
            match chain.media_state() {
                sys::obs_media_state::OBS_MEDIA_STATE_ENDED if !o.looping => {
                    ended_at.get_or_insert_with(Instant::now);
                }
                sys::obs_media_state::OBS_MEDIA_STATE_ERROR => {
                    errors.push("the media source reported an error (see obs.log)".into());
                    break;
                }
                _ => {}
            }
        }
        // The decoder ends before its last buffered frames are shown: keep going a little.
        if let Some(at) = ended_at {
            media_ended = at.elapsed() >= END_TAIL.max(Duration::from_secs_f64(3.0 / fps));
        }
        if source_size == (0, 0) {
            source_size = chain.size();
        }
        let reached = (o.frames.is_some_and(|n| sched >= Some(n))
            || o.duration.is_some_and(|d| elapsed.as_secs_f64() >= d))
            && o.min_masks.is_none_or(|n| {
                let stats = chain.stats();
                stats.as_ref().and_then(sources::mask_frames).unwrap_or(0) >= n
            })
            || media_ended
            || o.stop_file.as_ref().is_some_and(|f| f.exists())
            || interrupted();
        let reached = reached
            && churn.as_ref().is_none_or(|c| c.done())
            && (o.settings_storm.is_none() || storm.done)
            && (!o.schedule_when_shown || next_still >= targets.len() && pending.is_empty());
        let grace_over = match (removal_planned, removal_at) {
            (false, _) => true,
            (true, Some((at, _))) => at.elapsed() >= Duration::from_secs(1),
            (true, None) => false,
        } && match (o.remove_added_sources_after_frames, sources_removed_at) {
            (None, _) => true,
            (Some(_), Some((at, _))) => at.elapsed() >= Duration::from_secs(1),
            (Some(_), None) => false,
        };
        if reached && grace_over {
            break;
        }
        if reached && removal_planned && removal_at.is_none() {
            // The run ended before the removal frame: remove now so the test still sees it.
            if let Some(n) = o.remove_filter_after_frames {
                logging::host(&format!(
                    "run ended before frame {n}; removing the filter now"
                ));
            }
            last_stats = chain.stats().or(last_stats);
            chain.remove_filter();
            removal_at = Some((Instant::now(), frames));
        }

        // Bounds: no frames for --timeout-s, or far longer than expected.
        let stalled = match CAPTURE.since_last_frame() {
            Some(d) => d > o.timeout,
            None => elapsed > o.timeout,
        };
        let limit = expected_s.unwrap_or(0.0) + o.timeout.as_secs_f64() + 1.0;
        if stalled || (!until_signal && elapsed.as_secs_f64() > limit) {
            errors.push(format!(
                "timed out: {} after {:.1} s with {frames} frames",
                if stalled {
                    "no output frames"
                } else {
                    "run did not end"
                },
                elapsed.as_secs_f64()
            ));
            break;
        }
    }
    let run_s = t0.elapsed().as_secs_f64();
    if let Some(s) = soak.as_mut() {
        s.restore(&chain);
    }
    let churn_report = churn.as_mut().map(|c| c.finish(&chain));
    // The window ends with the run; the bare inference runs after it, the scene still running.
    let mut perf_report = window.finish(&chain);
    if o.bare_inference_runs > 0 && !interrupted() {
        perf_report["bare_session_run"] = perf::bare_inference(o, o.bare_inference_runs);
    }
    if interrupted() && !until_signal {
        errors.push("interrupted by a signal".into());
    }

    // Stills not reached (the run was shorter than expected) come from the last frames.
    while next_still < o.stills as usize {
        next_still += 1;
        pending.push(PendingStill {
            path: o.out.join(format!("still_{next_still:04}.png")),
            id: CAPTURE.request_pair(),
            at: Instant::now(),
        });
    }
    // Image inputs also get <stem>.png / <stem>.result.png from the final frame.
    let mut result_png = None;
    let final_pair = if matches!(input, InputSpec::Image(_)) {
        capture_pair(o.timeout)
    } else {
        None
    };
    if let Some(pair) = &final_pair {
        let stem = input.stem();
        let side = o.out.join(format!("{stem}.png"));
        let result = o.out.join(format!("{stem}.result.png"));
        png_out::write_side_by_side(&side, pair.original.as_ref(), &pair.result)?;
        png_out::write_frame(&result, &pair.result)?;
        result_png = Some(result.display().to_string());
    }
    let _ = wait_for(o.timeout, || {
        service_stills(o, &mut pending, &mut stills_written, &mut errors);
        pending.is_empty().then_some(())
    });
    for p in pending.drain(..) {
        CAPTURE.cancel(p.id);
        errors.push(format!("still {} timed out", p.path.display()));
    }

    let frames = CAPTURE.frames();
    let record_stats = match recorder {
        Some(r) => match r.stop(o.timeout) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(format!("{e:#}"));
                None
            }
        },
        None => None,
    };
    let virtualcam_started = virtualcam.is_some();
    drop(virtualcam);
    canvas.stop_capture();
    if let Some(s) = chain.stats() {
        last_stats = Some(s);
    }
    let added_filters = sources::added_filter_stats();
    let properties = chain.properties();
    let added_sources = sources::added_sources_state();
    let filter_settings = chain
        .filter_settings_json()
        .and_then(|j| serde_json::from_str::<Value>(&j).ok());
    for channel in 0..o.views {
        unsafe { sys::obs_set_output_source(channel, std::ptr::null_mut()) };
    }
    drop(chain);

    let mut report = base_report(o, canvas, frames, &last_stats);
    report["properties"] = json!(properties);
    if o.filter_added_sources {
        // the last stats of each --filter-added-sources filter
        report["added_filters"] = json!(added_filters);
    }
    // The filter's settings at the end, as the scene collection would save them.
    report["filter_settings"] = json!(filter_settings);
    // Whether the filter still holds the added sources active/showing at the end.
    report["added_sources"] = added_sources;
    if let Some(at) = sources_renamed_at {
        report["sources_renamed_at_frame"] = json!(at);
    }
    let settled = last_stats
        .as_ref()
        .and_then(sources::mask_frames)
        .is_some_and(|m| m >= o.settle);
    report["run_s"] = json!(run_s);
    report["perf"] = perf_report;
    if let Some(s) = &soak {
        report["soak"] = s.finish();
    }
    if let Some(c) = churn_report {
        report["churn"] = c;
    }
    report["inputs"] = json!([{
        "path": input.describe(),
        "result_png": result_png,
        "width": source_size.0,
        "height": source_size.1,
        "settled": settled,
    }]);
    report["stills"] = json!(stills_written);
    report["media_ended"] = json!(media_ended);
    if o.virtualcam {
        report["virtualcam_started"] = json!(virtualcam_started);
        report["virtualcam_error"] = json!(report_virtualcam_error);
    }
    if let Some(r) = &record_stats {
        report["frames_recorded"] = json!(r.frames);
        report["frames_dropped"] = json!(r.dropped);
        report["record_stop_code"] = json!(r.stop_code);
        report["record_path"] = json!(o.record.as_ref().map(|p| p.display().to_string()));
    }
    if let Some((_, at)) = sources_removed_at {
        report["sources_removed_at_frame"] = json!(at);
        report["frames_after_sources_removed"] = json!(frames.saturating_sub(at));
    }
    if let Some((_, at)) = removal_at {
        report["filter_removed_at_frame"] = json!(at);
        report["frames_after_filter_removed"] = json!(frames.saturating_sub(at));
    }
    if o.settings_storm.is_some() {
        report["settings_storm_updates"] = json!(storm.updates);
        report["settings_storm_frames"] =
            json!(storm.last_frame.saturating_sub(storm.first_frame) + 1);
        report["settings_storm_restored"] = json!(storm.done);
    }
    if let Some(f) = resize_done_at {
        report["resized_at_frame"] = json!(f);
    }
    report["errors"] = json!(errors);
    let summary = format!(
        "backdrop-render: {frames} frames {}x{} in {run_s:.1} s (output {} fps){}, {}, \
         backdrop errors {} warnings {}, lagged {}",
        canvas.size.0,
        canvas.size.1,
        CAPTURE
            .measured_fps()
            .map_or("?".into(), |f| format!("{f:.1}")),
        record_stats
            .as_ref()
            .map_or(String::new(), |r| format!(", recorded {}", r.frames)),
        short_stats(&last_stats),
        report["backdrop_errors"],
        report["backdrop_warnings"],
        report["lagged_frames"],
    );
    Ok(Outcome {
        report,
        summary,
        errors,
    })
}

/// Writes the stills whose pairs are complete; downgrades or drops overdue ones.
fn service_stills(
    o: &Options,
    pending: &mut Vec<PendingStill>,
    written: &mut Vec<String>,
    errors: &mut Vec<String>,
) {
    pending.retain(|p| {
        if let Some(pair) = CAPTURE.take_pair(p.id) {
            match png_out::write_side_by_side(&p.path, pair.original.as_ref(), &pair.result) {
                Ok(()) => written.push(p.path.display().to_string()),
                Err(e) => errors.push(format!("{e:#}")),
            }
            return false;
        }
        if p.at.elapsed() > TAP_GRACE && CAPTURE.waiting_for_tap(p.id) {
            CAPTURE.downgrade_to_result_only(p.id);
        }
        if p.at.elapsed() > o.timeout {
            CAPTURE.cancel(p.id);
            errors.push(format!("still {} timed out", p.path.display()));
            return false;
        }
        true
    });
}

/// Keys `--settings-storm` sets; restored to what the filter had before when it ends (keys the
/// filter did not have go back to their defaults).
const STORM_KEYS: [&str; 9] = [
    "mode",
    "threshold",
    "color",
    "model",
    "image_path",
    "aspect",
    "mask_expand",
    "min_blob_percent",
    "edge_aware",
];

/// Update `i` of `--settings-storm`: one `obs_source_update` cycling modes, thresholds, models,
/// colours, aspect handling and refinement settings.
fn storm_update(o: &Options, chain: &Chain, i: usize) {
    const MODES: [&str; 8] = [
        "blur",
        "color",
        "image",
        "transparent",
        "source",
        "pixelate",
        "video",
        "focal",
    ];
    const EFFECTS: [&str; 2] = ["none", "hologram"];
    const MODELS: [&str; 2] = ["selfie_general", "selfie_landscape"];
    const ASPECTS: [&str; 3] = ["roi", "stretch", "letterbox"];
    let d = Data::new();
    d.set_string("mode", MODES[i % MODES.len()])
        .set_double("threshold", 0.1 + 0.8 * ((i * 37) % 100) as f64 / 100.0)
        .set_string("effect", EFFECTS[(i / 5) % EFFECTS.len()])
        .set_int(
            "color",
            sources::obs_color_from_rgb((i as u32).wrapping_mul(0x9E3779) & 0xFF_FFFF),
        );
    // Mode source and video come back every 8 frames: their feed (a media source for the
    // video) is made and dropped again and again.
    if let Some(n) = &o.background_source {
        d.set_string("background_source", n);
    }
    if let Some(p) = &o.background_video {
        d.set_string(
            "background_video",
            &std::path::absolute(p)
                .unwrap_or(p.clone())
                .to_string_lossy(),
        );
    }
    if i % 3 == 0 {
        d.set_string("model", MODELS[(i / 3) % MODELS.len()]);
    }
    if i % 2 == 0 {
        d.set_string("aspect", ASPECTS[(i / 2) % ASPECTS.len()])
            .set_double("mask_expand", ((i % 7) as f64) - 3.0)
            .set_double("min_blob_percent", (i % 5) as f64 * 0.5)
            .set_bool("edge_aware", i % 4 == 0);
    }
    if let Some(p) = &o.background_image {
        d.set_string(
            "image_path",
            &std::path::absolute(p)
                .unwrap_or(p.clone())
                .to_string_lossy(),
        );
    }
    chain.update_filter(&d);
}

/// `--settings-file`: when `file` exists, applies its `KEY=VALUE` lines to the filter in one
/// `obs_source_update` and deletes it. A file that cannot be read or parsed is logged and
/// deleted.
fn apply_settings_file(file: &Path, chain: &Chain) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let _ = std::fs::remove_file(file);
    let d = Data::new();
    let mut applied = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match crate::cli::parse_key_value(line) {
            Ok((k, v)) => {
                sources::set_value(&d, &k, &v);
                applied.push(line);
            }
            Err(e) => logging::host(&format!("{}: {e}", file.display())),
        }
    }
    chain.update_filter(&d);
    logging::host(&format!(
        "settings from {}: {}",
        file.display(),
        applied.join(", ")
    ));
}

/// `--settings-storm N`: one update per output frame for N frames, then one restoring the
/// settings the filter had before.
#[derive(Default)]
struct Storm {
    /// The filter's settings before the first update (JSON).
    before: Option<String>,
    /// Updates made, the restore included.
    updates: u32,
    /// Output frame of the first and of the last update.
    first_frame: u64,
    last_frame: u64,
    done: bool,
}

impl Storm {
    /// Called on each poll of the run loop with the output frames so far: one update when a new
    /// frame came out since the last one.
    fn step(&mut self, o: &Options, chain: &Chain, frames: u64) {
        let Some(n) = o.settings_storm else { return };
        if self.done
            || frames < STORM_AFTER_FRAMES
            || (self.updates > 0 && frames == self.last_frame)
        {
            return;
        }
        if self.updates == 0 {
            self.before = chain.filter_settings_json();
            self.first_frame = frames;
            logging::host(&format!(
                "settings storm: {n} updates, one per frame, from frame {frames}"
            ));
        }
        if self.updates < n {
            storm_update(o, chain, self.updates as usize);
        } else {
            if let Some(before) = &self.before {
                chain.restore_filter_settings(before, &STORM_KEYS);
            }
            self.done = true;
            logging::host(&format!(
                "settings storm done at frame {frames}; settings restored"
            ));
        }
        self.updates += 1;
        self.last_frame = frames;
    }
}

/// `--resize-at-frame`: a colour input gets the new size, an image input the `--resize-image`.
/// The canvas keeps its size (video cannot be reset while capturing or recording).
fn resize_input(o: &Options, chain: &Chain, w: u32, h: u32) {
    let d = Data::new();
    match &o.inputs[0] {
        InputSpec::Color { .. } => {
            d.set_int("width", w as i64).set_int("height", h as i64);
        }
        InputSpec::Image(_) => {
            if let Some(p) = &o.resize_image {
                d.set_string(
                    "file",
                    &std::path::absolute(p)
                        .unwrap_or(p.clone())
                        .to_string_lossy(),
                );
            }
        }
        InputSpec::Video(_) | InputSpec::Webcam(_) => {
            logging::host("--resize-at-frame is ignored for video and webcam inputs");
            return;
        }
    }
    logging::host(&format!("resizing the input: {}", d.json()));
    chain.update_source(&d);
}
