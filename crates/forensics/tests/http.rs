//! The HTTP routes over real HTTP on 127.0.0.1:0: 200 with the stored
//! explanation, 404 for unknown ids, 400 for malformed ids, and /metrics
//! exporting every metric the shipped alert rules name.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{config, decision, decision_id, record, start, TestResult};
use serde_json::Value;
use ultracore_events::trading::DECISIONS_TOPIC;
use ultracore_forensics::{router, ApiState, ForensicsStore};
use ultracore_log::{EventLog, EventLogExt, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_spool::{EmitterOptions, SpooledEmitter};

/// Metric names in the `expr` of every rule of the shipped alert file.
fn metrics_in_alert_rules() -> TestResult<BTreeSet<String>> {
    let path = common::root().join("deploy/prometheus/forensics-alerts.yml");
    let text = std::fs::read_to_string(&path)?;
    let mut names = BTreeSet::new();
    let mut exprs = 0;
    for line in text.lines() {
        let Some(expr) = line.trim().strip_prefix("expr:") else {
            continue;
        };
        exprs += 1;
        let mut rest = expr;
        while let Some(at) = rest.find("ultracore_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    assert_eq!(exprs, 4, "lag, backlog, producer failures, breaker open");
    Ok(names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explanations_errors_and_metrics_over_http() -> TestResult {
    let logdir = tempfile::tempdir()?;
    let spooldir = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default())?;
    log.ensure_topic(&TopicSpec::new(DECISIONS_TOPIC, 3))
        .await?;
    let now = Utc::now();
    log.append(
        DECISIONS_TOPIC,
        (0..100).map(|i| record(&decision(i, now))).collect(),
    )
    .await?;
    // Five more through the decision emitter, whose statistics /metrics shows.
    let emitter = Arc::new(
        SpooledEmitter::start(
            log.clone(),
            EmbeddedLog::open(spooldir.path(), EmbeddedOptions::default())?,
            EmitterOptions::default(),
        )
        .await?,
    );
    for i in 100..105 {
        emitter.emit(DECISIONS_TOPIC, record(&decision(i, now)))?;
    }

    let db = data.path().join(ForensicsStore::FILE_NAME);
    let running = start(log.clone(), config(&db))?;
    running.wait_rows(105, Duration::from_secs(60)).await?;
    let source = emitter.clone();
    let state = ApiState::new(running.reader.clone(), running.metrics.clone())
        .with_emitter(Arc::new(move || source.stats()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
    let http = reqwest::Client::new();

    // 200: the stored explanation.
    let id = decision_id(42);
    let res = http
        .get(format!("{base}/api/v1/forensics/{id}"))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await?;
    assert_eq!(body["decision_id"], id.to_string());
    assert_eq!(body["decision"]["decision_id"], id.to_string());
    assert_eq!(body["source"]["topic"], DECISIONS_TOPIC);
    let d = decision(42, now);
    assert_eq!(body["symbol"], d.symbol);
    assert_eq!(body["action"], d.action.as_str());
    assert!(body["explanation"]
        .as_str()
        .unwrap_or_default()
        .starts_with(d.action.as_str()));
    let specialists = body["specialists"].as_array().expect("specialists");
    assert_eq!(
        specialists
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["bull", "bear", "sideways"]
    );
    // The JSON carries the numbers bit for bit: the ensemble adds up to its
    // margin, which is the weighted sum of the specialists' margins.
    let sum = |part: &Value| -> f64 {
        part["expected_value"].as_f64().unwrap_or(f64::NAN)
            + part["shap"]
                .as_object()
                .expect("shap map")
                .values()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .sum::<f64>()
    };
    let ensemble = &body["ensemble"];
    assert!((sum(ensemble) - ensemble["margin"].as_f64().unwrap_or(f64::NAN)).abs() < 1e-9);
    let weighted: f64 = specialists
        .iter()
        .map(|s| {
            s["weight"].as_f64().unwrap_or(f64::NAN) * s["margin"].as_f64().unwrap_or(f64::NAN)
        })
        .sum();
    assert!((weighted - ensemble["margin"].as_f64().unwrap_or(f64::NAN)).abs() < 1e-9);
    for s in specialists {
        assert!((sum(s) - s["margin"].as_f64().unwrap_or(f64::NAN)).abs() < 1e-9);
        assert_eq!(s["shap"].as_object().map(|m| m.len()), Some(20));
    }
    assert!(!ensemble["top_up"].as_array().expect("top_up").is_empty());
    // A decision that came through the emitter is there too.
    let res = http
        .get(format!("{base}/api/v1/forensics/{}", decision_id(104)))
        .send()
        .await?;
    assert_eq!(res.status(), 200);

    // 404: a well-formed id nobody decided.
    let unknown = uuid::Uuid::now_v7();
    let res = http
        .get(format!("{base}/api/v1/forensics/{unknown}"))
        .send()
        .await?;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await?;
    assert!(body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains(&format!("no explanation is stored for decision {unknown}")));

    // 400: malformed ids, with what a valid one looks like.
    for bad in [
        "42",
        "not-a-uuid",
        "0190f7a2-0000-7000-8000-00000000000g",
        "%27%20OR%201%3D1--",
    ] {
        let res = http
            .get(format!("{base}/api/v1/forensics/{bad}"))
            .send()
            .await?;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await?;
        let message = body["detail"].as_str().unwrap_or_default();
        assert!(
            message.contains("a decision id is a UUID, e.g. 0190f7a2-0000-7000-8000-000000000001"),
            "{message}"
        );
    }

    // /metrics: Prometheus text with every metric the alert rules use.
    tokio::time::sleep(Duration::from_millis(300)).await; // one lag sample at least
    let res = http.get(format!("{base}/metrics")).send().await?;
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.text().await?;
    let exported: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let wanted = metrics_in_alert_rules()?;
    assert!(wanted.len() >= 4, "{wanted:?}");
    for name in &wanted {
        assert!(
            exported.contains(name.as_str()),
            "{name} is alerted on but not exported:\n{text}"
        );
    }
    for name in [
        "ultracore_forensics_consumer_lag_records",
        "ultracore_forensics_explain_seconds_bucket",
        "ultracore_forensics_explain_seconds_count",
        "ultracore_forensics_store_rows",
        "ultracore_spool_breaker_state",
    ] {
        assert!(exported.contains(name), "{name} missing:\n{text}");
    }
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(f64::NAN)
    };
    assert_eq!(value("ultracore_forensics_store_rows "), 105.0);
    assert_eq!(value("ultracore_forensics_rows_stored_total "), 105.0);
    assert_eq!(value("ultracore_forensics_explain_seconds_count "), 105.0);
    assert_eq!(value("ultracore_spool_breaker_open "), 0.0);
    assert_eq!(value("ultracore_forensics_backlog_records "), 0.0);

    server.abort();
    running.stop().await?;
    Ok(())
}
