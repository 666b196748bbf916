#!/usr/bin/env python
"""Parity fixtures for the PSF model (host/psf.rs) and Richardson-Lucy (host/deconvolve.rs).

Reference stack: aiapy 0.10.2, sunpy 7.0.5, numpy 2.4.6 (see requirements.txt).

Usage (from the repository root):

    /work/venv/bin/python tests/parity/make_psf_fixtures.py            # reduced orders + deconvolution
    /work/venv/bin/python tests/parity/make_psf_fixtures.py --full     # 171 A at default orders (5-15 min)
    /work/venv/bin/python tests/parity/make_psf_fixtures.py --deconv   # deconvolution fixtures only

aiapy's PSF is a 4096x4096 float64 array (128 MB); we store only samples of it, per fixture NAME:

* ``psf_NAME_center.npy``  the central 64x64 block, rows/cols 2016..2079 (peak at [32, 32]);
* ``psf_NAME_samples.npy`` an (K, 3) float64 array of (row, col, value), 0-based indices into the
  4096x4096 array: (a) the 3x3 block around the nearest pixel of every spike centre
  2048 + m*d*(sin, cos)(angle) for each entrance arm (d = spacing_e) and each focal-plane arm
  (d = spacing_fp, +-45 deg), m over the fixture's orders; (b) 1-px-wide lines along each entrance
  and focal-plane arm direction (nearest pixel to 2048 + t*(sin, cos), t = -R..R, R = max|m|*d + 15,
  capped at 2047); (c) 2000 pixels drawn (seed 7) among those above 1e-10 of the peak;
* ``psf_NAME_stats.npy``   [sum, max, argmax row, argmax col].

``psf_NAME_orders.npy`` holds the diffraction orders used (int32) and ``psf_NAME_meta.npy``
[channel, preflight (0/1)].

Deconvolution (``deconv_*``): a seeded 512x512 test image (smooth limb-darkened disk, blobs,
point-like sources, Gaussian noise, a few negative "bad" pixels), rounded to float32 and stored as
<f4 (aiapy gets exactly these values as float64); a 512x512 PSF made from the central 512x512 crop
of aiapy's 171 A PSF at orders -3..3: values below 1e-12 of the peak set to 0 (they are FFT
round-off), renormalised to sum 1 and rounded to float32 (peak at [256, 256]); only its central
160x160 block (rows/cols 176..335) is stored (``deconv_psf160.npy``, float64) -- everything outside
is exactly 0, so the test rebuilds the 512x512 PSF by zero padding. aiapy's ``deconvolve`` output
is stored as float32 for the default (25 iterations, clip_negative=True; ``deconv_out_it25_clip``)
and for iterations=5, clip_negative=False (``deconv_out_it5_noclip``).
"""

import argparse
import pathlib
import time

import astropy.units as u
import numpy as np

import aiapy
from aiapy.psf import deconvolve, filter_mesh_parameters, psf

OUT = pathlib.Path(__file__).resolve().parent / "fixtures"
N = 4096
C = N // 2


def arm_angles(channel, preflight):
    info = filter_mesh_parameters(use_preflightcore=preflight)[channel * u.angstrom]
    ent = info["angle_arm"].to_value(u.deg)
    return info, list(ent), [45.0, -45.0]


def nearest(v):
    return int(np.floor(v + 0.5))


def samples(p, channel, preflight, orders):
    info, ent, fp = arm_angles(channel, preflight)
    se = info["spacing_e"].value
    sfp = info["spacing_fp"].value
    mmax = int(np.max(np.abs(orders)))
    pts = set()
    for d, angles in ((se, ent), (sfp, fp)):
        for a in angles:
            ca, sa = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
            for m in orders:
                r0, c0 = nearest(C + m * d * sa), nearest(C + m * d * ca)
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        pts.add((r0 + dr, c0 + dc))
            big_r = min(int(mmax * d) + 15, C - 1)
            for t in range(-big_r, big_r + 1):
                pts.add((nearest(C + t * sa), nearest(C + t * ca)))
    rng = np.random.default_rng(7)
    rows, cols = np.nonzero(p > 1e-10 * p.max())
    pick = rng.choice(len(rows), size=min(2000, len(rows)), replace=False)
    for i in pick:
        pts.add((int(rows[i]), int(cols[i])))
    pts = sorted((r, c) for r, c in pts if 0 <= r < N and 0 <= c < N)
    out = np.array([(r, c, p[r, c]) for r, c in pts], dtype=np.float64)
    return out


def psf_fixture(name, channel, orders, preflight=False):
    t0 = time.time()
    p = psf(
        channel * u.angstrom,
        use_preflightcore=preflight,
        diffraction_orders=np.asarray(orders),
        use_gpu=False,
    )
    dt = time.time() - t0
    assert p.shape == (N, N) and p.dtype == np.float64
    np.save(OUT / f"psf_{name}_center.npy", np.ascontiguousarray(p[C - 32 : C + 32, C - 32 : C + 32]))
    np.save(OUT / f"psf_{name}_samples.npy", samples(p, channel, preflight, orders))
    am = np.unravel_index(np.argmax(p), p.shape)
    np.save(OUT / f"psf_{name}_stats.npy", np.array([p.sum(), p.max(), am[0], am[1]], dtype=np.float64))
    np.save(OUT / f"psf_{name}_orders.npy", np.asarray(orders, dtype=np.int32))
    np.save(OUT / f"psf_{name}_meta.npy", np.array([channel, int(preflight)], dtype=np.int32))
    print(f"psf_{name}: {dt:.1f} s, peak {p.max():.12e} at {am}, sum {p.sum():.15f}", flush=True)
    return p


def test_image(n=512, seed=20240611):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    cx, cy, r = 0.5 * n - 3.3, 0.5 * n + 5.1, 0.38 * n
    rr = np.hypot(xx - cx, yy - cy) / r
    mu = np.sqrt(np.clip(1.0 - rr**2, 0.0, None))
    disk = np.where(rr < 1.0, 800.0 * (0.4 + 0.6 * mu), 0.0)
    corona = 60.0 * np.exp(-np.clip(rr - 1.0, 0.0, None) * 6.0)
    img = disk + corona + 20.0
    # A few broad active-region blobs.
    for _ in range(6):
        x0, y0 = rng.uniform(0.25 * n, 0.75 * n, size=2)
        s = rng.uniform(4.0, 12.0)
        img += rng.uniform(300, 1500) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s * s))
    # Point-like features (single pixels and 2x2 groups).
    for _ in range(40):
        i, j = rng.integers(8, n - 8, size=2)
        img[i, j] += rng.uniform(500, 5000)
        if rng.random() < 0.3:
            img[i : i + 2, j : j + 2] += rng.uniform(200, 1000)
    img += rng.normal(0.0, 4.0, size=img.shape)
    # A few negative "bad" pixels.
    for _ in range(25):
        i, j = rng.integers(0, n, size=2)
        img[i, j] = -rng.uniform(1.0, 30.0)
    return img


def deconv_fixtures(p171):
    import sunpy.map

    n = 512
    crop = p171[C - n // 2 : C + n // 2, C - n // 2 : C + n // 2].copy()
    crop[crop < 1e-12 * crop.max()] = 0.0
    crop /= crop.sum()
    crop = crop.astype(np.float32).astype(np.float64)
    assert np.unravel_index(np.argmax(crop), crop.shape) == (n // 2, n // 2)
    k = 80
    nz = np.nonzero(crop)
    assert nz[0].min() >= n // 2 - k and nz[0].max() < n // 2 + k, (nz[0].min(), nz[0].max())
    assert nz[1].min() >= n // 2 - k and nz[1].max() < n // 2 + k, (nz[1].min(), nz[1].max())
    img = test_image(n).astype(np.float32)
    header = {
        "telescop": "SDO/AIA",
        "instrume": "AIA_3",
        "detector": "AIA",
        "wavelnth": 171,
        "waveunit": "angstrom",
        "naxis": 2,
        "naxis1": n,
        "naxis2": n,
        "ctype1": "HPLN-TAN",
        "ctype2": "HPLT-TAN",
        "cunit1": "arcsec",
        "cunit2": "arcsec",
        "cdelt1": 4.8,
        "cdelt2": 4.8,
        "crpix1": (n + 1) / 2,
        "crpix2": (n + 1) / 2,
        "crval1": 0.0,
        "crval2": 0.0,
        "crota2": 0.0,
        "rsun_obs": 960.0,
        "dsun_obs": 1.496e11,
        "hgln_obs": 0.0,
        "hglt_obs": 0.0,
        "date-obs": "2020-01-01T00:00:00.000",
    }
    m = sunpy.map.Map(img.astype(np.float64), header)
    np.save(OUT / "deconv_input.npy", img)
    np.save(OUT / "deconv_psf160.npy", np.ascontiguousarray(crop[n // 2 - k : n // 2 + k, n // 2 - k : n // 2 + k]))
    t0 = time.time()
    out = deconvolve(m, psf=crop, use_gpu=False)
    print(f"deconvolve 512^2, 25 it: {time.time() - t0:.2f} s", flush=True)
    np.save(OUT / "deconv_out_it25_clip.npy", np.asarray(out.data, dtype=np.float32))
    out5 = deconvolve(m, psf=crop, iterations=5, clip_negative=False, use_gpu=False)
    np.save(OUT / "deconv_out_it5_noclip.npy", np.asarray(out5.data, dtype=np.float32))
    print("deconv fixtures written", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="171 A at the default orders -100..100 only")
    ap.add_argument("--deconv", action="store_true", help="deconvolution fixtures only")
    args = ap.parse_args()
    assert aiapy.__version__.startswith("0.10.2"), aiapy.__version__
    OUT.mkdir(parents=True, exist_ok=True)
    if args.full:
        psf_fixture("171_full", 171, list(range(-100, 101)))
        return
    o3 = list(range(-3, 4))
    if args.deconv:
        deconv_fixtures(psf_fixture("171_o3", 171, o3))
        return
    p171 = None
    for ch in (94, 131, 171, 193, 211, 304, 335):
        p = psf_fixture(f"{ch}_o3", ch, o3)
        if ch == 171:
            p171 = p
    deconv_fixtures(p171)
    del p171
    psf_fixture("171_o3_pre", 171, o3, preflight=True)
    psf_fixture("94_o3_pre", 94, o3, preflight=True)
    # One-sided (asymmetric) orders: the composite's point reflection becomes visible.
    psf_fixture("171_asym", 171, [-2, 1, 2, 3, 5])


if __name__ == "__main__":
    main()
