"""aiapy's level-1.5 FITS headers, for the header-fidelity test (tests/header_fidelity.rs).

Run from the repository root with the reference stack (tests/parity/requirements.txt):

    /work/venv/bin/python tests/parity/make_header_fixtures.py

Deterministic (no network, no clock in the output; about 10 s: one 4096x4096 register).

What is recorded: the primary header of the FITS file that ``sunpy.map.GenericMap.save``
writes for aiapy's output map, read back with astropy — i.e. what an aiapy user gets in the
file, which is what aiaprep's output file is compared with. ``save`` writes
``header_to_fits(meta)`` (= ``smap.fits_header``) into an astropy ``PrimaryHDU``, which
sets the structural cards from the data: ``smap.meta``/``smap.fits_header`` say
``BITPIX = -64`` (aiapy's ``register`` sets it) even where the data, and so the file, are
float32 (the full-frame case). One 80-column card per line (astropy
``Header.tostring(sep="\\n")``), after ``#`` lines naming the recipe and the versions;
tests/header_fidelity.rs parses the cards with ``aiaprep::Header::parse_lines``.

Cases (tests/parity/fixtures/):

* ``header_aiapy_register.txt``: ``register(map)`` of tests/data/aia_171_level1_128px.fits
  (the real level-1 header; 128x128, binned: CDELT 19.18", so register's target scale is
  19.2").
* ``header_aiapy_pointing_register.txt``: ``register(update_pointing(map,
  pointing_table=T))`` with T = tests/data/pointing_table_small.csv read into the QTable
  ``get_pointing_table`` returns (as make_pointing_fixtures.py does, without network).
  The pointing table describes the full-resolution CCD: aiapy 0.10.2 refuses maps that are
  not 4096x4096, and on the binned 128x128 map the update would set CDELT to 0.6" (the
  table's IMSCALE) and the map would no longer contain the disk (aiaprep refuses it for
  that reason). The input is therefore the 128x128 file's header turned back into its
  full-frame form (NAXIS 4096, CDELT1/2 = IMSCL_MP, CRPIX1/2 = X0_MP + 1 / Y0_MP + 1, as
  a JSOC level-1 full frame has them; every other keyword as in the file) with zero
  pixels: the header does not depend on the pixel values. aiapy 0.10.2 sets CRPIX =
  X0 + 1 absolutely, aiapy HEAD (whose rule aiaprep follows) moves CRPIX by X0 - X0_MP;
  the two agree on this input.
* ``header_aiapy_fullframe_level1.txt``: that full-frame level-1 header (the input of the
  previous case; tests/header_fidelity.rs writes it with zero pixels and runs aiaprep's
  prep on it).
"""

import pathlib
import tempfile
import warnings

import numpy as np

import astropy
import astropy.io.fits as fits
import scipy
import sunpy
import sunpy.map
import aiapy
from aiapy.calibrate import register, update_pointing

from make_pointing_fixtures import read_table

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
OUT = ROOT / "tests" / "parity" / "fixtures"

VERSIONS = (
    f"aiapy {aiapy.__version__}, sunpy {sunpy.__version__}, astropy {astropy.__version__}, "
    f"numpy {np.__version__}, scipy {scipy.__version__}"
)


def saved_header(smap, tmp):
    """The primary header of the file ``smap.save`` writes (astropy reads it back)."""
    path = pathlib.Path(tmp) / "out.fits"
    if path.exists():
        path.unlink()
    with warnings.catch_warnings():
        # astropy warns about BLANK in a float HDU (sunpy passes the level-1 BLANK through).
        warnings.simplefilter("ignore")
        smap.save(path)
        return fits.getheader(path)


def write_cards(name, recipe, header):
    text = header.tostring(sep="\n", endcard=False, padding=False)
    lines = [f"# {recipe}", f"# {VERSIONS}", *text.split("\n")]
    (OUT / name).write_text("\n".join(l.rstrip() for l in lines) + "\n")
    print(name, len(header), "cards")


def full_frame_header():
    """The 128x128 file's header in its full-frame level-1 form (see the module docs)."""
    h = fits.getheader(DATA / "aia_171_level1_128px.fits").copy()
    h["NAXIS1"] = 4096
    h["NAXIS2"] = 4096
    h["CDELT1"] = h["IMSCL_MP"]
    h["CDELT2"] = h["IMSCL_MP"]
    h["CRPIX1"] = h["X0_MP"] + 1.0
    h["CRPIX2"] = h["Y0_MP"] + 1.0
    return h


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")

        # (a) register alone, on the real 128x128 file.
        m = sunpy.map.Map(DATA / "aia_171_level1_128px.fits")
        write_cards(
            "header_aiapy_register.txt",
            "aiapy.calibrate.register(Map('tests/data/aia_171_level1_128px.fits')), saved by Map.save",
            saved_header(register(m), tmp),
        )

        # (b) update_pointing + register, on the full-frame form of the same header.
        h = full_frame_header()
        write_cards(
            "header_aiapy_fullframe_level1.txt",
            "level-1 input of header_aiapy_pointing_register.txt: "
            "tests/data/aia_171_level1_128px.fits in full-frame form, zero pixels",
            h,
        )
        table = read_table(DATA / "pointing_table_small.csv")
        full = sunpy.map.Map(np.zeros((4096, 4096), dtype=np.float32), h)
        upd = update_pointing(full, pointing_table=table)
        write_cards(
            "header_aiapy_pointing_register.txt",
            "aiapy.calibrate.register(update_pointing(full-frame map, "
            "pointing_table=tests/data/pointing_table_small.csv)), saved by Map.save",
            saved_header(register(upd), tmp),
        )


if __name__ == "__main__":
    main()
