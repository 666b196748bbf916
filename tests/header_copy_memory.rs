//! Reading a tile-compressed image copies its header into an in-memory cfitsio file
//! (`fits_img_decompress_header`, which turns `ZPCOUNT` into `PCOUNT`). Closing that copy
//! must not allocate the data unit its header claims: before the fix of fuzzing finding
//! 12 a forged `ZPCOUNT` made cfitsio `realloc` and zero that many bytes (4 GiB in the
//! fuzz input), past the read limit.
//!
//! One test in its own binary, so that the process's peak resident set (`VmHWM` in
//! `/proc/self/status`) measures this test alone.
#![cfg(target_os = "linux")]

mod common;

use aiaprep::{fits, Value};

/// Peak resident set of this process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[test]
fn a_forged_zpcount_is_not_allocated_when_the_header_copy_is_closed() {
    /// Bytes the old close allocated and zeroed: `ZPCOUNT` 16-bit values.
    const CLAIM: u64 = 200_000_000;
    let src = common::data("rice_int16_tiles_70x45.fits");
    let dir = std::env::temp_dir().join(format!("aiaprep-hdrcopy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let forged = dir.join("zpcount.fits");
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(
        &forged,
        common::with_card(&bytes, "ZPCOUNT", &CLAIM.to_string()),
    )
    .unwrap();

    let want = fits::read(&src).unwrap();
    let before = peak_rss();
    let header = fits::read_header(&forged).unwrap();
    let map = fits::read(&forged).unwrap();
    let grown = peak_rss().saturating_sub(before);
    std::fs::remove_dir_all(&dir).unwrap();

    // The copy is cfitsio's translation of the table header: ZPCOUNT became PCOUNT.
    assert_eq!(header.header.get("PCOUNT"), Some(&Value::Int(CLAIM as i64)));
    assert_eq!(map.data.dim(), want.data.dim());
    // Bit for bit: BLANK pixels read as NaN in both.
    assert!(map
        .data
        .iter()
        .zip(&want.data)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(
        grown < 64 << 20,
        "peak resident set grew by {} MiB reading a 70x45 image whose ZPCOUNT claims {} MiB",
        grown >> 20,
        (2 * CLAIM) >> 20
    );
}
