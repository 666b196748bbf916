//! Richardson–Lucy deconvolution on the CPU (`f32`, periodic boundary), the engine behind
//! [`crate::deconvolve::richardson_lucy`].
//!
//! One iteration, with `H` the OTF already divided by `nx·ny` (so the unnormalised inverse
//! transforms need no further scaling):
//!
//! ```text
//! e = irfft2(rfft2(u) · H)          // estimate convolved with the PSF
//! r = d / e   (0 where not finite)  // ratio; the only guard
//! u = u · irfft2(rfft2(r) · conj H) // correlate the ratio with the PSF
//! ```
//!
//! The products with `H` are fused into the column pass of the forward transform and the
//! divide / multiply into the row pass of the inverse transform, so one iteration makes four
//! 2-D transform passes and nothing else over the image. Plans and all buffers (`d`, `u`,
//! `r`, one half spectrum, the transform's work space) are allocated once per call; the
//! iteration loop allocates nothing.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use rustfft::num_complex::Complex;

use crate::cpu::fft2::Fft2;
use crate::error::{Error, Result, Source};

/// The guarded ratio `d / e`: the quotient itself wherever it is finite (bit-identical to an
/// unguarded division), and 0 where it is not (`e = 0`, `0/0`, or an `f32` overflow when `e`
/// is tiny) — a non-finite value would otherwise spread to every pixel through the next FFT.
#[inline(always)]
pub fn ratio(d: f32, e: f32) -> f32 {
    let q = d / e;
    if q.is_finite() {
        q
    } else {
        0.0
    }
}

/// Run `iterations` Richardson–Lucy iterations on `image` with the scaled OTF `h`
/// (`Fft2` layout, `H / (nx·ny)`) of an image of `shape = (ny, nx)`.
///
/// Non-finite pixels are missing: they are set to 0 for the iterations and are NaN in the
/// result. With `clip_negative`, negative pixels are set to 0 first (aiapy). With
/// `iterations == 0` the (clipped, zero-filled, NaN-restored) image is returned.
pub fn richardson_lucy(
    image: ArrayView2<f32>,
    h: &[Complex<f32>],
    shape: (usize, usize),
    iterations: usize,
    clip_negative: bool,
    source: &Source,
) -> Result<Array2<f32>> {
    let (ny, nx) = image.dim();
    if (ny, nx) != shape {
        return Err(Error::Shape {
            file: source.clone(),
            reason: format!(
                "image is {ny}×{nx} (rows×columns) but the PSF/OTF is {}×{}",
                shape.0, shape.1
            ),
        });
    }
    if ny == 0 || nx == 0 {
        return Err(Error::Shape {
            file: source.clone(),
            reason: "empty image".into(),
        });
    }
    let prep = |v: f32| -> f32 {
        if !v.is_finite() || (clip_negative && v < 0.0) {
            0.0
        } else {
            v
        }
    };
    let d: Vec<f32> = match image.as_slice() {
        Some(s) => s.par_iter().map(|&v| prep(v)).collect(),
        None => image.iter().map(|&v| prep(v)).collect(),
    };
    let mut u = d.clone();
    if iterations > 0 {
        let mut fft = Fft2::<f32>::new(ny, nx)?;
        if h.len() != fft.spectrum_len() {
            return Err(Error::Shape {
                file: source.clone(),
                reason: format!(
                    "OTF has {} values, a {ny}×{nx} image needs {}",
                    h.len(),
                    fft.spectrum_len()
                ),
            });
        }
        let mut r = vec![0.0f32; ny * nx];
        let mut spec = fft.make_spectrum();
        for _ in 0..iterations {
            // e = u ⊛ psf, then r = d / e.
            {
                let us: &[f32] = &u;
                fft.forward_with(
                    |y, row| row.copy_from_slice(&us[y * nx..(y + 1) * nx]),
                    &mut spec,
                    |kx0, cols| {
                        let hh = &h[kx0 * ny..kx0 * ny + cols.len()];
                        for (c, hv) in cols.iter_mut().zip(hh) {
                            *c *= *hv;
                        }
                    },
                )?;
            }
            let ds: &[f32] = &d;
            fft.inverse_with(&mut spec, &mut r, |y, e, out| {
                let dr = &ds[y * nx..(y + 1) * nx];
                for ((o, &dv), &ev) in out.iter_mut().zip(dr).zip(e) {
                    *o = ratio(dv, ev);
                }
            })?;
            // u = u · (r ⋆ psf).
            {
                let rs: &[f32] = &r;
                fft.forward_with(
                    |y, row| row.copy_from_slice(&rs[y * nx..(y + 1) * nx]),
                    &mut spec,
                    |kx0, cols| {
                        let hh = &h[kx0 * ny..kx0 * ny + cols.len()];
                        for (c, hv) in cols.iter_mut().zip(hh) {
                            *c *= hv.conj();
                        }
                    },
                )?;
            }
            fft.inverse_with(&mut spec, &mut u, |_, c, out| {
                for (o, &cv) in out.iter_mut().zip(c) {
                    *o *= cv;
                }
            })?;
        }
    }
    // Restore missing pixels.
    let mut out = Array2::from_shape_vec((ny, nx), u).map_err(|e| Error::Shape {
        file: source.clone(),
        reason: e.to_string(),
    })?;
    ndarray::Zip::from(&mut out)
        .and(&image)
        .par_for_each(|o, &v| {
            if !v.is_finite() {
                *o = f32::NAN;
            }
        });
    Ok(out)
}
