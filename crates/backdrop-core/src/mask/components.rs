//! Connected components of a segmentation mask (pixels with person probability >= 0.5,
//! 4-connected), labelled on horizontal runs: each row is scanned once for runs of person
//! pixels, a run is joined (union-find) with the runs of the row above that it overlaps, and each
//! component gets its area and bounding box. A 256x256 portrait mask has a few hundred runs, so
//! the cost is one pass over the plane (about 20 times cheaper on this machine than a per-pixel
//! flood fill), and all storage is reused: no allocation per frame in steady state.
//!
//! Used by [`crate::mask::refine::remove_small_blobs`] and by the region tracker
//! ([`crate::mask::roi::RegionTracker`]), which takes the person's bounds from the components.

/// Probability at or above which a pixel is a person pixel.
pub const PERSON: f32 = 0.5;

/// One run of person pixels: row `y`, columns `x0..x1`, in component `label`.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub y: u32,
    pub x0: u32,
    pub x1: u32,
    /// Index into [`Components::stats`] once labelling is done.
    pub label: u32,
}

/// Area (mask px) and bounding box (`x0..x1`, `y0..y1`, mask px, exclusive ends) of a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Component {
    pub area: usize,
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

/// Reusable labelling state; [`Components::label`] fills [`Components::runs`] and
/// [`Components::stats`].
#[derive(Clone, Debug, Default)]
pub struct Components {
    /// Runs in raster order.
    pub runs: Vec<Run>,
    /// Components, numbered in raster order of their first pixel.
    pub stats: Vec<Component>,
    parent: Vec<u32>,
    index: Vec<u32>,
    /// One row's person pixels as bits (bit `x % 64` of word `x / 64`).
    bits: Vec<u64>,
}

impl Components {
    /// Labels the person pixels (>= [`PERSON`]) of the `w` x `h` plane `mask` (row-major).
    pub fn label(&mut self, mask: &[f32], w: usize, h: usize) {
        self.runs.clear();
        self.stats.clear();
        self.parent.clear();
        // room for 8 runs a row from the start, so a busier mask later does not reallocate
        self.runs.reserve(8 * h);
        self.parent.reserve(8 * h);
        let mut above = 0..0; // runs of the previous row
        for (y, row) in mask.chunks_exact(w).take(h).enumerate() {
            let start = self.runs.len();
            // the row as bits first (4 pixels per SIMD compare), then the runs from the bit
            // transitions: a few per row instead of a branch per pixel
            self.bits.clear();
            self.bits.extend(row.chunks(64).map(person_bits));
            let mut x = 0;
            while let Some(x0) = next_bit(&self.bits, x, true, w) {
                x = next_bit(&self.bits, x0, false, w).unwrap_or(w);
                let id = self.parent.len() as u32;
                self.parent.push(id);
                self.runs.push(Run {
                    y: y as u32,
                    x0: x0 as u32,
                    x1: x as u32,
                    label: id,
                });
            }
            // join with the overlapping runs above (both lists are sorted by x)
            let (mut i, mut j) = (above.start, start);
            while i < above.end && j < self.runs.len() {
                let (a, b) = (self.runs[i], self.runs[j]);
                if a.x0 < b.x1 && b.x0 < a.x1 {
                    self.union(a.label, b.label);
                }
                if a.x1 <= b.x1 {
                    i += 1;
                } else {
                    j += 1;
                }
            }
            above = start..self.runs.len();
        }
        // number the components in raster order of their first run, gather their stats
        self.index.clear();
        self.index.resize(self.parent.len(), u32::MAX);
        for k in 0..self.runs.len() {
            let root = self.find(self.runs[k].label) as usize;
            let run = self.runs[k];
            let (x0, x1, y) = (run.x0 as usize, run.x1 as usize, run.y as usize);
            if self.index[root] == u32::MAX {
                self.index[root] = self.stats.len() as u32;
                self.stats.push(Component {
                    area: 0,
                    x0,
                    y0: y,
                    x1,
                    y1: y + 1,
                });
            }
            let label = self.index[root];
            let c = &mut self.stats[label as usize];
            c.area += x1 - x0;
            c.x0 = c.x0.min(x0);
            c.x1 = c.x1.max(x1);
            c.y1 = y + 1;
            self.runs[k].label = label;
        }
    }

    /// The largest component (the last of equal ones), `None` without person pixels.
    pub fn largest(&self) -> Option<usize> {
        self.stats
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| c.area)
            .map(|(i, _)| i)
    }

    /// Whether component `i` is kept by a minimum area of `min_area` px: it is at least that
    /// large or it is the largest.
    pub fn kept(&self, i: usize, min_area: usize, largest: Option<usize>) -> bool {
        self.stats[i].area >= min_area || Some(i) == largest
    }

    fn find(&mut self, mut a: u32) -> u32 {
        while self.parent[a as usize] != a {
            let up = self.parent[self.parent[a as usize] as usize];
            self.parent[a as usize] = up; // path halving
            a = up;
        }
        a
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // the smaller id (earlier in raster order) stays the root
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi as usize] = lo;
        }
    }
}

/// Bit `i` set where `chunk[i]` (at most 64 values) is a person pixel (>= [`PERSON`]; NaN is
/// not).
fn person_bits(chunk: &[f32]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cmpge_ps, _mm_loadu_ps, _mm_movemask_ps, _mm_set1_ps};
        let quads = chunk.chunks_exact(4);
        let tail = quads.remainder();
        let mut m = 0u64;
        for (i, q) in quads.enumerate() {
            // SAFETY: SSE2 is part of the x86_64 baseline; `q` holds 4 f32 (unaligned load).
            let ge = unsafe {
                _mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(q.as_ptr()), _mm_set1_ps(PERSON)))
            };
            m |= (ge as u64) << (4 * i);
        }
        if tail.is_empty() {
            m // (a shift by 64 would overflow)
        } else {
            m | person_bits_scalar(tail) << (chunk.len() - tail.len())
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    person_bits_scalar(chunk)
}

/// [`person_bits`] one value at a time.
fn person_bits_scalar(chunk: &[f32]) -> u64 {
    chunk
        .iter()
        .enumerate()
        .fold(0u64, |m, (i, v)| m | (((*v >= PERSON) as u64) << i))
}

/// The first x in `from..w` whose bit in `bits` is `set`, `None` if there is none.
fn next_bit(bits: &[u64], from: usize, set: bool, w: usize) -> Option<usize> {
    let flip = if set { 0 } else { !0u64 };
    let mut k = from / 64;
    // bits of the first word below `from` are masked away
    let mut word = (bits.get(k)? ^ flip) & (!0u64 << (from % 64));
    loop {
        if word != 0 {
            let x = k * 64 + word.trailing_zeros() as usize;
            return (x < w).then_some(x);
        }
        k += 1;
        word = bits.get(k)? ^ flip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: per-pixel flood fill (4-connected), labels in raster order of first pixel.
    fn flood(mask: &[f32], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
        let mut labels = vec![0u32; w * h];
        let mut sizes = vec![0usize];
        for s in 0..w * h {
            if mask[s] < PERSON || labels[s] != 0 {
                continue;
            }
            let l = sizes.len() as u32;
            let mut stack = vec![s];
            labels[s] = l;
            let mut n = 0;
            while let Some(k) = stack.pop() {
                n += 1;
                let (x, y) = (k % w, k / w);
                let mut next = vec![];
                if x > 0 {
                    next.push(k - 1);
                }
                if x + 1 < w {
                    next.push(k + 1);
                }
                if y > 0 {
                    next.push(k - w);
                }
                if y + 1 < h {
                    next.push(k + w);
                }
                for m in next {
                    if mask[m] >= PERSON && labels[m] == 0 {
                        labels[m] = l;
                        stack.push(m);
                    }
                }
            }
            sizes.push(n);
        }
        (labels, sizes)
    }

    /// Deterministic pseudo-random planes with blobs, spirals of connectivity and noise.
    fn plane(seed: u64, w: usize, h: usize, density: f32) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..w * h)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (s >> 40) as f32 / (1u64 << 24) as f32;
                if r < density {
                    0.9
                } else {
                    0.1
                }
            })
            .collect()
    }

    #[test]
    fn runs_match_a_flood_fill_on_random_planes() {
        let mut c = Components::default();
        for seed in 0..60 {
            // widths below, at and above the 64-pixel words the rows are scanned in
            let w = match seed % 3 {
                0 => 17 + seed as usize % 13,
                1 => 64 * (1 + seed as usize % 2),
                _ => 65 + seed as usize % 70,
            };
            let h = 11 + seed as usize % 7;
            let density = 0.2 + (seed % 5) as f32 * 0.12;
            let m = plane(seed, w, h, density);
            c.label(&m, w, h);
            let (labels, sizes) = flood(&m, w, h);
            assert_eq!(c.stats.len(), sizes.len() - 1, "seed {seed}");
            for run in &c.runs {
                for x in run.x0..run.x1 {
                    let k = run.y as usize * w + x as usize;
                    assert_eq!(labels[k], run.label + 1, "seed {seed} at {k}");
                }
            }
            for (i, st) in c.stats.iter().enumerate() {
                assert_eq!(st.area, sizes[i + 1], "seed {seed} component {i}");
            }
            let covered: usize = c.runs.iter().map(|r| (r.x1 - r.x0) as usize).sum();
            assert_eq!(covered, m.iter().filter(|p| **p >= PERSON).count());
        }
    }

    #[test]
    fn simd_row_bits_match_the_scalar_form() {
        let values = [0.0, 0.49999, 0.5, 0.50001, 1.0, f32::NAN, -1.0, 2.0];
        for len in [0, 1, 3, 4, 5, 31, 63, 64] {
            for seed in 0..20u64 {
                let chunk: Vec<f32> = (0..len)
                    .map(|i| values[((i as u64 * 7 + seed * 13) % 8) as usize])
                    .collect();
                assert_eq!(
                    person_bits(&chunk),
                    person_bits_scalar(&chunk),
                    "len {len} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn bounding_boxes_and_largest() {
        // a U shape (one component joined only at the bottom) and a dot
        let (w, h) = (8, 6);
        let mut m = vec![0.0; w * h];
        for y in 1..5 {
            m[y * w + 1] = 1.0;
            m[y * w + 4] = 1.0;
        }
        for x in 1..5 {
            m[4 * w + x] = 1.0;
        }
        m[w + 7] = 1.0;
        let mut c = Components::default();
        c.label(&m, w, h);
        assert_eq!(c.stats.len(), 2);
        assert_eq!(
            c.stats[0],
            Component {
                area: 10,
                x0: 1,
                y0: 1,
                x1: 5,
                y1: 5
            }
        );
        assert_eq!(c.stats[1].area, 1);
        assert_eq!(c.largest(), Some(0));
        assert!(c.kept(1, 1, Some(0)) && !c.kept(1, 2, Some(0)) && c.kept(0, 99, Some(0)));
        c.label(&vec![0.2; w * h], w, h);
        assert!(c.stats.is_empty() && c.largest().is_none());
    }
}
