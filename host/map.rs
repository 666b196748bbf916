//! The in-memory map: pixels, the full header, and the typed geometry the pipeline uses.
//!
//! Conventions (as sunpy): `data[[row, col]] = data[[y, x]]`; pixel coordinates are
//! 0-based with pixel centres at integers; FITS `CRPIXn` is 1-based, so the 0-based
//! reference pixel is `CRPIX − 1`. Angles in the header are degrees, plate scales are
//! arcsec per pixel, distances are metres.

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, Source};
use crate::header::{Header, Value};

/// The ten AIA channels (Å): the EUV channels, then 1600, 1700 (UV) and 4500 (visible).
pub const AIA_CHANNELS: [u32; 10] = [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500];

/// An AIA image in memory.
///
/// Pixels are `f32` in data numbers (DN) as stored (BZERO/BSCALE applied); missing
/// pixels (FITS `BLANK`, or NaN in floating-point files) are NaN.
#[derive(Debug, Clone)]
pub struct AiaMap {
    /// Pixels, `[row, col]`, NaN = missing.
    pub data: Array2<f32>,
    /// Every header card of the image HDU (structural keywords included as read).
    pub header: Header,
    /// Where the map came from (used in error messages).
    pub source: Source,
}

/// The geometry keywords of a map, typed and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Image size in pixels `(nx, ny)` = (columns, rows).
    pub shape: (usize, usize),
    /// FITS reference pixel `(CRPIX1, CRPIX2)`, 1-based.
    pub crpix: [f64; 2],
    /// Reference coordinate `(CRVAL1, CRVAL2)` in arcsec (helioprojective Tx, Ty).
    pub crval: [f64; 2],
    /// Plate scale `(CDELT1, CDELT2)` in arcsec per pixel.
    pub cdelt: [f64; 2],
    /// sunpy's `rotation_matrix` (from PC, else CD, else CROTA2), acting on `(x, y)` column
    /// vectors; maps pixel axes onto intermediate world axes.
    pub rotation: [[f64; 2]; 2],
    /// Apparent solar radius `RSUN_OBS` in arcsec.
    pub rsun_obs: f64,
    /// Physical solar radius `RSUN_REF` in metres (696 000 km when absent, as sunpy's AIA frame).
    pub rsun_ref: f64,
    /// Observer–Sun distance `DSUN_OBS` in metres.
    pub dsun_obs: f64,
}

impl Geometry {
    /// The 0-based reference pixel `(CRPIX1 − 1, CRPIX2 − 1)`.
    pub fn reference_pixel(&self) -> [f64; 2] {
        [self.crpix[0] - 1.0, self.crpix[1] - 1.0]
    }

    /// Read and check the geometry keywords of a header. `shape` is `(nx, ny)`.
    ///
    /// Errors name the keyword: absent ([`Error::MissingKeyword`]) or not a finite number
    /// / not in arcsec ([`Error::BadKeyword`]).
    pub fn from_header(h: &Header, shape: (usize, usize), source: &Source) -> Result<Geometry> {
        let req = |key: &str| -> Result<f64> {
            match h.get(key) {
                None => Err(Error::MissingKeyword {
                    file: source.clone(),
                    key: key.to_string(),
                }),
                Some(v) => match v.as_f64() {
                    Some(x) if x.is_finite() => Ok(x),
                    _ => Err(Error::BadKeyword {
                        file: source.clone(),
                        key: key.to_string(),
                        reason: format!("not a finite number ({v:?})"),
                    }),
                },
            }
        };
        let opt = |key: &str| -> Result<Option<f64>> {
            match h.get(key) {
                None => Ok(None),
                Some(_) => req(key).map(Some),
            }
        };
        for key in ["CUNIT1", "CUNIT2"] {
            if let Some(u) = h.get_str(key) {
                if !u.trim().eq_ignore_ascii_case("arcsec") {
                    return Err(Error::BadKeyword {
                        file: source.clone(),
                        key: key.into(),
                        reason: format!("unit '{u}' is not arcsec"),
                    });
                }
            }
        }
        let crpix = [req("CRPIX1")?, req("CRPIX2")?];
        let crval = [req("CRVAL1")?, req("CRVAL2")?];
        let cdelt = [req("CDELT1")?, req("CDELT2")?];
        for (i, c) in cdelt.iter().enumerate() {
            if *c == 0.0 {
                return Err(Error::BadKeyword {
                    file: source.clone(),
                    key: format!("CDELT{}", i + 1),
                    reason: "zero plate scale".into(),
                });
            }
        }
        let rotation = rotation_matrix(h, cdelt, source)?;
        let rsun_obs = req("RSUN_OBS")?;
        let dsun_obs = req("DSUN_OBS")?;
        let rsun_ref = opt("RSUN_REF")?.unwrap_or(6.96e8);
        if rsun_obs <= 0.0 || dsun_obs <= 0.0 || rsun_ref <= 0.0 || rsun_ref >= dsun_obs {
            return Err(Error::BadKeyword {
                file: source.clone(),
                key: "RSUN_OBS/RSUN_REF/DSUN_OBS".into(),
                reason: format!(
                    "non-physical values RSUN_OBS={rsun_obs}, RSUN_REF={rsun_ref}, DSUN_OBS={dsun_obs}"
                ),
            });
        }
        Ok(Geometry {
            shape,
            crpix,
            crval,
            cdelt,
            rotation,
            rsun_obs,
            rsun_ref,
            dsun_obs,
        })
    }
}

/// sunpy's `rotation_matrix` precedence: any `PCi_j` present → PC (missing entries take
/// identity values); else any `CDi_j` → CD with rows divided by CDELT; else `CROTA2`
/// (degrees): `[[cos θ, −λ sin θ], [sin θ/λ, cos θ]]`, λ = CDELT2/CDELT1.
fn rotation_matrix(h: &Header, cdelt: [f64; 2], source: &Source) -> Result<[[f64; 2]; 2]> {
    let num = |key: &str, default: f64| -> Result<f64> {
        match h.get(key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if x.is_finite() => Ok(x),
                _ => Err(Error::BadKeyword {
                    file: source.clone(),
                    key: key.into(),
                    reason: format!("not a finite number ({v:?})"),
                }),
            },
        }
    };
    let pc = ["PC1_1", "PC1_2", "PC2_1", "PC2_2"];
    let cd = ["CD1_1", "CD1_2", "CD2_1", "CD2_2"];
    if pc.iter().any(|k| h.contains(k)) {
        return Ok([
            [num("PC1_1", 1.0)?, num("PC1_2", 0.0)?],
            [num("PC2_1", 0.0)?, num("PC2_2", 1.0)?],
        ]);
    }
    if cd.iter().any(|k| h.contains(k)) {
        return Ok([
            [num("CD1_1", 0.0)? / cdelt[0], num("CD1_2", 0.0)? / cdelt[0]],
            [num("CD2_1", 0.0)? / cdelt[1], num("CD2_2", 0.0)? / cdelt[1]],
        ]);
    }
    if !h.contains("CROTA2") {
        return Err(Error::MissingKeyword {
            file: source.clone(),
            key: "CROTA2 (or PCi_j / CDi_j)".into(),
        });
    }
    let theta = num("CROTA2", 0.0)?.to_radians();
    let lam = cdelt[1] / cdelt[0];
    let (s, c) = theta.sin_cos();
    Ok([[c, -lam * s], [s / lam, c]])
}

impl AiaMap {
    /// Wrap pixels and a header (no checks). `data` is `[row, col]`.
    pub fn new(data: Array2<f32>, header: Header, source: Source) -> AiaMap {
        AiaMap {
            data,
            header,
            source,
        }
    }

    /// `(nx, ny)` = (columns, rows).
    pub fn shape_xy(&self) -> (usize, usize) {
        self.view().shape_xy()
    }

    /// The checked geometry of this map.
    pub fn geometry(&self) -> Result<Geometry> {
        self.view().geometry()
    }

    /// The channel (`WAVELNTH`, Å) as an integer.
    pub fn wavelength(&self) -> Result<u32> {
        self.view().wavelength()
    }

    /// Check that the header describes an AIA image (`TELESCOP` contains "AIA" or
    /// `INSTRUME` starts with "AIA").
    pub fn check_is_aia(&self) -> Result<()> {
        self.view().check_is_aia()
    }

    /// The processing level `LVL_NUM`, if present.
    pub fn level(&self) -> Option<f64> {
        self.view().level()
    }

    /// Borrow this map ([`MapView`]), as the engines take it.
    pub fn view(&self) -> MapView<'_> {
        MapView::new(self.data.view(), &self.header, &self.source)
    }
}

/// A borrowed map: pixels someone else owns (a numpy array, a C caller's buffer, an
/// [`AiaMap`]) with a header and a source. What the engines read: nothing is copied on the
/// way in. Pixels as in [`AiaMap`] (`[row, col]`, DN, NaN = missing); any strides.
#[derive(Debug, Clone, Copy)]
pub struct MapView<'a> {
    /// Pixels, `[row, col]`, NaN = missing.
    pub data: ArrayView2<'a, f32>,
    /// The header.
    pub header: &'a Header,
    /// Where the map came from (used in error messages).
    pub source: &'a Source,
}

impl<'a> MapView<'a> {
    /// Borrow pixels, a header and a source (no checks).
    pub fn new(data: ArrayView2<'a, f32>, header: &'a Header, source: &'a Source) -> Self {
        MapView {
            data,
            header,
            source,
        }
    }

    /// `(nx, ny)` = (columns, rows).
    pub fn shape_xy(&self) -> (usize, usize) {
        let (ny, nx) = self.data.dim();
        (nx, ny)
    }

    /// The checked geometry of this map.
    pub fn geometry(&self) -> Result<Geometry> {
        Geometry::from_header(self.header, self.shape_xy(), self.source)
    }

    /// The channel (`WAVELNTH`, Å) as an integer.
    pub fn wavelength(&self) -> Result<u32> {
        wavelength(self.header, self.source)
    }

    /// See [`AiaMap::check_is_aia`].
    pub fn check_is_aia(&self) -> Result<()> {
        check_is_aia(self.header, self.source)
    }

    /// The processing level `LVL_NUM`, if present.
    pub fn level(&self) -> Option<f64> {
        self.header.get_f64("LVL_NUM")
    }

    /// An owned copy.
    pub fn to_owned(&self) -> AiaMap {
        AiaMap::new(
            self.data.as_standard_layout().into_owned(),
            self.header.clone(),
            self.source.clone(),
        )
    }
}

impl<'a> From<&'a AiaMap> for MapView<'a> {
    fn from(m: &'a AiaMap) -> MapView<'a> {
        m.view()
    }
}

impl<'a> From<&'a mut AiaMap> for MapView<'a> {
    fn from(m: &'a mut AiaMap) -> MapView<'a> {
        m.view()
    }
}

/// See [`AiaMap::check_is_aia`].
pub fn check_is_aia(h: &Header, source: &Source) -> Result<()> {
    let tel = h
        .get_str("TELESCOP")
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    let ins = h
        .get_str("INSTRUME")
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase();
    if tel.contains("AIA") || ins.starts_with("AIA") {
        Ok(())
    } else {
        Err(Error::NotAia {
            file: source.clone(),
            reason: format!("TELESCOP='{tel}', INSTRUME='{ins}'"),
        })
    }
}

/// The value of keyword `key` of `header`; [`Error::MissingKeyword`] naming `source` when
/// absent.
pub fn required<'a>(header: &'a Header, source: &Source, key: &str) -> Result<&'a Value> {
    header.get(key).ok_or_else(|| Error::MissingKeyword {
        file: source.clone(),
        key: key.into(),
    })
}

/// The channel of a header (`WAVELNTH`, Å, rounded), as [`AiaMap::wavelength`]; errors
/// name `source`.
pub fn wavelength(header: &Header, source: &Source) -> Result<u32> {
    let v = required(header, source, "WAVELNTH")?;
    match v.as_f64() {
        Some(w) if w.is_finite() && w > 0.0 && w < 1e5 => Ok(w.round() as u32),
        _ => Err(Error::BadKeyword {
            file: source.clone(),
            key: "WAVELNTH".into(),
            reason: format!("not a wavelength ({v:?})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Value;

    fn base() -> Header {
        let mut h = Header::new();
        for (k, v) in [
            ("CRPIX1", 2053.2),
            ("CRPIX2", 2045.7),
            ("CRVAL1", 0.0),
            ("CRVAL2", 0.0),
            ("CDELT1", 0.6007),
            ("CDELT2", 0.6007),
            ("CROTA2", -0.13),
            ("RSUN_OBS", 962.0),
            ("DSUN_OBS", 1.49e11),
        ] {
            h.set_f64(k, v, None);
        }
        h.set("TELESCOP", Value::Str("SDO/AIA".into()), None);
        h
    }

    #[test]
    fn crota2_gives_sunpy_rotation_matrix() {
        let g = Geometry::from_header(&base(), (4096, 4096), &Source::memory()).unwrap();
        let t = (-0.13f64).to_radians();
        assert!((g.rotation[0][0] - t.cos()).abs() < 1e-15);
        assert!((g.rotation[0][1] + t.sin()).abs() < 1e-15);
        assert!((g.rotation[1][0] - t.sin()).abs() < 1e-15);
        assert_eq!(g.rsun_ref, 6.96e8);
        assert_eq!(g.reference_pixel(), [2052.2, 2044.7]);
    }

    #[test]
    fn pc_takes_precedence_over_crota2() {
        let mut h = base();
        h.set_f64("PC1_2", 0.25, None);
        let g = Geometry::from_header(&h, (4096, 4096), &Source::memory()).unwrap();
        assert_eq!(g.rotation, [[1.0, 0.25], [0.0, 1.0]]);
    }

    #[test]
    fn missing_and_nonfinite_keywords_are_named() {
        let mut h = base();
        h.remove("CDELT2");
        let e = Geometry::from_header(&h, (4096, 4096), &Source::file("x.fits")).unwrap_err();
        assert!(
            e.to_string().contains("x.fits") && e.to_string().contains("CDELT2"),
            "{e}"
        );
        let mut h = base();
        h.set("RSUN_OBS", Value::Str("nan".into()), None);
        let e = Geometry::from_header(&h, (4096, 4096), &Source::memory()).unwrap_err();
        assert!(
            matches!(e, Error::BadKeyword { ref key, .. } if key == "RSUN_OBS"),
            "{e}"
        );
        let mut h = base();
        h.remove("CROTA2");
        assert!(matches!(
            Geometry::from_header(&h, (4096, 4096), &Source::memory()),
            Err(Error::MissingKeyword { .. })
        ));
    }

    #[test]
    fn aia_check() {
        let m = AiaMap::new(Array2::zeros((2, 2)), base(), Source::memory());
        assert!(m.check_is_aia().is_ok());
        let mut h = base();
        h.set("TELESCOP", Value::Str("SOHO".into()), None);
        let m = AiaMap::new(Array2::zeros((2, 2)), h, Source::memory());
        assert!(matches!(m.check_is_aia(), Err(Error::NotAia { .. })));
    }
}
