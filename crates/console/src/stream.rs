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

/// One tick's payload for `who`, with only what changed since `sent`.
pub(crate) fn tick<L: EventLog>(
    c: &Console<L>,
    who: &Principal,
    sent: &mut Sent,
) -> serde_json::Value {
    if !who.allows(Permission::ReadMetrics) {
        return json!({ "t": now_millis() });
    }
    let t = c.topology();
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
            if !first {
                // Right after the sampler's next reading (or after TICK).
                let _ = tokio::time::timeout(TICK, readings.changed()).await;
            }
            let event = Event::default()
                .event("tick")
                .json_data(tick(&c, &who, &mut sent))
                .unwrap_or_else(|_| Event::default().event("tick").data("{}"));
            Some((Ok(event), (c, who, readings, sent, false)))
        },
    );
    Sse::new(ticks).keep_alive(KeepAlive::default())
}
