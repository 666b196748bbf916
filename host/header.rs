//! FITS header cards: an ordered list of keyword records, typed access to values, and
//! the 80-column card format (parsing and writing).
//!
//! Cards read from a file keep their original 80-character text and are written back
//! byte for byte unless they are changed, so every level-1 keyword passes through
//! unchanged (long-string `CONTINUE` cards and `HIERARCH` cards included).

use std::fmt::Write as _;

/// The value of a header card.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A character string (quotes removed, `''` unescaped, trailing blanks removed).
    Str(String),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A logical `T`/`F`.
    Bool(bool),
    /// A value field that is present but empty (undefined value).
    Undefined,
    /// Text of a commentary card (`COMMENT`, `HISTORY`, blank keyword, or any card without `= `).
    Text(String),
    /// A value that is kept verbatim (complex numbers and other forms this module does not type).
    Raw(String),
}

impl Value {
    /// The value as a real number: integers and reals convert, anything else is `None`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
    }
    /// The value as a string slice (strings and commentary text).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// One header record.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// Keyword, upper case, without trailing blanks (empty for blank commentary cards).
    pub key: String,
    /// The value (or commentary text).
    pub value: Value,
    /// The comment after `/`, if any.
    pub comment: Option<String>,
    /// The original 80-character record, kept while the card is unchanged.
    raw: Option<String>,
}

impl Card {
    /// A new card (formatted on output).
    pub fn new(key: &str, value: Value, comment: Option<&str>) -> Card {
        Card {
            key: key.trim().to_ascii_uppercase(),
            value,
            comment: comment.map(str::to_string),
            raw: None,
        }
    }

    /// Parse one 80-character record (shorter records are blank-padded).
    pub fn parse(record: &str) -> Card {
        let rec: String = record.chars().take(80).collect();
        let key = rec
            .get(..8.min(rec.len()))
            .unwrap_or("")
            .trim_end()
            .to_string();
        let rest = rec.get(8..).unwrap_or("");
        let (value, comment) = if rest.starts_with("= ") && !is_commentary(&key) {
            parse_value_field(rest.get(2..).unwrap_or(""))
        } else {
            (Value::Text(rest.trim_end().to_string()), None)
        };
        Card {
            key,
            value,
            comment,
            raw: Some(rec),
        }
    }

    /// The 80-character record for this card: the original text if unchanged, else
    /// formatted. Always 80 printable ASCII characters (bytes): a read record that holds
    /// anything else (bytes a FITS header may not hold, read as U+FFFD or control
    /// characters) has each such character replaced by `?`.
    pub fn record(&self) -> String {
        if let Some(r) = &self.raw {
            let mut r: String = if r.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                r.clone()
            } else {
                r.chars()
                    .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
                    .collect()
            };
            r.truncate(80);
            while r.len() < 80 {
                r.push(' ');
            }
            return r;
        }
        let mut out = format!("{:<8}", self.key);
        match &self.value {
            Value::Text(t) => {
                out.push_str(t);
            }
            v => {
                out.push_str("= ");
                let field = match v {
                    Value::Str(s) => {
                        let q = format!("'{:<8}'", s.replace('\'', "''"));
                        format!("{q:<20}")
                    }
                    Value::Int(i) => format!("{i:>20}"),
                    // NaN and ±∞ have no FITS literal: an undefined value.
                    Value::Float(f) if !f.is_finite() => " ".repeat(20),
                    Value::Float(f) => format!("{:>20}", format_float(*f)),
                    Value::Bool(b) => format!("{:>20}", if *b { "T" } else { "F" }),
                    Value::Undefined => " ".repeat(20),
                    Value::Raw(r) => format!("{r:>20}"),
                    Value::Text(_) => String::new(),
                };
                out.push_str(&field);
                if let Some(c) = &self.comment {
                    let _ = write!(out, " / {c}");
                }
            }
        }
        let mut out: String = out
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        out.truncate(80);
        while out.len() < 80 {
            out.push(' ');
        }
        out
    }
}

fn is_commentary(key: &str) -> bool {
    matches!(key, "COMMENT" | "HISTORY" | "" | "CONTINUE")
}

/// Format a real for a FITS value field: always with a decimal point or an exponent,
/// round-trip exact (shortest representation). FITS has no literal for NaN or ±∞: they
/// format as the empty string, and a card holding one is written with an undefined (blank)
/// value ([`Card::record`]) — never as a number it is not.
pub fn format_float(f: f64) -> String {
    if !f.is_finite() {
        return String::new();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        let s = format!("{f:E}");
        // Rust writes `1E-20`; make the mantissa explicit for older readers: `1.0E-20`.
        if let Some((m, e)) = s.split_once('E') {
            if m.contains('.') {
                return format!("{m}E{e}");
            }
            return format!("{m}.0E{e}");
        }
        s
    } else {
        let s = format!("{f:?}");
        if s.contains('.') || s.contains('e') || s.contains('E') {
            s
        } else {
            format!("{s}.0")
        }
    }
}

/// Type the value field of a card (the text after `= `): a quoted string, `T`/`F`, an
/// integer, a real (`E` or `D` exponent), empty (undefined) or anything else kept verbatim
/// ([`Value::Raw`]); with the comment after `/`, if any. Never fails.
#[doc(hidden)]
pub fn parse_value_field(field: &str) -> (Value, Option<String>) {
    let t = field.trim_start();
    if let Some(body) = t.strip_prefix('\'') {
        // String: find the closing quote, '' is an escaped quote.
        let bytes: Vec<char> = body.chars().collect();
        let mut s = String::new();
        let mut i = 0;
        let mut closed = None;
        while i < bytes.len() {
            if bytes[i] == '\'' {
                if i + 1 < bytes.len() && bytes[i + 1] == '\'' {
                    s.push('\'');
                    i += 2;
                    continue;
                }
                closed = Some(i);
                break;
            }
            s.push(bytes[i]);
            i += 1;
        }
        let after: String = match closed {
            Some(c) => bytes[c + 1..].iter().collect(),
            None => String::new(),
        };
        let comment = after.split_once('/').map(|(_, c)| c.trim().to_string());
        return (
            Value::Str(s.trim_end().to_string()),
            comment.filter(|c| !c.is_empty()),
        );
    }
    let (v, c) = match t.split_once('/') {
        Some((v, c)) => (v.trim(), Some(c.trim().to_string())),
        None => (t.trim(), None),
    };
    let c = c.filter(|c| !c.is_empty());
    let value = if v.is_empty() {
        Value::Undefined
    } else if v == "T" {
        Value::Bool(true)
    } else if v == "F" {
        Value::Bool(false)
    } else if let Ok(i) = v.parse::<i64>() {
        Value::Int(i)
    } else if let Ok(f) = v.replace(['D', 'd'], "E").parse::<f64>() {
        Value::Float(f)
    } else {
        Value::Raw(v.to_string())
    };
    (value, c)
}

/// Keywords that describe the storage of an HDU (written by cfitsio from the data itself)
/// and are therefore never passed through from an input header.
pub fn is_structural(key: &str) -> bool {
    if matches!(
        key,
        "SIMPLE"
            | "XTENSION"
            | "BITPIX"
            | "NAXIS"
            | "EXTEND"
            | "PCOUNT"
            | "GCOUNT"
            | "BLANK"
            | "BZERO"
            | "BSCALE"
            | "CHECKSUM"
            | "DATASUM"
            | "END"
            | "TFIELDS"
            | "THEAP"
            | "EXTNAME"
            | "EXTVER"
    ) {
        return true;
    }
    let numbered = |p: &str| {
        key.strip_prefix(p)
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
    };
    if numbered("NAXIS") || numbered("TTYPE") || numbered("TFORM") || numbered("TUNIT") {
        return true;
    }
    // Tile-compression keywords (ZIMAGE, ZCMPTYPE, ZBITPIX, ZNAXISn, ZTILEn, ZNAMEn, ZVALn,
    // ZQUANTIZ, ZDITHER0, ZSIMPLE, ZEXTEND, ZBLANK, ZHECKSUM, ZDATASUM, ZTENSION, ...).
    matches!(
        key,
        "ZIMAGE"
            | "ZCMPTYPE"
            | "ZBITPIX"
            | "ZNAXIS"
            | "ZQUANTIZ"
            | "ZDITHER0"
            | "ZSIMPLE"
            | "ZEXTEND"
            | "ZBLANK"
            | "ZHECKSUM"
            | "ZDATASUM"
            | "ZTENSION"
            | "ZPCOUNT"
            | "ZGCOUNT"
            | "ZSCALE"
            | "ZZERO"
    ) || numbered("ZNAXIS")
        || numbered("ZTILE")
        || numbered("ZNAME")
        || numbered("ZVAL")
}

/// `text` cut into records of 80 characters (the last may be shorter), without copying.
fn records_of(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.char_indices().nth(80).map_or(rest.len(), |(i, _)| i);
        let (rec, tail) = rest.split_at(end);
        rest = tail;
        Some(rec)
    })
}

/// An ordered FITS header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    cards: Vec<Card>,
}

impl Header {
    /// An empty header.
    pub fn new() -> Header {
        Header::default()
    }

    /// Parse a run of 80-character records (as produced by cfitsio's header-to-string
    /// conversion). Stops at `END`.
    pub fn parse(records: &str) -> Header {
        let mut cards = Vec::new();
        for rec in records_of(records) {
            let card = Card::parse(rec);
            if card.key == "END" {
                break;
            }
            if card.key.is_empty() && matches!(&card.value, Value::Text(t) if t.trim().is_empty()) {
                continue; // blank padding records
            }
            cards.push(card);
        }
        Header { cards }
    }

    /// Parse a text dump with one card per line (as `astropy`'s `Header.tostring(sep="\n")`
    /// or the `*.header.txt` files): each line is cut or blank-padded to 80 columns.
    pub fn parse_lines(text: &str) -> Header {
        Header::parse(
            &text
                .lines()
                .map(|l| format!("{l:<80.80}"))
                .collect::<String>(),
        )
    }

    /// All cards in order.
    pub fn cards(&self) -> &[Card] {
        &self.cards
    }

    /// The first card with this keyword (case-insensitive).
    pub fn card(&self, key: &str) -> Option<&Card> {
        let k = key.to_ascii_uppercase();
        self.cards.iter().find(|c| c.key == k)
    }

    /// The value of the first card with this keyword.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.card(key).map(|c| &c.value)
    }

    /// The value as a real number, if present and numeric.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// The value as a string, if present and a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// True when the keyword is present.
    pub fn contains(&self, key: &str) -> bool {
        self.card(key).is_some()
    }

    /// Set a keyword: replaces the value (and comment, if given) of the first card with
    /// this keyword, or appends a new card at the end.
    pub fn set(&mut self, key: &str, value: Value, comment: Option<&str>) {
        let k = key.to_ascii_uppercase();
        if let Some(c) = self.cards.iter_mut().find(|c| c.key == k) {
            c.value = value;
            if let Some(cm) = comment {
                c.comment = Some(cm.to_string());
            }
            c.raw = None;
        } else {
            self.cards.push(Card::new(&k, value, comment));
        }
    }

    /// Set a real-valued keyword.
    pub fn set_f64(&mut self, key: &str, v: f64, comment: Option<&str>) {
        self.set(key, Value::Float(v), comment);
    }

    /// Remove every card with this keyword; returns how many were removed.
    pub fn remove(&mut self, key: &str) -> usize {
        let k = key.to_ascii_uppercase();
        let before = self.cards.len();
        self.cards.retain(|c| c.key != k);
        before - self.cards.len()
    }

    /// Append a HISTORY card (long text is split over several cards).
    pub fn push_history(&mut self, text: &str) {
        self.push_commentary("HISTORY", text);
    }

    /// Append a COMMENT card (long text is split over several cards).
    pub fn push_comment(&mut self, text: &str) {
        self.push_commentary("COMMENT", text);
    }

    fn push_commentary(&mut self, key: &str, text: &str) {
        let text: String = text
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        if text.is_empty() {
            self.cards
                .push(Card::new(key, Value::Text(String::new()), None));
            return;
        }
        let chunks: Vec<char> = text.chars().collect();
        for ch in chunks.chunks(72) {
            let s: String = ch.iter().collect();
            self.cards.push(Card::new(key, Value::Text(s), None));
        }
    }

    /// Append a card at the end.
    pub fn push(&mut self, card: Card) {
        self.cards.push(card);
    }

    /// The cards to write after the structural keywords of a new HDU: everything except
    /// [`is_structural`] keywords and the FITS standard's two `COMMENT` lines
    /// ([`is_standard_comment`]: cfitsio writes its own copy in every file's primary
    /// header), as 80-character records.
    pub fn passthrough_records(&self) -> Vec<String> {
        self.cards
            .iter()
            .filter(|c| !is_structural(&c.key) && !is_standard_comment(c))
            .map(Card::record)
            .collect()
    }
}

/// The two `COMMENT` lines that cite the FITS standard, as cfitsio (indented by two
/// blanks) and astropy (not indented) write them.
const STANDARD_COMMENTS: [&str; 2] = [
    "FITS (Flexible Image Transport System) format is defined in 'Astronomy",
    "and Astrophysics', volume 376, page 359; bibcode: 2001A&A...376..359H",
];

/// Whether `card` is one of the FITS standard's two `COMMENT` lines, however indented.
/// They belong to the file layout, like the structural keywords: the writer leaves the
/// input's copies out, since cfitsio writes its own in the primary header of every file
/// (before, an input written by astropy, whose copies lack cfitsio's indent, came out with
/// both forms).
pub fn is_standard_comment(card: &Card) -> bool {
    card.key == "COMMENT"
        && matches!(&card.value, Value::Text(t) if STANDARD_COMMENTS.contains(&t.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `records_of` cuts as collecting the characters and chunking them by 80 does (the
    /// naive way it replaces), on 2000 seeded texts of ASCII, multi-byte characters (as a
    /// lossy read of a header's bytes gives) and lengths around multiples of 80.
    #[test]
    fn records_are_cut_every_80_characters() {
        let alphabet = ['A', ' ', '=', '\'', 'é', '\u{FFFD}', '\0', '𝄞'];
        let mut draws = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            draws += 1;
            (crate::synth::splitmix(draws) % n as u64) as usize
        };
        for _ in 0..2000 {
            let len = 80 * next(4) + next(3) * 79 / 2;
            let ascii = next(2) == 0;
            let text: String = (0..len)
                .map(|_| alphabet[next(if ascii { 4 } else { alphabet.len() })])
                .collect();
            let naive: Vec<String> = text
                .chars()
                .collect::<Vec<_>>()
                .chunks(80)
                .map(|c| c.iter().collect())
                .collect();
            let ours: Vec<&str> = records_of(&text).collect();
            assert_eq!(ours, naive, "{text:?}");
        }
    }

    #[test]
    fn parses_typed_values_and_comments() {
        let h = Header::parse(&format!(
            "{:<80}{:<80}{:<80}{:<80}{:<80}{:<80}",
            "CDELT1  =             0.599489 / [arcsec/pixel] image scale",
            "T_OBS   = '2011-02-15T00:00:00.34Z' / [UTC]",
            "WAVELNTH=                  171",
            "ORIGIN  = 'It''s SDO'",
            "HISTORY some text / not a comment",
            "END"
        ));
        assert_eq!(h.get_f64("cdelt1"), Some(0.599489));
        assert_eq!(
            h.card("CDELT1").and_then(|c| c.comment.as_deref()),
            Some("[arcsec/pixel] image scale")
        );
        assert_eq!(h.get_str("T_OBS"), Some("2011-02-15T00:00:00.34Z"));
        assert_eq!(h.get("WAVELNTH"), Some(&Value::Int(171)));
        assert_eq!(h.get_str("ORIGIN"), Some("It's SDO"));
        assert_eq!(
            h.get("HISTORY"),
            Some(&Value::Text("some text / not a comment".into()))
        );
        assert_eq!(h.cards().len(), 5);
    }

    #[test]
    fn unchanged_cards_round_trip_byte_for_byte() {
        let rec = format!(
            "{:<80}",
            "CRPIX1  =    2053.22998046875 / [pixel] x Sun centre"
        );
        let c = Card::parse(&rec);
        assert_eq!(c.record(), rec);
    }

    /// A non-finite real (found by the `header_cards` fuzz target: `1e999` reads as +∞,
    /// which was written back as `0.0`) is written as an undefined value, never as a number.
    #[test]
    fn non_finite_reals_are_written_undefined() {
        for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let c = Card::new("CRPIX1", Value::Float(v), Some("c"));
            let back = Card::parse(&c.record());
            assert_eq!(back.value, Value::Undefined, "{v}: {:?}", c.record());
        }
        let h = Header::parse(&format!("{:<80}", "CRPIX1  =                1e999"));
        assert_eq!(h.get("CRPIX1"), Some(&Value::Float(f64::INFINITY)));
        // Read and unchanged: written as it was read.
        assert!(h.cards()[0].record().contains("1e999"));
    }

    /// A read record with bytes a header may not hold (found by the `header_cards` fuzz
    /// target: U+FFFD from undecodable bytes, NUL) is written as 80 ASCII characters, each
    /// such character replaced by `?`.
    #[test]
    fn unprintable_read_records_are_written_as_80_ascii_characters() {
        let h = Header::parse("\u{fffd}1p\0\0\0\0\0\u{fffd}J\u{fffd}\0\0\0\0\0");
        let rec = h.cards()[0].record();
        assert_eq!(rec.len(), 80);
        assert_eq!(rec.chars().count(), 80);
        assert!(
            rec.starts_with("?1p?????") && rec.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "{rec:?}"
        );
        let long = format!("COMMENT {}", "\u{e9}".repeat(80));
        let rec = Card::parse(&long).record();
        assert_eq!((rec.len(), rec.chars().count()), (80, 80));
        assert_eq!(&rec[8..], "?".repeat(72));
    }

    #[test]
    fn formatted_cards_parse_back() {
        for v in [0.6, 2048.5, -0.13, 1.0e-20, 6.96e8, 1.5e15, 0.0, -3.0e-5] {
            let c = Card::new("X", Value::Float(v), Some("c"));
            let r = c.record();
            assert_eq!(r.len(), 80);
            assert_eq!(Card::parse(&r).value, Value::Float(v), "{r}");
        }
        let c = Card::new("S", Value::Str("a'b".into()), None);
        assert_eq!(Card::parse(&c.record()).value, Value::Str("a'b".into()));
        let c = Card::new("I", Value::Int(-32768), None);
        assert_eq!(Card::parse(&c.record()).value, Value::Int(-32768));
    }

    #[test]
    fn set_replaces_and_remove_removes() {
        let mut h = Header::new();
        h.set_f64("CDELT1", 0.599, None);
        h.set_f64("cdelt1", 0.6, Some("new"));
        assert_eq!(h.cards().len(), 1);
        assert_eq!(h.get_f64("CDELT1"), Some(0.6));
        h.push_history(&"x".repeat(100));
        assert_eq!(h.cards().len(), 3);
        assert_eq!(h.remove("HISTORY"), 2);
    }

    #[test]
    fn structural_keys_are_not_passed_through() {
        assert!(is_structural("NAXIS1"));
        assert!(is_structural("ZTILE2"));
        assert!(is_structural("BLANK"));
        assert!(!is_structural("NAXISX"));
        assert!(!is_structural("CRPIX1"));
        assert!(!is_structural("ZNAXISFOO"));
    }
}
