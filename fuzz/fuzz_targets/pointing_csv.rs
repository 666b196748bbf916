//! The master pointing table reader (`pointing/`: the CSV export of JSOC
//! `aia.master_pointing3h`, its times and numbers) on arbitrary text: never a panic; a
//! table it accepts answers every lookup (row of a time, entry of a channel) with a value
//! or a typed error.
#![no_main]

use aiaprep::pointing::PointingTable;
use aiaprep::time::UtcTime;
use aiaprep::Source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(table) = PointingTable::parse_csv(text, Source::memory()) else {
        return;
    };
    assert!(!table.is_empty());
    let channels = table.channels();
    for (i, row) in table.rows().iter().enumerate().take(64) {
        let _ = row;
        for &ch in channels.iter().chain([171u32, 0, 4500].iter()) {
            let _ = table.entry(i, ch);
        }
    }
    for t in [i64::MIN, -1, 0, 1_300_000_000_000_000_000, i64::MAX] {
        if let Some(r) = table.find_row(UtcTime(t)) {
            assert!(r < table.len());
        }
    }
});
