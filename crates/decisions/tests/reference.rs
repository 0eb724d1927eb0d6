//! The engine against values computed by `tools/reference_decisions.py` with
//! XGBoost 3.1.3 on the shipped specialists: predictions equal XGBoost's,
//! and the regime model, signals, score, action and confidence equal an
//! independent Python implementation of the documented formulas.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;
use ultracore_decisions::{EvaluationSet, Regime, StabilityBounds};

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reference_decisions.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

#[test]
fn decisions_equal_the_python_reference() -> common::TestResult {
    let fixture = fixture();
    let engine = common::engine();
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 39);
    let mut worst = (0.0f64, 0.0f64);
    let mut actions = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let features: BTreeMap<String, f64> = serde_json::from_value(case["features"].clone())?;
        let d = engine.decide_now(&common::request("REF", features))?;
        for r in Regime::ALL {
            let s = &d.specialists[r.as_str()];
            let want = f(&case["predictions"][r.as_str()]);
            assert!(
                (s.prediction - want).abs() <= 1e-6,
                "case {i} {r}: prediction {} vs XGBoost {want}",
                s.prediction
            );
            worst.0 = worst.0.max((s.prediction - want).abs());
            let want = f(&case["signals"][r.as_str()]);
            assert!((s.signal - want).abs() < 1e-12, "case {i} {r} signal");
            let want = f(&case["regime_probs"][r.as_str()]);
            assert!(
                (d.decision.regime_probs[r.as_str()] - want).abs() < 1e-12,
                "case {i} {r} probability"
            );
            assert_eq!(
                d.decision.strategy_weights[r.as_str()],
                d.decision.regime_probs[r.as_str()]
            );
        }
        assert!(
            (d.regime_trend - f(&case["trend"])).abs() < 1e-12,
            "case {i}"
        );
        assert!(
            (d.regime_stress - f(&case["stress"])).abs() < 1e-12,
            "case {i}"
        );
        assert!(
            (d.score - f(&case["score"])).abs() < 1e-12,
            "case {i} score"
        );
        worst.1 = worst.1.max((d.score - f(&case["score"])).abs());
        assert_eq!(d.decision.action.as_str(), case["action"], "case {i}");
        assert!(
            (d.decision.confidence - f(&case["confidence"])).abs() < 1e-12,
            "case {i}"
        );
        *actions.entry(d.decision.action.as_str()).or_insert(0) += 1;
    }
    // The fixture exercises every action.
    assert_eq!(actions.len(), 3, "{actions:?}");
    eprintln!(
        "max |prediction - XGBoost| {:.1e}, max |score - Python| {:.1e}",
        worst.0, worst.1
    );
    Ok(())
}

#[test]
fn sharpe_on_the_evaluation_set_equals_the_reference() -> common::TestResult {
    let fixture = fixture();
    let engine = common::engine();
    let set = EvaluationSet::load(
        common::models_dir().join("evaluation.csv"),
        engine.specialists().feature_names(),
    )?;
    assert_eq!(set.rows.len(), 1200);
    for r in Regime::ALL {
        let (sharpe, n) = set.sharpe(engine.specialists().get(r), 100.0)?;
        let want = &fixture["evaluation"]["sharpe"][r.as_str()];
        assert_eq!(n as u64, want["rows"].as_u64().expect("rows"));
        assert!(
            (sharpe - f(&want["sharpe"])).abs() < 1e-9 * (1.0 + sharpe.abs()),
            "{r}: {sharpe} vs {}",
            want["sharpe"]
        );
    }
    // A model compared with itself: nothing degrades, everything is stable.
    let bull = engine.specialists().get(Regime::Bull);
    let u = set.compare(
        bull,
        bull,
        100.0,
        StabilityBounds::default(),
        chrono::Utc::now(),
    )?;
    assert_eq!((u.sharpe_before, u.degradation_pct), (u.sharpe_after, 0.0));
    assert!(u.stability_check_passed, "{:?}", u.stability_detail);
    Ok(())
}
