//! Affine resampling for register on the GPU (`kernels/resample.cu`), sunpy/scipy rules.
//!
//! The geometry comes from [`crate::geometry::RegisterTransform`] and the `missing` value,
//! fill and clip rules from [`crate::register::rules::Rules`] — the one place each is
//! computed, for both paths; the kernel evaluates input coordinates exactly as the CPU's
//! [`crate::geometry::RowMap`] does (same operations, same order, no FMA contraction), so
//! the NaN masks and the pixels that are inside the frame are identical to the bit.
//!
//! Steps on the device, for an input already in f32 with NaN = missing:
//! 1. pad by `pad = (px, py)` pixels of `missing` on each side (sunpy pads before
//!    rotating, so the spline's mirror boundary acts on the padded frame). A NaN `missing`
//!    makes the padding missing data (step 2);
//! 2. if there are NaNs: fill them with `nan_fill` (default: the exact `nanmedian`,
//!    computed on the device), keep a mask and dilate it with a k × k box (k = 1 for
//!    nearest/linear, 5 for spline/keys);
//! 3. spline only: B-spline coefficients along rows, then columns (mirror boundary);
//! 4. one pass over the output: map, sample (or `missing` outside `[−pad, n − 1 + pad]`),
//!    clip, NaN where the resampled dilated mask is > 0.

use cudarc::driver::{CudaSlice, DeviceRepr};

use crate::error::{Error, Result, Source};
use crate::geometry::RegisterTransform;
use crate::register::Interpolation;

use super::buffer::alloc;
use super::convert::{device_nanmedian, device_stats_f32};
use super::device::GpuDevice;
use super::launch::resample as k;
use super::{cfg_1d, cfg_2d, DeviceImage, MAX_ROWS_2D};

/// The kernel's `interp` code of an interpolation.
pub fn kernel_code(i: Interpolation) -> i32 {
    match i {
        Interpolation::Nearest => 0,
        Interpolation::Linear => 1,
        Interpolation::Spline => 2,
        Interpolation::Keys => 3,
    }
}

/// Side of sunpy's mask dilation box: 1, 1, 5, 5 (order 0, 1, 3; keys as order 3).
pub fn mask_box(i: Interpolation) -> usize {
    match i {
        Interpolation::Nearest | Interpolation::Linear => 1,
        Interpolation::Spline | Interpolation::Keys => 5,
    }
}

/// How the spline coefficients are computed (both give scipy's mirror-boundary
/// coefficients; they differ by f32 rounding only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefilter {
    /// Truncated impulse response √3·z^|m|, |m| ≤ 24: one thread per coefficient.
    #[default]
    Fir,
    /// scipy's causal/anti-causal recursion, one thread per row/column.
    Recursive,
}

/// Geometry and options of one resample. Pixel coordinates are 0-based with centres at
/// integers; `(x, y)` = (column, row).
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterParams {
    /// The map from output to input pixels, with sunpy's padding.
    pub transform: RegisterTransform,
    /// Interpolation kernel.
    pub interpolation: Interpolation,
    /// Value for output pixels that sample outside the (padded) input, in DN; also the
    /// padding value. NaN is allowed: the padding is then missing data, as in sunpy (it
    /// is filled with the median and masked like NaN input pixels).
    pub missing: f32,
    /// Clip the output to `[lo, hi]` (DN) before the NaN rule; `None` = no clipping.
    pub clip: Option<(f32, f32)>,
    /// Value NaN pixels are replaced by before resampling; `None` = `nanmedian` (sunpy).
    pub nan_fill: Option<f32>,
    /// Spline prefilter algorithm.
    pub prefilter: Prefilter,
}

/// Mirrors `ResampleParams` in kernels/resample.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawResampleParams {
    ref_x: f64,
    ref_y: f64,
    m00: f64,
    m01: f64,
    m10: f64,
    m11: f64,
    cx: f64,
    cy: f64,
    nx_in: i32,
    ny_in: i32,
    pad_x: i32,
    pad_y: i32,
    nx_out: i32,
    ny_out: i32,
    interp: i32,
    use_mask: i32,
    missing: f32,
    clip_lo: f32,
    clip_hi: f32,
    clip: i32,
}
// SAFETY: plain-old-data with the C layout of ResampleParams (112 bytes).
unsafe impl DeviceRepr for RawResampleParams {}
const _: () = assert!(std::mem::size_of::<RawResampleParams>() == 112);

fn invalid(reason: String) -> Error {
    Error::InvalidOption {
        file: Source::memory(),
        reason,
    }
}

fn check_params(p: &RegisterParams, nx: usize, ny: usize) -> Result<()> {
    let t = &p.transform;
    let (ox, oy) = t.out_shape;
    let limit = i32::MAX as usize / 2;
    if nx == 0 || ny == 0 || ox == 0 || oy == 0 {
        return Err(invalid("register: empty input or output".into()));
    }
    if nx + 2 * t.pad[0] > limit || ny + 2 * t.pad[1] > limit || ox > limit || oy > limit {
        return Err(invalid("register: image too large".into()));
    }
    // The 2-D kernels (mask dilation, FIR prefilter, resample) run on the padded input
    // and on the output with `cfg_2d`, whose grid has at most 65535 rows of blocks.
    if ny + 2 * t.pad[1] > MAX_ROWS_2D || oy > MAX_ROWS_2D {
        return Err(invalid(format!(
            "register: {} input rows (padded) or {oy} output rows exceed the GPU limit of \
             {MAX_ROWS_2D}",
            ny + 2 * t.pad[1]
        )));
    }
    let finite = t.reference.iter().all(|v| v.is_finite())
        && t.matrix.iter().flatten().all(|v| v.is_finite())
        && t.out_center.iter().all(|v| v.is_finite());
    if !finite {
        return Err(invalid("register: non-finite geometry".into()));
    }
    if p.missing.is_infinite() {
        return Err(invalid(format!(
            "register: missing value {} is not finite (NaN is allowed)",
            p.missing
        )));
    }
    if let Some((lo, hi)) = p.clip {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(invalid(format!("register: bad clip range [{lo}, {hi}]")));
        }
    }
    Ok(())
}

/// Resamples a device image (consumed: its buffer is reused). See the module docs.
pub fn register_device(
    dev: &GpuDevice,
    img: DeviceImage,
    p: &RegisterParams,
) -> Result<DeviceImage> {
    check_params(p, img.nx, img.ny)?;
    let [px, py] = p.transform.pad;
    let (nx, ny) = (img.nx + 2 * px, img.ny + 2 * py);
    let n = nx * ny;
    let mut src: CudaSlice<f32> = if px == 0 && py == 0 {
        img.data
    } else {
        let mut dst = alloc::<f32>(dev, n, "padded image")?;
        k::pad_constant(
            dev,
            cfg_1d(n),
            &img.data,
            img.nx as i32,
            img.ny as i32,
            &mut dst,
            px as i32,
            py as i32,
            p.missing,
        )?;
        dst
    };

    // NaN handling (sunpy's wrapper): only when there are NaNs.
    let stats = device_stats_f32(dev, &src, n)?;
    let n_nan = n as u64 - stats.count;
    let mut dmask: Option<CudaSlice<u8>> = None;
    if n_nan > 0 {
        let fill = match p.nan_fill {
            Some(v) => v,
            None => device_nanmedian(dev, &src, n, stats.count)?.unwrap_or(0.0) as f32,
        };
        let mut mask = alloc::<u8>(dev, n, "NaN mask")?;
        k::nan_mask_fill(dev, cfg_1d(n), &mut src, &mut mask, n as i64, fill)?;
        let r = (mask_box(p.interpolation) as i32 - 1) / 2;
        if r > 0 {
            let mut tmp = alloc::<u8>(dev, n, "dilated mask")?;
            let (nxi, nyi) = (nx as i32, ny as i32);
            // along rows (axis 0) into `tmp`, then along columns back into `mask`
            k::mask_dilate(dev, cfg_2d(nx, ny), &mask, &mut tmp, nxi, nyi, r, 0)?;
            k::mask_dilate(dev, cfg_2d(nx, ny), &tmp, &mut mask, nxi, nyi, r, 1)?;
        }
        dmask = Some(mask);
    }

    // Spline coefficients.
    if p.interpolation == Interpolation::Spline {
        let (nxi, nyi) = (nx as i32, ny as i32);
        match p.prefilter {
            Prefilter::Fir => {
                let mut tmp = alloc::<f32>(dev, n, "spline coefficients")?;
                k::spline_prefilter_fir(dev, cfg_2d(nx, ny), &src, &mut tmp, nxi, nyi, 0)?;
                k::spline_prefilter_fir(dev, cfg_2d(nx, ny), &tmp, &mut src, nxi, nyi, 1)?;
            }
            Prefilter::Recursive => {
                for (axis, lines) in [(0i32, ny), (1i32, nx)] {
                    let mut cfg = cfg_1d(lines);
                    cfg.block_dim = (64, 1, 1);
                    cfg.grid_dim = (lines.div_ceil(64) as u32, 1, 1);
                    k::spline_prefilter_recursive(dev, cfg, &mut src, nxi, nyi, axis)?;
                }
            }
        }
    }

    let t = &p.transform;
    let (ox, oy) = t.out_shape;
    let (lo, hi) = p.clip.unwrap_or((0.0, 0.0));
    let raw = RawResampleParams {
        ref_x: t.reference[0],
        ref_y: t.reference[1],
        m00: t.matrix[0][0],
        m01: t.matrix[0][1],
        m10: t.matrix[1][0],
        m11: t.matrix[1][1],
        cx: t.out_center[0],
        cy: t.out_center[1],
        nx_in: (nx - 2 * px) as i32,
        ny_in: (ny - 2 * py) as i32,
        pad_x: px as i32,
        pad_y: py as i32,
        nx_out: ox as i32,
        ny_out: oy as i32,
        interp: kernel_code(p.interpolation),
        use_mask: dmask.is_some() as i32,
        missing: p.missing,
        clip_lo: lo,
        clip_hi: hi,
        clip: p.clip.is_some() as i32,
    };
    let mut out = alloc::<f32>(dev, ox * oy, "registered image")?;
    k::resample_affine(dev, cfg_2d(ox, oy), &src, dmask.as_ref(), &mut out, raw)?;
    Ok(DeviceImage {
        data: out,
        nx: ox,
        ny: oy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(n: usize) -> RegisterParams {
        let c = (n as f64 - 1.0) / 2.0;
        RegisterParams {
            transform: RegisterTransform {
                reference: [c, c],
                matrix: [[1.0, 0.0], [0.0, 1.0]],
                out_center: [c, c],
                out_shape: (n, n),
                scale_factor: 1.0,
                pad: [0, 0],
            },
            interpolation: Interpolation::Spline,
            missing: 0.0,
            clip: None,
            nan_fill: None,
            prefilter: Prefilter::Fir,
        }
    }

    #[test]
    fn tall_images_are_refused_before_any_launch() {
        // cfg_2d's grid stays within CUDA's gridDim.y limit up to MAX_ROWS_2D rows ...
        assert!(cfg_2d(4096, MAX_ROWS_2D).grid_dim.1 <= 65_535);
        assert!(cfg_2d(4096, MAX_ROWS_2D + 1).grid_dim.1 > 65_535);
        // ... and check_params refuses anything taller (input with padding, or output).
        let mut ok = identity(16);
        ok.transform.out_shape = (16, MAX_ROWS_2D);
        assert!(check_params(&ok, 16, MAX_ROWS_2D).is_ok());
        let mut padded = ok.clone();
        padded.transform.pad = [0, 1];
        assert!(matches!(
            check_params(&padded, 16, MAX_ROWS_2D),
            Err(Error::InvalidOption { .. })
        ));
        let mut tall_out = identity(16);
        tall_out.transform.out_shape = (16, MAX_ROWS_2D + 1);
        assert!(matches!(
            check_params(&tall_out, 16, 16),
            Err(Error::InvalidOption { .. })
        ));
        let mut bad = identity(16);
        bad.transform.matrix[0][1] = f64::NAN;
        assert!(check_params(&bad, 16, 16).is_err());
    }

    #[test]
    fn kernel_parameter_struct_matches_resample_cu() {
        use std::mem::{align_of, offset_of, size_of};
        // Offsets of `struct ResampleParams` in kernels/resample.cu (8 doubles, 8 ints,
        // 3 floats, 1 int; 8-byte aligned), which the kernel receives by value.
        assert_eq!(size_of::<RawResampleParams>(), 112);
        assert_eq!(align_of::<RawResampleParams>(), 8);
        assert_eq!(offset_of!(RawResampleParams, cy), 56);
        assert_eq!(offset_of!(RawResampleParams, nx_in), 64);
        assert_eq!(offset_of!(RawResampleParams, pad_x), 72);
        assert_eq!(offset_of!(RawResampleParams, use_mask), 92);
        assert_eq!(offset_of!(RawResampleParams, missing), 96);
        assert_eq!(offset_of!(RawResampleParams, clip_hi), 104);
        assert_eq!(offset_of!(RawResampleParams, clip), 108);
        let src = include_str!("../../kernels/resample.cu");
        assert!(src.contains("static_assert(sizeof(ResampleParams) == 112"));
    }

    #[test]
    fn interpolation_codes() {
        use Interpolation::*;
        for (i, m) in [Nearest, Linear, Spline, Keys].iter().enumerate() {
            assert_eq!(kernel_code(*m), i as i32);
        }
        assert_eq!(mask_box(Nearest), 1);
        assert_eq!(mask_box(Keys), 5);
    }
}
