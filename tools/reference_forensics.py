#!/usr/bin/env python3
"""Reference SHAP values of trading decisions for the ultracore-forensics tests.

    PY="$(scripts/ml-env.sh)"      # pinned xgboost-cpu and shap
    "$PY" tools/reference_forensics.py

Writes crates/forensics/tests/fixtures/reference_decisions.json:

* `decisions`: `trading_decision` payloads as the decision engine publishes
  them (features as a JSON map of doubles, a missing feature absent from the
  map), drawn from the three regimes' feature distributions with seeds the
  training never used; about 15 % of features missing at random, plus a
  decision with every feature missing, one with a value exactly on a split
  condition of each model, one naming a feature the models do not know, one
  whose strategy weights differ from its regime probabilities and one that
  weighs only two specialists;
* `expected[i]`: per specialist, shap.TreeExplainer's path-dependent SHAP
  values for the decision's row, its `expected_value` and XGBoost's raw
  margin (`output_margin=True`); and the regime-weighted ensemble, computed
  here in float64 from shap's values exactly as the service defines it:
  values, expected value and margin are the strategy-weighted sums over the
  specialists (a specialist without a weight has weight 0).

The row of a decision is its features in model order converted to float32,
NaN where absent: what XGBoost does with a float64 input. shap's
`expected_value` is read only after the first `shap_values()` call.
"""

import json
import pathlib
import platform
import sys

import numpy as np
import shap
import xgboost as xgb

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train_models  # noqa: E402  (same directory)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/forensics/tests/fixtures/reference_decisions.json"
MODELS = ["bull", "bear", "sideways"]
FEATURES = train_models.FEATURES
SYMBOLS = ["AAPL", "MSFT", "JNJ", "XOM", "KO", "QUAL", "USMV", "MTUM"]


def load(name):
    booster = xgb.Booster()
    booster.load_model(str(ROOT / "models" / f"{name}.json"))
    booster.set_param({"nthread": 1})
    return booster


def decision(i, rng, values, probs, weights, extra=None):
    features = {f: float(v) for f, v in zip(FEATURES, values) if not np.isnan(v)}
    if extra:
        features.update(extra)
    best = max(probs, key=probs.get)
    action = {"bull": "BUY", "bear": "SELL", "sideways": "HOLD"}[best]
    return {
        "decision_id": f"0190f7a2-0000-7000-8000-{i:012x}",
        "timestamp": f"2026-01-{2 + i % 27:02d}T14:{i % 60:02d}:00Z",
        "symbol": SYMBOLS[i % len(SYMBOLS)],
        "action": action,
        "quantity": 0.0 if action == "HOLD" else float(10 * (1 + i % 9)),
        "confidence": round(float(probs[best]), 6),
        "regime_probs": probs,
        "strategy_weights": weights,
        "features": features,
        "risk_checks": [
            {"name": "position_limit", "passed": True, "value": 100.0, "limit": 10000.0}
        ],
        "model_version": "specialists@reference",
    }


def dirichlet(rng):
    p = rng.dirichlet([2.0, 2.0, 2.0])
    return {name: float(v) for name, v in zip(MODELS, p)}


def reference_decisions(boosters):
    rng = np.random.Generator(np.random.PCG64(4242))
    rows = []
    for name in MODELS:
        _, drift, vix, _, _ = train_models.SPECIALISTS[name]
        x = train_models.features(rng, 8, drift, vix).astype(np.float64)
        # Doubles that are not float32 values, so the conversion is exercised.
        x *= 1.0 + rng.normal(0.0, 1e-3, x.shape)
        x[rng.random(x.shape) < 0.15] = np.nan
        rows.extend(x)
    out = []
    for i, values in enumerate(rows):
        probs = dirichlet(rng)
        out.append(decision(len(out), rng, values, probs, dict(probs)))
    # Every feature missing.
    probs = dirichlet(rng)
    out.append(decision(len(out), rng, np.full(len(FEATURES), np.nan), probs, dict(probs)))
    # Values exactly on the root split of each model's first tree.
    complete = train_models.features(rng, 1, 0.0, 18.0)[0].astype(np.float64)
    for booster in boosters.values():
        tree = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"][0]
        row = complete.copy()
        row[tree["split_indices"][0]] = float(np.float32(tree["split_conditions"][0]))
        probs = dirichlet(rng)
        out.append(decision(len(out), rng, row, probs, dict(probs)))
    # A feature the models do not know (ignored).
    probs = dirichlet(rng)
    out.append(decision(len(out), rng, complete, probs, dict(probs), extra={"not_a_model_input": 3.5}))
    # Weights that depart from the regime probabilities.
    probs = dirichlet(rng)
    out.append(decision(len(out), rng, complete, probs, {"bull": 0.5, "bear": 0.25, "sideways": 0.25}))
    # Two specialists weighted (the third has weight 0).
    probs = dirichlet(rng)
    out.append(decision(len(out), rng, complete, probs, {"bull": 0.7, "sideways": 0.3}))
    return out


def row_of(d):
    return np.array([d["features"].get(f, np.nan) for f in FEATURES], dtype=np.float64).astype(np.float32)


def main():
    boosters = {name: load(name) for name in MODELS}
    decisions = reference_decisions(boosters)
    x = np.stack([row_of(d) for d in decisions])
    per_model = {}
    for name, booster in boosters.items():
        dm = xgb.DMatrix(x, feature_names=FEATURES, missing=np.nan)
        margin = booster.predict(dm, output_margin=True)
        explainer = shap.TreeExplainer(booster)
        values = explainer.shap_values(x)
        expected = float(np.asarray(explainer.expected_value).reshape(-1)[0])
        per_model[name] = (values.astype(np.float64), expected, margin.astype(np.float64))

    expected_out = []
    for i, d in enumerate(decisions):
        entry = {"specialists": {}}
        ens_shap = np.zeros(len(FEATURES))
        ens_expected = 0.0
        ens_margin = 0.0
        for name in MODELS:
            values, expected, margin = per_model[name]
            entry["specialists"][name] = {
                "margin": float(margin[i]),
                "expected_value": expected,
                "shap": [float(v) for v in values[i]],
            }
            w = d["strategy_weights"].get(name, 0.0)
            ens_shap += w * values[i]
            ens_expected += w * expected
            ens_margin += w * float(margin[i])
        entry["ensemble"] = {
            "margin": ens_margin,
            "expected_value": ens_expected,
            "shap": [float(v) for v in ens_shap],
        }
        expected_out.append(entry)

    fixture = {
        "generated_by": "tools/reference_forensics.py",
        "versions": {
            "xgboost": xgb.__version__,
            "shap": shap.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "specialists": MODELS,
        "feature_names": FEATURES,
        "decisions": decisions,
        "expected": expected_out,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(decisions)} decisions x {len(MODELS)} specialists", file=sys.stderr)


if __name__ == "__main__":
    main()
