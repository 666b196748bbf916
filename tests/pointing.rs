//! Pointing update from the master pointing table: table parsing, time scales, row choice,
//! keyword updates (hand-computed and aiapy oracle), warnings and typed errors.

mod common;

use std::collections::BTreeMap;

use aiaprep::pointing::{tai_minus_utc, update_pointing, PointingTable, UtcTime};
use aiaprep::{AiaMap, Error, Header, Source, Value};
use ndarray::Array2;

// ------------------------------------------------------------------------------------
// helpers

fn utc_table() -> PointingTable {
    PointingTable::read_csv(&common::data("pointing_table_small.csv")).unwrap()
}

fn tai_table() -> PointingTable {
    PointingTable::read_csv(&common::data("pointing_table_small_tai.csv")).unwrap()
}

/// The real level-1 header of the 128² test map (CRPIX 64.5, CDELT 19.18″, X0_MP
/// 2055.060059, Y0_MP 2042.719971, SAT_ROT 8.6e-5, INST_ROT 0.019327, T_OBS
/// 2011-02-15T00:00:01.34Z).
fn level1_header() -> Header {
    // One 80-column card per line.
    let text = std::fs::read_to_string(common::data("aia_171_level1_128px.header.txt")).unwrap();
    Header::parse_lines(&text)
}

/// A map with a non-trivial (seeded) 8×8 image: the update must not touch pixels.
fn map_with(h: Header) -> AiaMap {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let data = Array2::from_shape_fn((8, 8), |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 10_000) as f32 * 0.37 + 1.0
    });
    AiaMap::new(data, h, Source::file("aia_171_test.fits"))
}

fn level1_map() -> AiaMap {
    map_with(level1_header())
}

fn with_t_obs(mut m: AiaMap, t: &str) -> AiaMap {
    m.header.set("T_OBS", Value::Str(t.into()), None);
    m
}

fn f(h: &Header, k: &str) -> f64 {
    h.get_f64(k).unwrap_or_else(|| panic!("no {k}"))
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (diff {})", a - b);
}

// Old values from the real header.
const CRPIX_OLD: f64 = 64.5;
const X0_MP_OLD: f64 = 2055.060059;
const Y0_MP_OLD: f64 = 2042.719971;
const SAT_ROT: f64 = 8.6e-5;
const CROTA2_OLD: f64 = 0.019413;
const CDELT_OLD: f64 = 19.183648;

// ------------------------------------------------------------------------------------
// the update on the real 128² header (relative CRPIX update, aiapy HEAD semantics)

#[test]
fn update_on_real_header_gives_hand_computed_keywords() {
    let m = level1_map();
    let up = update_pointing(&m, &utc_table()).unwrap();
    let h = &up.map.header;
    assert_eq!(up.row, 2);
    // Row 2 of the table: A_171_X0 2055.310059, Y0 2042.469971, IMSCALE 0.599456, INSTROT 0.019412.
    close(f(h, "CRPIX1"), 64.75, 1e-9, "CRPIX1"); // 64.5 + (2055.310059 − 2055.060059)
    close(f(h, "CRPIX2"), 64.25, 1e-9, "CRPIX2"); // 64.5 + (2042.469971 − 2042.719971)
    assert_eq!(f(h, "CDELT1"), 0.599456);
    assert_eq!(f(h, "CDELT2"), 0.599456);
    close(f(h, "CROTA2"), 0.019498, 1e-12, "CROTA2"); // 0.019412 + 8.6e-5
    assert_eq!(f(h, "X0_MP"), 2055.310059);
    assert_eq!(f(h, "Y0_MP"), 2042.469971);
    assert_eq!(f(h, "INST_ROT"), 0.019412);
    assert_eq!(f(h, "IMSCL_MP"), 0.599456);
    // Untouched keywords and pixels.
    assert_eq!(f(h, "CRVAL1"), f(&m.header, "CRVAL1"));
    assert_eq!(f(h, "SAT_ROT"), SAT_ROT);
    assert_eq!(up.map.data, m.data);
    assert_eq!(h.get_str("MPO_REC"), m.header.get_str("MPO_REC"));
    // Provenance keywords.
    assert_eq!(h.get("PNTUPD"), Some(&Value::Bool(true)));
    assert_eq!(h.get("PNTROW"), Some(&Value::Int(2)));
    assert_eq!(h.get_str("PNTTAB"), Some("pointing_table_small.csv"));
    assert_eq!(h.get_str("PNTSTART"), Some("2011-02-15T00:00:00Z"));
    assert_eq!(h.get_str("PNTSTOP"), Some("2011-02-15T03:00:00Z"));
    let hist = common::history(h);
    assert!(
        hist.contains("update_pointing: table pointing_table_small.csv row 2 (line 6)")
            && hist.contains("T_START 2011-02-15T00:00:00Z T_STOP 2011-02-15T03:00:00Z")
            && hist.contains(aiaprep::VERSION),
        "{hist}"
    );
    // The only warnings: the 128² map has 19.18″ pixels, far from 0.6″.
    assert_eq!(up.warnings.len(), 2, "{:?}", up.warnings);
    assert!(up.warnings[0].contains("CDELT1") && up.warnings[1].contains("CDELT2"));
    // The geometry the register stage will read.
    let g = up.map.geometry().unwrap();
    let t = 0.019498f64.to_radians();
    close(g.rotation[0][0], t.cos(), 1e-12, "R00");
    close(g.rotation[1][0], t.sin(), 1e-12, "R10");
    assert_eq!(g.cdelt, [0.599456, 0.599456]);
}

#[test]
fn no_plate_scale_warning_for_full_resolution_headers() {
    let mut h = level1_header();
    h.set_f64("CDELT1", 0.599489, None);
    h.set_f64("CDELT2", 0.599489, None);
    let up = update_pointing(&map_with(h), &utc_table()).unwrap();
    assert!(up.warnings.is_empty(), "{:?}", up.warnings);
    // 0.6 · 0.99 = 0.594 is just outside.
    let mut h = level1_header();
    h.set_f64("CDELT1", 0.5939, None);
    h.set_f64("CDELT2", 0.599489, None);
    let up = update_pointing(&map_with(h), &utc_table()).unwrap();
    assert_eq!(up.warnings.len(), 1, "{:?}", up.warnings);
    assert!(up.warnings[0].contains("CDELT1"));
}

#[test]
fn pc_and_cd_matrices_are_removed() {
    let mut h = level1_header();
    for (k, v) in [
        ("PC1_1", 1.0),
        ("PC1_2", -3.4e-4),
        ("PC2_1", 3.4e-4),
        ("PC2_2", 1.0),
        ("CD1_1", 19.0),
        ("CD2_2", 19.0),
    ] {
        h.set_f64(k, v, None);
    }
    let up = update_pointing(&map_with(h), &utc_table()).unwrap();
    for k in [
        "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CD1_1", "CD1_2", "CD2_1", "CD2_2",
    ] {
        assert!(!up.map.header.contains(k), "{k} kept");
    }
    let g = up.map.geometry().unwrap();
    close(
        g.rotation[1][0],
        0.019498f64.to_radians().sin(),
        1e-12,
        "rotation from CROTA2",
    );
}

#[test]
fn applying_twice_changes_nothing_more() {
    let once = update_pointing(&level1_map(), &utc_table()).unwrap().map;
    let twice = update_pointing(&once, &utc_table()).unwrap().map;
    for k in [
        "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CROTA2", "X0_MP", "Y0_MP",
    ] {
        assert_eq!(f(&once.header, k), f(&twice.header, k), "{k}");
    }
}

#[test]
fn cutout_then_update_equals_update_then_cutout() {
    // A cut-out whose lower-left pixel is (500, 1000) of the full frame has CRPIX lower by
    // that much; the relative update must move both by the same amount (aiapy's submap test).
    let mut full = level1_header();
    full.set_f64("CDELT1", 0.599489, None);
    full.set_f64("CDELT2", 0.599489, None);
    full.set_f64("CRPIX1", X0_MP_OLD + 1.0, None);
    full.set_f64("CRPIX2", Y0_MP_OLD + 1.0, None);
    let mut cut = full.clone();
    cut.set_f64("CRPIX1", X0_MP_OLD + 1.0 - 500.0, None);
    cut.set_f64("CRPIX2", Y0_MP_OLD + 1.0 - 1000.0, None);
    let a = update_pointing(&map_with(full), &utc_table()).unwrap().map;
    let b = update_pointing(&map_with(cut), &utc_table()).unwrap().map;
    close(
        f(&a.header, "CRPIX1") - 500.0,
        f(&b.header, "CRPIX1"),
        1e-9,
        "CRPIX1",
    );
    close(
        f(&a.header, "CRPIX2") - 1000.0,
        f(&b.header, "CRPIX2"),
        1e-9,
        "CRPIX2",
    );
    // Full frame: CRPIX = X0 + 1 (what aiapy 0.6–0.10 set absolutely).
    close(
        f(&a.header, "CRPIX1"),
        2055.310059 + 1.0,
        1e-9,
        "abs CRPIX1",
    );
    close(
        f(&a.header, "CRPIX2"),
        2042.469971 + 1.0,
        1e-9,
        "abs CRPIX2",
    );
}

// ------------------------------------------------------------------------------------
// row choice

fn row_for(table: &PointingTable, t_obs: &str) -> Result<usize, Error> {
    update_pointing(&with_t_obs(level1_map(), t_obs), table).map(|u| u.row)
}

#[test]
fn row_boundaries_follow_t_start_inclusive_t_stop_exclusive() {
    let t = utc_table();
    assert_eq!(row_for(&t, "2011-02-15T00:00:00Z").unwrap(), 2); // exactly T_START of row 2
    assert_eq!(row_for(&t, "2011-02-15T00:00:00.000000001Z").unwrap(), 2);
    assert_eq!(row_for(&t, "2011-02-14T23:59:59.999999999Z").unwrap(), 1);
    assert_eq!(row_for(&t, "2011-02-15T03:00:00Z").unwrap(), 3); // exactly T_STOP of row 2
    assert_eq!(row_for(&t, "2011-02-14T18:00:00Z").unwrap(), 0); // first T_START
    assert_eq!(row_for(&t, "2011-02-15T08:59:59.99Z").unwrap(), 4);
    for outside in [
        "2011-02-14T17:59:59.99Z",
        "2011-02-15T09:00:00Z",
        "2020-01-01T00:00:00Z",
    ] {
        let e = row_for(&t, outside).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Pointing { line: None, .. })
                && msg.contains("pointing_table_small.csv")
                && msg.contains("no row")
                && msg.contains("aia_171_test.fits"),
            "{msg}"
        );
    }
}

#[test]
fn tai_and_utc_tables_pick_the_same_rows() {
    let (u, t) = (utc_table(), tai_table());
    // Each of these is within 34 s of a boundary: reading the TAI times as UTC would pick
    // the previous row.
    for (t_obs, row) in [
        ("2011-02-15T00:00:01.34Z", 2),
        ("2011-02-15T00:00:20Z", 2),
        ("2011-02-15T03:00:10Z", 3),
        ("2011-02-15T05:59:59Z", 3),
        ("2011-02-15T06:00:00Z", 4),
    ] {
        assert_eq!(row_for(&u, t_obs).unwrap(), row, "UTC table, {t_obs}");
        assert_eq!(row_for(&t, t_obs).unwrap(), row, "TAI table, {t_obs}");
    }
    // And the rows are the same instants.
    for (a, b) in u.rows().iter().zip(t.rows()) {
        assert_eq!(a.t_start, b.t_start);
        assert_eq!(a.t_stop, b.t_stop);
    }
    // The whole header agrees apart from the table name.
    let a = update_pointing(&level1_map(), &u).unwrap().map.header;
    let b = update_pointing(&level1_map(), &t).unwrap().map.header;
    for k in ["CRPIX1", "CRPIX2", "CDELT1", "CROTA2", "X0_MP", "Y0_MP"] {
        assert_eq!(f(&a, k), f(&b, k), "{k}");
    }
}

// ------------------------------------------------------------------------------------
// missing values

#[test]
fn nan_entries_warn_and_leave_keywords_unchanged() {
    // Row 3 (line 7): A_171_X0 empty, A_171_Y0 2042.50, A_171_IMSCALE 0.599460, A_171_INSTROT NaN.
    let m = with_t_obs(level1_map(), "2011-02-15T04:30:00Z");
    let up = update_pointing(&m, &utc_table()).unwrap();
    let h = &up.map.header;
    assert_eq!(up.row, 3);
    assert_eq!(f(h, "CRPIX1"), CRPIX_OLD);
    assert_eq!(f(h, "X0_MP"), X0_MP_OLD);
    assert_eq!(f(h, "CROTA2"), CROTA2_OLD);
    assert_eq!(f(h, "INST_ROT"), 0.019327);
    close(
        f(h, "CRPIX2"),
        CRPIX_OLD + (2042.50 - Y0_MP_OLD),
        1e-12,
        "CRPIX2",
    );
    assert_eq!(f(h, "Y0_MP"), 2042.50);
    assert_eq!(f(h, "CDELT1"), 0.59946);
    let w = up.warnings.join("\n");
    assert_eq!(up.warnings.len(), 4, "{w}"); // 2 plate scale + X0 + INSTROT
    assert!(w.contains("A_171_X0") && w.contains("CRPIX1"), "{w}");
    assert!(w.contains("A_171_INSTROT") && w.contains("CROTA2"), "{w}");
    assert!(w.contains("line 7"), "{w}");
    assert!(!w.contains("A_171_Y0") && !w.contains("IMSCALE"), "{w}");

    // Row 4: A_171_IMSCALE "MISSING".
    let m = with_t_obs(level1_map(), "2011-02-15T07:00:00Z");
    let up = update_pointing(&m, &utc_table()).unwrap();
    assert_eq!(f(&up.map.header, "CDELT1"), CDELT_OLD);
    assert_eq!(f(&up.map.header, "CDELT2"), CDELT_OLD);
    assert_eq!(f(&up.map.header, "IMSCL_MP"), 0.599489);
    close(
        f(&up.map.header, "CROTA2"),
        0.0194 + SAT_ROT,
        1e-12,
        "CROTA2",
    );
    assert!(up.warnings.iter().any(|w| w.contains("A_171_IMSCALE")));

    // Row 3 for 193 Å: every value "missing" → nothing changes but the record keywords.
    let mut h = level1_header();
    h.set("WAVELNTH", Value::Int(193), None);
    let m = with_t_obs(map_with(h), "2011-02-15T04:30:00Z");
    let up = update_pointing(&m, &utc_table()).unwrap();
    for k in [
        "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CROTA2", "X0_MP", "Y0_MP",
    ] {
        assert_eq!(f(&up.map.header, k), f(&m.header, k), "{k}");
    }
    assert_eq!(up.warnings.len(), 2 + 4, "{:?}", up.warnings);
}

#[test]
fn missing_x0_mp_skips_the_reference_pixel_update() {
    let mut h = level1_header();
    h.remove("X0_MP");
    let up = update_pointing(&map_with(h), &utc_table()).unwrap();
    let hh = &up.map.header;
    assert_eq!(f(hh, "CRPIX1"), CRPIX_OLD);
    assert_eq!(f(hh, "CRPIX2"), CRPIX_OLD);
    // As aiapy: the Sun-centre keywords are still set from the table.
    assert_eq!(f(hh, "X0_MP"), 2055.310059);
    assert_eq!(f(hh, "Y0_MP"), 2042.469971);
    assert_eq!(f(hh, "CDELT1"), 0.599456);
    assert!(
        up.warnings.iter().any(|w| w.contains("X0_MP and/or Y0_MP")),
        "{:?}",
        up.warnings
    );
}

// ------------------------------------------------------------------------------------
// map errors

#[test]
fn map_keyword_errors_are_typed() {
    let mut h = level1_header();
    h.remove("T_OBS");
    let e = update_pointing(&map_with(h), &utc_table()).unwrap_err();
    assert!(
        matches!(e, Error::MissingKeyword { ref key, .. } if key == "T_OBS"),
        "{e}"
    );
    assert!(e.to_string().contains("aia_171_test.fits"));

    for bad in [
        "yesterday",
        "2011-02-30T00:00:00Z",
        "2011-02-15T25:00:00Z",
        "",
    ] {
        let e = row_for(&utc_table(), bad).unwrap_err();
        assert!(
            matches!(e, Error::BadKeyword { ref key, .. } if key == "T_OBS"),
            "{bad}: {e}"
        );
    }

    let mut h = level1_header();
    h.remove("SAT_ROT");
    let e = update_pointing(&map_with(h), &utc_table()).unwrap_err();
    assert!(
        matches!(e, Error::MissingKeyword { ref key, .. } if key == "SAT_ROT"),
        "{e}"
    );

    let mut h = level1_header();
    h.set("WAVELNTH", Value::Int(211), None);
    let e = update_pointing(&map_with(h), &utc_table()).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Pointing { .. })
            && msg.contains("pointing_table_small.csv")
            && msg.contains("A_211_X0"),
        "{msg}"
    );
}

// ------------------------------------------------------------------------------------
// table errors

fn parse_err(text: &str) -> (Option<usize>, String) {
    match PointingTable::parse_csv(text, Source::file("bad.csv")) {
        Err(e @ Error::Pointing { .. }) => {
            let msg = e.to_string();
            let Error::Pointing { line, .. } = e else {
                unreachable!()
            };
            assert!(msg.starts_with("bad.csv"), "{msg}");
            (line, msg)
        }
        Err(e) => panic!("wrong error kind: {e}"),
        Ok(_) => panic!("parsed: {text}"),
    }
}

const HEAD: &str = "T_START,T_STOP,A_171_X0,A_171_Y0,A_171_IMSCALE,A_171_INSTROT\n";
const ROW: &str = "2011-02-15T00:00:00Z,2011-02-15T03:00:00Z,2055.3,2042.4,0.5995,0.0194\n";

#[test]
fn table_errors_name_file_line_and_column() {
    let (l, m) = parse_err("T_STOP,A_171_X0\n2011-02-15T03:00:00Z,1\n");
    assert_eq!(l, Some(1));
    assert!(m.contains("bad.csv:1") && m.contains("T_START"), "{m}");

    let (l, m) = parse_err("# comment\nT_START,A_171_X0\n2011-02-15T03:00:00Z,1\n");
    assert_eq!(l, Some(2));
    assert!(m.contains("T_STOP"), "{m}");

    let text = format!("{HEAD}{ROW}2011-02-15T03:00:00Z,2011-02-15T06:00:99Z,1,2,3,4\n");
    let (l, m) = parse_err(&text);
    assert_eq!(l, Some(3));
    assert!(
        m.contains("bad.csv:3") && m.contains("column 2 (T_STOP)") && m.contains("06:00:99"),
        "{m}"
    );

    let text = format!("{HEAD}2011/02/15 00:00,2011-02-15T03:00:00Z,1,2,3,4\n");
    let (l, m) = parse_err(&text);
    assert_eq!(l, Some(2));
    assert!(m.contains("column 1 (T_START)"), "{m}");

    let text = format!("{HEAD}{ROW}\n{ROW}2011-02-15T06:00:00Z,2011-02-15T09:00:00Z,1,2,3\n");
    let (l, m) = parse_err(&text);
    assert_eq!(l, Some(5)); // the blank line 3 still counts
    assert!(
        m.contains("ragged") && m.contains("5 fields") && m.contains("6"),
        "{m}"
    );

    let text = format!("{HEAD}2011-02-15T00:00:00Z,2011-02-15T03:00:00Z,abc,2,3,4\n");
    let (l, m) = parse_err(&text);
    assert_eq!(l, Some(2));
    assert!(
        m.contains("column 3 (A_171_X0)") && m.contains("abc"),
        "{m}"
    );

    let text = format!("{HEAD}\"2011-02-15T00:00:00Z,2011-02-15T03:00:00Z,1,2,3,4\n");
    let (l, m) = parse_err(&text);
    assert_eq!(l, Some(2));
    assert!(m.contains("quote"), "{m}");

    let text = format!("{HEAD}2011-02-15T03:00:00Z,2011-02-15T03:00:00Z,1,2,3,4\n");
    let (l, m) = parse_err(&text);
    assert_eq!(l, Some(2));
    assert!(m.contains("not after"), "{m}");

    let (l, m) = parse_err(HEAD);
    assert_eq!(l, Some(1));
    assert!(m.contains("no data rows"), "{m}");

    let (l, m) = parse_err("\n# only a comment\n");
    assert_eq!(l, None);
    assert!(m.contains("no header"), "{m}");

    let (l, m) = parse_err("T_START,T_STOP,A_171_X0,A_171_x0\n");
    assert_eq!(l, Some(1));
    assert!(
        m.contains("A_171_X0") && m.contains("more than once"),
        "{m}"
    );

    let (l, m) = parse_err("T_START,T_STOP,T_START\n");
    assert_eq!(l, Some(1));
    assert!(m.contains("T_START appears 2 times"), "{m}");

    // TAI before the leap-second table.
    let text = format!("{HEAD}1970.01.01_00:00:00_TAI,2011-02-15T03:00:00Z,1,2,3,4\n");
    let (l, m) = parse_err(&text);
    assert_eq!(l, Some(2));
    assert!(m.contains("1972"), "{m}");
}

#[test]
fn partial_channel_columns_are_an_error_when_that_channel_is_used() {
    let text = "T_START,T_STOP,A_171_X0,A_171_Y0,A_171_INSTROT,A_193_X0,A_193_Y0,A_193_IMSCALE,A_193_INSTROT\n\
                2011-02-15T00:00:00Z,2011-02-15T03:00:00Z,1,2,3,4,5,0.6,7\n";
    let t = PointingTable::parse_csv(text, Source::file("partial.csv")).unwrap();
    assert_eq!(t.channels(), vec![193]);
    let e = t.entry(0, 171).unwrap_err();
    assert!(
        e.to_string().contains("A_171_IMSCALE") && e.to_string().contains("partial.csv"),
        "{e}"
    );
    let v = t.entry(0, 193).unwrap();
    assert_eq!((v.x0, v.y0, v.imscale, v.instrot), (4.0, 5.0, 0.6, 7.0));
}

#[test]
fn reading_a_missing_file_is_an_io_error() {
    let e = PointingTable::read_csv(std::path::Path::new("/nonexistent/mpt.csv")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/mpt.csv"));
}

#[test]
fn table_contents_are_read_as_written() {
    let t = utc_table();
    assert_eq!(t.len(), 5);
    assert_eq!(t.channels(), vec![94, 171, 193, 1600]);
    let lines: Vec<usize> = t.rows().iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![4, 5, 6, 7, 8]);
    let e = t.entry(2, 1600).unwrap();
    assert_eq!(
        (e.x0, e.y0, e.imscale, e.instrot),
        (2046.15, 2053.27, 0.609374, -0.0179)
    );
    let e = t.entry(3, 171).unwrap();
    assert!(e.x0.is_nan() && e.instrot.is_nan());
    assert_eq!((e.y0, e.imscale), (2042.5, 0.59946));
    let e = t.entry(3, 193).unwrap();
    assert!(e.x0.is_nan() && e.y0.is_nan() && e.imscale.is_nan() && e.instrot.is_nan());
    assert_eq!(
        t.find_row(UtcTime::parse("2011-02-14T21:00:00Z").unwrap()),
        Some(1)
    );
}

// ------------------------------------------------------------------------------------
// time scales

#[test]
fn time_forms_agree() {
    let p = |s: &str| UtcTime::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    let t = p("2011-02-15T00:00:00Z");
    for s in [
        "2011-02-15T00:00:00",
        "2011-02-15T00:00:00.000Z",
        "2011-02-15 00:00:00.000",
        "2011-02-15T00:00",
        "2011-02-15",
        "2011.02.15_00:00:00_UTC",
        "2011.02.15_00:00:00Z",
        "2011.02.15_00:00:00_Z",
        "2011.02.15_00:00:00",
        "2011.02.15_00:00:34_TAI",
        "2011-02-15T00:00:34 TAI",
        "  2011-02-15t00:00:00z ",
    ] {
        assert_eq!(p(s), t, "{s}");
    }
    close(t.unix_seconds(), 1_297_728_000.0, 0.0, "unix");
    close(
        p("2011-02-15T00:00:01.34Z").unix_seconds(),
        1_297_728_001.34,
        1e-6,
        "fraction",
    );
    assert_eq!(
        p("2011-02-15T00:00:01.3400000009Z").0 % 1_000_000_000,
        340_000_000
    );
    assert_eq!(p("2016-12-31T23:59:60.5Z"), p("2017-01-01T00:00:00.5Z"));
    assert_eq!(
        UtcTime::from_civil(2011, 2, 15, 0, 0, 1.34),
        p("2011-02-15T00:00:01.34Z")
    );
    for bad in [
        "2011-02-29T00:00:00Z",
        "2011-13-01",
        "2011-02-15T24:00:00",
        "2011-02-15T00:60:00",
        "2011-02-15T00:00:61",
        "15/02/2011",
        "2011-02-15T00:00:00.x",
        "2011-02-15T00:00:00_GMT",
    ] {
        assert!(UtcTime::parse(bad).is_err(), "{bad} parsed");
    }
    assert!(UtcTime::parse("2012-02-29T00:00:00").is_ok());
}

#[test]
fn leap_second_table() {
    let p = |s: &str| UtcTime::parse(s).unwrap();
    assert_eq!(tai_minus_utc(p("2011-02-15T00:00:00Z")), Some(34));
    assert_eq!(tai_minus_utc(p("2012-06-30T23:59:59.999Z")), Some(34));
    assert_eq!(tai_minus_utc(p("2012-07-01T00:00:00Z")), Some(35));
    assert_eq!(tai_minus_utc(p("2015-07-01T00:00:00Z")), Some(36));
    assert_eq!(tai_minus_utc(p("2017-01-01T00:00:00Z")), Some(37));
    assert_eq!(tai_minus_utc(p("2026-01-01T00:00:00Z")), Some(37));
    assert_eq!(tai_minus_utc(p("1972-01-01T00:00:00Z")), Some(10));
    assert_eq!(tai_minus_utc(p("1971-12-31T23:59:59Z")), None);
    // Across the 2012 leap second: TAI 00:00:33 is UTC 23:59:59 the day before (34 s),
    // TAI 00:00:35 is UTC 00:00:00 (35 s).
    assert_eq!(p("2012.07.01_00:00:33_TAI"), p("2012-06-30T23:59:59Z"));
    assert_eq!(p("2012.07.01_00:00:35_TAI"), p("2012-07-01T00:00:00Z"));
}

// ------------------------------------------------------------------------------------
// aiapy oracle (tests/parity/make_pointing_fixtures.py, aiapy 0.10.2)

/// A minimal JSON reader for the fixture (objects, arrays, strings without escapes,
/// numbers, true/false/null).
#[derive(Debug, Clone)]
enum Json {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn parse(s: &str) -> Json {
        let b = s.as_bytes();
        let mut i = 0;
        let v = Self::value(b, &mut i);
        Self::ws(b, &mut i);
        assert_eq!(i, b.len(), "trailing JSON");
        v
    }
    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn value(b: &[u8], i: &mut usize) -> Json {
        Self::ws(b, i);
        match b[*i] {
            b'{' => {
                *i += 1;
                let mut m = BTreeMap::new();
                loop {
                    Self::ws(b, i);
                    if b[*i] == b'}' {
                        *i += 1;
                        break;
                    }
                    let Json::Str(k) = Self::value(b, i) else {
                        panic!("key")
                    };
                    Self::ws(b, i);
                    assert_eq!(b[*i], b':');
                    *i += 1;
                    let v = Self::value(b, i);
                    m.insert(k, v);
                    Self::ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
                Json::Obj(m)
            }
            b'[' => {
                *i += 1;
                let mut a = Vec::new();
                loop {
                    Self::ws(b, i);
                    if b[*i] == b']' {
                        *i += 1;
                        break;
                    }
                    a.push(Self::value(b, i));
                    Self::ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
                Json::Arr(a)
            }
            b'"' => {
                *i += 1;
                let st = *i;
                while b[*i] != b'"' {
                    assert_ne!(b[*i], b'\\', "escapes not supported");
                    *i += 1;
                }
                let s = std::str::from_utf8(&b[st..*i]).unwrap().to_string();
                *i += 1;
                Json::Str(s)
            }
            b't' => {
                *i += 4;
                Json::Bool(true)
            }
            b'f' => {
                *i += 5;
                Json::Bool(false)
            }
            b'n' => {
                *i += 4;
                Json::Null
            }
            _ => {
                let st = *i;
                while *i < b.len()
                    && (b[*i] == b'-'
                        || b[*i] == b'+'
                        || b[*i] == b'.'
                        || b[*i] == b'e'
                        || b[*i] == b'E'
                        || b[*i].is_ascii_digit())
                {
                    *i += 1;
                }
                Json::Num(std::str::from_utf8(&b[st..*i]).unwrap().parse().unwrap())
            }
        }
    }
    fn get(&self, k: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(k).unwrap_or_else(|| panic!("no key {k}")),
            _ => panic!("not an object"),
        }
    }
    fn num(&self) -> f64 {
        match self {
            Json::Num(x) => *x,
            _ => panic!("not a number: {self:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string"),
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array"),
        }
    }
}

fn oracle() -> Json {
    Json::parse(&std::fs::read_to_string(common::fixture("pointing_aiapy.json")).unwrap())
}

#[test]
fn table_times_match_astropy() {
    let o = oracle();
    let times = o.get("times");
    for (name, table) in [("utc_table", utc_table()), ("tai_table", tai_table())] {
        let starts = times.get(name).get("t_start").arr();
        let stops = times.get(name).get("t_stop").arr();
        assert_eq!(starts.len(), table.len());
        for (r, (a, b)) in table.rows().iter().zip(starts.iter().zip(stops)) {
            close(r.t_start.unix_seconds(), a.num(), 1e-6, name);
            close(r.t_stop.unix_seconds(), b.num(), 1e-6, name);
        }
    }
    let leap = times.get("leap").arr();
    assert!(leap.len() >= 10);
    for pair in leap {
        let s = pair.arr()[0].str();
        let want = UtcTime::parse(pair.arr()[1].str()).unwrap(); // astropy's UTC
        assert_eq!(UtcTime::parse(s).unwrap(), want, "{s}");
    }
}

/// The real header in full-frame form, as built by the fixture script: NAXIS 4096,
/// CDELT = IMSCL_MP, CRPIX = X0_MP + 1, PC from the old CROTA2.
fn full_frame_header() -> Header {
    let mut h = level1_header();
    h.set("NAXIS1", Value::Int(4096), None);
    h.set("NAXIS2", Value::Int(4096), None);
    let s = f(&h, "IMSCL_MP");
    h.set_f64("CDELT1", s, None);
    h.set_f64("CDELT2", s, None);
    h.set_f64("CRPIX1", f(&h, "X0_MP") + 1.0, None);
    h.set_f64("CRPIX2", f(&h, "Y0_MP") + 1.0, None);
    let th = f(&h, "CROTA2").to_radians();
    h.set_f64("PC1_1", th.cos(), None);
    h.set_f64("PC1_2", -th.sin(), None);
    h.set_f64("PC2_1", th.sin(), None);
    h.set_f64("PC2_2", th.cos(), None);
    h
}

#[test]
fn same_keywords_as_aiapy_update_pointing() {
    let o = oracle();
    let Json::Obj(cases) = o.get("cases") else {
        panic!()
    };
    assert_eq!(cases.len(), 5);
    for (name, c) in cases {
        let table = if name.ends_with("_tai") {
            tai_table()
        } else {
            utc_table()
        };
        let m = with_t_obs(map_with(full_frame_header()), c.get("t_obs").str());
        let up = update_pointing(&m, &table).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(up.row as f64, c.get("row").num(), "{name}: row");
        for k in [
            "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CROTA2", "X0_MP", "Y0_MP",
        ] {
            close(
                f(&up.map.header, k),
                c.get(k).num(),
                1e-9,
                &format!("{name}: {k}"),
            );
        }
        assert!(matches!(c.get("pc_removed"), Json::Bool(true)));
        assert!(!up.map.header.contains("PC1_1"), "{name}: PC kept");
        // aiapy warns once per keyword left unchanged; we warn once per missing table value.
        let aiapy_warned = c.get("n_missing_warnings").num() > 0.0;
        assert_eq!(
            !up.warnings.is_empty(),
            aiapy_warned,
            "{name}: {:?}",
            up.warnings
        );
    }
}

#[test]
fn in_place_update_matches_the_copying_one() {
    let m = level1_map();
    let up = update_pointing(&m, &utc_table()).unwrap();
    let mut m2 = level1_map();
    let (row, warnings) =
        aiaprep::pointing::update_pointing_in_place(&mut m2, &utc_table()).unwrap();
    assert_eq!(row, up.row);
    assert_eq!(warnings, up.warnings);
    assert_eq!(m2.header, up.map.header);
    assert_eq!(m2.data, m.data);
    // On error the map is left as it was.
    let mut m3 = with_t_obs(level1_map(), "2030-01-01T00:00:00Z");
    let before = m3.header.clone();
    assert!(aiaprep::pointing::update_pointing_in_place(&mut m3, &utc_table()).is_err());
    assert_eq!(m3.header, before);
}

#[test]
fn non_finite_informational_keywords_do_not_fail() {
    // A NaN X0_MP is treated as absent (aiapy: NaN CRPIX → warning, key unchanged).
    let mut h = level1_header();
    h.set_f64("X0_MP", f64::NAN, None);
    h.set("LVL_NUM", Value::Str("one".into()), None);
    let up = update_pointing(&map_with(h), &utc_table()).unwrap();
    assert_eq!(f(&up.map.header, "CRPIX1"), CRPIX_OLD);
    assert!(up.warnings.iter().any(|w| w.contains("X0_MP and/or Y0_MP")));
    // A NaN SAT_ROT or CRPIX1 that is needed is an error naming the keyword.
    for key in ["SAT_ROT", "CRPIX1"] {
        let mut h = level1_header();
        h.set_f64(key, f64::NAN, None);
        let e = update_pointing(&map_with(h), &utc_table()).unwrap_err();
        assert!(
            matches!(e, Error::BadKeyword { key: ref k, .. } if k == key),
            "{key}: {e}"
        );
    }
    // Level > 1 is a warning, not an error.
    let mut h = level1_header();
    h.set_f64("LVL_NUM", 1.5, None);
    let up = update_pointing(&map_with(h), &utc_table()).unwrap();
    assert!(up.warnings.iter().any(|w| w.contains("LVL_NUM")));
}
