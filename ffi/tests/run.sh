#!/usr/bin/env bash
# The C ABI test suite, run by scripts/test.sh:
#   1. build libnpmk.{so,a} (release) and install them into a temporary prefix;
#   2. check the header against the exported symbols and the version;
#   3. C99 and C++17 API tests, each against the shared and the static library, under
#      AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer; their monitor
#      JSONL is then parsed and checked by check_jsonl.py;
#   4. threads (pthreads, ASan+UBSan, both libraries);
#   5. the pkg-config files and the CMake package, from a consumer's point of view;
#   6. MPI on 4 ranks (needs mpicc and mpiexec; NPMK_SKIP_MPI=1 skips it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

step() { printf -- '-- %s\n' "$*"; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step "build and install into a temporary prefix"
cargo build --release -p npmk-ffi
NPMK_SKIP_BUILD=1 bash ffi/install.sh "$prefix" >/dev/null
lib=$prefix/lib
export PKG_CONFIG_PATH=$lib/pkgconfig

step "header against exported symbols"
python3 ffi/tests/check_header.py include/npmk.h "$lib/libnpmk.so" "$lib/libnpmk.a" Cargo.toml

# Sanitizers: any report fails the run; leaks are checked at exit.
san=(-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cwarn=(-std=c99 -Wall -Wextra -Werror -pedantic)
cxxwarn=(-std=c++17 -Wall -Wextra -Werror -pedantic)
read -r -a shared_libs <<<"$(pkg-config --libs npmk) -Wl,-rpath,$lib -lm -pthread"
read -r -a static_libs <<<"$(pkg-config --libs npmk-static) -pthread"
read -r -a cflags <<<"$(pkg-config --cflags npmk)"

for link in shared static; do
    if [[ $link == shared ]]; then libs=("${shared_libs[@]}"); else libs=("${static_libs[@]}"); fi

    step "C99 API test, $link library, ASan+UBSan"
    cc_=(gcc "${cwarn[@]}" "${san[@]}" "${cflags[@]}")
    cxx_=(g++ "${cxxwarn[@]}" "${san[@]}" "${cflags[@]}")
    "${cc_[@]}" ffi/tests/c/test_api.c -o "$work/c_$link" "${libs[@]}"
    if [[ $link == shared ]]; then
        # The binary must use the installed library, found through its rpath.
        ldd "$work/c_$link" | grep -q "$lib/libnpmk.so" ||
            { echo "the installed libnpmk.so is not used" >&2; exit 1; }
    else
        ! ldd "$work/c_$link" | grep -q libnpmk ||
            { echo "the static test loads libnpmk.so" >&2; exit 1; }
    fi
    mkdir -p "$work/out_c_$link"
    "$work/c_$link" "$work/out_c_$link"
    python3 ffi/tests/check_jsonl.py "$work/out_c_$link"

    step "C++17 API test, $link library, ASan+UBSan"
    "${cxx_[@]}" ffi/tests/cpp/test_api.cpp -o "$work/cpp_$link" "${libs[@]}"
    mkdir -p "$work/out_cpp_$link"
    "$work/cpp_$link" "$work/out_cpp_$link"
    python3 ffi/tests/check_jsonl.py "$work/out_cpp_$link/cpp"

    step "threads, $link library, ASan+UBSan"
    "${cc_[@]}" ffi/tests/c/test_threads.c -o "$work/threads_$link" "${libs[@]}"
    "$work/threads_$link"
done

step "CMake package: find_package(npmk) -> npmk::npmk and npmk::npmk_static"
cmake -S ffi/tests/cmake -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/smoke_shared"
"$work/cmake/smoke_static"
# Before 1.0 a different minor version is an ABI break: the package must refuse it.
for want in 0.2 1.0; do
    if cmake -S ffi/tests/cmake -B "$work/cmake_$want" -DCMAKE_PREFIX_PATH="$prefix" \
            -DNPMK_REQUEST="$want" >/dev/null 2>&1; then
        echo "the CMake package accepted a request for npmk $want" >&2; exit 1
    fi
done

if [[ ${NPMK_SKIP_MPI:-0} == 1 ]]; then
    step "MPI: skipped (NPMK_SKIP_MPI=1)"
else
    step "MPI: 4 ranks, MPI_Allreduce(MPI_UINT64_T, MPI_SUM) of sketch states"
    mpicc "${cwarn[@]}" -O2 "${cflags[@]}" ffi/tests/c/test_mpi.c -o "$work/mpi" "${shared_libs[@]}"
    timeout 600 mpiexec -n 4 "$work/mpi"
fi
echo "C ABI tests passed"
