//! Tensor packing and output activations: pure functions, no ONNX Runtime.

use super::manifest::{ChannelOrder, InputSpec, Layout, OutputKind, OutputSpec};

/// A model input tensor for a tightly packed BGRA image of `width` x `height` px (see
/// [`pack_bgra`]), allocated here: for one-off runs (benchmarks, the bare model run).
///
/// # Panics
/// When `bgra` holds fewer than `width * height * 4` bytes.
pub fn packed_bgra(bgra: &[u8], width: u32, height: u32, spec: &InputSpec) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    let mut tensor = vec![0f32; w * h * 3];
    pack_bgra(bgra, w, h, w * 4, spec, &mut tensor);
    tensor
}

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
                // one pass over the row writing the three planes; the channel is picked with a
                // shift of the little-endian pixel word so that the loop vectorises
                let (p0, rest) = tensor.split_at_mut(plane);
                let (p1, p2) = rest.split_at_mut(plane);
                let span = y * width..(y + 1) * width;
                let shift = src.map(|i| 8 * i as u32);
                let planes = p0[span.clone()]
                    .iter_mut()
                    .zip(&mut p1[span.clone()])
                    .zip(&mut p2[span]);
                for (px, ((o0, o1), o2)) in row.chunks_exact(4).zip(planes) {
                    let v = u32::from_le_bytes([px[0], px[1], px[2], px[3]]);
                    *o0 = ((v >> shift[0]) & 0xff) as f32 * scale[0] + bias[0];
                    *o1 = ((v >> shift[1]) & 0xff) as f32 * scale[1] + bias[1];
                    *o2 = ((v >> shift[2]) & 0xff) as f32 * scale[2] + bias[2];
                }
            }
        }
    }
}

/// Turns the raw output tensor into a person-probability plane (`out`, `width` x `height` values
/// in 0..1, row-major; `width` = `out.len() / height`). `layout` is the layout of the output
/// tensor (channels last for NHWC models, first for NCHW); `channels` is the output's channel
/// count (1 or 2, or `blocksize²` for a depth-packed output: see [`OutputSpec::blocksize`]).
pub fn person_probability(
    output: &[f32],
    channels: usize,
    layout: Layout,
    spec: &OutputSpec,
    width: usize,
    out: &mut [f32],
) -> Result<(), String> {
    if spec.blocksize > 1 {
        return depth_to_space(output, channels, spec.blocksize, width, out);
    }
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
                *o = unit(at(0, i));
            }
        }
        (OutputKind::Probabilities, 2) => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = unit(at(spec.person_channel, i));
            }
        }
        (OutputKind::LogitsSoftmax, 2) => {
            let other = 1 - spec.person_channel;
            for (i, o) in out.iter_mut().enumerate() {
                // softmax over two channels = sigmoid of the logit difference
                *o = unit(sigmoid(at(spec.person_channel, i) - at(other, i)));
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

/// ONNX `DepthToSpace` of a one-channel mask with block size `b`: `output` is NCHW
/// `[1, b * b, H / b, W / b]`, channel `dy * b + dx` holding pixel `(b * y + dy, b * x + dx)` of
/// `out` (`width` = W px wide), clamped to 0..1.
fn depth_to_space(
    output: &[f32],
    channels: usize,
    b: usize,
    width: usize,
    out: &mut [f32],
) -> Result<(), String> {
    if channels != b * b {
        return Err(format!(
            "output blocksize {b} needs {} channels, model has {channels}",
            b * b
        ));
    }
    if width == 0 || width % b != 0 || out.len() % (width * b) != 0 || output.len() != out.len() {
        return Err(format!(
            "output has {} values for a {width}-px-wide mask of {} values in {b}x{b} blocks",
            output.len(),
            out.len()
        ));
    }
    let (small_w, small_h) = (width / b, out.len() / width / b);
    let small = small_w * small_h;
    for y in 0..small_h {
        for dy in 0..b {
            let row = &mut out[(y * b + dy) * width..(y * b + dy + 1) * width];
            for dx in 0..b {
                let start = (dy * b + dx) * small + y * small_w;
                for (x, v) in output[start..start + small_w].iter().enumerate() {
                    row[x * b + dx] = unit(*v);
                }
            }
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

/// `x` clamped to 0..1, NaN as 0: a model that outputs NaN (a broken export, an overflow) shows
/// no person rather than passing NaN to the mask and the GPU.
fn unit(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
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
            blocksize: 1,
        };
        // NHWC, 2 pixels: (bg 0, person 0) -> 0.5; (bg -2, person 2) -> sigmoid(4)
        let mut out = [0f32; 2];
        person_probability(&[0.0, 0.0, -2.0, 2.0], 2, Layout::Nhwc, &spec, 2, &mut out).unwrap();
        assert!((out[0] - 0.5).abs() < 1e-6);
        assert!((out[1] - sigmoid(4.0)).abs() < 1e-6);
        // NCHW planes: channel 0 = [0, -2], channel 1 = [0, 2]
        person_probability(&[0.0, -2.0, 0.0, 2.0], 2, Layout::Nchw, &spec, 2, &mut out).unwrap();
        assert!((out[1] - sigmoid(4.0)).abs() < 1e-6);
    }

    #[test]
    fn probability_passes_through_clamped_and_mismatch_is_an_error() {
        let spec = OutputSpec {
            name: "y".into(),
            kind: OutputKind::Probability,
            person_channel: 0,
            blocksize: 1,
        };
        let mut out = [0f32; 2];
        person_probability(&[0.25, 1.5], 1, Layout::Nhwc, &spec, 2, &mut out).unwrap();
        assert_eq!(out, [0.25, 1.0]);
        assert!(person_probability(&[0.0; 3], 1, Layout::Nhwc, &spec, 2, &mut out).is_err());
        assert!(person_probability(&[0.0; 4], 2, Layout::Nhwc, &spec, 2, &mut out).is_err());
    }

    #[test]
    fn depth_packed_output_is_rearranged_like_onnx_depth_to_space() {
        let spec = OutputSpec {
            name: "y".into(),
            kind: OutputKind::Probability,
            person_channel: 0,
            blocksize: 2,
        };
        // a 4x2 mask from [1, 4, 1, 2]: channel dy * 2 + dx holds pixel (2y + dy, 2x + dx)
        let packed = [
            0.0, 0.1, // dy 0, dx 0: pixels (0, 0), (0, 2)
            0.2, 0.3, // dy 0, dx 1: (0, 1), (0, 3)
            0.4, 0.5, // dy 1, dx 0: (1, 0), (1, 2)
            0.6, 1.7, // dy 1, dx 1: (1, 1), (1, 3); 1.7 is clamped
        ];
        let mut out = [9f32; 8];
        person_probability(&packed, 4, Layout::Nchw, &spec, 4, &mut out).unwrap();
        assert_eq!(out, [0.0, 0.2, 0.1, 0.3, 0.4, 0.6, 0.5, 1.0]);
        // wrong channel count, width not a multiple of the block, size mismatch
        assert!(person_probability(&packed, 2, Layout::Nchw, &spec, 4, &mut out).is_err());
        assert!(person_probability(&packed, 4, Layout::Nchw, &spec, 3, &mut out).is_err());
        assert!(person_probability(&packed[..4], 4, Layout::Nchw, &spec, 4, &mut out).is_err());
    }
}
