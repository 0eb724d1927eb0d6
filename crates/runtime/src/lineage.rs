//! Lineage: which service produces and which consumes each topic, recorded
//! by the runtime as it happens, so the data catalogue can show each data
//! product's upstream topics and downstream consumer groups without anyone
//! declaring them.
//!
//! Kafka does not record who produced a topic. UltraCore owns every producer
//! and consumer, so it records them itself: a log wrapped in [`Traced`]
//! counts every append (a [`Role::Produces`] edge, dead-letter topics
//! included) and every consumer it creates (a [`Role::Consumes`] edge per
//! subscribed topic, with the consumer group, counted per poll) in a
//! [`Lineage`] under the service's name.
//!
//! - The runtime traces the log of every consumer loop ([`crate::run_consumer`],
//!   [`crate::run_pipelined`], so every [`crate::Registration::consumer`]): its
//!   consumption and the dead letters it writes are recorded without the
//!   service doing anything.
//! - A service's own appends are recorded when it writes through
//!   [`crate::ServiceContext::traced`]: a consumer's handler gets its log
//!   from `ctx.traced(log)` in the `make` closure, a task service wraps its
//!   log the same way when it starts.
//! - [`publisher`] puts every newly seen edge on `mesh.lineage` as a
//!   `lineage_edge_observed` event; [`Lineage::fold`] and [`read_lineage`]
//!   turn those events back into a [`Lineage`], in another process.
//!
//! # Layout
//!
//! - this file: [`Role`], [`Edge`] and the shared registry [`Lineage`].
//! - `traced`: [`Traced`], the recording [`ultracore_log::EventLog`], and its
//!   [`TracedConsumer`].
//! - `publish`: the `mesh.lineage` events: [`publisher`], [`publish`],
//!   [`envelope`], [`edge_of`], [`read_lineage`].

mod publish;
mod traced;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use ultracore_log::{now_millis, Record, DLQ_SUFFIX};

pub use publish::{
    edge_of, envelope, publish, publisher, read_lineage, LineageRead, EDGE_OBSERVED, PUBLISHER,
    SCHEMA_VERSION, TOPIC,
};
pub use traced::{Traced, TracedConsumer};

/// What a service does with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It appends to the topic (dead-letter topics included).
    Produces,
    /// It reads the topic as a member of a consumer group.
    Consumes,
}

impl Role {
    /// `produces` or `consumes`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Produces => "produces",
            Role::Consumes => "consumes",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One (service, topic, role, group) seen in this process, with when and
/// how much. Edges sort by service, topic, role, then group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Edge {
    pub service: String,
    /// The topic as UltraCore names it (without a Kafka topic prefix).
    pub topic: String,
    pub role: Role,
    /// The consumer group of a [`Role::Consumes`] edge; `None` for producers.
    #[serde(default)]
    pub group: Option<String>,
    /// Milliseconds since the epoch.
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Records appended or polled. A consumer's edge is recorded with 0 when
    /// it joins, before anything is polled.
    pub records: u64,
}

impl Edge {
    /// Whether its topic is a dead-letter topic (`<topic>.dlq`).
    pub fn is_dead_letter(&self) -> bool {
        self.topic.ends_with(DLQ_SUFFIX)
    }
}

/// The shared registry of edges of a process (or, folded from
/// `mesh.lineage`, of the platform). Cheap to clone: clones share one
/// registry.
///
/// Recording takes one lock, held only to find the edge and add to its
/// counters; it allocates only the first time an edge is seen.
#[derive(Clone, Default)]
pub struct Lineage {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken when an edge is first recorded (see [`Lineage::wait_new`]).
    new: Notify,
}

#[derive(Default)]
struct State {
    /// service → topic → the (few) roles and groups of that pair. Nested
    /// maps so a lookup by `&str` finds an edge without allocating a key.
    edges: HashMap<String, HashMap<String, Vec<Slot>>>,
    /// Edges first recorded since the last [`Lineage::take_new`], in order.
    new: Vec<Edge>,
    count: usize,
}

struct Slot {
    role: Role,
    group: Option<String>,
    first_seen_ms: i64,
    last_seen_ms: i64,
    records: u64,
}

impl Slot {
    fn edge(&self, service: &str, topic: &str) -> Edge {
        Edge {
            service: service.to_owned(),
            topic: topic.to_owned(),
            role: self.role,
            group: self.group.clone(),
            first_seen_ms: self.first_seen_ms,
            last_seen_ms: self.last_seen_ms,
            records: self.records,
        }
    }
}

/// How [`State::touch`] found an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touched {
    Known,
    New,
}

impl State {
    /// The slot of an edge, created when missing.
    fn slot(
        &mut self,
        service: &str,
        topic: &str,
        role: Role,
        group: Option<&str>,
        now: i64,
    ) -> (&mut Slot, Touched) {
        // `contains_key` then `get_mut` rather than `entry`: `entry` takes
        // an owned key, an allocation on every call of the hot path.
        if !self.edges.contains_key(service) {
            self.edges.insert(service.to_owned(), HashMap::new());
        }
        let topics = self.edges.get_mut(service).expect("inserted above");
        if !topics.contains_key(topic) {
            topics.insert(topic.to_owned(), Vec::new());
        }
        let slots = topics.get_mut(topic).expect("inserted above");
        match slots
            .iter()
            .position(|s| s.role == role && s.group.as_deref() == group)
        {
            Some(i) => (&mut slots[i], Touched::Known),
            None => {
                slots.push(Slot {
                    role,
                    group: group.map(str::to_owned),
                    first_seen_ms: now,
                    last_seen_ms: now,
                    records: 0,
                });
                self.count += 1;
                (slots.last_mut().expect("pushed above"), Touched::New)
            }
        }
    }

    /// Adds `n` records to an edge seen at `now`; a new edge is queued for
    /// [`Lineage::take_new`].
    fn touch(
        &mut self,
        service: &str,
        topic: &str,
        role: Role,
        group: Option<&str>,
        n: u64,
        now: i64,
    ) -> Touched {
        let (slot, touched) = self.slot(service, topic, role, group, now);
        slot.records += n;
        slot.last_seen_ms = slot.last_seen_ms.max(now);
        if touched == Touched::New {
            let edge = slot.edge(service, topic);
            self.new.push(edge);
        }
        touched
    }

    fn get(&self, service: &str, topic: &str, role: Role, group: Option<&str>) -> Option<&Slot> {
        self.edges
            .get(service)?
            .get(topic)?
            .iter()
            .find(|s| s.role == role && s.group.as_deref() == group)
    }

    fn all(&self) -> impl Iterator<Item = Edge> + '_ {
        self.edges.iter().flat_map(|(service, topics)| {
            topics
                .iter()
                .flat_map(move |(topic, slots)| slots.iter().map(move |s| s.edge(service, topic)))
        })
    }
}

impl Lineage {
    /// An empty registry.
    pub fn new() -> Self {
        Lineage::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left at worst one counter short:
        // recording goes on.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touched(&self, touched: Touched) -> bool {
        if touched == Touched::New {
            // Outside the lock. A permit is stored when nobody waits, so
            // an edge recorded between a `take_new` and the next
            // `wait_new` is not missed.
            self.shared.new.notify_one();
            return true;
        }
        false
    }

    /// Records that `service` appended `records` records to `topic` (a
    /// dead-letter topic too). Returns whether the edge is new.
    pub fn record_produce(&self, service: &str, topic: &str, records: u64) -> bool {
        let now = now_millis();
        let t = self
            .state()
            .touch(service, topic, Role::Produces, None, records, now);
        self.touched(t)
    }

    /// Records that `service`, as a member of `group`, read `records`
    /// records of `topic` (0 when it joins). Returns whether the edge is new.
    pub fn record_consume(&self, service: &str, topic: &str, group: &str, records: u64) -> bool {
        let now = now_millis();
        let t = self
            .state()
            .touch(service, topic, Role::Consumes, Some(group), records, now);
        self.touched(t)
    }

    /// Records a member of `group` joining on `topics` (0 records each),
    /// under one lock.
    pub(crate) fn record_joined(&self, service: &str, group: &str, topics: &[String]) {
        let now = now_millis();
        let mut state = self.state();
        let mut new = false;
        for topic in topics {
            new |= state.touch(service, topic, Role::Consumes, Some(group), 0, now) == Touched::New;
        }
        drop(state);
        if new {
            self.touched(Touched::New);
        }
    }

    /// Records a poll's records, counted per topic under one lock.
    pub(crate) fn record_polled(&self, service: &str, group: &str, records: &[Record]) {
        let now = now_millis();
        let mut state = self.state();
        let mut new = false;
        // A poll returns runs of one partition: one lookup per run.
        for run in records.chunk_by(|a, b| a.topic == b.topic) {
            new |= state.touch(
                service,
                &run[0].topic,
                Role::Consumes,
                Some(group),
                run.len() as u64,
                now,
            ) == Touched::New;
        }
        drop(state);
        if new {
            self.touched(Touched::New);
        }
    }

    /// Merges an edge read from elsewhere (`mesh.lineage`, another
    /// process): the earliest first sight, the latest last sight, the
    /// larger count (each event carries a running count, so the larger is
    /// the later). Not queued for [`Lineage::take_new`]: it is already on
    /// the log. Returns whether the edge is new to this registry.
    pub fn merge(&self, edge: &Edge) -> bool {
        let mut state = self.state();
        let (slot, touched) = state.slot(
            &edge.service,
            &edge.topic,
            edge.role,
            edge.group.as_deref(),
            edge.first_seen_ms,
        );
        slot.first_seen_ms = slot.first_seen_ms.min(edge.first_seen_ms);
        slot.last_seen_ms = slot.last_seen_ms.max(edge.last_seen_ms);
        slot.records = slot.records.max(edge.records);
        touched == Touched::New
    }

    /// Folds a `lineage_edge_observed` record (see [`publisher`]) into this
    /// registry. Returns whether its edge is new; `Ok(false)` also for a
    /// record of another event type (a later addition to the topic). Errors
    /// when the record is not a readable event.
    pub fn fold(&self, record: &Record) -> Result<bool, ultracore_log::DecodeError> {
        Ok(match edge_of(record)? {
            Some(edge) => self.merge(&edge),
            None => false,
        })
    }

    /// Every edge, sorted.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges: Vec<Edge> = self.state().all().collect();
        edges.sort_unstable();
        edges
    }

    /// One edge, as it is now.
    pub fn get(&self, service: &str, topic: &str, role: Role, group: Option<&str>) -> Option<Edge> {
        self.state()
            .get(service, topic, role, group)
            .map(|s| s.edge(service, topic))
    }

    /// Edges known.
    pub fn len(&self) -> usize {
        self.state().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn select(&self, keep: impl Fn(&Edge) -> bool) -> Vec<Edge> {
        let mut edges: Vec<Edge> = self.state().all().filter(|e| keep(e)).collect();
        edges.sort_unstable();
        edges
    }

    /// What `service` reads: its [`Role::Consumes`] edges, sorted.
    pub fn upstream_of(&self, service: &str) -> Vec<Edge> {
        let state = self.state();
        let Some(topics) = state.edges.get(service) else {
            return Vec::new();
        };
        let mut edges: Vec<Edge> = topics
            .iter()
            .flat_map(|(topic, slots)| {
                slots
                    .iter()
                    .filter(|s| s.role == Role::Consumes)
                    .map(move |s| s.edge(service, topic))
            })
            .collect();
        edges.sort_unstable();
        edges
    }

    /// What `service` writes: its [`Role::Produces`] edges (dead-letter
    /// topics included), sorted.
    pub fn downstream_of(&self, service: &str) -> Vec<Edge> {
        self.select(|e| e.service == service && e.role == Role::Produces)
    }

    /// Who writes `topic`: its [`Role::Produces`] edges, sorted by service.
    pub fn producers_of(&self, topic: &str) -> Vec<Edge> {
        self.select(|e| e.topic == topic && e.role == Role::Produces)
    }

    /// Who reads `topic`: its [`Role::Consumes`] edges (each with its
    /// consumer group), sorted by service.
    pub fn consumers_of(&self, topic: &str) -> Vec<Edge> {
        self.select(|e| e.topic == topic && e.role == Role::Consumes)
    }

    /// The edges first recorded since the last call, in the order they were
    /// first seen, with their counts as they are now. Meant for one reader
    /// (the [`publisher`]): each new edge is returned once. Edges
    /// [merged](Lineage::merge) from elsewhere are not included.
    pub fn take_new(&self) -> Vec<Edge> {
        let mut state = self.state();
        let mut new = std::mem::take(&mut state.new);
        for edge in &mut new {
            if let Some(s) = state.get(&edge.service, &edge.topic, edge.role, edge.group.as_deref())
            {
                edge.last_seen_ms = s.last_seen_ms;
                edge.records = s.records;
            }
        }
        new
    }

    /// Waits until an edge is first recorded; returns at once when one was
    /// recorded since the last wait. It may return with nothing new (an
    /// edge already taken): call [`Lineage::take_new`] and wait again.
    /// Cancel-safe.
    pub async fn wait_new(&self) {
        self.shared.new.notified().await;
    }
}

impl std::fmt::Debug for Lineage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lineage")
            .field("edges", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(edges: &[Edge]) -> Vec<(&str, &str, Role, Option<&str>)> {
        edges
            .iter()
            .map(|e| {
                (
                    e.service.as_str(),
                    e.topic.as_str(),
                    e.role,
                    e.group.as_deref(),
                )
            })
            .collect()
    }

    #[test]
    fn counts_per_edge_and_says_when_an_edge_is_new() {
        let l = Lineage::new();
        assert!(l.is_empty());
        assert!(l.record_produce("svc", "b", 2));
        assert!(!l.record_produce("svc", "b", 3));
        assert!(l.record_consume("svc", "a", "g1", 4));
        assert!(!l.record_consume("svc", "a", "g1", 1));
        // Another group of the same service on the same topic is another edge.
        assert!(l.record_consume("svc", "a", "g2", 0));
        assert_eq!(l.len(), 3);
        let b = l.get("svc", "b", Role::Produces, None).unwrap();
        assert_eq!(b.records, 5);
        assert!(b.first_seen_ms <= b.last_seen_ms);
        assert_eq!(
            l.get("svc", "a", Role::Consumes, Some("g1"))
                .unwrap()
                .records,
            5
        );
        assert_eq!(
            l.get("svc", "a", Role::Consumes, Some("g2"))
                .unwrap()
                .records,
            0
        );
        assert!(l.get("svc", "a", Role::Produces, None).is_none());
        assert!(l.get("other", "a", Role::Consumes, Some("g1")).is_none());
    }

    #[test]
    fn edges_are_sorted_and_queries_select_them() {
        let l = Lineage::new();
        l.record_produce("writer", "b", 1);
        l.record_consume("reader", "b", "readers", 1);
        l.record_consume("writer", "a", "writers", 1);
        l.record_produce("writer", "a.dlq", 1);
        l.record_produce("other-writer", "b", 1);
        l.record_consume("archiver", "b", "archive", 1);
        assert_eq!(
            keys(&l.edges()),
            vec![
                ("archiver", "b", Role::Consumes, Some("archive")),
                ("other-writer", "b", Role::Produces, None),
                ("reader", "b", Role::Consumes, Some("readers")),
                ("writer", "a", Role::Consumes, Some("writers")),
                ("writer", "a.dlq", Role::Produces, None),
                ("writer", "b", Role::Produces, None),
            ]
        );
        assert_eq!(
            keys(&l.upstream_of("writer")),
            vec![("writer", "a", Role::Consumes, Some("writers"))]
        );
        assert_eq!(
            keys(&l.downstream_of("writer")),
            vec![
                ("writer", "a.dlq", Role::Produces, None),
                ("writer", "b", Role::Produces, None)
            ]
        );
        assert_eq!(
            keys(&l.producers_of("b")),
            vec![
                ("other-writer", "b", Role::Produces, None),
                ("writer", "b", Role::Produces, None)
            ]
        );
        assert_eq!(
            keys(&l.consumers_of("b")),
            vec![
                ("archiver", "b", Role::Consumes, Some("archive")),
                ("reader", "b", Role::Consumes, Some("readers"))
            ]
        );
        assert!(l.upstream_of("nobody").is_empty());
        assert!(l.producers_of("nothing").is_empty());
        assert!(l
            .get("writer", "a.dlq", Role::Produces, None)
            .unwrap()
            .is_dead_letter());
        assert!(!l
            .get("writer", "b", Role::Produces, None)
            .unwrap()
            .is_dead_letter());
    }

    #[test]
    fn new_edges_are_taken_once_with_their_counts_as_they_are_now() {
        let l = Lineage::new();
        l.record_produce("svc", "b", 1);
        l.record_consume("svc", "a", "g", 0);
        l.record_produce("svc", "b", 9);
        let new = l.take_new();
        assert_eq!(
            keys(&new),
            vec![
                ("svc", "b", Role::Produces, None),
                ("svc", "a", Role::Consumes, Some("g"))
            ]
        );
        assert_eq!(new[0].records, 10);
        assert!(l.take_new().is_empty());
        l.record_produce("svc", "b", 1);
        assert!(l.take_new().is_empty(), "a known edge is not new again");
        l.record_produce("svc", "c", 1);
        assert_eq!(
            keys(&l.take_new()),
            vec![("svc", "c", Role::Produces, None)]
        );
    }

    #[test]
    fn merged_edges_keep_the_widest_window_and_the_larger_count() {
        let l = Lineage::new();
        let edge = Edge {
            service: "svc".into(),
            topic: "a".into(),
            role: Role::Consumes,
            group: Some("g".into()),
            first_seen_ms: 100,
            last_seen_ms: 200,
            records: 5,
        };
        assert!(l.merge(&edge));
        assert!(!l.merge(&Edge {
            first_seen_ms: 50,
            last_seen_ms: 150,
            records: 3,
            ..edge.clone()
        }));
        let got = l.get("svc", "a", Role::Consumes, Some("g")).unwrap();
        assert_eq!(
            (got.first_seen_ms, got.last_seen_ms, got.records),
            (50, 200, 5)
        );
        assert!(
            l.take_new().is_empty(),
            "merged edges are already on the log"
        );
    }

    #[test]
    fn a_poll_is_counted_per_topic() {
        let l = Lineage::new();
        let rec = |topic: &str| Record {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: None,
            value: Vec::new(),
            headers: Vec::new(),
        };
        l.record_joined("svc", "g", &["a".into(), "b".into(), "c".into()]);
        l.record_polled("svc", "g", &[rec("a"), rec("a"), rec("b"), rec("a")]);
        let count = |t: &str| l.get("svc", t, Role::Consumes, Some("g")).unwrap().records;
        assert_eq!((count("a"), count("b"), count("c")), (3, 1, 0));
        assert_eq!(l.take_new().len(), 3);
    }

    #[test]
    fn serializes_in_snake_case() {
        let edge = Edge {
            service: "svc".into(),
            topic: "b".into(),
            role: Role::Produces,
            group: None,
            first_seen_ms: 1,
            last_seen_ms: 2,
            records: 3,
        };
        let json = serde_json::to_value(&edge).unwrap();
        assert_eq!(json["role"], "produces");
        assert_eq!(json["group"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<Edge>(json).unwrap(), edge);
        let json = serde_json::json!({"service": "s", "topic": "a", "role": "consumes",
            "group": "g", "first_seen_ms": 1, "last_seen_ms": 1, "records": 0});
        let edge: Edge = serde_json::from_value(json).unwrap();
        assert_eq!(
            (edge.role, edge.group.as_deref()),
            (Role::Consumes, Some("g"))
        );
    }

    #[tokio::test]
    async fn wait_new_wakes_for_an_edge_recorded_before_or_while_waiting() {
        let l = Lineage::new();
        l.record_produce("svc", "b", 1);
        // Recorded before the wait: a stored permit, no lost wake-up.
        tokio::time::timeout(std::time::Duration::from_secs(5), l.wait_new())
            .await
            .unwrap();
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.wait_new().await }
        });
        tokio::task::yield_now().await;
        l.record_consume("svc", "a", "g", 0);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
