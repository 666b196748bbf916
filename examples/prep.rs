//! `prep`: SDO/AIA level 1 → level 1.5 (and, with `--deconvolve`, PSF-deconvolved "level
//! 1.6") for files and directories of FITS files.
//!
//! ```text
//! cargo run --release --example prep -- [OPTIONS] INPUT... --out-dir DIR
//! cargo run --release --example prep -- --demo [--out-dir DIR]
//! ```
//!
//! Exit status: 0 when every input succeeded (or was skipped because its output exists),
//! 1 when any input failed (each failure is printed with the file and the reason; the rest
//! are still processed), 2 on usage errors.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiaprep::batch::{self, BatchOptions, Progress, Record, Shard, Status};

use aiaprep::deconvolve::{DeconvolveOptions, PsfSource};
use aiaprep::degradation::CorrectionTable;
use aiaprep::engine::{select_engines, Backend, EngineOptions, Engines};
use aiaprep::fits::{self, Compression, OutputType, WriteOptions};
use aiaprep::pipeline::UncertaintyRequest;
use aiaprep::pipeline::{self, PrepOptions};
use aiaprep::pointing::PointingTable;
use aiaprep::psf::PsfOptions;
use aiaprep::quicklook::{QuicklookOptions, Stretch};
use aiaprep::register::{Interpolation, Missing, RegisterOptions};
use aiaprep::uncertainty::{ErrorOptions, ErrorTable};
use aiaprep::{Error, Source};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Dtype {
    I16,
    F32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Compress {
    None,
    Rice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum QuicklookStretch {
    Asinh,
    Log,
}

/// SDO/AIA level 1 → level 1.5 preparation (aiapy `update_pointing` + `register`
/// equivalent, optional PSF deconvolution first).
#[derive(Debug, Parser)]
#[command(name = "prep", version, about)]
struct Cli {
    /// Level-1 FITS files, directories (searched recursively for *.fits / *.fits.fz) or
    /// @LIST files (one path per line).
    inputs: Vec<PathBuf>,
    /// Directory for the outputs (INPUT stem + `_lev15.fits`). Created if absent.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Interpolation: nearest, linear, spline (cubic B-spline, aiapy default) or keys
    /// (cubic convolution a = −0.5, SolarSoft aia_prep).
    #[arg(long, default_value = "spline")]
    interp: Interpolation,
    /// Value for pixels outside the input: `min` (aiapy default), `nan`, or a number (DN).
    #[arg(long, default_value = "min")]
    missing: Missing,
    /// Output pixel type.
    #[arg(long, value_enum, default_value = "i16")]
    dtype: Dtype,
    /// Output compression (RICE_1 tile compression as JSOC ships level 1).
    #[arg(long, value_enum, default_value = "none")]
    compress: Compress,
    /// Replace existing outputs (by default they are kept and the input is skipped).
    #[arg(long)]
    overwrite: bool,
    /// Compute backend: auto (GPU if usable, else CPU), cpu, or cuda.
    #[arg(long, default_value = "auto")]
    backend: Backend,
    /// Register on the CPU even when the GPU deconvolves (the mixed flow).
    #[arg(long, value_parser = ["cpu", "same"], default_value = "same")]
    register_on: String,
    /// Write a PNG quicklook beside each output, in the channel's SDO/AIA colour table.
    #[arg(long)]
    quicklook: bool,
    /// Longest side of the quicklook in pixels (block-averaged down; 0 = full size).
    #[arg(long, default_value_t = 1024)]
    quicklook_size: usize,
    /// Quicklook stretch between the 0.5 % and 99.9 % levels: asinh or log.
    #[arg(long, value_enum, default_value = "asinh")]
    quicklook_stretch: QuicklookStretch,
    /// Write the per-pixel uncertainty (aiapy estimate_error) as a second image HDU
    /// (EXTNAME UNCERTAINTY) of each output.
    #[arg(long)]
    uncertainty: bool,
    /// The error table of --uncertainty (SolarSoft aia_V*_error_table.txt); default: the
    /// built-in V3 table (the one aiapy downloads).
    #[arg(long)]
    error_table: Option<PathBuf>,
    /// --uncertainty: add the pre-flight photometric calibration error.
    #[arg(long, conflicts_with = "error_eve")]
    error_preflight: bool,
    /// --uncertainty: add the EVE-normalised calibration error.
    #[arg(long)]
    error_eve: bool,
    /// --uncertainty: add the CHIANTI atomic-data error.
    #[arg(long)]
    error_chianti: bool,
    /// --uncertainty: number of measurements averaged into each pixel (aiapy n_sample).
    #[arg(long, default_value_t = 1.0)]
    error_n_sample: f64,
    /// Deconvolve with the instrument PSF (Richardson–Lucy) before register ("level 1.6").
    #[arg(long)]
    deconvolve: bool,
    /// Richardson–Lucy iterations (with --deconvolve).
    #[arg(long, default_value_t = 25)]
    iterations: usize,
    /// Use this PSF (a 2-D FITS image of the input's size, peak at [N/2, N/2]) instead of
    /// the instrument model (with --deconvolve).
    #[arg(long)]
    psf: Option<PathBuf>,
    /// Write each computed model PSF as float32 FITS into this directory.
    #[arg(long)]
    save_psf: Option<PathBuf>,
    /// Use the pre-flight PSF core widths (with --deconvolve).
    #[arg(long)]
    psf_preflight: bool,
    /// Update the pointing from this master pointing table (CSV export of
    /// aia.master_pointing3h) before everything else.
    #[arg(long)]
    pointing_table: Option<PathBuf>,
    /// Divide by EXPTIME after register (output in DN/s).
    #[arg(long)]
    normalize_exposure: bool,
    /// Correct for the instrument's degradation after register (aiapy correct_degradation),
    /// with the table of --correction-table.
    #[arg(long, requires = "correction_table")]
    correct_degradation: bool,
    /// The degradation correction table: a SolarSoft aia_V*_response_table.txt, or a CSV
    /// export of JSOC's aia.response.
    #[arg(long)]
    correction_table: Option<PathBuf>,
    /// Skip the full-disk check (cut-outs; register still assumes a full-frame geometry).
    #[arg(long)]
    no_full_disk_check: bool,
    /// Threads of each pool: the CPU compute pool (rayon) and the decode and encode pools.
    /// Default: the number of cores, with at most 8 each for decode and encode; an explicit
    /// N is used as given (each decode or encode thread holds about one image in memory,
    /// ≈ 100 MB for 4096²).
    #[arg(long)]
    jobs: Option<usize>,
    /// CUDA streams of the GPU engine (1-16): that many images are on the device at once,
    /// one's transfers overlapping another's kernels. Default: `AIAPREP_GPU_STREAMS`, else 2.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    gpu_streams: Option<u8>,
    /// Print the time of each stage for every file.
    #[arg(long)]
    timings: bool,
    /// Process only shard K of N (0-based, `K/N`) of the sorted inputs. Without it, the
    /// shard comes from Slurm array / srun / MPI variables when they are set.
    #[arg(long)]
    shard: Option<Shard>,
    /// Ignore Slurm/MPI variables: process every input in this process.
    #[arg(long)]
    no_shard: bool,
    /// Write a JSON report with one record per input.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Images waiting between stages (each queue); bounds memory.
    #[arg(long, default_value_t = 2)]
    queue_depth: usize,
    /// The most memory (MiB) reading one input or PSF file may need, from what its header
    /// declares (pixels, compressed data, tile buffers); larger files fail with a typed error
    /// before anything is allocated. The default fits 4096² and 8192² images.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    max_input_mib: u64,
    /// Write a synthetic 4096² level-1 RICE file and prep it, printing each stage's time.
    #[arg(long)]
    demo: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(j) = cli.jobs {
        if j == 0 {
            eprintln!("error: --jobs must be at least 1");
            return ExitCode::from(2);
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(j)
            .build_global()
        {
            eprintln!("warning: --jobs not applied: {e}");
        }
    }
    if cli.demo {
        return match run_demo(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    if cli.inputs.is_empty() {
        eprintln!("error: no INPUT given (or use --demo); see --help");
        return ExitCode::from(2);
    }
    let Some(out_dir) = cli.out_dir.clone() else {
        eprintln!("error: --out-dir DIR is required");
        return ExitCode::from(2);
    };
    let inputs = match expand_inputs(&cli.inputs) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!(
            "error: {}: cannot create output directory: {e}",
            out_dir.display()
        );
        return ExitCode::from(2);
    }
    let (opts, engines) = match build(&cli) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let shard = if cli.no_shard {
        None
    } else if let Some(s) = cli.shard {
        Some(batch::ShardSource {
            shard: s,
            origin: "--shard".into(),
        })
    } else {
        batch::shard_from_env(&|k| std::env::var(k).ok())
    };
    let inputs = batch::shard_inputs(inputs, shard.as_ref().map(|s| s.shard));
    eprintln!("{}", engines.description);
    if let Some(s) = &shard {
        eprintln!(
            "shard {}/{} from {}: {} inputs",
            s.shard.index,
            s.shard.count,
            s.origin,
            inputs.len()
        );
    }
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            if c.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            // SIGINT (Ctrl-C), SIGTERM (kill; Slurm at the time limit, KillWait before
            // SIGKILL) or SIGHUP: finish what is in flight, then the summary and report.
            eprintln!("\ninterrupted: finishing the images in flight (Ctrl-C or kill again to abort; no partial outputs are left)");
        });
    }
    // Decode and encode threads: as asked, else the cores up to 8 each (memory).
    let io_threads = cli.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8)
    });
    let bopts = BatchOptions {
        decode_threads: io_threads,
        encode_threads: io_threads,
        compute_workers: None,
        queue_depth: cli.queue_depth.max(1),
    };
    let progress = ProgressSink::new(inputs.len(), cli.timings);
    let summary = batch::run(
        &inputs, &out_dir, &opts, &engines, &bopts, &progress, &cancel,
    );
    progress.finish();
    let secs = summary.wall.as_secs_f64();
    println!(
        "{} done, {} skipped, {} failed{} in {secs:.2} s ({:.2} images/s)",
        summary.count(Status::Done),
        summary.count(Status::Skipped),
        summary.count(Status::Failed),
        match summary.count(Status::Cancelled) {
            0 => String::new(),
            n => format!(", {n} cancelled"),
        },
        summary.images_per_second()
    );
    if let Some(line) = summary.mean_stage_line() {
        println!("{line}");
    }
    if summary.count(Status::Done) > 0 {
        println!("{}", summary.occupancy_line());
    }
    if let Some(r) = &cli.report {
        if let Err(e) = std::fs::write(r, summary.to_json()) {
            eprintln!("error: {}: cannot write report: {e}", r.display());
            return ExitCode::from(1);
        }
    }
    if summary.count(Status::Failed) > 0 || summary.count(Status::Cancelled) > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Progress: a bar with images/s and ETA on a terminal, plain lines otherwise.
struct ProgressSink {
    bar: Option<indicatif::ProgressBar>,
    timings: bool,
    last_log: Mutex<Instant>,
    start: Instant,
}

impl ProgressSink {
    fn new(total: usize, timings: bool) -> ProgressSink {
        let bar = if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}",
            ) {
                b.set_style(style);
            }
            Some(b)
        } else {
            None
        };
        ProgressSink {
            bar,
            timings,
            last_log: Mutex::new(Instant::now()),
            start: Instant::now(),
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
    fn say(&self, line: String) {
        match &self.bar {
            Some(b) => b.println(line),
            None => println!("{line}"),
        }
    }
}

impl Progress for ProgressSink {
    fn finished(&self, r: &Record, n: usize, total: usize) {
        for w in &r.warnings {
            self.say(format!("warning: {w}"));
        }
        match r.status {
            Status::Done => {
                self.say(format!(
                    "{} -> {} ({:.3} s)",
                    r.input.display(),
                    r.output.display(),
                    r.times.total().as_secs_f64()
                ));
                if self.timings {
                    let parts: Vec<String> = r
                        .times
                        .stages()
                        .iter()
                        .map(|(n, d)| format!("{n}={:.1}ms", d.as_secs_f64() * 1e3))
                        .collect();
                    self.say(format!("  timings: {}", parts.join(" ")));
                }
            }
            Status::Skipped => self.say(format!(
                "{}: skipped, {} is complete (--overwrite to redo)",
                r.input.display(),
                r.output.display()
            )),
            Status::Failed => {
                let msg = format!("error: {}", r.error.as_deref().unwrap_or("failed"));
                match &self.bar {
                    Some(b) => b.println(msg),
                    None => eprintln!("{msg}"),
                }
            }
            Status::Cancelled => {}
        }
        if let Some(b) = &self.bar {
            b.set_position(n as u64);
        } else if let Ok(mut last) = self.last_log.lock() {
            if last.elapsed() >= Duration::from_secs(10) || n == total {
                *last = Instant::now();
                let el = self.start.elapsed().as_secs_f64();
                let rate = n as f64 / el.max(1e-9);
                let eta = (total - n) as f64 / rate.max(1e-9);
                eprintln!("progress: {n}/{total} ({rate:.2} images/s, eta {eta:.0} s)");
            }
        }
    }
}

/// Options and engines from the command line; PSF and pointing files are loaded here.
fn build(cli: &Cli) -> Result<(PrepOptions, Engines), Error> {
    // AIAPREP_GPU_INDEX / AIAPREP_GPU_STREAMS / the node-local rank, then the flags.
    let mut engine_opts = EngineOptions::from_env()?;
    engine_opts.backend = cli.backend;
    engine_opts.register_on_cpu = cli.register_on == "cpu";
    if let Some(n) = cli.gpu_streams {
        engine_opts.gpu_streams = n as usize;
    }
    let engines = select_engines(&engine_opts)?;
    let pointing = match &cli.pointing_table {
        Some(p) => Some(Arc::new(PointingTable::read_csv(p)?)),
        None => None,
    };
    let correct_degradation = match (&cli.correction_table, cli.correct_degradation) {
        (Some(p), true) => Some(Arc::new(CorrectionTable::read(p)?)),
        _ => None,
    };
    let uncertainty = if cli.uncertainty {
        let table = match &cli.error_table {
            Some(p) => ErrorTable::read(p)?,
            None => ErrorTable::default_v3(),
        };
        let options = ErrorOptions {
            n_sample: cli.error_n_sample,
            include_preflight: cli.error_preflight,
            include_eve: cli.error_eve,
            include_chianti: cli.error_chianti,
            compare_idl: false,
        };
        options.check()?;
        Some(UncertaintyRequest {
            table: Arc::new(table),
            options,
        })
    } else {
        None
    };
    let read_limits = fits::ReadLimits {
        max_bytes: cli.max_input_mib << 20,
    };
    let deconvolve = if cli.deconvolve {
        let psf = match &cli.psf {
            Some(p) => {
                let a = fits::read_psf(p, &read_limits)?;
                PsfSource::Array {
                    psf: Arc::new(a),
                    label: p
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                }
            }
            None => PsfSource::Model(PsfOptions {
                preflight_core: cli.psf_preflight,
                ..PsfOptions::default()
            }),
        };
        Some(DeconvolveOptions {
            iterations: cli.iterations,
            psf,
            ..DeconvolveOptions::default()
        })
    } else {
        None
    };
    let opts = PrepOptions {
        register: RegisterOptions {
            interpolation: cli.interp,
            missing: cli.missing,
            check_full_disk: !cli.no_full_disk_check,
        },
        deconvolve,
        pointing,
        correct_degradation,
        uncertainty,
        normalize_exposure: cli.normalize_exposure,
        write: WriteOptions {
            dtype: match cli.dtype {
                Dtype::I16 => OutputType::I16,
                Dtype::F32 => OutputType::F32,
            },
            compress: match cli.compress {
                Compress::None => Compression::None,
                Compress::Rice => Compression::Rice,
            },
            overwrite: cli.overwrite,
            scaling: None,
        },
        quicklook: cli.quicklook.then_some(QuicklookOptions {
            size: cli.quicklook_size,
            stretch: match cli.quicklook_stretch {
                QuicklookStretch::Asinh => Stretch::Asinh,
                QuicklookStretch::Log => Stretch::Log,
            },
            channel: None,
        }),
        read_limits,
    };
    if let (Some(dir), true) = (&cli.save_psf, cli.deconvolve) {
        save_model_psfs(cli, dir, &opts, &engines)?;
    }
    Ok((opts, engines))
}

/// Compute (on the deconvolution engine) and save the model PSF of each channel among the
/// inputs (or 171 for the demo).
fn save_model_psfs(
    cli: &Cli,
    dir: &Path,
    opts: &PrepOptions,
    engines: &Engines,
) -> Result<(), Error> {
    let Some(DeconvolveOptions {
        psf: PsfSource::Model(popts),
        ..
    }) = &opts.deconvolve
    else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        file: Source::file(dir),
        reason: format!("cannot create directory: {e}"),
    })?;
    let mut channels: Vec<(u32, usize)> = Vec::new();
    if cli.demo {
        channels.push((171, 4096));
    }
    // Channels and sizes from the headers alone (no pixels are decoded here).
    for input in expand_inputs(&cli.inputs).unwrap_or_default() {
        if let Ok(h) = fits::read_header(&input) {
            if let Ok(w) = aiaprep::map::wavelength(&h.header, &Source::file(&input)) {
                let n = h.ny;
                if !channels.contains(&(w, n)) {
                    channels.push((w, n));
                }
            }
        }
    }
    for (ch, n) in channels {
        let po = PsfOptions {
            size: n,
            ..popts.clone()
        };
        let t = Instant::now();
        let psf = engines.deconvolve.psf(ch, &po)?;
        let path = dir.join(format!("aia_psf_{ch}_{n}.fits"));
        let header = aiaprep::psf::psf_header(ch, &po);
        let data32 = psf.mapv(|v| v as f32);
        fits::write_image_f32(&path, data32.view(), &header, true)?;
        eprintln!(
            "PSF {ch} Å ({n}²) written to {} in {:.2} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Files, directories (recursive, *.fits / *.fits.fz / *.fts) and @LIST files → a sorted,
/// de-duplicated list of files.
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in inputs {
        let s = p.to_string_lossy();
        if let Some(list) = s.strip_prefix('@') {
            let text = std::fs::read_to_string(list)
                .map_err(|e| format!("{list}: cannot read list file: {e}"))?;
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                out.push(PathBuf::from(line));
            }
        } else if p.is_dir() {
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            let n = p.to_string_lossy().to_ascii_lowercase();
            if n.ends_with(".fits") || n.ends_with(".fits.fz") || n.ends_with(".fts") {
                out.push(p);
            }
        }
    }
    Ok(())
}

/// `--demo`: synthesize a 4096² level-1 RICE file, prep it, print stage times.
fn run_demo(cli: &Cli) -> Result<(), Error> {
    let dir = cli
        .out_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("aiaprep-demo"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
        file: Source::file(&dir),
        reason: format!("cannot create directory: {e}"),
    })?;
    let line = |name: &str, d: Duration| println!("  {name:<22} {:>9.1} ms", d.as_secs_f64() * 1e3);
    println!("aiaprep {} demo", aiaprep::VERSION);
    let t = Instant::now();
    let synth = aiaprep::synth::level1(&aiaprep::synth::SynthOptions::default());
    line("synthesize 4096²", t.elapsed());
    let input = dir.join("aia_demo_171_level1.fits");
    let t = Instant::now();
    fits::write(
        &synth,
        &input,
        &WriteOptions {
            compress: Compression::Rice,
            overwrite: true,
            ..WriteOptions::default()
        },
    )?;
    line("write level 1 (RICE)", t.elapsed());
    let (mut opts, engines) = build(cli)?;
    opts.write.overwrite = true;
    println!("  {}", engines.description);
    let output = pipeline::output_path(&input, &dir);
    let o = pipeline::prep_file(&input, &output, &opts, &engines)?;
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    for (name, d) in o.times.stages() {
        line(name, d);
    }
    line("prep total", o.times.total());
    println!("  input  {}", input.display());
    println!("  output {}", output.display());
    if opts.quicklook.is_some() {
        println!("  quicklook {}", output.with_extension("png").display());
    }
    Ok(())
}
