"""What the verbs accept, and that nothing is copied on the way in where the dtype allows."""

import tracemalloc

import numpy as np
import pytest

from astropy.io import fits
import sunpy.map

import aiaprep
from aiaprep import _native
from conftest import REAL, synthetic_map


def test_native_float32_is_read_in_place():
    m = synthetic_map(128, seed=1)
    a = np.ascontiguousarray(m.data, dtype=np.float32)
    addr, borrowed = _native._input_address(a)
    assert borrowed and addr == a.ctypes.data
    # A strided view of it too (no copy; the engines read the strides).
    v = a[::2, ::2]
    addr, borrowed = _native._input_address(v)
    assert borrowed and addr == v.ctypes.data


@pytest.mark.parametrize("dtype", [">f4", "<f8", ">f8", "<i2", ">i2", "<u2", "<i4", "u1"])
def test_other_dtypes_are_converted_once_in_rust(dtype):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 200, (96, 80)).astype(np.float32)
    a = base.astype(dtype)
    addr, borrowed = _native._input_address(a)
    assert not borrowed
    # The values the engines see are the array's, whatever the byte order.
    hdr = fits.getheader(REAL)
    got = aiaprep.normalize_exposure((a, hdr))[0] * hdr["EXPTIME"]
    np.testing.assert_allclose(got, base, rtol=1e-6)


def test_no_numpy_copy_of_a_big_endian_map():
    """astropy reads uncompressed FITS as big-endian: the conversion happens in Rust, so
    Python allocates nothing near the image's size during the call."""
    m = synthetic_map(1024, seed=4)
    data = m.data.astype(">f8")
    hdr = m.fits_header
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = aiaprep.register((data, hdr), backend="cpu")
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output array (4 MB) is made by Rust and handed to numpy without a copy.
    assert peak < data.nbytes / 8, (peak, data.nbytes)
    assert out[0].dtype == np.float32


def test_native_float32_register_allocates_only_the_output():
    m = synthetic_map(1024, seed=5)
    a = np.ascontiguousarray(m.data, dtype=np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        aiaprep.register((a, m.fits_header), backend="cpu")
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < a.nbytes / 4, (peak, a.nbytes)


def test_plain_numpy_with_astropy_header_or_dict(real_map):
    """(array, Header) and (array, dict) give the sunpy map's pixels, and answer in kind."""
    want = aiaprep.register(real_map, backend="cpu")
    h = fits.getheader(REAL)
    d, hh = aiaprep.register((fits.getdata(REAL), h), backend="cpu")
    np.testing.assert_array_equal(d, want.data)
    assert isinstance(hh, fits.Header) and hh["LVL_NUM"] == 1.5
    meta = {k: h[k] for k in h if k not in ("HISTORY", "COMMENT", "")}
    d2, hd = aiaprep.register(fits.getdata(REAL), header=meta, backend="cpu")
    np.testing.assert_array_equal(d2, want.data)
    assert isinstance(hd, dict) and hd["LVL_NUM"] == 1.5 and any("register" in x for x in hd["HISTORY"])


def test_result_is_a_sunpy_map_that_round_trips(real_map, tmp_path):
    out = aiaprep.register(real_map, backend="cpu")
    p = tmp_path / "o.fits"
    out.save(p)
    back = sunpy.map.Map(p)
    np.testing.assert_array_equal(back.data, out.data)
    assert back.meta["lvl_num"] == 1.5 and "register" in back.meta["history"]


def test_read_and_demo_map():
    m = aiaprep.read(REAL)
    want = fits.getdata(REAL).astype(np.float32)
    np.testing.assert_array_equal(m.data, want)
    d = aiaprep.demo_map(256)
    assert d.data.shape == (256, 256) and np.isnan(d.data).any() and np.nanmax(d.data) > 100
    r = aiaprep.register(d, backend="cpu")
    assert r.meta["crota2"] == 0.0


def test_quicklook_png(real_map):
    q = aiaprep.quicklook(aiaprep.register(real_map, backend="cpu"))
    assert q.png[:8] == b"\x89PNG\r\n\x1a\n" and q._repr_png_() is q.png
    import struct

    w, h = struct.unpack(">II", q.png[16:24])
    assert (w, h) == (128, 128)
