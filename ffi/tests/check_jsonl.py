#!/usr/bin/env python3
"""Checks the JSONL files the C and C++ API tests wrote through the monitor.

Usage: check_jsonl.py DIR  (DIR holds monitor_full.jsonl, monitor_stride.jsonl and
monitor_positions.jsonl from one toy training run of 12 steps, 0, 1, 2, 4, ..., 1024).
"""
import json
import math
import sys

STEPS = [0] + [2**i for i in range(11)]
REQUIRED = [
    "step", "k", "k_mid80", "k_mid90", "k_full", "lambda", "r2", "ks", "n_used", "k_se",
    "k_class", "n_class", "dk", "d2k", "phase", "phase_code", "counts", "tensors_pooled",
    "excluded", "sampling", "micros",
]
CLASSES = ["selection", "value", "transmission", "other"]


def fail(msg):
    sys.exit(f"check_jsonl: {msg}")


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not text.endswith("\n"):
        fail(f"{path}: last line is not terminated")
    # One object per line; json.loads rejects NaN-free violations such as bare "nan".
    return [json.loads(line, parse_constant=lambda c: fail(f"{path}: constant {c}"))
            for line in text.splitlines()]


def check_common(path, rows, mode):
    if [r["step"] for r in rows] != STEPS:
        fail(f"{path}: steps {[r['step'] for r in rows]}")
    for i, r in enumerate(rows):
        missing = [key for key in REQUIRED if key not in r]
        if missing:
            fail(f"{path} step {r['step']}: missing {missing}")
        if not (0.8 < r["k"] < 1.4) or r["k"] != r["k_mid80"]:
            fail(f"{path} step {r['step']}: k {r['k']} / k_mid80 {r['k_mid80']}")
        if not all(isinstance(r[key], float) for key in ("k_mid90", "k_full", "lambda", "r2")):
            fail(f"{path} step {r['step']}: trims {r['k_mid90']} {r['k_full']}")
        if sorted(r["k_class"]) != sorted(CLASSES) or any(
                not isinstance(r["k_class"][c], float) for c in CLASSES):
            fail(f"{path} step {r['step']}: k_class {r['k_class']}")
        if r["phase"] not in ("P0", "P1", "P2", "P3") or r["phase"] != f"P{r['phase_code']}":
            fail(f"{path} step {r['step']}: phase {r['phase']} / {r['phase_code']}")
        # dk needs two steps with a step > 0 behind it, d2k three.
        if (r["dk"] is None) != (i < 2) or (r["d2k"] is None) != (i < 3):
            fail(f"{path} step {r['step']}: dk {r['dk']} d2k {r['d2k']}")
        if r["tensors_pooled"] != 15 or r["excluded"] != {"tensors": 4, "elements": 2144}:
            fail(f"{path} step {r['step']}: {r['tensors_pooled']} pooled, {r['excluded']}")
        if r["counts"]["elements"] != 21504 or r["sampling"]["mode"] != mode:
            fail(f"{path} step {r['step']}: counts {r['counts']}, sampling {r['sampling']}")
        if not isinstance(r["micros"], int) or r["micros"] < 0:
            fail(f"{path} step {r['step']}: micros {r['micros']}")
    # The toy model's tails grow heavier with training: k falls from step 0 to the end.
    if not rows[-1]["k"] < rows[0]["k"] - 0.05:
        fail(f"{path}: k did not fall ({rows[0]['k']} -> {rows[-1]['k']})")


def main():
    d = sys.argv[1]
    full = load(f"{d}/monitor_full.jsonl")
    stride = load(f"{d}/monitor_stride.jsonl")
    positions = load(f"{d}/monitor_positions.jsonl")
    check_common("full", full, "full")
    check_common("stride", stride, "stride")
    check_common("positions", positions, "positions")

    for r in full:
        c = r["counts"]
        if (c["nan"], c["zero"], c["inf"], c["usable"]) != (3, 5, 1, 21495) or r["k_se"] != 0:
            fail(f"full step {r['step']}: counts {c}, k_se {r['k_se']}")
        if r["n_class"] != {"selection": 4087, "value": 2048, "transmission": 14336,
                            "other": 1024} or "tensors" in r:
            fail(f"full step {r['step']}: n_class {r['n_class']}")

    # Stride 3 from index 0 keeps ceil(n / 3) of each tensor; positions keep n / 2.
    for rows, sampled in ((stride, 9 * 342 + 6 * 683), (positions, 10752)):
        for f, r in zip(full, rows):
            if r["counts"]["sampled"] != sampled or not 0 < r["k_se"] < 0.05:
                fail(f"sampled step {r['step']}: {r['counts']}, k_se {r['k_se']}")
            if abs(r["k"] - f["k"]) > 5 * r["k_se"]:
                fail(f"sampled step {r['step']}: k {r['k']} vs {f['k']} (se {r['k_se']})")
    if positions[0]["sampling"] != {"mode": "positions", "fraction": 0.5, "seed": 7}:
        fail(f"positions sampling {positions[0]['sampling']}")

    # Per-tensor fits: every tensor, with its role; excluded ones are listed but not pooled.
    for r in stride:
        t = {x["name"]: x for x in r["tensors"]}
        if len(t) != 19:
            fail(f"stride step {r['step']}: {len(t)} tensors")
        q = t["model.layers.1.self_attn.q_proj.weight"]
        if (q["kind"], q["class"], q["layer"], q["pooled"], q["nan"] + q["zero"] + q["inf"]) != (
                "q", "selection", 1, True, 3):
            fail(f"stride step {r['step']}: q_proj {q}")
        for name, kind, cls in (
                ("model.embed_tokens.weight", "embedding", "excluded"),
                ("model.layers.0.input_layernorm.weight", "norm", "excluded"),
                ("model.layers.0.mlp.down_proj.weight", "ffn_out", "transmission"),
                ("model.layers.0.self_attn.v_proj.weight", "v", "value"),
                ("probe.custom.weight", "other", "other")):
            x = t[name]
            if (x["kind"], x["class"], x["pooled"]) != (kind, cls, cls != "excluded"):
                fail(f"stride step {r['step']}: {name} {x}")
        down = t["model.layers.0.mlp.down_proj.weight"]
        if down["elements"] != 2048 or not 0.7 < down["k"] < 1.4 or down["layer"] != 0:
            fail(f"stride step {r['step']}: down_proj {down}")
        if t["model.layers.0.input_layernorm.weight"]["k"] is not None:
            fail("a 32-element tensor cannot be fitted")
    print(f"check_jsonl: {3 * len(STEPS)} lines in 3 files parse and agree")


if __name__ == "__main__":
    main()
