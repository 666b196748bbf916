//! int16 ↔ f32 conversion, image statistics and the exact median on the device
//! (`kernels/convert.cu`).

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, ValidAsZeroBits};
use ndarray::{Array2, ArrayView2};

use crate::error::Result;

use super::buffer::{self, alloc, alloc_zeros, download_vec};
use super::device::{gpu_err, GpuDevice};
use super::launch::convert as k;
use super::{cfg_1d, DeviceImage, REDUCE_BLOCKS};

/// How stored int16 values become physical f32 values: `bzero + bscale · v`, with `blank`
/// (FITS `BLANK`, −32768 for AIA) → NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct I16Scaling {
    /// The stored value that means "missing" (FITS `BLANK`); `None` when absent.
    pub blank: Option<i16>,
    /// FITS `BSCALE` (1 for AIA level 1).
    pub bscale: f64,
    /// FITS `BZERO` (0 for AIA level 1).
    pub bzero: f64,
}

impl Default for I16Scaling {
    fn default() -> Self {
        I16Scaling {
            blank: Some(-32768),
            bscale: 1.0,
            bzero: 0.0,
        }
    }
}

/// Statistics of the non-missing pixels (NaN for f32, BLANK for int16), in DN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Number of non-missing pixels.
    pub count: u64,
    /// Smallest value (+∞ when `count == 0`).
    pub min: f64,
    /// Largest value (−∞ when `count == 0`).
    pub max: f64,
    /// Sum of the values (f64 accumulation).
    pub sum: f64,
}

impl Stats {
    /// Mean of the values (NaN when `count == 0`): DATAMEAN.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }
}

/// Mirrors `AiaStats` in kernels/common.cuh.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawStats {
    sum: f64,
    min: f64,
    max: f64,
    count: u64,
}
// SAFETY: plain-old-data with the C layout of AiaStats (32 bytes).
unsafe impl DeviceRepr for RawStats {}
// SAFETY: all-zero bytes are a valid RawStats.
unsafe impl ValidAsZeroBits for RawStats {}
const _: () = assert!(std::mem::size_of::<RawStats>() == 32);

impl From<RawStats> for Stats {
    fn from(r: RawStats) -> Stats {
        Stats {
            count: r.count,
            min: r.min,
            max: r.max,
            sum: r.sum,
        }
    }
}

fn blank_args(s: &I16Scaling) -> (i32, i32) {
    match s.blank {
        Some(b) => (1, b as i32),
        None => (0, -32768),
    }
}

/// Converts device int16 to f32 (`out` must hold `input.len()` values).
pub(crate) fn device_i16_to_f32(
    dev: &GpuDevice,
    input: &CudaSlice<i16>,
    n: usize,
    out: &mut CudaSlice<f32>,
    s: &I16Scaling,
) -> Result<()> {
    let (has_blank, blank) = blank_args(s);
    k::i16_to_f32(
        dev,
        cfg_1d(n),
        input,
        out,
        n as i64,
        has_blank,
        blank,
        s.bscale,
        s.bzero,
    )
}

/// Converts device f32 to int16 (round half away from zero, saturate to ±32767,
/// NaN → −32768).
pub(crate) fn device_f32_to_i16(
    dev: &GpuDevice,
    input: &CudaSlice<f32>,
    n: usize,
    out: &mut CudaSlice<i16>,
) -> Result<()> {
    k::f32_to_i16(dev, cfg_1d(n), input, out, n as i64)
}

/// Converts device f32 to int16 for a file with `BSCALE`/`BZERO`: stored = (physical −
/// bzero) / bscale in f64, saturated to ±32767, rounded half away from zero, NaN → −32768 —
/// bit for bit the CPU writer's conversion.
pub(crate) fn device_f32_to_i16_scaled(
    dev: &GpuDevice,
    input: &CudaSlice<f32>,
    n: usize,
    out: &mut CudaSlice<i16>,
    bscale: f64,
    bzero: f64,
) -> Result<()> {
    k::f32_to_i16_scaled(dev, cfg_1d(n), input, out, n as i64, bscale, bzero)
}

/// `x = (f32)((f64)x / t)` on the device (exposure normalisation, as the CPU path).
pub(crate) fn device_divide(
    dev: &GpuDevice,
    x: &mut CudaSlice<f32>,
    n: usize,
    t: f64,
) -> Result<()> {
    k::f32_divide(dev, cfg_1d(n), x, n as i64, t)
}

/// `out = ` the 1-σ uncertainty of every count of `x` (DN), on the device: the rule of
/// `rule` ([`crate::uncertainty::ErrorRule`], the same operations in the same order; NaN
/// everywhere for options the rule refuses).
pub(crate) fn device_estimate_error(
    dev: &GpuDevice,
    x: &CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
    n: usize,
    rule: &crate::uncertainty::ErrorRule,
) -> Result<()> {
    let (gain, compress, sn, read, quant, fcal, fchi, valid) = rule.parts();
    let gain = if valid { gain } else { f64::NAN };
    let unit = i32::from(sn == 1.0);
    k::f32_estimate_error(
        dev,
        cfg_1d(n),
        x,
        out,
        n as i64,
        gain,
        compress,
        sn,
        read,
        quant,
        fcal,
        fchi,
        unit,
    )
}

/// `x = min(max(x, lo), hi)` on the device, NaN kept.
pub(crate) fn device_clamp(
    dev: &GpuDevice,
    x: &mut CudaSlice<f32>,
    n: usize,
    lo: f32,
    hi: f32,
) -> Result<()> {
    k::f32_clamp(dev, cfg_1d(n), x, n as i64, lo, hi)
}

fn finalize(dev: &GpuDevice, partial: &CudaSlice<RawStats>) -> Result<Stats> {
    let mut out = alloc::<RawStats>(dev, 1, "statistics")?;
    let cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    k::stats_finalize(dev, cfg, partial, REDUCE_BLOCKS as i32, &mut out)?;
    let v = download_vec(dev, &out, 1, "statistics")?;
    Ok(v[0].into())
}

fn reduce_cfg() -> LaunchConfig {
    LaunchConfig {
        grid_dim: (REDUCE_BLOCKS as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Statistics of the first `n` values of a device f32 buffer (non-NaN values).
pub(crate) fn device_stats_f32(dev: &GpuDevice, x: &CudaSlice<f32>, n: usize) -> Result<Stats> {
    let mut partial = alloc::<RawStats>(dev, REDUCE_BLOCKS, "partial statistics")?;
    k::stats_f32_partial(dev, reduce_cfg(), x, n as i64, &mut partial)?;
    finalize(dev, &partial)
}

/// Statistics of a device int16 buffer (values other than `blank`).
pub(crate) fn device_stats_i16(
    dev: &GpuDevice,
    x: &CudaSlice<i16>,
    n: usize,
    blank: Option<i16>,
) -> Result<Stats> {
    let mut partial = alloc::<RawStats>(dev, REDUCE_BLOCKS, "partial statistics")?;
    let (has_blank, bl) = match blank {
        Some(b) => (1i32, b as i32),
        None => (0, 0),
    };
    k::stats_i16_partial(dev, reduce_cfg(), x, n as i64, has_blank, bl, &mut partial)?;
    finalize(dev, &partial)
}

fn key_to_f32(k: u32) -> f32 {
    let u = if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    };
    f32::from_bits(u)
}

/// The `rank`-th smallest (0-based) non-NaN value by radix select over order-preserving
/// keys: three histogram passes of 11, 11 and 10 bits.
fn device_select(dev: &GpuDevice, x: &CudaSlice<f32>, n: usize, rank: u64) -> Result<f32> {
    let mut hist = alloc_zeros::<u32>(dev, 2048, "median histogram")?;
    let (mut prefix, mut mask) = (0u32, 0u32);
    let mut rank = rank;
    for (shift, bits) in [(21i32, 11i32), (10, 11), (0, 10)] {
        buffer::zero(dev, &mut hist)?;
        k::hist_f32_keys(
            dev,
            reduce_cfg(),
            x,
            n as i64,
            prefix,
            mask,
            shift,
            bits,
            &mut hist,
        )?;
        let h = download_vec(dev, &hist, 1usize << bits, "median histogram")?;
        let mut cum = 0u64;
        let mut found = None;
        for (bin, &c) in h.iter().enumerate() {
            if cum + c as u64 > rank {
                found = Some(bin as u32);
                break;
            }
            cum += c as u64;
        }
        let bin = found.ok_or_else(|| gpu_err("median", "rank beyond the histogram"))?;
        rank -= cum;
        prefix |= bin << shift;
        mask |= ((1u32 << bits) - 1) << shift;
    }
    Ok(key_to_f32(prefix))
}

/// numpy's `nanmedian` of the first `n` values of a device buffer: the mean (in f64) of
/// the two middle non-NaN values for an even count; `None` when all are NaN.
pub(crate) fn device_nanmedian(
    dev: &GpuDevice,
    x: &CudaSlice<f32>,
    n: usize,
    count: u64,
) -> Result<Option<f64>> {
    if count == 0 {
        return Ok(None);
    }
    let lo = device_select(dev, x, n, (count - 1) / 2)? as f64;
    let hi = if count.is_multiple_of(2) {
        device_select(dev, x, n, count / 2)? as f64
    } else {
        lo
    };
    Ok(Some((lo + hi) / 2.0))
}

/// f32 → int16 on the GPU: round half away from zero, saturate to [−32767, 32767],
/// NaN → −32768 (BLANK).
pub fn f32_to_i16(dev: &GpuDevice, data: ArrayView2<f32>) -> Result<Array2<i16>> {
    let img = DeviceImage::upload(dev, data)?;
    let n = img.len();
    let mut out = alloc::<i16>(dev, n, "int16 image")?;
    device_f32_to_i16(dev, &img.data, n, &mut out)?;
    let v = download_vec(dev, &out, n, "int16 image")?;
    buffer::to_array(v, img.nx, img.ny)
}

/// Statistics of the non-NaN pixels, computed on the GPU.
pub fn stats_f32(dev: &GpuDevice, data: ArrayView2<f32>) -> Result<Stats> {
    let img = DeviceImage::upload(dev, data)?;
    device_stats_f32(dev, &img.data, img.len())
}

/// numpy `nanmedian` of the image (exact, by radix select on the GPU); `None` when every
/// pixel is NaN.
pub fn nanmedian(dev: &GpuDevice, data: ArrayView2<f32>) -> Result<Option<f64>> {
    let img = DeviceImage::upload(dev, data)?;
    let st = device_stats_f32(dev, &img.data, img.len())?;
    device_nanmedian(dev, &img.data, img.len(), st.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_struct_matches_common_cuh() {
        use std::mem::{align_of, offset_of, size_of};
        // `struct AiaStats { double sum, min, max; unsigned long long count; }`
        assert_eq!(size_of::<RawStats>(), 32);
        assert_eq!(align_of::<RawStats>(), 8);
        assert_eq!(offset_of!(RawStats, sum), 0);
        assert_eq!(offset_of!(RawStats, min), 8);
        assert_eq!(offset_of!(RawStats, max), 16);
        assert_eq!(offset_of!(RawStats, count), 24);
    }

    #[test]
    fn key_round_trip() {
        for v in [0.0f32, -0.0, 1.5, -1.5, f32::MAX, f32::MIN, 1e-40, -1e-40] {
            let u = v.to_bits();
            let k = if u & 0x8000_0000 != 0 {
                !u
            } else {
                u | 0x8000_0000
            };
            assert_eq!(key_to_f32(k).to_bits(), v.to_bits());
        }
    }
}
