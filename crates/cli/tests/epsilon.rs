//! `ultracore epsilon backtest` on the shipped model and prices, as a user
//! runs it: the JSON the README documents, no out-of-sample decision that
//! breaks a constraint, the model's hash, and the SVG charts.

use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ultracore() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c
}

#[test]
fn the_shipped_model_backtests_without_a_violation() -> TestResult {
    let plots = tempfile::tempdir()?;
    let out = ultracore()
        .args(["epsilon", "backtest", "--json", "--plot"])
        .arg(plots.path())
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let strategies = v["strategies"].as_object().ok_or("strategies")?;
    for name in ultracore_epsilon::backtest::STRATEGIES {
        let s = &strategies[name];
        for field in ["sharpe", "cagr", "volatility", "max_drawdown", "turnover"] {
            assert!(
                s[field].as_f64().is_some_and(f64::is_finite),
                "{name}.{field}"
            );
        }
        let violations = s["violations"].as_u64().ok_or("violations")?;
        if name == "equal_weight" {
            assert!(violations > 0, "raw 1/N holds flagged issuers");
        } else {
            assert_eq!(violations, 0, "{name} broke a constraint");
        }
    }
    let t = &v["agent_vs_equal_weight"];
    let p = t["p_value"].as_f64().ok_or("p_value")?;
    assert!((0.0..=1.0).contains(&p));
    assert!(t["ci_low"].as_f64() <= t["sharpe_diff"].as_f64());
    assert!(t["sharpe_diff"].as_f64() <= t["ci_high"].as_f64());
    let model = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/epsilon.json"
    ))?;
    assert_eq!(
        v["model_sha256"].as_str(),
        Some(ultracore_epsilon::data::sha256_hex(&model).as_str())
    );
    for chart in ["equity.svg", "drawdowns.svg"] {
        let svg = std::fs::read_to_string(plots.path().join(chart))?;
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("epsilon") && svg.contains("esg_equal_weight"));
    }
    Ok(())
}

#[test]
fn a_model_of_other_data_is_refused_with_the_reason() -> TestResult {
    let out = ultracore()
        .args([
            "epsilon",
            "backtest",
            "--prices",
            "sample-data/factor_etf_prices.csv",
        ])
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not the data the model was trained on"),
        "{err}"
    );
    Ok(())
}
