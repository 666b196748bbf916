//! `register`: level 1 → level 1.5 (de-rotate to solar north, rescale to the target plate
//! scale, put the Sun-centre reference pixel on the array centre), as aiapy
//! `aiapy.calibrate.register` (semantics.md §4) on the CPU.
//!
//! This module holds what both backends share: the options, the [`plan`] (geometry,
//! full-disk check, transform), the [`rules`] for missing pixels and clipping, and the
//! output header ([`level15_header`]); the CPU body is [`crate::cpu::register()`].
//!
//! Geometry: [`crate::geometry`] (input = ref + R⁻¹/s · (out − c)); resampling, padding,
//! missing pixels and clipping: `crate::cpu::resample`.
//!
//! Deliberate differences from aiapy 0.10:
//! * the output always has the input shape (4096² for full frames) with
//!   `CRPIX = (N + 1)/2`, as SolarSoft `aia_prep` (aiapy may return 4094², see
//!   [`crate::geometry`]);
//! * pixels are `f32` (aiapy keeps the input dtype; int16 rounding is done by the writer);
//! * `LVL_NUM ≠ 1` is not an error here (the pipeline warns, as aiapy does);
//! * the header gets `CROTA2 = 0` and no PC matrix, as JSOC's level-1.5 files (aiapy
//!   writes PC ≈ I up to 1e-17 and removes CROTA2; the FITS standard forbids both),
//!   `XCEN`/`YCEN` and a HISTORY card.
//!
//! Accuracy: ≤ 4e-7 of the data range from aiapy 0.10.2 (f32 pixels and coefficients),
//! identical NaN masks (tests/register_parity.rs, also at 4096² on demand).
//!
//! Cost: rayon over output rows with AVX2 + FMA kernels where available; ≈ 80 ms for a
//! 4096² spline register with missing pixels on 2 cores (aiapy: 2.8 s). Memory: the
//! output plus one B-spline coefficient plane, which is kept in a small pool for the next
//! call (`crate::buffers::release_scratch` frees it).

pub mod rules;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::geometry::{full_disk_check, register_transform, target_scale, RegisterTransform};
use crate::header::{Header, Value};
use crate::map::{Geometry, MapView};

/// The interpolation kernel of `register`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// Nearest neighbour (scipy order 0; halves round up).
    Nearest,
    /// Bilinear (scipy order 1).
    Linear,
    /// Cubic B-spline with mirror prefilter (scipy order 3): aiapy's default and parity.
    #[default]
    Spline,
    /// Cubic convolution, Keys a = −0.5 (SolarSoft `aia_prep` / IDL `ROT, CUBIC=−0.5`),
    /// applied with the spline's rules: on the image padded with `missing` as sunpy pads
    /// it, neighbours beyond the padded edge mirrored, positions outside the padded frame
    /// → `missing`, NaN dilation k = 5, clipping. Reproduces quadratics exactly.
    Keys,
}

impl Interpolation {
    /// The scipy spline order this corresponds to (keys: 3, as its footprint).
    pub fn order(self) -> u32 {
        match self {
            Interpolation::Nearest => 0,
            Interpolation::Linear => 1,
            Interpolation::Spline | Interpolation::Keys => 3,
        }
    }
}

impl fmt::Display for Interpolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Interpolation::Nearest => "nearest",
            Interpolation::Linear => "linear",
            Interpolation::Spline => "spline",
            Interpolation::Keys => "keys",
        })
    }
}

impl FromStr for Interpolation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "nearest" => Ok(Interpolation::Nearest),
            "linear" => Ok(Interpolation::Linear),
            "spline" => Ok(Interpolation::Spline),
            "keys" => Ok(Interpolation::Keys),
            other => Err(format!(
                "unknown interpolation '{other}' (expected nearest, linear, spline or keys)"
            )),
        }
    }
}

/// The value given to output pixels that sample outside the (padded) input.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Missing {
    /// The NaN-ignoring minimum of the input data (aiapy's default).
    #[default]
    Min,
    /// A fixed value in DN (finite).
    Value(f64),
    /// NaN: the output marks those pixels missing (and, as sunpy, sunpy's padding counts as
    /// missing data).
    Nan,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Min => f.write_str("min"),
            Missing::Value(v) => write!(f, "{v}"),
            Missing::Nan => f.write_str("nan"),
        }
    }
}

impl FromStr for Missing {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "min" => Ok(Missing::Min),
            "nan" => Ok(Missing::Nan),
            _ => match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Missing::Value(v)),
                _ => Err(format!(
                    "invalid missing value '{s}' (expected min, nan or a finite number)"
                )),
            },
        }
    }
}

/// Options of a register ([`crate::cpu::register()`], the GPU engine).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterOptions {
    /// Interpolation kernel (default: spline, aiapy parity).
    pub interpolation: Interpolation,
    /// Value outside the input (default: the data minimum, as aiapy).
    pub missing: Missing,
    /// Refuse maps that do not contain the whole solar disk (sunpy `contains_full_disk`,
    /// as aiapy). Default true.
    pub check_full_disk: bool,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        RegisterOptions {
            interpolation: Interpolation::Spline,
            missing: Missing::Min,
            check_full_disk: true,
        }
    }
}

/// What [`plan`] derives from a map before any pixel is touched: the geometry, the target
/// plate scale and the output → input transform. Shared by every engine (CPU and GPU), so
/// that they check, resample and label maps identically.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The input geometry (from the header).
    pub geometry: Geometry,
    /// The output plate scale, arcsec per pixel (0.6 for full frames; a multiple of 0.6
    /// for binned images, as aiapy).
    pub target_scale: f64,
    /// The resampling transform (input = ref + R⁻¹/s · (out − c)), output shape and
    /// sunpy's padding.
    pub transform: RegisterTransform,
}

impl Plan {
    /// The roll removed, in degrees: `atan2(R[1][0], R[0][0])` of the input rotation.
    pub fn roll_deg(&self) -> f64 {
        let r = &self.geometry.rotation;
        r[1][0].atan2(r[0][0]).to_degrees()
    }
}

/// Validate a map and the options for register and derive the [`Plan`]. Does not look at
/// the pixels.
///
/// Errors (naming `map.source`): [`Error::Shape`] for an empty image;
/// [`Error::MissingKeyword`] / [`Error::BadKeyword`] from the geometry keywords;
/// [`Error::NotFullDisk`] (with the failing edge or the centre) when `check_full_disk` is
/// set and the test fails; [`Error::InvalidOption`] for a non-finite `Missing::Value`, a
/// non-finite or absurd scale factor (outside 1e-3..=1e3) or a singular rotation matrix.
pub fn plan<'a>(map: impl Into<MapView<'a>>, opts: &RegisterOptions) -> Result<Plan> {
    let map = map.into();
    let (nx, ny) = map.shape_xy();
    if nx == 0 || ny == 0 {
        return Err(Error::Shape {
            file: map.source.clone(),
            reason: "empty image".into(),
        });
    }
    let g = map.geometry()?;
    if opts.check_full_disk {
        full_disk_check(&g).map_err(|f| Error::NotFullDisk {
            file: map.source.clone(),
            reason: f.to_string(),
        })?;
    }
    if let Missing::Value(v) = opts.missing {
        if !v.is_finite() {
            return Err(Error::InvalidOption {
                file: map.source.clone(),
                reason: format!("missing value {v} is not finite (use nan)"),
            });
        }
    }
    let scale = target_scale(&g);
    let t = register_transform(&g);
    let s = t.scale_factor;
    if !(s.is_finite() && scale > 0.0 && (1e-3..=1e3).contains(&s)) {
        return Err(Error::InvalidOption {
            file: map.source.clone(),
            reason: format!(
                "scale factor CDELT1/target = {} / {scale} = {s} is not usable",
                g.cdelt[0]
            ),
        });
    }
    if !t.matrix.iter().flatten().all(|v| v.is_finite()) {
        return Err(Error::InvalidOption {
            file: map.source.clone(),
            reason: format!("rotation matrix {:?} is singular", g.rotation),
        });
    }
    Ok(Plan {
        geometry: g,
        target_scale: scale,
        transform: t,
    })
}

/// The level-1.5 header of a registered map: `header` (the input's) with `LVL_NUM = 1.5`,
/// `NAXIS1/2` of the output, `CDELT1/2` = the target scale (arcsec/px), `CRPIX1/2` =
/// `(N + 1)/2` (1-based array centre), `CROTA2 = 0` with no PC matrix (JSOC's convention
/// for level 1.5; PC, CD and CROTA1 removed), `R_SUN = RSUN_OBS / CDELT1` (pixels), `XCEN`/`YCEN` = CRVAL (arcsec, when
/// present), and a HISTORY card naming the version, the interpolation, the missing value
/// (`missing_used`, DN: the value the resampler used, shown for `Missing::Min`), the scale
/// factor and the roll removed (degrees).
pub fn level15_header(
    header: &Header,
    plan: &Plan,
    opts: &RegisterOptions,
    missing_used: f64,
) -> Header {
    let g = &plan.geometry;
    let (nx, ny) = plan.transform.out_shape;
    let scale = plan.target_scale;
    let mut h = header.clone();
    h.set_f64("LVL_NUM", 1.5, None);
    h.set("NAXIS1", Value::Int(nx as i64), None);
    h.set("NAXIS2", Value::Int(ny as i64), None);
    h.set_f64("CDELT1", scale, None);
    h.set_f64("CDELT2", scale, None);
    h.set_f64("CRPIX1", (nx as f64 + 1.0) / 2.0, None);
    h.set_f64("CRPIX2", (ny as f64 + 1.0) / 2.0, None);
    h.set_f64("CROTA2", 0.0, None);
    h.remove("CROTA1");
    for k in ["CD1_1", "CD1_2", "CD2_1", "CD2_2"] {
        h.remove(k);
    }
    // The JSOC convention of level-1.5 files: CROTA2 = 0 and no PC matrix (the FITS
    // standard forbids both; fitsverify refuses PCi_j with CROTA2). sunpy reads the same
    // identity rotation from either.
    for k in ["PC1_1", "PC1_2", "PC2_1", "PC2_2"] {
        h.remove(k);
    }
    h.set_f64(
        "R_SUN",
        g.rsun_obs / scale,
        Some("[pixel] solar radius, RSUN_OBS/CDELT1"),
    );
    if h.contains("XCEN") {
        h.set_f64("XCEN", g.crval[0], None);
    }
    if h.contains("YCEN") {
        h.set_f64("YCEN", g.crval[1], None);
    }
    let missing = match opts.missing {
        Missing::Min => format!("min ({missing_used})"),
        other => other.to_string(),
    };
    h.push_history(&format!(
        "aiaprep {} register: interpolation={}, missing={}, scale factor {:.9}, roll {:.6} deg",
        crate::VERSION,
        opts.interpolation,
        missing,
        plan.transform.scale_factor,
        plan.roll_deg()
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        for s in ["nearest", "linear", "spline", "keys"] {
            let i: Interpolation = s.parse().unwrap();
            assert_eq!(i.to_string(), s);
        }
        assert!("cubic".parse::<Interpolation>().is_err());
        assert_eq!("MIN".parse::<Missing>().unwrap(), Missing::Min);
        assert_eq!("nan".parse::<Missing>().unwrap(), Missing::Nan);
        assert_eq!("-3.5".parse::<Missing>().unwrap(), Missing::Value(-3.5));
        assert!("inf".parse::<Missing>().is_err());
        assert!("x".parse::<Missing>().is_err());
        let d = RegisterOptions::default();
        assert_eq!(d.interpolation, Interpolation::Spline);
        assert_eq!(d.missing, Missing::Min);
        assert!(d.check_full_disk);
    }
}
