//! The images/s a batch reaches when its compute stage is as fast as a GPU's — the decode /
//! encode ceiling that a GPU batch runs into — measured on this machine's cores, with no
//! GPU:
//!
//! `cargo run --release --example batch_ceiling -- DIR --out-dir OUT [--device-ms 3]
//! [--streams 2] [--jobs N] [--queue-depth 2] [--uncompressed]`
//!
//! It runs the real batch ([`aiaprep::batch::run`]: read + decode + check, compute, encode +
//! write, overlapped, with the same thread counts as `prep`) over the `*.fits` files of DIR,
//! with a stand-in compute engine that does on the host what the GPU engine does there:
//! per call it borrows one of `--streams` lanes, copies the image into the lane's staging
//! buffer (the pinned upload), waits `--device-ms` milliseconds without using a core (the
//! device working, with the host thread asleep in a blocking synchronisation), and copies
//! the pixels back into a new map (the download, into a recycled buffer as the engine's).
//! The outputs are NOT registered (the stand-in returns the input's pixels); they are
//! encoded and written like real outputs so that the encode stage costs what it costs,
//! into OUT, which is emptied of earlier outputs first.
//!
//! `--device-ms`: what one image costs a GPU stream. The expected H200 figures in
//! BENCHMARKS.md are ≈ 3 ms for register with transfers and ≈ 25 ms with 25
//! Richardson–Lucy iterations first. It prints the summary and the occupancy line of the
//! batch (the same as `prep`'s), whose bottleneck is the stage a GPU node would be bound by
//! if the device took that long.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aiaprep::batch::{self, BatchOptions, NoProgress, Status};
use aiaprep::deconvolve::DeconvolveOptions;
use aiaprep::engine::{Engine, Engines};
use aiaprep::fits::{Compression, WriteOptions};
use aiaprep::lanes::LanePool;
use aiaprep::map::MapView;
use aiaprep::pipeline::PrepOptions;
use aiaprep::register::RegisterOptions;
use aiaprep::AiaMap;
use clap::Parser;
use ndarray::Array2;

/// Measure the decode/encode ceiling of a batch with a GPU-fast stand-in compute stage.
#[derive(Debug, Parser)]
struct Cli {
    /// Directory of level-1 `*.fits` files (e.g. from the `synth` example).
    input: PathBuf,
    /// Output directory (created; earlier `*.fits` outputs in it are removed first).
    #[arg(long)]
    out_dir: PathBuf,
    /// Milliseconds of device time per image (slept, on a lane).
    #[arg(long, default_value_t = 3.0)]
    device_ms: f64,
    /// Lanes (CUDA streams) of the stand-in engine.
    #[arg(long, default_value_t = 2)]
    streams: usize,
    /// Threads of the decode and of the encode stage (default: the cores), as `prep --jobs`.
    #[arg(long)]
    jobs: Option<usize>,
    /// Images waiting between two stages, as `prep --queue-depth`.
    #[arg(long, default_value_t = 2)]
    queue_depth: usize,
    /// Write uncompressed outputs instead of RICE_1.
    #[arg(long)]
    uncompressed: bool,
}

/// The stand-in GPU engine: host copies in and out, a sleep for the device.
struct StandIn {
    device_time: Duration,
    /// One staging buffer per lane (the pinned buffers of the GPU engine).
    lanes: LanePool<Mutex<Vec<f32>>>,
}

impl StandIn {
    fn new(device_time: Duration, streams: usize) -> StandIn {
        let rest = (1..streams).map(|_| Mutex::new(Vec::new())).collect();
        StandIn {
            device_time,
            lanes: LanePool::new(Mutex::new(Vec::new()), rest),
        }
    }

    fn pass(&self, map: MapView<'_>) -> aiaprep::Result<AiaMap> {
        let lane = self.lanes.acquire();
        let mut staging = match lane.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        staging.clear();
        staging.extend(map.data.iter().copied());
        std::thread::sleep(self.device_time);
        // The download: into a recycled buffer, as the GPU engine's.
        let mut out = aiaprep::buffers::take_f32(staging.len());
        out.copy_from_slice(&staging);
        let data =
            Array2::from_shape_vec(map.data.dim(), out).map_err(|e| aiaprep::Error::Gpu {
                file: map.source.clone(),
                reason: format!("stand-in download: {e}"),
            })?;
        Ok(AiaMap {
            data,
            header: map.header.clone(),
            source: map.source.clone(),
        })
    }
}

impl Engine for StandIn {
    fn name(&self) -> String {
        format!(
            "stand-in GPU ({:.1} ms per image, {} streams)",
            self.device_time.as_secs_f64() * 1e3,
            self.lanes.len()
        )
    }
    fn deconvolve(&self, map: MapView<'_>, _: &DeconvolveOptions) -> aiaprep::Result<AiaMap> {
        self.pass(map)
    }
    fn register_planned(
        &self,
        map: MapView<'_>,
        _: &aiaprep::register::Plan,
        _: &RegisterOptions,
    ) -> aiaprep::Result<AiaMap> {
        self.pass(map)
    }
    fn concurrency(&self) -> usize {
        self.lanes.len()
    }
    fn device_busy(&self) -> Option<(Duration, usize)> {
        Some((self.lanes.busy(), self.lanes.len()))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let device_ok = cli.device_ms.is_finite() && cli.device_ms >= 0.0;
    if !device_ok || !(1..=16).contains(&cli.streams) {
        eprintln!("error: --device-ms must be ≥ 0 and --streams in 1..=16");
        return ExitCode::from(2);
    }
    let mut inputs: Vec<PathBuf> = match std::fs::read_dir(&cli.input) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "fits"))
            .collect(),
        Err(e) => {
            eprintln!("error: {}: {e}", cli.input.display());
            return ExitCode::from(2);
        }
    };
    inputs.sort();
    if inputs.is_empty() {
        eprintln!("error: {}: no *.fits files", cli.input.display());
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&cli.out_dir) {
        eprintln!("error: {}: {e}", cli.out_dir.display());
        return ExitCode::from(2);
    }
    for p in &inputs {
        // A complete earlier output would be skipped, and the batch would measure nothing.
        let _ = std::fs::remove_file(aiaprep::pipeline::output_path(p, &cli.out_dir));
    }
    let engine: std::sync::Arc<dyn Engine> = std::sync::Arc::new(StandIn::new(
        Duration::from_secs_f64(cli.device_ms / 1e3),
        cli.streams,
    ));
    let engines = Engines {
        deconvolve: engine.clone(),
        register: engine.clone(),
        description: engine.name(),
    };
    let opts = PrepOptions {
        write: WriteOptions {
            compress: if cli.uncompressed {
                Compression::None
            } else {
                Compression::Rice
            },
            ..WriteOptions::default()
        },
        ..PrepOptions::default()
    };
    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let bopts = BatchOptions {
        decode_threads: jobs.clamp(1, 8),
        encode_threads: jobs.clamp(1, 8),
        compute_workers: None,
        queue_depth: cli.queue_depth.max(1),
    };
    eprintln!(
        "{}; {} inputs; decode {} / encode {} threads",
        engines.description,
        inputs.len(),
        bopts.decode_threads,
        bopts.encode_threads
    );
    let t = Instant::now();
    let summary = batch::run(
        &inputs,
        &cli.out_dir,
        &opts,
        &engines,
        &bopts,
        &NoProgress,
        &AtomicBool::new(false),
    );
    println!(
        "{} done, {} failed in {:.2} s ({:.2} images/s)",
        summary.count(Status::Done),
        summary.count(Status::Failed),
        t.elapsed().as_secs_f64(),
        summary.images_per_second()
    );
    if let Some(line) = summary.mean_stage_line() {
        println!("{line}");
    }
    println!("{}", summary.occupancy_line());
    if summary.count(Status::Failed) > 0 {
        for r in summary
            .records
            .iter()
            .filter(|r| r.status == Status::Failed)
        {
            eprintln!(
                "failed: {}: {}",
                r.input.display(),
                r.error.as_deref().unwrap_or("")
            );
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
