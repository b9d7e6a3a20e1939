//! Command-line options of `backdrop-render` ([`Args`], parsed by clap) and the validated
//! [`Options`] of one run made from them.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `--help` prints after the options.
const AFTER_HELP: &str = "\
Image inputs without --frames/--duration run in still mode: for each image the canvas is reset to
its size, the result is taken once the filter has produced --settle masks of it, and
OUT/<stem>.png (original | result) and OUT/<stem>.result.png (result alone, RGBA) are written.
Everything else runs in run mode (continuous frames, recording, stills, fault injection). A
webcam input, or a looping video sent to --virtualcam, runs without --frames/--duration until
SIGINT or SIGTERM (a virtual camera without the OBS window), then stops cleanly with exit 0.
OUT/report.json has frame counts, sizes, the filter's last get_stats, [backdrop] error/warning
counts and one entry per input; in run mode also \"perf\" (see PERFORMANCE). Exit status: 0
success; 1 setup failure (no DISPLAY, plugin or input missing, module load failed, filter not
registered); 2 bad arguments; 3 run error (a wait timed out, an input failed, interrupted), with
report.json still written.";

/// backdrop-render: headless OBS host for the obs-backdrop filter (demo and end-to-end test
/// driver). Runs under an X display (e.g. `xvfb-run -a backdrop-render ...`).
#[derive(Parser, Debug)]
#[command(name = "backdrop-render", after_help = AFTER_HELP)]
pub struct Args {
    /// image (.png .jpg .jpeg .bmp), video file, color:WxH[:AARRGGBB], or v4l2:/dev/videoN (a
    /// webcam, through OBS's own v4l2_input); repeatable: several images are processed one
    /// after another
    #[arg(long = "input", value_name = "SPEC", value_parser = InputSpec::parse, help_heading = "Input")]
    inputs: Vec<InputSpec>,
    /// one input SPEC per line (blank lines and # comments ignored)
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    input_list: Option<PathBuf>,
    /// v4l2 inputs: yuyv or mjpeg (default: the device's current format; mjpeg is read as full
    /// range)
    #[arg(long, value_name = "F", value_parser = WebcamFormat::parse, help_heading = "Input")]
    webcam_format: Option<WebcamFormat>,
    /// v4l2 inputs: capture size (default: the device's current size)
    #[arg(long, value_name = "WxH", value_parser = parse_size, help_heading = "Input")]
    webcam_size: Option<(u32, u32)>,
    /// v4l2 inputs: capture frame rate (default: the device's current rate)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Input")]
    webcam_fps: Option<u32>,
    /// any setting of the input source (e.g. buffering=false for v4l2); VALUE parsed as for
    /// --set (repeatable)
    #[arg(long = "source-set", value_name = "KEY=VALUE", value_parser = parse_key_value, help_heading = "Input")]
    source_sets: Vec<(String, SetValue)>,

    /// output folder; gets obs.log and report.json
    #[arg(
        long,
        value_name = "DIR",
        default_value = "out",
        help_heading = "Output"
    )]
    out: PathBuf,
    /// record the filtered output (obs_x264 CRF 18 + ffmpeg_aac, ffmpeg_muxer)
    #[arg(long, value_name = "FILE.mp4", help_heading = "Output")]
    record: Option<PathBuf>,
    /// write N side-by-side PNGs (original | result) spread over the run, OUT/still_0001.png ...
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Output")]
    stills: u32,
    /// run mode: count --frames, the --stills and the *-after-frames faults from the first
    /// output frame that shows a mask over the chosen background (image, source or video;
    /// stats background_shown), not from the first frame; a run that never shows it times out
    #[arg(long, help_heading = "Timing")]
    schedule_when_shown: bool,
    /// send the output to OBS's virtual camera (virtualcam_output of the linux-v4l2 module: the
    /// first free v4l2loopback device, YUY2 at the canvas size); stopped and released at the end
    #[arg(long, help_heading = "Output")]
    virtualcam: bool,
    /// draw the filtered source N times per frame (output channels 0..N-1 of the main view), as
    /// a projector or studio mode's second view draws it
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8), help_heading = "Output")]
    views: u32,

    /// plugin folder with bin/64bit/obs-backdrop.so and data/
    #[arg(
        long = "plugin",
        value_name = "DIR",
        default_value = "build/plugin/obs-backdrop",
        help_heading = "Filter"
    )]
    plugin_dir: PathBuf,
    /// run without any filter
    #[arg(long, conflicts_with = "passthrough_filter", help_heading = "Filter")]
    no_filter: bool,
    /// use OBS's own color_filter_v2 at defaults (identity) instead of the backdrop filter, for
    /// comparison
    #[arg(long, help_heading = "Filter")]
    passthrough_filter: bool,
    /// blur | image | color | transparent | pixelate | focal | source | video (setting "mode")
    #[arg(long, value_name = "MODE", help_heading = "Filter")]
    mode: Option<String>,
    /// background image (setting "image_path")
    #[arg(long, value_name = "PATH", help_heading = "Filter")]
    background_image: Option<PathBuf>,
    /// the OBS source shown behind the person in mode source (setting "background_source"),
    /// e.g. one made with --add-source
    #[arg(long, value_name = "NAME", help_heading = "Filter")]
    background_source: Option<String>,
    /// video file played behind the person in mode video (setting "background_video")
    #[arg(long, value_name = "FILE", help_heading = "Filter")]
    background_video: Option<PathBuf>,
    /// none | hologram: effect on the person (setting "effect")
    #[arg(long, value_name = "EFFECT", help_heading = "Filter")]
    effect: Option<String>,
    /// create a public source NAME from SPEC (as for --input; videos loop), alive for the whole
    /// run: what --background-source can name (repeatable)
    #[arg(long = "add-source", value_name = "NAME=SPEC", value_parser = parse_named_source, help_heading = "Input")]
    added_sources: Vec<(String, InputSpec)>,
    /// give each --add-source a Backdrop filter of its own (the run's filter settings) and show
    /// it on an output channel of its own: several filters, each with its worker, in one OBS
    #[arg(long, help_heading = "Input")]
    filter_added_sources: bool,
    /// create a public scene NAME holding the input source (a background source that would
    /// draw the filtered source inside itself)
    #[arg(long, value_name = "NAME", help_heading = "Input")]
    add_scene_with_input: Option<String>,
    /// background colour (setting "color", stored as 0xAABBGGRR)
    #[arg(long, value_name = "RRGGBB", value_parser = parse_rgb, help_heading = "Filter")]
    color: Option<u32>,
    /// e.g. selfie_general, selfie_landscape (setting "model")
    #[arg(long, value_name = "ID", help_heading = "Filter")]
    model: Option<String>,
    /// any filter setting; VALUE parsed as int, float, bool, else string (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value, help_heading = "Filter")]
    sets: Vec<(String, SetValue)>,

    /// canvas frame rate: 30, 29.97 or 30000/1001 (default: the video's own rate from ffprobe,
    /// else 30)
    #[arg(long, value_name = "FPS", value_parser = Fps::parse, help_heading = "Timing")]
    fps: Option<Fps>,
    /// canvas size (default: the input's size)
    #[arg(long, value_name = "WxH", value_parser = parse_size, help_heading = "Timing")]
    canvas: Option<(u32, u32)>,
    /// stop after N captured output frames
    #[arg(long, value_name = "N", help_heading = "Timing")]
    frames: Option<u64>,
    /// stop after this long
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, help_heading = "Timing")]
    duration: Option<f64>,
    /// loop video inputs (needs --frames, --duration or --virtualcam)
    #[arg(long = "loop", help_heading = "Timing")]
    looping: bool,
    /// image inputs: wait for N new masks (or N frames without the filter's stats) before
    /// taking the result
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Timing")]
    settle: u64,
    /// run mode: once --frames or --duration is reached, go on until the filter has published
    /// N masks (a slow model on a busy machine), within --timeout-s
    #[arg(long, value_name = "N", help_heading = "Timing")]
    min_masks: Option<u64>,
    /// run mode, soak: every SECONDS change the filter's settings (mode, model, threshold,
    /// blur), every second time also disable the filter for 5 s, every fourth hide the source
    /// for 5 s; sample memory, threads, fds, graphics objects, lagged frames and masks every
    /// 10 s (report.json "soak", with the trends after --soak-warmup)
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, help_heading = "Fault injection")]
    soak_period: Option<f64>,
    /// run mode: after 30 frames, add a new Backdrop filter to the source and remove it a frame
    /// later, N times; then --churn-sources (report.json "churn": the process before and after)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Fault injection"
    )]
    churn_filters: u32,
    /// run mode: after --churn-filters, make a source with a Backdrop filter, show it for a
    /// frame and release it, N times
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Fault injection"
    )]
    churn_sources: u32,
    /// soak: samples before this are not judged
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = non_negative_seconds, help_heading = "Fault injection")]
    soak_warmup: f64,
    /// run mode: also end once FILE exists (a test that drives faults from outside)
    #[arg(long, value_name = "FILE", help_heading = "Timing")]
    stop_file: Option<PathBuf>,
    /// run mode: whenever FILE exists, apply its KEY=VALUE lines to the filter
    /// (obs_source_update, values as --set), then delete it (a test that changes settings from
    /// outside)
    #[arg(long, value_name = "FILE", help_heading = "Fault injection")]
    settings_file: Option<PathBuf>,
    /// run mode: append one JSON line per filter stats poll (every 250 ms) to FILE: seconds
    /// since the first output frame, output frames, and the filter's stats
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    timeline: Option<PathBuf>,
    /// bound on every wait
    #[arg(long = "timeout-s", value_name = "SECONDS", default_value = "30", value_parser = positive_seconds, help_heading = "Timing")]
    timeout_s: f64,

    /// the steady window starts this long after the first output frame; CPU per process and per
    /// thread, OBS frame time, lagged and skipped frames and the filter's stats are taken over
    /// the window (report.json "perf"; run mode)
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = non_negative_seconds, help_heading = "Performance")]
    perf_warmup: f64,
    /// after the window, time N bare Session::run calls of the filter's model (plugin's
    /// data/models, same session options) on one frame of the input, paced at the frame
    /// interval while the scene keeps running, then N through an IoBinding (0: off)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Performance"
    )]
    bare_inference_runs: u32,
    /// count malloc/calloc/realloc/memalign calls per thread over the window (the graphics
    /// thread's and the worker's per frame), and attribute those of the graphics and worker
    /// threads to the plugin / ONNX Runtime / libobs+Mesa from sampled stack traces
    #[arg(long, help_heading = "Performance")]
    count_allocations: bool,
    /// one stack trace per N allocations on those threads (1 traces all: exact, but ~2 ms more
    /// CPU per inferred frame)
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Performance")]
    trace_allocations_every: u64,

    /// remove and release the filter after N frames, then keep capturing for at least 1 s
    #[arg(long, value_name = "N", help_heading = "Fault injection")]
    remove_filter_after_frames: Option<u64>,
    /// remove the --add-source sources from the scene collection and release them after N
    /// frames (obs_source_remove), then keep capturing for at least 1 s
    #[arg(long, value_name = "N", help_heading = "Fault injection")]
    remove_added_sources_after_frames: Option<u64>,
    /// rename each --add-source source to "NAME (renamed)" after N frames (obs_source_set_name)
    #[arg(long, value_name = "N", help_heading = "Fault injection")]
    rename_added_sources_after_frames: Option<u64>,
    /// one obs_source_update with varying settings per output frame for N frames (from frame
    /// 5), then one restoring the settings
    #[arg(long, value_name = "N", help_heading = "Fault injection")]
    settings_storm: Option<u32>,
    /// at frame F resize a color: input to WxH, or switch an image input to --resize-image
    #[arg(long, value_name = "F:WxH", value_parser = parse_resize, help_heading = "Fault injection")]
    resize_at_frame: Option<(u64, u32, u32)>,
    /// image used by --resize-at-frame for image inputs
    #[arg(long, value_name = "PATH", help_heading = "Fault injection")]
    resize_image: Option<PathBuf>,

    /// the language OBS gives its modules (obs_startup), e.g. de-DE: the filter's labels and
    /// status in report.json are then in that language
    #[arg(
        long,
        value_name = "LOCALE",
        default_value = "en-US",
        help_heading = "OBS"
    )]
    locale: String,
    /// system OBS module binaries
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/usr/lib/x86_64-linux-gnu/obs-plugins",
        help_heading = "OBS"
    )]
    obs_plugins_dir: PathBuf,
    /// system OBS module data
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/usr/share/obs/obs-plugins",
        help_heading = "OBS"
    )]
    obs_data_dir: PathBuf,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(format!("{s:?} is not a number of seconds > 0")),
    }
}

fn non_negative_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!("{s:?} is not a number of seconds >= 0")),
    }
}

fn parse_resize(v: &str) -> Result<(u64, u32, u32)> {
    let (f, size) = v
        .split_once(':')
        .with_context(|| format!("{v:?} is not F:WxH"))?;
    let (w, h) = parse_size(size)?;
    Ok((f.parse().context("frame")?, w, h))
}

/// One input given with `--input`.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// A still image, loaded with OBS's `image_source`.
    Image(PathBuf),
    /// A media file, played with OBS's `ffmpeg_source`.
    Video(PathBuf),
    /// A solid colour (`color_source_v3`) of `width` x `height` px, colour 0xAARRGGBB.
    Color { width: u32, height: u32, argb: u32 },
    /// A V4L2 capture device (`/dev/videoN`), read with OBS's `v4l2_input`.
    Webcam(PathBuf),
}

impl InputSpec {
    /// Parses an input spec: `color:WxH[:AARRGGBB]`, else a path classified by its extension.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(device) = s.strip_prefix("v4l2:") {
            if device.is_empty() {
                bail!("bad webcam input {s:?} (want v4l2:/dev/videoN)");
            }
            return Ok(InputSpec::Webcam(PathBuf::from(device)));
        }
        if let Some(rest) = s.strip_prefix("color:") {
            let mut parts = rest.splitn(2, ':');
            let (width, height) = parse_size(parts.next().unwrap_or(""))
                .with_context(|| format!("bad color input {s:?}"))?;
            let argb = match parts.next() {
                Some(hex) => u32::from_str_radix(hex.trim_start_matches('#'), 16)
                    .with_context(|| format!("bad colour {hex:?} in {s:?} (want AARRGGBB)"))?,
                None => 0xFF80_8080,
            };
            return Ok(InputSpec::Color {
                width,
                height,
                argb,
            });
        }
        let path = PathBuf::from(s);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "png" | "jpg" | "jpeg" | "bmp" => InputSpec::Image(path),
            _ => InputSpec::Video(path),
        })
    }

    /// Short text for messages and the report.
    pub fn describe(&self) -> String {
        match self {
            InputSpec::Image(p) | InputSpec::Video(p) => p.display().to_string(),
            InputSpec::Webcam(p) => format!("v4l2:{}", p.display()),
            InputSpec::Color {
                width,
                height,
                argb,
            } => format!("color:{width}x{height}:{argb:08X}"),
        }
    }

    /// File stem used to name per-input PNGs.
    pub fn stem(&self) -> String {
        match self {
            InputSpec::Image(p) | InputSpec::Video(p) | InputSpec::Webcam(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "input".into()),
            InputSpec::Color { width, height, .. } => format!("color_{width}x{height}"),
        }
    }
}

/// Which filter sits on the input source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterChoice {
    /// The plugin's `backdrop_filter` (default).
    Backdrop,
    /// No filter (`--no-filter`).
    None,
    /// OBS's `color_filter_v2` at defaults, an identity render pass (`--passthrough-filter`).
    Passthrough,
}

/// A value given with `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl SetValue {
    /// Parses as int, then float, then bool (`true`/`false`), else keeps the string.
    pub fn parse(s: &str) -> Self {
        if let Ok(i) = s.parse::<i64>() {
            SetValue::Int(i)
        } else if let Ok(f) = s.parse::<f64>() {
            SetValue::Float(f)
        } else if let Ok(b) = s.parse::<bool>() {
            SetValue::Bool(b)
        } else {
            SetValue::Str(s.to_string())
        }
    }
}

/// Pixel format asked of a webcam (`--webcam-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebcamFormat {
    /// Packed 4:2:2 YUV (`YUYV`), limited range.
    Yuyv,
    /// Motion JPEG (`MJPG`), decoded by libavcodec, full range.
    Mjpeg,
}

impl WebcamFormat {
    /// `yuyv` (or `yuy2`) or `mjpeg` (or `mjpg`), any case.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "yuyv" | "yuy2" => Ok(WebcamFormat::Yuyv),
            "mjpeg" | "mjpg" => Ok(WebcamFormat::Mjpeg),
            _ => bail!("{s:?}: want yuyv or mjpeg"),
        }
    }
}

/// Frame rate as a rational `num / den` frames per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fps {
    pub num: u32,
    pub den: u32,
}

impl Fps {
    /// Parses `30`, `29.97` (-> 30000/1001) or `30000/1001`.
    pub fn parse(s: &str) -> Result<Self> {
        let fps = if let Some((n, d)) = s.split_once('/') {
            let num: u32 = n.trim().parse().context("bad fps numerator")?;
            let den: u32 = d.trim().parse().context("bad fps denominator")?;
            Fps { num, den }
        } else {
            let f: f64 = s.trim().parse().context("bad fps")?;
            if (f - f.round()).abs() < 1e-6 {
                Fps {
                    num: f.round() as u32,
                    den: 1,
                }
            } else {
                // NTSC-style rates (23.976, 29.97, 59.94) are n*1000/1001.
                let ntsc = (f * 1.001).round();
                if (ntsc / 1.001 - f).abs() < 0.01 {
                    Fps {
                        num: ntsc as u32 * 1000,
                        den: 1001,
                    }
                } else {
                    Fps {
                        num: (f * 1000.0).round() as u32,
                        den: 1000,
                    }
                }
            }
        };
        if fps.num == 0 || fps.den == 0 || fps.as_f64() > 1000.0 {
            bail!("fps {s:?} out of range");
        }
        Ok(fps)
    }

    /// Frames per second as a float.
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// All options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    pub inputs: Vec<InputSpec>,
    pub out: PathBuf,
    pub plugin_dir: PathBuf,
    pub obs_plugins_dir: PathBuf,
    pub obs_data_dir: PathBuf,
    pub filter: FilterChoice,
    pub mode: Option<String>,
    pub background_image: Option<PathBuf>,
    pub background_source: Option<String>,
    pub background_video: Option<PathBuf>,
    pub effect: Option<String>,
    /// `--add-source NAME=SPEC`.
    pub added_sources: Vec<(String, InputSpec)>,
    pub remove_added_sources_after_frames: Option<u64>,
    /// `--locale`.
    pub locale: String,
    pub add_scene_with_input: Option<String>,
    pub rename_added_sources_after_frames: Option<u64>,
    /// `--color` as 0xRRGGBB.
    pub color: Option<u32>,
    pub model: Option<String>,
    pub sets: Vec<(String, SetValue)>,
    /// `--source-set`: settings of the input source.
    pub source_sets: Vec<(String, SetValue)>,
    pub webcam_format: Option<WebcamFormat>,
    pub webcam_size: Option<(u32, u32)>,
    pub webcam_fps: Option<u32>,
    /// Send the output to OBS's virtual camera.
    pub virtualcam: bool,
    /// `--views`: times the filtered source is drawn per frame (output channels 0..views).
    pub views: u32,
    pub fps: Option<Fps>,
    pub canvas: Option<(u32, u32)>,
    pub frames: Option<u64>,
    pub duration: Option<f64>,
    pub looping: bool,
    pub record: Option<PathBuf>,
    pub stills: u32,
    /// `--schedule-when-shown`.
    pub schedule_when_shown: bool,
    pub settle: u64,
    /// `--min-masks`.
    pub min_masks: Option<u64>,
    /// `--filter-added-sources`.
    pub filter_added_sources: bool,
    /// `--churn-filters` and `--churn-sources`.
    pub churn: (u32, u32),
    /// `--soak-period` and `--soak-warmup`.
    pub soak: Option<(Duration, Duration)>,
    /// `--stop-file`.
    pub stop_file: Option<PathBuf>,
    /// `--settings-file`.
    pub settings_file: Option<PathBuf>,
    /// `--timeline`.
    pub timeline: Option<PathBuf>,
    pub timeout: Duration,
    pub remove_filter_after_frames: Option<u64>,
    pub settings_storm: Option<u32>,
    /// `(frame, width, height)`.
    pub resize_at_frame: Option<(u64, u32, u32)>,
    pub resize_image: Option<PathBuf>,
    /// Start of the steady window after the first output frame (`--perf-warmup`).
    pub perf_warmup: Duration,
    /// Bare `Session::run` timings after the window (`--bare-inference-runs`, 0 = off).
    pub bare_inference_runs: u32,
    /// Per-thread allocation counts (`--count-allocations`).
    pub count_allocations: bool,
    /// One stack trace per this many allocations on watched threads.
    pub trace_allocations_every: u64,
}

/// Parses `WxH` (e.g. `640x480`); zero sizes are allowed.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("size {s:?} is not WxH"))?;
    Ok((
        w.trim()
            .parse()
            .with_context(|| format!("bad width in {s:?}"))?,
        h.trim()
            .parse()
            .with_context(|| format!("bad height in {s:?}"))?,
    ))
}

/// Parses `RRGGBB` (a leading `#` allowed) as 0xRRGGBB.
pub fn parse_rgb(s: &str) -> Result<u32> {
    let hex = s.trim_start_matches('#');
    if hex.len() != 6 {
        bail!("colour {s:?} is not RRGGBB");
    }
    u32::from_str_radix(hex, 16).with_context(|| format!("colour {s:?} is not RRGGBB"))
}

/// Parses `NAME=SPEC` of `--add-source`.
pub fn parse_named_source(v: &str) -> Result<(String, InputSpec)> {
    let (name, spec) = v
        .split_once('=')
        .with_context(|| format!("{v:?} is not NAME=SPEC"))?;
    if name.trim().is_empty() {
        bail!("{v:?}: the source needs a name");
    }
    Ok((name.to_string(), InputSpec::parse(spec)?))
}

/// Parses `KEY=VALUE`, the value as [`SetValue::parse`].
pub fn parse_key_value(kv: &str) -> Result<(String, SetValue)> {
    let (k, v) = kv
        .split_once('=')
        .with_context(|| format!("{kv:?} is not KEY=VALUE"))?;
    Ok((k.to_string(), SetValue::parse(v)))
}

fn read_input_list(path: &Path) -> Result<Vec<InputSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --input-list {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(InputSpec::parse)
        .collect()
}

impl TryFrom<Args> for Options {
    type Error = anyhow::Error;

    /// Reads `--input-list` and checks what clap cannot: the combinations of options.
    fn try_from(a: Args) -> Result<Self> {
        let mut inputs = a.inputs;
        if let Some(list) = &a.input_list {
            inputs.extend(read_input_list(list)?);
        }
        let o = Options {
            inputs,
            out: a.out,
            plugin_dir: a.plugin_dir,
            obs_plugins_dir: a.obs_plugins_dir,
            obs_data_dir: a.obs_data_dir,
            filter: if a.no_filter {
                FilterChoice::None
            } else if a.passthrough_filter {
                FilterChoice::Passthrough
            } else {
                FilterChoice::Backdrop
            },
            mode: a.mode,
            background_image: a.background_image,
            background_source: a.background_source,
            background_video: a.background_video,
            effect: a.effect,
            added_sources: a.added_sources,
            remove_added_sources_after_frames: a.remove_added_sources_after_frames,
            locale: a.locale,
            add_scene_with_input: a.add_scene_with_input,
            rename_added_sources_after_frames: a.rename_added_sources_after_frames,
            color: a.color,
            model: a.model,
            sets: a.sets,
            source_sets: a.source_sets,
            webcam_format: a.webcam_format,
            webcam_size: a.webcam_size,
            webcam_fps: a.webcam_fps,
            virtualcam: a.virtualcam,
            views: a.views,
            fps: a.fps,
            canvas: a.canvas,
            frames: a.frames,
            duration: a.duration,
            looping: a.looping,
            record: a.record,
            stills: a.stills,
            schedule_when_shown: a.schedule_when_shown,
            settle: a.settle,
            min_masks: a.min_masks,
            churn: (a.churn_filters, a.churn_sources),
            filter_added_sources: a.filter_added_sources,
            soak: a.soak_period.map(|p| {
                (
                    Duration::from_secs_f64(p),
                    Duration::from_secs_f64(a.soak_warmup),
                )
            }),
            stop_file: a.stop_file,
            settings_file: a.settings_file,
            timeline: a.timeline,
            timeout: Duration::from_secs_f64(a.timeout_s),
            remove_filter_after_frames: a.remove_filter_after_frames,
            settings_storm: a.settings_storm,
            resize_at_frame: a.resize_at_frame,
            resize_image: a.resize_image,
            perf_warmup: Duration::from_secs_f64(a.perf_warmup),
            bare_inference_runs: a.bare_inference_runs,
            count_allocations: a.count_allocations,
            trace_allocations_every: a.trace_allocations_every,
        };
        validate(&o)?;
        Ok(o)
    }
}

/// Parses the arguments after the program name into validated options.
///
/// # Errors
/// clap's (unknown option, bad value, `--help`) or a combination [`Options`] refuses.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Options> {
    let args = Args::try_parse_from(std::iter::once("backdrop-render".to_string()).chain(args))?;
    Options::try_from(args)
}

fn validate(o: &Options) -> Result<()> {
    if o.inputs.is_empty() {
        bail!("no input: give --input or --input-list (see --help)");
    }
    let all_images = o.inputs.iter().all(|i| matches!(i, InputSpec::Image(_)));
    if o.inputs.len() > 1 && !all_images {
        bail!("several inputs are only supported for images");
    }
    if o.inputs.len() > 1 && (o.frames.is_some() || o.duration.is_some() || o.record.is_some()) {
        bail!("--frames/--duration/--record take a single input");
    }
    if o.looping && o.frames.is_none() && o.duration.is_none() && !o.virtualcam {
        bail!("--loop needs --frames, --duration or --virtualcam");
    }
    let webcams = o
        .inputs
        .iter()
        .filter(|i| matches!(i, InputSpec::Webcam(_)))
        .count();
    if webcams > 0 && o.inputs.len() > 1 {
        bail!("a v4l2: input must be the only input");
    }
    if webcams == 0
        && (o.webcam_format.is_some() || o.webcam_size.is_some() || o.webcam_fps.is_some())
    {
        bail!("--webcam-format/--webcam-size/--webcam-fps need a v4l2: input");
    }
    if o.virtualcam && o.inputs.len() > 1 {
        bail!("--virtualcam takes a single input");
    }
    if o.filter == FilterChoice::None
        && (o.remove_filter_after_frames.is_some() || o.settings_storm.is_some())
    {
        bail!("--remove-filter-after-frames/--settings-storm need a filter");
    }
    if let Some(InputSpec::Image(_)) = o.inputs.first() {
        if o.resize_at_frame.is_some() && o.resize_image.is_none() {
            bail!("--resize-at-frame on an image input needs --resize-image PATH");
        }
    }
    if let Some(r) = &o.record {
        if r.extension().and_then(|e| e.to_str()).is_none() {
            bail!("--record needs a file name with an extension, e.g. out.mp4");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_inputs_and_values() {
        let o = parse_args(args(&[
            "--input",
            "a.JPG",
            "--set",
            "threshold=0.5",
            "--set=flag=true",
            "--set",
            "n=3",
            "--set",
            "s=abc",
            "--color",
            "00ff00",
            "--fps=29.97",
        ]))
        .unwrap();
        assert_eq!(o.inputs, vec![InputSpec::Image("a.JPG".into())]);
        assert_eq!(o.sets[0].1, SetValue::Float(0.5));
        assert_eq!(o.sets[1], ("flag".into(), SetValue::Bool(true)));
        assert_eq!(o.sets[2].1, SetValue::Int(3));
        assert_eq!(o.sets[3].1, SetValue::Str("abc".into()));
        assert_eq!(o.color, Some(0x00FF00));
        assert_eq!(
            o.fps,
            Some(Fps {
                num: 30000,
                den: 1001
            })
        );
    }

    #[test]
    fn parses_color_input() {
        assert_eq!(
            InputSpec::parse("color:0x0").unwrap(),
            InputSpec::Color {
                width: 0,
                height: 0,
                argb: 0xFF808080
            }
        );
        assert_eq!(
            InputSpec::parse("color:64x48:FF112233").unwrap(),
            InputSpec::Color {
                width: 64,
                height: 48,
                argb: 0xFF112233
            }
        );
        assert!(InputSpec::parse("color:64").is_err());
    }

    #[test]
    fn parses_webcam_input() {
        let o = parse_args(args(&[
            "--input",
            "v4l2:/dev/video11",
            "--webcam-format",
            "MJPEG",
            "--webcam-size=640x480",
            "--virtualcam",
            "--source-set",
            "buffering=false",
        ]))
        .unwrap();
        assert_eq!(o.inputs, vec![InputSpec::Webcam("/dev/video11".into())]);
        assert_eq!(o.webcam_format, Some(WebcamFormat::Mjpeg));
        assert_eq!(o.webcam_size, Some((640, 480)));
        assert!(o.virtualcam);
        assert_eq!(o.source_sets[0].1, SetValue::Bool(false));
        assert!(InputSpec::parse("v4l2:").is_err());
        assert!(parse_args(args(&["--input", "a.mp4", "--webcam-fps", "30"])).is_err());
    }

    #[test]
    fn defaults_bad_values_and_combinations() {
        let o = parse_args(args(&["--input", "a.mp4"])).unwrap();
        assert_eq!(o.out, PathBuf::from("out"));
        assert_eq!((o.views, o.settle, o.stills), (1, 3, 0));
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(o.filter, FilterChoice::Backdrop);
        for bad in [
            &["--input", "a.mp4", "--views", "9"][..],
            &["--input", "a.mp4", "--duration", "0"],
            &["--input", "a.mp4", "--timeout-s", "-1"],
            &["--input", "a.mp4", "--color", "12345"],
            &["--input", "a.mp4", "--no-filter", "--passthrough-filter"],
            &["--input", "a.mp4", "--bogus"],
            &["--loop", "--input", "a.mp4"],
            &[],
        ] {
            assert!(parse_args(args(bad)).is_err(), "{bad:?}");
        }
        let help = parse_args(args(&["--help"])).unwrap_err();
        let help = help.downcast_ref::<clap::Error>().expect("clap's");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--settings-storm"));
    }
}
