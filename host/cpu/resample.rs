//! The CPU resampler of `register`: sunpy `GenericMap.rotate` + `affine_transform` with
//! the scipy method (semantics.md §4.4, §6.2–§6.5), pixel for pixel, on `f32` images with
//! `f64` coordinates, parallel over output rows.
//!
//! For an output pixel, `(x, y)` = [`RegisterTransform::row`] gives the input position.
//! The input is conceptually padded by `pad` pixels of `missing` on each side (sunpy
//! §6.2); NaN input pixels are replaced by the NaN-ignoring median of the padded image.
//! Then, as `scipy.ndimage.affine_transform(mode='constant', cval=missing)`:
//!
//! * a position outside `[−pad, n − 1 + pad]` on either axis (strictly, no tolerance)
//!   gives `missing`;
//! * otherwise the value is interpolated from the padded image: `nearest` takes pixel
//!   `⌊x + ½⌋`; `linear` is bilinear; `spline` evaluates the cubic B-spline whose
//!   coefficients come from the mirror-boundary prefilter of the padded image
//!   ([`super::spline`]); `keys` is cubic convolution (a = −0.5) on the padded image.
//!   Taps beyond the padded edge use mirrored indices (scipy), and only matter for the
//!   4-tap kernels within 2 px of that edge.
//! * output pixels near missing input pixels become NaN ([`super::mask`]; box dilation
//!   k = 1 for nearest/linear, 5 for spline/keys), and everything is clipped to sunpy's
//!   range (§6.4).
//!
//! `keys` is our extension (SolarSoft `aia_prep` uses IDL `ROT` with `CUBIC=−0.5`); it
//! follows the same edge, padding, NaN and clipping rules as `spline` (neighbours beyond
//! the padded edge are mirrored), so it differs from IDL only at the frame edges.
//!
//! With `missing = NaN` the padding (if any) is itself missing data, as in sunpy: it is
//! filled with the median for interpolation and output pixels whose mask stencil touches
//! the dilated padding become NaN.
//!
//! Padding farther than [`MAX_MATERIALISED_PAD`] pixels from the image is not stored: the
//! spline coefficients there equal `missing` to ~1e-19 of the data range.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::mask::{self, Stencil};
use super::spline::{bspline3_weights, keys_weights, prefilter_columns, prefilter_line};
use super::stats::{nan_median, summarize};
use crate::geometry::{RegisterTransform, RowMap, MAX_MATERIALISED_PAD};
use crate::register::{Interpolation, Missing};

/// The result of [`resample`].
#[derive(Debug, Clone)]
pub struct Resampled {
    /// The output image, `[row, col]`, shape `t.out_shape`; NaN = missing.
    pub data: Array2<f32>,
    /// The `missing` value used for positions outside the padded input (DN; NaN for
    /// `Missing::Nan`).
    pub missing: f64,
    /// The value that replaced NaN input pixels (the median), when there were any.
    pub fill: Option<f64>,
    /// The clipping range applied, `(lower, upper)` in DN.
    pub clip: Option<(f64, f64)>,
    /// Number of NaN (missing) input pixels.
    pub missing_in: usize,
}

/// How the clipping range is known.
enum Clip {
    /// Known before resampling: clamp on the fly.
    Known(f32, f32),
    /// Depends on the output's extrema (a user `missing` outside the data range and no
    /// padding): computed after resampling and masking.
    Deferred {
        missing: f64,
        in_min: f64,
        in_max: f64,
    },
}

/// Resample `input` (`[row, col]`, NaN = missing) through `t` with sunpy/scipy semantics
/// (module docs). The shapes must agree: `input.dim() == (t.out_shape.1, t.out_shape.0)`
/// is *not* required — the output has `t.out_shape`, the input any shape.
pub fn resample(
    input: ArrayView2<f32>,
    t: &RegisterTransform,
    interpolation: Interpolation,
    missing: Missing,
) -> Resampled {
    let (ny, nx) = input.dim();
    let (onx, ony) = t.out_shape;
    let std = input.as_standard_layout();
    let data: &[f32] = std.as_slice().unwrap_or(&[]);
    let summary = summarize(data);
    if data.is_empty() || summary.nan == data.len() {
        return Resampled {
            data: Array2::from_elem((ony, onx), f32::NAN),
            missing: f64::NAN,
            fill: None,
            clip: None,
            missing_in: summary.nan,
        };
    }
    let m = match missing {
        Missing::Min => summary.min as f64,
        Missing::Value(v) => v,
        Missing::Nan => f64::NAN,
    };
    let pad = t.pad;
    let padded_pixels = (nx + 2 * pad[0]) * (ny + 2 * pad[1]) - nx * ny;
    let need_fill = summary.nan > 0 || (m.is_nan() && padded_pixels > 0);
    let fill = if need_fill {
        let extra = (!m.is_nan() && padded_pixels > 0).then_some((m as f32, padded_pixels));
        nan_median(data, extra)
    } else {
        None
    };
    let pv = if m.is_nan() {
        fill.unwrap_or(0.0) as f32
    } else {
        m as f32
    };
    let clip = if m.is_nan() {
        Clip::Known(summary.min, summary.max)
    } else {
        let (mut lo, mut hi) = (summary.min as f64, summary.max as f64);
        if padded_pixels > 0 {
            lo = lo.min(m);
            hi = hi.max(m);
        }
        if m >= lo && m <= hi {
            Clip::Known(lo as f32, hi as f32)
        } else {
            Clip::Deferred {
                missing: m,
                in_min: lo,
                in_max: hi,
            }
        }
    };

    // The plane that is sampled: padded B-spline coefficients, or the (filled) image.
    let fill32 = fill.unwrap_or(0.0) as f32;
    let (plane_owned, pe): (Option<Vec<f32>>, [usize; 2]) = match interpolation {
        Interpolation::Spline => {
            let pe = [
                pad[0].min(MAX_MATERIALISED_PAD),
                pad[1].min(MAX_MATERIALISED_PAD),
            ];
            (Some(spline_plane(data, nx, ny, pe, pv, fill32)), pe)
        }
        _ if summary.nan > 0 => {
            let filled: Vec<f32> = data
                .par_iter()
                .map(|&v| if v.is_nan() { fill32 } else { v })
                .collect();
            (Some(filled), [0, 0])
        }
        _ => (None, [0, 0]),
    };
    let plane: &[f32] = plane_owned.as_deref().unwrap_or(data);

    let half = match interpolation {
        Interpolation::Nearest | Interpolation::Linear => 0usize,
        Interpolation::Spline | Interpolation::Keys => 2,
    };
    let bounds = [
        -(pad[0] as f64),
        (nx - 1 + pad[0]) as f64,
        -(pad[1] as f64),
        (ny - 1 + pad[1]) as f64,
    ];
    // With NaN missing, the padding is missing data: the interior whose mask stencil does
    // not touch the dilated padding (per padded axis).
    let ring = (m.is_nan() && padded_pixels > 0).then(|| {
        let h = half as f64;
        let ax = |p: usize, n: usize| {
            if p > 0 {
                (h, (n - 1) as f64 - h)
            } else {
                (f64::NEG_INFINITY, f64::INFINITY)
            }
        };
        let (a, b) = ax(pad[0], nx);
        let (c, d) = ax(pad[1], ny);
        [a, b, c, d]
    });
    let ctx = Ctx {
        plane,
        w: nx + 2 * pe[0],
        pe: [pe[0] as isize, pe[1] as isize],
        n: [nx as isize, ny as isize],
        pad: [pad[0] as isize, pad[1] as isize],
        pv,
        bounds,
        cval: m as f32,
        ring,
        clip: match clip {
            Clip::Known(lo, hi) => Some((lo, hi)),
            Clip::Deferred { .. } => None,
        },
    };

    let mut out = Array2::<f32>::zeros((ony, onx));
    if let Some(out_slice) = out.as_slice_mut() {
        out_slice
            .par_chunks_mut(onx.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                let rm = t.row(y);
                match interpolation {
                    Interpolation::Nearest => row_nearest(row, rm, &ctx),
                    Interpolation::Linear => row_linear(row, rm, &ctx),
                    Interpolation::Spline => row_cubic(row, rm, &ctx, bspline3_weights),
                    Interpolation::Keys => row_cubic(row, rm, &ctx, keys_weights),
                }
            });
        if summary.nan > 0 {
            let runs = mask::nan_runs(data, nx);
            let stencil = if interpolation == Interpolation::Nearest {
                Stencil::Nearest
            } else {
                Stencil::Bilinear
            };
            mask::mark(out_slice, t, &runs, half, stencil, bounds);
        }
    }
    drop(plane_owned);

    let clip_range = match clip {
        Clip::Known(lo, hi) => Some((lo as f64, hi as f64)),
        Clip::Deferred {
            missing,
            in_min,
            in_max,
        } => deferred_clip(&mut out, missing, in_min, in_max),
    };
    Resampled {
        data: out,
        missing: m,
        fill,
        clip: clip_range,
        missing_in: summary.nan,
    }
}

/// sunpy's clipping when `missing` lies outside the input range (§6.4):
/// `lower = nanmin(max(missing, nanmin(out)), nanmin(in))`,
/// `upper = nanmax(min(missing, nanmax(out)), nanmax(in))`; skipped if all output is NaN.
fn deferred_clip(out: &mut Array2<f32>, m: f64, in_min: f64, in_max: f64) -> Option<(f64, f64)> {
    let s = summarize(out.as_slice().unwrap_or(&[]));
    if s.nan == out.len() {
        return None;
    }
    let nanmin2 = |a: f64, b: f64| {
        if a.is_nan() {
            b
        } else if b.is_nan() {
            a
        } else {
            a.min(b)
        }
    };
    let nanmax2 = |a: f64, b: f64| {
        if a.is_nan() {
            b
        } else if b.is_nan() {
            a
        } else {
            a.max(b)
        }
    };
    let lower = nanmin2(m.max(s.min as f64), in_min);
    let upper = nanmax2(m.min(s.max as f64), in_max);
    let (lo, hi) = (lower as f32, upper as f32);
    out.par_mapv_inplace(|v| clamp(v, lo, hi));
    Some((lower, upper))
}

#[inline(always)]
fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// The padded, NaN-filled, prefiltered coefficient plane (`pe` materialised padding).
fn spline_plane(
    data: &[f32],
    nx: usize,
    ny: usize,
    pe: [usize; 2],
    pv: f32,
    fill: f32,
) -> Vec<f32> {
    let w = nx + 2 * pe[0];
    let h = ny + 2 * pe[1];
    let mut plane = vec![0.0f32; w * h];
    const R: usize = 8;
    plane
        .par_chunks_mut(w * R)
        .enumerate()
        .for_each(|(b, block)| {
            for (r, line) in block.chunks_exact_mut(w).enumerate() {
                let py = b * R + r;
                match py.checked_sub(pe[1]).filter(|&y| y < ny) {
                    None => line.fill(pv), // a padding row: constant, its own coefficients
                    Some(y) => {
                        let src = &data[y * nx..(y + 1) * nx];
                        line[..pe[0]].fill(pv);
                        line[pe[0] + nx..].fill(pv);
                        for (d, &s) in line[pe[0]..pe[0] + nx].iter_mut().zip(src) {
                            *d = if s.is_nan() { fill } else { s };
                        }
                    }
                }
            }
            let data_rows: Vec<bool> = (0..block.len() / w)
                .map(|r| (b * R + r).checked_sub(pe[1]).is_some_and(|y| y < ny))
                .collect();
            if data_rows.iter().all(|&d| d) && data_rows.len() == R {
                super::spline::prefilter_block::<R>(block, w);
            } else {
                for (line, d) in block.chunks_exact_mut(w).zip(data_rows) {
                    if d {
                        prefilter_line(line);
                    }
                }
            }
        });
    prefilter_columns(&mut plane, w, h);
    plane
}

/// Everything the row loops need.
struct Ctx<'a> {
    plane: &'a [f32],
    /// Plane width (`nx + 2·pe_x`).
    w: usize,
    /// Materialised padding per axis.
    pe: [isize; 2],
    /// Input size per axis.
    n: [isize; 2],
    /// sunpy's padding per axis.
    pad: [isize; 2],
    /// Value of the padding (`missing`, or the fill when missing is NaN).
    pv: f32,
    /// `[x_lo, x_hi, y_lo, y_hi]`: the padded frame; outside → `cval`.
    bounds: [f64; 4],
    cval: f32,
    /// NaN missing with padding: `[x_lo, x_hi, y_lo, y_hi]` interior not touching the
    /// dilated padding (order ≥ 1 stencil); outside → NaN.
    ring: Option<[f64; 4]>,
    clip: Option<(f32, f32)>,
}

impl Ctx<'_> {
    /// Plane index along one axis of input pixel index `i`, or `None` for the
    /// (unmaterialised) padding value. Indices beyond the padded frame are mirrored.
    #[inline]
    fn axis(&self, a: usize, i: isize) -> Option<usize> {
        let (n, p, pe) = (self.n[a], self.pad[a], self.pe[a]);
        let mut i = i;
        if i < -p || i > n - 1 + p {
            let len = n + 2 * p;
            let mut j = i + p;
            if len == 1 {
                j = 0;
            } else {
                let period = 2 * (len - 1);
                j = j.rem_euclid(period);
                if j >= len {
                    j = period - j;
                }
            }
            i = j - p;
        }
        if i >= -pe && i <= n - 1 + pe {
            Some((i + pe) as usize)
        } else {
            None
        }
    }

    #[inline]
    fn tap(&self, ix: isize, iy: isize) -> f32 {
        match (self.axis(0, ix), self.axis(1, iy)) {
            (Some(a), Some(b)) => self.plane[b * self.w + a],
            _ => self.pv,
        }
    }

    #[inline(always)]
    fn inside(&self, xi: f64, yi: f64) -> bool {
        let b = &self.bounds;
        xi >= b[0] && xi <= b[1] && yi >= b[2] && yi <= b[3]
    }

    #[inline(always)]
    fn out_of_ring(&self, xi: f64, yi: f64) -> bool {
        match &self.ring {
            None => false,
            Some(r) => !(xi >= r[0] && xi <= r[1] && yi >= r[2] && yi <= r[3]),
        }
    }

    #[inline(always)]
    fn finish(&self, v: f32) -> f32 {
        match self.clip {
            Some((lo, hi)) => clamp(v, lo, hi),
            None => v,
        }
    }
}

/// `floor(x)` as an integer and the fractional part, without a libm call (x finite and
/// moderate).
#[inline(always)]
fn floor_frac(x: f64) -> (isize, f64) {
    let i = x as isize;
    let i = i - ((i as f64) > x) as isize;
    (i, x - i as f64)
}

fn row_nearest(out: &mut [f32], rm: RowMap, c: &Ctx) {
    for (x, o) in out.iter_mut().enumerate() {
        let [xi, yi] = rm.at(x);
        if !c.inside(xi, yi) {
            *o = c.cval;
            continue;
        }
        let (ix, _) = floor_frac(xi + 0.5);
        let (iy, _) = floor_frac(yi + 0.5);
        if let Some(r) = &c.ring {
            // order-0 stencil: the rounded pixel must avoid the (undilated) padding
            let (fx, fy) = (ix as f64, iy as f64);
            if !(fx >= r[0] && fx <= r[1] && fy >= r[2] && fy <= r[3]) {
                *o = f32::NAN;
                continue;
            }
        }
        let v = if ix >= 0 && ix < c.n[0] && iy >= 0 && iy < c.n[1] {
            c.plane[(iy + c.pe[1]) as usize * c.w + (ix + c.pe[0]) as usize]
        } else {
            c.tap(ix, iy)
        };
        *o = c.finish(v);
    }
}

fn row_linear(out: &mut [f32], rm: RowMap, c: &Ctx) {
    let (pex, pey) = (c.pe[0], c.pe[1]);
    let (hx, hy) = (c.n[0] - 1 + pex, c.n[1] - 1 + pey);
    for (x, o) in out.iter_mut().enumerate() {
        let [xi, yi] = rm.at(x);
        if !c.inside(xi, yi) {
            *o = c.cval;
            continue;
        }
        if c.out_of_ring(xi, yi) {
            *o = f32::NAN;
            continue;
        }
        let (ix, tx) = floor_frac(xi);
        let (iy, ty) = floor_frac(yi);
        let (tx, ty) = (tx as f32, ty as f32);
        let v = if ix >= -pex && ix < hx && iy >= -pey && iy < hy {
            let b = (iy + pey) as usize * c.w + (ix + pex) as usize;
            let r0 = &c.plane[b..b + 2];
            let r1 = &c.plane[b + c.w..b + c.w + 2];
            let a = r0[0] + tx * (r0[1] - r0[0]);
            let d = r1[0] + tx * (r1[1] - r1[0]);
            (1.0 - ty) * a + ty * d
        } else {
            let a = (1.0 - tx) * c.tap(ix, iy) + tx * c.tap(ix + 1, iy);
            let d = (1.0 - tx) * c.tap(ix, iy + 1) + tx * c.tap(ix + 1, iy + 1);
            (1.0 - ty) * a + ty * d
        };
        *o = c.finish(v);
    }
}

fn row_cubic(out: &mut [f32], rm: RowMap, c: &Ctx, weights: fn(f32) -> [f32; 4]) {
    let (pex, pey) = (c.pe[0], c.pe[1]);
    let (hx, hy) = (c.n[0] - 3 + pex, c.n[1] - 3 + pey);
    let w = c.w;
    for (x, o) in out.iter_mut().enumerate() {
        let [xi, yi] = rm.at(x);
        if !c.inside(xi, yi) {
            *o = c.cval;
            continue;
        }
        if c.out_of_ring(xi, yi) {
            *o = f32::NAN;
            continue;
        }
        let (ix, tx) = floor_frac(xi);
        let (iy, ty) = floor_frac(yi);
        let wx = weights(tx as f32);
        let wy = weights(ty as f32);
        let v = if ix > -pex && ix <= hx && iy > -pey && iy <= hy {
            let b = (iy - 1 + pey) as usize * w + (ix - 1 + pex) as usize;
            let mut acc = 0.0f32;
            for (j, wyj) in wy.iter().enumerate() {
                let r = &c.plane[b + j * w..b + j * w + 4];
                acc += wyj * (wx[0] * r[0] + wx[1] * r[1] + wx[2] * r[2] + wx[3] * r[3]);
            }
            acc
        } else {
            let mut acc = 0.0f32;
            for (j, wyj) in wy.iter().enumerate() {
                let yy = iy - 1 + j as isize;
                let mut s = 0.0f32;
                for (i, wxi) in wx.iter().enumerate() {
                    s += wxi * c.tap(ix - 1 + i as isize, yy);
                }
                acc += wyj * s;
            }
            acc
        };
        *o = c.finish(v);
    }
}
