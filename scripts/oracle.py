#!/usr/bin/env python3
"""Naive sort-based NPM-k oracle (METHOD.md section 1), numpy float64.

    oracle.py PATH [--bf16-round] [--json] [--trim LO,HI] [--filter REGEX]
    oracle.py --selftest

PATH is a .safetensors file, a *.safetensors.index.json or a directory holding
one. Every F32, F16 and BF16 tensor is fitted, whatever its name; other dtypes
are listed as skipped. --bf16-round rounds F32 values to bf16 (nearest, ties to
even) before fitting, which is what the bf16 fixture must reproduce.

The estimator, deliberately written the slow, obvious way:
  a = |w| over finite non-zero elements, sorted; F_i = (i - 0.5) / n;
  keep lo <= F_i <= hi; OLS of y = ln(-ln(1 - F)) on x = ln a;
  k = slope, lambda = exp(-intercept / k), R^2 of that regression;
  KS = max over kept i of max(|i/n - Fw(a_i)|, |(i-1)/n - Fw(a_i)|).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stfile  # noqa: E402

TRIMS = {"mid80": (0.10, 0.90), "mid90": (0.05, 0.95), "full": (0.0, 1.0)}
MIN_N = 100
FITTED = ("F32", "F16", "BF16")


def counts(w: np.ndarray) -> dict:
    """Element counts by class; zero includes -0.0."""
    return {
        "n": int(w.size),
        "n_zero": int(np.count_nonzero(w == 0)),
        "n_nan": int(np.count_nonzero(np.isnan(w))),
        "n_posinf": int(np.count_nonzero(w == np.inf)),
        "n_neginf": int(np.count_nonzero(w == -np.inf)),
    }


def fit_sorted(a: np.ndarray, lo: float, hi: float) -> dict:
    """Fit from ascending magnitudes a (finite, > 0). Returns the fit or a reason."""
    n = a.size
    if n < MIN_N:
        return {"reason": f"fewer than {MIN_N} usable elements ({n})"}

    # Ranks and plotting positions, inclusive trim.
    i = np.arange(1, n + 1, dtype=np.float64)
    F = (i - 0.5) / n
    keep = (F >= lo) & (F <= hi)
    ak, Fk, ik = a[keep], F[keep], i[keep]
    if ak.size < 2 or ak[0] == ak[-1]:
        return {"reason": "fewer than 2 distinct values in the body"}

    # Ordinary least squares of y on x, centred sums.
    x = np.log(ak)
    y = np.log(-np.log1p(-Fk))
    xm, ym = x.mean(), y.mean()
    dx, dy = x - xm, y - ym
    sxx, sxy, syy = float(dx @ dx), float(dx @ dy), float(dy @ dy)
    k = sxy / sxx
    b = ym - k * xm
    lam = math.exp(-b / k)
    r2 = sxy * sxy / (sxx * syy)

    # Kolmogorov-Smirnov distance over the kept ranks (both step sides).
    Fw = -np.expm1(-np.power(ak / lam, k))
    ks = float(np.max(np.maximum(np.abs(ik / n - Fw), np.abs((ik - 1) / n - Fw))))
    return {"k": k, "lambda": lam, "r2": r2, "ks": ks, "n_used": int(ak.size)}


def magnitudes(w: np.ndarray) -> np.ndarray:
    a = np.abs(w[np.isfinite(w) & (w != 0)])
    a.sort(kind="stable")
    return a


def tensor_values(t: stfile.Tensor, bf16_round: bool) -> np.ndarray:
    if bf16_round and t.dtype == "F32":
        bits = stfile.f32_to_bf16_bits(np.frombuffer(t.data, "<f4"))
        return stfile.bf16_bits_to_f32(bits).astype(np.float64)
    return t.values_f64()


def run(path: str, bf16_round: bool, trims: dict, name_filter: str | None) -> dict:
    rows = []
    for shard, t in stfile.read_checkpoint(path):
        if name_filter and not re.search(name_filter, t.name):
            continue
        row = {"name": t.name, "file": shard, "dtype": t.dtype, "shape": t.shape}
        if t.dtype not in FITTED:
            row["skipped"] = f"dtype {t.dtype} is not fitted"
            rows.append(row)
            continue
        w = tensor_values(t, bf16_round)
        row.update(counts(w))
        a = magnitudes(w)
        row["fits"] = {name: fit_sorted(a, lo, hi) for name, (lo, hi) in trims.items()}
        rows.append(row)
    return {"path": path, "bf16_round": bf16_round, "trims": trims, "tensors": rows}


def print_table(res: dict) -> None:
    trims = list(res["trims"])
    print(f"{'tensor':<56} {'dtype':<5} {'n':>10} " + " ".join(f"{t:>10}" for t in trims))
    for r in res["tensors"]:
        head = f"{r['name']:<56} {r['dtype']:<5} "
        if "skipped" in r:
            print(head + f"{'-':>10} skipped: {r['skipped']}")
            continue
        ks = []
        for t in trims:
            f = r["fits"][t]
            ks.append(f"{f['k']:10.6f}" if "k" in f else f"{'no fit':>10}")
        extra = ""
        if r["n_zero"] or r["n_nan"] or r["n_posinf"] or r["n_neginf"]:
            extra = (f"  zero={r['n_zero']} nan={r['n_nan']}"
                     f" +inf={r['n_posinf']} -inf={r['n_neginf']}")
        print(head + f"{r['n']:>10} " + " ".join(ks) + extra)


def selftest() -> int:
    """METHOD.md section 2 reference table (deterministic inputs, n = 1e6)."""
    from statistics import NormalDist

    n = 1_000_000
    F = (np.arange(1, n + 1) - 0.5) / n
    try:
        from scipy.special import ndtri
        z = ndtri((1 + F) / 2)
    except ImportError:
        inv = NormalDist().inv_cdf
        z = np.array([inv(p) for p in (1 + F) / 2])
    half = 0.02 * z
    weib = 0.02 * np.power(-np.log1p(-F), 1 / 1.19)
    bf = stfile.bf16_bits_to_f32(stfile.f32_to_bf16_bits(half.astype(np.float32)))
    f32 = half.astype(np.float32).astype(np.float64)
    checks = [
        ("half-normal f64 mid80 k", fit_sorted(np.sort(half), .10, .90)["k"], 1.205434, 1e-6),
        ("half-normal f64 mid90 k", fit_sorted(np.sort(half), .05, .95)["k"], 1.190923, 1e-6),
        ("half-normal f64 full k", fit_sorted(np.sort(half), 0, 1)["k"], 1.151068, 1e-6),
        ("half-normal f64 mid80 lambda/0.02",
         fit_sorted(np.sort(half), .10, .90)["lambda"] / 0.02, 0.887487, 1e-6),
        ("half-normal f32 mid80 k", fit_sorted(np.sort(f32), .10, .90)["k"], 1.205434, 2e-6),
        ("half-normal bf16 mid80 k",
         fit_sorted(np.sort(bf.astype(np.float64)), .10, .90)["k"], 1.205427, 2e-6),
        ("weibull mid80 k", fit_sorted(weib, .10, .90)["k"], 1.19, 1e-6),
        ("weibull full lambda", fit_sorted(weib, 0, 1)["lambda"], 0.02, 1e-8),
    ]
    bad = 0
    for what, got, want, tol in checks:
        ok = abs(got - want) <= tol
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {got:.7f} (want {want} +- {tol:g})")
    print(f"oracle selftest: {len(checks) - bad} passed, {bad} failed")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description="Sort-based NPM-k oracle (METHOD.md 1).")
    ap.add_argument("path", nargs="?", help="safetensors file, index.json or directory")
    ap.add_argument("--bf16-round", action="store_true",
                    help="round F32 tensors to bf16 (nearest even) before fitting")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--trim", action="append", default=[], metavar="LO,HI",
                    help="extra body trim (repeatable)")
    ap.add_argument("--filter", metavar="REGEX", help="only tensors whose name matches")
    ap.add_argument("--selftest", action="store_true", help="check METHOD.md section 2")
    args = ap.parse_args()
    if args.selftest:
        return selftest()
    if not args.path:
        ap.error("PATH is required")

    trims = dict(TRIMS)
    for t in args.trim:
        lo, hi = (float(v) for v in t.split(","))
        trims[f"{lo:g},{hi:g}"] = (lo, hi)
    try:
        res = run(args.path, args.bf16_round, trims, args.filter)
    except (OSError, ValueError, KeyError) as e:
        print(f"oracle: {args.path}: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        print()
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
