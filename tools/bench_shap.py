#!/usr/bin/env python3
"""shap's and XGBoost's SHAP time per decision, for `ultracore bench forensics --vs-python`.

    PY="$(scripts/bench-env.sh)"   # pinned shap, xgboost-cpu and numpy
    "$PY" tools/bench_shap.py --models models --input rows.f64 --shape 50000 20

`ultracore bench forensics --vs-python` runs this script on the rows it times
itself, so every ratio it prints compares two measurements of one run, on one
machine, on the same data.

Input: the file given by --input holds the rows as little-endian float64,
row-major, NaN = missing, in the models' feature order (the order of
`feature_names` in models/<name>.json, which tools/train_models.py writes as
its FEATURES list); --shape gives its rows and columns. The Rust side holds
the rows as float32, so converting them back to float32 here (what XGBoost
does with any input) loses nothing.

A decision is explained by all three regime specialists (bull, bear,
sideways), as the Rust bench counts it. Measured, each the best of --runs
after an untimed warm-up on the first rows, in seconds per decision:

* `shap_one_row`: `shap.TreeExplainer(booster).shap_values(row)` for one row
  at a time, per specialist, over the first --one-row rows;
* `shap_batch`: the same call on the whole array at once, per specialist;
* `xgboost_pred_contribs_batch`: `booster.predict(DMatrix, pred_contribs=True)`
  on the whole array at once, per specialist (the DMatrix built beforehand).

shap's TreeExplainer, given an XGBoost booster and no background data
(`feature_perturbation="tree_path_dependent"`), delegates to XGBoost's own
TreeSHAP (`pred_contribs=True`) after building a DMatrix; its figures are what
a user of shap pays, XGBoost's are the algorithm alone. shap's additivity check
(a second prediction per call) is turned off (`check_additivity=False`): it
verifies the values, it does not compute them, and the agreement check below
does that job.

Threads: OMP_NUM_THREADS=1 is set before numpy and XGBoost are imported,
XGBoost's global `nthread` is 1 (`xgboost.set_config`), every booster has
`nthread=1` and every DMatrix built here `nthread=1`; shap's TreeExplainer
adds no threads of its own on this path. So every figure is one thread.

Output: one JSON object on stdout, with the versions, those figures, and the
SHAP values (`shap_values` of the first --check rows, per specialist, as shap
returns them: float32 rounded) for the agreement check.
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import time

# Before numpy and XGBoost load OpenMP or BLAS: one thread everywhere.
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import shap  # noqa: E402
import xgboost as xgb  # noqa: E402

SPECIALISTS = ["bull", "bear", "sideways"]
WARM_UP_ROWS = 64  # enough to load code and caches; the full run would double the time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=pathlib.Path, default=pathlib.Path("models"),
                   help="directory with bull.json, bear.json and sideways.json")
    p.add_argument("--input", type=pathlib.Path, required=True,
                   help="rows: little-endian float64, row-major, NaN = missing")
    p.add_argument("--shape", type=int, nargs=2, metavar=("ROWS", "FEATURES"), required=True)
    p.add_argument("--one-row", type=int, default=1000,
                   help="rows explained one at a time (the first ones of the file)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per case; the best is reported")
    p.add_argument("--check", type=int, default=16,
                   help="rows whose SHAP values are returned for the agreement check")
    args = p.parse_args()
    rows, features = args.shape
    if rows <= 0 or features <= 0 or args.one_row <= 0 or args.runs <= 0 or args.check < 0:
        p.error("--shape, --one-row and --runs must be positive, --check not negative")
    return args


def load(models, name, features):
    booster = xgb.Booster()
    booster.load_model(str(models / f"{name}.json"))
    booster.set_param({"nthread": 1})
    if booster.num_features() != features:
        sys.exit(f"bench_shap: {name}.json has {booster.num_features()} features, the rows {features}")
    return booster


def matrix(x, names):
    return xgb.DMatrix(x, missing=np.nan, feature_names=names, nthread=1)


def seconds_per_row(runs, fn, x):
    """Best of `runs` timed calls of `fn(x)`, divided by the rows of `x`."""
    fn(x[:WARM_UP_ROWS])
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - start)
    return best / len(x)


def main():
    args = parse_args()
    rows, features = args.shape
    x = np.fromfile(args.input, dtype="<f8")
    if x.size != rows * features:
        sys.exit(f"bench_shap: {args.input} holds {x.size} values, not {rows} x {features}")
    x = x.reshape(rows, features).astype(np.float32)
    one_row = x[: min(args.one_row, rows)]
    xgb.set_config(nthread=1)

    boosters = [load(args.models, name, features) for name in SPECIALISTS]
    explainers = [shap.TreeExplainer(b) for b in boosters]
    names = boosters[0].feature_names
    whole = matrix(x, names)

    def shap_one_row(part):
        for i in range(len(part)):
            row = part[i : i + 1]
            for e in explainers:
                e.shap_values(row, check_additivity=False)

    def shap_batch(part):
        for e in explainers:
            e.shap_values(part, check_additivity=False)

    def pred_contribs(part):
        # The whole array's DMatrix is built once, outside the timed calls
        # (the warm-up's slice gets its own).
        m = whole if part is x else matrix(part, names)
        for b in boosters:
            b.predict(m, pred_contribs=True)

    shap_one_row_s = seconds_per_row(args.runs, shap_one_row, one_row)
    shap_batch_s = seconds_per_row(args.runs, shap_batch, x)
    xgb_s = seconds_per_row(args.runs, pred_contribs, x)

    check = x[: min(args.check, rows)]
    values = {
        name: [[float(v) for v in r] for r in e.shap_values(check, check_additivity=False)]
        for name, e in zip(SPECIALISTS, explainers)
    }
    print(json.dumps({
        "generated_by": "tools/bench_shap.py",
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "shap": shap.__version__,
            "xgboost": xgb.__version__,
        },
        "threads": 1,
        "thread_settings": "OMP_NUM_THREADS=1; xgboost.set_config(nthread=1); "
                           "booster nthread=1; DMatrix nthread=1",
        "specialists": SPECIALISTS,
        "rows": rows,
        "one_row_rows": len(one_row),
        "runs": args.runs,
        "seconds_per_decision": {
            "shap_one_row": shap_one_row_s,
            "shap_batch": shap_batch_s,
            "xgboost_pred_contribs_batch": xgb_s,
        },
        "check_rows": len(check),
        "shap_values": values,
    }))


if __name__ == "__main__":
    main()
