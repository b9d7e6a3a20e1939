//! Thin safe layer over libobs: generated bindings, logging, settings (`obs_data`), module
//! helpers (locale, data files) and RAII wrappers for graphics objects.
//!
//! Nothing here knows about segmentation; everything here needs a running libobs.

pub mod data;
pub mod gfx;
pub mod log;
pub mod module;
pub mod sys;

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

/// Builds a `CString` from text that may contain interior NULs (they are dropped rather than
/// failing: strings here come from users' file paths and locale files).
pub fn cstring(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

/// Copies a C string owned by libobs into a Rust `String` (lossy UTF-8); NULL gives "".
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string valid for the duration of the call.
pub unsafe fn from_cstr(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        CStr::from_ptr(ptr).to_string_lossy().into_owned()
    }
}
