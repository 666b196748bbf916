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
//! This module holds what both backends share: the options, the PSF choice and its checks
//! ([`select_psf`], [`check_psf`]), the output header ([`deconvolved_header`]) and the
//! [`OtfCache`]; the CPU body is [`crate::cpu::deconvolve()`].
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
//!   ([`crate::cpu::deconvolve::model_otf`]); aiapy recomputes the PSF on every call. The OTF of the most recent
//!   array PSF is kept too (same `Arc` ⇒ no recomputation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, Source};
use crate::header::{Header, Value};
use crate::map::MapView;
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

/// Options of a deconvolution ([`crate::cpu::deconvolve()`], the GPU engine).
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

/// Key of a model OTF in an [`OtfCache`]: channel (Å), image shape `(ny, nx)`, diffraction
/// orders and core.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtfKey {
    channel: u32,
    shape: (usize, usize),
    orders: Vec<i32>,
    preflight_core: bool,
}

impl OtfKey {
    /// The key of the model PSF of `channel` (Å) with `opts` (orders and core; `opts.size`
    /// is ignored) on a `shape = (ny, nx)` grid.
    pub fn new(channel: u32, shape: (usize, usize), opts: &PsfOptions) -> OtfKey {
        OtfKey {
            channel,
            shape,
            orders: opts.orders.clone(),
            preflight_core: opts.preflight_core,
        }
    }
}

type Slot<T> = Arc<Mutex<Option<Arc<T>>>>;
type LastArray<T> = Option<(Arc<Array2<f64>>, Arc<T>)>;

/// The one OTF cache, generic over a backend's OTF type (`T`: host spectra on the CPU,
/// device buffers on the GPU): model OTFs per [`OtfKey`] for as long as the cache lives, and
/// the OTF of the most recent array PSF (by `Arc` identity: a batch passing the same `Arc`
/// to every call transforms it once; the cache holds a clone of the `Arc`, so the array
/// cannot change or its address be reused while cached).
///
/// Concurrent callers of one model key wait for one computation; other keys compute in
/// parallel. A 4096² OTF takes 67 MB.
pub struct OtfCache<T> {
    models: Mutex<HashMap<OtfKey, Slot<T>>>,
    last_array: Mutex<LastArray<T>>,
}

/// What [`OtfCache::take`] removed: dropping it frees the OTFs (once no caller holds them).
pub struct OtfCacheEntries<T> {
    _models: HashMap<OtfKey, Slot<T>>,
    _last_array: LastArray<T>,
}

impl<T> Default for OtfCache<T> {
    fn default() -> OtfCache<T> {
        OtfCache {
            models: Mutex::new(HashMap::new()),
            last_array: Mutex::new(None),
        }
    }
}

impl<T> std::fmt::Debug for OtfCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = lock(&self.models).len();
        write!(f, "OtfCache({n} model OTFs)")
    }
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> OtfCache<T> {
    /// The model OTF of `key`, made by `make` the first time (errors are not cached).
    pub fn model(&self, key: OtfKey, make: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        let slot = lock(&self.models).entry(key).or_default().clone();
        let mut entry = lock(&slot);
        if let Some(otf) = entry.as_ref() {
            return Ok(otf.clone());
        }
        let otf = Arc::new(make()?);
        *entry = Some(otf.clone());
        Ok(otf)
    }

    /// The OTF of the array PSF `psf`, made by `make` unless `psf` is the `Arc` of the
    /// previous call.
    pub fn array(
        &self,
        psf: &Arc<Array2<f64>>,
        make: impl FnOnce() -> Result<T>,
    ) -> Result<Arc<T>> {
        if let Some((p, otf)) = lock(&self.last_array).as_ref() {
            if Arc::ptr_eq(p, psf) {
                return Ok(otf.clone());
            }
        }
        let otf = Arc::new(make()?);
        *lock(&self.last_array) = Some((psf.clone(), otf.clone()));
        Ok(otf)
    }

    /// Empties the cache and hands back what it held (drop it to free, or forget it when
    /// the OTFs must not be freed here, e.g. device memory without its context).
    pub fn take(&self) -> OtfCacheEntries<T> {
        OtfCacheEntries {
            _models: std::mem::take(&mut *lock(&self.models)),
            _last_array: lock(&self.last_array).take(),
        }
    }
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
/// ([`crate::cpu::psf::psf_grid`], [`check_psf`]).
pub fn select_psf<'a>(
    map: impl Into<MapView<'a>>,
    opts: &DeconvolveOptions,
) -> Result<PsfSelection> {
    let map = map.into();
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
pub fn deconvolved_header<'a>(
    map: impl Into<MapView<'a>>,
    opts: &DeconvolveOptions,
    psf: &PsfSelection,
) -> Header {
    let map = map.into();
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
