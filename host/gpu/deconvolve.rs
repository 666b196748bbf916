//! Richardson–Lucy deconvolution on the GPU (aiapy semantics, semantics.md §3):
//! cuFFT R2C/C2R in f32 with the element-wise steps fused in `kernels/rl.cu`.
//!
//! Missing (NaN) pixels are filled with 0 before and restored as NaN after; negatives are
//! clipped to 0 (`clip_negative`); the initial estimate is the image; periodic boundary.
//! The ratio `d / e` is guarded (a deliberate deviation from aiapy's unguarded division):
//! by default exactly as the CPU path ([`crate::cpu::deconvolve::ratio`]: the quotient
//! where it is finite, else 0); with [`DeconvolveParams::floor`] > 0 by `d / max(e, floor)`.
//! Any size works (odd sizes too): the PSF peak at `[ny/2, nx/2]` is moved to `[0, 0]`
//! (`ifftshift`, as the CPU path).

use cudarc::driver::CudaSlice;
use ndarray::ArrayView2;

use crate::error::{Error, Result, Source};

use super::buffer::{self, alloc};
use super::device::GpuDevice;
use super::fft::{spectrum_len, Complex32, Complex64, FftKind};
use super::launch::rl;
use super::{cfg_1d, DeviceImage};

/// Options of one deconvolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeconvolveParams {
    /// Richardson–Lucy iterations (aiapy default 25).
    pub iterations: usize,
    /// Guard of the ratio `d / e`: 0 (the default) = the CPU path's rule (the quotient
    /// where finite, else 0); > 0 = `d / max(e, floor)` (DN).
    pub floor: f32,
    /// Clip negative pixels to 0 first (aiapy `clip_negative=True`).
    pub clip_negative: bool,
}

impl Default for DeconvolveParams {
    fn default() -> Self {
        DeconvolveParams {
            iterations: 25,
            floor: 0.0,
            clip_negative: true,
        }
    }
}

/// The optical transfer function `rfft2(ifftshift(psf))` on the device (f32 complex half
/// spectrum, row-major `ny x (nx/2 + 1)`, unnormalised, computed in f64 and rounded), for
/// images of `ny x nx`.
pub struct DeviceOtf {
    pub(crate) spectrum: CudaSlice<Complex32>,
    /// Columns of the images it applies to.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
}

fn shape_err(reason: String) -> Error {
    Error::Shape {
        file: Source::memory(),
        reason,
    }
}

/// OTF from a centred f64 PSF already on the device (`ny x nx` values, peak at
/// `[ny/2, nx/2]`; any non-zero size).
pub fn otf_from_device_psf(
    dev: &GpuDevice,
    psf: &CudaSlice<f64>,
    nx: usize,
    ny: usize,
) -> Result<DeviceOtf> {
    if nx == 0 || ny == 0 {
        return Err(shape_err(format!("empty PSF ({ny} x {nx})")));
    }
    if psf.len() < nx * ny {
        return Err(shape_err(format!(
            "PSF buffer holds {} values, {ny} x {nx} needs {}",
            psf.len(),
            nx * ny
        )));
    }
    let n = nx * ny;
    let m = spectrum_len(ny, nx);
    let mut shifted = alloc::<f64>(dev, n, "shifted PSF")?;
    rl::otf_shift_f64(dev, cfg_1d(n), psf, &mut shifted, nx as i32, ny as i32)?;
    let mut spec64 = alloc::<Complex64>(dev, m, "OTF (f64)")?;
    dev.fft_plan(ny, nx, FftKind::D2Z)?
        .d2z(&shifted, &mut spec64)?;
    let mut spectrum = alloc::<Complex32>(dev, m, "OTF")?;
    rl::complex_f64_to_f32(dev, cfg_1d(m), &spec64, &mut spectrum, m as i64)?;
    Ok(DeviceOtf { spectrum, nx, ny })
}

/// OTF of a centred host PSF (`[row, col]`, peak at `[ny/2, nx/2]`).
pub fn otf_from_psf(dev: &GpuDevice, psf: ArrayView2<f64>) -> Result<DeviceOtf> {
    let (ny, nx) = psf.dim();
    let host = buffer::contiguous(&psf);
    if host.iter().any(|v| !v.is_finite()) {
        return Err(Error::BadPsf {
            file: Source::memory(),
            reason: "non-finite PSF value".into(),
        });
    }
    let d = buffer::upload(dev, &host, "PSF")?;
    otf_from_device_psf(dev, &d, nx, ny)
}

/// Deconvolves a device image (consumed) with a cached OTF.
pub fn deconvolve_device(
    dev: &GpuDevice,
    img: DeviceImage,
    otf: &DeviceOtf,
    p: &DeconvolveParams,
) -> Result<DeviceImage> {
    let (nx, ny) = (img.nx, img.ny);
    if (nx, ny) != (otf.nx, otf.ny) {
        return Err(shape_err(format!(
            "image {ny} x {nx} but PSF/OTF {} x {}",
            otf.ny, otf.nx
        )));
    }
    let n = nx * ny;
    let m = spectrum_len(ny, nx);
    let n64 = n as i64;
    let m64 = m as i64;
    let scale = 1.0f32 / (n as f32);
    let mut d = img.data;
    let mut u = alloc::<f32>(dev, n, "RL estimate")?;
    let mut e = alloc::<f32>(dev, n, "RL scratch")?;
    let mut mask = alloc::<u8>(dev, n, "RL NaN mask")?;
    let mut spec = alloc::<Complex32>(dev, m, "RL spectrum")?;
    let fwd = dev.fft_plan(ny, nx, FftKind::R2C)?;
    let inv = dev.fft_plan(ny, nx, FftKind::C2R)?;
    let clip = p.clip_negative as i32;
    let (plain, conj) = (0i32, 1i32);

    rl::rl_prepare(dev, cfg_1d(n), &mut d, &mut u, &mut mask, n64, clip)?;
    for _ in 0..p.iterations {
        fwd.r2c(&u, &mut spec)?;
        rl::rl_mul_otf(dev, cfg_1d(m), &mut spec, &otf.spectrum, m64, scale, plain)?;
        inv.c2r(&mut spec, &mut e)?;
        rl::rl_ratio(dev, cfg_1d(n), &d, &mut e, n64, p.floor)?;
        fwd.r2c(&e, &mut spec)?;
        rl::rl_mul_otf(dev, cfg_1d(m), &mut spec, &otf.spectrum, m64, scale, conj)?;
        inv.c2r(&mut spec, &mut e)?;
        rl::rl_update(dev, cfg_1d(n), &mut u, &e, n64)?;
    }
    rl::rl_restore(dev, cfg_1d(n), &mut u, &mask, n64)?;
    Ok(DeviceImage { data: u, nx, ny })
}
