//! Block motion of the person between two small frames, and the mask moved with it.
//!
//! Between two inferences the last mask is moved with the person instead of held still (see
//! `cadence`). The motion is found by block matching (the classic video-coding motion search):
//! for each [`BLOCK`] x [`BLOCK`] block of the *previous* small frame, the displacement of the
//! person's pixels in it (those the previous mask gave the person) that best matches the current
//! frame, by the sum of absolute luma differences over those pixels only, so the still background
//! in an edge block does not pull the vector to zero. The search is two-step (every second
//! displacement within [`SEARCH`] px, then the eight around the best), refined to a fraction of a
//! pixel by a parabola through the three costs on each axis. Blocks without enough of the person
//! take the mean vector of their neighbours that have one (twice, so a ring of two blocks around
//! the person moves with it); the rest stay still.
//!
//! The mask is then warped backwards: the value at a pixel is the previous mask's value where
//! that pixel came from, `previous(x - d(x))`, with `d` interpolated bilinearly between block
//! centres. For the filter's coefficient planes (`a`, `b` with alpha = `a * luma + b`) this is
//! consistent: the current luma at `x` is the previous luma at `x - d`, where `(a, b)` were
//! fitted. All buffers are reused: no allocation once they have the frame's size.

/// Side of the square blocks, px of the small frame (16 blocks across the 256 px model input).
pub const BLOCK: usize = 16;

/// Spacing of the blocks, px of the small frame: blocks overlap by half, so the field has a
/// vector every 8 px (31 across 256 px) while each match still sees 16 x 16 px.
pub const STEP: usize = 16;

/// Largest displacement searched, px of the small frame per axis. A person who moved more
/// than this since the last inference is inferred again (`cadence`).
pub const SEARCH: i32 = 8;

/// Fewest person pixels a block needs for its own vector (a quarter of the block).
pub const MIN_PERSON_PIXELS: u32 = (BLOCK * BLOCK / 4) as u32;

/// BT.601 luma of a BGRA frame as bytes, `(77 R + 150 G + 29 B) >> 8`, into `out` (resized to
/// `width * height`).
pub fn luma_bytes(bgra: &[u8], width: usize, height: usize, out: &mut Vec<u8>) {
    out.clear();
    out.resize(width * height, 0);
    for (o, p) in out.iter_mut().zip(bgra.chunks_exact(4)) {
        // at most 256 * 255 = 65280: fits 16 bits, which the compiler vectorises best
        let weighted = 29 * u16::from(p[0]) + 150 * u16::from(p[1]) + 77 * u16::from(p[2]);
        *o = (weighted >> 8) as u8;
    }
}

/// One block's motion: displacement in px of the small frame (where the block's person pixels
/// went), and the match's mean absolute luma difference per person pixel (levels, 0..255).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockVector {
    pub dx: f32,
    pub dy: f32,
    /// Mean absolute difference at the best integer displacement; `None` for a block whose
    /// vector came from its neighbours (or none: still).
    pub residual: Option<f32>,
    /// Whether the best displacement lay on the edge of the search window (the person may have
    /// moved further).
    pub at_limit: bool,
}

/// The motion field of one frame pair: a vector per block, row-major, `columns` x `rows`.
#[derive(Clone, Debug, Default)]
pub struct MotionField {
    pub vectors: Vec<BlockVector>,
    pub columns: usize,
    pub rows: usize,
    /// Small-frame size the field was measured on, px.
    pub width: usize,
    pub height: usize,
    scratch: Vec<BlockVector>,
    /// Person pixels per block.
    counts: Vec<u32>,
    column_weights: Vec<(usize, usize, f32)>,
    row_weights: Vec<(usize, usize, f32)>,
    row_field: Vec<(f32, f32)>,
    flat_tiles: Vec<bool>,
    tile_ranges: Vec<(f32, f32)>,
}

/// What [`MotionField::estimate`] found over the blocks matched: those with enough of the
/// person that are not deep inside it (a block whose eight neighbours are all the person's
/// needs no vector of its own: the mask is the person all around it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MotionSummary {
    /// Blocks matched (with enough of the person).
    pub blocks: usize,
    /// Largest mean absolute difference after the match, levels.
    pub worst_residual: f32,
    /// Largest displacement, px of the small frame.
    pub fastest: f32,
    /// Whether any block's best match lay on the edge of the search window.
    pub at_limit: bool,
    /// Blocks whose best match lay on the edge of the search window.
    pub limited: usize,
    /// Mean over the blocks of the mean absolute difference after the match, levels.
    pub mean_residual: f32,
    /// Mean displacement over the blocks, px of the small frame.
    pub mean_displacement: f32,
}

impl MotionField {
    /// Measures the motion of the person from `previous` to `current` (luma bytes, `width` x
    /// `height`, from [`luma_bytes`]); `person` marks the person's pixels in `previous` (255,
    /// else 0; same size). Frames of other sizes give an empty field and a default summary.
    pub fn estimate(
        &mut self,
        previous: &[u8],
        current: &[u8],
        person: &[u8],
        width: usize,
        height: usize,
    ) -> MotionSummary {
        let n = width * height;
        self.width = width;
        self.height = height;
        let grid = |n: usize| {
            if n >= BLOCK {
                (n - BLOCK) / STEP + 1
            } else {
                0
            }
        };
        self.columns = grid(width);
        self.rows = grid(height);
        self.vectors.clear();
        self.vectors
            .resize(self.columns * self.rows, BlockVector::default());
        let mut summary = MotionSummary::default();
        if previous.len() < n || current.len() < n || person.len() < n || self.vectors.is_empty() {
            return summary;
        }
        // person pixels per block
        self.counts.clear();
        for by in 0..self.rows {
            for bx in 0..self.columns {
                let (x0, y0) = (bx * STEP, by * STEP);
                let count: u32 = (0..BLOCK)
                    .map(|r| {
                        let row = (y0 + r) * width + x0;
                        person[row..row + BLOCK]
                            .iter()
                            .map(|&m| (m == 255) as u32)
                            .sum::<u32>()
                    })
                    .sum();
                self.counts.push(count);
            }
        }
        let full = (BLOCK * BLOCK) as u32;
        let (c, r) = (self.columns, self.rows);
        for by in 0..r {
            for bx in 0..c {
                let count = self.counts[by * c + bx];
                if count < MIN_PERSON_PIXELS {
                    continue;
                }
                // inside the person with all eight neighbours: the mask is the person all
                // around, whatever the vector; it is filled from the edge blocks
                let interior = (by.saturating_sub(1)..=(by + 1).min(r - 1)).all(|ny| {
                    (bx.saturating_sub(1)..=(bx + 1).min(c - 1))
                        .all(|nx| self.counts[ny * c + nx] == full)
                }) && bx > 0
                    && by > 0
                    && bx + 1 < c
                    && by + 1 < r;
                if interior {
                    continue;
                }
                let v = match_block(
                    previous,
                    current,
                    person,
                    width,
                    height,
                    (bx * STEP, by * STEP),
                    count,
                );
                summary.blocks += 1;
                let residual = v.residual.unwrap_or(0.0);
                summary.worst_residual = summary.worst_residual.max(residual);
                summary.fastest = summary.fastest.max(v.dx.hypot(v.dy));
                summary.at_limit |= v.at_limit;
                summary.limited += v.at_limit as usize;
                summary.mean_residual += residual;
                summary.mean_displacement += v.dx.hypot(v.dy);
                self.vectors[by * c + bx] = v;
            }
        }
        if summary.blocks > 0 {
            summary.mean_residual /= summary.blocks as f32;
            summary.mean_displacement /= summary.blocks as f32;
        }
        self.fill_from_neighbours();
        self.fill_from_neighbours();
        summary
    }

    /// Gives each block without a vector the mean of its eight neighbours' vectors, where any
    /// has one (from before this pass).
    fn fill_from_neighbours(&mut self) {
        let (c, r) = (self.columns as isize, self.rows as isize);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.vectors);
        let has = |v: &BlockVector| v.residual.is_some() || v.dx != 0.0 || v.dy != 0.0;
        for y in 0..r {
            for x in 0..c {
                let i = (y * c + x) as usize;
                if has(&self.scratch[i]) {
                    continue;
                }
                let (mut sx, mut sy, mut k) = (0.0, 0.0, 0);
                for ny in (y - 1).max(0)..=(y + 1).min(r - 1) {
                    for nx in (x - 1).max(0)..=(x + 1).min(c - 1) {
                        let v = &self.scratch[(ny * c + nx) as usize];
                        if has(v) {
                            sx += v.dx;
                            sy += v.dy;
                            k += 1;
                        }
                    }
                }
                if k > 0 {
                    self.vectors[i].dx = sx / k as f32;
                    self.vectors[i].dy = sy / k as f32;
                }
            }
        }
    }

    /// The displacement at `(x, y)` (px of the small frame, continuous: pixel centres at +0.5),
    /// interpolated bilinearly between block centres, clamped at the outer ones. `(0, 0)` for an
    /// empty field.
    pub fn at(&self, x: f32, y: f32) -> (f32, f32) {
        if self.vectors.is_empty() {
            return (0.0, 0.0);
        }
        let u = grid_position(x, self.columns);
        let v = grid_position(y, self.rows);
        let (x0, y0) = (u as usize, v as usize);
        let (x1, y1) = ((x0 + 1).min(self.columns - 1), (y0 + 1).min(self.rows - 1));
        let (fx, fy) = (u - x0 as f32, v - y0 as f32);
        let at = |xx: usize, yy: usize| {
            let w = &self.vectors[yy * self.columns + xx];
            (w.dx, w.dy)
        };
        let lerp =
            |a: (f32, f32), b: (f32, f32), t: f32| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        lerp(
            lerp(at(x0, y0), at(x1, y0), fx),
            lerp(at(x0, y1), at(x1, y1), fx),
            fy,
        )
    }

    /// Warps interleaved planes of `channels` values per pixel (`plane_width` x `plane_height`,
    /// covering the same small frame, any resolution) backwards along the field into `out`
    /// (resized to the same length): `out(x) = plane(x - d(x))`, sampled bilinearly with edge
    /// clamping (GPU texel-centre conventions).
    ///
    /// # Panics
    /// When `plane` is shorter than `channels * plane_width * plane_height`.
    pub fn warp(
        &mut self,
        plane: &[f32],
        channels: usize,
        size: (usize, usize),
        out: &mut Vec<f32>,
    ) {
        self.warp_from(plane, channels, 0, size, out);
    }

    /// [`MotionField::warp`] of channels `first..channels` only; the channels before `first`
    /// are copied as they are (for channels that are constant, like the coefficient `a` while
    /// the edge-aware step is off: half the work).
    ///
    /// # Panics
    /// When `plane` is shorter than `channels * plane_width * plane_height`.
    pub fn warp_from(
        &mut self,
        plane: &[f32],
        channels: usize,
        first: usize,
        (plane_width, plane_height): (usize, usize),
        out: &mut Vec<f32>,
    ) {
        let (pw, ph) = (plane_width, plane_height);
        let n = channels * pw * ph;
        assert!(plane.len() >= n, "plane too short");
        out.clear();
        out.extend_from_slice(&plane[..n]);
        if pw == 0 || ph == 0 {
            return;
        }
        let (sx, sy) = if self.width > 0 && self.height > 0 {
            (
                self.width as f32 / pw as f32,
                self.height as f32 / ph as f32,
            )
        } else {
            (1.0, 1.0)
        };
        // where each column and row lies between block centres (the field's bilinear weights)
        let weights = |n: usize, scale: f32, blocks: usize, out: &mut Vec<(usize, usize, f32)>| {
            out.clear();
            out.extend((0..n).map(|i| {
                let t = grid_position((i as f32 + 0.5) * scale, blocks);
                let i0 = t as usize;
                (i0, (i0 + 1).min(blocks.max(1) - 1), t - i0 as f32)
            }));
        };
        let mut columns = std::mem::take(&mut self.column_weights);
        let mut rows = std::mem::take(&mut self.row_weights);
        weights(pw, sx, self.columns, &mut columns);
        weights(ph, sy, self.rows, &mut rows);
        let mut row_field = std::mem::take(&mut self.row_field);
        let mut flat = std::mem::take(&mut self.flat_tiles);
        let longest = self
            .vectors
            .iter()
            .map(|v| v.dx.abs().max(v.dy.abs()))
            .fold(0.0f32, f32::max);
        let tiles_across = flat_tiles(
            plane,
            (channels, first),
            (pw, ph),
            (sx, sy),
            longest,
            &mut self.tile_ranges,
            &mut flat,
        );
        let warp = match (channels, first) {
            (1, 0) => warp_rows::<1, 0>,
            (2, 0) => warp_rows::<2, 0>,
            (2, 1) => warp_rows::<2, 1>,
            (4, 0) => warp_rows::<4, 0>,
            _ => warp_rows_any,
        };
        warp(
            WarpGrid {
                vectors: &self.vectors,
                columns: self.columns,
                column_weights: &columns,
                row_weights: &rows,
                scale: (sx, sy),
                channels,
                first,
                flat: &flat,
                tiles_across,
            },
            plane,
            (pw, ph),
            out,
            &mut row_field,
        );
        self.column_weights = columns;
        self.row_weights = rows;
        self.row_field = row_field;
        self.flat_tiles = flat;
    }
}

/// Side of the square tiles of the plane that [`flat_tiles`] marks, plane px.
const TILE: usize = 8;

/// Marks each [`TILE`] x [`TILE`] tile of the plane around which channels `first..channels`
/// vary by less than [`FLAT`] within reach of the field's longest displacement (`longest`,
/// small-frame px per axis; the tile and every tile within `longest + 1` px): moving such a
/// tile changes nothing, so the warp leaves it as it is. Away from the person's outline the
/// mask is flat (0 behind, 1 inside), so this leaves much of the plane out. `layout`: the
/// plane's channels per pixel and the first one moved. Returns the tiles per row.
fn flat_tiles(
    plane: &[f32],
    (channels, first): (usize, usize),
    (pw, ph): (usize, usize),
    (sx, sy): (f32, f32),
    longest: f32,
    range: &mut Vec<(f32, f32)>,
    out: &mut Vec<bool>,
) -> usize {
    let (tw, th) = (pw.div_ceil(TILE), ph.div_ceil(TILE));
    // (min, max) per tile over the channels moved
    range.clear();
    range.resize(tw * th, (f32::INFINITY, f32::NEG_INFINITY));
    for (y, row) in plane.chunks_exact(channels * pw).take(ph).enumerate() {
        let ranges = &mut range[(y / TILE) * tw..][..tw];
        for (r, run) in ranges.iter_mut().zip(row.chunks(channels * TILE)) {
            let (mut lo, mut hi) = *r;
            for pixel in run.chunks_exact(channels) {
                for &v in &pixel[first..] {
                    // plain comparisons: f32::min/max handle NaN and cost twice as much here
                    lo = if v < lo { v } else { lo };
                    hi = if v > hi { v } else { hi };
                }
            }
            *r = (lo, hi);
        }
    }
    // reach of a displacement in tiles, per axis
    let reach = |scale: f32| ((longest + 1.0) / scale / TILE as f32).ceil() as usize;
    let (rx, ry) = (reach(sx), reach(sy));
    out.clear();
    out.resize(tw * th, false);
    for ty in 0..th {
        for tx in 0..tw {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for ny in ty.saturating_sub(ry)..=(ty + ry).min(th - 1) {
                for nx in tx.saturating_sub(rx)..=(tx + rx).min(tw - 1) {
                    let r = range[ny * tw + nx];
                    lo = lo.min(r.0);
                    hi = hi.max(r.1);
                }
            }
            out[ty * tw + tx] = hi - lo < FLAT;
        }
    }
    tw
}

/// Largest spread of values (the mask's 0..1) a tile may have and count as flat in
/// [`flat_tiles`]: a thousandth, below what 8-bit output can show.
const FLAT: f32 = 0.02;

/// What [`warp_rows`] needs of the field.
struct WarpGrid<'a> {
    vectors: &'a [BlockVector],
    columns: usize,
    column_weights: &'a [(usize, usize, f32)],
    row_weights: &'a [(usize, usize, f32)],
    /// Small-frame px per plane px, (x, y).
    scale: (f32, f32),
    channels: usize,
    /// The first channel moved (those before it are left as they are in `out`).
    first: usize,
    /// Tiles the warp leaves as they are ([`flat_tiles`]), and how many there are per row.
    flat: &'a [bool],
    tiles_across: usize,
}

/// The warp of [`MotionField::warp_from`] for `C` channels from `FROM` on (constants, so the
/// per-pixel copies and loops unroll); `out` holds the plane already.
fn warp_rows<const C: usize, const FROM: usize>(
    g: WarpGrid<'_>,
    plane: &[f32],
    (pw, ph): (usize, usize),
    out: &mut [f32],
    row_field: &mut Vec<(f32, f32)>,
) {
    let (sx, sy) = g.scale;
    let (isx, isy) = (1.0 / sx, 1.0 / sy);
    for (my, &(y0, y1, ty)) in g.row_weights.iter().enumerate() {
        // the field along this row, at each block column
        row_field.clear();
        row_field.extend((0..g.columns).map(|bx| {
            let (a, c) = (
                g.vectors[y0 * g.columns + bx],
                g.vectors[y1 * g.columns + bx],
            );
            (a.dx + (c.dx - a.dx) * ty, a.dy + (c.dy - a.dy) * ty)
        }));
        let fy = (my as f32 + 0.5) * sy;
        let line = C * my * pw;
        for (mx, &(x0, x1, tx)) in g.column_weights.iter().enumerate() {
            let o = line + C * mx;
            if g.flat[(my / TILE) * g.tiles_across + mx / TILE] {
                continue; // `out` holds the plane, and moving it here changes nothing
            }
            let (dx, dy) = match (row_field.get(x0), row_field.get(x1)) {
                (Some(a), Some(c)) => (a.0 + (c.0 - a.0) * tx, a.1 + (c.1 - a.1) * tx),
                _ => (0.0, 0.0),
            };
            if dx == 0.0 && dy == 0.0 {
                continue; // `out` holds the plane
            }
            // where this pixel's centre came from, in plane px
            let fx = (mx as f32 + 0.5) * sx;
            // plain comparisons: f32::clamp also handles NaN, at twice the cost here
            let within = |t: f32, top: f32| {
                if t < 0.0 {
                    0.0
                } else if t > top {
                    top
                } else {
                    t
                }
            };
            let u = within((fx - dx) * isx - 0.5, (pw - 1) as f32);
            let v = within((fy - dy) * isy - 0.5, (ph - 1) as f32);
            let (x0, y0) = (u as usize, v as usize);
            let (tx, ty) = (u - x0 as f32, v - y0 as f32);
            let step_x = if x0 + 1 < pw { C } else { 0 };
            let step_y = if y0 + 1 < ph { C * pw } else { 0 };
            let i00 = C * (y0 * pw + x0);
            for c in FROM..C {
                let i = i00 + c;
                let (p00, p10) = (plane[i], plane[i + step_x]);
                let (p01, p11) = (plane[i + step_y], plane[i + step_y + step_x]);
                let top = p00 + (p10 - p00) * tx;
                let bottom = p01 + (p11 - p01) * tx;
                out[o + c] = top + (bottom - top) * ty;
            }
        }
    }
}

/// [`warp_rows`] for other channel counts, one at a time.
fn warp_rows_any(
    g: WarpGrid<'_>,
    plane: &[f32],
    (pw, ph): (usize, usize),
    out: &mut [f32],
    row_field: &mut Vec<(f32, f32)>,
) {
    let c = g.channels;
    let mut single = Vec::with_capacity(pw * ph);
    let mut result = Vec::with_capacity(pw * ph);
    for k in g.first..c {
        single.clear();
        single.extend(plane.chunks_exact(c).map(|p| p[k]));
        result.clear();
        result.extend_from_slice(&single);
        warp_rows::<1, 0>(
            WarpGrid {
                channels: 1,
                first: 0,
                ..g
            },
            &single,
            (pw, ph),
            &mut result,
            row_field,
        );
        for (o, v) in out.chunks_exact_mut(c).zip(&result) {
            o[k] = *v;
        }
    }
}

/// Position of `x` (px of the small frame) on the block grid: 0 at the first block's centre,
/// 1 at the next (`STEP` px on), clamped to the `blocks` there are.
fn grid_position(x: f32, blocks: usize) -> f32 {
    ((x - (BLOCK / 2) as f32) / STEP as f32).clamp(0.0, (blocks.max(1) - 1) as f32)
}

/// Two-step search of one block at `(x0, y0)` of `previous` in `current`, over the person pixels
/// of the block (`count` of them), refined to sub-pixel precision.
fn match_block(
    previous: &[u8],
    current: &[u8],
    person: &[u8],
    width: usize,
    height: usize,
    (x0, y0): (usize, usize),
    count: u32,
) -> BlockVector {
    let cost = |dx: i32, dy: i32| -> Option<u32> {
        let (x, y) = (x0 as i32 + dx, y0 as i32 + dy);
        if x < 0 || y < 0 || x as usize + BLOCK > width || y as usize + BLOCK > height {
            return None;
        }
        let p = y0 * width + x0;
        let q = y as usize * width + x as usize;
        let span = (BLOCK - 1) * width + BLOCK;
        Some(masked_block_sad(
            &previous[p..p + span],
            &current[q..q + span],
            &person[p..p + span],
            width,
        ))
    };
    // the zero vector first: a still block keeps it unless another is strictly better
    let mut best = (0i32, 0i32, cost(0, 0).unwrap_or(u32::MAX));
    let consider = |dx: i32, dy: i32, best: &mut (i32, i32, u32)| {
        if let Some(c) = cost(dx, dy) {
            if c < best.2 {
                *best = (dx, dy, c);
            }
        }
    };
    for dy in (-SEARCH..=SEARCH).step_by(2) {
        for dx in (-SEARCH..=SEARCH).step_by(2) {
            consider(dx, dy, &mut best);
        }
    }
    let (cx, cy) = (best.0, best.1);
    for dy in -1..=1 {
        for dx in -1..=1 {
            if (dx, dy) != (0, 0) && (cx + dx).abs() <= SEARCH && (cy + dy).abs() <= SEARCH {
                consider(cx + dx, cy + dy, &mut best);
            }
        }
    }
    let (bx, by, c0) = best;
    // parabola through the costs either side of the best, per axis
    let offset = |minus: Option<u32>, plus: Option<u32>| -> f32 {
        match (minus, plus) {
            (Some(m), Some(p)) => {
                let (m, c, p) = (m as f32, c0 as f32, p as f32);
                let denominator = m - 2.0 * c + p;
                if denominator > 0.0 {
                    (0.5 * (m - p) / denominator).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    };
    let fx = offset(cost(bx - 1, by), cost(bx + 1, by));
    let fy = offset(cost(bx, by - 1), cost(bx, by + 1));
    BlockVector {
        dx: bx as f32 + fx,
        dy: by as f32 + fy,
        residual: Some(c0 as f32 / count as f32),
        at_limit: bx.abs() == SEARCH || by.abs() == SEARCH,
    }
}

/// Sum of |p - q| over a [`BLOCK`] x [`BLOCK`] block (rows `stride` bytes apart, slices starting
/// at the block's first pixel) where `m` is 255.
///
/// # Panics
/// When a slice is shorter than `(BLOCK - 1) * stride + BLOCK`.
fn masked_block_sad(p: &[u8], q: &[u8], m: &[u8], stride: usize) -> u32 {
    let span = (BLOCK - 1) * stride + BLOCK;
    assert!(p.len() >= span && q.len() >= span && m.len() >= span && stride >= BLOCK);
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86_64 baseline; the lengths are checked above.
        unsafe { masked_block_sad_sse2(p, q, m, stride) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        masked_block_sad_scalar(p, q, m, stride)
    }
}

/// Portable form of [`masked_block_sad`], and its reference in the tests.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn masked_block_sad_scalar(p: &[u8], q: &[u8], m: &[u8], stride: usize) -> u32 {
    let mut sum = 0;
    for r in 0..BLOCK {
        let o = r * stride;
        for i in o..o + BLOCK {
            if m[i] == 255 {
                sum += p[i].abs_diff(q[i]) as u32;
            }
        }
    }
    sum
}

/// [`masked_block_sad`] with SSE2: per row, both rows masked (`pand`), then one `psadbw`
/// (BLOCK = 16 bytes).
///
/// # Safety
/// Each slice must hold `(BLOCK - 1) * stride + BLOCK` bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn masked_block_sad_sse2(p: &[u8], q: &[u8], m: &[u8], stride: usize) -> u32 {
    use std::arch::x86_64::*;
    const _: () = assert!(BLOCK == 16);
    let mut acc = _mm_setzero_si128();
    for r in 0..BLOCK {
        let o = r * stride;
        // SAFETY: o + 16 <= (BLOCK - 1) * stride + BLOCK <= each length (the caller's
        // contract); unaligned loads.
        let (a, b, k) = unsafe {
            (
                _mm_loadu_si128(p.as_ptr().add(o) as *const __m128i),
                _mm_loadu_si128(q.as_ptr().add(o) as *const __m128i),
                _mm_loadu_si128(m.as_ptr().add(o) as *const __m128i),
            )
        };
        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_and_si128(a, k), _mm_and_si128(b, k)));
    }
    (_mm_cvtsi128_si32(acc) + _mm_extract_epi16(acc, 4)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth textured luma plane (no flat areas, no repeats within the search window).
    fn texture(w: usize, h: usize, shift_x: f32, shift_y: f32) -> Vec<u8> {
        let mut out = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f32 - shift_x, y as f32 - shift_y);
                let t = 128.0
                    + 50.0 * (u * 0.31).sin() * (v * 0.23).cos()
                    + 40.0 * (u * 0.07 + v * 0.11).sin()
                    + 30.0 * ((u * 0.53).cos() * (v * 0.47).sin());
                out[y * w + x] = t.clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    /// A "person" disc at `(cx, cy)` with radius `r`: textured inside, flat grey outside.
    fn scene(w: usize, h: usize, cx: f32, cy: f32, r: f32) -> (Vec<u8>, Vec<u8>) {
        let t = texture(w, h, cx - 128.0, cy - 128.0);
        let mut luma = vec![90u8; w * h];
        let mut person = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                if (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy) < r {
                    luma[y * w + x] = t[y * w + x];
                    person[y * w + x] = 255;
                }
            }
        }
        (luma, person)
    }

    #[test]
    fn luma_is_bt601_in_bytes() {
        // BGRA: white, black, pure blue, green and red, a grey, and a frame shorter than asked
        let bgra = [
            255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 100, 100,
            100, 7,
        ];
        let mut out = Vec::new();
        luma_bytes(&bgra, 7, 1, &mut out);
        assert_eq!(out, [255, 0, 28, 149, 76, 100, 0]);
    }

    #[test]
    fn the_sse2_form_matches_the_scalar_form() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        };
        let stride = 40;
        let n = (BLOCK - 1) * stride + BLOCK;
        for _ in 0..50 {
            let p: Vec<u8> = (0..n).map(|_| next()).collect();
            let q: Vec<u8> = (0..n).map(|_| next()).collect();
            let m: Vec<u8> = (0..n).map(|_| if next() > 100 { 255 } else { 0 }).collect();
            assert_eq!(
                masked_block_sad(&p, &q, &m, stride),
                masked_block_sad_scalar(&p, &q, &m, stride)
            );
        }
    }

    #[test]
    fn a_moved_person_is_found_to_a_fraction_of_a_pixel() {
        let (w, h) = (256, 256);
        let (previous, person) = scene(w, h, 128.0, 140.0, 70.0);
        for (dx, dy) in [(3.0f32, -2.0f32), (-5.0, 1.0), (0.5, 0.0), (0.0, 0.0)] {
            let (current, _) = scene(w, h, 128.0 + dx, 140.0 + dy, 70.0);
            let mut field = MotionField::default();
            let s = field.estimate(&previous, &current, &person, w, h);
            assert!(s.blocks > 40, "{s:?}");
            assert!(!s.at_limit);
            // blocks well inside the disc move with it
            let (mx, my) = field.at(128.0, 140.0);
            assert!(
                (mx - dx).abs() < 0.35 && (my - dy).abs() < 0.35,
                "moved ({dx}, {dy}), found ({mx}, {my})"
            );
            // the flat background has no texture to match: no block of its own there
            assert_eq!(field.vectors[0].residual, None);
        }
    }

    #[test]
    fn a_still_background_in_an_edge_block_does_not_hold_the_vector() {
        let (w, h) = (256, 256);
        // a textured background too: the still part of edge blocks matches at (0, 0)
        let bg = texture(w, h, 500.0, 300.0);
        let place = |cx: f32| {
            let (mut luma, person) = scene(w, h, cx, 128.0, 60.0);
            for (l, (p, b)) in luma.iter_mut().zip(person.iter().zip(&bg)) {
                if *p == 0 {
                    *l = *b;
                }
            }
            (luma, person)
        };
        let (previous, person) = place(128.0);
        let (current, _) = place(132.0);
        let mut field = MotionField::default();
        field.estimate(&previous, &current, &person, w, h);
        // the disc's right edge block: half person, half background
        let (ex, _) = field.at(128.0 + 56.0, 128.0);
        assert!((ex - 4.0).abs() < 0.6, "edge moved {ex} px, not 4");
    }

    #[test]
    fn warping_moves_a_mask_with_the_field() {
        let (w, h) = (256, 256);
        let (previous, person) = scene(w, h, 120.0, 128.0, 60.0);
        let (current, moved_person) = scene(w, h, 126.0, 128.0, 60.0);
        let mut field = MotionField::default();
        field.estimate(&previous, &current, &person, w, h);
        // the mask at half resolution, two channels (a = 0, b = person)
        let (pw, ph) = (128, 128);
        let mut plane = vec![0.0f32; 2 * pw * ph];
        for y in 0..ph {
            for x in 0..pw {
                plane[2 * (y * pw + x) + 1] = person[(2 * y) * w + 2 * x] as f32 / 255.0;
            }
        }
        let mut out = Vec::new();
        field.warp(&plane, 2, (pw, ph), &mut out);
        let agree = |m: &[f32]| {
            (0..pw * ph)
                .filter(|&i| {
                    let (x, y) = (i % pw, i / pw);
                    (m[2 * i + 1] > 0.5) == (moved_person[(2 * y) * w + 2 * x] == 255)
                })
                .count()
        };
        let (held, warped) = (agree(&plane), agree(&out));
        assert!(
            warped > held && pw * ph - warped < 40,
            "pixels right: held {held}, warped {warped} of {}",
            pw * ph
        );
    }

    #[test]
    fn other_sizes_give_a_still_field() {
        let mut field = MotionField::default();
        let s = field.estimate(&[0; 10], &[0; 10], &[0; 10], 256, 256);
        assert_eq!(s, MotionSummary::default());
        assert_eq!(field.at(10.0, 10.0), (0.0, 0.0));
    }
}
