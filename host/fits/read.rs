//! Reading: the first 2-D image HDU of a file as `f32` (AIA maps) or `f64` (PSFs).

use std::path::Path;

use ndarray::Array2;

use super::cfitsio::{Fits, ImageInfo, TDOUBLE, TFLOAT};
use super::ReadLimits;
use crate::error::{Error, Result, Source};
use crate::header::{Header, Value};

fn io_error(file: &Source, reason: String) -> Error {
    Error::Io {
        file: file.clone(),
        reason,
    }
}

/// Open `path` and move to its first 2-D image HDU; also returns its header (parsed once).
/// cfitsio opens the file itself (headers only until pixels are asked for). "No such file"
/// or "permission denied" come back as [`Error::Io`] rather than as a cfitsio code: the
/// file's metadata is checked first, and only when cfitsio cannot open a regular file is
/// the operating system asked why.
pub(crate) fn open_image(path: &Path) -> Result<(Fits, ImageInfo, Header)> {
    let file = Source::file(path);
    let meta = std::fs::metadata(path).map_err(|e| io_error(&file, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(io_error(&file, "not a regular file".into()));
    }
    let f = match Fits::open_readonly(path) {
        Ok(f) => f,
        Err(e) => {
            return Err(match std::fs::File::open(path) {
                Err(io) => io_error(&file, format!("cannot open: {io}")),
                Ok(_) => e,
            })
        }
    };
    first_image(f, file)
}

/// Move `f` to its first 2-D image HDU and parse that HDU's header.
fn first_image(mut f: Fits, file: Source) -> Result<(Fits, ImageInfo, Header)> {
    let info = match f.find_image()? {
        Ok(i) => i,
        Err(n) => {
            return Err(Error::NotAia {
                file,
                reason: format!(
                    "no 2-D image with data in the file's {n} HDU(s){}",
                    if n == 1 {
                        " (a JSOC file cut after its empty primary HDU looks like this)"
                    } else {
                        ""
                    }
                ),
            })
        }
    };
    let header = Header::parse(&f.header_records()?);
    Ok((f, info, header))
}

/// Check what reading the current image (found by [`Fits::find_image`]) will allocate
/// against `limits`, from what its header declares, before anything is allocated: the
/// pixels as `elem`-byte values and, for a tile-compressed image, its data unit (table and
/// heap) and a tile buffer. A data unit that ends past the end of the file is
/// [`Error::Fits`] (truncated) whatever the limit.
pub(crate) fn check_limits(
    f: &mut Fits,
    info: &ImageInfo,
    elem: u64,
    limits: &ReadLimits,
) -> Result<()> {
    let file = f.file.clone();
    let (_, start, end) = f.hdu_address()?;
    if let Some(path) = file.path() {
        let len = std::fs::metadata(path)
            .map_err(|e| io_error(&file, format!("cannot read: {e}")))?
            .len();
        if end > len {
            return Err(Error::Fits {
                file,
                reason: format!(
                    "truncated: the header declares a data unit ending at byte {end}, the file has {len} bytes"
                ),
            });
        }
    }
    let pixels = (info.nx as u64).saturating_mul(info.ny as u64);
    let mut bytes = pixels.saturating_mul(elem);
    let mut what = format!("a {} x {} image as {}-byte values", info.nx, info.ny, elem);
    if info.compressed {
        let tile_pixels = ["ZTILE1", "ZTILE2"]
            .iter()
            .enumerate()
            .map(|(i, k)| match f.keyword(k).ok().flatten() {
                Some(Value::Int(v)) => u64::try_from(v).unwrap_or(u64::MAX),
                Some(_) => u64::MAX,
                // Defaults: row tiles.
                None => [info.nx as u64, 1][i],
            })
            .fold(1u64, u64::saturating_mul);
        let unit = end.saturating_sub(start);
        bytes = bytes
            .saturating_add(unit)
            .saturating_add(tile_pixels.saturating_mul(8));
        what = format!(
            "{what}, with a {unit}-byte compressed data unit and {tile_pixels}-pixel tiles"
        );
    }
    if bytes > limits.max_bytes {
        return Err(Error::TooLarge {
            file,
            what,
            bytes,
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

/// Read the current image as `f32`: `BZERO`/`BSCALE` applied, undefined pixels (integer
/// `BLANK`, tile `ZBLANK`, floating NaN) as NaN, all by cfitsio (`ffgpv` with `TFLOAT`).
///
/// Measured alternative, not taken: reading int16 as raw `i16` (into the first half of
/// the output buffer) and widening it in parallel here. Once the output buffer is backed
/// by huge pages (see `crate::buffers`), both take the same time (4096² RICE ≈ 0.125 s), and
/// this way cfitsio keeps every BLANK/ZBLANK/scaling rule.
///
/// RICE_1 int16 tile-compressed images (JSOC's files) are decoded by [`super::rice`]
/// instead, tiles in parallel, with the same result.
pub(crate) fn read_f32(f: &mut Fits, info: &ImageInfo) -> Result<Vec<f32>> {
    if info.compressed && info.bitpix == 16 {
        if let Some(v) = super::rice::read_f32(f)? {
            return Ok(v);
        }
    }
    if info.compressed {
        f.check_descriptors()?;
        super::tiles::check_for_cfitsio(f)?;
    }
    // Every element is written by cfitsio: a recycled buffer (in a batch) will do.
    let mut out = crate::buffers::take_f32(info.nx * info.ny);
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

/// Read the current image as `f64` (cfitsio converts; undefined pixels NaN).
pub(crate) fn read_f64(f: &mut Fits, info: &ImageInfo) -> Result<Vec<f64>> {
    if info.compressed {
        f.check_descriptors()?;
        super::tiles::check_for_cfitsio(f)?;
    }
    let mut out = crate::buffers::zeroed::<f64>(info.nx * info.ny);
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
