//! One request, start to finish: validate, read the data products, estimate,
//! rebalance, build the trade list and the explanation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{Months, NaiveDate};
use ultracore_epsilon::base::Universe;
use ultracore_epsilon::Agent;
use ultracore_marketdata::mesh::{DataMesh, PriceFilter};
use ultracore_marketdata::{DataProvider, Lookback};
use ultracore_portfolio::{
    estimate_covariance, mean_historical_return, returns_from_prices, Constraint, CovarianceMethod,
    EfficientFrontier, EsgData, EsgObjective, EsgOptimizer, Matrix,
};

use crate::events::{AgentDecision, OptimizationRequest, OptimizationResult, Side, Trade};
use crate::explain::explain;
use crate::request::validate;

/// Why a request failed: the reason, and the field at fault when one is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct Failure {
    pub reason: String,
    pub field: Option<String>,
}

impl Failure {
    pub fn field(field: &str, reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            field: Some(field.to_owned()),
        }
    }
    pub fn general(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            field: None,
        }
    }
}

/// Trading days a year, for the minimum history.
const MIN_OBSERVATIONS: usize = 60;

/// Runs one request against the data products.
pub fn optimize(
    mesh: &DataMesh,
    request: &OptimizationRequest,
) -> Result<OptimizationResult, Failure> {
    let started = Instant::now();
    validate(request)?;
    let data_error =
        |e: ultracore_marketdata::Error| Failure::general(format!("data products: {e}"));
    let esg_all = mesh.esg(None).map_err(data_error)?;
    let synthetic = mesh.esg_is_synthetic().map_err(data_error)?;
    let by_ticker: BTreeMap<&str, usize> = esg_all
        .iter()
        .enumerate()
        .map(|(i, r)| (r.ticker.as_str(), i))
        .collect();
    let by_isin: BTreeMap<&str, usize> = esg_all
        .iter()
        .enumerate()
        .map(|(i, r)| (r.isin.as_str(), i))
        .collect();

    // Resolve holdings to ESG records.
    let mut held: Vec<(usize, f64, bool)> = Vec::new(); // (record, amount, amount is units)
    for (i, h) in request.portfolio.holdings.iter().enumerate() {
        let idx = match (&h.ticker, &h.isin) {
            (Some(t), _) => by_ticker.get(t.as_str()).copied().ok_or_else(|| {
                Failure::field(
                    &format!("portfolio.holdings[{i}].ticker"),
                    format!("{t} is not in the data products"),
                )
            })?,
            (None, Some(isin)) => by_isin.get(isin.as_str()).copied().ok_or_else(|| {
                Failure::field(
                    &format!("portfolio.holdings[{i}].isin"),
                    format!("{isin} is not in the data products"),
                )
            })?,
            (None, None) => unreachable!("validated"),
        };
        if held.iter().any(|(j, _, _)| *j == idx) {
            return Err(Failure::field(
                &format!("portfolio.holdings[{i}]"),
                format!("{} is held twice; merge the positions", esg_all[idx].ticker),
            ));
        }
        held.push((idx, h.units.or(h.weight).unwrap_or(0.0), h.units.is_some()));
    }
    // The universe: the current holdings plus the requested (or every) instrument.
    let mut members: BTreeSet<usize> = held.iter().map(|(i, _, _)| *i).collect();
    if request.universe.is_empty() {
        members.extend(0..esg_all.len());
    } else {
        for (i, t) in request.universe.iter().enumerate() {
            let idx = by_ticker.get(t.as_str()).copied().ok_or_else(|| {
                Failure::field(
                    &format!("universe[{i}]"),
                    format!("{t} is not in the data products"),
                )
            })?;
            members.insert(idx);
        }
    }
    for (i, name) in request.constraints.exclude.iter().enumerate() {
        if !by_ticker.contains_key(name.as_str()) {
            return Err(Failure::field(
                &format!("constraints.exclude[{i}]"),
                format!("{name} is not in the data products"),
            ));
        }
    }
    let members: Vec<usize> = members.into_iter().collect();
    if members.len() < 2 {
        return Err(Failure::field(
            "universe",
            "an optimization needs at least two instruments",
        ));
    }

    // Prices: only these ISINs, only the lookback window (pushed down to the file).
    let as_of = esg_all.iter().map(|r| r.as_of).max().unwrap_or_default();
    let months = (request.lookback_years * 12.0).round() as u32;
    let from = as_of
        .checked_sub_months(Months::new(months + 1))
        .unwrap_or(NaiveDate::MIN);
    let isins: BTreeSet<String> = members.iter().map(|&i| esg_all[i].isin.clone()).collect();
    let answer = mesh
        .prices_cached(&PriceFilter {
            isins: Some(isins),
            from: Some(from),
        })
        .map_err(data_error)?;
    let tickers: Vec<String> = members.iter().map(|&i| esg_all[i].ticker.clone()).collect();
    let provider = DataProvider::from_series(answer.0.iter().map(|(_, s)| s.clone()).collect());
    let prices = provider
        .price_matrix(
            &tickers,
            Lookback::Years(request.lookback_years),
            MIN_OBSERVATIONS,
        )
        .map_err(|e| {
            Failure::field(
                "lookback_years",
                format!("not enough common price history: {e}"),
            )
        })?;
    let n = tickers.len();
    let returns = returns_from_prices(
        &Matrix::from_row_major(prices.dates.len(), n, prices.values.clone())
            .map_err(|e| Failure::general(e.to_string()))?,
    )
    .map_err(|e| Failure::general(format!("returns: {e}")))?;
    let mu = mean_historical_return(&returns, true).map_err(|e| Failure::general(e.to_string()))?;
    let cov = estimate_covariance(&returns, CovarianceMethod::LedoitWolf)
        .map_err(|e| Failure::general(e.to_string()))?;
    let last_prices: Vec<f64> = (0..n)
        .map(|j| prices.values[(prices.dates.len() - 1) * n + j])
        .collect();

    // Current weights and value.
    let position = |idx: usize| members.iter().position(|&m| m == idx).unwrap_or(0);
    let mut current = vec![0.0; n];
    let value = match request.portfolio.value {
        Some(v) => {
            for &(idx, w, _) in &held {
                current[position(idx)] = w;
            }
            v
        }
        None => {
            let mut invested = 0.0;
            for &(idx, units, _) in &held {
                let j = position(idx);
                current[j] = units * last_prices[j];
                invested += current[j];
            }
            let total = invested + request.portfolio.cash;
            if total <= 0.0 {
                return Err(Failure::field(
                    "portfolio",
                    "the portfolio is worth nothing: give holdings or cash",
                ));
            }
            for w in &mut current {
                *w /= total;
            }
            total
        }
    };

    let data = EsgData {
        names: tickers.clone(),
        esg_score: members.iter().map(|&i| esg_all[i].esg_score).collect(),
        carbon_intensity: members
            .iter()
            .map(|&i| esg_all[i].carbon_intensity)
            .collect(),
        sector: members.iter().map(|&i| esg_all[i].sector.clone()).collect(),
        flagged: members
            .iter()
            .map(|&i| esg_all[i].controversy_flag)
            .collect(),
    };
    let optimizer = EsgOptimizer::new(
        &mu,
        &cov,
        current.clone(),
        &data,
        request.constraints.clone(),
        request.risk_free_rate,
    )
    .map_err(optimizer_failure)?;
    let (rebalance, agent) = if request.objective == EsgObjective::Epsilon {
        let rows: Vec<Vec<f64>> = prices.values.chunks(n).map(<[f64]>::to_vec).collect();
        let universe = Universe {
            data: data.clone(),
            constraints: request.constraints.clone(),
            risk_free_rate: request.risk_free_rate,
        };
        let agent = Agent::shipped();
        let decision = agent
            .decide(&rows, &universe, &current)
            .map_err(|e| match e {
                ultracore_epsilon::Error::Portfolio(e) => optimizer_failure(e),
                ultracore_epsilon::Error::Data { reason } => {
                    Failure::field("lookback_years", reason)
                }
                other => Failure::general(other.to_string()),
            })?;
        let rebalance = optimizer
            .report(decision.weights.clone(), "Epsilon Agent")
            .map_err(optimizer_failure)?;
        let agent = AgentDecision {
            agent_version: decision.agent_version,
            mix: decision.mix.into_iter().collect(),
            reasons: decision.reasons,
            fold: decision.fold,
        };
        (rebalance, Some(agent))
    } else {
        let rebalance = optimizer
            .optimize(request.objective)
            .map_err(optimizer_failure)?;
        (rebalance, None)
    };

    let cost_rate = request.constraints.transaction_cost_bps / 10_000.0;
    let trades: Vec<Trade> = rebalance
        .changes
        .iter()
        .map(|c| {
            let j = tickers.iter().position(|t| *t == c.asset).unwrap_or(0);
            let notional = c.delta() * value;
            Trade {
                ticker: c.asset.clone(),
                isin: esg_all[members[j]].isin.clone(),
                side: if c.delta() > 0.0 {
                    Side::Buy
                } else {
                    Side::Sell
                },
                weight_change: c.delta(),
                units: notional.abs() / last_prices[j],
                price: last_prices[j],
                notional: notional.abs(),
                estimated_cost: notional.abs() * cost_rate,
            }
        })
        .collect();
    let weights: BTreeMap<String, f64> = tickers
        .iter()
        .zip(&rebalance.weights)
        .filter(|(_, w)| w.abs() > 1e-6)
        .map(|(t, w)| (t.clone(), *w))
        .collect();
    let mut explanation = explain(request, &rebalance, &data, &mu, synthetic);
    if let Some(a) = &agent {
        explanation.extend(a.reasons.iter().cloned());
        if request
            .constraints
            .min_trade_weight
            .is_some_and(|m| m > 0.0)
        {
            explanation.push("The minimum trade size is not applied to the agent's mix: cancelling trades would move it off the mix of feasible base portfolios.".into());
        }
    }
    Ok(OptimizationResult {
        request_id: request.request_id,
        portfolio_id: request.portfolio_id.clone(),
        objective: request.objective,
        weights,
        trades,
        portfolio_value: value,
        before: rebalance.before,
        after: rebalance.after,
        without_esg_constraints: rebalance.without_esg_constraints,
        binding_constraints: rebalance.binding.clone(),
        cancelled_small_trades: rebalance.cancelled_small_trades.clone(),
        explanation,
        esg_data_synthetic: synthetic,
        data_start: prices.dates[0],
        data_end: prices.dates[prices.dates.len() - 1],
        observations: returns.rows(),
        solver_status: rebalance.status.clone(),
        solve_ms: started.elapsed().as_secs_f64() * 1e3,
        agent,
        frontier: frontier_of(&mu, &cov),
    })
}

/// Points of the frontier a result is charted against.
pub const FRONTIER_POINTS: usize = 20;

/// The long-only frontier of `mu` and `cov` (empty when the solver cannot
/// trace it: a chart is not worth failing a request for).
fn frontier_of(mu: &[f64], cov: &Matrix) -> Vec<crate::events::FrontierPoint> {
    let traced = EfficientFrontier::new(mu.to_vec(), cov.clone())
        .and_then(|ef| ef.frontier(FRONTIER_POINTS));
    match traced {
        Ok(f) => f
            .points
            .iter()
            .map(|p| crate::events::FrontierPoint {
                volatility: p.volatility,
                expected_return: p.expected_return,
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "the frontier could not be traced");
            Vec::new()
        }
    }
}

/// An optimizer error as a failure naming the request field of the
/// constraint it is about; errors about no one constraint (solver trouble,
/// or several constraints together) point at `constraints` as a whole.
fn optimizer_failure(e: ultracore_portfolio::Error) -> Failure {
    Failure::field(constraint_field(e.constraint()), e.to_string())
}

/// The request field that sets a constraint or objective parameter.
fn constraint_field(constraint: Option<Constraint>) -> &'static str {
    match constraint {
        Some(Constraint::WeightBounds) => "constraints.weight_bounds",
        Some(Constraint::SectorBounds) => "constraints.sector_bounds",
        Some(Constraint::Exclusions) => "constraints.exclude",
        Some(Constraint::MinEsgScore) => "constraints.min_esg_score",
        Some(Constraint::MaxCarbonIntensity) => "constraints.max_carbon_intensity",
        Some(Constraint::MaxTurnover) => "constraints.max_turnover",
        Some(Constraint::TransactionCost) => "constraints.transaction_cost_bps",
        Some(Constraint::MinTradeWeight) => "constraints.min_trade_weight",
        Some(Constraint::TargetVolatility) => "objective.target_volatility",
        Some(Constraint::RiskAversion) => "objective.risk_aversion",
        Some(Constraint::EsgWeight) => "objective.esg_weight",
        // The ESG objectives take no target return.
        Some(Constraint::TargetReturn) => "objective",
        Some(Constraint::RiskFreeRate) => "risk_free_rate",
        Some(Constraint::Bounds) | None => "constraints",
    }
}
