//! The time parser (`time.rs`: ISO 8601 and JSOC forms, UTC and TAI) on arbitrary text:
//! never a panic; a time it accepts prints (ISO 8601, UTC) as text that parses back to the
//! same instant; leap-second and Unix conversions stay finite.
#![no_main]

use aiaprep::time::{tai_minus_utc, UtcTime};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Ok(t) = UtcTime::parse(text) {
        let shown = t.to_string();
        let back = UtcTime::parse(&shown).unwrap_or_else(|e| panic!("{text:?} -> {shown:?}: {e}"));
        assert_eq!(back, t, "{text:?} -> {shown:?}");
        assert!(t.unix_seconds().is_finite());
        let _ = tai_minus_utc(t);
    }
});
