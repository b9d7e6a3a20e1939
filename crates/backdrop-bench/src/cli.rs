//! Command-line options of `backdrop-bench` ([`Cli`], parsed by clap) and the checked options
//! of each subcommand made from them.

use super::downscale::Resample;
use super::perf::{Resolution, SCENARIOS};
use super::quality::root;
use super::synthetic;
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// backdrop-bench: measurements of the obs-backdrop pipeline, printed as figures.
#[derive(Parser, Debug)]
#[command(name = "backdrop-bench")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The measurements.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the plugin's own mask pipeline (GPU-downscale twin -> Model::infer ->
    /// mask::refine::Refiner -> mask::refine::composite_alpha) on the shared test data and
    /// prints one markdown table, a row per configuration: mean IoU and boundary F-score on the
    /// 96 portraits, IoU and temporal flicker on synthetic videos with exact ground truth,
    /// flicker on real videos, and the refinement's median time per frame.
    Quality(QualityArgs),
    /// Runs the filter inside real headless OBS: one backdrop-render process per scenario (no
    /// filter, OBS's pass-through color filter, Backdrop in each background mode and the
    /// hologram, Backdrop blur on a still person) and resolution, 30 fps, canvas = video size, and prints
    /// one markdown report (also OUT/perf.md): CPU of the process, the worker and the graphics
    /// thread, OBS's frame time, lagged and skipped frames, mask age, the filter's per-stage
    /// medians (p95), the bare Session::run of the same model in the same process, allocations
    /// per frame, and comparisons made from them. Needs ffmpeg, xvfb-run (unless DISPLAY is
    /// set), the plugin folder and backdrop-render. See docs/performance.md.
    Perf(PerfArgs),
    /// Runs the filter's inference-server client against a real Triton (build/triton, started
    /// on free loopback ports unless --url is given) on a real video, frame by frame beside the
    /// local model, and prints one markdown table: round trip (median, p95), client CPU per
    /// frame, bytes each way and the bandwidth of a 30 fps stream, for the UINT8 and the FP32
    /// payload, and the largest difference from the local model's mask.
    Remote(RemoteArgs),
}

/// Options of `remote`.
#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// frames sent per path
    #[arg(long, value_name = "N", default_value_t = 300)]
    frames: usize,
    /// model id (build/models/ID.json; the server serves ID and ID_fp32)
    #[arg(long, value_name = "ID", default_value = "selfie_general")]
    model: String,
    /// a running server's base URL instead of starting build/triton
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// deadline per request, ms
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u32,
    /// video (default: the talking head of the shared test data)
    #[arg(long, value_name = "FILE")]
    video: Option<PathBuf>,
    /// N clients at once (UINT8 model only): per-stream round trip and frames answered per
    /// second in all, e.g. against a dynamic-batching repository (models/convert.py
    /// --max-batch-size)
    #[arg(long, value_name = "N", default_value_t = 1)]
    streams: usize,
    /// with --streams: each client sends at this rate (0: back to back)
    #[arg(long, value_name = "FPS", default_value_t = 30)]
    fps: u32,
}

/// The checked options of `remote`.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteOptions {
    pub frames: usize,
    pub model: String,
    pub url: Option<String>,
    pub timeout_ms: u32,
    pub video: PathBuf,
    pub streams: usize,
    pub fps: u32,
}

impl From<RemoteArgs> for RemoteOptions {
    fn from(a: RemoteArgs) -> Self {
        Self {
            frames: a.frames.max(1),
            model: a.model,
            url: a.url,
            timeout_ms: a.timeout_ms.max(1),
            streams: a.streams.max(1),
            fps: a.fps,
            video: a.video.unwrap_or_else(|| {
                backdrop_testdata::testdata_dir().join("video/talking_head_a.mp4")
            }),
        }
    }
}

/// Options of `quality`.
#[derive(Args, Debug)]
pub struct QualityArgs {
    /// model by manifest id, looked up in build/models/ (BACKDROP_MODELS overrides) and
    /// models/thirdparty/ (repeatable; default selfie_general)
    #[arg(long = "model", value_name = "ID")]
    models: Vec<String>,
    /// model by manifest file; a relative "file" is looked up next to the manifest, then in
    /// <testdata>/models/thirdparty/ (repeatable)
    #[arg(long = "manifest", value_name = "PATH")]
    manifests: Vec<PathBuf>,
    /// comma-separated: portraits,synthetic,video (default: all three)
    #[arg(long, value_name = "LIST", value_parser = parse_sections)]
    sections: Option<Sections>,
    /// also run the guided-filter grid (radius 2/4/8 x eps 1e-3/1e-2/1e-1)
    #[arg(long)]
    sweep: bool,
    /// write alpha PNGs (grey) of the first portraits and a few frames of each video, per
    /// configuration, plus inputs and ground truth
    #[arg(long, value_name = "DIR")]
    write_masks: Option<PathBuf>,
    /// override a field of the `defaults` row (the filter's own defaults; repeatable):
    /// threshold, softness, temporal_smoothing, expand_px, min_blob_fraction, guided_radius
    /// (0 = off), guided_eps, aspect (roi | stretch | letterbox); the filter's keys
    /// edge_softness, mask_expand, min_blob_percent, edge_radius too
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// frame -> model input: gpu (CPU twin of the effect's PSDownscale) | fir-bilinear
    /// (fast_image_resize bilinear convolution)
    #[arg(long, value_name = "MODE", default_value = "gpu", value_parser = Resample::parse)]
    resample: Resample,
    /// Gaussian noise on the synthetic videos, 8-bit levels
    #[arg(long, value_name = "SIGMA", default_value_t = synthetic::DEFAULT_NOISE, value_parser = non_negative_f32)]
    noise: f32,
    /// at most N portraits and N frames per video (quick smoke runs; the figures are then not
    /// comparable)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// test data folder (default: BACKDROP_TESTDATA, else ../shared/testdata)
    #[arg(long, value_name = "DIR")]
    testdata: Option<PathBuf>,
    /// test-time augmentation: run the model also on the horizontally mirrored input and
    /// average the two masks (mirrored back); twice the inference
    #[arg(long)]
    flip_average: bool,
}

/// Options of `perf`.
#[derive(Args, Debug)]
pub struct PerfArgs {
    /// length of each run, s (default 30; 8 with --quick)
    #[arg(long, value_name = "SECONDS", value_parser = |s: &str| seconds(s, 1.0))]
    duration: Option<f64>,
    /// 8 s runs and at most 100 bare runs (development; figures indicative only)
    #[arg(long)]
    quick: bool,
    /// excluded from the start of each run, s
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = |s: &str| seconds(s, 0.0))]
    warmup: f64,
    /// comma-separated: 720, 1080 or WxH
    #[arg(long, value_name = "LIST", default_value = "720,1080", value_parser = parse_resolutions)]
    resolutions: Resolutions,
    /// comma-separated, run at every resolution: none, passthrough, blur, color, image,
    /// transparent, pixelate, focal, hologram, source, video, blur-still, blur-every (every
    /// frame inferred), blur-warp (the mask warped between inferences), blur-stillbg (a still
    /// person over a moving background),
    /// blur-stillbg-every, blur-remote (inferred on a Triton server; only when named)
    /// (default: all but blur-remote at 720p, none,passthrough,blur at 1080p)
    #[arg(long, value_name = "LIST", value_parser = parse_scenarios)]
    scenarios: Option<Scenarios>,
    /// bare Session::run calls per Backdrop run (0 = off)
    #[arg(long, value_name = "N", default_value_t = 200)]
    bare_runs: u32,
    /// do not count allocations per thread
    #[arg(long)]
    no_allocations: bool,
    /// run the whole scenario list N times in turn; lagged frames are then compared as medians
    /// over the rounds
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// run nothing: print the report of the runs already in OUT/runs
    #[arg(long)]
    report_only: bool,
    /// before each run, wait (at most 10 min) until the rest of the machine uses less than
    /// CORES cores (measured over 2 s)
    #[arg(long, value_name = "CORES", value_parser = |s: &str| seconds(s, f64::MIN_POSITIVE))]
    wait_idle: Option<f64>,
    /// a Backdrop filter setting for every Backdrop run (repeatable)
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    set: Vec<String>,
    /// the inference server of blur-remote (default: start build/triton on free loopback
    /// ports for the bench's life)
    #[arg(long, value_name = "URL")]
    server_url: Option<String>,
    /// canvas and clip frame rate (each source frame of the talking head shown once). Below
    /// 30, a machine that cannot draw 30 frames a second (software rendering) still shows the
    /// worker every source frame in turn, as a real 30 fps canvas would; the worker's cores
    /// are also reported scaled to 30 frames a second
    #[arg(long, value_name = "FPS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    fps: u32,
    /// plugin folder (default build/plugin/obs-backdrop)
    #[arg(long, value_name = "DIR")]
    plugin: Option<PathBuf>,
    /// backdrop-render binary (default: next to this binary)
    #[arg(long, value_name = "PATH")]
    render: Option<PathBuf>,
    /// source clip (default <testdata>/video/talking_head_a.mp4)
    #[arg(long, value_name = "PATH")]
    video: Option<PathBuf>,
    /// inputs, per-run reports and perf.md (default target/perf)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// A non-negative finite number.
fn non_negative_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number >= 0")),
    }
}

/// A finite number of at least `min`.
fn seconds(s: &str, min: f64) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= min => Ok(v),
        _ => Err(format!("{s:?} is not a number >= {min}")),
    }
}

fn key_value(s: &str) -> Result<String, String> {
    if s.contains('=') {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not KEY=VALUE"))
    }
}

/// `--resolutions` (a newtype: clap treats a `Vec` field as a repeated option).
#[derive(Clone, Debug)]
pub struct Resolutions(Vec<Resolution>);

/// `--scenarios`.
#[derive(Clone, Debug)]
pub struct Scenarios(Vec<String>);

fn parse_resolutions(list: &str) -> Result<Resolutions> {
    let v: Vec<Resolution> = list
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(Resolution::parse)
        .collect::<Result<_>>()?;
    if v.is_empty() {
        bail!("names no resolution");
    }
    Ok(Resolutions(v))
}

fn parse_scenarios(list: &str) -> Result<Scenarios> {
    let list: Vec<String> = list
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    for n in &list {
        if !SCENARIOS.iter().any(|s| s.name == n) {
            let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
            bail!("unknown scenario '{n}' ({})", names.join(", "));
        }
    }
    if list.is_empty() {
        bail!("names no scenario");
    }
    Ok(Scenarios(list))
}

#[derive(Clone, Debug, PartialEq)]
pub enum ModelRef {
    Id(String),
    Manifest(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    pub portraits: bool,
    pub synthetic: bool,
    pub video: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct QualityOptions {
    pub models: Vec<ModelRef>,
    pub sections: Sections,
    pub sweep: bool,
    pub write_masks: Option<PathBuf>,
    pub set: Vec<String>,
    pub resample: Resample,
    pub noise: f32,
    pub limit: Option<usize>,
    pub testdata: Option<PathBuf>,
    pub flip_average: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PerfOptions {
    pub duration: f64,
    pub warmup: f64,
    /// Canvas frame rate and the clips' (the talking head shows each source frame once).
    pub fps: u32,
    pub resolutions: Vec<Resolution>,
    /// Scenario names (`None`: the defaults per resolution).
    pub scenarios: Option<Vec<String>>,
    pub bare_runs: u32,
    pub count_allocations: bool,
    /// Wait before each run until other work uses less than this many cores.
    pub wait_idle: Option<f64>,
    /// `--rounds`: how many times the scenario list runs, in turn (>= 1).
    pub rounds: u32,
    /// Run nothing; report the runs already in `OUT/runs`.
    pub report_only: bool,
    pub set: Vec<String>,
    /// The server of `blur-remote` (`None`: the bench starts build/triton).
    pub server_url: Option<String>,
    pub plugin: PathBuf,
    pub render: Option<PathBuf>,
    pub video: PathBuf,
    pub out: PathBuf,
}

fn parse_sections(list: &str) -> Result<Sections> {
    let mut s = Sections {
        portraits: false,
        synthetic: false,
        video: false,
    };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "portraits" => s.portraits = true,
            "synthetic" => s.synthetic = true,
            "video" => s.video = true,
            other => bail!("unknown section '{other}' (portraits, synthetic, video)"),
        }
    }
    if !(s.portraits || s.synthetic || s.video) {
        bail!("--sections names no section");
    }
    Ok(s)
}

impl From<QualityArgs> for QualityOptions {
    fn from(a: QualityArgs) -> Self {
        let mut models: Vec<ModelRef> = a.models.into_iter().map(ModelRef::Id).collect();
        models.extend(a.manifests.into_iter().map(ModelRef::Manifest));
        if models.is_empty() {
            models.push(ModelRef::Id("selfie_general".into()));
        }
        QualityOptions {
            models,
            sections: a.sections.unwrap_or(Sections {
                portraits: true,
                synthetic: true,
                video: true,
            }),
            sweep: a.sweep,
            write_masks: a.write_masks,
            set: a.set,
            resample: a.resample,
            noise: a.noise,
            limit: a.limit.map(|n| n as usize),
            testdata: a.testdata,
            flip_average: a.flip_average,
        }
    }
}

impl TryFrom<PerfArgs> for PerfOptions {
    type Error = anyhow::Error;

    /// Fills the defaults that depend on the repository and checks warmup < duration.
    fn try_from(a: PerfArgs) -> Result<Self> {
        let testdata = backdrop_testdata::testdata_dir();
        let duration = a.duration.unwrap_or(if a.quick { 8.0 } else { 30.0 });
        if a.warmup >= duration {
            bail!(
                "--warmup ({} s) must be shorter than --duration ({duration} s)",
                a.warmup
            );
        }
        Ok(PerfOptions {
            duration,
            warmup: a.warmup,
            fps: a.fps,
            resolutions: a.resolutions.0,
            scenarios: a.scenarios.map(|s| s.0),
            bare_runs: if a.quick {
                a.bare_runs.min(100)
            } else {
                a.bare_runs
            },
            count_allocations: !a.no_allocations,
            wait_idle: a.wait_idle,
            rounds: a.rounds,
            report_only: a.report_only,
            set: a.set,
            server_url: a.server_url,
            plugin: a
                .plugin
                .unwrap_or_else(|| root().join("build/plugin/obs-backdrop")),
            render: a.render,
            video: a
                .video
                .unwrap_or_else(|| testdata.join("video/talking_head_a.mp4")),
            out: a.out.unwrap_or_else(|| root().join("target/perf")),
        })
    }
}

/// The subcommand to run, with its checked options.
#[derive(Debug)]
pub enum Parsed {
    Quality(QualityOptions),
    Perf(PerfOptions),
    Remote(RemoteOptions),
}

/// Parses the arguments after the program name (what `main` does with clap's `parse`, as a
/// `Result` for the tests).
#[cfg(test)]
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed> {
    let cli = Cli::try_parse_from(std::iter::once("backdrop-bench".to_string()).chain(args))?;
    parsed(cli)
}

/// The checked options of a parsed command line.
///
/// # Errors
/// `perf`'s warmup is not shorter than its duration.
pub fn parsed(cli: Cli) -> Result<Parsed> {
    Ok(match cli.command {
        Command::Quality(a) => Parsed::Quality(a.into()),
        Command::Perf(a) => Parsed::Perf(a.try_into()?),
        Command::Remote(a) => Parsed::Remote(a.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_help() {
        assert!(parse(&[]).is_err(), "a command is required");
        let help = parse(&["quality", "--help"]).unwrap_err();
        let help = help.downcast_ref::<clap::Error>().expect("clap's");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--write-masks"));
        let Parsed::Quality(o) = parse(&["quality"]).unwrap() else {
            panic!()
        };
        assert_eq!(o.models, vec![ModelRef::Id("selfie_general".into())]);
        assert!(o.sections.portraits && o.sections.synthetic && o.sections.video);
        assert_eq!(o.resample, Resample::Gpu);
        assert!(!o.sweep);
    }

    #[test]
    fn options_in_both_forms() {
        let Parsed::Quality(o) = parse(&[
            "quality",
            "--model=meet",
            "--manifest",
            "models/thirdparty/sinet.json",
            "--sections",
            "portraits,video",
            "--sweep",
            "--set",
            "guided_radius=8",
            "--set=softness=0.2",
            "--write-masks",
            "out/m",
            "--resample=fir-bilinear",
            "--noise",
            "0",
            "--limit",
            "5",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            o.models,
            vec![
                ModelRef::Id("meet".into()),
                ModelRef::Manifest("models/thirdparty/sinet.json".into())
            ]
        );
        assert!(o.sections.portraits && !o.sections.synthetic && o.sections.video);
        assert!(o.sweep);
        assert_eq!(o.set, vec!["guided_radius=8", "softness=0.2"]);
        assert_eq!(o.write_masks, Some(PathBuf::from("out/m")));
        assert_eq!(o.resample, Resample::FirBilinear);
        assert_eq!((o.noise, o.limit), (0.0, Some(5)));
    }

    #[test]
    fn perf_options() {
        let Parsed::Perf(o) = parse(&["perf"]).unwrap() else {
            panic!()
        };
        assert_eq!((o.duration, o.warmup, o.bare_runs), (30.0, 2.0, 200));
        assert_eq!(o.resolutions, vec![Resolution::P720, Resolution::P1080]);
        assert!(o.count_allocations && o.scenarios.is_none());
        let Parsed::Perf(o) = parse(&[
            "perf",
            "--quick",
            "--resolutions=720",
            "--scenarios",
            "none,blur-still",
            "--no-allocations",
            "--set",
            "motion_threshold=0",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!((o.duration, o.bare_runs), (8.0, 100));
        assert_eq!(o.resolutions, vec![Resolution::P720]);
        assert_eq!(
            o.scenarios,
            Some(vec!["none".to_string(), "blur-still".to_string()])
        );
        assert!(!o.count_allocations);
        assert!(parse(&["perf", "--scenarios", "fast"]).is_err());
        assert!(parse(&["perf", "--duration", "2", "--warmup", "3"]).is_err());
        assert!(parse(&["perf", "--perf"]).is_err());
    }

    #[test]
    fn errors_are_reported() {
        assert!(parse(&["speed"]).is_err());
        assert!(parse(&["quality", "--sections", "faces"]).is_err());
        assert!(parse(&["quality", "--model"]).is_err());
        assert!(parse(&["quality", "--limit", "0"]).is_err());
        assert!(parse(&["quality", "--noise", "-1"]).is_err());
        assert!(parse(&["quality", "--bogus"]).is_err());
    }
}
