//! Richardson–Lucy deconvolution on the CPU (`f32`, periodic boundary): the CPU body of
//! [`crate::deconvolve`] ([`deconvolve()`], [`richardson_lucy`], the OTF and its cache).
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

use std::sync::{Arc, OnceLock};

use crate::cpu::fft2::Fft2;
use crate::deconvolve::{
    check_psf, deconvolved_header, select_psf, DeconvolveOptions, OtfCache, OtfKey, PsfChoice,
};
use crate::error::{Error, Result, Source};
use crate::map::{AiaMap, MapView};
use crate::psf::{mesh_parameters, PsfOptions};

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
pub(crate) fn richardson_lucy_scaled(
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

/// The optical transfer function of a PSF: `rfft2` of the PSF with its peak moved from
/// `[ny/2, nx/2]` to `[0, 0]` (`ifftshift`), as `f32` complex values (computed in `f64`).
///
/// Stored in the [`Fft2`] spectrum layout and divided by `nx·ny` (so the unnormalised inverse
/// transforms of the iteration need no scaling); [`Otf::value`] gives the plain `rfft2` value.
#[derive(Debug, Clone)]
pub struct Otf {
    shape: (usize, usize),
    scaled: Vec<Complex<f32>>,
}

impl Otf {
    /// The OTF of a PSF (`[row, col]`, peak at `[ny/2, nx/2]`).
    ///
    /// Errors: [`Error::BadPsf`] when the PSF is empty, has a non-finite or negative value,
    /// or sums to zero.
    pub fn from_psf(psf: ArrayView2<f64>) -> Result<Otf> {
        Otf::from_psf_named(psf, &Source::memory())
    }

    fn from_psf_named(psf: ArrayView2<f64>, source: &Source) -> Result<Otf> {
        let (ny, nx) = psf.dim();
        check_psf(psf, source)?;
        let (hy, hx) = (ny / 2, nx / 2);
        let mut fft = Fft2::<f64>::new(ny, nx)?;
        let mut spec = fft.make_spectrum();
        fft.forward_with(
            |y, row| {
                let p = psf.row((y + hy) % ny);
                let (a, b) = row.split_at_mut(nx - hx);
                for (i, v) in a.iter_mut().enumerate() {
                    *v = p[i + hx];
                }
                for (i, v) in b.iter_mut().enumerate() {
                    *v = p[i];
                }
            },
            &mut spec,
            |_, _| {},
        )?;
        let scale = 1.0 / (ny as f64 * nx as f64);
        let scaled = spec
            .par_iter()
            .map(|c| Complex::new((c.re * scale) as f32, (c.im * scale) as f32))
            .collect();
        Ok(Otf {
            shape: (ny, nx),
            scaled,
        })
    }

    /// `(ny, nx)`: rows and columns of the PSF / image.
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }

    /// numpy's `rfft2(ifftshift(psf))[ky, kx]` (`kx ≤ nx/2`), dimensionless, rounded to `f32`.
    pub fn value(&self, ky: usize, kx: usize) -> Option<Complex<f64>> {
        let (ny, nx) = self.shape;
        if ky >= ny || kx > nx / 2 {
            return None;
        }
        let c = self.scaled[kx * ny + ky];
        let n = ny as f64 * nx as f64;
        Some(Complex::new(c.re as f64 * n, c.im as f64 * n))
    }
}

/// Richardson–Lucy deconvolution of `image` (`[row, col]`, DN) with `otf`; see the module
/// docs. Returns the deconvolved image (same shape, NaN where the input was not finite).
///
/// Errors: [`Error::Shape`] when the image shape differs from the OTF's.
pub fn richardson_lucy(
    image: ArrayView2<f32>,
    otf: &Otf,
    iterations: usize,
    clip_negative: bool,
) -> Result<Array2<f32>> {
    richardson_lucy_scaled(
        image,
        &otf.scaled,
        otf.shape,
        iterations,
        clip_negative,
        &Source::memory(),
    )
}

fn cache() -> &'static OtfCache<Otf> {
    static CACHE: OnceLock<OtfCache<Otf>> = OnceLock::new();
    CACHE.get_or_init(OtfCache::default)
}

/// The OTF of the model PSF of `channel` (Å) on a `size = (ny, nx)` grid (both even;
/// `opts.size` is ignored), computed once per process for each (channel, size, orders,
/// preflight core) and shared. Concurrent callers of the same key wait for one computation;
/// different keys compute in parallel. A 4096² OTF takes 67 MB; see [`clear_otf_cache`].
///
/// Errors: as [`super::psf::psf`] ([`Error::NoPsfModel`], [`Error::InvalidOption`]).
pub fn model_otf(channel: u32, size: (usize, usize), opts: &PsfOptions) -> Result<Arc<Otf>> {
    model_otf_named(channel, size, opts, &Source::memory())
}

fn model_otf_named(
    channel: u32,
    size: (usize, usize),
    opts: &PsfOptions,
    source: &Source,
) -> Result<Arc<Otf>> {
    if mesh_parameters(channel).is_none() {
        return Err(Error::NoPsfModel {
            file: source.clone(),
            channel: channel.to_string(),
        });
    }
    cache().model(OtfKey::new(channel, size, opts), || {
        let p = super::psf::psf_grid(channel, opts, size, source)?;
        Otf::from_psf_named(p.view(), source)
    })
}

/// Drop every cached OTF (the model OTFs of [`model_otf`] and the last array PSF's OTF of
/// [`deconvolve()`]); memory is freed once no caller holds them.
pub fn clear_otf_cache() {
    drop(cache().take());
}

/// Deconvolve `map` (see [`crate::deconvolve`]) on the CPU. The output map has the same shape,
/// source and header, plus the record of the deconvolution ([`deconvolved_header`]):
/// `HISTORY aiaprep <version> deconvolve: Richardson-Lucy, N iterations, PSF <model channel
/// 171 orders -100..100 | file NAME>, clip_negative=true`, `DECONV = T`, `DECONVIT = N`,
/// `DECONPSF = '<short label>'` (`'AIA 171 model'`, with `preflight` and/or `orders …` when
/// not the defaults, or the array's label). `LVL_NUM` is unchanged.
///
/// Errors (naming `map.source`): [`Error::NoPsfModel`] for a channel without a model,
/// [`Error::MissingKeyword`]/[`Error::BadKeyword`] for `WAVELNTH` (model PSF only),
/// [`Error::InvalidOption`] for odd image sizes with the model PSF, [`Error::Shape`] when an
/// array PSF's shape differs from the image's, [`Error::BadPsf`] for an unusable array PSF.
///
/// ```
/// use aiaprep::cpu::deconvolve;
/// use aiaprep::deconvolve::DeconvolveOptions;
/// // Deconvolve on the level-1 grid (before register), with the channel's model PSF.
/// let l1 = aiaprep::synth::level1(&aiaprep::synth::SynthOptions { size: 128, ..Default::default() });
/// let d = deconvolve(&l1, &DeconvolveOptions { iterations: 5, ..Default::default() })?;
/// assert_eq!(d.header.get_f64("DECONVIT"), Some(5.0));
/// let l15 = aiaprep::cpu::register(&d, &Default::default())?;
/// # let _ = l15;
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn deconvolve<'a>(map: impl Into<MapView<'a>>, opts: &DeconvolveOptions) -> Result<AiaMap> {
    let map = map.into();
    let sel = select_psf(map, opts)?;
    let otf = match &sel.choice {
        PsfChoice::Model { channel, options } => {
            model_otf_named(*channel, map.data.dim(), options, map.source)?
        }
        PsfChoice::Array { psf, .. } => {
            cache().array(psf, || Otf::from_psf_named(psf.view(), map.source))?
        }
    };
    let data = richardson_lucy_scaled(
        map.data.view(),
        &otf.scaled,
        otf.shape,
        opts.iterations,
        opts.clip_negative,
        map.source,
    )?;
    let header = deconvolved_header(map, opts, &sel);
    Ok(AiaMap::new(data, header, map.source.clone()))
}
