//! Per-pixel uncertainty (aiapy `estimate_error`): the scalar rule against aiapy's own values
//! (tests/parity/make_uncertainty_fixtures.py) for every channel and option, the options'
//! checks, the CPU map against the scalar rule, the error table (bad tables give typed
//! errors; the built-in copy equals the file) and the uncertainty HDU's header.

mod common;

use aiaprep::cpu::uncertainty::estimate_error_map;
use aiaprep::uncertainty::{
    estimate_error, read_noise, uncertainty_header, ChannelErrors, ErrorOptions, ErrorTable,
    BUILTIN_NAME, CHANNELS,
};
use aiaprep::{Error, Header, Source, Value};
use ndarray::{s, Array2};

// ------------------------------------------------------------------------------------
// helpers

fn v3_path() -> std::path::PathBuf {
    common::data("calibration/aia_V3_error_table.txt")
}

fn v3_text() -> String {
    std::fs::read_to_string(v3_path()).unwrap()
}

fn v3() -> ErrorTable {
    ErrorTable::read(&v3_path()).unwrap()
}

/// A fixture OPTIONS token (`default`, or `+`-joined `name` / `name=value`) as options.
fn options(token: &str) -> ErrorOptions {
    let mut o = ErrorOptions::default();
    if token == "default" {
        return o;
    }
    for part in token.split('+') {
        match part.split_once('=') {
            Some(("n_sample", v)) => o.n_sample = v.parse().unwrap(),
            None if part == "include_preflight" => o.include_preflight = true,
            None if part == "include_eve" => o.include_eve = true,
            None if part == "include_chianti" => o.include_chianti = true,
            None if part == "compare_idl" => o.compare_idl = true,
            _ => panic!("unknown option {part}"),
        }
    }
    o
}

/// A seeded xorshift64 stream of uniform numbers in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The table text with `from` replaced by `to` once (on line `line`, 1-based).
fn edited(line: usize, from: &str, to: &str) -> String {
    v3_text()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                assert!(l.contains(from), "line {line}: {l}");
                l.replacen(from, to, 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn table_err(e: Error) -> (Source, Option<usize>, Option<String>, String) {
    match e {
        Error::Table {
            file,
            what,
            line,
            column,
            reason,
        } => {
            assert_eq!(what, "error table");
            (file, line, column, reason)
        }
        other => panic!("not a table error: {other:?}"),
    }
}

// ------------------------------------------------------------------------------------
// the scalar rule against aiapy

#[test]
fn scalar_rule_matches_aiapy_for_every_channel_and_option() {
    let text = std::fs::read_to_string(common::fixture("uncertainty_cases.txt")).unwrap();
    let tables = [v3(), ErrorTable::default_v3()];
    let (mut n, mut raised, mut nan, mut exact, mut worst) = (0, 0, 0, 0, 0.0f64);
    let mut channels = std::collections::BTreeSet::new();
    let mut option_sets = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.splitn(4, ' ');
        let (ch, opt, c, expected) = (
            f.next().unwrap().parse::<u32>().unwrap(),
            f.next().unwrap(),
            f.next().unwrap().parse::<f64>().unwrap(),
            f.next().unwrap(),
        );
        channels.insert(ch);
        option_sets.insert(opt.to_string());
        let o = options(opt);
        for t in &tables {
            let e = t.channel(ch).unwrap();
            let got = estimate_error(c, &e, &o);
            if let Some(msg) = expected.strip_prefix("raise ValueError: ") {
                // aiapy refuses the options: check() does, with aiapy's message, and the
                // unchecked rule gives NaN rather than a plausible number.
                match o.check() {
                    Err(Error::InvalidOption { file, reason }) => {
                        assert_eq!(file, Source::memory());
                        assert_eq!(reason, msg, "{line}");
                    }
                    other => panic!("{line}: check gave {other:?}"),
                }
                assert!(got.is_nan(), "{line}: {got}");
                raised += 1;
                continue;
            }
            o.check().unwrap();
            let want: f64 = expected.parse().unwrap();
            if want.is_nan() {
                assert!(got.is_nan(), "{line}: got {got}, aiapy NaN");
                nan += 1;
                continue;
            }
            if want.is_infinite() {
                // Infinite counts with a calibration and the CHIANTI term (no 0 · ∞).
                assert_eq!(got, want, "{line}");
                n += 1;
                exact += 1;
                continue;
            }
            let rel = ((got - want) / want).abs();
            assert!(
                rel <= 1e-12,
                "{line}: got {got:?}, aiapy {want:?} (rel {rel:e})"
            );
            worst = worst.max(rel);
            exact += usize::from(got.to_bits() == want.to_bits());
            n += 1;
        }
    }
    assert_eq!(channels.into_iter().collect::<Vec<_>>(), CHANNELS.to_vec());
    assert_eq!(option_sets.len(), 12, "{option_sets:?}");
    assert_eq!(raised, 2 * 10 * 19, "the eve+preflight values");
    // Negative and NaN counts; infinite counts unless both a calibration and the CHIANTI
    // term are included (3 of the 11 option sets).
    assert_eq!(nan, 2 * 10 * (11 * 3 - 3), "NaN values");
    assert_eq!(n, 2 * 10 * (11 * 16 + 3), "values");
    // The order of operations is aiapy's: the values are the same bits, not just close.
    assert_eq!(
        exact, n,
        "bit-for-bit: {exact} of {n} (worst rel {worst:e})"
    );
}

#[test]
fn worked_examples_by_hand() {
    // 171 Å, 100 DN/pixel (spec §3): shot = √(100/1.122)·1.122 = 10.59245014149229,
    // compress = shot/14.4, dark 0.18, read 1.15, quant 1/√12 → 10.68547244141766.
    let e = v3().channel(171).unwrap();
    let o = ErrorOptions::default();
    assert_eq!(estimate_error(100.0, &e, &o), 10.68547244141766);
    // 0 DN: √(0.18² + 1.15² + 1/12), the floor of every camera-3 channel.
    let floor = (0.18f64 * 0.18 + 1.15 * 1.15 + 1.0 / 12.0).sqrt();
    assert!((estimate_error(0.0, &e, &o) - floor).abs() < 1e-15);
    // aiapy's value.
    assert_eq!(estimate_error(0.0, &e, &o), 1.1992636629754665);
    // Below 25 DN no compression term; from 25 DN on it is max(shot/K, 1/√12): for 94 Å
    // (K = 26.196) at 25 DN that is the floor 1/√12.
    let e94 = v3().channel(94).unwrap();
    let g = 1.975f64;
    let base = |c: f64| c * g + 0.18 * 0.18 + 1.14 * 1.14 + 1.0 / 12.0;
    let below = estimate_error(24.999999999, &e94, &o);
    assert!((below - base(24.999999999).sqrt()).abs() < 1e-12, "{below}");
    let at = estimate_error(25.0, &e94, &o);
    assert!(
        (at - (base(25.0) + 1.0 / 12.0).sqrt()).abs() < 1e-12,
        "{at}"
    );
    // Negative and NaN counts: NaN.
    assert!(estimate_error(-1.0, &e, &o).is_nan());
    assert!(estimate_error(f64::NAN, &e, &o).is_nan());
}

#[test]
fn n_sample_divides_the_noise_terms() {
    // Closed form for c ≥ 25 with the compression term above its floor:
    // err² = c·g/n + 0.18² + R²/n + 1/(12 n) + c·g/(K² n²) + (f_chi c)² + (f_cal c)².
    let t = v3();
    let mut rng = Rng(0x5eed_0015);
    for ch in CHANNELS {
        let e = t.channel(ch).unwrap();
        for n in [1.0, 2.0, 2.5, 3.0, 4.0, 16.0] {
            for (eve, chianti) in [(false, false), (true, true)] {
                let o = ErrorOptions {
                    n_sample: n,
                    include_eve: eve,
                    include_chianti: chianti,
                    ..ErrorOptions::default()
                };
                o.check().unwrap();
                let c = 5000.0 + 10000.0 * rng.next();
                let (g, k) = (e.gain, e.compress);
                let fchi = if chianti { e.chianti } else { 0.0 };
                let fcal = if eve { e.eveerr } else { 0.0 };
                let r = read_noise(ch, false).unwrap();
                let want = (c * g / n
                    + 0.18 * 0.18
                    + r * r / n
                    + 1.0 / (12.0 * n)
                    + c * g / (k * k * n * n)
                    + (fchi * c).powi(2)
                    + (fcal * c).powi(2))
                .sqrt();
                let got = estimate_error(c, &e, &o);
                assert!(
                    ((got - want) / want).abs() < 1e-12,
                    "{ch} n={n}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn options_are_checked() {
    assert_eq!(ErrorOptions::default().n_sample, 1.0);
    ErrorOptions::default().check().unwrap();
    let both = ErrorOptions {
        include_eve: true,
        include_preflight: true,
        ..ErrorOptions::default()
    };
    let e = both.check().unwrap_err();
    assert_eq!(
        e.to_string(),
        "<memory>: invalid option: Cannot include both EVE and pre-flight correction."
    );
    for n in [0.0, -1.0, f64::NAN, f64::INFINITY, -0.0] {
        let o = ErrorOptions {
            n_sample: n,
            ..ErrorOptions::default()
        };
        match o.check() {
            Err(Error::InvalidOption { reason, .. }) => assert!(reason.contains("n_sample")),
            other => panic!("n_sample {n}: {other:?}"),
        }
        // Unchecked, the rule gives NaN rather than inf or a plausible number.
        let e = v3().channel(171).unwrap();
        assert!(estimate_error(100.0, &e, &o).is_nan(), "n_sample {n}");
    }
    for n in [0.25, 2.5, 1e6] {
        ErrorOptions {
            n_sample: n,
            ..ErrorOptions::default()
        }
        .check()
        .unwrap();
    }
    // Each calibration term alone, with CHIANTI, is fine.
    for (p, e) in [(true, false), (false, true)] {
        ErrorOptions {
            include_preflight: p,
            include_eve: e,
            include_chianti: true,
            compare_idl: true,
            ..ErrorOptions::default()
        }
        .check()
        .unwrap();
    }
}

#[test]
fn read_noise_by_camera() {
    // Boerner et al. (2012), Table 6.
    let want = [
        (94, 1.14),
        (131, 1.18),
        (171, 1.15),
        (193, 1.20),
        (211, 1.20),
        (304, 1.14),
        (335, 1.18),
        (1600, 1.15),
        (1700, 1.15),
        (4500, 1.15),
    ];
    for (ch, r) in want {
        assert_eq!(read_noise(ch, false), Some(r), "{ch}");
        assert_eq!(read_noise(ch, true), Some(1.15), "{ch}");
        assert_eq!(v3().channel(ch).unwrap().read_noise, r);
    }
    for ch in [0, 170, 172, 1500, 6173] {
        assert_eq!(read_noise(ch, false), None);
        assert_eq!(read_noise(ch, true), None);
    }
}

// ------------------------------------------------------------------------------------
// the CPU map

/// A seeded 512×384 image: counts over the whole range (mostly 0–20000 DN, some below 30,
/// some negative), with NaNs.
fn random_counts(seed: u64) -> Array2<f32> {
    let mut rng = Rng(seed);
    Array2::from_shape_fn((512, 384), |_| {
        let u = rng.next();
        let v = rng.next();
        if u < 0.02 {
            f32::NAN
        } else if u < 0.06 {
            (-50.0 * v) as f32
        } else if u < 0.3 {
            (30.0 * v) as f32
        } else {
            (20000.0 * v) as f32
        }
    })
}

fn assert_map_is_scalar_rule(c: ndarray::ArrayView2<f32>, e: &ChannelErrors, o: &ErrorOptions) {
    let m = estimate_error_map(c, e, o);
    assert_eq!(m.dim(), c.dim());
    let mut nans = 0;
    for ((idx, &got), &cv) in m.indexed_iter().zip(c.iter()) {
        let want = estimate_error(f64::from(cv), e, o) as f32;
        if want.is_nan() {
            assert!(got.is_nan(), "{idx:?}: counts {cv}: {got}, want NaN");
            nans += 1;
        } else {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{idx:?}: counts {cv}: {got} vs {want}"
            );
        }
    }
    let want_nans = c.iter().filter(|v| v.is_nan() || **v < 0.0).count();
    assert_eq!(nans, want_nans);
}

#[test]
fn map_equals_the_scalar_rule() {
    let c = random_counts(0x00c0_ffee_0015);
    assert!(c.iter().any(|v| v.is_nan()) && c.iter().any(|v| *v < 0.0));
    assert!(c.iter().any(|v| (0.0..25.0).contains(v)) && c.iter().any(|v| *v > 10000.0));
    let t = ErrorTable::default_v3();
    let sets = [
        ErrorOptions::default(),
        ErrorOptions {
            n_sample: 3.0,
            include_chianti: true,
            include_eve: true,
            ..ErrorOptions::default()
        },
        ErrorOptions {
            n_sample: 2.5,
            include_preflight: true,
            compare_idl: true,
            ..ErrorOptions::default()
        },
    ];
    for (i, ch) in CHANNELS.into_iter().enumerate() {
        let e = t.channel(ch).unwrap();
        let o = &sets[i % sets.len()];
        assert_map_is_scalar_rule(c.view(), &e, o);
    }
    // Rows without unit stride (a transposed and a strided view) take the other loop.
    let e = t.channel(193).unwrap();
    assert_map_is_scalar_rule(c.t(), &e, &sets[1]);
    assert_map_is_scalar_rule(c.slice(s![1..400;3, 5..;2]), &e, &sets[0]);
    // Options check() refuses: NaN everywhere.
    let both = ErrorOptions {
        include_eve: true,
        include_preflight: true,
        ..ErrorOptions::default()
    };
    assert!(estimate_error_map(c.view(), &e, &both)
        .iter()
        .all(|v| v.is_nan()));
    // Empty images.
    assert_eq!(
        estimate_error_map(Array2::<f32>::zeros((0, 7)).view(), &e, &sets[0]).dim(),
        (0, 7)
    );
    assert_eq!(
        estimate_error_map(Array2::<f32>::zeros((3, 0)).view(), &e, &sets[0]).dim(),
        (3, 0)
    );
}

// ------------------------------------------------------------------------------------
// the error table

#[test]
fn builtin_table_equals_the_file() {
    assert_eq!(
        include_str!("../host/tables/aia_V3_error_table.txt"),
        v3_text(),
        "host/tables/ and tests/data/calibration/ copies differ"
    );
    let (b, f) = (ErrorTable::default_v3(), v3());
    assert_eq!(b.name(), BUILTIN_NAME);
    assert_eq!(b.name(), "aia_V3_error_table.txt (built in)");
    assert_eq!(f.name(), "aia_V3_error_table.txt");
    assert_eq!((b.version(), f.version()), (Some(3), Some(3)));
    for ch in CHANNELS {
        assert_eq!(b.channel(ch).unwrap(), f.channel(ch).unwrap(), "{ch}");
    }
    // Hand-read row of 4500: DNPERPHT 0.056, COMPRESS 0.068, CALERR 0.5, CHIANTI 1, EVEERR 0.03.
    let e = b.channel(4500).unwrap();
    assert_eq!(
        (e.channel, e.gain, e.compress, e.calerr, e.chianti, e.eveerr),
        (4500, 0.056, 0.068, 0.5, 1.0, 0.03)
    );
}

#[test]
fn missing_column_is_named() {
    // Drop COMPRESS (header and every row).
    let text: String = v3_text()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split_whitespace().collect();
            f.remove(7);
            f.join(" ") + "\n"
        })
        .collect();
    let (file, line, column, reason) =
        table_err(ErrorTable::parse(&text, Source::file("dir/t.txt")).unwrap_err());
    assert_eq!(file, Source::file("dir/t.txt"));
    assert_eq!((line, column.as_deref()), (None, Some("COMPRESS")));
    assert!(reason.contains("no such column"), "{reason}");
}

#[test]
fn unparsable_number_names_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("aiaprep_unc_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Line 4 is the 171 row.
    let bad = dir.join("bad_table.txt");
    std::fs::write(&bad, edited(4, "1.122", "1.1x2")).unwrap();
    let e = ErrorTable::read(&bad).unwrap_err();
    let msg = e.to_string();
    let (file, line, column, _) = table_err(e);
    assert_eq!(file, Source::file(&bad));
    assert_eq!((line, column.as_deref()), (Some(4), Some("DNPERPHT")));
    assert!(
        msg.ends_with(
            "bad_table.txt:4: error table, column DNPERPHT: '1.1x2' is not a finite number"
        ),
        "{msg}"
    );
    // Non-finite, in the fractional columns too.
    for (from, to, col) in [("0.019", "nan", "EVEERR"), ("14.400", "inf", "COMPRESS")] {
        let (_, line, column, _) =
            table_err(ErrorTable::parse(&edited(4, from, to), Source::memory()).unwrap_err());
        assert_eq!((line, column.as_deref()), (Some(4), Some(col)));
    }
    // A row with a field too few.
    let (_, line, _, _) =
        table_err(ErrorTable::parse(&edited(6, " 0.880", ""), Source::memory()).unwrap_err());
    assert_eq!(line, Some(6));
    // A missing file.
    assert!(matches!(
        ErrorTable::read(&dir.join("none.txt")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gain_and_compression_must_be_positive() {
    for (line, from, to, col) in [
        (2, "1.975", "0.000", "DNPERPHT"),
        (9, "0.120", "-0.12", "DNPERPHT"),
        (3, "18.797", "0.0", "COMPRESS"),
        (11, "0.068", "-1", "COMPRESS"),
    ] {
        let (_, l, c, reason) =
            table_err(ErrorTable::parse(&edited(line, from, to), Source::memory()).unwrap_err());
        assert_eq!((l, c.as_deref()), (Some(line), Some(col)), "{reason}");
        assert!(reason.contains("> 0"), "{reason}");
    }
}

#[test]
fn channel_rows_are_matched_by_wavelnth() {
    // No row for 171 (line 4 removed): a typed error naming the table; the others work.
    let text: String = v3_text()
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let t = ErrorTable::parse(&text, Source::file("/x/no171.txt")).unwrap();
    assert_eq!(t.name(), "no171.txt");
    let e = t.channel(171).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/x/no171.txt: error table, column WAVELNTH: no row for channel 171 Å"
    );
    for ch in CHANNELS.into_iter().filter(|&c| c != 171) {
        assert_eq!(t.channel(ch).unwrap(), v3().channel(ch).unwrap());
    }
    // Two rows for 193 (the 171 row relabelled): ambiguous, the second row's line named.
    let dup = edited(4, "   171      1.122", "   193      1.122");
    let t = ErrorTable::parse(&dup, Source::file("dup.txt")).unwrap();
    let (_, line, column, reason) = table_err(t.channel(193).unwrap_err());
    assert_eq!((line, column.as_deref()), (Some(5), Some("WAVELNTH")));
    assert!(reason.contains("line 4"), "{reason}");
    // WAVELNTH is compared as a number ("171.0" is 171), not WAVE_STR.
    let t = ErrorTable::parse(
        &edited(4, "171_THIN        171", "  171_X       171.0"),
        Source::memory(),
    )
    .unwrap();
    assert_eq!(t.channel(171).unwrap(), v3().channel(171).unwrap());
    // Not an AIA channel: refused like aiapy's validate_channel, even with a row.
    let t = ErrorTable::parse(
        &edited(4, "   171      1.122", "   170      1.122"),
        Source::memory(),
    )
    .unwrap();
    assert!(matches!(t.channel(170), Err(Error::InvalidOption { .. })));
    assert!(matches!(
        v3().channel(6173),
        Err(Error::InvalidOption { .. })
    ));
}

#[test]
fn version_column_is_optional_and_checked() {
    // Without VER_NUM: no version, same entries.
    let text: String = v3_text()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split_whitespace().collect();
            f.remove(3);
            f.join(" ") + "\n"
        })
        .collect();
    let t = ErrorTable::parse(&text, Source::memory()).unwrap();
    assert_eq!(t.version(), None);
    assert_eq!(t.name(), "<memory>");
    assert_eq!(t.channel(335).unwrap(), v3().channel(335).unwrap());
    // Rows that disagree: no single version.
    let t = ErrorTable::parse(&edited(5, "          3", "          4"), Source::memory()).unwrap();
    assert_eq!(t.version(), None);
    // Not an integer.
    let (_, line, column, _) = table_err(
        ErrorTable::parse(&edited(5, "          3", "        3.5"), Source::memory()).unwrap_err(),
    );
    assert_eq!((line, column.as_deref()), (Some(5), Some("VER_NUM")));
}

// ------------------------------------------------------------------------------------
// the header of the uncertainty HDU

#[test]
fn uncertainty_header_copies_wcs_and_records_the_options() {
    let text = std::fs::read_to_string(common::data("aia_171_level1_128px.header.txt")).unwrap();
    let data = Header::parse_lines(&text);
    assert!(!data.contains("BUNIT"));
    let t = ErrorTable::default_v3();
    let o = ErrorOptions::default();
    let h = uncertainty_header(&data, &t, &o, 171);
    assert_eq!(h.get_str("EXTNAME"), Some("UNCERTAINTY"));
    assert_eq!(h.get_str("BUNIT"), Some("DN"));
    let copied = [
        "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1",
        "CDELT2", "CROTA2", "DATE-OBS", "T_OBS", "TELESCOP", "INSTRUME", "WAVELNTH", "WAVEUNIT",
        "RSUN_OBS", "RSUN_REF", "DSUN_OBS", "HGLN_OBS", "HGLT_OBS",
    ];
    for k in copied {
        assert!(data.contains(k), "{k} in the data header");
        assert_eq!(h.get(k), data.get(k), "{k}");
        // Copied unchanged, byte for byte.
        assert_eq!(
            h.card(k).unwrap().record(),
            data.card(k).unwrap().record(),
            "{k}"
        );
    }
    for k in [
        "NAXIS", "NAXIS1", "EXPTIME", "WAVE_STR", "DSUN_REF", "QUALITY", "X0_MP",
    ] {
        assert!(data.contains(k), "{k} in the data header");
        assert!(!h.contains(k), "{k} copied");
    }
    assert_eq!(h.get_str("ERRTAB"), Some(BUILTIN_NAME));
    assert_eq!(h.get("ERRVER"), Some(&Value::Int(3)));
    assert_eq!(h.get_f64("ERRNSAMP"), Some(1.0));
    for k in ["ERRPREFL", "ERREVE", "ERRCHIAN"] {
        assert_eq!(h.get(k), Some(&Value::Bool(false)), "{k}");
    }
    let comment: String = h
        .cards()
        .iter()
        .filter(|c| c.key == "COMMENT")
        .filter_map(|c| c.value.as_str())
        .collect();
    assert!(
        comment.starts_with("1-sigma uncertainty of each pixel of the primary data, aiapy estimate_error (shot, dark, read, quantisation, compression noise) of the counts before degradation correction and exposure normalisation, scaled like the data"),
        "{comment}"
    );
    assert!(h.cards().iter().any(|c| c.key == "HISTORY"
        && c.value
            .as_str()
            .is_some_and(|s| s.contains("estimate_error"))));
    // Every card is a valid 80-column record.
    for c in h.cards() {
        assert_eq!(c.record().len(), 80);
    }

    // A normalised level-1.5 header with a PC matrix and every option.
    let mut data = data;
    data.set("BUNIT", Value::Str("DN/s".into()), None);
    for (k, v) in [
        ("PC1_1", 1.0),
        ("PC1_2", -0.0003),
        ("PC2_1", 0.0003),
        ("PC2_2", 1.0),
    ] {
        data.set_f64(k, v, None);
    }
    let o = ErrorOptions {
        n_sample: 4.0,
        include_eve: true,
        include_chianti: true,
        ..ErrorOptions::default()
    };
    let t = v3();
    let h = uncertainty_header(&data, &t, &o, 171);
    assert_eq!(h.get_str("BUNIT"), Some("DN/s"));
    for k in ["PC1_1", "PC1_2", "PC2_1", "PC2_2"] {
        assert_eq!(h.get_f64(k), data.get_f64(k), "{k}");
    }
    assert_eq!(h.get_str("ERRTAB"), Some("aia_V3_error_table.txt"));
    assert_eq!(h.get_f64("ERRNSAMP"), Some(4.0));
    assert_eq!(h.get("ERRPREFL"), Some(&Value::Bool(false)));
    assert_eq!(h.get("ERREVE"), Some(&Value::Bool(true)));
    assert_eq!(h.get("ERRCHIAN"), Some(&Value::Bool(true)));
    let comment: String = h
        .cards()
        .iter()
        .filter(|c| c.key == "COMMENT")
        .filter_map(|c| c.value.as_str())
        .collect();
    assert!(
        comment.contains("compression noise, EVE calibration error, CHIANTI atomic-data error)"),
        "{comment}"
    );
    assert_eq!(h.cards().iter().filter(|c| c.key == "BUNIT").count(), 1);
    // A table without VER_NUM: no ERRVER.
    let text: String = v3_text()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split_whitespace().collect();
            f.remove(3);
            f.join(" ") + "\n"
        })
        .collect();
    let t = ErrorTable::parse(&text, Source::memory()).unwrap();
    assert!(!uncertainty_header(&data, &t, &o, 171).contains("ERRVER"));
}
