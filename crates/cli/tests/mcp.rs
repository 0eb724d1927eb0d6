//! `ultracore mcp` as an MCP client starts it: over stdio, on an embedded
//! log in a temporary directory, driven by the official Python MCP SDK
//! (`crates/mcp/tests/mcp_client.py`, interpreter from `ULTRACORE_TEST_PYTHON`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn ultracore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args(args)
        // Nothing from the environment may pick another log.
        .env_remove("ULTRACORE_DATA_DIR")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("ULTRACORE_LOG")
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

fn sample(name: &str) -> String {
    format!("{}/../../sample-data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn python() -> String {
    std::env::var("ULTRACORE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PYTHON is not set: run scripts/test.sh, which prepares a Python \
             venv with the MCP SDK (scripts/python-env.sh prints its path)"
        )
    })
}

#[test]
fn the_python_sdk_uses_the_tools_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = dir.path().join("mesh");
    let data = dir.path().join("data");
    ok(ultracore(&[
        "mesh",
        "build",
        "--prices",
        &sample("sp500_prices.csv"),
        "--prices",
        &sample("factor_etf_prices.csv"),
        "--out",
        path(&mesh),
    ]));

    // What `ultracore risk --json` prints for the data product's prices.
    let risk_args = json!({"tickers": ["AAPL", "MSFT", "KO", "USMV"], "lookback_years": 3, "risk_free_rate": 0.02});
    let product = mesh.join("financial_data_product.parquet");
    let assets: Value = serde_json::from_str(&ok(ultracore(&[
        "risk",
        "--prices",
        path(&product),
        "--tickers",
        "AAPL,MSFT,KO,USMV",
        "--lookback-years",
        "3",
        "--risk-free-rate",
        "0.02",
        "--json",
    ])))
    .unwrap();
    assert_eq!(assets.as_object().unwrap().len(), 4, "{assets}");
    let checks = dir.path().join("checks.json");
    std::fs::write(
        &checks,
        json!({"risk": {"request": risk_args, "assets": assets}}).to_string(),
    )
    .unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/mcp_client.py");
    // The newest protocol, then the initialize handshake most clients speak;
    // each run starts `ultracore mcp` afresh on the same data directory, so
    // the first must have released the log when its client went away.
    let mut request_ids = Vec::new();
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let out = Command::new(python())
            .arg(&script)
            .arg("stdio")
            .arg(&checks)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_ultracore"))
            .args(["--data-dir", path(&data), "mcp", "--mesh", path(&mesh)])
            .env("MCP_CLIENT_MODE", mode)
            .output()
            .expect("run the Python MCP client");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the MCP client ({mode}) failed:\n{stderr}"
        );
        eprintln!("{stderr}");
        assert!(
            !stderr.contains("error:"),
            "ultracore mcp reported an error:\n{stderr}"
        );
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["protocol_version"], version, "{summary}");
        request_ids.push(summary["request_id"].as_str().unwrap().to_owned());
    }

    // The log holds the request and its answer, and nothing from the rejected calls.
    let tail = ok(ultracore(&[
        "--data-dir",
        path(&data),
        "events",
        "tail",
        "esg-portfolio-events",
        "--from-beginning",
        "--no-follow",
        "--json",
    ]));
    let events: Vec<Value> = tail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["value"].take())
        .collect();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap(),
                e["payload"]["request_id"].as_str().unwrap(),
            )
        })
        .collect();
    let (first, second) = (request_ids[0].as_str(), request_ids[1].as_str());
    assert_eq!(
        kinds,
        vec![
            ("portfolio_optimization_requested", first),
            ("portfolio_optimization_completed", first),
            ("portfolio_optimization_requested", second),
            ("portfolio_optimization_completed", second),
        ]
    );
    assert_eq!(events[0]["aggregate_id"], "pf-agent-1");
}

#[test]
fn a_missing_mesh_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = ultracore(&[
        "--data-dir",
        path(&dir.path().join("data")),
        "mcp",
        "--mesh",
        path(&dir.path().join("nowhere")),
    ]);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "stdout is the MCP channel: nothing else may go there"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ultracore mesh build"), "{stderr}");
}
