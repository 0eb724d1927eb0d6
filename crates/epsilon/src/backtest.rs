//! Every strategy on the same weekly dates, costs and constraints.
//!
//! One continuous out-of-sample path per strategy from the first test
//! year to the end of the data; in each year the agent and the static mix
//! use that year's fold (trained only on what came before it). Costs are
//! charged on the weight traded at each decision, against the weights the
//! market drifted to. Figures are computed per test year and pooled.

use std::collections::BTreeMap;

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::base::Universe;
use crate::features::dot;
use crate::model::Model;
use crate::sharpe_test::{sharpe_difference_test, SharpeTest, SharpeTestOptions};
use crate::train::{fixed_path, mix_weights, rollout, weekly_sharpe, Path, Start, Step, K};
use crate::Result;

pub const WEEKS: f64 = 52.0;
/// The costs the sensitivity table charges, in basis points.
pub const COSTS_BPS: [f64; 5] = [0.0, 5.0, 10.0, 25.0, 50.0];

/// The strategies, in report order. The agent is compared with the
/// second, ESG-projected 1/N: the naive benchmark that obeys the
/// constraints.
pub const STRATEGIES: [&str; 7] = [
    "equal_weight",
    "esg_equal_weight",
    "min_variance",
    "max_sharpe",
    "inverse_volatility",
    "static_mix",
    "epsilon",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub weeks: usize,
    pub cagr: f64,
    pub volatility: f64,
    pub sharpe: f64,
    pub sharpe_rf2: f64,
    pub sortino: f64,
    pub max_drawdown: f64,
    pub calmar: f64,
    /// Weight traded a year (`Σ|Δw|` over a year's decisions).
    pub turnover: f64,
    /// Mean `1 / Σ wᵢ²`.
    pub effective_n: f64,
    pub esg_score: f64,
    pub carbon_intensity: f64,
    /// Decisions whose weights break a constraint.
    pub violations: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StrategyReport {
    pub pooled: Figures,
    pub by_year: BTreeMap<i32, Figures>,
    /// Pooled Sharpe ratio (rf 0) at each cost of [`COSTS_BPS`].
    pub sharpe_by_cost: Vec<(f64, f64)>,
    /// The first breach found, in words, if any.
    pub first_violation: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backtest {
    pub first_date: chrono::NaiveDate,
    pub last_date: chrono::NaiveDate,
    pub cost_bps: f64,
    pub strategies: BTreeMap<String, StrategyReport>,
    /// Ledoit-Wolf test of the agent's Sharpe ratio against ESG-projected 1/N.
    pub agent_vs_equal_weight: SharpeTest,
    /// Weekly wealth of every strategy (for the plots), and the dates.
    #[serde(skip)]
    pub wealth: BTreeMap<String, Vec<f64>>,
    #[serde(skip)]
    pub dates: Vec<chrono::NaiveDate>,
    /// The mean mix the agent chose, per base.
    pub agent_mean_mix: Vec<f64>,
}

/// What breaks a constraint in `w`, or `None` (see
/// [`EsgConstraints::breach`](ultracore_portfolio::EsgConstraints::breach)).
pub fn violation(w: &[f64], u: &Universe) -> Option<String> {
    u.constraints.breach(w, &u.data, None).map(|(_, why)| why)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The figures of one slice of a path.
pub fn figures(path: &Path, range: std::ops::Range<usize>, cost: f64, u: &Universe) -> Figures {
    let net: Vec<f64> = path.net(cost)[range.clone()].to_vec();
    let n = net.len();
    let growth: f64 = net.iter().map(|r| 1.0 + r).product();
    let years = n as f64 / WEEKS;
    let cagr = if n > 0 {
        growth.powf(1.0 / years) - 1.0
    } else {
        0.0
    };
    let m = mean(&net);
    let sd = if n > 1 {
        (net.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let downside = (net.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / n.max(1) as f64).sqrt();
    let (mut wealth, mut peak, mut mdd) = (1.0f64, 1.0f64, 0.0f64);
    for r in &net {
        wealth *= 1.0 + r;
        peak = peak.max(wealth);
        mdd = mdd.min(wealth / peak - 1.0);
    }
    let weights = &path.weights[range.clone()];
    let violations = weights.iter().filter(|w| violation(w, u).is_some()).count();
    Figures {
        weeks: n,
        cagr,
        volatility: sd * WEEKS.sqrt(),
        sharpe: weekly_sharpe(&net, 0.0),
        sharpe_rf2: weekly_sharpe(&net, 0.02),
        sortino: if downside > 0.0 {
            m / downside * WEEKS.sqrt()
        } else {
            0.0
        },
        max_drawdown: mdd,
        calmar: if mdd < 0.0 { cagr / -mdd } else { 0.0 },
        turnover: mean(&path.turnover[range.clone()]) * WEEKS,
        effective_n: mean(
            &weights
                .iter()
                .map(|w| 1.0 / w.iter().map(|v| v * v).sum::<f64>().max(1e-12))
                .collect::<Vec<f64>>(),
        ),
        esg_score: mean(
            &weights
                .iter()
                .map(|w| dot(w, &u.data.esg_score))
                .collect::<Vec<f64>>(),
        ),
        carbon_intensity: mean(
            &weights
                .iter()
                .map(|w| dot(w, &u.data.carbon_intensity))
                .collect::<Vec<f64>>(),
        ),
        violations,
    }
}

/// The agent's path through `steps`, each step decided by its year's fold.
pub fn agent_path(model: &Model, steps: &[&Step]) -> Path {
    let Some(first) = steps.first() else {
        return Path::default();
    };
    let mut path = rollout(steps, Start::fresh(first), |t| {
        let fold = model.fold_for(steps[t].date).expect("a model has folds");
        (&fold.networks, &fold.normaliser)
    });
    // Like every strategy, it starts invested in its first weights.
    path.turnover[0] = 0.0;
    path
}

/// Runs every strategy over the model's test years.
pub fn run(model: &Model, steps: &[Step], universe: &Universe, cost_bps: f64) -> Result<Backtest> {
    let first_year = model.folds[0].test_year;
    let test: Vec<&Step> = steps
        .iter()
        .filter(|s| s.date.year() >= first_year)
        .collect();
    if test.len() < 10 {
        return Err(crate::Error::Data {
            reason: format!(
                "{} test weeks from {first_year}: too few to report on",
                test.len()
            ),
        });
    }
    let n = universe.assets();
    let mut paths: BTreeMap<&str, Path> = BTreeMap::new();
    paths.insert(
        "equal_weight",
        fixed_path(&test, |_| vec![1.0 / n as f64; n]),
    );
    for (k, name) in [
        "esg_equal_weight",
        "min_variance",
        "max_sharpe",
        "inverse_volatility",
    ]
    .iter()
    .enumerate()
    {
        paths.insert(name, fixed_path(&test, |s| s.bases[k].clone()));
    }
    paths.insert(
        "static_mix",
        fixed_path(&test, |s| {
            let fold = model.fold_for(s.date).expect("a model has folds");
            mix_weights(&s.bases, &fold.static_mix)
        }),
    );
    let agent = agent_path(model, &test);
    let agent_mean_mix = (0..K)
        .map(|k| mean(&agent.mixes.iter().map(|m| m[k]).collect::<Vec<f64>>()))
        .collect();
    paths.insert("epsilon", agent);

    let cost = cost_bps / 10_000.0;
    let mut years: BTreeMap<i32, std::ops::Range<usize>> = BTreeMap::new();
    for (t, s) in test.iter().enumerate() {
        let r = years.entry(s.date.year()).or_insert(t..t);
        r.end = t + 1;
    }
    let mut strategies = BTreeMap::new();
    let mut wealth = BTreeMap::new();
    for name in STRATEGIES {
        let path = &paths[name];
        let all = 0..test.len();
        let report =
            StrategyReport {
                pooled: figures(path, all, cost, universe),
                by_year: years
                    .iter()
                    .map(|(y, r)| (*y, figures(path, r.clone(), cost, universe)))
                    .collect(),
                sharpe_by_cost: COSTS_BPS
                    .iter()
                    .map(|c| (*c, weekly_sharpe(&path.net(c / 10_000.0), 0.0)))
                    .collect(),
                first_violation: path.weights.iter().zip(&test).find_map(|(w, s)| {
                    violation(w, universe).map(|why| format!("{}: {why}", s.date))
                }),
            };
        strategies.insert(name.to_owned(), report);
        let mut v = 1.0;
        wealth.insert(
            name.to_owned(),
            std::iter::once(1.0)
                .chain(path.net(cost).iter().map(|r| {
                    v *= 1.0 + r;
                    v
                }))
                .collect(),
        );
    }
    let test_result = sharpe_difference_test(
        &paths["epsilon"].net(cost),
        &paths["esg_equal_weight"].net(cost),
        SharpeTestOptions::default(),
    )
    .map_err(|e| crate::Error::Data {
        reason: format!("the Sharpe ratio test: {e}"),
    })?;
    let mut dates = vec![test[0].date];
    for pair in test.windows(2) {
        dates.push(pair[1].date);
    }
    // The last step's return runs to the next decision, a week later.
    dates.push(test[test.len() - 1].date + chrono::Duration::weeks(1));
    Ok(Backtest {
        first_date: test[0].date,
        last_date: test[test.len() - 1].date,
        cost_bps,
        strategies,
        agent_vs_equal_weight: test_result,
        wealth,
        dates,
        agent_mean_mix,
    })
}
