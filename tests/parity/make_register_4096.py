"""Full-size (4096²) register oracles, too large to commit: run on demand,

    /work/venv/bin/python tests/parity/make_register_4096.py /tmp/reg4096
    AIAPREP_REG4096=/tmp/reg4096 cargo test --release --test register_parity -- --ignored

Two synthetic level-1 frames (the generator of make_register_fixtures.py at 4096²):
`pad` (CDELT 0.6007″, roll −0.13°: aiapy pads 2 px, output 4096²) and `unpad`
(CDELT 0.599489″, roll 0.0194°: aiapy's output is 4094², CRPIX 2047.5). Writes
NAME_in.npy (<f4), NAME_header.txt and NAME_out.npy (aiapy order 3, <f4), ~200 MB.
"""
import os
import sys
import warnings

import numpy as np
import sunpy.map
import aiapy.calibrate

warnings.simplefilter("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_register_fixtures import synthetic, header_text  # noqa: E402

out_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/reg4096"
os.makedirs(out_dir, exist_ok=True)
for name, cdelt, roll, crpix in [
    ("pad", 0.6007, -0.13, (2053.2, 2045.7)),
    ("unpad", 0.599489, 0.0194, (2050.3, 2049.1)),
]:
    d, h = synthetic(4096, roll, 7)
    h["CDELT1"] = cdelt
    h["CDELT2"] = cdelt
    h["CRPIX1"], h["CRPIX2"] = crpix
    out = aiapy.calibrate.register(sunpy.map.Map(d.astype(np.float64), h), order=3)
    np.save(os.path.join(out_dir, f"{name}_in.npy"), d)
    with open(os.path.join(out_dir, f"{name}_header.txt"), "w") as f:
        f.write(header_text(h))
    np.save(os.path.join(out_dir, f"{name}_out.npy"), out.data.astype(np.float32))
    print(name, out.data.shape, out.meta["crpix1"], out.meta["crpix2"])
