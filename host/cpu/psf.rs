//! CPU evaluation of the AIA PSF model (see [`crate::psf`] for the formulas).
//!
//! Each Gaussian `I·exp(−w(x−x0)² − w(y−y0)²)` is evaluated only in a window around its
//! centre, as the product of two 1-D factors `exp(−w(x−x0)²)·exp(−w(y−y0)²)`. Beyond
//! `√(746/w)` pixels a 1-D factor is below the smallest subnormal double, i.e. exactly 0 in
//! aiapy's full-grid evaluation too (≈12.9 px for w = 4.5, ≈28 px for w = 0.951), so the
//! window loses nothing. The on-grid sum of each Gaussian is `(Σ gx)(Σ gy)`, which gives the
//! normalisation `ΣS` before anything is accumulated; the 0.18/ΣS and 0.82/ΣC factors are
//! folded into the amplitudes. Accumulation is in `f64`.
//!
//! The composite uses the `f64` [`Fft2`]. aiapy's `fftshift(|FFT2(FFT2(P_fp)·FFT2(P_e))|)/N` is
//! `PSF[j, i] = |c[(ny/2 − j) mod ny, (nx/2 − i) mod nx]|` with `c` the circular convolution
//! `P_fp ⊛ P_e` (two forward FFTs reflect it through the origin). We compute it as
//! `|irfft2(conj(A·B)·(−1)^(ky+kx))| / N` with `A, B` the `rfft2`s of the two patterns: the
//! conjugate is the reflection (`c` is real) and the sign the shift by half the (even) size,
//! so no pass over the image is needed for either.

use ndarray::Array2;
use rayon::prelude::*;

use crate::cpu::fft2::Fft2;
use crate::error::{Error, Result, Source};
use crate::psf::{check_grid, MeshParameters, PsfOptions};

/// The composite PSF of `channel` (Å) on an `N × N` grid, `N = opts.size`: `f64`, peak on
/// index `[N/2, N/2]` (0-based `[row, col]`), sum 1 (to ~1e-12), exactly aiapy 0.10.2's
/// `psf(channel, use_preflightcore, diffraction_orders)` for `N = 4096` (to rounding).
///
/// Errors: [`Error::NoPsfModel`] for 1600/1700/4500 or an unknown channel;
/// [`Error::InvalidOption`] when `size` is odd, < 2 or above [`crate::psf::MAX_PSF_PIXELS`] in area, or
/// when no diffraction spike of the given orders falls on the grid (aiapy would return NaN).
///
/// ```
/// use aiaprep::cpu::psf::psf;
/// use aiaprep::psf::PsfOptions;
/// // A small grid keeps the example fast; the default is 4096² with orders −100..=100.
/// let p = psf(171, &PsfOptions { size: 256, orders: (-20..=20).collect(), ..Default::default() })?;
/// assert!((p.sum() - 1.0).abs() < 1e-9);
/// assert!(p[[128, 128]] > 0.6); // ~64 % of the energy in the central pixel
/// assert!(psf(1600, &PsfOptions::default()).is_err()); // no model for UV channels
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn psf(channel: u32, opts: &PsfOptions) -> Result<Array2<f64>> {
    psf_grid(channel, opts, (opts.size, opts.size), &Source::memory())
}

/// The PSF model on an `ny × nx` grid (both even ≥ 2); `opts.size` is ignored. Peak on
/// `[ny/2, nx/2]`. Errors name `source`.
pub fn psf_grid(
    channel: u32,
    opts: &PsfOptions,
    shape: (usize, usize),
    source: &Source,
) -> Result<Array2<f64>> {
    let mesh = check_grid(channel, shape, source)?;
    let (ny, nx) = shape;
    composite(&mesh, opts, ny, nx, source)
}

/// Fraction of the filter area not covered by the mesh (weight of the Gaussian core).
const AREA_NOT_MESH: f64 = 0.82;

/// `sinc²(t) = (sin πt / πt)²` (numpy's normalised sinc), 1 at t = 0.
fn sinc2(t: f64) -> f64 {
    if t == 0.0 {
        return 1.0;
    }
    let y = std::f64::consts::PI * t;
    let s = y.sin() / y;
    s * s
}

/// Half-width (pixels) beyond which `exp(−w r²)` is exactly 0 in f64 (plus one pixel).
fn window_radius(w: f64) -> f64 {
    (746.0 / w).sqrt() + 1.0
}

/// One Gaussian's 1-D factors over its on-grid window.
struct Factors {
    i0: usize,
    gx: Vec<f64>,
    j0: usize,
    gy: Vec<f64>,
}

/// 1-D factors `exp(−w (k + 0.5 − c0)²)` for grid indices `k` within the window, clipped to
/// `0..n`; `None` when the window misses the grid.
fn factor_1d(c0: f64, w: f64, n: usize, buf: &mut Vec<f64>) -> Option<usize> {
    let r = window_radius(w);
    let lo = (c0 - 0.5 - r).ceil();
    let hi = (c0 - 0.5 + r).floor();
    if !(hi >= 0.0 && lo <= (n - 1) as f64) {
        return None;
    }
    let lo = lo.max(0.0) as usize;
    let hi = (hi.min((n - 1) as f64)) as usize;
    buf.clear();
    for k in lo..=hi {
        let d = (k as f64 + 0.5) - c0;
        buf.push((-w * d * d).exp());
    }
    Some(lo)
}

fn gaussian(x0: f64, y0: f64, w: f64, ny: usize, nx: usize) -> Option<Factors> {
    let mut gx = Vec::new();
    let mut gy = Vec::new();
    let i0 = factor_1d(x0, w, nx, &mut gx)?;
    let j0 = factor_1d(y0, w, ny, &mut gy)?;
    Some(Factors { i0, gx, j0, gy })
}

impl Factors {
    fn sum(&self) -> f64 {
        self.gx.iter().sum::<f64>() * self.gy.iter().sum::<f64>()
    }

    fn add_to(&self, out: &mut [f64], nx: usize, amp: f64) {
        for (dj, gy) in self.gy.iter().enumerate() {
            let a = amp * gy;
            let row = &mut out[(self.j0 + dj) * nx + self.i0..][..self.gx.len()];
            for (o, gx) in row.iter_mut().zip(&self.gx) {
                *o += a * gx;
            }
        }
    }
}

/// Write one filter's normalised pattern `0.18·S/ΣS + 0.82·C/ΣC` into `out` (row-major
/// `ny × nx`, overwritten). `spacing` in pixels, `angles_deg` in degrees, `w` in px⁻².
#[allow(clippy::too_many_arguments)]
pub fn filter_pattern(
    out: &mut [f64],
    ny: usize,
    nx: usize,
    spacing: f64,
    angles_deg: &[f64],
    orders: &[i32],
    w: f64,
    mesh_ratio: f64,
    source: &Source,
) -> Result<()> {
    out.par_iter_mut().for_each(|v| *v = 0.0);
    // Same arithmetic as aiapy: x0 = 0.5·nx + dx·m + 0.5 with dx = d·cos θ.
    let (cx, cy) = (0.5 * nx as f64, 0.5 * ny as f64);
    let steps: Vec<(f64, f64)> = angles_deg
        .iter()
        .map(|a| {
            let t = a.to_radians();
            (spacing * t.cos(), spacing * t.sin())
        })
        .collect();
    let mut spikes = Vec::new();
    for &m in orders {
        if m == 0 {
            continue;
        }
        let amp = sinc2(m as f64 / mesh_ratio);
        let mf = m as f64;
        for &(dx, dy) in &steps {
            if let Some(g) = gaussian(cx + dx * mf + 0.5, cy + dy * mf + 0.5, w, ny, nx) {
                spikes.push((amp, g));
            }
        }
    }
    let sum_s: f64 = spikes.iter().map(|(a, g)| a * g.sum()).sum();
    if !(sum_s > 0.0 && sum_s.is_finite()) {
        return Err(Error::InvalidOption {
            file: source.clone(),
            reason: format!(
                "no diffraction spike of the given orders falls on the {ny}×{nx} grid \
                 (spacing {spacing} px)"
            ),
        });
    }
    let ks = (1.0 - AREA_NOT_MESH) / sum_s;
    for (a, g) in &spikes {
        g.add_to(out, nx, a * ks);
    }
    let core = gaussian(cx + 0.5, cy + 0.5, w, ny, nx).ok_or_else(|| Error::InvalidOption {
        file: source.clone(),
        reason: "PSF core off the grid".into(),
    })?;
    core.add_to(out, nx, AREA_NOT_MESH / core.sum());
    Ok(())
}

/// The composite PSF on an even `ny × nx` grid (checked by the caller).
pub fn composite(
    mesh: &MeshParameters,
    opts: &PsfOptions,
    ny: usize,
    nx: usize,
    source: &Source,
) -> Result<Array2<f64>> {
    let w = if opts.preflight_core {
        mesh.width_preflight
    } else {
        mesh.width
    };
    let rho = mesh.mesh_pitch_um / mesh.mesh_width_um;
    let mut fft = Fft2::<f64>::new(ny, nx)?;
    let mut buf = vec![0.0f64; ny * nx];

    filter_pattern(
        &mut buf,
        ny,
        nx,
        mesh.spacing_e,
        &mesh.angle_arm_deg,
        &opts.orders,
        w,
        rho,
        source,
    )?;
    let mut spec_e = fft.make_spectrum();
    fft.forward(&buf, &mut spec_e)?;

    filter_pattern(
        &mut buf,
        ny,
        nx,
        mesh.spacing_fp,
        &[45.0, -45.0],
        &opts.orders,
        w,
        rho,
        source,
    )?;
    // Forward transform of P_fp with everything else folded into the spectrum:
    //   A·B                      the circular convolution,
    //   conj(A·B)                its point reflection c[−k] (c is real),
    //   · (−1)^(ky+kx)           the fftshift by (ny/2, nx/2) (both even).
    let mut spec = fft.make_spectrum();
    {
        let src: &[f64] = &buf;
        let se: &[_] = &spec_e;
        fft.forward_with(
            |y, row| row.copy_from_slice(&src[y * nx..(y + 1) * nx]),
            &mut spec,
            |kx0, cols| {
                let e = &se[kx0 * ny..kx0 * ny + cols.len()];
                for (k, (c, e)) in cols
                    .chunks_exact_mut(ny)
                    .zip(e.chunks_exact(ny))
                    .enumerate()
                {
                    let kx = kx0 + k;
                    for (ky, (c, e)) in c.iter_mut().zip(e).enumerate() {
                        let v = (*c * *e).conj();
                        *c = if (kx + ky) % 2 == 0 { v } else { -v };
                    }
                }
            },
        )?;
    }
    drop(spec_e);

    // |·| / N: aiapy's abs() of the (real up to round-off) result and its 1/N².
    let scale = 1.0 / (ny as f64 * nx as f64);
    fft.inverse_with(&mut spec, &mut buf, |_, row, out| {
        for (o, v) in out.iter_mut().zip(row) {
            *o = (v * scale).abs();
        }
    })?;
    drop(spec);
    drop(fft);
    Array2::from_shape_vec((ny, nx), buf).map_err(|e| Error::Shape {
        file: source.clone(),
        reason: e.to_string(),
    })
}
