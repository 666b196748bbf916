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
# corpus, and where the last one is (from `-print_pcs=1`).
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

echo "fuzz: building the targets (ASan, coverage; fuzz/target)"
cargo +nightly fuzz build >/dev/null 2>&1 || cargo +nightly fuzz build

# Larger inputs for the file and table targets (their seeds are FITS files and tables).
max_len() {
    case "$1" in
        fits_read | psf_file) echo 65536 ;;
        cal_tables) echo 32768 ;;
        rice_table) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

printf '%-15s %12s %10s %8s %8s %7s %s\n' target execs exec/s cov ft corpus "last new cov at (share of the run)"
for t in "${targets[@]}"; do
    work="fuzz/corpus-work/$t"
    mkdir -p "$work" "fuzz/artifacts/$t"
    log="fuzz/corpus-work/$t.log"
    if ! cargo +nightly fuzz run "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -print_pcs=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "error: fuzz target $t failed (input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    # The last status line: "#N  DONE  cov: C ft: F corp: K/S ... exec/s: E ..."
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$last")
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | cut -d' ' -f2)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | cut -d' ' -f2)
    corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | cut -d' ' -f2)
    rate=$(grep -oE 'exec/s: [0-9]+' <<<"$last" | cut -d' ' -f2)
    # Plateau: the execution at which the edge coverage (cov) last grew.
    lastcov=$(grep -E '^#[0-9]+' "$log" | awk '{for(i=1;i<=NF;i++) if($i=="cov:") c=$(i+1); n=substr($1,2); if(c!=prev){at=n; prev=c}} END{print at}')
    share=$(awk -v a="${lastcov:-0}" -v n="${execs:-0}" 'BEGIN{if(n>0) printf "%.0f%%", 100*a/n; else print "?"}')
    printf '%-15s %12s %10s %8s %8s %7s %s\n' "$t" "$execs" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "#${lastcov:-?} ($share)"
    # The crate's own code (host/): the edges found after the corpus was loaded (libFuzzer's
    # NEW_PC lines, printed before the status line of the input that found them) and the last.
    awk '
        /INITED/ { inited = 1 }
        /NEW_PC:/ && inited && /\/host\// { n++; pend = 1; sub(/.*NEW_PC: 0x[0-9a-f]+ in /, ""); where = $0 }
        /^#[0-9]+/ && pend { at = substr($1, 2); pend = 0 }
        END { if (n) printf "    crate code (host/): %d new edges in this run, the last at #%s: %s\n", n, at, where
              else print "    crate code (host/): no new edge in this run" }' "$log"
done
