//! GPU timing harness (feature `cuda`): per-stage CUDA-event timings on a synthetic
//! 4096² AIA-like int16 frame after warm-up, against the project's targets for an H200
//! (25 RL iterations ≤ 25 ms, register spline ≤ 0.5 ms incl. prefilter, PSF ≤ 20 ms,
//! end to end ≤ 40 ms), plus the host wall time of the pipeline's [`GpuEngine`]
//! (`engine.*`: f32 map in and out, transfers included; what `prep --backend cuda` runs).
//!
//! [`GpuEngine`]: aiaprep::gpu::GpuEngine
//!
//! ```text
//! cargo run --release --features cuda --example gpu_timing -- [--size 4096] [--reps 5] \
//!     [--device 0] [--json timings.json]
//! ```
//!
//! Prints a table and, with `--json`, writes the medians as JSON. Exits non-zero with
//! the library's message when no GPU is usable.

use std::time::Instant;

use aiaprep::gpu::deconvolve::{deconvolve_device, otf_from_device_psf};
use aiaprep::gpu::psf::psf_device;
use aiaprep::gpu::register::{register_device, sunpy_pad, Interpolation, Prefilter};
use aiaprep::gpu::{
    DeconvolveParams, DeviceImage, GpuDevice, GpuPipeline, I16Scaling, Job, OutputKind,
    PinnedBuffer, PsfParams, RegisterJob, RegisterParams, StageTimes,
};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Image size (square).
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Timed repetitions per measurement (after one warm-up).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Visible CUDA device index.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Write the medians as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// Deterministic AIA-like level-1 frame: limb-brightened disk of radius ~1600 px at an
/// off-centre position, faint corona, noise, a few BLANK pixels.
fn synthetic(n: usize, blanks: bool) -> Vec<i16> {
    let mut s: u64 = 0x1234_5678;
    let (cx, cy, r) = (n as f64 * 0.5 + 3.2, n as f64 * 0.5 - 1.7, n as f64 * 0.39);
    let mut v = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let noise = (s >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
            let d = ((i as f64 - cx).powi(2) + (j as f64 - cy).powi(2)).sqrt() / r;
            let val = if d < 1.0 {
                800.0 + 400.0 * d.powi(4) + 60.0 * ((i as f64) * 0.01).sin()
            } else {
                40.0 * (-(d - 1.0) * 8.0).exp() + 2.0
            };
            v.push((val + 20.0 * noise).round() as i16);
        }
    }
    if blanks {
        for k in 0..200 {
            let idx = (k * 7_919_993) % (n * n);
            v[idx] = -32768;
        }
    }
    v
}

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if let Err(e) = run() {
        eprintln!("gpu_timing: {e}");
        std::process::exit(1);
    }
}

fn register_params(n: usize, interp: Interpolation) -> RegisterParams {
    // 131 Å-like: CDELT 0.600698", roll −0.13°, reference pixel off centre.
    let s = 0.600698 / 0.6;
    let (sn, cs) = (-0.13f64).to_radians().sin_cos();
    let rot = [[cs, -sn], [sn, cs]];
    let pad = sunpy_pad(n, n, rot, s);
    RegisterParams {
        out_shape: (n, n),
        reference_pixel: [n as f64 / 2.0 + 1.3, n as f64 / 2.0 - 2.4],
        // M = R^-1 / s
        matrix: [[cs / s, sn / s], [-sn / s, cs / s]],
        out_center: None,
        interpolation: interp,
        missing: 0.0,
        clip: None,
        pad,
        nan_fill: None,
        prefilter: Prefilter::Fir,
    }
}

fn run() -> aiaprep::Result<()> {
    let a = Args::parse();
    let n = a.size;
    let reps = a.reps.max(1);
    let t_open = Instant::now();
    let dev = GpuDevice::open(a.device)?;
    println!("{}", dev.describe());
    let (free, total) = dev.memory()?;
    println!(
        "memory: {:.1} GiB free of {:.1} GiB; open took {:.0} ms",
        free as f64 / 1.073_741_824e9,
        total as f64 / 1.073_741_824e9,
        t_open.elapsed().as_secs_f64() * 1e3
    );
    let mut rows: Vec<(String, f32, Option<f32>)> = Vec::new();

    // ---- PSF (171 Å, 4096² model at this size) and the OTF
    let mut psf_p = PsfParams::aia(171, false).ok_or_else(|| aiaprep::Error::NoPsfModel {
        file: aiaprep::Source::memory(),
        channel: "171".into(),
    })?;
    psf_p.n = n;
    let t0 = Instant::now();
    let psf = psf_device(&dev, &psf_p)?; // warm-up: NVRTC compile, cuFFT plans
    dev.synchronize()?;
    println!(
        "first PSF (incl. NVRTC compile + plans): {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    drop(psf);
    let mut v = Vec::new();
    for _ in 0..reps {
        let (p, ms) = dev.time_ms(|| psf_device(&dev, &psf_p))?;
        drop(p);
        v.push(ms);
    }
    rows.push(("psf_171".into(), median(v), Some(20.0)));
    let psf = psf_device(&dev, &psf_p)?;
    let otf = otf_from_device_psf(&dev, &psf, n, n)?;
    drop(psf);

    // ---- inputs
    let raw = synthetic(n, false);
    let raw_blank = synthetic(n, true);
    let scaling = I16Scaling::default();
    let to_dev = |r: &[i16]| -> aiaprep::Result<DeviceImage> {
        let a = ndarray::ArrayView2::from_shape((n, n), r).map_err(|e| {
            aiaprep::Error::InvalidOption {
                file: aiaprep::Source::memory(),
                reason: e.to_string(),
            }
        })?;
        aiaprep::gpu::convert::upload_i16(&dev, a, &scaling)
    };
    let base = to_dev(&raw)?;
    let base_blank = to_dev(&raw_blank)?;

    // ---- 25 RL iterations
    let dp = DeconvolveParams::default();
    let _ = deconvolve_device(&dev, base.try_clone(&dev)?, &otf, &dp)?;
    let mut v = Vec::new();
    for _ in 0..reps {
        let img = base.try_clone(&dev)?;
        let (_o, ms) = dev.time_ms(|| deconvolve_device(&dev, img, &otf, &dp))?;
        v.push(ms);
    }
    rows.push(("deconvolve_25_iterations".into(), median(v), Some(25.0)));

    // ---- register per interpolation, without and with missing pixels
    for (label, src) in [("", &base), ("_with_blanks", &base_blank)] {
        for interp in Interpolation::ALL {
            let mut p = register_params(n, interp);
            p.missing = 0.0;
            let _ = register_device(&dev, src.try_clone(&dev)?, &p)?;
            let mut v = Vec::new();
            for _ in 0..reps {
                let img = src.try_clone(&dev)?;
                let (_o, ms) = dev.time_ms(|| register_device(&dev, img, &p))?;
                v.push(ms);
            }
            let target = (interp == Interpolation::Spline && label.is_empty()).then_some(0.5);
            rows.push((
                format!("register_{interp:?}{label}").to_lowercase(),
                median(v),
                target,
            ));
        }
    }
    {
        let mut p = register_params(n, Interpolation::Spline);
        p.prefilter = Prefilter::Recursive;
        let _ = register_device(&dev, base.try_clone(&dev)?, &p)?;
        let mut v = Vec::new();
        for _ in 0..reps {
            let img = base.try_clone(&dev)?;
            let (_o, ms) = dev.time_ms(|| register_device(&dev, img, &p))?;
            v.push(ms);
        }
        rows.push((
            "register_spline_recursive_prefilter".into(),
            median(v),
            None,
        ));
    }

    // ---- end to end through pinned buffers: int16 in → RL → register → int16 out
    let mut pl = GpuPipeline::new(&dev);
    let mut input = PinnedBuffer::<i16>::new(&dev, n * n)?;
    input.as_mut_slice(&dev)?.copy_from_slice(&raw);
    let mut output = PinnedBuffer::<i16>::new(&dev, n * n)?;
    for (name, deconvolve) in [
        ("end_to_end_register", false),
        ("end_to_end_deconvolve_register", true),
    ] {
        let job = Job {
            channel: 171,
            scaling,
            deconvolve: deconvolve.then_some(dp),
            register: Some(RegisterJob {
                params: register_params(n, Interpolation::Spline),
                missing_from_data: true,
                clip_to_input: true,
            }),
            output: OutputKind::I16,
        };
        // OTF: the same 171 PSF (synthesised by the pipeline on first use)
        let _ = pl.run_i16_pinned(&input, n, n, &job, &mut output)?;
        let mut all: Vec<StageTimes> = Vec::new();
        for _ in 0..reps {
            let (_, _, t) = pl.run_i16_pinned(&input, n, n, &job, &mut output)?;
            all.push(t);
        }
        let m = |f: fn(&StageTimes) -> f32| median(all.iter().map(f).collect());
        let p = name;
        rows.push((format!("{p}.upload_int16_pinned"), m(|t| t.upload_ms), None));
        rows.push((format!("{p}.convert_in"), m(|t| t.convert_in_ms), None));
        if deconvolve {
            rows.push((
                format!("{p}.deconvolve"),
                m(|t| t.deconvolve_ms),
                Some(25.0),
            ));
        }
        rows.push((format!("{p}.register_spline"), m(|t| t.register_ms), None));
        rows.push((format!("{p}.convert_out"), m(|t| t.convert_out_ms), None));
        rows.push((format!("{p}.stats"), m(|t| t.stats_ms), None));
        rows.push((
            format!("{p}.download_int16_pinned"),
            m(|t| t.download_ms),
            None,
        ));
        rows.push((format!("{p}.total"), m(|t| t.total_ms), Some(40.0)));
    }

    // ---- the pipeline's engine (what `prep --backend cuda` runs): f32 map in, f32 map
    // out, host wall time including the transfers; a synthetic level-1 171 Å map.
    drop(pl);
    drop(otf);
    drop(base);
    drop(base_blank);
    {
        use aiaprep::deconvolve::DeconvolveOptions;
        use aiaprep::pipeline::Engine;
        use aiaprep::register::RegisterOptions;
        let engine = aiaprep::gpu::GpuEngine::open(a.device)?;
        let map = aiaprep::synth::level1(&aiaprep::synth::SynthOptions {
            size: n,
            ..Default::default()
        });
        let dopts = DeconvolveOptions::default();
        let ropts = RegisterOptions::default();
        let t0 = Instant::now();
        let _ = engine.deconvolve(&map, &dopts)?;
        println!(
            "engine: first deconvolve (incl. CPU PSF model + device OTF): {:.1} ms",
            t0.elapsed().as_secs_f64() * 1e3
        );
        let _ = engine.register(&map, &ropts)?;
        let wall = |f: &dyn Fn() -> aiaprep::Result<()>| -> aiaprep::Result<f32> {
            let mut v = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                f()?;
                v.push((t.elapsed().as_secs_f64() * 1e3) as f32);
            }
            Ok(median(v))
        };
        let ms = wall(&|| engine.deconvolve(&map, &dopts).map(|_| ()))?;
        rows.push(("engine.deconvolve_f32_wall".into(), ms, None));
        let ms = wall(&|| engine.register(&map, &ropts).map(|_| ()))?;
        rows.push(("engine.register_spline_f32_wall".into(), ms, None));
    }

    println!(
        "\n{:<48} {:>10} {:>10} {:>6}",
        "stage (median of reps)", "ms", "target", ""
    );
    for (name, ms, target) in &rows {
        let (t, ok) = match target {
            Some(t) => (format!("{t:.1}"), if ms <= t { "ok" } else { "MISS" }),
            None => (String::new(), ""),
        };
        println!("{name:<48} {ms:>10.3} {t:>10} {ok:>6}");
    }
    if let Some(path) = a.json {
        let mut s = String::from("{\n");
        s.push_str(&format!(
            "  \"device\": {:?},\n  \"size\": {n},\n  \"reps\": {reps},\n  \"ms\": {{\n",
            dev.describe()
        ));
        let body: Vec<String> = rows
            .iter()
            .map(|(k, v, _)| format!("    {k:?}: {v:.4}"))
            .collect();
        s.push_str(&body.join(",\n"));
        s.push_str("\n  }\n}\n");
        std::fs::write(&path, s).map_err(|e| aiaprep::Error::Io {
            file: aiaprep::Source::file(&path),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}
