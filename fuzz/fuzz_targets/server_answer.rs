//! Any bytes as an inference server's answer (status, header length, body): a mask of
//! probabilities in 0..1 of a bounded size, or a readable error; never a panic. Input: u16
//! status, u32 header length (u32::MAX: none), the body.
#![no_main]

use backdrop_core::segmentation::manifest::Manifest;
use backdrop_core::segmentation::remote::read_answer;
use backdrop_core::segmentation::session::MAX_OUTPUT_SIDE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [s0, s1, l0, l1, l2, l3, body @ ..] = data else {
        return;
    };
    let status = u16::from_le_bytes([*s0, *s1]);
    let header_len = match u32::from_le_bytes([*l0, *l1, *l2, *l3]) {
        u32::MAX => None,
        n => Some(n as usize),
    };
    let manifest = Manifest::parse(
        r#"{"id": "m", "name": "M", "file": "m.onnx", "licence": "test",
            "input": { "name": "input", "shape": [1, 256, 256, 3], "layout": "NHWC",
                       "channel_order": "RGB", "mean": [0, 0, 0], "std": [255, 255, 255] },
            "output": { "name": "out", "kind": "probability", "person_channel": 0, "blocksize": 2 }}"#,
    )
    .unwrap();
    let (mut values, mut probability) = (Vec::new(), Vec::new());
    if let Ok((w, h)) = read_answer(
        &manifest,
        (256, 256),
        (status, header_len, body),
        &mut values,
        &mut probability,
    ) {
        assert!(w >= 1 && h >= 1 && w <= MAX_OUTPUT_SIDE && h <= MAX_OUTPUT_SIDE);
        assert_eq!(probability.len(), w * h);
        assert!(probability.iter().all(|p| (0.0..=1.0).contains(p)));
    }
});
