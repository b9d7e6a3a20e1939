//! The mask refinement pipeline shared by the filter's worker and the quality benchmark: pure
//! functions on f32 planes at mask resolution, plus [`composite_alpha`], the CPU twin of the
//! effect's final step, so the benchmark measures exactly what the filter draws.
//!
//! Output of refinement is a pair of coefficient planes `(a, b)` at mask resolution such that
//! the person alpha before the soft threshold is `a * luma(frame) + b`, with the coefficients
//! upsampled bilinearly to the frame's resolution (on the GPU in `backdrop.effect`). With the
//! edge-aware step off, `a = 0` and `b` is the mask itself (plain bilinear upsampling). With it
//! on, `(a, b)` are the coefficients of the fast guided filter (K. He, J. Sun, "Fast Guided
//! Filter", arXiv:1505.00996, 2015; K. He, J. Sun, X. Tang, "Guided Image Filtering", ECCV 2010):
//! a local linear model of the mask in the frame's luma, fitted at mask resolution on the small
//! frame the model saw and applied to the full-resolution frame, so the edge follows hair and
//! shoulders instead of a bilinear blob. No extra GPU readback is needed.

use super::components::{Components, PERSON};
use super::roi::{resample_plane, Region};
use super::{smoothstep, TemporalSmoother};

/// Refinement settings. Sizes in px are at the source frame's resolution unless noted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefineParams {
    /// Temporal smoothing strength, 0..1 (0 = off). See [`TemporalSmoother`].
    pub temporal_smoothing: f32,
    /// Grow (> 0) or shrink (< 0) the person by this many px of the source frame.
    pub expand_px: f32,
    /// Remove detached person blobs smaller than this fraction of the frame (0 = off).
    pub min_blob_fraction: f32,
    /// Box radius of the guided filter in mask px (0 = off: plain bilinear upsampling).
    pub guided_radius: usize,
    /// Guided filter regularisation ε (luma in 0..1): larger keeps the mask smoother.
    pub guided_eps: f32,
}

impl Default for RefineParams {
    fn default() -> Self {
        Self {
            temporal_smoothing: 0.0,
            expand_px: 0.0,
            min_blob_fraction: 0.0,
            guided_radius: 0,
            guided_eps: 1e-2,
        }
    }
}

/// BT.601 luma of 8-bit RGB, in 0..1 (the same weights as `luma()` in the effect).
pub fn luma(r: u8, g: u8, b: u8) -> f32 {
    (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32) / 255.0
}

/// Stateful refinement of successive masks of one stream (keeps the temporal state and
/// scratch buffers: no allocation per frame in steady state).
#[derive(Default)]
pub struct Refiner {
    smoother: TemporalSmoother,
    guide: Vec<f32>,
    morph: [Vec<f32>; 3],
    tmp: GuidedScratch,
    components: Components,
    /// Interleaved `(a, b)` per mask pixel.
    coefficients: Vec<f32>,
    /// Region of the frame the previous mask covered (see `mask::roi`).
    region: Region,
    resampled: Vec<f32>,
}

impl Refiner {
    /// Forgets the temporal history (new stream, model or size).
    pub fn reset(&mut self) {
        self.smoother.reset();
    }

    /// Refines `prob` (person probability, `w` x `h`, row-major) in place and returns the
    /// interleaved coefficients `(a, b)` (`2 * w * h` values). `guide_bgra` is the frame the
    /// model saw, `gw` x `gh` BGRA rows `stride` bytes apart (resampled to `w` x `h` if it
    /// differs); `source_size` is the source frame's (width, height) in px and `region` the part
    /// of it the mask covers (see `mask::roi`), for `expand_px` (mask pixels are not square in
    /// source pixels when the frame is stretched to the model) and `min_blob_fraction`. When the
    /// region differs from the previous mask's, the temporal state is resampled onto the new one.
    #[allow(clippy::too_many_arguments)]
    pub fn refine(
        &mut self,
        prob: &mut [f32],
        w: usize,
        h: usize,
        guide_bgra: &[u8],
        (gw, gh, stride): (usize, usize, usize),
        source_size: (u32, u32),
        region: Region,
        params: &RefineParams,
    ) -> &[f32] {
        assert_eq!(prob.len(), w * h);
        if region != self.region {
            let from = self.region;
            self.smoother.remap(&mut self.resampled, |state, out| {
                resample_plane(state, w, h, from, region, 0.0, out)
            });
            self.region = region;
        }
        self.smoother.apply(prob, params.temporal_smoothing);
        let (region_width, region_height) = region.size_px(source_size);
        if params.expand_px != 0.0 && region_width >= 1.0 && region_height >= 1.0 {
            let rx = params.expand_px * w as f32 / region_width;
            let ry = params.expand_px * h as f32 / region_height;
            morphology(prob, w, h, (rx, ry), &mut self.morph);
        }
        if params.min_blob_fraction > 0.0 {
            // a fraction of the frame; the mask covers `region` of it
            let area = (region.w * region.h).max(1e-6);
            remove_small_blobs(
                prob,
                w,
                h,
                (params.min_blob_fraction / area).min(1.0),
                &mut self.components,
            );
        }
        self.coefficients.resize(2 * w * h, 0.0);
        if params.guided_radius == 0 {
            for (ab, p) in self.coefficients.chunks_exact_mut(2).zip(prob.iter()) {
                ab[0] = 0.0;
                ab[1] = *p;
            }
        } else {
            self.guide.resize(w * h, 0.0);
            for y in 0..h {
                let sy = (y * gh / h).min(gh - 1);
                for x in 0..w {
                    let sx = (x * gw / w).min(gw - 1);
                    let i = sy * stride + sx * 4;
                    self.guide[y * w + x] =
                        luma(guide_bgra[i + 2], guide_bgra[i + 1], guide_bgra[i]);
                }
            }
            guided_coefficients(
                &self.guide,
                prob,
                w,
                h,
                params.guided_radius,
                params.guided_eps,
                &mut self.tmp,
                &mut self.coefficients,
            );
        }
        &self.coefficients
    }

    /// Moves the coefficients of the last [`Refiner::refine`] into `other` without copying
    /// them, by exchanging the two buffers: the next call resizes and overwrites the buffer
    /// `other` held, so buffers passed around in a cycle are never reallocated once they have
    /// the mask's size.
    pub fn swap_coefficients(&mut self, other: &mut Vec<f32>) {
        std::mem::swap(&mut self.coefficients, other);
    }
}

/// Box mean over a `(2r+1)^2` window with edge clamping (window shrinks at the border),
/// O(1) per pixel via running sums. `out` and `scratch` are resized to `w * h`.
pub fn box_mean(
    src: &[f32],
    w: usize,
    h: usize,
    r: usize,
    out: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
) {
    out.resize(w * h, 0.0);
    scratch.resize(w * h, 0.0);
    // horizontal
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let mut sum: f32 = row[..(r + 1).min(w)].iter().sum();
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r).min(w - 1);
            scratch[y * w + x] = sum / (hi - lo + 1) as f32;
            if x + r + 1 < w {
                sum += row[x + r + 1];
            }
            if x >= r {
                sum -= row[x - r];
            }
        }
    }
    // vertical
    for x in 0..w {
        let mut sum: f32 = (0..(r + 1).min(h)).map(|y| scratch[y * w + x]).sum();
        for y in 0..h {
            let lo = y.saturating_sub(r);
            let hi = (y + r).min(h - 1);
            out[y * w + x] = sum / (hi - lo + 1) as f32;
            if y + r + 1 < h {
                sum += scratch[(y + r + 1) * w + x];
            }
            if y >= r {
                sum -= scratch[(y - r) * w + x];
            }
        }
    }
}

/// Scratch planes for [`guided_coefficients`] (reused: no allocation in steady state).
pub type GuidedScratch = [Vec<f32>; 6];

/// Fast guided filter coefficients at mask resolution: for guide `i` and input `p` (both
/// `w` x `h`), `a = cov(I,p) / (var(I) + eps)`, `b = mean(p) - a mean(I)` over `(2r+1)^2` boxes,
/// then both averaged over the same box. Writes interleaved `(mean a, mean b)` to `out`.
#[allow(clippy::too_many_arguments)]
pub fn guided_coefficients(
    i: &[f32],
    p: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
    tmp: &mut GuidedScratch,
    out: &mut [f32],
) {
    let n = w * h;
    let [mean_i, mean_p, corr, prod, a, scratch] = tmp;
    box_mean(i, w, h, r, mean_i, scratch);
    box_mean(p, w, h, r, mean_p, scratch);
    prod.resize(n, 0.0);
    for k in 0..n {
        prod[k] = i[k] * p[k];
    }
    box_mean(prod, w, h, r, corr, scratch); // corr = mean(I p)
    for k in 0..n {
        prod[k] = i[k] * i[k];
    }
    box_mean(prod, w, h, r, a, scratch); // a = mean(I I), for now
    for k in 0..n {
        let var = a[k] - mean_i[k] * mean_i[k];
        let cov = corr[k] - mean_i[k] * mean_p[k];
        a[k] = cov / (var.max(0.0) + eps);
        prod[k] = mean_p[k] - a[k] * mean_i[k]; // b
    }
    box_mean(a, w, h, r, mean_i, scratch); // mean a
    box_mean(prod, w, h, r, mean_p, scratch); // mean b
    for k in 0..n {
        out[2 * k] = mean_i[k];
        out[2 * k + 1] = mean_p[k];
    }
}

/// Rectangular max (grow) or min (shrink) filter of integer radii `(kx, ky)`, separable.
#[allow(clippy::too_many_arguments)]
fn min_max_filter(
    src: &[f32],
    out: &mut [f32],
    tmp: &mut [f32],
    w: usize,
    h: usize,
    kx: usize,
    ky: usize,
    grow: bool,
) {
    let pick = |a: f32, b: f32| if grow { a.max(b) } else { a.min(b) };
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        for x in 0..w {
            tmp[y * w + x] = row[x.saturating_sub(kx)..=(x + kx).min(w - 1)]
                .iter()
                .fold(row[x], |v, s| pick(v, *s));
        }
    }
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (y.saturating_sub(ky)..=(y + ky).min(h - 1))
                .fold(tmp[y * w + x], |v, yy| pick(v, tmp[yy * w + x]));
        }
    }
}

/// Grows (radii > 0) or shrinks (radii < 0) the mask by `|rx|` x `|ry|` mask px with a
/// rectangular max/min filter; fractional radii blend between the two nearest integer radii.
/// `scratch` holds three reused planes.
pub fn morphology(
    mask: &mut [f32],
    w: usize,
    h: usize,
    (rx, ry): (f32, f32),
    scratch: &mut [Vec<f32>; 3],
) {
    let (ax, ay) = (rx.abs(), ry.abs());
    if ax < 1e-3 && ay < 1e-3 {
        return;
    }
    let grow = rx + ry > 0.0;
    let (kx, ky) = (ax.floor() as usize, ay.floor() as usize);
    let frac = ((ax.fract() + ay.fract()) * 0.5).clamp(0.0, 1.0);
    let [lo, hi, tmp] = scratch;
    for v in [&mut *lo, &mut *hi, &mut *tmp] {
        v.resize(w * h, 0.0);
    }
    min_max_filter(mask, lo, tmp, w, h, kx, ky, grow);
    if frac > 1e-3 {
        min_max_filter(mask, hi, tmp, w, h, kx + 1, ky + 1, grow);
        for k in 0..w * h {
            mask[k] = lo[k] * (1.0 - frac) + hi[k] * frac;
        }
    } else {
        mask.copy_from_slice(lo);
    }
}

/// Zeroes connected person regions (probability >= 0.5, 4-connected) whose area is below
/// `min_fraction` of the mask, keeping at least the largest region, and the soft rim (< 0.5)
/// within 2 px around each removed region. `components` is reused scratch (see
/// [`Components`]): no allocation in steady state.
pub fn remove_small_blobs(
    mask: &mut [f32],
    w: usize,
    h: usize,
    min_fraction: f32,
    components: &mut Components,
) {
    components.label(mask, w, h);
    let largest = components.largest();
    let min_size = (min_fraction * (w * h) as f32).ceil() as usize;
    const RIM: usize = 2; // mask px of soft rim (< 0.5) around a removed blob, cleared with it
    for k in 0..components.runs.len() {
        let run = components.runs[k];
        if components.kept(run.label as usize, min_size, largest) {
            continue;
        }
        let (y, x0, x1) = (run.y as usize, run.x0 as usize, run.x1 as usize);
        mask[y * w + x0..y * w + x1].fill(0.0);
        for yy in y.saturating_sub(RIM)..=(y + RIM).min(h - 1) {
            let row = &mut mask[yy * w..(yy + 1) * w];
            for p in &mut row[x0.saturating_sub(RIM)..(x1 + RIM).min(w)] {
                if *p < PERSON {
                    *p = 0.0;
                }
            }
        }
    }
}

/// Bilinear sample of interleaved coefficient planes (`w` x `h`) at local uv `(lu, lv)` (0..1
/// across the mask), with GPU texel-centre conventions and edge clamping.
fn sample(coefficients: &[f32], w: usize, h: usize, lu: f32, lv: f32) -> (f32, f32) {
    let u = (lu * w as f32 - 0.5).clamp(0.0, (w - 1) as f32);
    let v = (lv * h as f32 - 0.5).clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (u.floor() as usize, v.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (u - x0 as f32, v - y0 as f32);
    let at = |xx: usize, yy: usize, c: usize| coefficients[2 * (yy * w + xx) + c];
    let lerp = |c: usize| {
        let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
        let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
        top * (1.0 - fy) + bottom * fy
    };
    (lerp(0), lerp(1))
}

/// CPU twin of the effect's `person_alpha`: upsamples the coefficients bilinearly to the
/// `fw` x `fh` frame, applies `a * luma + b` with the frame's luma (`luma_full`, 0..1) and the
/// soft threshold over `window` (see [`super::edge_window`]). The mask covers `region` of the
/// frame (see `mask::roi`); pixels outside it are background (alpha 0). Writes alpha (0..1) to
/// `out` (`fw * fh`).
#[allow(clippy::too_many_arguments)]
pub fn composite_alpha(
    coefficients: &[f32],
    w: usize,
    h: usize,
    region: Region,
    luma_full: &[f32],
    fw: usize,
    fh: usize,
    (lo, hi): (f32, f32),
    out: &mut [f32],
) {
    for y in 0..fh {
        for x in 0..fw {
            let (lu, lv) =
                region.to_local((x as f32 + 0.5) / fw as f32, (y as f32 + 0.5) / fh as f32);
            if !(0.0..=1.0).contains(&lu) || !(0.0..=1.0).contains(&lv) {
                out[y * fw + x] = 0.0;
                continue;
            }
            let (a, b) = sample(coefficients, w, h, lu, lv);
            let p = a * luma_full[y * fw + x] + b;
            out[y * fw + x] = smoothstep(lo, hi, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mean_matches_brute_force() {
        let (w, h, r) = (7, 5, 2);
        let src: Vec<f32> = (0..w * h).map(|k| ((k * 37) % 11) as f32).collect();
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        box_mean(&src, w, h, r, &mut out, &mut scratch);
        for y in 0..h {
            for x in 0..w {
                let (mut s, mut n) = (0.0, 0.0);
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                        s += src[yy * w + xx];
                        n += 1.0;
                    }
                }
                assert!((out[y * w + x] - s / n).abs() < 1e-4, "({x},{y})");
            }
        }
    }

    #[test]
    fn guided_filter_snaps_a_blurry_edge_to_the_guide_edge() {
        // guide: sharp vertical edge at x = 8; mask: a soft ramp around it
        let (w, h) = (16, 8);
        let guide: Vec<f32> = (0..w * h)
            .map(|k| if k % w < 8 { 0.1 } else { 0.9 })
            .collect();
        let mask: Vec<f32> = (0..w * h)
            .map(|k| ((k % w) as f32 - 3.5) / 8.0)
            .map(|v| v.clamp(0.0, 1.0))
            .collect();
        let mut tmp = Default::default();
        let mut ab = vec![0f32; 2 * w * h];
        guided_coefficients(&guide, &mask, w, h, 3, 1e-3, &mut tmp, &mut ab);
        let q = |x: usize| ab[2 * (4 * w + x)] * guide[4 * w + x] + ab[2 * (4 * w + x) + 1];
        // the filtered mask jumps across the guide's edge (x = 7 -> 8) much more than the input
        let jump = q(8) - q(7);
        let input_jump = mask[4 * w + 8] - mask[4 * w + 7];
        assert!(jump > 3.0 * input_jump, "jump {jump} vs input {input_jump}");
    }

    #[test]
    fn refine_without_guided_step_is_plain_bilinear() {
        let mut r = Refiner::default();
        let mut prob = vec![0.0, 1.0, 0.0, 1.0];
        let guide = vec![0u8; 16];
        let ab = r
            .refine(
                &mut prob,
                2,
                2,
                &guide,
                (2, 2, 8),
                (100, 100),
                Region::FULL,
                &RefineParams::default(),
            )
            .to_vec();
        assert_eq!(ab, vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        // upsampled to 4x2: left column 0, right column 1, soft threshold 0 at 0.5 midway
        let mut alpha = vec![0f32; 8];
        composite_alpha(
            &ab,
            2,
            2,
            Region::FULL,
            &[0.0; 8],
            4,
            2,
            crate::mask::edge_window(0.5, 0.0, 0.0),
            &mut alpha,
        );
        assert_eq!(alpha[0], 0.0);
        assert_eq!(alpha[3], 1.0);
    }

    #[test]
    fn a_mask_of_a_region_is_drawn_there_and_background_elsewhere() {
        // a 1x1 mask saying "person" covering the right half of an 8x2 frame
        let ab = [0.0, 1.0];
        let right = Region {
            x: 0.5,
            y: 0.0,
            w: 0.5,
            h: 1.0,
        };
        let mut alpha = vec![0f32; 16];
        composite_alpha(
            &ab,
            1,
            1,
            right,
            &[0.0; 16],
            8,
            2,
            crate::mask::edge_window(0.5, 0.2, 0.0),
            &mut alpha,
        );
        for y in 0..2 {
            assert_eq!(&alpha[y * 8..y * 8 + 4], &[0.0; 4]);
            assert_eq!(&alpha[y * 8 + 4..y * 8 + 8], &[1.0; 4]);
        }
    }

    #[test]
    fn temporal_state_follows_the_region() {
        // Frame 1 over the whole frame: left half 0.5, right half 0.9. Frame 2 over the right
        // half only, 0.94 everywhere: a small change from the resampled state (0.9), so it is
        // smoothed; compared with the stale state (0.5 on the left) it would be followed at once.
        let params = RefineParams {
            temporal_smoothing: 0.9,
            ..RefineParams::default()
        };
        let right = Region {
            x: 0.5,
            y: 0.0,
            w: 0.5,
            h: 1.0,
        };
        let guide = vec![0u8; 16];
        let mut r = Refiner::default();
        let mut first = vec![0.5, 0.5, 0.9, 0.9];
        r.refine(
            &mut first,
            4,
            1,
            &guide,
            (4, 1, 16),
            (8, 2),
            Region::FULL,
            &params,
        );
        let mut second = vec![0.94; 4];
        let ab = r.refine(
            &mut second,
            4,
            1,
            &guide,
            (4, 1, 16),
            (8, 2),
            right,
            &params,
        );
        assert!((ab[3] - 0.904).abs() < 1e-3, "{}", ab[3]);
        assert!((ab[7] - 0.904).abs() < 1e-3, "{}", ab[7]);
    }

    #[test]
    fn morphology_grows_and_shrinks() {
        let (w, h) = (7, 1);
        let mut m = vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let mut s = Default::default();
        morphology(&mut m, w, h, (1.0, 1.0), &mut s);
        assert_eq!(m, vec![0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        morphology(&mut m, w, h, (-1.0, -1.0), &mut s);
        assert_eq!(m, vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        let mut half = vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        morphology(&mut half, w, h, (0.5, 0.5), &mut s);
        assert_eq!(half[2], 0.5);
        // per-axis radii: a 1080p frame stretched to a square mask grows ~2x more in x than y
        let (w, h) = (5, 5);
        let mut dot = vec![0f32; 25];
        dot[12] = 1.0;
        morphology(&mut dot, w, h, (2.0, 1.0), &mut s);
        assert_eq!(dot.iter().filter(|v| **v == 1.0).count(), 5 * 3);
    }

    #[test]
    fn small_detached_blobs_are_removed_but_the_person_stays() {
        let (w, h) = (8, 4);
        let mut m = vec![0f32; w * h];
        for y in 0..4 {
            for x in 0..4 {
                m[y * w + x] = 1.0; // the person: 16 px
            }
        }
        m[7] = 1.0; // a 1 px blob
        m[15] = 0.3; // its soft rim
        m[4] = 0.3; // the person's soft rim, not adjacent to the blob
        remove_small_blobs(&mut m, w, h, 0.1, &mut Components::default());
        assert_eq!(m[7], 0.0);
        assert_eq!(m[4], 0.3, "a rim more than 2 px away stays");
        assert_eq!(m[15], 0.0, "the removed blob's rim goes with it");
        assert_eq!(m.iter().filter(|v| **v == 1.0).count(), 16);
    }
}
