//! Hostile input, generated: whatever a manifest file, a settings object, a model's output shape,
//! its output values or an inference server's answer hold, the parsers and packers give a value or a readable error, never a
//! panic, and what they accept stays within the bounds the rest of the plugin relies on.
//! (`proptest`: it runs in every `cargo test`. The same properties are also libFuzzer targets
//! with AddressSanitizer, in `fuzz/`, run by `scripts/fuzz.sh`.)
//! `PROPTEST_CASES` sets the number of cases per property (256 by default).

use backdrop_core::segmentation::manifest::{Layout, Manifest, OutputKind, OutputSpec};
use backdrop_core::segmentation::remote::read_answer;
use backdrop_core::segmentation::session::{output_geometry, MAX_OUTPUT_SIDE};
use backdrop_core::segmentation::tensor::{pack_bgra, person_probability};
use backdrop_core::settings::Settings;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// A valid manifest (the shape of `models/thirdparty/meet.json`), as JSON.
fn valid_manifest() -> Value {
    json!({
        "id": "m", "name": "M", "file": "m.onnx", "licence": "test",
        "input": { "name": "input", "shape": [1, 144, 256, 3], "layout": "NHWC",
                   "channel_order": "RGB", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0] },
        "output": { "name": "out", "kind": "logits_softmax", "person_channel": 1 }
    })
}

/// Any JSON value, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(3),
            Just(4096),
            Just(1 << 31)
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,14}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A path into the valid manifest's objects, as keys.
fn manifest_paths() -> Vec<Vec<&'static str>> {
    let mut out = vec![];
    for k in ["id", "name", "file", "licence", "aspect", "input", "output"] {
        out.push(vec![k]);
    }
    for k in ["name", "shape", "layout", "channel_order", "mean", "std"] {
        out.push(vec!["input", k]);
    }
    for k in ["name", "kind", "person_channel", "blocksize"] {
        out.push(vec!["output", k]);
    }
    out
}

fn set_path(v: &mut Value, path: &[&str], new: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        cur = cur.as_object_mut().unwrap().entry(*k).or_insert(json!({}));
    }
    if let Some(o) = cur.as_object_mut() {
        o.insert(path[path.len() - 1].to_string(), new);
    }
}

#[test]
fn the_base_manifest_is_valid() {
    Manifest::parse(&valid_manifest().to_string()).unwrap();
}

proptest! {
    /// Arbitrary text never panics the parser.
    #[test]
    fn any_text_is_a_manifest_or_an_error(text in ".{0,300}") {
        let _ = Manifest::parse(&text);
    }

    /// A valid manifest with one field replaced by any value: parsed into a model the rest of
    /// the plugin can use (input 8..4096 px, finite normalisation), or refused with a message.
    #[test]
    fn a_manifest_with_any_field_replaced_is_usable_or_refused(
        which in 0..17usize,
        value in any_json(),
    ) {
        let mut m = valid_manifest();
        let paths = manifest_paths();
        set_path(&mut m, &paths[which % paths.len()], value);
        match Manifest::parse(&m.to_string()) {
            Ok(parsed) => {
                let (w, h) = parsed.input_size();
                prop_assert!((8..=4096).contains(&w) && (8..=4096).contains(&h));
                prop_assert!(parsed.input.mean.iter().all(|v| v.is_finite()));
                prop_assert!(parsed.input.std.iter().all(|v| v.is_finite() && *v != 0.0));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Any settings object (wrong types, NaN, huge numbers, unknown keys) reads into settings
    /// within their ranges, the same way twice.
    #[test]
    fn any_settings_object_reads_into_range(
        entries in prop::collection::btree_map(
            prop_oneof![
                Just("threshold".to_string()), Just("edge_softness".to_string()),
                Just("motion_threshold".to_string()), Just("inference_interval".to_string()),
                Just("mode".to_string()), Just("model".to_string()), Just("blur_strength".to_string()),
                Just("temporal_smoothing".to_string()), Just("intra_threads".to_string()),
                Just("color".to_string()), Just("motion_warp".to_string()),
                Just("mirror_average".to_string()), "[a-z_]{1,12}",
            ],
            any_json(),
            0..12,
        ),
    ) {
        let store: Map<String, Value> = entries.into_iter().collect();
        let s = Settings::read(&store);
        prop_assert!((0.01..=0.99).contains(&s.threshold), "{}", s.threshold);
        prop_assert!((0.0..=1.0).contains(&s.edge_softness));
        prop_assert!((0.0..=20.0).contains(&s.motion_threshold));
        prop_assert!((1..=10).contains(&s.inference_interval));
        prop_assert!((0.0..=0.95).contains(&s.temporal_smoothing));
        prop_assert!((1..=8).contains(&s.intra_threads));
        prop_assert_eq!(format!("{:?}", Settings::read(&store)), format!("{s:?}"));
    }

    /// Any output shape a model declares or returns: a mask size the plugin can allocate, or a
    /// readable refusal.
    #[test]
    fn any_output_shape_is_bounded_or_refused(
        dims in prop::collection::vec(
            prop_oneof![any::<i64>(), -2i64..=3, 0i64..=70_000, Just(i64::MAX)], 0..6),
        input_w in 8usize..=4096,
        input_h in 8usize..=4096,
        blocksize in 1usize..=8,
    ) {
        match output_geometry(&dims, (input_w, input_h), blocksize) {
            Ok(((w, h), channels, _)) => {
                prop_assert!(w >= 1 && h >= 1, "{w}x{h} from {dims:?}");
                prop_assert!(w <= MAX_OUTPUT_SIDE && h <= MAX_OUTPUT_SIDE, "{w}x{h} from {dims:?}");
                prop_assert!((1..=64).contains(&channels));
            }
            Err(e) => prop_assert!(e.contains("output")),
        }
    }

    /// NaN, infinite or huge raw outputs still give a probability plane in 0..1.
    #[test]
    fn any_output_values_give_probabilities(
        values in prop::collection::vec(
            prop_oneof![any::<f32>(), Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)],
            8),
        kind in prop_oneof![
            Just(OutputKind::Probability), Just(OutputKind::Probabilities),
            Just(OutputKind::LogitsSoftmax)],
    ) {
        let channels = if kind == OutputKind::Probability { 1 } else { 2 };
        let spec: OutputSpec = serde_json::from_value(json!({
            "name": "out",
            "kind": match kind {
                OutputKind::Probability => "probability",
                OutputKind::Probabilities => "probabilities",
                OutputKind::LogitsSoftmax => "logits_softmax",
            },
            "person_channel": channels - 1,
        })).unwrap();
        let mut out = vec![0.5f32; 8 / channels];
        person_probability(&values, channels, Layout::Nhwc, &spec, out.len(), &mut out).unwrap();
        prop_assert!(out.iter().all(|p| (0.0..=1.0).contains(p)), "{values:?} -> {out:?}");
    }

    /// The packer fills the tensor for any size and stride that fit the buffers, with finite
    /// values.
    #[test]
    fn packing_any_fitting_image_gives_finite_values(
        width in 0usize..40,
        height in 0usize..40,
        pad in 0usize..9,
        layout in prop_oneof![Just("NHWC"), Just("NCHW")],
        seed in any::<u8>(),
    ) {
        let stride = width * 4 + pad;
        let bgra: Vec<u8> = (0..stride * height).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let mut m = valid_manifest();
        set_path(&mut m, &["input", "layout"], json!(layout));
        if layout == "NCHW" {
            set_path(&mut m, &["input", "shape"], json!([1, 3, 144, 256]));
        }
        let manifest = Manifest::parse(&m.to_string()).unwrap();
        let mut tensor = vec![f32::NAN; width * height * 3];
        pack_bgra(&bgra, width, height, stride, &manifest.input, &mut tensor);
        prop_assert!(tensor.iter().all(|v| v.is_finite()));
    }

    /// An inference server's answer, whatever its bytes: a mask of probabilities in 0..1 of a
    /// bounded size, or a readable error. The answers are built around a real one (JSON
    /// header, binary tensor) with any part replaced.
    #[test]
    fn any_server_answer_is_a_mask_or_an_error(
        status in prop_oneof![Just(200u16), Just(400), Just(500), any::<u16>()],
        datatype in prop_oneof![
            Just("FP32".to_string()),
            Just("UINT16".to_string()),
            Just("UINT8".to_string()),
            ".{0,6}",
        ],
        shape in prop::collection::vec(
            prop_oneof![Just(-1i64), Just(0), Just(1), Just(4), Just(72), Just(128), Just(4097), any::<i64>()],
            0..6,
        ),
        declared in prop_oneof![Just(None), (0u64..300_000).prop_map(Some)],
        payload in prop::collection::vec(any::<u8>(), 0..4096),
        header_len in prop_oneof![Just(None), Just(Some(usize::MAX)), (0usize..5000).prop_map(Some)],
        json_data in prop_oneof![Just(None), prop::collection::vec(any::<f32>().prop_filter("finite", |v| v.is_finite()), 0..64).prop_map(Some)],
        garbage in prop_oneof![Just(None), ".{0,80}".prop_map(Some)],
    ) {
        let mut m = valid_manifest();
        set_path(&mut m, &["output"], json!({ "name": "out", "kind": "probability",
            "person_channel": 0, "blocksize": 2 }));
        set_path(&mut m, &["input", "shape"], json!([1, 256, 256, 3]));
        let manifest = Manifest::parse(&m.to_string()).unwrap();
        let mut output = json!({ "name": "out", "datatype": datatype, "shape": shape });
        if let Some(n) = declared {
            output["parameters"] = json!({ "binary_data_size": n });
        }
        if let Some(d) = json_data {
            output["data"] = json!(d);
        }
        let header = match garbage {
            Some(g) => g,
            None => json!({ "model_name": "m", "outputs": [output] }).to_string(),
        };
        let mut body = header.clone().into_bytes();
        let json_len = header_len.map(|n| if n == 5000 { body.len() } else { n });
        body.extend_from_slice(&payload);
        let (mut values, mut probability) = (Vec::new(), Vec::new());
        if let Ok((w, h)) = read_answer(
            &manifest,
            (256, 256),
            (status, json_len, &body),
            &mut values,
            &mut probability,
        ) {
            prop_assert!(w >= 1 && h >= 1 && w <= MAX_OUTPUT_SIDE && h <= MAX_OUTPUT_SIDE);
            prop_assert_eq!(probability.len(), w * h);
            prop_assert!(probability.iter().all(|p| (0.0..=1.0).contains(p)));
        }
    }

    /// A well-formed answer of the right size always reads, binary or JSON, FP32 or UINT16.
    #[test]
    fn a_well_formed_answer_reads(uint16 in any::<bool>(), binary in any::<bool>(), seed in any::<u16>()) {
        let mut m = valid_manifest();
        set_path(&mut m, &["output"], json!({ "name": "out", "kind": "probability",
            "person_channel": 0, "blocksize": 2 }));
        set_path(&mut m, &["input", "shape"], json!([1, 16, 8, 3]));
        let manifest = Manifest::parse(&m.to_string()).unwrap();
        let n = 4 * 8 * 4; // [1, 4, 16 / 2, 8 / 2]: an 8 x 16 mask, 128 values
        let raw: Vec<u16> = (0..n as u16).map(|i| i.wrapping_mul(seed)).collect();
        let datatype = if uint16 { "UINT16" } else { "FP32" };
        let mut output = json!({ "name": "out", "datatype": datatype, "shape": [1, 4, 8, 4] });
        let mut tail = Vec::new();
        if binary {
            for &v in &raw {
                if uint16 {
                    tail.extend_from_slice(&v.to_le_bytes());
                } else {
                    tail.extend_from_slice(&(f32::from(v) / 65535.0).to_le_bytes());
                }
            }
            output["parameters"] = json!({ "binary_data_size": tail.len() });
        } else {
            let scale = if uint16 { 1.0 } else { 1.0 / 65535.0 };
            output["data"] = json!(raw.iter().map(|&v| f32::from(v) * scale).collect::<Vec<_>>());
        }
        let header = json!({ "outputs": [output] }).to_string();
        let mut body = header.clone().into_bytes();
        body.extend_from_slice(&tail);
        let (mut values, mut probability) = (Vec::new(), Vec::new());
        let size = read_answer(
            &manifest,
            (8, 16),
            (200, binary.then_some(header.len()), &body),
            &mut values,
            &mut probability,
        );
        prop_assert_eq!(size, Ok((8, 16)));
        prop_assert!(probability.iter().all(|p| (0.0..=1.0).contains(p)));
    }
}
