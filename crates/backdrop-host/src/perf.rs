//! Performance figures of a run (`report.json` → `"perf"`), measured over a steady window: from
//! `--perf-warmup` seconds after the first output frame to the end of the run.
//!
//! - CPU time: the whole process (`CLOCK_PROCESS_CPUTIME_ID`) and every thread
//!   (`/proc/self/task/<tid>/comm` for its name, the thread's CPU clock for its time; the
//!   `stat` utime+stime ticks when that clock cannot be read), as cores = CPU s / wall s.
//!   The plugin's worker is the thread named `backdrop-worker`; libobs names its graphics thread
//!   `libobs: graphics thread` (the kernel keeps 15 bytes: `libobs: graphic`).
//! - OBS's own counters: `obs_get_average_frame_time_ns` (libobs averages the graphics loop's
//!   work per frame, sleeping excluded, over about one second; sampled every 250 ms over the
//!   window), lagged and total graphics frames, and the video output's skipped frames.
//! - The filter's `get_stats` at both ends of the window (counters as deltas).
//! - With `--count-allocations`: allocations per thread over the window (see `alloc_count`).
//! - With `--bare-inference-runs N`: the bare `Session::run` of the filter's model with the
//!   filter's session options, timed N times on this thread while the scene keeps running.

use crate::alloc_count;
use crate::capture::CAPTURE;
use crate::cli::{InputSpec, Options, SetValue};
use crate::sources::Chain;
use backdrop_obs::sys;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Comm of the plugin's worker threads (see `crates/backdrop-core/src/segmentation/worker.rs`).
pub const WORKER_COMM: &str = "backdrop-worker";
/// Prefix of libobs's graphics thread comm (`libobs: graphics thread`, cut to 15 bytes).
pub const GRAPHICS_COMM_PREFIX: &str = "libobs: graphic";
/// How often OBS's average frame time is sampled.
const FRAME_TIME_EVERY: Duration = Duration::from_millis(250);
/// Filter stats counters reported as deltas over the window.
const STAT_COUNTERS: [&str; 9] = [
    "masks_published",
    "frames_rendered",
    "frames_dropped",
    "mask_frames",
    "frames_inferred",
    "frames_skipped",
    "frames_warped",
    "frames_confirmed",
    "readback_frames",
];

/// CPU time of one thread, and its page faults and context switches.
#[derive(Clone, Debug, Default)]
struct ThreadCpu {
    tid: u32,
    comm: String,
    cpu_s: f64,
    /// Minor page faults (`stat` field 10).
    minflt: u64,
    /// Voluntary and involuntary context switches (`status`).
    vcsw: u64,
    nvcsw: u64,
}

/// Everything read at one end of the window.
struct Snapshot {
    at: Instant,
    process_cpu_s: f64,
    threads: Vec<ThreadCpu>,
    allocs: Vec<(u32, u64)>,
    lagged: u32,
    total: u32,
    skipped: u32,
    video_total: u32,
    output_frames: u64,
    stats: Option<Value>,
}

fn clock_s(clock: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

/// CPU clock id of thread `tid` of this process: `MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`
/// from the kernel's `posix-timers.h` (what `pthread_getcpuclockid` returns, for any tid).
fn thread_clock(tid: u32) -> libc::clockid_t {
    ((!(tid as libc::clockid_t)) << 3) | 6
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (utime + stime in s at tick resolution, minor faults) of `/proc/self/task/<tid>/stat`.
fn stat_of(tid: u32) -> Option<(f64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the comm's closing parenthesis start at field 3 (state): minflt is field
    // 10, utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let minflt: u64 = f.get(7)?.parse().ok()?;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some(((utime + stime) / ticks_per_s(), minflt))
}

/// (voluntary, involuntary) context switches of a thread, from its `status`.
fn context_switches(tid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

fn threads() -> Vec<ThreadCpu> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm"))
            .map(|s| s.trim_end_matches('\n').to_string())
            .unwrap_or_default();
        let stat = stat_of(tid);
        let cpu_s = clock_s(thread_clock(tid)).or(stat.map(|s| s.0));
        let (vcsw, nvcsw) = context_switches(tid);
        if let Some(cpu_s) = cpu_s {
            out.push(ThreadCpu {
                tid,
                comm,
                cpu_s,
                minflt: stat.map_or(0, |s| s.1),
                vcsw,
                nvcsw,
            });
        }
    }
    out.sort_by_key(|t| t.tid);
    out
}

fn snapshot(chain: &Chain) -> Snapshot {
    let at = Instant::now();
    // SAFETY: plain libobs getters, valid while libobs runs.
    let (lagged, total, skipped, video_total) = unsafe {
        let video = sys::obs_get_video();
        (
            sys::obs_get_lagged_frames(),
            sys::obs_get_total_frames(),
            if video.is_null() {
                0
            } else {
                sys::video_output_get_skipped_frames(video)
            },
            if video.is_null() {
                0
            } else {
                sys::video_output_get_total_frames(video)
            },
        )
    };
    Snapshot {
        at,
        process_cpu_s: clock_s(libc::CLOCK_PROCESS_CPUTIME_ID).unwrap_or(0.0),
        threads: threads(),
        allocs: if alloc_count::enabled() {
            alloc_count::counts()
        } else {
            Vec::new()
        },
        lagged,
        total,
        skipped,
        video_total,
        output_frames: CAPTURE.frames(),
        stats: chain.stats(),
    }
}

/// Groups a thread name: trailing digits and separators become `*` (`llvmpipe-0` → `llvmpipe-*`).
fn group_of(comm: &str) -> String {
    let trimmed = comm.trim_end_matches(|c: char| c.is_ascii_digit());
    if trimmed.len() == comm.len() || trimmed.is_empty() {
        comm.to_string()
    } else {
        format!("{trimmed}*")
    }
}

fn quantile_sorted(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let idx = (q.clamp(0.0, 1.0) * (v.len() - 1) as f64).round() as usize;
    Some(v[idx])
}

/// The measurement of one run: call [`Window::poll`] from the run loop and [`Window::finish`]
/// right after it.
pub struct Window {
    warmup: Duration,
    run_start: Option<Snapshot>,
    start: Option<Snapshot>,
    frame_time_ms: Vec<f64>,
    last_sample: Option<Instant>,
}

impl Window {
    pub fn new(warmup: Duration) -> Self {
        Window {
            warmup,
            run_start: None,
            start: None,
            frame_time_ms: Vec::new(),
            last_sample: None,
        }
    }

    /// Call once the first output frames flow (`elapsed` = time since capture started).
    pub fn poll(&mut self, chain: &Chain, elapsed: Duration) {
        if self.run_start.is_none() {
            self.run_start = Some(snapshot(chain));
        }
        if self.start.is_none() && elapsed >= self.warmup {
            let start = snapshot(chain);
            if alloc_count::enabled() {
                let graphics = start
                    .threads
                    .iter()
                    .find(|t| t.comm.starts_with(GRAPHICS_COMM_PREFIX))
                    .map(|t| t.tid);
                let workers: Vec<u32> = start
                    .threads
                    .iter()
                    .filter(|t| t.comm == WORKER_COMM)
                    .map(|t| t.tid)
                    .collect();
                alloc_count::watch(
                    graphics,
                    &workers,
                    alloc_count::mapped_range("/obs-backdrop.so"),
                    alloc_count::mapped_range(backdrop_core::segmentation::runtime::LIBRARY_NAME),
                );
            }
            self.start = Some(start);
            self.last_sample = Some(Instant::now());
            return;
        }
        if self.start.is_some()
            && self
                .last_sample
                .is_none_or(|t| t.elapsed() >= FRAME_TIME_EVERY)
        {
            self.last_sample = Some(Instant::now());
            // SAFETY: plain libobs getter.
            let ns = unsafe { sys::obs_get_average_frame_time_ns() };
            if ns > 0 {
                self.frame_time_ms.push(ns as f64 / 1e6);
            }
        }
    }

    /// Takes the end snapshot and returns the `"perf"` JSON object.
    pub fn finish(mut self, chain: &Chain) -> Value {
        let end = snapshot(chain);
        let attributed = alloc_count::unwatch();
        let includes_warmup = self.start.is_none();
        let Some(start) = self.start.take().or(self.run_start.take()) else {
            return json!({"error": "the run ended before any measurement"});
        };
        let wall = (end.at - start.at).as_secs_f64().max(1e-9);
        let cores = |cpu: f64| cpu / wall;

        // Threads: delta per tid (a thread born inside the window counts from 0).
        let before: BTreeMap<u32, f64> = start.threads.iter().map(|t| (t.tid, t.cpu_s)).collect();
        let before_t: BTreeMap<u32, &ThreadCpu> =
            start.threads.iter().map(|t| (t.tid, t)).collect();
        // (minor faults, voluntary, involuntary switches) over the window of matching threads.
        let events_of = |pred: &dyn Fn(&str) -> bool| -> (u64, u64, u64) {
            let mut sum = (0, 0, 0);
            for t in end.threads.iter().filter(|t| pred(&t.comm)) {
                let b = before_t.get(&t.tid).copied().cloned().unwrap_or_default();
                sum.0 += t.minflt.saturating_sub(b.minflt);
                sum.1 += t.vcsw.saturating_sub(b.vcsw);
                sum.2 += t.nvcsw.saturating_sub(b.nvcsw);
            }
            sum
        };
        let mut per_thread = Vec::new();
        let mut groups: BTreeMap<String, (f64, u32)> = BTreeMap::new();
        for t in &end.threads {
            let d = (t.cpu_s - before.get(&t.tid).copied().unwrap_or(0.0)).max(0.0);
            let g = groups.entry(group_of(&t.comm)).or_insert((0.0, 0));
            g.0 += d;
            g.1 += 1;
            per_thread.push(json!({"tid": t.tid, "comm": t.comm, "cores": cores(d)}));
        }
        // Threads that ended inside the window: their time after `start` is lost (reported).
        let ended: Vec<&ThreadCpu> = start
            .threads
            .iter()
            .filter(|s| !end.threads.iter().any(|t| t.tid == s.tid))
            .collect();
        let cpu_of = |pred: &dyn Fn(&str) -> bool| -> Option<f64> {
            let mut any = false;
            let mut sum = 0.0;
            for t in &end.threads {
                if pred(&t.comm) {
                    any = true;
                    sum += (t.cpu_s - before.get(&t.tid).copied().unwrap_or(0.0)).max(0.0);
                }
            }
            any.then_some(sum)
        };
        // Threads the worker starts inherit its name (ONNX Runtime starts one): all count.
        let worker_threads = end.threads.iter().filter(|t| t.comm == WORKER_COMM).count();
        let worker_cpu_s = cpu_of(&|c| c == WORKER_COMM);
        let worker_cores = worker_cpu_s.map(cores);
        let graphics_cores = cpu_of(&|c| c.starts_with(GRAPHICS_COMM_PREFIX)).map(cores);
        let llvmpipe_cores = cpu_of(&|c| c.starts_with("llvmpipe")).map(cores);
        let worker_events = events_of(&|c| c == WORKER_COMM);
        let graphics_events = events_of(&|c| c.starts_with(GRAPHICS_COMM_PREFIX));
        let groups_json: Map<String, Value> = groups
            .into_iter()
            .map(|(k, (cpu, n))| (k, json!({"cores": cores(cpu), "threads": n})))
            .collect();

        // Filter stats: counters as deltas.
        let mut stat_deltas = Map::new();
        if let (Some(a), Some(b)) = (&start.stats, &end.stats) {
            for key in STAT_COUNTERS {
                if let (Some(x), Some(y)) = (
                    a.get(key).and_then(Value::as_f64),
                    b.get(key).and_then(Value::as_f64),
                ) {
                    stat_deltas.insert(key.to_string(), json!(y - x));
                }
            }
        }

        // Frames the worker ran the model on: `frames_inferred` when the filter reports it, else
        // every published mask was inferred.
        let inferred = stat_deltas
            .get("frames_inferred")
            .or(stat_deltas.get("mask_frames"))
            .and_then(Value::as_f64)
            .filter(|n| *n > 0.0);
        let graphics_loops =
            end.total
                .wrapping_sub(start.total)
                .saturating_sub(end.lagged.wrapping_sub(start.lagged)) as f64;

        // Allocations over the window, per thread of interest.
        let allocs = if alloc_count::enabled() {
            let a0: BTreeMap<u32, u64> = start.allocs.iter().copied().collect();
            let delta = |tid: u32, now: u64| now.saturating_sub(a0.get(&tid).copied().unwrap_or(0));
            let by_comm = |pred: &dyn Fn(&str) -> bool| -> u64 {
                end.threads
                    .iter()
                    .filter(|t| pred(&t.comm))
                    .map(|t| {
                        let now = end
                            .allocs
                            .iter()
                            .find(|(tid, _)| *tid == t.tid)
                            .map_or(0, |(_, c)| *c);
                        delta(t.tid, now)
                    })
                    .sum()
            };
            let worker = by_comm(&|c| c == WORKER_COMM);
            let graphics = by_comm(&|c| c.starts_with(GRAPHICS_COMM_PREFIX));
            let total: u64 = end.allocs.iter().map(|&(tid, c)| delta(tid, c)).sum();
            let mut by_group: BTreeMap<String, u64> = BTreeMap::new();
            for t in &end.threads {
                let now = end
                    .allocs
                    .iter()
                    .find(|(tid, _)| *tid == t.tid)
                    .map_or(0, |(_, c)| *c);
                *by_group.entry(group_of(&t.comm)).or_default() += delta(t.tid, now);
            }
            // Traced counts scaled to all allocations (one in `every` was traced).
            let every = alloc_count::trace_every();
            let [g, w] = attributed.map(|role| role.map(|n| n * every));
            let per = |n: u64, d: Option<f64>| d.filter(|d| *d > 0.0).map(|d| n as f64 / d);
            let loops = (graphics_loops > 0.0).then_some(graphics_loops);
            json!({
                "working": alloc_count::working(),
                "trace_every": every,
                "graphics_traced": g[alloc_count::A_TRACED],
                "graphics_in_plugin": g[alloc_count::A_PLUGIN],
                "graphics_in_plugin_per_loop": per(g[alloc_count::A_PLUGIN], loops),
                "graphics_in_plugin_drawing_target": g[alloc_count::A_TARGET],
                "graphics_filter_own_per_loop":
                    per(g[alloc_count::A_PLUGIN] - g[alloc_count::A_TARGET], loops),
                "graphics_drawing_target_per_loop": per(g[alloc_count::A_TARGET], loops),
                "graphics_direct_from_plugin_per_loop": per(g[alloc_count::A_DIRECT], loops),
                "worker_traced": w[alloc_count::A_TRACED],
                "worker_in_ort": w[alloc_count::A_ORT],
                "worker_in_ort_per_inferred_frame": per(w[alloc_count::A_ORT], inferred),
                "worker_outside_ort_per_inferred_frame":
                    per(w[alloc_count::A_TRACED] - w[alloc_count::A_ORT], inferred),
                "worker_direct_from_plugin_per_inferred_frame": per(w[alloc_count::A_DIRECT], inferred),
                "process": total,
                "worker": worker,
                "graphics": graphics,
                "graphics_per_loop": (graphics_loops > 0.0).then(|| graphics as f64 / graphics_loops),
                "worker_per_inferred_frame": inferred.map(|n| worker as f64 / n),
                "by_thread_group": by_group,
            })
        } else {
            Value::Null
        };

        let mut ft = self.frame_time_ms.clone();
        ft.sort_by(|a, b| a.total_cmp(b));
        let output_frames = end.output_frames.saturating_sub(start.output_frames);
        // SAFETY: plain libobs getter.
        let interval_ns = unsafe { sys::obs_get_frame_interval_ns() };
        json!({
            "window_s": wall,
            "window_includes_warmup": includes_warmup,
            "warmup_s": self.warmup.as_secs_f64(),
            "process_cores": cores(end.process_cpu_s - start.process_cpu_s),
            "worker_cores": worker_cores,
            "worker_threads": worker_threads,
            "worker_cpu_ms_per_inferred_frame": worker_cpu_s.zip(inferred).map(|(c, n)| c * 1e3 / n),
            "worker_minor_faults_per_inferred_frame": inferred.map(|n| worker_events.0 as f64 / n),
            "worker_voluntary_switches": worker_events.1,
            "worker_involuntary_switches": worker_events.2,
            "graphics_minor_faults_per_loop": (graphics_loops > 0.0).then(|| graphics_events.0 as f64 / graphics_loops),
            "graphics_involuntary_switches": graphics_events.2,
            "inferred_frames": inferred,
            "graphics_thread_cores": graphics_cores,
            "llvmpipe_cores": llvmpipe_cores,
            "thread_groups": groups_json,
            "threads": per_thread,
            "threads_ended_in_window": ended.iter().map(|t| json!({"tid": t.tid, "comm": t.comm})).collect::<Vec<_>>(),
            "obs_frame_time_ms_median": quantile_sorted(&ft, 0.5),
            "obs_frame_time_ms_p95": quantile_sorted(&ft, 0.95),
            "obs_frame_time_ms_max": ft.last().copied(),
            "obs_frame_time_samples": ft.len(),
            "obs_frame_interval_ms": interval_ns as f64 / 1e6,
            "lagged_frames": end.lagged.wrapping_sub(start.lagged),
            "total_frames": end.total.wrapping_sub(start.total),
            "graphics_loops": graphics_loops,
            "skipped_frames": end.skipped.wrapping_sub(start.skipped),
            "video_output_frames": end.video_total.wrapping_sub(start.video_total),
            "output_frames": output_frames,
            "output_fps": output_frames as f64 / wall,
            "stats_start": start.stats,
            "stats_end": end.stats,
            "stats_deltas": stat_deltas,
            "allocations": allocs,
        })
    }
}

/// Sets `ORT_DYLIB_PATH` to the plugin's runtime when unset, for `--bare-inference-runs`.
/// Call before any thread starts.
pub fn prepare_runtime(o: &Options) {
    if o.bare_inference_runs == 0
        || std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| !p.is_empty())
    {
        return;
    }
    let lib = o
        .plugin_dir
        .join("bin/64bit")
        .join(backdrop_core::segmentation::runtime::LIBRARY_NAME);
    // SAFETY (edition 2021: safe fn): called at start-up while the process has one thread.
    std::env::set_var("ORT_DYLIB_PATH", lib);
}

/// The model the filter runs: `--model`, else `--set model=...`, else the default id.
fn model_id(o: &Options) -> String {
    if let Some(m) = &o.model {
        return m.clone();
    }
    o.sets
        .iter()
        .rev()
        .find_map(|(k, v)| match (k.as_str(), v) {
            ("model", SetValue::Str(s)) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "selfie_general".into())
}

/// The filter's intra-op threads (`--set intra_threads=N`), else the default.
fn intra_threads(o: &Options) -> Option<usize> {
    o.sets
        .iter()
        .rev()
        .find_map(|(k, v)| match (k.as_str(), v) {
            ("intra_threads", SetValue::Int(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        })
}

/// `getrusage(RUSAGE_THREAD)` of the calling thread.
fn thread_rusage() -> libc::rusage {
    // SAFETY: getrusage writes one rusage struct.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        u
    }
}

/// One real frame of the input at `w` x `h`, BGRA, decoded and scaled by the ffmpeg CLI.
fn input_frame(input: &InputSpec, w: u32, h: u32) -> Option<Vec<u8>> {
    let (InputSpec::Video(path) | InputSpec::Image(path)) = input else {
        return None;
    };
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!("scale={w}:{h}:flags=area"))
        .args(["-f", "rawvideo", "-pix_fmt", "bgra", "-"])
        .output()
        .ok()?;
    (out.status.success() && out.stdout.len() == (w * h * 4) as usize).then_some(out.stdout)
}

/// `--bare-inference-runs N`: times `Session::run` of the filter's model, built with
/// [`backdrop_core::segmentation::session::build_session`] and the filter's session options, on
/// one real frame of the input packed as the worker packs it; 10 warm-up runs first.
///
/// The runs are paced at the canvas frame interval, one per frame like the worker's, not back to
/// back: a thread that never sleeps is scheduled differently from the worker on a busy machine,
/// and its wall times would not be comparable. The thread's CPU time per run is reported too.
pub fn bare_inference(o: &Options, runs: u32) -> Value {
    match bare_inference_inner(o, runs) {
        Ok(v) => v,
        Err(e) => json!({"error": e}),
    }
}

fn bare_inference_inner(o: &Options, runs: u32) -> Result<Value, String> {
    use backdrop_core::segmentation::manifest::Manifest;
    use backdrop_core::segmentation::session::{build_session, SessionOptions};
    use backdrop_core::segmentation::tensor;
    use ort::value::TensorRef;

    let id = model_id(o);
    let manifest_path: PathBuf = o.plugin_dir.join("data/models").join(format!("{id}.json"));
    let manifest = Manifest::load(&manifest_path)
        .map_err(|e| format!("manifest {}: {e}", manifest_path.display()))?;
    let env = backdrop_core::segmentation::runtime::environment().map_err(str::to_string)?;
    let mut options = SessionOptions::default();
    if let Some(n) = intra_threads(o) {
        options.intra_threads = n;
    }
    let model_path = manifest.model_path();
    let mut session = build_session(env, &model_path, options)?;
    let (w, h) = manifest.input_size();
    let (bgra, frame_source) = match input_frame(&o.inputs[0], w, h) {
        Some(f) => (f, "first frame of the input (ffmpeg, area scaling)"),
        None => (
            vec![128u8; (w * h * 4) as usize],
            "mid-grey (the input could not be decoded)",
        ),
    };
    let packed = tensor::packed_bgra(&bgra, w, h, &manifest.input);
    let shape = manifest.input.shape.clone();
    let plain = timed_runs(runs, || {
        let t = Instant::now();
        let input = TensorRef::from_array_view((shape.as_slice(), packed.as_slice()))
            .map_err(|e| format!("input tensor: {e}"))?;
        let out = session
            .run(ort::inputs![manifest.input.name.as_str() => input])
            .map_err(|e| format!("Session::run: {e}"))?;
        std::hint::black_box(&out);
        drop(out);
        Ok(t.elapsed().as_secs_f64() * 1e3)
    })?;
    // The same with an IoBinding: input and output tensors bound once, as a worker could keep
    // them; shows what `Session::run`'s own per-call allocations would become.
    let binding = bare_binding(&mut session, &manifest, &shape, &packed, runs)
        .unwrap_or_else(|e| json!({"error": e}));
    let mut v = json!({
        "model": id,
        "model_path": model_path.display().to_string(),
        "intra_threads": options.intra_threads,
        "frame": frame_source,
        "io_binding": binding,
    });
    if let (Some(v), Value::Object(p)) = (v.as_object_mut(), plain) {
        v.extend(p);
    }
    Ok(v)
}

/// Bare runs through an `IoBinding` with the input and a preallocated output bound once.
fn bare_binding(
    session: &mut ort::session::Session,
    manifest: &backdrop_core::segmentation::manifest::Manifest,
    shape: &[i64],
    packed: &[f32],
    runs: u32,
) -> Result<Value, String> {
    use ort::value::Tensor;
    let input = Tensor::from_array((shape.to_vec(), packed.to_vec()))
        .map_err(|e| format!("input tensor: {e}"))?;
    let out_dims: Vec<i64> = session
        .outputs()
        .iter()
        .find(|o| o.name() == manifest.output.name)
        .and_then(|o| o.dtype().tensor_shape().map(|s| s.to_vec()))
        .ok_or("output shape unknown")?;
    if out_dims.iter().any(|d| *d <= 0) {
        return Err(format!("dynamic output shape {out_dims:?}"));
    }
    let output = Tensor::<f32>::new(session.allocator(), out_dims)
        .map_err(|e| format!("output tensor: {e}"))?;
    let mut binding = session
        .create_binding()
        .map_err(|e| format!("IoBinding: {e}"))?;
    binding
        .bind_input(manifest.input.name.as_str(), &input)
        .map_err(|e| format!("bind_input: {e}"))?;
    binding
        .bind_output(manifest.output.name.as_str(), output)
        .map_err(|e| format!("bind_output: {e}"))?;
    timed_runs(runs, || {
        let t = Instant::now();
        let out = session
            .run_binding(&binding)
            .map_err(|e| format!("run_binding: {e}"))?;
        std::hint::black_box(&out);
        drop(out);
        Ok(t.elapsed().as_secs_f64() * 1e3)
    })
}

/// 10 warm-up calls of `run_once` (which returns its wall ms), then `runs` calls paced at the
/// canvas frame interval; wall median (p95), CPU, allocations, faults and switches per run.
fn timed_runs(
    runs: u32,
    mut run_once: impl FnMut() -> Result<f64, String>,
) -> Result<Value, String> {
    for _ in 0..10 {
        run_once()?;
    }
    // SAFETY: plain libobs getter.
    let interval = Duration::from_nanos(unsafe { sys::obs_get_frame_interval_ns() }.max(1));
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    let allocs0 = alloc_count::count_of(tid);
    let usage0 = thread_rusage();
    let cpu0 = clock_s(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut ms = Vec::with_capacity(runs as usize);
    for i in 0..runs {
        ms.push(run_once()?);
        let next = t0 + interval * (i + 1);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = clock_s(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0.0) - cpu0;
    // Includes the timing loop's own (none: `ms` has its capacity) and the sleeps' (none).
    let allocs_per_run = alloc_count::enabled()
        .then(|| (alloc_count::count_of(tid) - allocs0) as f64 / runs.max(1) as f64);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    let cpu_ms_per_run = cpu * 1e3 / runs.max(1) as f64;
    let usage1 = thread_rusage();
    let per_run = |a: i64, b: i64| (b - a) as f64 / runs.max(1) as f64;
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok(json!({
        "runs": runs,
        "paced_ms": interval.as_secs_f64() * 1e3,
        "ms_median": quantile_sorted(&ms, 0.5),
        "ms_p95": quantile_sorted(&ms, 0.95),
        "ms_min": ms.first().copied(),
        "ms_mean": mean,
        "cpu_ms_per_run": cpu_ms_per_run,
        "allocations_per_run": allocs_per_run,
        "minor_faults_per_run": per_run(usage0.ru_minflt, usage1.ru_minflt),
        "voluntary_switches_per_run": per_run(usage0.ru_nvcsw, usage1.ru_nvcsw),
        "involuntary_switches_per_run": per_run(usage0.ru_nivcsw, usage1.ru_nivcsw),
        "wall_s": wall,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thread_names() {
        assert_eq!(group_of("llvmpipe-0"), "llvmpipe-*");
        assert_eq!(group_of("llvmpipe-12"), "llvmpipe-*");
        assert_eq!(group_of("backdrop-worker"), "backdrop-worker");
        assert_eq!(group_of("123"), "123");
    }

    #[test]
    fn quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(3.0));
        assert_eq!(quantile_sorted(&v, 0.95), Some(5.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn own_thread_cpu_clock_reads() {
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
        assert!(clock_s(thread_clock(tid)).is_some());
    }
}
