//! Affine resampling for register on the GPU (`kernels/resample.cu`), sunpy/scipy rules.
//!
//! Steps on the device, for an input already in f32 with NaN = missing:
//! 1. pad by `pad = (px, py)` pixels of `missing` on each side (sunpy pads before
//!    rotating, so the spline's mirror boundary acts on the padded frame); the reference
//!    pixel moves by `pad`. A NaN `missing` makes the padding missing data (step 2);
//! 2. if there are NaNs: fill them with `nan_fill` (default: the exact `nanmedian`,
//!    computed on the device), keep a mask and dilate it with a k × k box (k = 1 for
//!    nearest/linear, 5 for spline/keys);
//! 3. spline only: B-spline coefficients along rows, then columns (mirror boundary);
//! 4. one pass over the output: map, sample (or `missing` outside `[0, n − 1]`), clip,
//!    NaN where the resampled dilated mask is > 0.

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, Source};

use super::buffer::alloc;
use super::convert::{device_nanmedian, device_stats_f32};
use super::device::GpuDevice;
use super::{cfg_1d, cfg_2d, launch, DeviceImage, MAX_ROWS_2D};

/// Interpolation kernel (the `interp` code passed to the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Interpolation {
    /// scipy order 0.
    Nearest = 0,
    /// scipy order 1.
    Linear = 1,
    /// scipy order 3: cubic B-spline with mirror prefilter (aiapy default).
    Spline = 2,
    /// Cubic convolution, Keys a = −0.5 (SolarSoft aia_prep).
    Keys = 3,
}

impl Interpolation {
    /// From the kernel code 0..=3.
    pub fn from_u32(v: u32) -> Option<Interpolation> {
        match v {
            0 => Some(Interpolation::Nearest),
            1 => Some(Interpolation::Linear),
            2 => Some(Interpolation::Spline),
            3 => Some(Interpolation::Keys),
            _ => None,
        }
    }

    /// Side of sunpy's mask dilation box: 1, 1, 5, 5 (order 0, 1, 3; keys as order 3).
    pub fn mask_box(self) -> usize {
        match self {
            Interpolation::Nearest | Interpolation::Linear => 1,
            Interpolation::Spline | Interpolation::Keys => 5,
        }
    }

    /// All four, in code order.
    pub const ALL: [Interpolation; 4] = [
        Interpolation::Nearest,
        Interpolation::Linear,
        Interpolation::Spline,
        Interpolation::Keys,
    ];
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
    /// Output size `(nx, ny)` in pixels.
    pub out_shape: (usize, usize),
    /// Input pixel that lands on `out_center` (0-based, in the unpadded input; the
    /// level-1 reference pixel `CRPIX − 1`).
    pub reference_pixel: [f64; 2],
    /// Output → input matrix acting on `(dx, dy)`: `R⁻¹ / s` for register (§4.2).
    pub matrix: [[f64; 2]; 2],
    /// Output pixel the reference lands on; `None` = the array centre `((n − 1)/2)`.
    pub out_center: Option<[f64; 2]>,
    /// Interpolation kernel.
    pub interpolation: Interpolation,
    /// Value for output pixels that sample outside the (padded) input, in DN; also the
    /// padding value. NaN is allowed: the padding is then missing data, as in sunpy (it
    /// is filled with the median and masked like NaN input pixels).
    pub missing: f32,
    /// Clip the output to `[lo, hi]` (DN) before the NaN rule; `None` = no clipping.
    pub clip: Option<(f32, f32)>,
    /// sunpy's padding in pixels `(x, y)` (see [`sunpy_pad`]).
    pub pad: (usize, usize),
    /// Value NaN pixels are replaced by before resampling; `None` = `nanmedian` (sunpy).
    pub nan_fill: Option<f32>,
    /// Spline prefilter algorithm.
    pub prefilter: Prefilter,
}

impl RegisterParams {
    /// Identity geometry on an `nx x ny` image with spline interpolation, for tests and
    /// as a starting point.
    pub fn identity(nx: usize, ny: usize) -> RegisterParams {
        RegisterParams {
            out_shape: (nx, ny),
            reference_pixel: [(nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0],
            matrix: [[1.0, 0.0], [0.0, 1.0]],
            out_center: None,
            interpolation: Interpolation::Spline,
            missing: 0.0,
            clip: None,
            pad: (0, 0),
            nan_fill: None,
            prefilter: Prefilter::Fir,
        }
    }
}

/// sunpy's padding (§6.2) of an `nx x ny` image rotated by `rotation` (acting on
/// `(x, y)`) and scaled by `scale`: `max(ceil((extent − n) / 2), 0)` per axis, where
/// `extent` spans the rotated, scaled outer pixel edges.
pub fn sunpy_pad(nx: usize, ny: usize, rotation: [[f64; 2]; 2], scale: f64) -> (usize, usize) {
    let xs = [-0.5, nx as f64 - 0.5];
    let ys = [-0.5, ny as f64 - 0.5];
    let (mut minx, mut maxx, mut miny, mut maxy) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &x in &xs {
        for &y in &ys {
            let u = (rotation[0][0] * x + rotation[0][1] * y) * scale;
            let v = (rotation[1][0] * x + rotation[1][1] * y) * scale;
            minx = minx.min(u);
            maxx = maxx.max(u);
            miny = miny.min(v);
            maxy = maxy.max(v);
        }
    }
    let d = |extent: f64, n: usize| ((extent - n as f64) / 2.0).ceil().max(0.0) as usize;
    (d(maxx - minx, nx), d(maxy - miny, ny))
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
    nx_out: i32,
    ny_out: i32,
    interp: i32,
    use_mask: i32,
    missing: f32,
    clip_lo: f32,
    clip_hi: f32,
    clip: i32,
}
// SAFETY: plain-old-data with the C layout of ResampleParams (104 bytes).
unsafe impl DeviceRepr for RawResampleParams {}
const _: () = assert!(std::mem::size_of::<RawResampleParams>() == 104);

fn invalid(reason: String) -> Error {
    Error::InvalidOption {
        file: Source::memory(),
        reason,
    }
}

fn check_params(p: &RegisterParams, nx: usize, ny: usize) -> Result<()> {
    let (ox, oy) = p.out_shape;
    let limit = i32::MAX as usize / 2;
    if nx == 0 || ny == 0 || ox == 0 || oy == 0 {
        return Err(invalid("register: empty input or output".into()));
    }
    if nx + 2 * p.pad.0 > limit || ny + 2 * p.pad.1 > limit || ox > limit || oy > limit {
        return Err(invalid("register: image too large".into()));
    }
    // The 2-D kernels (mask dilation, FIR prefilter, resample) run on the padded input
    // and on the output with `cfg_2d`, whose grid has at most 65535 rows of blocks.
    if ny + 2 * p.pad.1 > MAX_ROWS_2D || oy > MAX_ROWS_2D {
        return Err(invalid(format!(
            "register: {} input rows (padded) or {oy} output rows exceed the GPU limit of \
             {MAX_ROWS_2D}",
            ny + 2 * p.pad.1
        )));
    }
    let finite = p.reference_pixel.iter().all(|v| v.is_finite())
        && p.matrix.iter().flatten().all(|v| v.is_finite())
        && p.out_center.is_none_or(|c| c.iter().all(|v| v.is_finite()));
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
    let (px, py) = p.pad;
    let (nx, ny) = (img.nx + 2 * px, img.ny + 2 * py);
    let n = nx * ny;
    let mut src: CudaSlice<f32> = if px == 0 && py == 0 {
        img.data
    } else {
        let f = dev.function("resample", "pad_constant")?;
        let mut dst = alloc::<f32>(dev, n, "padded image")?;
        let (inx, iny, pxi, pyi) = (img.nx as i32, img.ny as i32, px as i32, py as i32);
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&img.data)
            .arg(&inx)
            .arg(&iny)
            .arg(&mut dst)
            .arg(&pxi)
            .arg(&pyi)
            .arg(&p.missing);
        launch(b, cfg_1d(n), "pad_constant")?;
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
        let f = dev.function("resample", "nan_mask_fill")?;
        let n64 = n as i64;
        let mut b = dev.stream.launch_builder(&f);
        b.arg(&mut src).arg(&mut mask).arg(&n64).arg(&fill);
        launch(b, cfg_1d(n), "nan_mask_fill")?;
        let r = (p.interpolation.mask_box() as i32 - 1) / 2;
        if r > 0 {
            let f = dev.function("resample", "mask_dilate")?;
            let mut tmp = alloc::<u8>(dev, n, "dilated mask")?;
            let (nxi, nyi) = (nx as i32, ny as i32);
            for (axis, forward) in [(0i32, true), (1i32, false)] {
                let mut b = dev.stream.launch_builder(&f);
                if forward {
                    b.arg(&mask).arg(&mut tmp);
                } else {
                    b.arg(&tmp).arg(&mut mask);
                }
                b.arg(&nxi).arg(&nyi).arg(&r).arg(&axis);
                launch(b, cfg_2d(nx, ny), "mask_dilate")?;
            }
        }
        dmask = Some(mask);
    }

    // Spline coefficients.
    if p.interpolation == Interpolation::Spline {
        let (nxi, nyi) = (nx as i32, ny as i32);
        match p.prefilter {
            Prefilter::Fir => {
                let f = dev.function("resample", "spline_prefilter_fir")?;
                let mut tmp = alloc::<f32>(dev, n, "spline coefficients")?;
                let a0 = 0i32;
                let mut b = dev.stream.launch_builder(&f);
                b.arg(&src).arg(&mut tmp).arg(&nxi).arg(&nyi).arg(&a0);
                launch(b, cfg_2d(nx, ny), "spline_prefilter_fir")?;
                let a1 = 1i32;
                let mut b = dev.stream.launch_builder(&f);
                b.arg(&tmp).arg(&mut src).arg(&nxi).arg(&nyi).arg(&a1);
                launch(b, cfg_2d(nx, ny), "spline_prefilter_fir")?;
            }
            Prefilter::Recursive => {
                let f = dev.function("resample", "spline_prefilter_recursive")?;
                for (axis, lines) in [(0i32, ny), (1i32, nx)] {
                    let mut b = dev.stream.launch_builder(&f);
                    b.arg(&mut src).arg(&nxi).arg(&nyi).arg(&axis);
                    let mut cfg = cfg_1d(lines);
                    cfg.block_dim = (64, 1, 1);
                    cfg.grid_dim = (lines.div_ceil(64) as u32, 1, 1);
                    launch(b, cfg, "spline_prefilter_recursive")?;
                }
            }
        }
    }

    let (ox, oy) = p.out_shape;
    let c = p
        .out_center
        .unwrap_or([(ox as f64 - 1.0) / 2.0, (oy as f64 - 1.0) / 2.0]);
    let (lo, hi) = p.clip.unwrap_or((0.0, 0.0));
    let raw = RawResampleParams {
        ref_x: p.reference_pixel[0] + px as f64,
        ref_y: p.reference_pixel[1] + py as f64,
        m00: p.matrix[0][0],
        m01: p.matrix[0][1],
        m10: p.matrix[1][0],
        m11: p.matrix[1][1],
        cx: c[0],
        cy: c[1],
        nx_in: nx as i32,
        ny_in: ny as i32,
        nx_out: ox as i32,
        ny_out: oy as i32,
        interp: p.interpolation as i32,
        use_mask: dmask.is_some() as i32,
        missing: p.missing,
        clip_lo: lo,
        clip_hi: hi,
        clip: p.clip.is_some() as i32,
    };
    let f = dev.function("resample", "resample_affine")?;
    let mut out = alloc::<f32>(dev, ox * oy, "registered image")?;
    let null: u64 = 0;
    let mut b = dev.stream.launch_builder(&f);
    b.arg(&src);
    match &dmask {
        Some(m) => b.arg(m),
        None => b.arg(&null),
    };
    b.arg(&mut out).arg(&raw);
    launch(b, cfg_2d(ox, oy), "resample_affine")?;
    Ok(DeviceImage {
        data: out,
        nx: ox,
        ny: oy,
    })
}

/// Resamples a host image on the GPU (upload, [`register_device`], download).
/// Input and output are `[row, col]` f32 in DN with NaN = missing.
pub fn register(
    dev: &GpuDevice,
    input: ArrayView2<f32>,
    p: &RegisterParams,
) -> Result<Array2<f32>> {
    let img = DeviceImage::upload(dev, input)?;
    register_device(dev, img, p)?.download(dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_follows_sunpy() {
        // 171 Å, s = 0.599489 / 0.6, θ = 0.0194°: extent < 4096 → no padding.
        let s = 0.599489 / 0.6;
        let (sn, cs) = 0.0194f64.to_radians().sin_cos();
        assert_eq!(sunpy_pad(4096, 4096, [[cs, -sn], [sn, cs]], s), (0, 0));
        // 193 Å, 0.600758″, θ = 0 → pad 3 (extent 4101.2)
        assert_eq!(
            sunpy_pad(4096, 4096, [[1.0, 0.0], [0.0, 1.0]], 0.600758 / 0.6),
            (3, 3)
        );
        // 94 Å → pad 1
        assert_eq!(
            sunpy_pad(4096, 4096, [[1.0, 0.0], [0.0, 1.0]], 0.600109 / 0.6),
            (1, 1)
        );
    }

    #[test]
    fn tall_images_are_refused_before_any_launch() {
        // cfg_2d's grid stays within CUDA's gridDim.y limit up to MAX_ROWS_2D rows ...
        assert!(cfg_2d(4096, MAX_ROWS_2D).grid_dim.1 <= 65_535);
        assert!(cfg_2d(4096, MAX_ROWS_2D + 1).grid_dim.1 > 65_535);
        // ... and check_params refuses anything taller (input with padding, or output).
        let ok = RegisterParams::identity(16, MAX_ROWS_2D);
        assert!(check_params(&ok, 16, MAX_ROWS_2D).is_ok());
        let mut padded = ok.clone();
        padded.pad = (0, 1);
        assert!(matches!(
            check_params(&padded, 16, MAX_ROWS_2D),
            Err(Error::InvalidOption { .. })
        ));
        let mut tall_out = RegisterParams::identity(16, 16);
        tall_out.out_shape = (16, MAX_ROWS_2D + 1);
        assert!(matches!(
            check_params(&tall_out, 16, 16),
            Err(Error::InvalidOption { .. })
        ));
    }

    #[test]
    fn kernel_parameter_struct_matches_resample_cu() {
        use std::mem::{align_of, offset_of, size_of};
        // Offsets of `struct ResampleParams` in kernels/resample.cu (8 doubles, 6 ints,
        // 3 floats, 1 int; 8-byte aligned), which the kernel receives by value.
        assert_eq!(size_of::<RawResampleParams>(), 104);
        assert_eq!(align_of::<RawResampleParams>(), 8);
        assert_eq!(offset_of!(RawResampleParams, cy), 56);
        assert_eq!(offset_of!(RawResampleParams, nx_in), 64);
        assert_eq!(offset_of!(RawResampleParams, use_mask), 84);
        assert_eq!(offset_of!(RawResampleParams, missing), 88);
        assert_eq!(offset_of!(RawResampleParams, clip_hi), 96);
        assert_eq!(offset_of!(RawResampleParams, clip), 100);
        let src = include_str!("../../kernels/resample.cu");
        assert!(src.contains("static_assert(sizeof(ResampleParams) == 104"));
    }

    #[test]
    fn interpolation_codes() {
        for (i, m) in Interpolation::ALL.iter().enumerate() {
            assert_eq!(Interpolation::from_u32(i as u32), Some(*m));
            assert_eq!(*m as u32, i as u32);
        }
        assert_eq!(Interpolation::from_u32(4), None);
    }
}
