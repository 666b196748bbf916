//! `aiaprep._native`: the Rust side of the Python package. The Python layer
//! (`python/aiaprep/`) turns sunpy maps and astropy headers into what these functions take
//! — numpy arrays and headers as 80-character FITS records — and back.
//!
//! Every function releases the GIL while it computes; errors are the crate's, as Python
//! exceptions with the CLI's messages (`InputError` — a `ValueError` — for bad input,
//! `BackendUnavailableError` when the CUDA backend is asked for and absent, `GpuError`,
//! `OSError`, `FileExistsError`).

mod batch;
mod convert;
mod pixels;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use aiaprep::deconvolve::{DeconvolveOptions, PsfSource};
use aiaprep::degradation::CorrectionTable;
use aiaprep::engine::{select_engines, Backend, EngineOptions, Engines};
use aiaprep::fits;
use aiaprep::map::{AiaMap, MapView};
use aiaprep::pipeline;
use aiaprep::pipeline::UncertaintyRequest;
use aiaprep::pointing::{self, PointingTable};
use aiaprep::psf::PsfOptions;
use aiaprep::register::RegisterOptions;
use aiaprep::uncertainty::{ErrorOptions, ErrorTable};
use aiaprep::{Error, Header, Source};
use numpy::{IntoPyArray, PyReadonlyArray2};
use pyo3::exceptions::{PyFileExistsError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

pyo3::create_exception!(
    aiaprep._native,
    InputError,
    PyValueError,
    "Bad input: not an AIA level-1 image, a missing or invalid keyword, not the full disk, an unusable PSF or pointing table, an invalid option."
);
pyo3::create_exception!(
    aiaprep._native,
    BackendUnavailableError,
    PyRuntimeError,
    "The backend asked for (backend='cuda') is not available: no driver, NVRTC, cuFFT or device."
);
pyo3::create_exception!(
    aiaprep._native,
    GpuError,
    PyRuntimeError,
    "A GPU operation failed (driver, NVRTC, cuFFT, out of device memory)."
);

/// The crate's error as the Python exception users expect; the message is the CLI's.
pub(crate) fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Io { .. } => PyOSError::new_err(msg),
        Error::OutputExists { .. } => PyFileExistsError::new_err(msg),
        Error::BackendUnavailable { .. } => BackendUnavailableError::new_err(msg),
        Error::Gpu { .. } => GpuError::new_err(msg),
        _ => InputError::new_err(msg),
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> PyErr {
    InputError::new_err(msg.into())
}

/// The read cap of `max_input_mib` MiB (1 to 2²⁴, as `prep --max-input-mib`); None: the
/// library's default.
pub(crate) fn read_limits(max_input_mib: Option<u64>) -> PyResult<fits::ReadLimits> {
    let Some(max_input_mib) = max_input_mib else {
        return Ok(fits::ReadLimits::default());
    };
    if !(1..=1 << 24).contains(&max_input_mib) {
        return Err(invalid(format!(
            "max_input_mib must be 1 to 16777216 (MiB), not {max_input_mib}"
        )));
    }
    Ok(fits::ReadLimits {
        max_bytes: max_input_mib << 20,
    })
}

/// The engines for a backend choice, made once per process and choice (a GPU engine keeps
/// its compiled kernels, plans and buffers between calls).
pub(crate) fn engines(backend: &str, register_on_cpu: bool) -> PyResult<Arc<Engines>> {
    type Cache = Mutex<HashMap<(String, bool), Arc<Engines>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let b: Backend = backend.parse().map_err(invalid)?;
    let key = (format!("{b:?}"), register_on_cpu);
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(e) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(e);
    }
    let opts = EngineOptions {
        backend: b,
        register_on_cpu,
        ..EngineOptions::from_env().map_err(py_err)?
    };
    let e = Arc::new(select_engines(&opts).map_err(py_err)?);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, e.clone());
    }
    Ok(e)
}

/// Which engines a backend choice gives, in words (e.g. "cpu (2 threads)").
#[pyfunction]
#[pyo3(signature = (backend = "auto", register_on_cpu = false))]
fn describe_backend(py: Python<'_>, backend: &str, register_on_cpu: bool) -> PyResult<String> {
    let _ = py;
    Ok(engines(backend, register_on_cpu)?.description.clone())
}

fn source_of(name: Option<String>) -> Source {
    match name {
        Some(n) => Source(Some(n.into())),
        None => Source::memory(),
    }
}

/// A table given as CSV text or as a path (not both); `None` when neither.
fn table_from<T>(
    what: &str,
    csv: Option<String>,
    path: Option<String>,
    parse: impl FnOnce(&str) -> aiaprep::Result<T>,
    read: impl FnOnce(&std::path::Path) -> aiaprep::Result<T>,
) -> PyResult<Option<T>> {
    match (csv, path) {
        (Some(_), Some(_)) => Err(invalid(format!(
            "give the {what} as CSV text or as a path, not both"
        ))),
        (Some(text), None) => parse(&text).map(Some).map_err(py_err),
        (None, Some(p)) => read(std::path::Path::new(&p)).map(Some).map_err(py_err),
        (None, None) => Ok(None),
    }
}

pub(crate) fn correction_table(
    csv: Option<String>,
    path: Option<String>,
) -> PyResult<Option<CorrectionTable>> {
    table_from(
        "correction table",
        csv,
        path,
        |t| CorrectionTable::parse(t, Source::memory()),
        CorrectionTable::read,
    )
}

/// The uncertainty request of the Python options (`None` unless `uncertainty`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn error_request(
    uncertainty: bool,
    error_csv: Option<String>,
    error_path: Option<String>,
    n_sample: f64,
    include_preflight: bool,
    include_eve: bool,
    include_chianti: bool,
    compare_idl: bool,
) -> PyResult<Option<UncertaintyRequest>> {
    if !uncertainty {
        return Ok(None);
    }
    let table = table_from(
        "error table",
        error_csv,
        error_path,
        |t| ErrorTable::parse(t, Source::memory()),
        ErrorTable::read,
    )?
    .unwrap_or_else(ErrorTable::default_v3);
    let options = ErrorOptions {
        n_sample,
        include_preflight,
        include_eve,
        include_chianti,
        compare_idl,
    };
    options.check().map_err(py_err)?;
    Ok(Some(UncertaintyRequest {
        table: Arc::new(table),
        options,
    }))
}

/// aiapy's `estimate_error`: the 1-σ uncertainty (DN) of each of `counts` (DN, not
/// divided by the exposure time) of `channel` (Å), float32.
#[pyfunction]
#[pyo3(signature = (
    counts, channel, *, error_csv = None, error_path = None, n_sample = 1.0,
    include_preflight = false, include_eve = false, include_chianti = false, compare_idl = false,
))]
#[allow(clippy::too_many_arguments)]
fn estimate_error<'py>(
    py: Python<'py>,
    counts: &Bound<'py, PyAny>,
    channel: u32,
    error_csv: Option<String>,
    error_path: Option<String>,
    n_sample: f64,
    include_preflight: bool,
    include_eve: bool,
    include_chianti: bool,
    compare_idl: bool,
) -> PyResult<Bound<'py, numpy::PyArray2<f32>>> {
    let req = error_request(
        true,
        error_csv,
        error_path,
        n_sample,
        include_preflight,
        include_eve,
        include_chianti,
        compare_idl,
    )?
    .ok_or_else(|| invalid("no error request"))?;
    let e = req.table.channel(channel).map_err(py_err)?;
    let p = pixels::pixels(py, counts, "counts")?;
    let view = p.view();
    let out = py.detach(|| aiaprep::cpu::uncertainty::estimate_error_map(view, &e, &req.options));
    Ok(out.into_pyarray(py))
}

pub(crate) fn pointing_table(
    csv: Option<String>,
    path: Option<String>,
) -> PyResult<Option<PointingTable>> {
    table_from(
        "pointing table",
        csv,
        path,
        |t| PointingTable::parse_csv(t, Source::memory()),
        PointingTable::read_csv,
    )
}

/// The model PSF of `channel` (Å) on a `size`² grid, `[row, col]`, peak at `[size/2,
/// size/2]`, sum 1 — aiapy's `psf.psf`.
#[pyfunction]
#[pyo3(signature = (channel, *, use_preflightcore = false, diffraction_orders = None, size = 4096, backend = "auto"))]
fn psf<'py>(
    py: Python<'py>,
    channel: u32,
    use_preflightcore: bool,
    diffraction_orders: Option<Vec<i32>>,
    size: usize,
    backend: &str,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    let e = engines(backend, false)?;
    let mut opts = PsfOptions {
        preflight_core: use_preflightcore,
        size,
        ..Default::default()
    };
    if let Some(o) = diffraction_orders {
        opts.orders = o;
    }
    let a = py
        .detach(|| e.deconvolve.psf(channel, &opts))
        .map_err(py_err)?;
    Ok(a.into_pyarray(py))
}

/// The degradation factor of `channel` (Å) at `time` (ISO 8601, UTC): aiapy's
/// `degradation`.
#[pyfunction]
#[pyo3(signature = (channel, time, *, correction_csv = None, correction_path = None))]
fn degradation(
    channel: u32,
    time: &str,
    correction_csv: Option<String>,
    correction_path: Option<String>,
) -> PyResult<f64> {
    let table = correction_table(correction_csv, correction_path)?
        .ok_or_else(|| invalid("degradation needs a correction table"))?;
    let t = aiaprep::time::UtcTime::parse(time)
        .map_err(|e| invalid(format!("invalid option: time '{time}': {e}")))?;
    Ok(table.degradation(channel, t).map_err(py_err)?.factor)
}

/// The pointing update of a header (no pixels touched): `(cards, warnings)`.
#[pyfunction]
#[pyo3(signature = (header, shape, *, source = None, table_csv = None, table_path = None))]
fn update_pointing<'py>(
    py: Python<'py>,
    header: &str,
    shape: (usize, usize),
    source: Option<String>,
    table_csv: Option<String>,
    table_path: Option<String>,
) -> PyResult<(Bound<'py, pyo3::types::PyList>, Vec<String>)> {
    let h = Header::parse(header);
    let src = source_of(source);
    let table = pointing_table(table_csv, table_path)?
        .ok_or_else(|| invalid("update_pointing needs a pointing table"))?;
    // The header rule reads the shape, never the pixels: a broadcast view of one value.
    let one = [0f32; 1];
    let cell =
        ndarray::ArrayView2::from_shape((1, 1), &one[..]).map_err(|e| invalid(e.to_string()))?;
    let data = cell.broadcast(shape).ok_or_else(|| invalid("bad shape"))?;
    let view = MapView::new(data, &h, &src);
    let (new, _row, warnings) = pointing::updated_header(view, &table).map_err(py_err)?;
    Ok((convert::cards(py, &new)?, warnings))
}

/// What [`process`] returns: pixels, cards, warnings, info.
type Processed<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, pyo3::types::PyList>,
    Vec<String>,
    Bound<'py, PyDict>,
);

/// What [`process`] runs, in aiapy's order: pointing → deconvolve → register →
/// degradation → exposure.
struct Steps {
    pointing: Option<PointingTable>,
    deconvolve: Option<DeconvolveOptions>,
    register: Option<RegisterOptions>,
    degradation: Option<Arc<CorrectionTable>>,
    uncertainty: Option<UncertaintyRequest>,
    normalize: bool,
    int16: bool,
    prep_history: bool,
}

/// One image through the chosen steps. Returns `(data, cards, warnings, info)`: `data`
/// float32 (or int16 as `prep` stores it, with `dtype="int16"`), `cards` the header the
/// output file would carry, `info` a dict with `backend`, `seconds` (the compute, GIL
/// released) and `borrowed` (whether the input pixels were read in place).
#[pyfunction]
#[pyo3(signature = (
    data, header, *, source = None,
    pointing_csv = None, pointing_path = None,
    deconvolve = false, iterations = 25, clip_negative = true, psf = None,
    use_preflightcore = false, diffraction_orders = None,
    register = false, interpolation = "spline", missing = None, check_full_disk = true,
    correction_csv = None, correction_path = None,
    uncertainty = false, error_csv = None, error_path = None, n_sample = 1.0,
    include_preflight = false, include_eve = false, include_chianti = false,
    normalize_exposure = false, dtype = "float32", backend = "auto", register_on_cpu = false,
    prep_history = false,
))]
#[allow(clippy::too_many_arguments)]
fn process<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    header: &str,
    source: Option<String>,
    pointing_csv: Option<String>,
    pointing_path: Option<String>,
    deconvolve: bool,
    iterations: usize,
    clip_negative: bool,
    psf: Option<PyReadonlyArray2<'py, f64>>,
    use_preflightcore: bool,
    diffraction_orders: Option<Vec<i32>>,
    register: bool,
    interpolation: &str,
    missing: Option<f64>,
    check_full_disk: bool,
    correction_csv: Option<String>,
    correction_path: Option<String>,
    uncertainty: bool,
    error_csv: Option<String>,
    error_path: Option<String>,
    n_sample: f64,
    include_preflight: bool,
    include_eve: bool,
    include_chianti: bool,
    normalize_exposure: bool,
    dtype: &str,
    backend: &str,
    register_on_cpu: bool,
    prep_history: bool,
) -> PyResult<Processed<'py>> {
    let int16 = match dtype {
        "float32" | "f32" => false,
        "int16" | "i16" => true,
        other => {
            return Err(invalid(format!(
                "dtype must be 'float32' or 'int16', not {other:?}"
            )))
        }
    };
    let deconvolve = if deconvolve {
        let psf = match psf {
            Some(p) => PsfSource::Array {
                psf: p.as_array().to_owned().into(),
                label: "(numpy array)".into(),
            },
            None => {
                let mut o = PsfOptions {
                    preflight_core: use_preflightcore,
                    ..Default::default()
                };
                if let Some(d) = diffraction_orders {
                    o.orders = d;
                }
                PsfSource::Model(o)
            }
        };
        Some(DeconvolveOptions {
            iterations,
            clip_negative,
            psf,
        })
    } else {
        None
    };
    let register = if register {
        Some(RegisterOptions {
            interpolation: interpolation.parse().map_err(invalid)?,
            missing: convert::missing(missing),
            check_full_disk,
        })
    } else {
        None
    };
    let steps = Steps {
        pointing: pointing_table(pointing_csv, pointing_path)?,
        deconvolve,
        register,
        degradation: correction_table(correction_csv, correction_path)?.map(Arc::new),
        uncertainty: error_request(
            uncertainty,
            error_csv,
            error_path,
            n_sample,
            include_preflight,
            include_eve,
            include_chianti,
            false,
        )?,
        normalize: normalize_exposure,
        int16,
        prep_history,
    };
    let engines = engines(backend, register_on_cpu)?;
    let pixels = pixels::pixels(py, data, "data")?;
    let borrowed = pixels.borrowed();
    let h = Header::parse(header);
    let src = source_of(source);
    let view = MapView::new(pixels.view(), &h, &src);
    let t = Instant::now();
    let out = py.detach(|| run(view, &steps, &engines));
    let seconds = t.elapsed().as_secs_f64();
    let Output {
        pixels: out_pixels,
        header: out_header,
        warnings,
        uncertainty,
    } = out.map_err(py_err)?;
    let info = PyDict::new(py);
    if let Some((u, h)) = uncertainty {
        info.set_item("uncertainty", u.into_pyarray(py))?;
        info.set_item("uncertainty_header", convert::cards(py, &h)?)?;
    }
    info.set_item("backend", engines.description.clone())?;
    info.set_item("seconds", seconds)?;
    info.set_item("borrowed", borrowed)?;
    let data = match out_pixels {
        OutPixels::F32(a) => a.into_pyarray(py).into_any(),
        OutPixels::I16(a) => a.into_pyarray(py).into_any(),
    };
    Ok((data, convert::cards(py, &out_header)?, warnings, info))
}

enum OutPixels {
    F32(ndarray::Array2<f32>),
    I16(ndarray::Array2<i16>),
}

struct Output {
    pixels: OutPixels,
    header: Header,
    warnings: Vec<String>,
    /// The uncertainty image and its header, when asked.
    uncertainty: Option<(ndarray::Array2<f32>, Header)>,
}

fn run(view: MapView<'_>, steps: &Steps, engines: &Engines) -> aiaprep::Result<Output> {
    let mut warnings = Vec::new();
    // Pointing: a new header over the same pixels.
    let pointed = match &steps.pointing {
        Some(table) => {
            let (h, _row, w) = pointing::updated_header(view, table)?;
            warnings.extend(w);
            Some(h)
        }
        None => None,
    };
    let view: MapView<'_> = match &pointed {
        Some(h) => MapView::new(view.data, h, view.source),
        None => MapView::new(view.data, view.header, view.source),
    };
    let plan = match &steps.register {
        Some(r) => {
            let (plan, w) = pipeline::check_level1(view, r)?;
            warnings.extend(w);
            Some(plan)
        }
        None => None,
    };
    let mut out: Option<AiaMap> = match (&steps.deconvolve, &steps.register, &plan) {
        (Some(d), Some(r), Some(plan)) if engines.one_engine() => {
            Some(engines.register.deconvolve_register(view, d, plan, r)?.0)
        }
        (Some(d), Some(r), Some(plan)) => {
            let dec = engines.deconvolve.deconvolve(view, d)?;
            Some(engines.register.register_planned(dec.view(), plan, r)?)
        }
        (Some(d), None, _) => Some(engines.deconvolve.deconvolve(view, d)?),
        (None, Some(r), Some(plan)) => Some(engines.register.register_planned(view, plan, r)?),
        _ => None,
    };
    let div = pipeline::Division::new(view, steps.degradation.as_ref(), steps.normalize)?;
    // The uncertainty of the counts before any division (aiapy), divided like the data.
    let mut unc = match &steps.uncertainty {
        Some(u) => {
            u.options.check()?;
            let ch = view.wavelength()?;
            let e = u.table.channel(ch)?;
            let counts = out.as_ref().map_or(view.data, |m| m.data.view());
            Some((engines.register.estimate_error(counts, &e, &u.options)?, ch))
        }
        None => None,
    };
    if let (Some(d), Some((u, _))) = (div.divisor(), unc.as_mut()) {
        aiaprep::normalize::divide_in_place(u, d);
    }
    if let Some(d) = div.divisor() {
        let mut m = match out {
            Some(mut m) => {
                aiaprep::normalize::divide_in_place(&mut m.data, d);
                m
            }
            None => AiaMap::new(
                aiaprep::normalize::divided(view.data, d),
                view.header.clone(),
                view.source.clone(),
            ),
        };
        div.record(&mut m.header);
        out = Some(m);
    }
    let mut out = match out {
        Some(m) => m,
        None => {
            // Nothing but (perhaps) the pointing: the same pixels, the new header.
            view.to_owned()
        }
    };
    if steps.prep_history {
        out.header
            .push_history(&pipeline::history_line(engines, steps.int16));
    }
    if steps.int16 {
        let scaling = pipeline::int16_scaling_of(&out.header);
        let px = engines.register.to_int16(out.data.view(), scaling)?;
        let header = fits::stored_header_i16(&out.header, &px);
        let uncertainty = uncertainty_of(unc, &out.header, steps);
        return Ok(Output {
            pixels: OutPixels::I16(px.data),
            header,
            warnings,
            uncertainty,
        });
    }
    let uncertainty = uncertainty_of(unc, &out.header, steps);
    let header = fits::stored_header_f32(&out);
    Ok(Output {
        pixels: OutPixels::F32(out.data),
        header,
        warnings,
        uncertainty,
    })
}

/// The uncertainty image with its header (as `prep` writes the second HDU).
fn uncertainty_of(
    unc: Option<(ndarray::Array2<f32>, u32)>,
    data_header: &Header,
    steps: &Steps,
) -> Option<(ndarray::Array2<f32>, Header)> {
    match (unc, &steps.uncertainty) {
        (Some((u, ch)), Some(req)) => {
            let h =
                aiaprep::uncertainty::uncertainty_header(data_header, &req.table, &req.options, ch);
            Some((u, h))
        }
        _ => None,
    }
}

/// A FITS file's image as `prep` reads it (`fits::read`: cfitsio, the crate's RICE
/// decoder, BSCALE/BZERO applied, BLANK → NaN): `(float32 pixels, cards, the header as FITS records)`: the cards describe
/// float32 pixels (`BITPIX = -32`, no BLANK/BSCALE/BZERO), the records are the file's.
/// `max_input_mib`: the read cap (MiB) on what the header declares (`fits::ReadLimits`).
#[pyfunction]
#[pyo3(signature = (path, *, max_input_mib = None))]
fn read<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    max_input_mib: Option<u64>,
) -> PyResult<(
    Bound<'py, numpy::PyArray2<f32>>,
    Bound<'py, pyo3::types::PyList>,
    String,
)> {
    let limits = read_limits(max_input_mib)?;
    let map = py
        .detach(|| fits::read_limited(&path, &limits))
        .map_err(py_err)?;
    let cards = convert::cards(py, &convert::float_header(&map.header))?;
    let records: String = map.header.cards().iter().map(|c| c.record()).collect();
    Ok((map.data.into_pyarray(py), cards, records))
}

/// The embedded default image of `prep --demo`: a deterministic synthetic level-1 AIA
/// frame (`size`², binned from 4096² geometry; channel `channel` Å): `(float32 pixels,
/// cards, FITS records)`.
#[pyfunction]
#[pyo3(signature = (size = 4096, *, seed = 2011, channel = 171))]
fn demo<'py>(
    py: Python<'py>,
    size: usize,
    seed: u64,
    channel: u32,
) -> PyResult<(
    Bound<'py, numpy::PyArray2<f32>>,
    Bound<'py, pyo3::types::PyList>,
    String,
)> {
    if !(16..=16384).contains(&size) {
        return Err(invalid("size must be in 16..=16384"));
    }
    let opts = aiaprep::synth::SynthOptions {
        size,
        seed,
        channel,
        ..Default::default()
    };
    let map = py.detach(|| aiaprep::synth::level1(&opts));
    let cards = convert::cards(py, &convert::float_header(&map.header))?;
    let records: String = map.header.cards().iter().map(|c| c.record()).collect();
    Ok((map.data.into_pyarray(py), cards, records))
}

/// PNG bytes of the quicklook of a 2-D image: `channel`'s SDO/AIA colour table (grey
/// without one), longest side `size` (0 = full), `stretch` "asinh" or "log".
#[pyfunction]
#[pyo3(signature = (data, *, channel = None, size = 1024, stretch = "asinh"))]
fn quicklook_png<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    channel: Option<u32>,
    size: usize,
    stretch: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let opts = aiaprep::quicklook::QuicklookOptions {
        size,
        stretch: match stretch {
            "asinh" => aiaprep::quicklook::Stretch::Asinh,
            "log" => aiaprep::quicklook::Stretch::Log,
            o => {
                return Err(invalid(format!(
                    "invalid option: stretch must be 'asinh' or 'log', not {o:?}"
                )))
            }
        },
        channel,
    };
    let p = pixels::pixels(py, data, "data")?;
    let view = p.view();
    let bytes = py
        .detach(|| aiaprep::quicklook::png_bytes_with(view, &opts))
        .map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes))
}

/// The address of the first pixel the engines would read from `data`, and whether it is
/// the caller's memory: for the tests that check nothing is copied on the way in.
#[pyfunction]
fn _input_address(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<(usize, bool)> {
    let p = pixels::pixels(py, data, "data")?;
    Ok((pixels::address(&p), p.borrowed()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", aiaprep::VERSION)?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add(
        "BackendUnavailableError",
        py.get_type::<BackendUnavailableError>(),
    )?;
    m.add("GpuError", py.get_type::<GpuError>())?;
    m.add_function(wrap_pyfunction!(describe_backend, m)?)?;
    m.add_function(wrap_pyfunction!(psf, m)?)?;
    m.add_function(wrap_pyfunction!(degradation, m)?)?;
    m.add_function(wrap_pyfunction!(estimate_error, m)?)?;
    m.add_function(wrap_pyfunction!(update_pointing, m)?)?;
    m.add_function(wrap_pyfunction!(process, m)?)?;
    m.add_function(wrap_pyfunction!(quicklook_png, m)?)?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(demo, m)?)?;
    m.add_function(wrap_pyfunction!(_input_address, m)?)?;
    m.add_class::<batch::Batch>()?;
    m.add_function(wrap_pyfunction!(batch::start_batch, m)?)?;
    Ok(())
}
