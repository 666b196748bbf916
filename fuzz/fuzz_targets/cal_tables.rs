//! The calibration table readers (`caltable.rs` and its users: the degradation correction
//! table, SolarSoft `aia_V*_response_table.txt` or a JSOC `aia.response` CSV, and the
//! error table `aia_V*_error_table.txt`) on arbitrary text: never a panic; an accepted
//! table answers every channel and time with a value or a typed error.
#![no_main]

use aiaprep::degradation::CorrectionTable;
use aiaprep::time::UtcTime;
use aiaprep::uncertainty::ErrorTable;
use aiaprep::Source;
use libfuzzer_sys::fuzz_target;

const CHANNELS: [u32; 11] = [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500, 7];

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Ok(t) = CorrectionTable::parse(text, Source::memory()) {
        let _ = t.name();
        for ch in CHANNELS {
            for when in [0i64, 1_300_000_000_000_000_000, 1_800_000_000_000_000_000] {
                if let Ok(d) = t.degradation(ch, UtcTime(when)) {
                    let _ = d.factor;
                }
            }
        }
    }
    if let Ok(t) = ErrorTable::parse(text, Source::memory()) {
        let _ = (t.name(), t.version());
        for ch in CHANNELS {
            let _ = t.channel(ch);
        }
    }
});
