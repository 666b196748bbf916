//! The engine interface: what a caller runs an image through, whichever backend does the
//! work — the [`Engine`] trait, [`Backend`], [`EngineOptions`] and [`select_engines`].
//!
//! Layering: this module sits above the backends ([`crate::cpu`], `crate::gpu`) and
//! adapts each to [`Engine`] ([`CpuEngine`]; `GpuEngine` with the `cuda` feature); the
//! backends never import it. The pipeline, the batch and the C ABI sit above it and
//! dispatch through `dyn Engine` only.
//!
//! ```
//! use aiaprep::engine::{select_engines, Backend, EngineOptions};
//! // The CPU engine; Backend::Auto would take a GPU when there is one.
//! let engines = select_engines(&EngineOptions { backend: Backend::Cpu, ..Default::default() })?;
//! let l1 = aiaprep::synth::level1(&aiaprep::synth::SynthOptions { size: 128, ..Default::default() });
//! let l15 = engines.register.register(l1.view(), &Default::default())?;
//! assert_eq!(l15.header.get_f64("LVL_NUM"), Some(1.5));
//! # Ok::<(), aiaprep::Error>(())
//! ```

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
pub mod device;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};

use crate::deconvolve::DeconvolveOptions;
use crate::error::{Error, Result};
use crate::int16::{Int16Pixels, Int16Prep, WithUncertainty};
use crate::map::{AiaMap, Geometry, MapView};
use crate::psf::PsfOptions;
use crate::register::{self, Plan, RegisterOptions};
use crate::uncertainty::{ChannelErrors, ErrorOptions};

pub use cpu::CpuEngine;
#[cfg(feature = "cuda")]
pub use cuda::shared_gpu_engine;
pub use device::DevicePick;

/// Which implementation runs the compute stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// A GPU when the driver, NVRTC, cuFFT and a device are all present, else the CPU.
    #[default]
    Auto,
    /// The CPU (rayon) path.
    Cpu,
    /// The CUDA path; an error when it is not available.
    Cuda,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "cuda" | "gpu" => Ok(Backend::Cuda),
            _ => Err(format!("unknown backend '{s}' (auto, cpu, cuda)")),
        }
    }
}

/// The operations a backend implements. Callers (the pipeline, the batch, the C ABI, the
/// tests) do not care which one runs.
pub trait Engine: Send + Sync {
    /// Short name for logs ("cpu (2 threads)", "cuda:0 (NVIDIA H200, …)", ...).
    fn name(&self) -> String;
    /// The model PSF of `channel` (Å) on an `opts.size²` grid, `[row, col]`, peak at
    /// `[N/2, N/2]` (see [`crate::psf`]). The default is the CPU model.
    fn psf(&self, channel: u32, opts: &PsfOptions) -> Result<Array2<f64>> {
        crate::cpu::psf::psf(channel, opts)
    }
    /// Whether the solar disk of `g` lies wholly inside its frame (see
    /// [`crate::geometry::contains_full_disk`], the default).
    fn contains_full_disk(&self, g: &Geometry) -> Result<bool> {
        Ok(crate::geometry::contains_full_disk(g))
    }
    /// f32 values (DN; NaN = missing) → int16 as the FITS writer stores them, with
    /// `scaling = (BSCALE, BZERO)` (`None` = (1, 0)), and their statistics
    /// ([`crate::int16`]). The default is the writer's own encoder.
    fn to_int16(
        &self,
        values: ArrayView2<f32>,
        scaling: Option<(f64, f64)>,
    ) -> Result<Int16Pixels> {
        crate::fits::encode_int16(values, scaling)
    }
    /// The 1-σ uncertainty (DN) of every pixel of `counts` (DN, not divided by the exposure
    /// time), aiapy's `estimate_error` (see [`crate::uncertainty`]). The default is the
    /// CPU body ([`crate::cpu::uncertainty::estimate_error_map`]).
    fn estimate_error(
        &self,
        counts: ArrayView2<f32>,
        e: &ChannelErrors,
        opts: &ErrorOptions,
    ) -> Result<Array2<f32>> {
        opts.check()?;
        Ok(crate::cpu::uncertainty::estimate_error_map(counts, e, opts))
    }
    /// PSF deconvolution of a level-1 map (see [`crate::deconvolve`]).
    fn deconvolve(&self, map: MapView<'_>, opts: &DeconvolveOptions) -> Result<AiaMap>;
    /// Register a map to level 1.5 (see [`crate::register`]): its [`Plan`], then
    /// [`Engine::register_planned`].
    fn register(&self, map: MapView<'_>, opts: &RegisterOptions) -> Result<AiaMap> {
        self.register_planned(map, &register::plan(map, opts)?, opts)
    }
    /// Register a map whose [`Plan`] (geometry, full-disk check, transform) was already
    /// made — by the pipeline at load, so it is made once per image.
    fn register_planned(
        &self,
        map: MapView<'_>,
        plan: &Plan,
        opts: &RegisterOptions,
    ) -> Result<AiaMap>;
    /// Deconvolution then register (level 1.6), with the time of each: the default runs
    /// [`Engine::deconvolve`] then [`Engine::register`]; the GPU engine overrides it to keep
    /// the image on the device between the two. The result must be the same as the two
    /// calls'.
    fn deconvolve_register(
        &self,
        map: MapView<'_>,
        d: &DeconvolveOptions,
        plan: &Plan,
        r: &RegisterOptions,
    ) -> Result<(AiaMap, Duration, Duration)> {
        let t = Instant::now();
        let m = self.deconvolve(map, d)?;
        let t_dec = t.elapsed();
        let t = Instant::now();
        let out = self.register_planned(m.view(), plan, r)?;
        Ok((out, t_dec, t.elapsed()))
    }
    /// The compute of a `prep` whose output is int16 and whose pixels nothing else needs as
    /// f32 (no quicklook): (deconvolve) → register → (divide by `divisor`: the exposure
    /// time and/or the degradation factor; the header records of the division are the
    /// caller's) → int16 with `scaling`, converted — with its DATAMIN/DATAMAX/DATAMEAN — by the engine
    /// itself ([`Int16Pixels`]: the values and statistics the FITS writer would compute
    /// from the f32 result). `None` (the default) when the engine does not do that; the
    /// pipeline then converts while writing. The GPU engine does it on the device and
    /// downloads half the bytes.
    fn prep_int16(
        &self,
        _map: MapView<'_>,
        _deconvolve: Option<&DeconvolveOptions>,
        _plan: &Plan,
        _register: &RegisterOptions,
        _divisor: Option<f64>,
        _scaling: Option<(f64, f64)>,
    ) -> Option<Result<Int16Prep>> {
        None
    }
    /// The compute of a `prep` with float32 output and the uncertainty map, when the engine
    /// can keep the image where it is between the two (the GPU engine: on the device):
    /// (deconvolve) → register → the uncertainty of the registered counts → both divided
    /// by `divisor`. Returns the map (the division's header records are the caller's), the
    /// uncertainty and the times of deconvolution and register; `None` (the default) when
    /// the engine does not do that, and the pipeline registers then calls
    /// [`Engine::estimate_error`].
    #[allow(clippy::too_many_arguments)]
    fn prep_with_uncertainty(
        &self,
        _map: MapView<'_>,
        _deconvolve: Option<&DeconvolveOptions>,
        _plan: &Plan,
        _register: &RegisterOptions,
        _divisor: Option<f64>,
        _errors: &ChannelErrors,
        _options: &ErrorOptions,
    ) -> Option<Result<WithUncertainty>> {
        None
    }
    /// How many concurrent calls keep this engine busy: the batch compute stage runs this
    /// many workers. 1 for the CPU engine (it parallelises inside an image); the number
    /// of CUDA streams for the GPU engine.
    fn concurrency(&self) -> usize {
        1
    }
    /// For engines with a device: the time its lanes have been held since the engine was
    /// made (summed over lanes), and the number of lanes — the device occupancy of a run
    /// is the growth of the first over the wall time × lanes. `None` for the CPU engine.
    fn device_busy(&self) -> Option<(Duration, usize)> {
        None
    }
}

/// How to choose and set up the engines of a run: everything [`select_engines`] needs,
/// explicitly (it reads no environment; [`EngineOptions::from_env`] does, for the CLI and
/// the C ABI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// The backend asked for. Default [`Backend::Auto`].
    pub backend: Backend,
    /// The mixed flow: GPU deconvolution, CPU register. Default false.
    pub register_on_cpu: bool,
    /// Which CUDA device. Default: the node-local rank's (0 outside a cluster job).
    pub gpu_device: DevicePick,
    /// CUDA streams (lanes) of the GPU engine, 1..=[`crate::lanes::MAX_LANES`]. Default
    /// [`device::DEFAULT_GPU_STREAMS`].
    pub gpu_streams: usize,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            backend: Backend::Auto,
            register_on_cpu: false,
            gpu_device: DevicePick::LocalRank(0),
            gpu_streams: device::DEFAULT_GPU_STREAMS,
        }
    }
}

impl EngineOptions {
    /// The defaults with the GPU settings of the process environment:
    /// `AIAPREP_GPU_INDEX` (a visible device index), else the node-local rank
    /// (`SLURM_LOCALID`, `OMPI_COMM_WORLD_LOCAL_RANK`, `MPI_LOCALRANKID`; 0 when
    /// `CUDA_VISIBLE_DEVICES` already narrows the devices), and `AIAPREP_GPU_STREAMS`.
    ///
    /// Errors: [`Error::BackendUnavailable`] naming the variable for a value that is not a
    /// device index or a number of streams in range.
    pub fn from_env() -> Result<EngineOptions> {
        let get = |k: &str| std::env::var(k).ok();
        device::options_from(&get)
    }
}

/// The engines chosen for a run, and a one-line explanation of the choice.
#[derive(Clone)]
pub struct Engines {
    /// Runs the deconvolution.
    pub deconvolve: Arc<dyn Engine>,
    /// Runs the register.
    pub register: Arc<dyn Engine>,
    /// What was chosen and why, for the user.
    pub description: String,
}

impl Engines {
    /// Whether one engine does both stages (the same `Arc`): it may then keep the image on
    /// its device between deconvolution and register, and its device counts once.
    pub fn one_engine(&self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.deconvolve), Arc::as_ptr(&self.register))
    }
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

/// Choose the engines for `opts`. `Auto` falls back to the CPU with the reason; `Cuda`
/// without a usable GPU is [`Error::BackendUnavailable`].
pub fn select_engines(opts: &EngineOptions) -> Result<Engines> {
    let cpu: Arc<dyn Engine> = Arc::new(CpuEngine);
    match opts.backend {
        Backend::Cpu => Ok(Engines {
            deconvolve: cpu.clone(),
            register: cpu.clone(),
            description: format!("backend: {} (asked for)", cpu.name()),
        }),
        Backend::Auto | Backend::Cuda => match gpu_engine(opts) {
            Ok(gpu) => {
                let reg = if opts.register_on_cpu {
                    cpu.clone()
                } else {
                    gpu.clone()
                };
                let description = format!(
                    "backend: deconvolve on {}, register on {}",
                    gpu.name(),
                    reg.name()
                );
                Ok(Engines {
                    deconvolve: gpu,
                    register: reg,
                    description,
                })
            }
            Err(reason) if opts.backend == Backend::Auto => Ok(Engines {
                deconvolve: cpu.clone(),
                register: cpu.clone(),
                description: format!("backend: {} (no GPU: {reason})", cpu.name()),
            }),
            Err(reason) => Err(Error::BackendUnavailable { reason }),
        },
    }
}

/// The GPU engine, or why there is none.
#[cfg(not(feature = "cuda"))]
fn gpu_engine(_: &EngineOptions) -> std::result::Result<Arc<dyn Engine>, String> {
    Err("this build has no CUDA support (built with --no-default-features; the `cuda` feature is on by default)".to_string())
}

/// The GPU engine ([`shared_gpu_engine`]), or why there is none (no driver, NVRTC or
/// device, ...).
#[cfg(feature = "cuda")]
fn gpu_engine(opts: &EngineOptions) -> std::result::Result<Arc<dyn Engine>, String> {
    match shared_gpu_engine(opts) {
        Ok(e) => Ok(e),
        Err(e) => Err(e.reason()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(backend: Backend, register_on_cpu: bool) -> Result<Engines> {
        select_engines(&EngineOptions {
            backend,
            register_on_cpu,
            ..Default::default()
        })
    }

    #[test]
    fn backend_choice() {
        let e = sel(Backend::Cpu, false).unwrap();
        assert!(e.description.contains("cpu"));
        assert!("gpu".parse::<Backend>().is_ok());
        assert!("tpu".parse::<Backend>().is_err());
        // auto: the GPU when one is usable, else the CPU with the reason; cuda: the GPU
        // or BackendUnavailable — never a panic.
        let auto = sel(Backend::Auto, false).unwrap();
        match sel(Backend::Cuda, false) {
            Ok(g) => {
                assert!(g.deconvolve.name().starts_with("cuda:"), "{g:?}");
                assert!(g.register.name().starts_with("cuda:"), "{g:?}");
                assert!(auto.register.name().starts_with("cuda:"), "{auto:?}");
                let mixed = sel(Backend::Cuda, true).unwrap();
                assert!(mixed.deconvolve.name().starts_with("cuda:"));
                assert!(mixed.register.name().starts_with("cpu"));
            }
            Err(Error::BackendUnavailable { reason }) => {
                assert!(!reason.is_empty());
                assert!(auto.description.contains("cpu"), "{auto:?}");
                assert!(auto.description.contains(&reason), "{auto:?}");
                #[cfg(not(feature = "cuda"))]
                assert!(reason.contains("no CUDA support"), "{reason}");
            }
            Err(e) => panic!("unexpected error kind: {e:?}"),
        }
    }
}
