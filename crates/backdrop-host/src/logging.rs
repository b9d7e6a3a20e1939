//! libobs log capture: every `blog` line goes to `OUT/obs.log`; warnings and errors are echoed to
//! stderr, and `[backdrop]` warnings/errors are counted for the report.

use backdrop_obs::sys;
use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Text a plugin log line contains (the plugin's own prefix).
const PLUGIN_TAG: &str = "[backdrop]";

/// Where log lines go; lives for the whole process (libobs may log until `obs_shutdown` returns).
struct LogSink {
    file: Mutex<Option<File>>,
    backdrop_errors: AtomicU64,
    backdrop_warnings: AtomicU64,
    errors: AtomicU64,
}

static SINK: OnceLock<LogSink> = OnceLock::new();

extern "C" {
    /// C `vsnprintf`; on x86_64 a `va_list` is passed as a pointer to its single `__va_list_tag`.
    fn vsnprintf(
        buf: *mut c_char,
        n: usize,
        fmt: *const c_char,
        ap: *mut sys::__va_list_tag,
    ) -> c_int;
}

/// Opens `path` for the log and installs the libobs log handler. Call before `obs_startup`.
pub fn install(path: &Path) -> anyhow::Result<()> {
    let file = File::create(path)?;
    let sink = SINK.get_or_init(|| LogSink {
        file: Mutex::new(None),
        backdrop_errors: AtomicU64::new(0),
        backdrop_warnings: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    *sink.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    unsafe { sys::base_set_log_handler(Some(log_handler), std::ptr::null_mut()) };
    Ok(())
}

/// Counts of `[backdrop]` lines at LOG_ERROR and LOG_WARNING.
pub fn backdrop_counts() -> (u64, u64) {
    SINK.get().map_or((0, 0), |s| {
        (
            s.backdrop_errors.load(Ordering::Relaxed),
            s.backdrop_warnings.load(Ordering::Relaxed),
        )
    })
}

/// Number of LOG_ERROR lines from anyone.
pub fn error_count() -> u64 {
    SINK.get().map_or(0, |s| s.errors.load(Ordering::Relaxed))
}

/// Writes a line of the host's own to the log file and stderr.
pub fn host(msg: &str) {
    let _ = writeln!(std::io::stderr(), "backdrop-render: {msg}");
    write_line(&format!("[backdrop-render] {msg}"));
}

fn level_name(lvl: c_int) -> &'static str {
    match lvl {
        l if l <= sys::LOG_ERROR as c_int => "error",
        l if l <= sys::LOG_WARNING as c_int => "warning",
        l if l <= sys::LOG_INFO as c_int => "info",
        _ => "debug",
    }
}

/// Appends `line` to obs.log (not stderr).
pub fn write_line(line: &str) {
    if let Some(sink) = SINK.get() {
        if let Some(f) = sink.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Formats a printf-style message with its `va_list`.
///
/// # Safety
/// `fmt` and `args` must come straight from libobs's log call.
unsafe fn format_message(fmt: *const c_char, args: *mut sys::__va_list_tag) -> String {
    if fmt.is_null() {
        return String::new();
    }
    if args.is_null() {
        return CStr::from_ptr(fmt).to_string_lossy().into_owned();
    }
    // va_copy: on x86_64 SysV a va_list is one `__va_list_tag`; copying it is what va_copy does
    // (the register save area is only read). The copy measures, the original formats if needed.
    let mut copy: sys::__va_list_tag = *args;
    let mut buf = [0 as c_char; 2048];
    let n = vsnprintf(buf.as_mut_ptr(), buf.len(), fmt, &mut copy);
    if n < 0 {
        return CStr::from_ptr(fmt).to_string_lossy().into_owned();
    }
    if (n as usize) < buf.len() {
        return CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
    }
    let mut big = vec![0 as c_char; n as usize + 1];
    vsnprintf(big.as_mut_ptr(), big.len(), fmt, args);
    CStr::from_ptr(big.as_ptr()).to_string_lossy().into_owned()
}

/// The `log_handler_t` given to `base_set_log_handler`; called from any libobs thread.
unsafe extern "C" fn log_handler(
    lvl: c_int,
    msg: *const c_char,
    args: *mut sys::__va_list_tag,
    _param: *mut c_void,
) {
    let _ = std::panic::catch_unwind(|| {
        let text = format_message(msg, args);
        let level = level_name(lvl);
        let is_plugin = text.contains(PLUGIN_TAG);
        if let Some(sink) = SINK.get() {
            if lvl <= sys::LOG_ERROR as c_int {
                sink.errors.fetch_add(1, Ordering::Relaxed);
                if is_plugin {
                    sink.backdrop_errors.fetch_add(1, Ordering::Relaxed);
                }
            } else if lvl <= sys::LOG_WARNING as c_int && is_plugin {
                sink.backdrop_warnings.fetch_add(1, Ordering::Relaxed);
            }
        }
        for line in text.lines() {
            write_line(&format!("{level}: {line}"));
            // libobs 29 warns "Number of remaining views: 1" on every obs_reset_video (it counts
            // the main mix); harmless, so it stays in obs.log only.
            if lvl <= sys::LOG_WARNING as c_int && !line.starts_with("Number of remaining views") {
                let _ = writeln!(std::io::stderr(), "obs {level}: {line}");
            }
        }
    });
}
