//! The full 4096² AIA PSF model (171 Å, orders −100..100) on the CPU.
//! aiapy 0.10.2 takes ≈303 s for the same (performance.md); target ≤ 1.5 s on 2 cores.

use std::time::Duration;

use aiaprep::cpu::psf::psf;
use aiaprep::psf::PsfOptions;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

fn bench_psf(c: &mut Criterion) {
    let mut g = c.benchmark_group("psf");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    let opts = PsfOptions::default();
    g.bench_function("psf_171_4096_orders_100", |b| {
        b.iter(|| psf(171, &opts).map(|p| p[[2048, 2048]]))
    });
    g.finish();
}

criterion_group!(benches, bench_psf);
criterion_main!(benches);
