//! cuFFT 2-D real transforms with plans cached per `(ny, nx, kind)` on each device, through
//! the cuFFT chosen for the device at open ([`super::libraries`]).
//!
//! cuFFT's exec functions do not check buffer lengths, so every call here does: an R2C
//! of `ny x nx` reals writes `ny x (nx/2 + 1)` complex values, a C2R reads as many (and
//! may overwrite them). Transforms are unnormalised (a forward + inverse round trip
//! multiplies by `ny nx`).
//!
//! A plan may be reached from several host threads (a [`GpuDevice`] is `Sync`), but cuFFT
//! is thread-safe only for distinct plans, so each exec holds the plan's lock while it
//! enqueues (the transform itself runs asynchronously on the stream). cuFFT works in the
//! calling thread's current context: every call binds the plan's context first, and a plan
//! whose context cannot be bound when it is dropped is leaked rather than destroyed in the
//! wrong one. A plan that cannot get its work area (`CUFFT_ALLOC_FAILED`) is retried once
//! after the memory pool has returned what it keeps.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::sys::CUdeviceptr;
use cudarc::driver::{
    CudaContext, CudaSlice, DevicePtr, DevicePtrMut, DeviceRepr, ValidAsZeroBits,
};

use crate::error::Result;

use super::device::{gpu_err, GpuDevice};
use super::libraries::{cufft_result_name, Cufft};

/// A single-precision complex value with cuFFT's layout (`cufftComplex`, `float2`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Complex32 {
    pub re: f32,
    pub im: f32,
}

/// A double-precision complex value (`cufftDoubleComplex`, `double2`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Complex64 {
    pub re: f64,
    pub im: f64,
}

// SAFETY: plain-old-data with the C layout of float2 / double2.
unsafe impl DeviceRepr for Complex32 {}
// SAFETY: all-zero bytes are a valid value.
unsafe impl ValidAsZeroBits for Complex32 {}
// SAFETY: as above.
unsafe impl DeviceRepr for Complex64 {}
// SAFETY: as above.
unsafe impl ValidAsZeroBits for Complex64 {}

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

impl FftKind {
    /// The `cufftType` value.
    fn code(self) -> c_int {
        match self {
            FftKind::R2C => 0x2a,
            FftKind::C2R => 0x2c,
            FftKind::D2Z => 0x6a,
            FftKind::Z2D => 0x6c,
        }
    }
}

/// A cached 2-D plan on the device's stream.
pub struct FftPlan {
    /// The cuFFT handle, locked for each exec (`None` once destroyed).
    handle: Mutex<Option<c_int>>,
    cufft: Arc<Cufft>,
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

fn result(r: c_int, what: &str) -> Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(gpu_err(what, format!("{} ({r})", cufft_result_name(r))))
    }
}

impl GpuDevice {
    /// The plan for an `ny x nx` transform of `kind`, created on first use.
    ///
    /// Errors: [`crate::Error::Gpu`] when cuFFT cannot create the plan (e.g. out of memory
    /// for its work area, after one retry with the memory pool trimmed).
    pub fn fft_plan(&self, ny: usize, nx: usize, kind: FftKind) -> Result<Arc<FftPlan>> {
        let key = (ny, nx, kind);
        let poisoned = || gpu_err("cuFFT plan cache", "lock poisoned");
        if let Some(p) = self.ffts.0.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(p.clone());
        }
        let p = Arc::new(FftPlan::new(self, &self.cufft, ny, nx, kind)?);
        let mut g = self.ffts.0.lock().map_err(|_| poisoned())?;
        Ok(g.entry(key).or_insert(p).clone())
    }
}

impl FftPlan {
    /// A plan of `cufft` bound to `dev`'s stream.
    pub(crate) fn new(
        dev: &GpuDevice,
        cufft: &Arc<Cufft>,
        ny: usize,
        nx: usize,
        kind: FftKind,
    ) -> Result<FftPlan> {
        if ny == 0 || nx == 0 || ny > i32::MAX as usize || nx > i32::MAX as usize {
            return Err(gpu_err(
                "cuFFT plan",
                format!("unsupported size {ny} x {nx}"),
            ));
        }
        let what = format!("cufftPlan2d {ny} x {nx} {kind:?} ({cufft:?})");
        dev.ctx
            .bind_to_thread()
            .map_err(|e| gpu_err("cuCtxSetCurrent", e))?;
        let mut h: c_int = 0;
        // cuFFT's first dimension is the slowest varying one (rows).
        // SAFETY: a valid out-pointer; sizes checked above.
        let mut r = unsafe { (cufft.f.plan2d)(&mut h, ny as c_int, nx as c_int, kind.code()) };
        if r == 2 {
            // CUFFT_ALLOC_FAILED: the work area did not fit; the pool may hold freed memory.
            super::device::trim_pool(&dev.ctx);
            // SAFETY: as above.
            r = unsafe { (cufft.f.plan2d)(&mut h, ny as c_int, nx as c_int, kind.code()) };
        }
        result(r, &what)?;
        let plan = FftPlan {
            handle: Mutex::new(Some(h)),
            cufft: cufft.clone(),
            ctx: dev.ctx.clone(),
            ny,
            nx,
            kind,
        };
        // SAFETY: a live plan and a stream of the same context.
        let r = unsafe { (cufft.f.set_stream)(h, dev.stream.cu_stream() as *mut c_void) };
        result(r, "cufftSetStream")?;
        Ok(plan)
    }

    /// The handle, locked for one exec (cuFFT: one plan, one thread at a time), with the
    /// plan's context current on this thread.
    fn locked(
        &self,
        kind: FftKind,
        real: usize,
        complex: usize,
    ) -> Result<MutexGuard<'_, Option<c_int>>> {
        let n = self.ny * self.nx;
        let m = spectrum_len(self.ny, self.nx);
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
        self.ctx
            .bind_to_thread()
            .map_err(|e| gpu_err("cuCtxSetCurrent", e))?;
        self.handle
            .lock()
            .map_err(|_| gpu_err("cuFFT plan", "lock poisoned"))
    }

    /// Runs the plan from device address `input` to `output`, whose buffers hold `real`
    /// real and `complex` complex values (checked against the plan's size).
    fn exec(
        &self,
        kind: FftKind,
        real: usize,
        complex: usize,
        input: CUdeviceptr,
        output: CUdeviceptr,
    ) -> Result<()> {
        let g = self.locked(kind, real, complex)?;
        let h = g.ok_or_else(|| gpu_err("cuFFT", "plan destroyed"))?;
        let f = &self.cufft.f;
        let (i, o) = (input as *mut c_void, output as *mut c_void);
        // SAFETY: lengths checked; both buffers are device memory of the plan's context and
        // the pointer types are the ones of the plan's transform.
        let (r, name) = unsafe {
            match kind {
                FftKind::R2C => ((f.exec_r2c)(h, i.cast(), o), "cufftExecR2C"),
                FftKind::C2R => ((f.exec_c2r)(h, i, o.cast()), "cufftExecC2R"),
                FftKind::D2Z => ((f.exec_d2z)(h, i.cast(), o), "cufftExecD2Z"),
                FftKind::Z2D => ((f.exec_z2d)(h, i, o.cast()), "cufftExecZ2D"),
            }
        };
        result(r, name)
    }

    /// Forward f32 transform `input` (ny·nx reals) → `output` (ny·(nx/2+1) complex).
    pub fn r2c(&self, input: &CudaSlice<f32>, output: &mut CudaSlice<Complex32>) -> Result<()> {
        let s = input.stream().clone();
        let (real, complex) = (input.len(), output.len());
        let (i, _ri) = input.device_ptr(&s);
        let (o, _ro) = output.device_ptr_mut(&s);
        self.exec(FftKind::R2C, real, complex, i, o)
    }

    /// Inverse f32 transform (unnormalised); `input` may be overwritten.
    pub fn c2r(&self, input: &mut CudaSlice<Complex32>, output: &mut CudaSlice<f32>) -> Result<()> {
        let s = input.stream().clone();
        let (complex, real) = (input.len(), output.len());
        let (i, _ri) = input.device_ptr_mut(&s);
        let (o, _ro) = output.device_ptr_mut(&s);
        self.exec(FftKind::C2R, real, complex, i, o)
    }

    /// Forward f64 transform.
    pub fn d2z(&self, input: &CudaSlice<f64>, output: &mut CudaSlice<Complex64>) -> Result<()> {
        let s = input.stream().clone();
        let (real, complex) = (input.len(), output.len());
        let (i, _ri) = input.device_ptr(&s);
        let (o, _ro) = output.device_ptr_mut(&s);
        self.exec(FftKind::D2Z, real, complex, i, o)
    }

    /// Inverse f64 transform (unnormalised); `input` may be overwritten.
    pub fn z2d(&self, input: &mut CudaSlice<Complex64>, output: &mut CudaSlice<f64>) -> Result<()> {
        let s = input.stream().clone();
        let (complex, real) = (input.len(), output.len());
        let (i, _ri) = input.device_ptr_mut(&s);
        let (o, _ro) = output.device_ptr_mut(&s);
        self.exec(FftKind::Z2D, real, complex, i, o)
    }
}

impl Drop for FftPlan {
    fn drop(&mut self) {
        let h = match self.handle.get_mut() {
            Ok(h) => h.take(),
            Err(e) => e.into_inner().take(),
        };
        if let Some(h) = h {
            // cufftDestroy frees the work area in the current context: without ours bound,
            // leak the plan rather than free in another context.
            if self.ctx.bind_to_thread().is_ok() {
                // SAFETY: a live plan, destroyed once, with its context current.
                let _ = unsafe { (self.cufft.f.destroy)(h) };
            }
        }
    }
}

/// Checks that `cufft` works on `dev`: an 8 × 6 R2C of a unit impulse must give a flat
/// spectrum of ones, its C2R the impulse times 48, and a D2Z the same spectrum — catching a
/// cuFFT without kernels for this architecture (CUDA 13's on a V100) at open, not at the
/// first image.
pub(crate) fn self_test(dev: &GpuDevice, cufft: &Arc<Cufft>) -> Result<()> {
    use super::buffer::{download_vec, upload};
    let (ny, nx) = (8usize, 6usize);
    let m = spectrum_len(ny, nx);
    let mut impulse = vec![0f32; ny * nx];
    impulse[0] = 1.0;
    let d_in = upload(dev, &impulse, "cuFFT self-test input")?;
    let mut d_spec = super::buffer::alloc::<Complex32>(dev, m, "cuFFT self-test spectrum")?;
    let mut d_back = super::buffer::alloc::<f32>(dev, ny * nx, "cuFFT self-test output")?;
    let fwd = FftPlan::new(dev, cufft, ny, nx, FftKind::R2C)?;
    let inv = FftPlan::new(dev, cufft, ny, nx, FftKind::C2R)?;
    fwd.r2c(&d_in, &mut d_spec)?;
    let spec = download_vec(dev, &d_spec, m, "cuFFT self-test spectrum")?;
    inv.c2r(&mut d_spec, &mut d_back)?;
    let back = download_vec(dev, &d_back, ny * nx, "cuFFT self-test output")?;
    let impulse64: Vec<f64> = impulse.iter().map(|&v| v as f64).collect();
    let d64 = upload(dev, &impulse64, "cuFFT self-test input")?;
    let mut s64 = super::buffer::alloc::<Complex64>(dev, m, "cuFFT self-test spectrum")?;
    FftPlan::new(dev, cufft, ny, nx, FftKind::D2Z)?.d2z(&d64, &mut s64)?;
    let spec64 = download_vec(dev, &s64, m, "cuFFT self-test spectrum")?;
    let flat = spec
        .iter()
        .all(|c| (c.re - 1.0).abs() < 1e-6 && c.im.abs() < 1e-6)
        && spec64
            .iter()
            .all(|c| (c.re - 1.0).abs() < 1e-12 && c.im.abs() < 1e-12);
    let round_trip = back
        .iter()
        .enumerate()
        .all(|(i, &v)| (v - if i == 0 { (ny * nx) as f32 } else { 0.0 }).abs() < 1e-4);
    if flat && round_trip {
        Ok(())
    } else {
        Err(gpu_err(
            "cuFFT self-test",
            "a small transform gave wrong values on this device",
        ))
    }
}
