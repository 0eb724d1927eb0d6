//! The live topology: service → topic → consumer group → service, from what
//! the services record as they run (the runtime's [`Lineage`]), the topics
//! and groups of the log, and rates measured over a sliding window.
//!
//! Kafka does not record producers, so a Kafka UI cannot draw this graph;
//! UltraCore's runtime records every (service, topic, role, group) edge
//! with a count of records (see `ultracore_runtime::lineage`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use ultracore_log::{EventLog, GroupLag, TopicInfo};
use ultracore_runtime::lineage::{Edge as LineageEdge, Role};

/// How far back an edge's rate looks.
pub const RATE_WINDOW_MS: i64 = 10_000;
/// Samples kept per edge (one a second is taken; more than the window).
const SAMPLES: usize = 64;

/// What a node of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Service,
    Topic,
    Group,
}

/// A node: its id is `<kind>:<name>` (`topic:esg-portfolio-events`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub name: String,
    /// The architecture layer it belongs to (`messaging` for topics and
    /// groups; a service's from the component catalogue).
    pub layer: &'static str,
    /// Topics: partitions; groups: partitions read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Topics: records stored (sum of high watermarks minus log starts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Groups: records not yet committed over their partitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// Groups: the lag monitor's status (`OK`, `WARN`, `STALL`, `STOP`,
    /// `REWIND`) when it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Services: `running`, `restarting`, `failed`… (from health).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// What an edge means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// service → topic: the service appends to the topic.
    Produces,
    /// topic → group: the group reads the topic.
    ConsumedBy,
    /// group → service: the service is the group's member.
    MemberOf,
}

/// An edge with its rate (records per second over the window).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// Records per second over the last [`RATE_WINDOW_MS`] (or since the
    /// edge was first seen, when younger).
    pub rate: f64,
    /// Records through the edge since the process started.
    pub records: u64,
}

/// The graph `GET /api/v1/topology` serves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topology {
    pub generated_at_ms: i64,
    pub window_seconds: f64,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Topology {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

pub fn service_id(name: &str) -> String {
    format!("service:{name}")
}
pub fn topic_id(name: &str) -> String {
    format!("topic:{name}")
}
pub fn group_id(name: &str) -> String {
    format!("group:{name}")
}

/// (service, topic, role, group): one lineage edge.
type EdgeKey = (String, String, Role, Option<String>);

/// Each edge's samples: (time ms, records), oldest first.
type Samples = HashMap<EdgeKey, VecDeque<(i64, u64)>>;

/// Samples of each lineage edge's record count, one a second, so rates
/// come from counts measured at two times like a Prometheus `rate()`.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    inner: Arc<Mutex<Samples>>,
}

impl Rates {
    /// Takes a sample of every edge at `now_ms`.
    pub fn sample(&self, edges: &[LineageEdge], now_ms: i64) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for e in edges {
            let key = (e.service.clone(), e.topic.clone(), e.role, e.group.clone());
            let samples = map.entry(key).or_default();
            if samples.back().is_some_and(|(t, _)| *t >= now_ms) {
                continue;
            }
            samples.push_back((now_ms, e.records));
            while samples.len() > SAMPLES {
                samples.pop_front();
            }
        }
    }

    /// Records per second of an edge over the window ending at its latest
    /// sample: the count then minus the count at the first sample inside
    /// the window (the oldest one when the edge is younger than that),
    /// over the time between them. 0 with fewer than two samples.
    pub fn rate(&self, e: &LineageEdge) -> f64 {
        let key = (e.service.clone(), e.topic.clone(), e.role, e.group.clone());
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(samples) = map.get(&key) else {
            return 0.0;
        };
        rate_of(samples)
    }
}

fn rate_of(samples: &VecDeque<(i64, u64)>) -> f64 {
    let Some(&(t1, c1)) = samples.back() else {
        return 0.0;
    };
    let from = t1 - RATE_WINDOW_MS;
    let Some(&(t0, c0)) = samples.iter().find(|(t, _)| *t >= from) else {
        return 0.0;
    };
    if t1 <= t0 {
        return 0.0;
    }
    c1.saturating_sub(c0) as f64 * 1000.0 / (t1 - t0) as f64
}

/// Everything the graph is built from, read at one moment.
#[derive(Debug, Default)]
pub struct Inputs {
    pub edges: Vec<LineageEdge>,
    pub topics: Vec<TopicInfo>,
    pub lags: Vec<GroupLag>,
    /// Service name → state (`running`, …).
    pub services: BTreeMap<String, String>,
    /// Group → status from the lag monitor.
    pub statuses: BTreeMap<String, String>,
}

/// Reads the log's topics and the lag of every group the lineage or the
/// log knows.
pub async fn read_log<L: EventLog>(
    log: &L,
    edges: &[LineageEdge],
) -> ultracore_log::Result<(Vec<TopicInfo>, Vec<GroupLag>)> {
    let topics = log.list_topics().await?;
    let mut groups: BTreeSet<String> = edges.iter().filter_map(|e| e.group.clone()).collect();
    // Groups the lineage has not seen (tools, other deployments' services
    // sharing the log) still get their lag.
    groups.extend(log.list_groups().await.unwrap_or_default());
    let mut lags = Vec::new();
    for g in groups {
        if let Ok(l) = log.group_lag(&g).await {
            lags.extend(l);
        }
    }
    // A running service's group that has not committed on a topic yet (it
    // had nothing to read) still lags by what the topic holds: the
    // services read from the beginning.
    let mut known: BTreeSet<(String, String, u32)> = lags
        .iter()
        .map(|l| (l.group.clone(), l.topic.clone(), l.partition))
        .collect();
    for e in edges.iter().filter(|e| e.role == Role::Consumes) {
        let (Some(group), Some(t)) = (&e.group, topics.iter().find(|t| t.name == e.topic)) else {
            continue;
        };
        for p in &t.partitions {
            if known.insert((group.clone(), t.name.clone(), p.partition)) {
                lags.push(GroupLag {
                    group: group.clone(),
                    topic: t.name.clone(),
                    partition: p.partition,
                    committed: None,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                });
            }
        }
    }
    Ok((topics, lags))
}

/// The graph of `inputs`, rates from `rates`, each service placed in its
/// layer by `layer_of`.
pub fn build(
    inputs: &Inputs,
    rates: &Rates,
    layer_of: impl Fn(&str) -> &'static str,
    now_ms: i64,
) -> Topology {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String), Edge> = BTreeMap::new();
    let service_node = |name: &str| Node {
        id: service_id(name),
        kind: NodeKind::Service,
        name: name.to_owned(),
        layer: layer_of(name),
        partitions: None,
        records: None,
        lag: None,
        status: None,
        state: inputs.services.get(name).cloned(),
    };
    for t in &inputs.topics {
        nodes.insert(
            topic_id(&t.name),
            Node {
                id: topic_id(&t.name),
                kind: NodeKind::Topic,
                name: t.name.clone(),
                layer: "messaging",
                partitions: Some(t.partitions.len() as u32),
                records: Some(
                    t.partitions
                        .iter()
                        .map(|p| p.high_watermark.saturating_sub(p.log_start_offset))
                        .sum(),
                ),
                lag: None,
                status: None,
                state: None,
            },
        );
    }
    for name in inputs.services.keys() {
        nodes.insert(service_id(name), service_node(name));
    }
    let mut group_lag: BTreeMap<&str, (u64, u32)> = BTreeMap::new();
    for l in &inputs.lags {
        let e = group_lag.entry(l.group.as_str()).or_default();
        e.0 += l.lag();
        e.1 += 1;
    }
    let group_node = |name: &str, nodes: &mut BTreeMap<String, Node>| {
        nodes.entry(group_id(name)).or_insert_with(|| Node {
            id: group_id(name),
            kind: NodeKind::Group,
            name: name.to_owned(),
            layer: "messaging",
            partitions: group_lag.get(name).map(|g| g.1),
            lag: Some(group_lag.get(name).map_or(0, |g| g.0)),
            records: None,
            status: inputs.statuses.get(name).cloned(),
            state: None,
        });
    };
    for e in &inputs.edges {
        nodes
            .entry(service_id(&e.service))
            .or_insert_with(|| service_node(&e.service));
        nodes.entry(topic_id(&e.topic)).or_insert_with(|| Node {
            id: topic_id(&e.topic),
            kind: NodeKind::Topic,
            name: e.topic.clone(),
            layer: "messaging",
            partitions: None,
            records: None,
            lag: None,
            status: None,
            state: None,
        });
        let rate = rates.rate(e);
        match (e.role, &e.group) {
            (Role::Produces, _) => {
                let key = (service_id(&e.service), topic_id(&e.topic));
                let edge = edges.entry(key.clone()).or_insert_with(|| Edge {
                    from: key.0,
                    to: key.1,
                    kind: EdgeKind::Produces,
                    rate: 0.0,
                    records: 0,
                });
                edge.rate += rate;
                edge.records += e.records;
            }
            (Role::Consumes, Some(group)) => {
                group_node(group, &mut nodes);
                let key = (topic_id(&e.topic), group_id(group));
                let edge = edges.entry(key.clone()).or_insert_with(|| Edge {
                    from: key.0,
                    to: key.1,
                    kind: EdgeKind::ConsumedBy,
                    rate: 0.0,
                    records: 0,
                });
                edge.rate += rate;
                edge.records += e.records;
                let key = (group_id(group), service_id(&e.service));
                let member = edges.entry(key.clone()).or_insert_with(|| Edge {
                    from: key.0,
                    to: key.1,
                    kind: EdgeKind::MemberOf,
                    rate: 0.0,
                    records: 0,
                });
                member.rate += rate;
                member.records += e.records;
            }
            (Role::Consumes, None) => {}
        }
    }
    // Groups with committed offsets that no running service recorded (a
    // tool's group, a service of another process): shown with their topics.
    for l in &inputs.lags {
        group_node(&l.group, &mut nodes);
        let key = (topic_id(&l.topic), group_id(&l.group));
        if nodes.contains_key(&key.0) {
            edges.entry(key.clone()).or_insert_with(|| Edge {
                from: key.0,
                to: key.1,
                kind: EdgeKind::ConsumedBy,
                rate: 0.0,
                records: 0,
            });
        }
    }
    Topology {
        generated_at_ms: now_ms,
        window_seconds: RATE_WINDOW_MS as f64 / 1000.0,
        nodes: nodes.into_values().collect(),
        edges: edges.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_log::PartitionInfo;

    fn edge(service: &str, topic: &str, role: Role, group: Option<&str>, n: u64) -> LineageEdge {
        LineageEdge {
            service: service.into(),
            topic: topic.into(),
            role,
            group: group.map(Into::into),
            first_seen_ms: 0,
            last_seen_ms: 0,
            records: n,
        }
    }

    #[test]
    fn rates_come_from_counts_at_two_times_inside_the_window() {
        let rates = Rates::default();
        let mut e = edge("a", "t", Role::Produces, None, 0);
        assert_eq!(rates.rate(&e), 0.0);
        for s in 0..=30 {
            e.records = s * 50;
            rates.sample(std::slice::from_ref(&e), s as i64 * 1000);
        }
        // 50 records a second; the window is the last 10 s.
        assert!((rates.rate(&e) - 50.0).abs() < 1e-9, "{}", rates.rate(&e));
        // A burst in the last second: (2500 - 1050) records over 21 s .. 31 s.
        e.records += 1000;
        rates.sample(std::slice::from_ref(&e), 31_000);
        let r = rates.rate(&e);
        assert!((r - 145.0).abs() < 1e-9, "{r}");
        // A sample at the same time is ignored.
        e.records += 10_000;
        rates.sample(std::slice::from_ref(&e), 31_000);
        assert!((rates.rate(&e) - r).abs() < 1e-9);
    }

    #[test]
    fn the_graph_links_services_topics_and_groups() {
        let inputs = Inputs {
            edges: vec![
                edge("api", "requests", Role::Produces, None, 10),
                edge("worker", "requests", Role::Consumes, Some("worker"), 8),
                edge("worker", "results", Role::Produces, None, 8),
            ],
            topics: vec![TopicInfo {
                name: "requests".into(),
                partitions: vec![PartitionInfo {
                    partition: 0,
                    log_start_offset: 0,
                    high_watermark: 10,
                }],
                retention: None,
            }],
            lags: vec![
                GroupLag {
                    group: "worker".into(),
                    topic: "requests".into(),
                    partition: 0,
                    committed: Some(8),
                    log_start_offset: 0,
                    high_watermark: 10,
                },
                GroupLag {
                    group: "a-tool".into(),
                    topic: "requests".into(),
                    partition: 0,
                    committed: Some(1),
                    log_start_offset: 0,
                    high_watermark: 10,
                },
            ],
            services: [("worker".to_owned(), "running".to_owned())].into(),
            statuses: [("worker".to_owned(), "OK".to_owned())].into(),
        };
        let t = build(&inputs, &Rates::default(), |_| "orchestration", 5);
        let ids: Vec<&str> = t.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "group:a-tool",
                "group:worker",
                "service:api",
                "service:worker",
                "topic:requests",
                "topic:results"
            ]
        );
        let worker = t.node("group:worker").unwrap();
        assert_eq!(
            (worker.lag, worker.status.as_deref()),
            (Some(2), Some("OK"))
        );
        assert_eq!(t.node("group:a-tool").unwrap().lag, Some(9));
        assert_eq!(t.node("topic:requests").unwrap().records, Some(10));
        assert_eq!(
            t.node("service:worker").unwrap().state.as_deref(),
            Some("running")
        );
        let kinds: Vec<(&str, &str, EdgeKind)> = t
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.kind))
            .collect();
        assert!(kinds.contains(&("service:api", "topic:requests", EdgeKind::Produces)));
        assert!(kinds.contains(&("topic:requests", "group:worker", EdgeKind::ConsumedBy)));
        assert!(kinds.contains(&("group:worker", "service:worker", EdgeKind::MemberOf)));
        assert!(kinds.contains(&("topic:requests", "group:a-tool", EdgeKind::ConsumedBy)));
        assert!(kinds.contains(&("service:worker", "topic:results", EdgeKind::Produces)));
        assert_eq!(t.edges.len(), 5);
    }
}
