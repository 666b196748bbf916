"""prep_files: the batch pipeline from Python (report, resume, failures), and prep mapped
over a dask.distributed cluster."""

import json
import shutil

import numpy as np
import pytest

from astropy.io import fits

import aiaprep
from conftest import REAL


def inputs(tmp_path, n=3, broken=True):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(n):
        shutil.copy(REAL, d / f"aia_{i:02d}.fits")
    if broken:
        (d / "broken.fits").write_bytes(REAL.read_bytes()[:4000])
    return d


def test_prep_files_report_resume_and_failures(tmp_path, capsys):
    d = inputs(tmp_path)
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    rep = aiaprep.prep_files(d, out, compress="rice", progress=True, report=report)
    by = {r["input"].split("/")[-1]: r for r in rep}
    assert sorted(by) == ["aia_00.fits", "aia_01.fits", "aia_02.fits", "broken.fits"]
    assert [by[f"aia_{i:02d}.fits"]["status"] for i in range(3)] == ["done"] * 3
    assert by["broken.fits"]["status"] == "failed" and "broken.fits" in by["broken.fits"]["error"]
    assert rep.summary["done"] == 3 and rep.summary["failed"] == 1
    assert json.loads(report.read_text())["summary"]["done"] == 3
    # The files are the prep outputs: int16 level 1.5, the same pixels as aiaprep.prep.
    want = aiaprep.prep(REAL, dtype="int16")
    got = fits.getdata(by["aia_00.fits"]["output"], do_not_scale_image_data=True)
    np.testing.assert_array_equal(got, want.data)
    # A rerun skips the complete outputs (resume) and still reports every input once.
    rep2 = aiaprep.prep_files(d, out, progress=False)
    assert sorted(r["status"] for r in rep2) == ["failed", "skipped", "skipped", "skipped"]


dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")


def _prep_one(path):
    import aiaprep

    m = aiaprep.prep(path, backend="cpu")
    return path, np.asarray(m.data), dict(m.meta)


def test_prep_on_a_dask_local_cluster(tmp_path):
    d = inputs(tmp_path, n=4, broken=False)
    # Four different inputs: each copy gets its own roll.
    paths = []
    for i, p in enumerate(sorted(d.iterdir())):
        with fits.open(p, mode="update") as h:
            h[0].header["CROTA2"] = h[0].header["CROTA2"] + 3.0 * i
        paths.append(str(p))
    want = {p: aiaprep.prep(p, backend="cpu").data for p in paths}
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            futures = client.map(_prep_one, paths)
            results = client.gather(futures)
            workers = client.run(lambda: __import__("os").getpid())
    assert len(workers) == 2
    assert len({r[0] for r in results}) == 4
    for path, data, meta in results:
        np.testing.assert_array_equal(data, want[path])
        assert meta["lvl_num"] == 1.5


def test_ctrl_c_cancels_cleanly_and_keeps_the_report(tmp_path):
    """SIGINT during prep_files: the images in flight finish, the rest are `cancelled`, the
    report is written, KeyboardInterrupt is raised with it, and no partial output remains."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    d = tmp_path / "in"
    d.mkdir()
    m = aiaprep.demo_map(512)
    for i in range(24):
        m.save(d / f"syn_{i:02d}.fits")
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import json, signal, sys, aiaprep
        # As in a terminal: Python leaves SIGINT ignored when it starts with it ignored, as
        # it does under a shell's background job (`cmd &` without job control), CI included.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            aiaprep.prep_files({str(d)!r}, {str(out)!r}, deconvolve=True, iterations=60,
                               backend="cpu", progress=False, report={str(tmp_path / 'r.json')!r})
            print("NOT INTERRUPTED")
        except KeyboardInterrupt as e:
            print(json.dumps([r["status"] for r in e.report]))
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 120 and not (out.exists() and any(out.glob("*_lev15.fits"))):
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=120)
    last = stdout.strip().splitlines()[-1]
    assert last != "NOT INTERRUPTED", f"SIGINT did not interrupt the batch ({time.time() - t0:.1f} s)"
    statuses = json.loads(last)
    assert len(statuses) == 24
    assert statuses.count("done") >= 1 and statuses.count("cancelled") >= 1, statuses
    assert set(statuses) <= {"done", "cancelled"}
    names = [f.name for f in out.iterdir()]
    assert len([n for n in names if n.endswith("_lev15.fits")]) == statuses.count("done")
    assert not any(".tmp" in n for n in names), names
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["cancelled"] == statuses.count("cancelled")


def test_exceptions_pickle_across_processes():
    """dask sends a worker's exception to the client pickled: the class survives."""
    import pickle

    for cls in (aiaprep.InputError, aiaprep.BackendUnavailableError, aiaprep.GpuError):
        e = pickle.loads(pickle.dumps(cls("x: reason")))
        assert type(e) is cls and str(e) == "x: reason"
    assert aiaprep.InputError.__module__ == "aiaprep._native"
