//! Mask quality metrics: pure functions on binary masks (`bool` per pixel) and alpha planes
//! (`f32` per pixel, 0..1), all row-major `width` x `height`.

/// Intersection over union of two binary masks. Two empty masks count as a perfect match (1.0).
pub fn iou(predicted: &[bool], truth: &[bool]) -> f64 {
    assert_eq!(predicted.len(), truth.len());
    let (mut inter, mut union) = (0u64, 0u64);
    for (p, t) in predicted.iter().zip(truth) {
        inter += (*p && *t) as u64;
        union += (*p || *t) as u64;
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Boundary pixels of a binary mask: pixels with at least one 4-neighbour of the other label
/// (both sides of an edge are boundary). Neighbours outside the image do not count, so the image
/// border is not a boundary.
pub fn boundary(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    assert_eq!(mask.len(), width * height);
    let mut out = vec![false; mask.len()];
    for y in 0..height {
        for x in 0..width {
            let k = y * width + x;
            let v = mask[k];
            out[k] = (x > 0 && mask[k - 1] != v)
                || (x + 1 < width && mask[k + 1] != v)
                || (y > 0 && mask[k - width] != v)
                || (y + 1 < height && mask[k + width] != v);
        }
    }
    out
}

/// Offsets `(dx, dy)` with Euclidean length <= `tolerance` px (a disc; 13 offsets for 2 px).
pub fn disc_offsets(tolerance: f64) -> Vec<(isize, isize)> {
    let r = tolerance.floor() as isize;
    let mut out = Vec::new();
    for dy in -r..=r {
        for dx in -r..=r {
            if ((dx * dx + dy * dy) as f64) <= tolerance * tolerance + 1e-9 {
                out.push((dx, dy));
            }
        }
    }
    out
}

/// Fraction of the set pixels of `from` that have a set pixel of `to` within one of `offsets`.
/// `None` when `from` has no set pixel.
fn matched_fraction(
    from: &[bool],
    to: &[bool],
    width: usize,
    height: usize,
    offsets: &[(isize, isize)],
) -> Option<f64> {
    let (mut total, mut matched) = (0u64, 0u64);
    for y in 0..height {
        for x in 0..width {
            if !from[y * width + x] {
                continue;
            }
            total += 1;
            let hit = offsets.iter().any(|&(dx, dy)| {
                let (xx, yy) = (x as isize + dx, y as isize + dy);
                xx >= 0
                    && yy >= 0
                    && (xx as usize) < width
                    && (yy as usize) < height
                    && to[yy as usize * width + xx as usize]
            });
            matched += hit as u64;
        }
    }
    (total > 0).then(|| matched as f64 / total as f64)
}

/// Boundary F-score of a predicted binary mask against the truth: boundary pixels (see
/// [`boundary`]) of each are matched within `tolerance` px, Euclidean distance (a disc).
/// Precision = fraction of predicted boundary pixels near a true one, recall the converse,
/// F = 2PR / (P + R). Both boundaries empty: 1.0; only one empty: 0.0.
///
/// `truth_boundary` is `boundary(truth)`, passed in so that it is computed once per image.
pub fn boundary_f_score(
    predicted: &[bool],
    truth_boundary: &[bool],
    width: usize,
    height: usize,
    tolerance: f64,
) -> f64 {
    let pb = boundary(predicted, width, height);
    let offsets = disc_offsets(tolerance);
    let precision = matched_fraction(&pb, truth_boundary, width, height, &offsets);
    let recall = matched_fraction(truth_boundary, &pb, width, height, &offsets);
    match (precision, recall) {
        (None, None) => 1.0,
        (Some(p), Some(r)) if p + r > 0.0 => 2.0 * p * r / (p + r),
        _ => 0.0,
    }
}

/// Accumulates temporal flicker: the mean absolute change of alpha between consecutive frames
/// over the pixels selected by a per-pixel `stable` flag (e.g. "ground truth did not change").
#[derive(Clone, Copy, Debug, Default)]
pub struct Flicker {
    sum: f64,
    count: u64,
}

impl Flicker {
    /// Adds `|current - previous|` of every pixel where `stable` is `None` (all pixels) or true.
    pub fn add(&mut self, previous: &[f32], current: &[f32], stable: Option<&[bool]>) {
        assert_eq!(previous.len(), current.len());
        let mut sum = 0.0f64;
        match stable {
            None => {
                for (p, c) in previous.iter().zip(current) {
                    sum += (c - p).abs() as f64;
                }
                self.count += current.len() as u64;
            }
            Some(s) => {
                assert_eq!(s.len(), current.len());
                for ((p, c), keep) in previous.iter().zip(current).zip(s) {
                    if *keep {
                        sum += (c - p).abs() as f64;
                        self.count += 1;
                    }
                }
            }
        }
        self.sum += sum;
    }

    /// Mean absolute change per pixel and frame pair (0..1), `None` if nothing was added.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Mean of a list, `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Median of a list (mean of the two middle values for even lengths), `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(w: usize, h: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Vec<bool> {
        (0..w * h)
            .map(|k| (x0..x1).contains(&(k % w)) && (y0..y1).contains(&(k / w)))
            .collect()
    }

    #[test]
    fn iou_of_overlapping_rectangles() {
        let a = rect(10, 10, 0, 0, 4, 10); // 40 px
        let b = rect(10, 10, 2, 0, 6, 10); // 40 px, 20 shared
        assert!((iou(&a, &b) - 20.0 / 60.0).abs() < 1e-12);
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&[false; 4], &[false; 4]), 1.0);
        assert_eq!(iou(&[true, false], &[false, true]), 0.0);
    }

    #[test]
    fn boundary_is_both_sides_of_the_edge_not_the_image_border() {
        // 4x1: [1 1 0 0] -> boundary at x = 1 and x = 2
        let b = boundary(&[true, true, false, false], 4, 1);
        assert_eq!(b, vec![false, true, true, false]);
        // full mask: no boundary at the image border
        assert!(boundary(&[true; 9], 3, 3).iter().all(|v| !v));
    }

    #[test]
    fn disc_of_two_px_has_13_offsets() {
        let d = disc_offsets(2.0);
        assert_eq!(d.len(), 13);
        assert!(d.contains(&(2, 0)) && d.contains(&(1, 1)) && !d.contains(&(2, 1)));
    }

    #[test]
    fn boundary_f_score_tolerates_two_px_not_three() {
        let (w, h) = (40, 40);
        let truth = rect(w, h, 10, 10, 30, 30);
        let tb = boundary(&truth, w, h);
        assert_eq!(boundary_f_score(&truth, &tb, w, h, 2.0), 1.0);
        // shifted by 2 px horizontally: every boundary pixel still within 2 px
        let shifted2 = rect(w, h, 12, 10, 32, 30);
        assert!((boundary_f_score(&shifted2, &tb, w, h, 2.0) - 1.0).abs() < 1e-12);
        // shifted by 4 px: the vertical edges (about half the boundary) no longer match
        let shifted4 = rect(w, h, 14, 10, 34, 30);
        let f = boundary_f_score(&shifted4, &tb, w, h, 2.0);
        assert!(f > 0.3 && f < 0.9, "f = {f}");
        // nothing predicted against a real edge: 0; nothing against nothing: 1
        let empty = vec![false; w * h];
        assert_eq!(boundary_f_score(&empty, &tb, w, h, 2.0), 0.0);
        let eb = boundary(&empty, w, h);
        assert_eq!(boundary_f_score(&empty, &eb, w, h, 2.0), 1.0);
    }

    #[test]
    fn flicker_counts_only_stable_pixels() {
        let mut f = Flicker::default();
        assert_eq!(f.mean(), None);
        f.add(
            &[0.0, 0.0, 1.0],
            &[0.5, 0.0, 0.0],
            Some(&[true, true, false]),
        );
        assert!((f.mean().unwrap() - 0.25).abs() < 1e-12);
        let mut all = Flicker::default();
        all.add(&[0.0, 0.0, 1.0], &[0.5, 0.0, 0.0], None);
        assert!((all.mean().unwrap() - 0.5).abs() < 1e-12);
        f.add(&[0.0, 0.0, 1.0], &[0.5, 0.0, 0.0], None);
        assert!((f.mean().unwrap() - 0.4).abs() < 1e-12); // (0.5 + 1.5) / (2 + 3)
    }

    #[test]
    fn mean_and_median() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
