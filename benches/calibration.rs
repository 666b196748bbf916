//! Calibration of a synthetic 4096² level-1 frame (`aiaprep::synth`, ~200 missing pixels)
//! on all rayon threads: the per-pixel uncertainty (aiapy `estimate_error`, built-in V3
//! error table, 171 Å) with the default options and with every term and `n_sample` > 1;
//! the degradation correction (the factor from the V8 response table, then the division of
//! every pixel).
//!
//!     cargo bench --bench calibration

use aiaprep::cpu::uncertainty::estimate_error_map;
use aiaprep::synth::{level1, SynthOptions};
use aiaprep::uncertainty::{ErrorOptions, ErrorTable};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn uncertainty(c: &mut Criterion) {
    let map = level1(&SynthOptions::default());
    let e = ErrorTable::default_v3()
        .channel(171)
        .expect("171 Å is in the built-in table");
    let mut g = c.benchmark_group(format!("uncertainty_{}", map.data.nrows()));
    g.sample_size(20);
    let all_terms = ErrorOptions {
        n_sample: 4.0,
        include_eve: true,
        include_chianti: true,
        ..ErrorOptions::default()
    };
    for (name, opts) in [
        ("default", ErrorOptions::default()),
        ("n4_eve_chianti", all_terms),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| estimate_error_map(black_box(map.data.view()), &e, &opts))
        });
    }
    g.finish();
}

fn degradation(c: &mut Criterion) {
    use aiaprep::degradation::{observation_time, CorrectionTable};
    let mut map = level1(&SynthOptions::default());
    let table = CorrectionTable::read(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/calibration/aia_V8_20171210_050627_response_table.txt"
    )))
    .expect("the committed V8 table reads");
    let t = observation_time(&map.header, &map.source).expect("the synthetic frame has DATE-OBS");
    let mut g = c.benchmark_group(format!("degradation_{}", map.data.nrows()));
    g.sample_size(20);
    g.bench_function("factor", |b| {
        b.iter(|| table.degradation(black_box(171), black_box(t)))
    });
    g.bench_function("factor_and_divide", |b| {
        b.iter(|| {
            let d = table
                .degradation(171, t)
                .expect("an epoch holds 2011")
                .factor;
            // x / d then × d: the image stays the same size from one iteration to the next.
            aiaprep::normalize::divide_in_place(&mut map.data, d);
            aiaprep::normalize::divide_in_place(&mut map.data, 1.0 / d);
        })
    });
    g.finish();
}

criterion_group!(benches, uncertainty, degradation);
criterion_main!(benches);
