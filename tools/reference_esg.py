#!/usr/bin/env python3
"""Reference values for the ESG rebalancing tests of ultracore-portfolio.

Solves ESG-constrained problems with PyPortfolioOpt 1.6 (EfficientFrontier,
solver="CLARABEL", tight tolerances; custom constraints and objectives
through add_constraint / add_objective, i.e. cvxpy) on the shipped S&P 500
sample, and writes crates/portfolio/tests/fixtures/esg_reference.json with
the inputs (ESG scores, carbon intensities, sectors, flags, current weights)
and each case's weights and objective value.

The ESG figures here are synthetic test inputs (a fixed formula per asset),
not vendor data.

Environment: the venv of tools/reference_portfolio.py.

    ~/.cache/ultracore/refvenv/bin/python tools/reference_esg.py
"""

import json
import pathlib

import cvxpy as cp
import numpy as np
import pandas as pd
from pypfopt import expected_returns, objective_functions, risk_models
from pypfopt.efficient_frontier import EfficientFrontier

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/portfolio/tests/fixtures/esg_reference.json"
RF = 0.02
SOLVER_OPTIONS = {
    "tol_gap_abs": 1e-10,
    "tol_gap_rel": 1e-10,
    "tol_feas": 1e-10,
    "tol_ktratio": 1e-8,
    "max_iter": 500,
}
SECTORS = {
    "AAPL": "tech", "AMD": "tech", "MSFT": "tech",
    "BAC": "financials", "JPM": "financials",
    "CVX": "energy", "XOM": "energy", "RRC": "energy",
    "JNJ": "health", "LLY": "health", "MRK": "health", "PFE": "health", "UNH": "health",
    "BBY": "consumer", "HD": "consumer", "KO": "consumer", "PEP": "consumer",
    "PG": "consumer", "WMT": "consumer",
    "GE": "industrials",
}


def main():
    prices = pd.read_csv(ROOT / "sample-data/sp500_prices.csv", index_col=0).iloc[-1261:]
    tickers = list(prices.columns)
    n = len(tickers)
    mu = expected_returns.mean_historical_return(prices)
    cov = risk_models.sample_cov(prices)
    # Synthetic ESG inputs: a fixed formula per asset position.
    esg = np.array([35.0 + (i * 37) % 55 for i in range(n)])
    carbon = np.array([20.0 + (i * 53) % 400 for i in range(n)])
    carbon = np.where([SECTORS[t] == "energy" for t in tickers], carbon + 500.0, carbon)
    flagged = [t in ("BAC", "PFE") for t in tickers]
    current = np.full(n, 0.9 / n)  # 90 % invested, 10 % cash
    sectors = [SECTORS[t] for t in tickers]

    def ef(bounds=(0, 1)):
        return EfficientFrontier(mu, cov, weight_bounds=bounds, solver="CLARABEL",
                                 solver_options=SOLVER_OPTIONS)

    def result(e, w, objective):
        w = np.array([w[t] for t in tickers])
        return {"weights": [float(x) for x in w], "objective_value": float(objective(w))}

    cases = []

    # 1. Minimum volatility, ESG score ≥ 60, tech ≤ 25 %, health ≥ 10 %.
    e = ef()
    e.add_constraint(lambda w: esg @ w >= 60)
    e.add_sector_constraints(SECTORS, {"health": 0.10}, {"tech": 0.25})
    w = e.min_volatility()
    cases.append({
        "name": "min_volatility_esg_sectors",
        "objective": {"kind": "min_volatility"},
        "constraints": {"min_esg_score": 60.0,
                        "sector_bounds": [{"sector": "tech", "max": 0.25},
                                          {"sector": "health", "min": 0.10}]},
        **result(e, w, lambda x: float(x @ cov.values @ x)),
    })

    # 2. Max Sharpe, ESG ≥ 55, carbon ≤ 200, flagged issuers and energy excluded.
    e = ef(bounds=[(0, 0) if (f or SECTORS[t] == "energy") else (0, 1)
                   for t, f in zip(tickers, flagged)])
    e.add_constraint(lambda w: esg @ w >= 55)
    e.add_constraint(lambda w: carbon @ w <= 200)
    w = e.max_sharpe(risk_free_rate=RF)
    mu_v = mu.values

    def sharpe(x):
        return float((mu_v @ x - RF) / np.sqrt(x @ cov.values @ x))

    cases.append({
        "name": "max_sharpe_esg_carbon_exclusions",
        "objective": {"kind": "max_sharpe"},
        "constraints": {"min_esg_score": 55.0, "max_carbon_intensity": 200.0,
                        "exclude_flagged": True, "exclude_sectors": ["energy"]},
        **result(e, w, sharpe),
    })

    # 3. Maximum return at a 20 % volatility budget, ESG ≥ 60, weights ≤ 15 %.
    e = ef(bounds=(0, 0.15))
    e.add_constraint(lambda w: esg @ w >= 60)
    w = e.efficient_risk(0.20)
    cases.append({
        "name": "max_return_budget_esg",
        "objective": {"kind": "max_return", "target_volatility": 0.20},
        "constraints": {"min_esg_score": 60.0, "weight_bounds": [0.0, 0.15]},
        **result(e, w, lambda x: float(mu_v @ x)),
    })

    # 4. Minimum volatility from the current portfolio: turnover ≤ 0.4, 10 bps costs.
    k = 10 / 10_000
    e = ef()
    e.add_objective(objective_functions.transaction_cost, w_prev=current, k=k)
    e.add_constraint(lambda w: cp.norm(w - current, 1) <= 0.4)
    w = e.min_volatility()
    cases.append({
        "name": "min_volatility_turnover_costs",
        "objective": {"kind": "min_volatility"},
        "constraints": {"max_turnover": 0.4, "transaction_cost_bps": 10.0},
        **result(e, w, lambda x: float(x @ cov.values @ x + k * np.abs(x - current).sum())),
    })

    # 5. Trade-off: μᵀw − δ/2 wᵀΣw + λ esgᵀw / 100, with δ = 2, λ = 0.05.
    delta, lam = 2.0, 0.05
    e = ef(bounds=(0, 0.3))
    e.add_objective(lambda w: -lam * (esg @ w) / 100)
    w = e.max_quadratic_utility(risk_aversion=delta)
    cases.append({
        "name": "esg_tradeoff",
        "objective": {"kind": "esg_tradeoff", "risk_aversion": delta, "esg_weight": lam},
        "constraints": {"weight_bounds": [0.0, 0.3]},
        **result(e, w, lambda x: float(mu_v @ x - delta / 2 * x @ cov.values @ x + lam * esg @ x / 100)),
    })

    out = {
        "tickers": tickers,
        "risk_free_rate": RF,
        "esg_score": [float(x) for x in esg],
        "carbon_intensity": [float(x) for x in carbon],
        "sector": sectors,
        "flagged": flagged,
        "current": [float(x) for x in current],
        "cases": cases,
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
