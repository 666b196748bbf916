//! GPU results against CPU references, one test body per operation, instantiated per
//! backend in the style of candle's `test_device!`:
//!
//! * `*_cuda` runs the operation on the GPU (`--features cuda`). These are `#[ignore]`d
//!   so that machines without a GPU report them as **ignored**, not passed; the GPU runner
//!   includes them: `cargo test --release --features cuda --test gpu_parity --
//!   --include-ignored` (what `scripts/gpu-check.sh run` does). Run there without a
//!   usable GPU they fail with the reason.
//! * `*_cpu` runs the same body on `Backend::Cpu`. Until the crate's CPU path is merged
//!   that backend is the naive reference itself, so these are ignored as placeholders;
//!   the lead switches `Backend::Cpu` to `aiaprep::cpu` / `aiaprep::register` and
//!   removes their `#[ignore]`.
//!
//! The reference in every body is the naive f64 implementation in `tests/naive/`.
//! Tolerances: f32 paths 1e-5 of the data range; RL (25 f32 iterations through cuFFT)
//! 2e-4; the f64 PSF 1e-12.

#![allow(dead_code)]

mod naive;
use naive::*;

/// Where an operation runs.
enum Backend {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(Box<aiaprep::gpu::GpuDevice>),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Cpu => "CPU",
            #[cfg(feature = "cuda")]
            Backend::Cuda(_) => "GPU",
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda() -> Backend {
        let idx = std::env::var("AIAPREP_GPU_INDEX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        match aiaprep::gpu::GpuDevice::open(idx) {
            Ok(d) => {
                eprintln!("{}", d.describe());
                Backend::Cuda(Box::new(d))
            }
            Err(e) => panic!("GPU test run without a usable GPU: {e}"),
        }
    }
}

/// One resample case, in the terms of the sunpy chain.
struct RegisterCase {
    img: Vec<f32>,
    nx: usize,
    ny: usize,
    geo: Geo,
    interp: u32,
    missing: f32,
    clip: Option<(f32, f32)>,
    pad: usize,
}

impl Backend {
    fn register(&self, c: &RegisterCase) -> Vec<f32> {
        match self {
            Backend::Cpu => reference_register(c)
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev) => {
                use aiaprep::gpu::register::{register, Interpolation, Prefilter, RegisterParams};
                let p = RegisterParams {
                    out_shape: (c.geo.nout[0], c.geo.nout[1]),
                    reference_pixel: c.geo.refp,
                    matrix: c.geo.m,
                    out_center: Some(c.geo.c),
                    interpolation: Interpolation::from_u32(c.interp).unwrap(),
                    missing: c.missing,
                    clip: c.clip,
                    pad: (c.pad, c.pad),
                    nan_fill: None,
                    prefilter: Prefilter::Fir,
                };
                let a = ndarray::ArrayView2::from_shape((c.ny, c.nx), &c.img).unwrap();
                register(dev, a, &p).unwrap().into_raw_vec_and_offset().0
            }
        }
    }

    fn deconvolve(&self, img: &[f32], psf: &[f64], nx: usize, ny: usize, iters: usize) -> Vec<f64> {
        match self {
            Backend::Cpu => richardson_lucy(img, psf, nx, ny, iters, 1e-20),
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev) => {
                use aiaprep::gpu::deconvolve::{deconvolve, DeconvolveParams};
                let a = ndarray::ArrayView2::from_shape((ny, nx), img).unwrap();
                let p = ndarray::ArrayView2::from_shape((ny, nx), psf).unwrap();
                let prm = DeconvolveParams {
                    iterations: iters,
                    ..Default::default()
                };
                deconvolve(dev, a, p, &prm)
                    .unwrap()
                    .iter()
                    .map(|&v| v as f64)
                    .collect()
            }
        }
    }

    fn psf(&self, n: usize, w: f64, orders: &[i32], filters: [(f64, &[f64]); 2]) -> Vec<f64> {
        let rho = 363.0 / 34.0;
        match self {
            Backend::Cpu => aia_psf(n, w, orders, rho, filters),
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev) => {
                use aiaprep::gpu::psf::{psf, PsfFilter, PsfParams};
                let p = PsfParams {
                    n,
                    width: w,
                    focal_plane: PsfFilter {
                        spacing: filters[0].0,
                        angles_deg: filters[0].1.to_vec(),
                    },
                    entrance: PsfFilter {
                        spacing: filters[1].0,
                        angles_deg: filters[1].1.to_vec(),
                    },
                    orders: orders.to_vec(),
                    mesh_ratio: rho,
                    spike_fraction: 0.18,
                    core_fraction: 0.82,
                };
                psf(dev, &p).unwrap().into_raw_vec_and_offset().0
            }
        }
    }

    fn edge_count(&self, w: &Wcs, shape: (usize, usize), limit: f64) -> u64 {
        match self {
            Backend::Cpu => border(shape)
                .into_iter()
                .filter(|&(x, y)| w.distance(x as f64, y as f64) <= limit)
                .count() as u64,
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev) => {
                use aiaprep::gpu::fulldisk::{edge_on_disk_count, FullDiskParams};
                let rsun = 6.96e8;
                let p = FullDiskParams {
                    shape,
                    reference_pixel: w.refp,
                    rotation: w.pc,
                    cdelt: w.cdelt_arcsec,
                    crval: w.crval_arcsec,
                    rsun_ref: rsun,
                    dsun_obs: rsun / limit.sin(),
                };
                edge_on_disk_count(dev, &p).unwrap()
            }
        }
    }

    /// (i16 → f32, f32 → i16, stats of the f32 values (count, min, max, sum), nanmedian)
    fn convert(&self, raw: &[i16], vals: &[f32]) -> (Vec<f32>, Vec<i16>, [f64; 4], Option<f64>) {
        match self {
            Backend::Cpu => {
                let f = raw
                    .iter()
                    .map(|&v| if v == -32768 { f32::NAN } else { v as f32 })
                    .collect();
                let s = vals.iter().map(|&v| to_i16(v as f64)).collect();
                let fin: Vec<f64> = vals
                    .iter()
                    .filter(|v| !v.is_nan())
                    .map(|&v| v as f64)
                    .collect();
                let st = [
                    fin.len() as f64,
                    fin.iter().cloned().fold(f64::INFINITY, f64::min),
                    fin.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                    fin.iter().sum(),
                ];
                (f, s, st, nanmedian(vals))
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev) => {
                use aiaprep::gpu::convert::*;
                let r = ndarray::ArrayView2::from_shape((1, raw.len()), raw).unwrap();
                let v = ndarray::ArrayView2::from_shape((1, vals.len()), vals).unwrap();
                let f = i16_to_f32(dev, r, &I16Scaling::default()).unwrap();
                let s = f32_to_i16(dev, v).unwrap();
                let st = stats_f32(dev, v).unwrap();
                let med = nanmedian(dev, v).unwrap();
                (
                    f.into_raw_vec_and_offset().0,
                    s.into_raw_vec_and_offset().0,
                    [st.count as f64, st.min, st.max, st.sum],
                    med,
                )
            }
        }
    }

    /// int16 level 1 → (optional RL) → register (missing = min, clip to input) → int16.
    fn pipeline(
        &self,
        raw: &[i16],
        nx: usize,
        ny: usize,
        geo: &Geo,
        psf: Option<&[f64]>,
    ) -> Vec<i16> {
        match self {
            Backend::Cpu => reference_pipeline(raw, nx, ny, geo, psf),
            #[cfg(feature = "cuda")]
            Backend::Cuda(dev) => {
                use aiaprep::gpu::pipeline::{
                    GpuPipeline, Job, OutputKind, PipelineOutput, RegisterJob,
                };
                use aiaprep::gpu::register::{Interpolation, Prefilter, RegisterParams};
                use aiaprep::gpu::{DeconvolveParams, I16Scaling};
                let mut pl = GpuPipeline::new(dev);
                if let Some(p) = psf {
                    pl.set_psf(171, ndarray::ArrayView2::from_shape((ny, nx), p).unwrap())
                        .unwrap();
                }
                let job = Job {
                    channel: 171,
                    scaling: I16Scaling::default(),
                    deconvolve: psf.map(|_| DeconvolveParams::default()),
                    register: Some(RegisterJob {
                        params: RegisterParams {
                            out_shape: (geo.nout[0], geo.nout[1]),
                            reference_pixel: geo.refp,
                            matrix: geo.m,
                            out_center: Some(geo.c),
                            interpolation: Interpolation::Spline,
                            missing: 0.0,
                            clip: None,
                            pad: (0, 0),
                            nan_fill: None,
                            prefilter: Prefilter::Fir,
                        },
                        missing_from_data: true,
                        clip_to_input: true,
                    }),
                    output: OutputKind::I16,
                };
                let a = ndarray::ArrayView2::from_shape((ny, nx), raw).unwrap();
                let r = pl.run_i16(a, &job).unwrap();
                eprintln!("stage times (ms): {:?}", r.times);
                let PipelineOutput::I16(out) = r.data else {
                    panic!("expected int16 output")
                };
                let out = out.into_raw_vec_and_offset().0;
                // the reported statistics are those of the returned pixels
                let vals: Vec<f64> = out
                    .iter()
                    .filter(|&&v| v != -32768)
                    .map(|&v| v as f64)
                    .collect();
                assert_eq!(r.stats.count as usize, vals.len());
                assert_eq!(
                    r.stats.min,
                    vals.iter().cloned().fold(f64::INFINITY, f64::min)
                );
                assert_eq!(
                    r.stats.max,
                    vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                );
                assert_eq!(r.stats.sum, vals.iter().sum::<f64>());
                out
            }
        }
    }
}

fn border((nx, ny): (usize, usize)) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    for x in 0..nx {
        v.push((x, 0));
        v.push((x, ny - 1));
    }
    for y in 1..ny - 1 {
        v.push((0, y));
        v.push((nx - 1, y));
    }
    v
}

/// sunpy's chain in f64: pad with `missing`, NaN → nanmedian, dilated mask, resample,
/// clip, NaN rule.
fn reference_register(c: &RegisterCase) -> Vec<f64> {
    let (nx, ny) = (c.nx + 2 * c.pad, c.ny + 2 * c.pad);
    let padded = pad(&c.img, c.nx, c.ny, c.pad, c.missing);
    let fill = nanmedian(&padded).unwrap_or(0.0) as f32;
    let k = if c.interp <= 1 { 1 } else { 5 };
    let any_nan = padded.iter().any(|v| v.is_nan());
    let (filled, dmask) = fill_and_dilate(&padded, nx, ny, fill, k);
    let mut g = c.geo;
    g.nin = [nx, ny];
    g.refp = [c.geo.refp[0] + c.pad as f64, c.geo.refp[1] + c.pad as f64];
    let img64: Vec<f64> = filled.iter().map(|&v| v as f64).collect();
    naive_resample(
        &img64,
        if any_nan { Some(&dmask) } else { None },
        &g,
        c.interp,
        c.missing as f64,
        c.clip.map(|(a, b)| (a as f64, b as f64)),
    )
}

fn reference_pipeline(
    raw: &[i16],
    nx: usize,
    ny: usize,
    geo: &Geo,
    psf: Option<&[f64]>,
) -> Vec<i16> {
    let mut img: Vec<f32> = raw
        .iter()
        .map(|&v| if v == -32768 { f32::NAN } else { v as f32 })
        .collect();
    if let Some(p) = psf {
        img = richardson_lucy(&img, p, nx, ny, 25, 1e-20)
            .into_iter()
            .map(|v| v as f32)
            .collect();
    }
    let fin: Vec<f32> = img.iter().cloned().filter(|v| !v.is_nan()).collect();
    let lo = fin.iter().cloned().fold(f32::INFINITY, f32::min);
    let hi = fin.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let c = RegisterCase {
        img,
        nx,
        ny,
        geo: *geo,
        interp: 2,
        missing: lo,
        clip: Some((lo, hi)),
        pad: 0,
    };
    reference_register(&c).into_iter().map(to_i16).collect()
}

macro_rules! test_device {
    ($body:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        #[ignore = "placeholder until the crate's CPU path is wired into Backend::Cpu"]
        fn $cpu() {
            $body(&Backend::Cpu)
        }

        #[cfg(feature = "cuda")]
        #[test]
        #[ignore = "needs a CUDA GPU: cargo test --features cuda --test gpu_parity -- --include-ignored"]
        fn $cuda() {
            $body(&Backend::cuda())
        }
    };
}

fn assert_close(b: &Backend, got: &[f32], want: &[f64], abs: f64, what: &str) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.is_nan() || w.is_nan() {
            assert!(g.is_nan() && w.is_nan(), "{what}[{i}]: got {g}, want {w}");
            continue;
        }
        let d = (g as f64 - w).abs();
        worst = worst.max(d);
        assert!(
            d <= abs,
            "{what}[{i}]: got {g}, want {w}, |d| {d:e} > {abs:e}"
        );
    }
    eprintln!(
        "PARITY {what}: max |{} - ref| = {worst:e} (tolerance {abs:e})",
        b.name()
    );
    worst
}

fn register_body(b: &Backend) {
    let mut rng = Rng(2024);
    let (nx, ny) = (160usize, 136usize);
    let mut img = random_image(&mut rng, nx, ny);
    for k in 0..40 {
        img[(k * 7919) % (nx * ny)] = f32::NAN;
    }
    let range = 600.0;
    for (deg, scale, pad) in [(12.5, 0.98, 0usize), (-0.13, 1.0012, 2)] {
        for interp in 0..4u32 {
            let geo = rotation_geo([nx, ny], [150, 150], deg, scale);
            let lo = img
                .iter()
                .cloned()
                .filter(|v| !v.is_nan())
                .fold(f32::INFINITY, f32::min);
            let hi = img
                .iter()
                .cloned()
                .filter(|v| !v.is_nan())
                .fold(f32::NEG_INFINITY, f32::max);
            let c = RegisterCase {
                img: img.clone(),
                nx,
                ny,
                geo,
                interp,
                missing: lo,
                clip: Some((lo, hi)),
                pad,
            };
            let got = b.register(&c);
            let want = reference_register(&c);
            assert_close(
                b,
                &got,
                &want,
                1e-5 * range,
                &format!("register interp {interp} roll {deg} pad {pad}"),
            );
        }
    }
}
test_device!(register_body, register_cpu, register_cuda);

fn small_psf(nx: usize, ny: usize) -> Vec<f64> {
    // a normalised, slightly asymmetric blob centred at [ny/2, nx/2]
    let mut p = vec![0.0; nx * ny];
    let (cx, cy) = ((nx / 2) as f64, (ny / 2) as f64);
    for j in 0..ny {
        for i in 0..nx {
            let (dx, dy) = (i as f64 - cx, j as f64 - cy);
            p[j * nx + i] = (-(dx * dx) / 1.3 - (dy * dy) / 0.8 - 0.2 * dx * dy).exp();
        }
    }
    let s: f64 = p.iter().sum();
    p.iter().map(|v| v / s).collect()
}

fn deconvolve_body(b: &Backend) {
    let mut rng = Rng(7);
    let (nx, ny) = (32usize, 24usize);
    let mut img = random_image(&mut rng, nx, ny);
    img[5] = f32::NAN;
    img[100] = -12.0;
    let psf = small_psf(nx, ny);
    let got: Vec<f32> = b
        .deconvolve(&img, &psf, nx, ny, 25)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let want = richardson_lucy(&img, &psf, nx, ny, 25, 1e-20);
    let max = want
        .iter()
        .cloned()
        .filter(|v| !v.is_nan())
        .fold(0.0, f64::max);
    assert_close(b, &got, &want, 2e-4 * max, "deconvolve 25 iterations");
}
test_device!(deconvolve_body, deconvolve_cpu, deconvolve_cuda);

fn psf_body(b: &Backend) {
    let n = 64;
    let entrance: &[f64] = &[49.81, 39.57, -40.13, -50.38];
    let focal: &[f64] = &[45.0, -45.0];
    let orders: Vec<i32> = (-3..=3).collect();
    for w in [4.5, 0.962] {
        let got = b.psf(n, w, &orders, [(1.9, focal), (9.3, entrance)]);
        let want = aia_psf(n, w, &orders, 363.0 / 34.0, [(1.9, focal), (9.3, entrance)]);
        let got32: Vec<f32> = got.iter().map(|&v| v as f32).collect();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-12, "psf w {w}: max |d| {worst:e}");
        let _ = got32;
        let s: f64 = got.iter().sum();
        assert!((s - 1.0).abs() < 1e-9, "psf sum {s}");
        let peak = got
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.partial_cmp(b.1).unwrap())
            .unwrap()
            .0;
        assert_eq!(peak, (n / 2) * n + n / 2, "peak at [n/2, n/2]");
        eprintln!(
            "PARITY psf n {n} w {w}: max |{} - ref| = {worst:e}",
            b.name()
        );
    }
}
test_device!(psf_body, psf_cpu, psf_cuda);

/// The full 4096² model for 171 Å against the reference values of semantics.md §2.2.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs a CUDA GPU: cargo test --features cuda --test gpu_parity -- --include-ignored"]
fn psf_171_full_size_matches_reference_values_cuda() {
    let Backend::Cuda(dev) = Backend::cuda() else {
        unreachable!()
    };
    let p = aiaprep::gpu::PsfParams::aia(171, false).unwrap();
    let psf = aiaprep::gpu::psf::psf(&dev, &p).unwrap();
    let checks = [
        ((2048, 2048), 6.416521245e-01),
        ((2048, 2049), 1.856251695e-02),
        ((2049, 2049), 1.603825970e-02),
    ];
    for ((j, i), want) in checks {
        let got = psf[[j, i]];
        assert!(
            (got - want).abs() <= 2e-9 * want,
            "PSF[{j},{i}] = {got:.10e}, want {want:.10e}"
        );
    }
    let c3: f64 = (2047..=2049)
        .flat_map(|j| (2047..=2049).map(move |i| (j, i)))
        .map(|(j, i)| psf[[j, i]])
        .sum();
    assert!((c3 - 0.780055218).abs() < 2e-9, "central 3x3 {c3}");
    let s: f64 = psf.sum();
    assert!((s - 1.0).abs() < 1e-10, "sum {s}");
    eprintln!(
        "PARITY psf 171 4096²: PSF[2048,2048] = {:.10e}",
        psf[[2048, 2048]]
    );
}

fn fulldisk_body(b: &Backend) {
    let limit = (6.96e8f64 / 1.496e11).asin();
    let cases = [
        (
            (128usize, 128usize),
            19.18,
            [1.5, -2.0],
            0.019413f64,
            [63.8, 64.2],
            true,
        ),
        ((96, 80), 25.0, [300.0, -200.0], 12.0, [40.0, 47.0], false),
        ((512, 512), 4.8, [0.0, 0.0], -30.0, [255.5, 255.5], true),
    ];
    for (shape, cdelt, crval, roll, refp, full) in cases {
        let (s, c) = roll.to_radians().sin_cos();
        let w = Wcs {
            refp,
            pc: [[c, -s], [s, c]],
            cdelt_arcsec: [cdelt, cdelt],
            crval_arcsec: crval,
        };
        let got = b.edge_count(&w, shape, limit);
        let want = border(shape)
            .into_iter()
            .filter(|&(x, y)| w.distance(x as f64, y as f64) <= limit)
            .count() as u64;
        assert_eq!(got, want, "{shape:?}");
        assert_eq!(got == 0, full, "{shape:?}");
    }
}
test_device!(fulldisk_body, fulldisk_cpu, fulldisk_cuda);

fn convert_body(b: &Backend) {
    let mut rng = Rng(1);
    let mut raw: Vec<i16> = (0..100_000)
        .map(|_| (rng.next_u64() % 65536) as u16 as i16)
        .collect();
    raw[0] = -32768;
    let mut vals: Vec<f32> = (0..300_001)
        .map(|_| rng.range(-40000.0, 40000.0) as f32)
        .collect();
    for (k, v) in [
        0.5f32,
        -0.5,
        2.5,
        -2.5,
        32767.5,
        -32767.5,
        f32::NAN,
        1.4999999,
    ]
    .iter()
    .enumerate()
    {
        vals[k] = *v;
    }
    vals[1000] = f32::NAN;
    let (f, s, st, med) = b.convert(&raw, &vals);
    for (i, &v) in raw.iter().enumerate() {
        if v == -32768 {
            assert!(f[i].is_nan());
        } else {
            assert_eq!(f[i], v as f32);
        }
    }
    for (i, &v) in vals.iter().enumerate() {
        assert_eq!(s[i], to_i16(v as f64), "{v}");
    }
    let fin: Vec<f64> = vals
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| v as f64)
        .collect();
    assert_eq!(st[0], fin.len() as f64);
    assert_eq!(st[1], fin.iter().cloned().fold(f64::INFINITY, f64::min));
    assert_eq!(st[2], fin.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
    let sum: f64 = fin.iter().sum();
    assert!((st[3] - sum).abs() <= 1e-9 * fin.iter().map(|v| v.abs()).sum::<f64>());
    assert_eq!(med, nanmedian(&vals), "nanmedian");
    // even count
    let even: Vec<f32> = vals[..300_000].to_vec();
    let (_, _, _, med2) = b.convert(&raw[..10], &even);
    assert_eq!(med2, nanmedian(&even), "nanmedian (even count)");
}
test_device!(convert_body, convert_cpu, convert_cuda);

fn pipeline_body(b: &Backend) {
    let mut rng = Rng(99);
    let (nx, ny) = (96usize, 96usize);
    let raw: Vec<i16> = random_image(&mut rng, nx, ny)
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if i % 977 == 5 {
                -32768
            } else {
                v.round() as i16
            }
        })
        .collect();
    let geo = rotation_geo([nx, ny], [nx, ny], 0.7, 0.9991);
    let psf = small_psf(nx, ny);
    for use_psf in [false, true] {
        let p = if use_psf { Some(&psf[..]) } else { None };
        let got = b.pipeline(&raw, nx, ny, &geo, p);
        let want = reference_pipeline(&raw, nx, ny, &geo, p);
        let mut worst = 0i32;
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let d = (g as i32 - w as i32).abs();
            worst = worst.max(d);
            assert!(
                d <= 1 && ((g == -32768) == (w == -32768)),
                "pipeline (psf {use_psf}) pixel {i}: {g} vs {w}"
            );
        }
        eprintln!(
            "PARITY pipeline int16 (deconvolve {use_psf}): max |{} - ref| = {worst} DN",
            b.name()
        );
    }
}
test_device!(pipeline_body, pipeline_cpu, pipeline_cuda);

/// Without a GPU (or CUDA libraries) opening a device is a typed error, never a panic.
#[cfg(feature = "cuda")]
#[test]
fn no_gpu_is_a_typed_error() {
    let libs = aiaprep::gpu::Libraries::probe();
    match aiaprep::gpu::GpuDevice::open(0) {
        Ok(d) => eprintln!("a GPU is present: {}", d.describe()),
        Err(e) => {
            assert!(
                matches!(e, aiaprep::Error::BackendUnavailable { .. }),
                "unexpected error kind: {e:?}"
            );
            eprintln!("no GPU ({libs:?}): {e}");
        }
    }
    // an absurd ordinal is an error whatever the machine
    let e = aiaprep::gpu::GpuDevice::open(10_000).unwrap_err();
    assert!(
        matches!(e, aiaprep::Error::BackendUnavailable { .. }),
        "{e:?}"
    );
}
