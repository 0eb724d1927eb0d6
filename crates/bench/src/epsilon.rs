//! `ultracore bench epsilon`: the Epsilon Agent's policy forward pass and
//! a whole decision (features, the four base portfolios' solves, the mix)
//! on the shipped model and the 20 shipped S&P 500 stocks.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use ultracore_epsilon::app::{default_constraints, universe};
use ultracore_epsilon::data::Panel;
use ultracore_epsilon::train::{drift, Policy, INPUTS};
use ultracore_epsilon::Agent;
use ultracore_portfolio::EsgConstraints;
use ultracore_term::table;

use crate::Rng;

#[derive(Debug, Args)]
pub struct EpsilonBench {
    /// Forward passes timed one by one.
    #[arg(long, default_value_t = 100_000)]
    passes: usize,
    /// Weekly decisions timed, the latest weeks of the data.
    #[arg(long, default_value_t = 300)]
    decisions: usize,
    /// The price file (the shipped 20 S&P 500 stocks).
    #[arg(long, default_value = "sample-data/sp500_prices.csv")]
    prices: PathBuf,
    #[arg(long)]
    json: bool,
}

fn quantile_us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub fn run(b: EpsilonBench, seed: u64) -> Result<()> {
    let agent = Agent::shipped();
    let fold = agent.model().live().context("the model has no fold")?;
    // The forward pass: the live fold's networks (one per seed), averaged.
    let mut rng = Rng::new(seed);
    let inputs: Vec<Vec<f64>> = (0..1024)
        .map(|_| (0..INPUTS).map(|_| 4.0 * rng.next_f64() - 2.0).collect())
        .collect();
    let mut forward = Histogram::<u64>::new(3)?;
    let mut sink = 0.0;
    for i in 0..b.passes {
        let x = &inputs[i % inputs.len()];
        let t = Instant::now();
        let mix = fold.networks.mix(x);
        forward.record(t.elapsed().as_nanos() as u64)?;
        sink += mix[0];
    }
    std::hint::black_box(sink);

    // Whole decisions on the demo request's constraints (turnover limit
    // and costs included), holding the last decision's drifted weights.
    let panel = Panel::read(&b.prices).with_context(|| {
        format!(
            "reading {} (run from the repository root)",
            b.prices.display()
        )
    })?;
    let u = universe(
        &panel,
        EsgConstraints {
            max_turnover: Some(0.8),
            transaction_cost_bps: 10.0,
            ..default_constraints(panel.assets())
        },
        0.02,
    );
    let ends = panel.week_ends();
    let chosen: Vec<usize> = ends[ends.len().saturating_sub(b.decisions.max(1))..].to_vec();
    let mut decide = Histogram::<u64>::new(3)?;
    let n = panel.assets();
    // A portfolio already invested: 1/N (flagged issuers included).
    let mut held: Vec<f64> = vec![1.0 / n as f64; n];
    let mut last_day: Option<usize> = None;
    for &day in &chosen {
        if let Some(prev) = last_day {
            held = drift(&held, &panel.period_returns(prev, day));
        }
        let from = day.saturating_sub(1259);
        let window = &panel.prices[from..=day];
        let t = Instant::now();
        let d = agent.decide(window, &u, &held)?;
        decide.record(t.elapsed().as_nanos() as u64)?;
        held = d.weights;
        last_day = Some(day);
    }
    let out = json!({
        "model_sha256": agent.version(),
        "forward_passes": b.passes,
        "networks_per_pass": fold.networks.len(),
        "forward_p50_us": quantile_us(&forward, 0.5),
        "forward_p99_us": quantile_us(&forward, 0.99),
        "decisions": chosen.len(),
        "assets": n,
        "decision_p50_ms": quantile_us(&decide, 0.5) / 1000.0,
        "decision_p99_ms": quantile_us(&decide, 0.99) / 1000.0,
        "decision_max_ms": decide.max() as f64 / 1e6,
    });
    if b.json {
        println!("{out}");
        return Ok(());
    }
    println!(
        "Epsilon Agent (model {}…), {} assets, the demo request's constraints (turnover ≤ 0.8, 10 bp costs):",
        &agent.version()[..12],
        n
    );
    let rows = vec![
        vec![
            format!(
                "policy forward pass ({} networks averaged)",
                fold.networks.len()
            ),
            b.passes.to_string(),
            format!("{:.2} µs", quantile_us(&forward, 0.5)),
            format!("{:.2} µs", quantile_us(&forward, 0.99)),
            "< 1 ms".into(),
        ],
        vec![
            "whole decision (features, 4 base solves, mix)".into(),
            chosen.len().to_string(),
            format!("{:.2} ms", quantile_us(&decide, 0.5) / 1000.0),
            format!("{:.2} ms", quantile_us(&decide, 0.99) / 1000.0),
            "< 20 ms".into(),
        ],
    ];
    println!(
        "{}",
        table(&["figure", "samples", "p50", "p99", "goal"], &rows)
    );
    Ok(())
}
