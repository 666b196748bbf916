//! The prep pipeline: stage order, backend choice, and one file in → one file out.
//!
//! Stage order (fixed): read → checks (AIA, geometry, full disk; LVL_NUM ≠ 1 warns) →
//! pointing update (optional) → PSF deconvolution on the level-1 CCD grid (optional) →
//! register → exposure normalisation (optional) → write (temporary name, then renamed).
//! Deconvolution always comes before register, never after.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::deconvolve::DeconvolveOptions;
use crate::degradation::{self, CorrectionTable, Degradation};
use crate::engine::Engines;
use crate::error::{Error, Result, Source};
use crate::fits::{self, ReadLimits, WriteOptions};
use crate::map::{AiaMap, MapView};
use crate::normalize;
use crate::pointing::{self, PointingTable};
use crate::quicklook::QuicklookOptions;
use crate::register::{self, Plan, RegisterOptions};
use crate::uncertainty::{ChannelErrors, ErrorOptions, ErrorTable};

/// A prepared image, ready for [`store`]: f32 pixels, or int16 pixels the engine already
/// encoded ([`crate::engine::Engine::prep_int16`]).
#[derive(Debug, Clone)]
pub enum Prepared {
    /// A map with f32 pixels (the writer converts them as asked).
    Map(AiaMap),
    /// A map with its uncertainty image (f32, same shape and unit) and that image's header.
    WithUncertainty {
        /// The map.
        map: AiaMap,
        /// The 1-σ uncertainty of each pixel.
        uncertainty: ndarray::Array2<f32>,
        /// Its header ([`crate::uncertainty::uncertainty_header`]).
        header: crate::header::Header,
    },
    /// Encoded int16 pixels with the output header.
    Int16 {
        /// The output header.
        header: crate::header::Header,
        /// The input the pixels came from.
        source: Source,
        /// The pixels.
        pixels: fits::Int16Pixels,
    },
}

impl From<AiaMap> for Prepared {
    fn from(m: AiaMap) -> Prepared {
        Prepared::Map(m)
    }
}

/// Everything a prep run can be asked to do.
#[derive(Debug, Clone, Default)]
pub struct PrepOptions {
    /// Register settings (interpolation, missing value, full-disk check).
    pub register: RegisterOptions,
    /// Deconvolve first (level 1.6) with these settings; `None` = no deconvolution.
    pub deconvolve: Option<DeconvolveOptions>,
    /// Update the pointing from this master pointing table first.
    pub pointing: Option<Arc<PointingTable>>,
    /// Divide by the degradation factor of this correction table after register (aiapy
    /// `correct_degradation`).
    pub correct_degradation: Option<Arc<CorrectionTable>>,
    /// Divide by EXPTIME after register (DN/s).
    pub normalize_exposure: bool,
    /// Write the per-pixel uncertainty (aiapy `estimate_error`) as a second image HDU of the
    /// output (`EXTNAME = 'UNCERTAINTY'`).
    pub uncertainty: Option<UncertaintyRequest>,
    /// Output type, compression, overwrite.
    pub write: WriteOptions,
    /// Write a PNG quicklook beside the output (the channel's colour table is used when
    /// `channel` is `None`).
    pub quicklook: Option<QuicklookOptions>,
    /// Caps on what reading one input may allocate (default 1 GiB, which fits 4096² and
    /// 8192² images); an input whose header declares more fails with
    /// [`crate::Error::TooLarge`] before anything is allocated.
    pub read_limits: ReadLimits,
}

/// An uncertainty map to write beside the data: of the registered counts (DN, before
/// the degradation correction and the exposure normalisation), divided like the data.
#[derive(Debug, Clone)]
pub struct UncertaintyRequest {
    /// The error table (gain, compression, calibration errors per channel).
    pub table: Arc<ErrorTable>,
    /// aiapy's options of `estimate_error`.
    pub options: ErrorOptions,
}

impl UncertaintyRequest {
    /// The table's entry for `map`'s channel, with the options checked: before any
    /// compute, so that a bad request costs nothing.
    fn check<'a>(&self, map: impl Into<MapView<'a>>) -> Result<(u32, ChannelErrors)> {
        let map = map.into();
        self.options.check()?;
        let ch = map.wavelength()?;
        Ok((ch, self.table.channel(ch)?))
    }
}

/// Wall time of each stage of one image (zero for stages that did not run).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Reading and decoding the input.
    pub read: Duration,
    /// AIA, geometry and full-disk checks.
    pub check: Duration,
    /// Pointing update.
    pub pointing: Duration,
    /// PSF deconvolution (including a PSF computed on first use).
    pub deconvolve: Duration,
    /// Register.
    pub register: Duration,
    /// Exposure normalisation.
    pub normalize: Duration,
    /// Encoding and writing the output.
    pub write: Duration,
    /// The quicklook PNG.
    pub quicklook: Duration,
    /// The uncertainty map.
    pub uncertainty: Duration,
}

impl StageTimes {
    /// The sum of all stages.
    pub fn total(&self) -> Duration {
        self.read
            + self.check
            + self.pointing
            + self.deconvolve
            + self.register
            + self.normalize
            + self.write
            + self.quicklook
            + self.uncertainty
    }

    /// `(name, duration)` of each stage that ran, in order.
    pub fn stages(&self) -> Vec<(&'static str, Duration)> {
        [
            ("read", self.read),
            ("check", self.check),
            ("pointing", self.pointing),
            ("deconvolve", self.deconvolve),
            ("register", self.register),
            ("normalize", self.normalize),
            ("write", self.write),
            ("quicklook", self.quicklook),
            ("uncertainty", self.uncertainty),
        ]
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        .collect()
    }
}

/// The result of preparing one file.
#[derive(Debug, Clone)]
pub struct PrepOutcome {
    /// The output file written.
    pub output: PathBuf,
    /// Stage times.
    pub times: StageTimes,
    /// Warnings (LVL_NUM ≠ 1, pointing-table NaN entries, ...).
    pub warnings: Vec<String>,
}

/// The output file name for an input: its stem (without `.fits`, `.fits.fz`, `.fts`,
/// `.fz`) plus `_lev15.fits`, in `out_dir`.
pub fn output_path(input: &Path, out_dir: &Path) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "image".to_string());
    let lower = name.to_ascii_lowercase();
    let mut stem = name.as_str();
    for ext in [".fits.fz", ".fits.gz", ".fits", ".fts", ".fit", ".fz"] {
        if lower.ends_with(ext) {
            stem = &name[..name.len() - ext.len()];
            break;
        }
    }
    out_dir.join(format!("{stem}_lev15.fits"))
}

/// Check a freshly read level-1 map before any expensive stage — an AIA image, usable
/// geometry, (when `opts.check_full_disk`) the full disk, usable register options — and
/// make its register plan ([`register::plan`]: the geometry is parsed and the full disk
/// tested here, once; the plan travels with the map). Returns the plan and the warnings
/// (LVL_NUM other than 1, as aiapy warns).
pub fn check_level1<'a>(
    map: impl Into<MapView<'a>>,
    opts: &RegisterOptions,
) -> Result<(Plan, Vec<String>)> {
    let map = map.into();
    map.check_is_aia()?;
    let mut warnings = Vec::new();
    match map.level() {
        Some(l) if (l - 1.0).abs() < 1e-9 => {}
        Some(l) => warnings.push(format!(
            "{}: LVL_NUM = {l}: registration should only be applied to level 1 data",
            map.source
        )),
        None => warnings.push(format!(
            "{}: no LVL_NUM keyword: registration should only be applied to level 1 data",
            map.source
        )),
    }
    let plan = register::plan(map, opts)?;
    Ok((plan, warnings))
}

/// Prepare a map in memory: pointing → deconvolve → register → normalise. `times` gets
/// the stage times; warnings are appended to `warnings`.
pub fn prep_map(
    map: AiaMap,
    opts: &PrepOptions,
    engines: &Engines,
    times: &mut StageTimes,
    warnings: &mut Vec<String>,
) -> Result<AiaMap> {
    let mut map = map;
    let plan = apply_pointing(&mut map, None, opts, times, warnings)?;
    let div = Division::of(&map, opts)?;
    compute(map, &plan, &div, None, opts, engines, times).map(|(m, _)| m)
}

/// What the registered pixels are divided by, in aiapy's order: the degradation factor,
/// then the exposure time. Worked out from the level-1 header before any compute, so a
/// missing keyword or a bad table costs nothing.
#[derive(Debug, Clone, Default)]
pub struct Division {
    /// The degradation factor and its table.
    pub degradation: Option<(Degradation, Arc<CorrectionTable>)>,
    /// The exposure time (s).
    pub exposure: Option<f64>,
}

impl Division {
    /// The division `opts` asks of `map` (its channel, `DATE-OBS`, `EXPTIME`).
    ///
    /// Errors: those of [`CorrectionTable::degradation`], [`degradation::observation_time`],
    /// [`normalize::exposure_time`], naming the input (or the table).
    pub fn of<'a>(map: impl Into<MapView<'a>>, opts: &PrepOptions) -> Result<Division> {
        Division::new(
            map,
            opts.correct_degradation.as_ref(),
            opts.normalize_exposure,
        )
    }

    /// The division by the degradation factor of `table` (if any) and by the exposure time
    /// (if `normalize`), for `map`.
    pub fn new<'a>(
        map: impl Into<MapView<'a>>,
        table: Option<&Arc<CorrectionTable>>,
        normalize: bool,
    ) -> Result<Division> {
        let map = map.into();
        let degradation = match table {
            Some(table) => {
                let t = degradation::observation_time(map.header, map.source)?;
                let d = table.degradation(map.wavelength()?, t)?;
                Some((d, table.clone()))
            }
            None => None,
        };
        let exposure = if normalize {
            Some(normalize::exposure_time(map)?)
        } else {
            None
        };
        Ok(Division {
            degradation,
            exposure,
        })
    }

    /// The one divisor (degradation factor × exposure time), `None` when nothing divides.
    pub fn divisor(&self) -> Option<f64> {
        match (&self.degradation, self.exposure) {
            (None, None) => None,
            (d, e) => Some(d.as_ref().map_or(1.0, |(d, _)| d.factor) * e.unwrap_or(1.0)),
        }
    }

    /// The header records of the division, in order (degradation, then exposure).
    pub fn record(&self, h: &mut crate::header::Header) {
        if let Some((d, table)) = &self.degradation {
            degradation::corrected_header(h, d, table);
        }
        if let Some(t) = self.exposure {
            normalize::normalized_header(h, t);
        }
    }
}

/// `(BSCALE, BZERO)` for int16 output of a header whose data were divided (degradation
/// correction, exposure normalisation): `BSCALE = 1 / divisor` so that the stored integers
/// are the DN values (see [`normalize::int16_scaling`]); `None` when nothing was divided.
pub fn int16_scaling_of(h: &crate::header::Header) -> Option<(f64, f64)> {
    let e = normalize::original_exptime(h);
    let d = h
        .get_f64(degradation::KEY_FACTOR)
        .filter(|d| d.is_finite() && *d > 0.0);
    match (e, d) {
        (None, None) => None,
        (e, d) => Some(normalize::int16_scaling(
            e.unwrap_or(1.0) * d.unwrap_or(1.0),
        )),
    }
}

/// deconvolve → register → normalise with f32 pixels (after the pointing update; `plan`
/// is the register plan of the updated map).
fn compute(
    map: AiaMap,
    plan: &Plan,
    div: &Division,
    errors: Option<(u32, ChannelErrors)>,
    opts: &PrepOptions,
    engines: &Engines,
    times: &mut StageTimes,
) -> Result<(AiaMap, Option<ndarray::Array2<f32>>)> {
    let mut map = map;
    // One engine that computes the uncertainty where the image is (the GPU: on the device).
    if let (Some(u), Some((_, e)), true) = (&opts.uncertainty, errors, engines.one_engine()) {
        if let Some(r) = engines.register.prep_with_uncertainty(
            map.view(),
            opts.deconvolve.as_ref(),
            plan,
            &opts.register,
            div.divisor(),
            &e,
            &u.options,
        ) {
            let mut w = r?;
            times.deconvolve = w.deconvolve;
            times.register = w.register;
            div.record(&mut w.map.header);
            crate::buffers::recycle_array(map.data);
            return Ok((w.map, Some(w.uncertainty)));
        }
    }
    let mut out = match &opts.deconvolve {
        // One engine does both: it may keep the image on its device in between.
        Some(d) if engines.one_engine() => {
            let (out, t_dec, t_reg) =
                engines
                    .register
                    .deconvolve_register(map.view(), d, plan, &opts.register)?;
            times.deconvolve = t_dec;
            times.register = t_reg;
            out
        }
        _ => {
            if let Some(d) = &opts.deconvolve {
                let t = Instant::now();
                let dec = engines.deconvolve.deconvolve(map.view(), d)?;
                crate::buffers::recycle_array(std::mem::replace(&mut map, dec).data);
                times.deconvolve = t.elapsed();
            }
            let t = Instant::now();
            let out = engines
                .register
                .register_planned(map.view(), plan, &opts.register)?;
            times.register = t.elapsed();
            out
        }
    };
    // Done with the input's pixels: reused by the next read while a batch runs.
    crate::buffers::recycle_array(map.data);
    // The uncertainty of the registered counts (aiapy: of counts not divided by anything).
    let mut unc = match (&opts.uncertainty, errors) {
        (Some(u), Some((_, e))) => {
            let t = Instant::now();
            let m = engines
                .register
                .estimate_error(out.data.view(), &e, &u.options)?;
            times.uncertainty = t.elapsed();
            Some(m)
        }
        _ => None,
    };
    if let Some(d) = div.divisor() {
        let t = Instant::now();
        normalize::divide_in_place(&mut out.data, d);
        if let Some(u) = unc.as_mut() {
            normalize::divide_in_place(u, d);
        }
        div.record(&mut out.header);
        times.normalize = t.elapsed();
    }
    Ok((out, unc))
}

/// The prepared result of [`compute`]: the map, with its uncertainty image if asked.
fn prepared(
    (map, unc): (AiaMap, Option<ndarray::Array2<f32>>),
    opts: &PrepOptions,
    errors: Option<(u32, ChannelErrors)>,
) -> Prepared {
    match (unc, &opts.uncertainty, errors) {
        (Some(uncertainty), Some(u), Some((ch, _))) => {
            let header =
                crate::uncertainty::uncertainty_header(&map.header, &u.table, &u.options, ch);
            Prepared::WithUncertainty {
                map,
                uncertainty,
                header,
            }
        }
        _ => Prepared::Map(map),
    }
}

/// Prepare a map for [`store`]: as [`prep_map`], except that when one engine does
/// everything, the output is int16 and no quicklook follows, the engine is asked to encode
/// the int16 pixels itself ([`crate::engine::Engine::prep_int16`]; the GPU engine does, on the device).
/// The file written is the same either way (up to ±1 where a float result sits on a
/// rounding boundary, as between the CPU and GPU paths anyway).
pub fn prepare(
    map: AiaMap,
    opts: &PrepOptions,
    engines: &Engines,
    times: &mut StageTimes,
    warnings: &mut Vec<String>,
) -> Result<Prepared> {
    prepare_planned(map, None, opts, engines, times, warnings)
}

/// [`prepare`] with the map's register plan made at load (`plan`, from [`load`] /
/// [`check_level1`]): used as it is unless a pointing update changes the geometry, when
/// the plan is made again from the updated header.
pub fn prepare_planned(
    map: AiaMap,
    plan: Option<Plan>,
    opts: &PrepOptions,
    engines: &Engines,
    times: &mut StageTimes,
    warnings: &mut Vec<String>,
) -> Result<Prepared> {
    let mut map = map;
    let plan = apply_pointing(&mut map, plan, opts, times, warnings)?;
    let div = Division::of(&map, opts)?;
    let errors = match &opts.uncertainty {
        Some(u) => Some(u.check(&map)?),
        None => None,
    };
    let int16 = engines.one_engine()
        && opts.write.dtype == fits::OutputType::I16
        && opts.quicklook.is_none()
        && opts.uncertainty.is_none();
    if !int16 {
        let out = compute(map, &plan, &div, errors, opts, engines, times)?;
        return Ok(prepared(out, opts, errors));
    }
    let divisor = div.divisor();
    let scaling = divisor.map(normalize::int16_scaling);
    match engines.register.prep_int16(
        map.view(),
        opts.deconvolve.as_ref(),
        &plan,
        &opts.register,
        divisor,
        scaling,
    ) {
        Some(r) => {
            let mut p = r?;
            times.deconvolve = p.deconvolve;
            times.register = p.register;
            div.record(&mut p.header);
            let source = map.source.clone();
            crate::buffers::recycle_array(map.data);
            Ok(Prepared::Int16 {
                header: p.header,
                source,
                pixels: p.pixels,
            })
        }
        None => {
            let out = compute(map, &plan, &div, errors, opts, engines, times)?;
            Ok(prepared(out, opts, errors))
        }
    }
}

/// The pointing update of `opts` (if any), in place; returns the register plan of the map
/// as updated: `plan` (made at load) when nothing changed the geometry, else a new one.
fn apply_pointing(
    map: &mut AiaMap,
    plan: Option<Plan>,
    opts: &PrepOptions,
    times: &mut StageTimes,
    warnings: &mut Vec<String>,
) -> Result<Plan> {
    match (&opts.pointing, plan) {
        (Some(table), _) => {
            let t = Instant::now();
            let (_row, w) = pointing::update_pointing_in_place(map, table)?;
            warnings.extend(w);
            times.pointing = t.elapsed();
            register::plan(&*map, &opts.register)
        }
        (None, Some(plan)) => Ok(plan),
        (None, None) => register::plan(&*map, &opts.register),
    }
}

/// A level-1 map read and checked, ready for [`prepare_planned`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The map.
    pub map: AiaMap,
    /// Its register plan (geometry, full-disk check, transform), made once at load.
    pub plan: Plan,
    /// Warnings so far.
    pub warnings: Vec<String>,
    /// Stage times so far (read, check).
    pub times: StageTimes,
}

/// Read and check one level-1 file (the decode stage); the full-disk check follows
/// `opts.register.check_full_disk`.
pub fn load(input: &Path, opts: &PrepOptions) -> Result<Loaded> {
    let mut times = StageTimes::default();
    let t = Instant::now();
    let map = fits::read_limited(input, &opts.read_limits)?;
    times.read = t.elapsed();
    let t = Instant::now();
    let (plan, warnings) = check_level1(&map, &opts.register)?;
    times.check = t.elapsed();
    Ok(Loaded {
        map,
        plan,
        warnings,
        times,
    })
}

/// The HISTORY card [`store`] adds to every output: the version, the engines and the
/// output type (`int16`, else float32).
pub fn history_line(engines: &Engines, int16: bool) -> String {
    format!(
        "aiaprep {} prep: {}; output {}",
        crate::VERSION,
        engines.description,
        if int16 { "int16" } else { "float32" }
    )
}

/// Write a prepared map (the encode stage): HISTORY of the run, int16 scaling for
/// exposure-normalised output, the file (temporary name, then renamed) and the quicklook.
/// `engines` is only used for the HISTORY card.
pub fn store(
    out: impl Into<Prepared>,
    output: &Path,
    opts: &PrepOptions,
    engines: &Engines,
    times: &mut StageTimes,
) -> Result<()> {
    let history = history_line(engines, opts.write.dtype == fits::OutputType::I16);
    let (mut out, unc) = match out.into() {
        Prepared::Map(m) => (m, None),
        Prepared::WithUncertainty {
            map,
            uncertainty,
            header,
        } => (map, Some((uncertainty, header))),
        Prepared::Int16 {
            mut header,
            source,
            pixels,
        } => {
            header.push_history(&history);
            let t = Instant::now();
            fits::write_int16(&header, &source, pixels, output, &opts.write)?;
            times.write = t.elapsed();
            return Ok(());
        }
    };
    out.header.push_history(&history);
    let mut wopts = opts.write;
    if wopts.dtype == fits::OutputType::I16 {
        wopts.scaling = int16_scaling_of(&out.header);
        if opts.normalize_exposure && normalize::original_exptime(&out.header).is_none() {
            return Err(Error::MissingKeyword {
                file: out.source.clone(),
                key: "EXPTIME (original, before normalisation)".into(),
            });
        }
    }
    let t = Instant::now();
    match &unc {
        Some((u, h)) => {
            let ext = fits::Extension {
                name: "UNCERTAINTY",
                header: h,
                data: u.view(),
            };
            fits::write_with_extensions(&out, output, &wopts, &[ext])?
        }
        None => fits::write(&out, output, &wopts)?,
    };
    times.write = t.elapsed();
    if let Some(q) = &opts.quicklook {
        let t = Instant::now();
        let mut q = q.clone();
        q.channel = q.channel.or_else(|| out.wavelength().ok());
        crate::quicklook::write_png_with(out.data.view(), &output.with_extension("png"), &q)?;
        times.quicklook = t.elapsed();
    }
    if let Some((u, _)) = unc {
        crate::buffers::recycle_array(u);
    }
    // Reused by the next register while a batch runs.
    crate::buffers::recycle_array(out.data);
    Ok(())
}

/// Prepare one file: read, check, process, write `output` (see the module docs).
///
/// An existing `output` is an [`Error::OutputExists`] unless `opts.write.overwrite`; the
/// output is never one of the inputs and is never left partially written.
pub fn prep_file(
    input: &Path,
    output: &Path,
    opts: &PrepOptions,
    engines: &Engines,
) -> Result<PrepOutcome> {
    if output.exists() && !opts.write.overwrite {
        return Err(Error::OutputExists {
            file: Source::file(output),
        });
    }
    let Loaded {
        map,
        plan,
        mut warnings,
        mut times,
    } = load(input, opts)?;
    let out = prepare_planned(map, Some(plan), opts, engines, &mut times, &mut warnings)?;
    store(out, output, opts, engines, &mut times)?;
    Ok(PrepOutcome {
        output: output.to_path_buf(),
        times,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names() {
        let d = Path::new("/o");
        assert_eq!(
            output_path(Path::new("/i/aia.lev1.171A_2011.fits"), d),
            Path::new("/o/aia.lev1.171A_2011_lev15.fits")
        );
        assert_eq!(
            output_path(Path::new("x.FITS.fz"), d),
            Path::new("/o/x_lev15.fits")
        );
        assert_eq!(
            output_path(Path::new("noext"), d),
            Path::new("/o/noext_lev15.fits")
        );
    }
}
