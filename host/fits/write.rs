//! Writing: pixel conversion (int16 rounding, saturation, BLANK; float32), statistics
//! over the values as written, and the cfitsio calls that lay out the file.

use std::collections::HashSet;
use std::ffi::c_int;
use std::path::Path;

use fitsio::sys;
use rayon::prelude::*;

use super::cfitsio::{Fits, TFLOAT, TSHORT};
use super::output::TempOutput;
use super::{Compression, BLANK_I16, I16_MAX, I16_MIN};
use crate::error::{Error, Result};
use crate::header::{Card, Header, Value};

/// Encoded per rayon task.
const CHUNK: usize = 1 << 16;

/// Statistics over the non-missing pixels as written, in physical units (the int16
/// encoding's own type; the same for f32 output).
pub(crate) use crate::int16::PixelStats as Stats;

/// Per-chunk accumulator: (min stored, max stored, sum stored, count valid).
type Acc = (i16, i16, i64, usize);
const ACC0: Acc = (i16::MAX, i16::MIN, 0, 0);

/// Convert one chunk and return its statistics. Written for speed (a per-pixel `match`,
/// branches and libm `round` made the conversion cost 60 % of the RICE compression
/// itself); same results as a plain scalar `f64::round` rule for every input (tested).
fn convert_chunk(out: &mut [i16], data: &[f32], scaling: Option<(f64, f64)>) -> Acc {
    let (lo, hi) = (f64::from(I16_MIN), f64::from(I16_MAX));
    match scaling {
        None => {
            let (lo, hi) = (f32::from(I16_MIN), f32::from(I16_MAX));
            for (o, &v) in out.iter_mut().zip(data) {
                // f32 throughout (4 lanes): for |c| ≤ 32767 the truncation and the
                // fractional part are exact.
                let c = if v.is_nan() { 0.0 } else { v.max(lo).min(hi) };
                // SAFETY: c is finite and within [−32767, 32767].
                let t: i32 = unsafe { c.to_int_unchecked() };
                let frac = c - t as f32;
                let r = (t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)) as i16;
                *o = if v.is_nan() { BLANK_I16 } else { r };
            }
        }
        Some((bscale, bzero)) => {
            for (o, &v) in out.iter_mut().zip(data) {
                // Here x ± 0.5 may round (x = 0.49999999999999994), so correct the
                // truncation by the exact fractional part instead.
                let x = (f64::from(v) - bzero) / bscale;
                let c = x.clamp(lo, hi);
                let t = c as i32;
                let frac = c - f64::from(t);
                let r = (t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)) as i16;
                *o = if x.is_nan() { BLANK_I16 } else { r };
            }
        }
    }
    chunk_stats(out)
}

/// Statistics of stored int16 values, [`BLANK_I16`] excluded. BLANK is the smallest i16,
/// so it never raises the maximum and is mapped to `i16::MAX` for the minimum; the sum
/// includes it and is corrected (keeps the loops simple enough to vectorise).
fn chunk_stats(s: &[i16]) -> Acc {
    let mut mn = i16::MAX;
    let mut mx = i16::MIN;
    let mut sum = 0i64;
    let mut nblank = 0usize;
    // i32 partial sums vectorise where i64 ones do not; 2^15 values of magnitude
    // ≤ 32768 cannot overflow them.
    for block in s.chunks(1 << 15) {
        let mut bsum = 0i32;
        let mut bblank = 0i32;
        for &x in block {
            let blank = x == BLANK_I16;
            mn = mn.min(if blank { i16::MAX } else { x });
            mx = mx.max(x);
            bsum += i32::from(x);
            bblank += i32::from(blank);
        }
        sum += i64::from(bsum);
        nblank += bblank as usize;
    }
    sum -= i64::from(BLANK_I16) * nblank as i64;
    (mn, mx, sum, s.len() - nblank)
}

/// Convert to int16 (`NaN` → [`BLANK_I16`]; otherwise `round((v − bzero) / bscale)`
/// half away from zero, saturated to [`I16_MIN`]..=[`I16_MAX`], ±∞ too) and compute the
/// statistics of the stored values in physical units (`bzero + bscale × stored`).
pub(crate) fn convert_i16(data: &[f32], scaling: Option<(f64, f64)>) -> (Vec<i16>, Stats) {
    // Every element is written below: a recycled buffer (in a batch) will do.
    let mut out = crate::buffers::take_i16(data.len());
    let (mn, mx, sum, cnt) = out
        .par_chunks_mut(CHUNK)
        .zip(data.par_chunks(CHUNK))
        .map(|(o, d)| convert_chunk(o, d, scaling))
        .reduce(
            || ACC0,
            |a, b| (a.0.min(b.0), a.1.max(b.1), a.2 + b.2, a.3 + b.3),
        );
    let (bscale, bzero) = scaling.unwrap_or((1.0, 0.0));
    let phys = |s: f64| bzero + bscale * s;
    let stats = if cnt == 0 {
        Stats {
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
            n_missing: data.len(),
        }
    } else {
        let (a, b) = (phys(f64::from(mn)), phys(f64::from(mx)));
        Stats {
            min: a.min(b),
            max: a.max(b),
            mean: phys(sum as f64 / cnt as f64),
            n_missing: data.len() - cnt,
        }
    };
    (out, stats)
}

/// Statistics of `f32` pixels: NaN is missing; ±∞ are neither missing nor counted in
/// min/max/mean (a header cannot hold them).
pub(crate) fn stats_f32(data: &[f32]) -> Stats {
    let (mn, mx, sum, cnt, nan) = data
        .par_chunks(CHUNK)
        .map(|d| {
            let (mut mn, mut mx, mut sum, mut cnt, mut nan) =
                (f64::INFINITY, f64::NEG_INFINITY, 0f64, 0usize, 0usize);
            for &v in d {
                if v.is_nan() {
                    nan += 1;
                } else if v.is_finite() {
                    let x = f64::from(v);
                    mn = mn.min(x);
                    mx = mx.max(x);
                    sum += x;
                    cnt += 1;
                }
            }
            (mn, mx, sum, cnt, nan)
        })
        .reduce(
            || (f64::INFINITY, f64::NEG_INFINITY, 0f64, 0usize, 0usize),
            |a, b| (a.0.min(b.0), a.1.max(b.1), a.2 + b.2, a.3 + b.3, a.4 + b.4),
        );
    if cnt == 0 {
        Stats {
            min: f64::NAN,
            max: f64::NAN,
            mean: f64::NAN,
            n_missing: nan,
        }
    } else {
        Stats {
            min: mn,
            max: mx,
            mean: sum / cnt as f64,
            n_missing: nan,
        }
    }
}

/// The pixels to write, already in their stored type.
pub(crate) enum Encoded<'a> {
    I16 {
        data: Vec<i16>,
        scaling: Option<(f64, f64)>,
    },
    F32(&'a [f32]),
}

/// Everything a file needs besides its pixels.
pub(crate) struct Layout<'a> {
    pub nx: usize,
    pub ny: usize,
    pub compress: Compression,
    pub header: &'a Header,
    /// DATAMIN/DATAMAX/DATAMEAN to set (`None`: leave them out).
    pub stats: Option<Stats>,
    /// RICE_1 int16 tiles encoded here ([`super::rice::encode_tile`], rows in parallel)
    /// rather than by cfitsio; the file is the same byte for byte (tested).
    pub own_rice: bool,
}

fn card(key: &str, value: Value, comment: &str) -> String {
    Card::new(key, value, Some(comment)).record()
}

/// Write a complete FITS file at `tmp` (a temporary name for `path`; the caller moves
/// it into place). Errors name `path`. Returns whether the RICE tiles were encoded here
/// (see [`Layout::own_rice`]).
pub(crate) fn write_file(
    tmp: &TempOutput,
    path: &Path,
    layout: &Layout<'_>,
    pixels: &Encoded<'_>,
    extensions: &[super::Extension<'_>],
) -> Result<bool> {
    let mut f = Fits::create(tmp.path(), path)?;
    let (bitpix, is_float) = match pixels {
        Encoded::I16 { .. } => (sys::SHORT_IMG as c_int, false),
        Encoded::F32(_) => (sys::FLOAT_IMG as c_int, true),
    };
    if layout.compress == Compression::Rice {
        if is_float {
            // cfitsio's RICE_1 can only quantise floats (lossy); the lossless choice it
            // offers is GZIP (byte-shuffled GZIP_2 usually compresses floats better than GZIP_1).
            f.set_compression(sys::GZIP_2 as c_int, true)?;
        } else {
            f.set_compression(sys::RICE_1 as c_int, false)?;
        }
    }
    f.create_image(bitpix, layout.nx, layout.ny)?;

    // Storage keywords next to the structural ones.
    if let Encoded::I16 { scaling, .. } = pixels {
        if let Some((bscale, bzero)) = scaling {
            f.update_record(
                "BSCALE",
                &card(
                    "BSCALE",
                    Value::Float(*bscale),
                    "physical = BZERO + BSCALE * stored",
                ),
            )?;
            f.update_record(
                "BZERO",
                &card(
                    "BZERO",
                    Value::Float(*bzero),
                    "physical = BZERO + BSCALE * stored",
                ),
            )?;
        }
        f.update_record(
            "BLANK",
            &card(
                "BLANK",
                Value::Int(i64::from(BLANK_I16)),
                "value of missing pixels",
            ),
        )?;
    }

    // Pass-through cards; skip exact copies of records cfitsio has just written (its
    // standard COMMENT lines), so that reading and writing again does not pile them up.
    let existing: HashSet<String> = f
        .current_records()?
        .into_iter()
        .map(|r| r.trim_end().to_string())
        .collect();
    for rec in layout.header.passthrough_records() {
        if existing.contains(rec.trim_end()) {
            continue;
        }
        f.write_record(&rec)?;
    }

    match layout.stats {
        Some(s) if s.min.is_finite() && s.max.is_finite() && s.mean.is_finite() => {
            f.update_record(
                "DATAMIN",
                &card("DATAMIN", Value::Float(s.min), "minimum valid value"),
            )?;
            f.update_record(
                "DATAMAX",
                &card("DATAMAX", Value::Float(s.max), "maximum valid value"),
            )?;
            f.update_record(
                "DATAMEAN",
                &card("DATAMEAN", Value::Float(s.mean), "mean of valid values"),
            )?;
        }
        Some(_) => {
            // No valid pixel: stale values from the input must not survive.
            for k in ["DATAMIN", "DATAMAX", "DATAMEAN"] {
                f.delete_key(k)?;
            }
        }
        None => {}
    }

    // Encoded are passed in their stored form: cfitsio must not scale them again.
    f.set_scaling(1.0, 0.0)?;
    let mut own = false;
    match pixels {
        Encoded::I16 { data, .. } => {
            if layout.own_rice && layout.compress == Compression::Rice {
                own = write_rice_rows(&mut f, data, layout.nx)?;
            }
            if !own {
                // SAFETY: TSHORT is i16.
                unsafe { f.write_pixels::<i16>(TSHORT, data)? }
            }
        }
        // SAFETY: TFLOAT is f32.
        Encoded::F32(data) => unsafe { f.write_pixels::<f32>(TFLOAT, data)? },
    }
    for ext in extensions {
        write_extension(&mut f, ext, layout.compress, path)?;
    }
    f.close()?;
    Ok(own)
}

/// One float32 image extension: `EXTNAME` and the header's non-structural cards, then the
/// pixels (NaN stays NaN); tile-compressed losslessly (GZIP_2, as float32 outputs) when the
/// file is compressed.
fn write_extension(
    f: &mut Fits,
    ext: &super::Extension<'_>,
    compress: Compression,
    path: &Path,
) -> Result<()> {
    let (ny, nx) = ext.data.dim();
    check_shape(nx, ny, &crate::error::Source::file(path))?;
    if compress == Compression::Rice {
        f.set_compression(sys::GZIP_2 as c_int, true)?;
    }
    f.create_image(sys::FLOAT_IMG as c_int, nx, ny)?;
    f.update_record(
        "EXTNAME",
        &card(
            "EXTNAME",
            Value::Str(ext.name.to_string()),
            "name of this HDU",
        ),
    )?;
    for rec in ext.header.passthrough_records() {
        f.write_record(&rec)?;
    }
    f.set_scaling(1.0, 0.0)?;
    let data = ext.data.as_standard_layout();
    let slice = data.as_slice().ok_or_else(|| crate::error::Error::Shape {
        file: crate::error::Source::file(path),
        reason: format!("extension {} is not contiguous", ext.name),
    })?;
    // SAFETY: TFLOAT is f32.
    unsafe { f.write_pixels::<f32>(TFLOAT, slice) }
}

/// Write the int16 pixels of the RICE_1 image HDU just created, one tile per row: the
/// rows are encoded in parallel by [`super::rice::encode_tile`] (the bytes cfitsio's
/// encoder makes) and written in order with `ffpclb`, the call cfitsio itself makes per
/// tile. `false`, with nothing written, when the HDU's tiles are not whole rows or its
/// block size is not stated (cfitsio then writes the pixels).
fn write_rice_rows(f: &mut Fits, data: &[i16], nx: usize) -> Result<bool> {
    let whole_rows =
        f.key_i64("ZTILE1")? == i64::try_from(nx).ok() && f.key_i64("ZTILE2")?.unwrap_or(1) == 1;
    let mut nblock = None;
    for i in 1..10 {
        match f.key_str(&format!("ZNAME{i}"))?.as_deref() {
            Some("BLOCKSIZE") => nblock = f.key_i64(&format!("ZVAL{i}"))?,
            Some(_) => {}
            None => break,
        }
    }
    let Some(nblock) = nblock
        .and_then(|b| usize::try_from(b).ok())
        .filter(|&b| b > 0)
    else {
        return Ok(false);
    };
    if !whole_rows || nx == 0 || !data.len().is_multiple_of(nx) {
        return Ok(false);
    }
    let col = f.column("COMPRESSED_DATA")?;
    let tiles: Vec<Vec<u8>> = data
        .par_chunks(nx)
        .map(|row| {
            let mut v = Vec::with_capacity(2 * nx + nx / nblock + 8);
            super::rice::encode_tile(row, nblock, &mut v);
            v
        })
        .collect();
    for (r, t) in tiles.iter().enumerate() {
        f.write_column_bytes(col, r + 1, t)?;
    }
    Ok(true)
}

/// Check an image's shape can be written.
pub(crate) fn check_shape(nx: usize, ny: usize, file: &crate::error::Source) -> Result<()> {
    if nx == 0 || ny == 0 {
        return Err(Error::Shape {
            file: file.clone(),
            reason: format!("cannot write an empty image ({nx} x {ny})"),
        });
    }
    Ok(())
}

/// Write to a temporary file next to `path`, then move it into place.
pub(crate) fn write_atomically(
    path: &Path,
    overwrite: bool,
    layout: &Layout<'_>,
    pixels: &Encoded<'_>,
    extensions: &[super::Extension<'_>],
) -> Result<bool> {
    let tmp = TempOutput::new(path)?;
    let own = write_file(&tmp, path, layout, pixels, extensions)?;
    tmp.commit(path, overwrite)?;
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The scalar reference rule that the fast conversion must equal.
    /// One `f32` pixel to the stored `int16`: NaN → [`BLANK_I16`]; otherwise
    /// `round((v − bzero) / bscale)` (half away from zero), saturated to
    /// [`I16_MIN`]..=[`I16_MAX`] (±∞ saturate too).
    fn to_i16(v: f32, scaling: Option<(f64, f64)>) -> i16 {
        if v.is_nan() {
            return BLANK_I16;
        }
        let x = match scaling {
            None => f64::from(v),
            Some((bscale, bzero)) => (f64::from(v) - bzero) / bscale,
        };
        if x.is_nan() {
            return BLANK_I16;
        }
        round_saturate(x)
    }

    /// Round half away from zero and saturate to [−32767, 32767]: clamp (the bounds are
    /// integers, so clamping first does not change the result), then `f64::round`.
    fn round_saturate(x: f64) -> i16 {
        x.clamp(f64::from(I16_MIN), f64::from(I16_MAX)).round() as i16
    }

    #[test]
    fn int16_rounds_half_away_from_zero_and_saturates() {
        let cases: [(f32, i16); 16] = [
            (0.5, 1),
            (-0.5, -1),
            (1.5, 2),
            (-1.5, -2),
            (2.5, 3),
            (-2.5, -3),
            (0.49999997, 0),
            (-0.49999997, 0),
            (32766.5, 32767),
            (32767.5, 32767),
            (1e30, 32767),
            (-32767.49, -32767),
            (-32767.5, -32767),
            (-32768.0, -32767),
            (f32::NEG_INFINITY, -32767),
            (f32::INFINITY, 32767),
        ];
        for (v, want) in cases {
            assert_eq!(to_i16(v, None), want, "{v}");
            // The scaled path with (1, 0) is the same.
            assert_eq!(to_i16(v, Some((1.0, 0.0))), want, "{v} scaled");
        }
        assert_eq!(to_i16(f32::NAN, None), BLANK_I16);
        assert_eq!(to_i16(f32::NAN, Some((0.5, 3.0))), BLANK_I16);
        // (v − bzero)/bscale: (10.25 − 10)/0.5 = 0.5 → 1; (9.75 − 10)/0.5 = −0.5 → −1.
        assert_eq!(to_i16(10.25, Some((0.5, 10.0))), 1);
        assert_eq!(to_i16(9.75, Some((0.5, 10.0))), -1);
        assert_eq!(to_i16(1e6, Some((0.5, 10.0))), I16_MAX);
        // The largest f64 below 0.5 rounds to 0 (x + 0.5 would round up to 1.0).
        assert_eq!(round_saturate(0.49999999999999994), 0);
        assert_eq!(round_saturate(-0.49999999999999994), 0);
        assert_eq!(round_saturate(32766.5), 32767);
        assert_eq!(round_saturate(-32766.5), -32767);
    }

    #[test]
    fn int16_statistics_are_of_the_written_values() {
        // 1.4 → 1, 2.6 → 3, NaN missing, −7.5 → −8; with a negative scale the min/max
        // swap in physical units.
        let d = [1.4f32, 2.6, f32::NAN, -7.5];
        let (s, st) = convert_i16(&d, None);
        assert_eq!(s, [1, 3, BLANK_I16, -8]);
        assert_eq!((st.min, st.max, st.n_missing), (-8.0, 3.0, 1));
        assert!((st.mean - (-4.0 / 3.0)).abs() < 1e-15);
        let (s, st) = convert_i16(&d, Some((-2.0, 1.0)));
        // stored = round((v − 1)/−2): 0.2 → 0, −0.8 → −1, 4.25 → 4.
        assert_eq!(s, [0, -1, BLANK_I16, 4]);
        // physical = 1 − 2 × stored: 1, 3, −7.
        assert_eq!((st.min, st.max), (-7.0, 3.0));
        assert!((st.mean - (-1.0)).abs() < 1e-15);
        let (_, st) = convert_i16(&[f32::NAN; 3], None);
        assert!(st.min.is_nan() && st.mean.is_nan() && st.n_missing == 3);
    }

    #[test]
    fn vectorised_conversion_equals_scalar_rule() {
        // Every special value, plus a dense sweep of f32 values around ties and bounds.
        let mut vals = vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.49999997,
            -0.49999997,
            32767.5,
            -32767.5,
            -32768.0,
            1e30,
            -1e30,
        ];
        let mut x = -40000.0f32;
        while x < 40000.0 {
            vals.extend([x, x + 0.5, x - 0.5, x.next_up(), x.next_down()]);
            x += 0.75;
        }
        for scaling in [
            None,
            Some((1.0, 0.0)),
            Some((0.25, 100.0)),
            Some((-2.0, 3.5)),
        ] {
            let mut out = vec![0i16; vals.len()];
            let acc = convert_chunk(&mut out, &vals, scaling);
            let want: Vec<i16> = vals.iter().map(|&v| to_i16(v, scaling)).collect();
            assert_eq!(out, want, "{scaling:?}");
            let valid: Vec<i16> = want.iter().copied().filter(|&s| s != BLANK_I16).collect();
            assert_eq!(acc.3, valid.len());
            assert_eq!(acc.2, valid.iter().map(|&s| i64::from(s)).sum::<i64>());
            assert_eq!(acc.0, *valid.iter().min().unwrap());
            assert_eq!(acc.1, *valid.iter().max().unwrap());
        }
    }

    #[test]
    fn float_statistics_skip_nan_and_infinity() {
        let st = stats_f32(&[1.0, f32::NAN, f32::INFINITY, -3.0, 0.5]);
        assert_eq!((st.min, st.max, st.n_missing), (-3.0, 1.0, 1));
        assert!((st.mean - (-0.5)).abs() < 1e-15);
    }
}
