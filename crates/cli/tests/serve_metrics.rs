//! `ultracore serve` on an embedded log: decisions posted over HTTP show in
//! the one `/metrics`, beside the forensics and emitter families, each
//! family declared once and every line valid Prometheus text.

use std::collections::BTreeMap;

#[path = "../../decisions/tests/prometheus/mod.rs"]
mod prometheus;

mod common;

use common::{Serve, TestResult};

#[test]
fn serve_metrics_count_decisions_beside_forensics() -> TestResult {
    let server = Serve::start(&[])?;
    let http = |method: &str, path: &str, body: &str| server.http(method, path, body);

    let bullish = r#""return_20d": 8, "sma_50_200_ratio": 1.05, "vix_level": 12, "volatility_20d": 11, "macd": 1.5, "sentiment_score": 0.9"#;
    let bearish = r#""return_20d": -9, "sma_50_200_ratio": 0.94, "vix_level": 38, "volatility_20d": 40, "macd": -1.5, "sentiment_score": -0.9"#;
    let mut actions = BTreeMap::<String, u32>::new();
    for (symbol, features) in [("AAPL", bullish), ("AAPL", bearish), ("MSFT", bullish)] {
        let body = format!(
            r#"{{"symbol": "{symbol}", "features": {{{features}}}, "price": 100,
                "portfolio": {{"position_units": 100, "value": 10000000, "correlation_with_holdings": 0.2}}}}"#
        );
        let (status, answer) = http("POST", "/api/v1/decisions", &body).ok_or("no answer")?;
        assert_eq!(status, 200, "{answer}");
        let decision: serde_json::Value = serde_json::from_str(&answer)?;
        let action = decision["action"].as_str().ok_or("no action")?;
        *actions.entry(action.to_owned()).or_default() += 1;
    }

    let (status, text) = http("GET", "/metrics", "").ok_or("no answer")?;
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
