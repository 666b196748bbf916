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
- tests/data/rice_int16_tiles_70x45.fits : RICE_1 int16 with 2-D tiles of 24 x 16 pixels
  (ZTILE1 = 24, ZTILE2 = 16: partial tiles at the right and bottom edges), BSCALE = 0.5,
  BZERO = 100 and a few BLANK pixels, and tests/parity/fixtures/rice_int16_tiles_70x45.npy :
  its physical values as astropy decodes them (float64; BLANK -> NaN).
- tests/data/plain_{int16,uint16,int32,float32,float64}_25x17.fits : plain primary images
  (NAXIS1 = 25, NAXIS2 = 17) of each BITPIX with BSCALE/BZERO and BLANK (integers) or
  NaN (floats), written byte by byte here (not by astropy), and
  tests/parity/fixtures/plain_*_25x17.npy : their physical values as astropy reads them
  (float64; BLANK -> NaN). Values are chosen so that f32 holds them exactly.
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

# 2b. RICE_1 with 2-D tiles and scaling (the decoder must place partial tiles and apply
# BSCALE/BZERO as cfitsio does).
ny2, nx2 = 45, 70
rng2 = np.random.default_rng(20261129)
vals2 = rng2.integers(-20000, 20000, size=(ny2, nx2)).astype(np.int16)
vals2[10:14, :] = 1234  # flat rows: zero-difference blocks
vals2[30, :] = rng2.integers(-32767, 32767, size=nx2)  # high-entropy row
blank2 = [(0, 0), (3, 4), (44, 69), (16, 24)]
for r, c in blank2:
    vals2[r, c] = -32768
hdr2 = fits.Header()
hdr2["BLANK"] = -32768
comp2 = fits.CompImageHDU(data=vals2, header=hdr2, compression_type="RICE_1", tile_shape=(16, 24))
comp2.header["BSCALE"] = 0.5
comp2.header["BZERO"] = 100.0
fits.HDUList([fits.PrimaryHDU(), comp2]).writeto(DATA / "rice_int16_tiles_70x45.fits", overwrite=True)
with fits.open(DATA / "rice_int16_tiles_70x45.fits", disable_image_compression=True) as hdul:
    h2 = hdul[1].header
    assert (h2["ZTILE1"], h2["ZTILE2"], h2["BSCALE"], h2["BZERO"]) == (24, 16, 0.5, 100.0)
with fits.open(DATA / "rice_int16_tiles_70x45.fits") as hdul:
    dec2 = np.asarray(hdul[1].data, dtype="<f8")
expect2 = vals2.astype("<f8") * 0.5 + 100.0
for r, c in blank2:
    expect2[r, c] = np.nan
assert np.array_equal(dec2, expect2, equal_nan=True), "astropy scaling/BLANK handling"
np.save(FIX / "rice_int16_tiles_70x45.npy", np.ascontiguousarray(dec2))

# 3. Plain primary images of every BITPIX with scaling and missing values, written as raw
# bytes (header records + big-endian data, padded to 2880) so that the file layout does
# not depend on any FITS writer.
def card(text):
    assert len(text) <= 80, text
    return text.ljust(80)


def write_plain(path, raw, bitpix, extra):
    ny, nx = raw.shape
    cards = [
        card("SIMPLE  =                    T"),
        card(f"BITPIX  = {bitpix:>20}"),
        card("NAXIS   =                    2"),
        card(f"NAXIS1  = {nx:>20}"),
        card(f"NAXIS2  = {ny:>20}"),
    ]
    cards += [card(c) for c in extra]
    cards += [card("TELESCOP= 'SDO/AIA '"), card("WAVELNTH=                  171"), card("END")]
    head = "".join(cards).encode("ascii")
    head += b" " * (-len(head) % 2880)
    body = raw.astype(raw.dtype.newbyteorder(">")).tobytes()
    body += b"\0" * (-len(body) % 2880)
    path.write_bytes(head + body)


ny, nx = 17, 25
rng = np.random.default_rng(7)
plain = {
    # int16, non-default BLANK; raw -32768 is then a valid value.
    "int16": (
        rng.integers(-2000, 2000, size=(ny, nx)).astype(np.int16),
        16,
        ["BSCALE  =                  0.5", "BZERO   =               1000.0", "BLANK   =                 -999"],
        {(0, 0): -999, (3, 7): -999, (0, 1): -32768, (0, 2): 32767},
    ),
    # unsigned 16-bit convention.
    "uint16": (
        rng.integers(-32768, 32767, size=(ny, nx)).astype(np.int16),
        16,
        ["BSCALE  =                  1.0", "BZERO   =              32768.0"],
        {(0, 0): -32768, (16, 24): 32767},
    ),
    "int32": (
        rng.integers(-100000, 100000, size=(ny, nx)).astype(np.int32),
        32,
        ["BSCALE  =                 0.25", "BZERO   =                 10.0", "BLANK   =          -2147483648"],
        {(1, 1): -2147483648, (16, 0): -2147483648},
    ),
    "float32": (
        (rng.integers(-4000, 4000, size=(ny, nx)) / 8.0).astype(np.float32),
        -32,
        ["BSCALE  =                  2.0", "BZERO   =                 -1.0"],
        {(2, 2): np.nan, (10, 20): np.nan},
    ),
    "float64": (
        (rng.integers(-4000, 4000, size=(ny, nx)) / 16.0).astype(np.float64),
        -64,
        [],
        {(0, 24): np.nan, (16, 24): np.nan},
    ),
}
for name, (raw, bitpix, extra, special) in plain.items():
    for (r, c), v in special.items():
        raw[r, c] = v
    path = DATA / f"plain_{name}_25x17.fits"
    write_plain(path, raw, bitpix, extra)
    with fits.open(path) as hdul:
        phys = np.asarray(hdul[0].data, dtype="<f8")
    assert phys.shape == (ny, nx)
    assert np.array_equal(phys, phys.astype(np.float32).astype(np.float64), equal_nan=True)
    n_nan = int(np.isnan(phys).sum())
    want_nan = sum(1 for v in special.values() if (isinstance(v, float) and np.isnan(v)))
    if name == "int16":
        want_nan = 2
    if name == "int32":
        want_nan = 2
    assert n_nan == want_nan, (name, n_nan, want_nan)
    np.save(FIX / f"plain_{name}_25x17.npy", np.ascontiguousarray(phys))

print("wrote", FIX / "aia_171_128_data.npy", DATA / "rice_int16_64x48.fits",
      FIX / "rice_int16_64x48.npy")
