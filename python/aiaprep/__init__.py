"""aiaprep: SDO/AIA level 1 → 1.5 (and PSF-deconvolved 1.6), on the GPU when there is one.

The verbs have aiapy's names, keyword arguments and defaults, take a sunpy map and return
a sunpy map — the data and header that the ``prep`` command writes (float32 unless
``dtype="int16"``)::

    import aiaprep
    m15 = aiaprep.register(aiaprep.update_pointing(m, pointing_table=table))   # level 1.5
    m16 = aiaprep.register(aiaprep.deconvolve(aiaprep.update_pointing(m, pointing_table=table)))

Without sunpy, give an ``(array, header)`` pair (astropy ``Header`` or dict); the answer is
a pair of the same kind. Everything runs in Rust with the GIL released; native-order
float32 pixels are read in place (no copy), other dtypes are converted once, in Rust.

Errors: ``InputError`` (a ``ValueError``) for bad input, with the same messages as the
command-line tool; ``BackendUnavailableError`` when ``backend="cuda"`` is asked for and
there is no usable GPU; ``GpuError`` when the GPU fails; ``OSError``/``FileExistsError``
for files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import _maps, _native
from ._native import BackendUnavailableError, GpuError, InputError
from ._progress import progress_bar

__version__ = _native.__version__

__all__ = [
    "register",
    "update_pointing",
    "deconvolve",
    "psf",
    "normalize_exposure",
    "correct_degradation",
    "degradation",
    "estimate_error",
    "prep",
    "prep_files",
    "quicklook",
    "read",
    "demo_map",
    "describe_backend",
    "InputError",
    "BackendUnavailableError",
    "GpuError",
]

# aiapy's `method` names: all mean "the order-k spline resampling" (scipy's semantics);
# "keys" is SolarSoft aia_prep's cubic convolution (a = -0.5, order 3 only).
_SCIPY_METHODS = ("scipy", "scikit-image", "cupy", "opencv")
_ORDERS = {0: "nearest", 1: "linear", 3: "spline"}


def describe_backend(backend: str = "auto", register_on_cpu: bool = False) -> str:
    """Which engines ``backend`` gives here, in words (e.g. ``"cpu (2 threads)"``)."""
    return _native.describe_backend(backend, register_on_cpu)


def _interpolation(order, method) -> str:
    if method == "keys":
        if order != 3:
            raise InputError("invalid option: method='keys' (cubic convolution) is order 3")
        return "keys"
    if method not in _SCIPY_METHODS:
        raise InputError(f"invalid option: method must be one of {_SCIPY_METHODS + ('keys',)}, not {method!r}")
    if order not in _ORDERS:
        raise InputError(f"invalid option: order must be 0, 1 or 3, not {order!r}")
    return _ORDERS[order]


def _iterations(n) -> int:
    n = int(n)
    if n < 0:
        raise InputError(f"invalid option: iterations must be >= 0, not {n}")
    return n


def _kind() -> str:
    """How to answer for a file read here: a sunpy map when sunpy is there, else an astropy
    Header, else a dict."""
    try:
        import sunpy.map  # noqa: F401

        return "sunpy"
    except ImportError:  # pragma: no cover
        try:
            import astropy.io.fits  # noqa: F401

            return "astropy"
        except ImportError:
            return "dict"


def _missing(missing):
    return None if missing is None else float(missing)


def _psf_array(psf):
    if psf is None:
        return None
    a = np.asarray(psf, dtype=np.float64)
    return np.ascontiguousarray(a)


def _pointing_args(pointing_table) -> dict:
    """The pointing table as the Rust side takes it: a path, or CSV text of an astropy table
    (as aiapy's ``get_pointing_table`` returns)."""
    if pointing_table is None:
        return {}
    if isinstance(pointing_table, (str, os.PathLike)):
        return {"pointing_path": os.fspath(pointing_table)}
    return {"pointing_csv": _table_csv(pointing_table)}


def _table_csv(table) -> str:
    import astropy.units as u
    from astropy.time import Time

    units = {"X0": u.pix, "Y0": u.pix, "IMSCALE": u.arcsec / u.pix, "INSTROT": u.deg}
    names = []
    for n in table.colnames:
        parts = n.upper().split("_")
        if n.upper() in ("T_START", "T_STOP") or (
            len(parts) == 3 and parts[0] == "A" and parts[2] in units
        ):
            names.append(n)
    for need in ("T_START", "T_STOP"):
        if need not in [n.upper() for n in names]:
            raise InputError(f"pointing table: no {need} column")
    cols = []
    for n in names:
        c = table[n]
        up = n.upper()
        if up in ("T_START", "T_STOP"):
            t = c if isinstance(c, Time) else Time(c, scale="utc")
            vals = [s + "Z" for s in t.utc.isot]
        else:
            unit = units[up.split("_")[2]]
            v = c.to_value(unit) if hasattr(c, "to_value") and getattr(c, "unit", None) else c
            if hasattr(v, "filled"):
                v = v.filled(np.nan)
            vals = ["nan" if not np.isfinite(x) else repr(float(x)) for x in np.asarray(v, dtype=float)]
        cols.append(vals)
    lines = [",".join(n.upper() for n in names)]
    lines += [",".join(row) for row in zip(*cols)]
    return "\n".join(lines) + "\n"


def _table_args(table, name) -> dict:
    """A calibration table as the Rust side takes it: ``<name>_path`` for a path,
    ``<name>_csv`` for an astropy table (as aiapy's ``get_correction_table`` returns)."""
    if table is None:
        return {}
    if isinstance(table, (str, os.PathLike)):
        return {f"{name}_path": os.fspath(table)}
    return {f"{name}_csv": _any_table_csv(table)}


def _any_table_csv(table) -> str:
    """CSV text of an astropy table: times as UTC ISO with Z, quantities as their values."""
    from astropy.time import Time

    cols, names = [], list(table.colnames)
    for n in names:
        c = table[n]
        if isinstance(c, Time):
            vals = [s + "Z" for s in c.utc.isot]
        else:
            v = c.value if hasattr(c, "unit") and hasattr(c, "value") else c
            if hasattr(v, "filled"):
                v = v.filled(np.nan)
            vals = [repr(float(x)) if isinstance(x, (float, np.floating)) else str(x) for x in np.asarray(v).tolist()]
        cols.append(['"' + x.replace('"', '""') + '"' if "," in x else x for x in vals])
    return "\n".join([",".join(names)] + [",".join(r) for r in zip(*cols)]) + "\n"


def _run(m, **kw):
    data, cards, warns, info = _native.process(m.data, m.records, **kw)
    for w in warns:
        import warnings

        warnings.warn(w, UserWarning, stacklevel=3)
    return data, cards, info


def register(smap, *, missing=None, order=3, method="scipy", backend="auto", dtype="float32", header=None):
    """Level 1 → 1.5, as ``aiapy.calibrate.register``: de-rotate to solar north, rescale
    to 0.6″/pixel and put the Sun's centre on the array centre (same shape as the input).

    ``missing`` (DN): the value outside the input frame; ``None`` = the image minimum
    (aiapy), ``float('nan')`` = NaN. ``order``: 0, 1 or 3 (scipy's nearest, bilinear,
    cubic B-spline); ``method="keys"`` selects SolarSoft's cubic convolution instead.
    ``backend``: "auto" (a GPU when there is one), "cpu" or "cuda".

    Differs from aiapy on purpose: the output is centred on ``(N+1)/2`` exactly (aiapy's
    submap can be off by one pixel), keeps the input's shape, and is float32.
    """
    m = _maps.take(smap, header)
    data, cards, _ = _run(
        m,
        register=True,
        interpolation=_interpolation(order, method),
        missing=_missing(missing),
        backend=backend,
        dtype=dtype,
    )
    return _maps.give(data, cards, m.kind)


def update_pointing(smap, *, pointing_table, header=None):
    """The pointing update of ``aiapy.calibrate.update_pointing``: CRPIX from the master
    pointing table's X0/Y0 (0-based), CDELT = IMSCALE, CROTA2 = INSTROT + SAT_ROT, PC
    removed; the row with ``T_START <= T_OBS < T_STOP``.

    ``pointing_table``: an astropy table as ``aiapy.calibrate.util.get_pointing_table``
    returns, or the path of a CSV export of ``aia.master_pointing3h``. The pixels are not
    copied (the returned map shares them).
    """
    m = _maps.take(smap, header)
    args = _pointing_args(pointing_table)
    cards, warns = _native.update_pointing(
        m.records,
        tuple(m.shape),
        table_csv=args.get("pointing_csv"),
        table_path=args.get("pointing_path"),
    )
    for w in warns:
        import warnings

        warnings.warn(w, UserWarning, stacklevel=2)
    return _maps.give(m.data, cards, m.kind)


def deconvolve(smap, *, psf=None, iterations=25, clip_negative=True, backend="auto", use_gpu=None,
               dtype="float32", header=None):
    """Richardson–Lucy deconvolution with the instrument PSF, as ``aiapy.psf.deconvolve``
    (on the level-1 grid: call it before ``register``).

    ``psf``: an array of the image's shape (peak at ``[N/2, N/2]``), or ``None`` for the
    channel's model PSF. ``use_gpu`` (aiapy's flag): ``False`` means ``backend="cpu"``.
    """
    if use_gpu is False and backend == "auto":
        backend = "cpu"
    m = _maps.take(smap, header)
    data, cards, _ = _run(
        m,
        deconvolve=True,
        iterations=_iterations(iterations),
        clip_negative=bool(clip_negative),
        psf=_psf_array(psf),
        backend=backend,
        dtype=dtype,
    )
    return _maps.give(data, cards, m.kind)


def psf(channel, *, use_preflightcore=False, diffraction_orders=None, backend="auto", size=4096, use_gpu=None):
    """The model PSF of ``channel`` (Å; an int or an astropy Quantity), as
    ``aiapy.psf.psf``: a ``size``² float64 array, peak at ``[size/2, size/2]``, sum 1."""
    if use_gpu is False and backend == "auto":
        backend = "cpu"
    if hasattr(channel, "to_value"):
        channel = channel.to_value("angstrom")
    orders = None if diffraction_orders is None else [int(o) for o in np.asarray(diffraction_orders).ravel()]
    return _native.psf(
        int(round(float(channel))),
        use_preflightcore=bool(use_preflightcore),
        diffraction_orders=orders,
        size=int(size),
        backend=backend,
    )


def correct_degradation(smap, *, correction_table, header=None):
    """Divide by the channel's degradation factor at the map's ``DATE-OBS``, as
    ``aiapy.calibrate.correct_degradation``. ``correction_table``: the path of a SolarSoft
    ``aia_V*_response_table.txt`` or of a CSV export of JSOC's ``aia.response``, or the
    astropy table ``aiapy.calibrate.util.get_correction_table`` returns. The header records
    the factor (``DEGRADAT``), the table (``DEGRTAB``) and its version (``DEGRVER``).
    """
    m = _maps.take(smap, header)
    data, cards, _ = _run(m, backend="cpu", **_table_args(correction_table, "correction"))
    return _maps.give(data, cards, m.kind)


def degradation(channel, obstime, *, correction_table):
    """The degradation factor of ``channel`` (Å) at ``obstime`` (an astropy Time or an ISO
    string, UTC), as ``aiapy.calibrate.degradation`` (a float)."""
    if hasattr(channel, "to_value"):
        channel = channel.to_value("angstrom")
    if hasattr(obstime, "utc"):
        obstime = obstime.utc.isot + "Z"
    return _native.degradation(int(round(float(channel))), str(obstime), **_table_args(correction_table, "correction"))


def estimate_error(counts, channel, *, n_sample=1, include_preflight=False, include_eve=False,
                   include_chianti=False, error_table=None, **kwargs):
    """The 1-σ uncertainty of each pixel of ``counts`` (DN per pixel, *not* divided by the
    exposure time), as ``aiapy.calibrate.estimate_error``: shot, dark, read, quantisation and
    compression noise, plus the calibration terms asked for. ``error_table``: a path of a
    SolarSoft ``aia_V*_error_table.txt``, the astropy table ``get_error_table`` returns, or
    None for the built-in V3 table (the one aiapy downloads). ``compare_idl=True`` (aiapy's
    hidden keyword) uses IDL's read noise. Returns float32 in the shape of ``counts`` (an
    astropy Quantity in DN/pix when ``counts`` is one)."""
    unit = None
    if hasattr(counts, "unit") and hasattr(counts, "value"):
        unit, counts = counts.unit, counts.value
    if hasattr(channel, "to_value"):
        channel = channel.to_value("angstrom")
    arr = np.asarray(counts)
    scalar = arr.ndim == 0
    arr2 = arr.reshape(1, -1) if arr.ndim < 2 else arr.reshape(-1, arr.shape[-1]) if arr.ndim > 2 else arr
    out = _native.estimate_error(
        arr2,
        int(round(float(channel))),
        n_sample=float(n_sample),
        include_preflight=bool(include_preflight),
        include_eve=bool(include_eve),
        include_chianti=bool(include_chianti),
        compare_idl=bool(kwargs.get("compare_idl", False)),
        **_table_args(error_table, "error"),
    )
    out = out.reshape((1,) if scalar else arr.shape)
    if unit is not None:
        import astropy.units as u

        return out * (u.DN / u.pix)
    return out


def normalize_exposure(smap, *, header=None):
    """Divide by the exposure time (DN → DN/s): ``EXPTIME = 1``, the original in
    ``OEXPTIME``, ``BUNIT = 'DN/s'`` — aiapy's removed ``normalize_exposure`` (today's
    recipe ``smap / smap.exposure_time``)."""
    m = _maps.take(smap, header)
    data, cards, _ = _run(m, normalize_exposure=True, backend="cpu")
    return _maps.give(data, cards, m.kind)


def prep(smap_or_path, *, pointing_table=None, deconvolve=False, iterations=25, psf=None,
         clip_negative=True, use_preflightcore=False, missing=None, order=3, method="scipy",
         correct_degradation=False, correction_table=None,
         normalize_exposure=False, uncertainty=False, error_table=None, n_sample=1,
         include_preflight=False, include_eve=False, include_chianti=False,
         dtype="float32", backend="auto", register_on_cpu=False, header=None,
         max_input_mib=None):
    """The whole chain in aiapy's order — update_pointing → deconvolve → register →
    correct_degradation → normalize_exposure — in one call, on one engine (the image stays on the GPU between
    stages). ``smap_or_path``: a sunpy map, an ``(array, header)`` pair or the path of a
    level-1 FITS file. The result's data and header are what ``prep`` writes for the same
    options (``dtype="int16"``: the stored integers, with BLANK/BSCALE/BZERO in the header).
    ``uncertainty=True``: the map's ``uncertainty`` is the 1-σ uncertainty of each pixel
    (an astropy ``StdDevUncertainty``, float32; ``estimate_error`` of the registered counts,
    divided like the data) — the second HDU ``prep --uncertainty`` writes.
    ``max_input_mib``: reading a path, the most memory (MiB) its header may claim (as
    ``prep --max-input-mib``; a larger file raises InputError before anything is allocated).
    """
    if isinstance(smap_or_path, (str, os.PathLike)):
        m, source = _read(smap_or_path, max_input_mib)
    else:
        m, source = _maps.take(smap_or_path, header), None
    data, cards, info = _run(
        m,
        source=source,
        **_pointing_args(pointing_table),
        deconvolve=bool(deconvolve),
        iterations=_iterations(iterations),
        clip_negative=bool(clip_negative),
        psf=_psf_array(psf),
        use_preflightcore=bool(use_preflightcore),
        register=True,
        interpolation=_interpolation(order, method),
        missing=_missing(missing),
        **_degradation_args(correct_degradation, correction_table),
        **_uncertainty_args(uncertainty, error_table, n_sample, include_preflight, include_eve, include_chianti),
        normalize_exposure=bool(normalize_exposure),
        dtype=dtype,
        backend=backend,
        register_on_cpu=bool(register_on_cpu),
        prep_history=True,
    )
    out = _maps.give(data, cards, m.kind)
    if "uncertainty" in info:
        if m.kind == "sunpy":
            from astropy.nddata import StdDevUncertainty

            out.uncertainty = StdDevUncertainty(info["uncertainty"])
        else:
            out = out + (info["uncertainty"],)
    return out


def _uncertainty_args(uncertainty, table, n_sample, include_preflight, include_eve, include_chianti) -> dict:
    if not uncertainty:
        return {}
    return dict(
        uncertainty=True,
        n_sample=float(n_sample),
        include_preflight=bool(include_preflight),
        include_eve=bool(include_eve),
        include_chianti=bool(include_chianti),
        **_table_args(table, "error"),
    )


def _degradation_args(correct, table) -> dict:
    if not correct:
        return {}
    if table is None:
        raise InputError("invalid option: correct_degradation needs a correction_table (a local file or table)")
    return _table_args(table, "correction")


def _read(path, max_input_mib=None):
    """A level-1 file as ``prep`` reads it (cfitsio and the crate's RICE decoder; BLANK →
    NaN): a MapInput whose header is the file's, and the path for error messages."""
    path = os.fspath(path)
    data, _cards, records = _native.read(path, max_input_mib=_mib(max_input_mib))
    return _maps.MapInput(data, records, _kind(), data.shape), path


def _mib(max_input_mib):
    """The read cap for the extension: None (its default) or an int."""
    return None if max_input_mib is None else int(max_input_mib)


def read(path, *, max_input_mib=None):
    """Read a FITS image as ``prep`` does (fast RICE decoding; BSCALE/BZERO applied, BLANK →
    NaN; float32 pixels, so the header has ``BITPIX = -32`` and no BLANK/BSCALE/BZERO) and
    return a sunpy map (without sunpy an ``(array, Header)`` pair, or ``(array, dict)``
    without astropy). ``max_input_mib``: the most memory (MiB) the header may claim (pixels
    as float32, the data unit, one compressed tile); a larger file raises InputError naming
    the file before anything is allocated. None: the library's default, 1024, which fits 4096²
    and 8192² images."""
    data, cards, _records = _native.read(os.fspath(path), max_input_mib=_mib(max_input_mib))
    return _maps.give(data, cards, _kind())


def demo_map(size=4096, *, seed=2011, channel=171):
    """The embedded default image of ``prep --demo``: a deterministic synthetic level-1 AIA
    frame (``size``², full-disk geometry, missing pixels, a roll), as a sunpy map (an
    ``(array, Header)`` pair without sunpy). For examples and tests without files."""
    data, cards, _records = _native.demo(int(size), seed=int(seed), channel=int(channel))
    return _maps.give(data, cards, _kind())


def _inputs(inputs) -> list[str]:
    """Files, directories (searched recursively for *.fits, *.fits.fz) or one of those."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for i in inputs:
        p = Path(i)
        if p.is_dir():
            out += [str(f) for f in sorted(p.rglob("*")) if f.name.endswith((".fits", ".fits.fz")) and f.is_file()]
        else:
            out.append(str(p))
    return sorted(out)


def prep_files(inputs, out_dir, *, pointing_table=None, deconvolve=False, iterations=25,
               psf=None, clip_negative=True, use_preflightcore=False, missing=None, order=3,
               method="scipy", correct_degradation=False, correction_table=None,
               normalize_exposure=False, uncertainty=False, error_table=None, n_sample=1,
               include_preflight=False, include_eve=False, include_chianti=False,
               dtype="int16", compress="none", overwrite=False, quicklook=False,
               quicklook_size=1024, backend="auto", register_on_cpu=False,
               jobs=None, queue_depth=2, progress=True, report=None, max_input_mib=None):
    """The batch pipeline of the ``prep`` command: read, compute and write overlapped,
    outputs ``<stem>_lev15.fits`` in ``out_dir`` appearing only when complete, complete
    outputs skipped (resume), a failed input reported while the others go on.

    ``inputs``: files and directories (searched for ``*.fits``, ``*.fits.fz``). ``psf``: an
    array (as ``deconvolve`` takes) or the path of a PSF FITS file; None for the model.
    ``jobs``: the read and write threads (the compute uses every core, or the GPU).
    ``max_input_mib``: the most memory (MiB) one input's or the PSF file's header may claim
    (as ``prep --max-input-mib``); a larger input fails (reported) before anything is
    allocated.
    ``progress``: a progress bar (tqdm's, in a terminal or a notebook, when tqdm is
    installed; else a line on stderr when it is a terminal). ``report``: also write the JSON
    report (as ``prep --report``) to this path.

    Returns the per-file report (a :class:`Report`: a list of dicts ``input``, ``output``,
    ``status`` — done, skipped, failed or cancelled —, ``error``, ``warnings``,
    ``times_ms``; and ``.summary``). Ctrl-C (KeyboardInterrupt) cancels: the images in
    flight finish, the others are recorded ``cancelled``, the report is written to
    ``report`` if given, and the KeyboardInterrupt is raised again with the report as its
    ``report`` attribute.
    """
    files = _inputs(inputs)
    batch = _native.start_batch(
        files,
        os.fspath(out_dir),
        **_pointing_args(pointing_table),
        deconvolve=bool(deconvolve),
        iterations=_iterations(iterations),
        clip_negative=bool(clip_negative),
        use_preflightcore=bool(use_preflightcore),
        psf=None if psf is None else (os.fspath(psf) if isinstance(psf, (str, os.PathLike)) else _psf_array(psf)),
        interpolation=_interpolation(order, method),
        missing=_missing(missing),
        **_degradation_args(correct_degradation, correction_table),
        **_uncertainty_args(uncertainty, error_table, n_sample, include_preflight, include_eve, include_chianti),
        normalize_exposure=bool(normalize_exposure),
        dtype=dtype,
        compress=compress,
        overwrite=bool(overwrite),
        quicklook=bool(quicklook),
        quicklook_size=int(quicklook_size),
        backend=backend,
        register_on_cpu=bool(register_on_cpu),
        jobs=jobs,
        queue_depth=int(queue_depth),
        max_input_mib=_mib(max_input_mib),
    )
    text = None
    interrupted = None
    with progress_bar(len(files), enabled=progress) as bar:
        try:
            while text is None:
                text = batch.wait(0.1)
                done, total, failed, last = batch.progress()
                bar.update_to(done, failed, last)
        except KeyboardInterrupt as e:
            interrupted = e
            batch.cancel()
            while text is None:
                try:
                    text = batch.wait(0.5)
                except KeyboardInterrupt:
                    pass  # the images in flight finish; their outputs are never partial
    rep = json.loads(text)
    if report is not None:
        Path(report).write_text(text)
    result = Report(rep["records"], rep["summary"])
    if interrupted is not None:
        interrupted.report = result
        raise interrupted
    return result


class Report(list):
    """The per-file records of a batch (dicts: ``input``, ``output``, ``status`` — done,
    skipped, failed or cancelled —, ``error``, ``warnings``, ``times_ms``), with the
    batch's ``summary`` (counts, wall time, images/s, per-stage occupancy)."""

    def __init__(self, records, summary):
        super().__init__(records)
        self.summary = summary


class QuickLook:
    """A quicklook image (PNG bytes) that notebooks show inline."""

    def __init__(self, png: bytes):
        self.png = png

    def _repr_png_(self):
        return self.png

    def save(self, path):
        Path(path).write_bytes(self.png)


def quicklook(smap, *, header=None, channel=None, size=1024, stretch="asinh") -> QuickLook:
    """A quicklook of a map as ``prep --quicklook`` writes it: the channel's SDO/AIA colour
    table (sunpy's ``sdoaia*`` maps; greyscale for an array without a channel), block-averaged
    to ``size`` pixels on the longest side (0 = full size), an asinh (or ``"log"``) stretch
    between the 0.5 % and 99.9 % levels, solar north up. Shown inline in a notebook;
    ``.png`` holds the PNG bytes."""
    if isinstance(smap, np.ndarray) and header is None:
        data = smap
    else:
        m = _maps.take(smap, header)
        data = m.data
        if channel is None:
            wl = _wavelength_of(m.records)
            channel = wl
    return QuickLook(_native.quicklook_png(data, channel=channel, size=int(size), stretch=stretch))


def _wavelength_of(records: str):
    for i in range(0, len(records), 80):
        card = records[i:i + 80]
        if card.startswith("WAVELNTH="):
            try:
                return int(round(float(card[10:].split("/")[0].strip())))
            except ValueError:
                return None
    return None
