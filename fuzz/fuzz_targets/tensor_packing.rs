//! The packer on any image that fits its buffers (any size to 64 x 64, any row padding, either
//! layout, any pixel bytes): finite values in every element of the tensor.
#![no_main]

use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::tensor::pack_bgra;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [w, h, pad, flags, pixels @ ..] = data else {
        return;
    };
    let (width, height, pad) = (
        usize::from(w % 65),
        usize::from(h % 65),
        usize::from(pad % 9),
    );
    let stride = width * 4 + pad;
    let bgra: Vec<u8> = (0..stride * height)
        .map(|i| pixels.get(i % pixels.len().max(1)).copied().unwrap_or(0))
        .collect();
    let nchw = flags & 1 == 1;
    let manifest = Manifest::parse(&format!(
        r#"{{"id": "m", "name": "M", "file": "m.onnx", "licence": "test",
            "input": {{ "name": "input", "shape": {}, "layout": "{}", "channel_order": "{}",
                        "mean": [0.5, 127.5, 1.0], "std": [255.0, 0.5, 1e-3] }},
            "output": {{ "name": "out", "kind": "probability", "person_channel": 0 }}}}"#,
        if nchw {
            "[1, 3, 64, 64]"
        } else {
            "[1, 64, 64, 3]"
        },
        if nchw { "NCHW" } else { "NHWC" },
        if flags & 2 == 2 { "BGR" } else { "RGB" },
    ))
    .unwrap();
    let mut tensor = vec![f32::NAN; width * height * 3];
    pack_bgra(&bgra, width, height, stride, &manifest.input, &mut tensor);
    assert!(tensor.iter().all(|v| v.is_finite()));
});
