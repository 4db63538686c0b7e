#!/usr/bin/env python3
"""Turn criterion's estimates from `cargo bench --bench ingest` into the README's tables.

Reads target/criterion/ingest_*/{read,simd,scalar}/<DTYPE>/new/{benchmark,estimates}.json and
fit/*/<DTYPE>/new/estimates.json; prints Markdown. Ratios compare numbers from one run.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
SIZE = {"BF16": 2, "F16": 2, "F32": 4}


def load(path):
    bench = json.loads((path / "new" / "benchmark.json").read_text())
    est = json.loads((path / "new" / "estimates.json").read_text())
    seconds = est["median"]["point_estimate"] * 1e-9
    return (bench.get("throughput") or {}).get("Bytes"), seconds


def main():
    groups = sorted(ROOT.glob("ingest_*"))
    if not groups:
        sys.exit("bench-table: no results; run `cargo bench --bench ingest` first")
    print("| dtype | buffer | kernel (SIMD) | GB/s | plain read GB/s | ratio to read | scalar twin |")
    print("|---|---|---|---|---|---|---|")
    for group in groups:
        label = group.name.split("_", 1)[1]
        for dtype in ("BF16", "F16", "F32"):
            try:
                nbytes, t_simd = load(group / "simd" / dtype)
                _, t_read = load(group / "read" / dtype)
                _, t_scalar = load(group / "scalar" / dtype)
            except FileNotFoundError:
                continue
            elements = nbytes / SIZE[dtype]
            gbs = nbytes / t_simd / 1e9
            read = nbytes / t_read / 1e9
            print(f"| {dtype} | {label} ({nbytes / 2**20:.0f} MiB) | {elements / t_simd / 1e9:.2f} G el/s "
                  f"| {gbs:.2f} | {read:.1f} | {gbs / read:.2f} | {elements / t_scalar / 1e9:.2f} G el/s |")
    fits = sorted(p.parent.parent for p in (ROOT / "fit").glob("*/*/new/benchmark.json"))
    if fits:
        print()
        print("| fit | dtype | time |")
        print("|---|---|---|")
        for path in fits:
            _, t = load(path)
            print(f"| {path.parent.name} | {path.name} | {t * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
