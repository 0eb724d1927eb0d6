//! `ultracore forensics explain` and `ultracore bench forensics` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ultracore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args(args)
        .current_dir(root())
        .env_remove("ULTRACORE_FORENSICS_MODEL")
        .output()
        .expect("run ultracore")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failure(out: Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn fixture() -> Result<Value, Box<dyn std::error::Error>> {
    let text =
        std::fs::read_to_string(root().join("crates/models/tests/fixtures/reference_shap.json"))?;
    Ok(serde_json::from_str(&text)?)
}

fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-4 * (1.0 + theirs.abs())
}

#[test]
fn explain_json_equals_shap_on_the_sample_rows() -> TestResult {
    let fx = fixture()?;
    let names: Vec<&str> = fx["feature_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in ["bull", "bear", "sideways"] {
        for algorithm in ["fast", "exact"] {
            let model = format!("models/{name}.json");
            let text = ok(ultracore(&[
                "forensics",
                "explain",
                "--model",
                &model,
                "--rows",
                "sample-data/decision_rows.csv",
                "--json",
                "--algorithm",
                algorithm,
            ]));
            // The shap object lists features in the model's order.
            let first = text.find("\"shap\"").unwrap();
            let positions: Vec<usize> = names
                .iter()
                .map(|f| first + text[first..].find(&format!("\"{f}\":")).unwrap())
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
            let out: Value = serde_json::from_str(&text)?;
            let reference = &fx["models"][name];
            let expected = out["expected_value"].as_f64().unwrap();
            assert!(close(
                expected,
                reference["expected_value"].as_f64().unwrap()
            ));
            let rows = out["rows"].as_array().unwrap();
            assert_eq!(rows.len(), 12);
            for (i, row) in rows.iter().enumerate() {
                let margin = row["margin"].as_f64().unwrap();
                assert!(
                    close(margin, reference["margin"][i].as_f64().unwrap()),
                    "{name} row {i}"
                );
                let prediction = row["prediction"].as_f64().unwrap();
                assert!((prediction - reference["prediction"][i].as_f64().unwrap()).abs() <= 1e-6);
                let shap = row["shap"].as_object().unwrap();
                assert_eq!(shap.len(), names.len());
                let mut sum = expected;
                for (j, feature) in names.iter().enumerate() {
                    let v = shap[*feature].as_f64().unwrap();
                    assert!(
                        close(v, reference["shap_values"][i][j].as_f64().unwrap()),
                        "{name} row {i} {feature}"
                    );
                    sum += v;
                }
                assert!(
                    (sum - margin).abs() <= 1e-9,
                    "{name} row {i}: values + expected != margin"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn explain_table_lists_every_row() {
    let out = ok(ultracore(&[
        "forensics",
        "explain",
        "--model",
        "models/bull.json",
        "--rows",
        "sample-data/decision_rows.csv",
    ]));
    assert!(
        out.starts_with("model models/bull.json (binary:logistic, 100 trees, 20 features)"),
        "{out}"
    );
    assert!(out.contains("pushing up") && out.contains("pushing down"));
    // Title, header, rule and one line per row.
    assert_eq!(out.lines().count(), 3 + 12, "{out}");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn explain_errors_say_what_is_wrong() -> TestResult {
    let dir = tempfile::tempdir()?;
    let header = std::fs::read_to_string(root().join("sample-data/decision_rows.csv"))?
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let cells = |v: &str| vec![v; 20].join(",");
    let explain = |rows: &str| {
        ultracore(&[
            "forensics",
            "explain",
            "--model",
            "models/bull.json",
            "--rows",
            rows,
        ])
    };

    // Missing values: empty cells and NaN are fine, and the all-missing row has the expected margin.
    let missing = write(
        dir.path(),
        "missing.csv",
        &format!("{header}\n{}\n{}\n", cells(""), cells("NaN")),
    );
    let out: Value = serde_json::from_str(&ok(ultracore(&[
        "forensics",
        "explain",
        "--model",
        "models/bull.json",
        "--rows",
        &missing,
        "--json",
    ])))?;
    assert_eq!(out["rows"][0]["margin"], out["rows"][1]["margin"]);

    let unknown = write(
        dir.path(),
        "unknown.csv",
        &format!("{header},mood\n{},1\n", cells("1")),
    );
    let e = failure(explain(&unknown));
    assert!(e.contains("unknown feature column(s) \"mood\""), "{e}");

    let absent = write(
        dir.path(),
        "absent.csv",
        &format!("{}\n1\n", header.replace(",sentiment_score", "")),
    );
    let e = failure(explain(&absent));
    assert!(
        e.contains("no column for feature(s) \"sentiment_score\""),
        "{e}"
    );

    let bad = write(
        dir.path(),
        "bad.csv",
        &format!(
            "{header}\n{}\n{}\n",
            cells("1"),
            cells("1").replacen('1', "high", 1)
        ),
    );
    let e = failure(explain(&bad));
    assert!(
        e.contains("line 3, column rsi_14: \"high\" is not a number"),
        "{e}"
    );

    let model = write(dir.path(), "model.json", "{\"learner\": 1}");
    let e = failure(ultracore(&[
        "forensics",
        "explain",
        "--model",
        &model,
        "--rows",
        &missing,
    ]));
    assert!(e.contains("model.json: not an XGBoost JSON model"), "{e}");

    let e = failure(ultracore(&[
        "forensics",
        "explain",
        "--model",
        "nonexistent.json",
        "--rows",
        &missing,
    ]));
    assert!(e.contains("cannot read model file nonexistent.json"), "{e}");
    Ok(())
}

#[test]
fn bench_forensics_reports_both_algorithms() -> TestResult {
    let out: Value = serde_json::from_str(&ok(ultracore(&[
        "bench",
        "forensics",
        "--decisions",
        "200",
        "--runs",
        "1",
        "--json",
    ])))?;
    for key in ["exact", "fast", "fast_threads", "fast_batched"] {
        assert!(
            out[key]["us_per_decision"].as_f64().unwrap() > 0.0,
            "{key}: {out}"
        );
    }
    assert!(out["max_abs_difference_fast_vs_exact"].as_f64().unwrap() <= 1e-9);
    assert_eq!(
        out["trees_per_specialist"],
        serde_json::json!([100, 100, 100])
    );
    // Without --vs-python nothing compares with Python: no timing from
    // another run stands in for one.
    assert!(out.get("vs_python").is_none(), "{out}");
    assert!(out.get("shap_tree_explainer").is_none(), "{out}");
    Ok(())
}

#[test]
fn bench_forensics_vs_python_names_what_is_missing() -> TestResult {
    let bench = |python: &str| {
        failure(ultracore(&[
            "bench",
            "forensics",
            "--decisions",
            "20",
            "--runs",
            "1",
            "--vs-python",
            python,
        ]))
    };
    let e = bench("/nonexistent/python3");
    assert!(
        e.contains("cannot run /nonexistent/python3") && e.contains("scripts/bench-env.sh"),
        "{e}"
    );

    // An interpreter whose import of shap fails the way Python's does.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let python = dir.path().join("python");
        std::fs::write(
            &python,
            "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'shap'\" >&2\nexit 1\n",
        )?;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755))?;
        let e = bench(python.to_str().unwrap());
        assert!(
            e.contains("cannot import the Python module 'shap'")
                && e.contains("scripts/bench-env.sh"),
            "{e}"
        );
    }
    Ok(())
}
