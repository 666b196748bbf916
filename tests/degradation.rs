//! The degradation correction against aiapy's own factors (fixtures made by
//! tests/parity/make_degradation_fixtures.py with aiapy 0.10.2 and the V8 response table):
//! every channel, every epoch boundary, before the first and after the last epoch, the
//! channel without rows; the time keyword; bad tables.

use std::path::{Path, PathBuf};

use aiaprep::degradation::{observation_time, CorrectionTable};
use aiaprep::time::UtcTime;
use aiaprep::{Error, Header, Source, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn v8() -> CorrectionTable {
    CorrectionTable::read(
        &root().join("tests/data/calibration/aia_V8_20171210_050627_response_table.txt"),
    )
    .unwrap()
}

#[test]
fn factors_match_aiapy_at_every_epoch_boundary() {
    let table = v8();
    let text = std::fs::read_to_string(root().join("tests/parity/fixtures/degradation_cases.txt"))
        .unwrap();
    let (mut checked, mut errors, mut refused_nonpositive) = (0, 0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ch: u32 = f[0].parse().unwrap();
        let t = UtcTime::parse(f[1]).unwrap();
        let ours = table.degradation(ch, t);
        if f[2] == "ERROR" {
            let e = ours.unwrap_err();
            assert!(matches!(e, Error::Table { .. }), "{line}: {e}");
            let msg = e.to_string();
            match f[3] {
                "no_rows" => assert!(msg.contains("no rows for channel 4500"), "{msg}"),
                _ => assert!(msg.contains("no calibration epoch"), "{msg}"),
            }
            errors += 1;
            continue;
        }
        let want: f64 = f[2].parse().unwrap();
        if want <= 0.0 {
            // aiapy returns the polynomial as it is (304 Å crosses 0 in April 2020); we
            // refuse to divide by it.
            let e = ours.unwrap_err().to_string();
            assert!(e.contains("would not be finite"), "{line}: {e}");
            refused_nonpositive += 1;
            continue;
        }
        let got = ours.unwrap_or_else(|e| panic!("{line}: {e}")).factor;
        let rel = ((got - want) / want).abs();
        assert!(
            rel <= 1e-12,
            "{line}: ours {got:e}, aiapy {want:e}, relative {rel:e}"
        );
        checked += 1;
    }
    assert!(
        checked >= 480 && errors == 37,
        "{checked} factors, {errors} errors"
    );
    assert!(refused_nonpositive >= 1);
}

#[test]
fn the_time_is_date_obs_as_aiapy() {
    let text =
        std::fs::read_to_string(root().join("tests/parity/fixtures/degradation_map.txt")).unwrap();
    let want: f64 = text
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let h = aiaprep::fits::read_header(&root().join("tests/data/aia_171_level1_128px.fits"))
        .unwrap()
        .header;
    let t = observation_time(&h, &Source::memory()).unwrap();
    assert_eq!(t, UtcTime::from_civil(2011, 2, 15, 0, 0, 0.34)); // DATE-OBS, not T_OBS (…01.34)
    let got = v8().degradation(171, t).unwrap().factor;
    assert!(((got - want) / want).abs() <= 1e-14, "{got} vs {want}");
    let mut h2 = Header::new();
    assert!(matches!(
        observation_time(&h2, &Source::memory()),
        Err(Error::MissingKeyword { .. })
    ));
    h2.set("DATE-OBS", Value::Str("2011-02-15T00:00:00".into()), None);
    h2.set("TIMESYS", Value::Str("TT".into()), None);
    assert!(matches!(
        observation_time(&h2, &Source::memory()),
        Err(Error::BadKeyword { .. })
    ));
}

#[test]
fn a_csv_export_reads_like_the_solarsoft_text() {
    let text = std::fs::read_to_string(
        root().join("tests/data/calibration/aia_V8_20171210_050627_response_table.txt"),
    )
    .unwrap();
    let mut csv = String::from("# a CSV export of aia.response\n");
    for (i, l) in text.lines().enumerate() {
        let f: Vec<String> = l
            .split_whitespace()
            .enumerate()
            .map(|(j, x)| {
                if i > 0 && j < 3 {
                    format!("\"{x}Z\"")
                } else {
                    x.to_string()
                }
            })
            .collect();
        csv.push_str(&f.join(","));
        csv.push('\n');
    }
    let c = CorrectionTable::parse(&csv, Source::file("aia_response.csv")).unwrap();
    let t = UtcTime::parse("2014-07-04T12:00:00Z").unwrap();
    for ch in [94, 131, 171, 193, 211, 304, 335, 1600, 1700] {
        let (a, b) = (
            c.degradation(ch, t).unwrap(),
            v8().degradation(ch, t).unwrap(),
        );
        assert_eq!(
            (a.factor, a.version, a.dt_days),
            (b.factor, b.version, b.dt_days)
        );
        assert_eq!(a.line, b.line + 1); // the comment line
    }
}

fn table_error(text: &str) -> String {
    let e = CorrectionTable::parse(text, Source::file(Path::new("bad.txt")))
        .and_then(|t| t.degradation(171, UtcTime::parse("2012-01-01T00:00:00").unwrap()))
        .unwrap_err();
    assert!(matches!(e, Error::Table { .. }), "{e}");
    e.to_string()
}

#[test]
fn bad_tables_are_typed_errors_with_file_line_and_column() {
    let head = "DATE T_START T_STOP VER_NUM WAVE_STR WAVELNTH EFF_AREA EFFA_P1 EFFA_P2 EFFA_P3";
    let row = |date: &str, a: &str, b: &str, ver: &str, area: &str| {
        format!("{date} {a} {b} {ver} 171_THIN 171 {area} -0.0001 0 0")
    };
    let good1 = row(
        "2017-12-10T05:04:48",
        "2010-03-24T00:00:00",
        "2011-06-01T00:00:00",
        "8",
        "2.5",
    );
    let good2 = row(
        "2017-12-10T05:04:49",
        "2011-06-01T00:00:00",
        "2030-01-01T00:00:00",
        "8",
        "2.4",
    );
    // Missing column.
    let e = table_error(
        "DATE T_START T_STOP VER_NUM WAVE_STR EFF_AREA EFFA_P1 EFFA_P2\n1 2 3 4 5 6 7 8\n",
    );
    assert!(e.contains("bad.txt") && e.contains("column EFFA_P3"), "{e}");
    // Unparsable time: line and column.
    let bad = row(
        "2017-12-10T05:04:48",
        "2010-13-45T00:00:00",
        "2011-06-01T00:00:00",
        "8",
        "2.5",
    );
    let e = table_error(&format!("{head}\n{bad}\n"));
    assert!(
        e.starts_with("bad.txt:2: correction table, column T_START"),
        "{e}"
    );
    // Unparsable number.
    let bad = row(
        "2017-12-10T05:04:48",
        "2010-03-24T00:00:00",
        "2011-06-01T00:00:00",
        "8",
        "x",
    );
    let e = table_error(&format!("{head}\n{good2}\n{bad}\n"));
    assert!(
        e.starts_with("bad.txt:3: correction table, column EFF_AREA"),
        "{e}"
    );
    // Empty epoch.
    let bad = row(
        "2017-12-10T05:04:48",
        "2011-06-01T00:00:00",
        "2011-06-01T00:00:00",
        "8",
        "2.5",
    );
    let e = table_error(&format!("{head}\n{bad}\n{good2}\n"));
    assert!(e.contains(":2:") && e.contains("empty epoch"), "{e}");
    // Overlapping epochs of one version.
    let bad = row(
        "2017-12-10T05:04:50",
        "2011-01-01T00:00:00",
        "2012-06-01T00:00:00",
        "8",
        "2.5",
    );
    let e = table_error(&format!("{head}\n{good1}\n{good2}\n{bad}\n"));
    assert!(
        e.contains(":4:") && e.contains("overlaps the one on line"),
        "{e}"
    );
    // …but another version may overlap (a JSOC export holds every version): the latest DATE wins.
    let other = row(
        "2018-01-01T00:00:00",
        "2011-01-01T00:00:00",
        "2012-06-01T00:00:00",
        "9",
        "2.0",
    );
    let t = CorrectionTable::parse(
        &format!("{head}\n{good1}\n{good2}\n{other}\n"),
        Source::memory(),
    )
    .unwrap();
    let d = t
        .degradation(171, UtcTime::parse("2012-01-01T00:00:00").unwrap())
        .unwrap();
    assert_eq!((d.version, d.line), (9, 4));
    // No rows for the channel; an empty table; a channel outside the ten.
    let e = table_error(&format!(
        "{head}\n{}\n",
        good1.replace("171_THIN", "193_THIN")
    ));
    assert!(e.contains("no rows for channel 171"), "{e}");
    assert!(CorrectionTable::parse("", Source::memory()).is_err());
    assert!(matches!(
        v8().degradation(170, UtcTime::parse("2012-01-01T00:00:00").unwrap()),
        Err(Error::InvalidOption { .. })
    ));
}
