//! Lineage against the real embedded log: what services under a
//! supervisor produce and consume is recorded without their declaring it,
//! dead letters included, and the `mesh.lineage` events fold back to the
//! same edges.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ultracore_log::{read_to_end, EventLog, NewRecord, RawEnvelope, ReadToEnd, Record, Seek};
use ultracore_log_embedded::EmbeddedLog;
use ultracore_runtime::lineage::{self, read_lineage};
use ultracore_runtime::{
    run_consumer, CancellationToken, ConsumerSpec, Edge, Handler, HandlerError, Lineage,
    Registration, Role, Subscription, Supervisor, SupervisorOptions,
};

mod common;

use common::{fast, open, TestResult};

/// Topics of the catalogue, so the runtime creates them its way.
const INPUT: &str = "query-events";
const OUTPUT: &str = "portfolio-events";

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> TestResult {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

type Key = (String, String, Role, Option<String>);

fn keys(edges: &[Edge]) -> BTreeSet<Key> {
    edges
        .iter()
        .map(|e| (e.service.clone(), e.topic.clone(), e.role, e.group.clone()))
        .collect()
}

fn key(service: &str, topic: &str, role: Role, group: Option<&str>) -> Key {
    (
        service.to_owned(),
        topic.to_owned(),
        role,
        group.map(str::to_owned),
    )
}

fn records_of(
    lineage: &Lineage,
    service: &str,
    topic: &str,
    role: Role,
    group: Option<&str>,
) -> u64 {
    lineage
        .get(service, topic, role, group)
        .map_or(0, |e| e.records)
}

/// Reads `mesh.lineage` until it folds to the edges `want` (it is
/// published as it is seen, so shortly after).
async fn folded_until(
    log: &EmbeddedLog,
    want: &BTreeSet<Key>,
) -> Result<Lineage, Box<dyn std::error::Error>> {
    let start = Instant::now();
    loop {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let read = read_lineage(log, deadline).await?;
        assert_eq!(read.unreadable, 0);
        if read.complete && keys(&read.lineage.edges()) == *want {
            return Ok(read.lineage);
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "mesh.lineage folds to {:?}, not {want:?}",
                keys(&read.lineage.edges())
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every record of `mesh.lineage`.
async fn lineage_records(log: &EmbeddedLog) -> Result<Vec<Record>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let read: ReadToEnd = read_to_end(
        log,
        "test",
        lineage::TOPIC,
        Seek::Beginning,
        deadline,
        Duration::from_millis(100),
        |r| out.push(r.clone()),
    )
    .await?;
    assert!(read.complete);
    Ok(out)
}

/// Copies each value of `query-events` to `portfolio-events`; rejects the
/// value "poison". Writes only once the whole batch is fine, so a value is
/// written once however the runtime splits a failed batch.
struct Enricher<L> {
    out: L,
    handled: Arc<AtomicU64>,
}

impl<L: EventLog> Handler for Enricher<L> {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        if batch.iter().any(|r| r.value == b"poison") {
            return Err(HandlerError::reject("poisoned"));
        }
        let out = batch
            .iter()
            .map(|r| NewRecord::new(r.key.clone().unwrap_or_default(), r.value.clone()))
            .collect();
        self.out.append(OUTPUT, out).await?;
        self.handled.fetch_add(batch.len() as u64, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_service_shows_what_it_reads_writes_and_dead_letters() -> TestResult {
    let (_dir, log) = open()?;
    ultracore_runtime::catalogue::ensure(&log, &[INPUT, OUTPUT]).await?;
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    let handled = Arc::new(AtomicU64::new(0));
    let spec = ConsumerSpec::new("enricher-group", Subscription::topics([INPUT])).config(fast());
    let (l, h) = (log.clone(), handled.clone());
    assert!(sup.add(Registration::consumer(
        "enricher",
        log.clone(),
        spec,
        move |ctx| {
            Ok(Enricher {
                out: ctx.traced(l.clone()),
                handled: h.clone(),
            })
        },
    )));
    assert!(sup.add(lineage::publisher(log.clone())));
    let live = sup.lineage();
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));

    // The test's own appends are not a service's: not recorded.
    log.append(
        INPUT,
        ["a", "b", "poison"]
            .iter()
            .map(|v| NewRecord::new("k", *v))
            .collect(),
    )
    .await?;
    wait_for("the poisoned record dead-lettered", || {
        records_of(&live, "enricher", "query-events.dlq", Role::Produces, None) == 1
    })
    .await?;
    wait_for("two records handled", || {
        handled.load(Ordering::SeqCst) == 2
    })
    .await?;

    let group = Some("enricher-group");
    let want: BTreeSet<Key> = [
        key("enricher", INPUT, Role::Consumes, group),
        key("enricher", "query-events.dlq", Role::Produces, None),
        key("enricher", OUTPUT, Role::Produces, None),
        key(lineage::PUBLISHER, lineage::TOPIC, Role::Produces, None),
    ]
    .into();
    wait_for("the publisher's own edge", || keys(&live.edges()) == want).await?;
    assert_eq!(
        records_of(&live, "enricher", INPUT, Role::Consumes, group),
        3
    );
    assert_eq!(
        records_of(&live, "enricher", OUTPUT, Role::Produces, None),
        2
    );
    let consumers = live.consumers_of(INPUT);
    assert_eq!(consumers.len(), 1);
    assert_eq!(consumers[0].group.as_deref(), group);
    assert_eq!(
        keys(&live.upstream_of("enricher")),
        [key("enricher", INPUT, Role::Consumes, group)].into()
    );
    assert_eq!(
        live.producers_of(OUTPUT)
            .iter()
            .map(|e| e.service.as_str())
            .collect::<Vec<_>>(),
        ["enricher"]
    );

    // The catalogue's side: the same edges, from the log alone.
    let folded = folded_until(&log, &want).await?;
    for edge in folded.edges() {
        let now = live
            .get(&edge.service, &edge.topic, edge.role, edge.group.as_deref())
            .ok_or("a folded edge the process does not know")?;
        assert_eq!(edge.first_seen_ms, now.first_seen_ms);
        assert!(edge.records <= now.records);
    }

    token.cancel();
    running.await??;
    Ok(())
}

/// Counts what it is given.
struct Count(Arc<AtomicU64>);

impl Handler for Count {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        self.0.fetch_add(batch.len() as u64, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_runs_its_own_loop_on_a_traced_log_is_counted_once() -> TestResult {
    let (_dir, log) = open()?;
    ultracore_runtime::catalogue::ensure(&log, &[INPUT]).await?;
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    let handled = Arc::new(AtomicU64::new(0));
    let (l, h) = (log.clone(), handled.clone());
    // As a service that also writes would: its log traced, then given to
    // the runtime's loop, which traces it again.
    sup.add(Registration::task("tasky", move |ctx| {
        let (log, h) = (ctx.traced(l.clone()), h.clone());
        async move {
            let spec =
                ConsumerSpec::new("tasky-group", Subscription::topics([INPUT])).config(fast());
            run_consumer(&log, &spec, &mut Count(h), &ctx).await
        }
    }));
    let live = sup.lineage();
    let token = sup.token();
    let running = tokio::spawn(sup.run(token.clone().cancelled_owned()));
    wait_for("the group joined", || !live.consumers_of(INPUT).is_empty()).await?;
    log.append(
        INPUT,
        (0..5)
            .map(|i| NewRecord::new("k", format!("{i}")))
            .collect(),
    )
    .await?;
    wait_for("five records handled", || {
        handled.load(Ordering::SeqCst) == 5
    })
    .await?;
    assert_eq!(
        live.edges()
            .iter()
            .map(|e| (e.service.as_str(), e.topic.as_str(), e.records))
            .collect::<Vec<_>>(),
        [("tasky", INPUT, 5)]
    );
    token.cancel();
    running.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_publisher_republishes_with_the_same_ids() -> TestResult {
    let (_dir, log) = open()?;
    let lineage = Lineage::new();
    lineage.record_produce("writer", OUTPUT, 4);
    lineage.record_consume("reader", OUTPUT, "readers", 0);

    let token = CancellationToken::new();
    let run = tokio::spawn({
        let (lineage, log, token) = (lineage.clone(), log.clone(), token.clone());
        async move { lineage::publish(&lineage, &log, &token).await }
    });
    // Edges known before it started, then one seen while it runs.
    folded_until(&log, &keys(&lineage.edges())).await?;
    lineage.record_produce("reader", "portfolio-events.dlq", 1);
    folded_until(&log, &keys(&lineage.edges())).await?;
    token.cancel();
    run.await??;
    let first = lineage_records(&log).await?;
    assert_eq!(first.len(), 3, "each edge once");

    // A restart publishes every edge again, under the same ids.
    let token = CancellationToken::new();
    token.cancel();
    lineage::publish(&lineage, &log, &token).await?;
    let all = lineage_records(&log).await?;
    assert_eq!(all.len(), 6);
    let ids = |records: &[Record]| -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
        records
            .iter()
            .map(|r| Ok(RawEnvelope::from_bytes(&r.value)?.event_id.to_string()))
            .collect()
    };
    assert_eq!(ids(&first)?.len(), 3);
    assert_eq!(ids(&all)?, ids(&first)?);
    let folded = folded_until(&log, &keys(&lineage.edges())).await?;
    assert_eq!(folded.edges(), lineage.edges());
    Ok(())
}
