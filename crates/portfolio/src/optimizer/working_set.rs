//! Efficient risk and max Sharpe on a working set of assets, for large
//! universes.
//!
//! With long-only weights most assets end at zero, yet the interior-point
//! method factorises a dense system over all of them every iteration. Here
//! the problem is solved over a small set `S`, and every asset `i ∉ S` is
//! checked against the optimality (KKT) conditions of the full problem at
//! `w_i = 0`. For efficient risk, with clarabel's duals `ν` (budget row)
//! and `z₀` (the cone's scalar part; complementarity puts the rest of the
//! cone's dual along `−Fᵀw`, which turns `F z` into `z₀ Σw / σ`), the
//! reduced cost
//!
//! `g_i = −μ_i + ν + z₀ (Σ w)_i / σ`
//!
//! must be non-negative (the lower-bound multiplier absorbs it). Violators
//! join `S` and the problem is solved again; when none remain the
//! restricted solution is optimal for the full problem, because the KKT
//! conditions of a convex problem are sufficient. Any trouble (a restricted
//! problem that is infeasible or unsolved, too many rounds) returns `None`
//! and the caller solves the full problem.

use super::problem::{is_solved, Solution};
use super::{EfficientFrontier, Objective};
use crate::{Matrix, Result};

/// Assets picked by each seeding rule.
const SEED: usize = 25;
/// Most violators added per round.
const ADD: usize = 25;
/// Rounds before giving up on the working set.
const MAX_ROUNDS: usize = 12;
/// Reduced costs above `−TOL` count as optimal; the solver's own duals are
/// accurate to about this level at the default tolerances.
const TOL: f64 = 1e-8;

pub(super) fn efficient_risk(ef: &EfficientFrontier, target: f64) -> Result<Option<Solution>> {
    let out = grow(
        ef,
        0,
        &[],
        &|sub| sub.efficient_risk_solution(target),
        &|sol, sw, i| {
            let soc = sol.soc_start?;
            Some(-ef.mu[i] + sol.z[0] + sol.z[soc] * sw / target)
        },
    )?;
    Ok(out.map(|(sol, _)| sol))
}

/// Min volatility, efficient return and max quadratic utility (the
/// programs of `EfficientFrontier::quadratic_program`): for `i ∉ S`,
/// `g_i = s (Σ w)_i + q_i + z_sum − z_ret μ_i`, with `s` the quadratic's
/// scale (2, or the risk aversion), `q_i = −μ_i` for utility (else 0),
/// `z_sum` the dual of `Σ w = 1` (the first row) and `z_ret` that of
/// `−μᵀw ≤ −r` (the last row, efficient return only). `warm` adds the
/// assets of an earlier solution (the frontier's previous point) to the
/// seeds; the final working set comes back with the solution.
pub(super) fn quadratic(
    ef: &EfficientFrontier,
    objective: Objective,
    warm: &[usize],
) -> Result<Option<(Solution, Vec<usize>)>> {
    let (scale, linear, ret) = match objective {
        Objective::MinVolatility => (2.0, 0.0, false),
        Objective::EfficientReturn { .. } => (2.0, 0.0, true),
        Objective::MaxQuadraticUtility { risk_aversion } => (risk_aversion, -1.0, false),
        Objective::MaxSharpe | Objective::EfficientRisk { .. } => return Ok(None),
    };
    grow(
        ef,
        0,
        warm,
        &|sub| {
            sub.quadratic_program(objective)
                .solve(&sub.settings, sub.assets())
        },
        &|sol, sw, i| {
            let z_ret = if ret { *sol.z.last()? } else { 0.0 };
            Some(scale * sw + linear * ef.mu[i] + sol.z.first()? - z_ret * ef.mu[i])
        },
    )
}

/// Max Sharpe in PyPortfolioOpt's transformed variables `(y, k)`: for
/// `i ∉ S`, `g_i = 2 (Σ y)_i + z_ret (μ_i − R_f) + z_sum`, with `z_ret`
/// and `z_sum` the duals of `(μ − R_f)ᵀy = 1` and `Σ y − k = 0`.
pub(super) fn max_sharpe(ef: &EfficientFrontier) -> Result<Option<Solution>> {
    let rf = ef.risk_free_rate;
    let out = grow(
        ef,
        1,
        &[],
        &|sub| sub.max_sharpe_solution(),
        &|sol, sy, i| Some(2.0 * sy + sol.z[0] * (ef.mu[i] - rf) + sol.z[1]),
    )?;
    Ok(out.map(|(sol, _)| sol))
}

/// The reduced cost of an excluded asset, from the restricted solution and
/// `(Σ x_S)_i` (its covariance with the restricted portfolio); `None` when
/// the solution lacks what is needed.
type ReducedCost<'a> = dyn Fn(&Solution, f64, usize) -> Option<f64> + 'a;

/// Solves on a growing working set. `extra` variables (after the asset
/// weights) are carried over as they are.
fn grow(
    ef: &EfficientFrontier,
    extra: usize,
    warm: &[usize],
    solve: &dyn Fn(&EfficientFrontier) -> Result<Solution>,
    reduced_cost: &ReducedCost<'_>,
) -> Result<Option<(Solution, Vec<usize>)>> {
    let n = ef.assets();
    let mu = &ef.mu;
    let sd: Vec<f64> = ef
        .cov
        .diagonal()
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .collect();
    let mut in_set = vec![false; n];
    // Seed with the assets likely to matter: the highest returns, the best
    // return per unit of risk and the least volatile.
    let mut order: Vec<usize> = (0..n).collect();
    let mut seed = |key: &dyn Fn(usize) -> f64| {
        order.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
        for &i in order.iter().take(SEED) {
            in_set[i] = true;
        }
    };
    seed(&|i| mu[i]);
    seed(&|i| mu[i] / sd[i].max(1e-300));
    seed(&|i| -sd[i]);
    for &i in warm.iter().filter(|&&i| i < n) {
        in_set[i] = true;
    }
    let mut iterations = 0;
    for _ in 0..MAX_ROUNDS {
        let idx: Vec<usize> = (0..n).filter(|&i| in_set[i]).collect();
        let m = idx.len();
        let sub = subset(ef, &idx);
        let sol = solve(&sub)?;
        iterations += sol.iterations;
        if !is_solved(sol.status) {
            return Ok(None);
        }
        let w = &sol.x[..m];
        let mut violators = Vec::new();
        for i in (0..n).filter(|&i| !in_set[i]) {
            let sw: f64 = idx
                .iter()
                .zip(w)
                .map(|(&j, wj)| ef.cov.get(i, j) * wj)
                .sum();
            match reduced_cost(&sol, sw, i) {
                Some(g) if g < -TOL => violators.push((g, i)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        if violators.is_empty() {
            let mut x = vec![0.0; n + extra];
            for (&i, wi) in idx.iter().zip(w) {
                x[i] = *wi;
            }
            x[n..].copy_from_slice(&sol.x[m..m + extra]);
            let support = idx
                .iter()
                .zip(w)
                .filter(|(_, wi)| **wi > TOL)
                .map(|(&i, _)| i)
                .collect();
            return Ok(Some((
                Solution {
                    x,
                    z: Vec::new(),
                    soc_start: None,
                    status: sol.status,
                    iterations,
                },
                support,
            )));
        }
        violators.sort_by(|a, b| a.0.total_cmp(&b.0));
        for &(_, i) in violators.iter().take(ADD) {
            in_set[i] = true;
        }
    }
    Ok(None)
}

/// The same problem restricted to the assets `idx`, solved directly.
fn subset(ef: &EfficientFrontier, idx: &[usize]) -> EfficientFrontier {
    let m = idx.len();
    let mut cov = Matrix::zeros(m, m);
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx.iter().enumerate() {
            cov.set(a, b, ef.cov.get(i, j));
        }
    }
    let mut settings = ef.settings.clone();
    settings.working_set_from_assets = usize::MAX;
    EfficientFrontier {
        mu: idx.iter().map(|&i| ef.mu[i]).collect(),
        cov,
        bounds: idx.iter().map(|&i| ef.bounds[i]).collect(),
        groups: Vec::new(),
        gamma: ef.gamma,
        risk_free_rate: ef.risk_free_rate,
        settings,
    }
}
