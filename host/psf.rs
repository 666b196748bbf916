//! The AIA point-spread-function model (aiapy `psf` / IDL `aia_calc_psf`): diffraction by the
//! entrance and focal-plane filter meshes plus a Gaussian core (semantics.md §2).
//!
//! For one filter with mesh spacing `d` (pixels), arm angles `θ_k` and Gaussian coefficient
//! `w` (the coefficient of r², *not* a sigma: σ = 1/√(2w)):
//!
//! ```text
//! G(x0, y0)[j, i] = exp(−w (x_i − x0)² − w (y_j − y0)²),  x_i = i + 0.5, y_j = j + 0.5
//! c = (N/2 + 0.5)                         → every Gaussian is centred on index N/2 (+ offset)
//! I_m = sinc²(m / ρ),  ρ = mesh_pitch / mesh_width = 363/34
//! S   = Σ_{m ∈ orders, m ≠ 0} Σ_k I_m · G(c + m d cos θ_k, c + m d sin θ_k)   (x = column, y = row)
//! C   = G(c, c)
//! P   = 0.18 · S/ΣS + 0.82 · C/ΣC
//! ```
//!
//! The entrance filter uses `d = spacing_e` and the four `angle_arm`s, the focal-plane filter
//! `d = spacing_fp` and ±45°. The composite is aiapy's `|FFT2(FFT2(P_fp)·FFT2(P_e))| / N²`,
//! `fftshift`ed: the circular convolution of the two patterns, **point-reflected** through the
//! origin (two forward FFTs). The reflection is a no-op for symmetric order lists (the default)
//! but is reproduced so that user-supplied asymmetric orders match aiapy. The peak lands on
//! index `[N/2, N/2]` (0-based) and the sum is 1 to ~1e-12.
//!
//! Differences from aiapy, all deliberate: the computation exploits locality and separability
//! (each Gaussian is evaluated in a small window, as products of 1-D factors, beyond which its
//! factors underflow to exactly 0 in f64; spikes falling off the grid are lost and `ΣS` is over
//! the on-grid part, as in aiapy) and runs the composite through real FFTs in f64, so results
//! agree with aiapy to rounding (≈1e-15 absolute). Sizes other than 4096 are supported with the
//! same model on an `N × N` grid (aiapy hard-codes 4096); rectangular even grids are available
//! through [`crate::cpu::deconvolve::model_otf`]. This module holds the model's parameters
//! and rules; the CPU evaluation is [`crate::cpu::psf`], the GPU one `gpu::psf`.

use ndarray::Array2;

use crate::error::{Error, Result, Source};

/// Mesh geometry of one EUV channel's filters (aiapy `filter_mesh_parameters`, IDL
/// `aia_getmeshinfo`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeshParameters {
    /// Angles of the four entrance-filter mesh arms, degrees (counter-clockwise from the +x
    /// = column axis towards +y = row axis).
    pub angle_arm_deg: [f64; 4],
    /// Distance between consecutive diffraction spikes of the entrance filter, pixels.
    pub spacing_e: f64,
    /// Distance between consecutive diffraction spikes of the focal-plane filter, pixels.
    pub spacing_fp: f64,
    /// Gaussian coefficient `w` of the default (in-flight) core, px⁻² (the coefficient of r²
    /// in the exponent; σ = 1/√(2w) px). 4.5 for every channel.
    pub width: f64,
    /// Gaussian coefficient `w` of the pre-flight core, px⁻².
    pub width_preflight: f64,
    /// Mesh pitch, micrometres (363 for every channel).
    pub mesh_pitch_um: f64,
    /// Mesh wire width, micrometres (34 for every channel).
    pub mesh_width_um: f64,
}

/// The mesh parameters of an EUV channel (Å: 94, 131, 171, 193, 211, 304, 335); `None` for
/// 1600, 1700, 4500 and anything else.
pub fn mesh_parameters(channel: u32) -> Option<MeshParameters> {
    let (angle_arm_deg, spacing_e, spacing_fp, width_preflight) = match channel {
        94 => ([49.81, 40.16, -40.28, -49.92], 8.99, 0.207, 0.951),
        131 => ([50.27, 40.17, -39.70, -49.95], 12.37, 0.289, 1.033),
        171 => ([49.81, 39.57, -40.13, -50.38], 16.26, 0.377, 0.962),
        193 => ([49.82, 39.57, -40.12, -50.37], 18.39, 0.425, 1.512),
        211 => ([49.78, 40.08, -40.34, -49.95], 19.97, 0.465, 1.199),
        304 => ([49.76, 40.18, -40.14, -49.90], 28.87, 0.670, 1.247),
        335 => ([50.40, 39.80, -39.64, -50.25], 31.83, 0.738, 0.962),
        _ => return None,
    };
    Some(MeshParameters {
        angle_arm_deg,
        spacing_e,
        spacing_fp,
        width: 4.5,
        width_preflight,
        mesh_pitch_um: 363.0,
        mesh_width_um: 34.0,
    })
}

/// Options of the PSF model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PsfOptions {
    /// Diffraction orders summed over (order 0 is skipped; repeats count twice, as in aiapy).
    /// Default −100..=100.
    pub orders: Vec<i32>,
    /// Use the pre-flight core width ([`MeshParameters::width_preflight`]) for both filters
    /// (aiapy `use_preflightcore`). Default false.
    pub preflight_core: bool,
    /// Grid size `N` (pixels, even, ≥ 2); the PSF is `N × N`. Default 4096.
    pub size: usize,
}

impl Default for PsfOptions {
    fn default() -> PsfOptions {
        PsfOptions {
            orders: (-100..=100).collect(),
            preflight_core: false,
            size: 4096,
        }
    }
}

impl PsfOptions {
    /// True when the orders are the default −100..=100.
    pub fn has_default_orders(&self) -> bool {
        self.orders.len() == 201 && self.orders.iter().copied().eq(-100..=100)
    }

    /// The orders written compactly, runs of consecutive values as `a..b`
    /// (e.g. `-100..100`, `-2,1..3,5`).
    pub fn orders_label(&self) -> String {
        let mut parts = Vec::new();
        let mut i = 0;
        let o = &self.orders;
        while i < o.len() {
            let mut j = i;
            while j + 1 < o.len() && o[j + 1] == o[j].wrapping_add(1) {
                j += 1;
            }
            if j > i {
                parts.push(format!("{}..{}", o[i], o[j]));
            } else {
                parts.push(o[i].to_string());
            }
            i = j + 1;
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(",")
        }
    }
}

/// Largest PSF grid accepted, in pixels (32768², 8 GiB of `f64` per array).
pub const MAX_PSF_PIXELS: usize = 1 << 30;

/// Check that the model exists for `channel` and can be evaluated on an `ny × nx` grid
/// (both even ≥ 2, at most [`MAX_PSF_PIXELS`]) — the rules every backend's PSF obeys.
/// Returns the channel's mesh parameters.
///
/// Errors (naming `source`): [`Error::NoPsfModel`] for 1600/1700/4500 or an unknown
/// channel; [`Error::InvalidOption`] for a grid outside those rules.
pub fn check_grid(channel: u32, shape: (usize, usize), source: &Source) -> Result<MeshParameters> {
    let mesh = mesh_parameters(channel).ok_or_else(|| Error::NoPsfModel {
        file: source.clone(),
        channel: channel.to_string(),
    })?;
    let (ny, nx) = shape;
    if ny < 2 || nx < 2 || ny % 2 != 0 || nx % 2 != 0 {
        return Err(Error::InvalidOption {
            file: source.clone(),
            reason: format!("PSF grid {ny}×{nx}: the model needs even sizes ≥ 2"),
        });
    }
    if ny.checked_mul(nx).is_none_or(|n| n > MAX_PSF_PIXELS) {
        return Err(Error::InvalidOption {
            file: source.clone(),
            reason: format!("PSF grid {ny}×{nx} is larger than {MAX_PSF_PIXELS} pixels"),
        });
    }
    Ok(mesh)
}

/// A host evaluation of the PSF model on an `ny × nx` grid: `(channel, options, (ny, nx),
/// source)` → the PSF (`[row, col]`, peak at `[ny/2, nx/2]`). The CPU backend's is
/// [`crate::cpu::psf::psf_grid`]; the GPU engine is handed one for the grids its own kernel
/// does not cover (non-square).
pub type HostPsfFn = fn(u32, &PsfOptions, (usize, usize), &Source) -> Result<Array2<f64>>;

/// The header written with a saved PSF (`prep --save-psf`): channel, model, core, orders,
/// grid size and software version, so that `--psf` users can see what they load.
pub fn psf_header(channel: u32, opts: &PsfOptions) -> crate::header::Header {
    use crate::header::{Header, Value};
    let mut h = Header::new();
    h.set("TELESCOP", Value::Str("SDO/AIA".into()), None);
    h.set(
        "WAVELNTH",
        Value::Int(i64::from(channel)),
        Some("[angstrom] channel of the PSF model"),
    );
    h.set(
        "PSFMODEL",
        Value::Str("aiapy instrument model".into()),
        Some("entrance + focal-plane mesh diffraction"),
    );
    h.set(
        "PSFCORE",
        Value::Str(
            if opts.preflight_core {
                "preflight"
            } else {
                "default"
            }
            .into(),
        ),
        Some("core width"),
    );
    h.set(
        "PSFORDER",
        Value::Str(opts.orders_label()),
        Some("diffraction orders"),
    );
    h.set(
        "PSFSIZE",
        Value::Int(opts.size as i64),
        Some("[pixel] grid size N"),
    );
    h.set(
        "PSFPEAK",
        Value::Str(format!("[{0}, {0}]", opts.size / 2)),
        Some("0-based [row, col] of the peak"),
    );
    h.push_history(&format!(
        "aiaprep {} psf: channel {channel}, orders {}, {} core, {}x{}, sum 1",
        crate::VERSION,
        opts.orders_label(),
        if opts.preflight_core {
            "preflight"
        } else {
            "default"
        },
        opts.size,
        opts.size
    ));
    h
}
