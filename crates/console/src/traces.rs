//! `GET /api/v1/traces/{correlation_id}`: the path a request took, from
//! the spans the runtime recorded (a `send` span per event appended, a
//! `process` span per event handled), in time order.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use ultracore_http::Problem;
use ultracore_log::EventLog;
use ultracore_runtime::trace::{Span, SpanKind};

use crate::Console;

/// One hop: an event sent to a topic, or handled by a group.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Hop {
    /// `send <topic>` or `process <topic>`.
    pub name: String,
    /// `send` or `process`.
    pub kind: &'static str,
    pub service: String,
    pub topic: String,
    pub group: Option<String>,
    pub partition: Option<u32>,
    pub offset: Option<u64>,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub start_ms: f64,
    pub end_ms: f64,
    pub duration_ms: f64,
    /// For a `process` hop: how long the event waited on the topic (from
    /// its send span's end to the start of its handling).
    pub waited_ms: Option<f64>,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

pub(crate) fn hops(mut spans: Vec<Span>) -> Vec<Hop> {
    spans.sort_by_key(|s| (s.start_unix_nanos, s.end_unix_nanos));
    let by_id: std::collections::HashMap<String, &Span> =
        spans.iter().map(|s| (s.span_id.to_hex(), s)).collect();
    spans
        .iter()
        .map(|s| {
            let kind = match s.kind {
                SpanKind::Producer => "send",
                _ => "process",
            };
            let parent = s.parent_span_id.map(|p| p.to_hex());
            let waited_ms = (kind == "process")
                .then(|| parent.as_ref().and_then(|p| by_id.get(p)))
                .flatten()
                .map(|p| (ms(s.start_unix_nanos) - ms(p.end_unix_nanos)).max(0.0));
            Hop {
                name: s.name(),
                kind,
                service: s.service.to_string(),
                topic: s.topic.to_string(),
                group: s.group.as_deref().map(str::to_owned),
                partition: s.partition,
                offset: s.offset,
                event_type: s.event_type.as_deref().map(str::to_owned),
                event_id: s.event_id.map(|e| e.to_string()),
                start_ms: ms(s.start_unix_nanos),
                end_ms: ms(s.end_unix_nanos),
                duration_ms: ms(s.end_unix_nanos.saturating_sub(s.start_unix_nanos)),
                waited_ms,
                trace_id: s.trace_id.to_hex(),
                span_id: s.span_id.to_hex(),
                parent_span_id: parent,
            }
        })
        .collect()
}

pub(crate) async fn by_correlation<L: EventLog>(
    State(c): State<Arc<Console<L>>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(Problem::bad_request(
            "invalid_id",
            "a correlation id is 1 to 128 printable characters",
        ));
    }
    let hops = hops(c.tracer.spans_for_correlation(&id));
    if hops.is_empty() {
        return Err(Problem::not_found(format!(
            "no span is recorded for correlation id '{id}' in this server (spans are kept in memory, the latest 100,000; with OTEL_EXPORTER_OTLP_ENDPOINT set, also in your tracing tool)"
        )));
    }
    let trace_ids: BTreeSet<&str> = hops.iter().map(|h| h.trace_id.as_str()).collect();
    let start = hops
        .iter()
        .map(|h| h.start_ms)
        .fold(f64::INFINITY, f64::min);
    let end = hops.iter().map(|h| h.end_ms).fold(0.0, f64::max);
    Ok(Json(serde_json::json!({
        "correlation_id": id,
        "trace_ids": trace_ids,
        "duration_ms": (end - start).max(0.0),
        "hops": hops,
    })))
}
