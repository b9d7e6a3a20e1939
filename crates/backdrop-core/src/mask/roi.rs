//! Aspect handling: which part of the frame the model sees.
//!
//! The model sees a *region* of the source frame, a rectangle in the frame's normalised
//! coordinates (uv, 0..1 across the frame), stretched to the model's input size:
//! - **stretch**: the whole frame, `(0, 0, 1, 1)`;
//! - **letterbox**: the whole frame inside a larger rectangle of the model's aspect ratio, the
//!   outside padded black (the region extends past 0..1);
//! - **person region of interest**: a crop around the person found in the previous mask, grown
//!   by a margin and to the model's aspect ratio, so a small or distant person gets more model
//!   pixels. [`RegionTracker`] chooses it after each inference, holds it while the person stays
//!   inside (so a still person keeps the same crop and does not flicker), and every
//!   [`DETECTION_INTERVAL`] inferences looks at the whole frame once more (a *detection pass*, not
//!   shown) so someone entering outside the crop is found.
//!
//! The mask the model returns covers the region; the effect maps frame uv to mask uv with
//! [`Region::to_local`] and treats everything outside the region as background.
//!
//! Pure functions and plain data: used identically by the filter's worker and by
//! `backdrop-bench quality`.

use super::components::Components;
#[cfg(test)]
use crate::settings::Choice;

/// A rectangle in the source frame's normalised coordinates (uv: 0..1 across the frame, y down).
/// `x, y` is the top-left corner, `w, h` the size; may extend past 0..1 (letterbox padding).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Default for Region {
    fn default() -> Self {
        Self::FULL
    }
}

impl Region {
    /// The region with top-left corner `x, y` and size `w, h` (frame uv).
    pub const fn new(x: f32, y: f32, w: f32, h: f32) -> Region {
        Region { x, y, w, h }
    }

    /// The region in px of a `width` x `height` frame: `[x, y, w, h]` (for resamplers' crops).
    pub fn pixel_rect(self, width: f64, height: f64) -> [f64; 4] {
        [
            self.x as f64 * width,
            self.y as f64 * height,
            self.w as f64 * width,
            self.h as f64 * height,
        ]
    }

    /// The whole frame.
    pub const FULL: Region = Region {
        x: 0.0,
        y: 0.0,
        w: 1.0,
        h: 1.0,
    };

    /// Frame uv -> uv inside this region (0..1 across the region).
    pub fn to_local(&self, u: f32, v: f32) -> (f32, f32) {
        ((u - self.x) / self.w, (v - self.y) / self.h)
    }

    /// A rectangle given in this region's local uv -> frame uv.
    pub fn to_frame(&self, local: Region) -> Region {
        Region {
            x: self.x + local.x * self.w,
            y: self.y + local.y * self.h,
            w: local.w * self.w,
            h: local.h * self.h,
        }
    }

    /// The part of this region inside the frame (may be empty: `w` or `h` 0).
    pub fn clamped(&self) -> Region {
        let x0 = self.x.clamp(0.0, 1.0);
        let y0 = self.y.clamp(0.0, 1.0);
        let x1 = (self.x + self.w).clamp(0.0, 1.0);
        let y1 = (self.y + self.h).clamp(0.0, 1.0);
        Region {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    /// Whether `inner` lies inside this region (with `slack` uv of tolerance).
    pub fn contains(&self, inner: &Region, slack: f32) -> bool {
        inner.x >= self.x - slack
            && inner.y >= self.y - slack
            && inner.x + inner.w <= self.x + self.w + slack
            && inner.y + inner.h <= self.y + self.h + slack
    }

    /// Largest difference between corresponding edges, in uv.
    pub fn edge_distance(&self, other: &Region) -> f32 {
        (self.x - other.x)
            .abs()
            .max((self.y - other.y).abs())
            .max((self.x + self.w - other.x - other.w).abs())
            .max((self.y + self.h - other.y - other.h).abs())
    }

    /// Smallest rectangle holding both.
    pub fn union(&self, other: &Region) -> Region {
        let x0 = self.x.min(other.x);
        let y0 = self.y.min(other.y);
        let x1 = (self.x + self.w).max(other.x + other.w);
        let y1 = (self.y + self.h).max(other.y + other.h);
        Region {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    /// The region's size in source px.
    pub fn size_px(&self, (fw, fh): (u32, u32)) -> (f32, f32) {
        (self.w * fw as f32, self.h * fh as f32)
    }

    /// `[x, y, w, h]`, the layout of the effect's `float4` region uniforms.
    pub fn to_array(self) -> [f32; 4] {
        [self.x, self.y, self.w, self.h]
    }
}

crate::choice! {
    /// How the frame is fitted to the model's input (the filter's `aspect` setting).
    pub enum AspectMode {
        /// Person region of interest (the default; falls back to the whole frame, stretched,
        /// while no person is found).
        #[default]
        RegionOfInterest = ("roi", "Aspect.Roi"),
        /// The whole frame, stretched to the input size.
        Stretch = ("stretch", "Aspect.Stretch"),
        /// The whole frame, aspect kept, padded black to the input's aspect ratio.
        Letterbox = ("letterbox", "Aspect.Letterbox"),
    }
}

/// The letterbox region of a `source` px frame for a model input of `input` px: the whole
/// frame centred in a rectangle of the input's aspect ratio (extends past 0..1 on one axis).
pub fn letterbox((fw, fh): (u32, u32), (iw, ih): (u32, u32)) -> Region {
    if fw == 0 || fh == 0 || iw == 0 || ih == 0 {
        return Region::FULL;
    }
    let source_aspect = fw as f32 / fh as f32;
    let input_aspect = iw as f32 / ih as f32;
    if source_aspect > input_aspect {
        let h = source_aspect / input_aspect;
        Region {
            x: 0.0,
            y: (1.0 - h) * 0.5,
            w: 1.0,
            h,
        }
    } else {
        let w = input_aspect / source_aspect;
        Region {
            x: (1.0 - w) * 0.5,
            y: 0.0,
            w,
            h: 1.0,
        }
    }
}

/// Bounding box of the mask pixels with probability above `threshold`, in the mask's local uv
/// (pixel `x` spans `x / w .. (x + 1) / w`). `None` when no pixel is above it.
pub fn person_bounds(prob: &[f32], w: usize, h: usize, threshold: f32) -> Option<Region> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (y, row) in prob.chunks_exact(w).take(h).enumerate() {
        let mut first = None;
        let mut last = 0;
        for (x, p) in row.iter().enumerate() {
            if *p > threshold {
                first.get_or_insert(x);
                last = x;
            }
        }
        if let Some(f) = first {
            x0 = x0.min(f);
            x1 = x1.max(last + 1);
            y0 = y0.min(y);
            y1 = y + 1;
        }
    }
    (x0 != usize::MAX).then(|| Region {
        x: x0 as f32 / w as f32,
        y: y0 as f32 / h as f32,
        w: (x1 - x0) as f32 / w as f32,
        h: (y1 - y0) as f32 / h as f32,
    })
}

/// Margin added on each side of the person's bounding box, as a fraction of the box's size.
/// Chosen with `backdrop-bench quality` (`docs/quality.md`): 0.05-0.2 all beat stretching; 0.1
/// keeps room for motion between inferences.
pub const ROI_MARGIN: f32 = 0.1;

/// Inferences between two detection passes over the whole frame (about 1 s at 30 fps).
pub const DETECTION_INTERVAL: u32 = 30;

/// The crop to run the model on for a person whose bounding box is `bounds` (frame uv): grown by
/// `margin` of its size on each side, then along one axis to the input's aspect ratio (in px, so
/// the person is not distorted), then clamped to the frame (clamping may change the aspect
/// again; the model then sees that part stretched).
pub fn roi_for(bounds: Region, margin: f32, (fw, fh): (u32, u32), (iw, ih): (u32, u32)) -> Region {
    if fw == 0 || fh == 0 || iw == 0 || ih == 0 {
        return Region::FULL;
    }
    let grown = Region {
        x: bounds.x - margin * bounds.w,
        y: bounds.y - margin * bounds.h,
        w: bounds.w * (1.0 + 2.0 * margin),
        h: bounds.h * (1.0 + 2.0 * margin),
    };
    // size in px and the aspect the input wants
    let (pw, ph) = (grown.w * fw as f32, grown.h * fh as f32);
    let want = iw as f32 / ih as f32;
    let (cx, cy) = (grown.x + grown.w * 0.5, grown.y + grown.h * 0.5);
    let (w, h) = if pw / ph.max(1e-6) < want {
        (ph * want / fw as f32, grown.h)
    } else {
        (grown.w, pw / want / fh as f32)
    };
    Region {
        x: cx - w * 0.5,
        y: cy - h * 0.5,
        w,
        h,
    }
    .clamped()
}

/// A region this much (uv) away from the held one on every edge is not worth a change.
pub const HOLD_TOLERANCE: f32 = 0.03;

/// Detached mask regions smaller than this fraction of the mask do not count as a person when
/// the region is chosen (background noise must not pull the crop open).
pub const TRACK_MIN_BLOB: f32 = 0.01;

/// Chooses the region for each inference from the mask of the previous one.
///
/// Call [`RegionTracker::region`] for the region of the next small frame, then, after inferring
/// a frame rendered with region `used`, [`RegionTracker::observe`] with its probability plane; it
/// says whether the mask is to be shown (a detection pass is not).
#[derive(Clone, Debug, Default)]
pub struct RegionTracker {
    mode: AspectMode,
    /// The region masks are computed on.
    held: Region,
    /// Inferences since the last detection pass.
    since_detection: u32,
    /// The next frame is a detection pass over the whole frame.
    detecting: bool,
    /// The person's bounds (frame uv) in the last shown mask.
    bounds: Option<Region>,
    components: Components,
}

impl RegionTracker {
    /// A tracker for `mode`; starts on the whole frame.
    pub fn new(mode: AspectMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    pub fn mode(&self) -> AspectMode {
        self.mode
    }

    /// Forgets the person (new stream, size or model): the next frame is seen whole.
    /// Keeps its scratch buffers: no allocation when a stream restarts.
    pub fn reset(&mut self) {
        let components = std::mem::take(&mut self.components);
        *self = Self::new(self.mode);
        self.components = components;
    }

    /// The region the next small frame should be rendered from.
    pub fn region(&self, source: (u32, u32), input: (u32, u32)) -> Region {
        match self.mode {
            AspectMode::Stretch => Region::FULL,
            AspectMode::Letterbox => letterbox(source, input),
            AspectMode::RegionOfInterest if self.detecting => Region::FULL,
            AspectMode::RegionOfInterest => self.held,
        }
    }

    /// Bounding box (mask uv) of the person pixels (>= 0.5) of `prob`, leaving out detached
    /// regions under [`TRACK_MIN_BLOB`] of the mask except the largest: the bounds of
    /// [`remove_small_blobs`](crate::mask::refine::remove_small_blobs) at that fraction followed
    /// by [`person_bounds`], from one labelling pass without copying the plane.
    fn person_bounds(&mut self, prob: &[f32], (w, h): (usize, usize)) -> Option<Region> {
        let c = &mut self.components;
        c.label(prob, w, h);
        let largest = c.largest();
        let min_area = (TRACK_MIN_BLOB * (w * h) as f32).ceil() as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for (i, b) in c.stats.iter().enumerate() {
            if c.kept(i, min_area, largest) {
                (x0, y0) = (x0.min(b.x0), y0.min(b.y0));
                (x1, y1) = (x1.max(b.x1), y1.max(b.y1));
            }
        }
        (x0 != usize::MAX).then(|| Region {
            x: x0 as f32 / w as f32,
            y: y0 as f32 / h as f32,
            w: (x1 - x0) as f32 / w as f32,
            h: (y1 - y0) as f32 / h as f32,
        })
    }

    /// Takes the probability plane (`w` x `h`, 0..1) inferred on a frame rendered from region
    /// `used`, chooses the next region and returns whether this mask is to be shown: false only
    /// for a detection pass (its region is the whole frame, coarser than the crop, so showing it
    /// would make the edge jump once a second).
    ///
    /// The held region changes when the person touches one of its edges that is not the frame's
    /// (they are cut off or leaving), when the wanted crop differs from it by more than
    /// [`HOLD_TOLERANCE`] on some edge, or when nobody is found (back to the whole frame).
    pub fn observe(
        &mut self,
        prob: &[f32],
        (w, h): (usize, usize),
        used: Region,
        source: (u32, u32),
        input: (u32, u32),
    ) -> bool {
        if self.mode != AspectMode::RegionOfInterest {
            return true;
        }
        let detection = self.detecting && used == Region::FULL && self.held != Region::FULL;
        let bounds = self.person_bounds(prob, (w, h)).map(|b| used.to_frame(b));
        if detection {
            // Someone the crop does not hold (entering, or a second person): grow the crop to
            // hold them and the person followed. Otherwise nothing changes.
            if let Some(b) = bounds.filter(|b| !self.held.contains(b, 0.01)) {
                let both = self.bounds.map_or(b, |p| p.union(&b));
                self.held = roi_for(both, ROI_MARGIN, source, input);
            }
            self.detecting = false;
            self.since_detection = 0;
            return false;
        }
        self.bounds = bounds;
        let target = match bounds {
            Some(b) => roi_for(b, ROI_MARGIN, source, input),
            None => Region::FULL,
        };
        let crowded = bounds.is_some_and(|b| touches_inner_edge(&used, &b, (w, h)));
        if crowded || target.edge_distance(&self.held) > HOLD_TOLERANCE || bounds.is_none() {
            self.held = target;
        }
        self.since_detection += 1;
        if self.since_detection >= DETECTION_INTERVAL && self.held != Region::FULL {
            self.detecting = true;
        }
        true
    }
}

/// Whether `bounds` (frame uv) reaches within a mask pixel of an edge of `region` that is not
/// an edge of the frame: the person is cut off by the crop.
fn touches_inner_edge(region: &Region, bounds: &Region, (w, h): (usize, usize)) -> bool {
    let (px, py) = (1.5 * region.w / w as f32, 1.5 * region.h / h as f32);
    let (rx1, ry1) = (region.x + region.w, region.y + region.h);
    (region.x > 1e-4 && bounds.x <= region.x + px)
        || (region.y > 1e-4 && bounds.y <= region.y + py)
        || (rx1 < 1.0 - 1e-4 && bounds.x + bounds.w >= rx1 - px)
        || (ry1 < 1.0 - 1e-4 && bounds.y + bounds.h >= ry1 - py)
}

/// Resamples a plane `w` x `h` that covered region `from` onto region `to` (same size), bilinear
/// with texel-centre conventions; points outside `from` get `outside`. Used to carry the
/// temporal smoothing state across a change of region.
pub fn resample_plane(
    src: &[f32],
    w: usize,
    h: usize,
    from: Region,
    to: Region,
    outside: f32,
    out: &mut Vec<f32>,
) {
    out.clear();
    out.reserve(w * h);
    for y in 0..h {
        for x in 0..w {
            let fu = to.x + (x as f32 + 0.5) / w as f32 * to.w;
            let fv = to.y + (y as f32 + 0.5) / h as f32 * to.h;
            let (lu, lv) = from.to_local(fu, fv);
            if !(0.0..=1.0).contains(&lu) || !(0.0..=1.0).contains(&lv) {
                out.push(outside);
                continue;
            }
            let sx = (lu * w as f32 - 0.5).clamp(0.0, (w - 1) as f32);
            let sy = (lv * h as f32 - 0.5).clamp(0.0, (h - 1) as f32);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let at = |xx: usize, yy: usize| src[yy * w + xx];
            let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
            let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_bounds_equal_blob_removal_then_bounds() {
        // a person (big block), a blob over 1 % and specks under it, on a 64x64 mask
        let (w, h) = (64, 64);
        let mut p = boxed(w, h, (20, 10, 44, 64));
        for (x, y) in [(2, 2), (60, 5), (61, 5), (3, 50)] {
            p[y * w + x] = 0.9; // specks: 1-2 px, under 1 % (41 px)
        }
        for y in 30..38 {
            for x in 50..56 {
                p[y * w + x] = 0.8; // 48 px: kept
            }
        }
        let mut reference = p.clone();
        crate::mask::refine::remove_small_blobs(
            &mut reference,
            w,
            h,
            TRACK_MIN_BLOB,
            &mut Components::default(),
        );
        let expected = person_bounds(&reference, w, h, 0.5).unwrap();
        let mut t = RegionTracker::new(AspectMode::RegionOfInterest);
        let got = t.person_bounds(&p, (w, h)).unwrap();
        assert!(close(got, expected), "{got:?} vs {expected:?}");
        assert!(close(
            got,
            Region {
                x: 20.0 / 64.0,
                y: 10.0 / 64.0,
                w: 36.0 / 64.0,
                h: 54.0 / 64.0
            }
        ));
        assert_eq!(t.person_bounds(&vec![0.1; w * h], (w, h)), None);
    }

    fn close(a: Region, b: Region) -> bool {
        a.edge_distance(&b) < 1e-5
    }

    /// A `w` x `h` plane with 1 inside the pixel box `[x0, x1) x [y0, y1)`.
    fn boxed(w: usize, h: usize, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> Vec<f32> {
        let mut p = vec![0.0; w * h];
        for y in y0..y1 {
            for x in x0..x1 {
                p[y * w + x] = 1.0;
            }
        }
        p
    }

    #[test]
    fn letterbox_keeps_the_frame_aspect() {
        // 16:9 into a square input: full width, taller than the frame, centred
        let r = letterbox((1280, 720), (256, 256));
        assert!(close(
            r,
            Region {
                x: 0.0,
                y: -(16.0 / 9.0 - 1.0) / 2.0,
                w: 1.0,
                h: 16.0 / 9.0
            }
        ));
        // the region in px is square
        let (pw, ph) = r.size_px((1280, 720));
        assert!((pw - ph).abs() < 1e-2);
        // portrait frame into a landscape input: wider than the frame
        let r = letterbox((720, 1280), (256, 144));
        let (pw, ph) = r.size_px((720, 1280));
        assert!((pw / ph - 256.0 / 144.0).abs() < 1e-4 && r.h == 1.0 && r.x < 0.0);
        assert_eq!(letterbox((0, 0), (256, 256)), Region::FULL);
    }

    #[test]
    fn bounds_of_a_box_and_of_nothing() {
        let p = boxed(10, 8, (2, 1, 5, 7));
        let b = person_bounds(&p, 10, 8, 0.5).unwrap();
        assert!(close(
            b,
            Region {
                x: 0.2,
                y: 0.125,
                w: 0.3,
                h: 0.75
            }
        ));
        assert_eq!(person_bounds(&vec![0.4; 80], 10, 8, 0.5), None);
    }

    #[test]
    fn roi_grows_by_the_margin_to_the_input_aspect_and_stays_in_the_frame() {
        // a person 0.2 x 0.5 of a 1000x1000 frame, centred: margin then square
        let b = Region::new(0.4, 0.25, 0.2, 0.5);
        let r = roi_for(b, 0.1, (1000, 1000), (256, 256));
        assert!(close(r, Region::new(0.2, 0.2, 0.6, 0.6)));
        assert!(r.contains(&b, 0.0));
        // near the edge: clamped to the frame
        let edge = Region::new(0.0, 0.5, 0.3, 0.5);
        let r = roi_for(edge, 0.1, (1000, 1000), (256, 256));
        assert!(r.x >= 0.0 && r.y >= 0.0 && r.x + r.w <= 1.0 && r.y + r.h <= 1.0);
        assert!(r.contains(&edge, 1e-6));
    }

    #[test]
    fn region_mapping_round_trips() {
        let r = Region {
            x: 0.25,
            y: 0.1,
            w: 0.5,
            h: 0.4,
        };
        let local = Region {
            x: 0.5,
            y: 0.5,
            w: 0.5,
            h: 0.25,
        };
        let f = r.to_frame(local);
        assert!(close(
            f,
            Region {
                x: 0.5,
                y: 0.3,
                w: 0.25,
                h: 0.1
            }
        ));
        let (u, v) = r.to_local(f.x, f.y);
        assert!((u - 0.5).abs() < 1e-6 && (v - 0.5).abs() < 1e-6);
    }

    #[test]
    fn tracker_crops_to_the_person_holds_still_and_detects_periodically() {
        let (source, input) = ((640, 480), (64, 64));
        let mut t = RegionTracker::new(AspectMode::RegionOfInterest);
        assert_eq!(t.region(source, input), Region::FULL);
        // a person in the middle quarter of the whole frame
        let person = boxed(64, 64, (24, 16, 40, 64));
        assert!(t.observe(&person, (64, 64), Region::FULL, source, input));
        let roi = t.region(source, input);
        assert!(roi.w < 0.7 && roi.h > 0.5 && roi.y + roi.h <= 1.0);
        // the same person seen in the crop: bounds in frame uv are nearly the same -> held
        let b = Region::FULL.to_frame(person_bounds(&person, 64, 64, 0.5).unwrap());
        let mut local = vec![0.0; 64 * 64];
        for y in 0..64 {
            for x in 0..64 {
                let u = roi.x + (x as f32 + 0.5) / 64.0 * roi.w;
                let v = roi.y + (y as f32 + 0.5) / 64.0 * roi.h;
                if u > b.x && u < b.x + b.w && v > b.y && v < b.y + b.h {
                    local[y * 64 + x] = 1.0;
                }
            }
        }
        for _ in 0..DETECTION_INTERVAL - 2 {
            assert!(t.observe(&local, (64, 64), roi, source, input));
            assert_eq!(
                t.region(source, input),
                roi,
                "a still person keeps the crop"
            );
        }
        // after DETECTION_INTERVAL inferences: one pass over the whole frame, not shown
        assert!(t.observe(&local, (64, 64), roi, source, input));
        assert_eq!(t.region(source, input), Region::FULL);
        // a second person on the left appears in the detection pass: the crop grows to hold both
        let mut both = person.clone();
        for y in 40..64 {
            for x in 2..10 {
                both[y * 64 + x] = 1.0;
            }
        }
        assert!(!t.observe(&both, (64, 64), Region::FULL, source, input));
        let grown = t.region(source, input);
        assert!(grown.x < 2.0 / 64.0 && grown.contains(&b, 1e-4));
        // nobody at all: back to the whole frame
        let empty = vec![0.0; 64 * 64];
        assert!(t.observe(&empty, (64, 64), grown, source, input));
        assert_eq!(t.region(source, input), Region::FULL);
    }

    #[test]
    fn tracker_follows_a_person_leaving_the_crop() {
        let (source, input) = ((640, 480), (64, 64));
        let mut t = RegionTracker::new(AspectMode::RegionOfInterest);
        t.observe(
            &boxed(64, 64, (24, 16, 40, 64)),
            (64, 64),
            Region::FULL,
            source,
            input,
        );
        let roi = t.region(source, input);
        // the person touches the crop's right edge: the region must move to hold them
        t.observe(
            &boxed(64, 64, (40, 0, 64, 64)),
            (64, 64),
            roi,
            source,
            input,
        );
        let next = t.region(source, input);
        assert!(next.x + next.w > roi.x + roi.w);
    }

    #[test]
    fn stretch_and_letterbox_ignore_the_mask() {
        let p = boxed(8, 8, (2, 2, 4, 4));
        let mut s = RegionTracker::new(AspectMode::Stretch);
        assert!(s.observe(&p, (8, 8), Region::FULL, (640, 480), (8, 8)));
        assert_eq!(s.region((640, 480), (8, 8)), Region::FULL);
        let mut l = RegionTracker::new(AspectMode::Letterbox);
        assert!(l.observe(&p, (8, 8), Region::FULL, (640, 480), (8, 8)));
        assert_eq!(l.region((640, 480), (8, 8)), letterbox((640, 480), (8, 8)));
        assert_eq!(AspectMode::from_value("nonsense"), None);
        for &m in AspectMode::ALL {
            assert_eq!(AspectMode::from_value(m.value()), Some(m));
        }
    }

    #[test]
    fn resampling_moves_a_plane_between_regions() {
        // a plane over the whole frame resampled onto its right half: the right half stretched
        let (w, h) = (8, 2);
        let src: Vec<f32> = (0..w * h).map(|i| (i % w) as f32).collect();
        let right = Region {
            x: 0.5,
            y: 0.0,
            w: 0.5,
            h: 1.0,
        };
        let mut out = Vec::new();
        resample_plane(&src, w, h, Region::FULL, right, -1.0, &mut out);
        assert!((out[0] - 3.75).abs() < 1e-5 && (out[7] - 7.0).abs() < 1e-5);
        // and back: the left half lies outside the right half
        let mut back = Vec::new();
        resample_plane(&out, w, h, right, Region::FULL, -1.0, &mut back);
        assert_eq!(back[0], -1.0);
        assert!((back[6] - 5.75).abs() < 0.3);
        // same region: identity
        resample_plane(&src, w, h, right, right, -1.0, &mut back);
        assert_eq!(back, src);
    }
}
