//! AVX2 + FMA kernels for the interior spans of [`super::resample`] (x86-64, detected at
//! run time; elsewhere the portable loops in `resample` run).
//!
//! A span is a run of output columns whose input positions are inside the padded frame
//! and whose taps are all inside the sampled plane (established by `resample`). The
//! kernels compute the input positions with the same `f64` arithmetic as
//! [`RowMap::at`] (`base + x·step`, multiply then add, no fused multiply-add), so they
//! sample exactly where the portable code does; only the `f32` accumulation order (and
//! FMA rounding) differs, by a few ulp.
//!
//! Every kernel re-checks, before touching memory, that the taps of the whole span lie
//! inside the plane (the tap indices are monotonic in x, so the two end pixels bound
//! them) and returns `None` otherwise; the unchecked loads are sound because of that
//! check alone.

// Index loops over small fixed-size tap/lane arrays read best as written.
#![allow(clippy::needless_range_loop)]

use crate::geometry::RowMap;

/// The plane and span description shared by the kernels.
#[derive(Clone, Copy)]
pub(crate) struct Span<'a> {
    /// The sampled plane, row-major.
    pub plane: &'a [f32],
    /// Plane width.
    pub w: usize,
    /// Added to `floor(position)` to get the plane column/row of the first tap.
    pub off: [i32; 2],
    /// The row map.
    pub rm: RowMap,
    /// Clipping range (use ±∞ for none).
    pub lo: f32,
    /// Upper end of the clipping range.
    pub hi: f32,
}

/// Whether the AVX2 + FMA kernels can run on this CPU.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Plane offset range of the first taps of columns `x0 .. x0 + n` (with `shift` added to
/// positions before the floor), if every tap up to `first + extent` is inside the plane.
fn span_ok(s: &Span, x0: usize, n: usize, shift: f64, extent: usize) -> bool {
    if n == 0 || s.plane.len() > i32::MAX as usize {
        return false;
    }
    let cell = |x: usize| {
        let [xi, yi] = s.rm.at(x);
        (
            (xi + shift).floor() as i64 + s.off[0] as i64,
            (yi + shift).floor() as i64 + s.off[1] as i64,
        )
    };
    let (a, b) = (cell(x0), cell(x0 + n - 1));
    let (ix0, ix1) = (a.0.min(b.0), a.0.max(b.0));
    let (iy0, iy1) = (a.1.min(b.1), a.1.max(b.1));
    let w = s.w as i64;
    ix0 >= 0 && iy0 >= 0 && ix1 < w && iy1 * w + ix1 + extent as i64 <= s.plane.len() as i64
}

/// Cubic (4 × 4 taps) resampling of columns `x0 .. x0 + out.len()`; `coef[d][k]` is the
/// coefficient of t^d in the weight of tap k. Returns the number of columns written (a
/// multiple of 4), or `None` when it cannot run (no AVX2, taps outside the plane).
pub(crate) fn cubic(s: &Span, coef: &[[f32; 4]; 4], x0: usize, out: &mut [f32]) -> Option<usize> {
    let n = out.len() / 4 * 4;
    if n == 0 || !available() || !span_ok(s, x0, n, 0.0, 3 * s.w + 4) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: AVX2 and FMA are available (checked), and span_ok verified that every
        // tap of columns x0 .. x0 + n is inside the plane.
        unsafe { x86::cubic(s, coef, x0, &mut out[..n]) };
        Some(n)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = coef;
        None
    }
}

/// Bilinear resampling; see [`cubic`].
pub(crate) fn linear(s: &Span, x0: usize, out: &mut [f32]) -> Option<usize> {
    let n = out.len() / 4 * 4;
    if n == 0 || !available() || !span_ok(s, x0, n, 0.0, s.w + 2) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: as in `cubic`.
        unsafe { x86::linear(s, x0, &mut out[..n]) };
        Some(n)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Nearest-neighbour resampling (halves round up); NaN samples become `fill`. See
/// [`cubic`].
pub(crate) fn nearest(s: &Span, fill: f32, x0: usize, out: &mut [f32]) -> Option<usize> {
    let n = out.len() / 4 * 4;
    if n == 0 || !available() || !span_ok(s, x0, n, 0.5, 1) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: as in `cubic`.
        unsafe { x86::nearest(s, fill, x0, &mut out[..n]) };
        Some(n)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = fill;
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Span;
    use std::arch::x86_64::*;

    /// Positions of 4 columns starting at `xf` (as f64 lanes), floored: (plane indices of
    /// the first taps, fractional parts).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn cells(
        s: &Span,
        xf: __m256d,
        shift: f64,
        w: __m128i,
        off: __m128i,
    ) -> (__m128i, __m128, __m128) {
        let bx = _mm256_set1_pd(s.rm.base[0]);
        let by = _mm256_set1_pd(s.rm.base[1]);
        let sx = _mm256_set1_pd(s.rm.step[0]);
        let sy = _mm256_set1_pd(s.rm.step[1]);
        let sh = _mm256_set1_pd(shift);
        // base + x·step (multiply, then add: the arithmetic of RowMap::at), then + shift.
        let xi = _mm256_add_pd(_mm256_add_pd(bx, _mm256_mul_pd(xf, sx)), sh);
        let yi = _mm256_add_pd(_mm256_add_pd(by, _mm256_mul_pd(xf, sy)), sh);
        let fx = _mm256_floor_pd(xi);
        let fy = _mm256_floor_pd(yi);
        let tx = _mm256_cvtpd_ps(_mm256_sub_pd(xi, fx));
        let ty = _mm256_cvtpd_ps(_mm256_sub_pd(yi, fy));
        let ix = _mm256_cvttpd_epi32(fx);
        let iy = _mm256_cvttpd_epi32(fy);
        let idx = _mm_add_epi32(_mm_add_epi32(_mm_mullo_epi32(iy, w), ix), off);
        (idx, tx, ty)
    }

    /// The plane offset vector (`off_y·w + off_x`) and `w` as vectors.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn offsets(s: &Span) -> (__m128i, __m128i) {
        let w = s.w as i32;
        (
            _mm_set1_epi32(w),
            _mm_set1_epi32(s.off[1].wrapping_mul(w).wrapping_add(s.off[0])),
        )
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn idx4(v: __m128i) -> [usize; 4] {
        let mut a = [0i32; 4];
        // SAFETY: writes 16 bytes into a 16-byte array.
        unsafe { _mm_storeu_si128(a.as_mut_ptr() as *mut __m128i, v) };
        [a[0] as usize, a[1] as usize, a[2] as usize, a[3] as usize]
    }

    /// # Safety
    /// AVX2 + FMA; every tap of the columns is inside `s.plane` (checked by `span_ok`).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn cubic(s: &Span, coef: &[[f32; 4]; 4], x0: usize, out: &mut [f32]) {
        let (wv, offv) = offsets(s);
        let p = s.plane.as_ptr();
        let w = s.w;
        let lo = _mm_set1_ps(s.lo);
        let hi = _mm_set1_ps(s.hi);
        // Per-tap coefficient vectors, duplicated for the x (low) and y (high) halves.
        let c = |d: usize, k: usize| _mm256_set1_ps(coef[d][k]);
        let mut xf = _mm256_setr_pd(x0 as f64, x0 as f64 + 1.0, x0 as f64 + 2.0, x0 as f64 + 3.0);
        let four = _mm256_set1_pd(4.0);
        for chunk in out.chunks_exact_mut(4) {
            let (idx, tx, ty) = cells(s, xf, 0.0, wv, offv);
            xf = _mm256_add_pd(xf, four);
            let t = _mm256_set_m128(ty, tx);
            // W_k = ((c3 t + c2) t + c1) t + c0, lanes 0–3: x weights, 4–7: y weights.
            let mut wx = [_mm_setzero_ps(); 4];
            let mut wy = [_mm_setzero_ps(); 4];
            for k in 0..4 {
                let v = _mm256_fmadd_ps(
                    _mm256_fmadd_ps(_mm256_fmadd_ps(c(3, k), t, c(2, k)), t, c(1, k)),
                    t,
                    c(0, k),
                );
                wx[k] = _mm256_castps256_ps128(v);
                wy[k] = _mm256_extractf128_ps::<1>(v);
            }
            let b = idx4(idx);
            // Vertical sums per pixel: acc_p[i] = Σ_j wy_j(p) · plane[b_p + j·w + i].
            macro_rules! pixel {
                ($pp:expr, $imm:expr) => {{
                    // SAFETY: b[$pp] + 3w + 4 <= plane.len() (span_ok).
                    let q = unsafe { p.add(b[$pp]) };
                    let r0 = unsafe { _mm_loadu_ps(q) };
                    let r1 = unsafe { _mm_loadu_ps(q.add(w)) };
                    let r2 = unsafe { _mm_loadu_ps(q.add(2 * w)) };
                    let r3 = unsafe { _mm_loadu_ps(q.add(3 * w)) };
                    // (r0·w0 + r1·w1) + (r2·w2 + r3·w3): a short dependency chain
                    let a = _mm_fmadd_ps(
                        r1,
                        _mm_permute_ps::<$imm>(wy[1]),
                        _mm_mul_ps(r0, _mm_permute_ps::<$imm>(wy[0])),
                    );
                    let b = _mm_fmadd_ps(
                        r3,
                        _mm_permute_ps::<$imm>(wy[3]),
                        _mm_mul_ps(r2, _mm_permute_ps::<$imm>(wy[2])),
                    );
                    _mm_add_ps(a, b)
                }};
            }
            let a0 = pixel!(0, 0x00);
            let a1 = pixel!(1, 0x55);
            let a2 = pixel!(2, 0xAA);
            let a3 = pixel!(3, 0xFF);
            // Transpose so that lane p of T_i is acc_p[i], then v = Σ_i T_i · wx_i.
            let t0 = _mm_unpacklo_ps(a0, a1);
            let t1 = _mm_unpacklo_ps(a2, a3);
            let t2 = _mm_unpackhi_ps(a0, a1);
            let t3 = _mm_unpackhi_ps(a2, a3);
            let v01 = _mm_fmadd_ps(
                _mm_movehl_ps(t1, t0),
                wx[1],
                _mm_mul_ps(_mm_movelh_ps(t0, t1), wx[0]),
            );
            let v23 = _mm_fmadd_ps(
                _mm_movehl_ps(t3, t2),
                wx[3],
                _mm_mul_ps(_mm_movelh_ps(t2, t3), wx[2]),
            );
            let v = _mm_add_ps(v01, v23);
            // Clamp; max/min return their second operand when it is NaN, so NaN survives.
            let v = _mm_min_ps(hi, _mm_max_ps(lo, v));
            // SAFETY: the chunk has 4 floats.
            unsafe { _mm_storeu_ps(chunk.as_mut_ptr(), v) };
        }
    }

    /// # Safety
    /// AVX2 + FMA; every tap of the columns is inside `s.plane` (checked by `span_ok`).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn linear(s: &Span, x0: usize, out: &mut [f32]) {
        let (wv, offv) = offsets(s);
        let p = s.plane.as_ptr();
        let w = s.w;
        let lo = _mm_set1_ps(s.lo);
        let hi = _mm_set1_ps(s.hi);
        let mut xf = _mm256_setr_pd(x0 as f64, x0 as f64 + 1.0, x0 as f64 + 2.0, x0 as f64 + 3.0);
        let four = _mm256_set1_pd(4.0);
        for chunk in out.chunks_exact_mut(4) {
            let (idx, tx, ty) = cells(s, xf, 0.0, wv, offv);
            xf = _mm256_add_pd(xf, four);
            let b = idx4(idx);
            // Two taps of each row for pixel pairs, then split into a (left) and b (right).
            let pair = |o: usize| {
                // SAFETY: b[k] + w + 2 <= plane.len() (span_ok); `_mm_loadl_epi64` reads
                // 8 unaligned bytes.
                let q = |k: usize| unsafe { _mm_loadl_epi64(p.add(b[k] + o) as *const __m128i) };
                let lo2 = _mm_castsi128_ps(_mm_unpacklo_epi64(q(0), q(1))); // a0 b0 a1 b1
                let hi2 = _mm_castsi128_ps(_mm_unpacklo_epi64(q(2), q(3))); // a2 b2 a3 b3
                (
                    _mm_shuffle_ps::<0b10_00_10_00>(lo2, hi2),
                    _mm_shuffle_ps::<0b11_01_11_01>(lo2, hi2),
                )
            };
            let (a0, b0) = pair(0);
            let (a1, b1) = pair(w);
            let top = _mm_fmadd_ps(tx, _mm_sub_ps(b0, a0), a0);
            let bot = _mm_fmadd_ps(tx, _mm_sub_ps(b1, a1), a1);
            let v = _mm_fmadd_ps(ty, _mm_sub_ps(bot, top), top);
            let v = _mm_min_ps(hi, _mm_max_ps(lo, v));
            // SAFETY: the chunk has 4 floats.
            unsafe { _mm_storeu_ps(chunk.as_mut_ptr(), v) };
        }
    }

    /// # Safety
    /// AVX2 + FMA; every tap of the columns is inside `s.plane` (checked by `span_ok`).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn nearest(s: &Span, fill: f32, x0: usize, out: &mut [f32]) {
        let (wv, offv) = offsets(s);
        let lo = _mm_set1_ps(s.lo);
        let hi = _mm_set1_ps(s.hi);
        let fillv = _mm_set1_ps(fill);
        let mut xf = _mm256_setr_pd(x0 as f64, x0 as f64 + 1.0, x0 as f64 + 2.0, x0 as f64 + 3.0);
        let four = _mm256_set1_pd(4.0);
        for chunk in out.chunks_exact_mut(4) {
            let (idx, _, _) = cells(s, xf, 0.5, wv, offv);
            xf = _mm256_add_pd(xf, four);
            let b = idx4(idx);
            let p = s.plane.as_ptr();
            // SAFETY: every index is inside the plane (span_ok). (Scalar loads: hardware
            // gathers do not train the stream prefetchers and were 4× slower here.)
            let v = unsafe { _mm_setr_ps(*p.add(b[0]), *p.add(b[1]), *p.add(b[2]), *p.add(b[3])) };
            let v = _mm_blendv_ps(v, fillv, _mm_cmpunord_ps(v, v));
            let v = _mm_min_ps(hi, _mm_max_ps(lo, v));
            // SAFETY: the chunk has 4 floats.
            unsafe { _mm_storeu_ps(chunk.as_mut_ptr(), v) };
        }
    }
}
