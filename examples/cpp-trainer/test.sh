#!/usr/bin/env bash
# End-to-end test of the example trainer (called from scripts/test.sh):
# fetch the digits, build, train 3000 steps logging NPM-k every step, and check
# accuracy, the JSONL log, the checkpoints against the log, determinism and bf16
# pushes (check_run.py); then the CMake builds when cmake is present.
#
#   test.sh [OUT_DIR]
#
# With OUT_DIR, the run is kept there for later stages (npmk trajectory):
#   OUT_DIR/run.jsonl                                  one line per step 1..3000
#   OUT_DIR/checkpoints/step{1,10,100,300,1000,2000,3000}/model.safetensors
# Environment: as build.sh (CARGO_TARGET_DIR, CXX, NPMK_SKIP_CARGO), PYTHON.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
STEPS=3000
SAVE=1,10,100,300,1000,2000,3000
SHORT=300

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
OUT="${1:-$tmp/run}"
mkdir -p "$OUT"
rm -rf "$OUT/checkpoints" "$OUT/bf16-checkpoints"

bash "$HERE/fetch-digits.sh"
bash "$HERE/build.sh"

T="$HERE/build/trainer"
DATA=(--data "$ROOT/fixtures/digits/digits.csv")
start=$(date +%s%N)
"$T" "${DATA[@]}" --steps $STEPS --jsonl "$OUT/run.jsonl" \
    --save-steps $SAVE --save-dir "$OUT/checkpoints" | tee "$OUT/trainer.out"
echo "trainer: $(( ($(date +%s%N) - start) / 1000000 )) ms wall for $STEPS steps"
"$T" "${DATA[@]}" --steps $SHORT --jsonl "$OUT/again.jsonl" --quiet >/dev/null
"$T" "${DATA[@]}" --steps $SHORT --jsonl "$OUT/bf16.jsonl" --push-dtype bf16 --per-tensor \
    --save-steps $SHORT --save-dir "$OUT/bf16-checkpoints" --quiet >/dev/null

# Bad input must fail loudly, not train on nothing.
if "$T" --data "$tmp/missing.csv" --jsonl "$tmp/x.jsonl" --steps 5 2>/dev/null; then
    echo "test.sh: trainer accepted a missing data file" >&2; exit 1
fi
if "$T" "${DATA[@]}" --jsonl "$tmp/x.jsonl" --steps 5 --save-steps 6 --save-dir "$tmp/c" 2>/dev/null; then
    echo "test.sh: trainer accepted a save step beyond --steps" >&2; exit 1
fi

"$PYTHON" "$HERE/check_run.py" "$OUT" $STEPS $SAVE $SHORT

# CMake, both ways: find_package(npmk) from a staged install (ffi/install.sh), and the
# fallback to the source tree's include/ and target dir.
if command -v cmake >/dev/null; then
    NPMK_SKIP_BUILD=1 bash "$ROOT/ffi/install.sh" "$tmp/prefix" >/dev/null
    for how in package source; do
        case $how in
            package) args=(-DCMAKE_PREFIX_PATH="$tmp/prefix"); want="npmk: package config" ;;
            source) args=(-DCMAKE_DISABLE_FIND_PACKAGE_npmk=ON); want="npmk: .*libnpmk" ;;
        esac
        b="$tmp/cmake-$how"
        if ! { cmake -S "$HERE" -B "$b" -DCMAKE_BUILD_TYPE=Release "${args[@]}" \
               && cmake --build "$b" --target trainer; } >"$tmp/cmake.log" 2>&1; then
            sed 's/^/  | /' "$tmp/cmake.log" >&2; echo "test.sh: CMake build ($how) failed" >&2; exit 1
        fi
        grep -q "$want" "$tmp/cmake.log" || { echo "test.sh: CMake ($how) did not use the expected npmk" >&2; exit 1; }
        "$b/trainer" "${DATA[@]}" --steps 20 --jsonl "$tmp/cmake.jsonl" --quiet >/dev/null
        [[ "$(wc -l <"$tmp/cmake.jsonl")" -eq 20 ]] || { echo "test.sh: CMake-built trainer ($how) did not log 20 steps" >&2; exit 1; }
        echo "cmake build ($how): ok"
    done
fi
