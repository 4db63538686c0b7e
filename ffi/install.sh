#!/usr/bin/env bash
# Installs npmk's C library: header, libnpmk.so, libnpmk.a, pkg-config files and the CMake
# package.
#
#   bash ffi/install.sh [PREFIX]      PREFIX defaults to /usr/local; DESTDIR is honoured
#
# Builds `cargo build --release -p npmk-ffi` first unless NPMK_SKIP_BUILD=1; the libraries are
# taken from ${CARGO_TARGET_DIR:-target}/release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix=${1:-/usr/local}
case $prefix in
    /*) ;;
    *) prefix=$(pwd)/$prefix ;;
esac
build=${CARGO_TARGET_DIR:-target}/release
version=$(sed -n 's/^#define NPMK_VERSION_STRING "\(.*\)"$/\1/p' include/npmk.h)

if [[ ${NPMK_SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release -p npmk-ffi
fi
for f in "$build/libnpmk.so" "$build/libnpmk.a"; do
    [[ -f $f ]] || { echo "install.sh: $f missing; build first" >&2; exit 1; }
done

root=${DESTDIR:-}$prefix
install -d "$root/include" "$root/lib/pkgconfig" "$root/lib/cmake/npmk"
install -m 644 include/npmk.h "$root/include/npmk.h"
install -m 755 "$build/libnpmk.so" "$root/lib/libnpmk.so"
install -m 644 "$build/libnpmk.a" "$root/lib/libnpmk.a"
for pc in npmk npmk-static; do
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" \
        "ffi/packaging/$pc.pc.in" > "$root/lib/pkgconfig/$pc.pc"
done
install -m 644 ffi/packaging/npmkConfig.cmake "$root/lib/cmake/npmk/npmkConfig.cmake"
sed -e "s|@VERSION@|$version|g" ffi/packaging/npmkConfigVersion.cmake.in \
    > "$root/lib/cmake/npmk/npmkConfigVersion.cmake"
echo "installed npmk $version under $root"
