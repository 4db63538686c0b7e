#!/usr/bin/env python3
"""End to end, issue 5: the example trainer's run through `npmk trajectory`, both ways.

    e2e_trajectory.py NPMK RUN_DIR

RUN_DIR is what `examples/cpp-trainer/test.sh RUN_DIR` leaves: run.jsonl (the monitor's log,
one line per step) and checkpoints/step<N>/model.safetensors. Checks that
  1. the log through `npmk trajectory --json --plot` gives points, phases and an SVG plot;
  2. the checkpoint directory scanned in one `npmk trajectory` command gives, at every saved
     step, the k the monitor logged at that step, to 1e-9.
Prints one summary line; exits non-zero with a message on the first failure.
"""
import json
import pathlib
import subprocess
import sys


def fail(message):
    sys.exit(f"e2e_trajectory: {message}")


def trajectory(npmk, *args):
    out = subprocess.run([npmk, "trajectory", *args, "--json", "--quiet"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        fail(f"npmk trajectory {' '.join(args)} exited {out.returncode}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def main():
    if len(sys.argv) != 3:
        fail("usage: e2e_trajectory.py NPMK RUN_DIR")
    npmk, run = sys.argv[1], pathlib.Path(sys.argv[2])
    log = run / "run.jsonl"
    logged = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        logged[entry["step"]] = entry["k"]

    plot = run / "run.svg"
    from_log = trajectory(npmk, str(log), "--plot", str(plot))
    # A log with a line every step is thinned to 10 points per decade; the points kept must be
    # logged steps with their logged k, from the first step to the last.
    kept = from_log["points"]
    if len(kept) < 10 or kept[0]["step"] != min(logged) or kept[-1]["step"] != max(logged):
        fail(f"{len(kept)} points kept from a log of {len(logged)} steps: {kept[:3]}...")
    for p in kept:
        if logged.get(p["step"]) != p["k"]:
            fail(f"step {p['step']}: analysed k {p['k']!r}, logged {logged.get(p['step'])!r}")
    if not from_log["phases"] or from_log["phases"][0]["name"] != "P0":
        fail(f"no phases from the log: {from_log['phases']}")
    svg = plot.read_text()
    if not svg.startswith("<svg") or "NPM-d2k" not in svg:
        fail(f"{plot} is not the trajectory plot")

    from_checkpoints = trajectory(npmk, str(run / "checkpoints"))
    points = from_checkpoints["points"]
    if len(points) < 5:
        fail(f"only {len(points)} checkpoints found in {run / 'checkpoints'}")
    worst = 0.0
    for p in points:
        if p["step"] not in logged:
            fail(f"checkpoint step {p['step']} is not in the log")
        diff = abs(p["k"] - logged[p["step"]])
        worst = max(worst, diff)
        if diff > 1e-9:
            fail(f"step {p['step']}: checkpoint k {p['k']!r} but the monitor logged "
                 f"{logged[p['step']]!r}")
    phases = ", ".join(f"{ph['name']} {ph['start_step']}-{ph['end_step']}"
                       for ph in from_log["phases"])
    print(f"e2e_trajectory: log of {len(logged)} steps ({len(kept)} points kept) -> {phases}; "
          f"{len(points)} checkpoints "
          f"match the logged k (largest difference {worst:.1e})")


if __name__ == "__main__":
    main()
