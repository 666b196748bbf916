//! The CUDA path (feature `cuda`): the same operations as the CPU path, on an NVIDIA GPU.
//!
//! # Layers
//! * [`device`] — library probe, device selection, compute capability → NVRTC target;
//! * [`module`] — NVRTC compilation of the embedded `kernels/*.cu` (cached per target)
//!   and loaded modules per device;
//! * [`buffer`] — device and pinned host buffers with typed errors;
//! * [`fft`] — cuFFT 2-D real plans cached per shape, lengths checked before every exec;
//! * [`libraries`] — finding NVRTC, cuFFT and the driver (`AIAPREP_CUDA_LIB_DIR`), once;
//! * [`chain`] — [`GpuEngine`], the one GPU engine: the CUDA backend behind
//!   `crate::engine::Engine` (what `select_engines` returns for `Backend::Cuda | Backend::Auto`) and
//!   [`GpuEngine::process`], which keeps one image on the device from the int16 (or f32)
//!   upload to the int16 (or f32) download and times every stage with CUDA events — what
//!   `prep` runs and `examples/gpu_timing` times;
//! * operations on device buffers: [`convert`], [`register`], [`deconvolve`], [`psf`],
//!   [`fulldisk`].
//!
//! # Libraries, versions and drivers
//! * **cudarc 0.19 with `cuda-13000` and `dynamic-loading`** for the driver API; NVRTC and
//!   cuFFT through function tables of our own ([`libraries`]). Nothing CUDA is needed at
//!   build time; libraries are opened with `dlopen` on first use, every candidate that
//!   loads is kept, and each device uses the newest NVRTC and cuFFT that work with it —
//!   so one binary works with a CUDA 13 installation (H100/H200) and with CUDA 12
//!   libraries (V100 clusters: CUDA 13 dropped `sm_70`), also when both are visible. Only
//!   driver-API functions that exist since CUDA 11/12 are called.
//! * **Where libraries are found:** `AIAPREP_CUDA_LIB_DIR` when set, else the dynamic
//!   loader's normal search — `LD_LIBRARY_PATH`, the `ldconfig` cache
//!   (`/etc/ld.so.conf.d`, e.g. `/usr/local/cuda/lib64` when configured), and the
//!   executable's rpath. `libcuda.so.1` comes with the NVIDIA driver;
//!   NVRTC and cuFFT come with the CUDA toolkit or the PyPI wheels
//!   (`nvidia-cuda-nvrtc-cu12`, `nvidia-cufft-cu12`; point `LD_LIBRARY_PATH` at their
//!   `lib` folders).
//! * **Minimum driver:** the one that supports the NVRTC major version found: CUDA 12.x
//!   NVRTC needs a ≥ 525 driver (kernels are loaded as cubin for the exact target, so
//!   minor-version compatibility applies; PTX for an unlisted architecture needs a driver
//!   at least as new as that NVRTC), CUDA 13 needs ≥ 580. Compute capability ≥ 7.0
//!   (V100); `atomicAdd(double)` in the PSF kernel needs ≥ 6.0.
//! * **Without a GPU** (no `libcuda`, no device, too old a device, no NVRTC or cuFFT that
//!   works with it): [`GpuDevice::open`] returns [`crate::Error::BackendUnavailable`] with
//!   the reason — before the first image: it compiles and loads every kernel and runs a
//!   test transform; nothing panics — the libraries are probed before any context exists
//!   and driver calls run under `catch_unwind`. The CPU path is unaffected; `auto`
//!   backends fall back to it. The tests run all of this on a software device
//!   (`softcuda/` in the repository) when there is no GPU.
//!
//! # Numerics
//! Pixels are f32 on the device, geometry f64, kernels compiled without FMA contraction
//! ([`module::COMPILE_OPTIONS`]). Register reproduces scipy/sunpy rules with coordinates
//! bit-identical to the CPU path's (see `kernels/resample.cu`); the spline prefilter is
//! evaluated as its truncated impulse response (exact to below f32 resolution) for
//! parallelism, with scipy's recursive algorithm available as
//! [`register::Prefilter::Recursive`]. Deconvolution
//! runs in f32 with cuFFT (the OTF is made from the f64 PSF in f64 and rounded once);
//! the PSF is synthesised in f64.

pub mod buffer;
pub mod chain;
pub mod convert;
pub mod deconvolve;
pub mod device;
pub mod fft;
pub mod fulldisk;
pub mod libraries;
pub mod module;
pub mod psf;
pub mod register;

use cudarc::driver::{CudaSlice, LaunchArgs, LaunchConfig};
use ndarray::{Array2, ArrayView2};

use crate::error::Result;

pub use buffer::PinnedBuffer;
pub use chain::{
    DeconvolveJob, DeviceTimes, GpuEngine, Input, Job, OutputKind, Pixels, Processed, RegisterJob,
    RegisterOutcome,
};
pub use convert::{I16Scaling, Stats};
pub use deconvolve::{DeconvolveParams, DeviceOtf};
pub use device::{device_count, Arch, GpuDevice, Libraries};
pub use fft::{Complex32, Complex64, FftKind};
pub use fulldisk::FullDiskParams;
pub use psf::{PsfFilter, PsfParams};
pub use register::{Prefilter, RegisterParams};

/// Threads per block of the 1-D kernels and the reductions (`AIA_BLOCK`).
pub(crate) const BLOCK: u32 = 256;
/// Blocks of the first pass of every reduction.
pub(crate) const REDUCE_BLOCKS: usize = 1024;

/// Grid-stride launch over `n` elements.
pub(crate) fn cfg_1d(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 65_535 * 8) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The most rows a [`cfg_2d`] launch covers: CUDA limits `gridDim.y` to 65535 blocks
/// (of 8 rows each); a taller grid fails to launch.
pub(crate) const MAX_ROWS_2D: usize = 65_535 * 8;

/// One thread per pixel of an `nx x ny` image, 32 x 8 blocks (`ny <=` [`MAX_ROWS_2D`]).
pub(crate) fn cfg_2d(nx: usize, ny: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            nx.div_ceil(32).max(1) as u32,
            ny.div_ceil(8).max(1) as u32,
            1,
        ),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    }
}

/// Launches a kernel whose arguments were pushed in the order of its signature.
pub(crate) fn launch(mut b: LaunchArgs<'_>, cfg: LaunchConfig, name: &str) -> Result<()> {
    // SAFETY: every caller pushes arguments matching the kernel's C signature (types and
    // order), with buffers at least as long as the sizes passed.
    unsafe { b.launch(cfg) }
        .map(|_| ())
        .map_err(|e| device::gpu_err(&format!("launching {name}"), e))
}

/// An f32 image resident on the device, row-major `ny x nx`, NaN = missing.
pub struct DeviceImage {
    pub(crate) data: CudaSlice<f32>,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
}

impl DeviceImage {
    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    /// Whether the image has no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies a host image (`[row, col]`) to the device.
    pub fn upload(dev: &GpuDevice, data: ArrayView2<f32>) -> Result<DeviceImage> {
        let (ny, nx) = data.dim();
        let host = buffer::contiguous(&data);
        Ok(DeviceImage {
            data: buffer::upload(dev, &host, "f32 image")?,
            nx,
            ny,
        })
    }

    /// Copies the image back to the host.
    pub fn download(&self, dev: &GpuDevice) -> Result<Array2<f32>> {
        // Every element is overwritten by the copy: a recycled buffer (in a batch) will do.
        let mut v = crate::buffers::take_f32(self.len());
        buffer::download(dev, &self.data, &mut v, "f32 image")?;
        buffer::to_array(v, self.nx, self.ny)
    }

    /// A device copy.
    pub fn try_clone(&self, dev: &GpuDevice) -> Result<DeviceImage> {
        let mut d = buffer::alloc::<f32>(dev, self.len(), "f32 image copy")?;
        dev.stream
            .memcpy_dtod(&self.data, &mut d)
            .map_err(|e| device::gpu_err("device copy", e))?;
        Ok(DeviceImage {
            data: d,
            nx: self.nx,
            ny: self.ny,
        })
    }
}
