//! `prep --backend cuda` end to end on the test device (`tests/device/mod.rs`: the software
//! CUDA device unless `AIAPREP_TEST_DEVICE=real`), against `prep --backend cpu` on the same
//! inputs: register only and `--deconvolve`, int16 (RICE) and float32, 512² inputs and a
//! full 4096² frame, and a batch with several CUDA streams (also under the software
//! device's chaos mode) that must give the outputs of one stream, byte for byte.
//!
//! With int16 output the GPU engine encodes the pixels on the device; that file must be
//! exactly the one the writer makes from the GPU's own f32 result.
//!
//! Tolerances (as tests/gpu_parity.rs): float32 register within 1e-3 DN or 5e-7 relative,
//! identical NaN masks; deconvolved float32 within 1e-5 relative L2; int16 within ±1 (a float
//! result on either side of a rounding boundary), identical BLANK masks; the level-1.5
//! header keywords identical.

#![cfg(feature = "cuda")]

mod common;
mod device;

use std::path::{Path, PathBuf};
use std::process::Output;

use aiaprep::fits;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aiaprep-cuda-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn prep(input: &Path, out: &Path, backend: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = common::prep_command();
    c.arg(input)
        .args(["--out-dir", s(out), "--backend", backend])
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "prep --backend {backend} {extra:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Compares two prep outputs (see the module docs); returns a one-line summary.
fn compare(gpu: &Path, cpu: &Path, deconvolved: bool) -> String {
    let g = fits::read(gpu).unwrap();
    let c = fits::read(cpu).unwrap();
    assert_eq!(g.data.dim(), c.data.dim());
    for k in [
        "LVL_NUM", "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CROTA2", "R_SUN", "BITPIX",
    ] {
        assert_eq!(g.header.get(k), c.header.get(k), "{}: {k}", gpu.display());
    }
    let int16 = g.header.get_f64("BITPIX") == Some(16.0);
    let (mut worst, mut off, mut n) = (0f64, 0usize, 0usize);
    let (mut d2, mut c2) = (0f64, 0f64);
    for (&a, &b) in g.data.iter().zip(c.data.iter()) {
        assert_eq!(
            a.is_nan(),
            b.is_nan(),
            "{}: missing-pixel masks differ",
            gpu.display()
        );
        if a.is_nan() {
            continue;
        }
        let d = (a as f64 - b as f64).abs();
        worst = worst.max(d);
        d2 += d * d;
        c2 += (b as f64).powi(2);
        n += 1;
        if int16 {
            assert!(d <= 1.0, "{}: int16 {a} vs {b}", gpu.display());
            off += (d > 0.0) as usize;
        } else if !deconvolved {
            assert!(
                d <= 1e-3f64.max(5e-7 * (b as f64).abs()),
                "{}: {a} vs {b}",
                gpu.display()
            );
        }
    }
    let rel = (d2 / c2.max(1e-300)).sqrt();
    if !int16 && deconvolved {
        assert!(rel <= 1e-5, "{}: relative L2 {rel:e}", gpu.display());
    }
    if int16 {
        // ±1 only where the two float results straddle a rounding boundary: rare
        assert!(
            off * 100 <= n,
            "{}: {off} of {n} int16 pixels differ",
            gpu.display()
        );
    }
    format!("max |Δ| {worst}, relative L2 {rel:.2e}, {off} int16 pixels ±1 of {n}")
}

fn stem_out(input: &Path, dir: &Path) -> PathBuf {
    aiaprep::pipeline::output_path(input, dir)
}

#[test]
fn prep_cuda_matches_prep_cpu_512_cuda() {
    if !device::require() {
        return;
    }
    let dir = tmpdir("512");
    let ins = common::synth_inputs(&dir, 2, 512, 500, 40);
    for (tag, extra, deconvolved) in [
        ("reg-i16", &["--compress", "rice"][..], false),
        ("reg-f32", &["--dtype", "f32"][..], false),
        (
            "dec-i16",
            &["--deconvolve", "--iterations", "10", "--compress", "rice"][..],
            true,
        ),
        (
            "dec-f32",
            &["--deconvolve", "--iterations", "10", "--dtype", "f32"][..],
            true,
        ),
    ] {
        let (og, oc) = (
            dir.join(format!("{tag}-cuda")),
            dir.join(format!("{tag}-cpu")),
        );
        let r = prep(&dir.join("in"), &og, "cuda", extra, &[]);
        let text =
            String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr);
        assert!(text.contains("cuda:0"), "{text}");
        prep(&dir.join("in"), &oc, "cpu", extra, &[]);
        for p in &ins {
            let line = compare(&stem_out(p, &og), &stem_out(p, &oc), deconvolved);
            eprintln!("PARITY prep 512² {tag}: {line}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A full 4096² frame, register and `--deconvolve` (3 iterations: the CPU twin of the
/// comparison runs in the test build).
#[test]
fn prep_cuda_full_frame_cuda() {
    if !device::require() {
        return;
    }
    let dir = tmpdir("4096");
    let ins = common::synth_inputs(&dir, 1, 4096, 4000, 60);
    for (tag, extra, deconvolved) in [
        ("reg", &["--compress", "rice"][..], false),
        (
            "dec",
            &["--deconvolve", "--iterations", "3", "--dtype", "f32"][..],
            true,
        ),
    ] {
        let (og, oc) = (
            dir.join(format!("{tag}-cuda")),
            dir.join(format!("{tag}-cpu")),
        );
        prep(&dir.join("in"), &og, "cuda", extra, &[]);
        prep(&dir.join("in"), &oc, "cpu", extra, &[]);
        let line = compare(
            &stem_out(&ins[0], &og),
            &stem_out(&ins[0], &oc),
            deconvolved,
        );
        eprintln!("PARITY prep 4096² {tag}: {line}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Several streams (and the software device's chaos mode, which delays every stream
/// operation at random) give exactly the outputs of one stream; the summary reports the
/// device occupancy over the streams.
#[test]
fn batch_with_several_streams_cuda() {
    if !device::require() {
        return;
    }
    let dir = tmpdir("streams");
    let ins = common::synth_inputs(&dir, 6, 256, 600, 20);
    let args = [
        "--deconvolve",
        "--iterations",
        "4",
        "--jobs",
        "2",
        "--compress",
        "rice",
    ];
    let one = dir.join("one");
    prep(
        &dir.join("in"),
        &one,
        "cuda",
        &[&args[..], &["--gpu-streams", "1"]].concat(),
        &[],
    );
    let mut runs = vec![("three", vec![])];
    if device::is_soft() {
        runs.push(("chaos", vec![("SOFTCUDA_CHAOS", "20261204")]));
    }
    for (tag, env) in runs {
        let out = dir.join(tag);
        let r = prep(
            &dir.join("in"),
            &out,
            "cuda",
            &[&args[..], &["--gpu-streams", "3"]].concat(),
            &env,
        );
        let text =
            String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr);
        assert!(text.contains("of 3 streams"), "{tag}: {text}");
        for p in &ins {
            let b = fits::read(&stem_out(p, &out)).unwrap();
            let a_map = fits::read(&stem_out(p, &one)).unwrap();
            let same = a_map
                .data
                .iter()
                .zip(b.data.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "{tag}: {} differs from the one-stream run",
                p.display()
            );
        }
        eprintln!("PARITY batch {tag}: 6 images with 3 streams == 1 stream");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// int16 output encoded on the device (values and DATAMIN/DATAMAX/DATAMEAN) is exactly what
/// the FITS writer makes of the GPU's f32 output — also with exposure normalisation
/// (BSCALE = 1/EXPTIME) and after deconvolution.
#[test]
fn int16_encoded_on_the_device_is_the_writers_cuda() {
    use aiaprep::fits::{OutputType, WriteOptions};
    if !device::require() {
        return;
    }
    let dir = tmpdir("int16");
    let ins = common::synth_inputs(&dir, 2, 256, 700, 30);
    let table = common::source_dir()
        .join("tests/data/calibration/aia_V8_20171210_050627_response_table.txt");
    let table = table.to_str().unwrap();
    for (tag, extra) in [
        ("reg", &[][..]),
        ("norm", &["--normalize-exposure"][..]),
        ("dec", &["--deconvolve", "--iterations", "5"][..]),
        (
            "degr",
            &[
                "--correct-degradation",
                "--correction-table",
                table,
                "--normalize-exposure",
            ][..],
        ),
    ] {
        let (oi, of) = (
            dir.join(format!("{tag}-i16")),
            dir.join(format!("{tag}-f32")),
        );
        prep(&dir.join("in"), &oi, "cuda", extra, &[]);
        prep(
            &dir.join("in"),
            &of,
            "cuda",
            &[extra, &["--dtype", "f32"]].concat(),
            &[],
        );
        for p in &ins {
            let dev = fits::read(&stem_out(p, &oi)).unwrap();
            let f = fits::read(&stem_out(p, &of)).unwrap();
            let scaling = aiaprep::pipeline::int16_scaling_of(&f.header);
            let host_path = dir.join(format!("{tag}-host.fits"));
            let opts = WriteOptions {
                dtype: OutputType::I16,
                scaling,
                overwrite: true,
                ..WriteOptions::default()
            };
            let report = fits::write(&f, &host_path, &opts).unwrap();
            let host = fits::read(&host_path).unwrap();
            let same = dev
                .data
                .iter()
                .zip(host.data.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{tag}: {}: device int16 != writer's int16",
                p.display()
            );
            for (k, want) in [
                ("DATAMIN", report.datamin),
                ("DATAMAX", report.datamax),
                ("DATAMEAN", report.datamean),
            ] {
                assert_eq!(dev.header.get_f64(k), Some(want), "{tag}: {k}");
            }
            assert_eq!(dev.header.get("BSCALE"), host.header.get("BSCALE"), "{tag}");
            assert_eq!(dev.header.get_f64("LVL_NUM"), Some(1.5));
        }
        eprintln!("PARITY int16 {tag}: device encoding == writer's");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `prepare` asks the GPU engine for int16 pixels when the output is int16 and nothing
/// needs f32 afterwards, and keeps f32 otherwise (quicklook, float32 output, CPU).
#[test]
fn prepare_encodes_int16_on_the_gpu_only_when_it_can_cuda() {
    use aiaprep::engine::Backend;
    use aiaprep::pipeline::{self, PrepOptions, Prepared, StageTimes};
    if !device::require() {
        return;
    }
    let map = aiaprep::synth::level1(&aiaprep::synth::SynthOptions {
        size: 256,
        ..Default::default()
    });
    let run = |backend, opts: &PrepOptions| {
        let engines = aiaprep::engine::select_engines(&aiaprep::engine::EngineOptions {
            backend,
            register_on_cpu: false,
            ..Default::default()
        })
        .unwrap();
        let (mut t, mut w) = (StageTimes::default(), Vec::new());
        pipeline::prepare(map.clone(), opts, &engines, &mut t, &mut w).unwrap()
    };
    let int16 = PrepOptions::default();
    assert!(matches!(run(Backend::Cuda, &int16), Prepared::Int16 { .. }));
    assert!(matches!(run(Backend::Cpu, &int16), Prepared::Map(_)));
    let quicklook = PrepOptions {
        quicklook: Some(Default::default()),
        ..PrepOptions::default()
    };
    assert!(matches!(run(Backend::Cuda, &quicklook), Prepared::Map(_)));
    let mut f32_out = PrepOptions::default();
    f32_out.write.dtype = fits::OutputType::F32;
    assert!(matches!(run(Backend::Cuda, &f32_out), Prepared::Map(_)));
}
