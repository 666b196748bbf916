#!/usr/bin/env python3
"""Time aiapy and aiaprep on the same synthetic 4096² RICE level-1 file, in one run.

    python3 scripts/bench_vs_aiapy.py [--size 4096] [--repeat 3] [--deconvolve] [--psf]

What is timed (median wall seconds of --repeat runs, each in a fresh process):
  aiapy sequence : sunpy Map read (+ decode) -> aiapy.calibrate.register (scipy, order 3)
                   -> int16 RICE_1 write (astropy CompImageHDU)
  aiaprep prep   : `prep IN --out-dir D --compress rice --overwrite --timings` (release build)
  --deconvolve   : aiapy.psf.deconvolve (25 iterations, PSF given) vs prep --deconvolve
                   (PSF stage excluded from the comparison: the PSF is passed to aiapy, and
                   our RL time is reported by prep's own stage timer)
  --psf          : aiapy.psf.psf(171) once (about 5 minutes) vs aiaprep's PSF bench binary
  --throughput N : N different synthetic files (default 16 when given without N): one
                   `prep DIR` batch vs one Python process looping over the same files (read +
                   register + int16 RICE write); images/s of each, the ratio, peak RSS;
                   then the same files through examples/batch_ceiling (compute replaced by
                   a GPU-fast stand-in): the decode/encode ceiling of this machine
Peak memory (max RSS) of each process is read with /usr/bin/time -v.

The reference stack is installed from tests/parity/requirements.txt into .venv (created on
first use). The aiaprep binaries are built with `cargo build --release`.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"

AIAPY_SEQ = r"""
import sys, time, json, warnings
warnings.simplefilter("ignore")
import numpy as np
from astropy.io import fits
import astropy.units as u
import sunpy.map
import aiapy.calibrate
path, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
t = {}
t0 = time.perf_counter()
m = sunpy.map.Map(path)
_ = m.data.sum()
t["read"] = time.perf_counter() - t0
if mode == "deconvolve":
    import aiapy.psf
    psf = np.load(sys.argv[4])
    t0 = time.perf_counter()
    m = aiapy.psf.deconvolve(m, psf=psf)
    t["deconvolve"] = time.perf_counter() - t0
t0 = time.perf_counter()
r = aiapy.calibrate.register(m)
t["register"] = time.perf_counter() - t0
t0 = time.perf_counter()
d = np.asarray(r.data, dtype=np.float64)
blank = ~np.isfinite(d)
d = np.clip(np.round(np.where(blank, 0, d)), -32767, 32767).astype(np.int16)
d[blank] = -32768
hdr = r.fits_header
hdu = fits.CompImageHDU(d, hdr, compression_type="RICE_1")
hdu.writeto(out, overwrite=True)
t["write"] = time.perf_counter() - t0
print("AIAPY_TIMES " + json.dumps(t))
"""

AIAPY_LOOP = r"""
import sys, time, warnings, glob
warnings.simplefilter("ignore")
import numpy as np
from astropy.io import fits
import sunpy.map
import aiapy.calibrate
files, out = sorted(glob.glob(sys.argv[1] + "/*.fits")), sys.argv[2]
t0 = time.perf_counter()
for k, path in enumerate(files):
    r = aiapy.calibrate.register(sunpy.map.Map(path))
    d = np.asarray(r.data, dtype=np.float64)
    blank = ~np.isfinite(d)
    d = np.clip(np.round(np.where(blank, 0, d)), -32767, 32767).astype(np.int16)
    d[blank] = -32768
    fits.CompImageHDU(d, r.fits_header, compression_type="RICE_1").writeto(f"{out}/{k:04d}.fits", overwrite=True)
print(f"AIAPY_TIMES {{\"loop\": {time.perf_counter() - t0}, \"n\": {len(files)}}}")
"""

AIAPY_PSF = r"""
import time, json, warnings
warnings.simplefilter("ignore")
import numpy as np, astropy.units as u, aiapy.psf, sys
t0 = time.perf_counter()
p = aiapy.psf.psf(171 * u.angstrom)
t = time.perf_counter() - t0
np.save(sys.argv[1], p)
print("AIAPY_TIMES " + json.dumps({"psf": t}))
"""


def ensure_venv():
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "-r", str(ROOT / "tests/parity/requirements.txt")],
            check=True,
        )
    return py


def timed(cmd, env=None):
    """Run under /usr/bin/time -v; return (stdout, wall seconds, max RSS MB)."""
    r = subprocess.run(
        ["/usr/bin/time", "-v"] + [str(c) for c in cmd],
        capture_output=True,
        text=True,
        env=env,
    )
    if r.returncode != 0:
        sys.exit(f"command failed: {' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h = float(wall.group(1) or 0)
    secs = h * 3600 + float(wall.group(2)) * 60 + float(wall.group(3))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return r.stdout, secs, rss


def parse_ours(stdout):
    m = re.search(r"timings: (.*)", stdout)
    out = {}
    for part in m.group(1).split():
        k, v = part.split("=")
        out[k] = float(v.rstrip("ms")) / 1e3
    return out


def parse_aiapy(stdout):
    return json.loads(stdout.split("AIAPY_TIMES ", 1)[1].splitlines()[0])


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--deconvolve", action="store_true", help="also time 25 RL iterations")
    ap.add_argument("--psf", action="store_true", help="also time aiapy.psf.psf(171) once (~5 min)")
    ap.add_argument("--throughput", type=int, nargs="?", const=16, default=0, metavar="N",
                    help="time a batch of N files (default 16) instead of single images")
    args = ap.parse_args()

    py = ensure_venv()
    subprocess.run(
        ["cargo", "build", "--release", "--example", "prep", "--example", "synth", "--example", "psf_once", "--example", "batch_ceiling"],
        cwd=ROOT,
        check=True,
    )
    ex = ROOT / "target" / "release" / "examples"
    work = Path(tempfile.mkdtemp(prefix="aiaprep-bench-"))
    subprocess.run([ex / "synth", "--out-dir", work, "--size", str(args.size)], check=True, capture_output=True)
    inp = next(work.glob("*.fits"))
    env = dict(os.environ)
    # The reference numpy is slowed by these (see the env notes); unset for a fair timing.
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)

    if args.throughput:
        throughput(args, py, ex, work, env)
        return

    rows = []

    def compare(label, aiapy_mode, ours_flags, extra=()):
        a_runs, o_runs = [], []
        for _ in range(args.repeat):
            out, wall, rss = timed([py, "-c", AIAPY_SEQ, inp, work / "aiapy_out.fits", aiapy_mode, *extra], env)
            a_runs.append((parse_aiapy(out), wall, rss))
            out, wall, rss = timed(
                [ex / "prep", inp, "--out-dir", work / "ours", "--compress", "rice", "--overwrite", "--timings", *ours_flags]
            )
            o_runs.append((parse_ours(out), wall, rss))
        rows.append((label, a_runs, o_runs))

    compare("register (order 3)", "register", [])
    if args.deconvolve:
        psf_npy, psf_fits = work / "psf171.npy", work / "psf171.fits"
        subprocess.run(
            [ex / "psf_once", "--channel", "171", "--size", str(args.size), "--npy", psf_npy, "--fits", psf_fits],
            check=True,
        )
        compare("deconvolve 25 it + register", "deconvolve", ["--deconvolve", "--psf", psf_fits], [psf_npy])

    print(f"\nmachine: {os.cpu_count()} cores; input {inp.name} ({args.size}², int16 RICE_1); median of {args.repeat}")
    for label, a_runs, o_runs in rows:
        print(f"\n== {label}")
        stages = sorted({k for r in a_runs for k in r[0]} | {k for r in o_runs for k in r[0]})
        print(f"{'stage':<12}{'aiapy s':>10}{'aiaprep s':>12}{'ratio':>8}")
        for s in stages:
            a = [r[0][s] for r in a_runs if s in r[0]]
            o = [r[0][s] for r in o_runs if s in r[0]]
            a_s = f"{med(a):10.3f}" if a else f"{'-':>10}"
            o_s = f"{med(o):12.3f}" if o else f"{'-':>12}"
            ratio = f"{med(a) / med(o):7.1f}x" if a and o and med(o) > 0 else ""
            print(f"{s:<12}{a_s}{o_s}{ratio:>8}")
        a_tot = med([sum(r[0].values()) for r in a_runs])
        o_tot = med([sum(r[0].values()) for r in o_runs])
        print(f"{'sum':<12}{a_tot:10.3f}{o_tot:12.3f}{a_tot / o_tot:7.1f}x")
        a_wall, o_wall = med([r[1] for r in a_runs]), med([r[1] for r in o_runs])
        print(f"{'process':<12}{a_wall:10.3f}{o_wall:12.3f}{a_wall / o_wall:7.1f}x   (wall, incl. start-up/imports)")
        print(f"{'peak RSS MB':<12}{med([r[2] for r in a_runs]):10.0f}{med([r[2] for r in o_runs]):12.0f}")

    if args.psf:
        out, wall, rss = timed([py, "-c", AIAPY_PSF, work / "aiapy_psf.npy"], env)
        a = parse_aiapy(out)["psf"]
        out2, _, rss2 = timed([ex / "psf_once", "--channel", "171", "--size", "4096"])
        o = float(re.search(r"psf_seconds=([\d.]+)", out2).group(1))
        print(f"\n== psf(171), 4096², orders -100..100\naiapy {a:.1f} s, aiaprep {o:.3f} s, ratio {a / o:.0f}x; peak RSS {rss:.0f} / {rss2:.0f} MB")


def throughput(args, py, ex, work, env):
    n = args.throughput
    files = work / "batch"
    subprocess.run(
        [ex / "synth", "--out-dir", files, "--size", str(args.size), "--count", str(n), "--seed", "7000"],
        check=True,
        capture_output=True,
    )
    out_a, out_o = work / "batch_aiapy", work / "batch_ours"
    out_a.mkdir()
    stdout, a_wall, a_rss = timed([py, "-c", AIAPY_LOOP, files, out_a], env)
    a_loop = parse_aiapy(stdout)["loop"]
    stdout, o_wall, o_rss = timed(
        [ex / "prep", files, "--out-dir", out_o, "--compress", "rice", "--overwrite", "--report", work / "report.json"]
    )
    rep = json.loads((work / "report.json").read_text())["summary"]
    assert rep["done"] == n, rep
    for line in stdout.strip().splitlines()[-3:]:
        print(line)
    a_ips, o_ips = n / a_loop, rep["images_per_s"]
    print(f"\n== throughput: {n} files {args.size}² int16 RICE_1, {os.cpu_count()} cores")
    print(f"{'':<14}{'aiapy':>10}{'aiaprep':>10}")
    print(f"{'images/s':<14}{a_ips:10.3f}{o_ips:10.3f}   ratio {o_ips / a_ips:.1f}x")
    print(f"{'wall s':<14}{a_wall:10.1f}{o_wall:10.1f}   (process, incl. start-up)")
    print(f"{'peak RSS MB':<14}{a_rss:10.0f}{o_rss:10.0f}")
    occ = ", ".join(
        f"{k} {v['occupancy'] * 100:.0f}% of {v['workers']}" for k, v in rep.get("stages", {}).items()
    )
    print(f"{'occupancy':<14}{occ}; limited by {rep.get('bottleneck', '?')}")
    stdout, c_wall, c_rss = timed([ex / "batch_ceiling", files, "--out-dir", work / "batch_ceiling"])
    lines = stdout.strip().splitlines()
    ips = re.search(r"\(([0-9.]+) images/s\)", stdout)
    print(f"\n== decode/encode ceiling (batch_ceiling: compute = stand-in device, 3 ms per image)")
    print(f"{'images/s':<14}{float(ips.group(1)) if ips else float('nan'):20.3f}   peak RSS {c_rss:.0f} MB")
    print(f"{'occupancy':<14}{lines[-1].removeprefix('occupancy: ')}")


if __name__ == "__main__":
    main()
