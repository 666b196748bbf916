//! [`GpuEngine`]: the CUDA implementation of [`crate::pipeline::Engine`], with results that
//! match the CPU engine's (same checks, same sunpy/aiapy rules, same header records).
//!
//! # What is shared with the CPU path
//! * **register**: [`crate::register::plan`] (geometry, full-disk check, target scale,
//!   transform, option checks) and [`crate::register::level15_header`];
//!   [`crate::cpu::resample::Rules`] (the `missing` value — `Missing::Min` is the
//!   NaN-ignoring minimum of the input —, whether NaN pixels are filled with the
//!   nanmedian and whether the padding counts in it, the clip range) and
//!   [`crate::cpu::resample::apply_deferred_clip`]. The GPU does the rest with sunpy's
//!   rules ([`super::register`]): padding by sunpy's `(px, py)` with `missing` (NaN
//!   padding is missing data, as in sunpy), NaN → nanmedian of the padded image (computed
//!   on the device), k × k dilated NaN mask (k = 1 nearest/linear, 5 spline/keys),
//!   spline prefilter, resample, clip, NaN rule.
//! * **deconvolve**: [`crate::deconvolve::select_psf`] (WAVELNTH, model availability,
//!   array shape), [`crate::deconvolve::check_psf`] and
//!   [`crate::deconvolve::deconvolved_header`]; Richardson–Lucy runs on the device with the
//!   CPU path's rules (non-finite pixels missing, negatives clipped, ratio `d / e` where
//!   finite else 0: [`DeconvolveParams::floor`] = 0).
//!
//! # PSF and OTF
//! The model PSF is computed **on the CPU** with [`crate::psf::psf_grid`] — the very PSF
//! the CPU engine uses, for any even grid (also rectangular), ≈ 0.35 s for 4096² on two
//! cores, once — and its OTF is made on the device (f64 cuFFT, rounded to f32) and cached
//! there per (channel, shape, orders, core) for the engine's lifetime (67 MB per 4096²
//! entry; [`GpuEngine::clear_otf_cache`]). An array PSF's OTF is cached for the most
//! recent `Arc` (a batch passing the same `Arc` transforms it once), as on the CPU.
//!
//! # Device and threads
//! [`GpuEngine::from_env`] opens the device `AIAPREP_GPU_INDEX` if set, else the
//! node-local rank's device ([`crate::batch::local_device`]; 0 when `CUDA_VISIBLE_DEVICES`
//! narrows the devices). The engine is `Send + Sync` and has a few **lanes**
//! ([`crate::lanes::LanePool`]), each a handle on the device with its own CUDA stream and
//! cuFFT plans ([`GpuDevice::new_lane`]); every call borrows one lane for its GPU work, so
//! concurrent callers (the batch compute stage runs [`Engine::concurrency`] of them)
//! overlap one image's transfers with another's kernels, and device memory stays bounded
//! by one image's working set per lane. A caller finding every lane taken waits. The
//! number of lanes is `AIAPREP_GPU_STREAMS` (1–16), else [`DEFAULT_STREAMS`]. Host work
//! (PSF, headers, clipping) runs outside the lanes. [`shared`] hands out one engine per
//! device for the whole process while any caller holds it.
//!
//! # Precision
//! Pixels f32 and coordinates f64 on both paths; the GPU interpolates with f64 weights and
//! evaluates the spline prefilter as a truncated impulse response, the CPU uses f32
//! weights and the recursive filter. Register: identical NaN masks and headers, values
//! within 1e-3 DN, or a few f32 ulps for bright pixels (> 2000 DN) where the CPU's own
//! rounding is larger — the GPU kernels stay within 5e-4 DN of the exact interpolation
//! (tests/kernels_emulated.rs runs them on the host). Deconvolution: cuFFT instead of
//! rustfft, relative L2 difference ≤ 1e-5 after 25 iterations (tests/gpu_parity.rs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};

use crate::cpu::resample::{apply_deferred_clip, ClipRule, Rules};
use crate::cpu::stats::Summary;
use crate::deconvolve::{self, DeconvolveOptions, PsfChoice, PsfSelection};
use crate::error::{Error, Result, Source};
use crate::geometry::RegisterTransform;
use crate::lanes::LanePool;
use crate::map::AiaMap;
use crate::pipeline::Engine;
use crate::psf::{self, PsfOptions};
use crate::register::{self, Interpolation, Missing, RegisterOptions};

use super::buffer;
use super::convert::device_stats_f32;
use super::deconvolve::{
    deconvolve_device, deconvolve_with_otf, otf_from_psf, DeconvolveParams, Otf,
};
use super::device::{device_count, guard, unavailable, GpuDevice};
use super::register::{self as gpu_register, Prefilter, RegisterParams};
use super::DeviceImage;

/// The environment variable that picks the device (a visible CUDA device index, 0-based).
pub const GPU_INDEX_VAR: &str = "AIAPREP_GPU_INDEX";

/// The environment variable that sets the number of lanes (CUDA streams) of an engine.
pub const GPU_STREAMS_VAR: &str = "AIAPREP_GPU_STREAMS";

/// Lanes of an engine when `AIAPREP_GPU_STREAMS` is not set: two, so that one image's
/// upload/download overlaps the other's kernels (a third adds little: the copy engines
/// and the kernels are then both busy) while device memory stays at two working sets
/// (≈ 0.6 GB each for a deconvolved 4096² image).
pub const DEFAULT_STREAMS: usize = 2;

/// The most lanes an engine takes.
pub const MAX_STREAMS: usize = 16;

/// The number of lanes from `AIAPREP_GPU_STREAMS` (read with `get`), else
/// [`DEFAULT_STREAMS`].
///
/// Errors: [`Error::BackendUnavailable`] for a value that is not an integer in
/// 1..=[`MAX_STREAMS`].
pub fn streams_from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<usize> {
    match get(GPU_STREAMS_VAR) {
        None => Ok(DEFAULT_STREAMS),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_STREAMS).contains(&n) => Ok(n),
            _ => Err(unavailable(format!(
                "{GPU_STREAMS_VAR}='{v}' is not a number of CUDA streams (1 to {MAX_STREAMS})"
            ))),
        },
    }
}

/// The device index to open: `AIAPREP_GPU_INDEX` when set (it must be a non-negative
/// integer), else [`crate::batch::local_device`] over `count()` devices (asked only then).
/// `get` reads environment variables.
///
/// Errors: [`Error::BackendUnavailable`] for an unparsable `AIAPREP_GPU_INDEX`, or the
/// error of `count`.
pub fn device_index(
    get: &dyn Fn(&str) -> Option<String>,
    count: &dyn Fn() -> Result<usize>,
) -> Result<usize> {
    if let Some(v) = get(GPU_INDEX_VAR) {
        return v.trim().parse::<usize>().map_err(|_| {
            unavailable(format!(
                "{GPU_INDEX_VAR}='{v}' is not a device index (0, 1, ...)"
            ))
        });
    }
    let n = count()?;
    Ok(crate::batch::local_device(get, n))
}

use crate::deconvolve::OtfKey;

type Slot = Arc<Mutex<Option<Arc<Otf>>>>;
type LastArray = Option<(Arc<Array2<f64>>, Arc<Otf>)>;

/// Locks a mutex, recovering the data when another thread panicked while holding it (the
/// protected state — caches, the device handle — stays consistent between operations).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The CUDA engine (module docs).
pub struct GpuEngine {
    /// One device handle (stream) per concurrent caller.
    lanes: LanePool<GpuDevice>,
    otfs: Mutex<HashMap<OtfKey, Slot>>,
    last_array: Mutex<LastArray>,
}

impl std::fmt::Debug for GpuEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl GpuEngine {
    /// An engine on visible device `ordinal` (0-based, after `CUDA_VISIBLE_DEVICES`) with
    /// `AIAPREP_GPU_STREAMS` lanes (else [`DEFAULT_STREAMS`]).
    ///
    /// Errors: those of [`GpuDevice::open`] ([`Error::BackendUnavailable`] without a
    /// usable driver, NVRTC or device; [`Error::Gpu`] when the context cannot be made),
    /// of [`streams_from_env`] and of [`GpuEngine::with_lanes`].
    pub fn open(ordinal: usize) -> Result<GpuEngine> {
        let get = |k: &str| std::env::var(k).ok();
        let lanes = streams_from_env(&get)?;
        GpuEngine::with_lanes(GpuDevice::open(ordinal)?, lanes)
    }

    /// An engine on an already open device with one lane (its stream).
    pub fn new(dev: GpuDevice) -> GpuEngine {
        GpuEngine::from_pool(LanePool::new(dev, Vec::new()))
    }

    /// An engine on an already open device with `lanes` lanes (clamped to
    /// 1..=[`MAX_STREAMS`]): `dev` and `lanes - 1` more streams on its context.
    ///
    /// Errors: [`Error::Gpu`] when a stream cannot be created.
    pub fn with_lanes(dev: GpuDevice, lanes: usize) -> Result<GpuEngine> {
        let n = lanes.clamp(1, MAX_STREAMS);
        let rest = (1..n).map(|_| dev.new_lane()).collect::<Result<Vec<_>>>()?;
        Ok(GpuEngine::from_pool(LanePool::new(dev, rest)))
    }

    fn from_pool(lanes: LanePool<GpuDevice>) -> GpuEngine {
        GpuEngine {
            lanes,
            otfs: Mutex::new(HashMap::new()),
            last_array: Mutex::new(None),
        }
    }

    /// An engine on the device chosen by [`device_index`] from the process environment.
    pub fn from_env() -> Result<GpuEngine> {
        let get = |k: &str| std::env::var(k).ok();
        GpuEngine::open(device_index(&get, &device_count)?)
    }

    /// The device (its first lane's handle).
    pub fn device(&self) -> &GpuDevice {
        self.lanes.first()
    }

    /// Number of lanes (CUDA streams).
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Drops every cached OTF (device memory is freed once no running call holds one).
    pub fn clear_otf_cache(&self) {
        // The frees are issued on the calling thread: make the context current there.
        let _ = self.device().context().bind_to_thread();
        lock(&self.otfs).clear();
        *lock(&self.last_array) = None;
    }

    /// Runs `f` on a free lane (waiting for one if all are lent), turning a panic below
    /// (cudarc) into an error.
    ///
    /// On success every operation used here has already waited for its lane (each ends
    /// with a download). On an error, work queued before it may still be running and may
    /// read a cached OTF that was made on another lane's stream: that OTF's memory is
    /// freed on *its* stream, not this one, when the last `Arc` goes, so the lane is
    /// drained before the caller can drop its `Arc`.
    fn with_device<T>(&self, what: &str, f: impl FnOnce(&GpuDevice) -> Result<T>) -> Result<T> {
        let lane = self.lanes.acquire();
        let r = guard(what, || f(&lane));
        if r.is_err() {
            let _ = guard(what, || lane.synchronize());
        }
        r
    }

    /// The OTF of `psf` made on a lane and complete before it is returned, so that any
    /// other lane (stream) may read it.
    fn make_otf(&self, psf: ArrayView2<f64>) -> Result<Otf> {
        self.with_device("GPU OTF", |dev| {
            let otf = otf_from_psf(dev, psf)?;
            dev.synchronize()?;
            Ok(otf)
        })
    }

    /// The device OTF of a selected PSF for an image of `shape = (ny, nx)` (cached).
    fn otf(&self, sel: &PsfSelection, shape: (usize, usize), source: &Source) -> Result<Arc<Otf>> {
        match &sel.choice {
            PsfChoice::Model { channel, options } => {
                self.model_otf(*channel, options, shape, source)
            }
            PsfChoice::Array { psf, .. } => {
                if let Some((p, otf)) = lock(&self.last_array).as_ref() {
                    if Arc::ptr_eq(p, psf) {
                        return Ok(otf.clone());
                    }
                }
                deconvolve::check_psf(psf.view(), source)?;
                let otf = Arc::new(self.make_otf(psf.view())?);
                *lock(&self.last_array) = Some((psf.clone(), otf.clone()));
                Ok(otf)
            }
        }
    }

    fn model_otf(
        &self,
        channel: u32,
        options: &PsfOptions,
        shape: (usize, usize),
        source: &Source,
    ) -> Result<Arc<Otf>> {
        let key = OtfKey {
            channel,
            shape,
            orders: options.orders.clone(),
            preflight_core: options.preflight_core,
        };
        let slot = lock(&self.otfs).entry(key).or_default().clone();
        // Callers of the same key wait for one computation; other keys go on.
        let mut entry = lock(&slot);
        if let Some(otf) = entry.as_ref() {
            return Ok(otf.clone());
        }
        let p = psf::psf_grid(channel, options, shape, source)?;
        let otf = Arc::new(self.make_otf(p.view())?);
        *entry = Some(otf.clone());
        Ok(otf)
    }
}

impl Drop for GpuEngine {
    /// Binds the context on the dropping thread first: cudarc frees device buffers (the
    /// cached OTFs) without making their context current.
    fn drop(&mut self) {
        let _ = self.device().context().bind_to_thread();
    }
}

impl Engine for GpuEngine {
    /// `cuda:ORDINAL (DEVICE NAME, sm_XY, NVRTC a.b, cuFFT c.d, N streams)`.
    fn name(&self) -> String {
        let dev = self.device();
        format!(
            "cuda:{} ({}, {}, NVRTC {}.{}, cuFFT {}, {} stream{})",
            dev.ordinal(),
            dev.name(),
            dev.arch(),
            dev.nvrtc().version.0,
            dev.nvrtc().version.1,
            dev.cufft().version_string(),
            self.lanes.len(),
            if self.lanes.len() == 1 { "" } else { "s" }
        )
    }

    /// The number of lanes: that many concurrent callers keep the device busy.
    fn concurrency(&self) -> usize {
        self.lanes.len()
    }

    /// Time the lanes were held (summed over lanes), with the number of lanes.
    fn device_busy(&self) -> Option<(Duration, usize)> {
        Some((self.lanes.busy(), self.lanes.len()))
    }

    /// As [`crate::deconvolve::deconvolve`], on the GPU (module docs).
    fn deconvolve(&self, map: &AiaMap, opts: &DeconvolveOptions) -> Result<AiaMap> {
        let sel = deconvolve::select_psf(map, opts)?;
        let otf = self
            .otf(&sel, map.data.dim(), &map.source)
            .map_err(|e| e.in_file(&map.source))?;
        let params = DeconvolveParams {
            iterations: opts.iterations,
            floor: 0.0,
            clip_negative: opts.clip_negative,
        };
        let data = self
            .with_device("GPU deconvolve", |dev| {
                deconvolve_with_otf(dev, map.data.view(), &otf, &params)
            })
            .map_err(|e| e.in_file(&map.source))?;
        let header = deconvolve::deconvolved_header(map, opts, &sel);
        Ok(AiaMap::new(data, header, map.source.clone()))
    }

    /// Deconvolution then register with the image kept on the device in between (one
    /// upload, one download); the same result as [`Engine::deconvolve`] then
    /// [`Engine::register`]. The deconvolve time ends when the device has finished it.
    fn deconvolve_register(
        &self,
        map: &AiaMap,
        d: &DeconvolveOptions,
        r: &RegisterOptions,
    ) -> Result<(AiaMap, Duration, Duration)> {
        let t0 = Instant::now();
        let sel = deconvolve::select_psf(map, d)?;
        // Deconvolution changes neither the shape nor the geometry keywords: the register
        // plan (and its checks) can be made first, so nothing runs on the GPU in vain.
        let plan = register::plan(map, r)?;
        let otf = self
            .otf(&sel, map.data.dim(), &map.source)
            .map_err(|e| e.in_file(&map.source))?;
        let params = DeconvolveParams {
            iterations: d.iterations,
            floor: 0.0,
            clip_negative: d.clip_negative,
        };
        let (res, t_dec, t1) = self
            .with_device("GPU deconvolve + register", |dev| {
                let img = DeviceImage::upload(dev, map.data.view())?;
                let img = deconvolve_device(dev, img, &otf, &params)?;
                dev.synchronize()?;
                let (t_dec, t1) = (t0.elapsed(), Instant::now());
                let res = resample_device(dev, img, &plan.transform, r.interpolation, r.missing)?;
                Ok((res, t_dec, t1))
            })
            .map_err(|e| e.in_file(&map.source))?;
        let deconvolved = AiaMap::new(
            Array2::zeros((0, 0)),
            deconvolve::deconvolved_header(map, d, &sel),
            map.source.clone(),
        );
        let header = register::level15_header(&deconvolved, &plan, r, res.missing);
        let out = AiaMap::new(res.data, header, map.source.clone());
        Ok((out, t_dec, t1.elapsed()))
    }

    /// As [`crate::register::register`], on the GPU (module docs).
    fn register(&self, map: &AiaMap, opts: &RegisterOptions) -> Result<AiaMap> {
        let plan = register::plan(map, opts)?;
        let r = self
            .with_device("GPU register", |dev| {
                resample(
                    dev,
                    map.data.view(),
                    &plan.transform,
                    opts.interpolation,
                    opts.missing,
                )
            })
            .map_err(|e| e.in_file(&map.source))?;
        let header = register::level15_header(map, &plan, opts, r.missing);
        Ok(AiaMap::new(r.data, header, map.source.clone()))
    }
}

/// The result of [`resample`].
#[derive(Debug, Clone)]
pub struct GpuResampled {
    /// The output image, `[row, col]`, shape `t.out_shape`; NaN = missing.
    pub data: Array2<f32>,
    /// The `missing` value used (DN; NaN for `Missing::Nan` or an all-missing input).
    pub missing: f64,
    /// The clipping range applied, `(lower, upper)` in DN.
    pub clip: Option<(f64, f64)>,
    /// Number of NaN (missing) input pixels.
    pub missing_in: usize,
}

/// The GPU counterpart of [`crate::cpu::resample::resample`]: the same output for the same
/// input, transform, interpolation and `missing` (module docs), computed on `dev` (upload,
/// statistics, register kernels, download).
///
/// Errors: [`Error::InvalidOption`] when the padded image does not fit the kernels' 32-bit
/// indexing; [`Error::Gpu`] for driver failures (e.g. out of device memory).
pub fn resample(
    dev: &GpuDevice,
    input: ArrayView2<f32>,
    t: &RegisterTransform,
    interpolation: Interpolation,
    missing: Missing,
) -> Result<GpuResampled> {
    let (ny, nx) = input.dim();
    if nx == 0 || ny == 0 {
        let (onx, ony) = t.out_shape;
        return Ok(GpuResampled {
            data: Array2::from_elem((ony, onx), f32::NAN),
            missing: f64::NAN,
            clip: None,
            missing_in: 0,
        });
    }
    let img = DeviceImage::upload(dev, input)?;
    resample_device(dev, img, t, interpolation, missing)
}

/// [`resample`] of an image already on the device (consumed; non-empty): statistics,
/// register kernels, download.
///
/// Errors: as [`resample`].
pub fn resample_device(
    dev: &GpuDevice,
    img: DeviceImage,
    t: &RegisterTransform,
    interpolation: Interpolation,
    missing: Missing,
) -> Result<GpuResampled> {
    let (nx, ny) = (img.nx, img.ny);
    let (onx, ony) = t.out_shape;
    let st = device_stats_f32(dev, &img.data, img.len())?;
    let nan = img.len().saturating_sub(st.count as usize);
    if st.count == 0 {
        // As the CPU path: nothing to interpolate, every output pixel is missing.
        return Ok(GpuResampled {
            data: Array2::from_elem((ony, onx), f32::NAN),
            missing: f64::NAN,
            clip: None,
            missing_in: nan,
        });
    }
    let summary = Summary {
        nan,
        min: st.min as f32,
        max: st.max as f32,
    };
    let rules = Rules::new(&summary, missing, t.pad, nx, ny);
    let p = RegisterParams {
        out_shape: t.out_shape,
        reference_pixel: t.reference,
        matrix: t.matrix,
        out_center: Some(t.out_center),
        interpolation: gpu_interpolation(interpolation),
        missing: rules.missing as f32,
        clip: match rules.clip {
            ClipRule::Known(lo, hi) => Some((lo, hi)),
            ClipRule::Deferred { .. } => None,
        },
        pad: (t.pad[0], t.pad[1]),
        // The device computes sunpy's nanmedian of the padded image, which is what
        // `rules.need_fill` / `fill_counts_padding` describe on the CPU.
        nan_fill: None,
        prefilter: Prefilter::Fir,
    };
    let out = gpu_register::register_device(dev, img, &p)?;
    // Every element is overwritten by the copy: a recycled buffer (in a batch) will do.
    let mut v = crate::cpu::buffers::take_f32(out.len());
    buffer::download(dev, &out.data, &mut v, "registered image")?;
    let mut data = buffer::to_array(v, out.nx, out.ny)?;
    let clip = match rules.clip {
        ClipRule::Known(lo, hi) => Some((lo as f64, hi as f64)),
        ClipRule::Deferred {
            missing,
            in_min,
            in_max,
        } => apply_deferred_clip(&mut data, missing, in_min, in_max),
    };
    Ok(GpuResampled {
        data,
        missing: rules.missing,
        clip,
        missing_in: nan,
    })
}

/// The kernel code of an interpolation.
pub fn gpu_interpolation(i: Interpolation) -> gpu_register::Interpolation {
    match i {
        Interpolation::Nearest => gpu_register::Interpolation::Nearest,
        Interpolation::Linear => gpu_register::Interpolation::Linear,
        Interpolation::Spline => gpu_register::Interpolation::Spline,
        Interpolation::Keys => gpu_register::Interpolation::Keys,
    }
}

/// Live engines per device ordinal, for [`shared`].
fn registry() -> &'static Mutex<HashMap<usize, Weak<GpuEngine>>> {
    static R: OnceLock<Mutex<HashMap<usize, Weak<GpuEngine>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The process-wide engine on the device chosen by [`device_index`]: an engine still held
/// by someone (e.g. the engines of an earlier [`crate::pipeline::select_engines`]) is
/// reused, so its context, compiled kernels, cuFFT plans and OTFs are not made twice;
/// otherwise a new one is opened.
///
/// Errors: those of [`device_index`] and [`GpuEngine::open`].
pub fn shared() -> Result<Arc<GpuEngine>> {
    let get = |k: &str| std::env::var(k).ok();
    let ordinal = device_index(&get, &device_count)?;
    let mut reg = lock(registry());
    if let Some(e) = reg.get(&ordinal).and_then(Weak::upgrade) {
        return Ok(e);
    }
    let e = Arc::new(GpuEngine::open(ordinal)?);
    reg.insert(ordinal, Arc::downgrade(&e));
    Ok(e)
}

/// Why [`shared`] failed, as one line for "falling back to the CPU" messages.
pub(crate) fn reason(e: &Error) -> String {
    match e {
        Error::BackendUnavailable { reason } => reason.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn device_index_from_the_environment() {
        let four = || Ok(4usize);
        let none = || -> Result<usize> { Err(unavailable("no driver".into())) };
        // explicit index wins, and the device count is not needed for it
        assert_eq!(
            device_index(&env(&[(GPU_INDEX_VAR, "2")]), &none).unwrap(),
            2
        );
        assert_eq!(
            device_index(
                &env(&[(GPU_INDEX_VAR, " 1 "), ("SLURM_LOCALID", "3")]),
                &four
            )
            .unwrap(),
            1
        );
        let e = device_index(&env(&[(GPU_INDEX_VAR, "x")]), &four).unwrap_err();
        assert!(matches!(e, Error::BackendUnavailable { .. }), "{e}");
        assert!(e.to_string().contains(GPU_INDEX_VAR));
        // node-local rank modulo the count, unless CUDA_VISIBLE_DEVICES narrows the set
        assert_eq!(
            device_index(&env(&[("SLURM_LOCALID", "6")]), &four).unwrap(),
            2
        );
        assert_eq!(
            device_index(
                &env(&[("SLURM_LOCALID", "3"), ("CUDA_VISIBLE_DEVICES", "3")]),
                &four
            )
            .unwrap(),
            0
        );
        assert_eq!(device_index(&env(&[]), &four).unwrap(), 0);
        // without a driver the count's error comes through (no panic)
        assert!(matches!(
            device_index(&env(&[]), &none),
            Err(Error::BackendUnavailable { .. })
        ));
    }

    #[test]
    fn streams_from_the_environment() {
        assert_eq!(streams_from_env(&env(&[])).unwrap(), DEFAULT_STREAMS);
        assert_eq!(
            streams_from_env(&env(&[(GPU_STREAMS_VAR, " 4")])).unwrap(),
            4
        );
        assert_eq!(
            streams_from_env(&env(&[(GPU_STREAMS_VAR, "16")])).unwrap(),
            16
        );
        for bad in ["0", "17", "two", "-1", ""] {
            let e = streams_from_env(&env(&[(GPU_STREAMS_VAR, bad)])).unwrap_err();
            assert!(matches!(e, Error::BackendUnavailable { .. }), "{bad}: {e}");
            assert!(e.to_string().contains(GPU_STREAMS_VAR), "{e}");
        }
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<GpuEngine>();
    }

    #[test]
    fn interpolation_codes_match() {
        for (i, code) in [
            (Interpolation::Nearest, 0u32),
            (Interpolation::Linear, 1),
            (Interpolation::Spline, 2),
            (Interpolation::Keys, 3),
        ] {
            assert_eq!(gpu_interpolation(i) as u32, code);
        }
    }
}
