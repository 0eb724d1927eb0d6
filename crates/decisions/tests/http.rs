//! `POST /api/v1/decisions` over real HTTP: a server on 127.0.0.1:0, a client
//! speaking to it through a socket.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use ultracore_decisions::{router, DecisionService, ServiceOptions};
use ultracore_events::trading::DECISIONS_TOPIC;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

async fn serve(service: Arc<DecisionService>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(service)).await {
            eprintln!("server stopped: {e}");
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decides_over_http_and_names_bad_fields() -> common::TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let service = DecisionService::start(
        common::engine(),
        log.clone(),
        &dir.path().join("spool"),
        ServiceOptions::default(),
    )
    .await?;
    let service = Arc::new(service);
    let addr = serve(service.clone()).await?;
    let url = format!("http://{addr}/api/v1/decisions");
    let client = reqwest::Client::new();

    let body = json!({
        "symbol": "AAPL",
        "features": common::bullish(),
        "price": 100.0,
        "portfolio": {"position_units": 0, "value": 1e7, "correlation_with_holdings": 0.1}
    });
    let answer = client.post(&url).json(&body).send().await?;
    assert_eq!(answer.status(), 200);
    let decision: Value = answer.json().await?;
    assert_eq!(decision["action"], "BUY");
    assert_eq!(decision["approved"], true);
    assert_eq!(decision["symbol"], "AAPL");
    assert!(decision["quantity"].as_f64().unwrap_or_default() > 0.0);
    assert_eq!(decision["risk_checks"].as_array().map(Vec::len), Some(3));
    let id = decision["decision_id"].as_str().ok_or("no decision_id")?;
    assert_eq!(uuid::Uuid::parse_str(id)?.get_version_num(), 7);

    // The same decision is on the log.
    let published = common::read_envelopes(&log, DECISIONS_TOPIC, 1, Duration::from_secs(10)).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].event_id.to_string(), id);
    assert_eq!(published[0].payload["quantity"], decision["quantity"]);
    // With the time it took to decide, the same in the answer and the event.
    assert!(decision["latency_us"].is_u64(), "{decision}");
    assert_eq!(published[0].payload["latency_us"], decision["latency_us"]);

    // Not JSON: 400.
    let answer = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"symbol\": ")
        .send()
        .await?;
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let error: Value = answer.json().await?;
    assert!(
        error["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not JSON"),
        "{error}"
    );

    // Invalid: 422 naming the field and why.
    for (body, field) in [
        (json!({"features": {"rsi_14": 50}}), "symbol"),
        (
            json!({"symbol": "AAPL", "features": {"rsi_14": "high"}}),
            "features.rsi_14",
        ),
        (
            json!({"symbol": "AAPL", "features": {"rsi14": 50}}),
            "features.rsi14",
        ),
        (
            json!({"symbol": "AAPL", "features": {"rsi_14": 50}, "price": 0}),
            "price",
        ),
        (
            json!({"symbol": "AAPL", "features": {"rsi_14": 50}, "portfolio": {"value": "big"}}),
            "portfolio.value",
        ),
        (json!([1, 2]), "(body)"),
    ] {
        let answer = client.post(&url).json(&body).send().await?;
        assert_eq!(answer.status(), 422, "{body}");
        let error: Value = answer.json().await?;
        assert_eq!(error["field"], field, "{error}");
        assert_eq!(error["status"], 422, "{error}");
        assert!(
            !error["detail"].as_str().unwrap_or_default().is_empty(),
            "{error}"
        );
    }

    // Other methods are not served.
    let answer = client.get(&url).send().await?;
    assert_eq!(answer.status(), 405);
    Ok(())
}
