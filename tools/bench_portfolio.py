#!/usr/bin/env python3
"""The Python side of `ultracore bench optimize --vs-python`.

    bench_portfolio.py DIR [--runs N] [--budget SECONDS]

DIR holds `universes.json` (written by the Rust bench) and, per universe,
its daily returns as little-endian f64, row-major (observations × assets).
For every universe this times, on exactly those returns:

  * sample covariance: numpy `np.cov` and PyPortfolioOpt `sample_cov`;
  * Ledoit-Wolf: PyPortfolioOpt `CovarianceShrinkage(...).ledoit_wolf()`;
  * exponentially weighted covariance: PyPortfolioOpt `exp_cov` (span 180),
    up to 100 assets (see EXP_COV_UP_TO);
  * max Sharpe and efficient risk (the target the Rust side chose), each a
    new `EfficientFrontier` as PyPortfolioOpt requires;
  * the efficient frontier: `min_volatility`, the maximum return and
    `efficient_return` at each of the Rust side's targets, one
    `EfficientFrontier` per point (PyPortfolioOpt's loop).

Expected returns are PyPortfolioOpt's `mean_historical_return` (compounded),
the covariance its `sample_cov`, as on the Rust side. Each case runs up to
--runs times but stops once it has used --budget seconds (at least once);
the median is reported. The optimizers run Clarabel through cvxpy with its
default settings (cvxpy's default for these problems, OSQP, stops short of
the optimum on the larger ones), named in the output. Results for the agreement check are written next to the
inputs (the covariance as f64) or returned in the JSON (weights, frontier
volatilities). Prints one JSON object.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

try:
    import cvxpy
    import numpy as np
    import pandas as pd
    import pypfopt
    from pypfopt import expected_returns, risk_models
    from pypfopt.efficient_frontier import EfficientFrontier
except ImportError as e:  # pragma: no cover - reported to the Rust side
    print(
        f"bench_portfolio.py: {e}; create the venv with scripts/bench-env.sh "
        "(PyPortfolioOpt, cvxpy, numpy, pandas, scikit-learn)",
        file=sys.stderr,
    )
    sys.exit(3)


SOLVER = "CLARABEL"
# PyPortfolioOpt's exp_cov loops over the pairs of assets in pandas: one
# call took 37 s at 500 assets and 577 s at 2,000; larger universes skip it.
EXP_COV_UP_TO = 100


def timed(fn, runs, budget):
    """Median and minimum milliseconds of up to `runs` calls within `budget` s."""
    samples = []
    result = None
    started = time.perf_counter()
    for _ in range(max(1, runs)):
        t = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t) * 1e3)
        if time.perf_counter() - started > budget:
            break
    return {
        "median_ms": statistics.median(samples),
        "min_ms": min(samples),
        "runs": len(samples),
    }, result


def solver_of(ef):
    try:
        return ef._opt.solver_stats.solver_name
    except AttributeError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=pathlib.Path)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--budget", type=float, default=5.0)
    args = ap.parse_args()
    meta = json.loads((args.dir / "universes.json").read_text())
    out = {
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "pypfopt": getattr(pypfopt, "__version__", "?"),
            "cvxpy": cvxpy.__version__,
        },
        "universes": {},
    }
    for u in meta["universes"]:
        t, n = u["observations"], u["assets"]
        raw = np.fromfile(args.dir / u["file"], dtype="<f8")
        if raw.size != t * n:
            sys.exit(f"{u['file']}: {raw.size} values, expected {t} x {n}")
        x = raw.reshape(t, n)
        df = pd.DataFrame(x, columns=[f"A{i}" for i in range(n)])
        cases = {}
        runs, budget = args.runs, args.budget

        stats, cov = timed(lambda: np.cov(x, rowvar=False) * 252, runs, budget)
        cases["sample-covariance/numpy"] = stats
        (args.dir / f"numpy-cov-{u['name']}.f64").write_bytes(
            np.ascontiguousarray(cov, dtype="<f8").tobytes()
        )
        stats, _ = timed(
            lambda: risk_models.sample_cov(df, returns_data=True), runs, budget
        )
        cases["sample-covariance/pypfopt"] = stats
        stats, _ = timed(
            lambda: risk_models.CovarianceShrinkage(df, returns_data=True).ledoit_wolf(),
            runs,
            budget,
        )
        cases["ledoit-wolf/pypfopt"] = stats
        if n <= EXP_COV_UP_TO:
            stats, _ = timed(
                lambda: risk_models.exp_cov(df, returns_data=True, span=180), runs, budget
            )
            cases["exp-covariance/pypfopt"] = stats

        if u.get("optimize"):
            mu = expected_returns.mean_historical_return(df, returns_data=True)
            S = risk_models.sample_cov(df, returns_data=True)
            solvers = set()

            def max_sharpe():
                ef = EfficientFrontier(mu, S, solver=SOLVER)
                w = ef.max_sharpe(risk_free_rate=0.0)
                solvers.add(solver_of(ef))
                return [w[c] for c in df.columns]

            stats, w = timed(max_sharpe, runs, budget)
            stats["weights"] = w
            cases["max-sharpe/pypfopt"] = stats

            target = u["efficient_risk_target"]

            def efficient_risk():
                ef = EfficientFrontier(mu, S, solver=SOLVER)
                w = ef.efficient_risk(target)
                solvers.add(solver_of(ef))
                return [w[c] for c in df.columns]

            stats, w = timed(efficient_risk, runs, budget)
            stats["weights"] = w
            cases["efficient-risk/pypfopt"] = stats

            targets = u.get("frontier_targets")
            if targets:

                def frontier():
                    vols = []
                    ef = EfficientFrontier(mu, S, solver=SOLVER)
                    ef.min_volatility()
                    vols.append(ef.portfolio_performance()[1])
                    ef = EfficientFrontier(mu, S, solver=SOLVER)
                    ef._max_return()
                    for r in targets:
                        ef = EfficientFrontier(mu, S, solver=SOLVER)
                        ef.efficient_return(r)
                        vols.append(ef.portfolio_performance()[1])
                        solvers.add(solver_of(ef))
                    return vols

                stats, vols = timed(frontier, 3, budget)
                stats["volatilities"] = vols
                cases["frontier/pypfopt"] = stats
            out["solvers"] = sorted(s for s in solvers if s)
        out["universes"][u["name"]] = cases
    print(json.dumps(out))


if __name__ == "__main__":
    main()
