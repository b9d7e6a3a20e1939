//! Tensor packing and output activations: pure functions, no ONNX Runtime.

use super::manifest::{ChannelOrder, InputSpec, Layout, OutputKind, OutputSpec};

/// Packs a BGRA image (`width` x `height` px, rows `stride` bytes apart) into `tensor`
/// (`width * height * 3` f32 values) with the layout, channel order and normalisation of `spec`:
/// `value = (x - mean[c]) / std[c]`, x in 0..255.
///
/// # Panics
/// When `tensor` or `bgra` is too small for the given size.
pub fn pack_bgra(
    bgra: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    spec: &InputSpec,
    tensor: &mut [f32],
) {
    let plane = width * height;
    assert!(tensor.len() >= plane * 3, "tensor buffer too small");
    assert!(
        height == 0 || bgra.len() >= stride * (height - 1) + width * 4,
        "image buffer too small"
    );
    // Source byte offset inside a BGRA pixel for each tensor channel.
    let src: [usize; 3] = match spec.channel_order {
        ChannelOrder::Rgb => [2, 1, 0],
        ChannelOrder::Bgr => [0, 1, 2],
    };
    let scale = spec.std.map(|s| 1.0 / s);
    let bias = [0, 1, 2].map(|c| -spec.mean[c] * scale[c]);
    for y in 0..height {
        let row = &bgra[y * stride..y * stride + width * 4];
        match spec.layout {
            Layout::Nhwc => {
                let out = &mut tensor[y * width * 3..(y + 1) * width * 3];
                for (px, o) in row.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
                    for c in 0..3 {
                        o[c] = px[src[c]] as f32 * scale[c] + bias[c];
                    }
                }
            }
            Layout::Nchw => {
                for c in 0..3 {
                    let out = &mut tensor[c * plane + y * width..c * plane + (y + 1) * width];
                    for (px, o) in row.chunks_exact(4).zip(out.iter_mut()) {
                        *o = px[src[c]] as f32 * scale[c] + bias[c];
                    }
                }
            }
        }
    }
}

/// Turns the raw output tensor into a person-probability plane (`out`, `width * height` values in
/// 0..1). `layout` is the layout of the output tensor (channels last for NHWC models, first for
/// NCHW); `channels` is the output's channel count (1 or 2).
pub fn person_probability(
    output: &[f32],
    channels: usize,
    layout: Layout,
    spec: &OutputSpec,
    out: &mut [f32],
) -> Result<(), String> {
    let plane = out.len();
    if output.len() != plane * channels {
        return Err(format!(
            "output has {} values, expected {} x {channels}",
            output.len(),
            plane
        ));
    }
    let at = |c: usize, i: usize| match layout {
        Layout::Nhwc => output[i * channels + c],
        Layout::Nchw => output[c * plane + i],
    };
    match (spec.kind, channels) {
        (OutputKind::Probability, 1) => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = at(0, i).clamp(0.0, 1.0);
            }
        }
        (OutputKind::Probabilities, 2) => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = at(spec.person_channel, i).clamp(0.0, 1.0);
            }
        }
        (OutputKind::LogitsSoftmax, 2) => {
            let other = 1 - spec.person_channel;
            for (i, o) in out.iter_mut().enumerate() {
                // softmax over two channels = sigmoid of the logit difference
                *o = sigmoid(at(spec.person_channel, i) - at(other, i));
            }
        }
        (kind, c) => {
            return Err(format!(
                "output kind {kind:?} needs {} channels, model has {c}",
                kind_channels(kind)
            ))
        }
    }
    Ok(())
}

fn kind_channels(kind: OutputKind) -> usize {
    match kind {
        OutputKind::Probability => 1,
        _ => 2,
    }
}

/// Logistic sigmoid, `1 / (1 + e^-x)`.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(layout: Layout, order: ChannelOrder) -> InputSpec {
        InputSpec {
            name: "x".into(),
            shape: vec![],
            layout,
            channel_order: order,
            mean: [10.0, 20.0, 30.0],
            std: [2.0, 4.0, 5.0],
        }
    }

    #[test]
    fn packs_nhwc_rgb_with_stride() {
        // 2x1 image with 4 bytes of row padding: BGRA (1,2,3,255), (4,5,6,255)
        let img = [1u8, 2, 3, 255, 4, 5, 6, 255, 0, 0, 0, 0];
        let mut t = [0f32; 6];
        pack_bgra(
            &img,
            2,
            1,
            12,
            &spec(Layout::Nhwc, ChannelOrder::Rgb),
            &mut t,
        );
        assert_eq!(
            t,
            [
                (3. - 10.) / 2.,
                (2. - 20.) / 4.,
                (1. - 30.) / 5.,
                (6. - 10.) / 2.,
                (5. - 20.) / 4.,
                (4. - 30.) / 5.
            ]
        );
    }

    #[test]
    fn packs_nchw_bgr_planes() {
        let img = [1u8, 2, 3, 255, 4, 5, 6, 255];
        let mut t = [0f32; 6];
        pack_bgra(
            &img,
            2,
            1,
            8,
            &spec(Layout::Nchw, ChannelOrder::Bgr),
            &mut t,
        );
        assert_eq!(
            t,
            [
                (1. - 10.) / 2.,
                (4. - 10.) / 2.,
                (2. - 20.) / 4.,
                (5. - 20.) / 4.,
                (3. - 30.) / 5.,
                (6. - 30.) / 5.
            ]
        );
    }

    #[test]
    fn softmax_of_two_logits_picks_person_channel() {
        let spec = OutputSpec {
            name: "y".into(),
            kind: OutputKind::LogitsSoftmax,
            person_channel: 1,
        };
        // NHWC, 2 pixels: (bg 0, person 0) -> 0.5; (bg -2, person 2) -> sigmoid(4)
        let mut out = [0f32; 2];
        person_probability(&[0.0, 0.0, -2.0, 2.0], 2, Layout::Nhwc, &spec, &mut out).unwrap();
        assert!((out[0] - 0.5).abs() < 1e-6);
        assert!((out[1] - sigmoid(4.0)).abs() < 1e-6);
        // NCHW planes: channel 0 = [0, -2], channel 1 = [0, 2]
        person_probability(&[0.0, -2.0, 0.0, 2.0], 2, Layout::Nchw, &spec, &mut out).unwrap();
        assert!((out[1] - sigmoid(4.0)).abs() < 1e-6);
    }

    #[test]
    fn probability_passes_through_clamped_and_mismatch_is_an_error() {
        let spec = OutputSpec {
            name: "y".into(),
            kind: OutputKind::Probability,
            person_channel: 0,
        };
        let mut out = [0f32; 2];
        person_probability(&[0.25, 1.5], 1, Layout::Nhwc, &spec, &mut out).unwrap();
        assert_eq!(out, [0.25, 1.0]);
        assert!(person_probability(&[0.0; 3], 1, Layout::Nhwc, &spec, &mut out).is_err());
        assert!(person_probability(&[0.0; 4], 2, Layout::Nhwc, &spec, &mut out).is_err());
    }
}
