//! GPU timing harness: the one GPU engine ([`GpuEngine::process`], what `prep --backend cuda`
//! runs) on a synthetic 4096² level-1 171 Å frame, after warm-up, with every stage timed by
//! CUDA events — int16 upload, int16 → f32 (BLANK → NaN), Richardson–Lucy, register,
//! int16 conversion with DATAMIN/DATAMAX/DATAMEAN, int16 download — against the project's
//! targets for an H200 (25 RL iterations ≤ 25 ms, register spline ≤ 0.5 ms incl.
//! prefilter, one image device-resident end to end ≤ 40 ms), plus the first-use PSF + OTF
//! (synthesised on the device) and the host wall time of the [`Engine`] methods (f32 map in
//! and out).
//!
//! [`GpuEngine::process`]: aiaprep::gpu::GpuEngine::process
//! [`Engine`]: aiaprep::engine::Engine
//!
//! ```text
//! cargo run --release --example gpu_timing -- [--size 4096] [--reps 5] [--device 0] \
//!     [--json timings.json]
//! ```
//!
//! Prints a table and, with `--json`, writes the medians as JSON. Exits non-zero with the
//! library's message when no GPU is usable. On the tests' software device the figures are
//! labelled EMULATED: they time the CPU, not a GPU, and must never be quoted as GPU
//! figures.

use std::time::Instant;

use aiaprep::deconvolve::{self, DeconvolveOptions};
use aiaprep::gpu::{
    DeconvolveJob, DeviceTimes, GpuDevice, GpuEngine, I16Scaling, Input, Job, OutputKind,
    RegisterJob,
};

use aiaprep::register::{self, Interpolation, Missing, RegisterOptions};
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

type Row = (String, f32, Option<f32>);

fn run() -> aiaprep::Result<()> {
    let a = Args::parse();
    let n = a.size;
    let reps = a.reps.max(1);
    let t_open = Instant::now();
    // One lane: the stages of one image, not the overlap of several.
    let engine = GpuEngine::with_lanes(GpuDevice::open(a.device)?, 1)?;
    let dev = engine.device();
    let emulated = dev.is_emulated();
    if emulated {
        println!("EMULATED: the software CUDA device runs on the CPU; these are not GPU timings");
    }
    println!("{}", dev.describe());
    let (free, total) = dev.memory()?;
    println!(
        "memory: {:.1} GiB free of {:.1} GiB; open (incl. NVRTC compile of every kernel and the \
         cuFFT check) took {:.0} ms",
        free as f64 / 1.073_741_824e9,
        total as f64 / 1.073_741_824e9,
        t_open.elapsed().as_secs_f64() * 1e3
    );

    // A level-1 frame as a file holds it: int16 with BLANK for the missing pixels.
    let map = aiaprep::synth::level1(&aiaprep::synth::SynthOptions {
        size: n,
        ..Default::default()
    });
    let raw = map.data.mapv(|v| {
        if v.is_nan() {
            -32768i16
        } else {
            v.round().clamp(-32767.0, 32767.0) as i16
        }
    });
    // What prep uploads (the decoder's f32), and the int16 variant (BLANK → NaN on the device).
    let as_prep = Input::F32(map.data.view());
    let int16_in = Input::I16 {
        data: raw.view(),
        scaling: I16Scaling::default(),
    };
    let dopts = DeconvolveOptions::default();
    let sel = deconvolve::select_psf(&map, &dopts)?;
    let mut rows: Vec<Row> = Vec::new();

    // Register alone, every interpolation; then deconvolution + register.
    let mut jobs: Vec<(String, Option<Interpolation>, bool, Input)> = [
        Interpolation::Nearest,
        Interpolation::Linear,
        Interpolation::Spline,
        Interpolation::Keys,
    ]
    .iter()
    .map(|&i| {
        (
            format!("register_{i:?}").to_lowercase(),
            Some(i),
            false,
            as_prep,
        )
    })
    .collect();
    jobs.push((
        "deconvolve_register".into(),
        Some(Interpolation::Spline),
        true,
        as_prep,
    ));
    jobs.push((
        "deconvolve_register_int16_input".into(),
        Some(Interpolation::Spline),
        true,
        int16_in,
    ));
    for (name, interp, deconv, input) in jobs {
        let ropts = RegisterOptions {
            interpolation: interp.unwrap_or_default(),
            missing: Missing::Min,
            ..RegisterOptions::default()
        };
        let plan = register::plan(&map, &ropts)?;
        let job = Job {
            deconvolve: deconv.then_some(DeconvolveJob {
                psf: &sel,
                options: &dopts,
            }),
            register: interp.map(|i| RegisterJob {
                transform: &plan.transform,
                interpolation: i,
                missing: Missing::Min,
            }),
            normalize: None,
            uncertainty: None,
            output: OutputKind::I16 { scaling: None },
            source: &map.source,
        };
        // warm-up (cuFFT plans; for the first deconvolution the PSF and OTF)
        let first = engine.process(input, &job)?;
        if deconv && !rows.iter().any(|r| r.0 == "psf_and_otf_first_use") {
            println!(
                "first use: PSF synthesised on the device + OTF: {:.1} ms",
                first.times.otf_ms
            );
            rows.push((
                "psf_and_otf_first_use".into(),
                first.times.otf_ms,
                Some(20.0),
            ));
        }
        let int16 = matches!(input, Input::I16 { .. });
        let mut all: Vec<DeviceTimes> = Vec::new();
        for _ in 0..reps {
            all.push(engine.process(input, &job)?.times);
        }
        let m = |f: fn(&DeviceTimes) -> f32| median(all.iter().map(f).collect());
        let spline = interp == Some(Interpolation::Spline);
        if int16 {
            rows.push((format!("{name}.upload_int16"), m(|t| t.upload_ms), None));
            rows.push((format!("{name}.int16_to_f32"), m(|t| t.convert_in_ms), None));
        } else {
            rows.push((format!("{name}.upload_f32"), m(|t| t.upload_ms), None));
        }
        if deconv {
            rows.push((
                format!("{name}.deconvolve_25"),
                m(|t| t.deconvolve_ms),
                Some(25.0),
            ));
        }
        rows.push((
            format!("{name}.register"),
            m(|t| t.register_ms),
            (spline && !deconv).then_some(0.5),
        ));
        rows.push((
            format!("{name}.f32_to_int16_and_stats"),
            m(|t| t.convert_out_ms),
            None,
        ));
        rows.push((format!("{name}.download_int16"), m(|t| t.download_ms), None));
        rows.push((
            format!("{name}.total"),
            m(|t| t.total_ms),
            (deconv && !int16).then_some(40.0),
        ));
    }

    // The Engine methods (f32 map in and out), host wall time, transfers included.
    let ropts = RegisterOptions::default();
    let wall = |f: &dyn Fn() -> aiaprep::Result<()>| -> aiaprep::Result<f32> {
        f()?;
        let mut v = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            f()?;
            v.push((t.elapsed().as_secs_f64() * 1e3) as f32);
        }
        Ok(median(v))
    };
    let ms = wall(&|| engine.register(&map, &ropts).map(|_| ()))?;
    rows.push(("engine.register_f32_wall".into(), ms, None));
    let plan = register::plan(&map, &ropts)?;
    let ms = wall(&|| {
        engine
            .deconvolve_register(&map, &dopts, &plan, &ropts)
            .map(|_| ())
    })?;
    rows.push(("engine.deconvolve_register_f32_wall".into(), ms, None));

    println!(
        "\n{:<48} {:>10} {:>10} {:>6}",
        if emulated {
            "stage (median of reps) — EMULATED, not a GPU"
        } else {
            "stage (median of reps)"
        },
        "ms",
        "target",
        ""
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
            "  \"device\": {:?},\n  \"emulated\": {emulated},\n  \"size\": {n},\n  \"reps\": {reps},\n  \"ms\": {{\n",
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
