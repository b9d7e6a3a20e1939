//! obs-backdrop: an OBS Studio filter that finds the person in a video source with a neural
//! segmentation model (ONNX Runtime) and replaces the background (blur, image, colour,
//! transparency).
//!
//! This file holds the module entry points libobs looks up with `dlsym`; every `extern "C"`
//! callback body runs inside [`guard`].

pub mod filter;
pub mod mask;
pub mod obs;
pub mod segmentation;

use obs::sys;
use std::os::raw::c_char;

/// Runs `f`, turning a panic into one error line in the OBS log and `fallback`: a bug in the
/// filter must never take OBS down.
pub fn guard<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            error!("internal error in {what}: {msg}");
            fallback
        }
    }
}

/// `(MAJOR << 24) | (MINOR << 16) | PATCH` of the libobs headers this plugin was built against.
pub const LIBOBS_API_VER: u32 = (sys::LIBOBS_API_MAJOR_VER << 24)
    | (sys::LIBOBS_API_MINOR_VER << 16)
    | sys::LIBOBS_API_PATCH_VER;

#[no_mangle]
pub extern "C" fn obs_module_set_pointer(module: *mut sys::obs_module_t) {
    obs::module::set_pointer(module);
}

#[no_mangle]
pub extern "C" fn obs_current_module() -> *mut sys::obs_module_t {
    obs::module::pointer()
}

#[no_mangle]
pub extern "C" fn obs_module_ver() -> u32 {
    LIBOBS_API_VER
}

/// Called by libobs with the UI locale (e.g. `en-US`).
///
/// # Safety
/// `locale` is a NUL-terminated string from libobs.
#[no_mangle]
pub unsafe extern "C" fn obs_module_set_locale(locale: *const c_char) {
    guard("obs_module_set_locale", (), || {
        obs::module::set_locale(locale)
    });
}

#[no_mangle]
pub extern "C" fn obs_module_free_locale() {
    guard("obs_module_free_locale", (), obs::module::free_locale);
}

#[no_mangle]
pub extern "C" fn obs_module_name() -> *const c_char {
    c"obs-backdrop".as_ptr()
}

#[no_mangle]
pub extern "C" fn obs_module_description() -> *const c_char {
    c"Background removal, blur and replacement with real-time person segmentation".as_ptr()
}

#[no_mangle]
pub extern "C" fn obs_module_load() -> bool {
    guard("obs_module_load", false, || {
        filter::register();
        info!(
            "loaded version {} (built against libobs {}.{}.{})",
            env!("CARGO_PKG_VERSION"),
            sys::LIBOBS_API_MAJOR_VER,
            sys::LIBOBS_API_MINOR_VER,
            sys::LIBOBS_API_PATCH_VER
        );
        true
    })
}

#[no_mangle]
pub extern "C" fn obs_module_unload() {
    guard("obs_module_unload", (), || info!("unloaded"));
}
