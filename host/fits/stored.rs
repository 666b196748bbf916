//! The header of the image HDU as the writer stores it, without writing a file: what a
//! caller that keeps the output in memory (the Python package's maps) must carry so that
//! its header equals the file's.

use crate::header::{Card, Header, Value};
use crate::int16::{Int16Pixels, PixelStats};
use crate::map::AiaMap;

use super::{write, BLANK_I16};

/// The header of the image HDU that [`super::write()`] writes for `map` with
/// [`super::OutputType::F32`]: `BITPIX = -32`, `NAXIS`, `NAXIS1/2`, then every
/// non-structural card of `map.header` in order, with `DATAMIN`/`DATAMAX`/`DATAMEAN` the
/// statistics of the pixels (NaN missing, ±∞ not counted) — replaced where the header has
/// them, appended otherwise, removed when no pixel is valid. Left out: what only the file
/// layout adds (`SIMPLE`, `EXTEND`, cfitsio's two standard `COMMENT` lines, and for
/// compressed files the tile-compression keywords), and so the input's copies of those
/// `COMMENT` lines, which the writer leaves out ([`crate::header::is_standard_comment`]).
pub fn stored_header_f32(map: &AiaMap) -> Header {
    let (nx, ny) = map.shape_xy();
    let stats = match map.data.as_slice() {
        Some(s) => write::stats_f32(s),
        None => write::stats_f32(&map.data.iter().copied().collect::<Vec<_>>()),
    };
    build(&map.header, (nx, ny), -32, None, false, stats)
}

/// As [`stored_header_f32`] for int16 pixels already encoded ([`Int16Pixels`], as
/// [`super::write_int16`] writes them): `BITPIX = 16`, `BSCALE`/`BZERO` when the pixels are
/// scaled, `BLANK = -32768`, and the statistics of the values as written.
pub fn stored_header_i16(header: &Header, pixels: &Int16Pixels) -> Header {
    let (ny, nx) = pixels.data.dim();
    build(header, (nx, ny), 16, pixels.scaling, true, pixels.stats)
}

fn build(
    header: &Header,
    (nx, ny): (usize, usize),
    bitpix: i64,
    scaling: Option<(f64, f64)>,
    blank: bool,
    stats: PixelStats,
) -> Header {
    let mut h = Header::new();
    let int = |v: usize| Value::Int(v as i64);
    h.push(Card::new(
        "BITPIX",
        Value::Int(bitpix),
        Some("number of bits per data pixel"),
    ));
    h.push(Card::new(
        "NAXIS",
        Value::Int(2),
        Some("number of data axes"),
    ));
    h.push(Card::new("NAXIS1", int(nx), Some("length of data axis 1")));
    h.push(Card::new("NAXIS2", int(ny), Some("length of data axis 2")));
    if let Some((bscale, bzero)) = scaling {
        let c = Some("physical = BZERO + BSCALE * stored");
        h.push(Card::new("BSCALE", Value::Float(bscale), c));
        h.push(Card::new("BZERO", Value::Float(bzero), c));
    }
    if blank {
        h.push(Card::new(
            "BLANK",
            Value::Int(i64::from(BLANK_I16)),
            Some("value of missing pixels"),
        ));
    }
    for c in header.cards() {
        if !crate::header::is_structural(&c.key) && !crate::header::is_standard_comment(c) {
            h.push(c.clone());
        }
    }
    let keys = [
        ("DATAMIN", stats.min, "minimum valid value"),
        ("DATAMAX", stats.max, "maximum valid value"),
        ("DATAMEAN", stats.mean, "mean of valid values"),
    ];
    if keys.iter().all(|(_, v, _)| v.is_finite()) {
        for (k, v, c) in keys {
            h.set(k, Value::Float(v), Some(c));
        }
    } else {
        for (k, _, _) in keys {
            h.remove(k);
        }
    }
    h
}
