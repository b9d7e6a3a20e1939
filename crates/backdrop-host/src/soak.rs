//! The soak (`--soak-period`): a long run in which the filter's settings change every period,
//! the filter is disabled and enabled again every second period and the source is hidden and
//! shown every fourth; every [`SAMPLE_EVERY`] the process's resident memory, threads and open
//! file descriptors, the plugin's live graphics objects, OBS's lagged frames and the filter's
//! masks are sampled, and the report gets their table and trends (`report.json` "soak").

use crate::cli::Options;
use crate::sources::{self, Chain, Data};
use backdrop_obs::sys;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Time between samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// Actions in one cycle of the schedule (see `Soak::act`).
pub const CYCLE: u64 = 4;

/// How long a disabled filter or a hidden source stays so.
const OFF_FOR: Duration = Duration::from_secs(5);

/// The process's resident memory (KiB), threads and open file descriptors, from `/proc/self`.
pub fn process_sample() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (field("VmRSS:"), field("Threads:"), fds)
}

/// The resident memory (KiB) by kind of mapping, from `/proc/self/smaps`: the main heap
/// (`[heap]`, glibc's main arena), anonymous mappings (other threads' malloc arenas, large
/// mmapped allocations, stacks, the GL driver's buffers) and file mappings (libraries, models).
pub fn resident_by_kind() -> (u64, u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let (mut heap, mut anon, mut file) = (0, 0, 0);
    let mut kind = None;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // a mapping's header: "start-end perms offset dev inode [path]"
        let header = fields.first().is_some_and(|f| {
            f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
        if header {
            let path = fields.get(5).copied();
            kind = Some(match path {
                Some("[heap]") => 0,
                None => 1,
                Some(p) if p.starts_with('[') => 1,
                Some(_) => 2,
            });
        } else if let (Some(k), Some(v)) = (kind, line.strip_prefix("Rss:")) {
            let kb: u64 = v
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            match k {
                0 => heap += kb,
                1 => anon += kb,
                _ => file += kb,
            }
        }
    }
    (heap, anon, file)
}

/// One sample of the soak. Kept as plain numbers (no allocation per sample, the store sized
/// once for the run) so that the host's own bookkeeping does not grow the resident memory it
/// measures; a `serde_json` object per sample took about 1 KiB, 0.4 MB an hour.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Since the first output frame, s.
    t: f64,
    rss_kb: u64,
    /// glibc's heap in use and free-but-kept (a leak grows the first), KiB.
    heap_in_use_kb: u64,
    heap_free_kb: u64,
    /// Where the resident memory is: the main heap, anonymous and file mappings, KiB.
    rss_heap_kb: u64,
    rss_anon_kb: u64,
    rss_file_kb: u64,
    threads: u64,
    fds: u64,
    lagged: u64,
    /// The filter's live graphics objects and published masks (its stats; none before the
    /// first stats).
    gpu_objects: Option<u64>,
    masks: Option<u64>,
    state: Option<&'static str>,
}

impl Sample {
    /// The filter's state names (`get_stats` "state"), kept without an allocation.
    fn state_name(s: &str) -> &'static str {
        match s {
            "starting" => "starting",
            "loading" => "loading",
            "running" => "running",
            "error" => "error",
            _ => "other",
        }
    }

    fn to_json(self) -> Value {
        json!({
            "t": self.t,
            "rss_kb": self.rss_kb,
            "heap_in_use_kb": self.heap_in_use_kb,
            "heap_free_kb": self.heap_free_kb,
            "rss_heap_kb": self.rss_heap_kb,
            "rss_anon_kb": self.rss_anon_kb,
            "rss_file_kb": self.rss_file_kb,
            "threads": self.threads,
            "fds": self.fds,
            "lagged": self.lagged,
            "gpu_objects": self.gpu_objects,
            "masks": self.masks,
            "state": self.state,
        })
    }
}

/// What is undone after [`OFF_FOR`].
enum Restore {
    Enable,
    Show,
}

/// The soak's schedule and samples.
pub struct Soak {
    period: Duration,
    warmup: Duration,
    actions: u64,
    pending: Vec<(Instant, Restore)>,
    samples: Vec<Sample>,
    next_sample: Duration,
    views: u32,
}

impl Soak {
    /// A soak acting every `period` and judging after `warmup`; `views` output channels show
    /// the source; `duration` (s), where known, sizes the samples' store once.
    pub fn new(period: Duration, warmup: Duration, views: u32, duration: Option<f64>) -> Self {
        let expected = duration.map_or(0, |d| (d / SAMPLE_EVERY.as_secs_f64()) as usize + 8);
        Self {
            period,
            warmup,
            actions: 0,
            pending: Vec::new(),
            samples: Vec::with_capacity(expected),
            next_sample: Duration::ZERO,
            views,
        }
    }

    /// Called from the run loop: takes the due sample, undoes what is due, and acts at each
    /// period's boundary. `elapsed`: since the first output frame.
    pub fn step(&mut self, chain: &Chain, elapsed: Duration, stats: &Option<Value>) {
        if elapsed >= self.next_sample {
            self.next_sample += SAMPLE_EVERY;
            let (rss_kb, threads, fds) = process_sample();
            let (heap_in_use_kb, heap_free_kb, _) = heap_sample();
            let (rss_heap_kb, rss_anon_kb, rss_file_kb) = resident_by_kind();
            let s = stats.as_ref();
            // SAFETY: a plain counter read of the running libobs.
            let lagged = unsafe { sys::obs_get_lagged_frames() } as u64;
            self.samples.push(Sample {
                t: elapsed.as_secs_f64(),
                rss_kb,
                heap_in_use_kb,
                heap_free_kb,
                rss_heap_kb,
                rss_anon_kb,
                rss_file_kb,
                threads,
                fds,
                lagged,
                gpu_objects: s
                    .and_then(|s| s.pointer("/gpu_objects/total"))
                    .and_then(Value::as_u64),
                masks: s
                    .and_then(|s| s.get("masks_published"))
                    .and_then(Value::as_u64),
                state: s
                    .and_then(|s| s.get("state"))
                    .and_then(Value::as_str)
                    .map(Sample::state_name),
            });
        }
        let now = Instant::now();
        let due: Vec<Restore> = {
            let (due, keep): (Vec<_>, Vec<_>) =
                self.pending.drain(..).partition(|(at, _)| *at <= now);
            self.pending = keep;
            due.into_iter().map(|(_, r)| r).collect()
        };
        for r in due {
            match r {
                Restore::Enable => {
                    // SAFETY: the chain's filter is live for the run.
                    unsafe { sys::obs_source_set_enabled(chain.filter, true) }
                }
                Restore::Show => {
                    for channel in 0..self.views {
                        // SAFETY: the chain's source is live for the run.
                        unsafe { sys::obs_set_output_source(channel, chain.source) };
                    }
                }
            }
        }
        let k = (elapsed.as_secs_f64() / self.period.as_secs_f64()) as u64;
        if k > self.actions && !chain.filter.is_null() {
            self.actions = k;
            self.act(chain, k, now);
        }
    }

    /// The `k`th action: new settings; every 2nd the filter off for a moment; every 4th the
    /// source hidden for a moment. The schedule repeats every [`CYCLE`] actions, so samples
    /// taken at the same point of the cycle compare like with like.
    fn act(&mut self, chain: &Chain, k: u64, now: Instant) {
        const MODES: [&str; 4] = ["blur", "color", "pixelate", "focal"];
        const MODELS: [&str; 4] = [
            "selfie_general",
            "selfie_general",
            "selfie_landscape",
            "selfie_landscape",
        ];
        let i = (k % CYCLE) as usize;
        let d = Data::new();
        d.set_string("mode", MODES[i])
            .set_string("model", MODELS[i])
            .set_double("threshold", [0.4, 0.5, 0.6, 0.5][i])
            .set_double("blur_strength", [12.0, 24.0, 48.0, 24.0][i]);
        chain.update_filter(&d);
        if k % 2 == 0 {
            // SAFETY: the chain's filter is live for the run.
            unsafe { sys::obs_source_set_enabled(chain.filter, false) };
            self.pending.push((now + OFF_FOR, Restore::Enable));
        }
        if k % 4 == 3 {
            for channel in 0..self.views {
                // SAFETY: clearing an output channel; restored after OFF_FOR.
                unsafe { sys::obs_set_output_source(channel, std::ptr::null_mut()) };
            }
            self.pending.push((now + OFF_FOR, Restore::Show));
        }
    }

    /// Undoes what is still off (the run ends).
    pub fn restore(&mut self, chain: &Chain) {
        for (_, r) in self.pending.drain(..) {
            match r {
                // SAFETY: as in `step`.
                Restore::Enable => unsafe { sys::obs_source_set_enabled(chain.filter, true) },
                Restore::Show => {
                    for channel in 0..self.views {
                        // SAFETY: as in `step`.
                        unsafe { sys::obs_set_output_source(channel, chain.source) };
                    }
                }
            }
        }
    }

    /// The samples and their trends after the warmup (see [`summary`]).
    pub fn finish(&self) -> Value {
        let samples: Vec<Value> = self.samples.iter().copied().map(Sample::to_json).collect();
        let mut s = summary(
            &samples,
            self.warmup.as_secs_f64(),
            self.period.as_secs_f64() * CYCLE as f64,
        );
        s["actions"] = json!(self.actions);
        s["period_s"] = json!(self.period.as_secs_f64());
        s
    }
}

/// Least-squares slope of `ys` over `xs` (per unit of x); 0 for fewer than two points.
pub fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// Trends of the samples taken at `warmup_s` and later: RSS growth (median of the last three
/// samples minus that of the first three, MiB), its least-squares slope (MiB per hour), and the
/// RSS and the heap in use at each start of a `cycle_s` cycle of the schedule with their growth
/// from the first to the last (like with like: the same model and mode loaded); the range of threads, file
/// descriptors and graphics objects; lagged frames per minute in the first and second half;
/// the longest time without a new mask; every sample (`samples`).
pub fn summary(samples: &[Value], warmup_s: f64, cycle_s: f64) -> Value {
    let after: Vec<&Value> = samples
        .iter()
        .filter(|s| s["t"].as_f64().unwrap_or(0.0) >= warmup_s)
        .collect();
    let f = |s: &Value, k: &str| s[k].as_f64().unwrap_or(f64::NAN);
    let ts: Vec<f64> = after.iter().map(|s| f(s, "t")).collect();
    let rss_mb: Vec<f64> = after.iter().map(|s| f(s, "rss_kb") / 1024.0).collect();
    let median3 = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let growth = if rss_mb.len() >= 6 {
        median3(&rss_mb[rss_mb.len() - 3..]) - median3(&rss_mb[..3])
    } else {
        f64::NAN
    };
    let range = |k: &str| {
        let v: Vec<f64> = after
            .iter()
            .map(|s| f(s, k))
            .filter(|v| v.is_finite())
            .collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        json!([lo, hi])
    };
    let lag_rate = |part: &[&Value]| -> f64 {
        match (part.first(), part.last()) {
            (Some(a), Some(b)) if f(b, "t") > f(a, "t") => {
                (f(b, "lagged") - f(a, "lagged")) / (f(b, "t") - f(a, "t")) * 60.0
            }
            _ => f64::NAN,
        }
    };
    // A sample's `key` (KiB) in MiB at each start of a cycle, and its growth first to last.
    let at_cycle_starts = |key: &str| -> (Vec<f64>, f64) {
        let v: Vec<f64> = after
            .iter()
            .filter(|s| {
                let c = f(s, "t") / cycle_s;
                cycle_s > 0.0 && (c - c.round()).abs() * cycle_s < 1.0
            })
            .map(|s| f(s, key) / 1024.0)
            .collect();
        let growth = match (v.first(), v.last()) {
            (Some(a), Some(b)) if v.len() >= 2 => b - a,
            _ => f64::NAN,
        };
        (v, growth)
    };
    let (cycle_rss, cycle_growth) = at_cycle_starts("rss_kb");
    let (cycle_heap, heap_growth) = at_cycle_starts("heap_in_use_kb");
    let by_kind: Value = ["rss_heap_kb", "rss_anon_kb", "rss_file_kb"]
        .iter()
        .map(|k| {
            (
                k.trim_end_matches("_kb").to_string(),
                json!(at_cycle_starts(k).1),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    let half = after.len() / 2;
    // the longest stretch with the masks count unchanged (the filter off, the source hidden
    // and a model switch included), s
    let mut stuck = 0.0f64;
    let mut since: Option<(f64, f64)> = None;
    for s in samples {
        let (t, m) = (f(s, "t"), f(s, "masks"));
        match since {
            Some((t0, m0)) if m == m0 => stuck = stuck.max(t - t0),
            _ => since = Some((t, m)),
        }
    }
    json!({
        "warmup_s": warmup_s,
        "samples_judged": after.len(),
        "rss_mb_first": rss_mb.first(),
        "rss_mb_last": rss_mb.last(),
        "rss_growth_mb": growth,
        "rss_slope_mb_per_hour": slope(&ts, &rss_mb) * 3600.0,
        "heap_in_use_mb": range("heap_in_use_kb").as_array().map(|r| {
            r.iter().map(|v| v.as_f64().unwrap_or(f64::NAN) / 1024.0).collect::<Vec<_>>()
        }),
        "rss_mb_at_cycle_starts": cycle_rss,
        "rss_cycle_growth_mb": cycle_growth,
        // glibc's heap in use (mallinfo2), like with like: a leak shows here, while the
        // resident memory also moves with what glibc keeps free
        "heap_in_use_mb_at_cycle_starts": cycle_heap,
        "heap_in_use_cycle_growth_mb": heap_growth,
        // the RSS's cycle growth by kind of mapping (MiB): main heap, anonymous, files
        "rss_cycle_growth_mb_by_kind": by_kind,
        "threads": range("threads"),
        "fds": range("fds"),
        "gpu_objects": range("gpu_objects"),
        "lagged_per_min_first_half": lag_rate(&after[..half.max(1).min(after.len())]),
        "lagged_per_min_second_half": lag_rate(&after[half..]),
        "longest_without_new_mask_s": stuck,
        "samples": samples,
    })
}

/// `--churn-filters N` and `--churn-sources M`: on a live source, N times a new Backdrop filter
/// is added and, a frame later, removed and released; then M times a new source with a Backdrop
/// filter is made, shown on output channel 1 for a frame and released. The process is sampled
/// before (after 30 frames of warmup) and once libobs has destroyed everything released
/// (report.json "churn").
pub struct Churn {
    filters_left: u32,
    sources_left: u32,
    filters_done: u32,
    sources_done: u32,
    last_frame: u64,
    filter: *mut sys::obs_source_t,
    source: *mut sys::obs_source_t,
    before: Option<Value>,
    ended_at: Option<Instant>,
    after: Option<Value>,
    started_at: Option<Instant>,
    seconds: f64,
    /// When everything released was destroyed (or the wait gave up), and how long that took.
    settled_at: Option<Instant>,
    settle_s: f64,
}

/// Frames before the churn starts.
const CHURN_WARMUP_FRAMES: u64 = 30;

/// glibc's heap: bytes allocated and in use, free but kept, and in mmapped chunks, KiB
/// (`mallinfo2`, all arenas): a leak grows the first, fragmentation the second.
pub fn heap_sample() -> (u64, u64, u64) {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    (
        (m.uordblks / 1024) as u64,
        (m.fordblks / 1024) as u64,
        (m.hblkhd / 1024) as u64,
    )
}

fn sample(stats: &Option<Value>) -> Value {
    let (rss_kb, threads, fds) = process_sample();
    let (in_use, free, mmapped) = heap_sample();
    json!({
        "heap_in_use_kb": in_use,
        "heap_free_kb": free,
        "heap_mmapped_kb": mmapped,
        "rss_kb": rss_kb,
        "threads": threads,
        "fds": fds,
        "gpu_objects": stats.as_ref().and_then(|s| s.pointer("/gpu_objects/total")).cloned(),
    })
}

impl Churn {
    /// A churn of `filters` filter lifetimes on the live source, then `sources` source
    /// lifetimes.
    pub fn new(filters: u32, sources: u32) -> Self {
        Self {
            filters_left: filters,
            sources_left: sources,
            filters_done: 0,
            sources_done: 0,
            last_frame: 0,
            filter: std::ptr::null_mut(),
            source: std::ptr::null_mut(),
            before: None,
            ended_at: None,
            after: None,
            started_at: None,
            seconds: 0.0,
            settled_at: None,
            settle_s: 0.0,
        }
    }

    /// Whether the churn and its settling time are over.
    pub fn done(&self) -> bool {
        self.after.is_some()
    }

    /// Gives back the churn filter and source of the last step.
    fn drop_current(&mut self, chain: &Chain) {
        if !self.filter.is_null() {
            // SAFETY: made by this struct, added to `chain.source` (a filter) or to `source`.
            unsafe {
                let parent = if self.source.is_null() {
                    chain.source
                } else {
                    self.source
                };
                sys::obs_source_filter_remove(parent, self.filter);
                sys::obs_source_release(self.filter);
            }
            self.filter = std::ptr::null_mut();
        }
        if !self.source.is_null() {
            // SAFETY: made by this struct; taken off the output before its release.
            unsafe {
                sys::obs_set_output_source(1, std::ptr::null_mut());
                sys::obs_source_release(self.source);
            }
            self.source = std::ptr::null_mut();
        }
    }

    /// One step per new output frame; `main_stats` gives the graphics objects count.
    pub fn step(&mut self, o: &Options, chain: &Chain, frames: u64, main_stats: &Option<Value>) {
        if frames <= self.last_frame || self.after.is_some() {
            return;
        }
        self.last_frame = frames;
        if frames < CHURN_WARMUP_FRAMES {
            return;
        }
        if self.before.is_none() {
            self.before = Some(sample(main_stats));
            self.started_at = Some(Instant::now());
        }
        if let Some(at) = self.ended_at {
            // libobs destroys released sources on its own task thread, one after another:
            // wait until the threads and graphics objects are back where they
            // were (at most 5 minutes), then a second more, so the sample sees what is left, not
            // what is still queued.
            let now = sample(main_stats);
            let before = self.before.as_ref().expect("sampled at the start");
            let settled =
                now["threads"] == before["threads"] && now["gpu_objects"] == before["gpu_objects"];
            match self.settled_at {
                None if settled || at.elapsed() >= Duration::from_secs(300) => {
                    self.settled_at = Some(Instant::now());
                    self.settle_s = at.elapsed().as_secs_f64();
                }
                Some(t) if t.elapsed() >= Duration::from_secs(1) => self.after = Some(now),
                _ => {}
            }
            return;
        }
        self.drop_current(chain);
        if self.filters_left > 0 {
            self.filters_left -= 1;
            self.filters_done += 1;
            self.filter = sources::make_backdrop_filter(o, "Backdrop churn");
            if !self.filter.is_null() {
                // SAFETY: both sources are live.
                unsafe { sys::obs_source_filter_add(chain.source, self.filter) };
            }
        } else if self.sources_left > 0 {
            self.sources_left -= 1;
            self.sources_done += 1;
            if let Ok(s) = sources::make_color_source("churn source", 320, 240) {
                self.source = s;
                self.filter = sources::make_backdrop_filter(o, "Backdrop churn");
                // SAFETY: both live; the output channel holds its own reference.
                unsafe {
                    if !self.filter.is_null() {
                        sys::obs_source_filter_add(s, self.filter);
                    }
                    sys::obs_set_output_source(1, s);
                }
            }
        } else {
            self.seconds = self.started_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
            self.ended_at = Some(Instant::now());
        }
    }

    /// Gives back what is still held (the run ends early).
    pub fn finish(&mut self, chain: &Chain) -> Value {
        self.drop_current(chain);
        json!({
            "filters_added_and_removed": self.filters_done,
            "sources_made_and_released": self.sources_done,
            "seconds": self.seconds,
            // from the last release until every released filter and source was destroyed
            "destroyed_within_s": self.settle_s,
            "before": self.before,
            "after": self.after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_and_summary_of_a_leak() {
        assert!((slope(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]) - 2.0).abs() < 1e-12);
        // 1 MiB a minute after a 60 s warmup, masks every sample but one stretch of 20 s
        let samples: Vec<Value> = (0..30)
            .map(|i| {
                let t = i as f64 * 10.0;
                json!({"t": t, "rss_kb": 100_000.0 + t / 60.0 * 1024.0, "threads": 20,
                       "fds": 30, "lagged": i * 2, "gpu_objects": 9,
                       "masks": if (10..13).contains(&i) { 10 * 10 } else { i * 10 }})
            })
            .collect();
        let s = summary(&samples, 60.0, 40.0);
        assert!((s["rss_slope_mb_per_hour"].as_f64().unwrap() - 60.0).abs() < 1e-6);
        assert!((s["rss_growth_mb"].as_f64().unwrap() - 3.5).abs() < 0.6);
        assert_eq!(s["threads"], json!([20.0, 20.0]));
        assert!((s["lagged_per_min_first_half"].as_f64().unwrap() - 12.0).abs() < 1e-9);
        assert_eq!(s["longest_without_new_mask_s"], json!(20.0));
        // cycle starts at 80, 120, ..., 280 s: 200 s of 1 MiB a minute
        let cycles = s["rss_mb_at_cycle_starts"].as_array().unwrap().len();
        assert_eq!(cycles, 6);
        assert!((s["rss_cycle_growth_mb"].as_f64().unwrap() - 200.0 / 60.0).abs() < 1e-6);
    }
}
