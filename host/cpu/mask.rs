//! Missing-pixel (NaN) propagation of sunpy's rotate wrapper (semantics.md §6.4), done
//! sparsely: only output pixels near missing input pixels are visited.
//!
//! sunpy dilates the input NaN mask with a k × k box (zero outside the padded image),
//! resamples the dilated mask with order `min(order, 1)` (missing 0, no clipping) and sets
//! output pixels with a resampled value > 0 to NaN. With non-negative mask values that is:
//!
//! * order ≥ 1 (bilinear): an output pixel is NaN iff a dilated pixel `p` has a non-zero
//!   bilinear weight, i.e. `|p_x − x| < 1` and `|p_y − y| < 1` (a weight exactly 0 does
//!   not count), where `(x, y)` is its input position;
//! * order 0 (nearest): iff the pixel `(⌊x + ½⌋, ⌊y + ½⌋)` is dilated;
//!
//! and only for input positions inside the padded frame (outside it, the output is the
//! `missing` value instead). Horizontal runs of NaN pixels are dilated into boxes, each
//! box is mapped to its output bounding box, and the pixels there are tested with the
//! same row maps that the resampler used.

use rayon::prelude::*;

use crate::geometry::RegisterTransform;

/// A horizontal run of missing pixels: row `y`, columns `x0..=x1` (0-based input pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Row.
    pub y: usize,
    /// First column.
    pub x0: usize,
    /// Last column (inclusive).
    pub x1: usize,
}

/// The NaN runs of a row-major `nx`-wide image, looking only at rows `rows` (those known
/// to contain NaN; parallel over rows).
pub fn nan_runs(data: &[f32], nx: usize, rows: &[usize]) -> Vec<Run> {
    if nx == 0 {
        return Vec::new();
    }
    rows.par_iter()
        .flat_map_iter(|&y| {
            let mut runs = Vec::new();
            if let Some(row) = data.get(y * nx..(y + 1) * nx) {
                let mut x = 0;
                while x < nx {
                    if row[x].is_nan() {
                        let x0 = x;
                        while x + 1 < nx && row[x + 1].is_nan() {
                            x += 1;
                        }
                        runs.push(Run { y, x0, x1: x });
                    }
                    x += 1;
                }
            }
            runs.into_iter()
        })
        .collect()
}

/// How the dilated mask is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stencil {
    /// Order 0: the nearest pixel, rounding halves up (`⌊x + ½⌋`, as scipy).
    Nearest,
    /// Order 1: the pixels with non-zero bilinear weight.
    Bilinear,
}

impl Stencil {
    /// Does the stencil at input coordinate `x` touch the integer interval `[a, b]`?
    #[inline(always)]
    pub fn touches(self, x: f64, a: f64, b: f64) -> bool {
        match self {
            Stencil::Nearest => {
                let r = (x + 0.5).floor();
                r >= a && r <= b
            }
            Stencil::Bilinear => x > a - 1.0 && x < b + 1.0,
        }
    }
}

/// Set to NaN every output pixel whose sampling stencil touches a missing input pixel
/// dilated by `half` pixels (k = 2·half + 1), for input positions inside
/// `bounds = [x_lo, x_hi, y_lo, y_hi]` (the padded frame). `out` is row-major
/// `t.out_shape`.
pub fn mark(
    out: &mut [f32],
    t: &RegisterTransform,
    runs: &[Run],
    half: usize,
    stencil: Stencil,
    bounds: [f64; 4],
) {
    let (nx, ny) = t.out_shape;
    if runs.is_empty() || nx == 0 || ny == 0 || out.len() != nx * ny {
        return;
    }
    let h = half as f64;
    // Dilated boxes (input pixels, inclusive) and their output bounding boxes.
    let boxes: Vec<([f64; 4], [usize; 4])> = runs
        .iter()
        .filter_map(|r| {
            let b = [
                r.x0 as f64 - h,
                r.x1 as f64 + h,
                r.y as f64 - h,
                r.y as f64 + h,
            ];
            let mut lo = [f64::INFINITY; 2];
            let mut hi = [f64::NEG_INFINITY; 2];
            for px in [b[0] - 1.0, b[1] + 1.0] {
                for py in [b[2] - 1.0, b[3] + 1.0] {
                    let o = t.output_of([px, py])?;
                    for a in 0..2 {
                        lo[a] = lo[a].min(o[a]);
                        hi[a] = hi[a].max(o[a]);
                    }
                }
            }
            let clamp = |v: f64, n: usize| v.max(0.0).min(n as f64 - 1.0) as usize;
            if hi[0] < -1.0 || hi[1] < -1.0 || lo[0] > nx as f64 || lo[1] > ny as f64 {
                return None;
            }
            let ob = [
                clamp(lo[0].floor() - 1.0, nx),
                clamp(hi[0].ceil() + 1.0, nx),
                clamp(lo[1].floor() - 1.0, ny),
                clamp(hi[1].ceil() + 1.0, ny),
            ];
            Some((b, ob))
        })
        .collect();
    const BLOCK: usize = 32;
    let nblocks = ny.div_ceil(BLOCK);
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); nblocks];
    for (i, (_, ob)) in boxes.iter().enumerate() {
        for bucket in buckets
            .iter_mut()
            .take(ob[3] / BLOCK + 1)
            .skip(ob[2] / BLOCK)
        {
            bucket.push(i);
        }
    }
    out.par_chunks_mut(BLOCK * nx)
        .zip(buckets.par_iter())
        .enumerate()
        .for_each(|(blk, (chunk, list))| {
            let y_first = blk * BLOCK;
            let y_end = y_first + chunk.len() / nx;
            for &i in list {
                let (b, ob) = boxes[i];
                for y in ob[2].max(y_first)..=ob[3].min(y_end - 1) {
                    let rm = t.row(y);
                    let row = &mut chunk[(y - y_first) * nx..(y - y_first + 1) * nx];
                    for (x, o) in row.iter_mut().enumerate().take(ob[1] + 1).skip(ob[0]) {
                        let [xi, yi] = rm.at(x);
                        if xi >= bounds[0]
                            && xi <= bounds[1]
                            && yi >= bounds[2]
                            && yi <= bounds[3]
                            && stencil.touches(xi, b[0], b[1])
                            && stencil.touches(yi, b[2], b[3])
                        {
                            *o = f32::NAN;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_found() {
        let n = f32::NAN;
        let d = [1.0, n, n, 2.0, n, 0.0, 0.0, 0.0, n, n, n, n];
        let r = nan_runs(&d, 6, &[0, 1]);
        assert_eq!(
            r,
            vec![
                Run { y: 0, x0: 1, x1: 2 },
                Run { y: 0, x0: 4, x1: 4 },
                Run { y: 1, x0: 2, x1: 5 }
            ]
        );
    }

    #[test]
    fn stencils() {
        // bilinear: open interval (a − 1, b + 1)
        assert!(Stencil::Bilinear.touches(2.5, 3.0, 3.0));
        assert!(!Stencil::Bilinear.touches(2.0, 3.0, 3.0));
        assert!(!Stencil::Bilinear.touches(4.0, 3.0, 3.0));
        // nearest: halves round up
        assert!(Stencil::Nearest.touches(2.5, 3.0, 3.0));
        assert!(!Stencil::Nearest.touches(3.5, 3.0, 3.0));
    }
}
