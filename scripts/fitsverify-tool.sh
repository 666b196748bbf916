#!/usr/bin/env bash
# NASA HEASARC's fitsverify (Debian package `fitsverify`) WITHOUT root: `apt-get download`
# fitsverify and the cfitsio library it links (libcfitsio10), unpack them with `dpkg -x`
# into the git-ignored .fitsverify/ and write a wrapper .fitsverify/bin/fitsverify that
# finds the library. Prints the path of a working fitsverify on stdout (only that), progress
# on stderr; an installed one is used as it is.
#
#     FITSVERIFY=$(bash scripts/fitsverify-tool.sh) && "$FITSVERIFY" out.fits
#
# Exits non-zero with a message when it cannot (no apt/dpkg, package lists without it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "fitsverify-tool: $*" >&2; }
PREFIX="${AIAPREP_FITSVERIFY_PREFIX:-$PWD/.fitsverify}"
WRAPPER="$PREFIX/bin/fitsverify"

works() { "$1" -h >/dev/null 2>&1 || "$1" 2>&1 | grep -qi fitsverify; }

if command -v fitsverify >/dev/null 2>&1 && works fitsverify; then
    command -v fitsverify
    exit 0
fi
if [ -x "$WRAPPER" ] && works "$WRAPPER"; then
    echo "$WRAPPER"
    exit 0
fi
command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
    say "no apt-get/dpkg"
    exit 1
}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say "downloading fitsverify and libcfitsio10 into $PREFIX"
(cd "$tmp" && apt-get download fitsverify libcfitsio10 >/dev/null 2>&1) || {
    say "apt-get download failed (stale package lists or no network)"
    exit 1
}
mkdir -p "$PREFIX/root" "$PREFIX/bin"
for d in "$tmp"/*.deb; do dpkg -x "$d" "$PREFIX/root"; done
lib="$(dirname "$(find "$PREFIX/root" -name 'libcfitsio.so.*' | head -n1)")"
cat >"$WRAPPER" <<W
#!/bin/sh
LD_LIBRARY_PATH="$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$PREFIX/root/usr/bin/fitsverify" "\$@"
W
chmod +x "$WRAPPER"
works "$WRAPPER" || {
    say "the unpacked fitsverify does not run"
    exit 1
}
echo "$WRAPPER"
