//! `GET /console/stream`: the console's live updates (server-sent events).
//!
//! Once a second, for a principal who may read metrics, a `tick` event:
//! the graph's shape hash (`structure`), a hash of everything the pages
//! show (`state`), and each node's badge and class and each edge's rate
//! label, so the topology updates in place and other pages fetch their
//! content again only when it changed. Others get a `tick` with the time
//! only, which keeps the connection alive.

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

/// How often a tick is sent.
pub const TICK: Duration = Duration::from_secs(1);

/// One tick's payload for `who`.
pub(crate) fn tick<L: EventLog>(c: &Console<L>, who: &Principal) -> serde_json::Value {
    if !who.allows(Permission::ReadMetrics) {
        return json!({ "t": now_millis() });
    }
    let t = c.topology();
    let nodes: Vec<(String, String, String)> = t
        .nodes
        .iter()
        .map(|n| (n.id.clone(), badge(n), node_class(n)))
        .collect();
    let edges: Vec<(String, String, String)> = t
        .edges
        .iter()
        .filter(|e| e.kind != EdgeKind::MemberOf)
        .map(|e| (e.from.clone(), e.to.clone(), rate_label(e)))
        .collect();
    let mut h = std::hash::DefaultHasher::new();
    nodes.hash(&mut h);
    edges.hash(&mut h);
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
    let ticks = futures::stream::unfold(
        (c, who, tokio::time::interval(TICK)),
        |(c, who, mut every)| async move {
            every.tick().await;
            let event = Event::default()
                .event("tick")
                .json_data(tick(&c, &who))
                .unwrap_or_else(|_| Event::default().event("tick").data("{}"));
            Some((Ok(event), (c, who, every)))
        },
    );
    Sse::new(ticks).keep_alive(KeepAlive::default())
}
