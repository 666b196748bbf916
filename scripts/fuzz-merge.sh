#!/usr/bin/env bash
# Re-minimise the committed corpus of fuzz targets from their runs: the union of the committed
# corpus (fuzz/corpus/<target>/) and the work corpus the runs grew (fuzz/corpus-work/<target>/),
# minimised with libFuzzer's -merge=1, replaces the committed one.
#
#     bash scripts/fuzz-merge.sh TARGET...
#
# Kept whole: every named input (the seeds of fuzz/seed_corpora.py and tests/data, and every
# finding's `regression-*` input: any name that is not libFuzzer's 40-hex-digit hash). The
# merge then adds, from both corpora, the inputs that reach coverage the named ones do not.
# For `fits_read` and `psf_file`, whose inputs are whole FITS files, merged inputs over
# 16 KiB are left out but those that reach an edge no smaller input reaches, which keeps all
# committed corpora near 30 MB and replaying every edge of the full set
# (docs/reliability-log.md, the committed corpora; the work corpus keeps them all). Prints
# per target the files, bytes and edges the new committed corpus replays, and the same for
# the full minimised set.
# Needs the targets built (bash scripts/fuzz.sh builds them; or cargo +nightly fuzz build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ $# -gt 0 ] || { echo "usage: bash scripts/fuzz-merge.sh TARGET..." >&2; exit 2; }
bin_dir="fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

max_len() { # as scripts/fuzz.sh
    case "$1" in
        fits_read | psf_file) echo 65536 ;;
        cal_tables) echo 32768 ;;
        rice_table) echo 16384 ;;
        *) echo 8192 ;;
    esac
}
# The edges (libFuzzer's cov:) a corpus directory replays.
edges() { # BIN MAXLEN DIR
    RAYON_NUM_THREADS=1 "$1" -runs=0 -max_len="$2" "$3" 2>&1 |
        grep -E '^#[0-9]+.*(INITED|DONE)' | tail -n 1 | grep -oE 'cov: [0-9]+' | cut -d' ' -f2
}
summary() { # LABEL DIR BIN MAXLEN
    printf '  %-28s %6d files %8s  %s edges\n' "$1" "$(find "$2" -type f | wc -l)" \
        "$(du -sh --apparent-size "$2" | cut -f1)" "$(edges "$3" "$4" "$2")"
}

for t in "$@"; do
    bin="$bin_dir/$t"
    [ -x "$bin" ] || { echo "error: $bin not built (cargo +nightly fuzz build)" >&2; exit 1; }
    committed="fuzz/corpus/$t"
    work="fuzz/corpus-work/$t"
    mkdir -p "$work"
    len=$(max_len "$t")
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir "$tmp/full"
    find "$committed" -maxdepth 1 -type f -regextype posix-basic ! -regex '.*/[0-9a-f]\{40\}' -exec cp {} "$tmp/full/" \;
    named=$(find "$tmp/full" -type f | wc -l)
    RAYON_NUM_THREADS=1 "$bin" -merge=1 -max_len="$len" -timeout=10 -rss_limit_mb=2048 \
        "$tmp/full" "$committed" "$work" >"$tmp/merge.log" 2>&1 ||
        { tail -n 30 "$tmp/merge.log" >&2; echo "error: merge of $t failed" >&2; exit 1; }
    cp -r "$tmp/full" "$tmp/new"
    case "$t" in
        fits_read | psf_file)
            # The large inputs, then back only those that reach an edge no smaller one does
            # (a second merge that counts edges, not hit counts: -use_counters=0), so the
            # committed corpus replays every edge of the full set.
            mkdir "$tmp/large"
            find "$tmp/new" -type f -regextype posix-basic -regex '.*/[0-9a-f]\{40\}' -size +16k \
                -exec mv {} "$tmp/large/" \;
            small=$(find "$tmp/new" -type f | wc -l)
            RAYON_NUM_THREADS=1 "$bin" -merge=1 -use_counters=0 -max_len="$len" -timeout=10 \
                -rss_limit_mb=2048 "$tmp/new" "$tmp/large" >"$tmp/merge-large.log" 2>&1 ||
                { tail -n 30 "$tmp/merge-large.log" >&2; echo "error: merge of $t failed" >&2; exit 1; }
            echo "$t: of $(find "$tmp/large" -type f | wc -l) minimised inputs over 16 KiB," \
                "$(($(find "$tmp/new" -type f | wc -l) - small)) kept (edges no smaller one reaches)" ;;
    esac
    echo "$t: $named named inputs kept"
    summary "full minimised set" "$tmp/full" "$bin" "$len"
    summary "new committed corpus" "$tmp/new" "$bin" "$len"
    rm -rf "$committed"
    mv "$tmp/new" "$committed"
    rm -rf "$tmp"
    trap - EXIT
done
