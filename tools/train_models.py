#!/usr/bin/env python3
"""Trains the three shipped regime specialists and writes models/<name>.json.

    PY="$(scripts/ml-env.sh)"      # pinned xgboost-cpu and shap in ~/.cache/ultracore/mlvenv
    "$PY" tools/train_models.py

Every specialist is an XGBoost ensemble of 100 trees of depth 4 (learning rate
0.1, `hist` tree method, one thread), trained on its own deterministic synthetic
data set (numpy's PCG64 with a fixed seed per specialist), saved with
`Booster.save_model("<name>.json")`. Running the script twice writes identical
files.

| model       | objective        | label                                                     |
|-------------|------------------|-----------------------------------------------------------|
| `bull`      | binary:logistic  | 1 when the next 5 days' return beats +0.5 % (buy signal)   |
| `bear`      | binary:logistic  | 1 when the next 5 days' return is below -0.5 % (sell signal)|
| `sideways`  | reg:squarederror | the next 5 days' return in basis points (mean reversion)   |

# Features (the model inputs, in this order)

Each row is one symbol on one day. The features are drawn from simple
distributions with the correlations a chart reader would expect (RSI follows
recent returns, MACD follows momentum, …); they are not market data.

 0. `rsi_14`           relative strength index over 14 days, 0-100 (50 = neutral).
 1. `macd`             MACD line (EMA12 - EMA26) as % of price.
 2. `macd_signal`      MACD signal line (EMA9 of MACD), % of price.
 3. `volume_ratio`     today's volume / 20-day average volume (lognormal, ~1).
 4. `return_1d`        yesterday's return, %.
 5. `return_5d`        return over the last 5 days, %.
 6. `return_20d`       return over the last 20 days, %.
 7. `volatility_20d`   annualised 20-day volatility, %.
 8. `atr_ratio`        14-day average true range / price, %.
 9. `bollinger_pct_b`  position inside the 20-day Bollinger band (0 = lower, 1 = upper).
10. `sma_50_200_ratio` 50-day / 200-day moving average (golden cross when > 1).
11. `price_to_sma_20`  price / 20-day moving average.
12. `momentum_10d`     10-day rate of change, %.
13. `stochastic_k`     fast stochastic %K, 0-100.
14. `obv_slope`        slope of on-balance volume, standardised.
15. `vix_level`        market implied volatility index level.
16. `spread_bps`       bid-ask spread, basis points.
17. `sector_momentum`  the symbol's sector 20-day return, %.
18. `market_beta`      60-day beta to the market.
19. `sentiment_score`  news sentiment, -1 (negative) to 1 (positive).

# Regimes

The feature distributions shift with the regime the specialist is trained for:
bull draws a positive market drift (+0.15 %/day) and a low VIX (~15), bear a
negative drift (-0.2 %/day) and a high VIX (~30), sideways no drift and a VIX
of ~18 with stronger mean reversion.

# Labels

A latent forward 5-day return (%) is a fixed function of the features plus
Gaussian noise (so no model is perfect):

    fwd = drift*5 + 0.6*tanh(macd - macd_signal) + 0.02*(return_20d)
          + 0.4*sentiment + 0.25*(sma_50_200_ratio - 1)*10 + 0.3*(volume_ratio - 1)*sign(return_1d)
          - k_rev*(rsi_14 - 50)/25 - 0.01*spread_bps + noise(sd = 0.8 + volatility_20d/40)

with mean-reversion strength k_rev = 0.2 (bull), 0.3 (bear), 0.9 (sideways).
Missing inputs enter the latent return as their regime's mean (the world does
not care that our data feed dropped a value).

# Missing values

About 4 % of `volume_ratio`, `obv_slope`, `spread_bps`, `sentiment_score` and
`sector_momentum` and 1 % of every other feature are NaN (a dropped feed), so
every tree learns a default direction for missing values and the Rust
implementation must follow it.
"""

import json
import pathlib
import sys

import numpy as np
import xgboost as xgb

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "models"

FEATURES = [
    "rsi_14", "macd", "macd_signal", "volume_ratio", "return_1d",
    "return_5d", "return_20d", "volatility_20d", "atr_ratio", "bollinger_pct_b",
    "sma_50_200_ratio", "price_to_sma_20", "momentum_10d", "stochastic_k", "obv_slope",
    "vix_level", "spread_bps", "sector_momentum", "market_beta", "sentiment_score",
]
OFTEN_MISSING = {"volume_ratio", "obv_slope", "spread_bps", "sentiment_score", "sector_momentum"}

ROWS = 20_000
TREES = 100
DEPTH = 4

# name: (seed, daily drift %, vix mean, mean-reversion strength, objective)
SPECIALISTS = {
    "bull": (101, 0.15, 15.0, 0.2, "binary:logistic"),
    "bear": (202, -0.20, 30.0, 0.3, "binary:logistic"),
    "sideways": (303, 0.0, 18.0, 0.9, "reg:squarederror"),
}


def features(rng, n, drift, vix_mean):
    """One regime's feature matrix (n x 20, float32) without missing values."""
    vix = np.clip(rng.normal(vix_mean, vix_mean * 0.2, n), 9.0, 80.0)
    vol = np.clip(vix * rng.lognormal(0.0, 0.25, n), 5.0, 120.0)
    daily_sd = vol / np.sqrt(252.0)
    r1 = rng.normal(drift, daily_sd)
    r5 = rng.normal(5 * drift, daily_sd * np.sqrt(5.0)) + 0.3 * r1
    r20 = rng.normal(20 * drift, daily_sd * np.sqrt(20.0)) + 0.5 * r5
    mom10 = 0.5 * r20 + rng.normal(0.0, daily_sd * 2.0)
    macd = 0.08 * r20 + rng.normal(0.0, 0.3, n)
    macd_signal = 0.8 * macd + rng.normal(0.0, 0.2, n) - 0.02 * r5
    rsi = np.clip(50.0 + 2.2 * r5 + 0.6 * r20 + rng.normal(0.0, 8.0, n), 1.0, 99.0)
    stoch = np.clip(rsi + rng.normal(0.0, 12.0, n), 0.0, 100.0)
    volume_ratio = rng.lognormal(0.0, 0.35, n) * (1.0 + 0.02 * np.abs(r1))
    atr = daily_sd * rng.lognormal(0.2, 0.15, n)
    pct_b = np.clip(0.5 + 0.08 * r5 + rng.normal(0.0, 0.2, n), -0.3, 1.3)
    sma_ratio = 1.0 + 0.004 * r20 + 0.05 * drift + rng.normal(0.0, 0.03, n)
    price_sma20 = 1.0 + 0.005 * r5 + rng.normal(0.0, 0.02, n)
    obv = 0.3 * r5 / np.maximum(daily_sd, 1e-3) + rng.normal(0.0, 1.0, n)
    spread = rng.lognormal(np.log(4.0) + 0.01 * (vix - 15.0), 0.5, n)
    sector = 0.6 * r20 + rng.normal(0.0, 2.0, n)
    beta = np.clip(rng.normal(1.0, 0.3, n), -0.5, 3.0)
    sentiment = np.clip(np.tanh(0.3 * r5 + 0.4 * drift * 5 + rng.normal(0.0, 0.5, n)), -1.0, 1.0)
    cols = [rsi, macd, macd_signal, volume_ratio, r1, r5, r20, vol, atr, pct_b,
            sma_ratio, price_sma20, mom10, stoch, obv, vix, spread, sector, beta, sentiment]
    return np.stack(cols, axis=1).astype(np.float32)


def forward_return(rng, x, drift, k_rev):
    """The latent forward 5-day return (%) of every row of the complete matrix x."""
    f = {name: x[:, i].astype(np.float64) for i, name in enumerate(FEATURES)}
    noise = rng.normal(0.0, 1.0, len(x)) * (0.8 + f["volatility_20d"] / 40.0)
    return (drift * 5.0
            + 0.6 * np.tanh(f["macd"] - f["macd_signal"])
            + 0.02 * f["return_20d"]
            + 0.4 * f["sentiment_score"]
            + 2.5 * (f["sma_50_200_ratio"] - 1.0)
            + 0.3 * (f["volume_ratio"] - 1.0) * np.sign(f["return_1d"])
            - k_rev * (f["rsi_14"] - 50.0) / 25.0
            - 0.01 * f["spread_bps"]
            + noise)


def with_missing(rng, x):
    x = x.copy()
    for i, name in enumerate(FEATURES):
        rate = 0.04 if name in OFTEN_MISSING else 0.01
        x[rng.random(len(x)) < rate, i] = np.nan
    return x


def dataset(name):
    seed, drift, vix_mean, k_rev, objective = SPECIALISTS[name]
    rng = np.random.Generator(np.random.PCG64(seed))
    complete = features(rng, ROWS, drift, vix_mean)
    fwd = forward_return(rng, complete, drift, k_rev)
    x = with_missing(rng, complete)
    if name == "bull":
        y = (fwd > 0.5).astype(np.float32)
    elif name == "bear":
        y = (fwd < -0.5).astype(np.float32)
    else:
        y = (fwd * 100.0).astype(np.float32)  # basis points
    return x, y, objective


def train(name):
    x, y, objective = dataset(name)
    dtrain = xgb.DMatrix(x, label=y, feature_names=FEATURES, missing=np.nan)
    params = {
        "objective": objective,
        "max_depth": DEPTH,
        "eta": 0.1,
        "tree_method": "hist",
        "min_child_weight": 1.0,
        "nthread": 1,
        "seed": 0,
    }
    booster = xgb.train(params, dtrain, num_boost_round=TREES)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.json"
    booster.save_model(str(path))
    config = json.loads(booster.save_config())
    base = config["learner"]["learner_model_param"]["base_score"]
    print(f"{name}: {objective}, base_score {base}, label mean {float(np.mean(y)):.6g}, "
          f"{path.stat().st_size // 1024} KB", file=sys.stderr)


def main():
    for name in SPECIALISTS:
        train(name)


if __name__ == "__main__":
    main()
