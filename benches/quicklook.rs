//! Quicklook PNG of a synthetic 4096² level-1 frame (`aiaprep::synth`, 171 Å, ~200 missing
//! pixels), in memory (`png_bytes_with`), on all rayon threads: the default 1024² with the
//! sdoaia171 colour table, and the full 4096² with the same table. The target is ≤ 100 ms
//! for the default on two cores.
//!
//!     cargo bench --bench quicklook

use aiaprep::quicklook::{png_bytes_with, render_rgb, QuicklookOptions, Stretch};
use aiaprep::synth::{level1, SynthOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let map = level1(&SynthOptions::default());
    let (ny, nx) = map.data.dim();
    let mut g = c.benchmark_group(format!("quicklook_{nx}x{ny}"));
    g.sample_size(20);
    for (name, size, stretch) in [
        ("171_1024", 1024, Stretch::Asinh),
        ("171_1024_log", 1024, Stretch::Log),
        ("171_full", 0, Stretch::Asinh),
    ] {
        let opts = QuicklookOptions {
            size,
            stretch,
            channel: Some(171),
        };
        g.bench_function(name, |b| {
            b.iter(|| png_bytes_with(black_box(map.data.view()), &opts).map(|p| p.len()))
        });
    }
    // The parts: the block average alone, and the rendering without the PNG encoding.
    g.bench_function("downsample_4", |b| {
        b.iter(|| aiaprep::quicklook::downsample(black_box(map.data.view()), 4).len())
    });
    for (name, size) in [("render_171_1024", 1024), ("render_171_full", 0)] {
        let opts = QuicklookOptions {
            size,
            stretch: Stretch::Asinh,
            channel: Some(171),
        };
        g.bench_function(name, |b| {
            b.iter(|| render_rgb(black_box(map.data.view()), &opts).pixels.len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
