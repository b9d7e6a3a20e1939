//! Where the tools (backdrop-bench) and the end-to-end tests find what `scripts/setup.sh` and
//! `../shared/testdata` provide. Every location can be overridden by an environment variable.

use std::path::{Path, PathBuf};

pub mod triton;

/// The repository root (this crate is crates/backdrop-testdata).
pub fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `BACKDROP_TESTDATA`, else `../shared/testdata` beside the repository (whether or not it
/// exists).
pub fn testdata_dir() -> PathBuf {
    std::env::var_os("BACKDROP_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/testdata"))
}

/// `BACKDROP_MODELS`, else `build/models` (the converted models and manifests).
pub fn models_dir() -> PathBuf {
    std::env::var_os("BACKDROP_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("build/models"))
}

/// `ORT_DYLIB_PATH`, else the ONNX Runtime `scripts/setup.sh` put in `build/deps` (whether or
/// not it exists).
pub fn runtime_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("build/deps/libonnxruntime.so.1.31.1"))
}

/// Ids of the portraits in `testdata` with both an image and a mask, sorted numerically.
pub fn portrait_ids(testdata: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(testdata.join("portraits/images"))
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter_map(|e| e.path().file_stem()?.to_str()?.parse().ok())
                .filter(|id: &u32| testdata.join(format!("portraits/masks/{id}.png")).is_file())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}
