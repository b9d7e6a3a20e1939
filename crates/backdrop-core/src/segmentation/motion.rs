//! A cheap motion measure on the small frame the model sees, to skip inference when the person
//! did not move. It compares blocks of the frame, and only the pixels where the last mask saw
//! the person ([`person_pixels`]): a television, a window or a fan behind them, even right next
//! to them, does not keep the model busy, while any move of theirs changes pixels that were
//! theirs. Pure functions; no allocation once the pixel map has its size.

/// Side of the square blocks the change is averaged over, in px of the small frame.
pub const BLOCK: usize = 16;

/// The largest mean absolute difference (0..255 levels, averaged over B, G and R) of any
/// `BLOCK` x `BLOCK` block between two BGRA frames of `width` x `height` px (tightly packed).
/// Taking the maximum over blocks, not the frame mean, keeps a small moving hand from being
/// averaged away by a still background. Frames of different sizes count as fully changed.
pub fn block_change(previous: &[u8], current: &[u8], width: usize, height: usize) -> f32 {
    block_change_where(previous, current, width, height, None)
}

/// Probability above which a pixel of the mask is the person's, for [`person_pixels`].
pub const PERSON_PROBABILITY: f32 = 0.8;

/// Writes into `pixels` (resized to `width * height * 4` bytes, one BGRA-shaped entry per pixel
/// of the small frame) 255 in the colour bytes of each pixel where `mask` (a `mask_width` x
/// `mask_height` probability plane covering the same frame, any resolution) is above
/// [`PERSON_PROBABILITY`] there and [`PERSON_INSET`] px away on all four sides, 0 elsewhere and
/// in every alpha byte. `above` is scratch (resized to `width * height`: the thresholded mask,
/// one byte per pixel). Returns whether any pixel is the person's.
pub fn person_pixels(
    mask: &[f32],
    (mask_width, mask_height): (usize, usize),
    (width, height): (usize, usize),
    above: &mut Vec<u8>,
    pixels: &mut Vec<u8>,
) -> bool {
    pixels.clear();
    pixels.resize(width * height * 4, 0);
    if mask.len() < mask_width * mask_height || mask_width == 0 || mask_height == 0 {
        return false;
    }
    // the mask resampled (nearest) to the frame, thresholded: one byte per pixel, 0 or 1
    above.clear();
    above.resize(width * height, 0);
    for (y, out) in above.chunks_exact_mut(width.max(1)).enumerate() {
        let row = &mask[(y * mask_height / height) * mask_width..][..mask_width];
        if mask_width == width {
            for (o, &p) in out.iter_mut().zip(row) {
                *o = u8::from(p > PERSON_PROBABILITY);
            }
            continue;
        }
        // mask column floor(x * mask_width / width), stepped without a division per pixel
        let (mut mx, mut acc) = (0, 0);
        for o in out.iter_mut() {
            *o = u8::from(row[mx.min(mask_width - 1)] > PERSON_PROBABILITY);
            acc += mask_width;
            while acc >= width {
                acc -= width;
                mx += 1;
            }
        }
    }
    // Inside the person by PERSON_INSET px on all four sides (the frame's edge clamps): pixels
    // at the edge mix in what is behind (hair, motion blur), and that may move. Row by row
    // over whole slices, so the compiler vectorises the interior.
    let e = PERSON_INSET;
    let mut found = 0u8;
    for y in 0..height {
        let row = |y: usize| &above[y * width..][..width];
        let (here, up, down) = (
            row(y),
            row(y.saturating_sub(e)),
            row((y + e).min(height - 1)),
        );
        let out = &mut pixels[y * width * 4..][..width * 4];
        let at = |x: usize| here[x] & up[x] & down[x];
        if width > 2 * e {
            for x in 0..e {
                found |= mark(&mut out[x * 4..][..4], at(x) & here[0] & here[x + e]);
            }
            let inner = width - 2 * e;
            let (left, centre, right) = (&here[..inner], &here[e..][..inner], &here[2 * e..]);
            let (u, d) = (&up[e..][..inner], &down[e..][..inner]);
            for (i, o) in out[e * 4..][..inner * 4].chunks_exact_mut(4).enumerate() {
                found |= mark(o, left[i] & centre[i] & right[i] & u[i] & d[i]);
            }
            for x in width - e..width {
                found |= mark(
                    &mut out[x * 4..][..4],
                    at(x) & here[x - e] & here[width - 1],
                );
            }
        } else {
            for x in 0..width {
                let inside = at(x) & here[x.saturating_sub(e)] & here[(x + e).min(width - 1)];
                found |= mark(&mut out[x * 4..][..4], inside);
            }
        }
    }
    found != 0
}

/// Writes one pixel of [`person_pixels`] (`inside` 0 or 1) into its 4 bytes; returns `inside`.
#[inline(always)]
fn mark(pixel: &mut [u8], inside: u8) -> u8 {
    // B, G, R 255 and alpha 0 for the person's pixels, all 0 elsewhere
    pixel.copy_from_slice(&(u32::from(inside) * 0x00FF_FFFF).to_le_bytes());
    inside
}

/// How far inside the mask's edge, in px of the small frame, a pixel must be to count as the
/// person's in [`person_pixels`].
pub const PERSON_INSET: usize = 6;

/// [`block_change`] counting only the pixels marked in `only` (from [`person_pixels`]; every
/// pixel when `None` or of another size), and only blocks where those are at least a quarter of
/// the block: a block's mean over a few pixels at the person's edge would be noise.
pub fn block_change_where(
    previous: &[u8],
    current: &[u8],
    width: usize,
    height: usize,
    only: Option<&[u8]>,
) -> f32 {
    if previous.len() != current.len()
        || current.len() < width * height * 4
        || width == 0
        || height == 0
    {
        return f32::INFINITY;
    }
    let only = only.filter(|o| o.len() == width * height * 4);
    let mut worst = 0f32;
    for by in (0..height).step_by(BLOCK) {
        for bx in (0..width).step_by(BLOCK) {
            let (mut sum, mut n, mut all) = (0u32, 0u32, 0u32);
            for y in by..(by + BLOCK).min(height) {
                let row = y * width * 4;
                let (a, b) = (row + bx * 4, row + (bx + BLOCK).min(width) * 4);
                let colour_bytes = ((b - a) / 4 * 3) as u32;
                all += colour_bytes;
                match only {
                    None => {
                        sum += colour_diff(&previous[a..b], &current[a..b]);
                        n += colour_bytes;
                    }
                    Some(m) => {
                        let (d, k) = colour_diff_masked(&previous[a..b], &current[a..b], &m[a..b]);
                        sum += d;
                        n += k;
                    }
                }
            }
            if n > 0 && 4 * n >= all {
                worst = worst.max(sum as f32 / n as f32);
            }
        }
    }
    worst
}

/// Largest difference (levels) one byte adds to [`colour_diff_masked`]: a few pixels of what is
/// behind the person that the mask took for theirs (a patch of a busy background by an arm)
/// change by a hundred levels and would pass the threshold alone; a move of the person changes
/// most of a block's pixels.
pub const CLIP: u8 = 24;

/// Sum of min(|p - q|, [`CLIP`]) over the bytes where `m` is 255, and how many those are; `m`
/// from [`person_pixels`] (255 or 0, alpha bytes 0).
fn colour_diff_masked(p: &[u8], q: &[u8], m: &[u8]) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline; every x86_64 CPU has it.
        unsafe { colour_diff_masked_sse2(p, q, m) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        colour_diff_masked_scalar(p, q, m)
    }
}

/// Portable form of [`colour_diff_masked`], and its reference in the tests.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn colour_diff_masked_scalar(p: &[u8], q: &[u8], m: &[u8]) -> (u32, u32) {
    p.iter()
        .zip(q)
        .zip(m)
        .filter(|(_, &m)| m == 255)
        .fold((0, 0), |(d, n), ((a, b), _)| {
            (d + a.abs_diff(*b).min(CLIP) as u32, n + 1)
        })
}

/// [`colour_diff_masked`] with SSE2: the absolute difference of the masked rows (two saturating
/// subtractions), clipped with `pminub`, summed with `psadbw` against zero; the mask summed the
/// same way for the count (255 per marked byte).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn colour_diff_masked_sse2(p: &[u8], q: &[u8], m: &[u8]) -> (u32, u32) {
    use std::arch::x86_64::*;
    let n = p.len().min(q.len()).min(m.len());
    let whole = n / 16 * 16;
    let zero = _mm_setzero_si128();
    let clip = _mm_set1_epi8(CLIP as i8);
    let (mut acc, mut count) = (_mm_setzero_si128(), _mm_setzero_si128());
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 <= whole <= len of all three slices; unaligned loads.
        let (a, b, k) = unsafe {
            (
                _mm_loadu_si128(p.as_ptr().add(i) as *const __m128i),
                _mm_loadu_si128(q.as_ptr().add(i) as *const __m128i),
                _mm_loadu_si128(m.as_ptr().add(i) as *const __m128i),
            )
        };
        let (a, b) = (_mm_and_si128(a, k), _mm_and_si128(b, k));
        let diff = _mm_or_si128(_mm_subs_epu8(a, b), _mm_subs_epu8(b, a));
        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_min_epu8(diff, clip), zero));
        count = _mm_add_epi64(count, _mm_sad_epu8(k, zero));
    }
    let (mut sums, mut counts) = ([0u64; 2], [0u64; 2]);
    // SAFETY: 16 bytes written into each 16-byte array; unaligned stores.
    unsafe {
        _mm_storeu_si128(sums.as_mut_ptr() as *mut __m128i, acc);
        _mm_storeu_si128(counts.as_mut_ptr() as *mut __m128i, count);
    }
    let (d, k) = colour_diff_masked_scalar(&p[whole..n], &q[whole..n], &m[whole..n]);
    (
        (sums[0] + sums[1]) as u32 + d,
        ((counts[0] + counts[1]) / 255) as u32 + k,
    )
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
    fn the_sse2_forms_match_their_scalar_forms() {
        // odd lengths leave a tail after the 16-byte groups; alpha differs everywhere
        let mut seed = 7u32;
        let mut byte = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        };
        for len in [0usize, 4, 12, 16, 20, 64, 100, 1028] {
            let p: Vec<u8> = (0..len).map(|_| byte()).collect();
            let q: Vec<u8> = (0..len).map(|_| byte()).collect();
            let m: Vec<u8> = (0..len)
                .map(|i| if i % 4 != 3 && byte() > 100 { 255 } else { 0 })
                .collect();
            assert_eq!(
                colour_diff(&p, &q),
                colour_diff_scalar(&p, &q),
                "length {len}"
            );
            assert_eq!(
                colour_diff_masked(&p, &q, &m),
                colour_diff_masked_scalar(&p, &q, &m),
                "length {len}, masked"
            );
        }
    }

    #[test]
    fn only_the_persons_pixels_count() {
        // 64 x 64 frame; the person fills the left half of a 32 x 32 mask
        let mask: Vec<f32> = (0..32 * 32)
            .map(|i| if i % 32 < 16 { 0.9 } else { 0.1 })
            .collect();
        let (mut above, mut pixels) = (Vec::new(), Vec::new());
        assert!(person_pixels(
            &mask,
            (32, 32),
            (64, 64),
            &mut above,
            &mut pixels
        ));
        assert_eq!(pixels.len(), 64 * 64 * 4);
        assert_eq!(&pixels[..8], &[255, 255, 255, 0, 255, 255, 255, 0]);
        assert_eq!(&pixels[32 * 4..32 * 4 + 4], &[0, 0, 0, 0]);
        let a = frame(64, 64, |_, _| 100);
        // a "television" right next to the person (x 32..48) changes by 80 levels
        let tv = frame(64, 64, |x, _| if (32..48).contains(&x) { 180 } else { 100 });
        assert_eq!(block_change_where(&a, &tv, 64, 64, Some(&pixels)), 0.0);
        assert!((block_change(&a, &tv, 64, 64) - 80.0).abs() < 1e-6);
        // the person moves: pixels that were theirs change
        let moved = frame(64, 64, |x, y| if x < 16 && y < 16 { 150 } else { 100 });
        // (by 50 levels, counted as CLIP)
        assert!((block_change_where(&a, &moved, 64, 64, Some(&pixels)) - CLIP as f32).abs() < 1e-6);
    }

    /// The definition of `person_pixels`, pixel by pixel.
    fn person_pixels_by_definition(
        mask: &[f32],
        (mw, mh): (usize, usize),
        (w, h): (usize, usize),
    ) -> Vec<u8> {
        let above =
            |x: usize, y: usize| mask[(y * mh / h) * mw + (x * mw / w)] > PERSON_PROBABILITY;
        let e = PERSON_INSET;
        let mut out = vec![0u8; w * h * 4];
        for y in 0..h {
            for x in 0..w {
                if above(x, y)
                    && above(x.saturating_sub(e), y)
                    && above((x + e).min(w - 1), y)
                    && above(x, y.saturating_sub(e))
                    && above(x, (y + e).min(h - 1))
                {
                    out[(y * w + x) * 4..][..3].fill(255);
                }
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn person_pixels_follow_their_definition(
            (mw, mh, w, h, seed) in (1usize..40, 1usize..40, 1usize..70, 1usize..70, 0u64..1000)
        ) {
            // blobs: a few discs of probability 0.9 on 0.1, and some noise at the threshold
            let mut r = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let mut next = || {
                r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (r >> 33) as f32 / (1u64 << 31) as f32
            };
            let discs: Vec<(f32, f32, f32)> =
                (0..3).map(|_| (next() * mw as f32, next() * mh as f32, next() * 20.0)).collect();
            let mask: Vec<f32> = (0..mw * mh)
                .map(|i| {
                    let (x, y) = ((i % mw) as f32, (i / mw) as f32);
                    let inside = discs.iter().any(|&(cx, cy, rad)| (x - cx).hypot(y - cy) < rad);
                    if next() < 0.05 { PERSON_PROBABILITY } else if inside { 0.9 } else { 0.1 }
                })
                .collect();
            let (mut above, mut pixels) = (Vec::new(), Vec::new());
            let found = person_pixels(&mask, (mw, mh), (w, h), &mut above, &mut pixels);
            let expected = person_pixels_by_definition(&mask, (mw, mh), (w, h));
            proptest::prop_assert_eq!(&pixels, &expected);
            proptest::prop_assert_eq!(found, expected.contains(&255));
        }
    }

    #[test]
    fn a_block_with_few_person_pixels_is_not_counted() {
        // one 16 x 16 block; the person covers 3 of its 16 rows (< a quarter)
        let mut pixels = vec![0u8; 16 * 16 * 4];
        for p in pixels[..16 * 3 * 4].chunks_exact_mut(4) {
            p[..3].fill(255);
        }
        let a = frame(16, 16, |_, _| 100);
        let b = frame(16, 16, |_, _| 110);
        assert_eq!(block_change_where(&a, &b, 16, 16, Some(&pixels)), 0.0);
        // four rows: exactly a quarter counts
        for p in pixels[16 * 3 * 4..16 * 4 * 4].chunks_exact_mut(4) {
            p[..3].fill(255);
        }
        assert!((block_change_where(&a, &b, 16, 16, Some(&pixels)) - 10.0).abs() < 1e-6);
    }

    #[test]
    fn size_mismatch_counts_as_changed() {
        let a = frame(16, 16, |_, _| 0);
        let b = frame(32, 16, |_, _| 0);
        assert!(block_change(&a, &b, 32, 16).is_infinite());
    }
}
