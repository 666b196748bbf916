//! Deterministic synthetic AIA level-1 images, for the `--demo`, the benchmarks and the
//! tests that need a full-size frame (no real 4096² level-1 file ships with the crate).
//!
//! The header is a real AIA 171 Å level-1 header (FSN 20781661, 2011-02-15) with its
//! geometry keywords replaced by those of a full-resolution frame: `CRPIX ≈ 2053.2/2045.7`,
//! `CDELT ≈ 0.6007″`, `CROTA2 ≈ −0.13°`, `RSUN_OBS ≈ 962″`, `CRVAL = (0, 0)` (the Sun centre
//! is the reference pixel, as in JSOC level-1 files), scaled for binned sizes. The pixels are
//! a limb-brightened disk with a corona, active regions, loop-like structure and noise,
//! rounded to integer DN (so an int16 file holds them exactly), with a few negative pixels
//! off the limb and a few missing (NaN) pixels, single ones and one short column segment.

use ndarray::Array2;
use rayon::prelude::*;

use crate::error::Source;
use crate::header::{Header, Value};
use crate::map::AiaMap;

/// The real level-1 header the synthetic frames start from.
const TEMPLATE: &str = include_str!("../tests/data/aia_171_level1_128px.header.txt");

/// Parameters of a synthetic level-1 frame. Geometry is given for the full 4096² frame
/// and scaled when `size` is smaller (a binned image, as aiapy's register treats them).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthOptions {
    /// Image size N (the image is N×N pixels).
    pub size: usize,
    /// Seed of the noise, the structures and the missing pixels.
    pub seed: u64,
    /// Channel (`WAVELNTH`, Å).
    pub channel: u32,
    /// Number of missing (NaN / BLANK) pixels, about a tenth of them in one column segment.
    pub n_missing: usize,
    /// Roll `CROTA2` in degrees.
    pub roll_deg: f64,
    /// Plate scale of the full-resolution frame, arcsec per pixel.
    pub cdelt: f64,
    /// FITS reference pixel (1-based) of the full-resolution frame; the Sun centre.
    pub crpix: [f64; 2],
    /// Apparent solar radius, arcsec.
    pub rsun_obs: f64,
    /// Exposure time, seconds.
    pub exptime: f64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            size: 4096,
            seed: 2011,
            channel: 171,
            n_missing: 216,
            roll_deg: -0.13,
            cdelt: 0.6007,
            crpix: [2053.2, 2045.7],
            rsun_obs: 962.0,
            exptime: 2.0,
        }
    }
}

/// SplitMix64: a tiny, fast, well-mixed generator; used as a counter-based hash so each
/// pixel's noise is independent of the thread that computes it.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal from two hashes (Box–Muller).
fn normal(h1: u64, h2: u64) -> f64 {
    let u1 = unit(h1).max(1e-300);
    let u2 = unit(h2);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The header of a synthetic frame (geometry as described in the module docs).
pub fn header(opts: &SynthOptions) -> Header {
    let mut h = Header::parse_lines(TEMPLATE);
    let n = opts.size.max(1);
    let bin = 4096.0 / n as f64;
    let cdelt = opts.cdelt * bin;
    // Pixel edges stay aligned when binning: 0-based centre c maps to (c + 0.5)/bin − 0.5.
    let crpix1 = (opts.crpix[0] - 0.5) / bin + 0.5;
    let crpix2 = (opts.crpix[1] - 0.5) / bin + 0.5;
    let rsun_ref = 6.96e8;
    let dsun = rsun_ref / (opts.rsun_obs / 3600.0).to_radians().sin();
    let sat_rot = h.get_f64("SAT_ROT").unwrap_or(0.0);
    h.set("NAXIS1", Value::Int(n as i64), None);
    h.set("NAXIS2", Value::Int(n as i64), None);
    h.set("BITPIX", Value::Int(16), None);
    h.set("WAVELNTH", Value::Int(i64::from(opts.channel)), None);
    h.set(
        "WAVE_STR",
        Value::Str(format!("{}_THIN", opts.channel)),
        None,
    );
    h.set_f64("CDELT1", cdelt, None);
    h.set_f64("CDELT2", cdelt, None);
    h.set_f64("CRPIX1", crpix1, None);
    h.set_f64("CRPIX2", crpix2, None);
    h.set_f64("CRVAL1", 0.0, None);
    h.set_f64("CRVAL2", 0.0, None);
    h.set_f64("CROTA2", opts.roll_deg, None);
    h.set_f64("INST_ROT", opts.roll_deg - sat_rot, None);
    h.set_f64("IMSCL_MP", opts.cdelt, None);
    h.set_f64("X0_MP", opts.crpix[0] - 1.0, None);
    h.set_f64("Y0_MP", opts.crpix[1] - 1.0, None);
    h.set_f64("RSUN_OBS", opts.rsun_obs, None);
    h.set_f64("RSUN_REF", rsun_ref, None);
    h.set_f64("DSUN_OBS", dsun, None);
    h.set_f64("R_SUN", opts.rsun_obs / cdelt, None);
    h.set_f64("EXPTIME", opts.exptime, None);
    h.set_f64("LVL_NUM", 1.0, None);
    h.set("BLANK", Value::Int(-32768), None);
    h.set(
        "MISSVALS",
        Value::Int(opts.n_missing.min(n * n) as i64),
        None,
    );
    h.remove("HISTORY");
    h.push_history(&format!(
        "synthetic level-1 frame made by aiaprep {} (seed {})",
        crate::VERSION,
        opts.seed
    ));
    h
}

/// A synthetic level-1 map (values in DN, integers; NaN = missing). `source` is memory.
pub fn level1(opts: &SynthOptions) -> AiaMap {
    let n = opts.size.max(1);
    let bin = 4096.0 / n as f64;
    let h = header(opts);
    let cx = h.get_f64("CRPIX1").unwrap_or(n as f64 / 2.0) - 1.0;
    let cy = h.get_f64("CRPIX2").unwrap_or(n as f64 / 2.0) - 1.0;
    let r_sun = opts.rsun_obs / (opts.cdelt * bin);
    let seed = splitmix(opts.seed);

    // Active regions: bright Gaussian blobs on the disk (positions in units of R_sun).
    let regions: Vec<(f64, f64, f64, f64)> = (0..7u64)
        .map(|k| {
            let a = unit(splitmix(seed ^ (k * 4 + 1))) * std::f64::consts::TAU;
            let rr = 0.15 + 0.75 * unit(splitmix(seed ^ (k * 4 + 2)));
            let amp = 1500.0 + 6000.0 * unit(splitmix(seed ^ (k * 4 + 3)));
            let w = (0.02 + 0.05 * unit(splitmix(seed ^ (k * 4 + 4)))) * r_sun;
            (cx + rr * r_sun * a.cos(), cy + rr * r_sun * a.sin(), amp, w)
        })
        .collect();
    let ph1 = unit(splitmix(seed ^ 0xA1)) * 6.0;
    let ph2 = unit(splitmix(seed ^ 0xA2)) * 6.0;

    let mut data = Array2::<f32>::zeros((n, n));
    data.as_slice_mut()
        .unwrap_or(&mut [])
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(j, row)| {
            let dy = j as f64 - cy;
            for (i, v) in row.iter_mut().enumerate() {
                let dx = i as f64 - cx;
                let r = (dx * dx + dy * dy).sqrt() / r_sun;
                let base = if r < 1.0 {
                    // Limb brightening (optically thin EUV): brighter towards the limb.
                    let mu = (1.0 - r * r).sqrt().max(0.08);
                    let texture = 1.0
                        + 0.25 * (dx / r_sun * 23.0 + ph1).sin() * (dy / r_sun * 19.0 + ph2).cos()
                        + 0.10 * (dx / r_sun * 71.0).sin() * (dy / r_sun * 67.0 + ph1).sin();
                    250.0 * (0.6 + 0.4 / mu.sqrt()) * texture
                } else {
                    // Corona: steep fall-off to a near-zero background.
                    0.3 + 420.0 * (-(r - 1.0) / 0.045).exp() + 40.0 * (-(r - 1.0) / 0.15).exp()
                };
                let mut s = base;
                for &(ax, ay, amp, w) in &regions {
                    let d2 = (i as f64 - ax).powi(2) + (j as f64 - ay).powi(2);
                    if d2 < 36.0 * w * w {
                        s += amp * (-d2 / (2.0 * w * w)).exp();
                    }
                }
                let idx = (j * n + i) as u64;
                let h1 = splitmix(seed ^ idx.wrapping_mul(0x2545_F491_4F6C_DD1D));
                let h2 = splitmix(h1);
                // Photon noise (≈ √(DN·gain)/gain) plus read noise of ~1.2 DN.
                let sigma = (s.max(0.0) / 17.7 + 1.44).sqrt();
                let val = (s + sigma * normal(h1, h2)).round();
                *v = val.clamp(-32767.0, 32767.0) as f32;
            }
        });

    // Missing pixels: a short column segment (like a lost packet) and scattered single ones.
    let total = opts.n_missing.min(n * n);
    let seg = (total / 10).min(n);
    let seg_col = ((unit(splitmix(seed ^ 0xC0)) * 0.5 + 0.25) * n as f64) as usize;
    let seg_row = (unit(splitmix(seed ^ 0xC1)) * (n - seg) as f64) as usize;
    for k in 0..seg {
        data[[seg_row + k, seg_col.min(n - 1)]] = f32::NAN;
    }
    let mut placed = seg;
    let mut k = 0u64;
    while placed < total && k < 100 * total as u64 + 100 {
        let h = splitmix(seed ^ (0xD000 + k));
        k += 1;
        let idx = (h % (n * n) as u64) as usize;
        let (j, i) = (idx / n, idx % n);
        if !data[[j, i]].is_nan() {
            data[[j, i]] = f32::NAN;
            placed += 1;
        }
    }
    AiaMap::new(data, h, Source::memory())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_has_what_the_docs_promise() {
        let o = SynthOptions {
            size: 256,
            n_missing: 40,
            ..SynthOptions::default()
        };
        let a = level1(&o);
        let b = level1(&o);
        assert_eq!(
            a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let c = level1(&SynthOptions {
            seed: 7,
            ..o.clone()
        });
        assert!(a
            .data
            .iter()
            .zip(c.data.iter())
            .any(|(x, y)| x.to_bits() != y.to_bits()));
        let nan = a.data.iter().filter(|v| v.is_nan()).count();
        assert_eq!(nan, 40);
        assert!(a.data.iter().any(|v| *v < 0.0), "some negative pixels");
        assert!(
            a.data.iter().all(|v| v.is_nan() || v.fract() == 0.0),
            "integer DN"
        );
        let g = a.geometry().unwrap();
        assert!((g.cdelt[0] - 0.6007 * 16.0).abs() < 1e-12);
        // Sun centre pixel is bright, a corner is dark.
        let (cx, cy) = (g.crpix[0] - 1.0, g.crpix[1] - 1.0);
        assert!(a.data[[cy.round() as usize, cx.round() as usize]] > 100.0);
        assert!(a.data[[0, 0]].abs() < 20.0);
        assert!(a.check_is_aia().is_ok());
        assert_eq!(a.wavelength().unwrap(), 171);
    }

    #[test]
    fn full_size_geometry_is_the_documented_one() {
        let h = header(&SynthOptions::default());
        assert_eq!(h.get_f64("CRPIX1"), Some(2053.2));
        assert_eq!(h.get_f64("CRPIX2"), Some(2045.7));
        assert_eq!(h.get_f64("CDELT1"), Some(0.6007));
        assert_eq!(h.get_f64("CROTA2"), Some(-0.13));
        let dsun = h.get_f64("DSUN_OBS").unwrap();
        let rsun = (6.96e8f64 / dsun).asin().to_degrees() * 3600.0;
        assert!((rsun - 962.0).abs() < 1e-9);
    }
}
