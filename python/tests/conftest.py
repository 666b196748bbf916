"""Shared fixtures of the Python package's tests: real and synthetic AIA maps, the small
pointing table, and the aiapy comparisons the Rust parity tests also make.

Inputs come from the repository's tests/data; random images use fixed seeds.
"""

import os
import pathlib
import sys
import warnings

import numpy as np
import pytest

from astropy.io import fits

import sunpy.map

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
REAL = DATA / "aia_171_level1_128px.fits"
TABLE = DATA / "pointing_table_small.csv"
TABLE_TAI = DATA / "pointing_table_small_tai.csv"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture
def real_map():
    """The real 128² level-1 AIA 171 Å map (binned full disk), pixels as astropy reads them
    (big-endian float64)."""
    return sunpy.map.Map(REAL)


def synthetic_map(n=256, roll_deg=-0.137, seed=11, dtype=np.float32, nans=True):
    """A binned full-disk AIA-like level-1 map of n² pixels with a roll (as the register
    fixtures of the Rust tests), seeded noise and a few NaN pixels."""
    base = fits.getheader(REAL)
    b = 4096 / n
    rng = np.random.default_rng(seed)
    h = base.copy()
    h["NAXIS1"] = h["NAXIS2"] = n
    h["CDELT1"] = h["CDELT2"] = 0.6007 * b
    h["CRPIX1"] = (2048.5 + 3.2) / b + 0.5
    h["CRPIX2"] = (2048.5 - 2.7) / b + 0.5
    h["CROTA2"] = roll_deg
    for k in ("PC1_1", "PC1_2", "PC2_1", "PC2_2", "BLANK"):
        h.remove(k, ignore_missing=True, remove_all=True)
    y, x = np.mgrid[0:n, 0:n]
    r = np.hypot(x - (h["CRPIX1"] - 1), y - (h["CRPIX2"] - 1)) * h["CDELT1"] / h["RSUN_OBS"]
    disk = np.where(r < 1, 1000 * (0.4 + 0.6 * np.sqrt(np.clip(1 - r**2, 0, 1))), 20 * np.exp(-(r - 1) * 8))
    data = (disk + rng.normal(0, 5, (n, n))).astype(dtype)
    if nans and np.issubdtype(dtype, np.floating):
        data[rng.integers(0, n, 5), rng.integers(0, n, 5)] = np.nan
    return sunpy.map.Map(data, h)


# The pointing-table reader and the full-frame header of the Rust pointing fixtures
# (tests/parity/make_pointing_fixtures.py): one definition for both test suites.
sys.path.insert(0, str(ROOT / "tests" / "parity"))
from make_pointing_fixtures import full_frame_map as _zero_full_frame_map  # noqa: E402
from make_pointing_fixtures import read_table  # noqa: E402,F401


def full_frame_map(seed=5):
    """The real header in its 4096² full-frame form (what aiapy 0.10's update_pointing
    accepts), with seeded random pixels."""
    m = _zero_full_frame_map()
    data = np.random.default_rng(seed).uniform(0, 1000, (4096, 4096)).astype(np.float32)
    return sunpy.map.Map(data, m.meta)


def register_difference(ours, theirs, input_data):
    """The Rust parity tests' comparison of a register result with aiapy's: the outputs'
    CRPIX differ by a whole number of pixels (aiapy's submap), pixels are compared over the
    overlap; returns (max |Δ|/range of the input, compared, NaN-mask differences)."""
    cp = np.array([ours.meta["crpix1"], ours.meta["crpix2"]])
    ct = np.array([theirs.meta["crpix1"], theirs.meta["crpix2"]])
    off = cp - ct
    assert np.all(off == np.round(off)), off
    ox, oy = int(off[0]), int(off[1])
    a = np.asarray(ours.data, dtype=np.float64)
    b = np.asarray(theirs.data, dtype=np.float64)
    ny, nx = a.shape
    ty, tx = b.shape
    ys = np.arange(ny)
    xs = np.arange(nx)
    yv = ys[(ys - oy >= 0) & (ys - oy < ty)]
    xv = xs[(xs - ox >= 0) & (xs - ox < tx)]
    A = a[np.ix_(yv, xv)]
    B = b[np.ix_(yv - oy, xv - ox)]
    lo, hi = np.nanmin(input_data), np.nanmax(input_data)
    mask = np.isnan(A) != np.isnan(B)
    ok = ~np.isnan(A) & ~np.isnan(B)
    worst = np.max(np.abs(A[ok] - B[ok])) / (hi - lo)
    return worst, int(ok.sum()), int(mask.sum())


def relative_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return np.linalg.norm(a[ok] - b[ok]) / np.linalg.norm(b[ok])


def softcuda_dir():
    """The software CUDA device's directory when the tests run on it (CI sets it)."""
    return os.environ.get("AIAPREP_CUDA_LIB_DIR")
