//! The PSF file reader (`fits::read_psf`: any 2-D FITS image as f64, then the PSF checks)
//! on arbitrary bytes: never a panic; a PSF it accepts is non-empty, finite, non-negative
//! with a positive sum.
#![no_main]

mod scratch;

use aiaprep::fits::{self, ReadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let path = scratch::scratch("psf_file");
    if std::fs::write(&path, input).is_err() {
        return;
    }
    let limits = ReadLimits {
        max_bytes: 64 << 20,
    };
    if let Ok(psf) = fits::read_psf(&path, &limits) {
        assert!(!psf.is_empty());
        assert!(psf.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!(psf.sum() > 0.0);
    }
});
