//! Live streams (server-sent events): the log's events as they are
//! appended, and notifications as they are stored.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use ultracore_http::Principal;
use ultracore_log::{Consumer, ConsumerOptions, EventLog, RawEnvelope, StartFrom};

use crate::{ApiError, AppState};

/// The topics the live stream follows (those that exist when it starts).
pub const LIVE_TOPICS: [&str; 6] = [
    "esg-portfolio-events",
    "portfolio-events",
    "trading_decisions",
    "risk_decisions",
    "regime_changes",
    "model_updates",
];

/// One event as the live stream sends it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveEvent {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub envelope: RawEnvelope,
}

/// Follows the live topics from their current end (a private consumer
/// group that never commits) and broadcasts every envelope until `shutdown`.
pub async fn spawn_event_tail<L: EventLog>(
    log: L,
    sender: broadcast::Sender<LiveEvent>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> ultracore_log::Result<JoinHandle<()>> {
    let existing: BTreeSet<String> = log
        .list_topics()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let topics: Vec<&str> = LIVE_TOPICS
        .iter()
        .copied()
        .filter(|t| existing.contains(*t))
        .collect();
    let mut consumer = log
        .consumer(
            ConsumerOptions::new(format!("api-live-{}", uuid::Uuid::now_v7()), topics)
                .start(StartFrom::Latest),
        )
        .await?;
    Ok(tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            let records = tokio::select! {
                _ = &mut shutdown => return,
                r = consumer.poll(512, Duration::from_millis(100)) => r,
            };
            match records {
                Ok(records) => {
                    for r in records {
                        if let Ok(envelope) = RawEnvelope::from_bytes(&r.value) {
                            let _ = sender.send(LiveEvent {
                                topic: r.topic,
                                partition: r.partition,
                                offset: r.offset,
                                envelope,
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live event tail failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

/// A broadcast channel as an SSE stream; `to_event` picks and shapes items.
fn sse_stream<T: Clone + Send + 'static>(
    rx: broadcast::Receiver<T>,
    to_event: impl Fn(T) -> Option<Event> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((rx, to_event), |(mut rx, to_event)| async move {
        loop {
            match rx.recv().await {
                Ok(item) => {
                    if let Some(event) = to_event(item) {
                        return Some((Ok(event), (rx, to_event)));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let event = Event::default().event("lagged").data(format!(
                        "{missed} events were dropped: this client reads too slowly"
                    ));
                    return Some((Ok(event), (rx, to_event)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

/// `GET /api/v1/notifications/stream`: of the key's portfolios only.
pub(crate) async fn notification_stream<L: EventLog>(
    State(state): State<Arc<AppState<L>>>,
    Extension(principal): Extension<Principal>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.live_notifications.subscribe();
    Sse::new(sse_stream(rx, move |n: ultracore_flow::Notification| {
        if !principal.can_access_portfolio(&n.portfolio_id) {
            return None;
        }
        Event::default()
            .event("notification")
            .id(n.request_id.clone())
            .json_data(&n)
            .ok()
    }))
    .keep_alive(KeepAlive::default())
}

/// `GET /api/v1/alerts/stream`: compliance alerts as they are stored.
pub(crate) async fn alert_stream<L: EventLog>(
    State(state): State<Arc<AppState<L>>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.live_alerts.subscribe();
    Sse::new(sse_stream(
        rx,
        |a: ultracore_events::compliance::ComplianceAlert| {
            Event::default()
                .event("compliance_alert")
                .id(a.alert_id.clone())
                .json_data(&a)
                .ok()
        },
    ))
    .keep_alive(KeepAlive::default())
}

#[derive(Debug, Deserialize)]
pub(crate) struct StreamQuery {
    /// Comma-separated topics (default: all live topics).
    topic: Option<String>,
}

/// `GET /api/v1/events/stream`
pub(crate) async fn event_stream<L: EventLog>(
    State(state): State<Arc<AppState<L>>>,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let wanted: Option<BTreeSet<String>> = q.topic.map(|t| {
        t.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    if let Some(unknown) = wanted
        .iter()
        .flatten()
        .find(|t| !LIVE_TOPICS.contains(&t.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "topic '{unknown}' is not streamed: choose from {}",
                LIVE_TOPICS.join(", ")
            ),
        ));
    }
    let rx = state.live_events.subscribe();
    Ok(Sse::new(sse_stream(rx, move |e: LiveEvent| {
        if wanted.as_ref().is_some_and(|w| !w.contains(&e.topic)) {
            return None;
        }
        Event::default()
            .event(e.envelope.event_type.clone())
            .id(e.envelope.event_id.to_string())
            .json_data(&e)
            .ok()
    }))
    .keep_alive(KeepAlive::default()))
}
