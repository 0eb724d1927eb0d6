//! `ultracore bench lag`: one evaluation round of the lag monitor over
//! `--groups` × `--partitions` partitions (10,000 by default) with full
//! windows, timed over `--ticks` rounds.
//!
//! What is timed is [`LagMonitor::apply`]: folding a round's samples into
//! every partition's window, Burrow's rules on each, the group verdicts,
//! the metric gauges, the status changes. The observations (what the log
//! answers) are built before each round, untimed: their cost is the
//! log's. The groups follow seeded behaviours (most keep up; some are
//! slow, stuck, stopped or rewinding) so every rule runs and statuses
//! change now and then.

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use ultracore_lag::{GroupObservation, LagConfig, LagMonitor, PartitionObservation, Status};
use ultracore_log::GroupLag;
use ultracore_metrics::Registry;
use ultracore_term::table;

use crate::Rng;

#[derive(Debug, Args)]
pub struct LagBench {
    /// Consumer groups.
    #[arg(long, default_value_t = 500)]
    groups: usize,
    /// Partitions per group (each group on a topic of its own).
    #[arg(long, default_value_t = 20)]
    partitions: u32,
    /// Samples per partition window.
    #[arg(long, default_value_t = 10)]
    window: usize,
    /// Timed rounds (after the windows were filled).
    #[arg(long, default_value_t = 200)]
    ticks: usize,
    #[arg(long)]
    json: bool,
}

/// How a synthetic group commits from round to round.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Healthy,
    Slow,
    Stuck,
    Stopping,
    Rewinding,
}

struct Group {
    name: String,
    topic: String,
    behaviour: Behaviour,
    /// (committed, high watermark) per partition.
    offsets: Vec<(u64, u64)>,
}

impl Group {
    fn step(&mut self, round: u64, rng: &mut Rng) {
        for (p, (committed, hw)) in self.offsets.iter_mut().enumerate() {
            let arrived = rng.below(5) as u64;
            *hw += arrived;
            match self.behaviour {
                Behaviour::Healthy => *committed = *hw,
                Behaviour::Slow => *committed += arrived.saturating_sub(1),
                Behaviour::Stuck if p == 0 => {}
                Behaviour::Stuck => *committed = *hw,
                Behaviour::Stopping if round % 40 >= 20 => {}
                Behaviour::Stopping => *committed = *hw,
                Behaviour::Rewinding if round.is_multiple_of(30) => *committed /= 2,
                Behaviour::Rewinding => *committed = (*committed + 3).min(*hw),
            }
        }
    }

    fn observe(&self, now_ms: i64) -> GroupObservation {
        GroupObservation {
            group: self.name.clone(),
            partitions: Some(
                self.offsets
                    .iter()
                    .enumerate()
                    .map(|(p, &(committed, hw))| PartitionObservation {
                        lag: GroupLag {
                            group: self.name.clone(),
                            topic: self.topic.clone(),
                            partition: p as u32,
                            committed: Some(committed),
                            log_start_offset: 0,
                            high_watermark: hw,
                        },
                        oldest_unhandled_ms: (hw > committed).then_some(now_ms - 1_500),
                    })
                    .collect(),
            ),
        }
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(b: LagBench, seed: u64) -> Result<()> {
    if b.groups == 0 || b.partitions == 0 || b.ticks == 0 {
        bail!("--groups, --partitions and --ticks must be at least 1");
    }
    let mut rng = Rng::new(seed);
    let config = LagConfig::default().with_window(b.window);
    let registry = Registry::new();
    let monitor = LagMonitor::new(config, &registry);
    let mut groups: Vec<Group> = (0..b.groups)
        .map(|i| Group {
            name: format!("group-{i:04}"),
            topic: format!("topic-{i:04}"),
            behaviour: match rng.below(20) {
                0 => Behaviour::Slow,
                1 => Behaviour::Stuck,
                2 => Behaviour::Stopping,
                3 => Behaviour::Rewinding,
                _ => Behaviour::Healthy,
            },
            offsets: vec![(0, 0); b.partitions as usize],
        })
        .collect();
    let interval_ms = 5_000i64;
    let mut now = ultracore_log::now_millis();
    let mut round = 0u64;
    let next = |groups: &mut Vec<Group>, rng: &mut Rng, now: &mut i64, round: &mut u64| {
        *round += 1;
        *now += interval_ms;
        for g in groups.iter_mut() {
            g.step(*round, rng);
        }
        groups.iter().map(|g| g.observe(*now)).collect::<Vec<_>>()
    };
    // Fill every window first (untimed).
    for _ in 0..b.window {
        let seen = next(&mut groups, &mut rng, &mut now, &mut round);
        monitor.apply(now, seen);
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut changes = 0usize;
    for _ in 0..b.ticks {
        let seen = next(&mut groups, &mut rng, &mut now, &mut round);
        let started = Instant::now();
        changes += monitor.apply(now, seen).len();
        hist.record((started.elapsed().as_micros() as u64).max(1))?;
    }
    let snapshot_started = Instant::now();
    let snapshot = monitor.snapshot();
    let snapshot_ms = snapshot_started.elapsed().as_secs_f64() * 1000.0;
    let by_status: serde_json::Map<String, serde_json::Value> = Status::ALL
        .iter()
        .map(|s| {
            let n = snapshot.iter().filter(|g| g.status == *s).count();
            (s.as_str().to_owned(), json!(n))
        })
        .filter(|(_, n)| n != &json!(0))
        .collect();
    let partitions = b.groups * b.partitions as usize;
    let report = json!({
        "groups": b.groups,
        "partitions": partitions,
        "window": b.window,
        "ticks": b.ticks,
        "tick_p50_ms": ms(&hist, 0.5),
        "tick_p95_ms": ms(&hist, 0.95),
        "tick_max_ms": ms(&hist, 1.0),
        "per_partition_us": ms(&hist, 0.5) * 1000.0 / partitions as f64,
        "status_changes": changes,
        "groups_by_status": by_status,
        "snapshot_ms": snapshot_ms,
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
    });
    if b.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    let rows = vec![
        vec![
            "evaluation round p50 / p95 / max".into(),
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                f("tick_p50_ms"),
                f("tick_p95_ms"),
                f("tick_max_ms")
            ),
            "< 10 ms".into(),
        ],
        vec![
            "per partition (p50)".into(),
            format!("{:.2} µs", f("per_partition_us")),
            String::new(),
        ],
        vec![
            "snapshot with trends".into(),
            format!("{:.2} ms", f("snapshot_ms")),
            String::new(),
        ],
        vec![
            "status changes over the rounds".into(),
            changes.to_string(),
            String::new(),
        ],
    ];
    println!(
        "lag monitor: {} groups × {} partitions, windows of {}, {} rounds ({} build)\n{}",
        b.groups,
        b.partitions,
        b.window,
        b.ticks,
        report["profile"].as_str().unwrap_or(""),
        table(&["figure", ">measured", "goal"], &rows)
    );
    Ok(())
}
