//! Register of a synthetic 4096² level-1 frame (`aiaprep::synth`, ~200 missing pixels),
//! one benchmark per interpolation, on all rayon threads.
//!
//!     cargo bench --bench register

use aiaprep::register::{register, Interpolation, RegisterOptions};
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

criterion_group!(benches, bench);
criterion_main!(benches);
