//! Frame -> model input: the CPU twin of the filter's GPU downscale.
//!
//! The filter stretches its frame to the model's input size on the GPU with `PSDownscale` in
//! `data/effects/backdrop.effect`: for each output pixel, 4x4 bilinear taps (texture address mode
//! clamp) spread over the pixel's footprint at offsets `(i - 1.5) / 4` of an output texel, i = 0..3,
//! averaged with equal weights, written to a BGRA8 target. [`GpuDownscale`] computes exactly that
//! in f32 (texel centres at `(x + 0.5) / size`, UNORM rounding to nearest on write). Bilinear
//! taps and equal weights make the filter separable, so it is applied as a horizontal then a
//! vertical pass with precomputed weights; the result equals the 16-tap form up to f32 rounding
//! (checked in the tests).
//!
//! [`Resample::FirBilinear`] is the alternative the repository's tests and the reference figures
//! in `PROVENANCE.md` used: `fast_image_resize` convolution with its bilinear filter (support
//! scaled with the downscale ratio).

use anyhow::{anyhow, Result};
use backdrop_core::mask::roi::Region;
use fast_image_resize as fr;

/// How frames are stretched to the model's input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// The plugin's GPU downscale (`PSDownscale`), computed on the CPU.
    Gpu,
    /// `fast_image_resize` convolution, bilinear filter.
    FirBilinear,
}

impl Resample {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "gpu" => Ok(Self::Gpu),
            "fir-bilinear" => Ok(Self::FirBilinear),
            _ => Err(anyhow!("unknown --resample '{s}' (gpu | fir-bilinear)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gpu => "gpu (CPU twin of PSDownscale, 4x4 bilinear taps per output px)",
            Self::FirBilinear => "fir-bilinear (fast_image_resize convolution, bilinear)",
        }
    }
}

/// Source texels and weights of one output coordinate along one axis.
type AxisTaps = Vec<(usize, f32)>;

/// Weights along one axis: 4 bilinear taps at `offset + scale * (o + 0.5 + (i - 1.5) / 4) / dst`
/// (frame uv; `offset`, `scale` are the sampled region's position and size on this axis, see
/// `mask::roi::Region`), each worth 1/4, source texel centres at `(s + 0.5) / src`, coordinates
/// clamped to the edge texels; taps outside 0..1 are black (letterbox padding: no weight).
pub fn axis_taps(src: usize, dst: usize, offset: f32, scale: f32) -> Vec<AxisTaps> {
    (0..dst)
        .map(|o| {
            let mut taps: AxisTaps = Vec::with_capacity(8);
            let mut add = |s: usize, w: f32| {
                if w == 0.0 {
                    return;
                }
                match taps.iter_mut().find(|(i, _)| *i == s) {
                    Some(t) => t.1 += w,
                    None => taps.push((s, w)),
                }
            };
            for i in 0..4 {
                let uv = offset + scale * (o as f32 + 0.5 + (i as f32 - 1.5) * 0.25) / dst as f32;
                if !(0.0..=1.0).contains(&uv) {
                    continue;
                }
                let pos = (uv * src as f32 - 0.5).clamp(0.0, (src - 1) as f32);
                let s0 = pos.floor() as usize;
                let f = pos - s0 as f32;
                add(s0, 0.25 * (1.0 - f));
                add((s0 + 1).min(src - 1), 0.25 * f);
            }
            taps
        })
        .collect()
}

/// Reusable GPU-downscale twin for one (source size, output size, region) triple.
pub struct GpuDownscale {
    src: (usize, usize),
    dst: (usize, usize),
    region: Region,
    xs: Vec<AxisTaps>,
    ys: Vec<AxisTaps>,
    rows: Vec<f32>,
}

impl GpuDownscale {
    /// The downscale of `region` of a `src` frame to `dst` px.
    pub fn new(src: (usize, usize), dst: (usize, usize), region: Region) -> Self {
        Self {
            src,
            dst,
            region,
            xs: axis_taps(src.0, dst.0, region.x, region.w),
            ys: axis_taps(src.1, dst.1, region.y, region.h),
            rows: Vec::new(),
        }
    }

    /// Whether this downscaler is the one for these sizes and region.
    pub fn is_for(&self, src: (usize, usize), dst: (usize, usize), region: Region) -> bool {
        (self.src, self.dst, self.region) == (src, dst, region)
    }

    /// Downscales tightly packed RGB (`src` size) to tightly packed BGRA (`dst` size, A = 255).
    pub fn run(&mut self, rgb: &[u8], out_bgra: &mut Vec<u8>) {
        let ((sw, sh), (dw, dh)) = (self.src, self.dst);
        assert_eq!(rgb.len(), sw * sh * 3);
        // horizontal pass: every source row -> dw RGB floats
        self.rows.resize(sh * dw * 3, 0.0);
        for y in 0..sh {
            let row = &rgb[y * sw * 3..(y + 1) * sw * 3];
            for (x, taps) in self.xs.iter().enumerate() {
                let mut acc = [0f32; 3];
                for &(s, w) in taps {
                    for (a, v) in acc.iter_mut().zip(&row[s * 3..s * 3 + 3]) {
                        *a += w * *v as f32;
                    }
                }
                self.rows[(y * dw + x) * 3..(y * dw + x) * 3 + 3].copy_from_slice(&acc);
            }
        }
        out_bgra.resize(dw * dh * 4, 0);
        for (y, taps) in self.ys.iter().enumerate() {
            for x in 0..dw {
                let mut acc = [0f32; 3];
                for &(s, w) in taps {
                    let k = (s * dw + x) * 3;
                    for (a, v) in acc.iter_mut().zip(&self.rows[k..k + 3]) {
                        *a += w * v;
                    }
                }
                let o = (y * dw + x) * 4;
                // UNORM8 write rounds to nearest; BGRA byte order
                out_bgra[o] = unorm8(acc[2]);
                out_bgra[o + 1] = unorm8(acc[1]);
                out_bgra[o + 2] = unorm8(acc[0]);
                out_bgra[o + 3] = 255;
            }
        }
    }
}

fn unorm8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}

/// Stretches `region` of tightly packed RGB to BGRA with `fast_image_resize` (bilinear
/// convolution). Regions past the frame's edge (letterbox) are not supported here.
pub fn fir_bilinear(
    rgb: &[u8],
    src: (usize, usize),
    dst: (usize, usize),
    region: Region,
    out_bgra: &mut Vec<u8>,
) -> Result<()> {
    if region.clamped() != region {
        anyhow::bail!("--resample fir-bilinear cannot letterbox; use --resample gpu");
    }
    let image = fr::images::ImageRef::new(src.0 as u32, src.1 as u32, rgb, fr::PixelType::U8x3)?;
    let mut small = fr::images::Image::new(dst.0 as u32, dst.1 as u32, fr::PixelType::U8x3);
    let [x, y, w, h] = region.pixel_rect(src.0 as f64, src.1 as f64);
    fr::Resizer::new().resize(
        &image,
        &mut small,
        &fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
            .crop(x, y, w, h),
    )?;
    out_bgra.clear();
    for px in small.buffer().chunks_exact(3) {
        out_bgra.extend_from_slice(&[px[2], px[1], px[0], 255]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PSDownscale` literally: 16 bilinear samples with clamp, averaged.
    fn brute_force(
        rgb: &[u8],
        (sw, sh): (usize, usize),
        (dw, dh): (usize, usize),
        r: Region,
    ) -> Vec<u8> {
        let texel = |x: isize, y: isize, c: usize| {
            let x = x.clamp(0, sw as isize - 1) as usize;
            let y = y.clamp(0, sh as isize - 1) as usize;
            rgb[(y * sw + x) * 3 + c] as f32
        };
        let bilinear = |u: f32, v: f32, c: usize| {
            let (px, py) = (u * sw as f32 - 0.5, v * sh as f32 - 0.5);
            let (x0, y0) = (px.floor(), py.floor());
            let (fx, fy) = (px - x0, py - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            let top = texel(x0, y0, c) * (1.0 - fx) + texel(x0 + 1, y0, c) * fx;
            let bottom = texel(x0, y0 + 1, c) * (1.0 - fx) + texel(x0 + 1, y0 + 1, c) * fx;
            top * (1.0 - fy) + bottom * fy
        };
        let mut out = vec![0u8; dw * dh * 4];
        for oy in 0..dh {
            for ox in 0..dw {
                let (u, v) = ((ox as f32 + 0.5) / dw as f32, (oy as f32 + 0.5) / dh as f32);
                for c in 0..3 {
                    let mut sum = 0.0;
                    for y in 0..4 {
                        for x in 0..4 {
                            let du = (x as f32 - 1.5) * 0.25 / dw as f32;
                            let dv = (y as f32 - 1.5) * 0.25 / dh as f32;
                            let (fu, fv) = (r.x + (u + du) * r.w, r.y + (v + dv) * r.h);
                            if (0.0..=1.0).contains(&fu) && (0.0..=1.0).contains(&fv) {
                                sum += bilinear(fu, fv, c);
                            }
                        }
                    }
                    out[(oy * dw + ox) * 4 + (2 - c)] = unorm8(sum / 16.0);
                }
                out[(oy * dw + ox) * 4 + 3] = 255;
            }
        }
        out
    }

    fn pattern(w: usize, h: usize) -> Vec<u8> {
        (0..w * h * 3)
            .map(|k| ((k * 7919 + (k / 3) * 13) % 251) as u8)
            .collect()
    }

    #[test]
    fn separable_form_equals_sixteen_bilinear_taps() {
        let crop = Region {
            x: 0.2,
            y: 0.1,
            w: 0.5,
            h: 0.7,
        };
        let letterbox = backdrop_core::mask::roi::letterbox((64, 36), (32, 32));
        for (src, dst, region) in [
            ((37, 23), (16, 16), Region::FULL),
            ((640, 480), (256, 256), Region::FULL),
            ((176, 144), (256, 144), Region::FULL),
            ((16, 16), (40, 20), Region::FULL),
            ((640, 480), (256, 256), crop),
            ((64, 36), (32, 32), letterbox),
        ] {
            let rgb = pattern(src.0, src.1);
            let mut out = Vec::new();
            GpuDownscale::new(src, dst, region).run(&rgb, &mut out);
            let reference = brute_force(&rgb, src, dst, region);
            let worst = out
                .iter()
                .zip(&reference)
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            assert!(worst <= 1, "{src:?} -> {dst:?}: max difference {worst}");
        }
    }

    #[test]
    fn weights_sum_to_one_and_constant_images_stay_constant() {
        let (a, b) = (axis_taps(1000, 256, 0.0, 1.0), axis_taps(7, 256, 0.0, 1.0));
        for taps in a.iter().chain(b.iter()) {
            let sum: f32 = taps.iter().map(|t| t.1).sum();
            assert!((sum - 1.0).abs() < 1e-5);
        }
        let rgb: Vec<u8> = [10u8, 20, 30].repeat(50 * 40);
        let mut out = Vec::new();
        GpuDownscale::new((50, 40), (8, 8), Region::FULL).run(&rgb, &mut out);
        assert!(out.chunks_exact(4).all(|p| p == [30, 20, 10, 255]));
    }

    #[test]
    fn fir_bilinear_keeps_constant_colour_in_bgra_order() {
        let rgb: Vec<u8> = [10u8, 20, 30].repeat(50 * 40);
        let mut out = Vec::new();
        fir_bilinear(&rgb, (50, 40), (8, 8), Region::FULL, &mut out).unwrap();
        assert_eq!(out.len(), 8 * 8 * 4);
        assert!(out.chunks_exact(4).all(|p| p == [30, 20, 10, 255]));
    }
}
