//! The runtime against the real embedded log: dead-lettering, panics,
//! failures and supervision, subscriptions to every topic, shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ultracore_log::{
    Consumer, ConsumerOptions, EventLog, EventLogExt, NewRecord, Record, TopicSpec,
};
use ultracore_log_embedded::EmbeddedLog;
use ultracore_runtime::{
    run_pipelined, ConsumerConfig, ConsumerSpec, Handler, HandlerError, Pipeline, Registration,
    ServiceContext, ServiceState, Settled, Subscription, Supervisor, SupervisorOptions,
};

mod common;

use common::{fast, open, TestResult};

/// Values the handler saw, shared with the test.
#[derive(Clone, Default)]
struct Seen(Arc<std::sync::Mutex<Vec<String>>>);

impl Seen {
    fn values(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Panics on "boom", rejects "bad", fails on the platform on "down",
/// records everything else.
struct Picky {
    seen: Seen,
}

impl Handler for Picky {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        let mut ok = Vec::new();
        for r in batch {
            let v = String::from_utf8_lossy(&r.value).into_owned();
            match v.as_str() {
                "boom" => panic!("cannot handle {v}"),
                "bad" => return Err(HandlerError::reject("value 'bad' is not an event")),
                "down" => return Err(HandlerError::infra("the database is down")),
                _ => ok.push(v),
            }
        }
        // Effects only once the whole batch is fine (a real handler would
        // append or store them here).
        self.seen.0.lock().unwrap().extend(ok);
        Ok(())
    }
}

async fn append(log: &EmbeddedLog, topic: &str, values: &[&str]) -> TestResult {
    log.append(
        topic,
        values
            .iter()
            .map(|v| NewRecord::new("k", v.as_bytes()))
            .collect(),
    )
    .await?;
    Ok(())
}

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

async fn dead_letters(
    log: &EmbeddedLog,
    topic: &str,
) -> Result<Vec<Record>, Box<dyn std::error::Error>> {
    let mut c = log
        .consumer(ConsumerOptions::new(
            format!("dlq-reader-{}", uuid_like()),
            [format!("{topic}.dlq")],
        ))
        .await?;
    let mut out = Vec::new();
    loop {
        let got = c.poll(100, Duration::from_millis(200)).await?;
        if got.is_empty() {
            return Ok(out);
        }
        out.extend(got);
    }
}

fn uuid_like() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_or_rejected_record_goes_to_the_dlq_and_the_service_goes_on() -> TestResult {
    let (_dir, log) = open()?;
    // The catalogue's topic, so the runtime creates it the catalogue's way.
    let topic = "portfolio-events";
    let seen = Seen::default();
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    let spec = ConsumerSpec::new("picky", Subscription::topics([topic])).config(fast());
    let s = seen.clone();
    sup.add(Registration::consumer(
        "picky",
        log.clone(),
        spec,
        move |_| Ok(Picky { seen: s.clone() }),
    ));
    let health = sup.health();
    let registry = sup.registry();
    let token = sup.token();
    let run = tokio::spawn(sup.run(std::future::pending()));

    log.ensure_topic(&TopicSpec::new(topic, 3)).await?;
    append(&log, topic, &["a", "boom", "b", "bad", "c"]).await?;
    wait_for("the good records", || seen.values().len() >= 3).await?;
    let mut values = seen.values();
    values.sort();
    values.dedup();
    assert_eq!(values, ["a", "b", "c"]);

    let dead = dead_letters(&log, topic).await?;
    let reasons: Vec<(String, String)> = dead
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(&r.value).into_owned(),
                String::from_utf8_lossy(r.header("dlq.reason").unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let boom = reasons
        .iter()
        .find(|(v, _)| v == "boom")
        .ok_or("boom not dead-lettered")?;
    assert!(
        boom.1
            .contains("picky: failed 3 times: the handler panicked: cannot handle boom"),
        "{}",
        boom.1
    );
    let bad = reasons
        .iter()
        .find(|(v, _)| v == "bad")
        .ok_or("bad not dead-lettered")?;
    assert_eq!(bad.1, "picky: value 'bad' is not an event");

    // Still serving after both.
    append(&log, topic, &["d"]).await?;
    wait_for("a record after the failures", || {
        seen.values().contains(&"d".to_owned())
    })
    .await?;
    assert!(health.report().healthy);
    wait_for("readiness", || health.readiness().ready).await?;
    let metrics = registry.render();
    assert!(
        metrics.contains(
            "ultracore_service_records_total{service=\"picky\",outcome=\"dead_lettered\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        // One panic in the batch attempt, then three attempts of the record alone.
        metrics.contains("ultracore_service_panics_total{service=\"picky\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "ultracore_events_consumed_total{group=\"picky\",topic=\"portfolio-events\"}"
        ),
        "{metrics}"
    );

    token.cancel();
    run.await??;
    // Everything was committed: the group has no lag.
    let lag: u64 = log.group_lag("picky").await?.iter().map(|l| l.lag()).sum();
    assert_eq!(lag, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_failure_fails_the_service_and_the_supervisor_names_it() -> TestResult {
    let (_dir, log) = open()?;
    let topic = "query-events";
    let mut sup = Supervisor::new(
        Default::default(),
        SupervisorOptions {
            failure_linger: Duration::from_millis(300),
            ..SupervisorOptions::default()
        },
    );
    let spec = ConsumerSpec::new("fragile", Subscription::topics([topic])).config(fast());
    sup.add(Registration::consumer("fragile", log.clone(), spec, |_| {
        Ok(Picky {
            seen: Seen::default(),
        })
    }));
    let health = sup.health();
    let run = tokio::spawn(sup.run(std::future::pending()));
    log.ensure_topic(&TopicSpec::new(topic, 3)).await?;
    append(&log, topic, &["a", "down"]).await?;
    // While it lingers, health names the service and the error.
    wait_for("the failure in the health report", || {
        !health.report().healthy
    })
    .await?;
    let report = health.report();
    assert_eq!(
        report.problems,
        ["service fragile failed: the handler kept failing on the platform: the database is down"]
    );
    let failure = run.await?.expect_err("the supervisor reports the failure");
    assert_eq!(failure.service, "fragile");
    // The record was never blamed: nothing in the dead-letter topic, and
    // nothing past it committed.
    assert!(dead_letters(&log, topic)
        .await
        .map_or(true, |d| d.is_empty()));
    let mut again = log
        .consumer(ConsumerOptions::new("fragile", [topic]))
        .await?;
    let mut redelivered = Vec::new();
    while redelivered.len() < 2 {
        let got = again.poll(10, Duration::from_millis(500)).await?;
        if got.is_empty() {
            break;
        }
        redelivered.extend(
            got.iter()
                .map(|r| String::from_utf8_lossy(&r.value).into_owned()),
        );
    }
    assert_eq!(
        redelivered,
        ["a", "down"],
        "nothing of the failed batch was committed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_restarts_the_service() -> TestResult {
    let (_dir, log) = open()?;
    let starts = Arc::new(AtomicU64::new(0));
    let mut sup = Supervisor::new(
        Default::default(),
        SupervisorOptions {
            restart: "on-failure:2".parse()?,
            failure_linger: Duration::from_millis(10),
            ..SupervisorOptions::default()
        },
    );
    let n = starts.clone();
    sup.add(Registration::task("flaky", move |_ctx| {
        let n = n.clone();
        async move {
            n.fetch_add(1, Ordering::SeqCst);
            Err(ultracore_runtime::ServiceError::other(
                "lost its connection",
            ))
        }
    }));
    let health = sup.health();
    let registry = sup.registry();
    let failure = tokio::time::timeout(Duration::from_secs(20), sup.run(std::future::pending()))
        .await?
        .expect_err("gives up after two restarts");
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "first start and two restarts"
    );
    assert_eq!(failure.error, "lost its connection");
    assert!(matches!(
        health.service("flaky").map(|s| s.state),
        Some(ServiceState::Failed { .. })
    ));
    assert!(registry
        .render()
        .contains("ultracore_service_restarts_total{service=\"flaky\"} 2"));
    drop(log);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_includes_topics_created_later() -> TestResult {
    let (_dir, log) = open()?;
    log.ensure_topic(&TopicSpec::new("first", 1)).await?;
    append(&log, "first", &["one"]).await?;
    let seen = Seen::default();
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    let spec = ConsumerSpec::new(
        "everything",
        Subscription::All {
            dead_letters: false,
            except: vec!["own-output".into()],
        },
    )
    .config(fast());
    let s = seen.clone();
    sup.add(Registration::consumer(
        "everything",
        log.clone(),
        spec,
        move |_| Ok(Picky { seen: s.clone() }),
    ));
    let token = sup.token();
    let run = tokio::spawn(sup.run(std::future::pending()));
    wait_for("the first topic", || seen.values() == ["one"]).await?;
    log.ensure_topic(&TopicSpec::new("own-output", 1)).await?;
    append(&log, "own-output", &["mine"]).await?;
    log.ensure_topic(&TopicSpec::new("later", 2)).await?;
    append(&log, "later", &["two"]).await?;
    wait_for("the topic created later", || {
        seen.values().contains(&"two".to_owned())
    })
    .await?;
    // Created before "later", yet never read: the service's own output.
    assert!(
        !seen.values().contains(&"mine".to_owned()),
        "{:?}",
        seen.values()
    );
    token.cancel();
    run.await??;
    Ok(())
}

/// Holds its first batch until released: the group commits nothing.
struct Stalled(Arc<tokio::sync::Notify>);

impl Handler for Stalled {
    async fn handle(&mut self, _batch: &[Record]) -> Result<(), HandlerError> {
        self.0.notified().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_never_committed_reports_its_backlog_as_lag() -> TestResult {
    let (_dir, log) = open()?;
    let topic = "query-events";
    log.ensure_topic(&TopicSpec::new(topic, 1)).await?;
    append(&log, topic, &["a", "b", "c", "d", "e"]).await?;
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    let release = Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let spec = ConsumerSpec::new("stalled", Subscription::topics([topic])).config(fast());
    sup.add(Registration::consumer(
        "stalled",
        log.clone(),
        spec,
        move |_| Ok(Stalled(held.clone())),
    ));
    let registry = sup.registry();
    let token = sup.token();
    let run = tokio::spawn(sup.run(std::future::pending()));
    let series = "ultracore_consumer_lag_records{group=\"stalled\",topic=\"query-events\",partition=\"0\"} 5";
    wait_for("the backlog in the lag gauge", || {
        registry.render().contains(series)
    })
    .await?;
    // Nothing was committed, so the log itself reports no row for it.
    assert!(log.group_lag("stalled").await?.is_empty());
    release.notify_one();
    let zero = "ultracore_consumer_lag_records{group=\"stalled\",topic=\"query-events\",partition=\"0\"} 0";
    wait_for("the lag back to zero", || registry.render().contains(zero)).await?;
    token.cancel();
    run.await?.map_err(|f| f.to_string())?;
    Ok(())
}

/// Completes each batch on a task of its own after a pause that shrinks
/// with the batch number (so later batches often finish first): stores
/// values, rejects "bad", fails a batch holding "flaky" the first time.
struct Overlapping {
    seen: Seen,
    flaky_failed: Arc<std::sync::atomic::AtomicBool>,
    in_flight: Arc<AtomicU64>,
    most_in_flight: Arc<AtomicU64>,
    n: u64,
}

impl Pipeline for Overlapping {
    fn submit(
        &mut self,
        batch: Arc<[Record]>,
    ) -> impl std::future::Future<Output = Result<Settled, HandlerError>> + Send + 'static {
        self.n += 1;
        let pause = Duration::from_millis(40u64.saturating_sub(self.n * 7 % 40));
        let (seen, flaky_failed) = (self.seen.clone(), self.flaky_failed.clone());
        let (in_flight, most) = (self.in_flight.clone(), self.most_in_flight.clone());
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        let work = tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let values: Vec<String> = batch
                .iter()
                .map(|r| String::from_utf8_lossy(&r.value).into_owned())
                .collect();
            if values.iter().any(|v| v == "flaky") && !flaky_failed.swap(true, Ordering::SeqCst) {
                return Err(HandlerError::retry("flaky the first time"));
            }
            let mut settled = Settled::default();
            for (r, v) in batch.iter().zip(values) {
                if v == "bad" {
                    settled
                        .rejected
                        .push((r.clone(), "bad is not a value".into()));
                } else {
                    seen.0.lock().unwrap().push(v);
                }
            }
            Ok(settled)
        });
        async move { work.await.map_err(|e| HandlerError::infra(e.to_string()))? }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_overlaps_batches_and_commits_them_in_order() -> TestResult {
    let (_dir, log) = open()?;
    let topic = "query-events";
    log.ensure_topic(&TopicSpec::new(topic, 3)).await?;
    let mut values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    values[57] = "bad".into();
    values[190] = "flaky".into();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    append(&log, topic, &refs).await?;
    let seen = Seen::default();
    let most = Arc::new(AtomicU64::new(0));
    let pipeline = Overlapping {
        seen: seen.clone(),
        flaky_failed: Arc::default(),
        in_flight: Arc::default(),
        most_in_flight: most.clone(),
        n: 0,
    };
    let spec =
        ConsumerSpec::new("pipelined", Subscription::topics([topic])).config(ConsumerConfig {
            max_batch: 7,
            ..fast()
        });
    let ctx = ServiceContext::standalone("pipelined");
    let token = ctx.token.clone();
    let (l, s, c) = (log.clone(), spec.clone(), ctx.clone());
    let run = tokio::spawn(async move { run_pipelined(&l, &s, pipeline, 4, &c).await });
    wait_for("every good value", || {
        seen.values().len() == 299 || run.is_finished()
    })
    .await?;
    token.cancel();
    run.await??;
    // Overlapped, and each good value once (the flaky batch, redone on its
    // own after it failed, stores its values once).
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "never more than one batch in flight"
    );
    let mut got = seen.values();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 299);
    let dead = dead_letters(&log, topic).await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value, b"bad");
    // Everything committed: the group's lag is zero on every partition.
    let lags = log.group_lag("pipelined").await?;
    assert_eq!(lags.iter().map(|l| l.lag()).sum::<u64>(), 0, "{lags:?}");
    Ok(())
}
