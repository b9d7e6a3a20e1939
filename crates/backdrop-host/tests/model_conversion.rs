//! The project's own TFLite -> ONNX conversion (`models/convert.py`, run by `scripts/setup.sh`)
//! matches the reference conversions in `../shared/testdata/models/reference/` on the real
//! portraits, through the plugin's own model code and the real ONNX Runtime.

mod common;

use backdrop_core::segmentation::manifest::{Layout, Manifest};
use backdrop_core::segmentation::session::{Model, SessionOptions};

fn compare(manifest_file: &str, reference_file: &str) {
    let testdata = require!(testdata);
    let models = require!(models);
    let env = require!(runtime);
    let ours = Manifest::load(&models.join(manifest_file)).expect("manifest");
    // ours takes NCHW and gives the mask depth-packed (see models/convert.py); the tf2onnx
    // reference keeps the TFLite interface: NHWC in, NHWC [1, H, W, 1] out
    let (w, h) = ours.input_size();
    assert_eq!(ours.input.layout, Layout::Nchw);
    assert_eq!(ours.output.blocksize, 2);
    let mut reference_manifest = ours.clone();
    reference_manifest.dir = testdata.join("models/reference");
    reference_manifest.file = reference_file.into();
    reference_manifest.input.layout = Layout::Nhwc;
    reference_manifest.input.shape = vec![1, h as i64, w as i64, 3];
    reference_manifest.output.blocksize = 1;

    let mut a = Model::load(env, &ours, SessionOptions::default()).expect("our model loads");
    let mut b =
        Model::load(env, &reference_manifest, SessionOptions::default()).expect("reference loads");
    let ids = common::portrait_ids(&testdata);
    assert!(
        ids.len() >= 90,
        "expected the 96 portraits, found {}",
        ids.len()
    );
    let mut worst = 0f32;
    for id in &ids {
        let bgra =
            common::load_bgra_stretched(&testdata.join(format!("portraits/images/{id}.jpg")), w, h);
        let pa = a.infer(&bgra, w as usize * 4).expect("inference").to_vec();
        let pb = b.infer(&bgra, w as usize * 4).expect("inference");
        let diff = pa
            .iter()
            .zip(pb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
    }
    println!(
        "{manifest_file}: max abs difference vs reference over {} portraits = {worst:.2e}",
        ids.len()
    );
    assert!(
        worst <= 1e-4,
        "{manifest_file}: max abs difference {worst} > 1e-4"
    );
}

#[test]
fn general_model_matches_reference_conversion() {
    compare("selfie_general.json", "selfie_segmentation.onnx");
}

#[test]
fn landscape_model_matches_reference_conversion() {
    compare(
        "selfie_landscape.json",
        "selfie_segmentation_landscape.onnx",
    );
}
