//! FITS reading and writing: parity with astropy (fixtures made by
//! tests/parity/make_fits_fixtures.py), round trips against a naive reference, header
//! pass-through, and the file-safety rules (no clobber, never the input, no temp files).

mod common;
mod naive;

use std::path::{Path, PathBuf};

use aiaprep::fits::{self, Compression, OutputType, WriteOptions};
use aiaprep::{AiaMap, Card, Error, Header, Source, Value};
use naive::Rng;
use ndarray::Array2;

// ---------------------------------------------------------------- helpers

/// A fresh, empty directory under the system temp dir, unique per test; removed when
/// dropped.
struct TmpDir(PathBuf);
impl TmpDir {
    fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}
impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("aiaprep-fits-io-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

/// Names of the entries in a directory, sorted.
fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn aia_header() -> Header {
    let mut h = Header::new();
    h.set("TELESCOP", Value::Str("SDO/AIA".into()), Some("telescope"));
    h.set("INSTRUME", Value::Str("AIA_3".into()), None);
    h.set("WAVELNTH", Value::Int(171), Some("[angstrom]"));
    h.set_f64("CDELT1", 0.599489, Some("[arcsec/pixel]"));
    h.set_f64("EXPTIME", 2.000191, None);
    h.set("T_OBS", Value::Str("2011-02-15T00:00:01.34Z".into()), None);
    h.push_history("test history card");
    h
}

fn map_of(data: Array2<f32>) -> AiaMap {
    AiaMap::new(data, aia_header(), Source::memory())
}

/// Naive reference for the int16 conversion: NaN → None (BLANK); otherwise round half
/// away from zero of (v − bzero)/bscale in f64, clamped to [−32767, 32767].
fn naive_i16(v: f32, bscale: f64, bzero: f64) -> Option<i16> {
    if v.is_nan() {
        return None;
    }
    let x = (v as f64 - bzero) / bscale;
    let r = if x >= 0.0 {
        (x + 0.5).floor()
    } else {
        (x - 0.5).ceil()
    };
    Some(r.clamp(-32767.0, 32767.0) as i16)
}

/// min, max, mean over the non-NaN values (naive f64).
fn naive_stats(v: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let (mut mn, mut mx, mut s, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
    for x in v.filter(|x| !x.is_nan()) {
        mn = mn.min(x);
        mx = mx.max(x);
        s += x;
        n += 1;
    }
    (mn, mx, s / n as f64)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

/// A 37 × 53 test image (rows × cols, non-square) with the int16 edge cases in the
/// first row and seeded values elsewhere.
fn edge_image() -> Array2<f32> {
    let (ny, nx) = (37, 53);
    let mut rng = Rng(7);
    let mut a = Array2::from_shape_fn((ny, nx), |_| rng.range(-500.0, 4000.0) as f32);
    let specials: [f32; 22] = [
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.49999997,
        -0.49999997,
        32766.5,
        32767.4,
        40000.0,
        -32767.4,
        -32767.5,
        -32768.0,
        -1.0e9,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        1234.5,
        -1234.5,
        f32::NAN,
    ];
    for (i, &v) in specials.iter().enumerate() {
        a[[0, i]] = v;
    }
    a[[ny - 1, nx - 1]] = f32::NAN;
    a[[20, 3]] = 7.5;
    a
}

fn assert_file_error<T: std::fmt::Debug>(r: Result<T, Error>, path: &Path, want: &str) -> Error {
    let e = r.unwrap_err();
    let ok = match want {
        "Io" => matches!(e, Error::Io { .. }),
        "Fits" => matches!(e, Error::Fits { .. }),
        "NotAia" => matches!(e, Error::NotAia { .. }),
        _ => unreachable!(),
    };
    assert!(ok, "expected {want}, got {e:?}");
    assert!(
        e.to_string().contains(&path.display().to_string()),
        "error does not name {}: {e}",
        path.display()
    );
    e
}

// ---------------------------------------------------------------- reading vs astropy

#[test]
fn reads_real_aia_file_like_astropy() {
    let path = common::data("aia_171_level1_128px.fits");
    let m = fits::read(&path).unwrap();
    let want = common::npy::read2(&common::fixture("aia_171_128_data.npy"));
    assert_eq!(m.data.dim(), want.dim());
    let mut n_nonzero = 0;
    for ((r, c), &w) in want.indexed_iter() {
        let got = m.data[[r, c]];
        if w.is_nan() {
            assert!(got.is_nan(), "[{r},{c}]");
        } else {
            // cfitsio converts float64 → float32 by a cast: exactly astropy's value cast.
            assert_eq!(got, w as f32, "[{r},{c}]");
            n_nonzero += usize::from(w != 0.0);
        }
    }
    assert!(n_nonzero > 1000);
    assert_eq!(m.source, Source::file(&path));
    // The header: every card of the committed text dump, in order.
    let text = std::fs::read_to_string(common::data("aia_171_level1_128px.header.txt")).unwrap();
    let dump = Header::parse_lines(&text);
    assert_eq!(m.header.cards().len(), dump.cards().len());
    for (a, b) in m.header.cards().iter().zip(dump.cards()) {
        assert_eq!((&a.key, &a.value), (&b.key, &b.value));
    }
    assert_eq!(m.header.get_f64("CROTA2"), Some(0.019413));
    assert_eq!(m.header.get("BITPIX"), Some(&Value::Int(-64)));
    assert!(m.check_is_aia().is_ok());
}

/// Assert that `m` holds astropy's decoded values `want` exactly (NaN where astropy has
/// NaN, i.e. BLANK), and return how many BLANK pixels there are.
fn blanks_matching(m: &AiaMap, want: &Array2<f64>) -> usize {
    assert_eq!(m.data.dim(), want.dim());
    let mut nan = 0;
    for ((r, c), &w) in want.indexed_iter() {
        let got = m.data[[r, c]];
        if w.is_nan() {
            assert!(got.is_nan(), "[{r},{c}] = {got}, want BLANK");
            nan += 1;
        } else {
            assert_eq!(got as f64, w, "[{r},{c}]");
        }
    }
    nan
}

#[test]
fn reads_astropy_rice_int16_with_blanks() {
    let path = common::data("rice_int16_64x48.fits");
    let m = fits::read(&path).unwrap();
    let want = common::npy::read2(&common::fixture("rice_int16_64x48.npy"));
    // Rows = NAXIS2 = 48, columns = NAXIS1 = 64.
    assert_eq!(m.data.dim(), (48, 64));
    assert_eq!(m.shape_xy(), (64, 48));
    assert_eq!(blanks_matching(&m, &want), 5);
    assert_eq!(m.data[[0, 0]], -32767.0);
    assert_eq!(m.data[[0, 1]], 32767.0);
    // The header in uncompressed form.
    let h = &m.header;
    assert_eq!(h.get("BITPIX"), Some(&Value::Int(16)));
    assert_eq!(h.get("NAXIS1"), Some(&Value::Int(64)));
    assert_eq!(h.get("NAXIS2"), Some(&Value::Int(48)));
    assert_eq!(h.get("BLANK"), Some(&Value::Int(-32768)));
    assert!(!h.contains("ZIMAGE") && !h.contains("ZBITPIX") && !h.contains("TFORM1"));
    assert_eq!(h.get_str("TELESCOP"), Some("SDO/AIA"));
    assert_eq!(h.get("WAVELNTH"), Some(&Value::Int(171)));
    assert!(m.check_is_aia().is_ok());
    // The generic f64 reader (cfitsio's own conversion) agrees.
    let (d64, _) = fits::read_image_f64(&path).unwrap();
    for ((r, c), &w) in want.indexed_iter() {
        assert!(d64[[r, c]] == w || (w.is_nan() && d64[[r, c]].is_nan()));
    }
}

/// `fits::read` decodes RICE_1 int16 files with its own tile-parallel decoder; the generic
/// f64 reader still goes through cfitsio. Both must give the same values, bit for bit
/// (`(float)(v × BSCALE + BZERO)`, BLANK → NaN).
fn assert_same_as_cfitsio(path: &Path) -> AiaMap {
    let m = fits::read(path).unwrap();
    let (d64, _) = fits::read_image_f64(path).unwrap();
    assert_eq!(m.data.dim(), d64.dim(), "{}", path.display());
    for ((r, c), &w) in d64.indexed_iter() {
        let got = m.data[[r, c]];
        assert!(
            got.to_bits() == (w as f32).to_bits() || (got.is_nan() && w.is_nan()),
            "{} [{r},{c}]: {got} vs cfitsio {w}",
            path.display()
        );
    }
    m
}

#[test]
fn rice_tiles_2d_with_scaling_like_astropy_and_cfitsio() {
    let path = common::data("rice_int16_tiles_70x45.fits");
    let m = assert_same_as_cfitsio(&path);
    let want = common::npy::read2(&common::fixture("rice_int16_tiles_70x45.npy"));
    assert_eq!(m.data.dim(), (45, 70));
    assert_eq!(blanks_matching(&m, &want), 4);
}

/// Files written by cfitsio (our writer): every shape class (one pixel, one row, one
/// column, widths that are not multiples of the 32-pixel block, 1024²), noise of every
/// amplitude (each Rice block kind: zero, 1..13 split bits, raw 16-bit), extremes, BLANKs,
/// with and without BSCALE/BZERO.
#[test]
fn rice_decoder_matches_cfitsio_on_written_files() {
    let dir = tmpdir("rice-decoder");
    let mut rng = Rng(77);
    let shapes = [(1, 1), (1, 37), (33, 1), (77, 100), (5, 4097), (1024, 1024)];
    for (k, &(ny, nx)) in shapes.iter().enumerate() {
        let a = Array2::from_shape_fn((ny, nx), |(r, c)| {
            // Amplitude by row band: flat, small, medium, large, full range.
            let amp = [0.0, 3.0, 200.0, 9000.0, 32000.0][(r / 3 + c / 500) % 5];
            let base = if r % 7 == 6 { 16000.0 } else { 1000.0 };
            let v = base + rng.range(-amp, amp);
            match (r * 31 + c * 17) % 997 {
                0 => f32::NAN,
                1 => 32767.0,
                2 => -32767.0,
                _ => v as f32,
            }
        });
        for (j, scaling) in [None, Some((0.25, -50.0))].into_iter().enumerate() {
            let p = dir.join(format!("r{k}_{j}.fits"));
            let opts = WriteOptions {
                compress: Compression::Rice,
                scaling,
                ..Default::default()
            };
            fits::write(&map_of(a.clone()), &p, &opts).unwrap();
            let m = assert_same_as_cfitsio(&p);
            assert_eq!(m.data.dim(), (ny, nx));
            if ny * nx > 997 {
                assert!(m.data.iter().any(|v| v.is_nan()));
            }
        }
    }
}

#[test]
fn reads_plain_images_of_every_bitpix_like_astropy() {
    for (name, bitpix, n_nan) in [
        ("int16", 16, 2),
        ("uint16", 16, 0),
        ("int32", 32, 2),
        ("float32", -32, 2),
        ("float64", -64, 2),
    ] {
        let path = common::data(&format!("plain_{name}_25x17.fits"));
        let want = common::npy::read2(&common::fixture(&format!("plain_{name}_25x17.npy")));
        let m = fits::read(&path).unwrap();
        assert_eq!(m.data.dim(), (17, 25), "{name}");
        for ((r, c), &w) in want.indexed_iter() {
            let g = m.data[[r, c]];
            // Values were chosen to be exact in f32.
            assert!(
                g as f64 == w || (g.is_nan() && w.is_nan()),
                "{name} [{r},{c}]: {g} vs astropy {w}"
            );
        }
        assert_eq!(
            m.data.iter().filter(|v| v.is_nan()).count(),
            n_nan,
            "{name}"
        );
        assert_eq!(m.header.get("BITPIX"), Some(&Value::Int(bitpix)));
        let (d64, _) = fits::read_image_f64(&path).unwrap();
        for ((r, c), &w) in want.indexed_iter() {
            let g = d64[[r, c]];
            assert!(g == w || (g.is_nan() && w.is_nan()), "{name} f64 [{r},{c}]");
        }
    }
    // int16 with BLANK = −999: a stored −32768 is a valid value (1000 + 0.5 × −32768).
    let m = fits::read(&common::data("plain_int16_25x17.fits")).unwrap();
    assert!(m.data[[0, 0]].is_nan());
    assert_eq!(m.data[[0, 1]], 1000.0 - 16384.0);
}

// ---------------------------------------------------------------- round trips

fn check_i16_round_trip(compress: Compression, scaling: Option<(f64, f64)>, name: &str) {
    let dir = tmpdir(name);
    let out = dir.join("out.fits");
    let a = edge_image();
    let opts = WriteOptions {
        dtype: OutputType::I16,
        compress,
        overwrite: false,
        scaling,
    };
    let rep = fits::write(&map_of(a.clone()), &out, &opts).unwrap();
    let (bscale, bzero) = scaling.unwrap_or((1.0, 0.0));
    let expect: Vec<f64> = a
        .iter()
        .map(|&v| naive_i16(v, bscale, bzero).map_or(f64::NAN, |s| bzero + bscale * s as f64))
        .collect();
    let back = fits::read(&out).unwrap();
    assert_eq!(back.data.dim(), a.dim());
    for (i, (&g, &w)) in back.data.iter().zip(&expect).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "pixel {i}: {g} should be missing");
        } else {
            assert_eq!(g, w as f32, "pixel {i}: input {}", a.iter().nth(i).unwrap());
        }
    }
    // cfitsio's own conversion path (read as f64) gives the same values.
    let (d64, h) = fits::read_image_f64(&out).unwrap();
    for (&g, &w) in d64.iter().zip(&expect) {
        assert!(g == w || (g.is_nan() && w.is_nan()), "{g} vs {w}");
    }
    assert_eq!(h.get("BITPIX"), Some(&Value::Int(16)));
    assert_eq!(h.get("BLANK"), Some(&Value::Int(-32768)));
    if let Some((s, z)) = scaling {
        assert_eq!(h.get_f64("BSCALE"), Some(s));
        assert_eq!(h.get_f64("BZERO"), Some(z));
    } else {
        assert!(!h.contains("BSCALE") && !h.contains("BZERO"));
    }
    // Statistics over the values as written, vs a naive f64 computation.
    let (mn, mx, mean) = naive_stats(expect.iter().copied());
    assert_eq!(rep.n_missing, expect.iter().filter(|x| x.is_nan()).count());
    assert_eq!(rep.n_missing, 3);
    assert_eq!((rep.datamin, rep.datamax), (mn, mx));
    assert!(close(rep.datamean, mean, 1e-12), "{} {mean}", rep.datamean);
    assert_eq!(h.get_f64("DATAMIN"), Some(mn));
    assert_eq!(h.get_f64("DATAMAX"), Some(mx));
    assert!(close(h.get_f64("DATAMEAN").unwrap(), mean, 1e-12));
    assert_eq!(listing(&dir), ["out.fits"]);
}

#[test]
fn int16_round_trip_plain() {
    check_i16_round_trip(Compression::None, None, "i16-plain");
    // Spot checks of the rounding rule, independent of the naive helper.
    let dir = tmpdir("i16-spot");
    let out = dir.join("o.fits");
    fits::write(&map_of(edge_image()), &out, &WriteOptions::default()).unwrap();
    let b = fits::read(&out).unwrap();
    let row: Vec<f32> = b.data.row(0).iter().take(21).copied().collect();
    let want = [
        1.0,
        -1.0,
        2.0,
        -2.0,
        3.0,
        -3.0,
        0.0,
        0.0,
        32767.0,
        32767.0,
        32767.0,
        -32767.0,
        -32767.0,
        -32767.0,
        -32767.0,
        f32::NAN,
        32767.0,
        -32767.0,
        0.0,
        1235.0,
        -1235.0,
    ];
    for (i, (&g, &w)) in row.iter().zip(&want).enumerate() {
        assert!(
            g == w || (g.is_nan() && w.is_nan()),
            "col {i}: {g} want {w}"
        );
    }
}

#[test]
fn int16_round_trip_rice() {
    check_i16_round_trip(Compression::Rice, None, "i16-rice");
}

#[test]
fn int16_round_trip_scaled_plain_and_rice() {
    check_i16_round_trip(Compression::None, Some((0.25, 100.0)), "i16-scaled");
    check_i16_round_trip(Compression::Rice, Some((0.125, -3.0)), "i16-scaled-rice");
}

#[test]
fn rice_output_is_empty_primary_plus_compressed_image() {
    let dir = tmpdir("rice-layout");
    let out = dir.join("r.fits");
    let opts = WriteOptions {
        compress: Compression::Rice,
        ..Default::default()
    };
    fits::write(&map_of(edge_image()), &out, &opts).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let primary = &text[..2880];
    assert!(
        primary.contains("NAXIS   =                    0"),
        "{primary}"
    );
    let ext = &text[2880..];
    assert!(ext.starts_with("XTENSION= 'BINTABLE'"));
    assert!(ext.contains("ZCMPTYPE= 'RICE_1  '"));
    assert!(ext.contains("ZBITPIX =                   16"));
}

fn check_f32_round_trip(compress: Compression, name: &str) {
    let dir = tmpdir(name);
    let out = dir.join("f.fits");
    let mut a = edge_image();
    a[[5, 5]] = 1.0e-40; // subnormal
    a[[5, 6]] = 3.4e38;
    a[[5, 7]] = 0.1;
    let opts = WriteOptions {
        dtype: OutputType::F32,
        compress,
        ..Default::default()
    };
    let rep = fits::write(&map_of(a.clone()), &out, &opts).unwrap();
    let b = fits::read(&out).unwrap();
    for (i, (&g, &w)) in b.data.iter().zip(a.iter()).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "pixel {i}");
        } else {
            assert_eq!(g.to_bits(), w.to_bits(), "pixel {i}: {g} vs {w}");
        }
    }
    assert_eq!(b.header.get("BITPIX"), Some(&Value::Int(-32)));
    assert!(!b.header.contains("BLANK"));
    let (mn, mx, mean) = naive_stats(a.iter().map(|&v| v as f64).filter(|x| !x.is_infinite()));
    assert_eq!(rep.n_missing, 3);
    assert_eq!((rep.datamin, rep.datamax), (mn, mx));
    assert!(close(rep.datamean, mean, 1e-12));
    assert_eq!(b.header.get_f64("DATAMAX"), Some(mx));
    assert_eq!(listing(&dir), ["f.fits"]);
}

#[test]
fn float32_round_trip_plain() {
    check_f32_round_trip(Compression::None, "f32-plain");
}

#[test]
fn float32_round_trip_compressed_is_lossless() {
    check_f32_round_trip(Compression::Rice, "f32-rice");
    // Chosen algorithm: GZIP_2 (lossless), documented on Compression::Rice.
    let dir = tmpdir("f32-rice3");
    let out = dir.join("g.fits");
    let opts = WriteOptions {
        dtype: OutputType::F32,
        compress: Compression::Rice,
        ..Default::default()
    };
    fits::write(&map_of(edge_image()), &out, &opts).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("ZCMPTYPE= 'GZIP_2  '"));
}

#[test]
fn invalid_scaling_options_are_refused() {
    let dir = tmpdir("bad-scaling");
    let m = map_of(edge_image());
    for opts in [
        WriteOptions {
            dtype: OutputType::F32,
            scaling: Some((1.0, 0.0)),
            ..Default::default()
        },
        WriteOptions {
            scaling: Some((0.0, 0.0)),
            ..Default::default()
        },
        WriteOptions {
            scaling: Some((1.0, f64::NAN)),
            ..Default::default()
        },
    ] {
        let e = fits::write(&m, &dir.join("s.fits"), &opts).unwrap_err();
        assert!(matches!(e, Error::InvalidOption { .. }), "{e:?}");
    }
    assert!(listing(&dir).is_empty());
}

// ---------------------------------------------------------------- header pass-through

fn check_passthrough(compress: Compression, name: &str) {
    let dir = tmpdir(name);
    let input = fits::read(&common::data("aia_171_level1_128px.fits")).unwrap();
    let mut m = input.clone();
    m.source = Source::memory();
    // Cards the writer must not keep as they were.
    m.header.set_f64("DATAMIN", -99999.0, None);
    let opts = WriteOptions {
        compress,
        ..Default::default()
    };
    let out1 = dir.join("gen1.fits");
    fits::write(&m, &out1, &opts).unwrap();
    let g1 = fits::read(&out1).unwrap();
    let non_structural = |h: &Header| -> Vec<(String, Value)> {
        h.cards()
            .iter()
            .filter(|c| !aiaprep::header::is_structural(&c.key))
            .filter(|c| !matches!(c.key.as_str(), "DATAMIN" | "DATAMAX" | "DATAMEAN"))
            .map(|c| (c.key.clone(), c.value.clone()))
            .collect()
    };
    // The FITS standard's two COMMENT lines are the layout's: cfitsio writes its own copy
    // in the primary header, and the input's are left out (else a file written by astropy,
    // without cfitsio's indent, came out with both forms).
    let standard = |c: &(String, Value)| {
        aiaprep::header::is_standard_comment(&aiaprep::header::Card::new(&c.0, c.1.clone(), None))
    };
    let mut want = non_structural(&input.header);
    let mut got = non_structural(&g1.header);
    let (before, after) = (
        want.iter().filter(|c| standard(c)).count(),
        got.iter().filter(|c| standard(c)).count(),
    );
    assert_eq!(before, 2, "the input has the standard lines");
    let in_image_hdu = if compress == Compression::None { 2 } else { 0 };
    assert_eq!(
        after, in_image_hdu,
        "each standard line once, in the primary header"
    );
    want.retain(|c| !standard(c));
    got.retain(|c| !standard(c));
    assert!(want.len() > 150);
    // Every input card is present with the same value, in the same order.
    let mut it = got.iter();
    for w in &want {
        assert!(it.any(|g| g == w), "card {w:?} missing or out of order");
    }
    // What else is there: only what cfitsio adds to a new HDU (its COMMENT lines).
    for g in &got {
        assert!(
            want.contains(g) || g.0 == "COMMENT",
            "unexpected card {g:?}"
        );
    }
    // DATAMIN/MAX/MEAN describe the written data.
    let (mn, mx, mean) = naive_stats(g1.data.iter().map(|&v| v as f64));
    assert_eq!(g1.header.get_f64("DATAMIN"), Some(mn));
    assert_eq!(g1.header.get_f64("DATAMAX"), Some(mx));
    assert!(close(g1.header.get_f64("DATAMEAN").unwrap(), mean, 1e-12));
    assert_eq!(g1.header.get("BITPIX"), Some(&Value::Int(16)));
    // Writing the output again does not pile up cards.
    let out2 = dir.join("gen2.fits");
    fits::write(&g1, &out2, &opts).unwrap();
    let g2 = fits::read(&out2).unwrap();
    assert_eq!(g2.header.cards().len(), g1.header.cards().len());
    assert_eq!(g2.data, g1.data);
}

#[test]
fn header_passes_through_plain() {
    check_passthrough(Compression::None, "pass-plain");
}

#[test]
fn header_passes_through_rice() {
    check_passthrough(Compression::Rice, "pass-rice");
}

#[test]
fn long_string_and_odd_cards_pass_through() {
    let dir = tmpdir("odd-cards");
    let mut h = aia_header();
    let recs = [
        "LONGSTRN= 'OGIP 1.0'",
        "LONGVAL = 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz&'",
        "CONTINUE  'tail of the long string'",
        "QUOTED  = 'It''s here' / with a quote",
        "EMPTYVAL=",
        "FLAG    =                    T",
        "HIERARCH ESO DET CHIP = 'x'",
    ];
    for r in recs {
        h.push(Card::parse(&format!("{r:<80}")));
    }
    let m = AiaMap::new(edge_image(), h, Source::memory());
    let out = dir.join("o.fits");
    fits::write(&m, &out, &WriteOptions::default()).unwrap();
    let raw = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    for r in recs {
        assert!(
            raw.contains(&format!("{r:<80}")),
            "{r} not written verbatim"
        );
    }
    let b = fits::read(&out).unwrap();
    assert_eq!(b.header.get_str("QUOTED"), Some("It's here"));
    assert_eq!(b.header.get("FLAG"), Some(&Value::Bool(true)));
}

// ---------------------------------------------------------------- file safety

#[test]
fn existing_output_is_kept_unless_overwrite() {
    let dir = tmpdir("clobber");
    let out = dir.join("o.fits");
    let a = edge_image();
    fits::write(&map_of(a.clone()), &out, &WriteOptions::default()).unwrap();
    let before = std::fs::read(&out).unwrap();
    let b = a.mapv(|v| v + 10.0);
    let e = fits::write(&map_of(b.clone()), &out, &WriteOptions::default()).unwrap_err();
    assert!(matches!(e, Error::OutputExists { .. }), "{e:?}");
    assert!(e.to_string().contains("o.fits"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let opts = WriteOptions {
        overwrite: true,
        ..Default::default()
    };
    fits::write(&map_of(b), &out, &opts).unwrap();
    let r = fits::read(&out).unwrap();
    assert_eq!(r.data[[1, 1]], (a[[1, 1]] + 10.0).round());
    assert_eq!(listing(&dir), ["o.fits"]);
}

#[test]
fn input_is_never_overwritten() {
    let dir = tmpdir("input");
    let inp = dir.join("in.fits");
    std::fs::copy(common::data("aia_171_level1_128px.fits"), &inp).unwrap();
    let before = std::fs::read(&inp).unwrap();
    let m = fits::read(&inp).unwrap();
    let opts = WriteOptions {
        overwrite: true,
        ..Default::default()
    };
    // The same path, a different spelling of it, and a symbolic link to it.
    let alias = dir.join(".").join("in.fits");
    let link = dir.join("link.fits");
    std::os::unix::fs::symlink(&inp, &link).unwrap();
    for p in [&inp, &alias, &link] {
        let e = fits::write(&m, p, &opts).unwrap_err();
        assert!(matches!(e, Error::WouldOverwriteInput { .. }), "{e:?}");
    }
    assert_eq!(std::fs::read(&inp).unwrap(), before);
    assert_eq!(listing(&dir), ["in.fits", "link.fits"]);
}

#[test]
fn no_temporary_files_after_failures_or_edge_cases() {
    let dir = tmpdir("no-temp");
    // Missing output directory: Io naming the directory, nothing created.
    let missing = dir.join("nope");
    let e = fits::write(
        &map_of(edge_image()),
        &missing.join("o.fits"),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("nope"), "{e}");
    assert!(!missing.exists());
    // A card cfitsio rejects: the error comes after the temporary file was created.
    let mut h = aia_header();
    h.push(Card::parse(&format!("{:<80}", "BAD KEY = 1")));
    let m = AiaMap::new(edge_image(), h, Source::memory());
    let e = fits::write(&m, &dir.join("bad.fits"), &WriteOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Fits { .. }), "{e:?}");
    assert!(e.to_string().contains("bad.fits"), "{e}");
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    // All-missing image: written, every pixel BLANK, no DATAMIN/MAX/MEAN.
    let mut m = map_of(Array2::from_elem((4, 6), f32::NAN));
    m.header.set_f64("DATAMIN", 1.0, None);
    for (i, c) in [Compression::None, Compression::Rice]
        .into_iter()
        .enumerate()
    {
        let out = dir.join(format!("nan{i}.fits"));
        let opts = WriteOptions {
            compress: c,
            ..Default::default()
        };
        let rep = fits::write(&m, &out, &opts).unwrap();
        assert_eq!(rep.n_missing, 24);
        assert!(rep.datamin.is_nan() && rep.datamean.is_nan());
        let b = fits::read(&out).unwrap();
        assert!(b.data.iter().all(|v| v.is_nan()));
        assert!(!b.header.contains("DATAMIN") && !b.header.contains("DATAMEAN"));
    }
    assert_eq!(listing(&dir), ["nan0.fits", "nan1.fits"]);
    // An empty image is refused before anything is created.
    let e = fits::write(
        &map_of(Array2::zeros((0, 5))),
        &dir.join("empty.fits"),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    assert_eq!(listing(&dir), ["nan0.fits", "nan1.fits"]);
}

#[cfg(target_os = "linux")]
#[test]
fn unwritable_directory_is_an_io_error() {
    // /proc/self exists as a directory, but no file can be created in it (even by root).
    let out = Path::new("/proc/self/aiaprep-test.fits");
    let e = fits::write(&map_of(edge_image()), out, &WriteOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("aiaprep-test.fits"), "{e}");
}

// ---------------------------------------------------------------- bad inputs

#[test]
fn missing_and_non_files_are_io_errors() {
    let dir = tmpdir("io-errors");
    let p = dir.join("absent.fits");
    assert_file_error(fits::read(&p), &p, "Io");
    assert_file_error(fits::read(&dir), &dir, "Io");
}

#[test]
fn random_bytes_are_not_fits() {
    let dir = tmpdir("random");
    let p = dir.join("random.fits");
    let mut rng = Rng(99);
    let bytes: Vec<u8> = (0..10_000).map(|_| rng.next_u64() as u8).collect();
    std::fs::write(&p, bytes).unwrap();
    assert_file_error(fits::read(&p), &p, "Fits");
    assert_file_error(fits::read_image_f64(&p), &p, "Fits");
    // Text that starts like FITS but is not.
    let q = dir.join("text.fits");
    std::fs::write(&q, format!("{:<2880}", "SIMPLE  = T")).unwrap();
    assert_file_error(fits::read(&q), &q, "Fits");
}

#[test]
fn truncated_files_are_errors_not_garbage() {
    let dir = tmpdir("truncated");
    // A plain float64 image cut in half.
    let src = std::fs::read(common::data("aia_171_level1_128px.fits")).unwrap();
    let p = dir.join("plain_half.fits");
    std::fs::write(&p, &src[..src.len() / 2]).unwrap();
    assert_file_error(fits::read(&p), &p, "Fits");
    // RICE int16 files cut in the tile data (ours, large enough to have a long heap; and
    // astropy's fixture).
    let mut rng = Rng(5);
    let a = Array2::from_shape_fn((256, 300), |_| rng.range(0.0, 3000.0) as f32);
    let full = dir.join("rice_full.fits");
    let opts = WriteOptions {
        compress: Compression::Rice,
        ..Default::default()
    };
    fits::write(&map_of(a), &full, &opts).unwrap();
    for (name, bytes) in [
        ("ours", std::fs::read(&full).unwrap()),
        (
            "astropy",
            std::fs::read(common::data("rice_int16_64x48.fits")).unwrap(),
        ),
    ] {
        for frac in [0.5, 0.8, 0.95] {
            let cut = (bytes.len() as f64 * frac) as usize;
            let p = dir.join(format!("rice_{name}_{cut}.fits"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert_file_error(fits::read(&p), &p, "Fits");
        }
    }
    // Cut inside the compressed HDU's header.
    let rice = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    for cut in [2900, 4000, 5760] {
        let p = dir.join(format!("rice_header_{cut}.fits"));
        std::fs::write(&p, &rice[..cut]).unwrap();
        assert_file_error(fits::read(&p), &p, "Fits");
    }
    // A header with no data at all.
    let p = dir.join("header_only.fits");
    std::fs::write(&p, &src[..2880]).unwrap();
    assert_file_error(fits::read(&p), &p, "Fits");
}

#[test]
fn fits_without_an_image_is_reported() {
    let dir = tmpdir("no-image");
    let p = dir.join("empty_primary.fits");
    let mut hdr = String::new();
    for r in [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    0",
        "END",
    ] {
        hdr.push_str(&format!("{r:<80}"));
    }
    std::fs::write(&p, format!("{hdr:<2880}")).unwrap();
    let e = assert_file_error(fits::read(&p), &p, "NotAia");
    assert!(e.to_string().contains("no 2-D image"), "{e}");
}

// ---------------------------------------------------------------- generic float images

#[test]
fn generic_f32_image_round_trip() {
    let dir = tmpdir("psf");
    let p = dir.join("psf.fits");
    let mut rng = Rng(11);
    let a = Array2::from_shape_fn((9, 14), |_| rng.range(-1.0, 1.0) as f32);
    let mut h = Header::new();
    h.set("PSFCHAN", Value::Int(171), Some("channel"));
    h.set_f64("PSFSUM", 1.0, None);
    h.set("NAXIS1", Value::Int(999), None); // structural: must not pass through
    fits::write_image_f32(&p, a.view(), &h, false).unwrap();
    let (b, hb) = fits::read_image_f64(&p).unwrap();
    assert_eq!(b.dim(), (9, 14));
    for (&x, &y) in a.iter().zip(b.iter()) {
        assert_eq!(x as f64, y);
    }
    assert_eq!(hb.get("PSFCHAN"), Some(&Value::Int(171)));
    assert_eq!(hb.get("NAXIS1"), Some(&Value::Int(14)));
    assert!(!hb.contains("DATAMIN"));
    let e = fits::write_image_f32(&p, a.view(), &h, false).unwrap_err();
    assert!(matches!(e, Error::OutputExists { .. }));
    // Transposed (non-contiguous) views are written in their logical order.
    let q = dir.join("t.fits");
    fits::write_image_f32(&q, a.t(), &h, false).unwrap();
    let (bt, _) = fits::read_image_f64(&q).unwrap();
    assert_eq!(bt.dim(), (14, 9));
    assert_eq!(bt[[3, 2]], a[[2, 3]] as f64);
    assert_eq!(listing(&dir), ["psf.fits", "t.fits"]);
}

/// Corrupted inputs through the whole prep (read → check → register → write), 240 seeded
/// mutations of a real AIA image stored as RICE int16 like JSOC's files: bytes flipped in
/// the compressed tiles, header bytes replaced, runs zeroed. Each run either fails with a
/// typed error that names the input and leaves no output (and no temporary) behind, or
/// writes a complete level-1.5 file — never a panic, never a partial file.
#[test]
fn corrupted_inputs_fail_cleanly_through_prep() {
    use aiaprep::pipeline::{self, PrepOptions};
    let dir = tmpdir("corrupt");
    let src = fits::read(&common::data("aia_171_level1_128px.fits")).unwrap();
    let clean = dir.join("clean.fits");
    let w = WriteOptions {
        compress: Compression::Rice,
        ..Default::default()
    };
    fits::write(&src, &clean, &w).unwrap();
    let bytes = std::fs::read(&clean).unwrap();
    // The compressed image HDU's header starts at block 1; its data after the END card.
    let end_card = (2880..bytes.len())
        .step_by(80)
        .find(|&i| bytes[i..].starts_with(b"END     "))
        .unwrap();
    let data_start = (end_card / 2880 + 1) * 2880;
    assert!(data_start < bytes.len());
    let engines = aiaprep::engine::select_engines(&aiaprep::engine::EngineOptions {
        backend: aiaprep::engine::Backend::Cpu,
        register_on_cpu: false,
        ..Default::default()
    })
    .unwrap();
    let opts = PrepOptions::default();
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut rng = Rng(2024);
    let (mut failed, mut written) = (0, 0);
    for k in 0..240 {
        let mut b = bytes.clone();
        match k % 3 {
            0 => {
                for _ in 0..1 + rng.next_u64() % 16 {
                    let i = data_start + (rng.next_u64() as usize) % (b.len() - data_start);
                    b[i] ^= 1 << (rng.next_u64() % 8);
                }
            }
            1 => {
                let i = 2880 + (rng.next_u64() as usize) % (end_card - 2880);
                b[i] = b" 0123456789.-+=ETX'/"[(rng.next_u64() % 20) as usize];
            }
            _ => {
                let i = 2880 + (rng.next_u64() as usize) % (b.len() - 2880);
                let n = (1 + rng.next_u64() % 200) as usize;
                let n = n.min(b.len() - i);
                b[i..i + n].fill(0);
            }
        }
        let input = dir.join(format!("m{k:03}.fits"));
        std::fs::write(&input, &b).unwrap();
        let output = pipeline::output_path(&input, &out_dir);
        match pipeline::prep_file(&input, &output, &opts, &engines) {
            Ok(_) => {
                written += 1;
                assert!(
                    aiaprep::batch::is_complete_output(&output),
                    "mutation {k}: incomplete output"
                );
                std::fs::remove_file(&output).unwrap();
            }
            Err(e) => {
                failed += 1;
                if std::env::var_os("AIAPREP_SHOW_ERRORS").is_some() {
                    eprintln!("mutation {k}: {e}");
                }
                assert!(
                    e.to_string().contains(&input.display().to_string()),
                    "mutation {k}: error does not name the input: {e}"
                );
            }
        }
        assert!(
            listing(&out_dir).is_empty(),
            "mutation {k}: {:?}",
            listing(&out_dir)
        );
    }
    eprintln!("240 mutations: {failed} typed errors, {written} complete outputs");
    // Both outcomes occur (header damage fails; most single bit flips in the tiles decode).
    assert!(
        failed > 0 && written > 0,
        "{failed} failed, {written} written"
    );
}

/// The cards of a written file's image header that are not file layout (SIMPLE, EXTEND,
/// cfitsio's two standard COMMENT lines, tile-compression keywords).
fn content_cards(h: &Header) -> Vec<(String, Value)> {
    h.cards()
        .iter()
        .filter(|c| !matches!(c.key.as_str(), "SIMPLE" | "EXTEND" | "XTENSION" | "PCOUNT" | "GCOUNT"))
        .filter(|c| !(c.key.starts_with('Z') && aiaprep::header::is_structural(&c.key)))
        .filter(|c| {
            !(c.key == "COMMENT"
                && matches!(&c.value, Value::Text(t) if t.contains("FITS (Flexible Image Transport System)")
                    || t.contains("Astrophysics', volume 376")))
        })
        .map(|c| (c.key.clone(), c.value.clone()))
        .collect()
}

#[test]
fn stored_header_is_the_written_header() {
    let dir = tmpdir("stored-header");
    let mut a = edge_image();
    a[[0, 0]] = f32::NAN;
    let mut map = map_of(a);
    map.header.set_f64("DATAMIN", 1e30, Some("stale"));
    map.header.set("NAXIS1", Value::Int(9999), None); // structural: never passed through
    for (i, (dtype, compress, scaling)) in [
        (OutputType::F32, Compression::None, None),
        (OutputType::F32, Compression::Rice, None),
        (OutputType::I16, Compression::None, None),
        (OutputType::I16, Compression::Rice, Some((0.25, 3.0))),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.join(format!("out{i}.fits"));
        let opts = WriteOptions {
            dtype,
            compress,
            overwrite: false,
            scaling,
        };
        fits::write(&map, &out, &opts).unwrap();
        let written = fits::read_header(&out).unwrap().header;
        let ours = match dtype {
            OutputType::F32 => fits::stored_header_f32(&map),
            OutputType::I16 => fits::stored_header_i16(
                &map.header,
                &fits::encode_int16(map.data.view(), scaling).unwrap(),
            ),
        };
        assert_eq!(
            content_cards(&ours),
            content_cards(&written),
            "{dtype:?} {compress:?} {scaling:?}"
        );
        assert!(ours.get_f64("DATAMIN").unwrap() < 1e30);
        assert_eq!(
            ours.get("NAXIS1"),
            Some(&Value::Int(map.data.dim().1 as i64))
        );
    }
}
