#!/usr/bin/env bash
# The Python package (python/): install it the way a user does — `pip install ./python`
# into a fresh venv (git-ignored .pyvenv) with the test requirements
# (python/requirements-test.txt: aiapy, sunpy, dask.distributed, pytest) — and run its
# tests: every verb against aiapy on the same map, prep against the files prep writes, no
# copy on the way in, the GIL released, errors, a dask LocalCluster; then the CUDA tests on
# the software CUDA device (AIAPREP_REQUIRE_CUDA_TESTS=1: they must run, not skip).
#
# Usage: bash scripts/python-tests.sh [PYTEST ARGS...]    (called by .ci/run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.pyvenv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r python/requirements-test.txt
echo "python-tests: pip install ./python (release build of the extension)"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
# Run from outside the checkout so that `import aiaprep` is the installed package.
cd python/tests
"../../$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@" .
echo "python-tests: the CUDA path on the software CUDA device"
AIAPREP_CUDA_LIB_DIR="$(bash ../../scripts/softcuda.sh dir h200)" AIAPREP_REQUIRE_CUDA_TESTS=1 \
    "../../$VENV/bin/python" -m pytest -q -p no:cacheprovider test_cuda.py
