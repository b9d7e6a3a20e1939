//! Synthetic videos with exact ground truth: a portrait's person, cut out with its ground-truth
//! mask, composited over a person-free crop of another portrait, moving slowly then standing
//! still, with fresh camera-like noise on every frame.
//!
//! - Size and timing: [`WIDTH`] x [`HEIGHT`] px, [`FRAMES`] frames at [`FPS`] fps (10 s).
//! - Background: the largest 4:3 window of the background portrait that contains no ground-truth
//!   person pixel (searched in 4 px steps), stretched to the frame (bilinear).
//! - Foreground: the foreground portrait scaled (bilinear, alpha-aware) to the frame's height,
//!   bottom-aligned and centred; its alpha is the ground-truth mask resampled with it, so the
//!   cut-out edge is antialiased like a real edge.
//! - Motion: frames 0..=[`MOVING_FRAMES`] translate the person horizontally by [`TRAVEL_PX`] px
//!   in total (0.27 px per frame: sub-pixel steps, bilinear); then it stands still.
//! - Ground truth per frame: the moved alpha > 0.5.
//! - Noise: independent Gaussian noise of `sigma` levels (of 255) per pixel, channel and frame,
//!   from a fixed seed. Without it the still half would be the same image 150 times and every
//!   pipeline would show zero flicker there; a real camera never delivers identical frames.

use super::media::RgbImage;
use anyhow::{bail, Result};
use fast_image_resize as fr;

pub const WIDTH: usize = 480;
pub const HEIGHT: usize = 360;
pub const FPS: usize = 30;
/// 10 s at 30 fps.
pub const FRAMES: usize = 300;
/// The person moves from frame 0 to this frame, then stands still (5 s each).
pub const MOVING_FRAMES: usize = 150;
/// Total horizontal travel in px.
pub const TRAVEL_PX: f32 = 40.0;
/// Default noise, standard deviation in 8-bit levels.
pub const DEFAULT_NOISE: f32 = 3.0;

/// A foreground portrait (its person) over a background portrait (a person-free crop of it).
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    pub foreground: u32,
    pub background: u32,
}

/// The synthetic videos: head-and-shoulders portraits whose person touches only the bottom edge
/// of the image (so it can move sideways without a cut edge showing), over crops of leaves,
/// a tree against the sky, and dry grass.
pub const PAIRS: [Pair; 3] = [
    Pair {
        foreground: 78,
        background: 72,
    },
    Pair {
        foreground: 177,
        background: 90,
    },
    Pair {
        foreground: 84,
        background: 108,
    },
];

/// Horizontal offset of the person at frame `t`, px (-20 at t = 0 .. +20 from `MOVING_FRAMES`).
pub fn offset(t: usize) -> f32 {
    -TRAVEL_PX / 2.0 + TRAVEL_PX * t.min(MOVING_FRAMES) as f32 / MOVING_FRAMES as f32
}

/// Whether the frame pair `(t - 1, t)` belongs to the moving part (else the still part).
pub fn pair_is_moving(t: usize) -> bool {
    t <= MOVING_FRAMES
}

/// The largest window of aspect `aw:ah` (sizes in `step` px steps, positions in `step` px steps,
/// scanned top-left first) that contains no `true` pixel of `mask` (`w` x `h`).
/// Returns `(x, y, width, height)`.
pub fn largest_free_window(
    mask: &[bool],
    w: usize,
    h: usize,
    (aw, ah): (usize, usize),
    step: usize,
) -> Option<(usize, usize, usize, usize)> {
    // integral image with a zero row and column in front
    let mut sum = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += mask[y * w + x] as u32;
            sum[(y + 1) * (w + 1) + x + 1] = sum[y * (w + 1) + x + 1] + row;
        }
    }
    let count = |x: usize, y: usize, cw: usize, ch: usize| {
        let at = |xx: usize, yy: usize| sum[yy * (w + 1) + xx] as i64;
        at(x + cw, y + ch) - at(x, y + ch) - at(x + cw, y) + at(x, y)
    };
    let mut ch = h - h % step.max(1);
    while ch >= step.max(1) {
        let cw = ch * aw / ah;
        if cw <= w {
            for y in (0..=h - ch).step_by(step) {
                for x in (0..=w - cw).step_by(step) {
                    if count(x, y, cw, ch) == 0 {
                        return Some((x, y, cw, ch));
                    }
                }
            }
        }
        ch -= step.max(1);
    }
    None
}

/// SplitMix64: a tiny, fixed, portable pseudo-random generator (S. Vigna), for the noise.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 + 1.0) / (1u64 << 24) as f32
    }

    /// Two independent standard normal values (Box-Muller).
    pub fn normal_pair(&mut self) -> (f32, f32) {
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f32::consts::TAU * u2;
        (r * t.cos(), r * t.sin())
    }
}

/// One synthetic video, ready to render any frame.
pub struct Scene {
    /// Background, RGB f32 (0..255), `WIDTH` x `HEIGHT`.
    background: Vec<f32>,
    /// Foreground, premultiplied RGBA f32 (colour 0..255, alpha 0..1), `fg_w` x `fg_h`.
    foreground: Vec<[f32; 4]>,
    fg_w: usize,
    fg_h: usize,
    /// Left edge of the foreground at offset 0, px.
    x0: f32,
    /// Top edge of the foreground, px.
    y0: isize,
    /// Background crop `(x, y, w, h)` in the background portrait.
    pub crop: (usize, usize, usize, usize),
}

impl Scene {
    /// Builds a scene from a foreground portrait and its mask and a background portrait and its
    /// mask (masks at their image's size).
    pub fn new(fg: &RgbImage, fg_mask: &[bool], bg: &RgbImage, bg_mask: &[bool]) -> Result<Self> {
        let Some(crop) = largest_free_window(bg_mask, bg.width, bg.height, (4, 3), 4) else {
            bail!("background portrait has no person-free 4:3 window");
        };
        if crop.2 < WIDTH / 4 {
            bail!(
                "background's person-free window is only {}x{} px",
                crop.2,
                crop.3
            );
        }
        let src = fr::images::ImageRef::new(
            bg.width as u32,
            bg.height as u32,
            &bg.data,
            fr::PixelType::U8x3,
        )?;
        let mut dst = fr::images::Image::new(WIDTH as u32, HEIGHT as u32, fr::PixelType::U8x3);
        fr::Resizer::new().resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
                .crop(crop.0 as f64, crop.1 as f64, crop.2 as f64, crop.3 as f64),
        )?;
        let background = dst.buffer().iter().map(|v| *v as f32).collect();

        // RGBA with the mask as alpha; fast_image_resize resamples it alpha-aware (premultiplied)
        let rgba: Vec<u8> = fg
            .data
            .chunks_exact(3)
            .zip(fg_mask)
            .flat_map(|(p, m)| [p[0], p[1], p[2], if *m { 255 } else { 0 }])
            .collect();
        let fg_h = HEIGHT;
        let fg_w = ((fg.width as f64 * HEIGHT as f64 / fg.height as f64).round() as usize).max(1);
        let src = fr::images::Image::from_vec_u8(
            fg.width as u32,
            fg.height as u32,
            rgba,
            fr::PixelType::U8x4,
        )?;
        let mut dst = fr::images::Image::new(fg_w as u32, fg_h as u32, fr::PixelType::U8x4);
        fr::Resizer::new().resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear)),
        )?;
        let foreground = dst
            .buffer()
            .chunks_exact(4)
            .map(|p| {
                let a = p[3] as f32 / 255.0;
                [p[0] as f32 * a, p[1] as f32 * a, p[2] as f32 * a, a]
            })
            .collect();
        Ok(Self {
            background,
            foreground,
            fg_w,
            fg_h,
            x0: (WIDTH as f32 - fg_w as f32) / 2.0,
            y0: HEIGHT as isize - fg_h as isize,
            crop,
        })
    }

    /// Renders frame `t` into `out` (`WIDTH` x `HEIGHT` RGB) and its ground truth into `truth`,
    /// with Gaussian noise of `noise` levels seeded by `seed` (and `t`).
    pub fn render(
        &self,
        t: usize,
        noise: f32,
        seed: u64,
        out: &mut RgbImage,
        truth: &mut Vec<bool>,
    ) {
        out.width = WIDTH;
        out.height = HEIGHT;
        out.data.resize(WIDTH * HEIGHT * 3, 0);
        truth.resize(WIDTH * HEIGHT, false);
        let left = self.x0 + offset(t);
        let mut rng = SplitMix64::new(seed.wrapping_mul(0x1_0000_0001).wrapping_add(t as u64));
        let mut spare: Option<f32> = None;
        let mut gauss = || {
            if let Some(v) = spare.take() {
                return v;
            }
            let (a, b) = rng.normal_pair();
            spare = Some(b);
            a
        };
        let zero = [0f32; 4];
        for y in 0..HEIGHT {
            let fy = y as isize - self.y0;
            let row = (0..self.fg_h as isize)
                .contains(&fy)
                .then(|| &self.foreground[fy as usize * self.fg_w..(fy as usize + 1) * self.fg_w]);
            for x in 0..WIDTH {
                let sx = x as f32 - left;
                let i0 = sx.floor();
                let f = sx - i0;
                let i0 = i0 as isize;
                let at = |i: isize| match row {
                    Some(r) if i >= 0 && (i as usize) < self.fg_w => &r[i as usize],
                    _ => &zero,
                };
                let (p0, p1) = (at(i0), at(i0 + 1));
                let fg: [f32; 4] = std::array::from_fn(|c| p0[c] * (1.0 - f) + p1[c] * f);
                let k = y * WIDTH + x;
                truth[k] = fg[3] > 0.5;
                for c in 0..3 {
                    let mut v = fg[c] + (1.0 - fg[3]) * self.background[k * 3 + c];
                    if noise > 0.0 {
                        v += noise * gauss();
                    }
                    out.data[k * 3 + c] = (v.clamp(0.0, 255.0) + 0.5) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_forty_px_then_stands_still() {
        assert_eq!(offset(0), -20.0);
        assert!((offset(75) - 0.0).abs() < 1e-6);
        assert_eq!(offset(MOVING_FRAMES), 20.0);
        assert_eq!(offset(FRAMES - 1), 20.0);
        assert!(pair_is_moving(1) && pair_is_moving(MOVING_FRAMES));
        assert!(!pair_is_moving(MOVING_FRAMES + 1));
    }

    #[test]
    fn free_window_avoids_the_person() {
        // 40x30, person in the left half: the largest free 4:3 window is in the right half
        let (w, h) = (40, 30);
        let mask: Vec<bool> = (0..w * h).map(|k| k % w < 20).collect();
        let (x, y, cw, ch) = largest_free_window(&mask, w, h, (4, 3), 1).unwrap();
        assert!(x >= 20 && x + cw <= w && y + ch <= h);
        assert_eq!((cw, ch), (20, 15));
        assert!(largest_free_window(&[true; 16], 4, 4, (1, 1), 1).is_none());
    }

    #[test]
    fn gaussian_noise_has_unit_variance() {
        let mut rng = SplitMix64::new(7);
        let n = 20000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n / 2 {
            let (a, b) = rng.normal_pair();
            for v in [a as f64, b as f64] {
                s += v;
                s2 += v * v;
            }
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    fn scene() -> Scene {
        // foreground: 20x36 grey square person in the middle of a 40x36 image
        let (fw, fh) = (40, 36);
        let fg = RgbImage {
            width: fw,
            height: fh,
            data: vec![200; fw * fh * 3],
        };
        let fg_mask: Vec<bool> = (0..fw * fh).map(|k| (10..30).contains(&(k % fw))).collect();
        // background: 200x150, person only in a corner
        let (bw, bh) = (200, 150);
        let bg = RgbImage {
            width: bw,
            height: bh,
            data: vec![50; bw * bh * 3],
        };
        let bg_mask: Vec<bool> = (0..bw * bh).map(|k| k % bw < 4 && k / bw < 4).collect();
        Scene::new(&fg, &fg_mask, &bg, &bg_mask).unwrap()
    }

    #[test]
    fn person_moves_with_the_offset_and_truth_follows() {
        let s = scene();
        let (mut img, mut truth) = (
            RgbImage {
                width: 0,
                height: 0,
                data: vec![],
            },
            vec![],
        );
        s.render(0, 0.0, 1, &mut img, &mut truth);
        let first: Vec<bool> = truth.clone();
        let area0 = first.iter().filter(|v| **v).count();
        // foreground scaled 10x: person 200 px wide, full height
        assert!(
            (area0 as i64 - (200 * HEIGHT) as i64).abs() <= HEIGHT as i64,
            "{area0}"
        );
        let centroid = |t: &[bool]| {
            let (mut s, mut n) = (0.0, 0.0);
            for (k, v) in t.iter().enumerate() {
                if *v {
                    s += (k % WIDTH) as f64;
                    n += 1.0;
                }
            }
            s / n
        };
        s.render(MOVING_FRAMES, 0.0, 1, &mut img, &mut truth);
        let moved = centroid(&truth) - centroid(&first);
        assert!((moved - TRAVEL_PX as f64).abs() < 1.0, "moved {moved}");
        // person colour inside, background colour outside
        let k = HEIGHT / 2 * WIDTH + WIDTH / 2;
        assert_eq!(&img.data[k * 3..k * 3 + 3], &[200, 200, 200]);
        assert_eq!(&img.data[0..3], &[50, 50, 50]);
        // still part: without noise identical frames, with noise different ones
        let still = img.data.clone();
        s.render(FRAMES - 1, 0.0, 1, &mut img, &mut truth);
        assert_eq!(img.data, still);
        s.render(FRAMES - 1, 3.0, 1, &mut img, &mut truth);
        let noisy = img.data.clone();
        s.render(FRAMES - 2, 3.0, 1, &mut img, &mut truth);
        assert_ne!(img.data, noisy);
        let mad: f64 = noisy
            .iter()
            .zip(&still)
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / still.len() as f64;
        assert!(mad > 1.5 && mad < 3.5, "mean |noise| {mad}");
    }
}
