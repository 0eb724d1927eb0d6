//! A request id belongs to the portfolio that used it first. A client
//! writing to the log directly (a Kafka producer, not the API, which answers
//! 409) sends the same request id for portfolio `victim` and then for
//! `attacker`: the victim's request is answered and reported as its own, the
//! attacker's goes to the DLQ with the reason, and neither portfolio shows
//! the other's weights or objective.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use ultracore_esg::{EsgPortfolioEvent, OptimizationRequest, TOPIC};
use ultracore_flow::setup::open_mesh;
use ultracore_flow::{await_answer, submit, FlowOptions};
use ultracore_log::{dlq_topic, ConsumerOptions, EventLog, RawEnvelope};
use uuid::Uuid;

fn request(request_id: Uuid, portfolio: &str, objective: serde_json::Value) -> OptimizationRequest {
    serde_json::from_value(json!({
        "request_id": request_id,
        "portfolio_id": portfolio,
        "portfolio": {"holdings": [{"ticker": "XOM", "units": 300}, {"ticker": "KO", "units": 400}], "cash": 20000.0},
        "objective": objective,
        "constraints": {"weight_bounds": [0.0, 0.6]},
        "universe": ["MSFT", "JNJ", "PG", "WMT", "AAPL"]
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_request_id_is_dead_lettered_not_shared() {
    let (_dir, log, flow) =
        common::start(|dir| FlowOptions::all(open_mesh(&dir.join("mesh")).unwrap().0)).await;

    let id = Uuid::now_v7();
    let victim = request(id, "victim", json!({"kind": "max_sharpe"}));
    let attacker = request(id, "attacker", json!({"kind": "min_volatility"}));
    let ack = submit(&log, victim.clone()).await.unwrap();
    let answer = await_answer(&log, id, ack.timestamp, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the victim's answer");
    let EsgPortfolioEvent::Completed(result) = &answer.payload else {
        panic!("expected a completion, got {:?}", answer.payload);
    };
    assert_eq!(result.portfolio_id, "victim");
    submit(&log, attacker.clone()).await.unwrap();
    // A later request of the attacker's own, so we know when its records
    // were handled.
    let marker = request(Uuid::now_v7(), "attacker", json!({"kind": "max_sharpe"}));
    submit(&log, marker.clone()).await.unwrap();
    await_answer(
        &log,
        marker.request_id,
        ack.timestamp,
        Duration::from_secs(60),
    )
    .await
    .unwrap()
    .expect("the marker's answer");

    // The reused id is in the DLQ with a reason that says what to do.
    let dlq = dlq_topic(TOPIC);
    let mut consumer = log
        .consumer(ConsumerOptions::new(
            format!("check-{}", Uuid::now_v7()),
            [dlq.as_str()],
        ))
        .await
        .unwrap();
    let dead = ultracore_log::testing::drain(&mut consumer, 1).await;
    let envelope = RawEnvelope::from_bytes(&dead[0].value).unwrap();
    assert_eq!(envelope.aggregate_id, "attacker");
    let reason = dead[0]
        .headers
        .iter()
        .find(|h| h.key == "dlq.reason")
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .expect("a dlq.reason header");
    assert!(
        reason.contains("already belongs to a request of portfolio victim")
            && reason.contains("fresh request id"),
        "{reason}"
    );

    // Reporting: the victim's view is the victim's; the attacker's summary
    // has only its own request, answered.
    let reports = flow.reports();
    let deadline = Instant::now() + Duration::from_secs(60);
    let view = loop {
        let marker_done = reports
            .optimization(marker.request_id)
            .unwrap()
            .is_some_and(|v| v.status == "completed");
        match reports.optimization(id).unwrap() {
            Some(v) if v.status == "completed" && marker_done => break v,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the reports did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view.portfolio_id, "victim");
    assert_eq!(view.objective.as_ref().unwrap()["kind"], "max_sharpe");
    assert!(view.latency_ms.is_none_or(|ms| ms >= 0), "{view:?}");
    assert_eq!(
        view.result.as_ref().unwrap()["weights"],
        json!(result.weights)
    );
    let summary = reports.portfolio("attacker").unwrap().unwrap();
    assert_eq!(
        summary["weights_from_request_id"],
        json!(marker.request_id.to_string()),
        "{summary}"
    );
    assert_eq!(summary["completed"], 1, "{summary}");
    let victim = reports.portfolio("victim").unwrap().unwrap();
    assert_eq!(
        victim["weights_from_request_id"],
        json!(id.to_string()),
        "{victim}"
    );
    assert_eq!(victim["weights"], json!(result.weights), "{victim}");
    flow.stop().await.unwrap();
}
