//! Scripted consumers against the real embedded log, the monitor's rounds
//! driven one by one on a simulated clock 50 ms apart: each plan reaches
//! its status within two windows of rounds from when it is due, exactly,
//! without depending on the machine's speed.

mod common;

use common::{Plan, Scripted, TestResult, INTERVAL, WINDOW};
use ultracore_lag::{LagAlert, LagMonitor, Status};
use ultracore_log::{now_millis, Record};
use ultracore_metrics::Registry;

/// Runs `plan` for up to `rounds` rounds (a step, then a round); returns
/// the round at which the group first had the plan's status, and every
/// status change seen.
async fn drive(
    plan: Plan,
) -> Result<(Option<u64>, Vec<(u64, Status, Status)>, LagMonitor), Box<dyn std::error::Error>> {
    let (_dir, log) = common::open()?;
    let registry = Registry::new();
    let monitor = LagMonitor::new(common::config(), &registry);
    let mut scripted = Scripted::new(&log, plan, "det").await?;
    let t0 = now_millis();
    let mut reached = None;
    let mut changes = Vec::new();
    let rounds = plan.due_from() + 3 * WINDOW as u64;
    for round in 0..rounds {
        scripted.step(round).await?;
        let now = t0 + round as i64 * INTERVAL.as_millis() as i64;
        for c in monitor.tick(&log, now).await? {
            assert_eq!(c.current.group, scripted.group);
            changes.push((round, c.previous, c.current.status));
            // Every change makes an alert that reads back from its record.
            let alert = c.alert(10);
            let record = Record {
                topic: ultracore_lag::alert::TOPIC.into(),
                partition: 0,
                offset: 0,
                timestamp: now,
                key: alert.envelope().to_record().key,
                value: alert.envelope().to_record().value,
                headers: Vec::new(),
            };
            assert_eq!(LagAlert::from_record(&record)?, Some(alert));
        }
        let status = monitor.group(&scripted.group).map(|g| g.status);
        if reached.is_none() && status == Some(plan.expected()) && round + 1 >= WINDOW as u64 {
            reached = Some(round);
        }
    }
    let text = registry.render();
    for name in ultracore_lag::metrics::ALL {
        assert!(text.contains(name), "{name} is exported");
    }
    Ok((reached, changes, monitor))
}

async fn reaches(plan: Plan) -> TestResult {
    let (reached, changes, monitor) = drive(plan).await?;
    let round = reached.ok_or_else(|| {
        format!(
            "{plan:?} never reached {}: changes {changes:?}",
            plan.expected()
        )
    })?;
    let due = plan.due_from();
    assert!(
        round < due.max(WINDOW as u64 - 1) + 2 * WINDOW as u64,
        "{plan:?} reached {} only at round {round} (due from {due})",
        plan.expected()
    );
    if plan.expected() != Status::Ok {
        assert!(
            changes
                .iter()
                .any(|(r, _, s)| *s == plan.expected() && *r == round),
            "{plan:?}: the change to {} was reported: {changes:?}",
            plan.expected()
        );
    }
    let snapshot = monitor.snapshot();
    assert_eq!(snapshot.len(), 1);
    let g = &snapshot[0];
    assert_eq!(g.complete, 1.0);
    assert!(g.partitions.iter().all(|p| p.trend.len() == WINDOW));
    Ok(())
}

#[tokio::test]
async fn a_healthy_consumer_stays_ok_and_is_never_reported() -> TestResult {
    let (reached, changes, monitor) = drive(Plan::Healthy).await?;
    assert_eq!(reached, Some(WINDOW as u64 - 1));
    assert!(changes.is_empty(), "no change to report: {changes:?}");
    let g = monitor.snapshot().remove(0);
    assert_eq!((g.status, g.total_lag), (Status::Ok, 0));
    assert_eq!(g.max_time_lag_seconds, Some(0.0));
    Ok(())
}

#[tokio::test]
async fn a_slow_consumer_warns() -> TestResult {
    reaches(Plan::Slow).await
}

#[tokio::test]
async fn a_stuck_partition_of_a_live_group_stalls() -> TestResult {
    reaches(Plan::Stalled).await?;
    let (_, _, monitor) = drive(Plan::Stalled).await?;
    let g = monitor.snapshot().remove(0);
    let by_partition: Vec<Status> = g.partitions.iter().map(|p| p.status).collect();
    assert_eq!(by_partition, vec![Status::Ok, Status::Stall]);
    Ok(())
}

#[tokio::test]
async fn a_consumer_that_stops_committing_stops() -> TestResult {
    reaches(Plan::Stopped).await
}

#[tokio::test]
async fn a_consumer_that_goes_back_rewinds() -> TestResult {
    reaches(Plan::Rewound).await
}

/// Time lag is now minus the timestamp of the oldest record not handled.
#[tokio::test]
async fn time_lag_is_exact() -> TestResult {
    use ultracore_log::{Consumer, ConsumerOptions, EventLog, NewRecord, Position, TopicSpec};
    let (_dir, log) = common::open()?;
    let monitor = LagMonitor::new(common::config(), &Registry::new());
    log.create_topic(&TopicSpec::new("t", 1)).await?;
    let t0 = 1_800_000_000_000;
    log.append(
        "t",
        (0..5)
            .map(|i| NewRecord::new("k", "v").with_timestamp(t0 + i * 1000))
            .collect(),
    )
    .await?;
    let mut member = log.consumer(ConsumerOptions::new("g", ["t"])).await?;
    member
        .commit(&[Position {
            topic: "t".into(),
            partition: 0,
            offset: 2,
        }])
        .await?;
    monitor.tick(&log, t0 + 10_000).await?;
    let g = monitor.group("g").ok_or("monitored")?;
    assert_eq!(g.total_lag, 3);
    assert_eq!(
        g.partitions[0].time_lag_seconds,
        Some(8.0),
        "now - ts(offset 2)"
    );
    assert_eq!(g.max_time_lag_seconds, Some(8.0));
    Ok(())
}

/// Private groups are not monitored; a group that goes away while in
/// error is reported gone.
#[tokio::test]
async fn private_groups_are_skipped() -> TestResult {
    let (_dir, log) = common::open()?;
    let monitor = LagMonitor::new(common::config(), &Registry::new());
    let mut s = Scripted::new(&log, Plan::Slow, "x").await?;
    use ultracore_log::{Consumer, ConsumerOptions, EventLog, Position};
    let mut private = log
        .consumer(ConsumerOptions::new("api-live-123", [s.topic.clone()]))
        .await?;
    private
        .commit(&[Position {
            topic: s.topic.clone(),
            partition: 0,
            offset: 0,
        }])
        .await?;
    s.step(0).await?;
    monitor.tick(&log, now_millis()).await?;
    let names: Vec<String> = monitor.snapshot().into_iter().map(|g| g.group).collect();
    assert_eq!(names, vec![s.group.clone()]);
    Ok(())
}
