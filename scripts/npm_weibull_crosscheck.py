#!/usr/bin/env python3
"""Run the published npm-weibull-py `weibull_fit` on a raw weight file.

    npm_weibull_crosscheck.py FILE --dtype f32|bf16|f16 [--lo 0.1 --hi 0.9]
    npm_weibull_crosscheck.py FILE --gen NAME [--n N] [--seed S] [--scale S] --dtype ...

FILE holds little-endian elements and nothing else (bf16: the u16 bit
patterns; they become f32 by a 16-bit left shift). The weights go through the
package's own `extract_to_histogram` (|w| as f32, log10, 1024 bins on
[-12, 2]) and `weibull_fit`. The body [lo, hi] must be one of the package's
trims: 0.1,0.9 (mid_80), 0.05,0.95 (mid_90) or 0,1 (full_range).

Prints one JSON line:
  {"k", "lambda", "r2", "ks", "n", "n_total", "n_bins", "trim", "ok"[, "reason"]}
where n counts the elements that landed in the 1024 bins (the fit's total),
n_total every element of the file, n_bins the bins kept by the trim. k, lambda,
r2 and ks are null when there is no fit (ok false). Exit 2 on bad usage/input.

With --gen NAME the file is first written with a deterministic test
distribution (see GENERATORS), already rounded to --dtype, then fitted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stfile  # noqa: E402

PACKAGE_TRIMS = {(0.10, 0.90): "mid_80", (0.05, 0.95): "mid_90", (0.0, 1.0): "full_range"}


def _phi_inv(p: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import ndtri
        return ndtri(p)
    except ImportError:
        from statistics import NormalDist
        inv = NormalDist().inv_cdf
        return np.array([inv(v) for v in p])


def _alternate_signs(a: np.ndarray) -> np.ndarray:
    s = np.ones_like(a)
    s[1::2] = -1
    return a * s


def _plotting(n: int) -> np.ndarray:
    return (np.arange(1, n + 1, dtype=np.float64) - 0.5) / n


# name -> f(n, rng, scale) giving float64 weights. "det-*" use no randomness.
GENERATORS = {
    "det-halfnormal": lambda n, rng, s: _alternate_signs(s * _phi_inv((1 + _plotting(n)) / 2)),
    "det-weibull119": lambda n, rng, s: s * np.power(-np.log1p(-_plotting(n)), 1 / 1.19),
    "gauss": lambda n, rng, s: rng.normal(0.0, s, n),
    "laplace": lambda n, rng, s: rng.laplace(0.0, s, n),
    "student-t4": lambda n, rng, s: s * rng.standard_t(4, n),
    "uniform": lambda n, rng, s: rng.uniform(-s, s, n),
    "weibull-0.8": lambda n, rng, s: _alternate_signs(s * rng.weibull(0.8, n)),
    # Two scales pooled: the pooled k sits below either part's k.
    "gauss-mix": lambda n, rng, s: np.concatenate(
        [rng.normal(0.0, s, n // 2), rng.normal(0.0, 3 * s, n - n // 2)]),
    # Heavy ties at bf16 resolution plus zeros, NaN and Inf mixed in.
    "gauss-specials": lambda n, rng, s: _with_specials(rng.normal(0.0, s, n), rng),
}


def _with_specials(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = w.size
    w[rng.choice(n, n // 100, replace=False)] = 0.0
    w[rng.choice(n, min(7, n), replace=False)] = -0.0
    for v in (np.nan, np.inf, -np.inf):
        w[rng.choice(n, min(3, n), replace=False)] = v
    return w


def encode(w: np.ndarray, dtype: str) -> bytes:
    if dtype == "f32":
        return w.astype("<f4").tobytes()
    if dtype == "f16":
        return w.astype("<f2").tobytes()
    return stfile.f32_to_bf16_bits(w.astype(np.float32)).astype("<u2").tobytes()


def decode(path: str, dtype: str) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.uint8)
    size = {"f32": 4, "bf16": 2, "f16": 2}[dtype]
    if raw.size % size:
        raise ValueError(f"{raw.size} bytes is not a whole number of {dtype} elements")
    if dtype == "f32":
        return raw.view("<f4").astype(np.float32)
    if dtype == "f16":
        return raw.view("<f2").astype(np.float32)
    return stfile.bf16_bits_to_f32(raw.view("<u2"))


def package_trim(lo: float, hi: float) -> str:
    for (a, b), name in PACKAGE_TRIMS.items():
        if abs(lo - a) < 1e-12 and abs(hi - b) < 1e-12:
            return name
    raise ValueError(f"npm-weibull-py has no trim [{lo}, {hi}]; "
                     "use 0.1,0.9 or 0.05,0.95 or 0,1")


def fit(w32: np.ndarray, trim: str) -> dict:
    try:
        from npm_weibull import extract_to_histogram, weibull_fit
    except ImportError as e:
        raise SystemExit(f"npm_weibull_crosscheck: {e}; pip install npm-weibull-py==0.4.0")
    h = extract_to_histogram(w32)
    r = weibull_fit((h["edges"], h["hist"]), trim=trim)

    def num(v):
        return None if v is None or not math.isfinite(v) else float(v)

    out = {"k": num(r["k"]), "lambda": num(r["lambda"]), "r2": num(r["R2"]),
           "ks": num(r["KS"]), "n": int(h["hist"].sum()), "n_total": int(w32.size),
           "n_bins": int(r["n_used"]), "trim": trim, "ok": bool(r["ok"])}
    if "reason" in r:
        out["reason"] = r["reason"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="npm-weibull-py weibull_fit on a raw file.")
    ap.add_argument("file")
    ap.add_argument("--dtype", required=True, choices=("f32", "bf16", "f16"))
    ap.add_argument("--lo", type=float, default=0.10)
    ap.add_argument("--hi", type=float, default=0.90)
    ap.add_argument("--gen", choices=sorted(GENERATORS), help="write FILE first")
    ap.add_argument("--n", type=int, default=1 << 20, help="elements to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=0.02)
    args = ap.parse_args()

    try:
        trim = package_trim(args.lo, args.hi)
        if args.gen:
            rng = np.random.default_rng(args.seed)
            w = np.asarray(GENERATORS[args.gen](args.n, rng, args.scale), dtype=np.float64)
            with open(args.file, "wb") as f:
                f.write(encode(w, args.dtype))
        w32 = decode(args.file, args.dtype)
    except (OSError, ValueError) as e:
        print(f"npm_weibull_crosscheck: {args.file}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(fit(w32, trim)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
