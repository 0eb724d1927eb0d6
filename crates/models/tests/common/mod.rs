//! Helpers shared by the black-box tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use ultracore_models::Model;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn load_shipped(name: &str) -> Result<Model, ultracore_models::Error> {
    Model::load(root().join("models").join(format!("{name}.json")))
}

#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub feature_names: Vec<String>,
    pub rows: Vec<Vec<Option<f64>>>,
    pub models: BTreeMap<String, Reference>,
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    pub objective: String,
    pub expected_value: f64,
    pub margin: Vec<f64>,
    pub prediction: Vec<f64>,
    pub shap_values: Vec<Vec<f64>>,
    pub shap_seconds_per_row: f64,
}

impl Fixture {
    /// The rows as the models take them: float32, NaN for missing.
    pub fn rows(&self) -> Vec<Vec<f32>> {
        self.rows
            .iter()
            .map(|r| r.iter().map(|v| v.map_or(f32::NAN, |v| v as f32)).collect())
            .collect()
    }
}

pub fn fixture() -> Result<Fixture, Box<dyn std::error::Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_shap.json");
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// Deterministic pseudo-random rows whose values sit on, just below or just
/// above the model's split conditions, or are missing: every branch and
/// every default direction gets exercised.
pub fn boundary_rows(name: &str, model: &Model, n: usize, seed: u64) -> Vec<Vec<f32>> {
    // The split conditions per feature, read from the model file itself.
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models").join(format!("{name}.json")))
            .unwrap_or_default(),
    )
    .unwrap_or(serde_json::Value::Null);
    let mut thresholds: Vec<Vec<f32>> = vec![Vec::new(); model.num_features()];
    if let Some(trees) = json
        .pointer("/learner/gradient_booster/model/trees")
        .and_then(|t| t.as_array())
    {
        for t in trees {
            let (Some(idx), Some(cond), Some(left)) = (
                t["split_indices"].as_array(),
                t["split_conditions"].as_array(),
                t["left_children"].as_array(),
            ) else {
                continue;
            };
            for ((i, c), l) in idx.iter().zip(cond).zip(left) {
                if l.as_i64() != Some(-1) {
                    if let (Some(i), Some(c)) = (i.as_u64(), c.as_f64()) {
                        if let Some(v) = thresholds.get_mut(i as usize) {
                            v.push(c as f32);
                        }
                    }
                }
            }
        }
    }
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    (0..n)
        .map(|_| {
            (0..model.num_features())
                .map(|f| {
                    let r = next();
                    let ts = &thresholds[f];
                    match r % 8 {
                        0 => f32::NAN,
                        _ if ts.is_empty() => (r % 200) as f32 - 100.0,
                        1 => ts[(r as usize / 8) % ts.len()],
                        2 => {
                            let t = ts[(r as usize / 8) % ts.len()];
                            f32::from_bits(t.to_bits().wrapping_sub(1))
                        }
                        _ => {
                            let a = ts[(r as usize / 8) % ts.len()];
                            let b = ts[(next() as usize) % ts.len()];
                            (a + b) / 2.0
                        }
                    }
                })
                .collect()
        })
        .collect()
}
