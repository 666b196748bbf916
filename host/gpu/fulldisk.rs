//! sunpy's `contains_full_disk` (semantics.md §7.1) with the border test on the GPU
//! (`kernels/fulldisk.cu`): no border pixel centre may be on the disk
//! (`arccos(cos Tx cos Ty) <= arcsin(RSUN_REF / DSUN_OBS)`), and the Sun centre must lie
//! inside the map (`−0.5 <= x <= nx − 0.5`, same for y; checked on the host).

use cudarc::driver::{DeviceRepr, LaunchConfig};

use crate::error::{Error, Result, Source};

use super::buffer::{alloc_zeros, download_vec};
use super::device::GpuDevice;
use super::launch::fulldisk as k;

/// The WCS numbers the test needs (the fields of [`crate::map::Geometry`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullDiskParams {
    /// Image size `(nx, ny)` in pixels.
    pub shape: (usize, usize),
    /// Reference pixel, 0-based (`CRPIX − 1`).
    pub reference_pixel: [f64; 2],
    /// PC rotation matrix acting on `(x, y)`.
    pub rotation: [[f64; 2]; 2],
    /// `(CDELT1, CDELT2)` in arcsec per pixel.
    pub cdelt: [f64; 2],
    /// `(CRVAL1, CRVAL2)` in arcsec.
    pub crval: [f64; 2],
    /// Physical solar radius `RSUN_REF` in metres.
    pub rsun_ref: f64,
    /// Observer distance `DSUN_OBS` in metres.
    pub dsun_obs: f64,
}

impl FullDiskParams {
    /// From a map's typed geometry.
    pub fn from_geometry(g: &crate::map::Geometry) -> FullDiskParams {
        FullDiskParams {
            shape: g.shape,
            reference_pixel: g.reference_pixel(),
            rotation: g.rotation,
            cdelt: g.cdelt,
            crval: g.crval,
            rsun_ref: g.rsun_ref,
            dsun_obs: g.dsun_obs,
        }
    }

    /// Angular radius of the disk `arcsin(RSUN_REF / DSUN_OBS)` in radians.
    pub fn limit(&self) -> f64 {
        (self.rsun_ref / self.dsun_obs).asin()
    }
}

/// Mirrors `FullDiskParams` in kernels/fulldisk.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawFullDiskParams {
    ref_x: f64,
    ref_y: f64,
    pc00: f64,
    pc01: f64,
    pc10: f64,
    pc11: f64,
    cdelt_x: f64,
    cdelt_y: f64,
    sin_lon0: f64,
    cos_lon0: f64,
    sin_lat0: f64,
    cos_lat0: f64,
    limit: f64,
    nx: i32,
    ny: i32,
}
// SAFETY: plain-old-data with the C layout of FullDiskParams (112 bytes).
unsafe impl DeviceRepr for RawFullDiskParams {}
const _: () = assert!(std::mem::size_of::<RawFullDiskParams>() == 112);

const ARCSEC: f64 = std::f64::consts::PI / 180.0 / 3600.0;

fn check(p: &FullDiskParams) -> Result<()> {
    let finite = p.reference_pixel.iter().all(|v| v.is_finite())
        && p.rotation.iter().flatten().all(|v| v.is_finite())
        && p.cdelt.iter().chain(&p.crval).all(|v| v.is_finite())
        && p.rsun_ref.is_finite()
        && p.dsun_obs.is_finite();
    if !finite || p.dsun_obs <= p.rsun_ref || p.rsun_ref <= 0.0 {
        return Err(Error::InvalidOption {
            file: Source::memory(),
            reason: "full-disk test: non-finite geometry or DSUN_OBS <= RSUN_REF".into(),
        });
    }
    if p.shape.0 < 2
        || p.shape.1 < 2
        || p.shape.0 > i32::MAX as usize / 4
        || p.shape.1 > i32::MAX as usize / 4
    {
        return Err(Error::Shape {
            file: Source::memory(),
            reason: format!(
                "full-disk test needs at least 2 x 2 pixels, got {:?}",
                p.shape
            ),
        });
    }
    Ok(())
}

fn raw(p: &FullDiskParams) -> RawFullDiskParams {
    let (sl, cl) = (p.crval[0] * ARCSEC).sin_cos();
    let (sb, cb) = (p.crval[1] * ARCSEC).sin_cos();
    RawFullDiskParams {
        ref_x: p.reference_pixel[0],
        ref_y: p.reference_pixel[1],
        pc00: p.rotation[0][0],
        pc01: p.rotation[0][1],
        pc10: p.rotation[1][0],
        pc11: p.rotation[1][1],
        cdelt_x: p.cdelt[0] * ARCSEC,
        cdelt_y: p.cdelt[1] * ARCSEC,
        sin_lon0: sl,
        cos_lon0: cl,
        sin_lat0: sb,
        cos_lat0: cb,
        limit: p.limit(),
        nx: p.shape.0 as i32,
        ny: p.shape.1 as i32,
    }
}

/// Number of border pixel centres on the solar disk, computed on the GPU.
pub fn edge_on_disk_count(dev: &GpuDevice, p: &FullDiskParams) -> Result<u64> {
    check(p)?;
    let r = raw(p);
    let mut count = alloc_zeros::<u64>(dev, 1, "full-disk count")?;
    let n_edge = 2 * p.shape.0 + 2 * p.shape.1 - 4;
    let blocks = n_edge.div_ceil(256).clamp(1, 1024) as u32;
    let cfg = LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    k::fulldisk_edge_count(dev, cfg, r, &mut count)?;
    Ok(download_vec(dev, &count, 1, "full-disk count")?[0])
}

/// Pixel position `(x, y)` (0-based) of the Sun centre (Tx, Ty) = (0, 0), by the inverse
/// TAN projection; `None` when it is behind the tangent plane or the PC matrix is
/// singular.
pub fn solar_center_pixel(p: &FullDiskParams) -> Option<[f64; 2]> {
    let (sl, cl) = (p.crval[0] * ARCSEC).sin_cos();
    let (sb, cb) = (p.crval[1] * ARCSEC).sin_cos();
    // direction (1, 0, 0) projected on the tangent plane at the reference direction
    let dot_d0 = cb * cl;
    if dot_d0 <= 0.0 {
        return None;
    }
    let xi = -sl / dot_d0;
    let eta = -sb * cl / dot_d0;
    let (u, v) = (xi / (p.cdelt[0] * ARCSEC), eta / (p.cdelt[1] * ARCSEC));
    let m = p.rotation;
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    let dx = (m[1][1] * u - m[0][1] * v) / det;
    let dy = (-m[1][0] * u + m[0][0] * v) / det;
    Some([p.reference_pixel[0] + dx, p.reference_pixel[1] + dy])
}

/// sunpy's `contains_solar_center`: the Sun centre pixel within the outer pixel edges.
pub fn contains_solar_center(p: &FullDiskParams) -> bool {
    match solar_center_pixel(p) {
        Some([x, y]) => {
            (-0.5..=p.shape.0 as f64 - 0.5).contains(&x)
                && (-0.5..=p.shape.1 as f64 - 0.5).contains(&y)
        }
        None => false,
    }
}

/// sunpy's `contains_full_disk` with the border pass on the GPU.
pub fn contains_full_disk(dev: &GpuDevice, p: &FullDiskParams) -> Result<bool> {
    Ok(edge_on_disk_count(dev, p)? == 0 && contains_solar_center(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_parameter_struct_matches_fulldisk_cu() {
        use std::mem::{align_of, offset_of, size_of};
        // `struct FullDiskParams` in kernels/fulldisk.cu: 13 doubles then nx, ny (int).
        assert_eq!(size_of::<RawFullDiskParams>(), 112);
        assert_eq!(align_of::<RawFullDiskParams>(), 8);
        assert_eq!(offset_of!(RawFullDiskParams, cdelt_x), 48);
        assert_eq!(offset_of!(RawFullDiskParams, limit), 96);
        assert_eq!(offset_of!(RawFullDiskParams, nx), 104);
        assert_eq!(offset_of!(RawFullDiskParams, ny), 108);
        assert!(include_str!("../../kernels/fulldisk.cu")
            .contains("static_assert(sizeof(FullDiskParams) == 112"));
    }

    #[test]
    fn centre_pixel_of_the_reference() {
        // CRVAL = (0, 0): the Sun centre is the reference pixel.
        let p = FullDiskParams {
            shape: (128, 128),
            reference_pixel: [63.7, 64.1],
            rotation: [[1.0, 0.0], [0.0, 1.0]],
            cdelt: [19.18, 19.18],
            crval: [0.0, 0.0],
            rsun_ref: 6.96e8,
            dsun_obs: 1.5e11,
        };
        let c = solar_center_pixel(&p).unwrap();
        assert!((c[0] - 63.7).abs() < 1e-12 && (c[1] - 64.1).abs() < 1e-12);
        assert!(contains_solar_center(&p));
        // CRVAL = (19.18", 0) with no roll: the centre is one pixel left of the reference.
        let q = FullDiskParams {
            crval: [19.18, 0.0],
            ..p
        };
        let c = solar_center_pixel(&q).unwrap();
        assert!((c[0] - 62.7).abs() < 1e-6, "{c:?}");
        let far = FullDiskParams {
            crval: [19.18 * 200.0, 0.0],
            ..p
        };
        assert!(!contains_solar_center(&far));
    }
}
