//! A [`log::Log`] that forwards to libobs' `blog`, every line prefixed with `[backdrop]`, so the
//! plugin and the libobs-free core (which log through the `log` facade) end up in the OBS log.

use crate::{cstring, sys};

/// Forwards `log` records to `blog`: `Error` to `LOG_ERROR` (100), `Warn` to `LOG_WARNING`
/// (200), `Info` to `LOG_INFO` (300), `Debug` and `Trace` to `LOG_DEBUG` (400).
pub struct ObsLogger;

static LOGGER: ObsLogger = ObsLogger;

/// Installs [`ObsLogger`] as this binary's `log` logger (at `Debug`; OBS's own build decides
/// whether debug lines are shown). A no-op when a logger is installed already.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

fn blog_level(level: log::Level) -> i32 {
    (match level {
        log::Level::Error => sys::LOG_ERROR,
        log::Level::Warn => sys::LOG_WARNING,
        log::Level::Info => sys::LOG_INFO,
        log::Level::Debug | log::Level::Trace => sys::LOG_DEBUG,
    }) as i32
}

/// Writes one line to the OBS log as `[backdrop] <message>`.
pub fn write(level: log::Level, message: &str) {
    let line = cstring(&format!("[backdrop] {message}"));
    // SAFETY: "%s" with one valid NUL-terminated string argument; blog may be called from any
    // thread.
    unsafe { sys::blog(blog_level(level), c"%s".as_ptr(), line.as_ptr()) };
}

impl log::Log for ObsLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        write(record.level(), &record.args().to_string());
    }
    fn flush(&self) {}
}
