//! Device and pinned host buffers with typed errors.
//!
//! Allocation failures become [`crate::Error::Gpu`] naming what was allocated, the size in
//! bytes and the device's free/total memory; copies check lengths first (cudarc asserts,
//! which would panic).

use cudarc::driver::sys::CUresult;
use cudarc::driver::{CudaSlice, DeviceRepr, DriverError, PinnedHostSlice, ValidAsZeroBits};
use ndarray::{Array2, ArrayView2};

use crate::error::Result;

use super::device::{gpu_err, GpuDevice};

fn alloc_error(dev: &GpuDevice, what: &str, bytes: usize, e: DriverError) -> crate::Error {
    if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        let mem = dev
            .memory()
            .map(|(free, total)| format!("{free} bytes free of {total}"))
            .unwrap_or_else(|_| "free memory unknown".into());
        gpu_err(
            &format!("out of device memory allocating {what}"),
            format!("{bytes} bytes requested, {mem}"),
        )
    } else {
        gpu_err(&format!("allocating {what} ({bytes} bytes)"), e)
    }
}

/// A device buffer of `len` elements whose contents are undefined until written.
///
/// Every caller in this module tree writes the whole buffer (kernel or copy) before
/// reading it. Out of memory, the memory pool returns what it keeps
/// ([`super::device::trim_pool`]) and the allocation is tried once more.
pub(crate) fn alloc<T: DeviceRepr>(
    dev: &GpuDevice,
    len: usize,
    what: &str,
) -> Result<CudaSlice<T>> {
    let bytes = len.saturating_mul(std::mem::size_of::<T>());
    // SAFETY: uninitialised device memory; see the contract above.
    match unsafe { dev.stream.alloc::<T>(len.max(1)) } {
        Ok(s) => Ok(s),
        Err(e) if e.0 == CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
            super::device::trim_pool(&dev.ctx);
            // SAFETY: as above.
            unsafe { dev.stream.alloc::<T>(len.max(1)) }
                .map_err(|e| alloc_error(dev, what, bytes, e))
        }
        Err(e) => Err(alloc_error(dev, what, bytes, e)),
    }
}

/// A zeroed device buffer.
pub(crate) fn alloc_zeros<T: DeviceRepr + ValidAsZeroBits>(
    dev: &GpuDevice,
    len: usize,
    what: &str,
) -> Result<CudaSlice<T>> {
    let mut s = alloc::<T>(dev, len, what)?;
    zero(dev, &mut s)?;
    Ok(s)
}

/// Zeroes an existing buffer.
pub(crate) fn zero<T: DeviceRepr + ValidAsZeroBits>(
    dev: &GpuDevice,
    buf: &mut CudaSlice<T>,
) -> Result<()> {
    dev.stream
        .memset_zeros(buf)
        .map_err(|e| gpu_err("cuMemsetD8Async", e))
}

/// Copies `host` into a new device buffer.
pub(crate) fn upload<T: DeviceRepr>(
    dev: &GpuDevice,
    host: &[T],
    what: &str,
) -> Result<CudaSlice<T>> {
    let mut d = alloc::<T>(dev, host.len(), what)?;
    upload_into(dev, host, &mut d, what)?;
    Ok(d)
}

/// Copies `host` into the start of `dst` (which must be at least as long) and waits for
/// the copy, so the caller may drop or change `host` as soon as this returns.
///
/// `host` is pageable memory. cudarc issues `cuMemcpyHtoDAsync`, for which CUDA's "API
/// synchronization behavior" only says a pageable transfer *might* be synchronous with
/// respect to the host; when the source may be released is not promised (and on systems
/// where the GPU reads pageable memory directly, e.g. HMM/ATS on Grace Hopper, it need
/// not be staged at all). Uploads come first in every operation here, so the wait costs
/// little more than the copy itself. Page-locked transfers ([`PinnedBuffer`]) do not come
/// through here.
pub(crate) fn upload_into<T: DeviceRepr>(
    dev: &GpuDevice,
    host: &[T],
    dst: &mut CudaSlice<T>,
    what: &str,
) -> Result<()> {
    if host.is_empty() {
        return Ok(());
    }
    if dst.len() < host.len() {
        return Err(gpu_err(
            &format!("uploading {what}"),
            format!("{} elements into a buffer of {}", host.len(), dst.len()),
        ));
    }
    dev.stream
        .memcpy_htod(host, dst)
        .map_err(|e| gpu_err(&format!("uploading {what}"), e))?;
    dev.synchronize()
}

/// Copies the first `host.len()` elements of `src` to `host` and waits for the copy.
pub(crate) fn download<T: DeviceRepr>(
    dev: &GpuDevice,
    src: &CudaSlice<T>,
    host: &mut [T],
    what: &str,
) -> Result<()> {
    if host.is_empty() {
        return Ok(());
    }
    if src.len() < host.len() {
        return Err(gpu_err(
            &format!("downloading {what}"),
            format!("{} elements from a buffer of {}", host.len(), src.len()),
        ));
    }
    let view = src.slice(0..host.len());
    dev.stream
        .memcpy_dtoh(&view, host)
        .map_err(|e| gpu_err(&format!("downloading {what}"), e))?;
    dev.synchronize()
}

/// Downloads `src` into a new vector of `len` elements.
pub(crate) fn download_vec<T: DeviceRepr + Clone + Default>(
    dev: &GpuDevice,
    src: &CudaSlice<T>,
    len: usize,
    what: &str,
) -> Result<Vec<T>> {
    let mut v = vec![T::default(); len];
    download(dev, src, &mut v, what)?;
    Ok(v)
}

/// The contiguous row-major data of a 2-D view (borrowed when already contiguous).
pub(crate) fn contiguous<'a, T: Clone>(view: &'a ArrayView2<'a, T>) -> std::borrow::Cow<'a, [T]> {
    match view.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(view.iter().cloned().collect()),
    }
}

/// `ny x nx` array from row-major data.
pub(crate) fn to_array<T>(data: Vec<T>, nx: usize, ny: usize) -> Result<Array2<T>> {
    Array2::from_shape_vec((ny, nx), data).map_err(|e| gpu_err("shaping the result", e))
}

/// Page-locked host memory for fast, asynchronous transfers (e.g. the int16 image in
/// and out of a pipeline).
///
/// Allocated without the write-combined flag so the host can also read it at full speed.
/// Reads of the contents synchronise the device stream first.
pub struct PinnedBuffer<T: DeviceRepr + ValidAsZeroBits> {
    pub(crate) inner: PinnedHostSlice<T>,
}

impl<T: DeviceRepr + ValidAsZeroBits> PinnedBuffer<T> {
    /// `len` elements of page-locked host memory (contents zeroed).
    pub fn new(dev: &GpuDevice, len: usize) -> Result<PinnedBuffer<T>> {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        // SAFETY: the memory is zeroed below before any read.
        let mut inner =
            unsafe { dev.ctx.alloc_pinned_with_flags::<T>(len.max(1), 0) }.map_err(|e| {
                gpu_err(
                    "allocating pinned host memory",
                    format!("{bytes} bytes: {e}"),
                )
            })?;
        let s = inner
            .as_mut_slice()
            .map_err(|e| gpu_err("pinned host memory", e))?;
        // SAFETY: T is ValidAsZeroBits, so all-zero bytes are a valid T.
        unsafe { std::ptr::write_bytes(s.as_mut_ptr(), 0, s.len()) };
        Ok(PinnedBuffer { inner })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The contents, after waiting for all work on `dev`'s stream.
    pub fn as_slice(&self, dev: &GpuDevice) -> Result<&[T]> {
        dev.synchronize()?;
        self.inner
            .as_slice()
            .map_err(|e| gpu_err("pinned host memory", e))
    }

    /// Mutable contents, after waiting for all work on `dev`'s stream.
    pub fn as_mut_slice(&mut self, dev: &GpuDevice) -> Result<&mut [T]> {
        dev.synchronize()?;
        self.inner
            .as_mut_slice()
            .map_err(|e| gpu_err("pinned host memory", e))
    }
}
