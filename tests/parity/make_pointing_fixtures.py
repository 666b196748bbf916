"""Oracle fixtures for the pointing update (tests/pointing.rs).

Run from the repository root with the reference stack (tests/parity/requirements.txt):

    /work/venv/bin/python tests/parity/make_pointing_fixtures.py

Writes tests/parity/fixtures/pointing_aiapy.json with

* "times": T_START/T_STOP of every row of tests/data/pointing_table_small.csv (UTC, ISO) and
  tests/data/pointing_table_small_tai.csv (JSOC TAI strings), converted by astropy to UTC
  and given as POSIX seconds (astropy ``Time.unix``), plus TAI strings around leap seconds
  and astropy's UTC for them as ISO strings (checks the built-in leap-second table);
* "cases": the keywords after ``aiapy.calibrate.update_pointing(map,
  pointing_table=QTable)`` for several T_OBS values and both tables.

aiapy 0.10.2 (the pinned reference) refuses maps that are not 4096x4096 and sets
``CRPIX = X0 + 1`` absolutely, while aiapy HEAD (whose semantics aiaprep follows) moves CRPIX
by ``X0 - X0_MP``. The two agree when ``CRPIX = X0_MP + 1``, which holds for real full-frame
level-1 headers. The oracle map is therefore the real 128x128 level-1 header
(tests/data/aia_171_level1_128px.fits) turned back into its full-frame form: NAXIS 4096,
CDELT1/2 = IMSCL_MP, CRPIX1/2 = X0_MP + 1 / Y0_MP + 1, plus PC1_1..PC2_2 computed from the
old CROTA2 (aiapy removes them; aiapy 0.10.2 also needs them present). The Rust test builds
the same header. The relative update on the 128x128 header itself is checked against
hand-computed values in tests/pointing.rs.
"""

import csv
import json
import pathlib
import warnings

import numpy as np

import astropy.units as u
from astropy.table import QTable
from astropy.time import Time

import sunpy.map
from aiapy.calibrate import update_pointing

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
OUT = ROOT / "tests" / "parity" / "fixtures"


def jsoc_to_isot(s):
    """'2011.02.15_00:00:34_TAI' -> ('2011-02-15T00:00:34', 'tai')."""
    body, scale = s.rsplit("_", 1)
    date, tod = body.split("_")
    return date.replace(".", "-") + "T" + tod, scale.lower()


def parse_time(s):
    s = s.strip()
    if s.endswith("_TAI") or s.endswith("_UTC"):
        isot, scale = jsoc_to_isot(s)
        t = Time(isot, format="isot", scale=scale)
    else:
        t = Time(s.rstrip("Z").replace(" ", "T"), format="isot", scale="utc")
    return t.utc


def value(s):
    s = s.strip()
    if s == "" or s.lower() in ("nan", "missing", "--"):
        return np.nan
    return float(s)


def read_table(path):
    lines = [l for l in path.read_text().splitlines() if l.strip() and not l.lstrip().startswith("#")]
    rows = list(csv.reader(lines, skipinitialspace=True))
    names = [n.strip().upper() for n in rows[0]]
    body = rows[1:]
    cols = {}
    cols["T_START"] = Time([parse_time(r[names.index("T_START")]) for r in body])
    cols["T_STOP"] = Time([parse_time(r[names.index("T_STOP")]) for r in body])
    units = {"X0": u.pix, "Y0": u.pix, "IMSCALE": u.arcsec / u.pix, "INSTROT": u.deg}
    for i, n in enumerate(names):
        parts = n.split("_")
        if len(parts) == 3 and parts[0] == "A" and parts[2] in units:
            cols[n] = np.array([value(r[i]) for r in body]) * units[parts[2]]
    return QTable(cols)


def full_frame_map():
    m = sunpy.map.Map(DATA / "aia_171_level1_128px.fits")
    meta = dict(m.meta)
    meta["naxis1"] = meta["naxis2"] = 4096
    meta["cdelt1"] = meta["cdelt2"] = meta["imscl_mp"]
    meta["crpix1"] = meta["x0_mp"] + 1.0
    meta["crpix2"] = meta["y0_mp"] + 1.0
    th = np.deg2rad(meta["crota2"])
    meta["pc1_1"], meta["pc1_2"] = np.cos(th), -np.sin(th)
    meta["pc2_1"], meta["pc2_2"] = np.sin(th), np.cos(th)
    return sunpy.map.Map(np.zeros((4096, 4096), dtype=np.float32), meta)


KEYS = ["CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CROTA2", "X0_MP", "Y0_MP"]


def run_case(base, table, t_obs):
    meta = dict(base.meta)
    if t_obs is not None:
        meta["t_obs"] = t_obs
    m = sunpy.map.Map(base.data, meta)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = update_pointing(m, pointing_table=table)
    ref = m.reference_date
    row = int(np.where((ref >= table["T_START"]) & (ref < table["T_STOP"]))[0][0])
    res = {k: float(out.meta[k.lower()]) for k in KEYS}
    res["row"] = row
    res["pc_removed"] = all(k not in out.meta for k in ("pc1_1", "pc1_2", "pc2_1", "pc2_2"))
    res["n_missing_warnings"] = sum("Missing value in pointing table" in str(x.message) for x in w)
    return res


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    utc = read_table(DATA / "pointing_table_small.csv")
    tai = read_table(DATA / "pointing_table_small_tai.csv")
    # TAI readings one second either side of leap seconds (not inside one: a UTC 23:59:60
    # has no POSIX time, and astropy and aiaprep map it differently).
    leap_tai = [
        "1999.01.01_00:00:30_TAI",
        "1999.01.01_00:00:32_TAI",
        "2008.12.31_23:59:59_TAI",
        "2009.01.01_00:00:32_TAI",
        "2009.01.01_00:00:34_TAI",
        "2012.07.01_00:00:33_TAI",
        "2012.07.01_00:00:35_TAI",
        "2015.06.30_12:00:00_TAI",
        "2015.07.01_00:00:34.5_TAI",
        "2015.07.01_00:00:36_TAI",
        "2017.01.01_00:00:35.999_TAI",
        "2017.01.01_00:00:37_TAI",
        "2024.05.10_12:34:56.789_TAI",
    ]
    fixture = {
        "times": {
            "utc_table": {
                "t_start": [float(t.unix) for t in utc["T_START"]],
                "t_stop": [float(t.unix) for t in utc["T_STOP"]],
            },
            "tai_table": {
                "t_start": [float(t.unix) for t in tai["T_START"]],
                "t_stop": [float(t.unix) for t in tai["T_STOP"]],
            },
            # UTC as an ISO string: astropy's `unix` stretches a day that has a leap second
            # over 86401 s, so it is not POSIX time on those days.
            "leap": [[s, parse_time(s).utc.strftime("%Y-%m-%dT%H:%M:%S.%f")] for s in leap_tai],
        },
        "cases": {},
    }
    base = full_frame_map()
    cases = {
        # name: (table, T_OBS or None for the header's own 2011-02-15T00:00:01.34Z)
        "header_t_obs_utc": (utc, None),
        "header_t_obs_tai": (tai, None),
        "boundary_tai": (tai, "2011-02-15T03:00:10.00Z"),
        "nan_row": (utc, "2011-02-15T04:30:00.00Z"),
        "imscale_missing": (utc, "2011-02-15T08:59:59.99Z"),
    }
    for name, (table, t_obs) in cases.items():
        res = run_case(base, table, t_obs)
        res["t_obs"] = t_obs if t_obs is not None else base.meta["t_obs"]
        fixture["cases"][name] = res
    with open(OUT / "pointing_aiapy.json", "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(json.dumps(fixture["cases"], indent=1))


if __name__ == "__main__":
    main()
