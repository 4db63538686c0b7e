#!/usr/bin/env bash
# Build the example trainer and the monitor benchmark with g++ directly against the
# repository's header and shared library (the simplest path, used by test.sh):
#
#   examples/cpp-trainer/build/trainer, examples/cpp-trainer/build/bench_monitor
#
# Builds libnpmk first (cargo build -p npmk-ffi --release; a no-op when fresh).
# Environment: CARGO_TARGET_DIR (default <repo>/target), CXX (default g++),
# NPMK_INCLUDE_DIR (default <repo>/include), NPMK_SKIP_CARGO=1 to use an already
# built library as is.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LIBDIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
INCDIR="${NPMK_INCLUDE_DIR:-$ROOT/include}"
CXX="${CXX:-g++}"
OUT="$HERE/build"

if [[ "${NPMK_SKIP_CARGO:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build -q -p npmk-ffi --release)
fi
[[ -f "$LIBDIR/libnpmk.so" ]] || { echo "build.sh: $LIBDIR/libnpmk.so not found" >&2; exit 1; }
[[ -f "$INCDIR/npmk.h" ]] || { echo "build.sh: $INCDIR/npmk.h not found" >&2; exit 1; }

mkdir -p "$OUT"
# -fopenmp-simd enables only the `omp simd` pragmas (vectorised reductions), no runtime.
common=(-std=c++17 -Wall -Wextra -Wpedantic -Werror -fopenmp-simd -I"$INCDIR"
        -L"$LIBDIR" -Wl,-rpath,"$LIBDIR")
# The trainer stays portable (baseline x86-64, no FMA contraction), so its log is the
# reproducible across x86-64 machines for a given seed and libm.
"$CXX" -O2 "${common[@]}" "$HERE/trainer.cpp" -lnpmk -o "$OUT/trainer"
# The benchmark's training step gets every instruction this CPU has: a faster step
# makes the monitor's share larger, so the reported ratio is not flattered.
"$CXX" -O3 -march=native -pthread "${common[@]}" "$HERE/bench_monitor.cpp" -lnpmk -o "$OUT/bench_monitor"
