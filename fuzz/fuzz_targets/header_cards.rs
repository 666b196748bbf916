//! The FITS card parser (`header.rs`: `Header::parse`, `Header::parse_lines`, `Card::parse`,
//! the value-field typer) on arbitrary bytes: never a panic; every card it parses writes
//! back (`Card::record`) as 80 printable ASCII characters; a card the crate formats parses
//! back to the same key and value.
#![no_main]

use aiaprep::internals::parse_value_field;
use aiaprep::{Card, Header, Value};
use libfuzzer_sys::fuzz_target;

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

fuzz_target!(|input: &[u8]| {
    // Headers are ASCII; cfitsio hands the crate Latin-1/bytes as a Rust string lossily.
    let text = String::from_utf8_lossy(input);
    let h = Header::parse(&text);
    let _ = Header::parse_lines(&text);
    let _ = parse_value_field(&text);
    for card in h.cards() {
        // 80 printable ASCII characters, whatever was read.
        let rec = card.record();
        assert_eq!(rec.len(), 80, "{rec:?}");
        assert!(rec.bytes().all(|b| (b' '..=b'~').contains(&b)), "{rec:?}");
        // Typed access never panics.
        let _ = h.get_f64(&card.key);
        let _ = h.get_str(&card.key);
        // A card written by the crate (not kept verbatim) parses back to itself.
        let fresh = Card::new(&card.key, card.value.clone(), card.comment.as_deref());
        let again = Card::parse(&fresh.record());
        // (Commentary keys — COMMENT, HISTORY, CONTINUE, blank — never hold a value.)
        if fresh.key.len() <= 8
            && fresh.key.bytes().all(|b| b.is_ascii_graphic())
            && !matches!(fresh.key.as_str(), "COMMENT" | "HISTORY" | "CONTINUE" | "")
            && matches!(
                fresh.value,
                Value::Int(_) | Value::Bool(_) | Value::Float(_)
            )
        {
            assert_eq!(again.key, fresh.key, "{:?}", fresh.record());
            // NaN and ±∞ have no FITS literal: written as an undefined value.
            let want = match fresh.value {
                Value::Float(f) if !f.is_finite() => Value::Undefined,
                ref v => v.clone(),
            };
            assert!(
                same(&again.value, &want),
                "{:?} -> {:?} ({:?})",
                fresh.value,
                again.value,
                fresh.record()
            );
        }
    }
});
