//! `ultracore serve` on an embedded log: decisions posted over HTTP show in
//! the one `/metrics`, beside the forensics and emitter families, each
//! family declared once and every line valid Prometheus text.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../decisions/tests/prometheus/mod.rs"]
mod prometheus;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Stops the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 exchange; the status and the body.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this client reads whole bodies only"
    );
    Some((status, body.to_owned()))
}

#[test]
fn serve_metrics_count_decisions_beside_forensics() -> TestResult {
    let data = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_ultracore"))
            .args(["--data-dir", data.path().to_str().ok_or("path")?])
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            // The shipped models and sample data are found from the repository root.
            .current_dir(&root)
            .env_remove("KAFKA_BOOTSTRAP_SERVERS")
            .env_remove("EVENT_STORE_TYPE")
            .env_remove("ULTRACORE_LOG")
            .env_remove("ULTRACORE_DATA_DIR")
            .env_remove("ULTRACORE_MODELS_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !matches!(http(port, "GET", "/metrics", ""), Some((200, _))) {
        assert!(Instant::now() < deadline, "serve did not answer /metrics");
        std::thread::sleep(Duration::from_millis(200));
    }

    let bullish = r#""return_20d": 8, "sma_50_200_ratio": 1.05, "vix_level": 12, "volatility_20d": 11, "macd": 1.5, "sentiment_score": 0.9"#;
    let bearish = r#""return_20d": -9, "sma_50_200_ratio": 0.94, "vix_level": 38, "volatility_20d": 40, "macd": -1.5, "sentiment_score": -0.9"#;
    let mut actions = BTreeMap::<String, u32>::new();
    for (symbol, features) in [("AAPL", bullish), ("AAPL", bearish), ("MSFT", bullish)] {
        let body = format!(
            r#"{{"symbol": "{symbol}", "features": {{{features}}}, "price": 100,
                "portfolio": {{"position_units": 100, "value": 10000000, "correlation_with_holdings": 0.2}}}}"#
        );
        let (status, answer) = http(port, "POST", "/api/v1/decisions", &body).ok_or("no answer")?;
        assert_eq!(status, 200, "{answer}");
        let decision: serde_json::Value = serde_json::from_str(&answer)?;
        let action = decision["action"].as_str().ok_or("no action")?;
        *actions.entry(action.to_owned()).or_default() += 1;
    }

    let (status, text) = http(port, "GET", "/metrics", "").ok_or("no answer")?;
    assert_eq!(status, 200);
    let samples = prometheus::parse(&text)?;
    for action in ["BUY", "SELL", "HOLD"] {
        let series = format!("ultracore_decisions_total{{action=\"{action}\"}}");
        assert_eq!(
            samples.get(&series).copied(),
            Some(f64::from(actions.get(action).copied().unwrap_or(0))),
            "{series} in\n{text}"
        );
    }
    assert_eq!(
        samples.get("ultracore_decisions_decide_seconds_count"),
        Some(&3.0)
    );
    assert_eq!(
        samples.get("ultracore_decisions_regime_changes_total"),
        Some(&1.0)
    );
    for family in [
        "ultracore_forensics_decisions_explained_total",
        "ultracore_spool_breaker_state",
        "ultracore_decisions_regime_history_seconds",
    ] {
        assert!(samples.contains_key(family), "{family} in\n{text}");
    }
    Ok(())
}
