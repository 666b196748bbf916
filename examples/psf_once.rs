//! Compute one model PSF and report its time; optionally save it as `.npy` (f64, for the
//! aiapy comparison script) and/or float32 FITS (for `prep --psf`).
//!
//! `cargo run --release --example psf_once -- --channel 171 [--size 4096] [--npy F] [--fits F]`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use aiaprep::psf::{self, PsfOptions};
use clap::Parser;

/// Compute one PSF.
#[derive(Debug, Parser)]
struct Cli {
    /// Channel, Å (94, 131, 171, 193, 211, 304, 335).
    #[arg(long, default_value_t = 171)]
    channel: u32,
    /// Grid size N.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Pre-flight core widths.
    #[arg(long)]
    preflight: bool,
    /// Save as NumPy .npy (f64, C order).
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Save as float32 FITS.
    #[arg(long)]
    fits: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = PsfOptions {
        size: cli.size,
        preflight_core: cli.preflight,
        ..PsfOptions::default()
    };
    let t = Instant::now();
    let p = match aiaprep::cpu::psf::psf(cli.channel, &opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!("psf_seconds={:.4}", t.elapsed().as_secs_f64());
    if let Some(path) = &cli.npy {
        let (ny, nx) = p.dim();
        let mut head =
            format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({ny}, {nx}), }}");
        while (10 + head.len() + 1) % 64 != 0 {
            head.push(' ');
        }
        head.push('\n');
        let mut bytes = Vec::with_capacity(10 + head.len() + 8 * p.len());
        bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
        bytes.extend_from_slice(&(head.len() as u16).to_le_bytes());
        bytes.extend_from_slice(head.as_bytes());
        for v in p.iter() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        if let Err(e) = std::fs::File::create(path).and_then(|mut f| f.write_all(&bytes)) {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    if let Some(path) = &cli.fits {
        let h = psf::psf_header(cli.channel, &opts);
        let d = p.mapv(|v| v as f32);
        if let Err(e) = aiaprep::fits::write_image_f32(path, d.view(), &h, true) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
