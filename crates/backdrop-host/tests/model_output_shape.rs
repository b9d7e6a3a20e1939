//! A model whose declared output shape does not say its real size (dynamic dimensions that are
//! not the input size, as custom models exported with dynamic axes have): ONNX Runtime refuses
//! the pre-allocated output, and `Model::run` must fall back to `Session::run`, follow the real
//! output shape and give the right mask, frame after frame. Real ONNX Runtime, real portraits;
//! the model is written by the project's Python environment (`onnx`, from `scripts/setup.sh`).

mod common;

use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::session::{Model, SessionOptions};
use std::path::Path;
use std::process::Command;

/// Writes `path`: input `image` declared `[1, 3, h, w]` and output `mask` `[1, 1, mh, mw]`, all
/// four symbolic (dynamic axes: ONNX Runtime cannot know the output size before a run), computed
/// as the 2x2 average of the red plane: really `[1, 1, H/2, W/2]` for an `H` x `W` image.
const MAKE_MODEL: &str = r#"
import sys
import onnx
from onnx import TensorProto, helper
path = sys.argv[1]
graph = helper.make_graph(
    [
        helper.make_node("Slice", ["image", "start", "end", "axis"], ["red"]),
        helper.make_node("AveragePool", ["red"], ["mask"], kernel_shape=[2, 2], strides=[2, 2]),
    ],
    "half_size_red",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
    [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, "mh", "mw"])],
    [
        helper.make_tensor("start", TensorProto.INT64, [1], [0]),
        helper.make_tensor("end", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, path)
"#;

#[test]
fn dynamic_output_smaller_than_the_input_is_followed() {
    let testdata = require!(testdata);
    let python = common::root().join(".venv/bin/python");
    if !python.is_file() {
        skip!(".venv is absent: run scripts/setup.sh");
    }
    let env = require!(runtime);
    let (w, h) = (160u32, 96u32);
    let dir = std::env::temp_dir().join(format!("backdrop-output-shape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new(&python)
        .args(["-c", MAKE_MODEL])
        .arg(dir.join("half.onnx"))
        .status()
        .expect("python runs");
    assert!(made.success(), "making the test model failed");
    let manifest = format!(
        r#"{{ "id": "half", "name": "half-size red", "file": "half.onnx",
            "input": {{ "name": "image", "shape": [1, 3, {h}, {w}], "layout": "NCHW",
                       "channel_order": "RGB", "mean": [0, 0, 0], "std": [255, 255, 255] }},
            "output": {{ "name": "mask", "kind": "probability", "person_channel": 0 }},
            "licence": "test" }}"#
    );
    std::fs::write(dir.join("half.json"), manifest).unwrap();
    let manifest = Manifest::load(&dir.join("half.json")).expect("manifest");
    let mut model = Model::load(env, &manifest, SessionOptions::default()).expect("model loads");
    // the declared shapes have no sizes: the mask is assumed to have the input's until a run
    // says otherwise
    assert_eq!(model.output_size(), (w as usize, h as usize));

    let ids = common::portrait_ids(&testdata);
    if ids.len() < 3 {
        skip!("fewer than 3 portraits in ../shared/testdata");
    }
    for &id in &ids[..3] {
        let path = testdata.join(format!("portraits/images/{id}.jpg"));
        let bgra = common::load_bgra_stretched(&path, w, h);
        let mask = model
            .infer(&bgra, w as usize * 4)
            .expect("inference follows the real output")
            .to_vec();
        let (mw, mh) = (w as usize / 2, h as usize / 2);
        assert_eq!(model.output_size(), (mw, mh), "portrait {id}");
        assert_eq!(mask.len(), mw * mh);
        // the mask is the 2x2 mean of the red channel / 255
        let red = |x: usize, y: usize| bgra[(y * w as usize + x) * 4 + 2] as f32 / 255.0;
        let mut worst = 0f32;
        for y in 0..mh {
            for x in 0..mw {
                let want = (red(2 * x, 2 * y)
                    + red(2 * x + 1, 2 * y)
                    + red(2 * x, 2 * y + 1)
                    + red(2 * x + 1, 2 * y + 1))
                    / 4.0;
                worst = worst.max((mask[y * mw + x] - want).abs());
            }
        }
        assert!(worst < 1e-5, "portrait {id}: mask off by {worst}");
        let spread = mask
            .iter()
            .fold((1f32, 0f32), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        assert!(
            spread.1 - spread.0 > 0.2,
            "portrait {id}: a flat mask {spread:?}"
        );
        println!("portrait {id}: {mw}x{mh} mask from a {w}x{h} input, max error {worst:.1e}");
    }
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
