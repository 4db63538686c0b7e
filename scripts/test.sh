#!/usr/bin/env bash
# The whole test suite, one section after another: `bash scripts/test.sh` (the README's test
# command). On a fresh machine it first installs what the tests need (scripts/install-deps.sh)
# and fetches the real checkpoint fixtures; both steps are no-ops when already done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n==== %s ====\n' "$*"; }

section "dependencies (apt, pip; no-op when present)"
bash scripts/install-deps.sh

section "fixtures (MiniLM f32, bf16, sharded; no-op when present)"
bash scripts/fetch-fixtures.sh

section "Python oracle self-test (METHOD.md section 2)"
python3 scripts/oracle.py --selftest

section "style: rustfmt and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings

section "docs: cargo doc without warnings"
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p npmk

section "no_std core: builds without default features"
cargo build -q -p npmk --no-default-features
cargo build -q -p npmk --no-default-features --features alloc,force-scalar

section "Rust: cargo test --workspace (SIMD ingestion path)"
cargo test --workspace

section "Rust: core tests again on the forced scalar ingestion path"
NPMK_FORCE_SCALAR=1 cargo test -p npmk --lib --test reference --test properties --test bins \
    --test no_alloc

section "C ABI: header vs exports, C99/C++17 under ASan+UBSan, threads, pkg-config, CMake, MPI (4 ranks)"
bash ffi/tests/run.sh

section "example C++ trainer: digits MLP logging k every step through the C ABI"
run_dir="$(mktemp -d)"
trap 'rm -rf "$run_dir"' EXIT
bash examples/cpp-trainer/test.sh "$run_dir"

section "end to end: the trainer's log and checkpoints through npmk trajectory"
cargo build -q --release --bin npmk
python3 scripts/e2e_trajectory.py "${CARGO_TARGET_DIR:-target}/release/npmk" "$run_dir"

section "all test sections passed"
