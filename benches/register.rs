//! Register of a synthetic 4096² level-1 frame (`aiaprep::synth`, ~200 missing pixels),
//! one benchmark per interpolation, on all rayon threads.
//!
//!     cargo bench --bench register

use aiaprep::cpu::register;
use aiaprep::register::{Interpolation, RegisterOptions};
use aiaprep::synth::{level1, SynthOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let map = level1(&SynthOptions::default());
    let nan = map.data.iter().filter(|v| v.is_nan()).count();
    let mut g = c.benchmark_group(format!("register_4096_{nan}_missing"));
    g.sample_size(10);
    for interpolation in [
        Interpolation::Spline,
        Interpolation::Keys,
        Interpolation::Linear,
        Interpolation::Nearest,
    ] {
        let opts = RegisterOptions {
            interpolation,
            ..RegisterOptions::default()
        };
        g.bench_function(interpolation.to_string(), |b| {
            b.iter(|| register(black_box(&map), &opts).map(|m| m.data.len()))
        });
    }
    // The same frame with no missing pixels (no median, no mask).
    let mut clean = map.clone();
    clean
        .data
        .mapv_inplace(|v| if v.is_nan() { 0.0 } else { v });
    let opts = RegisterOptions::default();
    g.bench_function("spline_no_missing", |b| {
        b.iter(|| register(black_box(&clean), &opts).map(|m| m.data.len()))
    });
    g.finish();
}

/// sunpy's `contains_full_disk` (§7.1: TAN deprojection of all 16 380 edge pixel centres of
/// a 4096² frame, plus the Sun-centre test): microseconds, where sunpy takes ~14 ms.
fn full_disk(c: &mut Criterion) {
    let map = level1(&SynthOptions {
        size: 64,
        ..SynthOptions::default()
    });
    let mut h = map.header.clone();
    let full = aiaprep::synth::header(&SynthOptions::default());
    for k in ["CRPIX1", "CRPIX2", "CDELT1", "CDELT2"] {
        h.set_f64(k, full.get_f64(k).unwrap_or(0.0), None);
    }
    let g = aiaprep::Geometry::from_header(&h, (4096, 4096), &aiaprep::Source::memory())
        .expect("synthetic geometry");
    c.bench_function("contains_full_disk_4096", |b| {
        b.iter(|| aiaprep::geometry::contains_full_disk(black_box(&g)))
    });
}

criterion_group!(benches, bench, full_disk);
criterion_main!(benches);
