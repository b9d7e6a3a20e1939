//! Command-line options of `backdrop-render`, parsed by hand (no CLI crate).
//!
//! Every option accepts both `--name value` and `--name=value`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Usage text printed by `--help`.
pub const USAGE: &str = "\
backdrop-render: headless OBS host for the obs-backdrop filter (demo and end-to-end test driver).
Runs under an X display (e.g. `xvfb-run -a backdrop-render ...`).

USAGE:
    backdrop-render --input SPEC [--input SPEC ...] [OPTIONS]

INPUT:
    --input SPEC            image (.png .jpg .jpeg .bmp), video file, color:WxH[:AARRGGBB], or
                            v4l2:/dev/videoN (a webcam, through OBS's own v4l2_input)
                            (repeatable; several images are processed one after another)
    --webcam-format F       v4l2 inputs: yuyv or mjpeg (default: the device's current format;
                            mjpeg is read as full range)
    --webcam-size WxH       v4l2 inputs: capture size (default: the device's current size)
    --webcam-fps N          v4l2 inputs: capture frame rate (default: the device's current rate)
    --source-set KEY=VALUE  any setting of the input source (e.g. buffering=false for v4l2);
                            VALUE parsed as for --set (repeatable)
    --input-list FILE       one input SPEC per line (blank lines and # comments ignored)

OUTPUT:
    --out DIR               output folder (default: out); gets obs.log and report.json
    --record FILE.mp4       record the filtered output (obs_x264 CRF 18 + ffmpeg_aac, ffmpeg_muxer)
    --stills N              write N side-by-side PNGs (original | result) spread over the run,
                            OUT/still_0001.png ...
    --virtualcam            send the output to OBS's virtual camera (virtualcam_output of the
                            linux-v4l2 module: the first free v4l2loopback device, YUY2 at the
                            canvas size); stopped and released at the end of the run
    --views N               draw the filtered source N times per frame (1-8; output channels
                            0..N-1 of the main view), as a projector or studio mode's second
                            view draws it (default 1)

FILTER:
    --plugin DIR            plugin folder with bin/64bit/obs-backdrop.so and data/
                            (default: build/plugin/obs-backdrop)
    --no-filter             run without any filter
    --passthrough-filter    use OBS's own color_filter_v2 at defaults (identity) instead of the
                            backdrop filter, for comparison
    --mode MODE             blur | image | color | transparent          (setting \"mode\")
    --background-image PATH background image                            (setting \"image_path\")
    --color RRGGBB          background colour                           (setting \"color\", 0xAABBGGRR)
    --model ID              e.g. selfie_general, selfie_landscape       (setting \"model\")
    --set KEY=VALUE         any filter setting; VALUE parsed as int, float, bool, else string
                            (repeatable)

TIMING:
    --fps FPS               canvas frame rate: 30, 29.97 or 30000/1001 (default: the video's own
                            rate from ffprobe, else 30)
    --canvas WxH            canvas size (default: the input's size)
    --frames N              stop after N captured output frames
    --duration SECONDS      stop after this long
    --loop                  loop video inputs (needs --frames, --duration or --virtualcam)
    --settle N              image inputs: wait for N new masks (or N frames without the filter's
                            stats) before taking the result (default 3)
    --timeout-s SECONDS     bound on every wait (default 30)

PERFORMANCE (report.json \"perf\"; run mode):
    --perf-warmup SECONDS   the steady window starts this long after the first output frame
                            (default 2); CPU per process and per thread, OBS frame time, lagged
                            and skipped frames and the filter's stats are taken over the window
    --bare-inference-runs N after the window, time N bare Session::run calls of the filter's
                            model (plugin's data/models, same session options) on one frame of
                            the input, paced at the frame interval while the scene keeps
                            running, then N through an IoBinding (default 0: off)
    --count-allocations     count malloc/calloc/realloc/memalign calls per thread over the
                            window (the graphics thread's and the worker's per frame), and
                            attribute those of the graphics and worker threads to the plugin /
                            ONNX Runtime / libobs+Mesa from sampled stack traces
    --trace-allocations-every N   one stack trace per N allocations on those threads (default
                            64; 1 traces all: exact, but ~2 ms more CPU per inferred frame)

FAULT INJECTION (robustness tests):
    --remove-filter-after-frames N   remove and release the filter after N frames, then keep
                                     capturing for at least 1 s
    --settings-storm N               one obs_source_update with varying settings per output
                                     frame for N frames (from frame 5), then one restoring
                                     the settings
    --resize-at-frame F:WxH          at frame F resize a color: input to WxH, or switch an image
                                     input to --resize-image
    --resize-image PATH              image used by --resize-at-frame for image inputs

OBS:
    --obs-plugins-dir DIR   system OBS module binaries (default /usr/lib/x86_64-linux-gnu/obs-plugins)
    --obs-data-dir DIR      system OBS module data (default /usr/share/obs/obs-plugins)
    -h, --help              print this help

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
    fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "yuyv" | "yuy2" => Ok(WebcamFormat::Yuyv),
            "mjpeg" | "mjpg" => Ok(WebcamFormat::Mjpeg),
            _ => bail!("--webcam-format {s:?}: want yuyv or mjpeg"),
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
    pub settle: u64,
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

impl Default for Options {
    fn default() -> Self {
        Options {
            inputs: Vec::new(),
            out: PathBuf::from("out"),
            plugin_dir: PathBuf::from("build/plugin/obs-backdrop"),
            obs_plugins_dir: PathBuf::from("/usr/lib/x86_64-linux-gnu/obs-plugins"),
            obs_data_dir: PathBuf::from("/usr/share/obs/obs-plugins"),
            filter: FilterChoice::Backdrop,
            mode: None,
            background_image: None,
            color: None,
            model: None,
            sets: Vec::new(),
            source_sets: Vec::new(),
            webcam_format: None,
            webcam_size: None,
            webcam_fps: None,
            virtualcam: false,
            views: 1,
            fps: None,
            canvas: None,
            frames: None,
            duration: None,
            looping: false,
            record: None,
            stills: 0,
            settle: 3,
            timeout: Duration::from_secs(30),
            remove_filter_after_frames: None,
            settings_storm: None,
            resize_at_frame: None,
            resize_image: None,
            perf_warmup: Duration::from_secs(2),
            bare_inference_runs: 0,
            count_allocations: false,
            trace_allocations_every: 64,
        }
    }
}

/// Result of argument parsing.
pub enum Parsed {
    /// Run with these options.
    Run(Box<Options>),
    /// `--help` was given.
    Help,
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

fn parse_rgb(s: &str) -> Result<u32> {
    let hex = s.trim_start_matches('#');
    if hex.len() != 6 {
        bail!("colour {s:?} is not RRGGBB");
    }
    u32::from_str_radix(hex, 16).with_context(|| format!("colour {s:?} is not RRGGBB"))
}

fn parse_key_value(option: &str, kv: &str) -> Result<(String, SetValue)> {
    let (k, v) = kv
        .split_once('=')
        .with_context(|| format!("{option} {kv:?} is not KEY=VALUE"))?;
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

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Parsed> {
    let mut o = Options::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        // Fetches the option's value: inline after '=' or the next argument.
        let mut value = |what: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .with_context(|| format!("{name} needs a value ({what})")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--input" => o.inputs.push(InputSpec::parse(&value("SPEC")?)?),
            "--input-list" => o
                .inputs
                .extend(read_input_list(Path::new(&value("FILE")?))?),
            "--out" => o.out = value("DIR")?.into(),
            "--record" => o.record = Some(value("FILE.mp4")?.into()),
            "--stills" => o.stills = value("N")?.parse().context("--stills")?,
            "--plugin" => o.plugin_dir = value("DIR")?.into(),
            "--no-filter" => o.filter = FilterChoice::None,
            "--passthrough-filter" => o.filter = FilterChoice::Passthrough,
            "--mode" => o.mode = Some(value("MODE")?),
            "--background-image" => o.background_image = Some(value("PATH")?.into()),
            "--color" => o.color = Some(parse_rgb(&value("RRGGBB")?)?),
            "--model" => o.model = Some(value("ID")?),
            "--set" => o.sets.push(parse_key_value(&name, &value("KEY=VALUE")?)?),
            "--source-set" => o
                .source_sets
                .push(parse_key_value(&name, &value("KEY=VALUE")?)?),
            "--webcam-format" => o.webcam_format = Some(WebcamFormat::parse(&value("F")?)?),
            "--webcam-size" => o.webcam_size = Some(parse_size(&value("WxH")?)?),
            "--webcam-fps" => {
                let n: u32 = value("N")?.parse().context("--webcam-fps")?;
                if n == 0 {
                    bail!("--webcam-fps must be > 0");
                }
                o.webcam_fps = Some(n);
            }
            "--virtualcam" => o.virtualcam = true,
            "--views" => {
                let n: u32 = value("N")?.parse().context("--views")?;
                if !(1..=8).contains(&n) {
                    bail!("--views must be 1 to 8");
                }
                o.views = n;
            }
            "--fps" => o.fps = Some(Fps::parse(&value("FPS")?)?),
            "--canvas" => o.canvas = Some(parse_size(&value("WxH")?)?),
            "--frames" => o.frames = Some(value("N")?.parse().context("--frames")?),
            "--duration" => {
                let d: f64 = value("SECONDS")?.parse().context("--duration")?;
                if !(d.is_finite() && d > 0.0) {
                    bail!("--duration must be > 0");
                }
                o.duration = Some(d);
            }
            "--loop" => o.looping = true,
            "--settle" => o.settle = value("N")?.parse().context("--settle")?,
            "--timeout-s" => {
                let t: f64 = value("SECONDS")?.parse().context("--timeout-s")?;
                if !(t.is_finite() && t > 0.0) {
                    bail!("--timeout-s must be > 0");
                }
                o.timeout = Duration::from_secs_f64(t);
            }
            "--remove-filter-after-frames" => {
                o.remove_filter_after_frames = Some(value("N")?.parse().context(name.clone())?)
            }
            "--settings-storm" => {
                o.settings_storm = Some(value("N")?.parse().context("--settings-storm")?)
            }
            "--resize-at-frame" => {
                let v = value("F:WxH")?;
                let (f, size) = v
                    .split_once(':')
                    .with_context(|| format!("--resize-at-frame {v:?} is not F:WxH"))?;
                let (w, h) = parse_size(size)?;
                o.resize_at_frame = Some((f.parse().context("--resize-at-frame frame")?, w, h));
            }
            "--resize-image" => o.resize_image = Some(value("PATH")?.into()),
            "--perf-warmup" => {
                let t: f64 = value("SECONDS")?.parse().context("--perf-warmup")?;
                if !(t.is_finite() && t >= 0.0) {
                    bail!("--perf-warmup must be >= 0");
                }
                o.perf_warmup = Duration::from_secs_f64(t);
            }
            "--bare-inference-runs" => {
                o.bare_inference_runs = value("N")?.parse().context("--bare-inference-runs")?
            }
            "--count-allocations" => o.count_allocations = true,
            "--trace-allocations-every" => {
                let n: u64 = value("N")?.parse().context("--trace-allocations-every")?;
                if n == 0 {
                    bail!("--trace-allocations-every must be >= 1");
                }
                o.trace_allocations_every = n;
            }
            "--obs-plugins-dir" => o.obs_plugins_dir = value("DIR")?.into(),
            "--obs-data-dir" => o.obs_data_dir = value("DIR")?.into(),
            other => bail!("unknown option {other:?} (see --help)"),
        }
    }
    validate(&o)?;
    Ok(Parsed::Run(Box::new(o)))
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
        let Parsed::Run(o) = parse_args(args(&[
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
        .unwrap() else {
            panic!()
        };
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
        let Parsed::Run(o) = parse_args(args(&[
            "--input",
            "v4l2:/dev/video11",
            "--webcam-format",
            "MJPEG",
            "--webcam-size=640x480",
            "--virtualcam",
            "--source-set",
            "buffering=false",
        ]))
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.inputs, vec![InputSpec::Webcam("/dev/video11".into())]);
        assert_eq!(o.webcam_format, Some(WebcamFormat::Mjpeg));
        assert_eq!(o.webcam_size, Some((640, 480)));
        assert!(o.virtualcam);
        assert_eq!(o.source_sets[0].1, SetValue::Bool(false));
        assert!(InputSpec::parse("v4l2:").is_err());
        assert!(parse_args(args(&["--input", "a.mp4", "--webcam-fps", "30"])).is_err());
    }
}
