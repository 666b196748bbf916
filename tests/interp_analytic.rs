//! Interpolation kernels on analytic surfaces, evaluated at the exact input positions of
//! the register transform (binned 256² frame: scale 1.0012, roll −0.13°, padding 1, Sun
//! centre 3 px off the frame centre):
//! `linear` reproduces linear functions, `keys` (a = −0.5) quadratics, the interpolating
//! cubic B-spline cubics away from the mirror boundary, and `nearest` picks the pixel
//! `⌊x + ½⌋`. Positions outside the padded frame get `missing` (= the data minimum).

use aiaprep::cpu::register;
use aiaprep::geometry::register_transform;
use aiaprep::register::{Interpolation, RegisterOptions};
use aiaprep::synth::{header, SynthOptions};
use aiaprep::{AiaMap, Source};
use ndarray::Array2;

const N: usize = 256;

fn map_of(f: impl Fn(f64, f64) -> f64) -> AiaMap {
    // Sun centre ~3 binned pixels off the frame centre, so that some output pixels
    // sample outside the padded input.
    let h = header(&SynthOptions {
        size: N,
        crpix: [2100.0, 2000.0],
        ..SynthOptions::default()
    });
    let data = Array2::from_shape_fn((N, N), |(j, i)| f(i as f64, j as f64) as f32);
    AiaMap::new(data, h, Source::memory())
}

/// Max |output − f(input position)| over output pixels whose input position is at least
/// `margin` pixels inside the frame; and a check that positions outside the padded frame
/// hold the data minimum. Returns (max error, pixels compared).
fn check(
    interpolation: Interpolation,
    margin: f64,
    f: impl Fn(f64, f64) -> f64 + Copy,
    truth: impl Fn(f64, f64) -> f64,
) -> (f64, usize) {
    let map = map_of(f);
    let t = register_transform(&map.geometry().unwrap());
    assert!(t.pad[0] >= 1, "the frame is padded");
    let out = register(
        &map,
        &RegisterOptions {
            interpolation,
            ..RegisterOptions::default()
        },
    )
    .unwrap();
    let min = map.data.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    let hi = (N - 1) as f64;
    let (mut worst, mut count, mut outside) = (0.0f64, 0usize, 0usize);
    for ((y, x), &v) in out.data.indexed_iter() {
        let [xi, yi] = t.input_of(x, y);
        let p = t.pad[0] as f64;
        if xi < -p || yi < -p || xi > hi + p || yi > hi + p {
            assert_eq!(v, min, "outside the padded frame at ({x}, {y})");
            outside += 1;
            continue;
        }
        if xi < margin || yi < margin || xi > hi - margin || yi > hi - margin {
            continue;
        }
        worst = worst.max((v as f64 - truth(xi, yi)).abs());
        count += 1;
    }
    assert!(outside > 0, "some output pixels fall outside the input");
    (worst, count)
}

fn lin(x: f64, y: f64) -> f64 {
    let (u, v) = (x / N as f64, y / N as f64);
    2.0 + 3.0 * u + 1.5 * v
}
fn quad(x: f64, y: f64) -> f64 {
    let (u, v) = (x / N as f64, y / N as f64);
    2.0 + u + 0.5 * v + 2.0 * u * u + 0.7 * u * v + 1.3 * v * v
}
fn cubic(x: f64, y: f64) -> f64 {
    let (u, v) = (x / N as f64, y / N as f64);
    quad(x, y) + 0.8 * u * u * u + 0.3 * u * u * v + 0.4 * u * v * v + 0.6 * v * v * v
}

#[test]
fn linear_reproduces_linear_functions() {
    let (e, n) = check(Interpolation::Linear, 1.0, lin, lin);
    println!("linear on linear: {e:.2e} over {n} px");
    assert!(n > 50_000 && e < 2e-6, "{e}");
    // and is not exact on a quadratic (the test can fail)
    let (e, _) = check(Interpolation::Linear, 1.0, quad, quad);
    assert!(e > 1e-6, "{e}");
}

#[test]
fn keys_reproduces_quadratics() {
    let (e, n) = check(Interpolation::Keys, 3.0, quad, quad);
    println!("keys on quadratic: {e:.2e} over {n} px");
    assert!(n > 50_000 && e < 4e-6, "{e}");
    let (e, _) = check(Interpolation::Keys, 3.0, cubic, cubic);
    assert!(e > 1e-6, "keys is not exact on cubics: {e}");
}

#[test]
fn spline_reproduces_cubics_away_from_the_edges() {
    let (e, n) = check(Interpolation::Spline, 20.0, cubic, cubic);
    println!("spline on cubic: {e:.2e} over {n} px");
    assert!(n > 40_000 && e < 4e-6, "{e}");
    // near the frame edge the mirror boundary does not reproduce a cubic
    let (e, _) = check(Interpolation::Spline, 0.0, cubic, cubic);
    assert!(e > 1e-5, "{e}");
}

#[test]
fn nearest_rounds_halves_up() {
    let f = |x: f64, y: f64| x + 1000.0 * y;
    let (e, n) = check(Interpolation::Nearest, 0.0, f, |xi, yi| {
        (xi + 0.5).floor().clamp(0.0, (N - 1) as f64)
            + 1000.0 * (yi + 0.5).floor().clamp(0.0, (N - 1) as f64)
    });
    println!("nearest: {e:.2e} over {n} px");
    assert!(n > 60_000 && e == 0.0, "{e}");
}
