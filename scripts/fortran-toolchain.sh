#!/usr/bin/env bash
# Fetch a gfortran matching the installed gcc WITHOUT root (Debian/Ubuntu): `apt-get download`
# the missing .deb files (gfortran-N, libgfortran-N-dev, libgfortran5, libquadmath0), unpack
# them with `dpkg -x` into the git-ignored .fortran/ and write the driver wrapper
# .fortran/bin/gfortran. The wrapper finds f951 in the unpacked tree (gcc is relocatable), the
# installed gcc's own files (collect2, crt*.o, liblto_plugin.so, libgcc) through -B, and links
# with an rpath to the unpacked libgfortran.so.5, so the programs it builds run as they are.
#
# Prints the compiler path on stdout (the only thing it prints there), progress on stderr:
#
#     FC=$(bash scripts/fortran-toolchain.sh) && "$FC" hello.f90 -o hello
#
# Idempotent: a working .fortran/ is kept (checked by compiling and running a test program).
# When gfortran is already on PATH and works, prints its path and fetches nothing.
# Exits non-zero with a message on stderr when it cannot (no apt/dpkg, no gcc, the matching
# version not downloadable — e.g. stale apt lists — or the result does not work).
# Environment: AIAPREP_FORTRAN_PREFIX (default: <repo>/.fortran).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "fortran-toolchain: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

PREFIX="${AIAPREP_FORTRAN_PREFIX:-$PWD/.fortran}"
WRAPPER="$PREFIX/bin/gfortran"
STAMP="$PREFIX/.complete"

# Compile, link and run a program that needs the intrinsic modules and libgfortran.
smoke_test() {
    local fc="$1" dir rc=0
    dir="$(mktemp -d)"
    cat >"$dir/hello.f90" <<'EOF'
program hello
    use, intrinsic :: iso_c_binding, only: c_int, c_double
    use, intrinsic :: ieee_arithmetic, only: ieee_is_nan, ieee_value, ieee_quiet_nan
    implicit none
    real(c_double) :: x
    x = ieee_value(x, ieee_quiet_nan)
    if (.not. ieee_is_nan(x)) error stop 1
    write (*, '(a, i0)') 'hello from Fortran, c_int bytes: ', storage_size(0_c_int) / 8
end program hello
EOF
    if (cd "$dir" && "$fc" hello.f90 -o hello >/dev/null 2>"$dir/log" &&
        ./hello >"$dir/out" 2>>"$dir/log") && grep -q 'hello from Fortran, c_int bytes: 4' "$dir/out"; then
        rc=0
    else
        rc=1
        sed 's/^/    /' "$dir/log" >&2 || true
    fi
    rm -rf "$dir"
    return "$rc"
}

# An already installed gfortran: nothing to fetch.
if command -v gfortran >/dev/null 2>&1 && smoke_test gfortran 2>/dev/null; then
    say "gfortran already installed"
    command -v gfortran
    exit 0
fi

# An already unpacked one.
if [ -f "$STAMP" ] && [ -x "$WRAPPER" ] && smoke_test "$WRAPPER" 2>/dev/null; then
    say "using $WRAPPER (already unpacked)"
    echo "$WRAPPER"
    exit 0
fi

for tool in apt-get dpkg dpkg-query gcc; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: this script needs a Debian-like system with gcc installed"
done

# The gfortran must be the installed gcc's version exactly: it uses that gcc's collect2,
# crtbegin.o, libgcc and LTO plugin.
MAJOR="$(gcc -dumpversion | cut -d. -f1)"
TRIPLET="$(gcc -dumpmachine)"
GCC_PKG="gcc-$MAJOR"
GCC_VERSION="$(dpkg-query -W -f='${Version}' "$GCC_PKG" 2>/dev/null)" ||
    die "gcc $MAJOR is not installed from a Debian package ($GCC_PKG)"
GCC_LIBDIR="$(dirname "$(gcc -print-libgcc-file-name)")"
[ -x "$GCC_LIBDIR/collect2" ] || die "no collect2 in $GCC_LIBDIR"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# Packages tied to the gcc version (pinned) and runtime libraries (any version, if missing).
PINNED=("gfortran-$MAJOR" "libgfortran-$MAJOR-dev")
RUNTIME=(libgfortran5 libquadmath0)
WANT=()
for p in "${PINNED[@]}"; do
    installed "$p" || WANT+=("$p=$GCC_VERSION")
done
for p in "${RUNTIME[@]}"; do
    installed "$p" || WANT+=("$p")
done

say "gcc $GCC_VERSION ($TRIPLET); fetching ${WANT[*]:-nothing} into $PREFIX"
# Only what this script creates is removed (the prefix may be a caller's directory).
clean() { rm -rf "$PREFIX/debs" "$PREFIX/root" "$PREFIX/bin" "$STAMP"; }
clean
mkdir -p "$PREFIX/debs" "$PREFIX/root" "$PREFIX/bin"
if [ "${#WANT[@]}" -gt 0 ]; then
    # apt-get download needs no root; it writes into the current directory.
    if ! (cd "$PREFIX/debs" && apt-get download -q "${WANT[@]}" >&2); then
        clean
        die "apt-get download ${WANT[*]} failed (offline, or apt lists stale: 'apt-get update' needs root) — install gfortran-$MAJOR instead"
    fi
    for deb in "$PREFIX"/debs/*.deb; do
        dpkg -x "$deb" "$PREFIX/root"
    done
fi

# The driver: unpacked, or installed system-wide when gfortran-N is already a package.
DRIVER="$PREFIX/root/usr/bin/$TRIPLET-gfortran-$MAJOR"
if [ ! -x "$DRIVER" ]; then
    DRIVER="$(command -v "$TRIPLET-gfortran-$MAJOR" || command -v "gfortran-$MAJOR" || true)"
fi
[ -n "$DRIVER" ] && [ -x "$DRIVER" ] || die "no gfortran-$MAJOR driver after unpacking"

# The wrapper locates the tree relative to itself, so .fortran/ may move with the checkout.
REL_DRIVER="${DRIVER#"$PREFIX"/}"
if [ "$REL_DRIVER" = "$DRIVER" ]; then DRIVER_EXPR="\"$DRIVER\""; else DRIVER_EXPR="\"\$P/$REL_DRIVER\""; fi
cat >"$WRAPPER" <<EOF
#!/bin/sh
# gfortran $GCC_VERSION unpacked without root by scripts/fortran-toolchain.sh.
# f951 and libgfortran come from \$P/root; collect2, crt*.o, libgcc and the LTO plugin from the
# installed gcc ($GCC_LIBDIR). Programs get an rpath to the unpacked libgfortran.so.5.
P="\$(cd "\$(dirname "\$0")/.." && pwd)"
exec $DRIVER_EXPR \\
    -B"\$P/root/usr/lib/gcc/$TRIPLET/$MAJOR/" -B"$GCC_LIBDIR/" \\
    -L"\$P/root/usr/lib/$TRIPLET" -Wl,-rpath,"\$P/root/usr/lib/$TRIPLET" "\$@"
EOF
chmod +x "$WRAPPER"

smoke_test "$WRAPPER" || die "$WRAPPER cannot build and run a test program (output above)"
touch "$STAMP"
say "ok: $("$WRAPPER" --version | head -n1)"
echo "$WRAPPER"
