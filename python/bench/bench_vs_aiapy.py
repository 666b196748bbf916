#!/usr/bin/env python3
"""aiapy vs the aiaprep Python package, in one Python process, on the same 4096² sunpy map.

    python python/bench/bench_vs_aiapy.py [--size 4096] [--repeat 5] [--aiapy-repeat 1]
                                          [--iterations 25] [--skip-deconvolve]

Needs aiapy and the installed aiaprep package (e.g. the venv scripts/python-tests.sh makes:
`.pyvenv/bin/python python/bench/bench_vs_aiapy.py`).

The map: aiaprep's embedded synthetic level-1 frame (`aiaprep.demo_map`, the `prep --demo`
image: full disk, a roll, missing pixels) as a sunpy AIAMap with float32 pixels.

Timed (wall seconds; aiaprep: median of --repeat calls after one warm-up call, aiapy:
median of --aiapy-repeat calls):
  register   : aiapy.calibrate.register(m)            vs aiaprep.register(m, backend)
  deconvolve : aiapy.psf.deconvolve(m, psf=p, use_gpu=False)
                                                      vs aiaprep.deconvolve(m, psf=p, backend)
               (the same PSF array p, computed once by aiaprep.psf — equal to aiapy's to
               1e-12 — so that neither side's time includes the PSF)
  overhead   : the wall time of the aiaprep call minus its compute (the Rust time with the
               GIL released, as aiaprep._native.process reports it): header to FITS records,
               the result's header, the sunpy map.
Prints one line per comparison with the ratio, and a JSON summary at the end.
"""

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import numpy as np


def timed(f, n):
    ts, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), ts, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--aiapy-repeat", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=25)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--skip-deconvolve", action="store_true")
    a = ap.parse_args()
    warnings.simplefilter("ignore")

    import aiapy
    import aiapy.calibrate
    import aiapy.psf
    import sunpy

    import aiaprep
    from aiaprep import _maps, _native

    m = aiaprep.demo_map(a.size)
    print(f"map: {m.data.shape} {m.data.dtype}; aiaprep {aiaprep.__version__}, aiapy {aiapy.__version__}, "
          f"sunpy {sunpy.__version__}, numpy {np.__version__}; {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"aiaprep backend: {aiaprep.describe_backend(a.backend)}")
    res = {"size": a.size, "backend": aiaprep.describe_backend(a.backend), "cpus": os.cpu_count()}

    # register
    aiaprep.register(m, backend=a.backend)  # warm-up (engines, buffers)
    ours, ours_all, _ = timed(lambda: aiaprep.register(m, backend=a.backend), a.repeat)
    theirs, theirs_all, _ = timed(lambda: aiapy.calibrate.register(m), a.aiapy_repeat)
    print(f"register   : aiapy {theirs:8.3f} s   aiaprep {ours:8.4f} s   ratio {theirs / ours:7.1f}x")
    res["register"] = {"aiapy_s": theirs_all, "aiaprep_s": ours_all, "ratio": theirs / ours}

    # call overhead: the public call's wall time minus the Rust compute it contains
    inp = _maps.take(m)
    overheads, computes = [], []
    for _ in range(a.repeat):
        t = time.perf_counter()
        inp = _maps.take(m)
        data, cards, _w, info = _native.process(inp.data, inp.records, register=True, backend=a.backend)
        _maps.give(data, cards, inp.kind)
        wall = time.perf_counter() - t
        overheads.append(wall - info["seconds"])
        computes.append(info["seconds"])
    ov = statistics.median(overheads)
    print(f"overhead   : {ov * 1e3:6.2f} ms per call beyond the compute ({statistics.median(computes) * 1e3:.1f} ms); "
          f"input read in place: {info['borrowed']}")
    res["overhead_ms"] = [o * 1e3 for o in overheads]

    if not a.skip_deconvolve:
        p = aiaprep.psf(171, size=a.size, backend=a.backend)
        aiaprep.deconvolve(m, psf=p, iterations=1, backend=a.backend)  # warm-up (OTF cache)
        ours, ours_all, _ = timed(lambda: aiaprep.deconvolve(m, psf=p, iterations=a.iterations, backend=a.backend), max(1, a.repeat // 2))
        theirs, theirs_all, _ = timed(
            lambda: aiapy.psf.deconvolve(m, psf=p, iterations=a.iterations, use_gpu=False), a.aiapy_repeat
        )
        print(f"deconvolve : aiapy {theirs:8.3f} s   aiaprep {ours:8.4f} s   ratio {theirs / ours:7.1f}x  ({a.iterations} iterations)")
        res["deconvolve"] = {"aiapy_s": theirs_all, "aiaprep_s": ours_all, "ratio": theirs / ours, "iterations": a.iterations}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
