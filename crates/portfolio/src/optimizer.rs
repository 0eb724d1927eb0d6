//! Mean-variance optimization with clarabel, matching PyPortfolioOpt's
//! `EfficientFrontier` formulations.
//!
//! Weights are fully invested (`Σ w = 1`) and bounded per asset (long-only
//! `[0, 1]` by default); optional group (sector) bounds and an L2 penalty
//! `γ ‖w‖²` apply to every objective.

mod dense;
mod esg;
mod factor;
mod problem;
mod working_set;

use crate::{Constraint, Error, Matrix, Result};
pub use esg::{
    EsgConstraints, EsgData, EsgObjective, EsgOptimizer, EsgRebalance, PortfolioFigures,
    SectorBound, WeightChange,
};
pub use problem::SolverSettings;
use problem::{is_infeasible, is_solved, Program, Solution};

/// What to optimize.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "objective")]
pub enum Objective {
    /// Minimise `wᵀΣw (+ γ‖w‖²)`.
    MinVolatility,
    /// Maximise `(μᵀw − R_f) / √(wᵀΣw)` with the frontier's risk-free rate,
    /// through PyPortfolioOpt's variable transformation: minimise `yᵀΣy
    /// (+ γ‖y‖²)` s.t. `(μ − R_f)ᵀy = 1`, `Σ y = k`, `k ≥ 0` and every bound
    /// scaled by `k`; then `w = y / k`.
    MaxSharpe,
    /// Maximise `μᵀw (− γ‖w‖²)` s.t. `√(wᵀΣw) ≤ target_volatility`
    /// (a second-order cone `‖Fᵀw‖ ≤ σ` with `Σ = FFᵀ`).
    EfficientRisk {
        /// Annualised volatility budget.
        target_volatility: f64,
    },
    /// Minimise `wᵀΣw (+ γ‖w‖²)` s.t. `μᵀw ≥ target_return`.
    EfficientReturn {
        /// Minimum annualised expected return.
        target_return: f64,
    },
    /// Maximise `μᵀw − δ/2 · wᵀΣw (− γ‖w‖²)`.
    MaxQuadraticUtility {
        /// Risk aversion `δ > 0` (PyPortfolioOpt's default 1).
        risk_aversion: f64,
    },
}

/// Bounds on the total weight of a group of assets (a sector).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupBounds {
    /// Group name, for messages.
    pub name: String,
    /// Indices of the member assets.
    pub members: Vec<usize>,
    /// Minimum total weight, if any.
    pub lower: Option<f64>,
    /// Maximum total weight, if any.
    pub upper: Option<f64>,
}

/// An optimal portfolio and how it was found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OptimizedPortfolio {
    /// Weight per asset, in the order of the inputs.
    pub weights: Vec<f64>,
    /// `μᵀw`.
    pub expected_return: f64,
    /// `√(wᵀΣw)`.
    pub volatility: f64,
    /// `(μᵀw − R_f) / √(wᵀΣw)`.
    pub sharpe: f64,
    /// The annual risk-free rate used for `sharpe`.
    pub risk_free_rate: f64,
    /// The objective solved.
    pub objective: Objective,
    /// The objective's value at `weights`, in its natural sense: variance
    /// (+ penalty) for min-volatility and efficient-return, the Sharpe ratio
    /// for max-Sharpe, return (− penalty) for efficient-risk, utility
    /// (− penalty) for quadratic utility.
    pub objective_value: f64,
    /// Clarabel's final status (`Solved`, `AlmostSolved`).
    pub status: String,
    /// Interior-point iterations.
    pub iterations: u32,
}

/// A mean-variance problem: expected returns, covariance and constraints.
#[derive(Debug, Clone)]
pub struct EfficientFrontier {
    mu: Vec<f64>,
    cov: Matrix,
    bounds: Vec<(f64, f64)>,
    groups: Vec<GroupBounds>,
    gamma: f64,
    risk_free_rate: f64,
    settings: SolverSettings,
}

impl EfficientFrontier {
    /// A long-only (`0 ≤ w ≤ 1`) problem with risk-free rate 0 and no penalty.
    ///
    /// `mu` has one annualised expected return per asset, `cov` is the
    /// matching `n × n` annualised covariance (symmetric, finite).
    pub fn new(mu: Vec<f64>, cov: Matrix) -> Result<Self> {
        let n = mu.len();
        if n == 0 {
            return Err(Error::DimensionMismatch {
                what: "expected returns",
                expected: 1,
                got: 0,
            });
        }
        if cov.rows() != n || cov.cols() != n {
            return Err(Error::DimensionMismatch {
                what: "covariance rows and columns",
                expected: n,
                got: if cov.rows() != n {
                    cov.rows()
                } else {
                    cov.cols()
                },
            });
        }
        if let Some(i) = mu.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "expected return",
                row: 0,
                column: i,
                value: mu[i],
            });
        }
        cov.check_finite("covariance")?;
        let scale = cov.diagonal().iter().fold(0.0f64, |a, b| a.max(b.abs()));
        for i in 0..n {
            for j in 0..i {
                if (cov.get(i, j) - cov.get(j, i)).abs() > 1e-9 * scale.max(1e-300) {
                    return Err(Error::InvalidParameter {
                        name: "covariance entry",
                        value: cov.get(i, j),
                        reason: "the covariance matrix is not symmetric",
                        constraint: None,
                    });
                }
            }
        }
        Ok(Self {
            mu,
            cov,
            bounds: vec![(0.0, 1.0); n],
            groups: Vec::new(),
            gamma: 0.0,
            risk_free_rate: 0.0,
            settings: SolverSettings::default(),
        })
    }

    /// Number of assets.
    pub fn assets(&self) -> usize {
        self.mu.len()
    }

    /// Expected returns.
    pub fn expected_returns(&self) -> &[f64] {
        &self.mu
    }

    /// Covariance matrix.
    pub fn covariance(&self) -> &Matrix {
        &self.cov
    }

    /// The same bounds `[lower, upper]` for every asset (use
    /// `f64::NEG_INFINITY` / `f64::INFINITY` for none).
    pub fn with_weight_bounds(self, lower: f64, upper: f64) -> Result<Self> {
        let n = self.assets();
        self.with_asset_bounds(vec![(lower, upper); n])
    }

    /// Per-asset bounds `(lower, upper)`.
    pub fn with_asset_bounds(mut self, bounds: Vec<(f64, f64)>) -> Result<Self> {
        if bounds.len() != self.assets() {
            return Err(Error::DimensionMismatch {
                what: "weight bounds",
                expected: self.assets(),
                got: bounds.len(),
            });
        }
        for (i, &(lo, hi)) in bounds.iter().enumerate() {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(Error::InfeasibleConstraints {
                    constraint: Constraint::WeightBounds,
                    reason: format!("asset {i} has lower bound {lo} above upper bound {hi}"),
                });
            }
        }
        let lo: f64 = bounds.iter().map(|b| b.0).sum();
        let hi: f64 = bounds.iter().map(|b| b.1).sum();
        if lo > 1.0 + 1e-12 {
            return Err(Error::InfeasibleConstraints {
                constraint: Constraint::WeightBounds,
                reason: format!("the lower bounds add up to {lo:.4}, above 1"),
            });
        }
        if hi < 1.0 - 1e-12 {
            return Err(Error::InfeasibleConstraints {
                constraint: Constraint::WeightBounds,
                reason: format!("the upper bounds add up to {hi:.4}, below 1"),
            });
        }
        self.bounds = bounds;
        Ok(self)
    }

    /// Adds a group (sector) constraint.
    pub fn with_group(mut self, group: GroupBounds) -> Result<Self> {
        if let Some(&m) = group.members.iter().find(|&&m| m >= self.assets()) {
            return Err(Error::DimensionMismatch {
                what: "group member index",
                expected: self.assets(),
                got: m,
            });
        }
        if let (Some(lo), Some(hi)) = (group.lower, group.upper) {
            if lo > hi {
                return Err(Error::InfeasibleConstraints {
                    constraint: Constraint::SectorBounds,
                    reason: format!(
                        "group {} has lower bound {lo} above upper bound {hi}",
                        group.name
                    ),
                });
            }
        }
        self.groups.push(group);
        Ok(self)
    }

    /// L2 regularisation `γ ‖w‖²` added to every objective (PyPortfolioOpt
    /// `L2_reg`); pushes towards more evenly spread weights.
    pub fn with_l2_gamma(mut self, gamma: f64) -> Result<Self> {
        if !(gamma.is_finite() && gamma >= 0.0) {
            return Err(Error::InvalidParameter {
                name: "L2 gamma",
                value: gamma,
                reason: "must be a non-negative number",
                constraint: None,
            });
        }
        self.gamma = gamma;
        Ok(self)
    }

    /// Annual risk-free rate for max-Sharpe and for every reported Sharpe ratio.
    pub fn with_risk_free_rate(mut self, rate: f64) -> Result<Self> {
        if !rate.is_finite() {
            return Err(Error::InvalidParameter {
                name: "risk-free rate",
                value: rate,
                reason: "must be finite",
                constraint: Some(Constraint::RiskFreeRate),
            });
        }
        self.risk_free_rate = rate;
        Ok(self)
    }

    /// Solver accuracy and limits.
    pub fn with_solver_settings(mut self, settings: SolverSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Solves for `objective`.
    ///
    /// Errors: [`Error::TargetVolatilityTooLow`] / [`Error::TargetReturnTooHigh`]
    /// with the nearest feasible value for an unreachable target,
    /// [`Error::NoAssetAboveRiskFree`] for max-Sharpe when no asset beats the
    /// risk-free rate, [`Error::InfeasibleConstraints`] when the bounds and
    /// groups exclude every portfolio, [`Error::Solver`] otherwise.
    pub fn optimize(&self, objective: Objective) -> Result<OptimizedPortfolio> {
        match objective {
            Objective::MinVolatility => self.min_volatility(),
            Objective::MaxSharpe => self.max_sharpe(),
            Objective::EfficientRisk { target_volatility } => {
                self.efficient_risk(target_volatility)
            }
            Objective::EfficientReturn { target_return } => self.efficient_return(target_return),
            Objective::MaxQuadraticUtility { risk_aversion } => {
                self.max_quadratic_utility(risk_aversion)
            }
        }
    }

    /// The minimum-volatility portfolio.
    pub fn min_volatility(&self) -> Result<OptimizedPortfolio> {
        let (sol, _) = self.quadratic_solution(Objective::MinVolatility, &[])?;
        self.finish(Objective::MinVolatility, sol)
    }

    /// The maximum-return portfolio (a linear program; no penalty), used
    /// for the frontier's end and for efficient-return error messages.
    pub fn max_return(&self) -> Result<OptimizedPortfolio> {
        let mut p = self.program();
        for (j, m) in self.mu.iter().enumerate() {
            p.set_linear(j, -m);
        }
        let sol = p.solve(&self.settings, self.assets())?;
        let target_return = f64::INFINITY;
        self.finish(Objective::EfficientReturn { target_return }, sol)
    }

    fn max_sharpe(&self) -> Result<OptimizedPortfolio> {
        let rf = self.risk_free_rate;
        let max_return = self.mu.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        if max_return <= rf {
            return Err(Error::NoAssetAboveRiskFree {
                risk_free_rate: rf,
                max_return,
            });
        }
        let n = self.assets();
        let sol = match self.screen() {
            true => match working_set::max_sharpe(self)? {
                Some(sol) => sol,
                None => self.max_sharpe_solution()?,
            },
            false => self.max_sharpe_solution()?,
        };
        let k = n;
        if is_infeasible(sol.status) {
            return Err(Error::InfeasibleConstraints {
                constraint: Constraint::RiskFreeRate,
                reason: "no portfolio within the bounds has a positive excess return".into(),
            });
        }
        let kv = sol.x[k];
        let weights = sol.x[..n].iter().map(|y| y / kv).collect();
        self.finish(
            Objective::MaxSharpe,
            Solution {
                x: weights,
                z: sol.z,
                soc_start: None,
                status: sol.status,
                iterations: sol.iterations,
            },
        )
    }

    fn efficient_risk(&self, target: f64) -> Result<OptimizedPortfolio> {
        if !(target.is_finite() && target > 0.0) {
            return Err(Error::InvalidParameter {
                name: "target volatility",
                value: target,
                reason: "must be a positive number",
                constraint: Some(Constraint::TargetVolatility),
            });
        }
        let sol = match self.screen() {
            true => match working_set::efficient_risk(self, target)? {
                Some(sol) => sol,
                None => self.efficient_risk_solution(target)?,
            },
            false => self.efficient_risk_solution(target)?,
        };
        let objective = Objective::EfficientRisk {
            target_volatility: target,
        };
        if !is_solved(sol.status) {
            // Explain the failure with the nearest feasible value when the
            // target is the culprit; only then pay for a second solve.
            let min = self.min_volatility()?;
            if target < min.volatility {
                return Err(Error::TargetVolatilityTooLow {
                    target,
                    min: min.volatility,
                });
            }
        }
        self.finish(objective, sol)
    }

    /// Whether to solve on a working set (see `working_set`): a large
    /// universe, zero lower bounds (excluded assets sit at zero) and no
    /// groups.
    fn screen(&self) -> bool {
        self.assets() >= self.settings.working_set_from_assets
            && self.groups.is_empty()
            && self.bounds.iter().all(|b| b.0 == 0.0)
    }

    /// The transformed max-Sharpe program over all assets: `x = (y, k)`.
    fn max_sharpe_solution(&self) -> Result<Solution> {
        self.quadratic_program(Objective::MaxSharpe)
            .solve(&self.settings, self.assets())
    }

    /// A quadratic objective's solution, on a working set when the
    /// universe is large (seeded with `warm` too), and the assets holding
    /// weight when it was.
    fn quadratic_solution(
        &self,
        objective: Objective,
        warm: &[usize],
    ) -> Result<(Solution, Vec<usize>)> {
        if self.screen() {
            if let Some(out) = working_set::quadratic(self, objective, warm)? {
                return Ok(out);
            }
        }
        let sol = self
            .quadratic_program(objective)
            .solve(&self.settings, self.assets())?;
        Ok((sol, Vec::new()))
    }

    /// The program of an objective without a volatility cone (every one
    /// but efficient risk, which gets the min-volatility program here).
    /// Max Sharpe's variables are `x = (y, k)`.
    fn quadratic_program(&self, objective: Objective) -> Program {
        let n = self.assets();
        let mut p = match objective {
            Objective::MaxSharpe => {
                let rf = self.risk_free_rate;
                let k = n;
                let mut p = Program::new(n + 1);
                let excess: Vec<(usize, f64)> =
                    self.mu.iter().map(|m| m - rf).enumerate().collect();
                p.eq(&excess, 1.0);
                let mut sum: Vec<(usize, f64)> = (0..n).map(|j| (j, 1.0)).collect();
                sum.push((k, -1.0));
                p.eq(&sum, 0.0);
                p.le(&[(k, -1.0)], 0.0);
                self.push_bounds(&mut p, Some(k));
                p
            }
            Objective::EfficientReturn { target_return } => {
                let mut p = self.program();
                let neg_mu: Vec<(usize, f64)> = self.mu.iter().map(|m| -m).enumerate().collect();
                p.le(&neg_mu, -target_return);
                p
            }
            Objective::MaxQuadraticUtility { .. } => {
                let mut p = self.program();
                for (j, m) in self.mu.iter().enumerate() {
                    p.set_linear(j, -m);
                }
                p
            }
            Objective::MinVolatility | Objective::EfficientRisk { .. } => self.program(),
        };
        let scale = match objective {
            Objective::MaxQuadraticUtility { risk_aversion } => risk_aversion,
            _ => 2.0,
        };
        p.add_quadratic(n, self.cov.as_slice(), scale);
        self.add_penalty(&mut p);
        p
    }

    /// Efficient risk over all assets at once.
    fn efficient_risk_solution(&self, target: f64) -> Result<Solution> {
        let n = self.assets();
        if self.gamma == 0.0 && n <= self.settings.dense_up_to_variables {
            if let Some(sol) = self.efficient_risk_dense(target) {
                return Ok(sol);
            }
        }
        let mut p = self.program();
        for (j, m) in self.mu.iter().enumerate() {
            p.set_linear(j, -m);
        }
        self.add_penalty(&mut p);
        let ft = factor::covariance_factor(&self.cov);
        p.norm_le(&ft, n, target);
        p.solve(&self.settings, n)
    }

    /// Efficient risk without the cone, for small problems without an L2
    /// penalty: where the volatility limit binds, the optimum maximises the
    /// utility `μᵀw − δ/2 wᵀΣw` for the `δ` whose solution has volatility
    /// `σ` exactly (the KKT conditions of both problems coincide with
    /// `δ = 2κ`, `κ` the limit's multiplier). On the utility's active set
    /// the weights are affine in `t = 1/δ` (`w = w₀ + t w₁`, from the
    /// equality-constrained KKT system), so the variance is a quadratic in
    /// `t` and `σ²` is hit exactly; the dense solver then solves the
    /// utility at that `δ`, and when its active set changed the step is
    /// taken again from there. `None` (clarabel takes over) when it does
    /// not settle or anything is degenerate, and when the limit does not
    /// bind (the target is above the maximum return's volatility).
    fn efficient_risk_dense(&self, target: f64) -> Option<Solution> {
        const ROUNDS: usize = 30;
        let n = self.assets();
        let mu = &self.mu;
        let spread = mu.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b))
            - mu.iter().fold(f64::INFINITY, |a, &b| a.min(b));
        let asset_vol = (self.cov.diagonal().iter().sum::<f64>() / n as f64).sqrt();
        let mut delta = (spread / asset_vol / target).max(1e-6);
        // The volatility falls as δ grows: δ below `riskier` gives more
        // than σ, above `safer` less. Steps leaving that bracket bisect it.
        let (mut riskier, mut safer) = (0.0f64, f64::INFINITY);
        for _ in 0..ROUNDS {
            if !(delta.is_finite() && delta > 0.0) {
                return None;
            }
            let program = self.quadratic_program(Objective::MaxQuadraticUtility {
                risk_aversion: delta,
            });
            let d = program.dense()?;
            let mut sol = dense::solve(&program)?;
            let w = &sol.x[..n];
            let vol = self.cov.quad_form(w).ok()?.max(0.0).sqrt();
            if (vol - target).abs() <= 1e-11 * target {
                // The cone's multiplier: clarabel's scalar dual z₀ = δσ.
                let rows = sol.z.len();
                sol.z.push(delta * target);
                sol.z.extend(std::iter::repeat_n(0.0, n));
                sol.soc_start = Some(rows);
                return Some(sol);
            }
            if vol > target {
                riskier = riskier.max(delta);
            } else {
                safer = safer.min(delta);
            }
            let bisect = || match safer.is_finite() {
                true if riskier > 0.0 => (riskier * safer).sqrt(),
                true => safer / 4.0,
                false => riskier * 4.0,
            };
            // The affine piece of the active set: rows with a positive
            // multiplier and every equality.
            let active: Vec<usize> = (0..d.b.len())
                .filter(|&r| r < d.eq || sol.z[r] > 0.0)
                .collect();
            let k = active.len();
            let size = n + k;
            let mut kkt = nalgebra::DMatrix::<f64>::zeros(size, size);
            for i in 0..n {
                for j in 0..n {
                    kkt[(i, j)] = self.cov.get(i, j);
                }
            }
            for (a, &r) in active.iter().enumerate() {
                for j in 0..n {
                    kkt[(n + a, j)] = d.a[r * n + j];
                    kkt[(j, n + a)] = d.a[r * n + j];
                }
            }
            let mut rhs = nalgebra::DMatrix::<f64>::zeros(size, 2);
            for (a, &r) in active.iter().enumerate() {
                rhs[(n + a, 0)] = d.b[r];
            }
            for (j, m) in mu.iter().enumerate() {
                rhs[(j, 1)] = *m;
            }
            let sol2 = kkt.lu().solve(&rhs)?;
            let w0: Vec<f64> = (0..n).map(|j| sol2[(j, 0)]).collect();
            let w1: Vec<f64> = (0..n).map(|j| sol2[(j, 1)]).collect();
            let s1 = self.cov.mul_vec(&w1).ok()?;
            let a = self.cov.quad_form(&w0).ok()?;
            let b: f64 = w0.iter().zip(&s1).map(|(x, y)| x * y).sum();
            let c: f64 = w1.iter().zip(&s1).map(|(x, y)| x * y).sum();
            let disc = b * b - c * (a - target * target);
            let t = (-b + disc.max(0.0).sqrt()) / c;
            let next = 1.0 / t;
            if c > 0.0 && disc >= 0.0 && t > 0.0 {
                // Where the piece still holds at t (the other rows satisfied,
                // the active inequalities' multipliers z = y/t non-negative)
                // its point is the optimum: no second solve.
                let x: Vec<f64> = w0.iter().zip(&w1).map(|(p, q)| p + t * q).collect();
                let mut z = vec![0.0; d.b.len()];
                for (a, &r) in active.iter().enumerate() {
                    z[r] = (sol2[(n + a, 0)] + t * sol2[(n + a, 1)]) / t;
                }
                let holds = (0..d.b.len()).all(|r| {
                    let ax: f64 = (0..n).map(|j| d.a[r * n + j] * x[j]).sum();
                    let scale = 1.0 + d.b[r].abs();
                    match (r < d.eq, active.contains(&r)) {
                        (true, _) => true,
                        (false, true) => z[r] >= -1e-12 * scale,
                        (false, false) => ax <= d.b[r] + 1e-12 * scale,
                    }
                });
                if holds {
                    // Inequality multipliers within rounding of zero, at zero.
                    for v in z.iter_mut().skip(d.eq) {
                        *v = v.max(0.0);
                    }
                    let rows = z.len();
                    z.push(next * target);
                    z.extend(std::iter::repeat_n(0.0, n));
                    return Some(Solution {
                        x,
                        z,
                        soc_start: Some(rows),
                        status: sol.status,
                        iterations: sol.iterations,
                    });
                }
            }
            // No root on this piece (it pins the weights, or its variance
            // never reaches σ²): move towards σ within the bracket.
            delta = if c > 0.0 && disc >= 0.0 && next > riskier && next < safer {
                next
            } else {
                bisect()
            };
        }
        None
    }

    pub(crate) fn efficient_return(&self, target: f64) -> Result<OptimizedPortfolio> {
        self.efficient_return_from(target, &[]).map(|(p, _)| p)
    }

    /// Efficient return, seeding a working set (large universes) with the
    /// assets `warm`; returns the assets holding weight too, for the next
    /// point of a frontier.
    pub(crate) fn efficient_return_from(
        &self,
        target: f64,
        warm: &[usize],
    ) -> Result<(OptimizedPortfolio, Vec<usize>)> {
        if !target.is_finite() {
            return Err(Error::InvalidParameter {
                name: "target return",
                value: target,
                reason: "must be finite",
                constraint: Some(Constraint::TargetReturn),
            });
        }
        let objective = Objective::EfficientReturn {
            target_return: target,
        };
        let (sol, support) = self.quadratic_solution(objective, warm)?;
        if !is_solved(sol.status) {
            let max = self.max_return()?;
            if target > max.expected_return {
                return Err(Error::TargetReturnTooHigh {
                    target,
                    max: max.expected_return,
                });
            }
        }
        Ok((self.finish(objective, sol)?, support))
    }

    fn max_quadratic_utility(&self, delta: f64) -> Result<OptimizedPortfolio> {
        if !(delta.is_finite() && delta > 0.0) {
            return Err(Error::InvalidParameter {
                name: "risk aversion",
                value: delta,
                reason: "must be greater than zero",
                constraint: Some(Constraint::RiskAversion),
            });
        }
        let objective = Objective::MaxQuadraticUtility {
            risk_aversion: delta,
        };
        let (sol, _) = self.quadratic_solution(objective, &[])?;
        self.finish(objective, sol)
    }

    /// A program over the weights with `Σ w = 1`, bounds and groups.
    fn program(&self) -> Program {
        let n = self.assets();
        let mut p = Program::new(n);
        let sum: Vec<(usize, f64)> = (0..n).map(|j| (j, 1.0)).collect();
        p.eq(&sum, 1.0);
        self.push_bounds(&mut p, None);
        p
    }

    /// Bounds and group rows; with `k = Some(idx)` every constant is
    /// multiplied by variable `idx` (the max-Sharpe homogenisation).
    fn push_bounds(&self, p: &mut Program, k: Option<usize>) {
        let row = |p: &mut Program, mut entries: Vec<(usize, f64)>, rhs: f64| match k {
            Some(k) => {
                entries.push((k, -rhs));
                p.le(&entries, 0.0);
            }
            None => p.le(&entries, rhs),
        };
        for (i, &(lo, hi)) in self.bounds.iter().enumerate() {
            if hi.is_finite() {
                row(p, vec![(i, 1.0)], hi);
            }
            if lo.is_finite() {
                row(p, vec![(i, -1.0)], -lo);
            }
        }
        for g in &self.groups {
            let mut members = g.members.clone();
            members.sort_unstable();
            members.dedup();
            if let Some(hi) = g.upper {
                row(p, members.iter().map(|&m| (m, 1.0)).collect(), hi);
            }
            if let Some(lo) = g.lower {
                row(p, members.iter().map(|&m| (m, -1.0)).collect(), -lo);
            }
        }
    }

    fn add_penalty(&self, p: &mut Program) {
        if self.gamma > 0.0 {
            p.add_diagonal(self.assets(), 2.0 * self.gamma);
        }
    }

    fn finish(&self, objective: Objective, sol: Solution) -> Result<OptimizedPortfolio> {
        if !is_solved(sol.status) {
            if is_infeasible(sol.status) {
                return Err(Error::InfeasibleConstraints {
                    constraint: Constraint::Bounds,
                    reason: "the weight bounds and group bounds contradict each other".into(),
                });
            }
            return Err(Error::Solver {
                status: format!("{:?}", sol.status),
                iterations: sol.iterations,
            });
        }
        let w = sol.x[..self.assets()].to_vec();
        let ret: f64 = w.iter().zip(&self.mu).map(|(a, b)| a * b).sum();
        let var = self.cov.quad_form(&w)?.max(0.0);
        let vol = var.sqrt();
        let penalty = self.gamma * w.iter().map(|x| x * x).sum::<f64>();
        let sharpe = (ret - self.risk_free_rate) / vol;
        let objective_value = match objective {
            Objective::MinVolatility | Objective::EfficientReturn { .. } => var + penalty,
            Objective::MaxSharpe => sharpe,
            Objective::EfficientRisk { .. } => ret - penalty,
            Objective::MaxQuadraticUtility { risk_aversion } => {
                ret - 0.5 * risk_aversion * var - penalty
            }
        };
        Ok(OptimizedPortfolio {
            weights: w,
            expected_return: ret,
            volatility: vol,
            sharpe,
            risk_free_rate: self.risk_free_rate,
            objective,
            objective_value,
            status: format!("{:?}", sol.status),
            iterations: sol.iterations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::synthetic_returns;
    use crate::{mean_historical_return, sample_cov};

    fn universe(n: usize, seed: u64) -> EfficientFrontier {
        let returns = synthetic_returns(n, 1260, seed);
        let mu = mean_historical_return(&returns, true).unwrap();
        EfficientFrontier::new(mu, sample_cov(&returns).unwrap()).unwrap()
    }

    fn variants(n: usize, seed: u64) -> Vec<(String, EfficientFrontier)> {
        let base = universe(n, seed);
        let mut out = vec![("plain".to_string(), base.clone())];
        out.push((
            "bounded".into(),
            base.clone().with_weight_bounds(0.01, 0.5).unwrap(),
        ));
        out.push((
            "l2 and risk-free rate".into(),
            base.clone()
                .with_l2_gamma(0.5)
                .unwrap()
                .with_risk_free_rate(0.02)
                .unwrap(),
        ));
        let half: Vec<usize> = (0..n / 2).collect();
        let group = GroupBounds {
            name: "first half".into(),
            members: half,
            lower: Some(0.3),
            upper: Some(0.6),
        };
        out.push(("grouped".into(), base.with_group(group).unwrap()));
        out
    }

    /// Every objective the dense solver takes, on problems of a wealth
    /// portfolio's size: the dense solver answers (it does not decline),
    /// its KKT conditions hold, and clarabel finds the same optimum.
    #[test]
    fn the_dense_solver_agrees_with_clarabel() {
        let mut checked = 0;
        for (n, seed) in [(3, 7), (20, 11), (60, 13)] {
            for (label, ef) in variants(n, seed) {
                let clarabel = ef.clone().with_solver_settings(SolverSettings {
                    dense_up_to_variables: 0,
                    ..SolverSettings::default()
                });
                let lo = ef.min_volatility().unwrap().expected_return;
                let hi = ef.max_return().unwrap().expected_return;
                for objective in [
                    Objective::MinVolatility,
                    Objective::MaxSharpe,
                    Objective::EfficientReturn {
                        target_return: lo + 0.4 * (hi - lo),
                    },
                    Objective::MaxQuadraticUtility { risk_aversion: 2.0 },
                ] {
                    let what = format!("{n} assets, {label}, {objective:?}");
                    let program = ef.quadratic_program(objective);
                    let dense_data = program.dense().unwrap();
                    let sol = dense::solve(&program).unwrap_or_else(|| panic!("{what}: declined"));
                    assert_kkt(&what, &dense_data, &sol);
                    let a = ef.optimize(objective).unwrap();
                    assert_same_optimum(&what, &a, &clarabel.optimize(objective).unwrap());
                    checked += 1;
                }
                // Efficient risk through the utility (no L2 penalty): the
                // same optimum as clarabel's cone, the limit hit exactly.
                let lo_vol = ef.min_volatility().unwrap().volatility;
                let hi_vol = ef.max_return().unwrap().volatility;
                for frac in [0.05, 0.4, 0.9] {
                    let target = lo_vol + frac * (hi_vol - lo_vol);
                    let what = format!("{n} assets, {label}, efficient risk {target}");
                    let objective = Objective::EfficientRisk {
                        target_volatility: target,
                    };
                    let a = ef.optimize(objective).unwrap();
                    let b = clarabel.optimize(objective).unwrap();
                    if ef.gamma == 0.0 {
                        assert!(
                            ef.efficient_risk_dense(target).is_some(),
                            "{what}: declined"
                        );
                        assert!(
                            (a.volatility - target).abs() < 1e-10 * target,
                            "{what}: {}",
                            a.volatility
                        );
                    }
                    assert_same_optimum(&what, &a, &b);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 48 + 36);
    }

    /// The same weights (1e-5) and objective (1e-7 relative).
    fn assert_same_optimum(what: &str, a: &OptimizedPortfolio, b: &OptimizedPortfolio) {
        for (i, (x, y)) in a.weights.iter().zip(&b.weights).enumerate() {
            assert!((x - y).abs() < 1e-5, "{what}: weight {i}: {x} vs {y}");
        }
        let rel =
            (a.objective_value - b.objective_value).abs() / b.objective_value.abs().max(1e-12);
        assert!(
            rel < 1e-7,
            "{what}: objective {} vs {}",
            a.objective_value,
            b.objective_value
        );
    }

    /// Stationarity `Gx + c + Aᵀz = 0`, primal feasibility, dual
    /// feasibility `z ≥ 0` on inequalities and complementary slackness.
    fn assert_kkt(what: &str, d: &dense::Dense, sol: &Solution) {
        let (n, m) = (d.n, d.b.len());
        let scale = 1.0 + d.g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for j in 0..n {
            let mut r = d.c[j];
            for i in 0..n {
                r += d.g[j * n + i] * sol.x[i];
            }
            for row in 0..m {
                r += d.a[row * n + j] * sol.z[row];
            }
            assert!(
                r.abs() < 1e-9 * scale,
                "{what}: stationarity of x{j}: {r:e}"
            );
        }
        for row in 0..m {
            let ax: f64 = (0..n).map(|j| d.a[row * n + j] * sol.x[j]).sum();
            let slack = d.b[row] - ax;
            if row < d.eq {
                assert!(slack.abs() < 1e-10, "{what}: equality {row}: {slack:e}");
            } else {
                assert!(slack > -1e-10, "{what}: inequality {row}: {slack:e}");
                assert!(sol.z[row] >= 0.0, "{what}: dual {row}: {}", sol.z[row]);
                assert!(
                    (slack * sol.z[row]).abs() < 1e-10,
                    "{what}: complementarity {row}"
                );
            }
        }
    }
}
