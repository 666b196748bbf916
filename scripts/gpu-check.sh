#!/usr/bin/env bash
# GPU check in two halves.
#
#   bash scripts/gpu-check.sh          (here, no GPU needed) build the GPU test and timing
#                                      binaries (release; the CUDA path is on by default) and copy them to
#                                      the git-ignored gpu-bundle/
#   bash scripts/gpu-check.sh run      (on the GPU machine, from the repository root, with
#                                      gpu-bundle/ carried over; no Rust needed there) run
#                                      them and write a report to $OUT (default ./gpu-out):
#       nvidia-smi.txt   the device
#       nvrtc.txt        every kernel compiled by the machine's NVRTC (sm_70/80/90)
#       parity.txt       tests/gpu_parity.rs on the real GPU (AIAPREP_TEST_DEVICE=real):
#                        every *_cuda test compares the GPU (GpuEngine, gpu::*) with the
#                        crate's CPU path on the same input (register, deconvolve, PSF, full
#                        disk, int16, whole prep runs through select_engines(cuda) and the
#                        mixed flow); the *_cpu twins check the CPU path against naive oracles
#       device.txt       tests/gpu_device.rs: cuFFT layouts against numpy.fft, what open
#                        chose, the memory pool's bound (its fault tests need the software
#                        device and say SKIP here)
#       unit.txt         the library's unit tests (CUDA path included)
#       timings.txt/json GpuEngine::process (what prep runs), 4096², after warm-up: CUDA-
#                        event time of every stage (upload, RL, register, int16 + stats,
#                        download), first-use PSF + OTF, and the Engine methods' wall times
#       batch-*.txt/json `prep --compress rice --jobs $(nproc)` over GPU_CHECK_FILES synthetic 4096²
#                        RICE files with --backend cuda (register only, then with --deconvolve), and
#                        --backend cpu for the ratio: images/s and the per-stage
#                        occupancy line (decode / compute / encode / device streams)
#       ceiling.txt      the same files through examples/batch_ceiling (a stand-in engine
#                        that sleeps 3 ms per image on 2 lanes): the decode/encode
#                        ceiling of this machine's cores, to compare the cuda batch with
#       report.md        summary with pass/fail per step
#
# Rehearsal without a GPU (every step on the software device, figures labelled EMULATED):
#   AIAPREP_CUDA_LIB_DIR=$(bash scripts/softcuda.sh dir) GPU_CHECK_FILES=4 bash scripts/gpu-check.sh run
#
# Libraries on the GPU machine are found by dlopen: LD_LIBRARY_PATH, ldconfig, rpath; the
# script adds /usr/local/cuda/lib64 (and targets/*/lib) when present. Environment knobs:
# GPU_CHECK_REPS (timing repetitions, default 5), GPU_CHECK_SIZE (default 4096),
# GPU_CHECK_FILES (batch inputs, default 96: about 2 s of cuda batch at the expected rate),
# AIAPREP_GPU_INDEX (device, default 0).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUNDLE=gpu-bundle

build() {
    set -e
    mkdir -p "$BUNDLE"
    local json
    json=$(mktemp)
    cargo test --release --no-run --message-format=json \
        --lib --test gpu_parity --test gpu_device --test kernels_nvrtc >"$json"
    cargo build --release --example gpu_timing --example prep --example synth \
        --example batch_ceiling
    python3 - "$json" "$BUNDLE" <<'PY'
import json, shutil, sys, os
src, dst = sys.argv[1], sys.argv[2]
want = {"gpu_parity": "gpu_parity", "gpu_device": "gpu_device", "kernels_nvrtc": "kernels_nvrtc", "aiaprep": "unit_tests"}
got = {}
for line in open(src):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    name = m["target"]["name"]
    if name in want and m.get("profile", {}).get("test"):
        got[want[name]] = m["executable"]
missing = set(want.values()) - set(got)
if missing:
    sys.exit(f"gpu-check: test binaries not found: {sorted(missing)}")
for new, exe in got.items():
    shutil.copy2(exe, os.path.join(dst, new))
    print(f"gpu-check: {dst}/{new} <- {exe}")
PY
    cp target/release/examples/gpu_timing "$BUNDLE/gpu_timing"
    cp target/release/examples/prep "$BUNDLE/prep"
    cp target/release/examples/synth "$BUNDLE/synth"
    cp target/release/examples/batch_ceiling "$BUNDLE/batch_ceiling"
    cp "${BASH_SOURCE[0]}" "$BUNDLE/gpu-check.sh"
    # debug info off the copies: the bundle must travel (64 MiB limit)
    if command -v strip >/dev/null; then
        strip --strip-debug "$BUNDLE"/gpu_parity "$BUNDLE"/gpu_device "$BUNDLE"/kernels_nvrtc "$BUNDLE"/unit_tests \
            "$BUNDLE"/gpu_timing "$BUNDLE"/prep "$BUNDLE"/synth "$BUNDLE"/batch_ceiling
    fi
    rm -f "$json"
    echo "gpu-check: bundle ready in $BUNDLE/ ($(du -sh "$BUNDLE" | cut -f1)); on the GPU machine: bash scripts/gpu-check.sh run"
}

run() {
    local out="${OUT:-$PWD/gpu-out}"
    mkdir -p "$out"
    # the tests use this machine's GPU (not the software device) and read fixtures from here
    export AIAPREP_TEST_DEVICE=real AIAPREP_SOURCE_DIR="$PWD"
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/*/lib; do
        [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    local report="$out/report.md" status=0
    {
        echo "# aiaprep GPU check"
        echo
        echo "date: $(date -u +%FT%TZ); host: $(hostname)"
        echo
    } >"$report"
    (nvidia-smi; nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv) \
        >"$out/nvidia-smi.txt" 2>&1 || true
    step() { # name, timeout seconds, output file, command...
        local name=$1 t=$2 file=$3
        shift 3
        local t0=$SECONDS rc
        timeout "$t" "$@" >"$file" 2>&1
        rc=$?
        local line
        line=$(grep -E "^test result:" "$file" | tail -n1)
        echo "- **$name**: exit $rc in $((SECONDS - t0)) s ${line:+— $line}" >>"$report"
        [ $rc -eq 0 ] || status=1
    }
    step "kernels compile with this machine's NVRTC" 300 "$out/nvrtc.txt" \
        "$BUNDLE/kernels_nvrtc" --nocapture --test-threads=1
    step "library unit tests" 300 "$out/unit.txt" "$BUNDLE/unit_tests" --test-threads=2
    step "GPU parity" 600 "$out/parity.txt" \
        "$BUNDLE/gpu_parity" --nocapture --test-threads=1
    step "GPU device (cuFFT layouts, open, pool)" 300 "$out/device.txt" \
        "$BUNDLE/gpu_device" --nocapture --test-threads=1
    step "timings" 600 "$out/timings.txt" "$BUNDLE/gpu_timing" \
        --size "${GPU_CHECK_SIZE:-4096}" --reps "${GPU_CHECK_REPS:-5}" \
        --device "${AIAPREP_GPU_INDEX:-0}" --json "$out/timings.json"
    # Batches: the device should wait on decode/encode, not the other way round.
    local files="${GPU_CHECK_FILES:-96}" data
    data=$(mktemp -d)
    step "synthetic inputs ($files x 4096², RICE)" 300 "$out/synth.txt" \
        "$BUNDLE/synth" --out-dir "$data/in" --count "$files"
    for mode in cuda cuda-deconvolve cpu; do
        local args=(--backend "${mode%%-*}" --compress rice --jobs "$(nproc)" --out-dir "$data/out-$mode" --report "$out/batch-$mode.json")
        [ "$mode" = cuda-deconvolve ] && args+=(--deconvolve)
        step "prep batch ($mode)" 600 "$out/batch-$mode.txt" "$BUNDLE/prep" "$data/in" "${args[@]}"
    done
    step "decode/encode ceiling (stand-in device, 3 ms per image)" 300 "$out/ceiling.txt" \
        "$BUNDLE/batch_ceiling" "$data/in" --out-dir "$data/out-ceiling" --device-ms 3 \
        --jobs "$(nproc)"
    rm -rf "$data"
    {
        echo
        echo "## device"
        echo '```'
        tail -n 3 "$out/nvidia-smi.txt"
        grep -m1 "^CUDA device" "$out/parity.txt" || true
        echo '```'
        echo "## parity"
        echo '```'
        grep -E "^(PARITY|test |stage times)" "$out/parity.txt" || true
        echo '```'
        echo "## timings (ms)"
        echo '```'
        sed -n '/^stage/,$p' "$out/timings.txt"
        grep -E "^(first PSF|memory|engine:)" "$out/timings.txt" || true
        echo '```'
        echo "## batches ($files files of 4096²)"
        echo '```'
        for mode in cuda cuda-deconvolve cpu; do
            echo "[$mode]"
            grep -E "^(backend|[0-9]+ done|mean per image|occupancy)" "$out/batch-$mode.txt" || true
        done
        echo "[ceiling: stand-in device, 3 ms per image]"
        grep -E "^(stand-in|[0-9]+ done|mean per image|occupancy)" "$out/ceiling.txt" || true
        echo '```'
    } >>"$report"
    cat "$report"
    return $status
}

case "${1:-build}" in
    build) build ;;
    run) run ;;
    *) echo "usage: $0 [build|run]" >&2; exit 2 ;;
esac
