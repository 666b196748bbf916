//! The batch pipeline from Python: started on its own thread, polled for progress (the
//! Python side draws the bar and turns Ctrl-C into a cancel), joined for the report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aiaprep::batch::{self, BatchOptions, BatchSummary, Progress, Record};
use aiaprep::deconvolve::{DeconvolveOptions, PsfSource};
use aiaprep::fits::{Compression, OutputType, WriteOptions};
use aiaprep::pipeline::PrepOptions;
use aiaprep::psf::PsfOptions;
use aiaprep::register::RegisterOptions;
use numpy::PyReadonlyArray2;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::{convert, engines, invalid, py_err};

/// Counts finished inputs for [`Batch::progress`].
struct Counter {
    done: AtomicUsize,
    failed: AtomicUsize,
    last: Mutex<String>,
}

impl Progress for Counter {
    fn finished(&self, record: &Record, _done: usize, _total: usize) {
        self.done.fetch_add(1, Ordering::SeqCst);
        if record.error.is_some() {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        if let Ok(mut l) = self.last.lock() {
            *l = record.input.display().to_string();
        }
    }
}

/// A running batch (see `aiaprep.prep_files`).
#[pyclass(module = "aiaprep._native")]
pub struct Batch {
    total: usize,
    counter: Arc<Counter>,
    cancel: Arc<AtomicBool>,
    handle: Mutex<Option<JoinHandle<BatchSummary>>>,
}

#[pymethods]
impl Batch {
    /// `(done, total, failed, last input finished)`.
    fn progress(&self) -> (usize, usize, usize, String) {
        let last = self
            .counter
            .last
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        (
            self.counter.done.load(Ordering::SeqCst),
            self.total,
            self.counter.failed.load(Ordering::SeqCst),
            last,
        )
    }

    /// Stop taking new inputs; the images in flight finish (never a partial output).
    fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Whether the batch has ended.
    fn finished(&self) -> bool {
        match self.handle.lock() {
            Ok(h) => h.as_ref().is_none_or(|h| h.is_finished()),
            Err(_) => true,
        }
    }

    /// Wait up to `timeout` seconds (GIL released); the JSON report (as `prep --report`
    /// writes it) when the batch has ended, else `None`.
    #[pyo3(signature = (timeout = 0.1))]
    fn wait(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        let step = Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        let done = py.detach(|| {
            let t0 = std::time::Instant::now();
            while !self.finished() {
                if t0.elapsed() >= step {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            true
        });
        if !done {
            return Ok(None);
        }
        let handle = self
            .handle
            .lock()
            .map_err(|_| PyRuntimeError::new_err("batch state poisoned"))?
            .take();
        match handle {
            Some(h) => {
                let summary = py
                    .detach(|| h.join())
                    .map_err(|_| PyRuntimeError::new_err("the batch thread panicked"))?;
                Ok(Some(summary.to_json()))
            }
            None => Err(PyRuntimeError::new_err(
                "the batch report was already taken",
            )),
        }
    }
}

/// Start a batch of `inputs` (files) into `out_dir` on a thread of its own.
#[pyfunction]
#[pyo3(signature = (
    inputs, out_dir, *,
    pointing_csv = None, pointing_path = None,
    deconvolve = false, iterations = 25, clip_negative = true,
    use_preflightcore = false, psf = None,
    interpolation = "spline", missing = None, check_full_disk = true,
    correction_csv = None, correction_path = None,
    uncertainty = false, error_csv = None, error_path = None, n_sample = 1.0,
    include_preflight = false, include_eve = false, include_chianti = false,
    normalize_exposure = false, dtype = "int16", compress = "none", overwrite = false,
    quicklook = false, quicklook_size = 1024, backend = "auto", register_on_cpu = false,
    jobs = None, queue_depth = 2, max_input_mib = None,
))]
#[allow(clippy::too_many_arguments)]
pub fn start_batch(
    inputs: Vec<PathBuf>,
    out_dir: PathBuf,
    pointing_csv: Option<String>,
    pointing_path: Option<String>,
    deconvolve: bool,
    iterations: usize,
    clip_negative: bool,
    use_preflightcore: bool,
    psf: Option<Bound<'_, PyAny>>,
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
    compress: &str,
    overwrite: bool,
    quicklook: bool,
    quicklook_size: usize,
    backend: &str,
    register_on_cpu: bool,
    jobs: Option<usize>,
    queue_depth: usize,
    max_input_mib: Option<u64>,
) -> PyResult<Batch> {
    let read_limits = crate::read_limits(max_input_mib)?;
    let dtype = match dtype {
        "int16" | "i16" => OutputType::I16,
        "float32" | "f32" => OutputType::F32,
        o => {
            return Err(invalid(format!(
                "dtype must be 'int16' or 'float32', not {o:?}"
            )))
        }
    };
    let compress = match compress {
        "none" => Compression::None,
        "rice" => Compression::Rice,
        o => {
            return Err(invalid(format!(
                "compress must be 'none' or 'rice', not {o:?}"
            )))
        }
    };
    let pointing = crate::pointing_table(pointing_csv, pointing_path)?;
    let correct_degradation = crate::correction_table(correction_csv, correction_path)?;
    let psf = match psf {
        // A numpy array (as aiaprep.deconvolve takes), else the path of a PSF FITS file.
        Some(obj) => match obj.extract::<PyReadonlyArray2<'_, f64>>() {
            Ok(a) => PsfSource::Array {
                psf: a.as_array().to_owned().into(),
                label: "(numpy array)".into(),
            },
            Err(_) => {
                let p: PathBuf = obj.extract()?;
                let a = aiaprep::fits::read_psf(&p, &read_limits).map_err(py_err)?;
                PsfSource::Array {
                    psf: a.into(),
                    label: p.display().to_string(),
                }
            }
        },
        None => PsfSource::Model(PsfOptions {
            preflight_core: use_preflightcore,
            ..Default::default()
        }),
    };
    let opts = PrepOptions {
        register: RegisterOptions {
            interpolation: interpolation.parse().map_err(invalid)?,
            missing: convert::missing(missing),
            check_full_disk,
        },
        deconvolve: deconvolve.then_some(DeconvolveOptions {
            iterations,
            clip_negative,
            psf,
        }),
        pointing: pointing.map(Arc::new),
        correct_degradation: correct_degradation.map(Arc::new),
        uncertainty: crate::error_request(
            uncertainty,
            error_csv,
            error_path,
            n_sample,
            include_preflight,
            include_eve,
            include_chianti,
            false,
        )?,
        normalize_exposure,
        write: WriteOptions {
            dtype,
            compress,
            overwrite,
            scaling: None,
        },
        quicklook: quicklook.then_some(aiaprep::quicklook::QuicklookOptions {
            size: quicklook_size,
            ..Default::default()
        }),
        read_limits,
    };
    let engines = engines(backend, register_on_cpu)?;
    let mut bopts = BatchOptions::default();
    if let Some(j) = jobs {
        let j = j.max(1);
        bopts.decode_threads = j;
        bopts.encode_threads = j;
    }
    bopts.queue_depth = queue_depth.max(1);
    // Made only now that every option is known to be good.
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        py_err(aiaprep::Error::Io {
            file: aiaprep::Source::file(&out_dir),
            reason: format!("cannot create the output directory: {e}"),
        })
    })?;
    let counter = Arc::new(Counter {
        done: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        last: Mutex::new(String::new()),
    });
    let cancel = Arc::new(AtomicBool::new(false));
    let total = inputs.len();
    let (c2, k2) = (counter.clone(), cancel.clone());
    let handle = std::thread::Builder::new()
        .name("aiaprep-batch".into())
        .spawn(move || {
            batch::run(
                &inputs,
                &out_dir,
                &opts,
                &engines,
                &bopts,
                c2.as_ref(),
                k2.as_ref(),
            )
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the batch thread: {e}")))?;
    Ok(Batch {
        total,
        counter,
        cancel,
        handle: Mutex::new(Some(handle)),
    })
}
