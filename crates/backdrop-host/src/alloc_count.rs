//! Per-thread allocation counts for `--count-allocations`.
//!
//! This executable defines `malloc`, `calloc`, `realloc`, `memalign`, `aligned_alloc` and
//! `posix_memalign` itself. The linker exports them (libc references them), so they interpose
//! for the whole process: libobs, the plugin (Rust's system allocator), ONNX Runtime (C++
//! `operator new`) and Mesa all allocate through them. Each one forwards straight to glibc's own
//! implementation (`__libc_malloc`, ...); `free` is glibc's, unchanged.
//!
//! Counting is off until [`enable`]: then the only cost is one relaxed atomic load per call. When
//! on, every call that allocates adds 1 to its thread's slot in a fixed table (found once per
//! thread and cached in a thread-local), so [`counts`] can read the count of any thread by its
//! kernel thread id. Nothing here allocates, so it cannot recurse.
//!
//! Attribution ([`watch`]): for the graphics thread and the worker threads only, one allocation
//! in [`trace_every`] (default 64) also takes a stack trace (glibc `backtrace`, 5-10 µs: tracing
//! every one would add ~2 ms of CPU per inferred frame to the worker) and is classified by the
//! code on the stack; the counts are scaled back up, so they are estimates: inside the plugin (`obs-backdrop.so` anywhere on the stack: the filter's own calls and
//! whatever libobs/Mesa allocate on its behalf) and inside ONNX Runtime
//! (`libonnxruntime.so`). That separates the filter's allocations on the graphics thread from
//! libobs's and Mesa's own, which a per-thread count alone cannot. An allocation with the plugin
//! on the stack but, closer to `malloc`, one of libobs's functions that render a source
//! (`obs_source_video_render`, `obs_source_default_render`, `obs_source_skip_video_filter`) is
//! the filter's *target* being drawn (the source under the filter, drawn with or without it) and
//! is counted apart.

// A sanitizer build has no interposers; what only they use is unused there.
#![cfg_attr(backdrop_sanitizer, allow(dead_code))]

use std::cell::Cell;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

extern "C" {
    /// glibc `backtrace(3)`.
    fn backtrace(buffer: *mut *mut c_void, size: c_int) -> c_int;
    /// glibc `dladdr1(3)`; with `RTLD_DL_SYMENT` (1) `extra` receives the `Elf64_Sym`.
    fn dladdr1(
        addr: *const c_void,
        info: *mut libc::Dl_info,
        extra: *mut *mut c_void,
        flags: c_int,
    ) -> c_int;
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
}

/// Threads tracked; threads beyond this share the last slot (tid reported as 0).
const SLOTS: usize = 1024;
/// Thread-local value meaning "slot not looked up yet".
const NO_SLOT: u32 = u32::MAX;

struct Slot {
    tid: AtomicU32,
    count: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    tid: AtomicU32::new(0),
    count: AtomicU64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static ENABLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static MY_SLOT: Cell<u32> = const { Cell::new(NO_SLOT) };
    static MY_TID: Cell<u32> = const { Cell::new(0) };
    /// Set while this thread takes a stack trace (its own allocations are not traced).
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

/// Watched threads: index 0 the graphics thread, 1.. worker threads (0 = empty).
static WATCH: [AtomicU32; 4] = [
    AtomicU32::new(0),
    AtomicU32::new(0),
    AtomicU32::new(0),
    AtomicU32::new(0),
];
/// Address ranges `[start, end)`: 0 the plugin, 1 ONNX Runtime, 2 this executable.
static RANGES: [[AtomicUsize; 2]; 3] = [
    [AtomicUsize::new(0), AtomicUsize::new(0)],
    [AtomicUsize::new(0), AtomicUsize::new(0)],
    [AtomicUsize::new(0), AtomicUsize::new(0)],
];
/// libobs functions that render a source (see the module doc).
const SOURCE_RENDER_FNS: [&std::ffi::CStr; 3] = [
    c"obs_source_video_render",
    c"obs_source_default_render",
    c"obs_source_skip_video_filter",
];
/// Their code ranges `[start, end)`.
static SOURCE_RENDER: [[AtomicUsize; 2]; 3] = [
    [AtomicUsize::new(0), AtomicUsize::new(0)],
    [AtomicUsize::new(0), AtomicUsize::new(0)],
    [AtomicUsize::new(0), AtomicUsize::new(0)],
];
/// Counters per role (0 graphics, 1 workers), indexed by the `A_*` constants.
static ATTRIBUTED: [[AtomicU64; 5]; 2] = [
    [
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    ],
    [
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    ],
];
/// Allocations traced.
pub const A_TRACED: usize = 0;
/// ... with the plugin anywhere on the stack.
pub const A_PLUGIN: usize = 1;
/// ... with ONNX Runtime anywhere on the stack.
pub const A_ORT: usize = 2;
/// ... with the plugin on the stack, drawing its target (see the module doc).
pub const A_TARGET: usize = 3;
/// ... called directly from the plugin's code (`malloc`'s caller is in the plugin: its Rust
/// code, including the `ort` crate and std, not libobs / Mesa / ONNX Runtime on its behalf).
pub const A_DIRECT: usize = 4;
/// Stack frames looked at per traced allocation.
const TRACE_DEPTH: usize = 64;
/// Trace one allocation in this many on a watched thread (1 = all).
static TRACE_EVERY: AtomicU64 = AtomicU64::new(64);
/// Allocations seen on watched threads, for the 1-in-N choice.
static WATCHED_SEEN: AtomicU64 = AtomicU64::new(0);

/// Sets how many allocations on a watched thread share one stack trace (1 = trace all).
pub fn set_trace_every(n: u64) {
    TRACE_EVERY.store(n.max(1), Ordering::SeqCst);
}

/// How many allocations on a watched thread share one stack trace.
pub fn trace_every() -> u64 {
    TRACE_EVERY.load(Ordering::Relaxed)
}

/// Starts counting (idempotent).
pub fn enable() {
    // The first `backtrace` call loads libgcc_s (and allocates): do it here, not in a hook.
    let mut buf = [std::ptr::null_mut::<c_void>(); 4];
    // SAFETY: buf holds 4 entries.
    unsafe { backtrace(buf.as_mut_ptr(), buf.len() as c_int) };
    ENABLED.store(true, Ordering::SeqCst);
}

/// Address range `[start, end)` of the mappings whose path ends with `name`, from
/// `/proc/self/maps`.
pub fn mapped_range(name: &str) -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let mut range: Option<(usize, usize)> = None;
    for line in maps.lines() {
        if !line.trim_end().ends_with(name) {
            continue;
        }
        let (a, b) = line.split_whitespace().next()?.split_once('-')?;
        let (a, b) = (
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        );
        range = Some(match range {
            Some((lo, hi)) => (lo.min(a), hi.max(b)),
            None => (a, b),
        });
    }
    range
}

/// Code range of the exported function `name` (dlsym + the symbol's size).
fn function_range(name: &std::ffi::CStr) -> Option<(usize, usize)> {
    // SAFETY: dlsym/dladdr1 only read the loader's tables; `sym` points into them.
    unsafe {
        let addr = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
        if addr.is_null() {
            return None;
        }
        let mut info: libc::Dl_info = std::mem::zeroed();
        let mut sym: *mut c_void = std::ptr::null_mut();
        if dladdr1(addr, &mut info, &mut sym, 1) == 0 || sym.is_null() {
            return None;
        }
        let sym = &*(sym as *const libc::Elf64_Sym);
        let start = addr as usize;
        (sym.st_size > 0).then(|| (start, start + sym.st_size as usize))
    }
}

/// Starts attributing the allocations of `graphics` and `workers` (at most 3) to the code ranges
/// `plugin` and `ort` (see the module doc); resets the attribution counters.
pub fn watch(
    graphics: Option<u32>,
    workers: &[u32],
    plugin: Option<(usize, usize)>,
    ort: Option<(usize, usize)>,
) {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| mapped_range(&p.to_string_lossy()));
    for (i, r) in [plugin, ort, exe].into_iter().enumerate() {
        let (a, b) = r.unwrap_or((0, 0));
        RANGES[i][0].store(a, Ordering::SeqCst);
        RANGES[i][1].store(b, Ordering::SeqCst);
    }
    for (slot, name) in SOURCE_RENDER.iter().zip(SOURCE_RENDER_FNS) {
        let (a, b) = function_range(name).unwrap_or((0, 0));
        slot[0].store(a, Ordering::SeqCst);
        slot[1].store(b, Ordering::SeqCst);
    }
    for role in &ATTRIBUTED {
        for c in role {
            c.store(0, Ordering::SeqCst);
        }
    }
    WATCH[0].store(graphics.unwrap_or(0), Ordering::SeqCst);
    for (i, w) in WATCH.iter().enumerate().skip(1) {
        w.store(workers.get(i - 1).copied().unwrap_or(0), Ordering::SeqCst);
    }
}

/// Stops attributing; returns the counters per role (graphics, workers), indexed by `A_*`: traced
/// allocations only (multiply by [`trace_every`] for estimates of all).
pub fn unwatch() -> [[u64; 5]; 2] {
    for w in &WATCH {
        w.store(0, Ordering::SeqCst);
    }
    let mut out = [[0; 5]; 2];
    for (o, a) in out.iter_mut().zip(&ATTRIBUTED) {
        for (x, c) in o.iter_mut().zip(a) {
            *x = c.load(Ordering::SeqCst);
        }
    }
    out
}

/// Classifies the current stack (called from a hook on a watched thread).
fn attribute(role: usize) {
    let _ = IN_TRACE.try_with(|busy| {
        if busy.get() {
            return;
        }
        busy.set(true);
        let mut buf = [std::ptr::null_mut::<c_void>(); TRACE_DEPTH];
        // SAFETY: buf holds TRACE_DEPTH entries; libgcc_s was loaded by `enable`.
        let n = unsafe { backtrace(buf.as_mut_ptr(), TRACE_DEPTH as c_int) }.max(0) as usize;
        let range = |i: usize| {
            (
                RANGES[i][0].load(Ordering::Relaxed),
                RANGES[i][1].load(Ordering::Relaxed),
            )
        };
        let (plugin, ort, exe) = (range(0), range(1), range(2));
        let within = |p: usize, (a, b): (usize, usize)| a < b && p >= a && p < b;
        let frames = &buf[..n.min(TRACE_DEPTH)];
        // Innermost (closest to malloc) plugin frame.
        let first_plugin = frames.iter().position(|&p| within(p as usize, plugin));
        let in_ort = frames.iter().any(|&p| within(p as usize, ort));
        let c = &ATTRIBUTED[role];
        c[A_TRACED].fetch_add(1, Ordering::Relaxed);
        if in_ort {
            c[A_ORT].fetch_add(1, Ordering::Relaxed);
        }
        // malloc's caller: the first frame outside this executable (the hook's own frames).
        let caller = frames.iter().find(|&&p| !within(p as usize, exe));
        if caller.is_some_and(|&p| within(p as usize, plugin)) {
            c[A_DIRECT].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(i) = first_plugin {
            c[A_PLUGIN].fetch_add(1, Ordering::Relaxed);
            let draws_target = frames[..i].iter().any(|&p| {
                SOURCE_RENDER.iter().any(|r| {
                    within(
                        p as usize,
                        (r[0].load(Ordering::Relaxed), r[1].load(Ordering::Relaxed)),
                    )
                })
            });
            if draws_target {
                c[A_TARGET].fetch_add(1, Ordering::Relaxed);
            }
        }
        busy.set(false);
    });
}

/// Whether counting is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Whether the overrides are really in use: an allocation by this thread (through Rust's system
/// allocator, i.e. `malloc`) must move its count. False if the linker did not export them.
pub fn working() -> bool {
    if !enabled() {
        return false;
    }
    let tid = gettid();
    let before = count_of(tid);
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
    std::hint::black_box(&v);
    drop(v);
    count_of(tid) > before
}

fn gettid() -> u32 {
    // SAFETY: a plain syscall without arguments; it does not allocate.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Finds or claims the slot of thread `tid` (open addressing, linear probing).
fn claim(tid: u32) -> u32 {
    let start = (tid as usize).wrapping_mul(2_654_435_761) % (SLOTS - 1);
    for i in 0..SLOTS - 1 {
        let idx = (start + i) % (SLOTS - 1);
        let slot = &TABLE[idx];
        let cur = slot.tid.load(Ordering::Acquire);
        // A recycled tid continues the old count: only deltas are ever used.
        if cur == tid {
            return idx as u32;
        }
        if cur == 0
            && slot
                .tid
                .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return idx as u32;
        }
        if slot.tid.load(Ordering::Acquire) == tid {
            return idx as u32;
        }
    }
    (SLOTS - 1) as u32
}

#[inline]
fn count_one() {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    // `try_with`: during thread teardown the thread-local may be gone; such calls are not counted.
    let _ = MY_SLOT.try_with(|s| {
        let mut idx = s.get();
        if idx == NO_SLOT {
            let tid = gettid();
            let _ = MY_TID.try_with(|t| t.set(tid));
            idx = claim(tid);
            s.set(idx);
        }
        TABLE[idx as usize].count.fetch_add(1, Ordering::Relaxed);
    });
    if WATCH[0].load(Ordering::Relaxed) == 0 && WATCH[1].load(Ordering::Relaxed) == 0 {
        return;
    }
    let tid = MY_TID.try_with(Cell::get).unwrap_or(0);
    if tid == 0 {
        return;
    }
    if let Some(i) = WATCH.iter().position(|w| w.load(Ordering::Relaxed) == tid) {
        let every = TRACE_EVERY.load(Ordering::Relaxed).max(1);
        if WATCHED_SEEN.fetch_add(1, Ordering::Relaxed) % every == 0 {
            attribute(if i == 0 { 0 } else { 1 });
        }
    }
}

/// Allocations counted so far for thread `tid` (0 when it never allocated while counting).
pub fn count_of(tid: u32) -> u64 {
    TABLE[..SLOTS - 1]
        .iter()
        .find(|s| s.tid.load(Ordering::Acquire) == tid)
        .map_or(0, |s| s.count.load(Ordering::Relaxed))
}

/// Count of every tracked thread: `(tid, allocations)`; the overflow slot has tid 0.
pub fn counts() -> Vec<(u32, u64)> {
    let mut out: Vec<(u32, u64)> = TABLE[..SLOTS - 1]
        .iter()
        .filter_map(|s| {
            let tid = s.tid.load(Ordering::Acquire);
            (tid != 0).then(|| (tid, s.count.load(Ordering::Relaxed)))
        })
        .collect();
    let overflow = TABLE[SLOTS - 1].count.load(Ordering::Relaxed);
    if overflow > 0 {
        out.push((0, overflow));
    }
    out
}

/// `malloc(3)`, counted, forwarded to glibc.
///
/// # Safety
/// As `malloc(3)`.
// Not in a sanitizer build (RUSTFLAGS --cfg backdrop_sanitizer, scripts/asan.sh): the
// sanitizer's runtime interposes the allocator itself.
#[cfg(not(backdrop_sanitizer))]
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    count_one();
    __libc_malloc(size)
}

/// `calloc(3)`, counted, forwarded to glibc.
///
/// # Safety
/// As `calloc(3)`.
// Not in a sanitizer build (RUSTFLAGS --cfg backdrop_sanitizer, scripts/asan.sh): the
// sanitizer's runtime interposes the allocator itself.
#[cfg(not(backdrop_sanitizer))]
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    count_one();
    __libc_calloc(n, size)
}

/// `realloc(3)`, counted (a shrink or an in-place grow counts too), forwarded to glibc.
///
/// # Safety
/// As `realloc(3)`.
// Not in a sanitizer build (RUSTFLAGS --cfg backdrop_sanitizer, scripts/asan.sh): the
// sanitizer's runtime interposes the allocator itself.
#[cfg(not(backdrop_sanitizer))]
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if size != 0 {
        count_one();
    }
    __libc_realloc(p, size)
}

/// `memalign(3)`, counted, forwarded to glibc.
///
/// # Safety
/// As `memalign(3)`.
// Not in a sanitizer build (RUSTFLAGS --cfg backdrop_sanitizer, scripts/asan.sh): the
// sanitizer's runtime interposes the allocator itself.
#[cfg(not(backdrop_sanitizer))]
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    count_one();
    __libc_memalign(align, size)
}

/// `aligned_alloc(3)`, counted, forwarded to glibc's `memalign`.
///
/// # Safety
/// As `aligned_alloc(3)`.
// Not in a sanitizer build (RUSTFLAGS --cfg backdrop_sanitizer, scripts/asan.sh): the
// sanitizer's runtime interposes the allocator itself.
#[cfg(not(backdrop_sanitizer))]
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    count_one();
    __libc_memalign(align, size)
}

/// `posix_memalign(3)`, counted, forwarded to glibc's `memalign`.
///
/// # Safety
/// As `posix_memalign(3)`.
// Not in a sanitizer build (RUSTFLAGS --cfg backdrop_sanitizer, scripts/asan.sh): the
// sanitizer's runtime interposes the allocator itself.
#[cfg(not(backdrop_sanitizer))]
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || align % std::mem::size_of::<*mut c_void>() != 0 {
        return libc::EINVAL;
    }
    count_one();
    let p = __libc_memalign(align, size);
    if p.is_null() && size != 0 {
        return libc::ENOMEM;
    }
    *out = p;
    0
}
