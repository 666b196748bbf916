"""Oracle for the degradation correction (tests/degradation.rs), from aiapy itself.

Reference stack: aiapy 0.10.2, astropy 8.0.2 (tests/parity/requirements.txt). Run from the
repository root:

    /work/pyenv/bin/python tests/parity/make_degradation_fixtures.py

Table: tests/data/calibration/aia_V8_20171210_050627_response_table.txt (the V8 SolarSoft
response table aiapy ships among its test data). For every channel and every epoch of it:
T_START, T_START + 1 s, the midpoint, T_STOP − 1 s and T_STOP (the next epoch, or an error
after the last); before the first epoch; a few fixed dates (leap-second neighbourhoods away
from the leap second itself, the test map's DATE-OBS, 2020, 2029, 2035). Writes
tests/parity/fixtures/degradation_cases.txt, one case per line:

    <channel> <time, UTC ISO> <factor (repr)>         aiapy's degradation(...).value[0]
    <channel> <time, UTC ISO> ERROR <kind>            aiapy raised (kind: no_epoch, no_rows)

and degradation_map.txt: the factor correct_degradation applies to
tests/data/aia_171_level1_128px.fits (its DATE-OBS), and the one T_OBS would give.
"""

import pathlib
import warnings

import astropy.units as u
import numpy as np
from astropy.time import Time

from aiapy.calibrate import degradation
from aiapy.calibrate.util import get_correction_table

warnings.simplefilter("ignore")
ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE = ROOT / "tests" / "data" / "calibration" / "aia_V8_20171210_050627_response_table.txt"
OUT = ROOT / "tests" / "parity" / "fixtures"
CHANNELS = [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500]


def main():
    tab = get_correction_table(TABLE)
    lines = []

    def case(ch, s):
        t = Time(s, scale="utc")
        try:
            f = degradation(ch * u.angstrom, t, correction_table=tab).value[0]
            lines.append(f"{ch} {s} {float(f)!r}")
        except ValueError as e:
            kind = "no_rows" if "does not contain" in str(e) else "no_epoch"
            lines.append(f"{ch} {s} ERROR {kind}")

    def iso(t):
        t = t.utc
        t.precision = 3
        return t.isot

    for ch in CHANNELS:
        thin = "" if ch in (1600, 1700, 4500) else "_THIN"
        r = tab[tab["WAVE_STR"] == f"{ch}{thin}"]
        r.sort("DATE")
        if len(r) == 0:
            case(ch, "2015-01-01T00:00:00.000")
            continue
        case(ch, iso(r["T_START"][0] - 1 * u.s))
        case(ch, "2009-01-01T00:00:00.000")
        for i in range(len(r)):
            a, b = r["T_START"][i], r["T_STOP"][i]
            for t in (a, a + 1 * u.s, a + (b - a) / 2, b - 1 * u.s, b):
                case(ch, iso(t))
        for s in ["2012-06-30T23:59:59.000", "2012-07-01T00:00:00.000", "2015-07-01T00:00:00.000",
                  "2017-01-01T00:00:00.000", "2011-02-15T00:00:00.340", "2015-01-01T00:00:00.000",
                  "2020-06-15T12:34:56.789", "2029-12-31T23:59:59.999", "2035-01-01T00:00:00.000"]:
            case(ch, s)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "degradation_cases.txt").write_text("\n".join(lines) + "\n")

    import sunpy.map

    m = sunpy.map.Map(ROOT / "tests" / "data" / "aia_171_level1_128px.fits")
    d_obs = degradation(m.wavelength, m.date, correction_table=tab).value[0]
    d_tobs = degradation(m.wavelength, m.reference_date, correction_table=tab).value[0]
    (OUT / "degradation_map.txt").write_text(f"date_obs {float(d_obs)!r}\nt_obs {float(d_tobs)!r}\n")
    print(len(lines), "cases")


if __name__ == "__main__":
    main()
