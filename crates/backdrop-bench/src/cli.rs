//! Command-line options of `backdrop-bench`, parsed by hand (no CLI crate). Every option takes
//! `--name value` or `--name=value`.

use super::downscale::Resample;
use super::perf::{Resolution, SCENARIOS};
use super::quality::root;
use super::synthetic;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

pub const USAGE: &str = "\
backdrop-bench: measurements of the obs-backdrop pipeline outside OBS.

USAGE:
    backdrop-bench quality [OPTIONS]
    backdrop-bench perf [OPTIONS]

`quality` runs the plugin's own mask pipeline (GPU-downscale twin -> Model::infer ->
mask::refine::Refiner -> mask::refine::composite_alpha) on the shared test data and prints one
markdown table, a row per configuration: mean IoU and boundary F-score on the 96 portraits,
IoU and temporal flicker on synthetic videos with exact ground truth, flicker on real videos,
and the refinement's median time per frame.

OPTIONS:
    --model ID            model by manifest id, looked up in build/models/ (BACKDROP_MODELS
                          overrides) and models/thirdparty/ (repeatable; default selfie_general)
    --manifest PATH       model by manifest file; a relative \"file\" is looked up next to the
                          manifest, then in <testdata>/models/thirdparty/ (repeatable)
    --sections LIST       comma-separated: portraits,synthetic,video (default: all three)
    --sweep               also run the guided-filter grid (radius 2/4/8 x eps 1e-3/1e-2/1e-1)
    --write-masks DIR     write alpha PNGs (grey) of the first portraits and a few frames of
                          each video, per configuration, plus inputs and ground truth
    --set KEY=VALUE       override a field of the `defaults` row (the filter's own defaults;
                          repeatable): threshold, softness, temporal_smoothing, expand_px,
                          min_blob_fraction, guided_radius (0 = off), guided_eps, aspect
                          (roi | stretch | letterbox); the filter's keys edge_softness,
                          mask_expand, min_blob_percent, edge_radius too
    --resample MODE       frame -> model input: gpu (default; CPU twin of the effect's
                          PSDownscale) | fir-bilinear (fast_image_resize bilinear convolution)
    --noise SIGMA         Gaussian noise on the synthetic videos, 8-bit levels (default 3)
    --limit N             at most N portraits and N frames per video (quick smoke runs; the
                          figures are then not comparable)
    --testdata DIR        test data folder (default: BACKDROP_TESTDATA, else ../shared/testdata)
    -h, --help            this text

`perf` runs the filter inside real headless OBS: one backdrop-render process per scenario (no
filter, OBS's pass-through color filter, Backdrop blur / color / image / transparent, Backdrop
blur on a still person) and resolution (all at 720p; no filter, pass-through and blur at
1080p), 30 fps, canvas = video size, and prints one markdown report (also OUT/perf.md): CPU of
the process, the worker and the graphics thread, OBS's frame time, lagged and skipped frames,
mask age, the filter's per-stage medians (p95), the bare Session::run of the same model in the
same process, allocations per frame, and the issue's bars computed from them. Needs ffmpeg,
xvfb-run (unless DISPLAY is set), the plugin folder and backdrop-render. See docs/performance.md.

PERF OPTIONS:
    --duration SECONDS    length of each run (default 30)
    --quick               8 s runs and 100 bare runs (development; figures indicative only)
    --warmup SECONDS      excluded from the start of each run (default 2)
    --resolutions LIST    comma-separated: 720, 1080 or WxH (default 720,1080)
    --scenarios LIST      comma-separated, run at every resolution: none, passthrough, blur,
                          color, image, transparent, blur-still (default: all at 720p,
                          none,passthrough,blur at 1080p)
    --bare-runs N         bare Session::run calls per Backdrop run (default 200; 0 = off)
    --no-allocations      do not count allocations per thread
    --rounds N            run the whole scenario list N times in turn (default 1); the lagged
                          frames bar then compares medians over the rounds
    --report-only         run nothing: print the report of the runs already in OUT/runs
    --wait-idle CORES     before each run, wait (at most 10 min) until the rest of the machine
                          uses less than CORES cores (measured over 2 s)
    --set KEY=VALUE       a Backdrop filter setting for every Backdrop run (repeatable)
    --plugin DIR          plugin folder (default build/plugin/obs-backdrop)
    --render PATH         backdrop-render binary (default: next to this binary)
    --video PATH          source clip (default <testdata>/video/talking_head_a.mp4)
    --out DIR             inputs, per-run reports and perf.md (default target/perf)
";

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
}

#[derive(Clone, Debug, PartialEq)]
pub struct PerfOptions {
    pub duration: f64,
    pub warmup: f64,
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
    pub plugin: PathBuf,
    pub render: Option<PathBuf>,
    pub video: PathBuf,
    pub out: PathBuf,
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Help,
    Quality(QualityOptions),
    Perf(PerfOptions),
}

fn parse_seconds(name: &str, v: &str, min: f64) -> Result<f64> {
    v.parse()
        .ok()
        .filter(|t: &f64| t.is_finite() && *t >= min)
        .with_context(|| format!("{name}: '{v}' is not a number of seconds >= {min}"))
}

/// Parses the options after `perf`.
fn parse_perf(args: impl Iterator<Item = String>) -> Result<Parsed> {
    let testdata = std::env::var_os("BACKDROP_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/testdata"));
    let mut o = PerfOptions {
        duration: 30.0,
        warmup: 2.0,
        resolutions: vec![Resolution::P720, Resolution::P1080],
        scenarios: None,
        bare_runs: 200,
        count_allocations: true,
        wait_idle: None,
        rounds: 1,
        report_only: false,
        set: Vec::new(),
        plugin: root().join("build/plugin/obs-backdrop"),
        render: None,
        video: testdata.join("video/talking_head_a.mp4"),
        out: root().join("target/perf"),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .with_context(|| format!("{name} needs a value ({what})")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--duration" => o.duration = parse_seconds(&name, &value("seconds")?, 1.0)?,
            "--quick" => {
                o.duration = 8.0;
                o.bare_runs = o.bare_runs.min(100);
            }
            "--warmup" => o.warmup = parse_seconds(&name, &value("seconds")?, 0.0)?,
            "--resolutions" => {
                o.resolutions = value("a list")?
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(Resolution::parse)
                    .collect::<Result<_>>()?;
                if o.resolutions.is_empty() {
                    bail!("--resolutions names no resolution");
                }
            }
            "--scenarios" => {
                let list: Vec<String> = value("a list")?
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
                    bail!("--scenarios names no scenario");
                }
                o.scenarios = Some(list);
            }
            "--bare-runs" => {
                let v = value("a count")?;
                o.bare_runs = v
                    .parse()
                    .with_context(|| format!("--bare-runs: '{v}' is not a count"))?;
            }
            "--no-allocations" => o.count_allocations = false,
            "--report-only" => o.report_only = true,
            "--rounds" => {
                let v = value("a count")?;
                o.rounds = v
                    .parse()
                    .ok()
                    .filter(|n: &u32| *n >= 1)
                    .with_context(|| format!("--rounds: '{v}' is not a count >= 1"))?;
            }
            "--wait-idle" => {
                let v = value("cores")?;
                o.wait_idle = Some(
                    v.parse()
                        .ok()
                        .filter(|c: &f64| c.is_finite() && *c > 0.0)
                        .with_context(|| {
                            format!("--wait-idle: '{v}' is not a number of cores > 0")
                        })?,
                );
            }
            "--set" => {
                let kv = value("key=value")?;
                if !kv.contains('=') {
                    bail!("--set '{kv}' is not KEY=VALUE");
                }
                o.set.push(kv);
            }
            "--plugin" => o.plugin = value("a folder")?.into(),
            "--render" => o.render = Some(value("a path")?.into()),
            "--video" => o.video = value("a path")?.into(),
            "--out" => o.out = value("a folder")?.into(),
            other => bail!("unknown option '{other}'"),
        }
    }
    if o.warmup >= o.duration {
        bail!(
            "--warmup ({} s) must be shorter than --duration ({} s)",
            o.warmup,
            o.duration
        );
    }
    Ok(Parsed::Perf(o))
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

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        None | Some("-h") | Some("--help") | Some("help") => return Ok(Parsed::Help),
        Some("quality") => {}
        Some("perf") => return parse_perf(args),
        Some(other) => bail!("unknown command '{other}' (`quality` or `perf`)"),
    }
    let mut o = QualityOptions {
        models: Vec::new(),
        sections: Sections {
            portraits: true,
            synthetic: true,
            video: true,
        },
        sweep: false,
        write_masks: None,
        set: Vec::new(),
        resample: Resample::Gpu,
        noise: synthetic::DEFAULT_NOISE,
        limit: None,
        testdata: None,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .with_context(|| format!("{name} needs a value ({what})")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--model" => o.models.push(ModelRef::Id(value("a manifest id")?)),
            "--manifest" => o.models.push(ModelRef::Manifest(value("a path")?.into())),
            "--sections" => o.sections = parse_sections(&value("a list")?)?,
            "--sweep" => o.sweep = true,
            "--write-masks" => o.write_masks = Some(value("a folder")?.into()),
            "--set" => o.set.push(value("key=value")?),
            "--resample" => o.resample = Resample::parse(&value("gpu | fir-bilinear")?)?,
            "--noise" => {
                let v = value("levels")?;
                o.noise = v
                    .parse()
                    .ok()
                    .filter(|n: &f32| n.is_finite() && *n >= 0.0)
                    .with_context(|| format!("--noise: '{v}' is not a level >= 0"))?;
            }
            "--limit" => {
                let v = value("a count")?;
                o.limit = Some(
                    v.parse()
                        .ok()
                        .filter(|n: &usize| *n > 0)
                        .with_context(|| format!("--limit: '{v}' is not a count > 0"))?,
                );
            }
            "--testdata" => o.testdata = Some(value("a folder")?.into()),
            other => bail!("unknown option '{other}'"),
        }
    }
    if o.models.is_empty() {
        o.models.push(ModelRef::Id("selfie_general".into()));
    }
    Ok(Parsed::Quality(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_help() {
        assert_eq!(parse(&[]).unwrap(), Parsed::Help);
        assert_eq!(parse(&["quality", "--help"]).unwrap(), Parsed::Help);
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
