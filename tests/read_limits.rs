//! Bounded resources on bad input: a file whose header claims dimensions, tiles, rows or a
//! heap that would need more memory than the read limit (`fits::ReadLimits`, default 1 GiB)
//! or more bytes than the file holds gets a typed error naming the file before anything is
//! allocated; the default still reads an 8192² image; saved PSFs are checked as they are read.

mod common;

use std::path::{Path, PathBuf};

use aiaprep::fits::{self, Compression, ReadLimits, WriteOptions};
use aiaprep::{AiaMap, Error, Header, Source, Value};
use ndarray::Array2;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aiaprep-limits-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn patched(dir: &Path, name: &str, src: &str, cards: &[(&str, &str)]) -> PathBuf {
    let mut bytes = std::fs::read(common::data(src)).unwrap();
    for (k, v) in cards {
        bytes = common::with_card(&bytes, k, v);
    }
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn names(e: &Error, p: &Path) {
    assert!(
        e.to_string().contains(&p.display().to_string()),
        "error does not name {}: {e}",
        p.display()
    );
}

fn too_large(r: aiaprep::Result<AiaMap>, p: &Path) -> (u64, u64) {
    match r {
        Err(e @ Error::TooLarge { .. }) => {
            names(&e, p);
            let Error::TooLarge { bytes, limit, .. } = e else {
                unreachable!()
            };
            assert!(bytes > limit);
            (bytes, limit)
        }
        other => panic!("{}: expected TooLarge, got {other:?}", p.display()),
    }
}

fn truncated(r: aiaprep::Result<AiaMap>, p: &Path) {
    match r {
        Err(e @ Error::Fits { .. }) => {
            names(&e, p);
            // cfitsio's refusal: its status (its detail lines are on a process-wide stack
            // that a test reading in parallel may drain first).
            assert!(
                e.to_string().contains("truncated")
                    || e.to_string()
                        .contains("number of table rows != the number of tiles")
                    || e.to_string().contains("(cfitsio status 414)"),
                "{e}"
            );
        }
        other => panic!("{}: expected a Fits error, got {other:?}", p.display()),
    }
}

/// Tile-compressed headers that claim a huge image or huge tiles: `TooLarge`, with the size
/// that was claimed, before the pixels (or cfitsio's tile buffers) are allocated. Under the
/// default limit the same files without the claim read.
#[test]
fn claimed_dimensions_and_tiles_over_the_limit_are_refused_before_allocation() {
    let dir = tmpdir("claims");
    let src = "rice_int16_64x48.fits";
    assert!(fits::read(&common::data(src)).is_ok());
    // A 100000 × 100000 image (40 GB as f32), in tiles of 100000 × 2084 so that the
    // table's 48 rows are still one per tile (cfitsio checks that when it opens the HDU).
    let p = patched(
        &dir,
        "huge_image.fits",
        src,
        &[
            ("ZNAXIS1", "100000"),
            ("ZNAXIS2", "100000"),
            ("ZTILE1", "100000"),
            ("ZTILE2", "2084"),
        ],
    );
    let (bytes, limit) = too_large(fits::read(&p), &p);
    assert!(bytes >= 100_000 * 100_000 * 4, "{bytes}");
    assert_eq!(limit, ReadLimits::DEFAULT_MAX_BYTES);
    // Tiles of 2⁴⁰ pixels (the fast decoder refuses the layout; cfitsio would allocate a
    // tile buffer of that size).
    let p = patched(&dir, "huge_tile.fits", src, &[("ZTILE1", "1099511627776")]);
    let (bytes, _) = too_large(fits::read(&p), &p);
    assert!(bytes >= 8 << 40, "{bytes}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Headers that claim more rows (tiles), a larger heap or a larger image than the file
/// holds: a `Fits` error before the data unit is read (cfitsio itself refuses a table
/// whose rows are not one per tile; the rest is ours: "truncated").
#[test]
fn claimed_rows_heap_and_pixels_past_the_end_of_the_file_are_refused() {
    let dir = tmpdir("past-end");
    for (name, src, cards) in [
        (
            "rows.fits",
            "rice_int16_64x48.fits",
            &[("NAXIS2", "1000000000")][..],
        ),
        (
            "heap.fits",
            "rice_int16_64x48.fits",
            &[("PCOUNT", "1099511627776")][..],
        ),
        (
            "plain.fits",
            "plain_float32_25x17.fits",
            &[("NAXIS1", "20000"), ("NAXIS2", "20000")][..],
        ),
    ] {
        let p = patched(&dir, name, src, cards);
        truncated(fits::read(&p), &p);
        // The f64 reader (PSFs) checks the same way.
        match fits::read_image_f64(&p) {
            Err(e @ Error::Fits { .. }) => names(&e, &p),
            other => panic!("{name}: {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The limit is an option: the real 128² AIA file reads under the default, and a limit
/// below what it needs (128² × 4 bytes of pixels + the compressed data unit) refuses it,
/// naming it, both in the library and in `prep` (`--max-input-mib`). The f64 reader counts
/// 8 bytes a pixel.
#[test]
fn the_limit_is_an_option() {
    let p = common::data("aia_171_level1_128px.fits");
    let m = fits::read(&p).unwrap();
    assert_eq!(m.shape_xy(), (128, 128));
    let need = 128 * 128 * 4;
    let small = ReadLimits {
        max_bytes: need - 1,
    };
    let (bytes, limit) = too_large(fits::read_limited(&p, &small), &p);
    assert!(bytes >= need && limit == need - 1);
    let enough = ReadLimits {
        max_bytes: 4 * need,
    };
    assert!(fits::read_limited(&p, &enough).is_ok());
    // 8 bytes a pixel (the file is a plain image: no data unit counted besides).
    let f64_limit = ReadLimits {
        max_bytes: 2 * need - 1,
    };
    assert!(matches!(
        fits::read_image_f64_limited(&p, &f64_limit),
        Err(Error::TooLarge { .. })
    ));
}

/// An 8192² tile-compressed image (a constant, so the file is small) reads under the
/// default limit; a 256 MiB limit (its pixels alone as f32) refuses it.
#[test]
fn the_default_limit_reads_8192_squared() {
    let dir = tmpdir("8192");
    let p = dir.join("big.fits");
    let mut h = Header::new();
    h.set("TELESCOP", Value::Str("SDO/AIA".into()), None);
    let map = AiaMap::new(
        Array2::from_elem((8192, 8192), 1234.0f32),
        h,
        Source::memory(),
    );
    let opts = WriteOptions {
        compress: Compression::Rice,
        ..Default::default()
    };
    fits::write(&map, &p, &opts).unwrap();
    drop(map);
    assert!(std::fs::metadata(&p).unwrap().len() < 8 << 20);
    let m = fits::read(&p).unwrap();
    assert_eq!(m.shape_xy(), (8192, 8192));
    assert!(m.data.iter().all(|&v| v == 1234.0));
    drop(m);
    let limit = ReadLimits {
        max_bytes: 256 << 20,
    };
    too_large(fits::read_limited(&p, &limit), &p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `fits::read_psf`: a PSF file with a negative, a NaN or only zeros is refused with
/// `BadPsf` naming the file and the value; a good one reads as written.
#[test]
fn psf_files_are_checked_as_they_are_read() {
    let dir = tmpdir("psf");
    let write = |name: &str, a: &Array2<f32>| {
        let p = dir.join(name);
        let opts = WriteOptions {
            dtype: fits::OutputType::F32,
            ..Default::default()
        };
        fits::write(
            &AiaMap::new(a.clone(), Header::new(), Source::memory()),
            &p,
            &opts,
        )
        .unwrap();
        p
    };
    let good = Array2::from_shape_fn((9, 7), |(r, c)| {
        (-(((r as f32 - 4.0).powi(2) + (c as f32 - 3.0).powi(2)) / 3.0)).exp()
    });
    let p = write("good.fits", &good);
    let psf = fits::read_psf(&p, &ReadLimits::default()).unwrap();
    assert_eq!(psf.dim(), (9, 7));
    for (a, b) in psf.iter().zip(good.iter()) {
        assert_eq!(*a, f64::from(*b));
    }
    for (name, r, c, v, want) in [
        ("negative.fits", 2, 3, -1e-3f32, "negative value"),
        ("nan.fits", 5, 1, f32::NAN, "non-finite value"),
    ] {
        let mut a = good.clone();
        a[[r, c]] = v;
        let p = write(name, &a);
        match fits::read_psf(&p, &ReadLimits::default()) {
            Err(e @ Error::BadPsf { .. }) => {
                names(&e, &p);
                let msg = e.to_string();
                assert!(
                    msg.contains(want) && msg.contains(&format!("[{r}, {c}]")),
                    "{msg}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let p = write("zero.fits", &Array2::zeros((4, 4)));
    assert!(matches!(
        fits::read_psf(&p, &ReadLimits::default()),
        Err(Error::BadPsf { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Byte offset of the data unit of HDU `k` (0-based) of a FITS file.
fn data_start(bytes: &[u8], k: usize) -> usize {
    let mut hdu = 0;
    let mut at = 0;
    while at + 80 <= bytes.len() {
        let card = &bytes[at..at + 80];
        if card.starts_with(b"END") && card[3..].iter().all(|&c| c == b' ') {
            let data = (at + 80).div_ceil(2880) * 2880;
            if hdu == k {
                return data;
            }
            // Skip this HDU's data (none in the primary HDU of these files).
            hdu += 1;
            at = data;
            continue;
        }
        at += 80;
    }
    panic!("no HDU {k}");
}

/// A tile descriptor that claims 2³² − 1 bytes (found by the `rice_table` fuzz target:
/// cfitsio allocated that before reading the tile): a `Fits` error naming the tile, from
/// both readers (the crate's decoder and cfitsio's, which the f64 reader uses), with no
/// such allocation. A descriptor pointing past the heap likewise.
#[test]
fn forged_tile_descriptors_are_refused_before_cfitsio_allocates() {
    let dir = tmpdir("descriptors");
    let src = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let table = data_start(&src, 1);
    for (name, len, off) in [("len.fits", u32::MAX, 0u32), ("off.fits", 16, 1 << 30)] {
        let mut b = src.clone();
        // Tile 3's descriptor (1PB: two big-endian 32-bit integers, length then offset).
        let d = table + 2 * 8;
        b[d..d + 4].copy_from_slice(&len.to_be_bytes());
        b[d + 4..d + 8].copy_from_slice(&off.to_be_bytes());
        let p = dir.join(name);
        std::fs::write(&p, &b).unwrap();
        both_readers_refuse(&p, &["tile 3", "outside"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `src` (`rice_int16_64x48.fits`, or it relabelled) with tile 5 made to overrun: its first
/// pixel, then the code "fs = 0" and nothing but zero bits.
fn with_tile5_overrunning(src: &[u8]) -> Vec<u8> {
    let table = data_start(src, 1);
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    // Tile 5's descriptor (1PB: length, then offset); the heap follows the 48 rows.
    let (len, off) = (be(&src[table + 32..]), be(&src[table + 36..]));
    assert!(len > 4);
    let t = table + 48 * 8 + off;
    let mut b = src.to_vec();
    b[t + 2] = 0x10;
    b[t + 3..t + len].fill(0);
    b
}

/// A tile whose Rice code runs past its bytes in a zero run (found by the `rice_table`
/// fuzz target: cfitsio's decoder follows a zero run past the end of the tile's buffer
/// before it checks, a read fault when the run reaches unmapped memory): refused with a
/// `Fits` error naming the tile by both readers, before cfitsio decodes anything.
#[test]
fn a_tile_whose_code_overruns_is_refused_before_cfitsio_reads_it() {
    let dir = tmpdir("overrun");
    let src = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let b = with_tile5_overrunning(&src);
    let p = dir.join("overrun.fits");
    std::fs::write(&p, &b).unwrap();
    both_readers_refuse(&p, &["RICE_1 tile 5", "runs past the tile's bytes"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The integer value of card `key` in the header that starts at byte `start`.
fn card_int(bytes: &[u8], start: usize, key: &str) -> usize {
    let name = format!("{key:<8}= ");
    let card = bytes[start..]
        .chunks_exact(80)
        .find(|c| c.starts_with(name.as_bytes()))
        .unwrap_or_else(|| panic!("no {key}"));
    let value = std::str::from_utf8(&card[10..30]).unwrap().trim();
    value.parse().unwrap_or_else(|_| panic!("{key} = {value}"))
}

/// Tiles cfitsio would decode with a leak (finding 14, from the `fits_read` header grid:
/// cfitsio's GZIP decoder returns without freeing a tile's compressed bytes when the tile
/// does not inflate, or inflates to a size it does not expect, and it has no decoder for
/// NOCOMPRESS tiles at all), RICE tiles named `'RICE_ONE'` (cfitsio's other name for
/// RICE_1, which the tile check did not know), and HCOMPRESS_1 and PLIO_1 tiles (finding
/// 15: a leak in cfitsio's HCOMPRESS decoder; neither decoder bounds its reads and writes
/// by the tile): refused by both readers before cfitsio decodes a tile, with an error
/// naming the tile. Valid gzip tiles (the crate's own float32 outputs, byte-shuffled
/// GZIP_2) and a valid `'RICE_ONE'` file still read.
#[test]
fn tiles_cfitsio_would_leak_or_overrun_are_refused_before_it_decodes_them() {
    let dir = tmpdir("gzip_tiles");
    let write = |name: &str, b: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    // A float32 image the crate writes tile-compressed: GZIP_2, one tile a row.
    let pixels = Array2::from_shape_fn((30, 40), |(r, c)| {
        ((r * 40 + c) as f32 * 0.731).sin() * 3000.0 + r as f32 / 7.0
    });
    let good = dir.join("gzip2.fits");
    let opts = WriteOptions {
        dtype: fits::OutputType::F32,
        compress: Compression::Rice,
        ..Default::default()
    };
    fits::write(
        &AiaMap::new(pixels.clone(), Header::new(), Source::memory()),
        &good,
        &opts,
    )
    .unwrap();
    let src = std::fs::read(&good).unwrap();
    assert!(src.windows(8).any(|w| w == b"'GZIP_2 "));
    assert_eq!(fits::read(&good).unwrap().data, pixels);
    let f64s = fits::read_image_f64(&good).unwrap();
    assert_eq!(f64s.0.dim(), pixels.dim());
    assert!(f64s.0.iter().zip(&pixels).all(|(a, b)| *a == f64::from(*b)));
    // The last byte of the heap: the length in the last tile's gzip trailer.
    let (start, data) = (
        src.windows(8).position(|w| w == b"XTENSION").unwrap(),
        data_start(&src, 1),
    );
    let heap_end = data
        + card_int(&src, start, "NAXIS1") * card_int(&src, start, "NAXIS2")
        + card_int(&src, start, "PCOUNT");
    let mut b = src.clone();
    b[heap_end - 1] ^= 0x01;
    both_readers_refuse(
        &write("gzip2_trailer.fits", &b),
        &["GZIP_2 tile 30 is not a gzip stream"],
    );
    // Valid gzip streams of the wrong size: longer than 16-bit pixels would make them, and
    // shorter than tiles twice as wide.
    let p = write(
        "gzip2_zbitpix16.fits",
        &common::with_card(&src, "ZBITPIX", "16"),
    );
    both_readers_refuse(
        &p,
        &["GZIP_2 tile 1 is not a gzip stream that inflates to at most 80 bytes (40 pixels)"],
    );
    let wide = common::with_card(&common::with_card(&src, "ZNAXIS1", "80"), "ZTILE1", "80");
    both_readers_refuse(
        &write("gzip2_wide.fits", &wide),
        &["GZIP_2 tile 1 inflates to 160 bytes, not [4] bytes a pixel × 80 pixels"],
    );
    // RICE_1 tiles under the GZIP and NOCOMPRESS names.
    let rice = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let p = write(
        "gzip1.fits",
        &common::with_card(&rice, "ZCMPTYPE", "'GZIP_1'"),
    );
    both_readers_refuse(&p, &["GZIP_1 tile 1 is not a gzip stream"]);
    let p = write(
        "nocompress.fits",
        &common::with_card(&rice, "ZCMPTYPE", "'NOCOMPRESS'"),
    );
    both_readers_refuse(&p, &["NOCOMPRESS tile 1 holds"]);
    // HCOMPRESS_1 and PLIO_1 (finding 15): cfitsio's decoders do not bound their reads and
    // writes by the tile, so no tile of theirs reaches it.
    for algorithm in ["HCOMPRESS_1", "PLIO_1"] {
        let p = write(
            &format!("{algorithm}.fits"),
            &common::with_card(&rice, "ZCMPTYPE", &format!("'{algorithm}'")),
        );
        both_readers_refuse(
            &p,
            &[
                &format!("{algorithm} tile 1 holds"),
                "does not bound its reads and writes",
            ],
        );
    }
    // RICE_ONE: read as RICE_1; tile 5 made to overrun (as in the test above) is refused.
    let one = common::with_card(&rice, "ZCMPTYPE", "'RICE_ONE'");
    let p = write("rice_one.fits", &one);
    let want = fits::read(&common::data("rice_int16_64x48.fits")).unwrap();
    let got = fits::read(&p).unwrap().data;
    assert!(got.iter().any(|v| v.is_nan()), "the file has BLANK pixels");
    assert!(got
        .iter()
        .zip(&want.data)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    let b = with_tile5_overrunning(&one);
    both_readers_refuse(
        &write("rice_one_overrun.fits", &b),
        &["RICE_1 tile 5", "runs past the tile's bytes"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `bytes` with its first card that starts with `old` replaced by `card` (padded to 80).
fn with_card_replaced(bytes: &[u8], old: &[u8], card: &str) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let at = b
        .chunks_exact(80)
        .position(|c| c.starts_with(old))
        .unwrap_or_else(|| panic!("no card {}", String::from_utf8_lossy(old)))
        * 80;
    b[at..at + 80].copy_from_slice(format!("{card:<80}").as_bytes());
    b
}

/// A RICE_1 file whose tile column is not the unscaled byte array (`1PB`) that tiled-image
/// compression prescribes (finding 17, from the `fits_read` header grid: cfitsio reads a
/// tile's bytes with a conversion from the column's type and scaling, and from an `X`
/// column, whose elements are bits, a tile's bytes run on into the next rows', so its
/// decoder got other bytes than the tile check had passed, and overran them): refused by
/// both readers before cfitsio reads a tile, naming the column and its TFORM. The same
/// file with `'1QB'` (64-bit descriptors, rewritten) still reads bit for bit.
#[test]
fn tile_columns_cfitsio_would_convert_are_refused_before_it_reads_them() {
    let dir = tmpdir("tile_columns");
    let rice = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let write = |name: &str, b: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    for (name, form) in [("x", "1PX(128)"), ("l", "1PL(128)"), ("a", "1PA(128)")] {
        let b = common::with_card(&rice, "TFORM1", &format!("'{form}'"));
        both_readers_refuse(
            &write(&format!("tform_{name}.fits"), &b),
            &[
                &format!("the COMPRESSED_DATA column (TFORM1 = '{form}'"),
                "1PB or 1QB",
            ],
        );
    }
    // Bytes with a scale or an offset, in a card that replaces the file's COMMENT.
    for (name, card, shown) in [
        ("tzero", "TZERO1  =                 -128", "offset -128"),
        ("tscal", "TSCAL1  =                    2", "scale 2"),
    ] {
        let b = with_card_replaced(&rice, b"COMMENT RICE_1", card);
        both_readers_refuse(
            &write(&format!("{name}.fits"), &b),
            &["the COMPRESSED_DATA column (TFORM1 = '1PB(128)'", shown],
        );
    }
    // 1QB: the 48 descriptors rewritten as 64-bit pairs (NAXIS1 16); the heap moves with
    // the table, so THEAP is not needed. Reads as the 1PB file does.
    let table = data_start(&rice, 1);
    let be = |b: &[u8]| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let mut q = common::with_card(
        &common::with_card(&rice, "TFORM1", "'1QB(128)'"),
        "NAXIS1",
        "16",
    );
    let ext = rice.windows(8).position(|w| w == b"XTENSION").unwrap();
    let heap_len = card_int(&rice, ext, "PCOUNT");
    let mut data: Vec<u8> = Vec::new();
    for row in 0..48 {
        let d = table + 8 * row;
        data.extend_from_slice(&be(&rice[d..]).to_be_bytes());
        data.extend_from_slice(&be(&rice[d + 4..]).to_be_bytes());
    }
    data.extend_from_slice(&rice[table + 48 * 8..table + 48 * 8 + heap_len]);
    data.resize(data.len().div_ceil(2880) * 2880, 0);
    q.truncate(table);
    q.extend_from_slice(&data);
    let p = write("qb.fits", &q);
    let want = fits::read(&common::data("rice_int16_64x48.fits")).unwrap();
    for got in [
        fits::read(&p).unwrap().data,
        fits::read_image_f64(&p).unwrap().0.mapv(|v| v as f32),
    ] {
        assert!(got.iter().any(|v| v.is_nan()), "the file has BLANK pixels");
        assert!(got
            .iter()
            .zip(&want.data)
            .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rice_int16_64x48.fits` with a second column, `UNCOMPRESSED_DATA` (`1PB`), in the cards
/// of its HISTORY and COMMENT; tile 1's `COMPRESSED_DATA` emptied and its
/// `UNCOMPRESSED_DATA` set to `len` bytes at heap offset 0 (the other rows' empty).
fn with_uncompressed_tile1(rice: &[u8], len: u32) -> Vec<u8> {
    let table = data_start(rice, 1);
    let ext = rice.windows(8).position(|w| w == b"XTENSION").unwrap();
    let heap_len = card_int(rice, ext, "PCOUNT");
    let mut b = common::with_card(&common::with_card(rice, "TFIELDS", "2"), "NAXIS1", "16");
    for (old, card) in [
        (&b"HISTORY made by"[..], "TTYPE2  = 'UNCOMPRESSED_DATA'"),
        (&b"COMMENT RICE_1"[..], "TFORM2  = '1PB(200)'"),
    ] {
        b = with_card_replaced(&b, old, card);
    }
    let mut data: Vec<u8> = Vec::new();
    for row in 0..48 {
        let d = &rice[table + 8 * row..table + 8 * row + 8];
        let (first, second) = if row == 0 {
            ([0u8; 8], [len.to_be_bytes(), [0; 4]].concat())
        } else {
            (d.try_into().unwrap(), vec![0u8; 8])
        };
        data.extend_from_slice(&first);
        data.extend_from_slice(&second);
    }
    data.extend_from_slice(&rice[table + 48 * 8..table + 48 * 8 + heap_len]);
    data.resize(data.len().div_ceil(2880) * 2880, 0);
    b.truncate(table);
    b.extend_from_slice(&data);
    b
}

/// A tile stored uncompressed (an empty `COMPRESSED_DATA`, its pixels in an
/// `UNCOMPRESSED_DATA` column) that holds more values than the tile has pixels (finding 18,
/// from reading cfitsio after 17: cfitsio reads as many values as the descriptor states
/// into its tile buffer, which holds the largest tile's pixels; a heap overflow that
/// corrupted malloc's state, a crash in a later `free`): refused by both readers before
/// cfitsio reads it, naming the tile. A tile holding exactly its pixels still reads.
#[test]
fn uncompressed_tiles_larger_than_the_tile_are_refused_before_cfitsio_reads_them() {
    let dir = tmpdir("uncompressed");
    let rice = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let p = dir.join("overflow.fits");
    std::fs::write(&p, with_uncompressed_tile1(&rice, 200)).unwrap();
    both_readers_refuse(
        &p,
        &["UNCOMPRESSED_DATA tile 1 holds 200 values, not its 64 pixels"],
    );
    // 64 bytes: tile 1 (the image's first row) is the heap's first 64 bytes as values.
    let p = dir.join("exact.fits");
    std::fs::write(&p, with_uncompressed_tile1(&rice, 64)).unwrap();
    let want = fits::read(&common::data("rice_int16_64x48.fits")).unwrap();
    let table = data_start(&rice, 1);
    let heap = &rice[table + 48 * 8..];
    for got in [
        fits::read(&p).unwrap().data,
        fits::read_image_f64(&p).unwrap().0.mapv(|v| v as f32),
    ] {
        assert!(got
            .row(0)
            .iter()
            .zip(&heap[..64])
            .all(|(a, b)| *a == f32::from(*b)));
        assert!(got
            .rows()
            .into_iter()
            .skip(1)
            .flatten()
            .zip(want.data.rows().into_iter().skip(1).flatten())
            .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Cards whose value or comment cfitsio would copy past its 71- and 73-byte buffers
/// (finding 19, by the `fits_read` and `psf_file` corpora once cfitsio was built with
/// AddressSanitizer: with an `=` left of column 9, `ffpsvc` copies a string, token or
/// comment to the card's end, unbounded, onto the stack): refused by both readers before
/// cfitsio parses the header, naming the HDU and the card, also where the file ends inside
/// the card. A 68-character string in the standard place still reads, whole.
#[test]
fn cards_cfitsio_would_copy_past_its_buffers_are_refused_before_it_parses_them() {
    let dir = tmpdir("long_values");
    let rice = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let with_card = |card: &str| with_card_replaced(&rice, b"HISTORY made by", card);
    let string = format!("A='{}'", "x".repeat(76));
    let comment = format!("A=1 / {}", "y".repeat(74));
    let token = format!("AB={}", "7".repeat(77));
    for (name, card) in [
        ("string", &string),
        ("comment", &comment),
        ("token", &token),
    ] {
        let p = dir.join(format!("{name}.fits"));
        std::fs::write(&p, with_card(card)).unwrap();
        both_readers_refuse(
            &p,
            &[
                "HDU 2: card 52 has a value or comment longer than FITS allows",
                &card[..20],
            ],
        );
    }
    // A header the file ends inside, in its last card: cfitsio reads the rest as zeros, so
    // a value there runs to the end of the file (found by the run after the first fix).
    let mut cut = rice[..2880].to_vec();
    for card in [
        "XTENSION= 'IMAGE   '",
        "BITPIX  =                    8",
        "NAXIS   =   0",
    ] {
        cut.extend_from_slice(format!("{card:<80}").as_bytes());
    }
    cut.extend_from_slice(format!("AB={}", "9".repeat(73)).as_bytes());
    let p = dir.join("cut.fits");
    std::fs::write(&p, &cut).unwrap();
    both_readers_refuse(
        &p,
        &["HDU 2: card 4 has a value or comment longer than FITS allows"],
    );
    // A keyword cfitsio reads as an integer, with a value of 29 characters that does not
    // convert: cfitsio's message about it overflowed its buffer (finding 21).
    let dither = format!("ZDITHER0= '{}'", "q".repeat(27));
    let p = dir.join("dither.fits");
    std::fs::write(&p, with_card(&dither)).unwrap();
    both_readers_refuse(
        &p,
        &["HDU 2: card 52 has a value longer than an integer may be (28 characters)"],
    );
    let long = "z".repeat(68);
    let p = dir.join("standard.fits");
    std::fs::write(&p, with_card(&format!("LONGSTR = '{long}'"))).unwrap();
    assert_eq!(
        fits::read(&p).unwrap().header.get_str("LONGSTR"),
        Some(long.as_str())
    );
    fits::read_image_f64(&p).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A compressed image whose table header has a keyword cfitsio cannot copy into the image
/// header (finding 20, from `fits_read` runs with cfitsio under AddressSanitizer: cfitsio's
/// header copy, on refusing the record, goes on to a loop over a count it never set, up to
/// 2³¹ iterations, which timed the fuzzer out): refused by both readers before the copy,
/// naming the card. The same name written as cfitsio's copy wants it still reads.
#[test]
fn keywords_cfitsio_cannot_copy_are_refused_before_it_copies_the_header() {
    let dir = tmpdir("bad_keys");
    let rice = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    for (name, card) in [
        ("caret", "LVL^NUM =                    1"),
        ("blank", "LVL NUM =                    1"),
        ("early", "A=1"),
    ] {
        let p = dir.join(format!("{name}.fits"));
        std::fs::write(&p, with_card_replaced(&rice, b"HISTORY made by", card)).unwrap();
        both_readers_refuse(&p, &["a keyword cfitsio cannot copy", &format!("'{card}'")]);
    }
    let p = dir.join("good.fits");
    let b = with_card_replaced(&rice, b"HISTORY made by", "lvl_num2=                    7");
    std::fs::write(&p, b).unwrap();
    assert_eq!(
        fits::read(&p).unwrap().header.get_f64("LVL_NUM2"),
        Some(7.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Table headers whose TFIELDS (10¹⁴, or 1000) or NAXIS1 (not an integer) cfitsio would
/// mishandle (found by the `psf_file` fuzz target: cfitsio's check of those values does
/// not stop it, and it allocates its column descriptors from an unset TFIELDS): refused
/// before cfitsio parses that header, naming the HDU; the standard's 999 passes.
#[test]
fn table_headers_cfitsio_would_mishandle_are_refused_before_it_parses_them() {
    let dir = tmpdir("tfields");
    let p = patched(
        &dir,
        "tfields.fits",
        "rice_int16_64x48.fits",
        &[("TFIELDS", "100000000000000")],
    );
    for r in [
        fits::read(&p).map(|_| ()),
        fits::read_header(&p).map(|_| ()),
    ] {
        match r {
            Err(e @ Error::Fits { .. }) => {
                names(&e, &p);
                assert!(
                    e.to_string()
                        .contains("HDU 2: card 8 of a table header must be TFIELDS"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // Values cfitsio mishandles, and a 4th card of garbage (the fuzzer's third find).
    for (name, key, value) in [
        ("tfields1000.fits", "TFIELDS", "1000"),
        ("naxis1.fits", "NAXIS1", "\u{ff}\u{ff}8"),
        ("naxis2.fits", "NAXIS2", "-48"),
        ("pcount.fits", "PCOUNT", "1.5"),
    ] {
        let p = patched(&dir, name, "rice_int16_64x48.fits", &[(key, value)]);
        fits_error_with(&p, &format!("must be {key}"));
    }
    let edited = |name: &str, src: &str, card: &[u8; 10], edit: &dyn Fn(&mut Vec<u8>, usize)| {
        let mut b = std::fs::read(common::data(src)).unwrap();
        let at = b.windows(10).position(|w| w == card).expect("card");
        edit(&mut b, at);
        let p = dir.join(name);
        std::fs::write(&p, &b).unwrap();
        p
    };
    let garbage = |b: &mut Vec<u8>, at: usize| {
        for (k, x) in b[at..at + 80].iter_mut().enumerate() {
            *x = (k as u8).wrapping_mul(151) | 0x80;
        }
    };
    let src = "rice_int16_64x48.fits";
    fits_error_with(
        &edited("garbage.fits", src, b"NAXIS1  = ", &garbage),
        "card 4",
    );
    // The same in a file that ends inside that header (the fourth find).
    let cut = |b: &mut Vec<u8>, at: usize| {
        garbage(b, at);
        b.truncate(at + 300);
    };
    fits_error_with(
        &edited("garbage_cut.fits", src, b"NAXIS1  = ", &cut),
        "card 4",
    );
    // A 5th card named NAXIS2 without a value (the fuzzer's second find).
    let no_value = |b: &mut Vec<u8>, at: usize| b[at + 8..at + 10].copy_from_slice(b"  ");
    fits_error_with(
        &edited("naxis2_no_value.fits", src, b"NAXIS2  = ", &no_value),
        "card 5 of a table header must be NAXIS2",
    );
    // Tiles of 0 pixels (the fifth find: cfitsio divides by ZTILEn as it opens the HDU)
    // and a RICE block size of 0 (the seventh: it divides by that too).
    let tiles = "rice_int16_tiles_70x45.fits";
    for (name, key, value) in [
        ("ztile0.fits", "ZTILE2", "0"),
        ("ztile_two.fits", "ZTILE2", "0    16"),
        ("zval1.fits", "ZVAL1", "0"),
    ] {
        let p = patched(&dir, name, tiles, &[(key, value)]);
        fits_error_with(&p, &format!("HDU 2: {key} must be an integer from 1"));
    }
    // A second ZTILE1 card with a string value (the sixth find).
    let rename = |b: &mut Vec<u8>, at: usize| b[at..at + 8].copy_from_slice(b"ZTILE1  ");
    fits_error_with(
        &edited("ztile_string.fits", tiles, b"ZNAME1  = ", &rename),
        "ZTILE1 must be an integer",
    );
    // 999 columns pass this check (cfitsio then finds no TFORM2 and says so).
    let p = patched(
        &dir,
        "tfields999.fits",
        "rice_int16_64x48.fits",
        &[("TFIELDS", "999")],
    );
    let e = fits_error_with(&p, "");
    assert!(!e.contains("must be TFIELDS"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Table headers that cfitsio reads more loosely than the standard writes them, checked as
/// cfitsio reads them (found by the `fits_read` fuzz target, then by reading cfitsio's
/// keyword parser):
/// - `XTENSION ='BINTABLE'`: cfitsio takes the value after the first `=` anywhere on the
///   card, so this is a table to it; with a 7th card of garbage it allocated 2⁵⁴ column
///   descriptors (two findings);
/// - a file whose first HDU is such a table: cfitsio parses it as it opens the file, which
///   a file need not start with `SIMPLE` for;
/// - `ZTILE2= 0` and `HIERARCH ZTILE2 = 0`: cfitsio names a key by what precedes the blank
///   or `=`, and reads these as ZTILE2, dividing by 0 (SIGFPE) as it opens the HDU;
/// - a second `ZTILE2` card whose value is a carriage return, then `1`: cfitsio's value is
///   the token up to the first blank (`"\r"`), which it fails to convert, leaving a tile
///   size of 0 (SIGFPE again; the check had trimmed the `\r` as white space and read 1);
///   a `NAXIS2` written so is refused by the first-cards check for the same reason.
///
/// The same tables written by the standard still read.
#[test]
fn table_headers_cfitsio_reads_loosely_are_checked_as_it_reads_them() {
    let dir = tmpdir("loose_cards");
    let src = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let tiles = std::fs::read(common::data("rice_int16_tiles_70x45.fits")).unwrap();
    // Replace the card that starts with `key8` (at a card boundary) by `card`.
    let with = |b: &[u8], key8: &[u8], card: &[u8]| -> Vec<u8> {
        let at = b.windows(key8.len()).position(|w| w == key8).expect("card");
        assert_eq!(at % 80, 0);
        let mut out = b.to_vec();
        let mut c = card.to_vec();
        c.resize(80, b' ');
        out[at..at + 80].copy_from_slice(&c);
        out
    };
    let mut garbage = b"GC".to_vec();
    garbage.resize(80, 0xf3);
    let write = |name: &str, b: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    let loose = with(&src, b"XTENSION= ", b"XTENSION ='BINTABLE'");
    let bad = with(&loose, b"GCOUNT  = ", &garbage);
    fits_error_with(
        &write("xtension_eq.fits", &bad),
        "HDU 2: card 7 of a table header must be GCOUNT",
    );
    // The loose XTENSION card alone is a table like any other.
    assert_eq!(
        fits::read(&write("xtension_eq_ok.fits", &loose))
            .unwrap()
            .shape_xy(),
        (64, 48)
    );
    // The table as the file's first HDU (the primary HDU's header block dropped).
    let first = src.windows(8).position(|w| w == b"XTENSION").unwrap();
    let bad_first = with(&src, b"GCOUNT  = ", &garbage);
    let p = write("first_hdu_table.fits", &bad_first[first..]);
    both_readers_refuse(&p, &["HDU 1: card 7 of a table header must be GCOUNT"]);
    // Without the garbage card it reads: cfitsio takes the tile-compressed image for HDU 1.
    assert_eq!(
        fits::read(&write("first_hdu_table_ok.fits", &src[first..]))
            .unwrap()
            .shape_xy(),
        (64, 48)
    );
    for (name, card) in [
        ("ztile_eq.fits", &b"ZTILE2= 0"[..]),
        ("ztile_hierarch.fits", b"HIERARCH ZTILE2 = 0"),
        ("zval_eq.fits", b"ZVAL1=0"),
    ] {
        let key8 = if name.starts_with("zval") {
            b"ZVAL1   = "
        } else {
            b"ZTILE2  = "
        };
        let p = write(name, &with(&tiles, key8, card));
        both_readers_refuse(&p, &["HDU 2: ", " must be an integer from 1"]);
    }
    // The fuzz input's shape: ZTILE1 dropped (cfitsio defaults it to ZNAXIS1), ZTILE2
    // twice, the second with a carriage return before its digit (the one cfitsio finds
    // first here: its key search resumes where the last one ended).
    let twice = with(
        &with(&src, b"ZTILE2  = ", b"ZTILE2  =              \r     1"),
        b"ZTILE1  = ",
        b"ZTILE2  =                   64",
    );
    let p = write("ztile_cr.fits", &twice);
    both_readers_refuse(&p, &["HDU 2: ZTILE2 must be an integer from 1"]);
    // Finding 16: ZNAXIS1 written `0         64` (cfitsio's token: 0) and no ZTILE1, which
    // cfitsio then takes from ZNAXIS1 and divides by (SIGFPE).
    let zero_axis = with(
        &with(&src, b"ZNAXIS1 = ", b"ZNAXIS1 =         0         64"),
        b"ZTILE1  = ",
        b"ZTILE2  =                    1",
    );
    let p = write("znaxis1_zero.fits", &zero_axis);
    both_readers_refuse(&p, &["HDU 2: ZNAXIS1 must be an integer from 1"]);
    let p = write(
        "naxis2_cr.fits",
        &with(&tiles, b"NAXIS2  = ", b"NAXIS2  =              \r     9"),
    );
    both_readers_refuse(&p, &["HDU 2: card 5 of a table header must be NAXIS2"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `fits::read(p)` is a `Fits` error naming `p` whose message contains `text`; the message.
fn fits_error_with(p: &Path, text: &str) -> String {
    match fits::read(p) {
        Err(e @ Error::Fits { .. }) => {
            names(&e, p);
            let msg = e.to_string();
            assert!(msg.contains(text), "{}: {msg}", p.display());
            msg
        }
        other => panic!("{}: {other:?}", p.display()),
    }
}

/// Both readers — the crate's (`fits::read`) and cfitsio's (`fits::read_image_f64`) —
/// refuse `p` with a `Fits` error naming it whose message contains every one of `texts`.
fn both_readers_refuse(p: &Path, texts: &[&str]) {
    for r in [
        fits::read(p).map(|_| ()),
        fits::read_image_f64(p).map(|_| ()),
    ] {
        match r {
            Err(e @ Error::Fits { .. }) => {
                names(&e, p);
                let msg = e.to_string();
                for t in texts {
                    assert!(msg.contains(t), "{}: {msg}", p.display());
                }
            }
            other => panic!("{}: {other:?}", p.display()),
        }
    }
}

/// `data` as a gzip file (RFC 1952) of stored deflate blocks, with its CRC-32 and size.
fn gzipped(data: &[u8]) -> Vec<u8> {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let blocks: Vec<&[u8]> = data.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        let len = block.len() as u16;
        out.push(u8::from(i + 1 == blocks.len()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A file compressed as a whole — what cfitsio takes for gzip, zip, pack, compress (LZW),
/// LZH or bzip2 from its first two bytes — is refused by both readers before cfitsio opens
/// it, naming the file and the compression (finding 22, from a `fits_read` run: cfitsio
/// inflates such a file into memory, allocating first the size the file declares, up to
/// 4 GiB, read from its last four bytes for gzip and from bytes 22–25 for zip, outside
/// the read limit). A real gzipped FITS file is refused the same way, as is the fuzzer's
/// 16-byte input, a zip "header" of text; the same FITS file uncompressed reads.
#[test]
fn files_compressed_whole_are_refused_before_cfitsio_inflates_them() {
    let dir = tmpdir("whole_file");
    let rice = std::fs::read(common::data("rice_int16_64x48.fits")).unwrap();
    let fuzzed = b"PK2_1C2_1   C = ".to_vec();
    let mut lying = gzipped(&rice);
    let n = lying.len();
    lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    for (name, bytes, kind) in [
        ("gzip.fits.gz", gzipped(&rice), "gzip"),
        ("gzip-4gib.fits.gz", lying, "gzip"),
        ("zip.fits", fuzzed, "zip"),
        (
            "lzw.fits",
            [&[0x1f, 0x9d][..], &rice].concat(),
            "compress (LZW)",
        ),
        ("pack.fits", [&[0x1f, 0x1e][..], &rice].concat(), "pack"),
        ("lzh.fits", [&[0x1f, 0xa0][..], &rice].concat(), "LZH"),
        ("bzip2.fits", [&b"BZh9"[..], &rice].concat(), "bzip2"),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, &bytes).unwrap();
        both_readers_refuse(
            &p,
            &[&format!("compressed as a whole ({kind})"), "decompress it"],
        );
    }
    let p = dir.join("plain.fits");
    std::fs::write(&p, &rice).unwrap();
    assert_eq!(fits::read(&p).unwrap().data.dim(), (48, 64));
    let _ = std::fs::remove_dir_all(&dir);
}
