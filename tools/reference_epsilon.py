#!/usr/bin/env python3
"""Reference values for crates/epsilon/tests/reference.rs: two legs of the
Epsilon backtest computed independently of the Rust code.

Run it from anywhere with the benchmark venv (numpy, pandas, scikit-learn,
PyPortfolioOpt, cvxpy, clarabel); it takes some ten seconds (1,199
quadratic programs):

    ~/.cache/ultracore/benchvenv/bin/python tools/reference_epsilon.py

It reads sample-data/sp500_prices.csv and models/epsilon.json (the ESG
records under `esg`, the constraints under `constraints`), refuses to run if
the model's `data.sha256` is not the SHA-256 of the CSV, and prints one JSON
object; the Rust test pins its numbers. Nothing is written.

What it computes (crates/epsilon/src/data.rs, train.rs, base.rs,
backtest.rs):

  * daily returns r[d] = p[d] / p[d-1] - 1 for d >= 1;
  * decision days: the last row of every ISO week (row d is one if it is the
    last row or row d+1 lies in another ISO (year, week)), kept if
    d + 1 >= 253 (features::WARMUP); steps are consecutive pairs (d, d_next)
    of kept days, dated dates[d], with next = p[d_next] / p[d] - 1;
  * test steps: those dated in 2000 or later (the model's first test year);
  * a leg's path: turnover_t = ||w_t - held||_1 with held the previous step's
    weights drifted by its returns, w * (1 + r) / (1 + w.r), and held = w_t at
    the first test step; net_t = w_t.next_t - 0.001 * turnover_t (10 bp);
  * raw 1/N: w = 1/20 at every step;
  * minimum variance: the Ledoit-Wolf covariance of the daily returns of rows
    max(1, d - 755) ..= d (756 rows, three years), i.e. scikit-learn's
    `ledoit_wolf` (it centres the returns) times 252, which is what
    PyPortfolioOpt's CovarianceShrinkage(...).ledoit_wolf() returns (checked
    on the first window below); then min w'Sw subject to sum w = 1, the
    weight bounds, w_i = 0 for excluded issuers (controversy flag, listed
    names or sectors), esg.w >= min score, carbon.w <= max intensity, solved
    by cvxpy + CLARABEL at 1e-10 tolerances and then polished: the
    constraints whose multiplier exceeds their slack are made equalities,
    the KKT system solved with numpy, the active set corrected (broken
    inequalities added, negative multipliers dropped) until the solution
    certifies itself (feasible to 1e-12, multipliers of the active
    inequalities non-negative), so the weights are exact to rounding rather than to the
    interior point's 1e-7 to 1e-5 (`checks` reports how far polishing moved
    them; a step it cannot certify stops the script);
  * figures over the test steps as backtest::figures: CAGR
    (prod(1 + net))^(52/n) - 1, volatility std(net, ddof=1) * sqrt(52),
    Sharpe mean/std * sqrt(52) (and on net - 0.02/52), Sortino
    mean / sqrt(mean(min(net, 0)^2)) * sqrt(52), maximum drawdown of the
    wealth path from 1, Calmar CAGR / -drawdown, turnover mean * 52, effective
    N mean(1 / sum w^2), ESG score mean(w.esg), carbon mean(w.carbon), and
    the number of decisions breaking a constraint (backtest::violation's
    tolerances);
  * the minimum-variance weights on the dates in PINNED_DATES.
"""

import hashlib
import json
import math
import pathlib
import sys
import time

import cvxpy as cp
import numpy as np
import pandas as pd
from pypfopt.risk_models import CovarianceShrinkage
from sklearn.covariance import ledoit_wolf

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRICES = ROOT / "sample-data" / "sp500_prices.csv"
MODEL = ROOT / "models" / "epsilon.json"

WARMUP = 253  # features::WARMUP
LOOKBACK = 756  # base::LOOKBACK
PERIODS_PER_YEAR = 252.0
WEEKS = 52.0
COST = 0.001  # 10 bp of the traded weight
FIRST_TEST_YEAR = 2000
RISK_FREE = 0.02  # for sharpe_rf2 only
# The first test step, one in the 2008 crisis, one in 2022.
PINNED_DATES = ["2000-01-07", "2008-10-10", "2022-06-17"]

SOLVER_OPTIONS = {
    "tol_gap_abs": 1e-10,
    "tol_gap_rel": 1e-10,
    "tol_feas": 1e-10,
    "tol_ktratio": 1e-10,
    "max_iter": 500,
}


def fail(message):
    sys.exit(f"reference_epsilon.py: {message}")


def shown(path):
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


def load():
    """Prices, dates, tickers, ESG arrays and constraints, checked."""
    raw = PRICES.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    model = json.loads(MODEL.read_text())
    if model["data"]["sha256"] != sha:
        fail(
            f"{shown(MODEL)} was trained on data with SHA-256 "
            f"{model['data']['sha256']}, but {shown(PRICES)} has {sha}; "
            "regenerate the model or use its price file"
        )
    if "esg" not in model:
        fail(f"{shown(MODEL)} has no `esg` key (the ESG records); regenerate it")
    # Python's float() rounds correctly, as Rust's str::parse::<f64> does.
    lines = [line.split(",") for line in raw.decode().splitlines() if line.strip()]
    if lines[0][0] != "date":
        fail("the CSV's first column is not `date`")
    tickers = lines[0][1:]
    esg = model["esg"]
    if esg["names"] != tickers or model["data"]["tickers"] != tickers:
        fail(f"the model's tickers {esg['names']} are not the CSV's {tickers}")
    c = model["constraints"]
    unsupported = {
        "sector_bounds": c.get("sector_bounds") or [],
        "max_turnover": c.get("max_turnover"),
        "transaction_cost_bps": c.get("transaction_cost_bps") or 0.0,
        "min_trade_weight": c.get("min_trade_weight"),
    }
    if any(v not in (None, [], 0.0) for v in unsupported.values()):
        fail(f"constraints this reference does not model: {unsupported}")
    dates = pd.to_datetime(pd.Series([row[0] for row in lines[1:]]), format="%Y-%m-%d")
    prices = np.array([[float(v) for v in row[1:]] for row in lines[1:]])
    data = {
        "esg": np.array(esg["esg_score"], dtype=float),
        "carbon": np.array(esg["carbon_intensity"], dtype=float),
        "excluded": np.array(
            [
                name in c.get("exclude", [])
                or sector in c.get("exclude_sectors", [])
                or (c["exclude_flagged"] and flag)
                for name, sector, flag in zip(esg["names"], esg["sector"], esg["flagged"])
            ]
        ),
    }
    return sha, dates, tickers, prices, data, c


def week_ends(dates):
    iso = dates.dt.isocalendar()
    key = list(zip(iso["year"].astype(int), iso["week"].astype(int)))
    # The last row ends a week only on a Friday (the data may stop mid-week).
    last = len(key) - 1
    return [
        d
        for d in range(len(key))
        if (d == last and dates.iloc[d].weekday() == 4) or (d < last and key[d + 1] != key[d])
    ]


def covariance(window):
    """Ledoit-Wolf on daily returns (centred), annualised."""
    return ledoit_wolf(window, assume_centered=False)[0] * PERIODS_PER_YEAR


def constraint_rows(n, data, c):
    """Inequalities G w <= h and equalities A w = b of the minimum-variance
    QP. An excluded issuer's bounds are (min(lo, 0), 0), as in
    EsgOptimizer::new: with lo >= 0 an equality w_i = 0."""
    lo, hi = c["weight_bounds"]
    g, h, a, b = [], [], [np.ones(n)], [1.0]
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        low, high = (min(lo, 0.0), 0.0) if data["excluded"][i] else (lo, hi)
        if low == high:
            a.append(e)
            b.append(low)
        else:
            g += [e, -e]
            h += [high, -low]
    if c.get("min_esg_score") is not None:
        g.append(-data["esg"])
        h.append(-c["min_esg_score"])
    if c.get("max_carbon_intensity") is not None:
        g.append(data["carbon"])
        h.append(c["max_carbon_intensity"])
    return np.array(g), np.array(h), np.array(a), np.array(b)


def min_variance(sigma, rows):
    """The QP by CLARABEL, then polished on its active set.

    An interior point stops with its active constraints short of their
    bounds by its gap over their multiplier (1e-10 over 1e-3 here, 1e-5 over
    a nearly degenerate bound's 1e-6), so its weights are good to 1e-7 and
    sometimes only to 1e-5. The polish starts from the constraints whose
    multiplier exceeds their slack, solves the equality-constrained KKT
    system, then adds the inequalities the solution breaks and drops the
    active ones with a negative multiplier, until the solution certifies
    itself: feasible to 1e-12 and every active inequality's multiplier
    non-negative. Then it is the optimum to rounding (the objective is
    strictly convex).

    Returns the weights, how far the polish moved them from the interior
    point, and whether it was certified (if not, the interior point's
    weights, which main() refuses to print)."""
    g, h, a, b = rows
    n = sigma.shape[0]
    w = cp.Variable(n)
    inequalities = g @ w <= h
    problem = cp.Problem(
        cp.Minimize(cp.quad_form(w, cp.psd_wrap(sigma))), [inequalities, a @ w == b]
    )
    problem.solve(solver=cp.CLARABEL, **SOLVER_OPTIONS)
    if problem.status != cp.OPTIMAL:
        fail(f"CLARABEL: {problem.status}")
    x = np.asarray(w.value, dtype=float)
    scale = np.maximum(1.0, np.abs(h))
    active = np.asarray(inequalities.dual_value) > h - g @ x
    for _ in range(10):
        eq = np.vstack([a, g[active]])
        rhs = np.concatenate([b, h[active]])
        m = eq.shape[0]
        # Stationarity 2 S w + E' nu = 0 with E = (A; G_active), nu_G >= 0.
        kkt = np.block([[2.0 * sigma, eq.T], [eq, np.zeros((m, m))]])
        # lstsq: the active rows can be dependent (four weights at 0.25 fix
        # the budget); the weights are unique all the same, as sigma is
        # definite, though the multipliers then are not.
        sol = np.linalg.lstsq(kkt, np.concatenate([np.zeros(n), rhs]), rcond=None)[0]
        y = sol[:n]
        nu = np.zeros(len(h))
        nu[active] = sol[n + len(b) :]
        broken = g @ y - h > 1e-12 * scale
        negative = nu < -1e-9 * max(1.0, float(np.max(np.abs(sol[n:]))))
        if not broken.any() and not negative.any() and np.all(np.abs(a @ y - b) <= 1e-12):
            # A weight on its bound is the bound, not 1e-16 from it.
            for row, value in zip(eq, rhs):
                (at,) = np.nonzero(row)
                if len(at) == 1:
                    y[at[0]] = value / row[at[0]]
            return y, float(np.max(np.abs(y - x))), True
        active = (active | broken) & ~negative
    return x, None, False


def figures(net, turnover, weights, data, c):
    n = len(net)
    growth = float(np.prod(1.0 + net))
    cagr = growth ** (WEEKS / n) - 1.0
    m = float(np.mean(net))
    sd = float(np.std(net, ddof=1))
    ex = net - RISK_FREE / WEEKS
    downside = math.sqrt(float(np.mean(np.minimum(net, 0.0) ** 2)))
    wealth = np.cumprod(1.0 + net)
    peak = np.maximum.accumulate(np.maximum(wealth, 1.0))
    mdd = float(min(0.0, np.min(wealth / peak - 1.0)))
    return {
        "weeks": n,
        "cagr": cagr,
        "volatility": sd * math.sqrt(WEEKS),
        "sharpe": m / sd * math.sqrt(WEEKS),
        "sharpe_rf2": float(np.mean(ex)) / float(np.std(ex, ddof=1)) * math.sqrt(WEEKS),
        "sortino": m / downside * math.sqrt(WEEKS),
        "max_drawdown": mdd,
        "calmar": cagr / -mdd,
        "turnover": float(np.mean(turnover)) * WEEKS,
        "effective_n": float(np.mean(1.0 / np.sum(weights**2, axis=1))),
        "esg_score": float(np.mean(weights @ data["esg"])),
        "carbon_intensity": float(np.mean(weights @ data["carbon"])),
        "violations": sum(violates(w, data, c) for w in weights),
    }


def violates(w, data, c):
    """backtest::violation: 1e-6 on weights, 1e-6 relative on the limits."""
    tol = 1e-6
    lo, hi = c["weight_bounds"]
    if abs(w.sum() - 1.0) > tol or np.any(w < lo - tol) or np.any(w > hi + tol):
        return True
    if np.any(w[data["excluded"]] > tol):
        return True
    if c.get("min_esg_score") is not None:
        mn = c["min_esg_score"]
        if w @ data["esg"] < mn - tol * max(mn, 1.0):
            return True
    if c.get("max_carbon_intensity") is not None:
        mx = c["max_carbon_intensity"]
        if w @ data["carbon"] > mx + tol * max(mx, 1.0):
            return True
    return False


def path(weights, nexts):
    """Turnover against the drifted weights and net returns at COST."""
    turnover, gross = [], []
    held = None
    for w, r in zip(weights, nexts):
        turnover.append(float(np.abs(w - (w if held is None else held)).sum()))
        gross.append(float(w @ r))
        held = w * (1.0 + r) / (1.0 + w @ r)
    turnover = np.array(turnover)
    return np.array(gross) - COST * turnover, turnover


def main():
    started = time.time()
    sha, dates, tickers, prices, data, c = load()
    n = len(tickers)
    returns = np.zeros_like(prices)
    returns[1:] = prices[1:] / prices[:-1] - 1.0
    ends = [d for d in week_ends(dates) if d + 1 >= WARMUP]
    steps = [
        (d, e)
        for d, e in zip(ends, ends[1:])
        if dates[d].year >= FIRST_TEST_YEAR
    ]
    step_dates = [dates[d].strftime("%Y-%m-%d") for d, _ in steps]
    nexts = np.array([prices[e] / prices[d] - 1.0 for d, e in steps])

    first = steps[0][0]
    window = returns[max(1, first - (LOOKBACK - 1)) : first + 1]
    pypfopt = CovarianceShrinkage(
        pd.DataFrame(window), returns_data=True, frequency=252
    ).ledoit_wolf()
    lw_vs_pypfopt = float(np.max(np.abs(np.asarray(pypfopt) - covariance(window))))
    if lw_vs_pypfopt > 1e-14:
        fail(f"scikit-learn and PyPortfolioOpt disagree on Ledoit-Wolf by {lw_vs_pypfopt}")

    rows = constraint_rows(n, data, c)
    mv, moved, uncertified = [], [], []
    for d, _ in steps:
        window = returns[max(1, d - (LOOKBACK - 1)) : d + 1]
        w, m, certified = min_variance(covariance(window), rows)
        mv.append(w)
        if certified:
            moved.append(m)
        else:
            uncertified.append(dates[d].strftime("%Y-%m-%d"))
    if uncertified:
        # Its weights would be the interior point's, good to 1e-5 at worst:
        # not a reference to pin at 1e-6.
        fail(f"the polish could not certify the minimum-variance optimum on {uncertified}")
    mv = np.array(mv)
    equal = np.full((len(steps), n), 1.0 / n)

    legs = {}
    for name, weights in [("equal_weight", equal), ("min_variance", mv)]:
        net, turnover = path(weights, nexts)
        legs[name] = figures(net, turnover, weights, data, c)

    missing = [p for p in PINNED_DATES if p not in step_dates]
    if missing:
        fail(f"no test step on {missing}")
    out = {
        "command": "~/.cache/ultracore/benchvenv/bin/python tools/reference_epsilon.py",
        "data_sha256": sha,
        "tickers": tickers,
        "test_steps": len(steps),
        "first_step": step_dates[0],
        "last_step": step_dates[-1],
        "cost": COST,
        "legs": legs,
        "min_variance_weights": {
            p: mv[step_dates.index(p)].tolist() for p in PINNED_DATES
        },
        "checks": {
            "ledoit_wolf_sklearn_vs_pypfopt_max_abs": lw_vs_pypfopt,
            "polish_max_abs_move": max(moved) if moved else None,
            "seconds": round(time.time() - started, 1),
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
