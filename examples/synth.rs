//! Write deterministic synthetic AIA level-1 files (int16, RICE_1 like JSOC's) for
//! benchmarks and trials: `cargo run --release --example synth -- --out-dir DIR [--count N]
//! [--size N] [--channel 171] [--seed S]`. File k uses seed S + k.

use std::path::PathBuf;
use std::process::ExitCode;

use aiaprep::fits::{self, Compression, WriteOptions};
use aiaprep::synth::{self, SynthOptions};
use clap::Parser;

/// Write synthetic level-1 files.
#[derive(Debug, Parser)]
struct Cli {
    /// Output directory (created if absent).
    #[arg(long)]
    out_dir: PathBuf,
    /// Number of files.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Image size N (N×N).
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Channel (WAVELNTH).
    #[arg(long, default_value_t = 171)]
    channel: u32,
    /// First seed.
    #[arg(long, default_value_t = 2011)]
    seed: u64,
    /// Write uncompressed files instead of RICE_1.
    #[arg(long)]
    uncompressed: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = std::fs::create_dir_all(&cli.out_dir) {
        eprintln!("error: {}: {e}", cli.out_dir.display());
        return ExitCode::from(2);
    }
    // Files in parallel (each image is made on one thread); names printed in order.
    use rayon::prelude::*;
    let made: Vec<Result<PathBuf, String>> = (0..cli.count)
        .into_par_iter()
        .map(|k| {
            let opts = SynthOptions {
                size: cli.size,
                channel: cli.channel,
                seed: cli.seed + k as u64,
                ..SynthOptions::default()
            };
            let map = synth::level1(&opts);
            let path = cli
                .out_dir
                .join(format!("aia_synth_{}_{:04}_level1.fits", cli.channel, k));
            let w = WriteOptions {
                compress: if cli.uncompressed {
                    Compression::None
                } else {
                    Compression::Rice
                },
                overwrite: true,
                ..WriteOptions::default()
            };
            fits::write(&map, &path, &w).map_err(|e| e.to_string())?;
            Ok(path)
        })
        .collect();
    let mut status = ExitCode::SUCCESS;
    for r in made {
        match r {
            Ok(p) => println!("{}", p.display()),
            Err(e) => {
                eprintln!("error: {e}");
                status = ExitCode::from(1);
            }
        }
    }
    status
}
