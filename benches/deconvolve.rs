//! Richardson–Lucy deconvolution on the CPU: 25 iterations on a 4096² image with the 171 Å
//! model OTF (aiapy 0.10.2: 24.5 s; target ≤ 6 s on 2 cores), and one f32 4096² real FFT
//! forward + inverse (the building block; stack-notes: ≈66 ms on 2 threads).
//!
//! Peak memory: `/usr/bin/time -v target/release/deps/deconvolve-* --bench rl_171_4096_25`.

use std::time::Duration;

use aiaprep::cpu::deconvolve::{model_otf, richardson_lucy};
use aiaprep::internals::Fft2;
use aiaprep::psf::PsfOptions;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use ndarray::Array2;

/// A seeded disk-like 4096² test image with noise (DN), some pixels negative.
fn image(n: usize) -> Array2<f32> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let c = n as f64 / 2.0;
    let r = 0.4 * n as f64;
    Array2::from_shape_fn((n, n), |(y, x)| {
        let d = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2)).sqrt() / r;
        let disk = if d < 1.0 {
            1000.0 * (1.0 - d * d).sqrt()
        } else {
            0.0
        };
        (disk + 20.0 + 8.0 * (rnd() - 0.5)) as f32
    })
}

fn bench_rl(c: &mut Criterion) {
    let n = 4096;
    let img = image(n);
    let otf = model_otf(171, (n, n), &PsfOptions::default()).expect("171 OTF");
    let mut g = c.benchmark_group("deconvolve");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("rl_171_4096_25", |b| {
        b.iter(|| richardson_lucy(img.view(), &otf, 25, true).map(|u| u[[0, 0]]))
    });
    let mut fft = Fft2::<f32>::new(n, n).expect("plan");
    let x: Vec<f32> = img.iter().copied().collect();
    let mut y = vec![0.0f32; n * n];
    let mut spec = fft.make_spectrum();
    g.bench_function("fft2_f32_4096_forward_inverse", |b| {
        b.iter(|| {
            fft.forward(&x, &mut spec).expect("forward");
            fft.inverse(&mut spec, &mut y).expect("inverse");
            y[0]
        })
    });
    g.finish();
}

criterion_group!(benches, bench_rl);
criterion_main!(benches);
