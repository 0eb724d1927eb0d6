//! The shipped models against the values XGBoost and shap computed on them
//! (`tests/fixtures/reference_shap.json`, written by `tools/reference_shap.py`).

mod common;

use common::{fixture, load_shipped, Fixture};
use ultracore_models::{FastTreeShap, TreeShap};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MODELS: [&str; 3] = ["bull", "bear", "sideways"];

#[test]
fn fixture_matches_the_shipped_models() -> TestResult {
    let fx: Fixture = fixture()?;
    for name in MODELS {
        let model = load_shipped(name)?;
        assert_eq!(model.feature_names(), fx.feature_names.as_slice());
        assert_eq!(model.objective().name(), fx.models[name].objective);
        assert_eq!(model.num_trees(), 100);
        assert_eq!(model.max_depth(), 4);
    }
    Ok(())
}

#[test]
fn predictions_equal_xgboost() -> TestResult {
    let fx = fixture()?;
    for name in MODELS {
        let model = load_shipped(name)?;
        let reference = &fx.models[name];
        let (mut worst_margin, mut worst_prediction) = (0.0f64, 0.0f64);
        for (i, row) in fx.rows().iter().enumerate() {
            let margin = model.predict_margin(row)?;
            let prediction = model.predict(row)?;
            let dm = (f64::from(margin) - reference.margin[i]).abs();
            let dp = (f64::from(prediction) - reference.prediction[i]).abs();
            assert!(
                dm <= 1e-6,
                "{name} row {i}: margin {margin} vs XGBoost {}",
                reference.margin[i]
            );
            assert!(
                dp <= 1e-6,
                "{name} row {i}: prediction {prediction} vs XGBoost {}",
                reference.prediction[i]
            );
            worst_margin = worst_margin.max(dm);
            worst_prediction = worst_prediction.max(dp);
            // The double-precision margin differs only by float32 rounding.
            let m64 = model.margin(row)?;
            assert!((m64 - reference.margin[i]).abs() <= 1e-5 * (1.0 + m64.abs()));
        }
        eprintln!("{name}: max |margin - XGBoost| {worst_margin:e}, max |prediction - XGBoost| {worst_prediction:e}");
    }
    Ok(())
}

#[test]
fn exact_tree_shap_adds_up_and_equals_shap() -> TestResult {
    let fx = fixture()?;
    for name in MODELS {
        let model = load_shipped(name)?;
        let reference = &fx.models[name];
        let explainer = TreeShap::new(&model);
        let mut ws = explainer.workspace();
        let mut phi = vec![0.0; model.num_features()];

        let e = explainer.expected_value();
        let de = (e - reference.expected_value).abs();
        assert!(
            de <= 1e-4 * (1.0 + e.abs()),
            "{name}: expected value {e} vs shap {}",
            reference.expected_value
        );

        let (mut worst_sum, mut worst_shap) = (0.0f64, 0.0f64);
        for (i, row) in fx.rows().iter().enumerate() {
            let margin = explainer.shap_values(row, &mut ws, &mut phi)?;
            assert_eq!(margin, model.margin(row)?);
            let sum_error = (phi.iter().sum::<f64>() + e - margin).abs();
            assert!(
                sum_error <= 1e-9,
                "{name} row {i}: values + expected - margin = {sum_error:e}"
            );
            worst_sum = worst_sum.max(sum_error);
            for (j, (&ours, &theirs)) in phi.iter().zip(&reference.shap_values[i]).enumerate() {
                let d = (ours - theirs).abs();
                assert!(
                    d <= 1e-4 * (1.0 + theirs.abs()),
                    "{name} row {i} feature {}: {ours} vs shap {theirs}",
                    fx.feature_names[j]
                );
                worst_shap = worst_shap.max(d / (1.0 + theirs.abs()));
            }
        }
        eprintln!(
            "{name}: |E - shap| {de:e}, max |sum + E - margin| {worst_sum:e}, max |phi - shap|/(1+|shap|) {worst_shap:e}"
        );
    }
    Ok(())
}

#[test]
fn fast_tree_shap_equals_exact() -> TestResult {
    let fx = fixture()?;
    for name in MODELS {
        let model = load_shipped(name)?;
        let exact = TreeShap::new(&model);
        let fast = FastTreeShap::new(&model);
        assert_eq!((fast.depth4_trees(), fast.exact_trees()), (100, 0));
        assert_eq!(fast.expected_value(), exact.expected_value());
        let (mut ws_exact, mut ws_fast) = (exact.workspace(), fast.workspace());
        let mut phi_exact = vec![0.0; model.num_features()];
        let mut phi_fast = vec![0.0; model.num_features()];
        let mut rows = fx.rows();
        rows.extend(common::boundary_rows(name, &model, 500, 7));
        let mut worst = 0.0f64;
        for (i, row) in rows.iter().enumerate() {
            let m_exact = exact.shap_values(row, &mut ws_exact, &mut phi_exact)?;
            let m_fast = fast.shap_values(row, &mut ws_fast, &mut phi_fast)?;
            assert!(
                (m_exact - m_fast).abs() <= 1e-12 * (1.0 + m_exact.abs()),
                "{name} row {i}: margins differ"
            );
            for (a, b) in phi_exact.iter().zip(&phi_fast) {
                let d = (a - b).abs();
                assert!(d <= 1e-9, "{name} row {i}: exact {a} vs fast {b}");
                worst = worst.max(d);
            }
        }
        eprintln!("{name}: {} rows, max |fast - exact| {worst:e}", rows.len());
        // A batch of every row gives each row what the call per row gave.
        let flat: Vec<f32> = rows.concat();
        let mut phi = vec![0.0; flat.len()];
        let mut margins = vec![0.0; rows.len()];
        fast.shap_values_batch(&flat, &mut ws_fast, &mut phi, &mut margins)?;
        for (i, row) in rows.iter().enumerate() {
            let m = fast.shap_values(row, &mut ws_fast, &mut phi_fast)?;
            assert_eq!(m.to_bits(), margins[i].to_bits(), "{name} row {i}");
            assert_eq!(phi_fast, phi[i * phi_fast.len()..(i + 1) * phi_fast.len()]);
        }
    }
    Ok(())
}
