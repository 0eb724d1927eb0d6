//! `GET /console/stream`: the console's live updates (server-sent events).
//!
//! Right after each reading of the log (once a second), for a principal
//! who may read metrics, a `tick` event: the graph's shape hash
//! (`structure`), a hash of everything the pages show (`state`), and the
//! node badges and classes and edge rate labels that changed since this
//! stream's last tick (all of them in its first), so the topology updates
//! in place and other pages fetch their content again only when it
//! changed. Others get a `tick` with the time only, which keeps the
//! connection alive.
//!
//! The graph a tick right after a reading compares with is built once for
//! that reading and shared by every open stream
//! ([`Console::reading_topology`]), so N open pages cost one build a
//! second, not N.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures::Stream;
use serde_json::json;
use ultracore_http::{Permission, Principal};
use ultracore_log::{now_millis, EventLog};

use crate::pages::{badge, node_class, rate_label, structure};
use crate::topology::EdgeKind;
use crate::Console;

/// Longest wait for a new reading before a tick is sent anyway.
pub const TICK: Duration = Duration::from_secs(1);

/// What a stream sent last: node id → (badge, class), edge → label.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    nodes: HashMap<String, (String, String)>,
    edges: HashMap<(String, String), String>,
}

/// Where a tick's graph comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Graph {
    /// Right after a reading of the log: the one built for that reading,
    /// shared by every stream ticking on it.
    Reading,
    /// A stream's first tick, or one after [`TICK`] without a reading
    /// (services' states and rates may have moved meanwhile): built now.
    Now,
}

/// One tick's payload for `who`, with only what changed since `sent`.
pub(crate) async fn tick<L: EventLog>(
    c: &Console<L>,
    who: &Principal,
    sent: &mut Sent,
    graph: Graph,
) -> serde_json::Value {
    if !who.allows(Permission::ReadMetrics) {
        return json!({ "t": now_millis() });
    }
    let t = match graph {
        Graph::Reading => c.reading_topology().await,
        Graph::Now => Arc::new(c.topology()),
    };
    let mut h = std::hash::DefaultHasher::new();
    let mut nodes = Vec::new();
    for n in &t.nodes {
        let now = (badge(n), node_class(n));
        (&n.id, &now).hash(&mut h);
        if sent.nodes.get(&n.id) != Some(&now) {
            nodes.push((n.id.clone(), now.0.clone(), now.1.clone()));
            sent.nodes.insert(n.id.clone(), now);
        }
    }
    let mut edges = Vec::new();
    for e in t.edges.iter().filter(|e| e.kind != EdgeKind::MemberOf) {
        let label = rate_label(e);
        (&e.from, &e.to, &label).hash(&mut h);
        let key = (e.from.clone(), e.to.clone());
        if sent.edges.get(&key) != Some(&label) {
            edges.push((e.from.clone(), e.to.clone(), label.clone()));
            sent.edges.insert(key, label);
        }
    }
    c.services().hash(&mut h);
    json!({
        "t": now_millis(),
        "structure": structure(&t),
        "state": format!("{:016x}", h.finish()),
        "nodes": nodes,
        "edges": edges,
    })
}

pub(crate) async fn stream<L: EventLog>(
    State(c): State<Arc<Console<L>>>,
    Extension(who): Extension<Principal>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let readings = c.readings.subscribe();
    let ticks = futures::stream::unfold(
        (c, who, readings, Sent::default(), true),
        |(c, who, mut readings, mut sent, first)| async move {
            let graph = if first {
                Graph::Now
            } else {
                // Right after the sampler's next reading (or after TICK).
                match tokio::time::timeout(TICK, readings.changed()).await {
                    Ok(Ok(())) => Graph::Reading,
                    _ => Graph::Now,
                }
            };
            let event = Event::default()
                .event("tick")
                .json_data(tick(&c, &who, &mut sent, graph).await)
                .unwrap_or_else(|_| Event::default().event("tick").data("{}"));
            Some((Ok(event), (c, who, readings, sent, false)))
        },
    );
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ultracore_auth::{Authenticator, KeyStore, RateLimit, RateLimiter};
    use ultracore_http::{AuthMethod, EdgeConfig, Guard, Role, Scope};
    use ultracore_log::{EventLogExt, NewRecord, TopicSpec};
    use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
    use ultracore_runtime::{Health, Lineage, Tracer};

    use super::*;
    use crate::Setting;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn console(keys: &Path, log: EmbeddedLog) -> TestResult<Arc<Console<EmbeddedLog>>> {
        let guard = Guard::new(
            EdgeConfig::default(),
            Authenticator::new(Arc::new(KeyStore::open(keys)?)),
            RateLimiter::new(RateLimit::default())?,
        );
        Ok(Console::new(
            log,
            Lineage::new(),
            Health::new(),
            Tracer::default(),
            guard,
            Setting::default(),
        ))
    }

    /// A tick's payload without its time.
    fn untimed(mut tick: serde_json::Value) -> serde_json::Value {
        if let Some(o) = tick.as_object_mut() {
            o.remove("t");
        }
        tick
    }

    #[tokio::test]
    async fn streams_share_one_graph_per_reading_and_send_only_changes() -> TestResult {
        let (logs, keys) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let log = EmbeddedLog::open(logs.path(), EmbeddedOptions::default())?;
        log.create_topic(&TopicSpec::new("requests", 1)).await?;
        let c = console(keys.path(), log.clone())?;
        c.sample().await;

        // Streams ticking on one reading, at once: one graph, shared.
        let graphs = futures::future::join_all((0..8).map(|_| c.reading_topology())).await;
        assert!(graphs.iter().all(|g| Arc::ptr_eq(g, &graphs[0])));

        // A stream sends from the shared graph what it sends from its own.
        let who = Principal::local();
        let (mut own, mut shared) = (Sent::default(), Sent::default());
        let first = tick(&c, &who, &mut own, Graph::Now).await;
        let from_shared = tick(&c, &who, &mut shared, Graph::Reading).await;
        assert_eq!(untimed(from_shared), untimed(first.clone()));
        assert_eq!(
            first["nodes"],
            json!([["topic:requests", "0 records", "topic"]])
        );

        // The next reading has a graph of its own; nothing changed, so
        // nothing is sent.
        c.sample().await;
        let next = c.reading_topology().await;
        assert!(!Arc::ptr_eq(&next, &graphs[0]));
        let quiet = tick(&c, &who, &mut shared, Graph::Reading).await;
        assert_eq!(quiet["nodes"], json!([]));
        assert_eq!(quiet["edges"], json!([]));
        assert_eq!(quiet["state"], first["state"]);

        // A record arrives: only its topic's badge is sent.
        log.append_one("requests", NewRecord::unkeyed("x")).await?;
        c.sample().await;
        let changed = tick(&c, &who, &mut shared, Graph::Reading).await;
        assert_eq!(
            changed["nodes"],
            json!([["topic:requests", "1 records", "topic"]])
        );
        assert_ne!(changed["state"], first["state"]);
        let again = tick(&c, &who, &mut own, Graph::Now).await;
        assert_eq!(untimed(again), untimed(changed));

        // Who may not read metrics gets the time only.
        let viewer = Principal::new("viewer", None, Role::Viewer, Scope::All, AuthMethod::ApiKey);
        let t = tick(&c, &viewer, &mut Sent::default(), Graph::Reading).await;
        let keys: Vec<&String> = t
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["t"]);
        Ok(())
    }
}
