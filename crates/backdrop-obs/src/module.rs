//! Module-wide state libobs hands us: the module pointer, the locale lookup, data-file paths.

use crate::{cstring, from_cstr, sys};
use std::ffi::CString;
use std::os::raw::c_char;
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, OnceLock};

static MODULE: AtomicPtr<sys::obs_module_t> = AtomicPtr::new(std::ptr::null_mut());
static LOOKUP: AtomicPtr<sys::lookup_t> = AtomicPtr::new(std::ptr::null_mut());

/// Interned translated strings: `obs_module_text` must return pointers that outlive the call.
fn interned() -> &'static Mutex<Vec<CString>> {
    static CELL: OnceLock<Mutex<Vec<CString>>> = OnceLock::new();
    CELL.get_or_init(|| Mutex::new(Vec::new()))
}

/// Stores the module pointer libobs gives to `obs_module_set_pointer`.
pub fn set_pointer(module: *mut sys::obs_module_t) {
    MODULE.store(module, Ordering::SeqCst);
}

/// The module pointer (NULL before `obs_module_set_pointer`).
pub fn pointer() -> *mut sys::obs_module_t {
    MODULE.load(Ordering::SeqCst)
}

/// Loads `data/locale/<locale>.ini` with `en-US` as the fallback, replacing any earlier lookup.
///
/// # Safety
/// `locale` must be a NUL-terminated string (libobs passes one).
pub unsafe fn set_locale(locale: *const c_char) {
    free_locale();
    // SAFETY: as below.
    *LOCALE.lock().unwrap_or_else(|e| e.into_inner()) = unsafe { crate::from_cstr(locale) };
    // SAFETY: libobs passes a valid locale string; the module pointer is set before this call.
    let lookup = unsafe { sys::obs_module_load_locale(pointer(), c"en-US".as_ptr(), locale) };
    LOOKUP.store(lookup, Ordering::SeqCst);
}

/// The locale libobs asked for (`obs_module_set_locale`), e.g. `de-DE`; "" before.
static LOCALE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// The locale libobs set for the module (the OBS UI language), e.g. `de-DE`.
pub fn locale() -> String {
    LOCALE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Frees the locale lookup.
pub fn free_locale() {
    let old = LOOKUP.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !old.is_null() {
        // SAFETY: made by obs_module_load_locale; swapped out above, so destroyed once.
        unsafe { sys::text_lookup_destroy(old) };
    }
}

/// Raw lookup of a locale key; returns the key itself when it has no translation. The pointer is
/// owned by the lookup table (or is `key`).
///
/// # Safety
/// `key` must be a NUL-terminated string.
pub unsafe fn text_ptr(key: *const c_char) -> *const c_char {
    let mut out = key;
    let lookup = LOOKUP.load(Ordering::SeqCst);
    if !lookup.is_null() {
        // SAFETY: a live lookup; `key` is NUL-terminated (the caller's contract).
        unsafe { sys::text_lookup_getstr(lookup, key, &mut out) };
    }
    out
}

/// Translated text for `key` from `data/locale/*.ini`, as a pointer valid until unload.
pub fn text(key: &str) -> *const c_char {
    let k = cstring(key);
    // SAFETY: `k` is NUL-terminated.
    let found = unsafe { text_ptr(k.as_ptr()) };
    if found != k.as_ptr() {
        return found;
    }
    // No translation: keep the key alive and return it.
    let mut strings = interned().lock().unwrap_or_else(|e| e.into_inner());
    strings.push(k);
    strings.last().map(|s| s.as_ptr()).unwrap_or(c"".as_ptr())
}

/// Translated text for `key` as an owned `String`.
pub fn text_string(key: &str) -> String {
    // SAFETY: `text` returns a NUL-terminated string that lives until unload.
    unsafe { from_cstr(text(key)) }
}

/// Absolute path of a file in the module's data folder (`obs_module_file`), or `None` when it
/// does not exist.
pub fn data_file(relative: &str) -> Option<PathBuf> {
    let r = cstring(relative);
    // SAFETY: returns a bmalloc'd string or NULL; freed with bfree below.
    unsafe {
        let p = sys::obs_find_module_file(pointer(), r.as_ptr());
        if p.is_null() {
            return None;
        }
        let path = from_cstr(p);
        sys::bfree(p as *mut _);
        Some(PathBuf::from(path))
    }
}
