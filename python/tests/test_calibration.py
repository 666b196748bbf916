"""Degradation correction (and the stage order of the science-ready chain) against aiapy
itself, with the V8 SolarSoft response table aiapy ships among its test data (committed in
tests/data/calibration/)."""

import numpy as np
import pytest

import astropy.units as u
from astropy.time import Time

import aiapy.calibrate
from aiapy.calibrate.util import get_correction_table

import aiaprep
from conftest import DATA, register_difference

V8 = DATA / "calibration" / "aia_V8_20171210_050627_response_table.txt"


@pytest.mark.parametrize("channel", [94, 131, 171, 193, 211, 304, 335, 1600, 1700])
def test_degradation_factor_matches_aiapy(channel):
    table = get_correction_table(V8)
    for s in ["2010-06-01T00:00:00", "2011-02-15T00:00:00.340", "2012-07-01T00:00:00", "2014-05-25T12:00:00",
              "2016-01-01T03:04:05.678", "2019-08-08T08:08:08"]:
        t = Time(s, scale="utc")
        want = aiapy.calibrate.degradation(channel * u.AA, t, correction_table=table).value[0]
        for tab in (V8, table):  # a path, or aiapy's astropy table
            got = aiaprep.degradation(channel * u.AA, t, correction_table=tab)
            assert got == pytest.approx(want, rel=1e-12, abs=0), (channel, s)


def test_degradation_errors_as_aiapy():
    table = get_correction_table(V8)
    with pytest.raises(ValueError, match="no rows for channel 4500"):
        aiaprep.degradation(4500, "2015-01-01T00:00:00", correction_table=V8)
    with pytest.raises(ValueError, match="no calibration epoch"):
        aiaprep.degradation(171, "2009-01-01T00:00:00", correction_table=table)
    with pytest.raises(ValueError):
        aiapy.calibrate.degradation(171 * u.AA, Time("2009-01-01T00:00:00"), correction_table=table)


def test_correct_degradation_matches_aiapy(real_map):
    table = get_correction_table(V8)
    theirs = aiapy.calibrate.correct_degradation(real_map, correction_table=table)
    ours = aiaprep.correct_degradation(real_map, correction_table=V8)
    assert ours.data.dtype == np.float32
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-7, atol=0)
    want = aiapy.calibrate.degradation(171 * u.AA, real_map.date, correction_table=table).value[0]
    assert ours.meta["degradat"] == pytest.approx(want, rel=1e-14)
    assert ours.meta["degrtab"] == V8.name and ours.meta["degrver"] == 8


def test_science_ready_chain_matches_aiapys(real_map):
    """register → correct_degradation → normalise, aiapy step by step vs one prep call."""
    table = get_correction_table(V8)
    theirs = aiapy.calibrate.register(real_map)
    theirs = aiapy.calibrate.correct_degradation(theirs, correction_table=table)
    theirs = theirs / theirs.exposure_time
    ours = aiaprep.prep(real_map, correct_degradation=True, correction_table=V8, normalize_exposure=True,
                        backend="cpu")
    worst, n, mask = register_difference(ours, theirs, theirs.data)
    assert mask == 0 and n > 10000
    assert worst <= 1e-6, worst
    hist = ours.meta["history"]
    assert hist.index("register") < hist.index("correct_degradation") < hist.index("normalize_exposure")
    assert ours.meta["exptime"] == 1.0 and ours.meta["degradat"] > 0


def test_int16_output_keeps_the_dn(real_map, tmp_path):
    """int16 after the division: BSCALE = 1 / (factor × EXPTIME), the stored integers are DN."""
    m = aiaprep.prep(real_map, correct_degradation=True, correction_table=V8, normalize_exposure=True,
                     dtype="int16", backend="cpu")
    f = aiaprep.prep(real_map, correct_degradation=True, correction_table=V8, normalize_exposure=True,
                     backend="cpu")
    d = m.meta["degradat"] * m.meta["oexptime"]
    assert m.meta["bscale"] == pytest.approx(1 / d, rel=1e-15)
    ok = m.data != -32768
    np.testing.assert_allclose(m.data[ok] * m.meta["bscale"], f.data[ok], atol=0.51 / d)


V3 = DATA / "calibration" / "aia_V3_error_table.txt"


@pytest.mark.parametrize("channel", [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500])
def test_estimate_error_matches_aiapy(channel):
    from aiapy.calibrate.util import get_error_table

    table = get_error_table(V3)
    rng = np.random.default_rng(channel)
    counts = np.concatenate([[0, 0.5, 24.9, 25, 25.5], rng.gamma(2.0, 300.0, 200)]).astype(np.float32)
    for kw in [{}, {"include_preflight": True}, {"include_eve": True, "include_chianti": True}, {"n_sample": 4}]:
        want = aiapy.calibrate.estimate_error(counts * u.DN / u.pix, channel * u.AA, error_table=table, **kw)
        for tab in (None, V3, table):  # built in, a path, aiapy's table
            got = aiaprep.estimate_error(counts * u.DN / u.pix, channel * u.AA, error_table=tab, **kw)
            assert got.unit == want.unit
            np.testing.assert_allclose(got.value, want.value, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="Cannot include both EVE and pre-flight"):
        aiaprep.estimate_error(counts, channel, include_eve=True, include_preflight=True)


def test_uncertainty_of_the_prepared_map(real_map, tmp_path):
    """prep's uncertainty is aiapy's estimate_error of the registered counts, divided like
    the data; prep_files writes it as the second HDU (EXTNAME UNCERTAINTY)."""
    from aiapy.calibrate.util import get_error_table
    from astropy.io import fits

    table = get_error_table(V3)
    reg = aiaprep.register(real_map, backend="cpu")
    want = aiapy.calibrate.estimate_error(np.asarray(reg.data, np.float64) * u.DN / u.pix, 171 * u.AA,
                                          error_table=table).value
    m = aiaprep.prep(real_map, uncertainty=True, correct_degradation=True, correction_table=V8,
                     normalize_exposure=True, backend="cpu")
    d = m.meta["degradat"] * m.meta["oexptime"]
    ok = np.isfinite(want)
    np.testing.assert_allclose(m.uncertainty.array[ok], (want / d)[ok], rtol=2e-6)
    rep = aiaprep.prep_files([DATA / "aia_171_level1_128px.fits"], tmp_path, uncertainty=True, dtype="float32",
                             compress="rice", progress=False, backend="cpu")
    with fits.open(rep[0]["output"]) as h:
        ext = h["UNCERTAINTY"]
        assert ext.header["BUNIT"] == h[1].header.get("BUNIT", "DN") and ext.header["ERRTAB"].startswith("aia_V3")
        np.testing.assert_allclose(ext.data[ok], want[ok], rtol=2e-6)
        assert ext.header["CRPIX1"] == h[1].header["CRPIX1"]
