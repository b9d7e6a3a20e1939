//! Shared helpers for the integration tests: where the test data, models and runtime are, and
//! skipping with a clear message when they are absent.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

pub use backdrop_testdata::{portrait_ids, root};

/// `../shared/testdata` (override with `BACKDROP_TESTDATA`), or `None` when absent.
pub fn testdata() -> Option<PathBuf> {
    let dir = backdrop_testdata::testdata_dir();
    dir.is_dir().then_some(dir)
}

/// Prints why a test is skipped, and the test returns; with `BACKDROP_REQUIRE_DATA=1` the test
/// fails with that reason instead.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {{
        let why = format!($($arg)*);
        if $crate::common::data_required() {
            panic!("BACKDROP_REQUIRE_DATA=1 and {why}");
        }
        eprintln!("SKIPPED {}: {why}", module_path!());
        return;
    }};
}

/// What a test needs, or it is skipped (see [`skip!`]): `require!(testdata)` (the folder),
/// `require!(video)` (the talking-head clip), `require!(plugin)` (the installed plugin folder of
/// this build), `require!(models)`, `require!(runtime)` (ONNX Runtime's environment).
#[macro_export]
macro_rules! require {
    (testdata) => {
        match $crate::common::testdata() {
            Some(d) => d,
            None => skip!("../shared/testdata is absent (set BACKDROP_TESTDATA)"),
        }
    };
    (video) => {
        require!(testdata).join("video/talking_head_a.mp4")
    };
    (plugin) => {
        match $crate::common::host::plugin_dir() {
            Some(p) => p,
            None => skip!("no plugin build: run scripts/setup.sh"),
        }
    };
    (models) => {
        match $crate::common::models_dir() {
            Some(m) => m,
            None => skip!("build/models is absent: run scripts/setup.sh"),
        }
    };
    (triton) => {
        if !backdrop_testdata::triton::installed() {
            skip!("Triton is not installed (build/triton): run scripts/setup.sh");
        }
    };
    (runtime) => {
        match $crate::common::ort_environment() {
            Some(e) => e,
            None => skip!("ONNX Runtime is absent: run scripts/setup.sh"),
        }
    };
}

/// Whether missing test data or a missing build fails a test instead of skipping it
/// (`BACKDROP_REQUIRE_DATA=1`, set by scripts/test.sh and .ci/run).
pub fn data_required() -> bool {
    std::env::var("BACKDROP_REQUIRE_DATA").is_ok_and(|v| v == "1")
}

/// Folder with the converted models and manifests made by `scripts/setup.sh`
/// (override with `BACKDROP_MODELS`).
pub fn models_dir() -> Option<PathBuf> {
    let dir = backdrop_testdata::models_dir();
    dir.join("selfie_general.json").is_file().then_some(dir)
}

/// The ONNX Runtime library installed by `scripts/setup.sh` (override with `ORT_DYLIB_PATH`).
pub fn runtime_library() -> Option<PathBuf> {
    let p = backdrop_testdata::runtime_library();
    p.is_file().then_some(p)
}

/// Loads ONNX Runtime through the plugin's own loader (which falls back to `ORT_DYLIB_PATH`).
pub fn ort_environment() -> Option<&'static ort::environment::Environment> {
    let lib = runtime_library()?;
    // SAFETY: set once, before any thread of this test binary reads the variable through the loader.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", &lib) };
    Some(backdrop_core::segmentation::runtime::environment().expect("ONNX Runtime loads"))
}

/// Decodes an image file and stretches it to `width` x `height` (bilinear, `fast_image_resize`),
/// returning tightly packed BGRA.
pub fn load_bgra_stretched(path: &Path, width: u32, height: u32) -> Vec<u8> {
    use fast_image_resize as fr;
    let rgba = image::open(path).expect("decodable image").to_rgba8();
    let src = fr::images::Image::from_vec_u8(
        rgba.width(),
        rgba.height(),
        rgba.into_raw(),
        fr::PixelType::U8x4,
    )
    .expect("source image");
    let mut dst = fr::images::Image::new(width, height, fr::PixelType::U8x4);
    fr::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear)),
        )
        .expect("resize");
    let mut px = dst.into_vec();
    for p in px.chunks_exact_mut(4) {
        p.swap(0, 2); // RGBA -> BGRA
    }
    px
}
/// Runs `model` on an RGB24 frame of `w` x `h` px stretched (nearest) to the model's input and
/// returns the person probability plane (0..1) with its width and height.
pub fn model_probability(
    model: &mut backdrop_core::segmentation::session::Model,
    rgb: &[u8],
    w: usize,
    h: usize,
) -> (Vec<f32>, usize, usize) {
    let (mw, mh) = model.input_size();
    let (mw, mh) = (mw as usize, mh as usize);
    let mut bgra = vec![255u8; mw * mh * 4];
    for y in 0..mh {
        for x in 0..mw {
            let (sx, sy) = (x * w / mw, y * h / mh);
            let i = (sy * w + sx) * 3;
            let o = (y * mw + x) * 4;
            bgra[o] = rgb[i + 2];
            bgra[o + 1] = rgb[i + 1];
            bgra[o + 2] = rgb[i];
        }
    }
    let p = model.infer(&bgra, mw * 4).expect("inference").to_vec();
    let (ow, oh) = model.output_size();
    (p, ow, oh)
}

pub mod host;
pub mod portraits;

/// Decodes the video at `path` to RGB24 frames with the ffmpeg CLI: at its own size, or
/// stretched to `size`. Returns (width, height, frames).
///
/// # Panics
/// When ffprobe or ffmpeg cannot read the file.
pub fn decode_rgb(path: &Path, size: Option<(u32, u32)>) -> (u32, u32, Vec<Vec<u8>>) {
    let (w, h) = match size {
        Some(s) => s,
        None => {
            let probe = std::process::Command::new("ffprobe")
                .args(["-v", "error", "-of", "json", "-show_streams"])
                .arg(path)
                .output()
                .expect("ffprobe runs");
            let info: serde_json::Value =
                serde_json::from_slice(&probe.stdout).unwrap_or(serde_json::Value::Null);
            let video = info["streams"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
                .unwrap_or_else(|| panic!("ffprobe finds no video in {}", path.display()));
            let dim = |k: &str| video[k].as_u64().expect("width and height") as u32;
            (dim("width"), dim("height"))
        }
    };
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("scale={w}:{h}")])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg cannot decode {}",
        path.display()
    );
    let frames = out
        .stdout
        .chunks_exact((w * h * 3) as usize)
        .map(<[u8]>::to_vec)
        .collect();
    (w, h, frames)
}
