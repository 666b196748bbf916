#!/usr/bin/env bash
# Run every fuzz target of fuzz/ (cargo-fuzz, libFuzzer, nightly toolchain) for SECONDS each
# (default 30) on its committed corpus (fuzz/corpus/<target>/), new inputs going to the
# git-ignored fuzz/corpus-work/<target>/. Fails on the first crash, panic, leak, timeout or
# out-of-memory; libFuzzer writes the input to fuzz/artifacts/<target>/ (turn it into a
# regression test, see RELIABILITY.md).
#
#     bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Without cargo-fuzz or a nightly toolchain it installs cargo-fuzz when it can
# (`cargo install cargo-fuzz`, from crates.io) and otherwise says so and exits 0 with
# AIAPREP_FUZZ_OPTIONAL=1 (CI's setting where no nightly toolchain exists), 1 without.
# Prints per target: executions, executions/s, coverage (libFuzzer's `cov:` edges and
# `ft:` features) and corpus size, from libFuzzer's final status line; the execution at which
# the edge count last grew; and how many edges of the crate's own code (host/, as opposed to
# the standard library's generic code instantiated for it) the run found after loading its
# corpus, and where the last one is (from `-print_pcs=1`). A target with a committed
# dictionary (fuzz/<target>.dict) runs with it. AIAPREP_FUZZ_WORKERS=N runs N fuzzing
# processes per target side by side (see below); the figures are then per process.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${1:-30}"
shift || true
all=(rice_tile rice_roundtrip rice_table header_cards time_parse pointing_csv cal_tables psf_file fits_read)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

unavailable() {
    echo "WARNING: $1: the fuzz targets are NOT run" >&2
    if [ "${AIAPREP_FUZZ_OPTIONAL:-0}" = 1 ]; then exit 0; fi
    exit 1
}
cargo +nightly --version >/dev/null 2>&1 || unavailable "no nightly Rust toolchain"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked >&2 || unavailable "cargo-fuzz could not be installed"
fi

host="$(rustc +nightly -vV | sed -n 's/^host: //p')"

# cfitsio under AddressSanitizer as well as the Rust code. fitsio-sys builds cfitsio in
# place, in its registry source directory (autotools), and bundles that libcfitsio.a into
# its rlib; cc adds -fsanitize=address when the Rust code is built with it, but `make`
# keeps the objects of an earlier plain build as up to date, so a fuzz build after a plain
# one got an uninstrumented cfitsio, whose memory errors went unseen unless they faulted
# (RELIABILITY.md, findings 18 and 19). So, once per fuzz/target: clean cfitsio's objects,
# rebuild fuzz/target's fitsio-sys (with them, instrumented), and clean them again, so that
# a later plain build compiles its own (again when the C flags change).
stamp="fuzz/target/cfitsio-asan.stamp"
cfitsio="$(cargo +nightly metadata --format-version 1 --manifest-path fuzz/Cargo.toml 2>/dev/null |
    grep -o '"manifest_path":"[^"]*/fitsio-sys-[^"]*/Cargo.toml"' | head -n 1 |
    sed 's/^"manifest_path":"//; s#/Cargo.toml"$#/ext/cfitsio#' || true)"
clean_cfitsio() { [ -f "$cfitsio/Makefile" ] && make -C "$cfitsio" clean >/dev/null 2>&1 || true; }
if [ -n "$cfitsio" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$cfitsio ${CFLAGS:-}" ]; then
    echo "fuzz: rebuilding cfitsio with AddressSanitizer ($cfitsio)"
    clean_cfitsio
    cargo +nightly clean -p fitsio-sys --manifest-path fuzz/Cargo.toml --target-dir fuzz/target \
        --release --target "$host" >/dev/null 2>&1 || true
    rebuilt=1
fi
echo "fuzz: building the targets (ASan, coverage; fuzz/target)"
cargo +nightly fuzz build >/dev/null 2>&1 || cargo +nightly fuzz build
if [ "${rebuilt:-0}" = 1 ]; then
    clean_cfitsio
    mkdir -p fuzz/target
    echo "$cfitsio ${CFLAGS:-}" >"$stamp"
fi

# Larger inputs for the file and table targets (their seeds are FITS files and tables).
max_len() {
    case "$1" in
        fits_read | psf_file) echo 65536 ;;
        cal_tables) echo 32768 ;;
        rice_table) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

# One run's figures from its libFuzzer log: the last status line
# ("#N  DONE  cov: C ft: F corp: K/S ... exec/s: E ...") and the execution at which the edge
# coverage (cov) last grew (the plateau).
report() { # NAME LOG
    local last execs cov ft corp rate lastcov share
    last=$(grep -E '^#[0-9]+' "$2" | tail -n 1)
    execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | cut -d' ' -f2)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | cut -d' ' -f2)
    corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | cut -d' ' -f2)
    rate=$(grep -oE 'exec/s: [0-9]+' <<<"$last" | cut -d' ' -f2)
    lastcov=$(grep -E '^#[0-9]+' "$2" | awk '{for(i=1;i<=NF;i++) if($i=="cov:") c=$(i+1); n=substr($1,2); if(c!=prev){at=n; prev=c}} END{print at}')
    share=$(awk -v a="${lastcov:-0}" -v n="${execs:-0}" 'BEGIN{if(n>0) printf "%.0f%%", 100*a/n; else print "?"}')
    printf '%-15s %12s %10s %8s %8s %7s %s\n' "$1" "$execs" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "#${lastcov:-?} ($share)"
}

# AIAPREP_FUZZ_WORKERS=N (default 1) runs N libFuzzer processes per target side by side
# (-jobs=N -workers=N, each with RAYON_NUM_THREADS=1), sharing the work corpus; each writes
# fuzz/corpus-work/<target>.jobs/fuzz-<i>.log.
workers="${AIAPREP_FUZZ_WORKERS:-1}"
root="$PWD"
bin_dir="fuzz/target/$host/release"

printf '%-15s %12s %10s %8s %8s %7s %s\n' target execs exec/s cov ft corpus "last new cov at (share of the run)"
for t in "${targets[@]}"; do
    work="fuzz/corpus-work/$t"
    mkdir -p "$work" "fuzz/artifacts/$t"
    log="fuzz/corpus-work/$t.log"
    opts=(-max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -print_pcs=1)
    # A dictionary of the tokens the target's parser looks for, where one is committed.
    [ -f "fuzz/$t.dict" ] && opts+=(-dict="$root/fuzz/$t.dict")
    if [ "$workers" -gt 1 ]; then
        jobs_dir="fuzz/corpus-work/$t.jobs"
        rm -rf "$jobs_dir"
        mkdir -p "$jobs_dir"
        if ! (cd "$jobs_dir" && RAYON_NUM_THREADS=1 "$root/$bin_dir/$t" -jobs="$workers" \
            -workers="$workers" -artifact_prefix="$root/fuzz/artifacts/$t/" "${opts[@]}" \
            "$root/$work" "$root/fuzz/corpus/$t") >"$log" 2>&1; then
            tail -n 60 "$jobs_dir"/fuzz-*.log >&2
            echo "error: fuzz target $t failed (input in fuzz/artifacts/$t/)" >&2
            exit 1
        fi
        logs=("$jobs_dir"/fuzz-*.log)
        for l in "${logs[@]}"; do
            report "$t/$(basename "$l" .log)" "$l"
        done
    else
        if ! cargo +nightly fuzz run "$t" "$work" "fuzz/corpus/$t" -- "${opts[@]}" >"$log" 2>&1; then
            tail -n 60 "$log" >&2
            echo "error: fuzz target $t failed (input in fuzz/artifacts/$t/)" >&2
            exit 1
        fi
        logs=("$log")
        report "$t" "$log"
    fi
    # The crate's own code (host/): the distinct edges that the run's workers found after
    # loading their corpus (libFuzzer's NEW_PC lines, printed before the status line of the
    # input that found them), and the last.
    awk '
        FNR == 1 { inited = 0; pend = 0 }
        /INITED/ { inited = 1 }
        /NEW_PC:/ && inited && /\/host\// {
            pc = $0; sub(/.*NEW_PC: /, "", pc); sub(/ .*/, "", pc)
            w = $0; sub(/.*NEW_PC: 0x[0-9a-f]+ in /, "", w)
            # The same edge in another worker: the same source location and page offset
            # (each process loads the binary at its own address).
            key = substr(pc, length(pc) - 2) " " w
            if (!(key in seen)) { seen[key] = 1; n++; pend = 1; where = w; file = FILENAME }
        }
        /^#[0-9]+/ && pend { at = substr($1, 2); pend = 0 }
        END { if (n) printf "    crate code (host/): %d new edges in this run, the last at #%s of %s: %s\n", n, at, file, where
              else print "    crate code (host/): no new edge in this run" }' "${logs[@]}"
done
