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
                sum += colour_diff(&previous[a..b], &current[a..b]);
                n += ((b - a) / 4 * 3) as u32;
            }
            worst = worst.max(sum as f32 / n.max(1) as f32);
        }
    }
    worst
}

/// Keeps B, G, R and drops A of four BGRA pixels.
const COLOUR_BYTES: [u8; 16] = [
    255, 255, 255, 0, 255, 255, 255, 0, 255, 255, 255, 0, 255, 255, 255, 0,
];

/// Sum of |p - q| over the colour bytes (B, G, R; not A) of two BGRA rows of the same length.
fn colour_diff(p: &[u8], q: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline; every x86_64 CPU has it.
        unsafe { colour_diff_sse2(p, q) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        colour_diff_scalar(p, q)
    }
}

/// Portable form of [`colour_diff`], and its reference in the tests.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn colour_diff_scalar(p: &[u8], q: &[u8]) -> u32 {
    p.iter()
        .zip(q)
        .enumerate()
        .map(|(i, (a, b))| (a.abs_diff(*b) & COLOUR_BYTES[i % 16]) as u32)
        .sum()
}

/// [`colour_diff`] with SSE2's sum of absolute byte differences (`psadbw`, 16 bytes per
/// instruction) after masking alpha out of both rows. SSE2 is part of x86_64, so this needs no
/// run-time check. The compiler does not vectorise the scalar form; for a 256x256 frame
/// (`cargo bench --bench worker -- motion_check`) the measure took 121 us with it, 31 us with this.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn colour_diff_sse2(p: &[u8], q: &[u8]) -> u32 {
    use std::arch::x86_64::*;
    let n = p.len().min(q.len());
    let whole = n / 16 * 16;
    let mask = _mm_set_epi8(0, -1, -1, -1, 0, -1, -1, -1, 0, -1, -1, -1, 0, -1, -1, -1);
    let mut acc = _mm_setzero_si128();
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 <= whole <= len of both slices; unaligned loads.
        let (a, b) = unsafe {
            (
                _mm_loadu_si128(p.as_ptr().add(i) as *const __m128i),
                _mm_loadu_si128(q.as_ptr().add(i) as *const __m128i),
            )
        };
        let sad = _mm_sad_epu8(_mm_and_si128(a, mask), _mm_and_si128(b, mask));
        acc = _mm_add_epi64(acc, sad);
    }
    let mut lanes = [0u64; 2];
    // SAFETY: 16 bytes written into a 16-byte array; unaligned store.
    unsafe { _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, acc) };
    (lanes[0] + lanes[1]) as u32 + colour_diff_scalar(&p[whole..n], &q[whole..n])
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
    fn alpha_is_ignored_and_partial_blocks_count() {
        // 37 x 21: blocks cut by both edges; only alpha differs, then one colour byte
        let a = frame(37, 21, |x, y| (x * 7 + y * 3) as u8);
        let mut b = a.clone();
        b.chunks_exact_mut(4).for_each(|p| p[3] = 0);
        assert_eq!(block_change(&a, &b, 37, 21), 0.0);
        let last = (20 * 37 + 36) * 4;
        b[last + 1] = b[last + 1].wrapping_add(30);
        // the corner block is 5 x 5 pixels = 75 colour bytes
        assert!((block_change(&a, &b, 37, 21) - 30.0 / 75.0).abs() < 1e-6);
    }

    #[test]
    fn colour_diff_matches_its_scalar_form() {
        // odd lengths leave a tail after the 16-byte groups; alpha differs everywhere
        let mut seed = 7u32;
        let mut byte = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        };
        for len in [0usize, 4, 12, 16, 20, 64, 100, 1028] {
            let p: Vec<u8> = (0..len).map(|_| byte()).collect();
            let q: Vec<u8> = (0..len).map(|_| byte()).collect();
            assert_eq!(
                colour_diff(&p, &q),
                colour_diff_scalar(&p, &q),
                "length {len}"
            );
        }
    }

    #[test]
    fn size_mismatch_counts_as_changed() {
        let a = frame(16, 16, |_, _| 0);
        let b = frame(32, 16, |_, _| 0);
        assert!(block_change(&a, &b, 32, 16).is_infinite());
    }
}
