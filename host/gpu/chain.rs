//! [`GpuEngine`]: the one GPU engine — the CUDA backend that `crate::engine` adapts to its
//! `Engine` interface (what `prep` and the C ABI run), and the code `examples/gpu_timing`
//! times.
//!
//! # One image on the device
//! [`GpuEngine::process`] keeps an image on the device from the upload to the download:
//! int16 (BLANK → NaN with BSCALE/BZERO, on the device) or f32 in → Richardson–Lucy with a
//! cached OTF → register → exposure normalisation → f32 out, or int16 out converted on the
//! device with its DATAMIN/DATAMAX/DATAMEAN computed there (bit for bit the CPU writer's
//! conversion and statistics) — every stage timed with CUDA events. The engine-interface
//! methods ([`GpuEngine::register`], [`GpuEngine::deconvolve`], ...; f32 maps in and out)
//! are this with f32 at both ends.
//!
//! # What is shared with the CPU path
//! * **register**: [`crate::register::plan`] (geometry, full-disk check, target scale,
//!   transform with sunpy's padding, option checks), [`crate::register::level15_header`],
//!   and [`crate::register::rules::Rules`] (the `missing` value — `Missing::Min` is the
//!   NaN-ignoring minimum of the input —, the NaN fill and whether the padding counts in
//!   it, the clip range, deferred when it depends on the output). The kernels evaluate
//!   coordinates exactly as [`crate::geometry::RowMap`] ([`super::register`]).
//! * **deconvolve**: [`crate::deconvolve::select_psf`] (WAVELNTH, model availability,
//!   array shape), [`crate::deconvolve::check_psf`], [`crate::deconvolve::deconvolved_header`]
//!   and the OTF cache key (`deconvolve::OtfKey`); Richardson–Lucy runs with the CPU
//!   path's rules (non-finite pixels missing, negatives clipped, ratio `d / e` where finite
//!   else 0).
//!
//! # PSF and OTF
//! The model PSF is synthesised **on the device** ([`super::psf`], f64) for square even
//! grids, and its OTF made there (f64 cuFFT, rounded to f32); for other grids the CPU
//! model ([`crate::cpu::psf::psf_grid`]) is used — the same PSF to 1e-6 of its peak
//! (tests/gpu_parity.rs). OTFs are cached per that key for the engine's lifetime (67 MB
//! per 4096² entry; [`GpuEngine::clear_otf_cache`]); an array PSF's OTF is cached for the
//! most recent `Arc` (a batch passing the same `Arc` transforms it once), as on the CPU.
//!
//! # Device and threads
//! [`GpuEngine::open`] opens a device ordinal with a number of lanes (the engine layer
//! chooses both: `crate::engine::EngineOptions`). The engine is `Send + Sync` and has a few **lanes**
//! ([`crate::lanes::LanePool`]), each a handle on the device with its own CUDA stream and
//! cuFFT plans ([`GpuDevice::new_lane`]); every call borrows one lane for its GPU work, so
//! concurrent callers (the batch compute stage runs [`GpuEngine::concurrency`] of them)
//! overlap one image's transfers with another's kernels, and device memory stays bounded
//! by one image's working set per lane. A caller finding every lane taken waits. The
//! number of lanes is 1–16 (`AIAPREP_GPU_STREAMS` for `prep`, else 2). An OTF is
//! made on a lane and complete (that lane synchronised) before any lane reads it; a lane
//! that fails is drained before its caller can drop anything it used. The engine layer
//! hands out one engine per device for the whole process while any caller holds it.
//!
//! # Precision
//! Pixels f32 and coordinates f64 on both paths; the GPU interpolates with f64 weights and
//! evaluates the spline prefilter as a truncated impulse response, the CPU uses f32
//! weights and the recursive filter. Register: identical NaN masks and headers, values
//! within 1e-3 DN, or a few f32 ulps for bright pixels (> 2000 DN) where the CPU's own
//! rounding is larger. Deconvolution: cuFFT instead of rustfft, relative L2 difference
//! ≤ 1e-5 after 25 iterations (tests/gpu_parity.rs). int16: identical, except ±1 where the
//! two float results straddle a rounding boundary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::CudaEvent;
use ndarray::{Array2, ArrayView2};

use crate::deconvolve::{self, DeconvolveOptions, OtfCache, OtfKey, PsfChoice, PsfSelection};
use crate::error::{Error, Result, Source};
use crate::geometry::RegisterTransform;
use crate::int16::{Int16Pixels, Int16Prep, PixelStats};
use crate::lanes::{LanePool, MAX_LANES};
use crate::map::{AiaMap, Geometry, MapView};
use crate::psf::{self, HostPsfFn, PsfOptions};
use crate::register::rules::Summary;
use crate::register::rules::{deferred_clip_range, ClipRule, Rules};
use crate::register::{self, Interpolation, Missing, RegisterOptions};

use super::buffer::{self, alloc};
use super::convert::{
    device_clamp, device_divide, device_estimate_error, device_f32_to_i16,
    device_f32_to_i16_scaled, device_i16_to_f32, device_stats_f32, device_stats_i16, I16Scaling,
    Stats,
};
use super::deconvolve::{
    deconvolve_device, otf_from_device_psf, otf_from_psf, DeconvolveParams, DeviceOtf,
};
use super::device::{event_elapsed_ms, gpu_err, guard, GpuDevice};
use super::fulldisk::FullDiskParams;
use super::psf::{psf_device, PsfParams};
use super::register::{register_device, Prefilter, RegisterParams};
use super::DeviceImage;

// ------------------------------------------------------------------ the job

/// Pixels handed to [`GpuEngine::process`], `[row, col]`.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// f32 in DN, NaN = missing.
    F32(ArrayView2<'a, f32>),
    /// int16 as stored in a level-1 file; `scaling` turns them into DN (BLANK → NaN) on
    /// the device.
    I16 {
        /// Stored values.
        data: ArrayView2<'a, i16>,
        /// BLANK, BSCALE, BZERO.
        scaling: I16Scaling,
    },
}

impl Input<'_> {
    /// `(rows, cols)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Input::F32(v) => v.dim(),
            Input::I16 { data, .. } => data.dim(),
        }
    }
}

/// The pixel type [`GpuEngine::process`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum OutputKind {
    /// f32 in DN, NaN = missing.
    #[default]
    F32,
    /// int16 as a FITS file stores them: round half away from zero, saturated to
    /// ±32767, missing → BLANK = −32768; with `scaling = Some((bscale, bzero))` the stored
    /// value is `(physical − bzero) / bscale` (as [`crate::fits::WriteOptions::scaling`]).
    I16 {
        /// `(BSCALE, BZERO)`, or `None` for (1, 0).
        scaling: Option<(f64, f64)>,
    },
}

/// The pixels [`GpuEngine::process`] produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// f32 in DN (or DN/s), NaN = missing.
    F32(Array2<f32>),
    /// int16 as stored, with the statistics of the values as written.
    I16 {
        /// Stored values, BLANK = −32768.
        data: Array2<i16>,
        /// DATAMIN, DATAMAX, DATAMEAN.
        stats: PixelStats,
    },
}

/// Deconvolution of a [`Job`].
#[derive(Debug, Clone, Copy)]
pub struct DeconvolveJob<'a> {
    /// The PSF ([`crate::deconvolve::select_psf`]).
    pub psf: &'a PsfSelection,
    /// Iterations and clipping.
    pub options: &'a DeconvolveOptions,
}

/// Register of a [`Job`].
#[derive(Debug, Clone, Copy)]
pub struct RegisterJob<'a> {
    /// The map from output to input pixels ([`crate::register::plan`]).
    pub transform: &'a RegisterTransform,
    /// Interpolation.
    pub interpolation: Interpolation,
    /// Value outside the input.
    pub missing: Missing,
}

/// What [`GpuEngine::process`] does to one image, in this order.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// Richardson–Lucy on the input grid.
    pub deconvolve: Option<DeconvolveJob<'a>>,
    /// Register to level 1.5.
    pub register: Option<RegisterJob<'a>>,
    /// Divide by this after register (the exposure time in seconds, times the degradation
    /// factor), as the pipeline's division.
    pub normalize: Option<f64>,
    /// The uncertainty of the registered counts (before the division, then divided like
    /// the data), computed on the device with this rule and returned as f32.
    pub uncertainty: Option<crate::uncertainty::ErrorRule>,
    /// The pixel type to return.
    pub output: OutputKind,
    /// The file the image came from (error messages).
    pub source: &'a Source,
}

/// What register did (for the level-1.5 header), when it ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterOutcome {
    /// The `missing` value used (DN; NaN for `Missing::Nan` or an all-missing input).
    pub missing: f64,
    /// The clipping range applied, `(lower, upper)` in DN.
    pub clip: Option<(f64, f64)>,
    /// Number of NaN (missing) input pixels.
    pub missing_in: usize,
}

/// Milliseconds per stage of one [`GpuEngine::process`] call, from CUDA events on the
/// lane's stream (0 for stages that did not run), plus the host time spent making an OTF
/// on first use (`otf_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeviceTimes {
    /// PSF and OTF made on first use (host wall time; 0 when cached).
    pub otf_ms: f32,
    /// Host → device copy of the pixels.
    pub upload_ms: f32,
    /// int16 → f32 (0 for f32 input).
    pub convert_in_ms: f32,
    /// Richardson–Lucy.
    pub deconvolve_ms: f32,
    /// Register (statistics, NaN handling, prefilter, resample, clip).
    pub register_ms: f32,
    /// Exposure normalisation.
    pub normalize_ms: f32,
    /// f32 → int16 and the output statistics (0 for f32 output).
    pub convert_out_ms: f32,
    /// Device → host copy.
    pub download_ms: f32,
    /// Upload start to download end.
    pub total_ms: f32,
}

/// The result of [`GpuEngine::process`].
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The output pixels.
    pub pixels: Pixels,
    /// The uncertainty image, when the job asked for it.
    pub uncertainty: Option<Array2<f32>>,
    /// What register did, when it ran.
    pub register: Option<RegisterOutcome>,
    /// Device time per stage.
    pub times: DeviceTimes,
}

/// CUDA events recorded on a lane's stream between stages.
struct Timer<'a> {
    dev: &'a GpuDevice,
    marks: Vec<CudaEvent>,
}

impl<'a> Timer<'a> {
    fn new(dev: &'a GpuDevice) -> Timer<'a> {
        Timer {
            dev,
            marks: Vec::with_capacity(8),
        }
    }

    /// Records an event now; returns its index.
    fn mark(&mut self) -> Result<usize> {
        let e = self
            .dev
            .ctx
            .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| gpu_err("cuEventCreate", e))?;
        e.record(&self.dev.stream)
            .map_err(|e| gpu_err("cuEventRecord", e))?;
        self.marks.push(e);
        Ok(self.marks.len() - 1)
    }

    /// Milliseconds between marks `a` and `b` (after both completed).
    fn ms(&self, a: usize, b: usize) -> Result<f32> {
        event_elapsed_ms(&self.marks[a], &self.marks[b])
    }
}

/// The CUDA engine (module docs).
pub struct GpuEngine {
    /// One device handle (stream) per concurrent caller.
    lanes: LanePool<GpuDevice>,
    otfs: OtfCache<DeviceOtf>,
    /// The host PSF model for grids the device kernel does not cover (non-square).
    host_psf: Option<HostPsfFn>,
}

impl std::fmt::Debug for GpuEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl GpuEngine {
    /// An engine on visible device `ordinal` (0-based, after `CUDA_VISIBLE_DEVICES`) with
    /// `lanes` lanes (CUDA streams; clamped to 1..=[`MAX_LANES`]).
    ///
    /// Errors: those of [`GpuDevice::open`] ([`Error::BackendUnavailable`] without a
    /// usable driver, NVRTC, cuFFT or device; [`Error::Gpu`] when the context cannot be
    /// made) and of [`GpuEngine::with_lanes`].
    pub fn open(ordinal: usize, lanes: usize) -> Result<GpuEngine> {
        GpuEngine::with_lanes(GpuDevice::open(ordinal)?, lanes)
    }

    /// An engine on an already open device with one lane (its stream).
    pub fn new(dev: GpuDevice) -> GpuEngine {
        GpuEngine::from_pool(LanePool::new(dev, Vec::new()))
    }

    /// An engine on an already open device with `lanes` lanes (clamped to
    /// 1..=[`MAX_LANES`]): `dev` and `lanes - 1` more streams on its context.
    ///
    /// Errors: [`Error::Gpu`] when a stream cannot be created.
    pub fn with_lanes(dev: GpuDevice, lanes: usize) -> Result<GpuEngine> {
        let n = lanes.clamp(1, MAX_LANES);
        let rest = (1..n).map(|_| dev.new_lane()).collect::<Result<Vec<_>>>()?;
        Ok(GpuEngine::from_pool(LanePool::new(dev, rest)))
    }

    fn from_pool(lanes: LanePool<GpuDevice>) -> GpuEngine {
        GpuEngine {
            lanes,
            otfs: OtfCache::default(),
            host_psf: None,
        }
    }

    /// This engine, evaluating the model PSF with `host_psf` on the grids its own kernel
    /// does not cover (non-square; the engine layer passes the CPU model,
    /// `cpu::psf::psf_grid`). Without one such grids are [`Error::InvalidOption`].
    pub fn with_host_psf(mut self, host_psf: HostPsfFn) -> GpuEngine {
        self.host_psf = Some(host_psf);
        self
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
    /// When the engine's context cannot be made current on this thread the buffers are
    /// leaked rather than freed in another context.
    pub fn clear_otf_cache(&self) {
        let otfs = self.otfs.take();
        if self.device().context().bind_to_thread().is_err() {
            std::mem::forget(otfs);
        }
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

    /// An OTF made on a lane and complete before it is returned, so that any other lane
    /// (stream) may read it.
    fn make_otf(&self, make: impl FnOnce(&GpuDevice) -> Result<DeviceOtf>) -> Result<DeviceOtf> {
        self.with_device("GPU OTF", |dev| {
            let otf = make(dev)?;
            dev.synchronize()?;
            Ok(otf)
        })
    }

    /// The device OTF of a selected PSF for an image of `shape = (ny, nx)` (cached).
    fn otf(
        &self,
        sel: &PsfSelection,
        shape: (usize, usize),
        source: &Source,
    ) -> Result<Arc<DeviceOtf>> {
        match &sel.choice {
            PsfChoice::Model { channel, options } => {
                self.model_otf(*channel, options, shape, source)
            }
            PsfChoice::Array { psf, .. } => self.otfs.array(psf, || {
                deconvolve::check_psf(psf.view(), source)?;
                self.make_otf(|dev| otf_from_psf(dev, psf.view()))
            }),
        }
    }

    /// The model PSF's OTF: the PSF synthesised on the device for square even grids (the
    /// AIA case), else by the CPU model; cached per [`OtfKey`].
    fn model_otf(
        &self,
        channel: u32,
        options: &PsfOptions,
        shape: (usize, usize),
        source: &Source,
    ) -> Result<Arc<DeviceOtf>> {
        self.otfs
            .model(OtfKey::new(channel, shape, options), || {
                let (ny, nx) = shape;
                let on_device =
                    ny == nx && nx >= 2 && nx.is_multiple_of(2) && nx <= super::psf::MAX_GRID;
                match PsfParams::aia(channel, options.preflight_core) {
                    Some(mut p) if on_device => {
                        p.n = nx;
                        p.orders = options.orders.clone();
                        self.make_otf(|dev| {
                            let psf = psf_device(dev, &p)?;
                            otf_from_device_psf(dev, &psf, nx, ny)
                        })
                    }
                    _ => {
                        psf::check_grid(channel, shape, source)?;
                        let host_psf = self.host_psf.ok_or_else(|| Error::InvalidOption {
                            file: source.clone(),
                            reason: format!(
                                "the GPU PSF kernel covers square grids; {ny}×{nx} needs a host PSF model (GpuEngine::with_host_psf)"
                            ),
                        })?;
                        let p = host_psf(channel, options, shape, source)?;
                        self.make_otf(|dev| otf_from_psf(dev, p.view()))
                    }
                }
            })
    }

    /// Runs `job` on one image, kept on the device from the upload to the download (module
    /// docs), on a free lane.
    ///
    /// Errors: as the CPU path's for the same job ([`Error::Shape`] for a user PSF or
    /// transform that does not fit the image, [`Error::NoPsfModel`], [`Error::InvalidOption`]
    /// for an image too large for the kernels' indexing), and [`Error::Gpu`] for driver,
    /// NVRTC or cuFFT failures (e.g. out of device memory), naming `job.source`.
    pub fn process(&self, input: Input<'_>, job: &Job<'_>) -> Result<Processed> {
        self.process_inner(input, job)
            .map_err(|e| e.in_file(job.source))
    }

    fn process_inner(&self, input: Input<'_>, job: &Job<'_>) -> Result<Processed> {
        let (ny, nx) = input.dim();
        if nx == 0 || ny == 0 {
            return Err(Error::Shape {
                file: job.source.clone(),
                reason: "empty image".into(),
            });
        }
        let t_otf = Instant::now();
        let otf = match &job.deconvolve {
            Some(d) => Some(self.otf(d.psf, (ny, nx), job.source)?),
            None => None,
        };
        let otf_ms = if otf.is_some() {
            (t_otf.elapsed().as_secs_f64() * 1e3) as f32
        } else {
            0.0
        };
        if let Some(t) = job.normalize {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::InvalidOption {
                    file: job.source.clone(),
                    reason: format!("exposure time {t} s is not a positive number"),
                });
            }
        }
        self.with_device("GPU prep", |dev| {
            let mut tm = Timer::new(dev);
            let m0 = tm.mark()?;
            // upload (and convert)
            let (mut img, m_up) = match input {
                Input::F32(v) => {
                    let img = DeviceImage::upload(dev, v)?;
                    (img, tm.mark()?)
                }
                Input::I16 { data, scaling } => {
                    let host = buffer::contiguous(&data);
                    let raw = buffer::upload(dev, &host, "int16 image")?;
                    let m = tm.mark()?;
                    let mut f = alloc::<f32>(dev, nx * ny, "f32 image")?;
                    device_i16_to_f32(dev, &raw, nx * ny, &mut f, &scaling)?;
                    (DeviceImage { data: f, nx, ny }, m)
                }
            };
            let m_in = tm.mark()?;
            if let (Some(d), Some(otf)) = (&job.deconvolve, &otf) {
                let params = DeconvolveParams {
                    iterations: d.options.iterations,
                    floor: 0.0,
                    clip_negative: d.options.clip_negative,
                };
                img = deconvolve_device(dev, img, otf, &params)?;
            }
            let m_dec = tm.mark()?;
            let mut outcome = None;
            if let Some(r) = &job.register {
                let (out, o) = register_on_device(dev, img, r)?;
                img = out;
                outcome = Some(o);
            }
            let m_reg = tm.mark()?;
            let mut unc = match &job.uncertainty {
                Some(rule) => {
                    let n = img.len();
                    let mut u = alloc::<f32>(dev, n, "uncertainty")?;
                    device_estimate_error(dev, &img.data, &mut u, n, rule)?;
                    Some(u)
                }
                None => None,
            };
            if let Some(t) = job.normalize {
                let n = img.len();
                device_divide(dev, &mut img.data, n, t)?;
                if let Some(u) = unc.as_mut() {
                    device_divide(dev, u, n, t)?;
                }
            }
            let m_norm = tm.mark()?;
            let (onx, ony, on) = (img.nx, img.ny, img.len());
            let (pixels, m_conv) = match job.output {
                OutputKind::F32 => {
                    let m = tm.mark()?;
                    // Every element is overwritten: a recycled buffer (in a batch) will do.
                    let mut v = crate::buffers::take_f32(on);
                    buffer::download(dev, &img.data, &mut v, "f32 output")?;
                    (Pixels::F32(buffer::to_array(v, onx, ony)?), m)
                }
                OutputKind::I16 { scaling } => {
                    let mut o = alloc::<i16>(dev, on, "int16 output")?;
                    match scaling {
                        None => device_f32_to_i16(dev, &img.data, on, &mut o)?,
                        Some((bscale, bzero)) => {
                            device_f32_to_i16_scaled(dev, &img.data, on, &mut o, bscale, bzero)?
                        }
                    }
                    let st = device_stats_i16(dev, &o, on, Some(-32768))?;
                    let m = tm.mark()?;
                    let mut v = crate::buffers::take_i16(on);
                    buffer::download(dev, &o, &mut v, "int16 output")?;
                    let stats = output_stats(&st, on, scaling);
                    (
                        Pixels::I16 {
                            data: buffer::to_array(v, onx, ony)?,
                            stats,
                        },
                        m,
                    )
                }
            };
            let uncertainty = match unc {
                Some(u) => {
                    let mut v = crate::buffers::take_f32(on);
                    buffer::download(dev, &u, &mut v, "uncertainty")?;
                    Some(buffer::to_array(v, onx, ony)?)
                }
                None => None,
            };
            let m_end = tm.mark()?;
            dev.synchronize()?;
            let times = DeviceTimes {
                otf_ms,
                upload_ms: tm.ms(m0, m_up)?,
                convert_in_ms: tm.ms(m_up, m_in)?,
                deconvolve_ms: tm.ms(m_in, m_dec)?,
                register_ms: tm.ms(m_dec, m_reg)?,
                normalize_ms: tm.ms(m_reg, m_norm)?,
                convert_out_ms: tm.ms(m_norm, m_conv)?,
                download_ms: tm.ms(m_conv, m_end)?,
                total_ms: tm.ms(m0, m_end)?,
            };
            Ok(Processed {
                pixels,
                uncertainty,
                register: outcome,
                times,
            })
        })
    }

    /// A `prep`'s compute of one map — (deconvolve) → register → (normalise) → `output` —
    /// and its level-1.5 header (with the deconvolution record): what
    /// [`GpuEngine::register`], [`GpuEngine::deconvolve_register`] and [`GpuEngine::prep_int16`] run.
    #[allow(clippy::too_many_arguments)]
    fn run_prep(
        &self,
        map: MapView<'_>,
        d: Option<&DeconvolveOptions>,
        plan: &register::Plan,
        r: &RegisterOptions,
        normalize: Option<f64>,
        output: OutputKind,
        uncertainty: Option<crate::uncertainty::ErrorRule>,
    ) -> Result<(Processed, crate::header::Header)> {
        let sel = match d {
            Some(o) => Some(deconvolve::select_psf(map, o)?),
            None => None,
        };
        // Deconvolution changes neither the shape nor the geometry keywords: the register
        // plan (and its checks) was made before, so nothing runs on the GPU in vain.
        let job = Job {
            deconvolve: sel
                .as_ref()
                .zip(d)
                .map(|(psf, options)| DeconvolveJob { psf, options }),
            register: Some(RegisterJob {
                transform: &plan.transform,
                interpolation: r.interpolation,
                missing: r.missing,
            }),
            normalize,
            output,
            uncertainty,
            source: map.source,
        };
        let p = self.process(Input::F32(map.data), &job)?;
        let missing = p.register.map(|o| o.missing).unwrap_or(f64::NAN);
        // The records of the division (exposure, degradation) are the caller's: it knows
        // what the divisor is made of.
        let header = match (&sel, d) {
            (Some(s), Some(o)) => register::level15_header(
                &deconvolve::deconvolved_header(map, o, s),
                plan,
                r,
                missing,
            ),
            _ => register::level15_header(map.header, plan, r, missing),
        };
        Ok((p, header))
    }
}

/// The f32 pixels of a result (an f32 job's).
fn f32_pixels(p: Pixels) -> Result<Array2<f32>> {
    match p {
        Pixels::F32(a) => Ok(a),
        Pixels::I16 { .. } => Err(gpu_err("GPU engine", "int16 pixels for an f32 job")),
    }
}

/// The device time of a `prep` split as the pipeline reports it: deconvolution (with the
/// upload and a first-use OTF), and the rest.
fn split_times(t: &DeviceTimes) -> (Duration, Duration) {
    let ms = |v: f32| Duration::from_secs_f64(v.max(0.0) as f64 / 1e3);
    (
        ms(t.otf_ms + t.upload_ms + t.convert_in_ms + t.deconvolve_ms),
        ms(t.register_ms + t.normalize_ms + t.convert_out_ms + t.download_ms),
    )
}

/// DATAMIN/DATAMAX/DATAMEAN of int16 output from the device statistics of the stored
/// values, as the CPU writer computes them (physical = BZERO + BSCALE · stored; the sum of
/// stored values is exact in f64).
fn output_stats(st: &Stats, n: usize, scaling: Option<(f64, f64)>) -> PixelStats {
    let (bscale, bzero) = scaling.unwrap_or((1.0, 0.0));
    let phys = |s: f64| bzero + bscale * s;
    if st.count == 0 {
        return PixelStats {
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
            n_missing: n,
        };
    }
    let (a, b) = (phys(st.min), phys(st.max));
    PixelStats {
        min: a.min(b),
        max: a.max(b),
        mean: phys(st.sum / st.count as f64),
        n_missing: n - st.count as usize,
    }
}

/// Register on the device (consumed; non-empty), with the CPU path's rules: statistics,
/// `missing`, fill and clip rules ([`Rules`]), the kernels ([`register_device`]), and the
/// clip that can only be known from the output (deferred), applied there too.
fn register_on_device(
    dev: &GpuDevice,
    img: DeviceImage,
    r: &RegisterJob<'_>,
) -> Result<(DeviceImage, RegisterOutcome)> {
    let (nx, ny) = (img.nx, img.ny);
    let (onx, ony) = r.transform.out_shape;
    let st = device_stats_f32(dev, &img.data, img.len())?;
    let nan = img.len().saturating_sub(st.count as usize);
    if st.count == 0 {
        // As the CPU path: nothing to interpolate, every output pixel is missing.
        let mut out = alloc::<f32>(dev, onx * ony, "registered image")?;
        let host = vec![f32::NAN; onx * ony];
        buffer::upload_into(dev, &host, &mut out, "registered image")?;
        return Ok((
            DeviceImage {
                data: out,
                nx: onx,
                ny: ony,
            },
            RegisterOutcome {
                missing: f64::NAN,
                clip: None,
                missing_in: nan,
            },
        ));
    }
    let summary = Summary {
        nan,
        min: st.min as f32,
        max: st.max as f32,
    };
    let rules = Rules::new(&summary, r.missing, r.transform.pad, nx, ny);
    let p = RegisterParams {
        transform: *r.transform,
        interpolation: r.interpolation,
        missing: rules.missing as f32,
        clip: match rules.clip {
            ClipRule::Known(lo, hi) => Some((lo, hi)),
            ClipRule::Deferred { .. } => None,
        },
        // The device computes sunpy's nanmedian of the padded image, which is what
        // `rules.need_fill` / `fill_counts_padding` describe on the CPU.
        nan_fill: None,
        prefilter: Prefilter::Fir,
    };
    let mut out = register_device(dev, img, &p)?;
    let clip = match rules.clip {
        ClipRule::Known(lo, hi) => Some((lo as f64, hi as f64)),
        ClipRule::Deferred {
            missing,
            in_min,
            in_max,
        } => {
            // the CPU resampler's apply_deferred_clip, on the device
            let o = device_stats_f32(dev, &out.data, out.len())?;
            if o.count == 0 {
                None
            } else {
                let (lower, upper) =
                    deferred_clip_range(missing, o.min as f32, o.max as f32, in_min, in_max);
                let n = out.len();
                device_clamp(dev, &mut out.data, n, lower as f32, upper as f32)?;
                Some((lower, upper))
            }
        }
    };
    Ok((
        out,
        RegisterOutcome {
            missing: rules.missing,
            clip,
            missing_in: nan,
        },
    ))
}

impl Drop for GpuEngine {
    /// Binds the context on the dropping thread first (cudarc frees device buffers — the
    /// cached OTFs — without making their context current); when that fails the buffers
    /// are leaked rather than freed in another context.
    fn drop(&mut self) {
        if self.device().context().bind_to_thread().is_err() {
            std::mem::forget(self.otfs.take());
        }
    }
}

/// The engine interface's operations (`crate::engine::Engine` adapts them): f32 maps in
/// and out, and the fused int16 prep.
impl GpuEngine {
    /// `cuda:ORDINAL (DEVICE NAME, sm_XY, NVRTC a.b, cuFFT c.d, N streams)`.
    pub fn name(&self) -> String {
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
    pub fn concurrency(&self) -> usize {
        self.lanes.len()
    }

    /// Time the lanes were held (summed over lanes), with the number of lanes.
    pub fn device_busy(&self) -> Option<(Duration, usize)> {
        Some((self.lanes.busy(), self.lanes.len()))
    }

    /// As [`crate::cpu::deconvolve()`], on the GPU (module docs).
    pub fn deconvolve<'a>(
        &self,
        map: impl Into<MapView<'a>>,
        opts: &DeconvolveOptions,
    ) -> Result<AiaMap> {
        let map = map.into();
        let sel = deconvolve::select_psf(map, opts)?;
        let job = Job {
            deconvolve: Some(DeconvolveJob {
                psf: &sel,
                options: opts,
            }),
            register: None,
            normalize: None,
            uncertainty: None,
            output: OutputKind::F32,
            source: map.source,
        };
        let data = f32_pixels(self.process(Input::F32(map.data), &job)?.pixels)?;
        let header = deconvolve::deconvolved_header(map, opts, &sel);
        Ok(AiaMap::new(data, header, map.source.clone()))
    }

    /// Deconvolution then register with the image kept on the device in between (one
    /// upload, one download); the same result as [`GpuEngine::deconvolve`] then
    /// [`GpuEngine::register`]. The two times are the device times of the stages (the
    /// deconvolution's including the upload and a first-use OTF).
    pub fn deconvolve_register<'a>(
        &self,
        map: impl Into<MapView<'a>>,
        d: &DeconvolveOptions,
        plan: &register::Plan,
        r: &RegisterOptions,
    ) -> Result<(AiaMap, Duration, Duration)> {
        let map = map.into();
        let (p, header) = self.run_prep(map, Some(d), plan, r, None, OutputKind::F32, None)?;
        let (t_dec, t_reg) = split_times(&p.times);
        let data = f32_pixels(p.pixels)?;
        Ok((AiaMap::new(data, header, map.source.clone()), t_dec, t_reg))
    }

    /// The whole compute of a `prep` with int16 output, on the device: the image is
    /// uploaded once, and downloaded as int16 with its statistics (module docs).
    pub fn prep_int16<'a>(
        &self,
        map: impl Into<MapView<'a>>,
        d: Option<&DeconvolveOptions>,
        plan: &register::Plan,
        r: &RegisterOptions,
        normalize: Option<f64>,
        scaling: Option<(f64, f64)>,
    ) -> Result<Int16Prep> {
        let map = map.into();
        let (p, header) = self.run_prep(
            map,
            d,
            plan,
            r,
            normalize,
            OutputKind::I16 { scaling },
            None,
        )?;
        let (deconvolve, register) = split_times(&p.times);
        let Pixels::I16 { data, stats } = p.pixels else {
            return Err(gpu_err("GPU engine", "f32 pixels for an int16 job"));
        };
        Ok(Int16Prep {
            header,
            pixels: Int16Pixels {
                data,
                scaling,
                stats,
            },
            deconvolve,
            register,
        })
    }

    /// The compute of a `prep` with float32 output and the uncertainty map, on the device:
    /// (deconvolve) → register → the uncertainty of the registered counts (the same rule
    /// as [`crate::cpu::uncertainty::estimate_error_map`]) → both divided by `divisor` →
    /// download. Returns the map (level-1.5 header; the division's records are the
    /// caller's), the uncertainty image and the device times of deconvolution and register.
    #[allow(clippy::too_many_arguments)]
    pub fn prep_with_uncertainty<'a>(
        &self,
        map: impl Into<MapView<'a>>,
        d: Option<&DeconvolveOptions>,
        plan: &register::Plan,
        r: &RegisterOptions,
        divisor: Option<f64>,
        e: &crate::uncertainty::ChannelErrors,
        opts: &crate::uncertainty::ErrorOptions,
    ) -> Result<crate::int16::WithUncertainty> {
        let map = map.into();
        opts.check()?;
        let rule = crate::uncertainty::ErrorRule::new(e, opts);
        let (p, header) = self.run_prep(map, d, plan, r, divisor, OutputKind::F32, Some(rule))?;
        let (t_dec, t_reg) = split_times(&p.times);
        let unc = p
            .uncertainty
            .ok_or_else(|| gpu_err("GPU engine", "no uncertainty image from the device"))?;
        let data = f32_pixels(p.pixels)?;
        Ok(crate::int16::WithUncertainty {
            map: AiaMap::new(data, header, map.source.clone()),
            uncertainty: unc,
            deconvolve: t_dec,
            register: t_reg,
        })
    }

    /// The model PSF of `channel` on an `opts.size²` grid, synthesised on the device (the
    /// same rules as the CPU model: [`psf::check_grid`]).
    ///
    /// Errors: [`Error::NoPsfModel`], [`Error::InvalidOption`] as the CPU model;
    /// [`Error::Gpu`] for device failures.
    pub fn psf(&self, channel: u32, opts: &PsfOptions) -> Result<Array2<f64>> {
        let n = opts.size;
        psf::check_grid(channel, (n, n), &Source::memory())?;
        let mut p =
            PsfParams::aia(channel, opts.preflight_core).ok_or_else(|| Error::NoPsfModel {
                file: Source::memory(),
                channel: channel.to_string(),
            })?;
        p.n = n;
        p.orders = opts.orders.clone();
        self.with_device("GPU PSF", |dev| super::psf::psf(dev, &p))
    }

    /// Whether the solar disk of `g` lies wholly inside its frame, tested on the device.
    pub fn contains_full_disk(&self, g: &Geometry) -> Result<bool> {
        let p = FullDiskParams::from_geometry(g);
        self.with_device("GPU full-disk test", |dev| {
            super::fulldisk::contains_full_disk(dev, &p)
        })
    }

    /// The 1-σ uncertainty of every count of `counts` (DN), on the device (upload, the
    /// element-wise rule, download): as [`crate::cpu::uncertainty::estimate_error_map`].
    /// In a `prep` the pipeline uses [`GpuEngine::prep_with_uncertainty`] instead, which
    /// computes it where the registered image already is.
    pub fn estimate_error(
        &self,
        counts: ArrayView2<f32>,
        e: &crate::uncertainty::ChannelErrors,
        opts: &crate::uncertainty::ErrorOptions,
    ) -> Result<Array2<f32>> {
        opts.check()?;
        let rule = crate::uncertainty::ErrorRule::new(e, opts);
        let (ny, nx) = counts.dim();
        let host = counts.as_standard_layout();
        let host = host
            .as_slice()
            .ok_or_else(|| gpu_err("GPU uncertainty", "counts not contiguous"))?;
        self.with_device("GPU uncertainty", |dev| {
            let x = buffer::upload(dev, host, "counts")?;
            let mut u = alloc::<f32>(dev, nx * ny, "uncertainty")?;
            device_estimate_error(dev, &x, &mut u, nx * ny, &rule)?;
            let mut v = crate::buffers::take_f32(nx * ny);
            buffer::download(dev, &u, &mut v, "uncertainty")?;
            dev.synchronize()?;
            buffer::to_array(v, nx, ny)
        })
    }

    /// f32 → int16 as the FITS writer stores them, with their statistics, on the device.
    pub fn to_int16(
        &self,
        values: ArrayView2<f32>,
        scaling: Option<(f64, f64)>,
    ) -> Result<Int16Pixels> {
        let source = Source::memory();
        let job = Job {
            deconvolve: None,
            register: None,
            normalize: None,
            uncertainty: None,
            output: OutputKind::I16 { scaling },
            source: &source,
        };
        match self.process(Input::F32(values), &job)?.pixels {
            Pixels::I16 { data, stats } => Ok(Int16Pixels {
                data,
                scaling,
                stats,
            }),
            Pixels::F32(_) => Err(gpu_err("GPU engine", "f32 pixels for an int16 job")),
        }
    }

    /// As [`crate::cpu::register()`], on the GPU (module docs).
    pub fn register<'a>(
        &self,
        map: impl Into<MapView<'a>>,
        opts: &RegisterOptions,
    ) -> Result<AiaMap> {
        let map = map.into();
        self.register_planned(map, &register::plan(map, opts)?, opts)
    }

    /// [`GpuEngine::register`] with the map's plan already made ([`register::plan`]).
    pub fn register_planned<'a>(
        &self,
        map: impl Into<MapView<'a>>,
        plan: &register::Plan,
        opts: &RegisterOptions,
    ) -> Result<AiaMap> {
        let map = map.into();
        let (p, header) = self.run_prep(map, None, plan, opts, None, OutputKind::F32, None)?;
        let data = f32_pixels(p.pixels)?;
        Ok(AiaMap::new(data, header, map.source.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<GpuEngine>();
    }
}
