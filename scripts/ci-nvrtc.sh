#!/usr/bin/env bash
# Compile every CUDA kernel in kernels/ with NVRTC for sm_70, sm_80 and sm_90 — no GPU
# needed. Installs NVIDIA's NVRTC wheel from PyPI into the git-ignored .venv-nvrtc (once;
# ~220 MB) and runs tests/kernels_nvrtc.rs with LD_LIBRARY_PATH pointing at it and
# AIAPREP_REQUIRE_NVRTC=1, so a missing NVRTC is a test failure, not a skip.
#
# Usage: bash scripts/ci-nvrtc.sh            (from anywhere; called by .ci/run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv-nvrtc
find_lib() { ls -d "$VENV"/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib 2>/dev/null | head -n1; }

if [ -z "$(find_lib)" ] || ! ls "$(find_lib)"/libnvrtc.so.* >/dev/null 2>&1; then
    echo "ci-nvrtc: installing nvidia-cuda-nvrtc-cu12 into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'nvidia-cuda-nvrtc-cu12>=12.4,<13'
fi
LIB="$PWD/$(find_lib)"
export LD_LIBRARY_PATH="$LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export AIAPREP_REQUIRE_NVRTC=1
echo "ci-nvrtc: NVRTC from $LIB"
cargo test --features cuda --test kernels_nvrtc -- --nocapture
