//! The `lag-monitor` service for real: rounds every 50 ms over the
//! embedded log while five scripted groups commit on their own timers;
//! each status change arrives as an `ops_alert` event on `ops.alerts`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Plan, Scripted, TestResult};
use tokio::time::Instant;
use ultracore_lag::{alert, LagAlert, LagMonitor, Status};
use ultracore_log::{Consumer, ConsumerOptions, EventLog};
use ultracore_metrics::Registry;
use ultracore_runtime::CancellationToken;

/// Generous: the statuses come within a second or two; a loaded machine
/// stretches the ticks, not the verdicts.
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_change_is_an_alert() -> TestResult {
    let (_dir, log) = common::open()?;
    let monitor = LagMonitor::new(common::config(), &Registry::new());
    let token = CancellationToken::new();
    let service = {
        let (log, monitor, token) = (log.clone(), monitor.clone(), token.clone());
        tokio::spawn(async move { ultracore_lag::run(&log, &monitor, &token).await })
    };

    let mut groups = BTreeMap::new();
    for plan in Plan::ALL {
        let mut s = Scripted::new(&log, plan, "svc").await?;
        groups.insert(s.group.clone(), plan);
        let token = token.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(25));
            for step in 0.. {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tick.tick() => {}
                }
                s.step(step).await.expect("a scripted step");
            }
        });
    }

    // Read ops.alerts until every unhealthy group was reported in its status.
    let mut alerts = loop {
        if log.describe_topic(alert::TOPIC).await.is_ok() {
            break log
                .consumer(ConsumerOptions::new("lag-test-reader", [alert::TOPIC]))
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let deadline = Instant::now() + DEADLINE;
    let mut seen: BTreeMap<String, Vec<Status>> = BTreeMap::new();
    let wanted = |seen: &BTreeMap<String, Vec<Status>>| {
        groups.iter().all(|(g, plan)| {
            plan.expected() == Status::Ok
                || seen.get(g).is_some_and(|s| s.contains(&plan.expected()))
        })
    };
    while !wanted(&seen) {
        assert!(
            Instant::now() < deadline,
            "alerts after {DEADLINE:?}: {seen:?}"
        );
        for record in alerts.poll(100, Duration::from_millis(100)).await? {
            let alert = LagAlert::from_record(&record)?.ok_or("a lag alert")?;
            assert_eq!(alert.kind, "consumer_lag");
            assert_eq!(record.key.as_deref(), Some(alert.group.as_bytes()));
            assert_ne!(alert.status, alert.previous_status);
            if alert.status.is_error() || alert.status == Status::Warn {
                assert!(!alert.partitions.is_empty());
                assert!(alert.total_lag > 0);
            }
            seen.entry(alert.group).or_default().push(alert.status);
        }
    }
    let healthy = groups
        .iter()
        .find(|(_, p)| **p == Plan::Healthy)
        .map(|(g, _)| g.clone())
        .ok_or("a healthy group")?;
    assert!(
        !seen.contains_key(&healthy),
        "the healthy group was never reported: {seen:?}"
    );
    let snapshot = monitor.snapshot();
    assert!(snapshot
        .iter()
        .any(|g| g.group == healthy && g.status == Status::Ok));

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), service).await???;
    Ok(())
}
