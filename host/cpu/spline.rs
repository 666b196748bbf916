//! Cubic B-spline interpolation: the prefilter (image → B-spline coefficients) and the
//! tap weights of the interpolation kernels used by [`super::resample`].
//!
//! The prefilter is scipy's `spline_filter` for order 3 with the **mirror** boundary
//! (whole-sample symmetric: `… c b | a b c … | d c …`), which is what
//! `scipy.ndimage.affine_transform(order=3, mode='constant')` applies before sampling
//! (semantics.md §6.5). Per line: multiply by the gain 6, a causal recursion with pole
//! `z = √3 − 2` initialised by the exact mirror sum, and an anti-causal recursion
//! initialised by the mirror rule `c[n−1] = z/(z² − 1)·(c[n−1] + z·c[n−2])`.
//! Lines of length 1 are left unchanged (as scipy).
//!
//! Coefficients are `f32`; the initial sums are accumulated in `f64`. The relative error
//! of the coefficients is a few 1e-7 of the data magnitude.

// Index loops over small fixed-size tap/lane arrays read best as written.
#![allow(clippy::needless_range_loop)]

use rayon::prelude::*;

/// The pole of the cubic B-spline prefilter, `√3 − 2`.
pub const POLE: f64 = -0.267_949_192_431_122_7;

/// The prefilter gain `(1 − z)(1 − 1/z)` = 6 for the cubic B-spline.
pub const GAIN: f32 = 6.0;

/// Beyond this many terms `z^k` is below 2e-18 and the causal initial sum is truncated
/// (lines at least this long; shorter lines use the exact finite mirror sum).
const INIT_TERMS: usize = 31;

/// The causal initial value for the mirror boundary, from `f64` samples `v(k)`,
/// `k = 0..n` (already multiplied by the gain). Exact for short lines.
#[inline]
fn causal_init(n: usize, v: impl Fn(usize) -> f64) -> f64 {
    let z = POLE;
    if n > INIT_TERMS {
        let mut zk = 1.0;
        let mut s = 0.0;
        for k in 0..INIT_TERMS {
            s += zk * v(k);
            zk *= z;
        }
        s
    } else {
        // c0 = (Σ_{k=0}^{n−1} z^k v_k + Σ_{k=1}^{n−2} z^{2n−2−k} v_k) / (1 − z^{2n−2})
        let zn1 = z.powi(n as i32 - 1);
        let mut s = v(0) + zn1 * v(n - 1);
        let mut zk = z;
        for k in 1..n - 1 {
            s += zk * (v(k) + zn1 * v(n - 1 - k));
            zk *= z;
        }
        s / (1.0 - zn1 * zn1)
    }
}

#[cfg(test)] // the reference the tests hold the fast paths to
/// Prefilter one line in place (gain, causal and anti-causal passes, mirror boundary).
/// The reference implementation; the 2-D passes below run the same recursions as block
/// updates along rows and as vector updates across strips of columns.
pub fn prefilter_line(c: &mut [f32]) {
    let n = c.len();
    if n < 2 {
        return;
    }
    for v in c.iter_mut() {
        *v *= GAIN;
    }
    let z = POLE as f32;
    let c0 = causal_init(n, |k| c[k] as f64);
    c[0] = c0 as f32;
    for i in 1..n {
        c[i] += z * c[i - 1];
    }
    c[n - 1] = anticausal_init(c[n - 2], c[n - 1]);
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

/// The mirror-boundary anti-causal initial value from the last two causal values.
#[inline(always)]
fn anticausal_init(prev: f32, last: f32) -> f32 {
    let z = POLE;
    ((z / (z * z - 1.0)) * (last as f64 + z * prev as f64)) as f32
}

/// Samples per block of the row recursion.
const K: usize = 8;

/// The row recursions as 8 × 8 block updates (so that they vectorise along the row):
/// a causal block is `c[i+j] = Σ_{m≤j} z^{j−m}·6·x[i+m] + z^{j+1}·c[i−1]`, an anti-causal
/// block (lanes in memory order, q = 0…7 for positions i−7…i) is
/// `d[q] = Σ_{r≥q} z^{r−q}·(−z·c[r]) + z^{8−q}·d[i+1]`.
struct BlockIir {
    /// `fwd[m][j]`: weight of gained-less input m in output j (gain included).
    fwd: [[f32; K]; K],
    fwd_carry: [f32; K],
    /// `bwd[r][q]`: weight of causal value r in output q (−z included).
    bwd: [[f32; K]; K],
    bwd_carry: [f32; K],
}

impl BlockIir {
    fn new() -> BlockIir {
        let z = POLE;
        let mut t = BlockIir {
            fwd: [[0.0; K]; K],
            fwd_carry: [0.0; K],
            bwd: [[0.0; K]; K],
            bwd_carry: [0.0; K],
        };
        for m in 0..K {
            for j in m..K {
                t.fwd[m][j] = (GAIN as f64 * z.powi((j - m) as i32)) as f32;
            }
        }
        for j in 0..K {
            t.fwd_carry[j] = z.powi(j as i32 + 1) as f32;
        }
        for r in 0..K {
            for q in 0..=r {
                t.bwd[r][q] = (-z * z.powi((r - q) as i32)) as f32;
            }
        }
        for q in 0..K {
            t.bwd_carry[q] = z.powi((K - q) as i32) as f32;
        }
        t
    }
}

/// Prefilter one row in place with the block recursions (same result as
/// `prefilter_line` (the tests' reference) up to rounding).
#[inline(always)]
fn row_filter(c: &mut [f32], t: &BlockIir) {
    let n = c.len();
    if n < 2 {
        return;
    }
    let z = POLE as f32;
    let c0 = causal_init(n, |k| GAIN as f64 * c[k] as f64) as f32;
    c[0] = c0;
    let mut carry = c0;
    let mut i = 1;
    while i + K <= n {
        let mut x = [0.0f32; K];
        x.copy_from_slice(&c[i..i + K]);
        // The input part first (independent of the carry, so it runs ahead), then the
        // carry: the loop-carried dependency is a single multiply-add per block.
        let mut o = [0.0f32; K];
        for m in 0..K {
            let xm = x[m];
            for j in 0..K {
                o[j] += t.fwd[m][j] * xm;
            }
        }
        for j in 0..K {
            o[j] += t.fwd_carry[j] * carry;
        }
        c[i..i + K].copy_from_slice(&o);
        carry = o[K - 1];
        i += K;
    }
    while i < n {
        c[i] = GAIN * c[i] + z * c[i - 1];
        i += 1;
    }
    c[n - 1] = anticausal_init(c[n - 2], c[n - 1]);
    let mut carry = c[n - 1];
    // blocks [e − K, e) going down from e = n − 1
    let mut e = n - 1;
    while e >= K {
        let mut x = [0.0f32; K];
        x.copy_from_slice(&c[e - K..e]);
        let mut o = [0.0f32; K];
        for r in 0..K {
            let xr = x[r];
            for q in 0..K {
                o[q] += t.bwd[r][q] * xr;
            }
        }
        for q in 0..K {
            o[q] += t.bwd_carry[q] * carry;
        }
        c[e - K..e].copy_from_slice(&o);
        carry = o[0];
        e -= K;
    }
    while e > 0 {
        e -= 1;
        c[e] = z * (c[e + 1] - c[e]);
    }
}

/// Prefilter the rows of a row-major block `w` wide (any number of rows, parallel
/// callers hand out blocks). `fill(r, line)` first writes the samples of row r into
/// `line` and returns `false` for a row to be left as written (a constant row is its own
/// coefficient line).
pub fn prefilter_block_with(block: &mut [f32], w: usize, fill: impl Fn(usize, &mut [f32]) -> bool) {
    if w == 0 {
        return;
    }
    let t = BlockIir::new();
    #[cfg(target_arch = "x86_64")]
    if super::simd::available() {
        // SAFETY: AVX2 and FMA are available (checked just above).
        unsafe { rows_avx2(block, w, &t, &fill) };
        return;
    }
    rows_generic(block, w, &t, &fill);
}

#[inline(always)]
fn rows_generic(
    block: &mut [f32],
    w: usize,
    t: &BlockIir,
    fill: &impl Fn(usize, &mut [f32]) -> bool,
) {
    for (r, line) in block.chunks_exact_mut(w).enumerate() {
        if fill(r, line) {
            row_filter(line, t);
        }
    }
}

/// [`rows_generic`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2(
    block: &mut [f32],
    w: usize,
    t: &BlockIir,
    fill: &impl Fn(usize, &mut [f32]) -> bool,
) {
    rows_generic(block, w, t, fill)
}

#[cfg(test)] // the reference the tests hold the fast paths to
/// Prefilter every row of a row-major `w`-wide plane (parallel over blocks of rows).
pub fn prefilter_rows(plane: &mut [f32], w: usize) {
    if w == 0 {
        return;
    }
    plane
        .par_chunks_mut(w * 16)
        .for_each(|block| prefilter_block_with(block, w, |_, _| true));
}

/// Columns per strip in [`prefilter_columns`].
pub const COLUMN_LANES: usize = 128;

/// Prefilter every column of a row-major `w`-wide plane of `h` rows (parallel over strips
/// of [`COLUMN_LANES`] columns; a strip stays in cache between the two passes). Does
/// nothing unless `plane.len() == w * h`.
pub fn prefilter_columns(plane: &mut [f32], w: usize, h: usize) {
    if h < 2 || w == 0 || plane.len() != w * h {
        return;
    }
    let nstrips = w.div_ceil(COLUMN_LANES);
    let mut strips: Vec<Vec<&mut [f32]>> = (0..nstrips).map(|_| Vec::with_capacity(h)).collect();
    for row in plane.chunks_exact_mut(w) {
        for (s, piece) in row.chunks_mut(COLUMN_LANES).enumerate() {
            strips[s].push(piece);
        }
    }
    let avx2 = super::simd::available();
    strips.par_iter_mut().for_each(|rows| {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: AVX2 and FMA are available (checked above).
            unsafe { column_strip_avx2(rows) };
            return;
        }
        let _ = avx2;
        column_strip::<COLUMN_LANES>(rows)
    });
}

/// [`column_strip`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn column_strip_avx2(rows: &mut [&mut [f32]]) {
    column_strip::<COLUMN_LANES>(rows)
}

/// The recursions down one strip; `rows[i]` is the strip's piece of row i (at most `L`
/// wide). The gain is folded into the causal pass.
#[inline(always)]
fn column_strip<const L: usize>(rows: &mut [&mut [f32]]) {
    let h = rows.len();
    if h < 2 {
        return;
    }
    let width = rows[0].len().min(L);
    let z = POLE as f32;
    let mut carry = [0.0f32; L];
    for (l, c) in carry.iter_mut().enumerate().take(width) {
        *c = causal_init(h, |k| {
            GAIN as f64 * rows[k].get(l).copied().unwrap_or(0.0) as f64
        }) as f32;
    }
    for (l, v) in rows[0].iter_mut().enumerate().take(width) {
        *v = carry[l];
    }
    for row in rows.iter_mut().skip(1) {
        match <&mut [f32; L]>::try_from(&mut **row) {
            Ok(r) => {
                for (v, c) in r.iter_mut().zip(carry.iter_mut()) {
                    *v = GAIN * *v + z * *c;
                    *c = *v;
                }
            }
            Err(_) => {
                for (l, v) in row.iter_mut().enumerate().take(width) {
                    *v = GAIN * *v + z * carry[l];
                    carry[l] = *v;
                }
            }
        }
    }
    let mut prev = [0.0f32; L];
    for (p, v) in prev.iter_mut().zip(rows[h - 2].iter()) {
        *p = *v;
    }
    for (l, v) in rows[h - 1].iter_mut().enumerate().take(width) {
        *v = anticausal_init(prev[l], *v);
        carry[l] = *v;
    }
    for row in rows.iter_mut().rev().skip(1) {
        match <&mut [f32; L]>::try_from(&mut **row) {
            Ok(r) => {
                for (v, c) in r.iter_mut().zip(carry.iter_mut()) {
                    *v = z * (*c - *v);
                    *c = *v;
                }
            }
            Err(_) => {
                for (l, v) in row.iter_mut().enumerate().take(width) {
                    *v = z * (carry[l] - *v);
                    carry[l] = *v;
                }
            }
        }
    }
}

const fn div6(a: [f32; 4]) -> [f32; 4] {
    [a[0] / 6.0, a[1] / 6.0, a[2] / 6.0, a[3] / 6.0]
}

/// Cubic B-spline weights as cubics in t (rows: coefficients of t⁰ … t³; columns: taps).
pub(crate) const BS3: [[f32; 4]; 4] = [
    div6([1.0, 4.0, 1.0, 0.0]),
    div6([-3.0, 0.0, 3.0, 0.0]),
    div6([3.0, -6.0, 3.0, 0.0]),
    div6([-1.0, 3.0, -3.0, 1.0]),
];

/// Keys (a = −0.5) weights as cubics in t.
pub(crate) const KEYS: [[f32; 4]; 4] = [
    [0.0, 1.0, 0.0, 0.0],
    [-0.5, 0.0, 0.5, 0.0],
    [1.0, -2.5, 2.0, -0.5],
    [-0.5, 1.5, -1.5, 0.5],
];

/// Horner evaluation of the four tap cubics at t.
#[inline(always)]
fn poly4(c: &[[f32; 4]; 4], t: f32) -> [f32; 4] {
    let mut w = [0.0f32; 4];
    for k in 0..4 {
        w[k] = ((c[3][k] * t + c[2][k]) * t + c[1][k]) * t + c[0][k];
    }
    w
}

/// Cubic B-spline weights of the taps at `floor(x) − 1 … floor(x) + 2` for the fractional
/// part `t ∈ [0, 1)`: `(1−t)³/6, (3t³ − 6t² + 4)/6, (−3t³ + 3t² + 3t + 1)/6, t³/6`.
#[inline(always)]
pub fn bspline3_weights(t: f32) -> [f32; 4] {
    poly4(&BS3, t)
}

/// Keys cubic-convolution weights with `a = −0.5` (Catmull–Rom; IDL `ROT`/`POLY_2D`
/// `CUBIC=−0.5`, SolarSoft `aia_prep`) of the taps at `floor(x) − 1 … floor(x) + 2` for the
/// fractional part `t ∈ [0, 1)`. Reproduces quadratics exactly.
#[inline(always)]
pub fn keys_weights(t: f32) -> [f32; 4] {
    poly4(&KEYS, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluate the mirror-extended B-spline with coefficients `c` at integer k.
    fn eval_at_knot(c: &[f32], k: usize) -> f64 {
        let n = c.len() as isize;
        let m = |i: isize| -> f64 {
            let mut i = i;
            if i < 0 {
                i = -i;
            }
            if i >= n {
                i = 2 * (n - 1) - i;
            }
            c[i as usize] as f64
        };
        let k = k as isize;
        (m(k - 1) + 4.0 * m(k) + m(k + 1)) / 6.0
    }

    #[test]
    fn prefilter_interpolates_samples() {
        for n in [2usize, 3, 5, 17, 40, 200] {
            let data: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 11) as f32) * 3.5 - 7.0 + (i as f32 * 0.3).sin())
                .collect();
            let mut c = data.clone();
            prefilter_line(&mut c);
            for k in 0..n {
                let v = eval_at_knot(&c, k);
                assert!(
                    (v - data[k] as f64).abs() < 2e-5,
                    "n={n} k={k} {v} {}",
                    data[k]
                );
            }
        }
    }

    #[test]
    fn blocked_rows_and_columns_match_single_lines() {
        let (w, h) = (37usize, 50usize);
        let img: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919 % 101) as f32) - 50.0)
            .collect();
        // rows then columns through the 2-D entry points
        let mut a = img.clone();
        prefilter_rows(&mut a, w);
        prefilter_columns(&mut a, w, h);
        // the same with single-line calls
        let mut b = img.clone();
        for r in b.chunks_mut(w) {
            prefilter_line(r);
        }
        for x in 0..w {
            let mut col: Vec<f32> = (0..h).map(|y| b[y * w + x]).collect();
            prefilter_line(&mut col);
            for y in 0..h {
                b[y * w + x] = col[y];
            }
        }
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "{p} {q}");
        }
    }

    #[test]
    fn portable_passes_match_single_lines() {
        // The non-AVX2 code paths, called directly.
        let (w, h) = (45usize, 40usize);
        let img: Vec<f32> = (0..w * h).map(|i| ((i * 31 % 97) as f32) - 40.0).collect();
        let mut a = img.clone();
        rows_generic(&mut a, w, &BlockIir::new(), &|_, _| true);
        let mut b = img.clone();
        for r in b.chunks_mut(w) {
            prefilter_line(r);
        }
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "rows {p} {q}");
        }
        let mut rows: Vec<&mut [f32]> = a.chunks_mut(w).collect();
        // one strip narrower than COLUMN_LANES exercises the partial path
        let mut pieces: Vec<&mut [f32]> = rows.iter_mut().map(|r| &mut r[..20]).collect();
        column_strip::<COLUMN_LANES>(&mut pieces);
        for x in 0..20 {
            let mut col: Vec<f32> = (0..h).map(|y| b[y * w + x]).collect();
            prefilter_line(&mut col);
            for y in 0..h {
                let p = a[y * w + x];
                assert!(
                    (p - col[y]).abs() <= 1e-4 * (1.0 + col[y].abs()),
                    "cols {p} {}",
                    col[y]
                );
            }
        }
    }

    #[test]
    fn weights_sum_to_one_and_reproduce_linear() {
        for i in 0..=20 {
            let t = i as f32 / 20.0 * 0.999;
            for w in [bspline3_weights(t), keys_weights(t)] {
                let s: f32 = w.iter().sum();
                assert!((s - 1.0).abs() < 1e-6);
                let lin: f32 = w
                    .iter()
                    .enumerate()
                    .map(|(k, wk)| wk * (k as f32 - 1.0))
                    .sum();
                assert!((lin - t).abs() < 1e-6);
            }
            let kw = keys_weights(t);
            let q: f32 = kw
                .iter()
                .enumerate()
                .map(|(k, wk)| wk * (k as f32 - 1.0).powi(2))
                .sum();
            assert!((q - t * t).abs() < 1e-6, "keys reproduces x²");
        }
    }
}
