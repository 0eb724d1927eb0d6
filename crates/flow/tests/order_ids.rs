//! Staged order ids: one per order however many trades a result has, and
//! the same on every run over the same completion (so a completion staged
//! twice yields the same orders, which consumers deduplicate).

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use ultracore_esg::{OptimizationResult, Side, Trade};
use ultracore_flow::{derived_id, stage_orders, ExecutionOptions};
use ultracore_portfolio::{EsgObjective, PortfolioFigures};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn figures() -> PortfolioFigures {
    PortfolioFigures {
        expected_return: 0.08,
        volatility: 0.15,
        sharpe: 0.4,
        esg_score: 60.0,
        carbon_intensity: 100.0,
        turnover: 0.0,
        transaction_cost: 0.0,
    }
}

/// A result whose every trade becomes an order: whole units, above the
/// minimum notional.
fn result_with_trades(n: usize) -> Result<OptimizationResult, Box<dyn std::error::Error>> {
    let trades = (0..n)
        .map(|i| Trade {
            ticker: format!("T{i:04}"),
            isin: format!("XX{i:010}"),
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            weight_change: 0.001,
            units: 10.0,
            price: 50.0,
            notional: 500.0,
            estimated_cost: 0.5,
        })
        .collect();
    let day = NaiveDate::from_ymd_opt(2025, 1, 2).ok_or("date")?;
    Ok(OptimizationResult {
        request_id: Uuid::now_v7(),
        portfolio_id: "pf-many".into(),
        objective: EsgObjective::MinVolatility,
        weights: BTreeMap::new(),
        trades,
        portfolio_value: 1_000_000.0,
        before: figures(),
        after: figures(),
        without_esg_constraints: None,
        binding_constraints: Vec::new(),
        cancelled_small_trades: Vec::new(),
        explanation: Vec::new(),
        esg_data_synthetic: true,
        data_start: day,
        data_end: day,
        observations: 100,
        solver_status: "Solved".into(),
        solve_ms: 1.0,
        agent: None,
        frontier: Vec::new(),
    })
}

#[test]
fn a_thousand_trades_get_a_thousand_distinct_order_ids() -> TestResult {
    let result = result_with_trades(1_000)?;
    let completion = Uuid::now_v7();
    let staged = stage_orders(&result, completion, &ExecutionOptions::default());
    assert_eq!(staged.orders.len(), 1_000);
    let ids: HashSet<&str> = staged.orders.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!(ids.len(), 1_000, "order ids collide");

    // The same completion stages the same ids, in the same order.
    let again = stage_orders(&result, completion, &ExecutionOptions::default());
    let first: Vec<&str> = staged.orders.iter().map(|o| o.order_id.as_str()).collect();
    let second: Vec<&str> = again.orders.iter().map(|o| o.order_id.as_str()).collect();
    assert_eq!(first, second);

    // Another completion stages other ids.
    let other = stage_orders(&result, Uuid::now_v7(), &ExecutionOptions::default());
    assert!(other
        .orders
        .iter()
        .all(|o| !ids.contains(o.order_id.as_str())));
    Ok(())
}

#[test]
fn derived_ids_are_uuid_v5_and_depend_on_every_input() {
    let base = Uuid::now_v7();
    let id = derived_id(base, b"order", 300);
    assert_eq!(id.get_version_num(), 5);
    assert_eq!(id, derived_id(base, b"order", 300));
    // Past any one byte of index: 44 and 300 share their low byte.
    assert_ne!(id, derived_id(base, b"order", 44));
    assert_ne!(id, derived_id(base, b"orders", 300));
    assert_ne!(id, derived_id(Uuid::now_v7(), b"order", 300));
    assert_ne!(
        derived_id(base, b"order", u64::MAX),
        derived_id(base, b"order", u64::MAX - 1)
    );
}
