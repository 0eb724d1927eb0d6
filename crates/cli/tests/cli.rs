//! The `ultracore` binary as a user runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn ultracore(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args(args)
        .env("ULTRACORE_DATA_DIR", dir)
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

#[test]
fn demo_runs_the_optimization_flow_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(ultracore(dir.path(), &["demo", "--json"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let completed: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(completed["event_type"], "portfolio_optimization_completed");
    assert_eq!(completed["aggregate_id"], "pf-demo");
    let payload = &completed["payload"];
    let total: f64 = payload["weights"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-6, "weights sum to {total}");
    assert!(payload["after"]["esg_score"].as_f64().unwrap() >= 60.0 - 1e-6);
    assert_eq!(payload["esg_data_synthetic"], true);

    // The human form prints the result, the staged orders and the events, and
    // a second run adds to the same portfolio's history.
    let text = ok(ultracore(dir.path(), &["demo"]));
    for needle in [
        "Before and after:",
        "Orders staged by the execution service",
        "Notification: Portfolio pf-demo optimized",
        "trade_orders_staged",
        "orders_staged",
        "SYNTHETIC",
        // The optimizations data product, refreshed by the request's events,
        // with the lineage the services recorded.
        "Data product 'optimizations' is at version",
        "last_event        portfolio_optimization_completed",
        "written by optimization; read by",
        "reporting-service",
    ] {
        assert!(text.contains(needle), "no '{needle}' in:\n{text}");
    }
    let topics: Value =
        serde_json::from_str(&ok(ultracore(dir.path(), &["events", "topics", "--json"]))).unwrap();
    let count = |name: &str| {
        topics
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["topic"] == name)
            .map(|t| t["records"].as_u64().unwrap())
    };
    assert_eq!(count("esg-portfolio-events"), Some(4), "{topics}");
    assert_eq!(count("es.Portfolio"), Some(6), "{topics}");
    let replay: Value = serde_json::from_str(&ok(ultracore(
        dir.path(),
        &[
            "events",
            "replay",
            "--aggregate",
            "Portfolio/pf-demo",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(replay["version"], 6, "{replay}");
}

#[test]
fn produce_wraps_lines_and_reports_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args([
            "events",
            "produce",
            "misc",
            "--key",
            "k1",
            "--event-type",
            "thing_happened",
        ])
        .env("ULTRACORE_DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"a\":1}\nnot json\n{\"b\":2}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "a skipped line must fail the command"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    let tail = ok(ultracore(
        dir.path(),
        &[
            "events",
            "tail",
            "misc",
            "--from-beginning",
            "--no-follow",
            "--json",
        ],
    ));
    let records: Vec<Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        2,
        "the good lines before and after the bad one are kept"
    );
    assert_eq!(records[0]["value"]["event_type"], "thing_happened");
    assert_eq!(records[1]["value"]["payload"]["b"], 2);
}

#[test]
fn unreachable_kafka_is_an_error_not_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let out = ultracore(
        dir.path(),
        &["--log", "kafka://127.0.0.1:1", "events", "topics"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Kafka at 127.0.0.1:1"));
    assert!(
        !dir.path().join("topics").exists(),
        "nothing may be written to the embedded log"
    );
}

#[test]
fn optimize_and_risk_print_json() {
    let dir = tempfile::tempdir().unwrap();
    let prices = sample("factor_etf_prices.csv");
    let p: Value = serde_json::from_str(&ok(ultracore(
        dir.path(),
        &[
            "optimize",
            "--prices",
            &prices,
            "--objective",
            "min-volatility",
            "--weight-bounds",
            "0,0.3",
            "--json",
        ],
    )))
    .unwrap();
    assert!(
        p["weights"]
            .as_object()
            .unwrap()
            .values()
            .all(|w| w.as_f64().unwrap() <= 0.3 + 1e-6),
        "{p}"
    );
    let total: f64 = p["weights"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-6, "weights sum to {total}");
    assert!(p["volatility"].as_f64().unwrap() > 0.05);
    let out = ultracore(
        dir.path(),
        &[
            "optimize",
            "--prices",
            &prices,
            "--objective",
            "efficient-risk",
            "--target-volatility",
            "0.01",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("minimum achievable"));
    let r: Value = serde_json::from_str(&ok(ultracore(
        dir.path(),
        &["risk", "--prices", &prices, "--benchmark", "USMV", "--json"],
    )))
    .unwrap();
    for key in [
        "cagr",
        "mean_return",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "var_95",
        "cvar_95",
        "beta",
    ] {
        assert!(r["QUAL"][key].is_number(), "{key} missing: {}", r["QUAL"]);
    }
    assert!((r["USMV"]["beta"].as_f64().unwrap() - 1.0).abs() < 1e-12);
}

fn tail_json(dir: &std::path::Path, topic: &str) -> Vec<Value> {
    ok(ultracore(
        dir,
        &[
            "events",
            "tail",
            topic,
            "--from-beginning",
            "--no-follow",
            "--json",
        ],
    ))
    .lines()
    .map(|l| serde_json::from_str::<Value>(l).unwrap()["value"].clone())
    .collect()
}

#[test]
fn analytics_publish_their_events_when_a_log_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let prices = sample("factor_etf_prices.csv");
    let p: Value = serde_json::from_str(&ok(ultracore(
        dir.path(),
        &[
            "optimize",
            "--prices",
            &prices,
            "--objective",
            "max-sharpe",
            "--lookback-years",
            "3",
            "--json",
        ],
    )))
    .unwrap();
    ok(ultracore(
        dir.path(),
        &["risk", "--prices", &prices, "--tickers", "MTUM,QUAL"],
    ));

    let results = tail_json(dir.path(), "portfolio-events");
    let queries = tail_json(dir.path(), "query-events");
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(queries.len(), 2, "{queries:?}");
    let optimized = results
        .iter()
        .find(|e| e["event_type"] == "portfolio_optimized")
        .expect("a portfolio_optimized event");
    assert_eq!(optimized["payload"]["objective"], "max_sharpe");
    assert_eq!(optimized["payload"]["weights"], p["weights"]);
    assert_eq!(optimized["payload"]["sharpe"], p["sharpe"]);
    // The result names the query it was computed from, in the same correlation.
    let query = queries
        .iter()
        .find(|q| q["event_id"] == optimized["causation_id"])
        .expect("the causing price_data_queried event");
    assert_eq!(query["event_type"], "price_data_queried");
    assert_eq!(query["correlation_id"], optimized["correlation_id"]);
    assert_eq!(query["payload"]["lookback_years"], 3.0);

    let risk = results
        .iter()
        .find(|e| e["event_type"] == "risk_metrics_calculated")
        .expect("a risk_metrics_calculated event");
    let metrics = risk["payload"]["metrics"].as_object().unwrap();
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        ["MTUM", "QUAL"],
        "{risk}"
    );
    assert!(metrics["QUAL"]["cvar_95"].is_number());
}

#[test]
fn analytics_without_a_configured_log_write_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args([
            "risk",
            "--prices",
            &sample("factor_etf_prices.csv"),
            "--json",
        ])
        .current_dir(cwd.path())
        .env_remove("ULTRACORE_DATA_DIR")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("ULTRACORE_LOG")
        .output()
        .unwrap();
    ok(out);
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

/// `esg submit --wait` against the optimization service, both on the test
/// broker (the embedded log has one writer process, so this flow runs
/// across processes on Kafka).
#[test]
fn esg_request_is_answered_by_the_service_over_kafka() {
    let broker = std::env::var("ULTRACORE_TEST_KAFKA").expect(
        "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local broker",
    );
    let dir = tempfile::tempdir().unwrap();
    let mesh = dir.path().join("mesh");
    ok(ultracore(
        dir.path(),
        &[
            "mesh",
            "build",
            "--prices",
            &sample("sp500_prices.csv"),
            "--out",
            mesh.to_str().unwrap(),
        ],
    ));
    let prefix = format!("cli{:08x}.", rand_suffix());
    let kafka = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
        c.args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", &broker)
            .env("KAFKA_TOPIC_PREFIX", &prefix)
            .env_remove("ULTRACORE_DATA_DIR")
            .env_remove("EVENT_STORE_TYPE")
            .env_remove("ULTRACORE_LOG");
        c
    };
    let mut service = kafka(&["service", "optimization", "--mesh", mesh.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let request = dir.path().join("req.json");
    std::fs::write(
        &request,
        r#"{"portfolio_id": "pf-cli",
            "portfolio": {"holdings": [{"ticker": "XOM", "units": 100}, {"ticker": "KO", "units": 100}], "cash": 1000},
            "objective": {"kind": "min_volatility"},
            "constraints": {"min_esg_score": 55}}"#,
    )
    .unwrap();
    let out = kafka(&["esg", "submit", request.to_str().unwrap(), "--wait", "60"])
        .output()
        .unwrap();
    let _ = service.kill();
    let _ = service.wait();
    let answer: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(answer["event_type"], "portfolio_optimization_completed");
    assert_eq!(answer["aggregate_id"], "pf-cli");
    let p = &answer["payload"];
    assert!(p["after"]["esg_score"].as_f64().unwrap() >= 55.0 - 1e-6);
    let total: f64 = p["weights"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-6);
    assert!(!p["trades"].as_array().unwrap().is_empty());
}

fn rand_suffix() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ std::process::id()
}

#[test]
fn bench_auth_times_both_routes_through_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(ultracore(
        dir.path(),
        &["bench", "auth", "--requests", "300", "--json"],
    ));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["requests_per_route"], 300);
    for route in ["open", "authenticated"] {
        let p99 = v[route]["p99_us"].as_f64().unwrap();
        assert!(p99 > 0.0 && p99.is_finite(), "{route}: {v}");
    }
    assert!(v["added_p99_us"].as_f64().unwrap().is_finite(), "{v}");
}

#[test]
fn bench_takes_a_seed_for_its_synthetic_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let prices = sample("sp500_prices.csv");
    let run = |seed: &str| {
        let out = ok(ultracore(
            dir.path(),
            &[
                "bench",
                "--seed",
                seed,
                "optimize",
                "--runs",
                "1",
                "--assets",
                "30",
                "--frontier-points",
                "5",
                "--prices",
                &prices,
                "--json",
            ],
        ));
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        v["cases"].as_array().unwrap().clone()
    };
    let cases = run("7");
    // 20 real and 30 synthetic assets: three estimators, max Sharpe,
    // efficient risk and the frontier each.
    assert_eq!(cases.len(), 12, "{cases:?}");
    assert!(cases
        .iter()
        .any(|c| c["case"] == "frontier" && c["assets"] == 30 && c["iterations"] == 5));
    let bad = ultracore(dir.path(), &["bench", "--seed", "x", "optimize"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--seed"));
}
