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

/// Prefilter one line in place (gain, causal and anti-causal passes, mirror boundary).
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
    let zf = POLE;
    c[n - 1] = ((zf / (zf * zf - 1.0)) * (c[n - 1] as f64 + zf * c[n - 2] as f64)) as f32;
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

/// Prefilter `R` equally long lines at once (independent recursions interleaved, so the
/// loop is throughput- rather than latency-bound). `lines[r]` are the lines.
fn prefilter_lines<const R: usize>(lines: &mut [&mut [f32]; R]) {
    let n = lines[0].len();
    if n < 2 {
        return;
    }
    let z = POLE as f32;
    for l in lines.iter_mut() {
        for v in l.iter_mut() {
            *v *= GAIN;
        }
        let c0 = causal_init(n, |k| l[k] as f64);
        l[0] = c0 as f32;
    }
    for i in 1..n {
        for l in lines.iter_mut() {
            l[i] += z * l[i - 1];
        }
    }
    let zf = POLE;
    for l in lines.iter_mut() {
        l[n - 1] = ((zf / (zf * zf - 1.0)) * (l[n - 1] as f64 + zf * l[n - 2] as f64)) as f32;
    }
    for i in (0..n - 1).rev() {
        for l in lines.iter_mut() {
            l[i] = z * (l[i + 1] - l[i]);
        }
    }
}

/// Prefilter the `R` rows of a row-major block `w` wide (`block.len() == R·w`; any other
/// length is filtered line by line), interleaving the recursions.
pub fn prefilter_block<const R: usize>(block: &mut [f32], w: usize) {
    if w == 0 {
        return;
    }
    if block.len() != R * w {
        for line in block.chunks_exact_mut(w) {
            prefilter_line(line);
        }
        return;
    }
    let mut it = block.chunks_exact_mut(w);
    // chunks_exact_mut yields exactly R rows here.
    let mut lines: [&mut [f32]; R] = std::array::from_fn(|_| it.next().unwrap_or_default());
    prefilter_lines(&mut lines);
}

/// Prefilter every row of a row-major `w`-wide plane (parallel over blocks of rows).
pub fn prefilter_rows(plane: &mut [f32], w: usize) {
    const R: usize = 8;
    if w == 0 {
        return;
    }
    plane
        .par_chunks_mut(w * R)
        .for_each(|block| prefilter_block::<R>(block, w));
}

/// Prefilter every column of a row-major `w`-wide plane of `h` rows (parallel over strips
/// of columns; each strip stays in cache for both passes). Does nothing unless
/// `plane.len() == w * h`.
pub fn prefilter_columns(plane: &mut [f32], w: usize, h: usize) {
    const S: usize = 32;
    if h < 2 || w == 0 || plane.len() != w * h {
        return;
    }
    let nstrips = w.div_ceil(S);
    let mut strips: Vec<Vec<&mut [f32]>> = (0..nstrips).map(|_| Vec::with_capacity(h)).collect();
    for row in plane.chunks_exact_mut(w) {
        for (s, piece) in row.chunks_mut(S).enumerate() {
            strips[s].push(piece);
        }
    }
    strips.par_iter_mut().for_each(|rows| column_strip(rows));
}

/// The column recursion on one strip; `rows[i]` is the strip's piece of row i.
fn column_strip(rows: &mut [&mut [f32]]) {
    let h = rows.len();
    let z = POLE as f32;
    let zf = POLE;
    for r in rows.iter_mut() {
        for v in r.iter_mut() {
            *v *= GAIN;
        }
    }
    let width = rows[0].len();
    for l in 0..width {
        let c0 = causal_init(h, |k| rows[k][l] as f64);
        rows[0][l] = c0 as f32;
    }
    for i in 1..h {
        let (done, rest) = rows.split_at_mut(i);
        let prev = &done[i - 1];
        for (c, p) in rest[0].iter_mut().zip(prev.iter()) {
            *c += z * *p;
        }
    }
    {
        let (a, b) = rows.split_at_mut(h - 1);
        let prev = &a[h - 2];
        for (bl, al) in b[0].iter_mut().zip(prev.iter()) {
            *bl = ((zf / (zf * zf - 1.0)) * (*bl as f64 + zf * *al as f64)) as f32;
        }
    }
    for i in (0..h - 1).rev() {
        let (a, b) = rows.split_at_mut(i + 1);
        let next = &b[0];
        for (c, nx) in a[i].iter_mut().zip(next.iter()) {
            *c = z * (*nx - *c);
        }
    }
}

/// Cubic B-spline weights of the taps at `floor(x) − 1 … floor(x) + 2` for the fractional
/// part `t ∈ [0, 1)`.
#[inline(always)]
pub fn bspline3_weights(t: f32) -> [f32; 4] {
    let u = 1.0 - t;
    let t2 = t * t;
    let t3 = t2 * t;
    let u2 = u * u;
    let u3 = u2 * u;
    [
        u3 * (1.0 / 6.0),
        (2.0 / 3.0) - t2 + 0.5 * t3,
        (2.0 / 3.0) - u2 + 0.5 * u3,
        t3 * (1.0 / 6.0),
    ]
}

/// Keys cubic-convolution weights with `a = −0.5` (Catmull–Rom; IDL `ROT`/`POLY_2D`
/// `CUBIC=−0.5`, SolarSoft `aia_prep`) of the taps at `floor(x) − 1 … floor(x) + 2` for the
/// fractional part `t ∈ [0, 1)`. Reproduces quadratics exactly.
#[inline(always)]
pub fn keys_weights(t: f32) -> [f32; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
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
        let (w, h) = (37usize, 21usize);
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
