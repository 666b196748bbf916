//! Reading and writing AIA FITS images (cfitsio, bundled through `fitsio`; the pixels of
//! RICE_1 int16 tiles are coded by `rice.rs`, bit-identical to cfitsio's codec).
//!
//! # Reading
//! [`read()`] returns the first HDU that holds a 2-D image with data: for JSOC level-1
//! files that is the RICE_1 tile-compressed image after an empty primary HDU; plain
//! primary images of any BITPIX (int16, int32, float32, float64, ...) work too. Pixels
//! are `f32` in physical units (`BZERO + BSCALE × stored`), `[row, col]` = `[y, x]` with
//! row 0 the first row in the file (`NAXIS2` rows of `NAXIS1` columns); undefined pixels
//! (integer `BLANK`, floating-point NaN) are NaN. The header is that of the image in
//! uncompressed form (a tile-compressed HDU's `ZBITPIX`, `ZNAXISn`, ... read as `BITPIX`,
//! `NAXISn`, ...), all cards kept. `read` does not check that the file is an AIA image
//! or that its geometry is usable (see [`AiaMap::check_is_aia`], [`AiaMap::geometry`]).
//!
//! # Writing
//! [`write()`] stores a map as int16 (default) or float32, optionally tile-compressed, with
//! the map's non-structural header cards passed through and `DATAMIN`, `DATAMAX`,
//! `DATAMEAN` recomputed over the values as written. Files appear complete or not at
//! all: they are written under a temporary name (`.NAME.tmp-PID-N`) in the output
//! directory and then moved into place; an existing file is kept unless
//! [`WriteOptions::overwrite`]; a map's own input file is never written over.
//!
//! # int16 conventions
//! Stored = `round((v − BZERO) / BSCALE)` with ties rounded away from zero (−2.5 → −3,
//! 0.5 → 1), saturated to [−32767, 32767]. −32768 ([`BLANK_I16`]) is reserved for
//! missing pixels (NaN) and is the `BLANK` keyword of every int16 file written here, so
//! a valid value never reads back as missing.
//!
//! [`AiaMap::check_is_aia`]: crate::map::AiaMap::check_is_aia
//! [`AiaMap::geometry`]: crate::map::AiaMap::geometry

mod cfitsio;
mod output;
mod read;
pub(crate) mod rice;
mod stored;
mod tiles;
mod write;

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, Source};
use crate::header::Header;
use crate::map::AiaMap;

/// The stored int16 value of a missing pixel (the `BLANK` keyword written).
pub const BLANK_I16: i16 = i16::MIN;
/// The smallest valid stored int16 value (−32768 is [`BLANK_I16`]).
pub const I16_MIN: i16 = -32767;
/// The largest stored int16 value.
pub const I16_MAX: i16 = i16::MAX;

/// Read the first 2-D image HDU of a FITS file as an [`AiaMap`] (see the module
/// documentation for the contract). `source` of the map is `path`.
///
/// Errors: [`Error::Io`] when `path` is not a readable regular file; [`Error::Fits`]
/// when it is not FITS, is truncated or cfitsio cannot decode it (the message names the
/// file and gives cfitsio's reason); [`Error::NotAia`] when the file holds no 2-D image;
/// [`Error::TooLarge`] when its header declares more than the default [`ReadLimits`]
/// (1 GiB) — see [`read_limited`].
///
/// ```no_run
/// let map = aiaprep::fits::read(std::path::Path::new("aia.lev1.171A_2011_02_15.fits"))?;
/// let (nx, ny) = map.shape_xy(); // pixels; data[[row, col]] in DN, NaN = missing
/// let g = map.geometry()?; // CRPIX (1-based), CDELT (arcsec/px), rotation, RSUN_OBS (arcsec)
/// println!("{nx}x{ny}, CDELT1 {} arcsec/px", g.cdelt[0]);
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn read(path: &Path) -> Result<AiaMap> {
    read_limited(path, &ReadLimits::default())
}

/// Caps on what reading one file may allocate, checked against what its header declares
/// before anything is allocated: a file from an archive or a user that claims a
/// 10⁵ × 10⁵ image, a tile of a billion pixels or a gigabyte heap gets
/// [`Error::TooLarge`] (or [`Error::Fits`] when the file is shorter than its header
/// says), not an allocation failure or a killed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most bytes one read may allocate (bytes): the decoded pixels (4 per pixel as
    /// `f32`, 8 as `f64`) plus, for a tile-compressed image, its whole data unit (table
    /// and heap, read in one piece) and a tile buffer of 8 bytes per tile pixel. Default
    /// [`ReadLimits::DEFAULT_MAX_BYTES`].
    pub max_bytes: u64,
}

impl ReadLimits {
    /// 1 GiB: a 4096² level-1 image needs 64 MiB as `f32` (plus ≈ 20–30 MiB of RICE
    /// data), an 8192² one 256 MiB (512 MiB as `f64`, e.g. a PSF), so both read with room
    /// to spare.
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits {
            max_bytes: ReadLimits::DEFAULT_MAX_BYTES,
        }
    }
}

/// [`read()`] with explicit [`ReadLimits`] (`read` uses the default, 1 GiB).
///
/// Errors: as for [`read()`], and [`Error::TooLarge`] when the header declares more than
/// `limits` allow.
pub fn read_limited(path: &Path, limits: &ReadLimits) -> Result<AiaMap> {
    let (mut f, info, header) = read::open_image(path)?;
    read::check_limits(&mut f, &info, 4, limits)?;
    let data = read::read_f32(&mut f, &info)?;
    f.close()?;
    let source = Source::file(path);
    let data = read::to_array(data, &info, &source)?;
    Ok(AiaMap::new(data, header, source))
}

/// The header and shape of the first 2-D image HDU of a FITS file, without reading its
/// pixels (cfitsio reads the headers only; tile-compressed images give the header of the
/// equivalent image).
#[derive(Debug, Clone)]
pub struct ImageHeader {
    /// The header.
    pub header: Header,
    /// Columns (`NAXIS1`).
    pub nx: usize,
    /// Rows (`NAXIS2`).
    pub ny: usize,
}

/// Read the header of the first 2-D image HDU of `path` ([`ImageHeader`]) without its
/// pixels — microseconds, whatever the image size. Errors as for [`read()`].
pub fn read_header(path: &Path) -> Result<ImageHeader> {
    let (f, info, header) = read::open_image(path)?;
    f.close()?;
    Ok(ImageHeader {
        header,
        nx: info.nx,
        ny: info.ny,
    })
}

/// True when `path` is a complete level-1.5 file: it opens as FITS, its first image HDU
/// says `LVL_NUM = 1.5`, and the file is at least as long as that HDU's data unit (a file
/// cut short by a crash is not complete). Reads the header only (microseconds). Used by
/// batches to skip outputs that are already done.
pub fn is_complete_level15(path: &Path) -> bool {
    let Ok((mut f, _info, header)) = read::open_image(path) else {
        return false;
    };
    let level_ok = header
        .get_f64("LVL_NUM")
        .is_some_and(|l| (l - 1.5).abs() < 1e-9);
    let Ok(end) = f.data_end() else {
        return false;
    };
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    level_ok && end <= len
}

/// Read the first 2-D image HDU of a FITS file as `f64` (cfitsio converts, `BZERO` and
/// `BSCALE` applied, undefined pixels NaN), with its header in uncompressed form. Used to
/// load saved PSFs (see [`read_psf`], which also checks the values).
/// Errors as for [`read_limited`], with the default limits.
pub fn read_image_f64(path: &Path) -> Result<(Array2<f64>, Header)> {
    read_image_f64_limited(path, &ReadLimits::default())
}

/// Read a PSF saved as FITS (`prep --save-psf`, aiapy's `psf()` written with astropy, or
/// any 2-D image) as `f64`, `[row, col]`, and check it can be used for deconvolution
/// ([`crate::deconvolve::check_psf`]: not empty, every value finite and ≥ 0, positive sum).
/// Its shape is checked against the image later, when it is used.
///
/// Errors: as for [`read_image_f64_limited`]; [`Error::BadPsf`] naming the file and the
/// first offending value.
pub fn read_psf(path: &Path, limits: &ReadLimits) -> Result<Array2<f64>> {
    let (psf, _) = read_image_f64_limited(path, limits)?;
    crate::deconvolve::check_psf(psf.view(), &Source::file(path))?;
    Ok(psf)
}

/// [`read_image_f64`] with explicit [`ReadLimits`] (8 bytes per pixel count against them).
pub fn read_image_f64_limited(path: &Path, limits: &ReadLimits) -> Result<(Array2<f64>, Header)> {
    let (mut f, info, header) = read::open_image(path)?;
    read::check_limits(&mut f, &info, 8, limits)?;
    let data = read::read_f64(&mut f, &info)?;
    f.close()?;
    let data = read::to_array(data, &info, &Source::file(path))?;
    Ok((data, header))
}

/// The pixel type of an output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputType {
    /// 16-bit integers (`BITPIX = 16`): rounded half away from zero, saturated to
    /// [−32767, 32767], missing → `BLANK` = −32768. The default, as JSOC level-1.5 files.
    #[default]
    I16,
    /// 32-bit floats (`BITPIX = −32`): values as they are, missing stays NaN.
    F32,
}

/// Compression of an output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// A plain primary image HDU.
    #[default]
    None,
    /// Tile compression: an empty primary HDU followed by a compressed image HDU, as JSOC
    /// files. int16 uses RICE_1 (lossless for integers). float32 uses **GZIP_2** (byte-
    /// shuffled GZIP, lossless): cfitsio's RICE_1 can store floats only after quantising
    /// them, which loses precision, so lossless float RICE is not possible.
    Rice,
}

/// Options for [`write()`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WriteOptions {
    /// Pixel type (default int16).
    pub dtype: OutputType,
    /// Compression (default none).
    pub compress: Compression,
    /// Replace an existing output file (never the map's own input file).
    pub overwrite: bool,
    /// int16 only: physical = BZERO + BSCALE × stored, given as `(bscale, bzero)` in the
    /// physical unit of the data; `None` means (1, 0) and writes no BSCALE/BZERO keywords.
    /// Used for exposure-normalised output (DN/s values that need a finer step than 1).
    pub scaling: Option<(f64 /* bscale */, f64 /* bzero */)>,
}

/// What [`write()`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteReport {
    /// The output file.
    pub path: PathBuf,
    /// Smallest non-missing value as written (physical units; NaN if none).
    pub datamin: f64,
    /// Largest non-missing value as written (physical units; NaN if none).
    pub datamax: f64,
    /// Mean of the non-missing values as written (physical units; NaN if none).
    pub datamean: f64,
    /// Number of missing pixels (NaN in the map; `BLANK` in int16 files).
    pub n_missing: usize,
}

/// Write a map to `path` (see the module documentation for the contract).
///
/// The header: structural keywords from the data (cfitsio), then `BLANK` (int16) and
/// `BSCALE`/`BZERO` (when [`WriteOptions::scaling`] is set), then every card of
/// [`Header::passthrough_records`], then `DATAMIN`, `DATAMAX`, `DATAMEAN` over the
/// non-missing values as written (after int16 rounding and scaling; physical units). With
/// no valid pixel at all the file is still written, without those three keywords.
/// For float32, ±∞ pixels are written as they are but left out of the statistics.
///
/// Errors: [`Error::WouldOverwriteInput`] when `path` is `map.source` (even with
/// `overwrite`); [`Error::OutputExists`] when `path` exists and `overwrite` is false;
/// [`Error::Io`] when the output directory does not exist or the file cannot be moved
/// into place; [`Error::InvalidOption`] for scaling with float32 output or a zero or
/// non-finite scale; [`Error::Shape`] for an empty image; [`Error::Fits`] from cfitsio.
/// After an error no file is left behind (neither the output nor a temporary one).
///
/// ```
/// use aiaprep::fits::{self, Compression, WriteOptions};
/// let map = aiaprep::synth::level1(&aiaprep::synth::SynthOptions { size: 64, ..Default::default() });
/// let path = std::env::temp_dir().join(format!("aiaprep-doc-{}.fits", std::process::id()));
/// let opts = WriteOptions { compress: Compression::Rice, overwrite: true, ..WriteOptions::default() };
/// let report = fits::write(&map, &path, &opts)?; // int16 DN, BLANK for NaN
/// assert_eq!(report.n_missing, map.data.iter().filter(|v| v.is_nan()).count());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), aiaprep::Error>(())
/// ```
pub fn write(map: &AiaMap, path: &Path, opts: &WriteOptions) -> Result<WriteReport> {
    write_with(map, path, opts, true, &[]).map(|(report, _)| report)
}

/// [`write()`] with float32 image extensions after the image (e.g. the uncertainty map),
/// in the same file, written as atomically.
pub fn write_with_extensions(
    map: &AiaMap,
    path: &Path,
    opts: &WriteOptions,
    extensions: &[Extension<'_>],
) -> Result<WriteReport> {
    write_with(map, path, opts, true, extensions).map(|(report, _)| report)
}

/// [`write()`], choosing who encodes RICE_1 int16 tiles (`own_rice`: this crate, else
/// cfitsio); also returns whether this crate did (tests compare the two files).
pub(crate) fn write_with(
    map: &AiaMap,
    path: &Path,
    opts: &WriteOptions,
    own_rice: bool,
    extensions: &[Extension<'_>],
) -> Result<(WriteReport, bool)> {
    let file = Source::file(path);
    if let Some((bscale, bzero)) = opts.scaling {
        if opts.dtype != OutputType::I16 {
            return Err(Error::InvalidOption {
                file,
                reason: "BSCALE/BZERO scaling applies to int16 output only".into(),
            });
        }
        if !bscale.is_finite() || bscale == 0.0 || !bzero.is_finite() {
            return Err(Error::InvalidOption {
                file,
                reason: format!("scaling needs a finite nonzero BSCALE and finite BZERO (got {bscale}, {bzero})"),
            });
        }
    }
    output::preflight(path, map.source.path(), opts.overwrite)?;
    let (nx, ny) = map.shape_xy();
    write::check_shape(nx, ny, &file)?;
    let data = map.data.as_standard_layout();
    let slice = data.as_slice().ok_or_else(|| Error::Shape {
        file: file.clone(),
        reason: "pixel array is not contiguous".into(),
    })?;
    let (pixels, stats) = match opts.dtype {
        OutputType::I16 => {
            let (d, s) = write::convert_i16(slice, opts.scaling);
            (
                write::Encoded::I16 {
                    data: d,
                    scaling: opts.scaling,
                },
                s,
            )
        }
        OutputType::F32 => (write::Encoded::F32(slice), write::stats_f32(slice)),
    };
    write_encoded(
        &map.header,
        nx,
        ny,
        pixels,
        stats,
        path,
        opts,
        own_rice,
        extensions,
    )
}

/// Writes pixels already in the file's encoding, with their statistics (the part of
/// [`write()`] after the conversion; checks made by the caller).
#[allow(clippy::too_many_arguments)]
fn write_encoded(
    header: &Header,
    nx: usize,
    ny: usize,
    pixels: write::Encoded<'_>,
    stats: write::Stats,
    path: &Path,
    opts: &WriteOptions,
    own_rice: bool,
    extensions: &[Extension<'_>],
) -> Result<(WriteReport, bool)> {
    let layout = write::Layout {
        nx,
        ny,
        compress: opts.compress,
        header,
        stats: Some(stats),
        own_rice,
    };
    let written = write::write_atomically(path, opts.overwrite, &layout, &pixels, extensions);
    if let write::Encoded::I16 { data, .. } = pixels {
        crate::buffers::recycle_i16(data); // reused by the next write in a batch
    }
    let own = written?;
    let report = WriteReport {
        path: path.to_path_buf(),
        datamin: stats.min,
        datamax: stats.max,
        datamean: stats.mean,
        n_missing: stats.n_missing,
    };
    Ok((report, own))
}

pub use crate::int16::{Int16Pixels, PixelStats};

/// A float32 image extension written after the image of an output file (the uncertainty
/// map): `EXTNAME = name`, the non-structural cards of `header`, the pixels (NaN = missing).
#[derive(Debug, Clone, Copy)]
pub struct Extension<'a> {
    /// `EXTNAME`.
    pub name: &'a str,
    /// Cards passed through (structural ones are made from the data).
    pub header: &'a Header,
    /// Pixels, `[row, col]`.
    pub data: ArrayView2<'a, f32>,
}
pub use stored::{stored_header_f32, stored_header_i16};

/// f32 values (physical units; NaN = missing) encoded as [`write()`] stores them for
/// [`OutputType::I16`] with `scaling = (BSCALE, BZERO)` (`None` = (1, 0)), with the
/// statistics of the values as written — the CPU reference of the int16 encoding
/// ([`crate::int16`]).
///
/// Errors: none in practice ([`Error::Shape`] would mean the encoder lost values).
pub fn encode_int16(values: ArrayView2<f32>, scaling: Option<(f64, f64)>) -> Result<Int16Pixels> {
    let (ny, nx) = values.dim();
    let (data, st) = match values.as_slice() {
        Some(v) => write::convert_i16(v, scaling),
        None => write::convert_i16(&values.iter().copied().collect::<Vec<_>>(), scaling),
    };
    let data = Array2::from_shape_vec((ny, nx), data).map_err(|e| Error::Shape {
        file: Source::memory(),
        reason: format!("int16 encoding: {e}"),
    })?;
    Ok(Int16Pixels {
        data,
        scaling,
        stats: st,
    })
}

/// Write int16 pixels that are already encoded ([`Int16Pixels`]) with `header`, as
/// [`write()`] writes a map with [`OutputType::I16`] and `opts.compress`: the same file,
/// byte for byte, when the pixels are the same. `source` is the input the pixels came from
/// (never overwritten). `opts.dtype` and `opts.scaling` are ignored (the pixels carry them).
/// The pixel buffer is reused by the next write of a batch.
///
/// Errors: as [`write()`].
pub fn write_int16(
    header: &Header,
    source: &Source,
    pixels: Int16Pixels,
    path: &Path,
    opts: &WriteOptions,
) -> Result<WriteReport> {
    write_int16_with_extensions(header, source, pixels, path, opts, &[])
}

/// [`write_int16`] with float32 image extensions after the image.
pub fn write_int16_with_extensions(
    header: &Header,
    source: &Source,
    pixels: Int16Pixels,
    path: &Path,
    opts: &WriteOptions,
    extensions: &[Extension<'_>],
) -> Result<WriteReport> {
    let file = Source::file(path);
    output::preflight(path, source.path(), opts.overwrite)?;
    let (ny, nx) = pixels.data.dim();
    write::check_shape(nx, ny, &file)?;
    let data = if pixels.data.is_standard_layout() {
        pixels.data.into_raw_vec_and_offset().0
    } else {
        pixels.data.iter().copied().collect()
    };
    let stats = pixels.stats;
    let encoded = write::Encoded::I16 {
        data,
        scaling: pixels.scaling,
    };
    write_encoded(header, nx, ny, encoded, stats, path, opts, true, extensions).map(|(r, _)| r)
}

/// Write a float32 image (a plain primary HDU; NaN stays NaN) with `header`'s
/// non-structural cards passed through unchanged; nothing is added. Used to save PSFs.
/// Same file safety as [`write()`] (temporary name, no-clobber unless `overwrite`).
pub fn write_image_f32(
    path: &Path,
    data: ArrayView2<f32>,
    header: &Header,
    overwrite: bool,
) -> Result<()> {
    let file = Source::file(path);
    output::preflight(path, None, overwrite)?;
    let (ny, nx) = data.dim();
    write::check_shape(nx, ny, &file)?;
    let data = data.as_standard_layout();
    let slice = data.as_slice().ok_or_else(|| Error::Shape {
        file: file.clone(),
        reason: "pixel array is not contiguous".into(),
    })?;
    let layout = write::Layout {
        nx,
        ny,
        compress: Compression::None,
        header,
        stats: None,
        own_rice: true,
    };
    write::write_atomically(path, overwrite, &layout, &write::Encoded::F32(slice), &[]).map(|_| ())
}
