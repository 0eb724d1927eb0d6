#!/usr/bin/env python3
"""Compares the hot paths of two `ultracore` builds in one run.

    tools/compare_builds.py BEFORE_BINARY AFTER_BINARY [--rounds 3] [--json]

Runs `bench flow`, `bench decisions`, `bench forensics --no-shap --pipeline`
and `bench log` with each binary, alternating before/after within every
round so both see the same machine (these machines are shared and noisy),
and prints each figure's median per build and the ratio after / before.
Run it from the repository root (the benchmarks read `models/` and
`sample-data/`). Every benchmark writes to a fresh temporary directory and
deletes it, and starts after a sync and a pause (`--settle`): without them
the first run of a round paid for the writeback of the `bench log` before
it (flow p99 three times as high).
"""

import argparse
import json
import statistics
import os
import subprocess
import sys
import tempfile
import time

# (name, arguments, [(figure, path in the JSON, "higher" | "lower" is better)])
BENCHES = [
    (
        "flow",
        ["bench", "flow", "--requests", "200", "--clients", "8", "--seconds", "10", "--json"],
        [
            ("flow p50 ms", ["p50_ms"], "lower"),
            ("flow p99 ms", ["p99_ms"], "lower"),
            ("flow optimizations/s", ["optimizations_per_sec"], "higher"),
        ],
    ),
    (
        "decisions",
        ["bench", "decisions", "--json"],
        [
            ("decide p50 us (log up)", ["embedded_up", "p50_us"], "lower"),
            ("decide p99 us (log up)", ["embedded_up", "p99_us"], "lower"),
            ("decide p50 us (log down)", ["log_down", "p50_us"], "lower"),
        ],
    ),
    (
        "forensics",
        ["bench", "forensics", "--no-shap", "--pipeline", "--pipeline-decisions", "200000",
         "--rate", "60000", "--seconds", "10", "--json"],
        [
            ("forensics drain decisions/s", ["drain", "decisions_per_s"], "higher"),
            ("forensics sustained lag p99 s", ["sustained", "lag_seconds_p99"], "lower"),
        ],
    ),
    (
        "log",
        ["bench", "log", "--json"],
        [
            ("log records/s", ["records_per_sec"], "higher"),
            ("log p99 ms", ["p99_ms"], "lower"),
        ],
    ),
]


def figure(doc, path):
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc if isinstance(doc, (int, float)) else None


def run(binary, args, data_dir):
    out = subprocess.run(
        [binary, "--data-dir", data_dir, *args],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{binary} {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    # The JSON document is the last line that parses.
    for line in reversed(out.stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    raise RuntimeError(f"{binary} {' '.join(args)} printed no JSON:\n{out.stdout}\n{out.stderr}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", action="append", help="run only these benchmarks (flow, decisions, forensics, log)")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds to wait after syncing before each run, so the writeback of the run before does not land in it")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    samples = {}  # (figure, build) -> [values]
    failures = []
    for r in range(a.rounds):
        for name, args, figures in BENCHES:
            if a.only and name not in a.only:
                continue
            order = [("before", a.before), ("after", a.after)]
            if r % 2 == 1:
                order.reverse()  # neither build always goes first
            for build, binary in order:
                os.sync()
                time.sleep(a.settle)
                with tempfile.TemporaryDirectory(prefix="ultracore-compare-") as data_dir:
                    print(f"round {r + 1}/{a.rounds}: {name} ({build})", file=sys.stderr, flush=True)
                    try:
                        doc = run(binary, args, data_dir)
                    except RuntimeError as e:
                        # One failed run is reported and left out, not the whole comparison.
                        print(f"  {e}", file=sys.stderr, flush=True)
                        failures.append({"round": r + 1, "bench": name, "build": build, "error": str(e)})
                        continue
                for label, path, better in figures:
                    v = figure(doc, path)
                    if v is not None:
                        samples.setdefault((label, better), {}).setdefault(build, []).append(v)
                        print(f"  {label}: {v}", file=sys.stderr, flush=True)
    rows = []
    for (label, better), by_build in samples.items():
        before = statistics.median(by_build.get("before") or [float("nan")])
        after = statistics.median(by_build.get("after") or [float("nan")])
        ratio = after / before if before else float("nan")
        rows.append({
            "figure": label,
            "better": better,
            "before": before,
            "after": after,
            "ratio_after_before": round(ratio, 3),
            "samples": by_build,
        })
    if a.json:
        print(json.dumps({"figures": rows, "failures": failures}))
        return
    width = max(len(r["figure"]) for r in rows) if rows else 10
    print(f"{'figure':<{width}}  {'before':>12}  {'after':>12}  {'after/before':>12}  better")
    for r in rows:
        print(f"{r['figure']:<{width}}  {r['before']:>12.3f}  {r['after']:>12.3f}  {r['ratio_after_before']:>12.3f}  {r['better']}")
    for f in failures:
        print(f"failed: round {f['round']} {f['bench']} ({f['build']})")


if __name__ == "__main__":
    main()
