//! Richardson–Lucy deconvolution and the 2-D real FFT: aiapy 0.10.2 parity on a 512² image
//! (fixtures from tests/parity/make_psf_fixtures.py), a naive f64 direct-convolution RL, a
//! naive DFT, analytic properties, bad inputs and the header record.

mod common;
mod naive;

use std::sync::Arc;

use aiaprep::cpu::deconvolve::{deconvolve, model_otf, richardson_lucy, Otf};
use aiaprep::deconvolve::{DeconvolveOptions, PsfSource};
use aiaprep::header::{Header, Value};
use aiaprep::internals::ratio;
use aiaprep::internals::Fft2;
use aiaprep::psf::PsfOptions;
use aiaprep::{AiaMap, Error, Source};
use naive::Rng;
use ndarray::{s, Array2};
use rustfft::num_complex::Complex;

fn rel_l2(a: &Array2<f32>, b: &Array2<f64>) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for (x, y) in a.iter().zip(b.iter()) {
        num += (*x as f64 - y).powi(2);
        den += y * y;
    }
    (num / den).sqrt()
}

// ---------------------------------------------------------------------------------------
// aiapy parity

fn fixture_psf512() -> Array2<f64> {
    let core = common::npy::read2(&common::fixture("deconv_psf160.npy"));
    assert_eq!(core.dim(), (160, 160));
    let mut p = Array2::<f64>::zeros((512, 512));
    p.slice_mut(s![176..336, 176..336]).assign(&core);
    p
}

fn fixture_image() -> Array2<f32> {
    common::npy::read2(&common::fixture("deconv_input.npy")).mapv(|v| v as f32)
}

#[test]
fn matches_aiapy_deconvolve_512() {
    let img = fixture_image();
    assert_eq!(img.dim(), (512, 512));
    assert!(img.iter().any(|&v| v < 0.0), "fixture has negative pixels");
    let otf = Otf::from_psf(fixture_psf512().view()).unwrap();
    for (name, it, clip) in [
        ("deconv_out_it25_clip", 25, true),
        ("deconv_out_it5_noclip", 5, false),
    ] {
        let want = common::npy::read2(&common::fixture(&format!("{name}.npy")));
        let ours = richardson_lucy(img.view(), &otf, it, clip).unwrap();
        let e = rel_l2(&ours, &want);
        eprintln!("{name}: relative L2 {e:.3e}");
        assert!(e <= 1e-5, "{name}: relative L2 {e:e}");
        // Deconvolution really changed the image (the comparison is not trivial).
        let moved = rel_l2(&img, &want);
        assert!(
            moved > 1e-2,
            "{name}: output too close to input ({moved:e})"
        );
    }
}

#[test]
fn map_api_with_array_psf_equals_low_level_call() {
    let img = fixture_image();
    let psf = Arc::new(fixture_psf512());
    let map = AiaMap::new(img.clone(), header(171), Source::file("in.fits"));
    let opts = DeconvolveOptions {
        iterations: 3,
        clip_negative: true,
        psf: PsfSource::Array {
            psf: psf.clone(),
            label: "psf_171.fits".into(),
        },
    };
    let out = deconvolve(&map, &opts).unwrap();
    let otf = Otf::from_psf(psf.view()).unwrap();
    let direct = richardson_lucy(img.view(), &otf, 3, true).unwrap();
    assert_eq!(out.data, direct);
    assert_eq!(out.source, map.source);
    assert_eq!(out.header.get_str("DECONPSF"), Some("psf_171.fits"));
    assert!(common::history(&out.header).contains(
        "deconvolve: Richardson-Lucy, 3 iterations, PSF file psf_171.fits, clip_negative=true"
    ));
}

// ---------------------------------------------------------------------------------------
// Naive f64 oracle: direct circular convolution RL.

fn naive_rl(d: &Array2<f64>, psf: &Array2<f64>, iterations: usize) -> Array2<f64> {
    let (ny, nx) = d.dim();
    // Centred PSF → kernel with the peak at [0, 0] (ifftshift).
    let k = Array2::from_shape_fn((ny, nx), |(y, x)| {
        psf[[(y + ny / 2) % ny, (x + nx / 2) % nx]]
    });
    let d = d.mapv(|v| v.max(0.0));
    let mut u = d.clone();
    for _ in 0..iterations {
        let e = Array2::from_shape_fn((ny, nx), |(y, x)| {
            let mut acc = 0.0;
            for a in 0..ny {
                for b in 0..nx {
                    acc += u[[(y + ny - a) % ny, (x + nx - b) % nx]] * k[[a, b]];
                }
            }
            acc
        });
        let r = &d / &e;
        let c = Array2::from_shape_fn((ny, nx), |(y, x)| {
            let mut acc = 0.0;
            for a in 0..ny {
                for b in 0..nx {
                    acc += r[[(y + a) % ny, (x + b) % nx]] * k[[a, b]];
                }
            }
            acc
        });
        u = &u * &c;
    }
    u
}

fn random_psf(ny: usize, nx: usize, rng: &mut Rng) -> Array2<f64> {
    let mut p = Array2::from_shape_fn((ny, nx), |(y, x)| {
        let dy = y as f64 - (ny / 2) as f64;
        let dx = x as f64 - (nx / 2) as f64;
        (-(dx * dx + 1.7 * dy * dy) / 3.0).exp() * (0.5 + rng.f64())
    });
    p[[ny / 2, nx / 2]] += 2.0;
    let s = p.sum();
    p / s
}

fn random_image(ny: usize, nx: usize, rng: &mut Rng) -> Array2<f64> {
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        let smooth = 50.0 + 30.0 * ((x as f64) * 0.7).sin() * ((y as f64) * 0.4).cos();
        let spike = if rng.f64() < 0.08 {
            400.0 * rng.f64()
        } else {
            0.0
        };
        smooth + spike + 10.0 * (rng.f64() - 0.5) - if rng.f64() < 0.05 { 120.0 } else { 0.0 }
    })
}

#[test]
fn matches_naive_direct_convolution_rl() {
    let mut rng = Rng(11);
    // Non-square even and odd shapes.
    for (ny, nx, it) in [(12usize, 16usize, 6usize), (9, 7, 4), (10, 5, 3)] {
        let d = random_image(ny, nx, &mut rng);
        assert!(d.iter().any(|&v| v < 0.0));
        let psf = random_psf(ny, nx, &mut rng);
        let want = naive_rl(&d, &psf, it);
        let otf = Otf::from_psf(psf.view()).unwrap();
        let ours = richardson_lucy(d.mapv(|v| v as f32).view(), &otf, it, true).unwrap();
        let e = rel_l2(&ours, &want);
        assert!(e < 2e-6, "{ny}x{nx}: relative L2 {e:e}");
        for (a, b) in ours.iter().zip(want.iter()) {
            assert!(
                (*a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{ny}x{nx}: {a} vs {b}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// FFT against a naive DFT.

fn naive_rfft2(x: &[f64], ny: usize, nx: usize) -> Vec<Complex<f64>> {
    let nh = nx / 2 + 1;
    let mut out = vec![Complex::new(0.0, 0.0); ny * nh];
    for ky in 0..ny {
        for kx in 0..nh {
            let mut acc = Complex::new(0.0, 0.0);
            for y in 0..ny {
                for xx in 0..nx {
                    let ph = -2.0
                        * std::f64::consts::PI
                        * ((ky * y) as f64 / ny as f64 + (kx * xx) as f64 / nx as f64);
                    acc += Complex::new(ph.cos(), ph.sin()) * x[y * nx + xx];
                }
            }
            out[ky * nh + kx] = acc;
        }
    }
    out
}

const SHAPES: [(usize, usize); 9] = [
    (1, 1),
    (1, 8),
    (3, 1),
    (5, 7),
    (6, 8),
    (7, 4),
    (12, 16),
    (9, 10),
    (33, 20),
];

#[test]
fn fft2_f64_matches_naive_dft_and_round_trips() {
    let mut rng = Rng(3);
    for (ny, nx) in SHAPES {
        let x: Vec<f64> = (0..ny * nx).map(|_| rng.f64() * 10.0 - 3.0).collect();
        let mut fft = Fft2::<f64>::new(ny, nx).unwrap();
        let mut spec = fft.make_spectrum();
        fft.forward(&x, &mut spec).unwrap();
        let want = naive_rfft2(&x, ny, nx);
        let scale: f64 = x.iter().map(|v| v.abs()).sum();
        let nh = nx / 2 + 1;
        for ky in 0..ny {
            for kx in 0..nh {
                let got = spec[fft.index(ky, kx)];
                let w = want[ky * nh + kx];
                assert!(
                    (got - w).norm() <= 1e-12 * scale,
                    "{ny}x{nx} [{ky},{kx}] {got} vs {w}"
                );
            }
        }
        let mut back = vec![0.0; ny * nx];
        fft.inverse(&mut spec, &mut back).unwrap();
        let n = (ny * nx) as f64;
        for (b, a) in back.iter().zip(&x) {
            assert!((b / n - a).abs() <= 1e-12 * scale, "{ny}x{nx} round trip");
        }
        // The object is reusable: a second call gives identical output.
        let mut spec2 = fft.make_spectrum();
        fft.forward(&x, &mut spec2).unwrap();
        let mut spec1 = fft.make_spectrum();
        fft.forward(&x, &mut spec1).unwrap();
        assert_eq!(spec1, spec2);
    }
}

#[test]
fn fft2_f32_matches_naive_dft_and_round_trips() {
    let mut rng = Rng(5);
    for (ny, nx) in SHAPES {
        let x: Vec<f64> = (0..ny * nx).map(|_| rng.f64() * 1000.0).collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let xr: Vec<f64> = xf.iter().map(|&v| v as f64).collect();
        let mut fft = Fft2::<f32>::new(ny, nx).unwrap();
        let mut spec = fft.make_spectrum();
        fft.forward(&xf, &mut spec).unwrap();
        let want = naive_rfft2(&xr, ny, nx);
        let scale: f64 = xr.iter().map(|v| v.abs()).sum();
        let nh = nx / 2 + 1;
        for ky in 0..ny {
            for kx in 0..nh {
                let g = spec[fft.index(ky, kx)];
                let w = want[ky * nh + kx];
                let d = Complex::new(g.re as f64, g.im as f64) - w;
                assert!(d.norm() <= 1e-6 * scale, "{ny}x{nx} [{ky},{kx}] {g} vs {w}");
            }
        }
        let mut back = vec![0.0f32; ny * nx];
        fft.inverse(&mut spec, &mut back).unwrap();
        let n = (ny * nx) as f64;
        let peak = xr.iter().cloned().fold(0.0, f64::max);
        for (b, a) in back.iter().zip(&xr) {
            assert!(
                (*b as f64 / n - a).abs() <= 1e-5 * peak,
                "{ny}x{nx} round trip {b} {a}"
            );
        }
    }
}

#[test]
fn fft2_checks_buffer_sizes() {
    let mut fft = Fft2::<f32>::new(6, 8).unwrap();
    assert_eq!(fft.shape(), (6, 8));
    assert_eq!((fft.real_len(), fft.spectrum_len()), (48, 30));
    let x = vec![1.0f32; 48];
    let mut spec = fft.make_spectrum();
    let mut bad_spec = vec![Complex::new(0.0f32, 0.0); 29];
    let mut out = vec![0.0f32; 48];
    let mut bad_out = vec![0.0f32; 47];
    assert!(matches!(
        fft.forward(&x[..47], &mut spec),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        fft.forward(&x, &mut bad_spec),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        fft.inverse(&mut bad_spec, &mut out),
        Err(Error::Shape { .. })
    ));
    fft.forward(&x, &mut spec).unwrap();
    assert!(matches!(
        fft.inverse(&mut spec, &mut bad_out),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Fft2::<f64>::new(0, 4),
        Err(Error::InvalidOption { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Properties.

#[test]
fn otf_is_rfft2_of_the_centred_psf() {
    let mut rng = Rng(9);
    for (ny, nx) in [(8usize, 6usize), (7, 9)] {
        let psf = random_psf(ny, nx, &mut rng);
        let otf = Otf::from_psf(psf.view()).unwrap();
        assert_eq!(otf.shape(), (ny, nx));
        let shifted: Vec<f64> = (0..ny * nx)
            .map(|i| psf[[(i / nx + ny / 2) % ny, (i % nx + nx / 2) % nx]])
            .collect();
        let want = naive_rfft2(&shifted, ny, nx);
        let nh = nx / 2 + 1;
        for ky in 0..ny {
            for kx in 0..nh {
                let g = otf.value(ky, kx).unwrap();
                assert!((g - want[ky * nh + kx]).norm() < 1e-6, "[{ky},{kx}]");
            }
        }
        assert!((otf.value(0, 0).unwrap().re - 1.0).abs() < 1e-6);
        assert!(otf.value(ny, 0).is_none() && otf.value(0, nh).is_none());
    }
}

#[test]
fn delta_psf_returns_the_clipped_image() {
    let mut rng = Rng(21);
    let d = random_image(24, 20, &mut rng).mapv(|v| v as f32);
    let mut psf = Array2::<f64>::zeros((24, 20));
    psf[[12, 10]] = 1.0;
    let otf = Otf::from_psf(psf.view()).unwrap();
    let out = richardson_lucy(d.view(), &otf, 7, true).unwrap();
    for (o, v) in out.iter().zip(d.iter()) {
        assert!(
            (o - v.max(0.0)).abs() <= 1e-5 * v.abs().max(1.0),
            "{o} vs {v}"
        );
    }
}

#[test]
fn flux_is_conserved() {
    // Σ u_{k+1} = Σ_n r_n e_n = Σ d for a PSF summing to 1 (periodic boundary).
    let mut rng = Rng(33);
    let d = random_image(48, 64, &mut rng).mapv(|v| v.max(0.0) as f32);
    let otf = Otf::from_psf(random_psf(48, 64, &mut rng).view()).unwrap();
    let out = richardson_lucy(d.view(), &otf, 10, true).unwrap();
    let s0: f64 = d.iter().map(|&v| v as f64).sum();
    let s1: f64 = out.iter().map(|&v| v as f64).sum();
    assert!((s1 - s0).abs() < 1e-5 * s0, "{s1} vs {s0}");
    assert!(
        rel_l2(&out, &d.mapv(|v| v as f64)) > 1e-2,
        "deconvolution changed the image"
    );
}

#[test]
fn missing_pixels_are_zero_filled_and_restored() {
    let mut rng = Rng(44);
    let mut d = random_image(32, 24, &mut rng).mapv(|v| v as f32);
    let holes = [(0usize, 0usize), (5, 7), (5, 8), (31, 23), (17, 2)];
    for (k, &(y, x)) in holes.iter().enumerate() {
        d[[y, x]] = if k == 2 { f32::INFINITY } else { f32::NAN };
    }
    let otf = Otf::from_psf(random_psf(32, 24, &mut rng).view()).unwrap();
    let filled = d.mapv(|v| if v.is_finite() { v } else { 0.0 });
    for it in [0usize, 4] {
        let out = richardson_lucy(d.view(), &otf, it, true).unwrap();
        let reference = richardson_lucy(filled.view(), &otf, it, true).unwrap();
        for ((ix, o), r) in out.indexed_iter().zip(reference.iter()) {
            if holes.contains(&ix) {
                assert!(o.is_nan(), "{ix:?} should be NaN");
            } else {
                assert_eq!(o.to_bits(), r.to_bits(), "{ix:?}");
                assert!(o.is_finite());
            }
        }
    }
}

#[test]
fn zero_iterations_return_the_clipped_image() {
    let mut rng = Rng(55);
    let d = random_image(10, 14, &mut rng).mapv(|v| v as f32);
    let otf = Otf::from_psf(random_psf(10, 14, &mut rng).view()).unwrap();
    assert_eq!(
        richardson_lucy(d.view(), &otf, 0, true).unwrap(),
        d.mapv(|v| v.max(0.0))
    );
    assert_eq!(richardson_lucy(d.view(), &otf, 0, false).unwrap(), d);
}

#[test]
fn division_guard() {
    assert_eq!(ratio(2.0, 4.0), 0.5);
    assert_eq!(ratio(1.0, -2.0), -0.5);
    assert_eq!(ratio(3.0, 1e-30), 3.0 / 1e-30);
    assert_eq!(ratio(1.0, 0.0), 0.0);
    assert_eq!(ratio(0.0, 0.0), 0.0);
    assert_eq!(ratio(1e30, 1e-30), 0.0); // f32 overflow
                                         // A frame that is zero on one half and zero-valued after clipping elsewhere: e = 0 where
                                         // d = 0 gives 0/0; the result stays finite (aiapy: NaN everywhere).
    let mut d = Array2::<f32>::from_elem((16, 16), -1.0);
    d.slice_mut(s![.., 8..]).fill(0.0);
    d[[3, 3]] = 100.0;
    let mut psf = Array2::<f64>::zeros((16, 16));
    psf[[8, 8]] = 1.0;
    let out = richardson_lucy(d.view(), &Otf::from_psf(psf.view()).unwrap(), 3, true).unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
    assert!((out[[3, 3]] - 100.0).abs() < 1e-3);
}

// ---------------------------------------------------------------------------------------
// Bad input.

#[test]
fn bad_psfs_and_shapes_are_errors() {
    let mut bad = Array2::<f64>::zeros((8, 8));
    assert!(matches!(
        Otf::from_psf(bad.view()),
        Err(Error::BadPsf { .. })
    ));
    bad[[4, 4]] = 1.0;
    bad[[0, 1]] = -1e-20;
    assert!(matches!(
        Otf::from_psf(bad.view()),
        Err(Error::BadPsf { .. })
    ));
    bad[[0, 1]] = f64::NAN;
    assert!(matches!(
        Otf::from_psf(bad.view()),
        Err(Error::BadPsf { .. })
    ));
    bad[[0, 1]] = f64::INFINITY;
    assert!(matches!(
        Otf::from_psf(bad.view()),
        Err(Error::BadPsf { .. })
    ));
    assert!(matches!(
        Otf::from_psf(Array2::<f64>::zeros((0, 4)).view()),
        Err(Error::BadPsf { .. })
    ));

    let mut good = Array2::<f64>::zeros((8, 8));
    good[[4, 4]] = 1.0;
    let otf = Otf::from_psf(good.view()).unwrap();
    let img = Array2::<f32>::from_elem((8, 6), 3.0);
    assert!(matches!(
        richardson_lucy(img.view(), &otf, 2, true),
        Err(Error::Shape { .. })
    ));

    // Through the map API the errors name the map's file.
    let map = AiaMap::new(img, header(171), Source::file("x.fits"));
    let opts = DeconvolveOptions {
        psf: PsfSource::Array {
            psf: Arc::new(good),
            label: "p".into(),
        },
        ..Default::default()
    };
    let e = deconvolve(&map, &opts).unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("x.fits"),
        "{e}"
    );
    let zero = DeconvolveOptions {
        psf: PsfSource::Array {
            psf: Arc::new(Array2::zeros((8, 6))),
            label: "p".into(),
        },
        ..Default::default()
    };
    let e = deconvolve(&map, &zero).unwrap_err();
    assert!(
        matches!(e, Error::BadPsf { .. }) && e.to_string().contains("x.fits"),
        "{e}"
    );
}

#[test]
fn channels_without_a_model_are_errors_naming_the_file() {
    let img = Array2::<f32>::from_elem((16, 16), 5.0);
    for ch in [1600u32, 1700, 4500] {
        let map = AiaMap::new(img.clone(), header(ch), Source::file("uv.fits"));
        let e = deconvolve(&map, &DeconvolveOptions::default()).unwrap_err();
        assert!(
            matches!(e, Error::NoPsfModel { ref channel, .. } if *channel == ch.to_string()),
            "{e}"
        );
        assert!(e.to_string().contains("uv.fits"), "{e}");
    }
    let mut h = header(171);
    h.remove("WAVELNTH");
    let map = AiaMap::new(img.clone(), h, Source::file("uv.fits"));
    assert!(matches!(
        deconvolve(&map, &DeconvolveOptions::default()),
        Err(Error::MissingKeyword { .. })
    ));
    let odd = AiaMap::new(
        Array2::from_elem((16, 15), 1.0),
        header(171),
        Source::file("o.fits"),
    );
    let e = deconvolve(&odd, &DeconvolveOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::InvalidOption { .. }) && e.to_string().contains("o.fits"),
        "{e}"
    );
    assert!(matches!(
        model_otf(1600, (16, 16), &PsfOptions::default()),
        Err(Error::NoPsfModel { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Model PSF path, caching and the header record.

fn header(ch: u32) -> Header {
    let mut h = Header::new();
    h.set("TELESCOP", Value::Str("SDO/AIA".into()), None);
    h.set("WAVELNTH", Value::Int(ch as i64), None);
    h.set_f64("LVL_NUM", 1.0, None);
    h
}

#[test]
fn model_psf_deconvolution_records_itself_in_the_header() {
    let mut rng = Rng(77);
    let img = random_image(48, 64, &mut rng).mapv(|v| v as f32);
    let map = AiaMap::new(img.clone(), header(171), Source::file("a.fits"));
    let out = deconvolve(&map, &DeconvolveOptions::default()).unwrap();
    let otf = model_otf(171, (48, 64), &PsfOptions::default()).unwrap();
    let direct = richardson_lucy(img.view(), &otf, 25, true).unwrap();
    assert_eq!(out.data, direct);
    let h = &out.header;
    assert_eq!(h.get("DECONV"), Some(&Value::Bool(true)));
    assert_eq!(h.get("DECONVIT"), Some(&Value::Int(25)));
    assert_eq!(h.get_str("DECONPSF"), Some("AIA 171 model"));
    assert_eq!(h.get_f64("LVL_NUM"), Some(1.0));
    let hist = common::history(h);
    assert!(
        hist.contains(&format!(
            "aiaprep {} deconvolve: Richardson-Lucy, 25 iterations, PSF model channel 171 orders \
             -100..100, clip_negative=true",
            aiaprep::VERSION
        )),
        "{hist}"
    );
    // Non-default model options show up in the short label.
    let opts = DeconvolveOptions {
        iterations: 2,
        clip_negative: false,
        psf: PsfSource::Model(PsfOptions {
            orders: (-3..=3).collect(),
            preflight_core: true,
            size: 4096,
        }),
    };
    let out = deconvolve(&map, &opts).unwrap();
    assert_eq!(
        out.header.get_str("DECONPSF"),
        Some("AIA 171 model preflight orders -3..3")
    );
    assert!(common::history(&out.header).contains(
        "2 iterations, PSF model channel 171 orders -3..3, preflight core, clip_negative=false"
    ));
}

#[test]
fn model_otf_is_computed_once_and_shared() {
    let o = PsfOptions::default();
    let a = model_otf(193, (32, 40), &o).unwrap();
    let b = model_otf(193, (32, 40), &o).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let c = model_otf(193, (40, 32), &o).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    let d = model_otf(
        193,
        (32, 40),
        &PsfOptions {
            preflight_core: true,
            ..o
        },
    )
    .unwrap();
    assert!(!Arc::ptr_eq(&a, &d));
    assert!((a.value(0, 0).unwrap().re - 1.0).abs() < 1e-6);
    let p = aiaprep::cpu::psf::psf_grid(193, &PsfOptions::default(), (32, 40), &Source::memory())
        .unwrap();
    let fresh = Otf::from_psf(p.view()).unwrap();
    for ky in 0..32 {
        for kx in 0..21 {
            assert_eq!(fresh.value(ky, kx), a.value(ky, kx));
        }
    }
}
