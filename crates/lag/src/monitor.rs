//! [`LagMonitor`]: samples every group's committed offsets, keeps each
//! partition's window, judges it by Burrow's rules, and keeps the verdicts
//! for the console and the metrics.
//!
//! A round is two steps: [`LagMonitor::observe`] asks the log (group
//! lags, record timestamps; no state touched, so a round cancelled half
//! way changes nothing) and [`LagMonitor::apply`] folds what it saw into
//! the windows and judges them (pure, synchronous, under one lock, no
//! I/O: what the benchmark times).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use ultracore_log::{EventLog, GroupLag};
use ultracore_metrics::{Gauge, Registry};

use crate::alert::LagAlert;
use crate::evaluator::{evaluate_partition, group_status, Commit};
use crate::metrics::LagMetrics;
use crate::window::{Sample, Window};
use crate::{LagConfig, Result, Status};

/// A group's verdict, as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub group: String,
    /// The worst of its partitions' statuses.
    pub status: Status,
    /// Share of its partitions whose window is full (0.0–1.0).
    pub complete: f32,
    /// Records not committed, over every partition.
    pub total_lag: u64,
    /// The oldest record not handled, over every partition (seconds);
    /// `None` when no partition's could be told.
    pub max_time_lag_seconds: Option<f64>,
    /// When this verdict was reached (milliseconds since the epoch).
    pub evaluated_at_ms: i64,
    /// Ordered by topic and partition.
    pub partitions: Vec<PartitionStatus>,
}

/// A partition's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: u32,
    pub status: Status,
    /// How full its window is (0.0–1.0).
    pub complete: f32,
    /// The committed position (next offset to read).
    pub committed: u64,
    pub high_watermark: u64,
    /// Records not committed.
    pub lag: u64,
    /// Age of the oldest record not handled (seconds, 0 when caught up);
    /// `None` when its timestamp could not be read.
    pub time_lag_seconds: Option<f64>,
    /// The window's samples, oldest first (empty in alerts' copies).
    pub trend: Vec<TrendPoint>,
}

/// One sample of a partition's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub sampled_at_ms: i64,
    pub committed: u64,
    pub high_watermark: u64,
    pub lag: u64,
}

/// A group whose status changed in a round.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub previous: Status,
    /// The group now ([`Status::NotFound`] with no partitions when it is gone).
    pub current: GroupStatus,
}

impl StatusChange {
    /// The alert that goes on `ops.alerts`, naming at most `partitions`.
    pub fn alert(&self, partitions: usize) -> LagAlert {
        LagAlert::new(&self.current, self.previous, partitions)
    }
}

/// What a round read of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupObservation {
    pub group: String,
    /// `None` when the group's lag could not be read this round: what is
    /// known of it stays as it was.
    pub partitions: Option<Vec<PartitionObservation>>,
}

/// What a round read of one partition of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionObservation {
    pub lag: GroupLag,
    /// Timestamp of the oldest record the group has not handled (the one
    /// at its committed position); `None` when caught up or unknown.
    pub oldest_unhandled_ms: Option<i64>,
}

/// The lag monitor: cheap to clone (one shared state), so the service
/// that runs the rounds and the console that reads them hold the same one.
#[derive(Clone)]
pub struct LagMonitor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LagMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagMonitor")
            .field("config", &self.inner.config)
            .finish()
    }
}

struct Inner {
    config: LagConfig,
    metrics: LagMetrics,
    state: Mutex<State>,
    /// Record timestamps by (topic, partition, offset): records never
    /// change, so an answer holds for good. Kept apart from `state` so
    /// `observe` never takes the lock `apply` and the console use.
    timestamps: Mutex<HashMap<(String, u32, u64), i64>>,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, GroupState>,
    round: u64,
}

struct GroupState {
    topics: BTreeMap<String, BTreeMap<u32, PartitionState>>,
    /// The last time any of its committed offsets was seen to move.
    changed_at_ms: i64,
    status: Status,
    complete: f32,
    total_lag: u64,
    max_time_lag_ms: Option<i64>,
    evaluated_at_ms: i64,
    gauge: Gauge,
}

struct PartitionState {
    window: Window,
    committed: u64,
    changed_at_ms: i64,
    round: u64,
    high_watermark: u64,
    lag: u64,
    time_lag_ms: Option<i64>,
    status: Status,
    complete: f32,
    status_gauge: Gauge,
    records_gauge: Gauge,
    time_gauge: Gauge,
}

impl LagMonitor {
    /// A monitor with nothing seen yet, its metric families registered in
    /// `registry` (the process's, which `/metrics` serves).
    pub fn new(config: LagConfig, registry: &Registry) -> LagMonitor {
        LagMonitor {
            inner: Arc::new(Inner {
                metrics: LagMetrics::register(registry),
                config,
                state: Mutex::new(State::default()),
                timestamps: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &LagConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every monitored group's latest verdict, by name, with each
    /// partition's window as its trend.
    pub fn snapshot(&self) -> Vec<GroupStatus> {
        let state = self.state();
        state
            .groups
            .iter()
            .map(|(name, g)| g.status_of(name, true))
            .collect()
    }

    /// Every monitored group's latest status, by name: the `group` and
    /// `status` of each entry of [`LagMonitor::snapshot`], in the same
    /// order, without copying partitions and windows. The console reads
    /// this every second for its badges; a snapshot with trends takes
    /// milliseconds over thousands of partitions, all under the lock the
    /// rounds need.
    pub fn statuses(&self) -> Vec<(String, Status)> {
        self.state()
            .groups
            .iter()
            .map(|(name, g)| (name.clone(), g.status))
            .collect()
    }

    /// One group's latest verdict, `None` if it is not monitored.
    pub fn group(&self, name: &str) -> Option<GroupStatus> {
        self.state()
            .groups
            .get(name)
            .map(|g| g.status_of(name, true))
    }

    /// One round: [`LagMonitor::observe`] then [`LagMonitor::apply`]; the
    /// time it took goes to `ultracore_lag_evaluation_seconds`. Errors
    /// only when the groups cannot be listed (nothing changes then).
    pub async fn tick<L: EventLog>(&self, log: &L, now_ms: i64) -> Result<Vec<StatusChange>> {
        let started = Instant::now();
        let seen = self.observe(log).await?;
        let changes = self.apply(now_ms, seen);
        self.inner
            .metrics
            .evaluation_seconds
            .with(&[])
            .observe(started.elapsed().as_secs_f64());
        Ok(changes)
    }

    /// Reads every monitored group's lag and, for each lagging partition,
    /// the timestamp of the oldest record it has not handled (cached).
    /// Groups whose lag cannot be read are reported with `partitions: None`.
    pub async fn observe<L: EventLog>(&self, log: &L) -> Result<Vec<GroupObservation>> {
        let config = &self.inner.config;
        let concurrency = config.concurrency.max(1);
        let groups: Vec<String> = log
            .list_groups()
            .await?
            .into_iter()
            .filter(|g| config.monitors(g))
            .collect();
        let mut lags: Vec<(String, Option<Vec<GroupLag>>)> = stream::iter(groups)
            .map(|group| async move {
                match log.group_lag(&group).await {
                    Ok(lags) => (group, Some(lags)),
                    Err(e) => {
                        tracing::warn!(group = %group, error = %e, "reading a group's lag failed; keeping what is known");
                        (group, None)
                    }
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        lags.sort_by(|a, b| a.0.cmp(&b.0));

        // The record at each lagging partition's committed position (or
        // the log start, when retention removed it): cached, or read.
        let mut wanted: HashSet<(String, u32, u64)> = HashSet::new();
        for l in lags.iter().filter_map(|(_, l)| l.as_ref()).flatten() {
            if let Some(key) = oldest_unhandled(l) {
                wanted.insert(key);
            }
        }
        let mut known: HashMap<(String, u32, u64), i64> = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::new();
        {
            let cache = self
                .inner
                .timestamps
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for key in wanted {
                match cache.get(&key) {
                    Some(ts) => {
                        known.insert(key, *ts);
                    }
                    None => missing.push(key),
                }
            }
        }
        let read: Vec<((String, u32, u64), Option<i64>)> = stream::iter(missing)
            .map(|key| async move {
                let ts = match log.timestamp_at(&key.0, key.1, key.2).await {
                    Ok(ts) => ts,
                    Err(e) => {
                        tracing::debug!(topic = %key.0, partition = key.1, offset = key.2, error = %e, "reading a record's timestamp failed");
                        None
                    }
                };
                (key, ts)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        known.extend(read.into_iter().filter_map(|(k, ts)| ts.map(|ts| (k, ts))));
        {
            // Only what this round used stays: the cache never holds more
            // than one entry per lagging partition, and what a consumer
            // moved past is forgotten.
            let mut cache = self
                .inner
                .timestamps
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            cache.clear();
            if known.len() <= config.timestamp_cache {
                cache.extend(known.iter().map(|(k, v)| (k.clone(), *v)));
            }
        }

        Ok(lags
            .into_iter()
            .map(|(group, lags)| GroupObservation {
                group,
                partitions: lags.map(|lags| {
                    lags.into_iter()
                        .map(|lag| PartitionObservation {
                            oldest_unhandled_ms: oldest_unhandled(&lag)
                                .and_then(|k| known.get(&k).copied()),
                            lag,
                        })
                        .collect()
                }),
            })
            .collect())
    }

    /// Folds a round's observations into the windows at `now_ms`, judges
    /// every partition and group, updates the metrics, and returns the
    /// groups whose status changed (a group first seen OK is no change; a
    /// group that is gone, no longer listed or without committed offsets,
    /// changes to NOTFOUND unless it was OK).
    ///
    /// Each partition gets one sample per round, whether its offset moved
    /// or not: see the crate's documentation for why, and for the commit
    /// time the rules see.
    pub fn apply(&self, now_ms: i64, observations: Vec<GroupObservation>) -> Vec<StatusChange> {
        let config = &self.inner.config;
        let metrics = &self.inner.metrics;
        let rules = config.rules();
        let mut state = self.state();
        state.round += 1;
        let round = state.round;
        let mut changes = Vec::new();
        let mut listed: HashSet<String> = HashSet::with_capacity(observations.len());
        let mut gone_partitions: Vec<[String; 3]> = Vec::new();

        for obs in observations {
            listed.insert(obs.group.clone());
            let Some(partitions) = obs.partitions else {
                continue;
            };
            let group_name = obs.group;
            let is_new = !state.groups.contains_key(&group_name);
            let g = state
                .groups
                .entry(group_name.clone())
                .or_insert_with(|| GroupState {
                    topics: BTreeMap::new(),
                    changed_at_ms: now_ms,
                    status: Status::NotFound,
                    complete: 0.0,
                    total_lag: 0,
                    max_time_lag_ms: None,
                    evaluated_at_ms: now_ms,
                    gauge: metrics.group_status.with(&[&group_name]),
                });

            // Pass 1: the committed offsets, and when they last moved.
            for p in partitions {
                // A partition the group never committed on is not judged:
                // Burrow knows only partitions with commits, and a group
                // starting at the end never commits where nothing arrived.
                let Some(committed) = p.lag.committed else {
                    continue;
                };
                let lag = p.lag.lag();
                if !g.topics.contains_key(&p.lag.topic) {
                    g.topics.insert(p.lag.topic.clone(), BTreeMap::new());
                }
                let Some(parts) = g.topics.get_mut(&p.lag.topic) else {
                    continue;
                };
                let ps = parts.entry(p.lag.partition).or_insert_with(|| {
                    let labels = [
                        group_name.as_str(),
                        p.lag.topic.as_str(),
                        &p.lag.partition.to_string(),
                    ];
                    PartitionState {
                        window: Window::new(config.window),
                        committed,
                        changed_at_ms: now_ms,
                        round,
                        high_watermark: 0,
                        lag: 0,
                        time_lag_ms: None,
                        status: Status::NotFound,
                        complete: 0.0,
                        status_gauge: metrics.partition_status.with(&labels),
                        records_gauge: metrics.records.with(&labels),
                        time_gauge: metrics.time_seconds.with(&labels),
                    }
                });
                if ps.committed != committed {
                    ps.committed = committed;
                    ps.changed_at_ms = now_ms;
                }
                ps.round = round;
                ps.high_watermark = p.lag.high_watermark;
                ps.lag = lag;
                ps.time_lag_ms = if lag == 0 {
                    Some(0)
                } else {
                    p.oldest_unhandled_ms.map(|ts| (now_ms - ts).max(0))
                };
                g.changed_at_ms = g.changed_at_ms.max(ps.changed_at_ms);
            }

            // Pass 2: one sample each, judged. The commit time the rules
            // see is the group's last movement (the crate's documentation
            // says why).
            let commit_ms = g.changed_at_ms;
            let (mut total_lag, mut max_time) = (0u64, None::<i64>);
            for (topic, parts) in g.topics.iter_mut() {
                parts.retain(|partition, ps| {
                    if ps.round != round {
                        gone_partitions.push([
                            group_name.clone(),
                            topic.clone(),
                            partition.to_string(),
                        ]);
                        return false;
                    }
                    ps.window.push(Sample {
                        commit: Commit {
                            offset: ps.committed,
                            timestamp_ms: commit_ms,
                            lag: Some(ps.lag),
                        },
                        high_watermark: ps.high_watermark,
                        sampled_at_ms: now_ms,
                    });
                    let capacity = ps.window.capacity();
                    let window = ps.window.as_slice();
                    let eval = evaluate_partition(
                        window,
                        capacity,
                        window.iter().map(|s| s.high_watermark),
                        ps.lag,
                        now_ms,
                        rules,
                    );
                    ps.status = eval.status;
                    ps.complete = eval.complete;
                    ps.status_gauge.set(f64::from(eval.status.code()));
                    ps.records_gauge.set(ps.lag as f64);
                    match ps.time_lag_ms {
                        Some(ms) => ps.time_gauge.set(ms as f64 / 1000.0),
                        None => ps.time_gauge.set(f64::NAN),
                    }
                    total_lag += ps.lag;
                    if let Some(ms) = ps.time_lag_ms {
                        max_time = Some(max_time.map_or(ms, |m: i64| m.max(ms)));
                    }
                    true
                });
            }
            g.topics.retain(|_, parts| !parts.is_empty());
            let (status, complete) = group_status(
                g.topics
                    .values()
                    .flat_map(|parts| parts.values())
                    .map(|ps| (ps.status, ps.complete)),
            );
            let previous = if is_new { Status::NotFound } else { g.status };
            g.status = status;
            g.complete = complete;
            g.total_lag = total_lag;
            g.max_time_lag_ms = max_time;
            g.evaluated_at_ms = now_ms;
            g.gauge.set(f64::from(status.code()));
            if status != previous && !(previous == Status::NotFound && status == Status::Ok) {
                changes.push(StatusChange {
                    previous,
                    current: g.status_of(&group_name, false),
                });
            }
        }

        // Groups no longer listed, or left without committed partitions.
        let gone: Vec<String> = state
            .groups
            .iter()
            .filter(|(name, g)| !listed.contains(*name) || g.topics.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for name in &gone {
            if let Some(g) = state.groups.remove(name) {
                for (topic, parts) in &g.topics {
                    for partition in parts.keys() {
                        gone_partitions.push([name.clone(), topic.clone(), partition.to_string()]);
                    }
                }
                // A group first seen without partitions was never reported.
                if g.status != Status::Ok && g.status != Status::NotFound {
                    changes.push(StatusChange {
                        previous: g.status,
                        current: GroupStatus {
                            group: name.clone(),
                            status: Status::NotFound,
                            complete: 0.0,
                            total_lag: 0,
                            max_time_lag_seconds: None,
                            evaluated_at_ms: now_ms,
                            partitions: Vec::new(),
                        },
                    });
                }
            }
        }
        drop(state);
        if !gone.is_empty() {
            let gone: HashSet<&str> = gone.iter().map(String::as_str).collect();
            metrics
                .group_status
                .retain(|labels| !gone.contains(labels[0].as_str()));
        }
        if !gone_partitions.is_empty() {
            let gone: HashSet<&[String; 3]> = gone_partitions.iter().collect();
            let keep = |labels: &[String]| {
                <&[String; 3]>::try_from(labels).map_or(true, |l| !gone.contains(l))
            };
            metrics.partition_status.retain(keep);
            metrics.records.retain(keep);
            metrics.time_seconds.retain(keep);
        }
        for c in &changes {
            tracing::info!(
                group = %c.current.group, status = %c.current.status, previous = %c.previous,
                total_lag = c.current.total_lag, "consumer group status changed"
            );
        }
        changes
    }
}

/// The (topic, partition, offset) of the oldest record a group has not
/// handled on a partition; `None` when it is caught up or never committed.
fn oldest_unhandled(l: &GroupLag) -> Option<(String, u32, u64)> {
    let committed = l.committed?;
    (l.lag() > 0).then(|| {
        (
            l.topic.clone(),
            l.partition,
            committed.max(l.log_start_offset),
        )
    })
}

impl GroupState {
    fn status_of(&self, name: &str, with_trend: bool) -> GroupStatus {
        GroupStatus {
            group: name.to_owned(),
            status: self.status,
            complete: self.complete,
            total_lag: self.total_lag,
            max_time_lag_seconds: self.max_time_lag_ms.map(|ms| ms as f64 / 1000.0),
            evaluated_at_ms: self.evaluated_at_ms,
            partitions: self
                .topics
                .iter()
                .flat_map(|(topic, parts)| {
                    parts.iter().map(move |(partition, ps)| PartitionStatus {
                        topic: topic.clone(),
                        partition: *partition,
                        status: ps.status,
                        complete: ps.complete,
                        committed: ps.committed,
                        high_watermark: ps.high_watermark,
                        lag: ps.lag,
                        time_lag_seconds: ps.time_lag_ms.map(|ms| ms as f64 / 1000.0),
                        trend: if with_trend {
                            ps.window
                                .iter()
                                .map(|s| TrendPoint {
                                    sampled_at_ms: s.sampled_at_ms,
                                    committed: s.commit.offset,
                                    high_watermark: s.high_watermark,
                                    lag: s.commit.lag.unwrap_or(0),
                                })
                                .collect()
                        } else {
                            Vec::new()
                        },
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(group: &str, topic: &str, committed: u64, high_watermark: u64) -> PartitionObservation {
        PartitionObservation {
            lag: GroupLag {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition: 0,
                committed: Some(committed),
                log_start_offset: 0,
                high_watermark,
            },
            oldest_unhandled_ms: None,
        }
    }

    fn group(name: &str, partitions: Option<Vec<PartitionObservation>>) -> GroupObservation {
        GroupObservation {
            group: name.to_owned(),
            partitions,
        }
    }

    fn from_snapshot(monitor: &LagMonitor) -> Vec<(String, Status)> {
        monitor
            .snapshot()
            .into_iter()
            .map(|g| (g.group, g.status))
            .collect()
    }

    /// Rounds in which groups fill their windows, reach each status, go
    /// unread (kept), appear late and disappear: after every round the
    /// cheap accessor says what the snapshot says.
    #[test]
    fn statuses_agree_with_the_snapshot() {
        let monitor = LagMonitor::new(LagConfig::default().with_window(3), &Registry::new());
        assert_eq!(monitor.statuses(), Vec::new());
        let mut reached = HashSet::new();
        for round in 0..8u64 {
            let now_ms = 1_000 * round as i64;
            let rewound = if round < 5 { 10 * round } else { 2 };
            let mut round_seen = vec![
                group(
                    "caught-up",
                    Some(vec![seen("caught-up", "a", 10 * round, 10 * round)]),
                ),
                group("slow", Some(vec![seen("slow", "a", round, 3 * round + 1)])),
                group(
                    "stalled",
                    Some(vec![
                        seen("stalled", "a", 10 * round, 10 * round),
                        seen("stalled", "b", 5, 50 + round),
                    ]),
                ),
                group("stopped", Some(vec![seen("stopped", "a", 5, 50)])),
                group("rewound", Some(vec![seen("rewound", "a", rewound, 100)])),
                // Read once, then unreadable: what is known stays.
                group(
                    "unread",
                    (round == 0).then(|| vec![seen("unread", "a", 1, 2)]),
                ),
            ];
            if round >= 6 {
                round_seen.push(group("late", Some(vec![seen("late", "a", 0, 9)])));
            }
            if round < 4 {
                round_seen.push(group("gone", Some(vec![seen("gone", "a", 0, 9)])));
            }
            monitor.apply(now_ms, round_seen);
            let statuses = monitor.statuses();
            assert_eq!(statuses, from_snapshot(&monitor), "round {round}");
            reached.extend(statuses.into_iter().map(|(_, s)| s));
        }
        let names: Vec<String> = monitor.statuses().into_iter().map(|(g, _)| g).collect();
        assert!(names.contains(&"late".to_owned()) && !names.contains(&"gone".to_owned()));
        for s in [
            Status::Ok,
            Status::Warn,
            Status::Stall,
            Status::Stop,
            Status::Rewind,
        ] {
            assert!(reached.contains(&s), "{s} never reached: {reached:?}");
        }
    }
}
