//! Locating and loading the ONNX Runtime shared library (`libonnxruntime.so.1.31.1`) at run time.
//!
//! The library is installed next to the plugin `.so`; its folder is found with `dladdr` on a
//! symbol of this library. `ORT_DYLIB_PATH` (a file path) is the fallback. No `ort` call happens
//! before a successful load: `ort` panics on use otherwise.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File name of the runtime library the plugin is built against (`ort` 2.0.0-rc.15, API 31).
pub const LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Path of the shared object (or executable) this code was loaded from, via `dladdr`.
pub fn own_library_path() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = own_library_path as *const ();
    // SAFETY: dladdr only reads; dli_fname points to a string owned by the loader.
    if unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
    {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(name.to_string_lossy().into_owned()))
}

/// Candidate paths, in order: next to this library, then `ORT_DYLIB_PATH`.
pub fn candidate_paths() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = own_library_path().as_deref().and_then(Path::parent) {
        out.push(dir.join(LIBRARY_NAME));
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    out
}

/// Loads the runtime once per process and returns its environment, or the reason it could not be
/// loaded (with the loader's `dlerror` text). Later calls return the first result.
pub fn environment() -> Result<&'static ort::environment::Environment, &'static str> {
    ENVIRONMENT
        .get_or_init(load)
        .as_ref()
        .map_err(|e| e.as_str())
}

/// Tries `dlopen` on `path` so that a failure carries the loader's own reason (`dlerror`), which
/// `ort`'s error does not always include.
fn check_loadable(path: &Path) -> Result<(), String> {
    let c = crate::obs::cstring(&path.to_string_lossy());
    // SAFETY: plain dlopen/dlclose/dlerror; the handle is closed again (ort opens its own).
    unsafe {
        let handle = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            let reason = libc::dlerror();
            let reason = if reason.is_null() {
                "unknown loader error".to_string()
            } else {
                std::ffi::CStr::from_ptr(reason)
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(format!("ONNX Runtime cannot be loaded: {reason}"));
        }
        libc::dlclose(handle);
    }
    Ok(())
}

fn load() -> Result<ort::environment::Environment, String> {
    let candidates = candidate_paths();
    let Some(path) = candidates
        .iter()
        .find(|p| p.is_file())
        .or(candidates.first())
    else {
        return Err(format!(
            "ONNX Runtime library {LIBRARY_NAME} not found (no plugin path, ORT_DYLIB_PATH unset)"
        ));
    };
    check_loadable(path)?;
    let builder =
        ort::init_from(path).map_err(|e| format!("ONNX Runtime cannot be loaded: {e}"))?;
    let env = builder
        .with_name("obs-backdrop")
        .build()
        .map_err(|e| format!("ONNX Runtime environment failed: {e}"))?;
    crate::info!("ONNX Runtime loaded from {}", path.display());
    Ok(env)
}
