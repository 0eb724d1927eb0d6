//! ESG-aware rebalancing of a current portfolio.
//!
//! The mean-variance objectives of [`EfficientFrontier`](super::EfficientFrontier),
//! plus a weighted trade-off with the ESG score, under: a minimum portfolio
//! ESG score `Σ wᵢ·esgᵢ ≥ s`, a maximum weighted carbon intensity
//! `Σ wᵢ·cᵢ ≤ c`, exclusions (sectors, flagged issuers, single assets: their
//! weight is 0), per-asset and per-sector bounds, a maximum turnover
//! `Σ |wᵢ − w⁰ᵢ| ≤ T` against the current weights `w⁰`, linear transaction
//! costs `k·Σ |wᵢ − w⁰ᵢ|` (`k` = bps / 10,000) and a minimum trade size.
//!
//! Turnover and costs use auxiliary variables `tᵢ ≥ |wᵢ − w⁰ᵢ|`. Max Sharpe
//! uses PyPortfolioOpt's homogenisation (`y = κw`); every linear constraint
//! above is homogeneous in `(y, κ)`, so the transform stays exact, and costs
//! enter the normalisation row: `(μ − R_f)ᵀy − k·Σ tᵢ = 1`. Costs enter the
//! other objectives as `+ k·Σ tᵢ` (PyPortfolioOpt's `transaction_cost`). A
//! minimum trade size is not convex: trades smaller than it are cancelled
//! (the asset is held at its current weight) and the problem re-solved, at
//! most a few rounds.
//!
//! An infeasible request is diagnosed: the base constraints (bounds,
//! sectors, exclusions) alone, then each of the ESG score, carbon and
//! turnover limits with them (naming the best achievable value), then pairs.

use serde::{Deserialize, Serialize};

use super::factor::covariance_factor;
use super::problem::{is_infeasible, is_solved, Program, Solution};
use super::SolverSettings;
use crate::{Constraint, Error, Matrix, Result};

/// Per-asset ESG data, in the order of the expected returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsgData {
    /// Asset names, for messages and trade lists.
    pub names: Vec<String>,
    /// ESG score, 0–100.
    pub esg_score: Vec<f64>,
    /// Carbon intensity, tCO2e per USD m revenue.
    pub carbon_intensity: Vec<f64>,
    pub sector: Vec<String>,
    /// Issuers under a controversy flag.
    pub flagged: Vec<bool>,
}

/// Bounds on a sector's total weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SectorBound {
    /// The sector, as named in the ESG data (e.g. `Energy`).
    pub sector: String,
    /// Minimum total weight of the sector.
    #[serde(default)]
    pub min: Option<f64>,
    /// Maximum total weight of the sector.
    #[serde(default)]
    pub max: Option<f64>,
}

/// What the new portfolio must satisfy. Everything is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct EsgConstraints {
    /// Minimum weighted ESG score of the invested part (0–100).
    #[serde(default)]
    pub min_esg_score: Option<f64>,
    /// Maximum weighted carbon intensity (tCO2e per USD m revenue).
    #[serde(default)]
    pub max_carbon_intensity: Option<f64>,
    /// Sectors to hold nothing of.
    #[serde(default)]
    pub exclude_sectors: Vec<String>,
    /// Hold nothing of issuers under a controversy flag.
    #[serde(default)]
    pub exclude_flagged: bool,
    /// Asset names to exclude.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Bounds of every asset's weight, `[min, max]`.
    #[serde(default = "default_bounds")]
    pub weight_bounds: (f64, f64),
    /// Bounds on sectors' total weights.
    #[serde(default)]
    pub sector_bounds: Vec<SectorBound>,
    /// Maximum `Σ |wᵢ − w⁰ᵢ|` (1.0 = half the portfolio replaced).
    #[serde(default)]
    pub max_turnover: Option<f64>,
    /// Linear transaction cost in basis points of the traded weight.
    #[serde(default)]
    pub transaction_cost_bps: f64,
    /// Trades smaller than this weight are not made.
    #[serde(default)]
    pub min_trade_weight: Option<f64>,
}

fn default_bounds() -> (f64, f64) {
    (0.0, 1.0)
}

impl Default for EsgConstraints {
    fn default() -> Self {
        EsgConstraints {
            min_esg_score: None,
            max_carbon_intensity: None,
            exclude_sectors: Vec::new(),
            exclude_flagged: false,
            exclude: Vec::new(),
            weight_bounds: default_bounds(),
            sector_bounds: Vec::new(),
            max_turnover: None,
            transaction_cost_bps: 0.0,
            min_trade_weight: None,
        }
    }
}

impl EsgConstraints {
    /// Whether asset `i` of `data` is excluded (by name, sector or flag).
    pub fn excludes(&self, data: &EsgData, i: usize) -> bool {
        self.exclude.contains(&data.names[i])
            || self.exclude_sectors.contains(&data.sector[i])
            || (self.exclude_flagged && data.flagged[i])
    }

    /// The first constraint fully invested weights `w` break, in words
    /// (tolerance 1e-6; relative for the ESG score and carbon intensity).
    /// The turnover limit is checked against `current` when given.
    pub fn breach(
        &self,
        w: &[f64],
        data: &EsgData,
        current: Option<&[f64]>,
    ) -> Option<(Constraint, String)> {
        let tol = 1e-6;
        let sum: f64 = w.iter().sum();
        if (sum - 1.0).abs() > tol {
            return Some((
                Constraint::Bounds,
                format!("the weights add up to {sum}, not 1"),
            ));
        }
        let (lo, hi) = self.weight_bounds;
        for (i, v) in w.iter().enumerate() {
            let name = &data.names[i];
            if *v < lo - tol || *v > hi + tol {
                return Some((
                    Constraint::WeightBounds,
                    format!("{name} at {v:.6} is outside [{lo}, {hi}]"),
                ));
            }
            if self.excludes(data, i) && v.abs() > tol {
                return Some((
                    Constraint::Exclusions,
                    format!("{name} is excluded but held at {v:.6}"),
                ));
            }
        }
        let dot = |a: &[f64]| w.iter().zip(a).map(|(x, y)| x * y).sum::<f64>();
        if let Some(min) = self.min_esg_score {
            let s = dot(&data.esg_score);
            if s < min - tol * min.max(1.0) {
                return Some((
                    Constraint::MinEsgScore,
                    format!("ESG score {s:.4} below {min}"),
                ));
            }
        }
        if let Some(max) = self.max_carbon_intensity {
            let v = dot(&data.carbon_intensity);
            if v > max + tol * max.max(1.0) {
                return Some((
                    Constraint::MaxCarbonIntensity,
                    format!("carbon intensity {v:.4} above {max}"),
                ));
            }
        }
        for b in &self.sector_bounds {
            let t: f64 = (0..w.len())
                .filter(|&i| data.sector[i] == b.sector)
                .map(|i| w[i])
                .sum();
            if b.max.is_some_and(|m| t > m + tol) || b.min.is_some_and(|m| t < m - tol) {
                return Some((
                    Constraint::SectorBounds,
                    format!("sector {} at {t:.6}", b.sector),
                ));
            }
        }
        if let (Some(max), Some(current)) = (self.max_turnover, current) {
            let t: f64 = w.iter().zip(current).map(|(a, b)| (a - b).abs()).sum();
            if t > max + tol {
                return Some((
                    Constraint::MaxTurnover,
                    format!("turnover {t:.6} above {max}"),
                ));
            }
        }
        None
    }
}

/// What to optimize.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum EsgObjective {
    /// Maximum Sharpe ratio.
    MaxSharpe,
    /// Minimum volatility.
    MinVolatility,
    /// Maximum return with volatility at most the budget.
    MaxReturn {
        /// The volatility budget (annualised, e.g. 0.15).
        target_volatility: f64,
    },
    /// Maximise `μᵀw − δ/2·wᵀΣw + λ·(esgᵀw)/100` (λ: return per 100 ESG points).
    EsgTradeoff {
        /// δ, the risk aversion (e.g. 1).
        risk_aversion: f64,
        /// λ, the return one is ready to give up per 100 ESG points.
        esg_weight: f64,
    },
    /// The Epsilon Agent's learned mix of base portfolios, each solved
    /// under the request's constraints (`ultracore-epsilon`). Not a
    /// program of this optimizer: [`EsgOptimizer::optimize`] refuses it and
    /// [`EsgOptimizer::report`] describes the agent's weights.
    Epsilon,
}

/// A portfolio's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PortfolioFigures {
    pub expected_return: f64,
    pub volatility: f64,
    pub sharpe: f64,
    /// Weighted over the invested part.
    pub esg_score: f64,
    /// Weighted over the invested part.
    pub carbon_intensity: f64,
    /// `Σ |wᵢ − w⁰ᵢ|` against the current portfolio.
    pub turnover: f64,
    /// Transaction cost as a fraction of the portfolio.
    pub transaction_cost: f64,
}

/// One asset's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightChange {
    pub asset: String,
    pub from: f64,
    pub to: f64,
    /// Estimated transaction cost, as a fraction of the portfolio.
    pub cost: f64,
}

impl WeightChange {
    pub fn delta(&self) -> f64 {
        self.to - self.from
    }
}

/// The result of an ESG rebalancing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsgRebalance {
    pub weights: Vec<f64>,
    pub before: PortfolioFigures,
    pub after: PortfolioFigures,
    /// Every asset whose weight changes by more than 1e-6, largest first.
    pub changes: Vec<WeightChange>,
    /// Constraints that hold with equality at the optimum, in words.
    pub binding: Vec<String>,
    /// The same objective without the ESG score, carbon and exclusion
    /// constraints: what they cost.
    pub without_esg_constraints: Option<PortfolioFigures>,
    /// Trades cancelled for being smaller than the minimum trade size.
    pub cancelled_small_trades: Vec<String>,
    pub status: String,
    pub iterations: u32,
}

/// Which optional constraint families a program carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    esg: bool,
    carbon: bool,
    turnover: bool,
    exclusions: bool,
}

impl Parts {
    const ALL: Parts = Parts {
        esg: true,
        carbon: true,
        turnover: true,
        exclusions: true,
    };
}

/// An ESG rebalancing problem.
#[derive(Debug, Clone)]
pub struct EsgOptimizer<'a> {
    mu: &'a [f64],
    cov: &'a Matrix,
    current: Vec<f64>,
    data: &'a EsgData,
    constraints: EsgConstraints,
    risk_free_rate: f64,
    settings: SolverSettings,
    /// Per-asset bounds after exclusions and cancelled small trades.
    bounds: Vec<(f64, f64)>,
    excluded: Vec<bool>,
}

impl<'a> EsgOptimizer<'a> {
    /// `current` holds the current weights (their sum may be below 1: the
    /// rest is cash). Checks every input's size and range.
    pub fn new(
        mu: &'a [f64],
        cov: &'a Matrix,
        current: Vec<f64>,
        data: &'a EsgData,
        constraints: EsgConstraints,
        risk_free_rate: f64,
    ) -> Result<Self> {
        let n = mu.len();
        for (what, got) in [
            ("covariance rows", cov.rows()),
            ("covariance columns", cov.cols()),
            ("current weights", current.len()),
            ("asset names", data.names.len()),
            ("ESG scores", data.esg_score.len()),
            ("carbon intensities", data.carbon_intensity.len()),
            ("sectors", data.sector.len()),
            ("controversy flags", data.flagged.len()),
        ] {
            if got != n {
                return Err(Error::DimensionMismatch {
                    what,
                    expected: n,
                    got,
                });
            }
        }
        let invalid = |name: &'static str,
                       constraint: Option<Constraint>,
                       value: f64,
                       reason: &'static str| {
            Err(Error::InvalidParameter {
                name,
                value,
                reason,
                constraint,
            })
        };
        if let Some(&w) = current.iter().find(|w| !(w.is_finite() && **w >= -1e-12)) {
            return invalid(
                "current weight",
                None,
                w,
                "current weights must be finite and not negative",
            );
        }
        let held: f64 = current.iter().sum();
        if held > 1.0 + 1e-9 {
            return invalid(
                "sum of current weights",
                None,
                held,
                "current weights add up to more than 1",
            );
        }
        if let Some(&s) = data
            .esg_score
            .iter()
            .find(|s| !(s.is_finite() && (0.0..=100.0).contains(*s)))
        {
            return invalid("ESG score", None, s, "ESG scores are between 0 and 100");
        }
        if let Some(&c) = data
            .carbon_intensity
            .iter()
            .find(|c| !(c.is_finite() && **c >= 0.0))
        {
            return invalid("carbon intensity", None, c, "must be a number ≥ 0");
        }
        let c = &constraints;
        if let Some(s) = c
            .min_esg_score
            .filter(|s| !(s.is_finite() && (0.0..=100.0).contains(s)))
        {
            return invalid(
                "minimum ESG score",
                Some(Constraint::MinEsgScore),
                s,
                "must be between 0 and 100",
            );
        }
        if let Some(v) = c
            .max_carbon_intensity
            .filter(|v| !(v.is_finite() && *v >= 0.0))
        {
            return invalid(
                "maximum carbon intensity",
                Some(Constraint::MaxCarbonIntensity),
                v,
                "must be a number ≥ 0",
            );
        }
        if let Some(v) = c.max_turnover.filter(|v| !(v.is_finite() && *v >= 0.0)) {
            return invalid(
                "maximum turnover",
                Some(Constraint::MaxTurnover),
                v,
                "must be a number ≥ 0 (2 = replace everything)",
            );
        }
        if !(c.transaction_cost_bps.is_finite() && c.transaction_cost_bps >= 0.0) {
            return invalid(
                "transaction cost (bps)",
                Some(Constraint::TransactionCost),
                c.transaction_cost_bps,
                "must be a number ≥ 0",
            );
        }
        if let Some(v) = c.min_trade_weight.filter(|v| !(v.is_finite() && *v >= 0.0)) {
            return invalid(
                "minimum trade weight",
                Some(Constraint::MinTradeWeight),
                v,
                "must be a number ≥ 0",
            );
        }
        let (lo, hi) = c.weight_bounds;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(Error::InfeasibleConstraints {
                constraint: Constraint::WeightBounds,
                reason: format!("weight bounds ({lo}, {hi}) need lower ≤ upper"),
            });
        }
        for name in &c.exclude {
            if !data.names.contains(name) {
                return Err(Error::InfeasibleConstraints {
                    constraint: Constraint::Exclusions,
                    reason: format!("excluded asset {name} is not in the universe"),
                });
            }
        }
        for b in &c.sector_bounds {
            if !data.sector.contains(&b.sector) {
                return Err(Error::InfeasibleConstraints {
                    constraint: Constraint::SectorBounds,
                    reason: format!(
                        "sector bound names sector '{}', which no asset has",
                        b.sector
                    ),
                });
            }
        }
        let excluded: Vec<bool> = (0..n).map(|i| c.excludes(data, i)).collect();
        let bounds = (0..n)
            .map(|i| {
                if excluded[i] {
                    (lo.min(0.0), 0.0)
                } else {
                    (lo, hi)
                }
            })
            .collect();
        Ok(EsgOptimizer {
            mu,
            cov,
            current,
            data,
            constraints,
            risk_free_rate,
            settings: SolverSettings::default(),
            bounds,
            excluded,
        })
    }

    pub fn with_solver_settings(mut self, settings: SolverSettings) -> Self {
        self.settings = settings;
        self
    }

    fn n(&self) -> usize {
        self.mu.len()
    }

    fn cost_rate(&self) -> f64 {
        self.constraints.transaction_cost_bps / 10_000.0
    }

    fn needs_turnover_vars(&self) -> bool {
        self.constraints.max_turnover.is_some() || self.cost_rate() > 0.0
    }

    /// Solves, cancels trades below the minimum size, and compares with the
    /// optimum without ESG constraints.
    pub fn optimize(&self, objective: EsgObjective) -> Result<EsgRebalance> {
        validate_objective(objective)?;
        let mut this = self.clone();
        let mut cancelled = Vec::new();
        let mut sol = this.solve(objective, Parts::ALL)?;
        if let Some(min_trade) = self.constraints.min_trade_weight.filter(|m| *m > 0.0) {
            for _round in 0..5 {
                let small: Vec<usize> = (0..this.n())
                    .filter(|&i| {
                        let d = (sol.x[i] - this.current[i]).abs();
                        d > 1e-9 && d < min_trade && !this.excluded[i]
                    })
                    .collect();
                if small.is_empty() {
                    break;
                }
                for &i in &small {
                    this.bounds[i] = (this.current[i], this.current[i]);
                    cancelled.push(this.data.names[i].clone());
                }
                sol = this.solve(objective, Parts::ALL)?;
            }
        }
        let weights: Vec<f64> = sol.x[..this.n()].to_vec();
        let mut out = this.describe(weights, Some(objective))?;
        out.cancelled_small_trades = cancelled;
        out.status = format!("{:?}", sol.status);
        out.iterations = sol.iterations;
        Ok(out)
    }

    /// The report of weights chosen elsewhere (the Epsilon Agent's mix):
    /// figures before and after, the changes, the constraints that bind.
    /// Errors when the weights break a constraint: nothing infeasible is
    /// reported as a result.
    pub fn report(&self, weights: Vec<f64>, status: &str) -> Result<EsgRebalance> {
        if weights.len() != self.n() {
            return Err(Error::DimensionMismatch {
                what: "weights",
                expected: self.n(),
                got: weights.len(),
            });
        }
        if let Some((constraint, reason)) = self.breach(&weights) {
            return Err(Error::InfeasibleConstraints { constraint, reason });
        }
        let mut out = self.describe(weights, None)?;
        out.status = status.to_owned();
        Ok(out)
    }

    /// The first constraint `w` breaks (tolerance 1e-6), in words (see
    /// [`EsgConstraints::breach`]).
    pub fn breach(&self, w: &[f64]) -> Option<(Constraint, String)> {
        self.constraints.breach(w, self.data, Some(&self.current))
    }

    /// Figures, changes, binding constraints and (for an objective of this
    /// optimizer) the same objective without the ESG constraints.
    fn describe(&self, weights: Vec<f64>, objective: Option<EsgObjective>) -> Result<EsgRebalance> {
        let this = self;
        let before = this.figures(&this.current)?;
        let after = this.figures(&weights)?;
        let mut changes: Vec<WeightChange> = (0..this.n())
            .filter(|&i| (weights[i] - this.current[i]).abs() > 1e-6)
            .map(|i| WeightChange {
                asset: this.data.names[i].clone(),
                from: this.current[i],
                to: weights[i],
                cost: this.cost_rate() * (weights[i] - this.current[i]).abs(),
            })
            .collect();
        changes.sort_by(|a, b| b.delta().abs().total_cmp(&a.delta().abs()));
        let binding = this.binding(&weights);
        let without = objective.and_then(|objective| {
            let mut free = self.clone();
            free.bounds = (0..free.n())
                .map(|_| free.constraints.weight_bounds)
                .collect();
            free.excluded = vec![false; free.n()];
            let parts = Parts {
                esg: false,
                carbon: false,
                exclusions: false,
                turnover: true,
            };
            free.solve(objective, parts)
                .ok()
                .and_then(|s| free.figures(&s.x[..free.n()]).ok())
        });
        Ok(EsgRebalance {
            weights,
            before,
            after,
            changes,
            binding,
            without_esg_constraints: without,
            cancelled_small_trades: Vec::new(),
            status: String::new(),
            iterations: 0,
        })
    }

    /// The weights of `objective` under every constraint, without the
    /// report [`EsgOptimizer::optimize`] builds around them (figures, the
    /// unconstrained comparison) and without cancelling small trades: for
    /// callers that solve many programs and need only the portfolio.
    pub fn weights(&self, objective: EsgObjective) -> Result<Vec<f64>> {
        validate_objective(objective)?;
        let sol = self.solve(objective, Parts::ALL)?;
        Ok(sol.x[..self.n()].to_vec())
    }

    /// The feasible portfolio closest to `target` in the Euclidean norm:
    /// `min ‖w − target‖²` under every constraint. Projects a heuristic
    /// allocation (1/N, inverse volatility) onto the request's constraints.
    pub fn closest(&self, target: &[f64]) -> Result<Vec<f64>> {
        if target.len() != self.n() {
            return Err(Error::DimensionMismatch {
                what: "target weights",
                expected: self.n(),
                got: target.len(),
            });
        }
        if let Some(&v) = target.iter().find(|v| !v.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "target weight",
                value: v,
                reason: "target weights must be finite",
                constraint: None,
            });
        }
        let mut p = self.program(None, Parts::ALL);
        p.add_diagonal(self.n(), 2.0);
        for (i, t) in target.iter().enumerate() {
            p.set_linear(i, -2.0 * t);
        }
        let sol = p.solve(&self.settings, self.n())?;
        if is_solved(sol.status) {
            return Ok(sol.x[..self.n()].to_vec());
        }
        if let Some((constraint, reason)) = self.diagnose(Parts::ALL)? {
            return Err(Error::InfeasibleConstraints { constraint, reason });
        }
        Err(Error::Solver {
            status: format!("{:?}", sol.status),
            iterations: sol.iterations,
        })
    }

    /// Figures of any weights (the rest of 1 is cash at the risk-free rate).
    pub fn figures(&self, w: &[f64]) -> Result<PortfolioFigures> {
        let invested: f64 = w.iter().sum();
        let cash = (1.0 - invested).max(0.0);
        let ret: f64 =
            w.iter().zip(self.mu).map(|(a, b)| a * b).sum::<f64>() + cash * self.risk_free_rate;
        let vol = self.cov.quad_form(w)?.max(0.0).sqrt();
        let weighted = |v: &[f64]| {
            if invested > 1e-12 {
                w.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / invested
            } else {
                0.0
            }
        };
        let turnover: f64 = w
            .iter()
            .zip(&self.current)
            .map(|(a, b)| (a - b).abs())
            .sum();
        Ok(PortfolioFigures {
            expected_return: ret,
            volatility: vol,
            sharpe: if vol > 0.0 {
                (ret - self.risk_free_rate) / vol
            } else {
                0.0
            },
            esg_score: weighted(&self.data.esg_score),
            carbon_intensity: weighted(&self.data.carbon_intensity),
            turnover,
            transaction_cost: turnover * self.cost_rate(),
        })
    }

    fn binding(&self, w: &[f64]) -> Vec<String> {
        let c = &self.constraints;
        let tight = |value: f64, limit: f64| (value - limit).abs() <= 1e-6 * limit.abs().max(1.0);
        let mut out = Vec::new();
        let dot = |v: &[f64]| w.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        if let Some(min) = c.min_esg_score {
            if tight(dot(&self.data.esg_score), min) {
                out.push(format!("minimum ESG score {min}"));
            }
        }
        if let Some(max) = c.max_carbon_intensity {
            if tight(dot(&self.data.carbon_intensity), max) {
                out.push(format!("maximum carbon intensity {max}"));
            }
        }
        if let Some(max) = c.max_turnover {
            let t: f64 = w
                .iter()
                .zip(&self.current)
                .map(|(a, b)| (a - b).abs())
                .sum();
            if tight(t, max) {
                out.push(format!("maximum turnover {max}"));
            }
        }
        for b in &c.sector_bounds {
            let total: f64 = (0..self.n())
                .filter(|&i| self.data.sector[i] == b.sector)
                .map(|i| w[i])
                .sum();
            if b.max.is_some_and(|m| tight(total, m)) {
                out.push(format!(
                    "sector {} at its maximum {}",
                    b.sector,
                    b.max.unwrap_or_default()
                ));
            }
            if b.min.is_some_and(|m| tight(total, m)) {
                out.push(format!(
                    "sector {} at its minimum {}",
                    b.sector,
                    b.min.unwrap_or_default()
                ));
            }
        }
        let (_, hi) = c.weight_bounds;
        let capped: Vec<&str> = (0..self.n())
            .filter(|&i| !self.excluded[i] && hi < 1.0 && tight(w[i], hi))
            .map(|i| self.data.names[i].as_str())
            .collect();
        if !capped.is_empty() {
            out.push(format!("weight cap {hi} on {}", capped.join(", ")));
        }
        let excluded: Vec<&str> = (0..self.n())
            .filter(|&i| self.excluded[i])
            .map(|i| self.data.names[i].as_str())
            .collect();
        if !excluded.is_empty() {
            out.push(format!("exclusions: {}", excluded.join(", ")));
        }
        out
    }

    /// Builds and solves one program; infeasibility is diagnosed.
    fn solve(&self, objective: EsgObjective, parts: Parts) -> Result<Solution> {
        let sol = self
            .program(Some(objective), parts)
            .solve(&self.settings, self.n())?;
        if is_solved(sol.status) {
            let mut sol = sol;
            if objective == EsgObjective::MaxSharpe {
                let k = sol.x[self.kappa_index()];
                if k <= 0.0 {
                    return Err(Error::InfeasibleConstraints {
                        constraint: Constraint::RiskFreeRate,
                        reason: "no feasible portfolio has an expected return above the risk-free rate after costs".into(),
                    });
                }
                for v in sol.x.iter_mut() {
                    *v /= k;
                }
            }
            return Ok(sol);
        }
        if is_infeasible(sol.status) || objective == EsgObjective::MaxSharpe {
            if let Some((constraint, reason)) = self.diagnose(parts)? {
                return Err(Error::InfeasibleConstraints { constraint, reason });
            }
            if objective == EsgObjective::MaxSharpe {
                return Err(Error::InfeasibleConstraints {
                    constraint: Constraint::RiskFreeRate,
                    reason: "no feasible portfolio has an expected return above the risk-free rate after costs".into(),
                });
            }
        }
        if let EsgObjective::MaxReturn { target_volatility } = objective {
            let min = self.solve(EsgObjective::MinVolatility, parts)?;
            let figures = self.figures(&min.x[..self.n()])?;
            if target_volatility < figures.volatility {
                return Err(Error::TargetVolatilityTooLow {
                    target: target_volatility,
                    min: figures.volatility,
                });
            }
        }
        Err(Error::Solver {
            status: format!("{:?}", sol.status),
            iterations: sol.iterations,
        })
    }

    fn kappa_index(&self) -> usize {
        if self.needs_turnover_vars() {
            2 * self.n()
        } else {
            self.n()
        }
    }

    /// The program: `x = (w, t?, κ?)`. With `objective = None`, a
    /// feasibility problem (zero objective).
    fn program(&self, objective: Option<EsgObjective>, parts: Parts) -> Program {
        let n = self.n();
        let turnover_vars = self.needs_turnover_vars();
        let sharpe = objective == Some(EsgObjective::MaxSharpe);
        let t = |i: usize| n + i;
        let k = self.kappa_index();
        let vars = k + usize::from(sharpe);
        let mut p = Program::new(vars);
        let cost = self.cost_rate();
        // Equalities.
        if sharpe {
            let mut row: Vec<(usize, f64)> = (0..n)
                .map(|i| (i, self.mu[i] - self.risk_free_rate))
                .collect();
            if turnover_vars && cost > 0.0 {
                row.extend((0..n).map(|i| (t(i), -cost)));
            }
            p.eq(&row, 1.0);
            let mut sum: Vec<(usize, f64)> = (0..n).map(|i| (i, 1.0)).collect();
            sum.push((k, -1.0));
            p.eq(&sum, 0.0);
        } else {
            let sum: Vec<(usize, f64)> = (0..n).map(|i| (i, 1.0)).collect();
            p.eq(&sum, 1.0);
        }
        // Inequalities `entries · x ≤ rhs`, homogenised by κ for max Sharpe.
        let le = |p: &mut Program, mut entries: Vec<(usize, f64)>, rhs: f64| {
            if sharpe {
                entries.push((k, -rhs));
                p.le(&entries, 0.0);
            } else {
                p.le(&entries, rhs);
            }
        };
        let (lo, hi) = self.constraints.weight_bounds;
        for i in 0..n {
            let (l, h) = if self.excluded[i] && !parts.exclusions {
                (lo, hi)
            } else {
                self.bounds[i]
            };
            le(&mut p, vec![(i, 1.0)], h);
            le(&mut p, vec![(i, -1.0)], -l);
        }
        for b in &self.constraints.sector_bounds {
            let members: Vec<usize> = (0..n)
                .filter(|&i| self.data.sector[i] == b.sector)
                .collect();
            if let Some(max) = b.max {
                le(&mut p, members.iter().map(|&i| (i, 1.0)).collect(), max);
            }
            if let Some(min) = b.min {
                le(&mut p, members.iter().map(|&i| (i, -1.0)).collect(), -min);
            }
        }
        if parts.esg {
            if let Some(min) = self.constraints.min_esg_score {
                le(
                    &mut p,
                    (0..n).map(|i| (i, -self.data.esg_score[i])).collect(),
                    -min,
                );
            }
        }
        if parts.carbon {
            if let Some(max) = self.constraints.max_carbon_intensity {
                le(
                    &mut p,
                    (0..n).map(|i| (i, self.data.carbon_intensity[i])).collect(),
                    max,
                );
            }
        }
        if turnover_vars {
            for i in 0..n {
                // wᵢ − tᵢ ≤ w⁰ᵢ and −wᵢ − tᵢ ≤ −w⁰ᵢ.
                le(&mut p, vec![(i, 1.0), (t(i), -1.0)], self.current[i]);
                le(&mut p, vec![(i, -1.0), (t(i), -1.0)], -self.current[i]);
            }
            if parts.turnover {
                if let Some(max) = self.constraints.max_turnover {
                    le(&mut p, (0..n).map(|i| (t(i), 1.0)).collect(), max);
                }
            }
        }
        if sharpe {
            p.le(&[(k, -1.0)], 0.0);
        }
        let cov = self.cov.as_slice();
        match objective {
            None => {}
            Some(EsgObjective::MinVolatility) | Some(EsgObjective::MaxSharpe) => {
                p.add_quadratic(n, cov, 2.0);
            }
            Some(EsgObjective::MaxReturn { target_volatility }) => {
                for i in 0..n {
                    p.set_linear(i, -self.mu[i]);
                }
                p.norm_le(&covariance_factor(self.cov), n, target_volatility);
            }
            Some(EsgObjective::Epsilon) => {}
            Some(EsgObjective::EsgTradeoff {
                risk_aversion,
                esg_weight,
            }) => {
                for i in 0..n {
                    p.set_linear(i, -self.mu[i] - esg_weight * self.data.esg_score[i] / 100.0);
                }
                p.add_quadratic(n, cov, risk_aversion);
            }
        }
        if turnover_vars && cost > 0.0 && !sharpe && objective.is_some() {
            for i in 0..n {
                p.set_linear(t(i), cost);
            }
        }
        p
    }

    fn feasible(&self, parts: Parts) -> Result<bool> {
        let sol = self.program(None, parts).solve(&self.settings, self.n())?;
        Ok(is_solved(sol.status))
    }

    /// The best value of `c·w` under the base constraints (bounds, sectors,
    /// exclusions): its maximum when `maximize`, else its minimum.
    fn extreme(&self, c: &[f64], maximize: bool) -> Result<Option<f64>> {
        let none = Parts {
            esg: false,
            carbon: false,
            turnover: false,
            exclusions: true,
        };
        let mut p = self.program(None, none);
        let sign = if maximize { -1.0 } else { 1.0 };
        for (i, v) in c.iter().enumerate() {
            p.set_linear(i, sign * v);
        }
        let sol = p.solve(&self.settings, self.n())?;
        Ok(is_solved(sol.status).then(|| c.iter().zip(&sol.x).map(|(a, b)| a * b).sum()))
    }

    /// Names the constraints that cannot hold together, or `None` when every
    /// constraint family is feasible (the objective is then the problem).
    /// The constraint returned is the first the reason names.
    fn diagnose(&self, parts: Parts) -> Result<Option<(Constraint, String)>> {
        let base = Parts {
            esg: false,
            carbon: false,
            turnover: false,
            exclusions: parts.exclusions,
        };
        let c = &self.constraints;
        if !self.feasible(base)? {
            let excluded = self.excluded.iter().filter(|e| **e).count();
            return Ok(Some((
                Constraint::Bounds,
                format!(
                    "the weight bounds {:?}, the sector bounds and the exclusions ({excluded} of {} assets excluded) leave no fully invested portfolio",
                    c.weight_bounds,
                    self.n()
                ),
            )));
        }
        let mut single = Vec::new();
        if parts.esg {
            if let Some(min) = c.min_esg_score {
                let with = Parts { esg: true, ..base };
                if !self.feasible(with)? {
                    let best = self
                        .extreme(&self.data.esg_score, true)?
                        .unwrap_or(f64::NAN);
                    single.push((Constraint::MinEsgScore, format!(
                        "minimum ESG score {min} is above the maximum achievable {best:.2} under the bounds and exclusions"
                    )));
                }
            }
        }
        if parts.carbon {
            if let Some(max) = c.max_carbon_intensity {
                let with = Parts {
                    carbon: true,
                    ..base
                };
                if !self.feasible(with)? {
                    let best = self
                        .extreme(&self.data.carbon_intensity, false)?
                        .unwrap_or(f64::NAN);
                    single.push((Constraint::MaxCarbonIntensity, format!(
                        "maximum carbon intensity {max} is below the minimum achievable {best:.2} under the bounds and exclusions"
                    )));
                }
            }
        }
        if parts.turnover {
            if let Some(max) = c.max_turnover {
                let with = Parts {
                    turnover: true,
                    ..base
                };
                if !self.feasible(with)? {
                    single.push((Constraint::MaxTurnover, format!(
                        "maximum turnover {max} is too small to reach a portfolio within the bounds and exclusions"
                    )));
                }
            }
        }
        if let Some(&(first, _)) = single.first() {
            let reasons: Vec<String> = single.into_iter().map(|(_, r)| r).collect();
            return Ok(Some((first, reasons.join("; "))));
        }
        let named = [
            (
                parts.esg && c.min_esg_score.is_some(),
                "minimum ESG score",
                Constraint::MinEsgScore,
            ),
            (
                parts.carbon && c.max_carbon_intensity.is_some(),
                "maximum carbon intensity",
                Constraint::MaxCarbonIntensity,
            ),
            (
                parts.turnover && c.max_turnover.is_some(),
                "maximum turnover",
                Constraint::MaxTurnover,
            ),
        ];
        for a in 0..named.len() {
            for b in a + 1..named.len() {
                if !(named[a].0 && named[b].0) {
                    continue;
                }
                let with = Parts {
                    esg: base.esg || a == 0 || b == 0,
                    carbon: base.carbon || a == 1 || b == 1,
                    turnover: base.turnover || a == 2 || b == 2,
                    exclusions: base.exclusions,
                };
                if !self.feasible(with)? {
                    return Ok(Some((
                        named[a].2,
                        format!("the {} and the {} cannot both hold", named[a].1, named[b].1),
                    )));
                }
            }
        }
        if !self.feasible(parts)? {
            return Ok(Some((
                Constraint::MinEsgScore,
                "the minimum ESG score, maximum carbon intensity and maximum turnover cannot all hold together".into(),
            )));
        }
        Ok(None)
    }
}

fn validate_objective(objective: EsgObjective) -> Result<()> {
    match objective {
        EsgObjective::MaxReturn { target_volatility }
            if !(target_volatility.is_finite() && target_volatility > 0.0) =>
        {
            Err(Error::InvalidParameter {
                name: "target volatility",
                value: target_volatility,
                reason: "must be a positive number",
                constraint: Some(Constraint::TargetVolatility),
            })
        }
        EsgObjective::EsgTradeoff { risk_aversion, .. }
            if !(risk_aversion.is_finite() && risk_aversion > 0.0) =>
        {
            Err(Error::InvalidParameter {
                name: "risk aversion",
                value: risk_aversion,
                reason: "must be greater than zero",
                constraint: Some(Constraint::RiskAversion),
            })
        }
        EsgObjective::EsgTradeoff { esg_weight, .. }
            if !(esg_weight.is_finite() && esg_weight >= 0.0) =>
        {
            Err(Error::InvalidParameter {
                name: "ESG weight",
                value: esg_weight,
                reason: "must be a number ≥ 0",
                constraint: Some(Constraint::EsgWeight),
            })
        }
        EsgObjective::Epsilon => Err(Error::InvalidParameter {
            name: "objective",
            value: f64::NAN,
            reason:
                "the epsilon objective is decided by the Epsilon Agent, not solved by the optimizer",
            constraint: None,
        }),
        _ => Ok(()),
    }
}
