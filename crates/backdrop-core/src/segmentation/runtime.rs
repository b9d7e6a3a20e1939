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
    // SAFETY: Dl_info is plain pointers and integers: all zeros is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let addr = own_library_path as *const ();
    // SAFETY: dladdr only reads; dli_fname points to a string owned by the loader.
    if unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
    {
        return None;
    }
    // SAFETY: checked non-NULL above; a NUL-terminated string the loader keeps while loaded.
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
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return Err(format!(
            "ONNX Runtime cannot be loaded: NUL in path {}",
            path.display()
        ));
    };
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
    log::info!("ONNX Runtime loaded from {}", path.display());
    Ok(env)
}

/// An ONNX Runtime execution provider the filter can ask for. CPU is always there; the others
/// only when the loaded runtime library was built with them (the PyPI `onnxruntime` wheel is
/// CPU-only; `onnxruntime-gpu` builds offer CUDA and TensorRT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    TensorRt,
    Rocm,
    MiGraphX,
    OpenVino,
}

/// Every provider: (value, setting key, ONNX Runtime's name, display name).
pub const PROVIDERS: [(Provider, &str, &str, &str); 6] = [
    (Provider::Cpu, "cpu", "CPUExecutionProvider", "CPU"),
    (
        Provider::Cuda,
        "cuda",
        "CUDAExecutionProvider",
        "NVIDIA CUDA",
    ),
    (
        Provider::TensorRt,
        "tensorrt",
        "TensorrtExecutionProvider",
        "NVIDIA TensorRT",
    ),
    (Provider::Rocm, "rocm", "ROCMExecutionProvider", "AMD ROCm"),
    (
        Provider::MiGraphX,
        "migraphx",
        "MIGraphXExecutionProvider",
        "AMD MIGraphX",
    ),
    (
        Provider::OpenVino,
        "openvino",
        "OpenVINOExecutionProvider",
        "Intel OpenVINO",
    ),
];

impl Provider {
    /// Parses a setting value; unknown values give CPU.
    pub fn parse(value: &str) -> Provider {
        PROVIDERS
            .iter()
            .find(|p| p.1 == value)
            .map_or(Provider::Cpu, |p| p.0)
    }
    /// The setting value for it, e.g. `cuda`.
    pub fn key(self) -> &'static str {
        PROVIDERS
            .iter()
            .find(|p| p.0 == self)
            .map_or("cpu", |p| p.1)
    }
    /// ONNX Runtime's name for it, e.g. `CUDAExecutionProvider`.
    pub fn runtime_name(self) -> &'static str {
        PROVIDERS
            .iter()
            .find(|p| p.0 == self)
            .map_or("CPUExecutionProvider", |p| p.2)
    }
    /// Display name, e.g. `NVIDIA CUDA`.
    pub fn display_name(self) -> &'static str {
        PROVIDERS
            .iter()
            .find(|p| p.0 == self)
            .map_or("CPU", |p| p.3)
    }
}

/// Names of the execution providers the loaded runtime offers (`GetAvailableProviders`), e.g.
/// `["CPUExecutionProvider"]`; empty when the runtime is not loaded.
pub fn available_providers() -> Vec<String> {
    if environment().is_err() {
        return Vec::new();
    }
    let api = ort::api();
    let mut names: *mut *mut std::os::raw::c_char = std::ptr::null_mut();
    let mut count: std::os::raw::c_int = 0;
    // SAFETY: the runtime is loaded; the array is released with the matching call below.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut names, &mut count);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
            return Vec::new();
        }
        let out = (0..count.max(0) as usize)
            .map(|i| {
                std::ffi::CStr::from_ptr(*names.add(i))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let release = (api.ReleaseAvailableProviders)(names, count);
        if !release.0.is_null() {
            (api.ReleaseStatus)(release.0);
        }
        out
    }
}
