//! The AIA diffraction-pattern PSF synthesised on the GPU (semantics.md §2.2), f64.
//!
//! Per filter (entrance, focal plane): every spike Gaussian is accumulated inside its
//! window by one thread block (`psf_accumulate`), ΣS by a reduction, ΣC analytically;
//! `psf_combine` forms `0.18 S/ΣS + 0.82 C/ΣC`. The composite
//! `fftshift(|FFT2(FFT2(P_f)·FFT2(P_e))|)/N²` is computed as D2Z, product, Z2D and a
//! point reflection (`psf_finish`) — the same values, including the reflection that
//! matters only for asymmetric orders.

use cudarc::driver::{CudaSlice, LaunchConfig};
use ndarray::Array2;

use crate::error::{Error, Result, Source};

use super::buffer::{alloc, alloc_zeros, download_vec, upload};
use super::device::GpuDevice;
use super::fft::{spectrum_len, Complex64, FftKind};
use super::launch::psf as k;
use super::{cfg_1d, REDUCE_BLOCKS};

/// One filter's mesh geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct PsfFilter {
    /// Spike spacing per diffraction order, in pixels.
    pub spacing: f64,
    /// Arm angles in degrees (x offsets use cos, y offsets sin).
    pub angles_deg: Vec<f64>,
}

/// Parameters of the PSF model.
#[derive(Debug, Clone, PartialEq)]
pub struct PsfParams {
    /// Grid size `n x n` (4096 for AIA; even).
    pub n: usize,
    /// Gaussian coefficient `w` of `exp(−w r²)` (4.5 by default; not a sigma), 1/px².
    pub width: f64,
    /// Entrance filter mesh.
    pub entrance: PsfFilter,
    /// Focal-plane filter mesh.
    pub focal_plane: PsfFilter,
    /// Diffraction orders (0 is skipped); −100..=100 by default.
    pub orders: Vec<i32>,
    /// Mesh pitch / width (363/34).
    pub mesh_ratio: f64,
    /// Fraction of the energy in the spikes (0.18).
    pub spike_fraction: f64,
    /// Fraction in the core (0.82).
    pub core_fraction: f64,
}

impl PsfParams {
    /// aiapy's model for an EUV channel (94, 131, 171, 193, 211, 304, 335 Å); `None` for
    /// others. `preflight_core` selects the preflight core widths.
    pub fn aia(channel: u32, preflight_core: bool) -> Option<PsfParams> {
        // The per-channel instrument parameters are the CPU model's (one table).
        let mesh = crate::psf::mesh_parameters(channel)?;
        Some(PsfParams {
            n: 4096,
            width: if preflight_core {
                mesh.width_preflight
            } else {
                mesh.width
            },
            entrance: PsfFilter {
                spacing: mesh.spacing_e,
                angles_deg: mesh.angle_arm_deg.to_vec(),
            },
            focal_plane: PsfFilter {
                spacing: mesh.spacing_fp,
                angles_deg: vec![45.0, -45.0],
            },
            orders: (-100..=100).collect(),
            mesh_ratio: mesh.mesh_pitch_um / mesh.mesh_width_um,
            spike_fraction: 0.18,
            core_fraction: 0.82,
        })
    }
}

fn bad(reason: String) -> Error {
    Error::BadPsf {
        file: Source::memory(),
        reason,
    }
}

/// Window radius of the kernel (`psf_window_radius` in psf.cu).
pub(crate) fn window_radius(w: f64) -> usize {
    (746.0 / w).sqrt().ceil() as usize + 1
}

fn sinc(t: f64) -> f64 {
    if t == 0.0 {
        1.0
    } else {
        let x = std::f64::consts::PI * t;
        x.sin() / x
    }
}

/// Spike centres (in `i + 0.5` pixel coordinates) and amplitudes of one filter.
pub(crate) fn spikes(p: &PsfParams, f: &PsfFilter) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let c = (p.n / 2) as f64 + 0.5;
    let (mut cx, mut cy, mut amp) = (Vec::new(), Vec::new(), Vec::new());
    for &m in &p.orders {
        if m == 0 {
            continue;
        }
        let i = sinc(m as f64 / p.mesh_ratio).powi(2);
        for &a in &f.angles_deg {
            let r = a.to_radians();
            cx.push(c + f.spacing * r.cos() * m as f64);
            cy.push(c + f.spacing * r.sin() * m as f64);
            amp.push(i);
        }
    }
    (cx, cy, amp)
}

fn device_sum(dev: &GpuDevice, x: &CudaSlice<f64>, n: usize) -> Result<f64> {
    let mut partial = alloc::<f64>(dev, REDUCE_BLOCKS, "PSF partial sums")?;
    let mut total = alloc::<f64>(dev, 1, "PSF sum")?;
    let partial_cfg = LaunchConfig {
        grid_dim: (REDUCE_BLOCKS as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    k::psf_sum_partial(dev, partial_cfg, x, n as i64, &mut partial)?;
    let final_cfg = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    k::psf_sum_final(dev, final_cfg, &partial, REDUCE_BLOCKS as i32, &mut total)?;
    Ok(download_vec(dev, &total, 1, "PSF sum")?[0])
}

/// One filter's `0.18 S/ΣS + 0.82 C/ΣC` on an `n x n` device grid.
fn filter_grid(dev: &GpuDevice, p: &PsfParams, f: &PsfFilter) -> Result<CudaSlice<f64>> {
    let n = p.n;
    let w = p.width;
    let radius = window_radius(w);
    let mut grid = alloc_zeros::<f64>(dev, n * n, "PSF filter grid")?;
    let (cx, cy, amp) = spikes(p, f);
    if !cx.is_empty() {
        let dcx = upload(dev, &cx, "PSF spike centres")?;
        let dcy = upload(dev, &cy, "PSF spike centres")?;
        let damp = upload(dev, &amp, "PSF spike amplitudes")?;
        let cfg = LaunchConfig {
            grid_dim: (cx.len() as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        k::psf_accumulate(
            dev,
            cfg,
            &mut grid,
            n as i32,
            &dcx,
            &dcy,
            &damp,
            cx.len() as i32,
            w,
            radius as i32,
        )?;
    }
    let sum_s = device_sum(dev, &grid, n * n)?;
    // ΣC = (Σ_i exp(−w (i + 0.5 − c)²))² over the window (zero outside).
    let c = (n / 2) as f64 + 0.5;
    let lo = (n / 2).saturating_sub(radius);
    let hi = (n / 2 + radius).min(n - 1);
    let s1: f64 = (lo..=hi)
        .map(|i| (-w * ((i as f64 + 0.5) - c).powi(2)).exp())
        .sum();
    let sum_c = s1 * s1;
    let inv_s = if sum_s > 0.0 { 1.0 / sum_s } else { 0.0 };
    let inv_c = 1.0 / sum_c;
    k::psf_combine(
        dev,
        cfg_1d(n * n),
        &mut grid,
        n as i32,
        inv_s,
        inv_c,
        w,
        radius as i32,
        p.spike_fraction,
        p.core_fraction,
    )?;
    Ok(grid)
}

/// The largest grid [`psf_device`] synthesises (its indexing is 32-bit).
pub const MAX_GRID: usize = 46_340;

fn check(p: &PsfParams) -> Result<()> {
    if p.n < 2 || !p.n.is_multiple_of(2) || p.n > MAX_GRID {
        return Err(bad(format!("grid size {} must be even, 2..46340", p.n)));
    }
    if !(p.width.is_finite() && p.width > 0.0) || window_radius(p.width) > 64 {
        return Err(bad(format!(
            "Gaussian coefficient {} out of range (window radius must be <= 64 px)",
            p.width
        )));
    }
    let finite = [p.entrance.spacing, p.focal_plane.spacing, p.mesh_ratio]
        .iter()
        .chain(&p.entrance.angles_deg)
        .chain(&p.focal_plane.angles_deg)
        .all(|v| v.is_finite());
    if !finite || p.mesh_ratio == 0.0 {
        return Err(bad("non-finite mesh parameters".into()));
    }
    Ok(())
}

/// The centred PSF on the device (`n x n` f64, peak at `[n/2, n/2]`, Σ ≈ 1).
pub fn psf_device(dev: &GpuDevice, p: &PsfParams) -> Result<CudaSlice<f64>> {
    check(p)?;
    let n = p.n;
    let m = spectrum_len(n, n);
    let mut focal = filter_grid(dev, p, &p.focal_plane)?;
    let mut entrance = filter_grid(dev, p, &p.entrance)?;
    let plan = dev.fft_plan(n, n, FftKind::D2Z)?;
    let mut a = alloc::<Complex64>(dev, m, "PSF spectrum")?;
    let mut bsp = alloc::<Complex64>(dev, m, "PSF spectrum")?;
    plan.d2z(&focal, &mut a)?;
    plan.d2z(&entrance, &mut bsp)?;
    k::psf_mul_spectra(dev, cfg_1d(m), &mut a, &bsp, m as i64)?;
    drop(bsp);
    dev.fft_plan(n, n, FftKind::Z2D)?.z2d(&mut a, &mut focal)?;
    let scale = 1.0 / (n as f64 * n as f64);
    k::psf_finish(dev, cfg_1d(n * n), &focal, &mut entrance, n as i32, scale)?;
    Ok(entrance)
}

/// The centred PSF (`[row, col]`, `n x n`, f64, peak at `[n/2, n/2]`).
pub fn psf(dev: &GpuDevice, p: &PsfParams) -> Result<Array2<f64>> {
    let d = psf_device(dev, p)?;
    let v = download_vec(dev, &d, p.n * p.n, "PSF")?;
    super::buffer::to_array(v, p.n, p.n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spike_list_and_window() {
        let p = PsfParams::aia(171, false).unwrap();
        let (cx, cy, amp) = spikes(&p, &p.entrance);
        assert_eq!(cx.len(), 800);
        assert_eq!(cy.len(), 800);
        // I_1 = sinc²(1/ρ) = 0.971469 (semantics.md §2.2)
        let k = p.orders.iter().position(|&m| m == 1).unwrap() - 1; // m = 0 skipped
        assert!((amp[4 * k] - 0.971469).abs() < 1e-6);
        assert_eq!(window_radius(4.5), 14);
        assert!(PsfParams::aia(1600, false).is_none());
    }
}
