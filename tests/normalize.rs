//! Exposure normalisation (DN → DN/s) and the int16 scaling that keeps DN precision.

mod common;

use aiaprep::normalize::{
    exposure_time, int16_scaling, normalize_exposure, normalize_exposure_in_place, original_exptime,
};
use aiaprep::{AiaMap, Error, Header, Source, Value};
use ndarray::Array2;

fn level1_header() -> Header {
    // One 80-column card per line.
    let text = std::fs::read_to_string(common::data("aia_171_level1_128px.header.txt")).unwrap();
    Header::parse_lines(&text)
}

/// Seeded (xorshift64) DN-like image: integers from −8 to 16 000, with a few NaN (missing)
/// pixels.
fn image(ny: usize, nx: usize) -> Array2<f32> {
    let mut s: u64 = 0x2545_F491_4F6C_DD1D;
    let mut k = 0usize;
    Array2::from_shape_fn((ny, nx), |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        k += 1;
        if k.is_multiple_of(37) {
            f32::NAN
        } else {
            (s % 16_009) as f32 - 8.0
        }
    })
}

fn map() -> AiaMap {
    AiaMap::new(
        image(24, 20),
        level1_header(),
        Source::file("aia_171_test.fits"),
    )
}

const EXPTIME: f64 = 2.000191; // the real header's value

#[test]
fn divides_by_exptime_and_updates_keywords() {
    let m = map();
    let out = normalize_exposure(&m).unwrap();
    // Values: an independent f64 division per pixel; NaN stays NaN.
    let mut n_nan = 0;
    for (a, b) in m.data.iter().zip(out.data.iter()) {
        if a.is_nan() {
            assert!(b.is_nan());
            n_nan += 1;
            continue;
        }
        let want = f64::from(*a) / EXPTIME;
        assert!(
            (f64::from(*b) - want).abs() <= want.abs() * 1e-7 + 1e-30,
            "{a}: {b} vs {want}"
        );
    }
    assert!(n_nan > 0 && n_nan < m.data.len());
    assert!(out.data.iter().any(|v| *v > 7000.0)); // 16 000 DN / 2 s
    assert_eq!(out.data.dim(), m.data.dim());
    // The input map is unchanged.
    assert_eq!(m.header.get_f64("EXPTIME"), Some(EXPTIME));
    let h = &out.header;
    assert_eq!(h.get_str("BUNIT"), Some("DN/s"));
    assert_eq!(h.get_str("PIXLUNIT"), Some("DN/s"));
    assert_eq!(h.get_f64("EXPTIME"), Some(1.0));
    assert_eq!(h.get_f64("OEXPTIME"), Some(EXPTIME));
    assert_eq!(original_exptime(h), Some(EXPTIME));
    assert_eq!(original_exptime(&m.header), None);
    // DN statistics scale, shape statistics and counts do not.
    assert_eq!(h.get_f64("DATAMEAN"), Some(250.34 / EXPTIME));
    assert_eq!(h.get_f64("DATAMAX"), Some(12115.0 / EXPTIME));
    assert_eq!(h.get_f64("DATAP99"), Some(1474.0 / EXPTIME));
    assert_eq!(h.get_f64("DATASKEW"), Some(3.3));
    assert_eq!(h.get_f64("DATAVALS"), Some(16_777_216.0));
    let hist: Vec<&str> = h
        .cards()
        .iter()
        .filter(|c| c.key == "HISTORY")
        .filter_map(|c| c.value.as_str())
        .collect();
    assert!(
        hist.iter().any(|t| t.contains("normalize_exposure")
            && t.contains("EXPTIME = 2.000191 s")
            && t.contains(aiaprep::VERSION)),
        "{hist:?}"
    );
    // Geometry is untouched.
    assert_eq!(out.geometry().unwrap(), m.geometry().unwrap());
}

#[test]
fn in_place_returns_the_original_exposure() {
    let mut m = map();
    let before = m.data.clone();
    let t = normalize_exposure_in_place(&mut m).unwrap();
    assert_eq!(t, EXPTIME);
    assert_eq!(exposure_time(&m).unwrap(), 1.0);
    let (a, b) = (before[[3, 4]], m.data[[3, 4]]);
    assert!(a.is_finite() && a != 0.0);
    assert_eq!(b, (f64::from(a) / EXPTIME) as f32);
}

#[test]
fn bad_or_missing_exptime_is_a_typed_error() {
    let mut m = map();
    m.header.remove("EXPTIME");
    let e = normalize_exposure(&m).unwrap_err();
    assert!(
        matches!(e, Error::MissingKeyword { ref key, .. } if key == "EXPTIME"),
        "{e}"
    );
    assert!(e.to_string().contains("aia_171_test.fits"));

    for bad in [
        Value::Float(0.0),
        Value::Float(-2.0),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Str("long".into()),
        Value::Bool(true),
    ] {
        let mut m = map();
        m.header.set("EXPTIME", bad.clone(), None);
        let e = normalize_exposure(&m).unwrap_err();
        assert!(
            matches!(e, Error::BadKeyword { ref key, .. } if key == "EXPTIME"),
            "{bad:?}: {e}"
        );
        // The in-place form leaves the map alone on error.
        let before = m.data.clone();
        assert!(normalize_exposure_in_place(&mut m).is_err());
        assert!(m
            .data
            .iter()
            .zip(before.iter())
            .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())));
        assert!(!m.header.contains("BUNIT"));
    }
}

#[test]
fn int16_scaling_stores_the_dn_values() {
    let (bscale, bzero) = int16_scaling(EXPTIME);
    assert_eq!(bscale, 1.0 / EXPTIME);
    assert_eq!(bzero, 0.0);
    // Every DN value in the int16 range survives normalise → f32 → int16 → physical → DN.
    for dn in (-32767i32..=32767)
        .step_by(7)
        .chain([-32767, 0, 1, 16383, 32767])
    {
        let norm = (f64::from(dn) / EXPTIME) as f32; // what normalize_exposure stores
        let stored = ((f64::from(norm) - bzero) / bscale).round();
        assert_eq!(stored, f64::from(dn), "dn {dn}");
        let physical = stored * bscale + bzero;
        assert!(
            (physical - f64::from(norm)).abs() <= 0.5 * bscale,
            "dn {dn}"
        );
    }
    // The quantum is 1 DN / EXPTIME.
    let q = bscale;
    assert!((q * EXPTIME - 1.0).abs() < 1e-15);
    // Unusable exposures give no scaling.
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(int16_scaling(bad), (1.0, 0.0), "{bad}");
    }
}
