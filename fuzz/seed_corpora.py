#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from tests/data.

Run from the repository root with numpy and astropy installed:

    python3 fuzz/seed_corpora.py

Deterministic, apart from the time stamp in the header of each gzip tile (GZIP seeds). The
corpora committed are these seeds plus what the fuzzer found, minimised
(`bash scripts/fuzz-merge.sh TARGET…`); see RELIABILITY.md.
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

    fits_read_grid()
    rice_base = compressed_grid()
    cfitsio_grid(rice_base)
    whole_file_magics(rice_base)


# The AIA keywords the pipeline reads, for a 16 × 16 full-disk image (200″ pixels, Sun
# centred): the base of the `fits_read` header grid. Every check of the AIA, geometry, time,
# level-1 and register-plan code passes on it.
GRID_BASE = [
    ("TELESCOP", "'SDO/AIA '"),
    ("INSTRUME", "'AIA_3   '"),
    ("WAVELNTH", "171"),
    ("LVL_NUM", "1.0"),
    ("T_OBS", "'2011-02-15T00:00:01.34Z'"),
    ("DATE-OBS", "'2011-02-15T00:00:00.34'"),
    ("EXPTIME", "2.000191"),
    ("CTYPE1", "'HPLN-TAN'"),
    ("CTYPE2", "'HPLT-TAN'"),
    ("CUNIT1", "'arcsec  '"),
    ("CUNIT2", "'arcsec  '"),
    ("CRPIX1", "8.5"),
    ("CRPIX2", "8.5"),
    ("CRVAL1", "-4.532172209851069"),
    ("CRVAL2", "2.865574805180813"),
    ("CDELT1", "200.0"),
    ("CDELT2", "200.0"),
    ("CROTA2", "0.019413"),
    ("RSUN_OBS", "971.812597"),
    ("RSUN_REF", "696000000.0"),
    ("DSUN_OBS", "147724815128.0"),
]

# Values of every type a card can hold, for every numeric keyword.
GRID_VALUES = {
    "missing": None,
    "string": "'12.5    '",
    "bool": "T",
    "undefined": "",
    "int": "3",
    "zero": "0.0",
    "negative": "-1.0",
    "huge": "1.0E300",
    "overflow": "1.0E400",
    "complex": "(1.0, 2.0)",
    "dexp": "2.5D1",
}


def fits_image(cards, bitpix=16, shape=(16, 16), data=None):
    """A single-HDU FITS file: the mandatory cards, `cards` ((key, value) or (key, None) for
    a key with no value indicator), END; then `data` (default: a disc of 1000 on 10,
    big-endian) padded to 2880 bytes."""
    recs = [("SIMPLE", "T"), ("BITPIX", str(bitpix)), ("NAXIS", str(len(shape)))]
    recs += [(f"NAXIS{i + 1}", str(n)) for i, n in enumerate(shape)]
    out = []
    for key, value in recs + list(cards):
        if value is None:
            out.append(key.ljust(80))
        else:
            out.append((key.ljust(8) + "= " + value.rjust(20) if value and value[0] not in "'("
                        else key.ljust(8) + "= " + value).ljust(80)[:80])
    out.append("END".ljust(80))
    head = "".join(out).encode("latin-1")
    head += b" " * (-len(head) % 2880)
    if data is None:
        n = int(np.prod(shape))
        dtype = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}[bitpix]
        yy, xx = np.mgrid[: shape[-1], : n // shape[-1]] if len(shape) > 1 else (0, np.arange(n))
        disc = np.where((xx - 7.5) ** 2 + (yy - 7.5) ** 2 < 30, 1000, 10)
        data = np.resize(disc, n).astype(dtype).tobytes()
    return head + data + b"\0" * (-len(data) % 2880)


def with_card(key, value, base=GRID_BASE):
    """`base` with `key` set to `value` (None: removed), appended when absent."""
    cards = [(k, v) for k, v in base if k != key]
    return cards if value is None else cards + [(key, value)]


def fits_read_grid():
    """Named seeds `grid-*` of `fits_read`: the base image, then one change each — every
    value type in the keywords the checks read, the string keywords' cases, the rotation forms
    (PC, CD, CROTA2), geometries the full-disk and register checks refuse, image types, and
    every time of the `time_parse` corpus as `T_OBS`. They start the fuzzer at the checks'
    branches rather than leaving it to find each by mutation."""
    put("fits_read", fits_image(GRID_BASE), "grid-base")
    numeric = ["WAVELNTH", "LVL_NUM", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1",
               "CDELT2", "CROTA2", "RSUN_OBS", "RSUN_REF", "DSUN_OBS"]
    # The rotation matrices' entries and the string keywords too: each check names the value
    # of another type it got (the ninth session's run found a logical T_OBS by mutation).
    rotation = [f"{m}{i}_{j}" for m in ("PC", "CD") for i in (1, 2) for j in (1, 2)]
    strings = ["TELESCOP", "INSTRUME", "CUNIT1", "CUNIT2", "T_OBS"]
    for key in numeric + rotation + strings:
        for name, value in GRID_VALUES.items():
            if value is None and key not in dict(GRID_BASE):
                continue  # the base image itself
            put("fits_read", fits_image(with_card(key, value)), f"grid-{key}-{name}")
    special = {
        # The string keywords.
        "TELESCOP-hmi": with_card("TELESCOP", "'SDO/HMI'"),
        "TELESCOP-lower": with_card("TELESCOP", "'sdo/aia'"),
        "TELESCOP-int": with_card("TELESCOP", "5"),
        "INSTRUME-HMI-TELESCOP-none": with_card("INSTRUME", "'HMI'", with_card("TELESCOP", None)),
        "INSTRUME-only": with_card("TELESCOP", None),
        "neither": with_card("INSTRUME", "'EIT'", with_card("TELESCOP", "'SOHO'")),
        "CUNIT1-deg": with_card("CUNIT1", "'deg     '"),
        "CUNIT2-upper": with_card("CUNIT2", "' ARCSEC '"),
        "CUNIT1-int": with_card("CUNIT1", "1"),
        "CUNIT-missing": with_card("CUNIT2", None, with_card("CUNIT1", None)),
        "T_OBS-float": with_card("T_OBS", "2011.5"),
        "WAVELNTH-large": with_card("WAVELNTH", "100000"),
        "WAVELNTH-fraction": with_card("WAVELNTH", "171.4"),
        "LVL_NUM-1.5": with_card("LVL_NUM", "1.5"),
        # Rotation: PC (some or all entries), CD, singular matrices.
        "PC1_1-only": with_card("PC1_1", "0.5"),
        "PC-full": with_card("PC2_2", "0.8", with_card("PC2_1", "0.6", with_card(
            "PC1_2", "-0.6", with_card("PC1_1", "0.8")))),
        "PC-singular": with_card("PC2_2", "0.0", with_card("PC1_1", "0.0")),
        "PC1_2-string": with_card("PC1_2", "'x'"),
        "CD-full": with_card("CD2_2", "200.0", with_card("CD1_2", "10.0", with_card(
            "CD2_1", "-10.0", with_card("CD1_1", "200.0")))),
        "CD-singular": with_card("CD1_1", "0.0", with_card("CROTA2", None)),
        "CROTA2-90": with_card("CROTA2", "90.0"),
        "CROTA2-none": with_card("CROTA2", None),
        "CDELT2-differs": with_card("CDELT2", "100.0"),
        # Geometries the full-disk check and the register plan refuse.
        "edge-on-disk": with_card("CDELT2", "60.0", with_card("CDELT1", "60.0")),
        "centre-outside": with_card("CRVAL1", "3000.0"),
        "centre-far": with_card("CRVAL2", "-300000.0", with_card("CRVAL1", "300000.0")),
        "centre-edge": with_card("CRPIX1", "-8.0"),
        "scale-tiny": with_card("CDELT2", "1.0E-4", with_card("CDELT1", "1.0E-4")),
        "scale-huge": with_card("CDELT2", "1.0E5", with_card("CDELT1", "1.0E5")),
        "RSUN_REF-beyond": with_card("RSUN_REF", "2.0E11"),
        "DSUN-near": with_card("DSUN_OBS", "7.0E8"),
        "CRPIX-nan-like": with_card("CRPIX1", "'NaN'"),
    }
    for name, cards in special.items():
        put("fits_read", fits_image(cards), f"grid-{name}")
    # Image types, scaling and shapes.
    scaled = GRID_BASE + [("BSCALE", "2.0"), ("BZERO", "100.0")]
    images = {
        "bitpix8": fits_image(GRID_BASE, 8),
        "bitpix32": fits_image(GRID_BASE, 32),
        "bitpix64": fits_image(GRID_BASE, 64),
        "bitpix-32": fits_image(GRID_BASE, -32),
        "bitpix-64": fits_image(GRID_BASE, -64),
        "scaled": fits_image(scaled),
        "blank": fits_image(GRID_BASE + [("BLANK", "10")]),
        "scaled-blank": fits_image(scaled + [("BLANK", "10")]),
        "uint16": fits_image(GRID_BASE + [("BZERO", "32768")]),
        "float-blank": fits_image(GRID_BASE + [("BLANK", "10")], -32),
        "naxis3": fits_image(GRID_BASE, 16, (16, 16, 1)),
        "naxis1": fits_image(GRID_BASE, 16, (256,)),
        "one-pixel": fits_image(GRID_BASE, 16, (1, 1)),
        "wide": fits_image(GRID_BASE, 16, (64, 4)),
    }
    for name, blob in images.items():
        put("fits_read", blob, f"grid-image-{name}")
    # Every time of the time_parse corpus that fits a string card, as T_OBS.
    for p in sorted((OUT / "time_parse").iterdir()):
        t = p.read_bytes()
        quoted = t.replace(b"'", b"''")
        if all(32 <= c < 127 for c in t) and len(quoted) <= 66:
            value = "'" + quoted.decode() + "'"
            put("fits_read", fits_image(with_card("T_OBS", value)), f"grid-T_OBS-{p.name[:12]}")


def whole_blocks(n):
    """`n` bytes rounded up to whole 2880-byte FITS blocks."""
    return -(-n // 2880) * 2880


def header_span(blob, hdu_start):
    """The offset of the END card of the header that starts at byte `hdu_start`, and the
    header's size in bytes (whole 2880-byte blocks)."""
    end = blob.index(b"END" + b" " * 77, hdu_start)
    return end, whole_blocks(end + 80 - hdu_start)


def edit_cards(blob, hdu_start, changes):
    """`blob` with the header that starts at byte `hdu_start` changed in place: each
    (key, value) replaces that key's card (value None: removes it) or, when absent, is
    inserted before END. The header must keep its number of 2880-byte blocks."""
    end, size = header_span(blob, hdu_start)
    cards = [blob[i:i + 80].decode("latin-1") for i in range(hdu_start, end, 80)]
    for key, value in changes:
        card = None if value is None else (key.ljust(8) + "= " + (
            value.rjust(20) if value[:1] not in "'(" else value)).ljust(80)[:80]
        at = [i for i, c in enumerate(cards) if c[:8].rstrip() == key]
        if at:
            if card is None:
                del cards[at[0]]
            else:
                cards[at[0]] = card
        elif card is not None:
            cards.append(card)
    head = ("".join(cards) + "END".ljust(80)).encode("latin-1")
    assert len(head) <= size, "the header outgrew its blocks"
    return blob[:hdu_start] + head.ljust(size) + blob[hdu_start + size:]


def compressed_grid():
    """Named seeds `grid-rice-*` of `fits_read`: the grid's base image tile-compressed as
    JSOC ships AIA (RICE_1, 16 × 4 tiles, after an empty primary HDU), then one change each to
    the compression keywords, and the other pixel types and quantisations astropy writes.
    Returns the base file."""
    import io

    hdr = fits.Header()
    for key, value in GRID_BASE:
        hdr[key] = fits.Card.fromstring(f"{key:8}= {value}").value
    yy, xx = np.mgrid[:16, :16]
    disc = np.where((xx - 7.5) ** 2 + (yy - 7.5) ** 2 < 30, 1000, 10)

    def compressed(data, header=hdr, **kw):
        kw.setdefault("compression_type", "RICE_1")
        kw.setdefault("tile_shape", (4, 16))
        kw.setdefault("dither_seed", 1)
        b = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data=data, header=header, **kw)]
                     ).writeto(b)
        return b.getvalue()

    base = compressed(disc.astype(np.int16))
    put("fits_read", base, "grid-rice-base")
    edits = {
        "block16": [("ZVAL1", "16")],
        "block0": [("ZVAL1", "0")],
        "bytepix4": [("ZVAL2", "4")],
        "bytepix-missing": [("ZNAME2", None), ("ZVAL2", None)],
        "old-noisebit": [("ZNAME2", "'NOISEBIT'"), ("ZVAL2", "16")],
        "old-swapped": [("ZVAL1", "2"), ("ZVAL2", "32")],
        # A block size under 16 with a pixel size of 8 or less, not swapped: the shape of
        # the input (too large for the committed corpus then) with which the ninth session's
        # run reached a new edge in cfitsio's RICE parameter reading.
        "block8": [("ZVAL1", "8")],
        "old-noisebit-block2": [("ZNAME2", "'NOISEBIT'"), ("ZVAL1", "2"), ("ZVAL2", "16")],
        "tiles-missing": [("ZTILE1", None), ("ZTILE2", None)],
        "tile-rows": [("ZTILE2", "1")],
        "tile-zero": [("ZTILE1", "0")],
        "blank": [("BLANK", "10")],
        "zblank": [("ZBLANK", "10")],
        "scaled": [("BSCALE", "2.0"), ("BZERO", "100.0")],
        "uint16": [("BZERO", "32768")],
        "bscale-string": [("BSCALE", "'2'")],
        "zscale": [("ZSCALE", "2.0")],
        "zquantiz": [("ZQUANTIZ", "'NO_DITHER'")],
        "zbitpix32": [("ZBITPIX", "32")],
        "zbitpix8": [("ZBITPIX", "8")],
        "znaxis3": [("ZNAXIS", "3"), ("ZNAXIS3", "1")],
        "theap": [("THEAP", "32")],
        "tform-q": [("TFORM1", "'1QB(82) '")],
        "tform-int": [("TFORM1", "'1PI(82) '")],
        "ttype": [("TTYPE1", "'DATA    '")],
        "gzip": [("ZCMPTYPE", "'GZIP_1  '")],
        "gzip2": [("ZCMPTYPE", "'GZIP_2  '")],
        "nocompress": [("ZCMPTYPE", "'NOCOMPRESS'")],
        "rice-one": [("ZCMPTYPE", "'RICE_ONE'")],
        "zimage-false": [("ZIMAGE", "F")],
        "ztension": [("ZTENSION", "'BINTABLE'")],
    }
    # The tile column as every array type cfitsio knows (the descriptor check sizes each).
    for letter in "XBLAIJKEDCM":
        edits[f"tform-p{letter.lower()}"] = [("TFORM1", f"'1P{letter}(82)'")]
    for letter, zero in (("B", "-128"), ("I", "32768"), ("J", "2147483648")):
        edits[f"tform-p{letter.lower()}-tzero"] = [("TFORM1", f"'1P{letter}(82)'"),
                                                    ("TZERO1", zero)]
    for name, changes in edits.items():
        put("fits_read", edit_cards(base, 2880, changes), f"grid-rice-{name}")
    others = {
        "int32": compressed(disc.astype(np.int32)),
        "uint8": compressed(disc.astype(np.uint8) // 8),
        "int16-one-tile": compressed(disc.astype(np.int16), tile_shape=(16, 16)),
        "gzip1-int16": compressed(disc.astype(np.int16), compression_type="GZIP_1"),
        "gzip2-float32": compressed(disc.astype(np.float32) + 0.25, compression_type="GZIP_2",
                                    quantize_level=0.0),
        "gzip1-float64": compressed(disc.astype(np.float64) + 0.25, compression_type="GZIP_1",
                                    quantize_level=0.0),
        "hcompress-int16": compressed(disc.astype(np.int16), compression_type="HCOMPRESS_1",
                                      tile_shape=(16, 16)),
        "plio-int16": compressed(disc.astype(np.int16), compression_type="PLIO_1"),
        # A tile cfitsio cannot quantise (it holds an infinity) goes to a
        # GZIP_COMPRESSED_DATA column, stored losslessly.
        "float32-gzip-column": compressed(np.where(yy * 16 + xx == 67, np.inf, disc + 0.25)
                                          .astype(np.float32), quantize_level=16.0),
        "float32-dither1": compressed(disc.astype(np.float32) + 0.25,
                                      quantize_method=1, quantize_level=16.0),
        "float32-dither2": compressed(disc.astype(np.float32) + 0.25,
                                      quantize_method=2, quantize_level=16.0),
        "float32-no-dither": compressed(disc.astype(np.float32) + 0.25,
                                        quantize_method=-1, quantize_level=16.0),
    }
    for name, blob in others.items():
        put("fits_read", blob, f"grid-rice-{name}")
    return base


def with_records(blob, hdu_start, records):
    """`blob` with the raw 80-byte `records` (bytes) inserted before the END of the header
    that starts at byte `hdu_start` (which grows by whole 2880-byte blocks as needed)."""
    end, size = header_span(blob, hdu_start)
    head = blob[hdu_start:end] + b"".join(r.ljust(80)[:80] for r in records) + b"END".ljust(80)
    return blob[:hdu_start] + head.ljust(whole_blocks(len(head))) + blob[hdu_start + size:]


# The integer keywords cfitsio reads as it opens an HDU or decodes tiles (the crate's
# `cfitsio_reads_as_integer`), as a card names them (cfitsio's reading: any case, `=` left of
# column 9, HIERARCH).
CFITSIO_INTEGER_KEYS = ["BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "TFIELDS",
                        "THEAP", "BLANK", "ZBITPIX", "ZBLANK", "ZDITHER0", "ZPCOUNT",
                        "ZGCOUNT", "ZNAXIS", "ZNAXIS1", "ZTILE1", "ZVAL1", "ZVAL2", "TNULL1",
                        "TBCOL1"]


def cfitsio_grid(rice_base):
    """Named seeds `grid-cfitsio-*` of `fits_read` and `psf_file`: the records the checks
    made before cfitsio parses a header stop at (RELIABILITY.md, findings 19–21), on either
    side of each limit, in the grid's plain image and in its tile-compressed table header.
    An integer keyword with a value of 28 and of 29 characters, for every keyword cfitsio reads
    as an integer and in each way cfitsio names one; a string, comment, complex value and
    token after an `=` left of column 9 around cfitsio's 71- and 73-byte buffers; records
    cfitsio's header copy (`ffprec`) writes and refuses."""
    records = {}
    for key in CFITSIO_INTEGER_KEYS:
        records[f"int-{key}-29"] = key.ljust(8) + "= " + "0" * 27 + "16"
    records["int-BLANK-28"] = "BLANK   = " + "0" * 26 + "16"
    records["int-zval1-lower-29"] = "zval1   = " + "0" * 27 + "16"
    records["int-ZTILE1-short-eq-29"] = "ZTILE1= " + "0" * 27 + "16"
    records["int-ZTILE1-hierarch-29"] = "HIERARCH ZTILE1 = " + "0" * 27 + "16"
    records["int-ZVALUE-29"] = "ZVALUE  = " + "0" * 27 + "16"
    records["int-NAXISX-29"] = "NAXISX  = " + "0" * 27 + "16"
    records["int-OBJECT-29"] = "OBJECT  = " + "0" * 27 + "16"
    records["int-ZTENSION-long-string"] = "ZTENSION= '" + "B" * 40 + "'"
    for n in (66, 67, 68, 69, 70, 71):
        records[f"short-eq-string-{n}"] = "A='" + "x" * n + "'"
        records[f"short-eq-token-{n}"] = "A=" + "1" * (n + 1)
        records[f"short-eq-complex-{n}"] = "A=(1," + "0" * (n - 2) + ")"
        records[f"short-eq-comment-{n}"] = "A=1 /" + "c" * (n + 2)
    records["short-eq-string-quote"] = "A='" + "x''" * 20 + "'"
    records["short-eq-string-open"] = "A='" + "x" * 76
    records["short-eq-blank"] = "A="
    records["short-eq-slash"] = "A=/" + "c" * 76
    records["no-value-comment"] = "NOVALUE " + "c" * 72
    records["hierarch-long"] = "HIERARCH A = '" + "x" * 64 + "'"
    # What the header copy (`ffprec`) writes and refuses.
    records["rec-caret"] = "LVL^NUM =                    1"
    records["rec-blank-inside"] = "LVL NUM =                    1"
    records["rec-lower"] = "lvl_num =                    1"
    records["rec-long-name"] = "ABCDEFGHI=                   1"
    records["rec-latin1"] = "LVL\xe9NUM =                    1"
    records["rec-nul"] = "LVL\0NUM =                    1"
    records["rec-comment-lower"] = "comment text"
    records["rec-history"] = "HISTORY =  text"
    records["rec-continue"] = "CONTINUE  'x'"
    records["rec-blank-key"] = "        = 1"
    records["rec-dash"] = "DATE-OBS= '2011-01-01T00:00:00'"
    # The header copy's character test at each of the 8 name positions (the compiled loop is
    # unrolled, a branch per position): one file of records it writes (each class at each
    # position, a name ending in blanks at each length, the commentary keywords in either
    # case), and a file for each record it refuses (a character outside its classes, a
    # character after a blank, an `=` inside the name, at each position).
    name = "LVLNUMXY"
    passing = []
    for p in range(8):
        for ch in "Aa0-_":
            passing.append(name[:p] + ch + name[p + 1:] + "=                    1")
        if p > 0:
            passing.append(name[:p].ljust(8) + "=                    1")
    passing += ["COMMENT x", "comment x", "HISTORY x", "history x", "CONTINUE  'x'",
                "continue  'x'", "        x"]
    refused = {}
    for p in range(8):
        refused[f"caret-{p}"] = name[:p] + "^" + name[p + 1:] + "=                    1"
        refused[f"eq-{p}"] = name[:p] + "=" + " " * (7 - p) + "  1"
        if p > 0:
            refused[f"gap-{p}"] = name[:p - 1] + " A" + name[p + 1:] + "=                    1"
    classes = with_records(rice_base, 2880, [r.encode() for r in passing])
    for target in ("fits_read", "psf_file"):
        put(target, classes, "grid-cfitsio-rice-rec-classes")
        for key, record in refused.items():
            put(target, with_records(rice_base, 2880, [record.encode()]),
                f"grid-cfitsio-rice-rec-{key}")
    plain_base = fits_image(GRID_BASE)
    for name, record in records.items():
        raw = record.encode("latin-1")
        plain = fits_image(GRID_BASE + [(record, None)])
        rice = with_records(rice_base, 2880, [raw])
        for target in ("fits_read", "psf_file"):
            put(target, plain, f"grid-cfitsio-{name}")
            put(target, rice, f"grid-cfitsio-rice-{name}")
    put("psf_file", plain_base, "grid-base")
    put("psf_file", rice_base, "grid-rice-base")


# The first two bytes by which cfitsio takes a file for one compressed as a whole (the
# crate's `whole_file_compression`, finding 22).
WHOLE_FILE_MAGICS = {"gzip": b"\x1f\x8b", "zip": b"PK", "pack": b"\x1f\x1e",
                     "lzw": b"\x1f\x9d", "lzh": b"\x1f\xa0", "bzip2": b"BZ"}


def whole_file_magics(rice_base):
    """Named seeds `grid-whole-file-*` of `fits_read` and `psf_file`: the compressed grid
    image behind each magic, which the crate refuses before cfitsio opens the file, and
    behind each magic's first byte alone (`near-<hex>`: the check compares byte by byte;
    CI's 30-second `psf_file` runs had found `P` then a zero)."""
    for target in ("fits_read", "psf_file"):
        for name, magic in WHOLE_FILE_MAGICS.items():
            put(target, magic + rice_base[2:], f"grid-whole-file-{name}")
        for first in sorted({m[:1] for m in WHOLE_FILE_MAGICS.values()}):
            put(target, first + b"\0" + rice_base[2:], f"grid-whole-file-near-{first.hex()}")


if __name__ == "__main__":
    main()
