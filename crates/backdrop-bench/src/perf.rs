//! `backdrop-bench perf`: runs the Backdrop filter inside real headless OBS, one
//! `backdrop-render` process per scenario (the host stays the only OBS driver), and prints one
//! markdown report: tables of the measured figures per scenario and resolution, and comparisons
//! made from them (ratios and medians over rounds; figures, no verdicts).
//!
//! Per scenario the host measures over a steady window (see `crates/backdrop-host/src/perf.rs`):
//! process / worker / graphics-thread / llvmpipe CPU, OBS's average frame time, lagged and
//! skipped frames, allocations per thread, the filter's `get_stats`, and the bare
//! `Session::run` of the same model with the same options in the same process.
//!
//! Inputs are made once with the ffmpeg CLI into `OUT/inputs/` from the shared talking-head clip
//! (512x512, 25 fps, 8 s): scaled up to the canvas size *before* OBS (the person fills the
//! height, the sides are padded with a wall-like grey), looped to the run length, played at 30 fps
//! (each source frame once: 1.2x speed, no duplicated frames), light temporal noise like a
//! sensor's; plus a "still person" clip (the first frame held, same noise) and a background image.

use super::cli::PerfOptions;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Canvas and clip frame rate.
pub const FPS: u32 = 30;
/// Temporal noise added to both clips (ffmpeg `noise` filter strength).
const NOISE: &str = "noise=alls=3:allf=t";
/// Padding colour beside the scaled-up square clip (the clip's wall, roughly).
const PAD_COLOR: &str = "0x8a8780";
/// The portrait (shared test data) of the still-person clip.
const STILL_PERSON: u32 = 102;

/// Which clip a scenario plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clip {
    /// The talking head, moving.
    Talking,
    /// Its first frame held, with sensor-like noise.
    Still,
    /// A portrait held still (cut out with its ground-truth mask) in front of a moving
    /// background (ffmpeg's Mandelbrot zoom): a television or a window behind the user.
    StillPersonMovingBackground,
}

/// One scenario: a filter configuration on a clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    /// What the table says.
    pub label: &'static str,
    pub clip: Clip,
    /// `None`: no filter; `Some("passthrough")`: OBS's color filter; else the Backdrop mode.
    pub filter: Option<&'static str>,
    /// Filter settings of this scenario (`--set KEY=VALUE`), before the bench's own `--set`.
    pub settings: &'static [&'static str],
}

impl Scenario {
    pub fn backdrop(&self) -> bool {
        matches!(self.filter, Some(f) if f != "passthrough")
    }
}

/// Every scenario, in table order.
pub const SCENARIOS: [Scenario; 17] = [
    Scenario {
        name: "none",
        label: "no filter",
        clip: Clip::Talking,
        filter: None,
        settings: &[],
    },
    Scenario {
        name: "passthrough",
        label: "pass-through filter",
        clip: Clip::Talking,
        filter: Some("passthrough"),
        settings: &[],
    },
    Scenario {
        name: "blur",
        label: "Backdrop blur",
        clip: Clip::Talking,
        filter: Some("blur"),
        settings: &[],
    },
    Scenario {
        name: "color",
        label: "Backdrop color",
        clip: Clip::Talking,
        filter: Some("color"),
        settings: &[],
    },
    Scenario {
        name: "image",
        label: "Backdrop image",
        clip: Clip::Talking,
        filter: Some("image"),
        settings: &[],
    },
    Scenario {
        name: "transparent",
        label: "Backdrop transparent",
        clip: Clip::Talking,
        filter: Some("transparent"),
        settings: &[],
    },
    Scenario {
        name: "pixelate",
        label: "Backdrop pixelate",
        clip: Clip::Talking,
        filter: Some("pixelate"),
        settings: &[],
    },
    Scenario {
        name: "focal",
        label: "Backdrop focal blur",
        clip: Clip::Talking,
        filter: Some("focal"),
        settings: &[],
    },
    Scenario {
        name: "hologram",
        label: "Backdrop color + hologram",
        clip: Clip::Talking,
        filter: Some("hologram"),
        settings: &[],
    },
    Scenario {
        name: "source",
        label: "Backdrop source (media source)",
        clip: Clip::Talking,
        filter: Some("source"),
        settings: &[],
    },
    Scenario {
        name: "video",
        label: "Backdrop video file",
        clip: Clip::Talking,
        filter: Some("video"),
        settings: &[],
    },
    Scenario {
        name: "blur-still",
        label: "Backdrop blur, still person",
        clip: Clip::Still,
        filter: Some("blur"),
        settings: &[],
    },
    Scenario {
        name: "blur-every",
        label: "Backdrop blur, every frame inferred",
        clip: Clip::Talking,
        filter: Some("blur"),
        settings: &["motion_threshold=0"],
    },
    Scenario {
        name: "blur-warp",
        label: "Backdrop blur, mask warped between inferences",
        clip: Clip::Talking,
        filter: Some("blur"),
        settings: &["motion_warp=true"],
    },
    Scenario {
        name: "blur-stillbg",
        label: "Backdrop blur, still person, moving background",
        clip: Clip::StillPersonMovingBackground,
        filter: Some("blur"),
        settings: &[],
    },
    Scenario {
        name: "blur-stillbg-every",
        label: "Backdrop blur, still person, moving background, every frame inferred",
        clip: Clip::StillPersonMovingBackground,
        filter: Some("blur"),
        settings: &["motion_threshold=0"],
    },
    Scenario {
        name: "blur-remote",
        label: "Backdrop blur, inferred on a Triton server (loopback)",
        clip: Clip::Talking,
        filter: Some("blur"),
        settings: &["inference=remote"],
    },
];

impl Scenario {
    /// Whether it infers on an inference server (the bench starts Triton unless given one).
    pub fn remote(&self) -> bool {
        self.settings.contains(&"inference=remote")
    }
}

/// Scenarios run at 1080p unless `--scenarios` says otherwise.
pub const DEFAULT_1080: [&str; 3] = ["none", "passthrough", "blur"];

/// A canvas size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub width: u32,
    pub height: u32,
}

impl Resolution {
    pub const P720: Resolution = Resolution {
        width: 1280,
        height: 720,
    };
    pub const P1080: Resolution = Resolution {
        width: 1920,
        height: 1080,
    };
    /// `720`, `720p`, `1080`, `1080p` or `WxH`.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim().trim_end_matches('p');
        Ok(match s {
            "720" => Self::P720,
            "1080" => Self::P1080,
            other => {
                let (w, h) = other
                    .split_once(['x', 'X'])
                    .with_context(|| format!("resolution '{other}' is not 720, 1080 or WxH"))?;
                let r = Resolution {
                    width: w.parse().context("resolution width")?,
                    height: h.parse().context("resolution height")?,
                };
                if r.width < 64 || r.height < 64 || r.width % 2 != 0 || r.height % 2 != 0 {
                    bail!("resolution {other}: even sizes of at least 64 px");
                }
                r
            }
        })
    }
    pub fn name(&self) -> String {
        match *self {
            Self::P720 => "720p".into(),
            Self::P1080 => "1080p".into(),
            r => format!("{}x{}", r.width, r.height),
        }
    }
}

/// The server of the `blur-remote` scenario: `--server-url`, else one Triton (build/triton)
/// started on first use and kept for the bench's life.
fn server_url(opts: &PerfOptions) -> Result<Option<String>> {
    static TRITON: std::sync::Mutex<Option<backdrop_testdata::triton::Triton>> =
        std::sync::Mutex::new(None);
    if let Some(u) = &opts.server_url {
        return Ok(Some(u.clone()));
    }
    let wants = opts
        .scenarios
        .as_ref()
        .is_some_and(|l| l.iter().any(|n| n == "blur-remote"));
    if !wants {
        return Ok(None);
    }
    let mut t = TRITON.lock().unwrap_or_else(|e| e.into_inner());
    if t.is_none() {
        std::fs::create_dir_all(&opts.out)?;
        eprintln!("backdrop-bench perf: starting Triton for blur-remote (scripts/triton.sh)");
        let started = backdrop_testdata::triton::Triton::start(&opts.out.join("triton.log"))
            .map_err(anyhow::Error::msg)?;
        *t = Some(started);
    }
    Ok(t.as_ref().map(|t| t.url.clone()))
}

/// The scenarios to run at `res`.
fn scenarios_for(opts: &PerfOptions, res: Resolution) -> Vec<Scenario> {
    SCENARIOS
        .iter()
        .copied()
        .filter(|s| match &opts.scenarios {
            Some(list) => list.iter().any(|n| n == s.name),
            // a server scenario only when named
            None => !s.remote() && (res == Resolution::P720 || DEFAULT_1080.contains(&s.name)),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// The clips and image of one resolution.
struct Inputs {
    talking: PathBuf,
    still: PathBuf,
    still_person: PathBuf,
    background: PathBuf,
}

fn ffmpeg(args: &[String], what: &str) -> Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ffmpeg (install ffmpeg)")?;
    if !out.status.success() {
        bail!(
            "ffmpeg failed making {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Makes `path` with `make(tmp)` unless it exists (written to a temporary name, then renamed).
fn cached(path: &Path, make: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if path.metadata().is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("bin");
    let tmp = path.with_extension(format!("partial.{ext}"));
    make(&tmp)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))
}

fn s(x: impl Into<String>) -> String {
    x.into()
}

/// Scale the square source to the canvas height, pad to the canvas width (or crop when the
/// canvas is narrower than square), add noise, 4:2:0.
fn geometry_filter(res: Resolution) -> String {
    let (w, h) = (res.width, res.height);
    let fit = if w >= h {
        format!("scale={h}:{h}:flags=bicubic,pad={w}:{h}:(ow-iw)/2:0:color={PAD_COLOR}")
    } else {
        format!("scale={w}:{w}:flags=bicubic,pad={w}:{h}:0:(oh-ih)/2:color={PAD_COLOR}")
    };
    format!("{fit},{NOISE},format=yuv420p")
}

const X264: [&str; 8] = [
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "60",
];

fn make_inputs(opts: &PerfOptions, res: Resolution, length_s: u32) -> Result<Inputs> {
    let dir = opts.out.join("inputs");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let fps = opts.fps;
    let tag = if fps == FPS {
        format!("{}x{}_{length_s}s", res.width, res.height)
    } else {
        format!("{}x{}_{length_s}s_{fps}fps", res.width, res.height)
    };
    let inputs = Inputs {
        talking: dir.join(format!("talking_head_{tag}.mp4")),
        still: dir.join(format!("still_{tag}.mp4")),
        still_person: dir.join(format!("still_person_{STILL_PERSON}_{tag}.mp4")),
        background: dir.join(format!("background_{}x{}.png", res.width, res.height)),
    };
    let src = &opts.video;
    if !src.is_file() {
        bail!(
            "source video {} not found (--video, or ../shared/testdata)",
            src.display()
        );
    }
    let geometry = geometry_filter(res);
    let need_talking = !inputs.talking.is_file();
    let need_still = !inputs.still.is_file();
    if need_talking || need_still {
        eprintln!(
            "backdrop-bench perf: making {} inputs ({length_s} s at {fps} fps) in {}",
            res.name(),
            dir.display()
        );
    }
    cached(&inputs.talking, |tmp| {
        // 25 fps source played at `fps` (30: 1.2x speed): every source frame once, none doubled.
        let mut a = vec![s("-stream_loop"), s("-1"), s("-i")];
        a.push(src.display().to_string());
        a.extend([s("-an"), s("-vf")]);
        a.push(format!("setpts=PTS*25/{fps},fps={fps},{geometry}"));
        a.extend(X264.iter().map(|x| s(*x)));
        a.extend([s("-t"), length_s.to_string(), s("-f"), s("mp4")]);
        a.push(tmp.display().to_string());
        ffmpeg(&a, "the talking-head clip")
    })?;
    cached(&inputs.still, |tmp| {
        let frame = dir.join("first_frame.png");
        ffmpeg(
            &[
                s("-i"),
                src.display().to_string(),
                s("-frames:v"),
                s("1"),
                frame.display().to_string(),
            ],
            "the first frame",
        )?;
        let mut a = vec![
            s("-loop"),
            s("1"),
            s("-framerate"),
            fps.to_string(),
            s("-i"),
        ];
        a.push(frame.display().to_string());
        a.extend([s("-an"), s("-vf"), geometry.clone()]);
        a.extend(X264.iter().map(|x| s(*x)));
        a.extend([s("-t"), length_s.to_string(), s("-f"), s("mp4")]);
        a.push(tmp.display().to_string());
        ffmpeg(&a, "the still clip")
    })?;
    cached(&inputs.still_person, |tmp| {
        // The shared test data: video/<clip> beside portraits/{images,masks}.
        let portraits = src
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("portraits"))
            .context("no portraits folder beside the video's folder")?;
        let (w, h) = (res.width, res.height);
        let mut a = vec![s("-f"), s("lavfi"), s("-i")];
        a.push(format!("mandelbrot=size={w}x{h}:rate={fps}"));
        for part in ["images", "masks"] {
            let ext = if part == "images" { "jpg" } else { "png" };
            a.extend([
                s("-loop"),
                s("1"),
                s("-framerate"),
                fps.to_string(),
                s("-i"),
            ]);
            a.push(
                portraits
                    .join(format!("{part}/{STILL_PERSON}.{ext}"))
                    .display()
                    .to_string(),
            );
        }
        // The portrait at the canvas height, centred, cut out by its mask (scaled to the
        // portrait's size: some masks are smaller), over the zoom.
        a.push(s("-filter_complex"));
        a.push(format!(
            "[1]scale=-2:{h}[p];[2][p]scale2ref[m][p2];[m]format=gray[a];[p2][a]alphamerge[fg];\
             [0][fg]overlay=(W-w)/2:H-h,{NOISE},format=yuv420p"
        ));
        a.extend(X264.iter().skip_while(|x| **x != "-c:v").map(|x| s(*x)));
        a.extend([s("-t"), length_s.to_string(), s("-f"), s("mp4")]);
        a.push(tmp.display().to_string());
        ffmpeg(&a, "the still-person clip")
    })?;
    cached(&inputs.background, |tmp| {
        ffmpeg(
            &[
                s("-f"),
                s("lavfi"),
                s("-i"),
                format!("testsrc2=size={}x{}:rate=1", res.width, res.height),
                s("-frames:v"),
                s("1"),
                s("-f"),
                s("image2"),
                tmp.display().to_string(),
            ],
            "the background image",
        )
    })?;
    Ok(inputs)
}

/// Warns when the plugin to be measured is older than this tree's release build of it (a
/// folder installed before the last `cargo build --release` measures old code).
fn warn_if_stale(plugin_so: &Path) {
    let built = crate::quality::root().join("target/release/libobs_backdrop.so");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(installed), Some(built_at)) = (modified(plugin_so), modified(&built)) {
        if installed < built_at {
            eprintln!(
                "WARNING: {} is older than {}: it measures an earlier build \
                 (bash scripts/install-plugin.sh DIR, then --plugin DIR/obs-backdrop)",
                plugin_so.display(),
                built.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runs

/// Figures of one run, read from its `report.json`.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub scenario: Option<Scenario>,
    /// Which round of `--rounds` (1-based; 0 in hand-made rows counts as the first).
    pub round: u32,
    pub res: Option<Resolution>,
    pub error: Option<String>,
    pub wall_s: f64,
    pub output_fps: Option<f64>,
    pub process_cores: Option<f64>,
    pub worker_cores: Option<f64>,
    pub graphics_cores: Option<f64>,
    pub llvmpipe_cores: Option<f64>,
    pub frame_ms: Option<f64>,
    pub frame_ms_p95: Option<f64>,
    pub lagged: Option<f64>,
    pub skipped: Option<f64>,
    pub total_frames: Option<f64>,
    pub mask_age: Option<f64>,
    pub mask_age_max: Option<f64>,
    pub readback: (Option<f64>, Option<f64>),
    pub pre: (Option<f64>, Option<f64>),
    pub inference: (Option<f64>, Option<f64>),
    pub post: (Option<f64>, Option<f64>),
    pub upload: (Option<f64>, Option<f64>),
    pub worker: (Option<f64>, Option<f64>),
    pub render: (Option<f64>, Option<f64>),
    pub bare: (Option<f64>, Option<f64>),
    pub bare_cpu_ms: Option<f64>,
    pub bare_allocs: Option<f64>,
    /// Allocations per bare run through an IoBinding (input and output bound once).
    pub bare_binding_allocs: Option<f64>,
    pub bare_error: Option<String>,
    pub worker_cpu_ms_per_inferred: Option<f64>,
    /// Thread CPU time medians of one inferred frame: (model run, pre + run + post), ms.
    pub step_cpu: (Option<f64>, Option<f64>),
    pub readback_bytes: Option<f64>,
    pub inferred: Option<f64>,
    pub skipped_inference: Option<f64>,
    /// Frames shown with the last mask warped along the person's motion (not inferred).
    pub warped: Option<f64>,
    /// Median thread CPU of one warped frame (motion search + warp), ms.
    pub warp_cpu_ms: Option<f64>,
    pub graphics_loops: Option<f64>,
    pub allocs_graphics_per_loop: Option<f64>,
    pub allocs_graphics_filter_per_loop: Option<f64>,
    pub allocs_graphics_target_per_loop: Option<f64>,
    pub allocs_graphics_direct_per_loop: Option<f64>,
    pub allocs_worker_direct_per_inferred: Option<f64>,
    pub window_s: Option<f64>,
    pub allocs_worker_per_inferred: Option<f64>,
    pub allocs_worker_ort_per_inferred: Option<f64>,
    /// CPU used by every process on the machine during the run (from `/proc/stat`), cores.
    pub machine_cores: Option<f64>,
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

impl Row {
    /// Reads the figures from a host report.
    pub fn from_report(report: &Value) -> Row {
        let perf = report.get("perf").cloned().unwrap_or(Value::Null);
        let stats = perf
            .get("stats_end")
            .filter(|s| !s.is_null())
            .or(report.get("stats"))
            .cloned()
            .unwrap_or(Value::Null);
        let st = |k: &str| f(&stats, &[k]);
        let pair = |k: &str| (st(&format!("{k}_median")), st(&format!("{k}_p95")));
        let bare = perf.get("bare_session_run").cloned().unwrap_or(Value::Null);
        let deltas = perf.get("stats_deltas").cloned().unwrap_or(Value::Null);
        Row {
            output_fps: f(&perf, &["output_fps"]),
            process_cores: f(&perf, &["process_cores"]),
            worker_cores: f(&perf, &["worker_cores"]),
            graphics_cores: f(&perf, &["graphics_thread_cores"]),
            llvmpipe_cores: f(&perf, &["llvmpipe_cores"]),
            frame_ms: f(&perf, &["obs_frame_time_ms_median"]),
            frame_ms_p95: f(&perf, &["obs_frame_time_ms_p95"]),
            lagged: f(&perf, &["lagged_frames"]),
            skipped: f(&perf, &["skipped_frames"]),
            total_frames: f(&perf, &["total_frames"]),
            mask_age: st("mask_age_median"),
            mask_age_max: st("mask_age_max"),
            readback: pair("readback_ms"),
            pre: pair("preprocess_ms"),
            inference: pair("inference_ms"),
            post: pair("postprocess_ms"),
            upload: pair("upload_ms"),
            worker: pair("worker_ms"),
            render: pair("render_ms"),
            bare: (f(&bare, &["ms_median"]), f(&bare, &["ms_p95"])),
            bare_cpu_ms: f(&bare, &["cpu_ms_per_run"]),
            bare_allocs: f(&bare, &["allocations_per_run"]),
            bare_binding_allocs: f(&bare, &["io_binding", "allocations_per_run"]),
            bare_error: bare
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string),
            worker_cpu_ms_per_inferred: f(&perf, &["worker_cpu_ms_per_inferred_frame"]),
            step_cpu: (st("inference_cpu_ms_median"), st("worker_cpu_ms_median")),
            readback_bytes: st("readback_bytes_per_frame"),
            inferred: f(&perf, &["inferred_frames"]),
            skipped_inference: f(&deltas, &["frames_skipped"]),
            warped: f(&deltas, &["frames_warped"]),
            warp_cpu_ms: st("warp_cpu_ms_median"),
            graphics_loops: f(&perf, &["graphics_loops"]),
            allocs_graphics_per_loop: f(&perf, &["allocations", "graphics_per_loop"]),
            allocs_graphics_filter_per_loop: f(
                &perf,
                &["allocations", "graphics_filter_own_per_loop"],
            ),
            allocs_graphics_target_per_loop: f(
                &perf,
                &["allocations", "graphics_drawing_target_per_loop"],
            ),
            allocs_graphics_direct_per_loop: f(
                &perf,
                &["allocations", "graphics_direct_from_plugin_per_loop"],
            ),
            allocs_worker_direct_per_inferred: f(
                &perf,
                &[
                    "allocations",
                    "worker_direct_from_plugin_per_inferred_frame",
                ],
            ),
            window_s: f(&perf, &["window_s"]),
            allocs_worker_per_inferred: f(&perf, &["allocations", "worker_per_inferred_frame"]),
            allocs_worker_ort_per_inferred: f(
                &perf,
                &["allocations", "worker_in_ort_per_inferred_frame"],
            ),
            ..Row::default()
        }
    }
}

/// The `backdrop-render` binary: `--render`, else next to this executable.
fn render_binary(opts: &PerfOptions) -> Result<PathBuf> {
    let path = match &opts.render {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("cannot find this executable's folder")?
            .with_file_name("backdrop-render"),
    };
    if !path.is_file() {
        bail!(
            "{} not found (cargo build --release --bin backdrop-render, or --render PATH)",
            path.display()
        );
    }
    Ok(path)
}

/// Busy and total jiffies of all CPUs, from the first line of `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU used by every process on the machine over the next `over`, cores.
fn machine_busy(over: Duration) -> Option<f64> {
    let (b0, t0) = cpu_jiffies()?;
    std::thread::sleep(over);
    let (b1, t1) = cpu_jiffies()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (t1 > t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64 * cpus)
}

/// `--wait-idle`: waits until the machine's other work uses less than `below` cores (measured
/// over 2 s), at most `limit`; returns the last measurement.
fn wait_idle(below: f64, limit: Duration) -> Option<f64> {
    let t0 = Instant::now();
    let mut said = false;
    loop {
        let busy = machine_busy(Duration::from_secs(2));
        if busy.is_none_or(|b| b < below) || t0.elapsed() > limit {
            return busy;
        }
        if !said {
            eprintln!(
                "backdrop-bench perf:   machine busy ({:.2} cores); waiting for < {below} (at most {} s)",
                busy.unwrap_or(0.0),
                limit.as_secs()
            );
            said = true;
        }
    }
}

/// The 1-minute load average.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs one scenario in its own `backdrop-render` process and reads its report.
fn run_one(
    opts: &PerfOptions,
    render: &Path,
    scenario: Scenario,
    res: Resolution,
    round: u32,
    inputs: &Inputs,
) -> Row {
    let out = opts.out.join("runs").join(run_name(scenario, res, round));
    let mut before = cpu_jiffies();
    let mut result = run_process(opts, render, scenario, res, inputs, &out);
    if let Err(e) = &result {
        // xvfb-run -a can lose a race for a display number to a concurrent one: retry once.
        eprintln!("backdrop-bench perf:   {e:#}; retrying once");
        before = cpu_jiffies();
        result = run_process(opts, render, scenario, res, inputs, &out);
    }
    let machine_cores = match (before, cpu_jiffies()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            Some((b1 - b0) as f64 / (t1 - t0) as f64 * cpus)
        }
        _ => None,
    };
    let wall_s = result.as_ref().map_or(0.0, |(_, w)| *w);
    // What only the bench knows, for `--report-only`.
    let _ = std::fs::write(
        out.join("bench.json"),
        serde_json::json!({"wall_s": wall_s, "machine_cores": machine_cores}).to_string(),
    );
    let mut row = row_of(result.map(|(r, _)| r), scenario, res, wall_s, machine_cores);
    row.round = round;
    row
}

/// Folder of one run under `OUT/runs/`: `<res>_<scenario>`, with `_r<k>` for rounds after the
/// first.
fn run_name(scenario: Scenario, res: Resolution, round: u32) -> String {
    match round {
        0 | 1 => format!("{}_{}", res.name(), scenario.name),
        k => format!("{}_{}_r{k}", res.name(), scenario.name),
    }
}

/// The row of one run from its report (or why there is none).
fn row_of(
    report: Result<Value>,
    scenario: Scenario,
    res: Resolution,
    wall_s: f64,
    machine_cores: Option<f64>,
) -> Row {
    let mut row = match report {
        Ok(report) => {
            let mut row = Row::from_report(&report);
            let errors: Vec<String> = report
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if !errors.is_empty() {
                row.error = Some(errors.join("; "));
            }
            row
        }
        Err(e) => Row {
            error: Some(format!("{e:#}")),
            ..Row::default()
        },
    };
    row.scenario = Some(scenario);
    row.res = Some(res);
    row.wall_s = wall_s;
    row.machine_cores = machine_cores;
    row
}

/// `--report-only`: the row of a run made earlier, from `OUT/runs/<res>_<scenario>[_r<k>]/`.
fn read_run(opts: &PerfOptions, scenario: Scenario, res: Resolution, round: u32) -> Row {
    let dir = opts.out.join("runs").join(run_name(scenario, res, round));
    let report = std::fs::read_to_string(dir.join("report.json"))
        .with_context(|| format!("no earlier run in {}", dir.display()))
        .and_then(|t| serde_json::from_str::<Value>(&t).context("bad report.json"));
    let bench: Value = std::fs::read_to_string(dir.join("bench.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mut row = row_of(
        report,
        scenario,
        res,
        f(&bench, &["wall_s"]).unwrap_or(0.0),
        f(&bench, &["machine_cores"]),
    );
    row.round = round;
    row
}

fn run_process(
    opts: &PerfOptions,
    render: &Path,
    scenario: Scenario,
    res: Resolution,
    inputs: &Inputs,
    out: &Path,
) -> Result<(Value, f64)> {
    let server_url = server_url(opts)?;
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut args: Vec<String> = Vec::new();
    let input = match scenario.clip {
        Clip::Talking => &inputs.talking,
        Clip::Still => &inputs.still,
        Clip::StillPersonMovingBackground => &inputs.still_person,
    };
    args.extend([s("--input"), input.display().to_string()]);
    args.extend([s("--out"), out.display().to_string()]);
    args.extend([s("--plugin"), opts.plugin.display().to_string()]);
    args.extend([s("--fps"), opts.fps.to_string()]);
    args.extend([s("--canvas"), format!("{}x{}", res.width, res.height)]);
    args.extend([s("--loop"), s("--duration"), opts.duration.to_string()]);
    args.extend([s("--perf-warmup"), opts.warmup.to_string()]);
    if opts.count_allocations {
        args.push(s("--count-allocations"));
    }
    match scenario.filter {
        None => args.push(s("--no-filter")),
        Some("passthrough") => args.push(s("--passthrough-filter")),
        Some(mode) => {
            // Backgrounds: the bench's image, and its still clip as a video (as a media source
            // of the scene collection in mode source).
            let clip = inputs.still.display().to_string();
            match mode {
                "hologram" => args.extend([s("--mode"), s("color"), s("--effect"), s(mode)]),
                "source" => args.extend([
                    s("--mode"),
                    s(mode),
                    s("--add-source"),
                    format!("Bench background={clip}"),
                    s("--background-source"),
                    s("Bench background"),
                ]),
                "video" => args.extend([s("--mode"), s(mode), s("--background-video"), clip]),
                _ => args.extend([s("--mode"), s(mode)]),
            }
            if mode == "image" {
                args.extend([
                    s("--background-image"),
                    inputs.background.display().to_string(),
                ]);
            }
            if mode == "color" || mode == "hologram" {
                args.extend([s("--color"), s("00B140")]);
            }
            if opts.bare_runs > 0 {
                args.extend([s("--bare-inference-runs"), opts.bare_runs.to_string()]);
            }
        }
    }
    for kv in scenario.settings {
        args.extend([s("--set"), kv.to_string()]);
    }
    if scenario.remote() {
        if let Some(url) = server_url {
            args.extend([s("--set"), format!("server_url={url}")]);
        }
    }
    for kv in &opts.set {
        if scenario.backdrop() {
            args.extend([s("--set"), kv.clone()]);
        }
    }
    let has_display = std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty());
    let mut cmd = if has_display {
        Command::new(render)
    } else {
        let mut c = Command::new("xvfb-run");
        c.args(["-a", "-s"])
            .arg(format!("-screen 0 {}x{}x24", res.width, res.height))
            .arg(render);
        c
    };
    cmd.args(&args);
    let log = std::fs::File::create(out.join("stdout.txt"))?;
    cmd.stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null());
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| {
        if has_display {
            format!("cannot start {}", render.display())
        } else {
            "cannot start xvfb-run (install xvfb xauth, or set DISPLAY)".to_string()
        }
    })?;
    // The host bounds itself; this is the last resort.
    let limit = Duration::from_secs_f64(opts.duration + 240.0);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("backdrop-render did not end within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall_s = started.elapsed().as_secs_f64();
    let report_path = out.join("report.json");
    let text = std::fs::read_to_string(&report_path).with_context(|| {
        format!(
            "no {} (exit status {status}; see {})",
            report_path.display(),
            out.join("stdout.txt").display()
        )
    })?;
    let report: Value = serde_json::from_str(&text)
        .with_context(|| format!("cannot parse {}", report_path.display()))?;
    Ok((report, wall_s))
}

// ---------------------------------------------------------------------------------------------
// Report

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "n/a".into(),
    }
}

/// `median (p95)` in ms.
fn med_p95(p: (Option<f64>, Option<f64>)) -> String {
    match p {
        (None, _) => "n/a".into(),
        (m, None) => num(m, 2),
        (m, p) => format!("{} ({})", num(m, 2), num(p, 2)),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The scenario's label, with the round when it is not the first.
fn row_label(r: &Row) -> String {
    let label = r.scenario.map_or("?", |s| s.label);
    match r.round {
        0 | 1 => label.to_string(),
        k => format!("{label} (round {k})"),
    }
}

/// Median of the values (NaN-free); `None` when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The main table: one row per scenario and resolution.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    t.push_str(
        "| scenario | res | out fps | cores process | cores worker | cores graphics thread | \
         cores llvmpipe | OBS frame ms med (p95) | lagged / skipped of frames | mask age med / max | \
         readback ms | pre ms | inference ms | post ms | upload ms | worker ms | bare Session::run ms | \
         worker / bare | render ms |\n",
    );
    t.push_str(&"| --- ".repeat(19));
    t.push_str("|\n");
    for r in rows {
        let (Some(sc), Some(res)) = (r.scenario, r.res) else {
            continue;
        };
        if let Some(e) = &r.error {
            if r.process_cores.is_none() {
                let _ = writeln!(
                    t,
                    "| {} | {} | failed: {} |{}",
                    sc.label,
                    res.name(),
                    e.replace('|', "/"),
                    " |".repeat(16)
                );
                continue;
            }
        }
        let bd = sc.backdrop();
        let dash = |v: String| if bd { v } else { "–".into() };
        let _ = writeln!(
            t,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} ({}) | {} / {} of {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row_label(r),
            if r.error.is_some() { " (errors)" } else { "" },
            res.name(),
            num(r.output_fps, 1),
            num(r.process_cores, 2),
            dash(num(r.worker_cores, 3)),
            num(r.graphics_cores, 3),
            num(r.llvmpipe_cores, 2),
            num(r.frame_ms, 1),
            num(r.frame_ms_p95, 1),
            num(r.lagged, 0),
            num(r.skipped, 0),
            num(r.total_frames, 0),
            dash(format!("{} / {}", num(r.mask_age, 0), num(r.mask_age_max, 0))),
            dash(med_p95(r.readback)),
            dash(med_p95(r.pre)),
            dash(med_p95(r.inference)),
            dash(med_p95(r.post)),
            dash(med_p95(r.upload)),
            dash(med_p95(r.worker)),
            dash(med_p95(r.bare)),
            dash(num(ratio(r.worker.0, r.bare.0), 2)),
            dash(med_p95(r.render)),
        );
    }
    t
}

/// Second table: per-frame counts (inference, allocations, bytes, CPU per inferred frame).
pub fn counts_table(rows: &[Row]) -> String {
    let mut t = String::new();
    t.push_str(
        "| scenario | res | machine busy cores (all processes) | graphics loops (rendered frames) | \
         mask age ms (median x loop interval) | frames inferred / kept / warped by the worker | worker CPU ms per inferred frame (warps included) / per warp | \
         worker CPU ms per step, medians: model run / pre + run + post | bare Session::run CPU ms | readback bytes per frame | \
         allocations per graphics loop: whole thread / under the filter / of which drawing its target / by the plugin's code | \
         allocations per inferred frame (worker): all / in ONNX Runtime / by the plugin's code | allocations per bare Session::run |\n",
    );
    t.push_str(&"| --- ".repeat(13));
    t.push_str("|\n");
    for r in rows {
        let (Some(sc), Some(res)) = (r.scenario, r.res) else {
            continue;
        };
        if r.process_cores.is_none() {
            continue;
        }
        let bd = sc.backdrop();
        let dash = |v: String| if bd { v } else { "–".into() };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row_label(r),
            res.name(),
            num(r.machine_cores, 2),
            num(r.graphics_loops, 0),
            dash(num(mask_age_ms(r), 0)),
            dash(format!(
                "{} / {} / {}",
                num(r.inferred, 0),
                num(r.skipped_inference, 0),
                num(r.warped, 0)
            )),
            dash(format!(
                "{} / {}",
                num(r.worker_cpu_ms_per_inferred, 2),
                num(r.warp_cpu_ms, 2)
            )),
            dash(format!(
                "{} / {}",
                num(r.step_cpu.0, 2),
                num(r.step_cpu.1, 2)
            )),
            dash(num(r.bare_cpu_ms, 2)),
            dash(num(r.readback_bytes, 0)),
            if bd {
                format!(
                    "{} / {} / {} / {}",
                    num(r.allocs_graphics_per_loop, 1),
                    num(
                        r.allocs_graphics_filter_per_loop
                            .zip(r.allocs_graphics_target_per_loop)
                            .map(|(a, b)| a + b),
                        1
                    ),
                    num(r.allocs_graphics_target_per_loop, 1),
                    num(r.allocs_graphics_direct_per_loop, 1),
                )
            } else {
                num(r.allocs_graphics_per_loop, 1)
            },
            dash(format!(
                "{} / {} / {}",
                num(r.allocs_worker_per_inferred, 1),
                num(r.allocs_worker_ort_per_inferred, 1),
                num(r.allocs_worker_direct_per_inferred, 1)
            )),
            match (r.bare_allocs, r.bare_binding_allocs) {
                (Some(a), Some(b)) => format!("{a:.1} ({b:.1} through an IoBinding)"),
                (a, _) => dash(num(a, 1)),
            },
        );
    }
    t
}

/// Mask age in ms: the median age in graphics loops times the mean loop interval of the window
/// (when OBS lags, a loop spans several frame intervals).
fn mask_age_ms(r: &Row) -> Option<f64> {
    let loops = r.graphics_loops.filter(|l| *l > 0.0)?;
    Some(r.mask_age? * r.window_s? * 1e3 / loops)
}

/// Frames the graphics thread rendered per second over the window.
fn rendered_fps(r: &Row) -> Option<f64> {
    let w = r.window_s.filter(|w| *w > 0.0)?;
    Some(r.graphics_loops? / w)
}

/// Worker cores scaled to 30 rendered frames a second (the worker's work follows the frames the
/// filter renders; when OBS lags there are fewer).
/// Share of the frames handed to the worker that it inferred (the rest kept for no motion, or
/// warped along it).
fn inferred_share(r: &Row) -> Option<f64> {
    let (inferred, skipped) = (r.inferred?, r.skipped_inference?);
    let all = inferred + skipped + r.warped.unwrap_or(0.0);
    (all > 0.0).then(|| inferred / all)
}

fn worker_cores_at_30(r: &Row) -> Option<f64> {
    let fps = rendered_fps(r).filter(|f| *f > 0.0)?;
    Some(r.worker_cores? * FPS as f64 / fps)
}

/// Figures derived from several rows, at 720p: the worker's cores scaled to 30 rendered frames
/// a second (when OBS lags the filter sees fewer frames), still against moving, and lagged +
/// skipped frames against the pass-through filter (the median over the rounds, which run in
/// turn, and the per-round differences).
pub fn comparisons(all_rounds: &[Row]) -> String {
    let p720 = Resolution::P720;
    let first: Vec<&Row> = all_rounds.iter().filter(|r| r.round <= 1).collect();
    let label = |r: &Row| r.scenario.map_or("?", |s| s.label);
    let mut out = String::new();
    let find_first = |name: &str| {
        first
            .iter()
            .copied()
            .find(|r| r.res == Some(p720) && r.scenario.is_some_and(|s| s.name == name))
    };
    for r in first.iter().filter(|r| {
        r.res == Some(p720) && r.error.is_none() && r.scenario.is_some_and(|s| s.backdrop())
    }) {
        let _ = writeln!(
            out,
            "- {}: worker {} cores at 30 rendered frames/s ({} measured at {} frames/s); \
             worker / bare Session::run {} (wall), {} (CPU)",
            label(r),
            num(worker_cores_at_30(r), 3),
            num(r.worker_cores, 3),
            num(rendered_fps(r), 1),
            num(ratio(r.worker.0, r.bare.0), 2),
            num(ratio(r.worker_cpu_ms_per_inferred, r.bare_cpu_ms), 2),
        );
    }
    // What each background costs the graphics thread: our render work per frame against colour
    // mode (one composite pass, nothing else), medians of the first round.
    let colour_render = find_first("color").and_then(|r| r.render.0);
    let mut costs = Vec::new();
    for sc in SCENARIOS
        .iter()
        .filter(|s| s.backdrop() && s.name != "color")
    {
        if let Some(ms) = find_first(sc.name).and_then(|r| r.render.0) {
            let extra = colour_render.map(|c| ms - c);
            costs.push(format!(
                "{} {} ms ({})",
                sc.name,
                num(Some(ms), 3),
                extra.map_or("n/a".into(), |e| format!("{e:+.3}"))
            ));
        }
    }
    let _ = writeln!(
        out,
        "- render-thread time per frame (median), against colour mode {} ms: {}",
        num(colour_render, 3),
        if costs.is_empty() {
            "n/a".to_string()
        } else {
            costs.join(", ")
        }
    );
    let moving = find_first("blur").and_then(worker_cores_at_30);
    let still = find_first("blur-still").and_then(worker_cores_at_30);
    let _ = writeln!(
        out,
        "- still / moving worker cores (blur): {}",
        num(ratio(still, moving), 2)
    );
    // Motion gating: the gated scenario's worker against inferring every frame, same clip.
    for (gated, every, what) in [
        (
            "blur",
            "blur-every",
            "talking head, motion-gated (defaults)",
        ),
        ("blur-warp", "blur-every", "talking head, gated + warped"),
        (
            "blur-warp",
            "blur",
            "talking head, gated + warped against gated alone",
        ),
        (
            "blur-stillbg",
            "blur-stillbg-every",
            "still person, moving background",
        ),
    ] {
        let (g, e) = (find_first(gated), find_first(every));
        let cores = |r: Option<&Row>| r.and_then(worker_cores_at_30);
        let _ = writeln!(
            out,
            "- worker cores, {gated} / {every} ({what}): {} ({} / {} cores at 30 fps; \
             inferred {} / {} of the frames)",
            num(ratio(cores(g), cores(e)), 2),
            num(cores(g), 3),
            num(cores(e), 3),
            num(g.and_then(inferred_share), 2),
            num(e.and_then(inferred_share), 2),
        );
    }
    let per_round = |name: &str| -> Vec<(u32, f64)> {
        all_rounds
            .iter()
            .filter(|r| {
                r.res == Some(p720)
                    && r.error.is_none()
                    && r.scenario.is_some_and(|s| s.name == name)
            })
            .filter_map(|r| Some((r.round.max(1), r.lagged? + r.skipped?)))
            .collect()
    };
    let pass = per_round("passthrough");
    let pass_median = median(pass.iter().map(|x| x.1).collect());
    let _ = writeln!(
        out,
        "- lagged + skipped frames at 720p, median over the rounds: pass-through {}",
        num(pass_median, 0)
    );
    for sc in SCENARIOS.iter().filter(|s| s.backdrop()) {
        let mine = per_round(sc.name);
        if mine.is_empty() {
            continue;
        }
        let diffs: Vec<String> = mine
            .iter()
            .filter_map(|(k, x)| {
                let p = pass.iter().find(|(pk, _)| pk == k)?.1;
                Some(format!("{:+.0}", x - p))
            })
            .collect();
        let _ = writeln!(
            out,
            "  - {}: {} (minus pass-through, round by round: {})",
            sc.label,
            num(median(mine.iter().map(|x| x.1).collect()), 0),
            diffs.join(", ")
        );
    }
    out
}

/// Runs every scenario and prints the report (progress on stderr).
pub fn run(opts: &PerfOptions) -> Result<()> {
    let wall = Instant::now();
    let render = match opts.report_only {
        true => opts
            .render
            .clone()
            .unwrap_or_else(|| "backdrop-render".into()),
        false => render_binary(opts)?,
    };
    let needs_plugin = opts
        .resolutions
        .iter()
        .any(|r| scenarios_for(opts, *r).iter().any(Scenario::backdrop));
    let plugin_so = opts.plugin.join("bin/64bit/obs-backdrop.so");
    if needs_plugin && !plugin_so.is_file() && !opts.report_only {
        bail!(
            "plugin not found: {} (scripts/setup.sh or scripts/install-plugin.sh, or --plugin DIR)",
            plugin_so.display()
        );
    }
    if needs_plugin && !opts.report_only {
        warn_if_stale(&plugin_so);
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    // The clips run a little longer than the run, so a loop restart never falls in the window.
    let length_s = (opts.duration + opts.warmup + 8.0).ceil() as u32;

    let load_before = loadavg();
    let mut rows = Vec::new();
    let total: usize = opts
        .resolutions
        .iter()
        .map(|r| scenarios_for(opts, *r).len())
        .sum::<usize>()
        * opts.rounds as usize;
    let mut done = 0;
    for round in 1..=opts.rounds {
        for &res in &opts.resolutions {
            let list = scenarios_for(opts, res);
            if list.is_empty() {
                continue;
            }
            if opts.report_only {
                rows.extend(list.into_iter().map(|sc| read_run(opts, sc, res, round)));
                continue;
            }
            let inputs = make_inputs(opts, res, length_s)?;
            for sc in list {
                done += 1;
                eprintln!(
                    "backdrop-bench perf: [{done}/{total}] {} {}{} ({} s)...",
                    res.name(),
                    sc.label,
                    if opts.rounds > 1 {
                        format!(", round {round}")
                    } else {
                        String::new()
                    },
                    opts.duration
                );
                if let Some(below) = opts.wait_idle {
                    wait_idle(below, Duration::from_secs(600));
                }
                let row = run_one(opts, &render, sc, res, round, &inputs);
                if let Some(e) = &row.error {
                    eprintln!("backdrop-bench perf:   error: {e}");
                }
                if let Some(e) = &row.bare_error {
                    eprintln!("backdrop-bench perf:   bare Session::run: {e}");
                }
                eprintln!(
                "backdrop-bench perf:   {:.0} s; process {} cores, worker {}, OBS frame {} ms, lagged {}",
                row.wall_s,
                num(row.process_cores, 2),
                num(row.worker_cores, 3),
                num(row.frame_ms, 1),
                num(row.lagged, 0)
            );
                rows.push(row);
            }
        }
    }

    let mut md = String::new();
    let _ = writeln!(md, "# backdrop-bench perf\n");
    let _ = writeln!(md, "- command: `{}`", super::command_line());
    if opts.report_only {
        let _ = writeln!(
            md,
            "- **report only**: the figures of the runs already in {} (their own settings; the lines below describe this command's)",
            opts.out.join("runs").display()
        );
    }
    let _ = writeln!(md, "- {}", super::machine_line());
    let plugin_time = plugin_so
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or("?".into(), |d| super::utc(d.as_secs()));
    let _ = writeln!(
        md,
        "- plugin: {} (modified {plugin_time}); host: {}",
        plugin_so.display(),
        render.display()
    );
    let _ = writeln!(
        md,
        "- each scenario: its own backdrop-render process, canvas = video size, {} fps, {} s; figures over the steady window from {} s after the first frame to the end; filter stage figures are the filter's own rolling medians (last 300 samples); bare Session::run: {} runs paced at the frame interval after the window, the scene still running{}",
        opts.fps,
        opts.duration,
        opts.warmup,
        opts.bare_runs,
        if opts.count_allocations {
            "; allocations counted per thread, and one in 64 on the graphics and worker threads stack-traced to attribute them (estimates)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "- input: {} scaled up before OBS (to the canvas height, sides padded), {} fps, light noise; still clip = its first frame held",
        opts.video.display(),
        opts.fps
    );
    let _ = writeln!(
        md,
        "- 1-minute load average before the runs {}, after {} (2 cores; other work on the machine shows in the \"machine busy\" column)",
        num(load_before, 2),
        num(loadavg(), 2)
    );
    if opts.duration < 20.0 {
        let _ = writeln!(
            md,
            "- **short run ({} s): figures are indicative only**",
            opts.duration
        );
    }
    let _ = writeln!(md, "\n## Figures\n");
    md.push_str(&table(&rows));
    let _ = writeln!(
        md,
        "\nCores = CPU seconds per wall second over the window. `worker / bare` = worker_ms median over \
         the bare Session::run median. ms cells: median (p95). n/a: not reported; –: not applicable.\n"
    );
    md.push_str(&counts_table(&rows));
    let _ = writeln!(md, "\n## Comparisons\n");
    md.push_str(&comparisons(&rows));
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let e = r.error.as_ref().or(r.bare_error.as_ref())?;
            Some(format!(
                "{} {}: {e}",
                r.res.map_or("?".into(), |x| x.name()),
                r.scenario.map_or("?", |s| s.label)
            ))
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Errors\n");
        for f in &failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    let _ = writeln!(
        md,
        "\nTotal wall time: {:.0} s; per-run reports in {}.",
        wall.elapsed().as_secs_f64(),
        opts.out.join("runs").display()
    );
    print!("{md}");
    let md_path = opts.out.join("perf.md");
    std::fs::write(&md_path, &md).with_context(|| format!("cannot write {}", md_path.display()))?;
    eprintln!("backdrop-bench perf: report also in {}", md_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_parse() {
        assert_eq!(Resolution::parse("720").unwrap(), Resolution::P720);
        assert_eq!(Resolution::parse("1080p").unwrap(), Resolution::P1080);
        assert_eq!(
            Resolution::parse("640x360").unwrap(),
            Resolution {
                width: 640,
                height: 360
            }
        );
        assert!(Resolution::parse("wide").is_err());
        assert!(Resolution::parse("641x360").is_err());
    }

    #[test]
    fn rows_read_reports_and_missing_fields_are_na() {
        let report = serde_json::json!({
            "perf": {
                "process_cores": 1.25, "worker_cores": 0.1, "lagged_frames": 3, "skipped_frames": 0,
                "total_frames": 900,
                "stats_end": {"worker_ms_median": 6.0, "worker_ms_p95": 9.0, "mask_age_median": 2.0},
                "bare_session_run": {"ms_median": 5.0, "ms_p95": 6.0},
            }
        });
        let r = Row::from_report(&report);
        assert_eq!(r.process_cores, Some(1.25));
        assert_eq!(r.worker, (Some(6.0), Some(9.0)));
        assert_eq!(ratio(r.worker.0, r.bare.0), Some(1.2));
        assert_eq!(r.readback, (None, None));
        assert_eq!(med_p95(r.readback), "n/a");
        assert_eq!(med_p95(r.worker), "6.00 (9.00)");
    }

    #[test]
    fn comparisons_from_rows() {
        let sc = |n: &str| SCENARIOS.iter().copied().find(|s| s.name == n);
        let row = |n: &str, worker_cores: f64, lagged: f64| Row {
            scenario: sc(n),
            res: Some(Resolution::P720),
            process_cores: Some(1.0),
            worker_cores: Some(worker_cores),
            lagged: Some(lagged),
            skipped: Some(0.0),
            worker: (Some(6.0), None),
            bare: (Some(5.0), None),
            mask_age: Some(2.0),
            // 15 rendered frames/s: the worker's cores count double at 30.
            window_s: Some(28.0),
            graphics_loops: Some(420.0),
            ..Row::default()
        };
        let rows = vec![
            row("passthrough", 0.0, 5.0),
            row("blur", 0.05, 4.0),
            row("blur-still", 0.025, 4.0),
        ];
        let c = comparisons(&rows);
        assert!(
            c.contains("worker 0.100 cores at 30 rendered frames/s (0.050 measured at 15.0"),
            "{c}"
        );
        assert!(c.contains("worker / bare Session::run 1.20 (wall)"), "{c}");
        assert!(
            c.contains("still / moving worker cores (blur): 0.50"),
            "{c}"
        );
        let t = table(&rows);
        assert_eq!(t.lines().count(), 2 + rows.len());

        // Rounds: lagged frames compare medians; the other figures keep the first round.
        let in_round = |mut r: Row, k: u32| {
            r.round = k;
            r
        };
        let rounds = vec![
            in_round(row("passthrough", 0.0, 50.0), 1),
            in_round(row("blur", 0.05, 40.0), 1),
            in_round(row("passthrough", 0.0, 10.0), 2),
            in_round(row("blur", 0.5, 90.0), 2),
            in_round(row("passthrough", 0.0, 30.0), 3),
            in_round(row("blur", 0.05, 20.0), 3),
        ];
        let c = comparisons(&rounds);
        assert!(c.contains("pass-through 30"), "{c}");
        assert!(
            c.contains("Backdrop blur: 40 (minus pass-through, round by round: -10, +80, -10)"),
            "{c}"
        );
        assert!(c.contains("0.050 measured"), "{c}");
        assert!(!c.contains("0.500 measured"), "{c}");
        assert!(table(&rounds).contains("| Backdrop blur (round 3) |"));
    }
}
