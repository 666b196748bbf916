#!/usr/bin/env bash
# The software CUDA device (softcuda/): a test-only stand-in for NVIDIA's libcuda, NVRTC and
# cuFFT that runs aiaprep's real GPU host path on the CPU. It proves plumbing, not speed.
#
#   bash scripts/softcuda.sh build            build it (cargo + cc; nothing downloaded but
#                                             crates) under target/softcuda/
#   bash scripts/softcuda.sh dir [PROFILE]    build, then print the device directory of PROFILE:
#                                               h200  NVIDIA H200 (sm_90), driver/NVRTC CUDA 13.0,
#                                                     cuFFT 12.0 (the default)
#                                               v100  Tesla V100 16 GB (sm_70), driver CUDA 12.2,
#                                                     NVRTC 12.9, cuFFT 11.4
#   bash scripts/softcuda.sh run [--profile P] CMD [ARGS...]
#                                             build, then run CMD on that device, e.g.
#       bash scripts/softcuda.sh run cargo run --release --example prep -- --backend cuda --demo
#
# A device directory holds libcuda.so, libnvrtc.so and libcufft.so; pointing
# AIAPREP_CUDA_LIB_DIR at it is all aiaprep needs (the run command does that). The variant
# libraries (libcuda-VERSION-MODEL.so, libnvrtc-X.Y.so, libcufft-X.Y.so) are in lib/ for
# tests that assemble other installations. Faults, chaos mode and memory size:
# softcuda/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="${SOFTCUDA_DIR:-$ROOT/target/softcuda}"
LIB="$OUT/lib"
CC_BIN="${CC:-cc}"

# shim NAME SOURCE SONAME DEFINES...: builds $LIB/NAME unless it is newer than its inputs.
shim() {
    local name=$1 src=$2 soname=$3
    shift 3
    local dst="$LIB/$name"
    if [ -f "$dst" ] && [ "$dst" -nt "$src" ] && [ "$dst" -nt "$LIB/libaiaprep_softcuda.so" ] \
        && [ "$dst" -nt "${BASH_SOURCE[0]}" ]; then
        return 0
    fi
    "$CC_BIN" -shared -fPIC -O2 -Wall "$@" -o "$dst.tmp" "$src" -Wl,-soname,"$soname" \
        -L"$LIB" -Wl,--no-as-needed -laiaprep_softcuda -Wl,-rpath,"$LIB"
    mv -f "$dst.tmp" "$dst"
}

profile() { # DIR DRIVER NVRTC CUFFT
    mkdir -p "$OUT/$1"
    ln -sfn "../lib/$2" "$OUT/$1/libcuda.so"
    ln -sfn "../lib/$3" "$OUT/$1/libnvrtc.so"
    ln -sfn "../lib/$4" "$OUT/$1/libcufft.so"
}

build() {
    local cargo="${CARGO:-cargo}"
    "$cargo" build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p aiaprep-softcuda \
        --target-dir "$OUT/build" >&2
    mkdir -p "$LIB"
    local core="$OUT/build/release/libaiaprep_softcuda.so"
    if ! cmp -s "$core" "$LIB/libaiaprep_softcuda.so"; then
        cp "$core" "$LIB/libaiaprep_softcuda.so.tmp"
        mv -f "$LIB/libaiaprep_softcuda.so.tmp" "$LIB/libaiaprep_softcuda.so"
    fi
    local s="$ROOT/softcuda/shims"
    shim libcuda-13000-h200.so "$s/cuda.c" libcuda.so -DSOFTCUDA_DRIVER_VERSION=13000 -DSOFTCUDA_MODEL='"h200"'
    shim libcuda-12020-v100.so "$s/cuda.c" libcuda.so -DSOFTCUDA_DRIVER_VERSION=12020 -DSOFTCUDA_MODEL='"v100"'
    shim libcuda-13000-v100.so "$s/cuda.c" libcuda.so -DSOFTCUDA_DRIVER_VERSION=13000 -DSOFTCUDA_MODEL='"v100"'
    shim libnvrtc-13.0.so "$s/nvrtc.c" libnvrtc.so.13 -DNVRTC_MAJOR=13 -DNVRTC_MINOR=0
    shim libnvrtc-12.9.so "$s/nvrtc.c" libnvrtc.so.12 -DNVRTC_MAJOR=12 -DNVRTC_MINOR=9
    shim libcufft-12.0.so "$s/cufft.c" libcufft.so.12 -DCUFFT_VERSION=12000
    shim libcufft-11.4.so "$s/cufft.c" libcufft.so.11 -DCUFFT_VERSION=11400
    profile h200 libcuda-13000-h200.so libnvrtc-13.0.so libcufft-12.0.so
    profile v100 libcuda-12020-v100.so libnvrtc-12.9.so libcufft-11.4.so
}

case "${1:-build}" in
    build) build ;;
    dir)
        build
        p="${2:-h200}"
        [ -d "$OUT/$p" ] || { echo "softcuda: no profile '$p' (h200, v100)" >&2; exit 2; }
        echo "$OUT/$p"
        ;;
    run)
        shift
        p=h200
        if [ "${1:-}" = "--profile" ]; then p=$2; shift 2; fi
        [ $# -gt 0 ] || { echo "usage: $0 run [--profile P] CMD [ARGS...]" >&2; exit 2; }
        build
        [ -d "$OUT/$p" ] || { echo "softcuda: no profile '$p' (h200, v100)" >&2; exit 2; }
        export AIAPREP_CUDA_LIB_DIR="$OUT/$p"
        echo "softcuda: running on the software device $AIAPREP_CUDA_LIB_DIR (emulated: no GPU timings)" >&2
        exec "$@"
        ;;
    *) echo "usage: $0 [build | dir [PROFILE] | run [--profile P] CMD...]" >&2; exit 2 ;;
esac
