//! SHAP values of decisions: additivity to the models' double-precision
//! margins (1e-9), agreement with shap's TreeExplainer (1e-4 × (1 + |v|))
//! for each specialist and for the ensemble, including missing features,
//! and the same numbers after a round trip through the store.

mod common;

use common::{fixture, reference_decisions, specialists, TestResult};
use serde_json::Value;
use ultracore_forensics::{decode_values, encode_values, narrative, ModelSet, SPECIALISTS};

fn close_to_shap(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-4 * (1.0 + theirs.abs())
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn values_add_up_to_the_margin_and_equal_shap_for_every_specialist_and_the_ensemble() -> TestResult
{
    let specialists = specialists();
    let fixture = fixture();
    let decisions = reference_decisions();
    let names: Vec<&str> = specialists.names().collect();
    assert_eq!(names, SPECIALISTS);
    assert_eq!(
        fixture["feature_names"],
        serde_json::to_value(specialists.feature_names())?
    );
    let mut ws = specialists.workspace();
    let (mut worst_additivity, mut worst_shap) = (0.0f64, 0.0f64);
    let mut missing_seen = 0;
    for (i, d) in decisions.iter().enumerate() {
        let e = specialists.explain(d, &mut ws)?;
        let expected = &fixture["expected"][i];
        assert_eq!(e.num_parts(), 4);
        missing_seen += e.row().iter().filter(|x| x.is_nan()).count();
        let mut ensemble_margin = 0.0;
        for (s, name) in names.iter().enumerate() {
            let part = e.part(s);
            // Additivity in our double arithmetic, against the model's own margin.
            let margin = specialists.model(s).margin(e.row())?;
            let sum = part.expected_value + part.shap.iter().sum::<f64>();
            let err = (sum - margin).abs();
            worst_additivity = worst_additivity.max(err);
            assert!(
                err <= 1e-9,
                "decision {i} {name}: Σφ+E = {sum}, margin {margin}"
            );
            assert_eq!(part.margin.to_bits(), part.margin.to_bits());
            assert!((part.margin - margin).abs() <= 1e-9);
            ensemble_margin += e.weights()[s] * margin;
            // shap's values.
            let theirs = &expected["specialists"][name];
            let phi = f64s(&theirs["shap"]);
            for (j, (ours, theirs)) in part.shap.iter().zip(&phi).enumerate() {
                worst_shap = worst_shap.max((ours - theirs).abs() / (1.0 + theirs.abs()));
                assert!(
                    close_to_shap(*ours, *theirs),
                    "decision {i} {name} feature {j}: ours {ours}, shap {theirs}"
                );
            }
            let ev = theirs["expected_value"].as_f64().expect("expected_value");
            assert!(
                close_to_shap(part.expected_value, ev),
                "{name}: E {} vs {ev}",
                part.expected_value
            );
            let xgb_margin = theirs["margin"].as_f64().expect("margin");
            assert!(
                close_to_shap(part.margin, xgb_margin),
                "{name}: margin {} vs XGBoost {xgb_margin}",
                part.margin
            );
        }
        // The ensemble: additivity against the weighted margins, and shap's weighted values.
        let ens = e.ensemble();
        let sum = ens.expected_value + ens.shap.iter().sum::<f64>();
        let err = (sum - ensemble_margin).abs();
        worst_additivity = worst_additivity.max(err);
        assert!(
            err <= 1e-9,
            "decision {i} ensemble: Σφ+E = {sum}, Σ w·margin {ensemble_margin}"
        );
        assert!((ens.margin - ensemble_margin).abs() <= 1e-9);
        let theirs = &expected["ensemble"];
        for (j, (ours, theirs)) in ens.shap.iter().zip(f64s(&theirs["shap"])).enumerate() {
            worst_shap = worst_shap.max((ours - theirs).abs() / (1.0 + theirs.abs()));
            assert!(
                close_to_shap(*ours, theirs),
                "decision {i} ensemble feature {j}: ours {ours}, shap {theirs}"
            );
        }
        let ev = theirs["expected_value"].as_f64().expect("expected_value");
        assert!(close_to_shap(ens.expected_value, ev));
        assert!(close_to_shap(
            ens.margin,
            theirs["margin"].as_f64().expect("margin")
        ));

        // The store keeps the numbers bit for bit.
        let back = decode_values(&encode_values(&e))?;
        assert_eq!(back.row().len(), e.row().len());
        for p in 0..e.num_parts() {
            let (a, b) = (e.part(p), back.part(p));
            assert_eq!(a.margin.to_bits(), b.margin.to_bits());
            assert!(a
                .shap
                .iter()
                .zip(b.shap)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
    assert!(missing_seen > 50, "the fixture exercises missing features");
    eprintln!(
        "{} decisions: worst additivity error {worst_additivity:.1e}, worst relative difference to shap {worst_shap:.1e}",
        decisions.len()
    );
    Ok(())
}

#[test]
fn the_words_name_the_strongest_features_the_regime_and_the_weights() -> TestResult {
    let specialists = specialists();
    let decisions = reference_decisions();
    let mut ws = specialists.workspace();
    let d = &decisions[0];
    let e = specialists.explain(d, &mut ws)?;
    let text = narrative(&ModelSet::of(&specialists), d, &e);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with(&format!("{} ", d.action)), "{text}");
    assert!(lines[0].contains(&d.symbol));
    // The strongest positive feature of the ensemble is named first.
    let ens = e.ensemble();
    let (best, _) = ens
        .shap
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("features");
    let name = &specialists.feature_names()[best];
    assert!(
        lines[1].starts_with(&format!("Pushing it up: {name}")),
        "{text}"
    );
    assert!(lines[2].starts_with("Pushing it down: "));
    let top_regime = d
        .regime_probs
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("regimes")
        .0;
    assert!(
        lines[3].starts_with(&format!("Regime: {top_regime} is the most likely")),
        "{text}"
    );
    assert!(
        lines[4].contains("the regime probabilities, so each specialist counts"),
        "{text}"
    );

    // Weights apart from the probabilities are said to be so, with both numbers.
    let apart = decisions
        .iter()
        .find(|d| d.strategy_weights.len() == 3 && d.strategy_weights["bull"] == 0.5)
        .expect("fixture decision with its own weights");
    let text = narrative(
        &ModelSet::of(&specialists),
        apart,
        &specialists.explain(apart, &mut ws)?,
    );
    assert!(text.contains("bull 0.50 (regime probability"), "{text}");
    assert!(
        text.contains("apart from the regime probabilities"),
        "{text}"
    );

    // Every feature missing: said so, and still additive.
    let empty = decisions
        .iter()
        .find(|d| d.features.is_empty())
        .expect("all missing");
    let e = specialists.explain(empty, &mut ws)?;
    let text = narrative(&ModelSet::of(&specialists), empty, &e);
    assert!(text.contains("missing ("), "{text}");
    Ok(())
}

#[test]
fn bad_weights_are_rejected_with_the_reason() {
    let specialists = specialists();
    let mut d = reference_decisions().remove(0);
    d.strategy_weights.insert("momentum".into(), 0.2);
    let err = specialists
        .explain(&d, &mut specialists.workspace())
        .expect_err("unknown specialist");
    assert_eq!(
        err.to_string(),
        "strategy_weights names 'momentum', which is not a specialist (bull, bear, sideways)"
    );
}

#[test]
fn the_words_are_pinned() -> TestResult {
    // The store keeps the numbers and writes the words on read, so the words
    // of a stored decision must not drift: changing them is a deliberate
    // act (update tests/fixtures/narratives.txt and say so in the release
    // notes), never a side effect.
    let specialists = specialists();
    let set = ModelSet::of(&specialists);
    let mut ws = specialists.workspace();
    let mut text = String::new();
    for d in reference_decisions().iter().take(8) {
        let e = specialists.explain(d, &mut ws)?;
        text.push_str(&format!("# {}\n", d.decision_id));
        text.push_str(&narrative(&set, d, &e));
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/narratives.txt");
    if std::env::var_os("ULTRACORE_WRITE_NARRATIVES").is_some() {
        std::fs::write(&path, &text)?;
    }
    let pinned = std::fs::read_to_string(&path)?;
    assert_eq!(text, pinned);
    Ok(())
}
