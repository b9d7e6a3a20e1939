//! Which small frames the model runs on, and what is shown for the others.
//!
//! Each frame the worker receives is compared with the last one it inferred (same region of the
//! source, same size) and gets one of three [`Step`]s:
//!
//! - [`Step::Keep`]: the person did not move (no block of their pixels changed by
//!   `motion_threshold`, see `motion::block_change_where`): the last mask stays. At most
//!   [`MAX_SKIPPED_IN_A_ROW`] frames in a row, so the rest of the frame is looked at that often.
//! - [`Step::Warp`]: the person moved slowly (their edge blocks moved [`MAX_MEAN_DISPLACEMENT`]
//!   px or less on average since the last inference, measured by `block_motion`): the last
//!   inferred mask, moved along that motion, is shown. At most [`MAX_WARPED`] warps since the
//!   last inference, so a mask is never more than that many frames from the model's.
//! - [`Step::Infer`]: otherwise (fast motion, which changes the outline's shape and not only its
//!   place; motion beyond the search window; a new region or size; the first frame). So the
//!   rate adapts: every frame while the person moves fast, every third while slowly, about
//!   every sixteenth while still.
//!
//! Warps always start from the last *inferred* mask and frame, never from a warped one, so
//! errors do not accumulate. Pure bookkeeping and arithmetic on the worker's thread: no
//! allocation once the buffers have the frame's size.

use super::block_motion::{luma_bytes, MotionField, MotionSummary};
use super::motion;
use crate::mask::roi::Region;

/// Longest run of frames whose inference is skipped (kept or warped): a mask is refreshed at
/// least this often (about 0.5 s at 30 fps) so slow changes (light) are followed.
pub const MAX_SKIPPED_IN_A_ROW: u32 = 15;

/// Most frames warped from one inference before the model runs again: with 2, a person who
/// keeps moving is inferred every third frame.
pub const MAX_WARPED: u32 = 2;

/// Largest mean displacement of the person's edge blocks since the last inference that is
/// warped, px of the small frame (256 px across). Beyond it the model runs: the faster the
/// person moves, the more their outline changes shape, not only place. Chosen with
/// `backdrop-bench quality` on the real videos (docs/performance.md): of the measures of a
/// motion search (largest block residual, fastest block, mean residual, mean displacement),
/// the mean displacement predicts best how far a warped mask ends from the model's own
/// (correlation 0.80 over 258 warped frames, against 0.62-0.68 for the others), and 2 px keeps
/// the IoU loss under 0.005 while about half the frames are inferred.
pub const MAX_MEAN_DISPLACEMENT: f32 = 2.0;

/// Most blocks whose best match lay on the edge of the search window for a frame to be warped:
/// more, and part of the person moved further than the search could follow.
pub const MAX_LIMITED_BLOCKS: usize = 2;

/// How the worker chooses the frames it infers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CadenceParams {
    /// Keep the mask while no block of the person changed by more than this many levels
    /// (0..255) since the last inferred frame; 0 = infer every frame (no keep, no warp).
    pub motion_threshold: f32,
    /// Move the last mask with the person's motion instead of inferring, where it fits.
    pub warp: bool,
}

impl Default for CadenceParams {
    /// Every frame inferred.
    fn default() -> Self {
        Self {
            motion_threshold: 0.0,
            warp: false,
        }
    }
}

/// What to do with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run the model (and call [`Cadence::inferred`] with what it gave).
    Infer,
    /// Show the mask already shown.
    Keep,
    /// Show the last inferred mask moved with the person ([`Cadence::warp`]).
    Warp,
}

/// The state behind the choice: the last inferred frame, where its mask saw the person, its
/// coefficients, and the runs of frames since.
#[derive(Default)]
pub struct Cadence {
    params: CadenceParams,
    /// The last inferred small frame (BGRA) and its luma; empty when none (the next is inferred).
    last_bgra: Vec<u8>,
    last_luma: Vec<u8>,
    size: (usize, usize),
    region: Region,
    /// BGRA-shaped map of the person's inner pixels (`motion::person_pixels`), for keeping.
    person_pixels: Vec<u8>,
    /// Scratch for `person_pixels`: the last mask thresholded, one byte per pixel.
    person_above: Vec<u8>,
    has_person: bool,
    /// 255 where the last mask is above 0.5, at the small frame's size, for the motion search.
    person_luma: Vec<u8>,
    /// The last inferred mask's coefficient planes (interleaved, 2 per pixel) and their size.
    coefficients: Vec<f32>,
    /// Whether every `a` is 0 (the edge-aware step off): only `b` needs warping.
    a_is_zero: bool,
    mask_size: (usize, usize),
    luma: Vec<u8>,
    field: MotionField,
    skipped_in_row: u32,
    warped: u32,
    /// What the last motion search found (for statistics).
    pub last_motion: MotionSummary,
}

impl Cadence {
    /// Applies new parameters; the next frame is inferred.
    pub fn set_params(&mut self, params: CadenceParams) {
        self.params = params;
        self.reset();
    }

    /// Forgets the last inferred frame: the next frame is inferred.
    pub fn reset(&mut self) {
        self.last_bgra.clear();
        self.skipped_in_row = 0;
        self.warped = 0;
    }

    /// Chooses the step for `bgra` (tightly packed, `width` x `height`), which shows `region` of
    /// the source.
    pub fn decide(&mut self, bgra: &[u8], (width, height): (usize, usize), region: Region) -> Step {
        if self.params.motion_threshold <= 0.0
            || self.last_bgra.is_empty()
            || self.size != (width, height)
            || self.region != region
            || self.skipped_in_row >= MAX_SKIPPED_IN_A_ROW
        {
            return self.infer();
        }
        let change = motion::block_change_where(
            &self.last_bgra,
            bgra,
            width,
            height,
            self.has_person.then_some(self.person_pixels.as_slice()),
        );
        if change < self.params.motion_threshold {
            self.skipped_in_row += 1;
            return Step::Keep;
        }
        if !self.params.warp || !self.has_person || self.warped >= MAX_WARPED {
            return self.infer();
        }
        luma_bytes(bgra, width, height, &mut self.luma);
        let m = self.field.estimate(
            &self.last_luma,
            &self.luma,
            &self.person_luma,
            width,
            height,
        );
        self.last_motion = m;
        if m.blocks == 0
            || m.mean_displacement > MAX_MEAN_DISPLACEMENT
            || m.limited > MAX_LIMITED_BLOCKS
        {
            return self.infer();
        }
        self.skipped_in_row += 1;
        self.warped += 1;
        Step::Warp
    }

    fn infer(&mut self) -> Step {
        self.skipped_in_row = 0;
        self.warped = 0;
        Step::Infer
    }

    /// The last inferred coefficients moved along the motion [`Cadence::decide`] measured, into
    /// `out` (interleaved `(a, b)`, [`Cadence::mask_size`]).
    pub fn warp(&mut self, out: &mut Vec<f32>) {
        // `a` is 0 everywhere while the edge-aware step is off: only `b` moves
        let first = usize::from(self.a_is_zero);
        self.field
            .warp_from(&self.coefficients, 2, first, self.mask_size, out);
    }

    /// Size of the masks warped, (width, height).
    pub fn mask_size(&self) -> (usize, usize) {
        self.mask_size
    }

    /// Records an inferred frame: `bgra` (`width` x `height`) showing `region`, the mask's
    /// probability plane `prob` after refinement (`mask_width` x `mask_height`) and its
    /// coefficients (interleaved `(a, b)`, same size). Takes `bgra` by exchanging buffers (the
    /// caller gets the previous frame's buffer, to overwrite); copies the coefficients; keeps
    /// nothing while every frame is inferred (`motion_threshold` 0), and only what keeping
    /// needs while warping is off.
    pub fn inferred(
        &mut self,
        bgra: &mut Vec<u8>,
        (width, height): (usize, usize),
        region: Region,
        prob: &[f32],
        (mask_width, mask_height): (usize, usize),
        coefficients: &[f32],
    ) {
        if self.params.motion_threshold <= 0.0 {
            return; // every frame is inferred: nothing to compare with or warp
        }
        // kept without a copy: the caller gets the previous buffer back to overwrite
        std::mem::swap(&mut self.last_bgra, bgra);
        if self.params.warp {
            luma_bytes(&self.last_bgra, width, height, &mut self.last_luma);
        }
        self.size = (width, height);
        self.region = region;
        self.has_person = motion::person_pixels(
            prob,
            (mask_width, mask_height),
            (width, height),
            &mut self.person_above,
            &mut self.person_pixels,
        );
        if !self.params.warp {
            return; // the rest is what warping needs
        }
        self.person_luma.clear();
        self.person_luma.resize(width * height, 0);
        if mask_width > 0 && mask_height > 0 && prob.len() >= mask_width * mask_height {
            for y in 0..height {
                let my = (y * mask_height / height).min(mask_height - 1);
                let row = &prob[my * mask_width..][..mask_width];
                let out = &mut self.person_luma[y * width..][..width];
                if mask_width == width {
                    // the usual case (the mask at the model's input size): vectorised
                    for (o, &p) in out.iter_mut().zip(row) {
                        *o = if p > 0.5 { 255 } else { 0 };
                    }
                    continue;
                }
                // mask column floor(x * mask_width / width), stepped without a division
                let (mut mx, mut acc) = (0, 0);
                for o in out {
                    if row[mx.min(mask_width - 1)] > 0.5 {
                        *o = 255;
                    }
                    acc += mask_width;
                    while acc >= width {
                        acc -= width;
                        mx += 1;
                    }
                }
            }
        }
        self.coefficients.clear();
        self.coefficients.extend_from_slice(coefficients);
        self.a_is_zero = coefficients.iter().step_by(2).all(|&a| a == 0.0);
        self.mask_size = (mask_width, mask_height);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BGRA frame: a textured disc (the person) at `cx` over flat grey, and its mask.
    fn frame(cx: f32, w: usize, h: usize) -> (Vec<u8>, Vec<f32>) {
        let mut bgra = vec![0u8; w * h * 4];
        let mut prob = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - 128.0);
                let inside = u.hypot(v) < 70.0;
                let l = if inside {
                    (128.0
                        + 60.0 * (u * 0.3).sin() * (v * 0.2).cos()
                        + 40.0 * (u * 0.05 + v * 0.09).sin()) as u8
                } else {
                    100
                };
                bgra[(y * w + x) * 4..][..4].copy_from_slice(&[l, l, l, 255]);
                prob[y * w + x] = inside as u8 as f32;
            }
        }
        (bgra, prob)
    }

    fn coefficients(prob: &[f32]) -> Vec<f32> {
        prob.iter().flat_map(|&p| [0.0, p]).collect()
    }

    /// A cadence with the default threshold, warping on or off.
    fn cadence(warp: bool) -> Cadence {
        let mut c = Cadence::default();
        c.set_params(CadenceParams {
            motion_threshold: 3.0,
            warp,
        });
        c
    }

    /// Records `frame` (`size`, the whole source) as inferred, with mask `prob`.
    fn record(c: &mut Cadence, frame: &[u8], prob: &[f32], size: (usize, usize)) {
        let coefficients = coefficients(prob);
        c.inferred(
            &mut frame.to_vec(),
            size,
            Region::FULL,
            prob,
            size,
            &coefficients,
        );
    }

    #[test]
    fn keeps_while_still_warps_a_slow_move_and_infers_again_in_time() {
        let (w, h) = (256, 256);
        let mut c = cadence(true);
        let (f0, p0) = frame(120.0, w, h);
        assert_eq!(c.decide(&f0, (w, h), Region::FULL), Step::Infer);
        record(&mut c, &f0, &p0, (w, h));
        assert_eq!(c.decide(&f0, (w, h), Region::FULL), Step::Keep);
        // the person moves 0.75 px per frame (slowly): two warps, then the model again
        let mut steps = Vec::new();
        for k in 1..=3 {
            let (f, _) = frame(120.0 + 0.75 * k as f32, w, h);
            steps.push(c.decide(&f, (w, h), Region::FULL));
            if steps[k - 1] == Step::Warp {
                let mut out = Vec::new();
                c.warp(&mut out);
                // the warped mask's right edge moved with the person
                let row = 128 * w;
                let edge = (0..w)
                    .rev()
                    .find(|&x| out[2 * (row + x) + 1] > 0.5)
                    .unwrap();
                // the last pixel whose centre lies inside the disc
                let expected = (120.0 + 0.75 * k as f32 + 69.5).ceil() as usize - 1;
                assert!(
                    edge.abs_diff(expected) <= 1,
                    "edge {edge}, expected {expected}"
                );
            }
        }
        assert_eq!(steps, [Step::Warp, Step::Warp, Step::Infer]);
    }

    #[test]
    fn fast_motion_and_a_new_region_are_inferred() {
        let (w, h) = (256, 256);
        let mut c = cadence(true);
        let (f0, p0) = frame(110.0, w, h);
        c.decide(&f0, (w, h), Region::FULL);
        record(&mut c, &f0, &p0, (w, h));
        // 4 px in one frame: fast
        let (fast, _) = frame(114.0, w, h);
        assert_eq!(c.decide(&fast, (w, h), Region::FULL), Step::Infer);
        let (far, _) = frame(130.0, w, h);
        assert_eq!(c.decide(&far, (w, h), Region::FULL), Step::Infer);
        record(&mut c, &far, &p0, (w, h));
        let other = Region {
            x: 0.1,
            ..Region::FULL
        };
        assert_eq!(c.decide(&far, (w, h), other), Step::Infer);
    }

    #[test]
    fn without_warping_a_move_is_inferred_and_threshold_zero_infers_all() {
        let (w, h) = (256, 256);
        let mut c = cadence(false);
        let (f0, p0) = frame(120.0, w, h);
        c.decide(&f0, (w, h), Region::FULL);
        record(&mut c, &f0, &p0, (w, h));
        let (f1, _) = frame(122.0, w, h);
        assert_eq!(c.decide(&f1, (w, h), Region::FULL), Step::Infer);
        c.set_params(CadenceParams::default());
        record(&mut c, &f0, &p0, (w, h));
        assert_eq!(c.decide(&f0, (w, h), Region::FULL), Step::Infer);
    }

    #[test]
    fn a_still_frame_is_inferred_again_after_the_longest_run() {
        let (w, h) = (64, 64);
        let mut c = cadence(true);
        let (f0, p0) = frame(32.0, w, h);
        let mut inferred = 0;
        for _ in 0..2 * (MAX_SKIPPED_IN_A_ROW as usize + 1) {
            if c.decide(&f0, (w, h), Region::FULL) == Step::Infer {
                inferred += 1;
                record(&mut c, &f0, &p0, (w, h));
            }
        }
        assert_eq!(inferred, 2);
    }
}
