#!/usr/bin/env python
"""numpy.fft fixtures for the cuFFT layouts (tests/gpu_fft.rs).

The GPU path's 2-D real transforms (host/gpu/fft.rs) run on cuFFT, and in CI on the tests'
software device, whose cuFFT is also ours: checking the two against each other could not
catch a layout misunderstanding they share (which axis is "nx", the half-spectrum width, the
normalisation). numpy.fft is the independent oracle.

Per shape ROWS x COLS (even and odd, square and not), seed 20261204 + k:

* ``fft_ROWSxCOLS_in.npy``    float64 input, values in [-100, 100), rounded to float32 values
                             (so the f32 and f64 transforms see the same numbers);
* ``fft_ROWSxCOLS_rfft2.npy`` complex128 numpy.fft.rfft2(input): ROWS x (COLS // 2 + 1),
                             unnormalised, as cuFFT's R2C/D2Z.

The inverse (C2R/Z2D) is checked against the input times ROWS * COLS (cuFFT does not
normalise), which is numpy.fft.irfft2 of the fixture spectrum, unnormalised.

Usage (numpy only; from the repository root):

    python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy==2.4.6
    /tmp/np/bin/python tests/parity/make_fft_fixtures.py
"""
import os

import numpy as np

SHAPES = [(8, 6), (5, 7), (6, 9), (16, 16), (33, 20)]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def main():
    for k, (rows, cols) in enumerate(SHAPES):
        rng = np.random.default_rng(20261204 + k)
        x = rng.uniform(-100.0, 100.0, size=(rows, cols)).astype(np.float32).astype(np.float64)
        spec = np.fft.rfft2(x)
        assert spec.shape == (rows, cols // 2 + 1)
        back = np.fft.irfft2(spec, s=(rows, cols)) * (rows * cols)
        assert np.allclose(back, x * rows * cols, rtol=0, atol=1e-9 * rows * cols * 100)
        np.save(os.path.join(OUT, f"fft_{rows}x{cols}_in.npy"), x)
        np.save(os.path.join(OUT, f"fft_{rows}x{cols}_rfft2.npy"), spec)
        print(f"fft_{rows}x{cols}: in {x.shape}, rfft2 {spec.shape}")


if __name__ == "__main__":
    main()
