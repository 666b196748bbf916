#!/usr/bin/env bash
# Memory checks of the unsafe and foreign parts: the C ABI (host/capi.rs) as C and Fortran
# callers use it, under valgrind memcheck (no invalid access, no use of uninitialised values,
# no definite or indirect leak once every handle went through aiaprep_*_free):
#
#   - examples/c/prep.c on tests/data/aia_171_level1_128px.fits (read -> register -> write),
#     and its failure paths: a missing input, a non-FITS file, a truncated FITS file, an
#     output that cannot be created (below a regular file; CI runs as root, so permission
#     bits would not stop it) and one in a missing directory;
#   - tests/c/abi_errors.c: the error paths of every exported aiaprep_* function (NULL for
#     each pointer, undeclared enum and option values, bad sizes, bad files, missing
#     keywords, outputs that exist) with their documented statuses, and one success path;
#   - examples/fortran/prep.f90, the same runs, when there is a gfortran (FC, else what
#     scripts/fortran-toolchain.sh finds or fetches; skipped with a message otherwise);
#   - the Rust C-ABI test binary (tests/capi.rs, without the *_cuda tests).
#
#     bash scripts/memcheck.sh
#
# Builds with `cargo test --test capi --no-run` (the test profile, shared with `cargo test`).
# Without valgrind the C and Fortran programs are built with -fsanitize=address (ASan and
# LeakSanitizer; the Rust test binary is then skipped); with neither, it prints a WARNING
# and exits 0. MEMCHECK_TOOL=valgrind|asan forces a tool; MEMCHECK_KEEP=1 keeps the work
# folder (logs, programs). The GPU path is not run here (valgrind and GPU drivers do not
# mix): CUDA_VISIBLE_DEVICES=-1 makes AIAPREP_BACKEND_AUTO take the CPU.
#
# Possibly lost / still reachable blocks (rayon's pool threads, which live until exit, and
# std's thread-locals) are not errors; no suppressions file is needed. Exits 1 when a check
# fails, printing the tool's report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

say() { echo "memcheck: $*"; }
die() {
    echo "memcheck: error: $*" >&2
    exit 1
}
start=$SECONDS

# ---- the tool ----
tool="${MEMCHECK_TOOL:-}"
if [ -z "$tool" ]; then
    if command -v valgrind >/dev/null 2>&1; then
        tool=valgrind
    else
        say "valgrind not found: trying AddressSanitizer/LeakSanitizer on the C and Fortran programs"
        tool=asan
    fi
fi
case "$tool" in valgrind | asan) ;; *) die "MEMCHECK_TOOL=$tool: not valgrind or asan" ;; esac
CC="${CC:-cc}"
command -v "$CC" >/dev/null 2>&1 || die "no C compiler ($CC)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/aiaprep-memcheck.XXXXXX")"
if [ "${MEMCHECK_KEEP:-0}" = 1 ]; then
    trap 'say "work folder kept: $WORK"' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi

SANITIZE=()
if [ "$tool" = asan ]; then
    SANITIZE=(-fsanitize=address -fno-omit-frame-pointer)
    if ! echo 'int main(void){return 0;}' >"$WORK/probe.c" ||
        ! "$CC" "${SANITIZE[@]}" "$WORK/probe.c" -o "$WORK/probe" 2>/dev/null ||
        ! "$WORK/probe"; then
        echo "WARNING: memcheck: neither valgrind nor a working -fsanitize=address: the C ABI is NOT memory-checked"
        exit 0
    fi
fi

# ---- build: the library (cdylib) and the C-ABI test binary, in the test profile ----
say "cargo test --test capi --no-run (test profile)"
cargo test --test capi --no-run --message-format=json-render-diagnostics >"$WORK/cargo.json"
# The cdylib of this build (target/<profile>/deps/libaiaprep.so) and the test executable.
so="$(grep -o '"[^"]*/libaiaprep\.so"' "$WORK/cargo.json" | tail -n1 | tr -d '"')"
capi_test="$(grep '"name":"capi"' "$WORK/cargo.json" | grep -o '"executable":"[^"]*"' |
    tail -n1 | sed 's/^"executable":"//; s/"$//')"
[ -n "$so" ] && [ -f "$so" ] || die "no libaiaprep.so in cargo's output"
[ -n "$capi_test" ] && [ -x "$capi_test" ] || die "no capi test executable in cargo's output"
# A private copy: other builds in the same target folder (other features) replace deps/'s.
mkdir -p "$WORK/lib"
cp "$so" "$WORK/lib/libaiaprep.so"
LINK=(-L"$WORK/lib" -laiaprep -Wl,-rpath,"$WORK/lib")

# ---- the programs (debug info for the reports) ----
"$CC" -std=c99 -g -O1 -Wall -Wextra -Werror "${SANITIZE[@]}" examples/c/prep.c -I include \
    "${LINK[@]}" -o "$WORK/prep_c" || die "$CC failed on examples/c/prep.c"
"$CC" -std=c99 -g -O1 -Wall -Wextra -Werror "${SANITIZE[@]}" tests/c/abi_errors.c -I include \
    "${LINK[@]}" -lm -o "$WORK/abi_errors" || die "$CC failed on tests/c/abi_errors.c"

FC_USED=""
if [ -n "${FC:-}" ]; then
    FC_USED="$FC"
elif FC_USED="$(bash scripts/fortran-toolchain.sh 2>"$WORK/fortran-toolchain.log")"; then
    :
else
    FC_USED=""
    say "SKIP the Fortran example: no gfortran (FC unset; scripts/fortran-toolchain.sh said:)"
    sed 's/^/    /' "$WORK/fortran-toolchain.log"
fi
if [ -n "$FC_USED" ]; then
    mkdir -p "$WORK/fmod"
    "$FC_USED" -std=f2018 -g -Wall -Wextra -Werror -fimplicit-none "${SANITIZE[@]}" \
        -J "$WORK/fmod" examples/fortran/prep.f90 "${LINK[@]}" -o "$WORK/prep_f" ||
        die "$FC_USED failed on examples/fortran/prep.f90"
fi

# ---- inputs for the failure paths ----
INPUT="$ROOT/tests/data/aia_171_level1_128px.fits"
mkdir -p "$WORK/files"
printf 'this is not a FITS file\n' >"$WORK/files/not_fits.fits"
size=$(wc -c <"$INPUT")
head -c $((size / 3)) "$INPUT" >"$WORK/files/truncated.fits"

export CUDA_VISIBLE_DEVICES=-1
unset AIAPREP_CUDA_LIB_DIR

VALGRIND=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --track-origins=yes --num-callers=40
    --error-exitcode=99)
failed=0
ran=0

# run NAME WANT_RC WANT_STDERR CMD...: CMD under the tool; it must exit WANT_RC, have
# WANT_STDERR (a fixed string, may be empty) in its stderr, and the tool must report nothing.
run() {
    local name="$1" want_rc="$2" want_err="$3"
    shift 3
    local log="$WORK/$name.tool.log" out="$WORK/$name.stdout" err="$WORK/$name.stderr"
    local t0=$SECONDS rc=0 summary
    ran=$((ran + 1))
    mkdir -p "$(dirname "$log")"
    if [ "$tool" = valgrind ]; then
        "${VALGRIND[@]}" --log-file="$log" "$@" >"$out" 2>"$err" || rc=$?
        summary="$({ grep -hoE 'ERROR SUMMARY: [0-9,]+ errors|(definitely|indirectly) lost: [0-9,]+ bytes' "$log" || true; } |
            sed 's/ERROR SUMMARY: //' | paste -sd';' - | sed 's/;/; /g')"
        if grep -q 'All heap blocks were freed' "$log"; then summary="$summary; all heap blocks freed"; fi
    else
        ASAN_OPTIONS="detect_leaks=1:exitcode=99:log_path=$log" "$@" >"$out" 2>"$err" || rc=$?
        summary="ASan/LSan: $(cat "$log".* 2>/dev/null | grep -c 'ERROR: ' || true) reports"
    fi
    local ok=1 why=""
    if [ "$rc" = 99 ]; then
        ok=0 why="$tool found errors"
    elif [ "$rc" != "$want_rc" ]; then
        ok=0 why="exit status $rc, expected $want_rc"
    elif [ -n "$want_err" ] && ! grep -qF -- "$want_err" "$err"; then
        ok=0 why="stderr lacks '$want_err'"
    fi
    if [ "$ok" = 1 ]; then
        printf 'memcheck: ok   %-32s %3ds  %s\n' "$name" $((SECONDS - t0)) "$summary"
    else
        failed=$((failed + 1))
        printf 'memcheck: FAIL %-32s %3ds  %s (%s)\n' "$name" $((SECONDS - t0)) "$why" "$summary"
        echo "---- stdout"
        tail -n 40 "$out"
        echo "---- stderr"
        tail -n 40 "$err"
        echo "---- $tool"
        cat "$log" "$log".* 2>/dev/null | grep -v '^==[0-9]*== *$' | head -n 200
        echo "----"
    fi
}

# prep_c / prep_f: the success path and the failure paths.
prep_cases() {
    local tag="$1" exe="$2"
    run "$tag/success" 0 "" "$exe" "$INPUT" "$WORK/files/${tag}_out.fits"
    [ -s "$WORK/files/${tag}_out.fits" ] || {
        failed=$((failed + 1))
        say "FAIL $tag/success: no output file"
    }
    run "$tag/missing-input" 1 "missing.fits" "$exe" "$WORK/files/missing.fits" "$WORK/files/x.fits"
    run "$tag/not-fits" 1 "prep: read:" "$exe" "$WORK/files/not_fits.fits" "$WORK/files/x.fits"
    run "$tag/truncated-fits" 1 "prep: read:" "$exe" "$WORK/files/truncated.fits" "$WORK/files/x.fits"
    run "$tag/unwritable-output" 1 "prep: write:" "$exe" "$INPUT" "$WORK/files/not_fits.fits/out.fits"
    run "$tag/missing-output-dir" 1 "prep: write:" "$exe" "$INPUT" "$WORK/files/no/such/out.fits"
}

prep_cases c-prep "$WORK/prep_c"
mkdir -p "$WORK/abi"
run c-abi-errors 0 "" "$WORK/abi_errors" "$ROOT/tests/data" "$WORK/abi"
if ! grep -q ' checks, 0 failed' "$WORK/c-abi-errors.stdout"; then
    failed=$((failed + 1))
    say "FAIL c-abi-errors: no '0 failed' summary"
fi
if [ -n "$FC_USED" ]; then
    prep_cases fortran-prep "$WORK/prep_f"
fi
if [ "$tool" = valgrind ]; then
    run rust-capi-tests 0 "" "$capi_test" --skip _cuda --test-threads=1
else
    say "SKIP the Rust C-ABI test binary (not instrumented for ASan; valgrind runs it)"
fi

say "$ran runs under $tool, $failed failed, $((SECONDS - start)) s in all"
[ "$failed" = 0 ] || exit 1
