//! Mask refinement: pure functions on f32 planes (person probability, 0..1), no OBS, no ONNX.

pub mod components;
pub mod refine;
pub mod roi;

/// Hermite smoothstep: 0 below `edge0`, 1 above `edge1`, `3t² - 2t³` between.
pub fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    if edge1 <= edge0 {
        return if x < edge0 { 0.0 } else { 1.0 };
    }
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The probability window `(lo, hi)` a soft threshold ramps over: `softness` (0..1) wide, at
/// least 2e-4 (`softness` 0 is a hard cut), centred on `threshold` moved by `shift` half-widths:
/// 0 centred, +1 inward (the window starts at the threshold: the edge softens into the person),
/// -1 outward (it ends at the threshold: every pixel at or above it stays fully the person).
/// The same formula runs in `data/effects/backdrop.effect` (`person_alpha`).
pub fn edge_window(threshold: f32, softness: f32, shift: f32) -> (f32, f32) {
    let half = (softness * 0.5).max(1e-4);
    let centre = threshold + shift * half;
    (centre - half, centre + half)
}

/// Soft threshold of a probability over [`edge_window`] (centred).
pub fn soft_threshold(p: f32, threshold: f32, softness: f32) -> f32 {
    let (lo, hi) = edge_window(threshold, softness, 0.0);
    smoothstep(lo, hi, p)
}

/// Per-pixel exponential smoothing of successive masks whose rate adapts to motion: where the new
/// mask differs little from the state (noise, a still person) the state moves by `1 - strength`
/// of the difference; where it differs by 0.3 or more (something moved) it follows at once.
/// This keeps a still edge from flickering without leaving a moving hand behind.
#[derive(Default)]
pub struct TemporalSmoother {
    state: Vec<f32>,
}

impl TemporalSmoother {
    /// Forgets the history (after a size or model change).
    pub fn reset(&mut self) {
        self.state.clear();
    }

    /// Replaces the state with `f(state, scratch)` written into `scratch` (same length), e.g. to
    /// resample it onto another region of the frame; no-op without state. Reuses `scratch`'s
    /// allocation: no allocation in steady state.
    pub fn remap(&mut self, scratch: &mut Vec<f32>, f: impl FnOnce(&[f32], &mut Vec<f32>)) {
        if self.state.is_empty() {
            return;
        }
        f(&self.state, scratch);
        if scratch.len() == self.state.len() {
            std::mem::swap(&mut self.state, scratch);
        } else {
            self.state.clear();
        }
    }

    /// Smooths `mask` in place with `strength` in 0..1 (0 = off). The first mask after a reset
    /// (or of a new size) is taken as is.
    pub fn apply(&mut self, mask: &mut [f32], strength: f32) {
        let strength = strength.clamp(0.0, 1.0);
        if self.state.len() != mask.len() {
            self.state.clear();
            self.state.extend_from_slice(mask);
            return;
        }
        if strength <= 0.0 {
            self.state.copy_from_slice(mask);
            return;
        }
        let base = 1.0 - strength;
        for (s, m) in self.state.iter_mut().zip(mask.iter_mut()) {
            let diff = *m - *s;
            let rate = base + strength * smoothstep(0.05, 0.3, diff.abs());
            *s += rate * diff;
            *m = *s;
        }
    }
}

/// Converts probabilities (0..1) to bytes (0..255), rounding.
pub fn to_u8(mask: &[f32], out: &mut [u8]) {
    for (o, m) in out.iter_mut().zip(mask) {
        *o = (m.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothstep_edges_and_midpoint() {
        assert_eq!(smoothstep(0.4, 0.6, 0.1), 0.0);
        assert_eq!(smoothstep(0.4, 0.6, 0.9), 1.0);
        assert!((smoothstep(0.4, 0.6, 0.5) - 0.5).abs() < 1e-6);
        assert_eq!(smoothstep(0.5, 0.5, 0.49), 0.0);
        assert_eq!(smoothstep(0.5, 0.5, 0.5), 1.0);
    }

    #[test]
    fn outward_windows_keep_the_person_and_inward_ones_the_background() {
        let (lo, hi) = edge_window(0.5, 0.2, -1.0);
        assert!((lo - 0.3).abs() < 1e-6 && (hi - 0.5).abs() < 1e-6);
        let (lo, hi) = edge_window(0.5, 0.2, 1.0);
        assert!((lo - 0.5).abs() < 1e-6 && (hi - 0.7).abs() < 1e-6);
        // At the threshold: outward is fully the person, inward fully the background.
        assert_eq!(smoothstep(0.3, 0.5, 0.5), 1.0);
        assert_eq!(smoothstep(0.5, 0.7, 0.5), 0.0);
    }

    #[test]
    fn soft_threshold_zero_softness_is_a_hard_cut() {
        assert!(soft_threshold(0.499, 0.5, 0.0) < 0.01);
        assert!(soft_threshold(0.501, 0.5, 0.0) > 0.99);
        assert!((soft_threshold(0.5, 0.5, 0.2) - 0.5).abs() < 1e-6);
        assert!(soft_threshold(0.45, 0.5, 0.2) > 0.1 && soft_threshold(0.45, 0.5, 0.2) < 0.5);
    }

    #[test]
    fn smoothing_damps_noise_but_follows_motion() {
        let mut s = TemporalSmoother::default();
        let mut first = vec![0.5, 0.0];
        s.apply(&mut first, 0.8);
        assert_eq!(first, vec![0.5, 0.0]);
        // small jitter on pixel 0 is damped; a jump 0 -> 1 on pixel 1 (motion) is followed fully
        let mut next = vec![0.54, 1.0];
        s.apply(&mut next, 0.8);
        assert!((next[0] - 0.5).abs() < 0.02, "jitter damped: {}", next[0]);
        assert!((next[1] - 1.0).abs() < 1e-6, "motion followed: {}", next[1]);
    }

    #[test]
    fn smoothing_off_and_size_change_take_mask_as_is() {
        let mut s = TemporalSmoother::default();
        s.apply(&mut [0.0, 0.0], 0.9);
        let mut m = [0.2, 0.2];
        s.apply(&mut m, 0.0);
        assert_eq!(m, [0.2, 0.2]);
        let mut bigger = [0.7, 0.7, 0.7];
        s.apply(&mut bigger, 0.9);
        assert_eq!(bigger, [0.7, 0.7, 0.7]);
    }

    #[test]
    fn to_u8_rounds_and_clamps() {
        let mut out = [0u8; 4];
        to_u8(&[0.0, 0.5, 1.0, 2.0], &mut out);
        assert_eq!(out, [0, 128, 255, 255]);
    }
}
