//! Any output shape and values a model gives: the shape becomes a mask size the plugin can
//! allocate or a readable refusal, and any values (NaN, infinities, huge) become probabilities
//! in 0..1. Input: 1 byte of dimension count, that many little-endian i64 dimensions, 2 x u16
//! input size, 1 byte of block size and output kind, then f32 values.
#![no_main]

use backdrop_core::segmentation::manifest::{Layout, OutputSpec};
use backdrop_core::segmentation::session::{output_geometry, MAX_OUTPUT_SIDE};
use backdrop_core::segmentation::tensor::person_probability;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 7);
    if rest.len() < count * 8 + 5 {
        return;
    }
    let (dims, rest) = rest.split_at(count * 8);
    let dims: Vec<i64> = dims
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let w = 8 + usize::from(u16::from_le_bytes([rest[0], rest[1]])) % 4089;
    let h = 8 + usize::from(u16::from_le_bytes([rest[2], rest[3]])) % 4089;
    let blocksize = 1 + usize::from(rest[4] % 8);
    if let Ok(((mw, mh), channels, _)) = output_geometry(&dims, (w, h), blocksize) {
        assert!(mw >= 1 && mh >= 1 && mw <= MAX_OUTPUT_SIDE && mh <= MAX_OUTPUT_SIDE);
        assert!((1..=64).contains(&channels));
    }
    let values: Vec<f32> = rest[5..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let (kind, channels) = match rest[4] / 8 % 3 {
        0 => ("probability", 1),
        1 => ("probabilities", 2),
        _ => ("logits_softmax", 2),
    };
    let spec: OutputSpec = serde_json::from_value(serde_json::json!({
        "name": "out", "kind": kind, "person_channel": channels - 1,
    }))
    .unwrap();
    let pixels = values.len() / channels;
    if pixels == 0 {
        return;
    }
    let layout = if rest[4] & 0x80 != 0 {
        Layout::Nchw
    } else {
        Layout::Nhwc
    };
    let mut out = vec![0.5f32; pixels];
    if person_probability(&values, channels, layout, &spec, pixels, &mut out).is_ok() {
        assert!(
            out.iter().all(|p| (0.0..=1.0).contains(p)),
            "{values:?} -> {out:?}"
        );
    }
});
