#!/usr/bin/env python
"""sunpy's SDO/AIA colour maps as fixtures for the quicklook colour tables (tests/quicklook.rs).

aiaprep computes the ``sdoaia*`` colour tables from their formulas (host/quicklook/colour.rs);
sunpy's own tables, sampled at the 256 entries, are the independent oracle. Per channel CH in
94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500:

* ``cmap_sdoaiaCH.npy``  float64 (256, 3): ``sunpy.visualization.colormaps.cm.cmlist['sdoaiaCH']
                         (np.arange(256) / 255)[:, :3]`` -- the red, green and blue of the
                         colour map's lookup table, entry k at row k (alpha, always 1, dropped).

The test compares the raw floats bit for bit and the 8-bit table with round-half-to-even of
fixture x 255 (numpy's ``round``).

Reference versions: sunpy 7.0.5, matplotlib 3.11.2, numpy 2.4.6
(tests/parity/requirements.txt). From the repository root:

    /work/pyenv/bin/python tests/parity/make_colormap_fixtures.py
"""
import os

import matplotlib
import numpy as np
import sunpy
from sunpy.visualization.colormaps import cm

CHANNELS = [94, 131, 171, 193, 211, 304, 335, 1600, 1700, 4500]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def main():
    os.makedirs(OUT, exist_ok=True)
    x = np.arange(256) / 255
    for ch in CHANNELS:
        rgb = np.ascontiguousarray(cm.cmlist[f"sdoaia{ch}"](x)[:, :3], dtype=np.float64)
        assert rgb.shape == (256, 3)
        path = os.path.join(OUT, f"cmap_sdoaia{ch}.npy")
        np.save(path, rgb)
        print(f"{path}: {rgb.shape} {rgb.dtype}")
    print(f"sunpy {sunpy.__version__}, matplotlib {matplotlib.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
