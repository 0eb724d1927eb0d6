//! The whole flow in one process, on the embedded log and on the test
//! broker: a request is optimized, recorded on the Portfolio aggregate,
//! reported, its orders staged and a notification stored and pushed; a
//! failure is reported and notified; a duplicate completion changes
//! nothing; a malformed record goes to the DLQ and the rest goes on. On the
//! embedded log, the read models run on SQLite and on PostgreSQL.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Backend, TestResult};
use serde_json::json;
use ultracore_es::{Aggregate, Cut, Database};
use ultracore_esg::{EsgPortfolioEvent, OptimizationRequest, TOPIC};
use ultracore_flow::{await_answer, submit, Flow, FlowOptions, Portfolio, RequestStatus};
use ultracore_log::{dlq_topic, Envelope, EventLog, EventLogExt, NewRecord, Record};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_log_kafka::{KafkaConfig, KafkaLog};
use ultracore_marketdata::mesh::{build_products, DataMesh};
use ultracore_marketdata::read_prices_file;
use uuid::Uuid;

fn mesh(dir: &Path) -> DataMesh {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
    let series = read_prices_file(&root.join("sp500_prices.csv"), None).unwrap();
    build_products(&series, dir).unwrap();
    DataMesh::open(dir).unwrap()
}

fn request(portfolio: &str, min_esg: f64) -> OptimizationRequest {
    serde_json::from_value(json!({
        "request_id": Uuid::now_v7(),
        "portfolio_id": portfolio,
        "portfolio": {"holdings": [{"ticker": "XOM", "units": 300}, {"ticker": "KO", "units": 400}], "cash": 20000.0},
        "objective": {"kind": "max_sharpe"},
        "constraints": {"min_esg_score": min_esg, "weight_bounds": [0.0, 0.4]},
        "universe": ["MSFT", "JNJ", "PG", "WMT", "AAPL"]
    }))
    .unwrap()
}

/// Polls `check` until it returns `Some` or 60 s pass.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn records<L: EventLog>(log: &L, topic: &str) -> Vec<Record> {
    ultracore_log::testing::all_records(log, topic).await
}

async fn happy_path_and_failures<L: EventLog>(log: L, db: Database, mesh_dir: &Path) {
    let flow = Flow::start(log.clone(), db, FlowOptions::all(mesh(mesh_dir)))
        .await
        .unwrap();
    let mut live = flow.subscribe();
    let pid = format!("pf-{}", Uuid::now_v7().simple());

    let good = request(&pid, 55.0);
    let bad = request(&pid, 99.0);
    let ack = submit(&log, good.clone()).await.unwrap();
    log.append_one(TOPIC, NewRecord::new(pid.as_str(), "{not an envelope"))
        .await
        .unwrap();
    submit(&log, bad.clone()).await.unwrap();

    let completed = await_answer(
        &log,
        good.request_id,
        ack.timestamp,
        Duration::from_secs(60),
    )
    .await
    .unwrap()
    .expect("a completion");
    let EsgPortfolioEvent::Completed(result) = &completed.payload else {
        panic!("expected a completion, got {:?}", completed.payload);
    };
    assert!(!result.trades.is_empty());
    let failed = await_answer(&log, bad.request_id, ack.timestamp, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a failure");
    let EsgPortfolioEvent::Failed(failure) = &failed.payload else {
        panic!("expected a failure, got {:?}", failed.payload);
    };
    assert_eq!(failure.field.as_deref(), Some("constraints.min_esg_score"));

    // Reporting: both requests, with the full result and the failure.
    let reports = flow.reports();
    let view = eventually("the completion in the reporting read model", || {
        reports
            .optimization(good.request_id)
            .unwrap()
            .filter(|v| v.status == "completed" && v.orders_staged > 0)
    })
    .await;
    assert_eq!(
        view.result.as_ref().unwrap()["weights"],
        json!(result.weights)
    );
    assert!(view.latency_ms.is_some());
    let failed_view = eventually("the failure in the reporting read model", || {
        reports
            .optimization(bad.request_id)
            .unwrap()
            .filter(|v| v.status == "failed")
    })
    .await;
    assert_eq!(
        failed_view.failure.unwrap()["field"],
        "constraints.min_esg_score"
    );

    // Execution: whole units, at least the minimum size, as many as staged.
    let orders = eventually("staged orders", || {
        let o = flow.orders().of(&pid).unwrap();
        (o.len() == view.orders_staged).then_some(o)
    })
    .await;
    for o in &orders {
        assert!(o.units >= 1 && o.notional >= 100.0, "{o:?}");
        let trade = result.trades.iter().find(|t| t.ticker == o.ticker).unwrap();
        assert!(
            o.units as f64 <= trade.units.abs() + 1e-6,
            "{o:?} exceeds {trade:?}"
        );
        assert_eq!(o.status, "staged");
    }

    // Notification: one per answer, pushed live.
    let mut pushed = Vec::new();
    while pushed.len() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(60), live.recv())
            .await
            .expect("a live notification")
            .unwrap();
        pushed.push(n.request_id);
    }
    assert!(pushed.contains(&good.request_id.to_string()));
    assert!(pushed.contains(&bad.request_id.to_string()));

    // The aggregate: its state and its history, and the state as of the request.
    let loaded = flow.store().load::<Portfolio>(&pid).await.unwrap();
    let state = &loaded.state.requests[&good.request_id.to_string()];
    assert_eq!(state.status, RequestStatus::Completed);
    assert!(state.orders_staged);
    assert_eq!(
        loaded.state.requests[&bad.request_id.to_string()].status,
        RequestStatus::Failed
    );
    assert_eq!(loaded.state.completed, 1);
    assert_eq!(loaded.state.failed, 1);
    let first = flow
        .store()
        .load_at::<Portfolio>(&pid, Cut::Version(1))
        .await
        .unwrap();
    assert_eq!(
        first.state.completed, 0,
        "version 1 is the first request alone"
    );

    // A duplicate completion (a request processed twice) changes nothing downstream.
    log.append_one(TOPIC, completed.to_record()).await.unwrap();
    let marker = request(&pid, 40.0);
    let marker_ack = submit(&log, marker.clone()).await.unwrap();
    await_answer(
        &log,
        marker.request_id,
        marker_ack.timestamp,
        Duration::from_secs(60),
    )
    .await
    .unwrap()
    .expect("the marker's answer");
    let notes = flow.notifications();
    eventually("the marker's notification", || {
        let n = notes.latest(Some(&pid), 100).unwrap();
        (n.len() == 3).then_some(())
    })
    .await;
    eventually("the marker in the aggregate", || {
        reports
            .optimization(marker.request_id)
            .unwrap()
            .filter(|v| v.status != "pending")
    })
    .await;
    let summary = reports.portfolio(&pid).unwrap().unwrap();
    assert_eq!(summary["completed"], 2, "{summary}");
    assert_eq!(summary["failed"], 1, "{summary}");
    let loaded = flow.store().load::<Portfolio>(&pid).await.unwrap();
    assert_eq!(loaded.state.completed, 2);
    let staged: Vec<_> = records(&log, ultracore_events::portfolio::TOPIC)
        .await
        .iter()
        .filter_map(|r| ultracore_log::RawEnvelope::from_bytes(&r.value).ok())
        .filter(|e| e.event_type == "trade_orders_staged" && e.aggregate_id == pid)
        .map(|e| e.payload["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        staged
            .iter()
            .filter(|r| **r == good.request_id.to_string())
            .count(),
        1,
        "orders staged once for the first request: {staged:?}"
    );

    // The malformed record is in the DLQ.
    let dlq = records(&log, &dlq_topic(TOPIC)).await;
    assert!(dlq.iter().any(|r| &r.value[..] == b"{not an envelope"));
    assert_eq!(Portfolio::TYPE, "Portfolio");
    let history = flow
        .store()
        .history::<Portfolio>(&pid, Cut::Latest)
        .await
        .unwrap();
    let types: Vec<_> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert!(
        types.contains(&"optimization_requested") && types.contains(&"orders_staged"),
        "{types:?}"
    );
    let _: Vec<Envelope<ultracore_flow::PortfolioEvent>> = history;
    flow.stop().await.unwrap();
}

async fn on_the_embedded_log(backend: Backend) -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    std::fs::create_dir_all(dir.path().join("db"))?;
    let db = backend.open(&dir.path().join("db"))?;
    happy_path_and_failures(log, db.db.clone(), &dir.path().join("mesh")).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_on_the_embedded_log() -> TestResult {
    on_the_embedded_log(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_on_the_embedded_log_with_postgresql() -> TestResult {
    on_the_embedded_log(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_on_kafka() -> TestResult {
    let broker = std::env::var("ULTRACORE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local \
             Kafka-protocol broker on 127.0.0.1:19092 and sets it"
        )
    });
    let prefix = format!("flow{:08x}.", rand_u32());
    // The test broker shares two cores with the whole suite.
    let log = KafkaLog::connect(
        KafkaConfig::new(broker)
            .with_prefix(prefix)
            .with_connect_timeout(std::time::Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir()?;
    let db = Backend::Sqlite.open(dir.path())?;
    happy_path_and_failures(log, db.db.clone(), &dir.path().join("mesh")).await;
    Ok(())
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}
