//! The CPU body of the uncertainty map: [`crate::uncertainty::estimate_error`] on every
//! pixel, rows in parallel (rayon).

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::uncertainty::{ChannelErrors, ErrorOptions, ErrorRule};

/// The 1-σ uncertainty (DN/pixel) of every pixel of `counts` (DN/pixel, not divided by the
/// exposure time), same shape: each pixel converted to f64, put through
/// [`crate::uncertainty::estimate_error`] (as [`ErrorRule::eval`], the same code with the
/// per-call constants worked out once) and rounded once to f32 — every value is the scalar
/// rule's (aiapy's) rounded to f32. NaN (missing) and negative pixels give NaN; options
/// that [`ErrorOptions::check`] refuses give NaN everywhere (check them first).
///
/// Rows run in parallel on the rayon pool. Any memory layout of `counts` is accepted; rows
/// with unit stride take a vectorised loop (AVX2 where the CPU has it: the same IEEE
/// operations, lane by lane, so the same bits).
pub fn estimate_error_map(
    counts: ArrayView2<f32>,
    e: &ChannelErrors,
    opts: &ErrorOptions,
) -> Array2<f32> {
    let rule = ErrorRule::new(e, opts);
    let (ny, nx) = counts.dim();
    // Every element is written below: a recycled buffer (in a batch) will do.
    let mut out = crate::buffers::take_f32(ny * nx);
    out.par_chunks_mut(nx.max(1))
        .zip(counts.axis_iter(Axis(0)))
        .for_each(|(o, c)| match c.as_slice() {
            Some(c) => row(c, o, &rule),
            None => {
                for (o, &c) in o.iter_mut().zip(c.iter()) {
                    *o = pixel(c, &rule);
                }
            }
        });
    Array2::from_shape_vec((ny, nx), out).unwrap_or_else(|_| Array2::from_elem((ny, nx), f32::NAN))
}

#[inline(always)]
fn pixel(c: f32, rule: &ErrorRule) -> f32 {
    rule.eval(f64::from(c)) as f32
}

#[inline(always)]
fn pixel_n<const UNIT: bool>(c: f32, rule: &ErrorRule) -> f32 {
    rule.eval_n::<UNIT>(f64::from(c)) as f32
}

/// One contiguous row, `o[i]` from `c[i]`.
fn row(c: &[f32], o: &mut [f32], rule: &ErrorRule) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (just checked).
        unsafe { row_avx2(c, o, rule) };
        return;
    }
    row_portable(c, o, rule);
}

/// The loop, with the variant of the rule chosen once per row.
#[inline(always)]
fn row_portable(c: &[f32], o: &mut [f32], rule: &ErrorRule) {
    if rule.unit_sample() {
        for (o, &c) in o.iter_mut().zip(c) {
            *o = pixel_n::<true>(c, rule);
        }
    } else {
        for (o, &c) in o.iter_mut().zip(c) {
            *o = pixel_n::<false>(c, rule);
        }
    }
}

/// [`row_portable`] compiled for AVX2 (no FMA: Rust never fuses, and the bits must be
/// those of the scalar rule).
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_avx2(c: &[f32], o: &mut [f32], rule: &ErrorRule) {
    row_portable(c, o, rule);
}
