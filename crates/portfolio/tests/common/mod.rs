//! Shared helpers: the shipped sample data and the reference fixture.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use ultracore_portfolio::Matrix;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reference values written by `tools/reference_portfolio.py`.
pub fn fixture() -> Result<Value, Box<dyn std::error::Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// Prices of a data set, selected as the Python script selects them.
pub fn prices(dataset: &str) -> Result<(Vec<String>, Matrix), Box<dyn std::error::Error>> {
    let (file, last_rows) = match dataset {
        "sp500" => ("sp500_prices.csv", Some(1261)),
        _ => ("factor_etf_prices.csv", None),
    };
    let text = std::fs::read_to_string(repo_root().join("sample-data").join(file))?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty csv")?;
    let tickers: Vec<String> = header.split(',').skip(1).map(str::to_string).collect();
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let row: Vec<f64> = line
            .split(',')
            .skip(1)
            .map(|v| v.parse::<f64>())
            .collect::<Result<_, _>>()?;
        rows.push(row);
    }
    if let Some(n) = last_rows {
        rows = rows.split_off(rows.len() - n);
    }
    Ok((tickers, Matrix::from_rows(&rows)?))
}

pub fn vec_f64(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_default()
}

pub fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .map(|a| a.iter().map(vec_f64).collect())
        .unwrap_or_default()
}

/// `|a − b| ≤ rel · max(|b|, floor)`; panics with `what` otherwise.
pub fn assert_close(what: &str, a: f64, b: f64, rel: f64, floor: f64) {
    let tol = rel * b.abs().max(floor);
    assert!(
        (a - b).abs() <= tol || (a.is_nan() && b.is_nan()),
        "{what}: got {a:.15e}, expected {b:.15e} (diff {:.3e}, tol {tol:.1e})",
        (a - b).abs()
    );
}

pub fn assert_matrix_close(what: &str, m: &Matrix, expected: &[Vec<f64>], rel: f64) {
    assert_eq!(m.rows(), expected.len(), "{what}: rows");
    let scale = expected
        .iter()
        .flatten()
        .fold(0.0f64, |a, b| a.max(b.abs()));
    for (i, row) in expected.iter().enumerate() {
        for (j, &e) in row.iter().enumerate() {
            assert_close(
                &format!("{what}[{i},{j}]"),
                m.get(i, j),
                e,
                rel,
                scale * 1e-3,
            );
        }
    }
}
