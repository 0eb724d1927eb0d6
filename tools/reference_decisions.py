#!/usr/bin/env python3
"""Reference values for the trading decision engine (crates/decisions).

    PY="$(scripts/ml-env.sh)"      # pinned xgboost-cpu, numpy
    "$PY" tools/reference_decisions.py

Writes two files from the shipped specialists (models/{bull,bear,sideways}.json):

- `models/evaluation.csv`: the evaluation set model updates are measured on:
  400 out-of-sample rows per regime drawn by the training generator of
  tools/train_models.py with seeds other than the training ones (training
  seed + 1000), with missing values as in training; columns: the 20
  features (empty = missing), `regime`, `fwd_return_5d` (the latent
  forward 5-day return, %).
- `crates/decisions/tests/fixtures/reference_decisions.json`: 39 requests
  (12 generator rows per regime, seed + 2000, and 3 made by hand) with each
  specialist's prediction from XGBoost, and the regime probabilities,
  signals, score, action and confidence computed here independently of the
  Rust code, following the formulas documented in crates/decisions; plus
  each shipped specialist's Sharpe ratio on the evaluation set.

Feature values are written as the shortest decimal of their float32 value,
so Rust reads back the exact numbers XGBoost saw. Running the script twice
writes identical files.
"""

import json
import math
import pathlib
import sys

import numpy as np
import xgboost as xgb

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train_models as tm  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVAL_OUT = ROOT / "models" / "evaluation.csv"
FIXTURE_OUT = ROOT / "crates" / "decisions" / "tests" / "fixtures" / "reference_decisions.json"
REGIMES = ["bull", "bear", "sideways"]
EVAL_ROWS = 400
FIXTURE_ROWS = 12

# The engine's defaults (crates/decisions/src/config.rs, regime.rs).
BUY, SELL = 0.25, 0.25
SIDEWAYS_SCALE_BPS = 100.0
REGIME = dict(return_20d_unit=4.0, sma_ratio_unit=0.02, vix_center=20.0, vix_unit=6.0,
              volatility_center=20.0, volatility_unit=8.0, clip=3.0,
              trend_weight=2.0, stress_weight=1.0, sideways_bias=1.0)


def draw(regime, seed, n):
    """n rows (float32, NaN = missing) and their forward returns for one regime."""
    _, drift, vix_mean, k_rev, _ = tm.SPECIALISTS[regime]
    rng = np.random.Generator(np.random.PCG64(seed))
    complete = tm.features(rng, n, drift, vix_mean)
    fwd = tm.forward_return(rng, complete, drift, k_rev)
    return tm.with_missing(rng, complete), fwd


def f32_text(v):
    """The shortest decimal that reads back as this float32 ('' when missing)."""
    return "" if np.isnan(v) else np.format_float_positional(np.float32(v), unique=True, trim="-")


def regime_probs(f):
    p = REGIME

    def clip(x):
        return min(max(x, -p["clip"]), p["clip"])

    def mean(parts):
        parts = [x for x in parts if x is not None]
        return sum(parts) / len(parts) if parts else 0.0

    g = f.get
    trend = mean([None if g("return_20d") is None else clip(g("return_20d") / p["return_20d_unit"]),
                  None if g("sma_50_200_ratio") is None
                  else clip((g("sma_50_200_ratio") - 1.0) / p["sma_ratio_unit"])])
    stress = mean([None if g("vix_level") is None else clip((g("vix_level") - p["vix_center"]) / p["vix_unit"]),
                   None if g("volatility_20d") is None
                   else clip((g("volatility_20d") - p["volatility_center"]) / p["volatility_unit"])])
    tw, sw = p["trend_weight"], p["stress_weight"]
    scores = [tw * trend - sw * stress, -tw * trend + sw * stress, p["sideways_bias"] - tw * abs(trend)]
    m = max(scores)
    e = [math.exp(s - m) for s in scores]
    z = sum(e)
    return [x / z for x in e], trend, stress


def signal(regime, p):
    """A specialist's prediction in the common signal space, -1 (sell) ... 1 (buy)."""
    if regime == "bull":
        return 2.0 * p - 1.0
    if regime == "bear":
        return 1.0 - 2.0 * p
    return math.tanh(p / SIDEWAYS_SCALE_BPS)


def signals(preds):
    return [signal(r, p) for r, p in zip(REGIMES, preds)]


def decide(f, preds):
    probs, trend, stress = regime_probs(f)
    sig = signals(preds)
    score = sum(p * s for p, s in zip(probs, sig))
    if score >= BUY:
        action, confidence = "BUY", min(score, 1.0)
    elif score <= -SELL:
        action, confidence = "SELL", min(-score, 1.0)
    else:
        edge = BUY if score >= 0 else SELL
        action, confidence = "HOLD", min(max(1.0 - abs(score) / edge, 0.0), 1.0)
    return dict(regime_probs=dict(zip(REGIMES, probs)), trend=trend, stress=stress,
                signals=dict(zip(REGIMES, sig)), score=score, action=action, confidence=confidence)


def main():
    boosters = {r: xgb.Booster(model_file=str(ROOT / "models" / f"{r}.json")) for r in REGIMES}
    features = boosters["bull"].feature_names
    assert features == tm.FEATURES

    def predict(x):
        d = xgb.DMatrix(x.astype(np.float32), feature_names=features, missing=np.nan)
        return {r: boosters[r].predict(d) for r in REGIMES}

    # The evaluation set.
    lines = [",".join(features + ["regime", "fwd_return_5d"])]
    eval_x, eval_fwd, eval_regime = [], [], []
    for r in REGIMES:
        x, fwd = draw(r, tm.SPECIALISTS[r][0] + 1000, EVAL_ROWS)
        for row, y in zip(x, fwd):
            lines.append(",".join([f32_text(v) for v in row] + [r, repr(round(float(y), 6))]))
        eval_x.append(x)
        eval_fwd.extend(round(float(y), 6) for y in fwd)
        eval_regime.extend([r] * len(x))
    EVAL_OUT.write_text("\n".join(lines) + "\n")
    # Read back as Rust does: float32 features, the written returns.
    x_all = np.concatenate(eval_x).astype(np.float32)
    preds = predict(x_all)
    sharpe = {}
    for r in REGIMES:
        rets = []
        for k in range(len(x_all)):
            if eval_regime[k] != r:
                continue
            rets.append(signal(r, float(preds[r][k])) * eval_fwd[k])
        rets = np.array(rets)
        sharpe[r] = dict(rows=len(rets),
                         sharpe=float(rets.mean() / rets.std(ddof=1) * math.sqrt(252.0 / 5.0)))

    # The fixture requests.
    requests = []
    for r in REGIMES:
        x, _ = draw(r, tm.SPECIALISTS[r][0] + 2000, FIXTURE_ROWS)
        for row in x:
            requests.append({n: float(np.float32(v)) for n, v in zip(features, row) if not np.isnan(v)})
    requests.append({"rsi_14": 50.0})                                     # no regime evidence at all
    requests.append({"vix_level": 80.0, "rsi_14": 85.0, "macd": -3.0})     # stress clipped at 3
    requests.append({"return_20d": 30.0, "sma_50_200_ratio": 1.5, "vix_level": 9.0,
                     "volatility_20d": 5.0, "sentiment_score": 1.0, "rsi_14": 20.0})
    x = np.array([[f.get(n, np.nan) for n in features] for f in requests], dtype=np.float32)
    p = predict(x)
    cases = []
    for k, f in enumerate(requests):
        pr = [float(p[r][k]) for r in REGIMES]
        cases.append(dict(features=f, predictions=dict(zip(REGIMES, pr)), **decide(f, pr)))

    FIXTURE_OUT.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE_OUT.write_text(json.dumps(dict(
        generator="tools/reference_decisions.py",
        versions=dict(xgboost=xgb.__version__, numpy=np.__version__),
        config=dict(buy=BUY, sell=SELL, sideways_scale_bps=SIDEWAYS_SCALE_BPS, regime=REGIME),
        evaluation=dict(path="models/evaluation.csv", sharpe=sharpe),
        cases=cases,
    ), indent=1) + "\n")
    print(f"wrote {EVAL_OUT.relative_to(ROOT)} ({len(lines) - 1} rows) and "
          f"{FIXTURE_OUT.relative_to(ROOT)} ({len(cases)} cases); Sharpe "
          + ", ".join(f"{r} {v['sharpe']:.3f}" for r, v in sharpe.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
