//! Header fidelity against aiapy: every keyword of aiapy's level-1.5 header for the same
//! input is in ours with the same value, apart from a documented list of intended
//! differences (docs/level15-header.md), and the keywords we add are exactly the expected
//! ones.
//!
//! The reference headers (tests/parity/make_header_fixtures.py, aiapy 0.10.2 / sunpy 7.0.5)
//! are those of the files `sunpy.map.Map.save` writes for
//! (a) `register(map)` of tests/data/aia_171_level1_128px.fits, and
//! (b) `register(update_pointing(map, pointing_table))` of that header in its full-frame
//!     form (4096², zero pixels; the pointing table describes the full-resolution CCD) with
//!     tests/data/pointing_table_small.csv.
//! Ours are the files the `prep` example writes for the same inputs (CPU backend), int16
//! (the default) and float32, read back with `aiaprep::fits`.
//!
//! Runs the example binary that `cargo test` builds alongside the tests (with `--test
//! header_fidelity` alone cargo does not rebuild examples: run `cargo build --profile test
//! --example prep` first). About 1 s.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aiaprep::fits::{self, Compression, OutputType, WriteOptions};
use aiaprep::pointing::PointingTable;
use aiaprep::{AiaMap, Header, Source, Value};

/// Numbers agree when `|a − b| ≤ REL_TOL · max(|a|, |b|) + ABS_TOL`. aiapy's WCS values pass
/// through sunpy's float arithmetic (its CRVAL1 moves by 8e-12 relative), ours are copied.
const REL_TOL: f64 = 1e-9;
/// The absolute part of the tolerance, for computed values near zero.
const ABS_TOL: f64 = 1e-12;

/// Keywords whose value or presence differs from aiapy's on purpose, with the reason. Each
/// is checked against our own rule in [`check_intended`] instead of aiapy's value.
const INTENDED: &[(&str, &str)] = &[
    ("BITPIX", "ours: int16 (16, the default) or float32 (-32) as asked; aiapy keeps its map's dtype (float64 here, float32 for the full frame)"),
    ("BLANK", "FITS allows BLANK in integer images only: ours has it in int16 output; sunpy copies the level-1 BLANK into its float file"),
    ("DATAMIN", "ours: recomputed from the pixels written; aiapy keeps the level-1 value"),
    ("DATAMAX", "ours: recomputed from the pixels written; aiapy keeps the level-1 value"),
    ("DATAMEAN", "ours: recomputed from the pixels written; aiapy keeps the level-1 value"),
    ("PC1_1", "ours: CROTA2 = 0 and no PC matrix (JSOC's level-1.5 convention; PCi_j and CROTA2 exclude each other); aiapy's PC is the identity to 1e-19"),
    ("PC1_2", "as PC1_1"),
    ("PC2_1", "as PC1_1"),
    ("PC2_2", "as PC1_1"),
    ("NAXIS1", "ours keeps the input shape (as SolarSoft aia_prep); aiapy crops the rotated frame (4094² for a 4096² full frame)"),
    ("NAXIS2", "as NAXIS1"),
    ("CRPIX1", "both: the array centre (N + 1)/2, of ours N and of aiapy's cropped N"),
    ("CRPIX2", "as CRPIX1"),
    ("IMSCL_MP", "pointing update: ours records the table's IMSCALE there, as JSOC's level-1 processing does; aiapy leaves the level-1 value"),
    ("INST_ROT", "pointing update: ours records the table's INSTROT there, as JSOC does; aiapy leaves the level-1 value"),
];

/// Keywords ours has and aiapy's lacks, with the reason (values checked in [`check_added`]).
const ADDED: &[(&str, &str)] = &[
    (
        "CROTA2",
        "= 0: JSOC's level-1.5 convention instead of aiapy's PC matrix (sunpy reads the same WCS)",
    ),
    (
        "EXTEND",
        "= T: cfitsio writes it in every primary header (an uncertainty HDU may follow)",
    ),
];

/// Added by the pointing update (in the pointing case only): the record of what was used.
const ADDED_POINTING: &[(&str, &str)] = &[
    ("PNTUPD", "= T: the pointing was updated"),
    ("PNTTAB", "the table's file name"),
    ("PNTROW", "the 0-based data row used"),
    ("PNTSTART", "T_START of that row (UTC)"),
    ("PNTSTOP", "T_STOP of that row (UTC)"),
];

const FIXTURE_REGISTER: &str = "header_aiapy_register.txt";
const FIXTURE_POINTING: &str = "header_aiapy_pointing_register.txt";
const FIXTURE_FULLFRAME_L1: &str = "header_aiapy_fullframe_level1.txt";

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aiaprep-hdrfid-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fixture: `#` lines (recipe, versions), then one 80-column card per line.
fn fixture(name: &str) -> (Vec<String>, Header) {
    let text = std::fs::read_to_string(common::fixture(name)).unwrap();
    let (notes, cards): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('#'));
    let h = Header::parse_lines(&cards.join("\n"));
    assert!(h.cards().len() > 150, "{name}: {} cards", h.cards().len());
    (notes.iter().map(|s| s.to_string()).collect(), h)
}

fn is_commentary(key: &str) -> bool {
    matches!(key, "COMMENT" | "HISTORY" | "")
}

fn reason(list: &[(&'static str, &'static str)], key: &str) -> Option<&'static str> {
    list.iter().find(|(k, _)| *k == key).map(|(_, r)| *r)
}

fn num_close(a: f64, b: f64) -> bool {
    (a - b).abs() <= REL_TOL * a.abs().max(b.abs()) + ABS_TOL
}

/// Whether two values are the same: same kind (an integer is not a real), numbers within the
/// tolerance, strings equal after trimming.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => num_close(*x, *y),
        (Value::Str(x), Value::Str(y)) => x.trim() == y.trim(),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Undefined, Value::Undefined) => true,
        (Value::Raw(x), Value::Raw(y)) => x.trim() == y.trim(),
        _ => false,
    }
}

fn f64_of(h: &Header, key: &str) -> f64 {
    h.get_f64(key)
        .unwrap_or_else(|| panic!("no numeric {key}: {:?}", h.get(key)))
}

/// Trimmed texts of the commentary cards `key`, in order.
fn commentary(h: &Header, key: &str) -> Vec<String> {
    h.cards()
        .iter()
        .filter(|c| c.key == key)
        .map(|c| c.value.as_str().unwrap_or("").trim().to_string())
        .collect()
}

/// `ours` minus `theirs` as multisets, in the order of `ours`; and what of `theirs` is left.
fn multiset_diff(ours: &[String], theirs: &[String]) -> (Vec<String>, Vec<String>) {
    let mut left: Vec<Option<&String>> = theirs.iter().map(Some).collect();
    let mut extra = Vec::new();
    for o in ours {
        match left.iter_mut().find(|t| t.is_some_and(|t| t == o)) {
            Some(slot) => *slot = None,
            None => extra.push(o.clone()),
        }
    }
    (extra, left.into_iter().flatten().cloned().collect())
}

/// One run of ours to compare.
struct Ours {
    header: Header,
    /// Stored pixels read back (physical values, NaN for missing).
    data: ndarray::Array2<f32>,
    int16: bool,
}

/// The inputs of a case.
struct Case {
    name: &'static str,
    input: PathBuf,
    /// The level-1 header aiapy was given.
    level1: Header,
    aiapy: Header,
    pointing: Option<PathBuf>,
}

fn run_prep(case: &Case, dir: &Path, int16: bool) -> Ours {
    let out = dir.join(if int16 { "i16" } else { "f32" });
    let mut c = common::prep_command();
    c.arg(&case.input)
        .args(["--out-dir", out.to_str().unwrap(), "--backend", "cpu"])
        .args(["--dtype", if int16 { "i16" } else { "f32" }]);
    if let Some(t) = &case.pointing {
        c.arg("--pointing-table").arg(t);
    }
    let r = c.output().unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}: {}",
        case.name,
        String::from_utf8_lossy(&r.stderr)
    );
    let path = aiaprep::pipeline::output_path(&case.input, &out);
    let header = fits::read_header(&path).unwrap().header;
    let data = fits::read(&path).unwrap().data;
    Ours {
        header,
        data,
        int16,
    }
}

/// The check of an intended difference against our own rule; `Err` says what is wrong.
fn check_intended(key: &str, case: &Case, ours: &Ours) -> Result<(), String> {
    let h = &ours.header;
    let a = &case.aiapy;
    let stats = || {
        let v: Vec<f64> = ours
            .data
            .iter()
            .filter(|x| !x.is_nan())
            .map(|&x| x as f64)
            .collect();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max, v.iter().sum::<f64>() / v.len() as f64)
    };
    let expect = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    match key {
        "BITPIX" => {
            let want = if ours.int16 { 16 } else { -32 };
            expect(
                h.get("BITPIX") == Some(&Value::Int(want)),
                format!("BITPIX {:?}, want {want}", h.get("BITPIX")),
            )
        }
        "BLANK" => {
            let want = ours.int16.then_some(Value::Int(-32768));
            expect(
                h.get("BLANK").cloned() == want,
                format!("BLANK {:?}, want {want:?}", h.get("BLANK")),
            )
        }
        "DATAMIN" | "DATAMAX" | "DATAMEAN" => {
            let (min, max, mean) = stats();
            let want = match key {
                "DATAMIN" => min,
                "DATAMAX" => max,
                _ => mean,
            };
            let got = f64_of(h, key);
            expect(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                format!("{key} {got}, the written pixels give {want}"),
            )
        }
        "PC1_1" | "PC1_2" | "PC2_1" | "PC2_2" => {
            // aiapy's matrix is the identity: the same WCS as our CROTA2 = 0.
            let ident = if key == "PC1_1" || key == "PC2_2" {
                1.0
            } else {
                0.0
            };
            expect(
                !h.contains(key)
                    && h.get("CROTA2") == Some(&Value::Float(0.0))
                    && (f64_of(a, key) - ident).abs() < 1e-12,
                format!(
                    "ours {key} {:?} CROTA2 {:?}, aiapy {key} {:?}",
                    h.get(key),
                    h.get("CROTA2"),
                    a.get(key)
                ),
            )
        }
        "NAXIS1" | "NAXIS2" => {
            let (nx, ny) = (ours.data.ncols() as i64, ours.data.nrows() as i64);
            let want = if key == "NAXIS1" { nx } else { ny };
            let l1 = case.level1.get(key);
            expect(
                h.get(key) == Some(&Value::Int(want)) && l1 == Some(&Value::Int(want)),
                format!("{key} {:?}, level 1 {l1:?}, data {want}", h.get(key)),
            )
        }
        "CRPIX1" | "CRPIX2" => {
            let n = if key == "CRPIX1" { "NAXIS1" } else { "NAXIS2" };
            let centre = |hh: &Header| (f64_of(hh, n) + 1.0) / 2.0;
            expect(
                f64_of(h, key) == centre(h) && f64_of(a, key) == centre(a),
                format!(
                    "{key}: ours {} (centre {}), aiapy {} (centre {})",
                    f64_of(h, key),
                    centre(h),
                    f64_of(a, key),
                    centre(a)
                ),
            )
        }
        "IMSCL_MP" | "INST_ROT" => match &case.pointing {
            // Without a pointing update they are as in level 1, as aiapy's.
            None => expect(
                h.get(key).zip(a.get(key)).is_some_and(|(x, y)| same(x, y)),
                format!("{key}: ours {:?}, aiapy {:?}", h.get(key), a.get(key)),
            ),
            Some(t) => {
                let table = PointingTable::read_csv(t).unwrap();
                let row = f64_of(h, "PNTROW") as usize;
                let e = table.entry(row, 171).unwrap();
                let want = if key == "IMSCL_MP" {
                    e.imscale
                } else {
                    e.instrot
                };
                expect(
                    h.get(key) == Some(&Value::Float(want)) && case.level1.get(key) == a.get(key),
                    format!(
                        "{key}: ours {:?}, table {want}; aiapy {:?}, level 1 {:?}",
                        h.get(key),
                        a.get(key),
                        case.level1.get(key)
                    ),
                )
            }
        },
        _ => Err(format!("{key}: no rule")),
    }
}

/// The check of a keyword we add; `Err` says what is wrong.
fn check_added(key: &str, case: &Case, ours: &Ours) -> Result<(), String> {
    let h = &ours.header;
    let v = h.get(key);
    let ok = match key {
        "CROTA2" => v == Some(&Value::Float(0.0)),
        "EXTEND" => v == Some(&Value::Bool(true)),
        "PNTUPD" => v == Some(&Value::Bool(true)),
        "PNTTAB" => v == Some(&Value::Str("pointing_table_small.csv".into())),
        "PNTROW" | "PNTSTART" | "PNTSTOP" => {
            let table = PointingTable::read_csv(case.pointing.as_ref().unwrap()).unwrap();
            let t = aiaprep::pointing::t_obs(&AiaMap::new(
                ndarray::Array2::zeros((1, 1)),
                case.level1.clone(),
                Source::file("level1"),
            ))
            .unwrap();
            let row = table.find_row(t).unwrap();
            let r = &table.rows()[row];
            match key {
                "PNTROW" => v == Some(&Value::Int(row as i64)),
                "PNTSTART" => v == Some(&Value::Str(r.t_start.to_string())),
                _ => v == Some(&Value::Str(r.t_stop.to_string())),
            }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("added {key} = {v:?}"))
    }
}

/// Compare one output of ours with aiapy's header; returns the problems found.
fn compare(case: &Case, ours: &Ours) -> Vec<String> {
    let mut problems = Vec::new();
    let h = &ours.header;
    let a = &case.aiapy;

    // Every keyword is there once (commentary aside).
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for c in h.cards().iter().filter(|c| !is_commentary(&c.key)) {
        *count.entry(c.key.as_str()).or_default() += 1;
    }
    for (k, n) in &count {
        if *n > 1 {
            problems.push(format!("{k} appears {n} times"));
        }
    }

    // Every keyword of aiapy's: same value, or an intended difference that follows our rule.
    for c in a.cards().iter().filter(|c| !is_commentary(&c.key)) {
        let k = c.key.as_str();
        if reason(INTENDED, k).is_some() {
            if let Err(e) = check_intended(k, case, ours) {
                problems.push(format!("intended difference {k} not as documented: {e}"));
            }
            continue;
        }
        match h.get(k) {
            None => problems.push(format!("missing {k} (aiapy: {:?})", c.value)),
            Some(v) if !same(v, &c.value) => {
                problems.push(format!("{k}: ours {v:?}, aiapy {:?}", c.value))
            }
            Some(_) => {}
        }
    }

    // Keywords we add: exactly the expected ones, with their values.
    let mut added: Vec<&str> = ADDED.iter().map(|(k, _)| *k).collect();
    if case.pointing.is_some() {
        added.extend(ADDED_POINTING.iter().map(|(k, _)| *k));
    }
    for k in count.keys() {
        if a.contains(k) {
            continue;
        }
        if added.contains(k) {
            if let Err(e) = check_added(k, case, ours) {
                problems.push(e);
            }
        } else {
            problems.push(format!("stray keyword {k} = {:?}", h.get(k)));
        }
    }
    for k in added {
        if !h.contains(k) {
            problems.push(format!("expected added keyword {k} is absent"));
        }
    }

    // COMMENT: aiapy's lines, each once. The input (written by astropy) has the FITS
    // standard's two lines without cfitsio's indent, and cfitsio writes its own copy: the
    // writer leaves the input's out, so they are not there twice.
    let (extra, lost) = multiset_diff(&commentary(h, "COMMENT"), &commentary(a, "COMMENT"));
    if !lost.is_empty() || !extra.is_empty() {
        problems.push(format!("COMMENT: lost {lost:?}, added {extra:?}"));
    }

    // HISTORY: aiapy's cards kept; ours adds exactly its records (long ones continue on the
    // next card; spaces ignored, as a card boundary may fall on one).
    let (extra, lost) = multiset_diff(&commentary(h, "HISTORY"), &commentary(a, "HISTORY"));
    if !lost.is_empty() {
        problems.push(format!("HISTORY lost {lost:?}"));
    }
    let joined = extra.concat().replace(' ', "");
    let v = aiaprep::VERSION;
    let mut want = Vec::new();
    if case.pointing.is_some() {
        want.push(format!(
            "aiaprep {v} update_pointing: table pointing_table_small.csv row {}",
            f64_of(h, "PNTROW")
        ));
    }
    want.push(format!(
        "aiaprep {v} register: interpolation=spline, missing=min ("
    ));
    want.push(format!("aiaprep {v} prep: backend: cpu"));
    want.push(format!(
        "output {}",
        if ours.int16 { "int16" } else { "float32" }
    ));
    let mut at = 0;
    for w in &want {
        let w = w.replace(' ', "");
        match joined[at..].find(&w) {
            Some(i) => at += i + w.len(),
            None => problems.push(format!("HISTORY lacks {w:?} (after {at}): {joined}")),
        }
    }
    let records = joined.matches("aiaprep").count();
    if !joined.starts_with("aiaprep")
        || records != want.len() - 1
        || !joined.ends_with(&want[want.len() - 1].replace(' ', ""))
    {
        problems.push(format!("HISTORY: unexpected records: {joined}"));
    }
    problems
}

fn check_case(case: &Case, dir: &Path) {
    let mut problems = Vec::new();
    for int16 in [true, false] {
        let ours = run_prep(case, dir, int16);
        for p in compare(case, &ours) {
            problems.push(format!(
                "{} {}: {p}",
                case.name,
                if int16 { "int16" } else { "f32" }
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn register_header_matches_aiapy() {
    let dir = tmpdir("reg");
    let input = common::data("aia_171_level1_128px.fits");
    let case = Case {
        name: "register",
        level1: fits::read_header(&input).unwrap().header,
        input,
        aiapy: fixture(FIXTURE_REGISTER).1,
        pointing: None,
    };
    // The reference is a level-1.5 header of this input.
    assert_eq!(case.aiapy.get_f64("LVL_NUM"), Some(1.5));
    assert_eq!(case.aiapy.get_f64("CDELT1"), Some(19.2));
    check_case(&case, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pointing_register_header_matches_aiapy() {
    let dir = tmpdir("pnt");
    // The full-frame level-1 file aiapy was given: its header, zero pixels, int16 RICE as
    // JSOC ships level 1.
    let level1 = fixture(FIXTURE_FULLFRAME_L1).1;
    let input = dir.join("aia_171_fullframe.fits");
    let map = AiaMap::new(
        ndarray::Array2::zeros((4096, 4096)),
        level1.clone(),
        Source::file(&input),
    );
    let w = WriteOptions {
        dtype: OutputType::I16,
        compress: Compression::Rice,
        ..Default::default()
    };
    fits::write(&map, &input, &w).unwrap();
    drop(map);
    let case = Case {
        name: "update_pointing+register",
        input,
        level1,
        aiapy: fixture(FIXTURE_POINTING).1,
        pointing: Some(common::data("pointing_table_small.csv")),
    };
    // The update moved the Sun centre: the case tests something.
    let moved = f64_of(&case.aiapy, "X0_MP") - f64_of(&case.level1, "X0_MP");
    assert!(moved.abs() > 0.1, "X0_MP moved by {moved}");
    check_case(&case, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The fixtures name the reference stack they were made with: the versions pinned in
/// tests/parity/requirements.txt.
#[test]
fn fixtures_were_made_with_the_pinned_reference() {
    let req = std::fs::read_to_string(
        common::source_dir()
            .join("tests")
            .join("parity")
            .join("requirements.txt"),
    )
    .unwrap();
    let pin = |name: &str| -> String {
        req.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|r| r.strip_prefix("=="))
            .unwrap_or_else(|| panic!("{name} not pinned"))
            .trim()
            .to_string()
    };
    let want = [
        format!("aiapy {}", pin("aiapy")),
        format!("sunpy {}", pin("sunpy[map]")),
        format!("astropy {}", pin("astropy")),
        format!("numpy {}", pin("numpy")),
        format!("scipy {}", pin("scipy")),
    ];
    for name in [FIXTURE_REGISTER, FIXTURE_POINTING, FIXTURE_FULLFRAME_L1] {
        let (notes, _) = fixture(name);
        let versions = notes.join(" ");
        for w in &want {
            assert!(
                versions.contains(w.as_str()),
                "{name}: {versions} lacks {w}"
            );
        }
    }
}
