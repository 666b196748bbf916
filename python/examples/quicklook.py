# %% [markdown]
# # aiaprep: level 1 → 1.5 and a quicklook
#
# One AIA image through `aiaprep.prep` (aiapy's `update_pointing` + `register` in one
# call), then its quicklook. With no input it uses the embedded synthetic level-1 image
# (`aiaprep.demo_map`), so it needs no files.
#
# As a script (from the repository root):
#
#     python python/examples/quicklook.py                      # synthetic 1024² image
#     python python/examples/quicklook.py aia.lev1.171A.fits   # a level-1 file
#     python python/examples/quicklook.py FILE --pointing-table mpt.csv --out /tmp/ql
#
# The PNGs go to `--out` (default: a new temporary directory). As a notebook: open this
# file in VS Code or Jupyter with Jupytext (the cells are separated by `# %%`); the
# quicklook is then shown inline.

# %%
import argparse
import sys
import tempfile
import time
from pathlib import Path

import aiaprep

IN_NOTEBOOK = "ipykernel" in sys.modules

if IN_NOTEBOOK:
    # Edit these in a notebook: a level-1 FITS path (None = the synthetic image) and a
    # pointing table (None = the file's own pointing).
    args = argparse.Namespace(input=None, pointing_table=None, out=None)
else:
    parser = argparse.ArgumentParser(description="Level 1 -> 1.5 of one AIA image and its quicklook.")
    parser.add_argument("input", nargs="?", help="a level-1 FITS file (default: the synthetic demo image)")
    parser.add_argument("--pointing-table", help="CSV export of aia.master_pointing3h (default: the file's pointing)")
    parser.add_argument("--out", help="directory for the PNGs (default: a new temporary directory)")
    args = parser.parse_args()

# Files are written only as a script (a notebook shows the images inline).
out_dir = None
if not IN_NOTEBOOK:
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aiaprep-quicklook-"))
    out_dir.mkdir(parents=True, exist_ok=True)

print("aiaprep", aiaprep.__version__)
print(aiaprep.describe_backend())  # what backend="auto" picks here, and why

# %% [markdown]
# ## The level-1 image

# %%
if args.input is None:
    m = aiaprep.demo_map(1024)  # synthetic level-1 frame, binned to 1024² (2.4″ pixels)
else:
    m = aiaprep.read(args.input)  # as `prep` reads it; sunpy.map.Map(path) works too


def show(label, smap):
    h = smap.meta
    print(
        f"{label}: {smap.data.shape[1]}×{smap.data.shape[0]} {smap.data.dtype}, "
        f"{smap.wavelength}, LVL_NUM={h.get('lvl_num')}, "
        f"CRPIX=({h.get('crpix1'):.2f}, {h.get('crpix2'):.2f}), "
        f"CDELT={h.get('cdelt1'):.4f}″, CROTA2={h.get('crota2', 0.0):.4f}°"
    )


show("level 1  ", m)

# %% [markdown]
# ## Level 1.5
#
# The first call also sets up the backend (on a GPU: compiles the kernels and plans the
# FFTs); later calls reuse it.

# %%
for run in ("first call", "second call"):
    t0 = time.perf_counter()
    m15 = aiaprep.prep(m, pointing_table=args.pointing_table)
    print(f"prep ({run}): {1e3 * (time.perf_counter() - t0):.1f} ms")

show("level 1.5", m15)

# %% [markdown]
# ## Quicklook
#
# Log-scaled greyscale PNG, solar north up, as `prep --quicklook` writes it. In a
# notebook the last expression of a cell is shown inline.

# %%
ql = aiaprep.quicklook(m15)
if not IN_NOTEBOOK:
    path = out_dir / "quicklook.png"
    ql.save(path)
    print(f"quicklook: {path} ({len(ql.png)} bytes)")
ql

# %% [markdown]
# ## With matplotlib (optional)
#
# The result is an ordinary sunpy map: sunpy's plotting, WCS axes and limb work on it.

# %%
try:
    import matplotlib

    if not IN_NOTEBOOK:
        matplotlib.use("Agg")  # no window as a script: the figure goes to a file
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
    print("matplotlib is not installed: skipping the plot")

if plt is not None:
    fig = plt.figure(figsize=(6, 6))
    ax = fig.add_subplot(projection=m15)
    m15.plot(axes=ax)
    m15.draw_limb(axes=ax)
    ax.set_title(f"AIA {m15.wavelength.value:.0f} Å level 1.5 (aiaprep)")
    if IN_NOTEBOOK:
        plt.show()
    else:
        path = out_dir / "quicklook_matplotlib.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"matplotlib: {path}")
