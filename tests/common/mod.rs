//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod npy;

use std::path::PathBuf;

/// The repository: `AIAPREP_SOURCE_DIR` when set (test binaries run elsewhere, as
/// `scripts/gpu-check.sh run` does on a GPU machine), else where they were built.
pub fn source_dir() -> PathBuf {
    std::env::var_os("AIAPREP_SOURCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `tests/data/NAME` (tests never read ../shared).
pub fn data(name: &str) -> PathBuf {
    source_dir().join("tests").join("data").join(name)
}

/// target/<profile>/examples/prep, next to the running test's deps/ folder (`cargo test`
/// builds the examples; with `--test NAME` alone it does not: `cargo build --example prep`).
pub fn prep_exe() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let p = dir.join("examples").join("prep");
    assert!(p.exists(), "{} not built", p.display());
    p
}

/// A `prep` command with no Slurm or MPI variables (they would shard the inputs).
pub fn prep_command() -> std::process::Command {
    let mut c = std::process::Command::new(prep_exe());
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_PROCID",
        "SLURM_NTASKS",
        "OMPI_COMM_WORLD_RANK",
        "PMI_RANK",
    ] {
        c.env_remove(k);
    }
    c
}

/// `tests/parity/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    source_dir()
        .join("tests")
        .join("parity")
        .join("fixtures")
        .join(name)
}

/// `n` synthetic level-1 files `aia_00.fits`, `aia_01.fits`, ... (`size`², RICE_1, seeds
/// `seed0 + k`, `n_missing` missing pixels each) written to `dir/in`; returns their paths.
pub fn synth_inputs(
    dir: &std::path::Path,
    n: usize,
    size: usize,
    seed0: u64,
    n_missing: usize,
) -> Vec<PathBuf> {
    use aiaprep::fits::{self, Compression, WriteOptions};
    use aiaprep::synth::{self, SynthOptions};
    let d = dir.join("in");
    std::fs::create_dir_all(&d).unwrap();
    (0..n)
        .map(|k| {
            let m = synth::level1(&SynthOptions {
                size,
                seed: seed0 + k as u64,
                n_missing,
                ..SynthOptions::default()
            });
            let p = d.join(format!("aia_{k:02}.fits"));
            let w = WriteOptions {
                compress: Compression::Rice,
                ..WriteOptions::default()
            };
            fits::write(&m, &p, &w).unwrap();
            p
        })
        .collect()
}

/// The text of a header's HISTORY cards, joined (long texts continue on the next card).
pub fn history(h: &aiaprep::Header) -> String {
    h.cards()
        .iter()
        .filter(|c| c.key == "HISTORY")
        .filter_map(|c| c.value.as_str())
        .collect::<Vec<_>>()
        .concat()
}

/// `bytes` (a FITS file) with the value of card `key` (in any HDU) replaced by `value`
/// (right-aligned in columns 11–30, as fixed-format integers are).
pub fn with_card(bytes: &[u8], key: &str, value: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let name = format!("{key:<8}= ");
    let mut hits = 0;
    for rec in out.chunks_exact_mut(80) {
        if rec.starts_with(name.as_bytes()) {
            let field = format!("{value:>20}");
            assert!(field.len() <= 70);
            rec[10..10 + field.len()].copy_from_slice(field.as_bytes());
            // Blank the rest of the value field (a comment after '/' is dropped).
            for b in &mut rec[10 + field.len()..] {
                *b = b' ';
            }
            hits += 1;
        }
    }
    assert_eq!(hits, 1, "{key} found {hits} times");
    out
}
