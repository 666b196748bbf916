//! PSF deconvolution of an AIA image by Richardson–Lucy iterations (aiapy `deconvolve`,
//! semantics.md §3), on the level-1 CCD grid (before register).
//!
//! ```text
//! d  = image;  d[d < 0] = 0 (clip_negative);  missing (non-finite) pixels → 0
//! H  = rfft2(ifftshift(psf))           // PSF peak moved to [0, 0]
//! u0 = d                               // initial estimate = the (clipped) image
//! repeat iterations times:
//!     e = irfft2(rfft2(u) · H)
//!     r = d / e                         // replaced by 0 where not finite (see below)
//!     u = u · irfft2(rfft2(r) · conj H)
//! result = u, NaN where the input was missing
//! ```
//!
//! Deliberate differences from aiapy 0.10.2:
//! * **Precision**: `f32` data and transforms (the OTF is computed in `f64`, then rounded);
//!   aiapy works in `f64`. The difference is ~1e-6 relative.
//! * **Missing pixels** (NaN/±inf) are set to 0 for the iterations and restored as NaN
//!   afterwards (aiapy turns the whole image into NaN).
//! * **Division guard**: `r = d / e` is used wherever that quotient is finite (so results are
//!   unchanged wherever aiapy's are finite); where it is not (`e = 0`, `0/0`, or `e` so small
//!   that the `f32` quotient overflows) `r = 0` instead of aiapy's inf/NaN, which would spread
//!   to the whole image through the next FFT.
//! * **`iterations = 0`** returns the clipped image (as aiapy), with missing pixels NaN.
//! * **Odd sizes** are supported: the PSF peak at `[ny/2, nx/2]` (integer division) is moved to
//!   `[0, 0]` (`ifftshift`; for even sizes identical to aiapy's `roll` by half the size).
//! * **Header**: the output records the deconvolution (HISTORY, `DECONV`, `DECONVIT`,
//!   `DECONPSF`); aiapy leaves the metadata unchanged. `LVL_NUM` is not changed.
//! * The PSF is used as given (not renormalised), like aiapy; the model PSF sums to 1.
//! * The model OTF is computed once per (channel, shape, orders, core) per process and cached
//!   ([`model_otf`]); aiapy recomputes the PSF on every call. The OTF of the most recent
//!   array PSF is kept too (same `Arc` ⇒ no recomputation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use rustfft::num_complex::Complex;

use crate::cpu;
use crate::cpu::fft2::Fft2;
use crate::error::{Error, Result, Source};
use crate::header::{Header, Value};
use crate::map::AiaMap;
use crate::psf::{self, PsfOptions};

/// Where the PSF comes from.
#[derive(Debug, Clone)]
pub enum PsfSource {
    /// The instrument model ([`crate::psf`]) of the map's channel (`WAVELNTH`), on the map's
    /// grid (`PsfOptions::size` is ignored: the model is evaluated at the image shape, which
    /// must be even in both axes).
    Model(PsfOptions),
    /// A user-supplied PSF of the image's shape, peak at `[ny/2, nx/2]` (0-based), non-negative
    /// and finite; used as given (not renormalised).
    Array {
        /// The PSF, `[row, col]`.
        psf: Arc<Array2<f64>>,
        /// A short description recorded in the header (e.g. the file name).
        label: String,
    },
}

/// Options of [`deconvolve`].
#[derive(Debug, Clone)]
pub struct DeconvolveOptions {
    /// Number of Richardson–Lucy iterations. Default 25 (aiapy).
    pub iterations: usize,
    /// Set negative pixels to 0 before deconvolving. Default true (aiapy).
    pub clip_negative: bool,
    /// The PSF. Default: the model with default options.
    pub psf: PsfSource,
}

impl Default for DeconvolveOptions {
    fn default() -> DeconvolveOptions {
        DeconvolveOptions {
            iterations: 25,
            clip_negative: true,
            psf: PsfSource::Model(PsfOptions::default()),
        }
    }
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

/// Check that a PSF can be used: not empty, every value finite and ≥ 0, positive sum.
/// Shared by the CPU and GPU engines.
///
/// Errors: [`Error::BadPsf`] naming `source` and the first offending value's index.
pub fn check_psf(psf: ArrayView2<f64>, source: &Source) -> Result<()> {
    let (ny, nx) = psf.dim();
    let bad = |reason: String| Error::BadPsf {
        file: source.clone(),
        reason,
    };
    if ny == 0 || nx == 0 {
        return Err(bad("empty PSF".into()));
    }
    let mut sum = 0.0;
    for (idx, &v) in psf.indexed_iter() {
        if !v.is_finite() {
            return Err(bad(format!(
                "non-finite value {v} at [{}, {}]",
                idx.0, idx.1
            )));
        }
        if v < 0.0 {
            return Err(bad(format!(
                "negative value {v:e} at [{}, {}]",
                idx.0, idx.1
            )));
        }
        sum += v;
    }
    if sum <= 0.0 || !sum.is_finite() {
        return Err(bad(format!("PSF sums to {sum}")));
    }
    Ok(())
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
    cpu::deconvolve::richardson_lucy(
        image,
        &otf.scaled,
        otf.shape,
        iterations,
        clip_negative,
        &Source::memory(),
    )
}

/// Key of a model OTF cache (CPU here, per device in the GPU engine): channel (Å), image
/// shape `(ny, nx)`, diffraction orders and core.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OtfKey {
    pub(crate) channel: u32,
    pub(crate) shape: (usize, usize),
    pub(crate) orders: Vec<i32>,
    pub(crate) preflight_core: bool,
}

type Slot = Arc<Mutex<Option<Arc<Otf>>>>;

fn cache() -> &'static Mutex<HashMap<OtfKey, Slot>> {
    static CACHE: OnceLock<Mutex<HashMap<OtfKey, Slot>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The OTF of the model PSF of `channel` (Å) on a `size = (ny, nx)` grid (both even;
/// `opts.size` is ignored), computed once per process for each (channel, size, orders,
/// preflight core) and shared. Concurrent callers of the same key wait for one computation;
/// different keys compute in parallel. A 4096² OTF takes 67 MB; see [`clear_otf_cache`].
///
/// Errors: as [`psf::psf`] ([`Error::NoPsfModel`], [`Error::InvalidOption`]).
pub fn model_otf(channel: u32, size: (usize, usize), opts: &PsfOptions) -> Result<Arc<Otf>> {
    model_otf_named(channel, size, opts, &Source::memory())
}

fn model_otf_named(
    channel: u32,
    size: (usize, usize),
    opts: &PsfOptions,
    source: &Source,
) -> Result<Arc<Otf>> {
    if psf::mesh_parameters(channel).is_none() {
        return Err(Error::NoPsfModel {
            file: source.clone(),
            channel: channel.to_string(),
        });
    }
    let key = OtfKey {
        channel,
        shape: size,
        orders: opts.orders.clone(),
        preflight_core: opts.preflight_core,
    };
    let slot = {
        let mut map = cache().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    };
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(otf) = guard.as_ref() {
        return Ok(otf.clone());
    }
    let p = psf::psf_grid(channel, opts, size, source)?;
    let otf = Arc::new(Otf::from_psf_named(p.view(), source)?);
    *guard = Some(otf.clone());
    Ok(otf)
}

/// Drop every cached OTF (the model OTFs of [`model_otf`] and the last array PSF's OTF of
/// [`deconvolve`]); memory is freed once no caller holds them.
pub fn clear_otf_cache() {
    cache().lock().unwrap_or_else(|e| e.into_inner()).clear();
    if let Some(last) = LAST_ARRAY.get() {
        *last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

type LastArray = Mutex<Option<(Arc<Array2<f64>>, Arc<Otf>)>>;
static LAST_ARRAY: OnceLock<LastArray> = OnceLock::new();

/// The OTF of a user PSF, remembering the most recent one: a batch that passes the same
/// `Arc` to every [`deconvolve`] call transforms it once. The cache holds a clone of the
/// `Arc`, so the array cannot change (or its address be reused) while it is cached.
fn array_otf(psf: &Arc<Array2<f64>>, source: &Source) -> Result<Arc<Otf>> {
    let last = LAST_ARRAY.get_or_init(|| Mutex::new(None));
    if let Some((p, otf)) = last.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if Arc::ptr_eq(p, psf) {
            return Ok(otf.clone());
        }
    }
    let otf = Arc::new(Otf::from_psf_named(psf.view(), source)?);
    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some((psf.clone(), otf.clone()));
    Ok(otf)
}

/// Truncate to a FITS string value (printable ASCII, ≤ 68 characters).
fn fits_str(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(68)
        .collect()
}

/// Which PSF a deconvolution of a given map uses (see [`select_psf`]).
#[derive(Debug, Clone)]
pub enum PsfChoice {
    /// The instrument model of `channel` (Å) with these options, on the map's grid.
    Model {
        /// The map's channel (`WAVELNTH`, Å), one with a model.
        channel: u32,
        /// Orders and core (the size is the map's shape).
        options: PsfOptions,
    },
    /// A user PSF of the map's shape.
    Array {
        /// The PSF, `[row, col]`, peak at `[ny/2, nx/2]`.
        psf: Arc<Array2<f64>>,
        /// Its description.
        label: String,
    },
}

/// The PSF of a deconvolution and how the header describes it.
#[derive(Debug, Clone)]
pub struct PsfSelection {
    /// The PSF.
    pub choice: PsfChoice,
    /// For the HISTORY card: `model channel 171 orders -100..100[, preflight core]` or
    /// `file LABEL`.
    pub long: String,
    /// For `DECONPSF`: `AIA 171 model[ preflight][ orders …]` or the array's label.
    pub short: String,
}

/// Choose the PSF for deconvolving `map` with `opts` and check what can be checked
/// without computing it (shared by the CPU and GPU engines).
///
/// Errors (naming `map.source`): [`Error::MissingKeyword`]/[`Error::BadKeyword`] for
/// `WAVELNTH` and [`Error::NoPsfModel`] for a channel without a model (model PSF only);
/// [`Error::Shape`] when an array PSF's shape differs from the image's. The model grid's
/// even-size rule and the array's values are checked when the OTF is made
/// ([`psf::psf_grid`], [`check_psf`]).
pub fn select_psf(map: &AiaMap, opts: &DeconvolveOptions) -> Result<PsfSelection> {
    let shape = map.data.dim();
    match &opts.psf {
        PsfSource::Model(po) => {
            let ch = map.wavelength()?;
            if psf::mesh_parameters(ch).is_none() {
                return Err(Error::NoPsfModel {
                    file: map.source.clone(),
                    channel: ch.to_string(),
                });
            }
            let pre = if po.preflight_core {
                ", preflight core"
            } else {
                ""
            };
            let long = format!("model channel {ch} orders {}{pre}", po.orders_label());
            let mut short = format!("AIA {ch} model");
            if po.preflight_core {
                short.push_str(" preflight");
            }
            if !po.has_default_orders() {
                short.push_str(&format!(" orders {}", po.orders_label()));
            }
            Ok(PsfSelection {
                choice: PsfChoice::Model {
                    channel: ch,
                    options: po.clone(),
                },
                long,
                short,
            })
        }
        PsfSource::Array { psf, label } => {
            if psf.dim() != shape {
                return Err(Error::Shape {
                    file: map.source.clone(),
                    reason: format!(
                        "PSF {label} is {}×{} but the image is {}×{} (rows×columns)",
                        psf.dim().0,
                        psf.dim().1,
                        shape.0,
                        shape.1
                    ),
                });
            }
            Ok(PsfSelection {
                choice: PsfChoice::Array {
                    psf: psf.clone(),
                    label: label.clone(),
                },
                long: format!("file {label}"),
                short: label.clone(),
            })
        }
    }
}

/// The header of a deconvolved map: `map`'s header plus
/// `HISTORY aiaprep <version> deconvolve: Richardson-Lucy, N iterations, PSF <long>,
/// clip_negative=<bool>`, `DECONV = T`, `DECONVIT = N`, `DECONPSF = '<short>'` (FITS
/// string, ≤ 68 printable ASCII characters). `LVL_NUM` is unchanged.
pub fn deconvolved_header(map: &AiaMap, opts: &DeconvolveOptions, psf: &PsfSelection) -> Header {
    let mut header = map.header.clone();
    header.push_history(&format!(
        "aiaprep {} deconvolve: Richardson-Lucy, {} iterations, PSF {}, clip_negative={}",
        crate::VERSION,
        opts.iterations,
        psf.long,
        opts.clip_negative
    ));
    header.set(
        "DECONV",
        Value::Bool(true),
        Some("Richardson-Lucy PSF deconvolution applied"),
    );
    header.set(
        "DECONVIT",
        Value::Int(opts.iterations as i64),
        Some("Richardson-Lucy iterations"),
    );
    header.set(
        "DECONPSF",
        Value::Str(fits_str(&psf.short)),
        Some("PSF used for deconvolution"),
    );
    header
}

/// Deconvolve `map` (see the module docs) on the CPU. The output map has the same shape,
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
/// use aiaprep::deconvolve::{deconvolve, DeconvolveOptions};
/// // Deconvolve on the level-1 grid (before register), with the channel's model PSF.
/// let l1 = aiaprep::synth::level1(&aiaprep::synth::SynthOptions { size: 128, ..Default::default() });
/// let d = deconvolve(&l1, &DeconvolveOptions { iterations: 5, ..Default::default() })?;
/// assert_eq!(d.header.get_f64("DECONVIT"), Some(5.0));
/// let l15 = aiaprep::register::register(&d, &Default::default())?;
/// # let _ = l15;
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn deconvolve(map: &AiaMap, opts: &DeconvolveOptions) -> Result<AiaMap> {
    let sel = select_psf(map, opts)?;
    let otf = match &sel.choice {
        PsfChoice::Model { channel, options } => {
            model_otf_named(*channel, map.data.dim(), options, &map.source)?
        }
        PsfChoice::Array { psf, .. } => array_otf(psf, &map.source)?,
    };
    let data = cpu::deconvolve::richardson_lucy(
        map.data.view(),
        &otf.scaled,
        otf.shape,
        opts.iterations,
        opts.clip_negative,
        &map.source,
    )?;
    let header = deconvolved_header(map, opts, &sel);
    Ok(AiaMap::new(data, header, map.source.clone()))
}
