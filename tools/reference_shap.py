#!/usr/bin/env python3
"""Reference predictions and SHAP values for the ultracore-models tests.

    PY="$(scripts/ml-env.sh)"      # pinned xgboost-cpu and shap
    "$PY" tools/reference_shap.py

For each shipped model (models/bull.json, bear.json, sideways.json) and one
fixed set of rows, writes crates/models/tests/fixtures/reference_shap.json:

* `rows`: the inputs (float32 values, `null` = missing), shared by all models;
* per model: XGBoost's prediction (`output_margin=True` and the transformed
  output), shap.TreeExplainer's path-dependent SHAP values (no background
  data, so `feature_perturbation="tree_path_dependent"`, node covers from
  `sum_hessian`) and its `expected_value`;
* per model: shap's and XGBoost's (`pred_contribs=True`, one thread) time per
  row on 2,000 rows, best of 3, for `ultracore bench forensics`.

The rows: 30 drawn from the three regimes' feature distributions (10 each,
seeds the training never used) with 15 % of values missing at random, one row
with every value missing, one with none missing, rows whose values sit exactly
on split conditions of the models (XGBoost's test is `x < condition`, so equal
goes right), and one with extreme values.

It also writes sample-data/decision_rows.csv: the first 12 of those rows as
the CSV `ultracore forensics explain --rows` reads (header = feature names,
empty cell = missing); the CLI tests compare its output with this fixture.

shap's `expected_value` is read only after the first `shap_values()` call:
before it, the attribute may not reflect the model's base score.
"""

import json
import pathlib
import platform
import sys
import time

import numpy as np
import shap
import xgboost as xgb

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train_models  # noqa: E402  (same directory)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/models/tests/fixtures/reference_shap.json"
SAMPLE_CSV = ROOT / "sample-data/decision_rows.csv"
SAMPLE_ROWS = 12  # the first rows of the fixture, for `ultracore forensics explain`
MODELS = ["bull", "bear", "sideways"]
FEATURES = train_models.FEATURES
TIMING_ROWS = 2000


def load(name):
    booster = xgb.Booster()
    booster.load_model(str(ROOT / "models" / f"{name}.json"))
    booster.set_param({"nthread": 1})
    return booster


def reference_rows(boosters):
    rows = []
    rng = np.random.Generator(np.random.PCG64(9001))
    for name in MODELS:
        _, drift, vix, _, _ = train_models.SPECIALISTS[name]
        x = train_models.features(rng, 10, drift, vix)
        x[rng.random(x.shape) < 0.15] = np.nan
        rows.extend(x)
    rows.append(np.full(len(FEATURES), np.nan, dtype=np.float32))
    complete = train_models.features(rng, 1, 0.0, 18.0)[0]
    rows.append(complete)
    # Values exactly on split conditions: the roots and the first left child of
    # the first three trees of every model.
    for booster in boosters.values():
        trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
        for tree in trees[:3]:
            row = complete.copy()
            for node in (0, tree["left_children"][0]):
                row[tree["split_indices"][node]] = np.float32(tree["split_conditions"][node])
            rows.append(row)
    extreme = complete.copy()
    extreme[::2] = np.float32(3.0e38)
    extreme[1::2] = np.float32(-3.0e38)
    rows.append(extreme)
    return np.stack(rows).astype(np.float32)


def per_row_seconds(fn, x):
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - start)
    return best / len(x)


def main():
    boosters = {name: load(name) for name in MODELS}
    x = reference_rows(boosters)
    rng = np.random.Generator(np.random.PCG64(77))
    timing_x = np.concatenate([
        train_models.with_missing(rng, train_models.features(rng, TIMING_ROWS // 3 + 1, d, v))
        for (_, d, v, _, _) in train_models.SPECIALISTS.values()
    ])[:TIMING_ROWS]

    models = {}
    for name, booster in boosters.items():
        dm = xgb.DMatrix(x, feature_names=FEATURES, missing=np.nan)
        margin = booster.predict(dm, output_margin=True)
        prediction = booster.predict(dm)
        explainer = shap.TreeExplainer(booster)
        values = explainer.shap_values(x)
        expected = float(np.asarray(explainer.expected_value).reshape(-1)[0])
        additivity = float(np.max(np.abs(values.sum(axis=1) + expected - margin)))

        timing_dm = xgb.DMatrix(timing_x, feature_names=FEATURES, missing=np.nan)
        shap_s = per_row_seconds(explainer.shap_values, timing_x)
        xgb_s = per_row_seconds(lambda _: booster.predict(timing_dm, pred_contribs=True), timing_x)
        models[name] = {
            "model": f"models/{name}.json",
            "objective": json.loads(booster.save_config())["learner"]["objective"]["name"],
            "expected_value": expected,
            "margin": [float(v) for v in margin],
            "prediction": [float(v) for v in prediction],
            "shap_values": [[float(v) for v in row] for row in values],
            "shap_additivity_max_error": additivity,
            "shap_seconds_per_row": shap_s,
            "xgboost_pred_contribs_seconds_per_row": xgb_s,
        }
        print(f"{name}: expected {expected:.6g}, additivity {additivity:.2g}, "
              f"shap {shap_s * 1e6:.1f} us/row, xgboost pred_contribs {xgb_s * 1e6:.1f} us/row",
              file=sys.stderr)

    fixture = {
        "generated_by": "tools/reference_shap.py",
        "versions": {
            "xgboost": xgb.__version__,
            "shap": shap.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "timing": {"rows": TIMING_ROWS, "threads": 1, "cpu": platform.processor() or platform.machine()},
        "feature_names": FEATURES,
        "rows": [[None if np.isnan(v) else float(v) for v in row] for row in x],
        "models": models,
    }
    with open(SAMPLE_CSV, "w") as f:
        f.write(",".join(FEATURES) + "\n")
        for row in x[:SAMPLE_ROWS]:
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(x)} rows x {len(MODELS)} models", file=sys.stderr)


if __name__ == "__main__":
    main()
