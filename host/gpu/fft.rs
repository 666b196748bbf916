//! cuFFT 2-D real transforms with plans cached per `(ny, nx, kind)` on each device.
//!
//! cuFFT's exec functions do not check buffer lengths, so every call here does: an R2C
//! of `ny x nx` reals writes `ny x (nx/2 + 1)` complex values, a C2R reads as many (and
//! may overwrite them). Transforms are unnormalised (a forward + inverse round trip
//! multiplies by `ny nx`).
//!
//! A plan may be reached from several host threads (a [`GpuDevice`] is `Sync`), but cuFFT
//! is thread-safe only for distinct plans, so each exec holds the plan's lock while it
//! enqueues (the transform itself runs asynchronously on the stream). Dropping a plan
//! binds its context first: cudarc's `CudaFft` destroys the plan with an `unwrap`, and
//! `cufftDestroy` frees the work area in whatever context is current on the dropping
//! thread.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::cufft::sys::{cufftType, double2, float2};
use cudarc::cufft::CudaFft;
use cudarc::driver::{CudaContext, CudaSlice};

use crate::error::Result;

use super::device::{gpu_err, guard, GpuDevice, Libraries};

/// Transform type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FftKind {
    /// f32 real → complex (forward).
    R2C,
    /// complex → f32 real (inverse).
    C2R,
    /// f64 real → complex (forward).
    D2Z,
    /// complex → f64 real (inverse).
    Z2D,
}

/// A cached 2-D plan on the device's stream.
pub struct FftPlan {
    /// `None` only while being dropped.
    plan: Mutex<Option<CudaFft>>,
    ctx: Arc<CudaContext>,
    /// Rows.
    pub ny: usize,
    /// Columns.
    pub nx: usize,
    /// Transform type.
    pub kind: FftKind,
}

/// Per-device plan cache.
#[derive(Default)]
pub(crate) struct FftCache(Mutex<HashMap<(usize, usize, FftKind), Arc<FftPlan>>>);

/// Number of complex values of the half spectrum of an `ny x nx` real array.
pub fn spectrum_len(ny: usize, nx: usize) -> usize {
    ny * (nx / 2 + 1)
}

impl GpuDevice {
    /// The plan for an `ny x nx` transform of `kind`, created on first use.
    ///
    /// Errors: [`crate::Error::BackendUnavailable`] without cuFFT; [`crate::Error::Gpu`] when
    /// cuFFT cannot create the plan (e.g. out of memory for its work area).
    pub fn fft_plan(&self, ny: usize, nx: usize, kind: FftKind) -> Result<Arc<FftPlan>> {
        let key = (ny, nx, kind);
        let poisoned = || gpu_err("cuFFT plan cache", "lock poisoned");
        if let Some(p) = self.ffts.0.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(p.clone());
        }
        Libraries::probe().require_cufft()?;
        if ny == 0 || nx == 0 || ny > i32::MAX as usize || nx > i32::MAX as usize {
            return Err(gpu_err(
                "cuFFT plan",
                format!("unsupported size {ny} x {nx}"),
            ));
        }
        let t = match kind {
            FftKind::R2C => cufftType::CUFFT_R2C,
            FftKind::C2R => cufftType::CUFFT_C2R,
            FftKind::D2Z => cufftType::CUFFT_D2Z,
            FftKind::Z2D => cufftType::CUFFT_Z2D,
        };
        let plan = guard("cufftPlan2d", || {
            // cuFFT's first dimension is the slowest varying one (rows).
            CudaFft::plan_2d(ny as i32, nx as i32, t, self.stream.clone()).map_err(|e| {
                gpu_err(
                    &format!("cufftPlan2d {ny} x {nx} {kind:?}"),
                    format!("{e:?}"),
                )
            })
        })?;
        let p = Arc::new(FftPlan {
            plan: Mutex::new(Some(plan)),
            ctx: self.ctx.clone(),
            ny,
            nx,
            kind,
        });
        let mut g = self.ffts.0.lock().map_err(|_| poisoned())?;
        Ok(g.entry(key).or_insert(p).clone())
    }
}

impl Drop for FftPlan {
    fn drop(&mut self) {
        let plan = match self.plan.get_mut() {
            Ok(p) => p.take(),
            Err(e) => e.into_inner().take(),
        };
        if let Some(plan) = plan {
            // cufftDestroy runs in the current context; a failure would panic in cudarc.
            let _ = self.ctx.bind_to_thread();
            let _ = catch_unwind(AssertUnwindSafe(move || drop(plan)));
        }
    }
}

impl FftPlan {
    /// The plan, locked for one exec (cuFFT: one plan, one thread at a time).
    fn locked(&self) -> Result<MutexGuard<'_, Option<CudaFft>>> {
        self.plan
            .lock()
            .map_err(|_| gpu_err("cuFFT plan", "lock poisoned"))
    }

    fn check(&self, kind: FftKind, real: usize, complex: usize) -> Result<()> {
        let n = self.ny * self.nx;
        let m = spectrum_len(self.ny, self.nx);
        // cuFFT runs in the calling thread's current context; cudarc's exec does not set it.
        self.ctx
            .bind_to_thread()
            .map_err(|e| gpu_err("cuCtxSetCurrent", e))?;
        if self.kind != kind {
            return Err(gpu_err(
                "cuFFT",
                format!("plan is {:?}, {kind:?} requested", self.kind),
            ));
        }
        if real < n || complex < m {
            return Err(gpu_err(
                &format!("cuFFT {kind:?} {} x {}", self.ny, self.nx),
                format!("buffers too short: real {real} (need {n}), complex {complex} (need {m})"),
            ));
        }
        Ok(())
    }

    /// Forward f32 transform `input` (ny·nx reals) → `output` (ny·(nx/2+1) complex).
    pub fn r2c(&self, input: &CudaSlice<f32>, output: &mut CudaSlice<float2>) -> Result<()> {
        self.check(FftKind::R2C, input.len(), output.len())?;
        let plan = self.locked()?;
        plan.as_ref()
            .ok_or_else(|| gpu_err("cuFFT", "plan destroyed"))?
            .exec_r2c(input, output)
            .map_err(|e| gpu_err("cufftExecR2C", format!("{e:?}")))
    }

    /// Inverse f32 transform (unnormalised); `input` may be overwritten.
    pub fn c2r(&self, input: &mut CudaSlice<float2>, output: &mut CudaSlice<f32>) -> Result<()> {
        self.check(FftKind::C2R, output.len(), input.len())?;
        let plan = self.locked()?;
        plan.as_ref()
            .ok_or_else(|| gpu_err("cuFFT", "plan destroyed"))?
            .exec_c2r(input, output)
            .map_err(|e| gpu_err("cufftExecC2R", format!("{e:?}")))
    }

    /// Forward f64 transform.
    pub fn d2z(&self, input: &CudaSlice<f64>, output: &mut CudaSlice<double2>) -> Result<()> {
        self.check(FftKind::D2Z, input.len(), output.len())?;
        let plan = self.locked()?;
        plan.as_ref()
            .ok_or_else(|| gpu_err("cuFFT", "plan destroyed"))?
            .exec_d2z(input, output)
            .map_err(|e| gpu_err("cufftExecD2Z", format!("{e:?}")))
    }

    /// Inverse f64 transform (unnormalised); `input` may be overwritten.
    pub fn z2d(&self, input: &mut CudaSlice<double2>, output: &mut CudaSlice<f64>) -> Result<()> {
        self.check(FftKind::Z2D, output.len(), input.len())?;
        let plan = self.locked()?;
        plan.as_ref()
            .ok_or_else(|| gpu_err("cuFFT", "plan destroyed"))?
            .exec_z2d(input, output)
            .map_err(|e| gpu_err("cufftExecZ2D", format!("{e:?}")))
    }
}
