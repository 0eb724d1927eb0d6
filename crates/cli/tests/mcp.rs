//! `ultracore mcp` as an MCP client starts it: over stdio, on an embedded
//! log in a temporary directory, driven by the official Python MCP SDK
//! (`crates/mcp/tests/mcp_client.py`, interpreter from `ULTRACORE_TEST_PYTHON`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Builds the data products in `dir/mesh` and writes `dir/checks.json`:
/// the risk check's arguments and what `ultracore risk --json` prints for
/// them on the data product's prices.
fn prepare(dir: &Path) -> (PathBuf, PathBuf) {
    let mesh = dir.join("mesh");
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
    let checks = dir.join("checks.json");
    std::fs::write(
        &checks,
        json!({"risk": {"request": risk_args, "assets": assets}}).to_string(),
    )
    .unwrap();
    (mesh, checks)
}

/// Runs the Python client against `ultracore ARGS` over stdio in `mode`
/// (`auto` or `legacy`), waiting up to `answer_wait` seconds for the
/// optimization's answer, and returns its summary.
fn client(checks: &Path, mode: &str, answer_wait: u32, args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mcp/tests/mcp_client.py");
    let out = Command::new(python())
        .arg(&script)
        .arg("stdio")
        .arg(checks)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ultracore"))
        .args(args)
        .env("MCP_CLIENT_MODE", mode)
        .env("MCP_CLIENT_ANSWER_WAIT", answer_wait.to_string())
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
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (event type, request id) of the events on esg-portfolio-events: all of
/// them on the embedded log; on Kafka, where a new consumer takes a while to
/// be assigned its partitions, the first `n` (waiting up to 60 s for them).
fn esg_events(log_args: &[&str], kafka_n: Option<usize>) -> Vec<(String, String)> {
    let mut args = log_args.to_vec();
    args.extend([
        "events",
        "tail",
        "esg-portfolio-events",
        "--from-beginning",
        "--json",
    ]);
    let n = kafka_n.map(|n| n.to_string());
    match &n {
        Some(n) => args.extend(["-n", n.as_str()]),
        None => args.push("--no-follow"),
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args(&args)
        .env_remove("ULTRACORE_DATA_DIR")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ultracore events tail");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(child.wait_with_output().unwrap())
        .lines()
        .map(|l| {
            let record: Value = serde_json::from_str(l).unwrap();
            let e = &record["value"];
            assert_eq!(e["aggregate_id"], "pf-agent-1");
            (
                e["event_type"].as_str().unwrap().to_owned(),
                e["payload"]["request_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn requested_then_completed(ids: &[String]) -> Vec<(String, String)> {
    ids.iter()
        .flat_map(|id| {
            [
                ("portfolio_optimization_requested".to_owned(), id.clone()),
                ("portfolio_optimization_completed".to_owned(), id.clone()),
            ]
        })
        .collect()
}

#[test]
fn the_python_sdk_uses_the_tools_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let (mesh, checks) = prepare(dir.path());
    let data = dir.path().join("data");
    // The newest protocol, then the initialize handshake most clients speak;
    // each run starts `ultracore mcp` afresh on the same data directory, so
    // the first must have released the log when its client went away.
    let mut request_ids = Vec::new();
    for (mode, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let summary = client(
            &checks,
            mode,
            60,
            &["--data-dir", path(&data), "mcp", "--mesh", path(&mesh)],
        );
        assert_eq!(summary["protocol_version"], version, "{summary}");
        request_ids.push(summary["request_id"].as_str().unwrap().to_owned());
    }
    // The log holds each request and its answer, and nothing from the rejected calls.
    assert_eq!(
        esg_events(&["--data-dir", path(&data)], None),
        requested_then_completed(&request_ids)
    );
}

/// Stops the child process when dropped, so a failed assertion leaves no
/// service behind: Ctrl-C first, so it leaves its consumer group at once (a
/// member that just vanishes holds the group's next rebalance up until the
/// broker gives up on it), then a kill if it lingers.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// The service's consumer group takes the run's topic prefix, so it shares
// neither topics nor a group with other runs on the same broker.
#[test]
fn on_kafka_the_tools_submit_and_a_separate_service_answers() {
    let broker = std::env::var("ULTRACORE_TEST_KAFKA").expect(
        "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local broker",
    );
    let dir = tempfile::tempdir().unwrap();
    let (mesh, checks) = prepare(dir.path());
    let url = format!("kafka://{broker}");
    // Topics of their own, so runs against one broker never meet.
    let prefix = format!("mcp{}.", uuid::Uuid::now_v7().simple());
    let log = [
        "--log",
        url.as_str(),
        "--kafka-topic-prefix",
        prefix.as_str(),
    ];
    let _service = Running(
        Command::new(env!("CARGO_BIN_EXE_ultracore"))
            .args(log)
            .args(["service", "optimization", "--mesh", path(&mesh)])
            .env_remove("KAFKA_BOOTSTRAP_SERVERS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the optimization service"),
    );
    // The assistant's read models and keys stay in the test's directory.
    let data = dir.path().join("data");
    let mut args = log.to_vec();
    args.extend(["--data-dir", path(&data), "mcp", "--mesh", path(&mesh)]);
    let summary = client(&checks, "auto", 90, &args);
    let request_id = summary["request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        esg_events(&log, Some(2)),
        requested_then_completed(&[request_id])
    );
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
