#!/usr/bin/env python3
"""Derive the bf16 and two-shard copies of the MiniLM fixture.

    derive_fixtures.py [--fixtures DIR]

Reads DIR/minilm/model.safetensors and writes
  DIR/minilm-bf16/model.safetensors   every F32 tensor rounded to bf16
                                      (nearest, ties to even; NaN stays NaN),
                                      other dtypes copied byte for byte;
  DIR/minilm-sharded/                 the f32 tensors split into two shards plus
                                      model.safetensors.index.json (HF format).
Everything written is read back and compared. A stamp file records the hashes,
so a second run with unchanged inputs and outputs does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stfile  # noqa: E402

STAMP_VERSION = 1
SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
INDEX = "model.safetensors.index.json"


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_rounding() -> None:
    """Pin the bf16 rounding on hand-picked bit patterns."""
    cases = {
        0x3F800000: 0x3F80,  # 1.0
        0x3F808000: 0x3F80,  # tie, even neighbour below
        0x3F818000: 0x3F82,  # tie, odd below: round up
        0x3F808001: 0x3F81,  # just above the tie
        0x3F807FFF: 0x3F80,  # just below the tie
        0xBF818000: 0xBF82,  # negative tie
        0x80000000: 0x8000,  # -0.0
        0x00000001: 0x0000,  # smallest subnormal rounds to zero
        0x00018000: 0x0002,  # subnormal tie, odd: up
        0x7F7FFFFF: 0x7F80,  # largest finite overflows to +Inf
        0x7F800000: 0x7F80,  # +Inf
        0xFF800000: 0xFF80,  # -Inf
    }
    bits = np.array(list(cases), dtype=np.uint32)
    got = stfile.f32_to_bf16_bits(bits.view(np.float32))
    for b, g in zip(cases, got):
        if int(g) != cases[b]:
            raise AssertionError(f"bf16 rounding of {b:#010x}: {int(g):#06x}, want {cases[b]:#06x}")
    nans = np.array([0x7F800001, 0xFFC00000, 0x7FFFFFFF], dtype=np.uint32).view(np.float32)
    back = stfile.bf16_bits_to_f32(stfile.f32_to_bf16_bits(nans))
    if not np.isnan(back).all():
        raise AssertionError("NaN did not stay NaN")


def to_bf16(t: stfile.Tensor) -> stfile.Tensor:
    if t.dtype != "F32":
        return t
    bits = stfile.f32_to_bf16_bits(np.frombuffer(t.data, "<f4"))
    return stfile.Tensor(t.name, "BF16", t.shape, bits.astype("<u2").tobytes())


def split_two(tensors: list[stfile.Tensor]) -> tuple[list, list]:
    """Contiguous split in file order at about half the bytes, as HF shards are."""
    total = sum(len(t.data) for t in tensors)
    acc, cut = 0, len(tensors) - 1
    for i, t in enumerate(tensors):
        acc += len(t.data)
        if acc >= total / 2:
            cut = i + 1
            break
    cut = min(max(cut, 1), len(tensors) - 1)
    return tensors[:cut], tensors[cut:]


def same(a: list[stfile.Tensor], b: list[stfile.Tensor], what: str) -> None:
    if [(t.name, t.dtype, t.shape) for t in a] != [(t.name, t.dtype, t.shape) for t in b]:
        raise AssertionError(f"{what}: tensor list differs after reading back")
    for x, y in zip(a, b):
        if x.data != y.data:
            raise AssertionError(f"{what}: {x.name}: bytes differ after reading back")


def derive(fix: str) -> dict[str, tuple[int, str]]:
    src = os.path.join(fix, "minilm", "model.safetensors")
    tensors, meta = stfile.read(src)

    # bf16 copy, same names, order and metadata.
    out_bf16 = os.path.join(fix, "minilm-bf16")
    os.makedirs(out_bf16, exist_ok=True)
    bf = [to_bf16(t) for t in tensors]
    path = os.path.join(out_bf16, "model.safetensors")
    stfile.write(path, bf, meta)
    same(bf, stfile.read(path)[0], path)
    for t, u in zip(tensors, bf):
        if t.dtype == "F32":
            # Independent check: bf16 -> f32 differs from the original by at
            # most half a bf16 ulp, which is at most 2^-8 relative.
            a = np.frombuffer(t.data, "<f4").astype(np.float64)
            b = u.values_f64()
            fin = np.isfinite(a) & (np.abs(a) < 3.38e38)
            err = np.abs(a[fin] - b[fin])
            if np.any(err > np.abs(a[fin]) * 2.0**-8 + 2.0**-134):
                raise AssertionError(f"{t.name}: bf16 rounding error above half an ulp")

    # Two shards of the f32 file plus the index.
    out_sh = os.path.join(fix, "minilm-sharded")
    os.makedirs(out_sh, exist_ok=True)
    parts = split_two(tensors)
    weight_map = {}
    for name, part in zip(SHARDS, parts):
        p = os.path.join(out_sh, name)
        stfile.write(p, part, meta)
        same(part, stfile.read(p)[0], p)
        weight_map.update({t.name: name for t in part})
    index = {"metadata": {"total_size": sum(len(t.data) for t in tensors)},
             "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_sh, INDEX + ".tmp"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    os.replace(os.path.join(out_sh, INDEX + ".tmp"), os.path.join(out_sh, INDEX))
    back = [t for _, t in stfile.read_checkpoint(os.path.join(out_sh, INDEX))]
    same(tensors, back, out_sh)

    outputs = [os.path.join("minilm-bf16", "model.safetensors")]
    outputs += [os.path.join("minilm-sharded", n) for n in SHARDS + (INDEX,)]
    return {o: (os.path.getsize(os.path.join(fix, o)), sha256(os.path.join(fix, o)))
            for o in outputs}


def up_to_date(fix: str, stamp: dict, src_hash: str) -> bool:
    if stamp.get("version") != STAMP_VERSION or stamp.get("source_sha256") != src_hash:
        return False
    for rel, (size, digest) in stamp.get("outputs", {}).items():
        p = os.path.join(fix, rel)
        if not os.path.isfile(p) or os.path.getsize(p) != size or sha256(p) != digest:
            return False
    return bool(stamp.get("outputs"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--fixtures", default=os.path.join(here, "..", "fixtures"))
    ap.add_argument("--force", action="store_true", help="rewrite even if up to date")
    args = ap.parse_args()
    fix = os.path.normpath(args.fixtures)
    src = os.path.join(fix, "minilm", "model.safetensors")
    if not os.path.isfile(src):
        print(f"derive_fixtures: missing {src} (run scripts/fetch-fixtures.sh)", file=sys.stderr)
        return 1

    stamp_path = os.path.join(fix, ".derived.json")
    src_hash = sha256(src)
    if not args.force and os.path.isfile(stamp_path):
        with open(stamp_path) as f:
            if up_to_date(fix, json.load(f), src_hash):
                return 0

    check_rounding()
    outputs = derive(fix)
    with open(stamp_path, "w") as f:
        json.dump({"version": STAMP_VERSION, "source_sha256": src_hash,
                   "outputs": outputs}, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
