//! The optimization service on the embedded log: answers, failures,
//! dead letters, client retries and reprocessing after a crash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use ultracore_esg::{
    completion_event_id, ensure_topic, request_envelope, EsgPortfolioEvent, OptimizationRequest,
    OptimizationService, TOPIC,
};
use ultracore_log::{
    dlq_topic, Consumer, ConsumerOptions, Envelope, EventLog, EventLogExt, NewRecord,
};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_marketdata::mesh::{build_products, DataMesh};
use ultracore_marketdata::read_prices_file;
use ultracore_runtime::Handler;
use uuid::Uuid;

fn mesh(dir: &std::path::Path) -> DataMesh {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
    let series = read_prices_file(&root.join("sp500_prices.csv"), None).unwrap();
    build_products(&series, dir).unwrap();
    DataMesh::open(dir).unwrap()
}

fn request(id: u128, portfolio: &str, min_esg: f64) -> OptimizationRequest {
    serde_json::from_value(json!({
        "request_id": Uuid::from_u128(id),
        "portfolio_id": portfolio,
        "portfolio": {"holdings": [{"ticker": "XOM", "units": 100}, {"ticker": "KO", "units": 100}], "cash": 5000.0},
        "objective": {"kind": "min_volatility"},
        "constraints": {"min_esg_score": min_esg},
        "universe": ["MSFT", "JNJ", "PG", "WMT"]
    }))
    .unwrap()
}

async fn all(log: &EmbeddedLog, topic: &str) -> Vec<ultracore_log::Record> {
    ultracore_log::testing::all_records(log, topic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_once_and_bad_records_dead_lettered() {
    let data = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default()).unwrap();
    ensure_topic(&log).await.unwrap();
    let good = request(1, "pf-a", 55.0);
    let infeasible = request(2, "pf-b", 99.0);
    let first = request_envelope(good.clone());
    log.append(
        TOPIC,
        vec![
            first.to_record(),
            request_envelope(infeasible).to_record(),
            NewRecord::new("pf-c", "{not an envelope"),
        ],
    )
    .await
    .unwrap();

    let service = OptimizationService::new(log.clone(), mesh(data.path()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(service.run(async {
        stopped.await.ok();
    }));
    // Wait for the two answers, then retry the first request as a client would.
    let answers = |records: &[ultracore_log::Record]| {
        records
            .iter()
            .filter_map(|r| Envelope::<EsgPortfolioEvent>::from_record(r).ok())
            .filter(|e| !matches!(e.payload, EsgPortfolioEvent::Requested(_)))
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while answers(&all(&log, TOPIC).await).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log.append_one(TOPIC, request_envelope(good.clone()).to_record())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.send(()).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        (
            stats.completed,
            stats.failed,
            stats.dead_lettered,
            stats.duplicates_skipped
        ),
        (1, 1, 1, 1),
        "{stats:?}"
    );

    let answers = answers(&all(&log, TOPIC).await);
    assert_eq!(answers.len(), 2, "one answer per request id");
    let done = answers
        .iter()
        .find(|e| matches!(e.payload, EsgPortfolioEvent::Completed(_)))
        .unwrap();
    assert_eq!(done.event_id, completion_event_id(good.request_id));
    assert_eq!(done.causation_id, Some(first.event_id));
    assert_eq!(done.aggregate_id, "pf-a");
    let EsgPortfolioEvent::Failed(f) = &answers
        .iter()
        .find(|e| matches!(e.payload, EsgPortfolioEvent::Failed(_)))
        .unwrap()
        .payload
    else {
        unreachable!()
    };
    assert_eq!(f.field.as_deref(), Some("constraints.min_esg_score"));
    let dlq = all(&log, &dlq_topic(TOPIC)).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].value, b"{not an envelope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reprocessed_after_a_crash_yields_the_same_event() {
    let data = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default()).unwrap();
    ensure_topic(&log).await.unwrap();
    log.append_one(
        TOPIC,
        request_envelope(request(7, "pf-z", 50.0)).to_record(),
    )
    .await
    .unwrap();
    let mesh = mesh(data.path());
    // First instance: answers, then "crashes" before committing.
    let mut c = log
        .consumer(ConsumerOptions::new("optimization-service", [TOPIC]))
        .await
        .unwrap();
    let records = c.poll(10, Duration::from_secs(5)).await.unwrap();
    let mut first = OptimizationService::new(log.clone(), mesh.clone());
    first.handle(&records).await.unwrap();
    drop(c);
    // Second instance: the group redelivers the request; the answer repeats its id.
    let second = OptimizationService::new(log.clone(), mesh);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(second.run(async {
        stopped.await.ok();
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answers: Vec<_> = all(&log, TOPIC)
            .await
            .iter()
            .filter_map(|r| Envelope::<EsgPortfolioEvent>::from_record(r).ok())
            .filter(|e| matches!(e.payload, EsgPortfolioEvent::Completed(_)))
            .collect();
        if answers.len() == 2 {
            let ids: BTreeSet<Uuid> = answers.iter().map(|e| e.event_id).collect();
            assert_eq!(
                ids.len(),
                1,
                "a consumer deduplicating by event_id sees one result"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} answers",
            answers.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let lag: BTreeMap<u32, u64> = log
        .group_lag("optimization-service")
        .await
        .unwrap()
        .iter()
        .map(|l| (l.partition, l.lag()))
        .collect();
    assert!(lag.values().all(|l| *l == 0), "{lag:?}");
}

/// The replay check for the Epsilon Agent: the same request event,
/// handled by a fresh service (as after a crash or a replay of the log),
/// gives the same weights and the same decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epsilon_request_replayed_gives_the_same_weights() {
    let data = tempfile::tempdir().unwrap();
    let logdir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(logdir.path(), EmbeddedOptions::default()).unwrap();
    ensure_topic(&log).await.unwrap();
    let mut req = request(9, "pf-e", 55.0);
    req.objective = ultracore_portfolio::EsgObjective::Epsilon;
    req.universe = ["MSFT", "JNJ", "PG", "WMT", "HD", "PEP", "UNH", "LLY"]
        .map(String::from)
        .to_vec();
    log.append_one(TOPIC, request_envelope(req).to_record())
        .await
        .unwrap();
    let mesh = mesh(data.path());
    let mut c = log
        .consumer(ConsumerOptions::new("optimization-service", [TOPIC]))
        .await
        .unwrap();
    let records = c.poll(10, Duration::from_secs(5)).await.unwrap();
    for _ in 0..2 {
        let mut service = OptimizationService::new(log.clone(), mesh.clone());
        service.handle(&records).await.unwrap();
    }
    let answers: Vec<_> = all(&log, TOPIC)
        .await
        .iter()
        .filter_map(|r| Envelope::<EsgPortfolioEvent>::from_record(r).ok())
        .filter_map(|e| match e.payload {
            EsgPortfolioEvent::Completed(c) => Some(*c),
            EsgPortfolioEvent::Failed(f) => panic!("failed: {f:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 2);
    let agent = answers[0].agent.as_ref().expect("the agent's decision");
    assert_eq!(agent.agent_version.len(), 64);
    assert!(answers[0].after.esg_score >= 55.0 - 1e-6);
    assert_eq!(answers[0].weights, answers[1].weights);
    assert_eq!(answers[0].agent, answers[1].agent);
}
