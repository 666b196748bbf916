//! Reading: the first 2-D image HDU of a file as `f32` (AIA maps) or `f64` (PSFs).

use std::path::Path;

use ndarray::Array2;
use rayon::prelude::*;

use super::cfitsio::{Fits, ImageInfo, TDOUBLE, TFLOAT, TSHORT};
use crate::error::{Error, Result, Source};
use crate::header::Header;

/// Pixels per rayon task when converting.
const CHUNK: usize = 1 << 16;

/// Check up front that `path` is a readable regular file, so that "no such file" or
/// "permission denied" come back as [`Error::Io`] rather than as a cfitsio code.
fn check_readable(path: &Path, file: &Source) -> Result<()> {
    let io = |reason: String| Error::Io {
        file: file.clone(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| io(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(io("not a regular file".into()));
    }
    std::fs::File::open(path).map_err(|e| io(format!("cannot open: {e}")))?;
    Ok(())
}

/// Open `path` and move to its first 2-D image HDU; also returns its header.
pub(crate) fn open_image(path: &Path) -> Result<(Fits, ImageInfo, Header)> {
    let file = Source::file(path);
    check_readable(path, &file)?;
    let mut f = Fits::open_readonly(path)?;
    let info = match f.find_image()? {
        Some(i) => i,
        None => {
            return Err(Error::NotAia {
                file,
                reason: "the file holds no 2-D image HDU with data".into(),
            })
        }
    };
    let header = Header::parse(&f.header_records()?);
    Ok((f, info, header))
}

/// The integer that marks undefined pixels in an int16 HDU, as cfitsio would use it:
/// `ZBLANK` then `BLANK` for tile-compressed HDUs, `BLANK` for plain ones. `Err(())`
/// when it varies per tile (a `ZBLANK` column), which the fast path does not handle.
fn int_blank(f: &mut Fits, info: &ImageInfo) -> Result<std::result::Result<Option<i64>, ()>> {
    if info.compressed {
        if f.has_column("ZBLANK")? {
            return Ok(Err(()));
        }
        if let Some(z) = f.key_i64("ZBLANK")? {
            return Ok(Ok(Some(z)));
        }
    }
    Ok(Ok(f.key_i64("BLANK")?))
}

/// Read the current image as `f32`: `BZERO`/`BSCALE` applied, undefined pixels (integer
/// `BLANK`, floating NaN) as NaN. `int16` images (the AIA case) are read as raw `i16` and
/// converted in parallel, which is faster than cfitsio's own conversion; other types are
/// converted by cfitsio. ±∞ in plain float images stay ±∞.
pub(crate) fn read_f32(f: &mut Fits, info: &ImageInfo, header: &Header) -> Result<Vec<f32>> {
    let n = info.nx * info.ny;
    if info.bitpix == 16 {
        if let Ok(blank) = int_blank(f, info)? {
            return read_i16_as_f32(f, n, header, blank);
        }
    }
    let mut out = vec![0f32; n];
    let null = null_check(info).then_some(f32::NAN);
    // SAFETY: TFLOAT is f32.
    unsafe { f.read_pixels::<f32>(TFLOAT, null, &mut out)? };
    Ok(out)
}

/// Whether cfitsio must substitute undefined pixels: yes for integer images (`BLANK`)
/// and for tile-compressed ones (quantised floats mark them with `ZBLANK`); no for plain
/// floating-point images, whose NaN pass through as NaN anyway — and cfitsio's null test
/// for floats would also turn ±∞ into NaN.
fn null_check(info: &ImageInfo) -> bool {
    info.bitpix > 0 || info.compressed
}

fn read_i16_as_f32(
    f: &mut Fits,
    n: usize,
    header: &Header,
    blank: Option<i64>,
) -> Result<Vec<f32>> {
    let bscale = header.get_f64("BSCALE").unwrap_or(1.0);
    let bzero = header.get_f64("BZERO").unwrap_or(0.0);
    if !bscale.is_finite() || !bzero.is_finite() || bscale == 0.0 {
        return Err(Error::Fits {
            file: f.file.clone(),
            reason: format!("unusable scaling BSCALE = {bscale}, BZERO = {bzero}"),
        });
    }
    // Raw stored integers: cfitsio's scaling off, no null substitution.
    f.set_scaling(1.0, 0.0)?;
    let mut raw = vec![0i16; n];
    // SAFETY: TSHORT is i16.
    unsafe { f.read_pixels::<i16>(TSHORT, None, &mut raw)? };
    // A BLANK outside the i16 range never matches; i32 sentinel keeps the comparison exact.
    let blank = blank
        .and_then(|b| i16::try_from(b).ok())
        .map_or(i32::MIN, i32::from);
    let mut out = vec![0f32; n];
    let identity = bscale == 1.0 && bzero == 0.0;
    out.par_chunks_mut(CHUNK)
        .zip(raw.par_chunks(CHUNK))
        .for_each(|(o, r)| {
            for (o, &r) in o.iter_mut().zip(r) {
                *o = if i32::from(r) == blank {
                    f32::NAN
                } else if identity {
                    f32::from(r)
                } else {
                    (bzero + bscale * f64::from(r)) as f32
                };
            }
        });
    Ok(out)
}

/// Read the current image as `f64` (cfitsio converts; undefined pixels NaN).
pub(crate) fn read_f64(f: &mut Fits, info: &ImageInfo) -> Result<Vec<f64>> {
    let mut out = vec![0f64; info.nx * info.ny];
    let null = null_check(info).then_some(f64::NAN);
    // SAFETY: TDOUBLE is f64.
    unsafe { f.read_pixels::<f64>(TDOUBLE, null, &mut out)? };
    Ok(out)
}

/// Shape pixels read in FITS order (x fastest) as `[row, col]` = `[y, x]`.
pub(crate) fn to_array<T>(v: Vec<T>, info: &ImageInfo, file: &Source) -> Result<Array2<T>> {
    Array2::from_shape_vec((info.ny, info.nx), v).map_err(|e| Error::Shape {
        file: file.clone(),
        reason: e.to_string(),
    })
}
