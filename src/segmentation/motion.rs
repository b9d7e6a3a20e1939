//! A cheap motion measure on the small frame the model sees, to skip inference when nothing
//! moved. Pure functions, no allocation.

/// Side of the square blocks the change is averaged over, in px of the small frame.
pub const BLOCK: usize = 16;

/// The largest mean absolute difference (0..255 levels, averaged over B, G and R) of any
/// `BLOCK` x `BLOCK` block between two BGRA frames of `width` x `height` px (tightly packed).
/// Taking the maximum over blocks, not the frame mean, keeps a small moving hand from being
/// averaged away by a still background. Frames of different sizes count as fully changed.
pub fn block_change(previous: &[u8], current: &[u8], width: usize, height: usize) -> f32 {
    if previous.len() != current.len()
        || current.len() < width * height * 4
        || width == 0
        || height == 0
    {
        return f32::INFINITY;
    }
    let mut worst = 0f32;
    for by in (0..height).step_by(BLOCK) {
        for bx in (0..width).step_by(BLOCK) {
            let (mut sum, mut n) = (0u32, 0u32);
            for y in by..(by + BLOCK).min(height) {
                let row = y * width * 4;
                let (a, b) = (row + bx * 4, row + (bx + BLOCK).min(width) * 4);
                for (p, q) in previous[a..b]
                    .chunks_exact(4)
                    .zip(current[a..b].chunks_exact(4))
                {
                    sum += (0..3).map(|c| p[c].abs_diff(q[c]) as u32).sum::<u32>();
                    n += 3;
                }
            }
            worst = worst.max(sum as f32 / n.max(1) as f32);
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(w * h * 4);
        for y in 0..h {
            for x in 0..w {
                let v = f(x, y);
                out.extend_from_slice(&[v, v, v, 255]);
            }
        }
        out
    }

    #[test]
    fn identical_frames_do_not_change() {
        let a = frame(64, 48, |x, y| (x * 3 + y) as u8);
        assert_eq!(block_change(&a, &a, 64, 48), 0.0);
    }

    #[test]
    fn noise_stays_low_but_a_small_moving_patch_is_found() {
        let a = frame(64, 64, |_, _| 100);
        let noisy = frame(64, 64, |x, y| if (x + y) % 2 == 0 { 101 } else { 99 });
        assert!((block_change(&a, &noisy, 64, 64) - 1.0).abs() < 1e-6);
        // a 16x16 "hand" (1/16 of the frame) moves in: the frame mean would be ~3.75 levels,
        // the block maximum is the full 60
        let hand = frame(64, 64, |x, y| if x < 16 && y < 16 { 160 } else { 100 });
        assert!((block_change(&a, &hand, 64, 64) - 60.0).abs() < 1e-6);
    }

    #[test]
    fn size_mismatch_counts_as_changed() {
        let a = frame(16, 16, |_, _| 0);
        let b = frame(32, 16, |_, _| 0);
        assert!(block_change(&a, &b, 32, 16).is_infinite());
    }
}
