"""Bad input raises the exception a Python user expects, with the command-line tool's
message (the same bad inputs as tests/prep_cli.rs and tests/fits_io.rs)."""

import numpy as np
import pytest

from astropy.io import fits
import sunpy.map

import aiaprep
from conftest import REAL, synthetic_map


def test_not_an_aia_image(real_map):
    meta = dict(real_map.meta)
    meta["telescop"] = "SOHO"
    meta["instrume"] = "EIT"
    with pytest.raises(aiaprep.InputError, match="not an AIA image") as e:
        aiaprep.register((np.asarray(real_map.data), meta))
    assert isinstance(e.value, ValueError)


def test_missing_keyword(real_map):
    h = fits.getheader(REAL)
    del h["RSUN_OBS"]
    with pytest.raises(ValueError, match="missing keyword RSUN_OBS"):
        aiaprep.register((fits.getdata(REAL), h), backend="cpu")


def test_not_full_disk(real_map):
    sub = sunpy.map.Map(np.asarray(real_map.data)[:64, :64], real_map.meta)
    with pytest.raises(ValueError, match="not a full-disk image"):
        aiaprep.register(sub, backend="cpu")


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(open(REAL, "rb").read()[:5000])
    with pytest.raises(ValueError, match="broken.fits"):
        aiaprep.prep(bad)
    with pytest.raises(OSError, match="nothere.fits"):
        aiaprep.prep(tmp_path / "nothere.fits")


def test_psf_shape_and_channel(real_map):
    with pytest.raises(ValueError, match="shape"):
        aiaprep.deconvolve(real_map, psf=np.ones((64, 64)) / 4096, backend="cpu")
    with pytest.raises(ValueError, match="no PSF model for channel 1600"):
        aiaprep.psf(1600, size=64)


def test_bad_options(real_map):
    with pytest.raises(ValueError, match="order"):
        aiaprep.register(real_map, order=2)
    with pytest.raises(ValueError, match="method"):
        aiaprep.register(real_map, method="bogus")
    with pytest.raises(ValueError, match="backend"):
        aiaprep.register(real_map, backend="tpu")
    with pytest.raises(ValueError, match="not finite|missing"):
        aiaprep.register(real_map, missing=float("inf"))
    with pytest.raises(TypeError):
        aiaprep.register(np.zeros((4, 4)))


def test_pointing_table_errors(tmp_path):
    from conftest import full_frame_map

    m = full_frame_map()
    t = tmp_path / "t.csv"
    t.write_text("T_START,T_STOP,A_171_X0\n2011-02-15T00:00:00Z,notatime,2048\n")
    with pytest.raises(ValueError, match="t.csv:2"):
        aiaprep.update_pointing(m, pointing_table=t)


def test_cuda_asked_for_and_absent(real_map, monkeypatch):
    if "cuda" in aiaprep.describe_backend("auto") and "no GPU" not in aiaprep.describe_backend("auto"):
        pytest.skip("a CUDA device is present")
    with pytest.raises(aiaprep.BackendUnavailableError, match="backend unavailable") as e:
        aiaprep.register(real_map, backend="cuda")
    assert isinstance(e.value, RuntimeError)


def test_no_partial_output_on_failure(tmp_path):
    bad = tmp_path / "in" / "broken.fits"
    bad.parent.mkdir()
    bad.write_bytes(open(REAL, "rb").read()[:5000])
    rep = aiaprep.prep_files([bad], tmp_path / "out", progress=False)
    assert rep[0]["status"] == "failed" and "broken.fits" in rep[0]["error"]
    assert list((tmp_path / "out").iterdir()) == []


def test_option_errors_are_input_errors(real_map, tmp_path):
    for call in (
        lambda: aiaprep.register(real_map, order=2),
        lambda: aiaprep.register(real_map, dtype="float64"),
        lambda: aiaprep.register(real_map, backend="tpu"),
        lambda: aiaprep.deconvolve(real_map, iterations=-1),
        lambda: aiaprep.prep_files([REAL], tmp_path / "o", compress="gzip", progress=False),
    ):
        with pytest.raises(aiaprep.InputError, match="invalid option|backend|dtype|compress"):
            call()
    assert not (tmp_path / "o").exists()  # a bad option leaves nothing behind


def test_read_cap(tmp_path):
    """A header claiming more than ``max_input_mib`` fails before its data are read or
    allocated (the same typed error as ``prep --max-input-mib``); under the default cap
    the same file reads."""
    h = fits.getheader(REAL)
    h["NAXIS1"] = 1024  # 1024² float64: 8 MiB of data, 4 MiB as float32
    h["NAXIS2"] = 1024
    big = tmp_path / "claims_1024.fits"
    with open(big, "wb") as f:
        f.write(h.tostring().encode("ascii"))
        f.truncate(f.tell() + -(-1024 * 1024 * 8 // 2880) * 2880)  # the data unit (zeros, sparse)
    for call in (lambda: aiaprep.read(big, max_input_mib=1), lambda: aiaprep.prep(big, max_input_mib=1)):
        with pytest.raises(aiaprep.InputError, match=r"claims_1024\.fits.*read limit of 1048576 bytes"):
            call()
    assert aiaprep.read(big).data.shape == (1024, 1024)
    with pytest.raises(aiaprep.InputError, match="max_input_mib"):
        aiaprep.read(REAL, max_input_mib=0)
    # The batch reports it as that input's failure and writes nothing for it.
    out = tmp_path / "out"
    report = aiaprep.prep_files([big, REAL], out, max_input_mib=1, progress=False, backend="cpu")
    by_input = {r["input"]: r for r in report}
    assert by_input[str(big)]["status"] == "failed"
    assert "read limit" in by_input[str(big)]["error"]
    assert by_input[str(REAL)]["status"] == "done"
    assert sorted(p.name for p in out.iterdir()) == [REAL.stem + "_lev15.fits"]
    # The smallest cap, 1 MiB, reads the real 128² file (64 KiB as float32).
    assert aiaprep.read(REAL, max_input_mib=1).data.shape == (128, 128)
