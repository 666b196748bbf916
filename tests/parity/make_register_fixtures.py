"""Parity fixtures for `register` (prefix reg_), generated with aiapy 0.10.2 / sunpy 7.0.5 /
scipy 1.17.1 (see requirements.txt). Run from the repository root:

    /work/venv/bin/python tests/parity/make_register_fixtures.py

Inputs are float32 values stored as .npy (<f4) and handed to aiapy as float64, so scipy works in
float64 and does not round; NaN = missing pixel. Headers are astropy `Header.tostring()` (80-char
records, no separators) so that the Rust test parses them with `Header::parse`.

Outputs (tests/parity/fixtures/):
  reg_<case>_in.npy, reg_<case>_header.txt      input map
  reg_<case>_<variant>.npy                      aiapy.calibrate.register(m, order=k, missing=...)
  reg_meta.txt      one line per output: file input_case order missing crpix1 crpix2 ny nx
  reg_fd_<name>_header.txt, reg_fulldisk.txt    sunpy contains_full_disk cases: header nx ny bool
"""
import os
import warnings

import numpy as np
import astropy.io.fits as fits
import astropy.units as u
import sunpy.map
from sunpy.map import contains_full_disk
import aiapy.calibrate

warnings.simplefilter("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "fixtures")
os.makedirs(OUT, exist_ok=True)

REAL = os.path.join(ROOT, "tests", "data", "aia_171_level1_128px.fits")


def header_text(h):
    h = h.copy()
    for k in ("BLANK",):
        h.remove(k, ignore_missing=True, remove_all=True)
    return h.tostring()


def splitmix(seed):
    state = [seed & 0xFFFFFFFFFFFFFFFF]

    def nxt():
        state[0] = (state[0] + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = state[0]
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return (z ^ (z >> 31)) / 2.0**64

    return nxt


def synthetic(n, roll_deg, seed):
    """A binned full-disk AIA-like level-1 map of n x n pixels."""
    base = fits.getheader(REAL)
    b = 4096 / n
    cdelt = 0.6007 * b
    crpix1 = (2053.2 - 0.5) / b + 0.5
    crpix2 = (2045.7 - 0.5) / b + 0.5
    rsun_obs = 962.0
    h = base.copy()
    h["NAXIS1"] = n
    h["NAXIS2"] = n
    h["CDELT1"] = cdelt
    h["CDELT2"] = cdelt
    h["CRPIX1"] = crpix1
    h["CRPIX2"] = crpix2
    h["CRVAL1"] = 0.0
    h["CRVAL2"] = 0.0
    h["CROTA2"] = roll_deg
    h["RSUN_OBS"] = rsun_obs
    h["R_SUN"] = rsun_obs / cdelt
    h["RSUN_REF"] = 696000000.0
    h["DSUN_OBS"] = 696000000.0 / np.sin(np.deg2rad(rsun_obs / 3600.0))
    h["LVL_NUM"] = 1.0

    rnd = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(float)
    # world offsets (arcsec) of each pixel from the Sun centre (reference pixel at CRVAL = 0)
    th = np.deg2rad(roll_deg)
    dx, dy = x - (crpix1 - 1), y - (crpix2 - 1)
    tx = cdelt * (np.cos(th) * dx - np.sin(th) * dy)
    ty = cdelt * (np.sin(th) * dx + np.cos(th) * dy)
    r = np.hypot(tx, ty) / rsun_obs
    mu = np.sqrt(np.clip(1 - r**2, 0, 1))
    disk = np.where(r < 1, 800 * (0.4 + 0.6 * mu**0.5), 0.0)
    # smooth-ish limb (about one binned pixel wide) and a corona
    edge = 0.5 * (1 - np.tanh((r - 1) * rsun_obs / cdelt * 2.0))
    img = disk * edge + 300 * np.exp(-np.clip(r - 1, 0, None) * 6) * (1 - edge) + 5
    for _ in range(25):  # active regions / bright points
        cx, cy = rnd.uniform(0.15, 0.85, 2) * n
        s = rnd.uniform(0.5, 0.03 * n)
        img += rnd.uniform(100, 2500) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s**2))
    img += 40 * np.sin(x * 0.9 + 0.3) * np.cos(y * 0.7)  # pixel-scale structure
    img += rnd.normal(0, 8, img.shape)
    img[rnd.integers(0, n, 12), rnd.integers(0, n, 12)] = rnd.uniform(-30, -5, 12)  # negatives
    # missing pixels: centre cluster, a limb cluster, a frame-edge cluster, isolated pixels
    c = n // 2
    img[c - 2 : c + 1, c + 3 : c + 7] = np.nan
    rl = int(round(rsun_obs / cdelt))
    ly, lx = int(crpix2 - 1 + 0.3 * rl), int(crpix1 - 1 + 0.95 * rl)
    img[ly : ly + 2, lx : lx + 3] = np.nan
    img[n // 3 : n // 3 + 3, 1:3] = np.nan
    img[n - 2, n // 2] = np.nan
    img[rnd.integers(5, n - 5, 4), rnd.integers(5, n - 5, 4)] = np.nan
    data = img.astype(np.float32)
    return data, h


meta_lines = []


def run_case(case, data32, header, variants):
    np.save(os.path.join(OUT, f"reg_{case}_in.npy"), data32)
    with open(os.path.join(OUT, f"reg_{case}_header.txt"), "w") as f:
        f.write(header_text(header))
    m = sunpy.map.Map(data32.astype(np.float64), header)
    for order, missing, label in variants:
        kw = {} if missing is None else {"missing": missing}
        out = aiapy.calibrate.register(m, order=order, **kw)
        fname = f"reg_{case}_{label}.npy"
        np.save(os.path.join(OUT, fname), out.data.astype(np.float32))
        ms = "min" if missing is None else ("nan" if np.isnan(missing) else repr(float(missing)))
        meta_lines.append(
            f"{fname} {case} {order} {ms} {float(out.meta['crpix1'])!r} {float(out.meta['crpix2'])!r} "
            f"{out.data.shape[0]} {out.data.shape[1]}"
        )
        print(fname, out.data.shape, out.meta["crpix1"], out.meta["crpix2"],
              np.isnan(out.data).sum())


def main():
    # (a) the real 128^2 level-1 file (binned, CDELT 19.18" -> 19.2")
    real = fits.getdata(REAL).astype(np.float32)
    real_h = fits.getheader(REAL)
    run_case("real128", real, real_h,
             [(0, None, "o0"), (1, None, "o1"), (3, None, "o3"), (3, -100.0, "o3_m-100")])

    # (b) synthetic binned full-disk maps, small roll, NaN clusters
    d, h = synthetic(256, -0.13, 1)
    run_case("syn256", d, h, [(0, None, "o0"), (1, None, "o1"), (3, None, "o3"), (3, np.nan, "o3_nan")])
    d, h = synthetic(512, -0.13, 2)
    run_case("syn512", d, h, [(3, None, "o3")])

    # (c) a large roll: wide padding, frame-edge behaviour; and NaN missing with padding
    d, h = synthetic(256, 30.0, 3)
    run_case("roll30", d, h, [(0, None, "o0"), (1, None, "o1"), (3, None, "o3"),
                              (0, np.nan, "o0_nan"), (3, np.nan, "o3_nan")])

    with open(os.path.join(OUT, "reg_meta.txt"), "w") as f:
        f.write("\n".join(meta_lines) + "\n")

    # contains_full_disk cases
    fd_lines = []


    def fd_case(name, m):
        h = fits.Header(m.fits_header)
        with open(os.path.join(OUT, f"reg_fd_{name}_header.txt"), "w") as f:
            f.write(header_text(h))
        ny, nx = m.data.shape
        res = bool(contains_full_disk(m))
        fd_lines.append(f"reg_fd_{name}_header.txt {nx} {ny} {str(res).lower()}")
        print("fulldisk", name, nx, ny, res)


    d, h = synthetic(512, -0.13, 2)
    full = sunpy.map.Map(d.astype(np.float64), h)
    fd_case("syn512", full)
    fd_case("real128", sunpy.map.Map(real.astype(np.float64), real_h))
    d30, h30 = synthetic(256, 30.0, 3)
    fd_case("roll30", sunpy.map.Map(d30.astype(np.float64), h30))
    # a cut-out: the central 200 x 150 pixels (the disk crosses the edges)
    fd_case("cutout", full.submap([150, 180] * u.pix, top_right=[349, 329] * u.pix))
    # a cut-out far off the disk (Sun centre outside, all edges off the disk)
    fd_case("offdisk", full.submap([0, 0] * u.pix, top_right=[59, 59] * u.pix))
    # Sun centre outside the frame after shifting the reference pixel
    hs = h.copy()
    hs["CRPIX1"] = h["CRPIX1"] + 600
    fd_case("shifted", sunpy.map.Map(d.astype(np.float64), hs))
    # disk touching one edge: move the centre 60 px towards the right edge
    hs = h.copy()
    hs["CRPIX1"] = h["CRPIX1"] + 60
    fd_case("touch_right", sunpy.map.Map(d.astype(np.float64), hs))
    # just inside: 40 px (the disk edge still clears the frame)
    hs = h.copy()
    hs["CRPIX1"] = h["CRPIX1"] + 40
    fd_case("near_right", sunpy.map.Map(d.astype(np.float64), hs))
    # a far-off-centre pointing (CRVAL != 0, reference pixel at the frame centre)
    hs = h.copy()
    hs["CRVAL1"] = 500.0
    hs["CRVAL2"] = -300.0
    fd_case("crval_off", sunpy.map.Map(d.astype(np.float64), hs))
    hs = h.copy()
    hs["CRVAL1"] = 150.0
    hs["CRVAL2"] = -100.0
    fd_case("crval_small", sunpy.map.Map(d.astype(np.float64), hs))

    with open(os.path.join(OUT, "reg_fulldisk.txt"), "w") as f:
        f.write("\n".join(fd_lines) + "\n")


if __name__ == "__main__":
    main()
