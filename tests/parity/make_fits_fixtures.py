"""Fixtures for tests/fits_io.rs (FITS reading/writing), made with astropy as an
independent oracle.

Run from the repository root:

    /work/venv/bin/python tests/parity/make_fits_fixtures.py

Writes
- tests/parity/fixtures/aia_171_128_data.npy : the pixels of
  tests/data/aia_171_level1_128px.fits as astropy reads them (float64, [row, col]).
- tests/data/rice_int16_64x48.fits : a RICE_1 tile-compressed int16 image made by
  astropy's CompImageHDU (empty primary HDU + compressed image HDU, as JSOC level-1
  files): NAXIS1 = 64 columns, NAXIS2 = 48 rows, seeded values including negatives,
  a few BLANK (-32768) pixels, BLANK keyword, and a real-looking AIA header.
- tests/parity/fixtures/rice_int16_64x48.npy : its values as astropy decodes them
  (float64, shape (48, 64); BLANK -> NaN).
"""

from pathlib import Path

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FIX = ROOT / "tests" / "parity" / "fixtures"
FIX.mkdir(parents=True, exist_ok=True)

# 1. The real 128x128 level-1 file: its pixels, exactly as astropy reads them.
with fits.open(DATA / "aia_171_level1_128px.fits") as hdul:
    data = np.asarray(hdul[0].data, dtype="<f8")
    src_header = hdul[0].header.copy()
assert data.shape == (128, 128)
np.save(FIX / "aia_171_128_data.npy", np.ascontiguousarray(data))

# 2. A small RICE_1 int16 file, non-square so that orientation errors show.
ny, nx = 48, 64
rng = np.random.default_rng(20240611)
vals = rng.integers(-3000, 16000, size=(ny, nx)).astype(np.int16)
vals[0, 0] = -32767  # most negative valid value
vals[0, 1] = 32767  # most positive
vals[1, 0] = -1
blank_at = [(0, 5), (7, 63), (47, 0), (20, 33), (47, 63)]
for r, c in blank_at:
    vals[r, c] = -32768

hdr = fits.Header()
for key in [
    "TELESCOP", "INSTRUME", "WAVELNTH", "WAVEUNIT", "T_OBS", "DATE-OBS", "EXPTIME",
    "CDELT1", "CDELT2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CTYPE1", "CTYPE2",
    "CUNIT1", "CUNIT2", "CROTA2", "RSUN_OBS", "DSUN_OBS", "R_SUN", "LVL_NUM",
    "QUALITY", "ORB_REC",
]:
    if key in src_header:
        hdr[key] = (src_header[key], src_header.comments[key])
hdr["TELESCOP"] = "SDO/AIA"
hdr["WAVELNTH"] = 171
hdr["BLANK"] = -32768
hdr["HISTORY"] = "made by tests/parity/make_fits_fixtures.py"
hdr["COMMENT"] = "RICE_1 int16 fixture with BLANK pixels"

comp = fits.CompImageHDU(data=vals, header=hdr, compression_type="RICE_1")
fits.HDUList([fits.PrimaryHDU(), comp]).writeto(DATA / "rice_int16_64x48.fits", overwrite=True)

# Decode it back with astropy: BLANK pixels come back as NaN (float).
with fits.open(DATA / "rice_int16_64x48.fits") as hdul:
    assert len(hdul) == 2 and hdul[1].header["TELESCOP"] == "SDO/AIA"
    dec = np.asarray(hdul[1].data, dtype="<f8")
assert dec.shape == (ny, nx)
expect = vals.astype("<f8")
for r, c in blank_at:
    expect[r, c] = np.nan
assert np.array_equal(np.isnan(dec), np.isnan(expect)), "astropy BLANK handling"
assert np.array_equal(dec[~np.isnan(dec)], expect[~np.isnan(expect)])
np.save(FIX / "rice_int16_64x48.npy", np.ascontiguousarray(dec))
print("wrote", FIX / "aia_171_128_data.npy", DATA / "rice_int16_64x48.fits",
      FIX / "rice_int16_64x48.npy")
