"""Checks the outputs of examples/cpp-trainer/test.sh (numpy and the repo's scripts/ only).

  check_run.py OUT_DIR STEPS SAVE_STEPS SHORT_STEPS

OUT_DIR holds trainer.out, run.jsonl and checkpoints/ of the main run (STEPS steps,
checkpoints at the comma-separated SAVE_STEPS), again.jsonl (the same seed for
SHORT_STEPS steps) and bf16.jsonl + bf16-checkpoints/ (SHORT_STEPS steps, weights
pushed and saved as bf16, one checkpoint at the last step). Exits 1 naming every failure.
"""

import json
import math
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import numpy as np  # noqa: E402
import oracle  # noqa: E402
import stfile  # noqa: E402

# The four feed-forward matrices form the pooled fit; lm_head and biases are excluded
# by npmk's default policy, so they must not change the logged k.
POOLED = [f"model.layers.{i}.mlp.{p}.weight" for i in (0, 1) for p in ("up_proj", "down_proj")]
ALL_TENSORS = {n for n in POOLED} | {n.replace(".weight", ".bias") for n in POOLED} | {"lm_head.weight", "lm_head.bias"}
POOLED_ELEMENTS = 4 * 128 * 64  # default --hidden 128 --width 64
# f32 magnitudes are binned at relative width 2^-8 in the sketch: the k error must stay
# below 1e-4 (METHOD.md 1; about 1e-5 observed).
F32_SKETCH_TOL = 1e-4

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def read_jsonl(path, steps):
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                check(False, f"{path}:{lineno}: not JSON ({e})")
                continue
            if not check(isinstance(obj, dict), f"{path}:{lineno}: not a JSON object"):
                continue
            rows.append(obj)
    check(len(rows) == steps, f"{path}: {len(rows)} lines, expected one per step ({steps})")
    for i, r in enumerate(rows):
        if not check(r.get("step") == i + 1, f"{path}:{i + 1}: step {r.get('step')!r}, expected {i + 1}"):
            break
        k = r.get("k")
        if not check(isinstance(k, float) and math.isfinite(k) and 0.3 < k < 3.0,
                     f"{path}:{i + 1}: k {k!r} is not a finite number in (0.3, 3)"):
            break
    # The role tables class the four up/down_proj matrices as transmission and pool them;
    # lm_head and the six biases are excluded. dk needs two steps, d2k three.
    for i, r in enumerate(rows[:steps]):
        ok = (r.get("tensors_pooled") == 4 and r.get("excluded", {}).get("tensors") == 6
              and r.get("k_class", {}).get("transmission") == r.get("k")
              and r.get("n_class", {}).get("transmission") == POOLED_ELEMENTS
              and isinstance(r.get("micros"), int)
              and (r.get("dk") is None) == (i == 0)
              and (r.get("d2k") is None) == (i < 2))
        if not check(ok, f"{path}:{i + 1}: unexpected classification or fields: {json.dumps(r)[:400]}"):
            break
    return rows


def pooled_k(ckpt):
    tensors = {t.name: t for _, t in stfile.read_checkpoint(ckpt)}
    check(set(tensors) == ALL_TENSORS, f"{ckpt}: tensors {sorted(tensors)}")
    a = np.sort(np.concatenate([oracle.magnitudes(tensors[n].values_f64()) for n in POOLED if n in tensors]))
    return oracle.fit_sorted(a, 0.10, 0.90)["k"], tensors


def main():
    out, steps = sys.argv[1], int(sys.argv[2])
    save_steps = [int(s) for s in sys.argv[3].split(",")]
    short = int(sys.argv[4])

    # 1. The model learned: well above chance (10%) on held-out digits.
    text = open(os.path.join(out, "trainer.out"), encoding="utf-8").read()
    m = re.search(r"^result: steps=(\d+) train_acc=([\d.]+) test_acc=([\d.]+)", text, re.M)
    if check(m is not None, "trainer.out has no result line"):
        check(int(m.group(1)) == steps, f"trainer ran {m.group(1)} steps, expected {steps}")
        check(float(m.group(2)) > 0.95, f"train accuracy {m.group(2)} <= 0.95")
        check(float(m.group(3)) > 0.90, f"test accuracy {m.group(3)} <= 0.90")

    # 2. One JSON object per step, steps 1..N in order, finite k.
    run = read_jsonl(os.path.join(out, "run.jsonl"), steps)
    if len(run) == steps:
        check(run[0]["k"] != run[-1]["k"], "k did not change over the run: weights not updated?")

    # 3. Each checkpoint holds the weights the monitor saw at that step: the sort-based
    #    pooled k of its feed-forward matrices matches the logged k.
    for s in save_steps:
        ckpt = os.path.join(out, "checkpoints", f"step{s}", "model.safetensors")
        if not check(os.path.isfile(ckpt), f"missing checkpoint {ckpt}"):
            continue
        k, tensors = pooled_k(ckpt)
        check(all(t.dtype == "F32" for t in tensors.values()), f"{ckpt}: not all F32")
        check(tensors["lm_head.weight"].shape == [10, 64], f"{ckpt}: lm_head shape {tensors['lm_head.weight'].shape}")
        _, meta = stfile.read(ckpt)
        check((meta or {}).get("step") == str(s), f"{ckpt}: metadata step {(meta or {}).get('step')!r}")
        if len(run) >= s:
            check(abs(k - run[s - 1]["k"]) < F32_SKETCH_TOL,
                  f"step {s}: checkpoint k {k:.6f} vs logged {run[s - 1]['k']:.6f}")

    # 4. Determinism: the same seed gives the same k at every step.
    again = read_jsonl(os.path.join(out, "again.jsonl"), short)
    if len(again) == short and len(run) >= short:
        diff = [i + 1 for i in range(short) if again[i]["k"] != run[i]["k"]]
        check(not diff, f"rerun with the same seed differs from step {diff[:1]}")

    # 5. bf16 pushes: close to f32 (rounding moves k by ~1e-5), and exact against the
    #    bf16 checkpoint (the bf16 sketch has one bin per value).
    bf = read_jsonl(os.path.join(out, "bf16.jsonl"), short)
    if len(bf) == short and len(run) >= short:
        worst = max(abs(bf[i]["k"] - run[i]["k"]) for i in range(short))
        check(worst < 1e-3, f"bf16 k departs from f32 k by {worst:.2e}")
        ckpt = os.path.join(out, "bf16-checkpoints", f"step{short}", "model.safetensors")
        if check(os.path.isfile(ckpt), f"missing checkpoint {ckpt}"):
            k, tensors = pooled_k(ckpt)
            check(all(t.dtype == "BF16" for t in tensors.values()), f"{ckpt}: not all BF16")
            check(abs(k - bf[-1]["k"]) < 1e-9, f"bf16 step {short}: checkpoint k {k:.10f} vs logged {bf[-1]['k']:.10f}")
            # --per-tensor: every pushed tensor has its own fit, each exact for bf16.
            logged = {t["name"]: t for t in bf[-1].get("tensors", [])}
            check(set(logged) == ALL_TENSORS, f"bf16 per-tensor names {sorted(logged)}")
            for name in POOLED + ["lm_head.weight"]:
                if name in logged and name in tensors:
                    want = oracle.fit_sorted(oracle.magnitudes(tensors[name].values_f64()), 0.10, 0.90)["k"]
                    got = logged[name].get("k")
                    check(isinstance(got, float) and abs(got - want) < 1e-9,
                          f"bf16 step {short}: {name} logged k {got!r} vs checkpoint {want:.10f}")
            check(logged.get("lm_head.weight", {}).get("pooled") is False, "lm_head is pooled")

    if failures:
        for f in failures:
            print(f"check_run: FAIL {f}", file=sys.stderr)
        return 1
    last = run[-1] if run else {}
    print(f"check_run: ok ({steps} steps, final k {last.get('k', float('nan')):.5f}, "
          f"{len(save_steps)} checkpoints match the log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
