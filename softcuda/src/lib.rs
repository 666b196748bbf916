//! softcuda — a software CUDA device for aiaprep's tests.
//!
//! A shared library that stands in for NVIDIA's `libcuda` (the driver API), `libnvrtc`
//! (the run-time compiler) and `libcufft`, so that aiaprep's whole GPU host path — contexts,
//! the memory pool, streams, events, module loading, every kernel launch and its argument
//! packing, cuFFT plans — runs on a machine without a GPU. It is a test tool, not a
//! product: it proves plumbing, never speed (the device name says "softcuda, emulated").
//!
//! Layout of a device directory (made by `scripts/softcuda.sh build`):
//! `libaiaprep_softcuda.so` (this crate: all state and the driver API) and small C shims
//! from `shims/` that give it the faces of one CUDA installation: `libcuda.so` (driver
//! version, device model, and `cuEventElapsedTime_v2` only for CUDA ≥ 12.8 drivers),
//! `libnvrtc.so*` (NVRTC version and its architecture list) and `libcufft.so*` (cuFFT
//! version and the architectures it runs on). See README.md beside this file for what is
//! modelled and how faults are injected.
//!
//! Modules:
//! * [`config`] — device model and faults from the environment;
//! * [`state`] — handles, contexts, the allocation table, hazards between streams;
//! * [`memory`] — device memory with guard pages, poison, canaries and quarantine;
//! * [`stream`] — one worker thread per stream, events, the operations they run;
//! * [`exec`] — loaded kernel modules and launches on a worker pool;
//! * [`nvrtc`] — the compiler: CUDA C → host shared object under `kernels/emulate.h`;
//! * [`fft`] — cuFFT 2-D real transforms with cuFFT's layouts and semantics;
//! * [`driver`] — the exported `cu*` entry points.

#![allow(clippy::missing_safety_doc)]
#![allow(non_snake_case)]

pub mod config;
pub mod diag;
pub mod driver;
pub mod exec;
pub mod fft;
pub mod memory;
pub mod nvrtc;
pub mod state;
pub mod stream;

#[cfg(test)]
mod tests;

/// CUDA driver result codes used here (values of `CUresult`).
pub mod cu {
    pub const SUCCESS: i32 = 0;
    pub const INVALID_VALUE: i32 = 1;
    pub const OUT_OF_MEMORY: i32 = 2;
    pub const NOT_INITIALIZED: i32 = 3;
    pub const NO_DEVICE: i32 = 100;
    pub const INVALID_DEVICE: i32 = 101;
    pub const INVALID_IMAGE: i32 = 200;
    pub const INVALID_CONTEXT: i32 = 201;
    pub const NO_BINARY_FOR_GPU: i32 = 209;
    pub const INVALID_PTX: i32 = 218;
    pub const UNSUPPORTED_PTX_VERSION: i32 = 222;
    pub const INVALID_HANDLE: i32 = 400;
    pub const ILLEGAL_STATE: i32 = 401;
    pub const NOT_FOUND: i32 = 500;
    pub const NOT_READY: i32 = 600;
    pub const ILLEGAL_ADDRESS: i32 = 700;
    pub const LAUNCH_OUT_OF_RESOURCES: i32 = 701;
    pub const PRIMARY_CONTEXT_ACTIVE: i32 = 708;
    pub const LAUNCH_FAILED: i32 = 719;
    pub const NOT_PERMITTED: i32 = 800;
    pub const NOT_SUPPORTED: i32 = 801;
    pub const UNKNOWN: i32 = 999;

    /// `(name, description)` of a code, as `cuGetErrorName` / `cuGetErrorString`.
    pub fn describe(code: i32) -> Option<(&'static str, &'static str)> {
        Some(match code {
            SUCCESS => ("CUDA_SUCCESS\0", "no error\0"),
            INVALID_VALUE => ("CUDA_ERROR_INVALID_VALUE\0", "invalid argument\0"),
            OUT_OF_MEMORY => ("CUDA_ERROR_OUT_OF_MEMORY\0", "out of memory\0"),
            NOT_INITIALIZED => ("CUDA_ERROR_NOT_INITIALIZED\0", "initialization error\0"),
            NO_DEVICE => (
                "CUDA_ERROR_NO_DEVICE\0",
                "no CUDA-capable device is detected\0",
            ),
            INVALID_DEVICE => ("CUDA_ERROR_INVALID_DEVICE\0", "invalid device ordinal\0"),
            INVALID_IMAGE => (
                "CUDA_ERROR_INVALID_IMAGE\0",
                "device kernel image is invalid\0",
            ),
            INVALID_CONTEXT => ("CUDA_ERROR_INVALID_CONTEXT\0", "invalid device context\0"),
            NO_BINARY_FOR_GPU => (
                "CUDA_ERROR_NO_BINARY_FOR_GPU\0",
                "no kernel image is available for execution on the device\0",
            ),
            INVALID_PTX => ("CUDA_ERROR_INVALID_PTX\0", "a PTX JIT compilation failed\0"),
            UNSUPPORTED_PTX_VERSION => (
                "CUDA_ERROR_UNSUPPORTED_PTX_VERSION\0",
                "the provided PTX was compiled with an unsupported toolchain.\0",
            ),
            INVALID_HANDLE => ("CUDA_ERROR_INVALID_HANDLE\0", "invalid resource handle\0"),
            ILLEGAL_STATE => (
                "CUDA_ERROR_ILLEGAL_STATE\0",
                "the operation cannot be performed in the present state\0",
            ),
            NOT_FOUND => ("CUDA_ERROR_NOT_FOUND\0", "named symbol not found\0"),
            NOT_READY => ("CUDA_ERROR_NOT_READY\0", "device not ready\0"),
            ILLEGAL_ADDRESS => (
                "CUDA_ERROR_ILLEGAL_ADDRESS\0",
                "an illegal memory access was encountered\0",
            ),
            LAUNCH_OUT_OF_RESOURCES => (
                "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES\0",
                "too many resources requested for launch\0",
            ),
            PRIMARY_CONTEXT_ACTIVE => (
                "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE\0",
                "primary context active\0",
            ),
            LAUNCH_FAILED => ("CUDA_ERROR_LAUNCH_FAILED\0", "unspecified launch failure\0"),
            NOT_PERMITTED => ("CUDA_ERROR_NOT_PERMITTED\0", "operation not permitted\0"),
            NOT_SUPPORTED => ("CUDA_ERROR_NOT_SUPPORTED\0", "operation not supported\0"),
            UNKNOWN => ("CUDA_ERROR_UNKNOWN\0", "unknown error\0"),
            _ => return None,
        })
    }

    /// Errors after which the context is unusable (a real GPU's "sticky" errors).
    pub fn is_sticky(code: i32) -> bool {
        matches!(code, ILLEGAL_ADDRESS | LAUNCH_FAILED)
    }
}

/// `Result` of an entry point body: `Err(code)` is returned to the caller as is.
pub type CuResult<T = ()> = Result<T, i32>;

/// Turns a body's result into the code an entry point returns.
pub(crate) fn code(r: CuResult) -> i32 {
    match r {
        Ok(()) => cu::SUCCESS,
        Err(c) => c,
    }
}
