//! The geometry of `register` (level 1 → 1.5) and sunpy's full-disk test.
//!
//! Conventions: pixel coordinates `(x, y)` = (column, row), 0-based, pixel centres at
//! integers and pixel edges at ±0.5; FITS `CRPIX` is 1-based; plate scales in arcsec per
//! pixel; angles in degrees in headers and radians in code.
//!
//! The register transform follows aiapy 0.10 / sunpy ≥ 4.0 (semantics.md §4.2, §6.2, §6.3):
//!
//! ```text
//! input = reference + M · (out − out_center),   M = R⁻¹ / s
//! reference = CRPIX − 1,  R = sunpy rotation_matrix (PC > CD > CROTA2),  s = CDELT1 / target scale,
//! out_center = ((nx − 1)/2, (ny − 1)/2)
//! ```
//!
//! **Deliberate difference from aiapy:** the output always has the input's shape (4096² for
//! full frames) with the reference pixel on the array centre, `CRPIX = (N + 1)/2`. aiapy
//! returns 4094² (CRPIX 2047.5) when `4096·s·(|cos θ| + |sin θ|) ≤ 4094` (e.g. 171 Å with a
//! roll under 0.02°) and crops square outputs by `NAXIS2`; SolarSoft `aia_prep` always
//! returns 4096² with CRPIX 2048.5, and aiapy's own documentation tells users to pad its
//! output back to that. The sampled positions are identical: only the frame differs.

use crate::map::Geometry;

/// The level-1.5 plate scale of full-resolution AIA images, arcsec per pixel.
pub const TARGET_SCALE_ARCSEC: f64 = 0.6;

/// Beyond this many pixels from the image, sunpy's padding (filled with `missing`) is not
/// materialised: the B-spline coefficients there equal `missing` to within
/// (2 − √3)^`MAX_MATERIALISED_PAD` ≈ 5e-19 of the data range.
pub const MAX_MATERIALISED_PAD: usize = 32;

/// aiapy `register` step 4 (semantics.md §4.1): the output plate scale in arcsec per
/// pixel. 0.6″, except for binned inputs: when `round(CDELT1/0.6) ≠ 1` (numpy rounding,
/// half to even) **and** the shape is not 4096 × 4096, `round(CDELT1/0.6)·0.6″`, which keeps
/// binned data binned (e.g. 1.2″ for a 2048² image). May be 0 or negative for absurd
/// `CDELT1` (`register` rejects those).
pub fn target_scale(g: &Geometry) -> f64 {
    let ratio = round_half_even(g.cdelt[0] / TARGET_SCALE_ARCSEC);
    if ratio != 1.0 && g.shape != (4096, 4096) {
        ratio * TARGET_SCALE_ARCSEC
    } else {
        TARGET_SCALE_ARCSEC
    }
}

/// numpy's `round` (ties to even).
fn round_half_even(v: f64) -> f64 {
    let r = v.round();
    if (r - v).abs() == 0.5 && r % 2.0 != 0.0 {
        r - v.signum()
    } else {
        r
    }
}

/// The output → input affine map of `register`, 0-based `(x, y)` pixel coordinates:
/// `input = reference + matrix · (out − out_center)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterTransform {
    /// The input reference pixel `CRPIX − 1` (0-based, pixels); lands on `out_center`.
    pub reference: [f64; 2],
    /// `R⁻¹ / s` (input pixels per output pixel), acting on `(x, y)` column vectors.
    pub matrix: [[f64; 2]; 2],
    /// The output array centre `((nx − 1)/2, (ny − 1)/2)` (0-based, pixels).
    pub out_center: [f64; 2],
    /// Output shape `(nx, ny)` in pixels: always the input shape.
    pub out_shape: (usize, usize),
    /// `s = CDELT1 / target scale` (dimensionless; > 1 shrinks the image).
    pub scale_factor: f64,
    /// sunpy's padding of the input (semantics.md §6.2), pixels on each side in x and y:
    /// the input is extended by this many `missing` pixels before resampling, so input
    /// coordinates in `[−pad, n − 1 + pad]` are inside the (padded) image.
    pub pad: [usize; 2],
}

/// One output row of a [`RegisterTransform`]: input = `base + x · step` for output column x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowMap {
    /// Input position `(x, y)` of output column 0 (pixels).
    pub base: [f64; 2],
    /// Input displacement per output column `(dx, dy)` (pixels).
    pub step: [f64; 2],
}

impl RowMap {
    /// The input position `(x, y)` (pixels) of output column `x`.
    #[inline(always)]
    pub fn at(&self, x: usize) -> [f64; 2] {
        let xf = x as f64;
        [
            self.base[0] + xf * self.step[0],
            self.base[1] + xf * self.step[1],
        ]
    }
}

impl RegisterTransform {
    /// The affine map along output row `y`. Every consumer (resampler, missing-pixel mask,
    /// tests) evaluates coordinates through this, so they agree to the last bit.
    #[inline]
    pub fn row(&self, y: usize) -> RowMap {
        let m = &self.matrix;
        let dx0 = -self.out_center[0];
        let dy = y as f64 - self.out_center[1];
        RowMap {
            base: [
                self.reference[0] + m[0][0] * dx0 + m[0][1] * dy,
                self.reference[1] + m[1][0] * dx0 + m[1][1] * dy,
            ],
            step: [m[0][0], m[1][0]],
        }
    }

    /// The input position `(x, y)` (0-based pixels) sampled by output pixel `(x, y)`.
    pub fn input_of(&self, x: usize, y: usize) -> [f64; 2] {
        self.row(y).at(x)
    }

    /// The inverse map: the output position (0-based pixels, fractional) of input position
    /// `p` (0-based pixels). `None` when the matrix is singular.
    pub fn output_of(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let inv = invert(self.matrix)?;
        let d = [p[0] - self.reference[0], p[1] - self.reference[1]];
        Some([
            self.out_center[0] + inv[0][0] * d[0] + inv[0][1] * d[1],
            self.out_center[1] + inv[1][0] * d[0] + inv[1][1] * d[1],
        ])
    }
}

/// General 2 × 2 inverse (`None` if singular or not finite).
pub(crate) fn invert(m: [[f64; 2]; 2]) -> Option<[[f64; 2]; 2]> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    let inv = [
        [m[1][1] / det, -m[0][1] / det],
        [-m[1][0] / det, m[0][0] / det],
    ];
    if inv.iter().flatten().all(|v| v.is_finite()) {
        Some(inv)
    } else {
        None
    }
}

/// The register transform of a map (semantics.md §4.2, §6.3). Does not validate: a
/// singular rotation matrix or a non-finite/zero scale gives non-finite entries, which
/// [`crate::cpu::register()`] rejects with `Error::InvalidOption`.
pub fn register_transform(g: &Geometry) -> RegisterTransform {
    let s = g.cdelt[0] / target_scale(g);
    let inv = invert(g.rotation).unwrap_or([[f64::NAN; 2]; 2]);
    let matrix = [
        [inv[0][0] / s, inv[0][1] / s],
        [inv[1][0] / s, inv[1][1] / s],
    ];
    let (nx, ny) = g.shape;
    RegisterTransform {
        reference: g.reference_pixel(),
        matrix,
        out_center: [(nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0],
        out_shape: g.shape,
        scale_factor: s,
        pad: sunpy_padding(g.rotation, s, g.shape),
    }
}

/// sunpy's padding (semantics.md §6.2): the pixel-edge corners of the input, rotated by R
/// and scaled by s; `pad = max(ceil((extent − n)/2), 0)` per axis. Arithmetic in sunpy's
/// order so that the ceiling agrees. Non-finite inputs give 0.
pub fn sunpy_padding(r: [[f64; 2]; 2], s: f64, shape: (usize, usize)) -> [usize; 2] {
    let (nx, ny) = (shape.0 as f64, shape.1 as f64);
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for cx in [-0.5, nx - 0.5] {
        for cy in [-0.5, ny - 0.5] {
            let p = [
                (r[0][0] * cx + r[0][1] * cy) * s,
                (r[1][0] * cx + r[1][1] * cy) * s,
            ];
            for a in 0..2 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
    }
    let n = [nx, ny];
    let mut pad = [0usize; 2];
    for a in 0..2 {
        let d = ((hi[a] - lo[a] - n[a]) / 2.0).ceil();
        pad[a] = if d.is_finite() && d > 0.0 {
            d.min(1e9) as usize
        } else {
            0
        };
    }
    pad
}

// ---------------------------------------------------------------------------------------
// World coordinates (helioprojective, FITS-WCS TAN) and sunpy's contains_full_disk.
// ---------------------------------------------------------------------------------------

const ARCSEC: f64 = std::f64::consts::PI / (180.0 * 3600.0);

/// Helioprojective `(Tx, Ty)` in **radians** of 0-based pixel `(x, y)`: the full FITS-WCS
/// TAN (gnomonic) deprojection with `CRVAL` as the native pole's celestial position and
/// `LONPOLE = 180°` (as astropy/WCSLIB for zenithal projections).
pub fn pixel_to_world(g: &Geometry, x: f64, y: f64) -> (f64, f64) {
    let r = g.rotation;
    let [rx, ry] = g.reference_pixel();
    let (dx, dy) = (x - rx, y - ry);
    // Intermediate world coordinates (radians).
    let u = g.cdelt[0] * (r[0][0] * dx + r[0][1] * dy) * ARCSEC;
    let v = g.cdelt[1] * (r[1][0] * dx + r[1][1] * dy) * ARCSEC;
    // Native spherical: phi = atan2(u, −v), theta = atan(1/rho).
    let rho = u.hypot(v);
    let phi = u.atan2(-v);
    let theta = 1.0f64.atan2(rho);
    native_to_world(g, phi, theta)
}

fn native_to_world(g: &Geometry, phi: f64, theta: f64) -> (f64, f64) {
    let (a0, d0) = (g.crval[0] * ARCSEC, g.crval[1] * ARCSEC);
    let dphi = phi - std::f64::consts::PI; // φ − φ_p, φ_p = LONPOLE = 180°
    let (st, ct) = theta.sin_cos();
    let (sd, cd) = d0.sin_cos();
    let (sp, cp) = dphi.sin_cos();
    let lon = a0 + (-ct * sp).atan2(st * cd - ct * sd * cp);
    let lat = (st * sd + ct * cd * cp).clamp(-1.0, 1.0).asin();
    (lon, lat)
}

/// 0-based pixel `(x, y)` of helioprojective `(Tx, Ty)` (radians); `None` when the point
/// is on the far side of the tangent plane (not projectable) or the matrix is singular.
pub fn world_to_pixel(g: &Geometry, tx: f64, ty: f64) -> Option<(f64, f64)> {
    let (a0, d0) = (g.crval[0] * ARCSEC, g.crval[1] * ARCSEC);
    let (sd, cd) = d0.sin_cos();
    let (sy, cy) = ty.sin_cos();
    let (sa, ca) = (tx - a0).sin_cos();
    // Native spherical coordinates (φ_p = 180°).
    let phi = std::f64::consts::PI + (-cy * sa).atan2(sy * cd - cy * sd * ca);
    let theta = (sy * sd + cy * cd * ca).clamp(-1.0, 1.0).asin();
    if theta <= 0.0 {
        return None;
    }
    let rho = theta.cos() / theta.sin(); // cot θ (radians of the tangent plane)
    let u = rho * phi.sin() / ARCSEC / g.cdelt[0];
    let v = -rho * phi.cos() / ARCSEC / g.cdelt[1];
    let inv = invert(g.rotation)?;
    let [rx, ry] = g.reference_pixel();
    Some((
        rx + inv[0][0] * u + inv[0][1] * v,
        ry + inv[1][0] * u + inv[1][1] * v,
    ))
}

/// The Sun centre `(Tx, Ty) = (0, 0)` as a unit vector in the native frame of the TAN
/// projection (native pole = `CRVAL`, `LONPOLE = 180°`): the inverse of
/// [`native_to_world`] for that one point.
fn sun_centre_native(g: &Geometry) -> [f64; 3] {
    let (a0, d0) = (g.crval[0] * ARCSEC, g.crval[1] * ARCSEC);
    let (sd, cd) = d0.sin_cos();
    let (sa, ca) = (-a0).sin_cos();
    let phi = std::f64::consts::PI + (-sa).atan2(-sd * ca);
    let theta = (cd * ca).clamp(-1.0, 1.0).asin();
    let (st, ct) = theta.sin_cos();
    let (sp, cp) = phi.sin_cos();
    [ct * cp, ct * sp, st]
}

/// Which test of [`full_disk_check`] failed.
#[derive(Debug, Clone, PartialEq)]
pub enum FullDiskFailure {
    /// An edge pixel centre lies on the solar disk.
    EdgeOnDisk {
        /// "bottom" (row 0), "top" (row ny − 1), "left" (column 0) or "right" (column nx − 1).
        edge: &'static str,
        /// The 0-based pixel.
        pixel: (usize, usize),
        /// Its angular distance from the Sun centre, arcsec.
        distance_arcsec: f64,
        /// The solar angular radius `arcsin(RSUN_REF/DSUN_OBS)`, arcsec.
        radius_arcsec: f64,
    },
    /// The Sun centre `(0″, 0″)` maps outside `[−0.5, n − 0.5]` (or is not projectable).
    CentreOutside {
        /// Its 0-based pixel position, if projectable.
        pixel: Option<(f64, f64)>,
    },
    /// The image has no pixels.
    Empty,
}

impl std::fmt::Display for FullDiskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FullDiskFailure::EdgeOnDisk {
                edge,
                pixel,
                distance_arcsec,
                radius_arcsec,
            } => write!(
                f,
                "the {edge} edge is on the solar disk (pixel ({}, {}) is {distance_arcsec:.1}\" \
                 from the Sun centre, solar radius {radius_arcsec:.1}\")",
                pixel.0, pixel.1
            ),
            FullDiskFailure::CentreOutside {
                pixel: Some((x, y)),
            } => write!(
                f,
                "the Sun centre is outside the image (at pixel ({x:.1}, {y:.1}), 0-based)"
            ),
            FullDiskFailure::CentreOutside { pixel: None } => {
                f.write_str("the Sun centre is not in the field of view")
            }
            FullDiskFailure::Empty => f.write_str("the image has no pixels"),
        }
    }
}

/// sunpy's `contains_full_disk` (semantics.md §7.1), natively: every border pixel centre
/// must satisfy `arccos(cos Tx cos Ty) > arcsin(RSUN_REF/DSUN_OBS)` (exact TAN
/// deprojection), and the Sun centre must map into `[−0.5, n − 0.5]` on both axes.
/// About 2(nx + ny) coordinate transforms: microseconds.
pub fn full_disk_check(g: &Geometry) -> Result<(), FullDiskFailure> {
    let (nx, ny) = g.shape;
    if nx == 0 || ny == 0 {
        return Err(FullDiskFailure::Empty);
    }
    let radius = (g.rsun_ref / g.dsun_obs).asin();
    // The angular distance d of a pixel's direction from the Sun centre satisfies
    // cos d = cos Tx cos Ty = p·s, with p the pixel's unit vector and s the Sun centre's,
    // both in the TAN projection's native frame (rotations keep dot products). A point
    // (u, v) (radians) of the tangent plane has the native unit vector
    // (−v, u, 1)/√(1 + u² + v²), so the test needs no trigonometry per pixel:
    // on disk ⇔ d ≤ radius ⇔ p·s ≥ cos(radius).
    let sun = sun_centre_native(g);
    let cos_r = radius.cos();
    let r = g.rotation;
    let [rx, ry] = g.reference_pixel();
    let (ax, ay) = (g.cdelt[0] * ARCSEC, g.cdelt[1] * ARCSEC);
    let on_disk = |i: usize, j: usize| -> bool {
        let (dx, dy) = (i as f64 - rx, j as f64 - ry);
        let u = ax * (r[0][0] * dx + r[0][1] * dy);
        let v = ay * (r[1][0] * dx + r[1][1] * dy);
        let c = (-v * sun[0] + u * sun[1] + sun[2]) / (1.0 + u * u + v * v).sqrt();
        // NaN compares false: off disk, as in sunpy.
        c >= cos_r
    };
    // (name, first pixel, step, count): sunpy's map_edges order.
    let edges = [
        ("top", (0, ny - 1), (1, 0), nx),
        ("bottom", (0, 0), (1, 0), nx),
        ("left", (0, 0), (0, 1), ny),
        ("right", (nx - 1, 0), (0, 1), ny),
    ];
    for (edge, (x0, y0), (dx, dy), count) in edges {
        for k in 0..count {
            let (i, j) = (x0 + dx * k, y0 + dy * k);
            if on_disk(i, j) {
                // The exact distance, for the message.
                let (tx, ty) = pixel_to_world(g, i as f64, j as f64);
                let d = (tx.cos() * ty.cos()).clamp(-1.0, 1.0).acos();
                return Err(FullDiskFailure::EdgeOnDisk {
                    edge,
                    pixel: (i, j),
                    distance_arcsec: d / ARCSEC,
                    radius_arcsec: radius / ARCSEC,
                });
            }
        }
    }
    match world_to_pixel(g, 0.0, 0.0) {
        Some((x, y)) if x >= -0.5 && x <= nx as f64 - 0.5 && y >= -0.5 && y <= ny as f64 - 0.5 => {
            Ok(())
        }
        p => Err(FullDiskFailure::CentreOutside { pixel: p }),
    }
}

/// `true` when [`full_disk_check`] passes (sunpy's `contains_full_disk`).
pub fn contains_full_disk(g: &Geometry) -> bool {
    full_disk_check(g).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(n: usize, crpix: [f64; 2], cdelt: f64, roll_deg: f64) -> Geometry {
        let t = roll_deg.to_radians();
        Geometry {
            shape: (n, n),
            crpix,
            crval: [0.0, 0.0],
            cdelt: [cdelt, cdelt],
            rotation: [[t.cos(), -t.sin()], [t.sin(), t.cos()]],
            rsun_obs: 962.0,
            rsun_ref: 6.96e8,
            dsun_obs: 1.49e11,
        }
    }

    #[test]
    fn target_scale_rule() {
        assert_eq!(
            target_scale(&geom(4096, [2048.5; 2], 0.6007, 0.0)),
            TARGET_SCALE_ARCSEC
        );
        // binned: 2048² at 1.2″ stays at 1.2″; 4096² at 1.2″ goes to 0.6″
        assert!((target_scale(&geom(2048, [1024.5; 2], 1.2014, 0.0)) - 1.2).abs() < 1e-15);
        assert_eq!(target_scale(&geom(4096, [2048.5; 2], 1.2014, 0.0)), 0.6);
        // numpy rounds half to even: 0.9/0.6 = 1.5 → 2
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(-2.5), -2.0);
        assert_eq!(round_half_even(31.97), 32.0);
    }

    #[test]
    fn padding_matches_semantics_table() {
        // semantics.md §4.2 table: 171 Å (unpad → 0), 193 Å pad 3, 94 Å pad 1, 171 θ=0.06° pad 1
        let r = |deg: f64| {
            let t = deg.to_radians();
            [[t.cos(), -t.sin()], [t.sin(), t.cos()]]
        };
        let n = (4096, 4096);
        assert_eq!(sunpy_padding(r(0.0194), 0.599489 / 0.6, n), [0, 0]);
        assert_eq!(sunpy_padding(r(0.0), 0.600758 / 0.6, n), [3, 3]);
        assert_eq!(sunpy_padding(r(0.0), 0.600109 / 0.6, n), [1, 1]);
        assert_eq!(sunpy_padding(r(0.06), 0.599489 / 0.6, n), [1, 1]);
    }

    #[test]
    fn transform_maps_reference_to_centre_and_inverts() {
        let g = geom(4096, [2053.2, 2045.7], 0.6007, -0.13);
        let t = register_transform(&g);
        let c = t.input_of(2047, 2047);
        let off = t.output_of(t.reference).unwrap();
        assert!((off[0] - 2047.5).abs() < 1e-9 && (off[1] - 2047.5).abs() < 1e-9);
        let back = t.output_of(c).unwrap();
        assert!((back[0] - 2047.0).abs() < 1e-9 && (back[1] - 2047.0).abs() < 1e-9);
        assert!((t.scale_factor - 0.6007 / 0.6).abs() < 1e-15);
    }

    #[test]
    fn world_round_trip() {
        let mut g = geom(512, [257.3, 255.1], 4.8056, 12.0);
        g.crval = [150.0, -100.0];
        for &(x, y) in &[(0.0, 0.0), (511.0, 3.0), (100.5, 400.25)] {
            let (tx, ty) = pixel_to_world(&g, x, y);
            let (x2, y2) = world_to_pixel(&g, tx, ty).unwrap();
            assert!((x - x2).abs() < 1e-8 && (y - y2).abs() < 1e-8, "{x2} {y2}");
        }
    }

    #[test]
    fn full_frame_is_full_disk_and_cutout_is_not() {
        let g = geom(4096, [2053.2, 2045.7], 0.6007, -0.13);
        assert!(contains_full_disk(&g));
        let mut cut = g;
        cut.shape = (1000, 1000);
        cut.crpix = [500.0, 500.0];
        assert!(matches!(
            full_disk_check(&cut),
            Err(FullDiskFailure::EdgeOnDisk { .. })
        ));
        let mut off = g;
        off.crpix = [-3000.0, 2045.7];
        assert!(!contains_full_disk(&off));
    }

    #[test]
    fn trig_free_disk_test_agrees_with_the_full_deprojection() {
        // Seeded xorshift; geometries with rolls, off-centre CRVAL and both pixel signs.
        let mut st = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            (st >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut checked = 0;
        for _ in 0..200 {
            let t = (rnd() - 0.5) * 360f64.to_radians();
            let g = Geometry {
                shape: (4096, 4096),
                crpix: [1800.0 + 500.0 * rnd(), 1800.0 + 500.0 * rnd()],
                crval: [(rnd() - 0.5) * 2000.0, (rnd() - 0.5) * 2000.0],
                cdelt: [0.6 + 0.01 * rnd(), 0.6 + 0.01 * rnd()],
                rotation: [[t.cos(), -t.sin()], [t.sin(), t.cos()]],
                rsun_obs: 962.0,
                rsun_ref: 6.96e8,
                dsun_obs: 1.4e11 + 1e10 * rnd(),
            };
            let radius = (g.rsun_ref / g.dsun_obs).asin();
            let sun = sun_centre_native(&g);
            for _ in 0..200 {
                let (x, y) = (rnd() * 4096.0, rnd() * 4096.0);
                let (tx, ty) = pixel_to_world(&g, x, y);
                let d = (tx.cos() * ty.cos()).clamp(-1.0, 1.0).acos();
                let [rx, ry] = g.reference_pixel();
                let r = g.rotation;
                let u = g.cdelt[0] * ARCSEC * (r[0][0] * (x - rx) + r[0][1] * (y - ry));
                let v = g.cdelt[1] * ARCSEC * (r[1][0] * (x - rx) + r[1][1] * (y - ry));
                let c = (-v * sun[0] + u * sun[1] + sun[2]) / (1.0 + u * u + v * v).sqrt();
                assert!((c - d.cos()).abs() < 1e-13, "{c} vs {}", d.cos());
                if (d - radius).abs() > 1e-9 {
                    assert_eq!(c >= radius.cos(), d <= radius);
                    checked += 1;
                }
            }
        }
        assert!(checked > 39_000);
    }
}
