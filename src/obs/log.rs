//! Logging through libobs' `blog`, every line prefixed with `[backdrop]`.

use super::sys;

/// Log level, mapped to libobs' `LOG_ERROR` (100), `LOG_WARNING` (200), `LOG_INFO` (300) and
/// `LOG_DEBUG` (400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

impl Level {
    fn raw(self) -> i32 {
        (match self {
            Level::Error => sys::LOG_ERROR,
            Level::Warning => sys::LOG_WARNING,
            Level::Info => sys::LOG_INFO,
            Level::Debug => sys::LOG_DEBUG,
        }) as i32
    }
}

/// Writes one line to the OBS log as `[backdrop] <message>`.
pub fn write(level: Level, message: &str) {
    let line = super::cstring(&format!("[backdrop] {message}"));
    // SAFETY: "%s" with one valid NUL-terminated string argument.
    unsafe { sys::blog(level.raw(), c"%s".as_ptr(), line.as_ptr()) };
}

/// `info!("...", args)`: an informational line in the OBS log.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::obs::log::write($crate::obs::log::Level::Info, &format!($($arg)*)) };
}
/// `warn!("...", args)`: a warning line in the OBS log.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::obs::log::write($crate::obs::log::Level::Warning, &format!($($arg)*)) };
}
/// `error!("...", args)`: an error line in the OBS log.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::obs::log::write($crate::obs::log::Level::Error, &format!($($arg)*)) };
}
