//! The whole read of a FITS file (`fits::read_limited`: cfitsio's header and HDU parsing,
//! the crate's header parse, the resource checks, the RICE_1 fast path or cfitsio's
//! decoders) and what the pipeline derives from the header (AIA checks, geometry, T_OBS,
//! the level-1 checks and register plan) on arbitrary bytes. Never a panic and never an
//! allocation beyond the read limit (64 MiB here; libFuzzer reports larger mallocs).
#![no_main]

mod scratch;

use aiaprep::fits::{self, ReadLimits};
use aiaprep::pipeline;
use aiaprep::register::RegisterOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let path = scratch::scratch("fits_read");
    if std::fs::write(&path, input).is_err() {
        return;
    }
    let limits = ReadLimits {
        max_bytes: 64 << 20,
    };
    let _ = fits::read_header(&path);
    let _ = fits::is_complete_level15(&path);
    if let Ok(map) = fits::read_limited(&path, &limits) {
        let (nx, ny) = map.shape_xy();
        assert_eq!(map.data.len(), nx * ny);
        assert!((nx * ny * 4) as u64 <= limits.max_bytes);
        let _ = map.check_is_aia();
        let _ = map.geometry();
        let _ = map.wavelength();
        let _ = aiaprep::pointing::t_obs(&map);
        let _ = pipeline::check_level1(&map, &RegisterOptions::default());
    }
});
