#!/usr/bin/env python3
"""Reference values for the ultracore-portfolio tests.

Computes, on the shipped sample data, the risk metrics with empyrical, the
expected-return and covariance estimators and every optimizer objective with
PyPortfolioOpt 1.6 (EfficientFrontier with solver="CLARABEL", tight
tolerances), and writes them to crates/portfolio/tests/fixtures/reference.json.

Environment (Python 3.11):

    python3 -m venv ~/.cache/ultracore/refvenv
    ~/.cache/ultracore/refvenv/bin/pip install "PyPortfolioOpt>=1.6,<1.7" cvxpy clarabel \
        empyrical-reloaded pandas numpy scikit-learn
    ~/.cache/ultracore/refvenv/bin/python tools/reference_portfolio.py

Data selection (the Rust tests select the same rows):
  * sp500: sample-data/sp500_prices.csv, the last 1261 price rows (5 years of
    daily returns), all 20 stocks;
  * factors: sample-data/factor_etf_prices.csv, all rows, all 5 ETFs.
"""

import json
import pathlib
import sys

import empyrical as ep
import numpy as np
import pandas as pd
import pypfopt
from pypfopt import expected_returns, objective_functions, risk_models
from pypfopt.efficient_frontier import EfficientFrontier

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/portfolio/tests/fixtures/reference.json"

RF = 0.02  # annual risk-free rate used throughout
PERIODS = 252
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
SECTOR_LOWER = {"energy": 0.05, "consumer": 0.2}
SECTOR_UPPER = {"tech": 0.2, "health": 0.3}


def load(name):
    if name == "sp500":
        prices = pd.read_csv(ROOT / "sample-data/sp500_prices.csv", index_col=0)
        prices = prices.iloc[-1261:]
        benchmark = "MSFT"
    else:
        prices = pd.read_csv(ROOT / "sample-data/factor_etf_prices.csv", index_col=0)
        benchmark = "USMV"
    assert not prices.isna().any().any(), name
    return prices, benchmark


def metrics(r, bench):
    rf_period = RF / PERIODS
    return {
        "mean_return": float(np.mean(r) * PERIODS),
        "cagr": float(ep.annual_return(r, period="daily")),
        "volatility": float(ep.annual_volatility(r, period="daily")),
        "sharpe": float(ep.sharpe_ratio(r, risk_free=rf_period, period="daily")),
        "sortino": float(ep.sortino_ratio(r, required_return=rf_period, period="daily")),
        "max_drawdown": float(ep.max_drawdown(r)),
        "calmar": float(ep.calmar_ratio(r, period="daily")),
        "var_95": float(ep.value_at_risk(r, cutoff=0.05)),
        "cvar_95": float(ep.conditional_value_at_risk(r, cutoff=0.05)),
        "beta": float(ep.beta(r, bench, risk_free=rf_period)),
    }


def matrix(df):
    return [[float(x) for x in row] for row in np.asarray(df)]


def vector(s):
    return [float(x) for x in np.asarray(s)]


def perf(ef, weights, mu, cov, rf, objective):
    w = np.array([weights[t] for t in mu.index])
    ret, vol, sharpe = ef.portfolio_performance(risk_free_rate=rf)
    return {
        "weights": vector(w),
        "expected_return": float(ret),
        "volatility": float(vol),
        "sharpe": float(sharpe),
        "objective": float(objective(w)),
    }


def optimizations(name, prices, tickers):
    mu = expected_returns.mean_historical_return(prices)
    cov = risk_models.sample_cov(prices)
    cov_lw = risk_models.CovarianceShrinkage(prices).ledoit_wolf()
    out = []

    def ef_(bounds=(0, 1), cov_=cov, sectors=False, gamma=None):
        ef = EfficientFrontier(mu, cov_, weight_bounds=bounds, solver="CLARABEL",
                               solver_options=SOLVER_OPTIONS)
        if gamma is not None:
            ef.add_objective(objective_functions.L2_reg, gamma=gamma)
        if sectors:
            ef.add_sector_constraints(SECTORS, SECTOR_LOWER, SECTOR_UPPER)
        return ef

    def case(label, objective, params, bounds=(0, 1), covariance="sample", sectors=False,
             gamma=None):
        c = cov_lw if covariance == "ledoit_wolf" else cov
        cm = np.asarray(c)
        m = np.asarray(mu)
        reg = (lambda w: gamma * float(w @ w)) if gamma is not None else (lambda w: 0.0)
        ef = ef_(bounds, c, sectors, gamma)
        rf = 0.0
        if objective == "min_volatility":
            ef.min_volatility()
            f = lambda w: float(w @ cm @ w) + reg(w)
        elif objective == "max_sharpe":
            rf = params["risk_free_rate"]
            ef.max_sharpe(risk_free_rate=rf)
            f = lambda w: float((m @ w - rf) / np.sqrt(w @ cm @ w))
        elif objective == "efficient_risk":
            ef.efficient_risk(params["target_volatility"])
            f = lambda w: float(m @ w) - reg(w)
        elif objective == "efficient_return":
            ef.efficient_return(params["target_return"])
            f = lambda w: float(w @ cm @ w) + reg(w)
        elif objective == "max_quadratic_utility":
            d = params["risk_aversion"]
            ef.max_quadratic_utility(risk_aversion=d)
            f = lambda w: float(m @ w - 0.5 * d * (w @ cm @ w)) - reg(w)
        else:
            raise ValueError(objective)
        res = perf(ef, dict(zip(tickers, ef.weights)), mu, c, rf, f)
        res.update({
            "label": label,
            "objective_kind": objective,
            "params": params,
            "weight_bounds": list(bounds),
            "covariance": covariance,
            "sectors": sectors,
            "gamma": gamma,
            "risk_free_rate": rf,
        })
        out.append(res)
        return res

    mv = case("min_volatility", "min_volatility", {})
    case("max_sharpe", "max_sharpe", {"risk_free_rate": RF})
    case("max_sharpe_rf0", "max_sharpe", {"risk_free_rate": 0.0})
    # Targets between the min-volatility and the max-return portfolios.
    tv = round(mv["volatility"] * 1.25, 4)
    case("efficient_risk", "efficient_risk", {"target_volatility": tv})
    max_ret = float(np.max(np.asarray(mu)))
    tr = round(mv["expected_return"] + 0.5 * (max_ret - mv["expected_return"]), 4)
    case("efficient_return", "efficient_return", {"target_return": tr})
    case("max_quadratic_utility", "max_quadratic_utility", {"risk_aversion": 1.0})
    case("max_quadratic_utility_d5", "max_quadratic_utility", {"risk_aversion": 5.0})
    case("min_volatility_lw", "min_volatility", {}, covariance="ledoit_wolf")
    case("max_sharpe_lw", "max_sharpe", {"risk_free_rate": RF}, covariance="ledoit_wolf")
    case("min_volatility_l2", "min_volatility", {}, gamma=0.1)
    case("efficient_risk_l2", "efficient_risk", {"target_volatility": tv}, gamma=0.1)
    n = len(tickers)
    lo, hi = (0.02, 0.15) if n > 10 else (0.05, 0.4)
    mvb = case("min_volatility_bounded", "min_volatility", {}, bounds=(lo, hi))
    max_ret_b = float(ef_((lo, hi))._max_return())
    tr_b = round(mvb["expected_return"] + 0.5 * (max_ret_b - mvb["expected_return"]), 4)
    case("max_sharpe_bounded", "max_sharpe", {"risk_free_rate": RF}, bounds=(lo, hi))
    case("efficient_risk_bounded", "efficient_risk", {"target_volatility": tv}, bounds=(lo, hi))
    case("efficient_return_bounded", "efficient_return", {"target_return": tr_b},
         bounds=(lo, hi))
    if name == "sp500":
        case("max_sharpe_sectors", "max_sharpe", {"risk_free_rate": RF}, sectors=True)
        case("efficient_risk_sectors", "efficient_risk", {"target_volatility": tv},
             sectors=True)
        case("min_volatility_sectors", "min_volatility", {}, sectors=True)
    return out


def dataset(name):
    prices, benchmark = load(name)
    tickers = list(prices.columns)
    returns = expected_returns.returns_from_prices(prices)
    ew = returns.mean(axis=1)
    bench = returns[benchmark]
    per_asset = {t: metrics(returns[t], bench) for t in tickers}
    portfolio = metrics(ew, bench)
    lw = risk_models.CovarianceShrinkage(prices)
    lw_cov = lw.ledoit_wolf()
    return {
        "tickers": tickers,
        "rows": len(prices),
        "first_date": prices.index[0],
        "last_date": prices.index[-1],
        "benchmark": benchmark,
        "risk_free_rate": RF,
        "metrics": per_asset,
        "equal_weight_portfolio": portfolio,
        "correlation": matrix(returns.corr()),
        "expected_returns": {
            "mean": vector(expected_returns.mean_historical_return(prices)),
            "mean_arithmetic": vector(
                expected_returns.mean_historical_return(prices, compounding=False)),
            "ema": vector(expected_returns.ema_historical_return(prices)),
            "ema_arithmetic": vector(
                expected_returns.ema_historical_return(prices, compounding=False)),
            "capm": vector(expected_returns.capm_return(prices, risk_free_rate=RF)),
            "capm_benchmark": vector(expected_returns.capm_return(
                prices, market_prices=prices[[benchmark]], risk_free_rate=RF)),
        },
        "covariance": {
            "sample": matrix(risk_models.sample_cov(prices)),
            "ledoit_wolf": matrix(lw_cov),
            "ledoit_wolf_shrinkage": float(lw.delta),
            "exp": matrix(risk_models.exp_cov(prices)),
        },
        "optimizations": optimizations(name, prices, tickers),
    }


def main():
    out = {
        "generated_by": "tools/reference_portfolio.py",
        "versions": {
            "pypfopt": getattr(pypfopt, "__version__", "1.6"),
            "empyrical": getattr(ep, "__version__", "?"),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "solver_options": SOLVER_OPTIONS,
        "periods_per_year": PERIODS,
        "datasets": {"sp500": dataset("sp500"), "factors": dataset("factors")},
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
