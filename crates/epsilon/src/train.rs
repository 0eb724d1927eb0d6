//! Decisions, rollouts and training.
//!
//! A *step* is one weekly decision: its base portfolios, their features,
//! the market's, and the assets' returns until the next decision. Steps do
//! not depend on the policy, so they are computed once. What does depend
//! on it — the drifted weights, each base's distance from them, the
//! previous mix — is computed in the rollout.
//!
//! # Objective
//!
//! The policy maximises the sum of Moody and Saffell's (1998) differential
//! Sharpe ratio of the weekly net return `R_t = w_t·r_{t+1} − c·‖w_t − w̃_t‖₁`
//! (`w̃_t` the drifted weights, `c` the cost rate):
//! `D_t = (B_{t−1}ΔA_t − ½A_{t−1}ΔB_t) / (B_{t−1} − A²_{t−1})^{3/2}` with
//! `A_t`, `B_t` exponential moving averages of `R` and `R²` (rate `η`).
//! The gradient runs back through the `A`, `B` recursion exactly; the
//! drifted weights and the previous mix are treated as given (the usual
//! truncation of recurrent reinforcement learning), so a step's gradient
//! reaches its own mix only.

use serde::{Deserialize, Serialize};
use ultracore_portfolio::Matrix;

use crate::base::{Bases, Universe, BASES, LOOKBACK};
use crate::data::Panel;
use crate::features::{dot, EsgInputs, History, STATIC_BASE_FEATURES};
use crate::policy::{Adam, Mlp};
use crate::{Result, SplitMix64};

pub const K: usize = BASES.len();
/// Inputs normalised with training-window statistics: each base's static
/// features, then the market's.
pub const STATIC_INPUTS: usize = K * STATIC_BASE_FEATURES + crate::features::MARKET_FEATURES.len();
/// Every input: the static ones, each base's turnover, the previous mix.
pub const INPUTS: usize = STATIC_INPUTS + 2 * K;

/// One weekly decision, independent of the policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Index of the decision day in the panel.
    pub day: usize,
    pub date: chrono::NaiveDate,
    pub bases: Bases,
    /// The inputs normalised with training statistics (raw here).
    pub static_inputs: Vec<f64>,
    /// Asset returns from this decision's close to the next one's.
    pub next: Vec<f64>,
}

/// Names of the network's inputs, in order.
pub fn input_names() -> Vec<String> {
    let mut out = Vec::new();
    for b in BASES {
        for f in &crate::features::BASE_FEATURES[..STATIC_BASE_FEATURES] {
            out.push(format!("{b}.{f}"));
        }
    }
    for f in crate::features::MARKET_FEATURES {
        out.push(format!("market.{f}"));
    }
    for b in BASES {
        out.push(format!("{b}.turnover"));
    }
    for b in BASES {
        out.push(format!("previous_mix.{b}"));
    }
    out
}

/// The policy-independent part of one decision at the close of `day`.
pub fn state_at(
    prices: &[Vec<f64>],
    returns: &[Vec<f64>],
    universe: &Universe,
    esg: &EsgInputs,
    day: usize,
    current: &[f64],
) -> Result<(Bases, Vec<f64>)> {
    let history = History { prices, returns };
    let from = day.saturating_sub(LOOKBACK - 1).max(1);
    let rows: Vec<Vec<f64>> = returns[from..=day].to_vec();
    let window = Matrix::from_rows(&rows)?;
    let bases = universe.bases(&window, current)?;
    let assets = history.asset_features(day)?;
    let mut inputs = Vec::with_capacity(STATIC_INPUTS);
    for b in &bases {
        inputs.extend(history.base_features(b, &assets, day, esg));
    }
    inputs.extend(history.market_features(day)?);
    Ok((bases, inputs))
}

/// Every weekly step from the first with enough history to the last with
/// a next decision, with a progress callback `(done, total)`.
pub fn build_steps(
    panel: &Panel,
    universe: &Universe,
    esg: &EsgInputs,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Step>> {
    let returns = panel.daily_returns();
    let ends: Vec<usize> = panel
        .week_ends()
        .into_iter()
        .filter(|d| *d + 1 >= crate::features::WARMUP)
        .collect();
    let n = panel.assets();
    let none = vec![0.0; n];
    let mut steps = Vec::with_capacity(ends.len());
    let total = ends.len().saturating_sub(1);
    for (i, pair) in ends.windows(2).enumerate() {
        let (day, next_day) = (pair[0], pair[1]);
        let (bases, static_inputs) = state_at(&panel.prices, &returns, universe, esg, day, &none)?;
        steps.push(Step {
            day,
            date: panel.dates[day],
            bases,
            static_inputs,
            next: panel.period_returns(day, next_day),
        });
        progress(i + 1, total);
    }
    Ok(steps)
}

/// Mean and standard deviation of the static inputs over training steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normaliser {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normaliser {
    pub fn fit(steps: &[Step]) -> Normaliser {
        let m = STATIC_INPUTS;
        let n = steps.len().max(1) as f64;
        let mean: Vec<f64> = (0..m)
            .map(|j| steps.iter().map(|s| s.static_inputs[j]).sum::<f64>() / n)
            .collect();
        let std = (0..m)
            .map(|j| {
                let v = steps
                    .iter()
                    .map(|s| (s.static_inputs[j] - mean[j]).powi(2))
                    .sum::<f64>()
                    / n;
                v.sqrt().max(1e-8)
            })
            .collect();
        Normaliser { mean, std }
    }

    /// The network's input: normalised static inputs (clipped at ±5), each
    /// base's turnover from the current weights, the previous mix.
    pub fn input(&self, static_inputs: &[f64], turnover: &[f64], previous: &[f64]) -> Vec<f64> {
        let mut x: Vec<f64> = static_inputs
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(v, (m, s))| ((v - m) / s).clamp(-5.0, 5.0))
            .collect();
        x.extend_from_slice(turnover);
        x.extend_from_slice(previous);
        x
    }
}

/// The weights a mix of bases gives: `Σ_k mix_k · base_k`.
pub fn mix_weights(bases: &Bases, mix: &[f64]) -> Vec<f64> {
    let n = bases[0].len();
    (0..n)
        .map(|i| (0..K).map(|k| mix[k] * bases[k][i]).sum())
        .collect()
}

pub fn l1(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// Weights after a period's returns `r`: `w ∘ (1 + r) / (1 + w·r)`.
pub fn drift(w: &[f64], r: &[f64]) -> Vec<f64> {
    let growth = 1.0 + dot(w, r);
    w.iter()
        .zip(r)
        .map(|(a, b)| a * (1.0 + b) / growth)
        .collect()
}

/// A policy: the mix for a network input.
pub trait Policy {
    fn mix(&self, x: &[f64]) -> Vec<f64>;
}

impl Policy for Mlp {
    fn mix(&self, x: &[f64]) -> Vec<f64> {
        self.forward(x).mix
    }
}

/// Several networks' mixes averaged (the seeds of one setting).
impl Policy for Vec<Mlp> {
    fn mix(&self, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; K];
        for net in self {
            for (o, m) in out.iter_mut().zip(net.forward(x).mix) {
                *o += m / self.len() as f64;
            }
        }
        out
    }
}

/// A path through steps: what was held and earned at each.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Path {
    pub mixes: Vec<Vec<f64>>,
    pub weights: Vec<Vec<f64>>,
    /// `w_t · r_{t+1}` before costs.
    pub gross: Vec<f64>,
    /// `‖w_t − w̃_t‖₁` traded at the decision.
    pub turnover: Vec<f64>,
}

impl Path {
    /// Net returns at a cost rate (a fraction: 10 bp = 0.001).
    pub fn net(&self, cost: f64) -> Vec<f64> {
        self.gross
            .iter()
            .zip(&self.turnover)
            .map(|(g, t)| g - cost * t)
            .collect()
    }
}

/// Where a rollout starts: the drifted weights and previous mix before its
/// first step (fresh: invested in the first step's ESG-projected 1/N,
/// previous mix uniform).
#[derive(Debug, Clone)]
pub struct Start {
    pub weights: Vec<f64>,
    pub mix: Vec<f64>,
}

impl Start {
    pub fn fresh(first: &Step) -> Start {
        Start {
            weights: first.bases[0].clone(),
            mix: vec![1.0 / K as f64; K],
        }
    }
}

/// Runs `policy` through `steps` (with `normaliser` for step `t` chosen
/// by `norm_of(t)`), from `start`.
pub fn rollout<'a>(
    steps: &[&Step],
    start: Start,
    mut policy_of: impl FnMut(usize) -> (&'a dyn Policy, &'a Normaliser),
) -> Path {
    let mut path = Path::default();
    let (mut held, mut previous) = (start.weights, start.mix);
    for (t, s) in steps.iter().enumerate() {
        let (policy, norm) = policy_of(t);
        let turnover: Vec<f64> = s.bases.iter().map(|b| l1(b, &held)).collect();
        let x = norm.input(&s.static_inputs, &turnover, &previous);
        let mix = policy.mix(&x);
        let w = mix_weights(&s.bases, &mix);
        path.turnover.push(l1(&w, &held));
        path.gross.push(dot(&w, &s.next));
        held = drift(&w, &s.next);
        previous = mix.clone();
        path.mixes.push(mix);
        path.weights.push(w);
    }
    path
}

/// A fixed-weight strategy's path (weights chosen per step).
pub fn fixed_path(steps: &[&Step], mut weights_of: impl FnMut(&Step) -> Vec<f64>) -> Path {
    let mut path = Path::default();
    let mut held: Option<Vec<f64>> = None;
    for s in steps {
        let w = weights_of(s);
        let from = held.clone().unwrap_or_else(|| w.clone());
        path.turnover.push(l1(&w, &from));
        path.gross.push(dot(&w, &s.next));
        held = Some(drift(&w, &s.next));
        path.mixes.push(Vec::new());
        path.weights.push(w);
    }
    path
}

/// Training settings: one point of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub hidden: usize,
    pub l2: f64,
    pub epochs: usize,
    pub learning_rate: f64,
    /// Rate of the differential Sharpe ratio's moving averages.
    pub eta: f64,
    /// Transaction cost in basis points of the traded weight.
    pub cost_bps: f64,
}

/// The differential Sharpe ratio's sum over `r` and its gradient in each
/// `r_t` (exact through the moving averages), from `A₀ = a0`, `B₀ = b0`.
pub fn dsr(r: &[f64], eta: f64, a0: f64, b0: f64) -> (f64, Vec<f64>) {
    let n = r.len();
    let (mut a, mut b) = (vec![a0; n + 1], vec![b0; n + 1]);
    let mut total = 0.0;
    // Partials of D_t in (R_t, A_{t−1}, B_{t−1}).
    let mut parts = Vec::with_capacity(n);
    for t in 0..n {
        let (at, bt, rt) = (a[t], b[t], r[t]);
        let v = (bt - at * at).max(1e-12);
        let num = bt * rt - 0.5 * at * bt - 0.5 * at * rt * rt;
        let v32 = v.powf(1.5);
        total += num / v32;
        let dn_dr = bt - at * rt;
        let dn_da = -0.5 * bt - 0.5 * rt * rt;
        let dn_db = rt - 0.5 * at;
        let k = 1.5 * num / (v32 * v);
        parts.push((dn_dr / v32, dn_da / v32 + k * 2.0 * at, dn_db / v32 - k));
        a[t + 1] = at + eta * (rt - at);
        b[t + 1] = bt + eta * (rt * rt - bt);
    }
    let mut grad = vec![0.0; n];
    let (mut ga, mut gb) = (0.0, 0.0); // adjoints of A_t, B_t
    for t in (0..n).rev() {
        let (d_r, d_a, d_b) = parts[t];
        grad[t] = d_r + ga * eta + gb * 2.0 * eta * r[t];
        ga = d_a + ga * (1.0 - eta);
        gb = d_b + gb * (1.0 - eta);
    }
    (total, grad)
}

/// Trains a network on `steps` from `seed`: full-batch Adam ascent on the
/// differential Sharpe ratio, L2 on the weights. Single-threaded and
/// deterministic: the same inputs and seed give the same bits.
pub fn train(steps: &[&Step], norm: &Normaliser, settings: &Settings, seed: u64) -> Mlp {
    let mut rng = SplitMix64::new(seed);
    let mut net = Mlp::new(INPUTS, settings.hidden, K, &mut rng);
    let mut adam = Adam::new(net.params.len(), settings.learning_rate);
    let cost = settings.cost_bps / 10_000.0;
    // A₀ = 0 and B₀ = the mean square of 1/N's weekly returns: a scale for
    // the first ratios that does not depend on the policy.
    let b0 = steps
        .iter()
        .map(|s| dot(&s.bases[0], &s.next).powi(2))
        .sum::<f64>()
        / steps.len().max(1) as f64;
    let b0 = b0.max(1e-8);
    let mut grad = vec![0.0; net.params.len()];
    for _ in 0..settings.epochs {
        // Forward, keeping what the backward pass needs.
        let mut held = steps[0].bases[0].clone();
        let mut previous = vec![1.0 / K as f64; K];
        let mut r = Vec::with_capacity(steps.len());
        let mut kept = Vec::with_capacity(steps.len());
        for s in steps {
            let turnover: Vec<f64> = s.bases.iter().map(|b| l1(b, &held)).collect();
            let x = norm.input(&s.static_inputs, &turnover, &previous);
            let pass = net.forward(&x);
            let w = mix_weights(&s.bases, &pass.mix);
            let sign: Vec<f64> = w
                .iter()
                .zip(&held)
                .map(|(a, b)| {
                    if a > b {
                        1.0
                    } else if a < b {
                        -1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            r.push(dot(&w, &s.next) - cost * l1(&w, &held));
            held = drift(&w, &s.next);
            previous = pass.mix.clone();
            kept.push((x, pass, sign));
        }
        let (_, d_r) = dsr(&r, settings.eta, 0.0, b0);
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (t, (x, pass, sign)) in kept.iter().enumerate() {
            let s = steps[t];
            // ∂R_t/∂mix_k = base_k·r − c·Σ_i sign_i·base_k,i
            let d_mix: Vec<f64> = s
                .bases
                .iter()
                .map(|b| d_r[t] * (dot(b, &s.next) - cost * dot(b, sign)))
                .collect();
            net.backward(x, pass, &d_mix, &mut grad);
        }
        for (j, g) in grad.iter_mut().enumerate() {
            if net.is_weight(j) {
                *g -= 2.0 * settings.l2 * net.params[j];
            }
        }
        adam.ascend(&mut net.params, &grad);
    }
    net
}

/// Annualised Sharpe ratio of weekly returns (risk-free `rf` a year).
pub fn weekly_sharpe(r: &[f64], rf: f64) -> f64 {
    let n = r.len();
    if n < 2 {
        return 0.0;
    }
    let ex: Vec<f64> = r.iter().map(|v| v - rf / 52.0).collect();
    let m = ex.iter().sum::<f64>() / n as f64;
    let sd = (ex.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    if sd > 0.0 {
        m / sd * 52f64.sqrt()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dsr_gradient_matches_finite_differences() {
        let mut rng = SplitMix64::new(9);
        let r: Vec<f64> = (0..40).map(|_| 0.03 * (rng.next_f64() - 0.45)).collect();
        let (_, g) = dsr(&r, 0.04, 0.001, 0.0004);
        for t in [0usize, 7, 20, 39] {
            let h = 1e-7;
            let mut up = r.clone();
            up[t] += h;
            let mut down = r.clone();
            down[t] -= h;
            let fd =
                (dsr(&up, 0.04, 0.001, 0.0004).0 - dsr(&down, 0.04, 0.001, 0.0004).0) / (2.0 * h);
            assert!(
                (fd - g[t]).abs() <= 1e-6 * fd.abs().max(1.0),
                "t {t}: analytic {} vs finite difference {fd}",
                g[t]
            );
        }
    }

    #[test]
    fn drift_keeps_a_budget() {
        let w = drift(&[0.5, 0.3, 0.2], &[0.1, -0.05, 0.0]);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(w[0] > 0.5 && w[1] < 0.3);
    }
}
