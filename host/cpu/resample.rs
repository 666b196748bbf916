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
//!   (`cpu/spline.rs`); `keys` is cubic convolution (a = −0.5) on the padded image.
//!   Taps beyond the padded edge use mirrored indices (scipy), and only matter for the
//!   4-tap kernels within 2 px of that edge.
//! * output pixels near missing input pixels become NaN (`cpu/mask.rs`; box dilation
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
//!
//! Speed and memory: one pass for NaN count/min/max (and the rows holding NaN); the
//! median only when needed (a sampled bracket and one pass, [`super::stats`]); for the
//! spline one pass that fills and filters rows and one over column strips
//! (`cpu/spline.rs`) into a pooled coefficient plane ([`crate::buffers`]); then one
//! pass over the output rows, where each row's interior span (all taps inside the plane)
//! runs the AVX2 + FMA kernels (`cpu/simd.rs`) when the CPU has them, and the few
//! pixels near the frame edges take the general path. Missing pixels are marked
//! sparsely (`cpu/mask.rs`). Peak memory: the input, the plane and the output
//! (≈ 200 MB for 4096²).

// Index loops over small fixed-size tap/lane arrays read best as written.
#![allow(clippy::needless_range_loop)]

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::mask::{self, Stencil};
use super::simd::{self, Span};
use super::spline::{
    bspline3_weights, keys_weights, prefilter_block_with, prefilter_columns, BS3, KEYS,
};
use super::stats::{nan_median_counted, summarize, summarize_rows};
use crate::buffers::Scratch;
use crate::geometry::{RegisterTransform, RowMap, MAX_MATERIALISED_PAD};
use crate::register::rules::{deferred_clip_range, ClipRule, Rules};
use crate::register::{Interpolation, Missing};

/// The result of [`resample`].
#[derive(Debug, Clone)]
pub struct Resampled {
    /// The output image, `[row, col]`, shape `t.out_shape`; NaN = missing.
    pub data: Array2<f32>,
    /// The `missing` value used for positions outside the padded input (DN; NaN for
    /// `Missing::Nan`).
    pub missing: f64,
    /// The value that replaced NaN input pixels (the median), when one was needed.
    pub fill: Option<f64>,
    /// The clipping range applied, `(lower, upper)` in DN.
    pub clip: Option<(f64, f64)>,
    /// Number of NaN (missing) input pixels.
    pub missing_in: usize,
}

/// Resample `input` (`[row, col]`, NaN = missing) through `t` with sunpy/scipy semantics
/// (module docs). The output has shape `t.out_shape`; the input may have any shape (the
/// transform's reference pixel and padding refer to it).
pub fn resample(
    input: ArrayView2<f32>,
    t: &RegisterTransform,
    interpolation: Interpolation,
    missing: Missing,
) -> Resampled {
    resample_with(input, t, interpolation, missing, true)
}

/// [`resample`], optionally without the SIMD kernels (for tests of the portable path).
pub(crate) fn resample_with(
    input: ArrayView2<f32>,
    t: &RegisterTransform,
    interpolation: Interpolation,
    missing: Missing,
    allow_simd: bool,
) -> Resampled {
    let (ny, nx) = input.dim();
    let (onx, ony) = t.out_shape;
    let std = input.as_standard_layout();
    let data: &[f32] = std.as_slice().unwrap_or(&[]);
    let (summary, nan_rows) = summarize_rows(data, nx);
    if data.is_empty() || summary.nan == data.len() {
        return Resampled {
            data: Array2::from_elem((ony, onx), f32::NAN),
            missing: f64::NAN,
            fill: None,
            clip: None,
            missing_in: summary.nan,
        };
    }
    let rules = Rules::new(&summary, missing, t.pad, nx, ny);
    let m = rules.missing;
    let pad = t.pad;
    let padded_pixels = rules.padded_pixels;
    let fill = if rules.need_fill {
        let extra = rules
            .fill_counts_padding
            .then_some((m as f32, padded_pixels));
        nan_median_counted(data, data.len() - summary.nan, extra)
    } else {
        None
    };
    let fill32 = fill.unwrap_or(0.0) as f32;
    let pv = if m.is_nan() { fill32 } else { m as f32 };
    let clip = rules.clip;

    // The plane that is sampled: the padded B-spline coefficients, or the input itself
    // (NaN taps are replaced by the fill when read).
    let (plane_owned, pe) = match interpolation {
        Interpolation::Spline => {
            let pe = [
                pad[0].min(MAX_MATERIALISED_PAD),
                pad[1].min(MAX_MATERIALISED_PAD),
            ];
            (Some(spline_plane(data, nx, ny, pe, pv, fill32)), pe)
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
        fill: fill32,
        nan_taps: plane_owned.is_none() && summary.nan > 0,
        nan_prefix: if plane_owned.is_none() && summary.nan > 0 {
            let mut p = vec![0u32; ny + 1];
            for &y in &nan_rows {
                p[y + 1] = 1;
            }
            for y in 0..ny {
                p[y + 1] += p[y];
            }
            p
        } else {
            Vec::new()
        },
        bounds,
        cval: m as f32,
        ring,
        clip: match clip {
            ClipRule::Known(lo, hi) => Some((lo, hi)),
            ClipRule::Deferred { .. } => None,
        },
        simd: allow_simd && simd::available(),
    };

    // Every pixel is written by its row below: a recycled buffer (in a batch) will do.
    let mut out_vec = crate::buffers::take_f32(onx * ony);
    out_vec
        .par_chunks_mut(onx.max(1))
        .enumerate()
        .for_each(|(y, row)| {
            let rm = t.row(y);
            match interpolation {
                Interpolation::Nearest => row_nearest(row, rm, &ctx),
                Interpolation::Linear => row_linear(row, rm, &ctx),
                Interpolation::Spline => row_cubic::<BSpline>(row, rm, &ctx),
                Interpolation::Keys => row_cubic::<Keys>(row, rm, &ctx),
            }
        });
    drop(plane_owned);
    if summary.nan > 0 {
        let runs = mask::nan_runs(data, nx, &nan_rows);
        let stencil = if interpolation == Interpolation::Nearest {
            Stencil::Nearest
        } else {
            Stencil::Bilinear
        };
        mask::mark(&mut out_vec, t, &runs, half, stencil, bounds);
    }
    let mut out = Array2::from_shape_vec((ony, onx), out_vec)
        .unwrap_or_else(|_| Array2::from_elem((ony, onx), f32::NAN));
    let clip_range = match clip {
        ClipRule::Known(lo, hi) => Some((lo as f64, hi as f64)),
        ClipRule::Deferred {
            missing,
            in_min,
            in_max,
        } => apply_deferred_clip(&mut out, missing, in_min, in_max),
    };
    Resampled {
        data: out,
        missing: m,
        fill,
        clip: clip_range,
        missing_in: summary.nan,
    }
}

/// sunpy's clipping when `missing` lies outside the input range ([`deferred_clip_range`]);
/// skipped if all output is NaN. Returns the range applied (DN). For
/// [`ClipRule::Deferred`], after resampling and the NaN rule.
pub fn apply_deferred_clip(
    out: &mut Array2<f32>,
    m: f64,
    in_min: f64,
    in_max: f64,
) -> Option<(f64, f64)> {
    let s = summarize(out.as_slice().unwrap_or(&[]));
    if s.nan == out.len() {
        return None;
    }
    let (lower, upper) = deferred_clip_range(m, s.min, s.max, in_min, in_max);
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

/// The padded, NaN-filled, prefiltered coefficient plane (`pe` materialised padding):
/// one parallel pass that fills blocks of rows and filters them along x, then the
/// column pass.
fn spline_plane(data: &[f32], nx: usize, ny: usize, pe: [usize; 2], pv: f32, fill: f32) -> Scratch {
    let w = nx + 2 * pe[0];
    let h = ny + 2 * pe[1];
    // Every value is written below (padding rows, padding columns, data).
    let mut plane = Scratch::new(w * h);
    let rows_per_task = 16;
    plane
        .par_chunks_mut(w * rows_per_task)
        .enumerate()
        .for_each(|(b, block)| {
            prefilter_block_with(block, w, |r, line| {
                match (b * rows_per_task + r)
                    .checked_sub(pe[1])
                    .filter(|&y| y < ny)
                {
                    None => {
                        line.fill(pv); // a padding row: constant, its own coefficients
                        false
                    }
                    Some(y) => {
                        let src = &data[y * nx..(y + 1) * nx];
                        line[..pe[0]].fill(pv);
                        line[pe[0] + nx..].fill(pv);
                        for (d, &s) in line[pe[0]..pe[0] + nx].iter_mut().zip(src) {
                            *d = if s.is_nan() { fill } else { s };
                        }
                        true
                    }
                }
            })
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
    /// Replacement of NaN taps (the median).
    fill: f32,
    /// The plane is the raw input and has NaN pixels.
    nan_taps: bool,
    /// With `nan_taps`: number of input rows containing NaN before each row (len ny + 1).
    nan_prefix: Vec<u32>,
    /// `[x_lo, x_hi, y_lo, y_hi]`: the padded frame; outside → `cval`.
    bounds: [f64; 4],
    cval: f32,
    /// NaN missing with padding: `[x_lo, x_hi, y_lo, y_hi]` interior not touching the
    /// dilated padding (order ≥ 1 stencil); outside → NaN.
    ring: Option<[f64; 4]>,
    clip: Option<(f32, f32)>,
    /// Use the AVX2 kernels for interior spans.
    simd: bool,
}

impl Ctx<'_> {
    /// Could a tap of output columns `x0 .. x1` of this row read a NaN input pixel? (Rows
    /// `floor(y) − 1 ..= floor(y) + 2` over the span, against the rows known to hold NaN.)
    fn span_may_touch_nan(&self, rm: &RowMap, x0: usize, x1: usize) -> bool {
        if !self.nan_taps || x1 <= x0 {
            return false;
        }
        let (a, b) = (rm.at(x0)[1], rm.at(x1 - 1)[1]);
        let ny = self.nan_prefix.len().saturating_sub(1) as f64;
        let lo = (a.min(b).floor() - 1.0).clamp(0.0, ny) as usize;
        let hi = (a.max(b).floor() + 3.0).clamp(0.0, ny) as usize;
        self.nan_prefix.get(hi).copied().unwrap_or(0)
            > self.nan_prefix.get(lo).copied().unwrap_or(0)
    }

    /// The SIMD span description for tap offset `tap0` (first tap relative to the floor).
    fn span(&self, rm: RowMap, tap0: i32) -> Span<'_> {
        let (lo, hi) = self.clip.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        Span {
            plane: self.plane,
            w: self.w,
            off: [self.pe[0] as i32 + tap0, self.pe[1] as i32 + tap0],
            rm,
            lo,
            hi,
        }
    }

    /// Plane index along axis `a` of input pixel index `i`, or `None` for the
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

    /// The (padded, filled) plane value at input pixel `(ix, iy)`, any indices.
    #[inline]
    fn tap(&self, ix: isize, iy: isize) -> f32 {
        match (self.axis(0, ix), self.axis(1, iy)) {
            (Some(a), Some(b)) => {
                let v = self.plane.get(b * self.w + a).copied().unwrap_or(self.pv);
                if v.is_nan() {
                    self.fill
                } else {
                    v
                }
            }
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

    /// The output columns `[xa, xb)` of a row where `fast(x)` holds, `fast` being true on
    /// an interval of x (all conditions are bounds on coordinates that are monotonic in
    /// x). `lo`/`hi` are the bounds on (x, y) input coordinates that approximate `fast`.
    fn fast_range(
        &self,
        rm: &RowMap,
        nx: usize,
        lo: [f64; 2],
        hi: [f64; 2],
        fast: impl Fn(f64, f64) -> bool,
    ) -> (usize, usize) {
        let (mut a, mut b) = (0.0f64, nx as f64);
        for k in 0..2 {
            let (base, step) = (rm.base[k], rm.step[k]);
            if step == 0.0 {
                if !(base >= lo[k] && base <= hi[k]) {
                    return (0, 0);
                }
            } else {
                let (u, v) = ((lo[k] - base) / step, (hi[k] - base) / step);
                let (u, v) = if u <= v { (u, v) } else { (v, u) };
                a = a.max(u.ceil());
                b = b.min(v.floor() + 1.0);
            }
        }
        if a >= b || a.is_nan() || b.is_nan() {
            return (0, 0);
        }
        let (mut xa, mut xb) = (a as usize, (b as usize).min(nx));
        let ok = |x: usize| {
            let [xi, yi] = rm.at(x);
            fast(xi, yi)
        };
        while xa < xb && !ok(xa) {
            xa += 1;
        }
        while xb > xa && !ok(xb - 1) {
            xb -= 1;
        }
        (xa, xb)
    }

    /// The common part of the per-pixel checks: `Some(v)` when the pixel is decided
    /// without interpolating (outside → `cval`; NaN-missing ring → NaN).
    #[inline(always)]
    fn edge_value(&self, xi: f64, yi: f64) -> Option<f32> {
        if !self.inside(xi, yi) {
            Some(self.cval)
        } else if self.out_of_ring(xi, yi) {
            Some(f32::NAN)
        } else {
            None
        }
    }

    /// The bounds of the region where no edge value applies and the taps
    /// `floor(x) + lo_tap ..= floor(x) + hi_tap` are inside the plane.
    fn interior(&self, lo_tap: isize, hi_tap: isize) -> ([f64; 2], [f64; 2]) {
        let mut lo = [self.bounds[0], self.bounds[2]];
        let mut hi = [self.bounds[1], self.bounds[3]];
        if let Some(r) = &self.ring {
            lo = [lo[0].max(r[0]), lo[1].max(r[2])];
            hi = [hi[0].min(r[1]), hi[1].min(r[3])];
        }
        for k in 0..2 {
            // floor(x) + lo_tap >= -pe  and  floor(x) + hi_tap <= n - 1 + pe
            lo[k] = lo[k].max((-self.pe[k] - lo_tap) as f64);
            hi[k] = hi[k].min((self.n[k] - 1 + self.pe[k] - hi_tap) as f64 + 0.999_999);
        }
        (lo, hi)
    }

    /// Are all taps `floor + lo_tap ..= floor + hi_tap` on some axis in the unmaterialised
    /// padding (beyond the stored plane, not reaching the mirrored frame edge)? Then every
    /// tap reads the padding value.
    #[inline(always)]
    fn taps_all_padding(&self, ix: isize, iy: isize, lo_tap: isize, hi_tap: isize) -> bool {
        let axis = |a: usize, i: isize| {
            let (n, p, pe) = (self.n[a], self.pad[a], self.pe[a]);
            (i + hi_tap < -pe && i + lo_tap >= -p)
                || (i + lo_tap > n - 1 + pe && i + hi_tap <= n - 1 + p)
        };
        axis(0, ix) || axis(1, iy)
    }

    #[inline(always)]
    fn taps_inside(&self, ix: isize, iy: isize, lo_tap: isize, hi_tap: isize) -> bool {
        ix + lo_tap >= -self.pe[0]
            && ix + hi_tap <= self.n[0] - 1 + self.pe[0]
            && iy + lo_tap >= -self.pe[1]
            && iy + hi_tap <= self.n[1] - 1 + self.pe[1]
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

/// Pixels per stage in the fast loops: coordinates and weights are computed for a block in
/// simple loops the compiler vectorises, then the taps are gathered.
const BLOCK: usize = 64;

/// `1.5·2⁵²`: adding it to an `f64` of magnitude below 2⁵¹ rounds to an integer that
/// sits in the low mantissa bits (no float → int conversion, so the loops vectorise).
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// Output column offsets `0, 1, …` as `f64` (exact).
const KF: [f64; BLOCK] = {
    let mut a = [0.0; BLOCK];
    let mut k = 0;
    while k < BLOCK {
        a[k] = k as f64;
        k += 1;
    }
    a
};

/// Integer parts (plane indices, i.e. offset by `off`) and fractional parts of the input
/// positions of output columns `x0 .. x0 + len` (after adding `shift`, ½ for nearest):
/// `floor(base + x·step + shift)`, the position from the same arithmetic as
/// [`RowMap::at`]. Positions must be below 2³⁰ in magnitude (they are within the padded
/// frame here).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn stage_coords(
    rm: &RowMap,
    x0: usize,
    len: usize,
    shift: f64,
    off: [i32; 2],
    ix: &mut [i32; BLOCK],
    iy: &mut [i32; BLOCK],
    tx: &mut [f32; BLOCK],
    ty: &mut [f32; BLOCK],
) {
    let (sx, sy) = (rm.step[0], rm.step[1]);
    let x0f = x0 as f64;
    let len = len.min(BLOCK);
    for k in 0..len {
        let xf = x0f + KF[k];
        let xs = (rm.base[0] + xf * sx) + shift;
        let ys = (rm.base[1] + xf * sy) + shift;
        let (a, af) = floor_magic(xs);
        let (b, bf) = floor_magic(ys);
        ix[k] = a + off[0];
        iy[k] = b + off[1];
        tx[k] = (xs - af) as f32;
        ty[k] = (ys - bf) as f32;
    }
}

/// `floor(x)` as `i32` and as `f64`, branch- and conversion-free (|x| < 2³⁰).
#[inline(always)]
fn floor_magic(x: f64) -> (i32, f64) {
    let t = x + MAGIC;
    let n = t.to_bits() as i32; // round-to-nearest integer, two's complement
    let r = t - MAGIC;
    let below = (r > x) as i32;
    (n - below, r - below as f64)
}

/// Plane offsets `iy·w + ix` of a block, and whether every `offset + span` lies inside a
/// plane of `plane_len` values (one check per block instead of one per tap).
#[inline(always)]
fn stage_index(
    ix: &[i32; BLOCK],
    iy: &[i32; BLOCK],
    len: usize,
    w: usize,
    span: usize,
    plane_len: usize,
    idx: &mut [usize; BLOCK],
) -> bool {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let w64 = w as i64;
    for k in 0..len.min(BLOCK) {
        let b = iy[k] as i64 * w64 + ix[k] as i64;
        lo = lo.min(b);
        hi = hi.max(b);
        idx[k] = b as usize;
    }
    len == 0 || (lo >= 0 && (hi as u64).saturating_add(span as u64) <= plane_len as u64)
}

/// `N` consecutive plane values from offset `i`.
///
/// # Safety
/// `i + N <= p.len()` (established per block by [`stage_index`]).
#[inline(always)]
unsafe fn load<const N: usize>(p: &[f32], i: usize) -> [f32; N] {
    debug_assert!(i + N <= p.len());
    // SAFETY: the caller guarantees the N values are inside `p`; [f32; N] has no
    // alignment requirement beyond f32's, and read_unaligned needs none.
    unsafe { (p.as_ptr().add(i) as *const [f32; N]).read_unaligned() }
}

/// The 4 × 4 tap sum `Σ_j wy_j Σ_i wx_i p[b + j·w + i]`.
///
/// # Safety
/// `b + 3·w + 4 <= p.len()`.
#[inline(always)]
unsafe fn dot16(p: &[f32], b: usize, w: usize, wx: &[f32; 4], wy: &[f32; 4]) -> f32 {
    debug_assert!(b + 3 * w + 4 <= p.len());
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE is part of the x86-64 baseline; the four 4-float loads are inside
        // `p` by the caller's guarantee; the weight loads read the two arrays.
        #[allow(unused_unsafe)]
        unsafe {
            let q = p.as_ptr().add(b);
            let wyv = _mm_loadu_ps(wy.as_ptr());
            let r0 = _mm_loadu_ps(q);
            let r1 = _mm_loadu_ps(q.add(w));
            let r2 = _mm_loadu_ps(q.add(2 * w));
            let r3 = _mm_loadu_ps(q.add(3 * w));
            let a01 = _mm_add_ps(
                _mm_mul_ps(r0, _mm_shuffle_ps::<0x00>(wyv, wyv)),
                _mm_mul_ps(r1, _mm_shuffle_ps::<0x55>(wyv, wyv)),
            );
            let a23 = _mm_add_ps(
                _mm_mul_ps(r2, _mm_shuffle_ps::<0xAA>(wyv, wyv)),
                _mm_mul_ps(r3, _mm_shuffle_ps::<0xFF>(wyv, wyv)),
            );
            let prod = _mm_mul_ps(_mm_add_ps(a01, a23), _mm_loadu_ps(wx.as_ptr()));
            let s = _mm_add_ps(prod, _mm_movehl_ps(prod, prod));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0x55>(s, s)))
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: as above.
        let r = unsafe {
            [
                load::<4>(p, b),
                load::<4>(p, b + w),
                load::<4>(p, b + 2 * w),
                load::<4>(p, b + 3 * w),
            ]
        };
        let mut a = [0.0f32; 4];
        for m in 0..4 {
            a[m] = (r[0][m] * wy[0] + r[1][m] * wy[1]) + (r[2][m] * wy[2] + r[3][m] * wy[3]);
        }
        (a[0] * wx[0] + a[2] * wx[2]) + (a[1] * wx[1] + a[3] * wx[3])
    }
}

fn row_nearest(out: &mut [f32], rm: RowMap, c: &Ctx) {
    let nearest = |xi: f64, yi: f64| (floor_frac(xi + 0.5).0, floor_frac(yi + 0.5).0);
    let general = |x: usize| -> f32 {
        let [xi, yi] = rm.at(x);
        if !c.inside(xi, yi) {
            return c.cval;
        }
        let (ix, iy) = nearest(xi, yi);
        if let Some(r) = &c.ring {
            // order-0 stencil: the rounded pixel must avoid the padding
            let (fx, fy) = (ix as f64, iy as f64);
            if !(fx >= r[0] && fx <= r[1] && fy >= r[2] && fy <= r[3]) {
                return f32::NAN;
            }
        }
        c.finish(c.tap(ix, iy))
    };
    let fast_ok = |xi: f64, yi: f64| {
        let (ix, iy) = nearest(xi, yi);
        c.inside(xi, yi) && c.ring.is_none() && c.taps_inside(ix, iy, 0, 0)
    };
    let (lo, hi) = c.interior(0, 0);
    let (lo, hi) = ([lo[0] - 0.5, lo[1] - 0.5], [hi[0] - 0.5, hi[1] - 0.5]);
    let (xa, xb) = if c.ring.is_none() {
        c.fast_range(&rm, out.len(), lo, hi, fast_ok)
    } else {
        (0, 0)
    };
    for (x, o) in out.iter_mut().enumerate().take(xa) {
        *o = general(x);
    }
    let off = [c.pe[0] as i32, c.pe[1] as i32];
    let (mut ix, mut iy) = ([0i32; BLOCK], [0i32; BLOCK]);
    let (mut tx, mut ty) = ([0f32; BLOCK], [0f32; BLOCK]);
    let mut idx = [0usize; BLOCK];
    let mut x0 = xa;
    if c.simd && xb > xa {
        if let Some(n) = simd::nearest(&c.span(rm, 0), c.fill, xa, &mut out[xa..xb]) {
            x0 += n;
        }
    }
    while x0 < xb {
        let len = (xb - x0).min(BLOCK);
        stage_coords(&rm, x0, len, 0.5, off, &mut ix, &mut iy, &mut tx, &mut ty);
        let dst = &mut out[x0..x0 + len];
        if stage_index(&ix, &iy, len, c.w, 1, c.plane.len(), &mut idx) {
            for (k, o) in dst.iter_mut().enumerate() {
                // SAFETY: stage_index checked idx[k] + 1 <= plane.len() for this block.
                let [v] = unsafe { load::<1>(c.plane, idx[k]) };
                *o = c.finish(if v.is_nan() { c.fill } else { v });
            }
        } else {
            for (k, o) in dst.iter_mut().enumerate() {
                *o = general(x0 + k);
            }
        }
        x0 += len;
    }
    for (x, o) in out.iter_mut().enumerate().skip(xb.max(xa)) {
        *o = general(x);
    }
}

fn row_linear(out: &mut [f32], rm: RowMap, c: &Ctx) {
    let slow = |ix: isize, iy: isize, tx: f32, ty: f32| -> f32 {
        let a = (1.0 - tx) * c.tap(ix, iy) + tx * c.tap(ix + 1, iy);
        let d = (1.0 - tx) * c.tap(ix, iy + 1) + tx * c.tap(ix + 1, iy + 1);
        (1.0 - ty) * a + ty * d
    };
    let general = |x: usize| -> f32 {
        let [xi, yi] = rm.at(x);
        if let Some(v) = c.edge_value(xi, yi) {
            return v;
        }
        let (ix, tx) = floor_frac(xi);
        let (iy, ty) = floor_frac(yi);
        if c.taps_all_padding(ix, iy, 0, 1) {
            return c.finish(c.pv);
        }
        c.finish(slow(ix, iy, tx as f32, ty as f32))
    };
    let fast_ok = |xi: f64, yi: f64| {
        c.edge_value(xi, yi).is_none() && c.taps_inside(floor_frac(xi).0, floor_frac(yi).0, 0, 1)
    };
    let (lo, hi) = c.interior(0, 1);
    let (xa, xb) = c.fast_range(&rm, out.len(), lo, hi, fast_ok);
    for (x, o) in out.iter_mut().enumerate().take(xa) {
        *o = general(x);
    }
    let w = c.w;
    let off = [c.pe[0] as i32, c.pe[1] as i32];
    let (mut ix, mut iy) = ([0i32; BLOCK], [0i32; BLOCK]);
    let (mut tx, mut ty) = ([0f32; BLOCK], [0f32; BLOCK]);
    let mut idx = [0usize; BLOCK];
    let mut x0 = xa;
    if c.simd && xb > xa {
        if let Some(n) = simd::linear(&c.span(rm, 0), xa, &mut out[xa..xb]) {
            if c.span_may_touch_nan(&rm, xa, xa + n) {
                for x in xa..xa + n {
                    if out[x].is_nan() {
                        out[x] = general(x);
                    }
                }
            }
            x0 += n;
        }
    }
    while x0 < xb {
        let len = (xb - x0).min(BLOCK);
        stage_coords(&rm, x0, len, 0.0, off, &mut ix, &mut iy, &mut tx, &mut ty);
        let dst = &mut out[x0..x0 + len];
        if stage_index(&ix, &iy, len, w, w + 2, c.plane.len(), &mut idx) {
            for (k, o) in dst.iter_mut().enumerate() {
                let b = idx[k];
                // SAFETY: stage_index checked idx[k] + w + 2 <= plane.len() for this block.
                let (r0, r1) = unsafe { (load::<2>(c.plane, b), load::<2>(c.plane, b + w)) };
                let (fx, fy) = (tx[k], ty[k]);
                let a = r0[0] + fx * (r0[1] - r0[0]);
                let d = r1[0] + fx * (r1[1] - r1[0]);
                let mut v = a + fy * (d - a);
                if c.nan_taps && v.is_nan() {
                    let (gx, gy) = ((ix[k] - off[0]) as isize, (iy[k] - off[1]) as isize);
                    v = slow(gx, gy, fx, fy);
                }
                *o = c.finish(v);
            }
        } else {
            for (k, o) in dst.iter_mut().enumerate() {
                *o = general(x0 + k);
            }
        }
        x0 += len;
    }
    for (x, o) in out.iter_mut().enumerate().skip(xb.max(xa)) {
        *o = general(x);
    }
}

/// A 4-tap separable kernel.
trait Cubic {
    /// Weight cubics (see `spline::BS3`).
    const COEF: [[f32; 4]; 4];
    fn weights(t: f32) -> [f32; 4];
}
struct BSpline;
impl Cubic for BSpline {
    const COEF: [[f32; 4]; 4] = BS3;
    #[inline(always)]
    fn weights(t: f32) -> [f32; 4] {
        bspline3_weights(t)
    }
}
struct Keys;
impl Cubic for Keys {
    const COEF: [[f32; 4]; 4] = KEYS;
    #[inline(always)]
    fn weights(t: f32) -> [f32; 4] {
        keys_weights(t)
    }
}

fn row_cubic<K: Cubic>(out: &mut [f32], rm: RowMap, c: &Ctx) {
    let slow = |ix: isize, iy: isize, wx: [f32; 4], wy: [f32; 4]| -> f32 {
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
    let general = |x: usize| -> f32 {
        let [xi, yi] = rm.at(x);
        if let Some(v) = c.edge_value(xi, yi) {
            return v;
        }
        let (ix, tx) = floor_frac(xi);
        let (iy, ty) = floor_frac(yi);
        if c.taps_all_padding(ix, iy, -1, 2) {
            return c.finish(c.pv);
        }
        c.finish(slow(ix, iy, K::weights(tx as f32), K::weights(ty as f32)))
    };
    let fast_ok = |xi: f64, yi: f64| {
        c.edge_value(xi, yi).is_none() && c.taps_inside(floor_frac(xi).0, floor_frac(yi).0, -1, 2)
    };
    let (lo, hi) = c.interior(-1, 2);
    let (xa, xb) = c.fast_range(&rm, out.len(), lo, hi, fast_ok);
    for (x, o) in out.iter_mut().enumerate().take(xa) {
        *o = general(x);
    }
    let w = c.w;
    // plane index of the first tap: floor + pe − 1
    let off = [c.pe[0] as i32 - 1, c.pe[1] as i32 - 1];
    let (mut ix, mut iy) = ([0i32; BLOCK], [0i32; BLOCK]);
    let (mut tx, mut ty) = ([0f32; BLOCK], [0f32; BLOCK]);
    let mut wx = [[0f32; 4]; BLOCK];
    let mut wy = [[0f32; 4]; BLOCK];
    let mut idx = [0usize; BLOCK];
    let mut x0 = xa;
    if c.simd && xb > xa {
        if let Some(n) = simd::cubic(&c.span(rm, -1), &K::COEF, xa, &mut out[xa..xb]) {
            if c.span_may_touch_nan(&rm, xa, xa + n) {
                for x in xa..xa + n {
                    if out[x].is_nan() {
                        out[x] = general(x);
                    }
                }
            }
            x0 += n;
        }
    }
    while x0 < xb {
        let len = (xb - x0).min(BLOCK);
        stage_coords(&rm, x0, len, 0.0, off, &mut ix, &mut iy, &mut tx, &mut ty);
        for k in 0..len {
            wx[k] = K::weights(tx[k]);
            wy[k] = K::weights(ty[k]);
        }
        let dst = &mut out[x0..x0 + len];
        if stage_index(&ix, &iy, len, w, 3 * w + 4, c.plane.len(), &mut idx) {
            for (k, o) in dst.iter_mut().enumerate() {
                let (wxk, wyk) = (wx[k], wy[k]);
                // SAFETY: stage_index checked idx[k] + 3w + 4 <= plane.len() for this block.
                let mut v = unsafe { dot16(c.plane, idx[k], w, &wxk, &wyk) };
                if c.nan_taps && v.is_nan() {
                    let (gx, gy) = ((ix[k] - off[0]) as isize, (iy[k] - off[1]) as isize);
                    v = slow(gx, gy, wxk, wyk);
                }
                *o = c.finish(v);
            }
        } else {
            for (k, o) in dst.iter_mut().enumerate() {
                *o = general(x0 + k);
            }
        }
        x0 += len;
    }
    for (x, o) in out.iter_mut().enumerate().skip(xb.max(xa)) {
        *o = general(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::register_transform;
    use crate::synth::{level1, SynthOptions};

    /// The SIMD kernels and the portable loops agree (values to f32 rounding, identical
    /// NaN masks), for every interpolation, with and without padding and NaN missing.
    #[test]
    fn simd_and_portable_paths_agree() {
        for (roll, missing) in [
            (-0.13, Missing::Min),
            (25.0, Missing::Min),
            (25.0, Missing::Nan),
            (0.0, Missing::Value(-50.0)),
        ] {
            let map = level1(&SynthOptions {
                size: 256,
                n_missing: 40,
                roll_deg: roll,
                ..SynthOptions::default()
            });
            let t = register_transform(&map.geometry().unwrap());
            for interp in [
                Interpolation::Nearest,
                Interpolation::Linear,
                Interpolation::Spline,
                Interpolation::Keys,
            ] {
                let a = resample_with(map.data.view(), &t, interp, missing, true);
                let b = resample_with(map.data.view(), &t, interp, missing, false);
                let mut worst = 0.0f32;
                for (p, q) in a.data.iter().zip(b.data.iter()) {
                    assert_eq!(p.is_nan(), q.is_nan(), "{interp} {roll} {missing}");
                    if !p.is_nan() {
                        worst = worst.max((p - q).abs());
                    }
                }
                let scale = map
                    .data
                    .iter()
                    .filter(|v| !v.is_nan())
                    .fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(
                    worst <= 2e-6 * scale,
                    "{interp} roll {roll} {missing}: {worst} of {scale}"
                );
                assert!(a.data.iter().any(|v| v.is_nan()));
            }
        }
    }
}
