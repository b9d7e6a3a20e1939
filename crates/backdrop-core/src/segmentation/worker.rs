//! The per-filter worker thread: takes the newest small frame, runs the model, refines the mask
//! and publishes it. Latest wins on both sides: a frame not yet taken is overwritten by a newer
//! one, a mask not yet uploaded is overwritten by a newer one. Nothing queues, and the graphics
//! thread never waits for inference (it only takes short, uncontended locks to swap buffers).

use super::cadence::{Cadence, CadenceParams, Step};
use super::manifest::Manifest;
use super::remote::{
    HealthCheck, RemoteErrorKind, RemoteModel, ServerConfig, HEALTH_BACKOFF_FIRST_MS,
    HEALTH_BACKOFF_MAX_MS,
};
use super::runtime::{self, Provider};
use super::session::{Model, RunStopper, SessionOptions};
use super::stats::Rolling;
use crate::mask::refine::{RefineParams, Refiner};
use crate::mask::roi::{AspectMode, Region, RegionTracker};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Locks a mutex, ignoring poisoning (a panic elsewhere must not take the video down).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the worker should run: set by the filter's `update`, read by the worker.
#[derive(Clone, Debug)]
pub struct Request {
    /// The model to load, or why there is no valid one (for the status line).
    pub manifest: Result<Manifest, String>,
    /// Mask refinement applied after inference.
    pub refine: RefineParams,
    /// Which frames are inferred, and what is shown for the others (see `cadence`).
    pub cadence: CadenceParams,
    /// Also infer the mirrored frame and average the masks (`Model::add_mirrored_pass`).
    pub mirror_average: bool,
    pub session: SessionOptions,
    /// Which part of the frame the model sees (see `mask::roi`).
    pub aspect: AspectMode,
    /// Infer on this KServe v2 server instead of this computer (the local model stays loaded
    /// as the fallback); `None`: on this computer.
    pub server: Option<ServerConfig>,
}

impl Default for Request {
    /// No model yet (before the filter's first `update`).
    fn default() -> Self {
        Self {
            manifest: Err("no model chosen yet".into()),
            refine: RefineParams::default(),
            cadence: CadenceParams::default(),
            mirror_average: false,
            session: SessionOptions::default(),
            aspect: AspectMode::default(),
            server: None,
        }
    }
}

/// One small BGRA frame at the model's input size, handed from the graphics thread.
#[derive(Default)]
pub struct Frame {
    /// Tightly packed BGRA rows (`width * 4` bytes each).
    pub bgra: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Frame counter of the graphics thread when it was rendered.
    pub frame: u64,
    /// (width, height) of the source frame it was downscaled from, px.
    pub source_size: (u32, u32),
    /// The region of the source frame it shows (see `mask::roi`).
    pub region: Region,
}

/// The newest mask, published by the worker.
#[derive(Default)]
pub struct MaskSlot {
    /// Interleaved `(a, b)` coefficients per mask pixel (`2 * width * height` values): the
    /// person probability at a frame pixel is `a * luma + b` (see `mask::refine`).
    pub coefficients: Vec<f32>,
    pub width: u32,
    pub height: u32,
    /// Graphics frame counter of the frame this mask was computed from.
    pub frame: u64,
    /// Increments with every published mask (0 = none yet).
    pub sequence: u64,
    /// Frames whose mask is current: inferred, or skipped because nothing moved.
    pub confirmed: u64,
    /// Frames inferred.
    pub inferred: u64,
    /// Frames whose inference was skipped because nothing moved.
    pub skipped: u64,
    /// Frames shown with the last inferred mask moved along the person's motion.
    pub warped: u64,
    /// Inferred frames whose mask averages a second, mirrored pass (`mirror_average`).
    pub mirrored: u64,
    /// The region of the source frame the mask covers (frame uv; see `mask::roi`).
    pub region: Region,
    /// The region the graphics thread should downscale next.
    pub next_region: Region,
    /// Detection passes over the whole frame (inferred, not shown).
    pub detections: u64,
    /// Mean person probability of the newest inferred mask, 0..1 (over its region).
    pub person_share: f32,
}

pub use super::cadence::MAX_SKIPPED_IN_A_ROW;

/// Nice value of the worker thread (Linux; 0 is a normal thread, 19 the lowest priority).
/// When the CPU is saturated (software rendering, a busy encoder), OBS's own graphics, video and
/// encoder threads get it first and the worker infers a little later: a mask a frame older
/// rather than a frame OBS drops. 10 gives the worker about a tenth of the CPU a normal thread
/// gets under contention (the kernel's CFS weights 110 vs 1024), plenty for one model run per
/// frame (~4 ms of 33); on an idle core the nice value changes nothing.
pub const WORKER_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`WORKER_NICE`]; a failure only costs priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, WORKER_NICE) != 0 {
            log::warn!("cannot lower the segmentation worker's priority");
        }
    }
}

/// CPU time the calling thread has used, ms (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 * 1e-6
}

/// What kind of failure a [`State::Error`] is, for tools and tests (the message is for people).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No usable model: unknown id, missing or corrupt file, invalid or unsuitable manifest.
    Model,
    /// ONNX Runtime cannot be loaded.
    Runtime,
    /// The model loaded but running it failed.
    Inference,
    /// A bug: the worker panicked.
    Internal,
}

impl ErrorKind {
    /// The kind as a stable snake_case word (the filter's stats `error_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Model => "model",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Inference => "inference",
            ErrorKind::Internal => "internal",
        }
    }
}

/// Worker state shown in the filter's properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the first model load.
    Starting,
    /// Loading the runtime or the model.
    Loading(String),
    /// Model loaded and running: its manifest id (with why the requested execution provider is
    /// not used, if so) and the execution provider it runs on.
    Running(String, Provider),
    /// A failure, with its kind and a message for people; video passes through unchanged.
    Error(ErrorKind, String),
}

/// Timing statistics of the worker, in ms.
pub struct Timings {
    pub preprocess: Rolling,
    pub inference: Rolling,
    pub postprocess: Rolling,
    /// Whole worker cost of one frame: pre + inference + post.
    pub total: Rolling,
    /// The worker thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) in the model run, ms: unlike
    /// the wall-clock figures it leaves out time the thread was preempted.
    pub inference_cpu: Rolling,
    /// The worker thread's CPU time for pre + inference + post, ms.
    pub total_cpu: Rolling,
    /// Motion search and warp of one warped frame (the choice included): wall-clock and
    /// thread CPU, ms.
    pub warp: Rolling,
    pub warp_cpu: Rolling,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            preprocess: Rolling::new(300),
            inference: Rolling::new(300),
            postprocess: Rolling::new(300),
            total: Rolling::new(300),
            inference_cpu: Rolling::new(300),
            total_cpu: Rolling::new(300),
            warp: Rolling::new(300),
            warp_cpu: Rolling::new(300),
        }
    }
}

/// Inferences in a row whose output is degenerate (NaN or infinite values, or one value over
/// the whole mask) before the status says so: one second at 30 fps, so a frame of an empty
/// wall (a real model still varies over it) never trips it.
pub const DEGENERATE_AFTER: u32 = 30;

/// How long the model that ran before a switch is kept unused (see `Spare`) before it is
/// dropped: long enough for someone comparing two models or a scene switch that changes the
/// filter's settings, short enough that a single switch does not hold a second session's memory
/// (3-10 MB) for the rest of the show.
pub const SPARE_KEPT_FOR: Duration = Duration::from_secs(600);

/// Failed requests in a row after which the worker infers on this computer (and a background
/// health check waits for the server): at 30 fps with the default 100 ms deadline, a dead
/// server costs three frames without a new mask, a refused connection about none.
pub const MISSES_BEFORE_FALLBACK: u32 = 3;

/// Where inference runs, for the status line and the filter's stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// On this computer, as chosen.
    #[default]
    Local,
    /// On the inference server.
    Remote,
    /// On this computer because the server failed or does not fit (`RemoteStatus::reason`).
    Fallback,
}

impl Backend {
    /// The backend as a stable snake_case word (the filter's stats `inference`).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Remote => "remote",
            Backend::Fallback => "fallback",
        }
    }
}

/// The inference server's side of the worker: counts, round trips and why it is not used.
pub struct RemoteStatus {
    pub backend: Backend,
    /// Why the server is not used (`Backend::Fallback`), a readable sentence.
    pub reason: Option<String>,
    /// The server's model does not fit the manifest: no health check retries it until the
    /// settings change.
    pub mismatch: bool,
    /// Frames whose mask came from the server.
    pub frames: u64,
    /// Requests that failed or missed their deadline (each shows the previous mask).
    pub misses: u64,
    /// Switches to this computer, and back to the server.
    pub fallbacks: u64,
    pub recoveries: u64,
    /// Round trip of one answered request (pack, send, wait, read, convert), ms.
    pub round_trip: Rolling,
    /// Request and response body bytes of the last answered request.
    pub bytes_sent: usize,
    pub bytes_received: usize,
    /// The payload's data type the server model takes (`UINT8` or `FP32`).
    pub payload: Option<&'static str>,
}

impl Default for RemoteStatus {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            reason: None,
            mismatch: false,
            frames: 0,
            misses: 0,
            fallbacks: 0,
            recoveries: 0,
            round_trip: Rolling::new(300),
            bytes_sent: 0,
            bytes_received: 0,
            payload: None,
        }
    }
}

/// State shared between the filter (graphics and UI threads) and its worker.
pub struct Shared {
    input: Mutex<Input>,
    wake: Condvar,
    request: Mutex<(u64, Request)>,
    /// The newest mask.
    pub output: Mutex<MaskSlot>,
    /// Current worker state.
    pub state: Mutex<State>,
    pub timings: Mutex<Timings>,
    /// Inference on a server: where it runs now and how it goes.
    pub remote: Mutex<RemoteStatus>,
    /// Why the model's masks cannot be trusted (NaN outputs, the same value everywhere for
    /// [`DEGENERATE_AFTER`] inferences in a row), while it runs.
    pub model_warning: Mutex<Option<String>>,
    /// Why the model file, replaced on disk since the running model was read from it, could not
    /// be loaded when the settings changed: the model read before keeps running.
    pub model_file_warning: Mutex<Option<String>>,
    /// Ends the loaded model's run in progress when the worker stops (see [`Model::stopper`]).
    stopper: Mutex<Option<RunStopper>>,
    /// Frames handed over but overwritten before the worker took them.
    pub frames_dropped: AtomicU64,
    /// ONNX Runtime sessions built (model loads and reloads, failed ones included); a switch
    /// back to the spare model builds none.
    pub model_loads: AtomicU64,
    /// How long the spare model is kept unused, ms ([`SPARE_KEPT_FOR`] unless a host or a test
    /// changes it); checked when a frame comes.
    pub spare_kept_for_ms: AtomicU64,
    /// Input size (width << 32 | height) of the loaded model, 0 when none: the size the graphics
    /// thread must downscale to.
    pub input_size: AtomicU64,
    stop: AtomicBool,
}

#[derive(Default)]
struct Input {
    frame: Frame,
    pending: bool,
    request_version: u64,
}

impl Shared {
    fn new() -> Self {
        Self {
            input: Mutex::new(Input::default()),
            wake: Condvar::new(),
            request: Mutex::new((0, Request::default())),
            output: Mutex::new(MaskSlot::default()),
            state: Mutex::new(State::Starting),
            timings: Mutex::new(Timings::default()),
            remote: Mutex::new(RemoteStatus::default()),
            model_warning: Mutex::new(None),
            model_file_warning: Mutex::new(None),
            stopper: Mutex::new(None),
            frames_dropped: AtomicU64::new(0),
            model_loads: AtomicU64::new(0),
            spare_kept_for_ms: AtomicU64::new(SPARE_KEPT_FOR.as_millis() as u64),
            input_size: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// The model input size the worker expects, `None` when no model is loaded.
    pub fn model_input_size(&self) -> Option<(u32, u32)> {
        let v = self.input_size.load(Ordering::Acquire);
        (v != 0).then_some(((v >> 32) as u32, v as u32))
    }

    /// Hands a BGRA frame (`width` x `height`, rows `stride` bytes apart) to the worker, replacing
    /// any frame it has not taken yet. Copies into a reused buffer: no allocation in steady state.
    pub fn submit(
        &self,
        bgra: &[u8],
        (width, height, stride): (u32, u32, usize),
        frame: u64,
        source_size: (u32, u32),
        region: Region,
    ) {
        let row = width as usize * 4;
        let mut input = lock(&self.input);
        if input.pending {
            self.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        let buf = &mut input.frame.bgra;
        buf.resize(row * height as usize, 0);
        for y in 0..height as usize {
            buf[y * row..(y + 1) * row].copy_from_slice(&bgra[y * stride..y * stride + row]);
        }
        input.frame.width = width;
        input.frame.height = height;
        input.frame.frame = frame;
        input.frame.source_size = source_size;
        input.frame.region = region;
        input.pending = true;
        drop(input);
        self.wake.notify_one();
    }

    /// Replaces the request; the worker picks it up before its next frame.
    pub fn set_request(&self, request: Request) {
        let version = {
            let mut r = lock(&self.request);
            r.0 += 1;
            r.1 = request;
            r.0
        };
        lock(&self.input).request_version = version;
        self.wake.notify_one();
    }

    pub(crate) fn set_state(&self, state: State) {
        let mut current = lock(&self.state);
        if *current != state {
            match &state {
                State::Error(_, message) => log::warn!("{message}"),
                State::Running(label, _) => log::info!("model {label} running"),
                _ => {}
            }
            *current = state;
        }
    }
}

/// Owns the worker thread; stopping and joining happen on drop.
pub struct Worker {
    pub shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a worker thread named `backdrop-worker`, at nice [`WORKER_NICE`].
    pub fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::new());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("backdrop-worker".into())
            .spawn(move || {
                lower_priority();
                let s = thread_shared.clone();
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&thread_shared)))
                    .is_err()
                {
                    s.input_size.store(0, Ordering::Release);
                    s.set_state(State::Error(
                        ErrorKind::Internal,
                        "internal error in the segmentation worker (see log)".into(),
                    ));
                    log::error!("segmentation worker panicked; the filter passes video through");
                }
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
    /// Stops the worker and waits for it: at most the inference or model load in progress
    /// (neither can be interrupted), logged with how long it took.
    fn drop(&mut self) {
        let started = Instant::now();
        self.shared.stop.store(true, Ordering::Release);
        if let Some(stopper) = lock(&self.shared.stopper).as_ref() {
            stopper.stop(); // a run in progress returns at its next node
        }
        {
            let _guard = lock(&self.shared.input);
            self.shared.wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        release_freed_memory();
        log::info!(
            "segmentation worker stopped in {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}

/// Gives the memory the ended worker freed back to the system (`malloc_trim`, glibc). Each
/// worker thread allocates in a malloc arena of its own (the model's session, its buffers);
/// glibc keeps what a finished thread freed there for reuse, so a filter added and removed
/// again and again (the host's `--churn-filters`) grew the resident memory by ~1 MB per filter
/// while the heap in use stayed flat (`mallinfo2`: +5 KB per filter).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The worker thread's state between frames; [`run`] drives it one named step at a time.
#[derive(Default)]
struct Steps {
    model: Option<Model>,
    /// Version of the request applied (0 = none yet).
    loaded_version: u64,
    refine: RefineParams,
    refiner: Refiner,
    /// Chooses the frames to infer and keeps what warping needs.
    cadence: Cadence,
    /// Infer the mirrored frame too; its scratch buffers.
    mirror_average: bool,
    mirrored: Vec<u8>,
    first_pass: Vec<f32>,
    /// The frame being worked on (swapped with the input slot, never copied).
    frame: Frame,
    /// The model's probability plane of `frame`, refined in place.
    mask: Vec<f32>,
    coefficients: Vec<f32>,
    tracker: RegionTracker,
    source_size: (u32, u32),
    /// The inference server, when the request names one.
    remote: Option<Remote>,
    /// Degenerate outputs in a row (see [`DEGENERATE_AFTER`]).
    degenerate: u32,
    /// The model file as it was when the running model was read from it.
    model_stamp: Option<FileStamp>,
    /// The last load that failed: not tried again until the manifest or the file changes, so
    /// a broken file reaches ONNX Runtime's parser once, however often the settings change.
    failed_load: Option<FailedLoad>,
    /// The model that ran before the last switch (see [`Steps::change_model`]).
    spare: Option<Spare>,
}

/// A loaded model that is not running, kept so that switching back to it builds no session.
/// Switching back and forth between two models (someone comparing them, a scene that changes
/// the filter's settings) then costs no load and no fresh allocation; the soak's model switch
/// every minute let glibc's per-thread arena hold 4-10 MB more or less after each load
/// (`soak` "rss_anon"). Costs the memory of one more session (2.7 MB of heap for
/// `selfie_general`, 9.6 MB for `selfie_landscape`), for [`SPARE_KEPT_FOR`] at most.
struct Spare {
    model: Model,
    /// The model file as it was when the model was read (`None`: it could not be stat'ed).
    stamp: Option<FileStamp>,
    /// When it stopped running.
    since: Instant,
}

/// A load of `manifest`'s file, as it was (`stamp`), that failed with `kind` and `message`.
struct FailedLoad {
    manifest: Manifest,
    stamp: Option<FileStamp>,
    kind: ErrorKind,
    message: String,
}

/// What tells a file's contents apart without reading them: its size, modification time and
/// inode. A file written over or renamed over has another stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    /// The stamp of `path` now; `None` when it cannot be read (missing, no permission).
    fn of(path: &std::path::Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// The worker's side of an inference server: the checked model while it is used, else the
/// health check that waits for the server to come back.
struct Remote {
    config: ServerConfig,
    model: Option<RemoteModel>,
    misses_in_a_row: u32,
    health: Option<HealthCheck>,
    /// Wait before the next health check after a fallback, ms: doubles with every fallback
    /// until a frame is answered again, so a server that is up but answers badly is retried
    /// ever more rarely (up to `HEALTH_BACKOFF_MAX_MS`).
    backoff_ms: u64,
    /// The reason last logged: a fallback for the same reason is not logged again.
    logged_reason: Option<String>,
    /// Reconnected after a fallback; the recovery counts (and is logged) with the first answer.
    recovering: bool,
}

/// Wall-clock and thread-CPU times of one inferred frame's stages.
struct Times {
    start: (Instant, f64),
    preprocessed: (Instant, f64),
    inferred: (Instant, f64),
}

fn now() -> (Instant, f64) {
    (Instant::now(), thread_cpu_ms())
}

/// The worker thread: wait for a frame or a new request, then `apply_request`, `skip_if_still`,
/// `infer`, `refine`, `publish`. Every buffer is reused: no allocation per frame in steady state.
fn run(shared: &Shared) {
    let mut steps = Steps::default();
    while let Some(has_frame) = steps.wait(shared) {
        steps.apply_request(shared);
        steps.expire_spare(shared);
        if !has_frame || !steps.frame_fits_model() {
            continue;
        }
        let chosen_at = now();
        match steps.choose() {
            Step::Infer => {}
            Step::Keep => {
                steps.keep(shared);
                continue;
            }
            Step::Warp => {
                steps.warp(shared, chosen_at);
                continue;
            }
        }
        let Some(times) = steps.infer(shared) else {
            continue;
        };
        if steps.refine(shared) {
            steps.publish(shared, &times);
        }
    }
}

impl Steps {
    /// Waits for a frame, a new request or stop. `None` on stop, else whether a frame came.
    fn wait(&mut self, shared: &Shared) -> Option<bool> {
        let mut input = lock(&shared.input);
        while !input.pending
            && input.request_version == self.loaded_version
            && !shared.stop.load(Ordering::Acquire)
        {
            input = shared.wake.wait(input).unwrap_or_else(|e| e.into_inner());
        }
        if shared.stop.load(Ordering::Acquire) {
            return None;
        }
        let has_frame = input.pending;
        if has_frame {
            std::mem::swap(&mut self.frame, &mut input.frame);
            input.pending = false;
        }
        Some(has_frame)
    }

    /// Applies a changed request: settings at once, a model load when the model changed (here,
    /// never on the graphics thread).
    fn apply_request(&mut self, shared: &Shared) {
        let version = lock(&shared.request).0;
        if version == self.loaded_version {
            return;
        }
        let request = lock(&shared.request).1.clone();
        self.loaded_version = version;
        self.refine = request.refine;
        self.cadence.set_params(request.cadence); // the next frame is inferred
        self.mirror_average = request.mirror_average;
        if request.aspect != self.tracker.mode() {
            self.tracker = RegionTracker::new(request.aspect);
            self.refiner.reset();
        }
        let same_model = !self.change_model(shared, &request);
        *lock(&shared.stopper) = self.model.as_ref().map(Model::stopper);
        if let Some(m) = &self.model {
            let (w, h) = m.input_size();
            shared
                .input_size
                .store(((w as u64) << 32) | h as u64, Ordering::Release);
        }
        let same_server = self.remote.as_ref().map(|r| &r.config) == request.server.as_ref();
        if !same_model || !same_server {
            self.remote = None; // stops its health check
            *lock(&shared.remote) = RemoteStatus::default();
            if let Some(config) = request.server {
                let mut remote = Remote {
                    config,
                    model: None,
                    misses_in_a_row: 0,
                    health: None,
                    backoff_ms: HEALTH_BACKOFF_FIRST_MS,
                    logged_reason: None,
                    recovering: false,
                };
                if let Some(m) = &self.model {
                    remote.connect(shared, &m.manifest, false);
                }
                self.remote = Some(remote);
            }
        }
    }

    /// Loads the model `request` names when it is not the one running (another manifest or
    /// other session options), or when its file was replaced since the running one was read
    /// (checked on every settings change). Returns whether another model now runs (or none).
    ///
    /// The model that ran before a switch is kept as the spare: switching back to it, with the
    /// same options and its file unchanged, takes it up again without building a session
    /// (within [`SPARE_KEPT_FOR`]; then it is dropped).
    ///
    /// A replaced file that cannot be loaded leaves the running model in place, with a warning
    /// in the status. A load that failed is not tried again until the manifest or the file
    /// changes.
    fn change_model(&mut self, shared: &Shared, request: &Request) -> bool {
        let wanted = request.manifest.as_ref().ok();
        let stamp = wanted.and_then(|m| FileStamp::of(&m.model_path()));
        let same_manifest = matches!((&self.model, wanted),
            (Some(m), Some(w)) if m.manifest == *w && m.options == request.session);
        if same_manifest && stamp == self.model_stamp {
            return false;
        }
        let failed_before = self
            .failed_load
            .as_ref()
            .filter(|f| Some(&f.manifest) == wanted && f.stamp == stamp);
        if let Some(failed) = failed_before {
            if same_manifest {
                return false; // the replaced file is still the broken one: keep running
            }
            let state = State::Error(failed.kind, failed.message.clone());
            self.set_aside(shared);
            shared.set_state(state);
            return true;
        }
        if same_manifest {
            let manifest = wanted.expect("same_manifest");
            return self.reload_replaced(shared, manifest, request.session, stamp);
        }
        let spare_fits = self.spare.as_ref().is_some_and(|spare| {
            Some(&spare.model.manifest) == wanted
                && spare.model.options == request.session
                && spare.stamp == stamp
                && stamp.is_some()
        });
        let spare = self.spare.take().filter(|_| spare_fits);
        self.set_aside(shared); // the running model becomes the spare (the old spare is freed)
        if let Some(spare) = spare {
            log::info!(
                "model '{}' taken up again (kept since the last switch)",
                spare.model.manifest.id
            );
            self.model = Some(spare.model);
            self.model_stamp = spare.stamp;
            return true;
        }
        self.model = match &request.manifest {
            Ok(manifest) => match load_model(shared, manifest, request.session) {
                Ok(model) => {
                    self.model_stamp = stamp;
                    self.failed_load = None;
                    Some(model)
                }
                Err((kind, message)) => {
                    self.failed_load = Some(FailedLoad {
                        manifest: manifest.clone(),
                        stamp,
                        kind,
                        message,
                    });
                    None
                }
            },
            Err(why) => {
                shared.set_state(State::Error(ErrorKind::Model, why.clone()));
                None
            }
        };
        // The old spare's and the load's scratch memory is free now; without this the soak's
        // model switches kept a few MB more resident each time (glibc arenas).
        release_freed_memory();
        true
    }

    /// Stops running the model: it becomes the spare (replacing the one kept before), and what
    /// was derived from its masks is dropped.
    fn set_aside(&mut self, shared: &Shared) {
        let stamp = self.model_stamp;
        if let Some(model) = self.model.take() {
            self.spare = Some(Spare {
                model,
                stamp,
                since: Instant::now(),
            });
        }
        self.unload(shared);
    }

    /// Drops the spare model once it has been kept unused for `spare_kept_for_ms`.
    fn expire_spare(&mut self, shared: &Shared) {
        let kept_for = Duration::from_millis(shared.spare_kept_for_ms.load(Ordering::Relaxed));
        if self
            .spare
            .as_ref()
            .is_some_and(|spare| spare.since.elapsed() >= kept_for)
        {
            if let Some(spare) = self.spare.take() {
                log::info!(
                    "model '{}' dropped: unused for {} s since the last switch",
                    spare.model.manifest.id,
                    kept_for.as_secs()
                );
            }
            release_freed_memory();
        }
    }

    /// Drops the running model and what was derived from its masks.
    fn unload(&mut self, shared: &Shared) {
        drop(self.model.take());
        self.model_stamp = None;
        self.degenerate = 0;
        *lock(&shared.model_warning) = None;
        *lock(&shared.model_file_warning) = None;
        self.refiner.reset();
        self.tracker.reset();
        shared.input_size.store(0, Ordering::Release);
    }

    /// The running model's file was replaced: reads the new one and runs it, or keeps the
    /// running model and says why in the status. Returns whether the new one runs.
    fn reload_replaced(
        &mut self,
        shared: &Shared,
        manifest: &Manifest,
        session: SessionOptions,
        stamp: Option<FileStamp>,
    ) -> bool {
        let path = manifest.model_path();
        shared.model_loads.fetch_add(1, Ordering::Relaxed);
        let loaded = runtime::environment()
            .map_err(|e| e.to_string())
            .and_then(|env| Model::load(env, manifest, session));
        match loaded {
            Ok(model) => {
                log::info!("model file {} changed: reloaded", path.display());
                self.unload(shared);
                self.model = Some(model);
                self.model_stamp = stamp;
                self.failed_load = None;
                release_freed_memory();
                true
            }
            Err(message) => {
                let why = format!("replaced on disk and not loadable ({message})");
                log::warn!("model file {why}; still running the model read before");
                *lock(&shared.model_file_warning) = Some(why);
                self.failed_load = Some(FailedLoad {
                    manifest: manifest.clone(),
                    stamp,
                    kind: ErrorKind::Model,
                    message,
                });
                false
            }
        }
    }

    /// Whether a model is loaded and the frame is at its input size (not one from before a
    /// switch). A new source size makes the tracker find the person again.
    fn frame_fits_model(&mut self) -> bool {
        let Some(m) = &self.model else { return false };
        if (self.frame.width, self.frame.height) != m.input_size() {
            return false;
        }
        if self.frame.source_size != self.source_size {
            self.source_size = self.frame.source_size;
            self.tracker.reset();
        }
        true
    }

    /// Chooses what to do with the frame (see `cadence`).
    fn choose(&mut self) -> Step {
        let f = &self.frame;
        self.cadence
            .decide(&f.bgra, (f.width as usize, f.height as usize), f.region)
    }

    /// The person did not move: the mask shown stays, and is current for this frame.
    fn keep(&mut self, shared: &Shared) {
        let mut out = lock(&shared.output);
        out.frame = self.frame.frame;
        out.confirmed += 1;
        out.skipped += 1;
    }

    /// The person moved little: publishes the last inferred mask moved with them, for this
    /// frame (its region and the next region stay those of the last inference).
    /// `(start, cpu)`: when the choice began (the motion search is part of a warp's cost).
    fn warp(&mut self, shared: &Shared, (start, cpu): (Instant, f64)) {
        self.cadence.warp(&mut self.coefficients);
        let (mw, mh) = self.cadence.mask_size();
        {
            let mut out = lock(&shared.output);
            std::mem::swap(&mut out.coefficients, &mut self.coefficients);
            out.width = mw as u32;
            out.height = mh as u32;
            out.frame = self.frame.frame;
            out.sequence += 1;
            out.confirmed += 1;
            out.warped += 1;
        }
        let (end, cpu_end) = now();
        let mut t = lock(&shared.timings);
        t.warp.push((end - start).as_secs_f64() * 1e3);
        t.warp_cpu.push(cpu_end - cpu);
    }

    /// Packs the frame into the input tensor and runs the model; the probability plane lands in
    /// `self.mask`. `None` when the run failed (the state says why).
    fn infer(&mut self, shared: &Shared) -> Option<Times> {
        if shared.stop.load(Ordering::Acquire) {
            return None; // stopped while a model loaded: its stopper came too late
        }
        let start = now();
        if let (Some(remote), Some(m)) = (self.remote.as_mut(), self.model.as_ref()) {
            match remote.infer(shared, &self.frame, m.output_size(), &m.manifest) {
                RemoteStep::Answered => {
                    if let Some(r) = &mut remote.model {
                        r.swap_probability(&mut self.mask);
                    }
                    return Some(Times {
                        start,
                        preprocessed: start,
                        inferred: now(),
                    });
                }
                RemoteStep::Missed => return None, // the previous mask stays
                RemoteStep::Local => {}
            }
        }
        let m = self.model.as_mut()?;
        m.preprocess(&self.frame.bgra, self.frame.width as usize * 4);
        let preprocessed = now();
        let mut result = m.run().map(|_| ());
        if result.is_ok() && self.mirror_average {
            result = m.add_mirrored_pass(
                &self.frame.bgra,
                self.frame.width as usize * 4,
                &mut self.mirrored,
                &mut self.first_pass,
            );
        }
        let inferred = now();
        if let Err(e) = result {
            if !shared.stop.load(Ordering::Acquire) {
                shared.set_state(State::Error(ErrorKind::Inference, e));
            }
            return None;
        }
        let nonfinite = m.nonfinite_outputs();
        m.swap_probability(&mut self.mask); // the plane, without a copy
        self.check_output(shared, nonfinite);
        Some(Times {
            start,
            preprocessed,
            inferred,
        })
    }

    /// Watches for a broken model: NaN or infinite outputs, or one value over the whole mask,
    /// [`DEGENERATE_AFTER`] inferences in a row give a status warning and one log line; a
    /// normal output clears it.
    fn check_output(&mut self, shared: &Shared, nonfinite: usize) {
        let first = self.mask.first().copied().unwrap_or(0.0);
        let constant = self.mask.iter().all(|v| *v == first);
        let why = if nonfinite > 0 {
            Some(format!(
                "{nonfinite} of its values are NaN or infinite (read as no person)"
            ))
        } else if constant {
            Some(format!("it is {first} over the whole frame"))
        } else {
            None
        };
        self.degenerate = if why.is_some() {
            self.degenerate + 1
        } else {
            0
        };
        let mut warning = lock(&shared.model_warning);
        match why {
            Some(why) if self.degenerate >= DEGENERATE_AFTER && warning.is_none() => {
                log::warn!(
                    "the model's output cannot be a mask for {DEGENERATE_AFTER} frames: {why}"
                );
                *warning = Some(why);
            }
            None if warning.is_some() => {
                log::info!("the model's output looks like a mask again");
                *warning = None;
            }
            _ => {}
        }
    }

    /// Feeds the mask to the region tracker and, unless it was a detection pass (which only
    /// moves the region), refines it in place. Returns whether there is a mask to publish.
    fn refine(&mut self, shared: &Shared) -> bool {
        let Some(m) = &self.model else { return false };
        let f = &self.frame;
        let (mw, mh) = m.output_size();
        let show = self.tracker.observe(
            &self.mask,
            (mw, mh),
            f.region,
            f.source_size,
            m.input_size(),
        );
        if !show {
            let mut out = lock(&shared.output);
            out.next_region = self.tracker.region(f.source_size, m.input_size());
            out.detections += 1;
            return false;
        }
        let (gw, gh) = (f.width as usize, f.height as usize);
        self.refiner.refine(
            &mut self.mask,
            mw,
            mh,
            &f.bgra,
            (gw, gh, gw * 4),
            f.source_size,
            f.region,
            &self.refine,
        );
        true
    }

    /// Publishes the refined mask (latest wins) with its frame number and regions, records the
    /// stage times, and reports the model running.
    fn publish(&mut self, shared: &Shared, times: &Times) {
        let Some(m) = &self.model else { return };
        let (mw, mh) = m.output_size();
        let next_region = self.tracker.region(self.frame.source_size, m.input_size());
        self.refiner.swap_coefficients(&mut self.coefficients); // without a copy
        let person_share = if self.mask.is_empty() {
            0.0
        } else {
            self.mask.iter().sum::<f32>() / self.mask.len() as f32
        };
        let f = &mut self.frame;
        // keeps the frame without a copy: `submit` resizes and overwrites the buffer that goes
        // back to the input slot in exchange
        self.cadence.inferred(
            &mut f.bgra,
            (f.width as usize, f.height as usize),
            f.region,
            &self.mask,
            (mw, mh),
            &self.coefficients,
        );
        {
            let mut out = lock(&shared.output);
            std::mem::swap(&mut out.coefficients, &mut self.coefficients);
            out.width = mw as u32;
            out.height = mh as u32;
            out.region = self.frame.region;
            out.next_region = next_region;
            out.frame = self.frame.frame;
            out.sequence += 1;
            out.confirmed += 1;
            out.inferred += 1;
            out.mirrored += u64::from(self.mirror_average);
            out.person_share = person_share;
        }
        let (t3, c3) = now();
        let ((t0, c0), (t1, c1), (t2, c2)) = (times.start, times.preprocessed, times.inferred);
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        let mut t = lock(&shared.timings);
        t.preprocess.push(ms(t0, t1));
        t.inference.push(ms(t1, t2));
        t.postprocess.push(ms(t2, t3));
        t.total.push(ms(t0, t3));
        t.inference_cpu.push(c2 - c1);
        t.total_cpu.push(c3 - c0);
        drop(t);
        if !matches!(*lock(&shared.state), State::Running(..)) {
            let label = match &m.provider_note {
                Some(note) => format!("{} ({note})", m.manifest.id),
                None => m.manifest.id.clone(),
            };
            shared.set_state(State::Running(label, m.provider));
        }
    }
}

/// What became of a frame sent to the inference server.
enum RemoteStep {
    /// The server's mask is in the remote model's plane.
    Answered,
    /// No mask in time: the previous one stays.
    Missed,
    /// The server is not used (now): infer on this computer.
    Local,
}

impl Remote {
    /// Connects and checks the server's model against `manifest`; on failure infers locally
    /// and, unless the model does not fit, starts the health check. `again`: a reconnection
    /// after a fallback (counted and logged as a recovery with its first answer).
    fn connect(&mut self, shared: &Shared, manifest: &Manifest, again: bool) {
        self.health = None;
        self.misses_in_a_row = 0;
        match RemoteModel::connect(&self.config, manifest) {
            Ok(model) => {
                let mut status = lock(&shared.remote);
                status.backend = Backend::Remote;
                status.reason = None;
                status.mismatch = false;
                status.payload = Some(model.payload.datatype());
                drop(status);
                if !again {
                    log::info!(
                        "inferring on inference server {} (model '{}', {} input)",
                        self.config.url,
                        self.config.model,
                        model.payload.datatype()
                    );
                }
                self.recovering = again;
                self.model = Some(model);
            }
            Err(e) => self.fall_back(shared, e.to_string(), e.kind == RemoteErrorKind::Mismatch),
        }
    }

    /// Infers on this computer from now on, says why (once per reason), and (unless the model
    /// does not fit) waits for the server in the background.
    fn fall_back(&mut self, shared: &Shared, reason: String, mismatch: bool) {
        self.model = None;
        self.misses_in_a_row = 0;
        self.recovering = false;
        if self.logged_reason.as_ref() != Some(&reason) {
            log::warn!("{reason}; inferring on this computer");
            self.logged_reason = Some(reason.clone());
        }
        let mut status = lock(&shared.remote);
        if status.backend == Backend::Remote {
            status.fallbacks += 1;
        }
        status.backend = Backend::Fallback;
        status.reason = Some(reason);
        status.mismatch = mismatch;
        drop(status);
        if !mismatch {
            self.health = HealthCheck::start(&self.config.ready_url(), self.backoff_ms)
                .map_err(|e| log::warn!("cannot start the inference server's health check: {e}"))
                .ok();
            self.backoff_ms = (self.backoff_ms * 2).min(HEALTH_BACKOFF_MAX_MS);
        }
    }

    /// Sends `frame` to the server when it is used (reconnecting first when the health check
    /// saw it come back). `mask_size`: the local model's mask, which the answer must match.
    fn infer(
        &mut self,
        shared: &Shared,
        frame: &Frame,
        mask_size: (usize, usize),
        manifest: &Manifest,
    ) -> RemoteStep {
        if self.model.is_none() && self.health.as_ref().is_some_and(HealthCheck::ready) {
            self.connect(shared, manifest, true);
        }
        let Some(model) = self.model.as_mut() else {
            return RemoteStep::Local;
        };
        let started = Instant::now();
        let result = model
            .infer(&frame.bgra, frame.width as usize * 4)
            .map(|_| ())
            .and_then(|()| {
                if model.output_size() == mask_size {
                    Ok(())
                } else {
                    Err(super::remote::RemoteError {
                        kind: RemoteErrorKind::Mismatch,
                        message: format!(
                            "inference server {}: a {:?} mask, the model's is {mask_size:?}",
                            self.config.url,
                            model.output_size()
                        ),
                    })
                }
            });
        match result {
            Ok(()) => {
                self.misses_in_a_row = 0;
                self.backoff_ms = HEALTH_BACKOFF_FIRST_MS;
                let mut status = lock(&shared.remote);
                if self.recovering {
                    self.recovering = false;
                    self.logged_reason = None;
                    status.recoveries += 1;
                    log::info!(
                        "inference server {} is back: inferring there again",
                        self.config.url
                    );
                }
                status.frames += 1;
                status
                    .round_trip
                    .push(started.elapsed().as_secs_f64() * 1e3);
                status.bytes_sent = model.bytes_sent;
                status.bytes_received = model.bytes_received;
                RemoteStep::Answered
            }
            Err(e) => {
                self.misses_in_a_row += 1;
                lock(&shared.remote).misses += 1;
                log::debug!("inference server miss {}: {e}", self.misses_in_a_row);
                if e.kind == RemoteErrorKind::Mismatch {
                    self.fall_back(shared, e.message, true);
                    RemoteStep::Local
                } else if self.misses_in_a_row >= MISSES_BEFORE_FALLBACK {
                    let reason = format!(
                        "{} ({} requests in a row failed)",
                        e.message, self.misses_in_a_row
                    );
                    self.fall_back(shared, reason, false);
                    RemoteStep::Local
                } else {
                    RemoteStep::Missed
                }
            }
        }
    }
}

/// Loads `manifest`'s model, with the state `Loading` meanwhile and `Error` (also returned) on
/// failure.
fn load_model(
    shared: &Shared,
    manifest: &Manifest,
    session: SessionOptions,
) -> Result<Model, (ErrorKind, String)> {
    shared.set_state(State::Loading(manifest.id.clone()));
    shared.model_loads.fetch_add(1, Ordering::Relaxed);
    let loaded = match runtime::environment() {
        Ok(env) => Model::load(env, manifest, session).map_err(|e| (ErrorKind::Model, e)),
        Err(e) => Err((ErrorKind::Runtime, e.to_string())),
    };
    match &loaded {
        Ok(_) => log::info!(
            "model '{}' loaded from {}",
            manifest.id,
            manifest.model_path().display()
        ),
        Err((kind, message)) => shared.set_state(State::Error(*kind, message.clone())),
    }
    loaded
}
