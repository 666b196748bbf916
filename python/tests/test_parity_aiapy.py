"""Each verb against aiapy's own result on the same sunpy map, with the tolerances the Rust
parity tests hold (register: max |Δ| ≤ 1e-5 of the input range and identical NaN masks;
deconvolve: relative L2 ≤ 1e-5; PSF: ≤ 1e-12 absolute on the CPU)."""

import numpy as np
import pytest

import astropy.units as u
import sunpy.map

import aiapy.calibrate
import aiapy.psf

import aiaprep
from conftest import (
    TABLE,
    TABLE_TAI,
    full_frame_map,
    read_table,
    register_difference,
    relative_l2,
    synthetic_map,
)


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("missing", [None, 0.0])
def test_register_real_map_matches_aiapy(real_map, order, missing):
    ours = aiaprep.register(real_map, order=order, missing=missing, backend="cpu")
    theirs = aiapy.calibrate.register(real_map, order=order, missing=missing)
    assert isinstance(ours, sunpy.map.sources.AIAMap)
    assert ours.data.dtype == np.float32 and ours.data.shape == real_map.data.shape
    worst, n, mask = register_difference(ours, theirs, real_map.data)
    assert n > 10000
    assert mask == 0
    assert worst <= 1e-5, worst
    assert ours.meta["lvl_num"] == 1.5 and theirs.meta["lvl_num"] == 1.5
    # The same coordinates: the WCS of both maps puts the Sun's centre at the same sky point.
    for m in (ours, theirs):
        assert abs(m.scale[0].to_value("arcsec/pix") - 0.6 * round(m.scale[0].to_value("arcsec/pix") / 0.6)) < 1e-9
    c_ours = ours.wcs.pixel_to_world(ours.meta["crpix1"] - 1, ours.meta["crpix2"] - 1)
    c_theirs = theirs.wcs.pixel_to_world(theirs.meta["crpix1"] - 1, theirs.meta["crpix2"] - 1)
    assert c_ours.separation(c_theirs).to_value("arcsec") < 1e-6


@pytest.mark.parametrize("roll", [-0.137, 12.5])
def test_register_rolled_synthetic_matches_aiapy(roll):
    m = synthetic_map(256, roll_deg=roll, seed=int(abs(roll) * 1000))
    ours = aiaprep.register(m, backend="cpu")
    theirs = aiapy.calibrate.register(m)
    worst, n, mask = register_difference(ours, theirs, m.data)
    assert n > 40000 and mask == 0
    assert worst <= 1e-5, worst
    assert ours.meta["crota2"] == 0.0


def test_register_keys_is_the_cubic_convolution(real_map):
    keys = aiaprep.register(real_map, method="keys", backend="cpu")
    spline = aiaprep.register(real_map, backend="cpu")
    d = np.nanmax(np.abs(keys.data - spline.data))
    assert 0 < d < 0.2 * np.nanmax(real_map.data)
    assert "keys" in keys.meta["history"].lower() and "keys" not in spline.meta["history"].lower()


def test_deconvolve_matches_aiapy(real_map):
    p = aiaprep.psf(171, size=128, backend="cpu")
    for iterations, clip in [(25, True), (5, False)]:
        ours = aiaprep.deconvolve(real_map, psf=p, iterations=iterations, clip_negative=clip, backend="cpu")
        theirs = aiapy.psf.deconvolve(real_map, psf=p, iterations=iterations, clip_negative=clip, use_gpu=False)
        assert ours.data.dtype == np.float32
        e = relative_l2(ours.data, theirs.data)
        assert e <= 1e-5, (iterations, clip, e)
        assert ours.meta["deconvit"] == iterations


def test_deconvolve_model_psf_is_aiaprep_psf(real_map):
    """psf=None uses the channel's model PSF on the image grid: the same as passing it."""
    a = aiaprep.deconvolve(real_map, iterations=3, backend="cpu")
    b = aiaprep.deconvolve(real_map, psf=aiaprep.psf(171, size=128, backend="cpu"), iterations=3, backend="cpu")
    assert relative_l2(a.data, b.data) <= 1e-6


def test_psf_matches_aiapy():
    orders = [-1, 0, 1]
    ours = aiaprep.psf(171 * u.angstrom, diffraction_orders=orders, backend="cpu")
    theirs = aiapy.psf.psf(171 * u.angstrom, diffraction_orders=orders, use_gpu=False)
    assert ours.shape == theirs.shape == (4096, 4096) and ours.dtype == np.float64
    assert np.max(np.abs(ours - theirs)) <= 1e-12
    assert abs(ours.sum() - 1) < 1e-9


@pytest.mark.parametrize("table_path", [TABLE, TABLE_TAI])
@pytest.mark.parametrize("t_obs", [None, "2011-02-15T03:30:00.000Z", "2011-02-15T05:59:59.990Z"])
def test_update_pointing_matches_aiapy(table_path, t_obs):
    base = full_frame_map()
    meta = dict(base.meta)
    if t_obs is not None:
        meta["t_obs"] = t_obs
    m = sunpy.map.Map(base.data, meta)
    table = read_table(table_path)
    theirs = aiapy.calibrate.update_pointing(m, pointing_table=table)
    for tab in (table, str(table_path)):
        ours = aiaprep.update_pointing(m, pointing_table=tab)
        for k in ("crpix1", "crpix2", "cdelt1", "cdelt2", "crota2", "x0_mp", "y0_mp"):
            assert ours.meta[k] == pytest.approx(theirs.meta[k], rel=1e-12, abs=1e-12), k
        assert not any(k in ours.meta for k in ("pc1_1", "pc1_2", "pc2_1", "pc2_2"))
        # The pixels are shared, not copied.
        assert np.shares_memory(ours.data, m.data)
        # sunpy reads the same WCS from both.
        for px in [(0, 0), (2047.5, 2047.5), (4095, 100)]:
            a = ours.wcs.pixel_to_world(*px)
            b = theirs.wcs.pixel_to_world(*px)
            assert a.separation(b).to_value("arcsec") < 1e-6


def test_normalize_exposure_is_aiapys_recipe(real_map):
    ours = aiaprep.normalize_exposure(real_map)
    theirs = real_map / real_map.exposure_time  # aiapy's recipe since normalize_exposure left
    assert ours.data.dtype == np.float32
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-7, atol=0)
    assert ours.meta["exptime"] == 1.0
    assert ours.meta["oexptime"] == real_map.meta["exptime"]
    assert ours.unit.to_string() == theirs.unit.to_string().replace("ct", "DN") or "DN" in ours.unit.to_string()


def test_level_16_chain_in_aiapys_order_matches_aiapy():
    """update_pointing → deconvolve → register, step by step in aiapy and in one prep call."""
    m = synthetic_map(256, roll_deg=0.3, seed=3, nans=False)  # aiapy's FFTs spread NaN
    p = aiaprep.psf(171, size=256, backend="cpu")
    theirs = aiapy.calibrate.register(aiapy.psf.deconvolve(m, psf=p, iterations=10, use_gpu=False))
    ours = aiaprep.prep(m, deconvolve=True, psf=p, iterations=10, backend="cpu")
    steps = aiaprep.register(aiaprep.deconvolve(m, psf=p, iterations=10, backend="cpu"), backend="cpu")
    np.testing.assert_array_equal(ours.data, steps.data)
    worst, n, mask = register_difference(ours, theirs, theirs.data)
    assert mask == 0 and n > 40000
    assert worst <= 1e-4, worst
