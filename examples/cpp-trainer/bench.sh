#!/usr/bin/env bash
# Monitor cost per step against one CPU training step of a 12.6M-parameter MLP
# (see bench_monitor.cpp for what is timed). Builds first, like test.sh.
#
#   bench.sh [--train-reps N] [--monitor-reps N] [--batch N]
#
# Environment: as build.sh. Run on an otherwise idle machine: both timings are medians
# of single-threaded repetitions.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/build.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$HERE/build/bench_monitor" "$tmp/bench.jsonl" "$@"
