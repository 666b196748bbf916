//! The CUDA backend (`crate::gpu::GpuEngine`) behind the [`Engine`] interface, and the one
//! engine per device that a process shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use ndarray::{Array2, ArrayView2};

use super::{Engine, EngineOptions};
use crate::deconvolve::DeconvolveOptions;
use crate::error::Result;
use crate::gpu::{device_count, GpuEngine};
use crate::int16::{Int16Pixels, Int16Prep, WithUncertainty};
use crate::map::{AiaMap, Geometry, MapView};
use crate::psf::PsfOptions;
use crate::register::{Plan, RegisterOptions};
use crate::uncertainty::{ChannelErrors, ErrorOptions};

impl Engine for GpuEngine {
    fn name(&self) -> String {
        GpuEngine::name(self)
    }
    fn psf(&self, channel: u32, opts: &PsfOptions) -> Result<Array2<f64>> {
        GpuEngine::psf(self, channel, opts)
    }
    fn contains_full_disk(&self, g: &Geometry) -> Result<bool> {
        GpuEngine::contains_full_disk(self, g)
    }
    fn to_int16(
        &self,
        values: ArrayView2<f32>,
        scaling: Option<(f64, f64)>,
    ) -> Result<Int16Pixels> {
        GpuEngine::to_int16(self, values, scaling)
    }
    fn deconvolve(&self, map: MapView<'_>, opts: &DeconvolveOptions) -> Result<AiaMap> {
        GpuEngine::deconvolve(self, map, opts)
    }
    fn register_planned(
        &self,
        map: MapView<'_>,
        plan: &Plan,
        opts: &RegisterOptions,
    ) -> Result<AiaMap> {
        GpuEngine::register_planned(self, map, plan, opts)
    }
    fn deconvolve_register(
        &self,
        map: MapView<'_>,
        d: &DeconvolveOptions,
        plan: &Plan,
        r: &RegisterOptions,
    ) -> Result<(AiaMap, Duration, Duration)> {
        GpuEngine::deconvolve_register(self, map, d, plan, r)
    }
    fn prep_int16(
        &self,
        map: MapView<'_>,
        d: Option<&DeconvolveOptions>,
        plan: &Plan,
        r: &RegisterOptions,
        normalize: Option<f64>,
        scaling: Option<(f64, f64)>,
    ) -> Option<Result<Int16Prep>> {
        Some(GpuEngine::prep_int16(
            self, map, d, plan, r, normalize, scaling,
        ))
    }
    fn estimate_error(
        &self,
        counts: ArrayView2<f32>,
        e: &ChannelErrors,
        opts: &ErrorOptions,
    ) -> Result<Array2<f32>> {
        GpuEngine::estimate_error(self, counts, e, opts)
    }
    fn prep_with_uncertainty(
        &self,
        map: MapView<'_>,
        d: Option<&DeconvolveOptions>,
        plan: &Plan,
        r: &RegisterOptions,
        divisor: Option<f64>,
        e: &ChannelErrors,
        opts: &ErrorOptions,
    ) -> Option<Result<WithUncertainty>> {
        Some(GpuEngine::prep_with_uncertainty(
            self, map, d, plan, r, divisor, e, opts,
        ))
    }
    fn concurrency(&self) -> usize {
        GpuEngine::concurrency(self)
    }
    fn device_busy(&self) -> Option<(Duration, usize)> {
        GpuEngine::device_busy(self)
    }
}

/// Live engines per device ordinal, for [`shared_gpu_engine`].
fn registry() -> &'static Mutex<HashMap<usize, Weak<GpuEngine>>> {
    static R: OnceLock<Mutex<HashMap<usize, Weak<GpuEngine>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The process-wide GPU engine on the device `opts.gpu_device` picks: an engine still held
/// by someone (e.g. the engines of an earlier [`super::select_engines`]) is reused, so its
/// context, compiled kernels, cuFFT plans and OTFs are not made twice (its number of
/// streams is the one it was opened with); otherwise a new one is opened with
/// `opts.gpu_streams` streams and the CPU PSF model for grids the device PSF kernel does
/// not cover.
///
/// Errors: [`crate::Error::BackendUnavailable`] without a usable driver, NVRTC, cuFFT or
/// device; [`crate::Error::Gpu`] when the context or a stream cannot be made.
pub fn shared_gpu_engine(opts: &EngineOptions) -> Result<Arc<GpuEngine>> {
    let ordinal = opts.gpu_device.ordinal(&device_count)?;
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = reg.get(&ordinal).and_then(Weak::upgrade) {
        return Ok(e);
    }
    let e = Arc::new(
        GpuEngine::open(ordinal, opts.gpu_streams)?.with_host_psf(crate::cpu::psf::psf_grid),
    );
    reg.insert(ordinal, Arc::downgrade(&e));
    Ok(e)
}
