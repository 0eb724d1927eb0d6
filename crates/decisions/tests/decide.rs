//! The engine end to end on the shipped models: actions, sizing, risk
//! rejections and validation.

mod common;

use chrono::Utc;
use ultracore_decisions::{DecisionConfig, DecisionEngine, Error, Regime, Specialists};
use ultracore_events::trading::Action;
use uuid::Uuid;

#[test]
fn a_bullish_row_buys_sized_by_confidence_and_a_bearish_row_sells_what_is_held(
) -> common::TestResult {
    let engine = common::engine();
    let d = engine.decide_now(&common::request("AAPL", common::bullish()))?;
    assert_eq!(d.regime, Regime::Bull);
    assert!(
        d.decision.regime_probs["bull"] > 0.99,
        "{:?}",
        d.decision.regime_probs
    );
    assert_eq!(d.decision.action, Action::Buy, "score {}", d.score);
    assert!(d.approved, "{:?}", d.decision.risk_checks);
    // The score is the probability-weighted mean of the three signals.
    let by_hand: f64 = d.specialists.values().map(|s| s.weight * s.signal).sum();
    assert!((d.score - by_hand).abs() < 1e-15);
    assert_eq!(d.decision.confidence, d.score);
    // confidence × 1,000 units, and at most confidence × 100,000 / price 100: the same here.
    assert_eq!(d.decision.quantity, (d.score * 1000.0 + 1e-9).floor());
    assert!(d.decision.quantity > 0.0);
    assert_eq!(d.decision.features, common::bullish());
    assert!(d.decision.model_version.starts_with("bull@"));
    assert_eq!(d.decision.model_version.split('+').count(), 3);
    // The engine is pure: only the service, which times the request, sets it.
    assert_eq!(d.decision.latency_us, None);

    let d = engine.decide_now(&common::request("AAPL", common::bearish()))?;
    assert_eq!(d.regime, Regime::Bear);
    assert_eq!(d.decision.action, Action::Sell, "score {}", d.score);
    // Long-only: a SELL trades at most the 100 units held.
    assert_eq!(d.decision.quantity, 100.0);
    assert!(d.approved);
    Ok(())
}

#[test]
fn a_pricey_symbol_is_sized_by_value_and_rounded_to_lots() -> common::TestResult {
    let mut config = DecisionConfig::default();
    config.sizing.lot_size = 10.0;
    let engine = DecisionEngine::new(Specialists::load_dir(common::models_dir())?, config)?;
    let mut request = common::request("BRK.A", common::bullish());
    request.price = Some(1_234.0);
    let d = engine.decide_now(&request)?;
    assert_eq!(d.decision.action, Action::Buy);
    let by_value = d.decision.confidence * 100_000.0 / 1_234.0;
    assert_eq!(d.decision.quantity, (by_value / 10.0).floor() * 10.0);
    Ok(())
}

#[test]
fn risk_checks_reject_and_say_which() -> common::TestResult {
    let engine = common::engine();
    let mut request = common::request("AAPL", common::bullish());
    request.portfolio.position_units = 9_990.0;
    request.portfolio.value = Some(1e9);
    request.portfolio.correlation_with_holdings = Some(0.95);
    let d = engine.decide_now(&request)?;
    assert_eq!(d.decision.action, Action::Buy);
    assert!(!d.approved);
    assert_eq!(d.failed_checks, ["position_limit", "correlation"]);
    assert!(d.proposed_quantity > 0.0);
    assert_eq!(
        d.decision.quantity, 0.0,
        "a rejected decision trades nothing"
    );
    let position = &d.decision.risk_checks[0];
    assert_eq!(position.value, 9_990.0 + d.proposed_quantity);
    assert_eq!(position.limit, 10_000.0);

    // Without a price the concentration cannot be evaluated: rejected by default.
    let mut request = common::request("AAPL", common::bullish());
    request.price = None;
    let d = engine.decide_now(&request)?;
    assert_eq!(d.failed_checks, ["concentration"]);
    assert!(d.decision.risk_checks[1]
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("price"));
    Ok(())
}

#[test]
fn the_same_inputs_give_the_same_decision() -> common::TestResult {
    let engine = common::engine();
    let request = common::request("AAPL", common::bullish());
    let (id, now) = (Uuid::now_v7(), Utc::now());
    assert_eq!(
        engine.decide(&request, id, now)?,
        engine.decide(&request, id, now)?
    );
    Ok(())
}

#[test]
fn invalid_requests_name_the_field() {
    let engine = common::engine();
    let mut request = common::request("AAPL", common::bullish());
    request.features.insert("rsi14".into(), 1.0);
    match engine.decide_now(&request) {
        Err(Error::Invalid(e)) => {
            assert_eq!(e.field, "features.rsi14");
            assert!(e.reason.contains("rsi_14"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let mut request = common::request("AAPL", common::bullish());
    request.portfolio.value = Some(-1.0);
    assert!(
        matches!(engine.decide_now(&request), Err(Error::Invalid(e)) if e.field == "portfolio.value")
    );
}

#[test]
fn missing_models_and_wrong_models_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let e = Specialists::load_dir(dir.path()).expect_err("no models");
    assert!(e.to_string().contains("bull.json"), "{e}");
    // The sideways model in the bull slot has the wrong objective.
    for name in ["bull", "bear", "sideways"] {
        let from = if name == "bull" { "sideways" } else { name };
        std::fs::copy(
            common::models_dir().join(format!("{from}.json")),
            dir.path().join(format!("{name}.json")),
        )
        .expect("copy");
    }
    let e = Specialists::load_dir(dir.path()).expect_err("wrong objective");
    assert!(e.to_string().contains("binary:logistic"), "{e}");
}

#[test]
fn a_decision_says_whose_word_its_risk_context_is() -> common::TestResult {
    use ultracore_events::trading::ContextSource;
    let engine = common::engine();
    let given = engine.decide_now(&common::request("AAPL", common::bullish()))?;
    assert_eq!(given.context_source, ContextSource::Caller);
    let mut bare = common::request("AAPL", common::bullish());
    bare.portfolio = Default::default();
    let none = engine.decide_now(&bare)?;
    assert_eq!(none.context_source, ContextSource::Absent);
    assert_eq!(
        serde_json::to_value(&none)?["context_source"],
        serde_json::json!("absent")
    );
    Ok(())
}
