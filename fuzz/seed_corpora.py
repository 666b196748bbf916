#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from tests/data.

Run from the repository root with numpy and astropy installed:

    python3 fuzz/seed_corpora.py

Deterministic. The corpora committed are these seeds plus what the fuzzer found, minimised
(`cargo fuzz cmin`); see RELIABILITY.md.
"""
import hashlib
import pathlib
import struct

import numpy as np
from astropy.io import fits

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = ROOT / "fuzz" / "corpus"


def put(target, blob, name=None):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(blob, str):
        blob = blob.encode()
    name = name or hashlib.sha1(blob).hexdigest()
    (d / name).write_bytes(blob)


def rice_tiles(path):
    """(pixels, nblock, tile bytes) of every tile of a RICE_1 file."""
    with fits.open(path, disable_image_compression=True) as hdul:
        for hdu in hdul:
            h = hdu.header
            if h.get("ZCMPTYPE") != "RICE_1":
                continue
            nblock = 32
            for i in range(1, 10):
                if h.get(f"ZNAME{i}") == "BLOCKSIZE":
                    nblock = h[f"ZVAL{i}"]
            nx, ny = h["ZNAXIS1"], h["ZNAXIS2"]
            tx, ty = h.get("ZTILE1", nx), h.get("ZTILE2", 1)
            col = hdu.data["COMPRESSED_DATA"]
            k = 0
            for j in range(0, ny, ty):
                for i in range(0, nx, tx):
                    n = min(tx, nx - i) * min(ty, ny - j)
                    yield n, nblock, bytes(np.asarray(col[k], dtype=np.uint8))
                    k += 1


def main():
    # Whole files: every FITS file of tests/data, and the real AIA image as JSOC ships it
    # (int16, RICE_1 tiles after an empty primary HDU, its full level-1 header).
    fits_files = sorted(DATA.glob("*.fits"))
    for p in fits_files:
        if p.stat().st_size <= 64 * 1024:
            put("fits_read", p.read_bytes(), p.name)
            put("psf_file", p.read_bytes(), p.name)
    with fits.open(DATA / "aia_171_level1_128px.fits") as hdul:
        data = np.nan_to_num(hdul[0].data).astype(np.int16)
        header = hdul[0].header.copy()
    for key in ("BITPIX", "BLANK", "BSCALE", "BZERO"):
        header.remove(key, ignore_missing=True)
    comp = fits.CompImageHDU(data=data, header=header, compression_type="RICE_1")
    tmp = OUT / "aia_171_128_rice.fits"
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(tmp, overwrite=True)
    blob = tmp.read_bytes()
    tmp.unlink()
    put("fits_read", blob, "aia_171_128_rice.fits")
    # A small PSF-like image.
    y, x = np.mgrid[-8:9, -8:9]
    psf = np.exp(-(x**2 + y**2) / 6.0)
    tmp = OUT / "psf.fits"
    fits.PrimaryHDU(psf / psf.sum()).writeto(tmp, overwrite=True)
    put("psf_file", tmp.read_bytes(), "gaussian_17x17.fits")
    tmp.unlink()

    # Tiles with their parameters, as rice_tile reads them: u16 LE pixels − 1, nblock − 1.
    for p in ("rice_int16_64x48.fits", "rice_int16_tiles_70x45.fits"):
        for n, nblock, tile in list(rice_tiles(DATA / p))[:24]:
            put("rice_tile", struct.pack("<HB", n - 1, nblock - 1) + tile)
    # The round trip: nblock − 1, then LE i16 values (ramps, noise, extremes).
    rng = np.random.default_rng(20261205)
    for amp in (0, 3, 300, 30000):
        v = (1000 + rng.integers(-amp - 1, amp + 1, 200)).astype("<i2")
        put("rice_roundtrip", bytes([31]) + v.tobytes())
    put("rice_roundtrip", bytes([0]) + np.array([-32768, 32767, 0, -1], "<i2").tobytes())
    put("rice_table", bytes(64))

    # Headers: the header texts of tests/data and the header blocks of its files.
    for p in sorted(DATA.glob("*.header.txt")):
        put("header_cards", p.read_bytes()[:64 * 1024], p.name)
    for p in fits_files:
        b = p.read_bytes()
        put("header_cards", b[: 2880 * 2], p.name + ".head")
    for card in (
        "DATE-OBS= '2011-02-15T00:00:00.34' / [UTC]",
        "LONGSTRN= 'OGIP 1.0'",
        "KEY     = 'it''s a long string&'",
        "CONTINUE  'continued'",
        "HIERARCH ESO DET CHIP = 5.5D3 / comment",
        "CRPIX1  =    2.050500000000E+03",
        "COMPLEX =          (1.0, -2.5)",
        "FLAG    =                    T",
        "EMPTY   =",
    ):
        put("header_cards", card.ljust(80))

    # Pointing tables.
    for p in sorted(DATA.glob("pointing_table_small*.csv")):
        put("pointing_csv", p.read_bytes(), p.name)

    # Times, in every accepted form.
    for t in (
        "2011-02-15T00:00:00.34",
        "2011-02-15T00:00:00.34Z",
        "2011.02.15_00:00:00_TAI",
        "2016-12-31T23:59:60.5",
        "2015-06-30 23:59:60 TAI",
        "2011-02-15",
        "1970-01-01T00:00:00.000000001_UTC",
        "2011.2.5_1:2:3.5",
    ):
        put("time_parse", t)

    # Calibration tables.
    for p in sorted((DATA / "calibration").glob("*.txt")):
        put("cal_tables", p.read_bytes(), p.name)


if __name__ == "__main__":
    main()
