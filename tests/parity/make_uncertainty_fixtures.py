#!/usr/bin/env python
"""aiapy's per-pixel uncertainty as fixtures for host/uncertainty.rs (tests/uncertainty.rs).

The oracle is aiapy 0.10.2's ``aiapy.calibrate.estimate_error`` itself, called as

    estimate_error(np.array(counts) * u.DN / u.pix, channel * u.AA,
                   error_table=get_error_table("tests/data/calibration/aia_V3_error_table.txt"),
                   **kwargs)

with the repository's copy of the V3 error table (its sha256 is checked against the hash aiapy
pins for ``get_error_table("SSW")``, so it is the table aiapy downloads). Writes

* ``tests/parity/fixtures/uncertainty_cases.txt``: one line per value,
  ``CHANNEL OPTIONS COUNTS EXPECTED``, numbers as Python ``repr`` of float64 (``nan``,
  ``inf``); OPTIONS is ``default`` or ``+``-joined ``name`` / ``name=value`` (``n_sample=4``,
  ``include_eve``, ``compare_idl``); EXPECTED is the value aiapy returns, or
  ``raise TYPE: MESSAGE`` when aiapy raises (the rest of the line).

Cases: the ten channels x the options default, include_preflight, include_eve,
include_chianti, include_chianti+include_preflight, include_chianti+include_eve,
include_preflight+include_eve (raises), n_sample=4, n_sample=3+include_chianti+include_eve,
n_sample=2.5+include_preflight, compare_idl, compare_idl+n_sample=2; counts 0, 0.5, 1, 3.7,
10, 100, 1234.5, 16000 (as in aiapy's tests), the edges -1, nan, inf, 24.999999999, 25,
25.5, 1e6, and four seeded random values in [0, 20000) per channel (numpy
``default_rng(15)``).

Reference versions: aiapy 0.10.2, astropy 8.0.2, numpy 2.4.6 (tests/parity/requirements.txt).
From the repository root:

    /work/pyenv/bin/python tests/parity/make_uncertainty_fixtures.py
"""
import hashlib
import os
import warnings

import astropy
import astropy.units as u
import numpy as np

import aiapy
from aiapy.calibrate import estimate_error
from aiapy.calibrate.util import get_error_table

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(ROOT, "tests", "data", "calibration", "aia_V3_error_table.txt")
OUT = os.path.join(ROOT, "tests", "parity", "fixtures", "uncertainty_cases.txt")
# The hash aiapy 0.10.2 pins for the SSW V3 error table (aiapy/calibrate/util.py).
V3_SHA256 = "66ff034923bb0fd1ad20e8f30c7d909e1a80745063957dd6010f81331acaf894"

CHANNELS = [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500]
OPTIONS = [
    ("default", {}),
    ("include_preflight", {"include_preflight": True}),
    ("include_eve", {"include_eve": True}),
    ("include_chianti", {"include_chianti": True}),
    ("include_chianti+include_preflight", {"include_chianti": True, "include_preflight": True}),
    ("include_chianti+include_eve", {"include_chianti": True, "include_eve": True}),
    ("include_preflight+include_eve", {"include_preflight": True, "include_eve": True}),
    ("n_sample=4", {"n_sample": 4}),
    ("n_sample=3+include_chianti+include_eve", {"n_sample": 3, "include_chianti": True, "include_eve": True}),
    ("n_sample=2.5+include_preflight", {"n_sample": 2.5, "include_preflight": True}),
    ("compare_idl", {"compare_idl": True}),
    ("compare_idl+n_sample=2", {"compare_idl": True, "n_sample": 2}),
]
STANDARD = [0.0, 0.5, 1.0, 3.7, 10.0, 100.0, 1234.5, 16000.0]
EDGES = [-1.0, np.nan, np.inf, 24.999999999, 25.0, 25.5, 1e6]


def main():
    with open(TABLE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == V3_SHA256, f"{TABLE}: sha256 {digest}, not aiapy's V3 table"
    table = get_error_table(TABLE)
    rng = np.random.default_rng(15)
    lines = [
        "# aiapy estimate_error: CHANNEL OPTIONS COUNTS EXPECTED (DN/pix; float64 repr)",
        f"# aiapy {aiapy.__version__}, astropy {astropy.__version__}, numpy {np.__version__}; "
        "table tests/data/calibration/aia_V3_error_table.txt",
        "# made by tests/parity/make_uncertainty_fixtures.py",
    ]
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrt of negative counts: RuntimeWarning
        for ch in CHANNELS:
            counts = np.array(STANDARD + EDGES + list(rng.uniform(0, 20000, 4)), dtype=np.float64)
            for name, kwargs in OPTIONS:
                try:
                    r = estimate_error(counts * u.DN / u.pix, ch * u.AA, error_table=table, **kwargs)
                    assert r.unit == u.DN / u.pix and r.shape == counts.shape
                    expected = [repr(float(x)) for x in r.value]
                except Exception as e:  # noqa: BLE001 -- recorded as the expected outcome
                    expected = [f"raise {type(e).__name__}: {e}"] * len(counts)
                for c, x in zip(counts, expected):
                    lines.append(f"{ch} {name} {float(c)!r} {x}")
                    n += 1
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{OUT}: {n} values")
    print(f"aiapy {aiapy.__version__}, astropy {astropy.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
