//! Pointing table parsing and lookup, and exposure normalisation of a 4096² frame.
//!
//! `cargo bench --bench pointing`

use std::fmt::Write as _;

use aiaprep::normalize::normalize_exposure_in_place;
use aiaprep::pointing::{update_pointing_in_place, PointingTable, UtcTime};
use aiaprep::{AiaMap, Header, Source, Value};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ndarray::Array2;

const CHANNELS: [u32; 10] = [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500];

/// A table the size of the whole mission (2010-05 … 2025: ~44 000 three-hour rows, all
/// ten channels), in JSOC TAI form.
fn mission_table_text() -> String {
    let mut s = String::from("T_START,T_STOP");
    for c in CHANNELS {
        for f in ["X0", "Y0", "IMSCALE", "INSTROT"] {
            write!(s, ",A_{c:03}_{f}").unwrap();
        }
    }
    s.push('\n');
    let t0 = UtcTime::parse("2010-05-01T00:00:00Z").unwrap();
    for k in 0..44_000i64 {
        let a = UtcTime(t0.0 + k * 3 * 3600 * 1_000_000_000);
        let b = UtcTime(a.0 + 3 * 3600 * 1_000_000_000);
        let iso = |t: UtcTime| t.to_string();
        write!(s, "{},{}", iso(a), iso(b)).unwrap();
        for (i, _) in CHANNELS.iter().enumerate() {
            let j = (k as f64 * 0.37 + i as f64).sin();
            write!(
                s,
                ",{:.6},{:.6},{:.6},{:.6}",
                2050.0 + j,
                2045.0 - j,
                0.6 + 1e-4 * j,
                0.02 * j
            )
            .unwrap();
        }
        s.push('\n');
    }
    s
}

fn header() -> Header {
    let mut h = Header::new();
    for (k, v) in [
        ("CRPIX1", 2051.0),
        ("CRPIX2", 2046.0),
        ("CRVAL1", 0.0),
        ("CRVAL2", 0.0),
        ("CDELT1", 0.6),
        ("CDELT2", 0.6),
        ("CROTA2", 0.02),
        ("X0_MP", 2050.0),
        ("Y0_MP", 2045.0),
        ("SAT_ROT", 1e-4),
        ("EXPTIME", 2.000191),
    ] {
        h.set_f64(k, v, None);
    }
    h.set("WAVELNTH", Value::Int(171), None);
    // Late in the table: the lookup scans most rows.
    h.set("T_OBS", Value::Str("2025-03-01T12:34:56.78Z".into()), None);
    h
}

fn bench(c: &mut Criterion) {
    let text = mission_table_text();
    let mut g = c.benchmark_group("pointing");
    g.sample_size(10);
    g.bench_function("parse_csv 44k rows x 10 channels", |b| {
        b.iter(|| PointingTable::parse_csv(&text, Source::memory()).unwrap())
    });
    let table = PointingTable::parse_csv(&text, Source::memory()).unwrap();
    let mut map = AiaMap::new(Array2::zeros((1, 1)), header(), Source::memory());
    g.bench_function("update_pointing_in_place (late row)", |b| {
        b.iter(|| {
            let mut m = map.clone();
            update_pointing_in_place(&mut m, &table).unwrap()
        })
    });
    map.data = Array2::from_shape_fn((4096, 4096), |(y, x)| ((x * 7 + y * 13) % 16_000) as f32);
    g.bench_function("normalize_exposure_in_place 4096^2", |b| {
        // A fresh copy per iteration (not timed): repeated division would drift into
        // subnormal numbers.
        b.iter_batched(
            || map.clone(),
            |mut m| normalize_exposure_in_place(&mut m).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
