//! How the [`crate::Traced`] log continues traces through the log: a
//! `send` span and a `traceparent` header for each record appended, a
//! `process` span for each record polled.
//!
//! # Choosing a record's parent when it is appended
//!
//! 1. A valid `traceparent` header already on the record (a dead letter
//!    keeps its original's headers; a relay or a client may set one): the
//!    send span is its child, and the header is replaced with the send
//!    span's context. The record keeps its trace, and the header always
//!    names the span that sent the record, which the consumer's `process`
//!    span takes as parent. (Recording a span under the header's own id
//!    instead would give two spans one id whenever a record is sent again
//!    with the headers it was read with: dead letters, replays.)
//! 2. The envelope's `causation_id`: the `process` span of that event in
//!    this service, while the tracer remembers it. A handler that sets
//!    `causation_id` continues the trace of what it handles, whatever
//!    batch or task it publishes from.
//! 3. The task's current context ([`super::scope`], set by the HTTP layer
//!    from the request's `traceparent`).
//! 4. None: the send span starts a new trace.
//!
//! An invalid `traceparent` counts as absent (W3C's rule) and is replaced.
//!
//! # When a `process` span ends
//!
//! It starts when the poll returns its record and ends at the first commit
//! past the record: its duration is the handling of its batch, including
//! making the effects durable, in the one-batch loop ([`crate::run_consumer`])
//! and the pipelined one ([`crate::run_pipelined`]) alike. A member that
//! has never committed (a reader that does not commit, or none yet) ends
//! them when it polls again; a seek or dropping the member ends them too,
//! and a member never keeps more than 16,384 open (the oldest end first).
//! Every record of a batch that continues a trace gets its own `process`
//! span, each the child of its record's send span, all lasting the batch's
//! handling. A record with no trace to continue (no valid `traceparent`,
//! no known cause) gets none: at high rates (trading decisions) a root span
//! per record would cost the consumer more than the record's handling is
//! worth tracing; what its handling publishes starts a trace.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Deserialize;
use ultracore_log::{Appended, Header, NewRecord, Position, Record};
use uuid::Uuid;

use super::span::now_unix_nanos;
use super::{current, Span, SpanKind, SpanStatus, TraceContext, Tracer};

/// `process` spans a consumer keeps open at most.
const MAX_OPEN: usize = 16_384;

/// What the runtime reads of an envelope: serde skips the payload without
/// building it.
#[derive(Debug, Default, Deserialize)]
struct Ids {
    #[serde(default)]
    event_id: Option<Uuid>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    causation_id: Option<Uuid>,
}

impl Ids {
    /// The ids of a record value; nothing for a value that is not a JSON
    /// envelope (a tombstone, a foreign record).
    fn of(value: &[u8]) -> Ids {
        let starts_as_object = value
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        if !starts_as_object {
            return Ids::default();
        }
        // UltraCore writes the payload last: the ids are read from what
        // comes before it, without scanning a large payload. Anything else
        // (another field order, a payload key elsewhere) is read whole.
        if let Some(ids) = Ids::before_payload(value) {
            return ids;
        }
        serde_json::from_slice(value).unwrap_or_default()
    }

    /// The ids of the fields before a top-level `"payload":` key, when that
    /// prefix, closed, is a JSON object holding an `event_id`.
    fn before_payload(value: &[u8]) -> Option<Ids> {
        const KEY: &[u8] = b"\"payload\":";
        let at = memchr::memmem::find(value, KEY)?;
        let head = value[..at].trim_ascii_end().strip_suffix(b",")?;
        let mut closed = Vec::with_capacity(head.len() + 1);
        closed.extend_from_slice(head);
        closed.push(b'}');
        let ids: Ids = serde_json::from_slice(&closed).ok()?;
        ids.event_id.is_some().then_some(ids)
    }
}

/// Whether a record's value may name a cause: it has a `"causation_id":`
/// key whose value is not `null` (read without parsing the value). A
/// value without the key, or with `null`, names none.
fn names_a_cause(value: &[u8]) -> bool {
    const KEY: &[u8] = b"\"causation_id\"";
    let Some(at) = memchr::memmem::find(value, KEY) else {
        return false;
    };
    let Some(rest) = value[at + KEY.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")
    else {
        // The text, not the key (inside a string): read the value whole.
        return true;
    };
    !rest.trim_ascii_start().starts_with(b"null")
}

fn is_traceparent(key: &str) -> bool {
    key.eq_ignore_ascii_case(TraceContext::HEADER)
}

/// The valid `traceparent` of a record read.
pub fn traceparent_of(record: &Record) -> Option<TraceContext> {
    record
        .headers
        .iter()
        .find(|h| is_traceparent(&h.key))
        .and_then(|h| TraceContext::from_header(&h.value))
}

/// Gives each record a `traceparent` naming a new send span and returns
/// those spans, started now (see the module documentation for the parent).
/// With `any_service`, a cause processed by another service of the process
/// is a parent too, after the task's context.
pub(crate) fn start_sends(
    tracer: &Tracer,
    service: &Arc<str>,
    topic: &str,
    records: &mut [NewRecord],
    any_service: bool,
) -> Vec<Span> {
    let now = now_unix_nanos();
    let topic: Arc<str> = Arc::from(topic);
    let task = current();
    records
        .iter_mut()
        .map(|record| {
            let ids = Ids::of(&record.value);
            let given = record
                .headers
                .iter()
                .find(|h| is_traceparent(&h.key))
                .and_then(|h| TraceContext::from_header(&h.value));
            let parent = given
                .or_else(|| {
                    ids.causation_id
                        .and_then(|c| tracer.process_context(service, c))
                })
                .or(task)
                // Its cause processed by any service of the process, for a
                // writer shared by several (an event store).
                .or_else(|| {
                    ids.causation_id
                        .filter(|_| any_service)
                        .and_then(|c| tracer.any_process_context(c))
                });
            let ctx = parent.map_or_else(TraceContext::new_root, |p| p.child());
            record.headers.retain(|h| !is_traceparent(&h.key));
            record
                .headers
                .push(Header::new(TraceContext::HEADER, ctx.to_header()));
            let event_type = ids.event_type.or_else(|| {
                record
                    .headers
                    .iter()
                    .find(|h| h.key == "event_type")
                    .and_then(|h| String::from_utf8(h.value.clone()).ok())
            });
            Span {
                trace_id: ctx.trace_id,
                span_id: ctx.span_id,
                parent_span_id: parent.map(|p| p.span_id),
                flags: ctx.flags,
                kind: SpanKind::Producer,
                service: service.clone(),
                topic: topic.clone(),
                group: None,
                partition: record.partition,
                offset: None,
                event_id: ids.event_id,
                correlation_id: ids.correlation_id.map(Arc::from),
                event_type: event_type.map(Arc::from),
                start_unix_nanos: now,
                end_unix_nanos: now,
                status: SpanStatus::Unset,
            }
        })
        .collect()
}

/// Ends the send spans of an append and records them.
pub(crate) fn finish_sends(
    tracer: &Tracer,
    mut spans: Vec<Span>,
    outcome: Result<&[Appended], &ultracore_log::Error>,
) {
    let now = now_unix_nanos();
    match outcome {
        Ok(appended) => {
            for (span, a) in spans.iter_mut().zip(appended) {
                span.partition = Some(a.partition);
                span.offset = Some(a.offset);
            }
        }
        Err(e) => {
            // A failed append may have stored a prefix of the batch: which
            // records made it is unknown, so every span says it failed.
            let message = e.to_string();
            for span in &mut spans {
                span.status = SpanStatus::Error(message.clone());
            }
        }
    }
    for span in &mut spans {
        span.end_unix_nanos = now;
    }
    tracer.record_all(spans);
}

/// The `process` spans a consumer has open.
#[derive(Debug, Default)]
pub(crate) struct Processing {
    open: VecDeque<Span>,
    /// Whether the member ever committed (then its commits end spans; see
    /// the module documentation).
    committed: bool,
}

impl Processing {
    /// Starts a `process` span per record and remembers each one's context
    /// by event id for what its handling publishes.
    pub(crate) fn polled(
        &mut self,
        tracer: &Tracer,
        service: &Arc<str>,
        group: &Arc<str>,
        records: &[Record],
    ) {
        let now = now_unix_nanos();
        let mut remembered = Vec::new();
        // A poll returns runs of one topic: one name allocation per run.
        for run in records.chunk_by(|a, b| a.topic == b.topic) {
            let topic: Arc<str> = Arc::from(run[0].topic.as_str());
            for record in run {
                let header = traceparent_of(record);
                // No trace to continue and no cause named: nothing to read.
                if header.is_none() && !names_a_cause(&record.value) {
                    continue;
                }
                let ids = Ids::of(&record.value);
                // A record appended outside a traced log (the event store's
                // aggregate events) joins the trace of the event that
                // caused it, through any service that processed that event.
                let parent =
                    header.or_else(|| ids.causation_id.and_then(|c| tracer.any_process_context(c)));
                // A record that arrives with no trace to continue (a foreign
                // producer's, a decision emitted at 100,000/s) starts none
                // here: what its handling publishes starts the trace.
                let Some(parent) = parent else {
                    continue;
                };
                let ctx = parent.child();
                let parent = Some(parent);
                if let Some(id) = ids.event_id {
                    remembered.push((id, ctx));
                }
                let event_type = ids.event_type.or_else(|| {
                    record
                        .header("event_type")
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .map(str::to_owned)
                });
                self.open.push_back(Span {
                    trace_id: ctx.trace_id,
                    span_id: ctx.span_id,
                    parent_span_id: parent.map(|p| p.span_id),
                    flags: ctx.flags,
                    kind: SpanKind::Consumer,
                    service: service.clone(),
                    topic: topic.clone(),
                    group: Some(group.clone()),
                    partition: Some(record.partition),
                    offset: Some(record.offset),
                    event_id: ids.event_id,
                    correlation_id: ids.correlation_id.map(Arc::from),
                    event_type: event_type.map(Arc::from),
                    start_unix_nanos: now,
                    end_unix_nanos: now,
                    status: SpanStatus::Unset,
                });
            }
        }
        tracer.remember(service, remembered);
        if self.open.len() > MAX_OPEN {
            let excess = self.open.len() - MAX_OPEN;
            let ended: Vec<Span> = self.open.drain(..excess).collect();
            end(tracer, ended);
        }
    }

    /// Before a poll: a member that never committed ends what it had open.
    pub(crate) fn polling(&mut self, tracer: &Tracer) {
        if !self.committed {
            self.end_all(tracer);
        }
    }

    /// After a commit: ends the spans of the records before its positions.
    pub(crate) fn committed(&mut self, tracer: &Tracer, positions: &[Position]) {
        self.committed = true;
        if self.open.is_empty() {
            return;
        }
        let past = |s: &Span| {
            positions.iter().any(|p| {
                p.partition == s.partition.unwrap_or(u32::MAX)
                    && *p.topic == *s.topic
                    && s.offset.is_some_and(|o| o < p.offset)
            })
        };
        let (ended, open): (Vec<Span>, Vec<Span>) = self.open.drain(..).partition(past);
        self.open = open.into();
        end(tracer, ended);
    }

    /// Ends every open span (a seek, the member leaving).
    pub(crate) fn end_all(&mut self, tracer: &Tracer) {
        if !self.open.is_empty() {
            let ended: Vec<Span> = self.open.drain(..).collect();
            end(tracer, ended);
        }
    }
}

fn end(tracer: &Tracer, mut spans: Vec<Span>) {
    let now = now_unix_nanos();
    for span in &mut spans {
        span.end_unix_nanos = now;
    }
    tracer.record_all(spans);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_named_only_by_a_non_null_causation_id() {
        assert!(names_a_cause(br#"{"event_id":"x","causation_id":"0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b","payload":{}}"#));
        assert!(names_a_cause(br#"{"causation_id": "c"}"#));
        assert!(!names_a_cause(
            br#"{"event_id":"x","causation_id":null,"payload":{}}"#
        ));
        assert!(!names_a_cause(br#"{"causation_id" :  null}"#));
        assert!(names_a_cause(br#"{"causation_id" : "c"}"#));
        // The words in a string, not a key: read whole to be sure.
        assert!(
            names_a_cause(br#"{"note":"x\"causation_id", "y": 1}"#),
            "a key-like text in a string is read whole"
        );
        assert!(!names_a_cause(br#"{"note":"the \"causation_id\" word"}"#));
        assert!(!names_a_cause(br#"{"causation_id": null}"#));
        assert!(!names_a_cause(br#"{"event_id":"x","payload":{}}"#));
        assert!(!names_a_cause(b"not json"));
    }

    #[test]
    fn ids_are_read_before_the_payload_or_from_the_whole_value() {
        let id = "0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b";
        let cause = "0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5c";
        let ours = format!(
            r#"{{"event_id":"{id}","event_type":"t","correlation_id":"c-1","causation_id":"{cause}","payload":{{"event_id":"other","x":[1,2]}}}}"#
        );
        let ids = Ids::of(ours.as_bytes());
        assert_eq!(ids.event_id.map(|u| u.to_string()).as_deref(), Some(id));
        assert_eq!(
            ids.causation_id.map(|u| u.to_string()).as_deref(),
            Some(cause)
        );
        assert_eq!(ids.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(ids.event_type.as_deref(), Some("t"));
        // Payload first (another producer's order): read whole.
        let foreign =
            format!(r#"{{"payload":{{"a":1}},"event_id":"{id}","correlation_id":"c-2"}}"#);
        let ids = Ids::of(foreign.as_bytes());
        assert_eq!(ids.event_id.map(|u| u.to_string()).as_deref(), Some(id));
        assert_eq!(ids.correlation_id.as_deref(), Some("c-2"));
        // Not an envelope.
        assert!(Ids::of(b"[1,2]").event_id.is_none());
        assert!(Ids::of(br#"{"payload": 1}"#).event_id.is_none());
    }
    use crate::trace::scope;

    fn envelope(event_id: Uuid, causation: Option<Uuid>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "event_id": event_id, "event_type": "thing_done", "schema_version": 1,
            "timestamp": "2026-01-02T03:04:05.678Z", "aggregate_type": "T",
            "aggregate_id": "t-1", "version": 1, "correlation_id": "req-1",
            "causation_id": causation, "payload": {"big": [1, 2, 3]}
        }))
        .unwrap()
    }

    #[test]
    fn ids_are_read_without_the_payload_and_foreign_values_have_none() {
        let id = Uuid::now_v7();
        let ids = Ids::of(&envelope(id, None));
        assert_eq!(ids.event_id, Some(id));
        assert_eq!(ids.correlation_id.as_deref(), Some("req-1"));
        assert_eq!(ids.event_type.as_deref(), Some("thing_done"));
        assert_eq!(ids.causation_id, None);
        for foreign in [
            &b""[..],
            b"plain text",
            b"[1,2]",
            b"{not json",
            b"{\"event_id\": 5}",
        ] {
            assert!(Ids::of(foreign).event_id.is_none());
        }
    }

    #[tokio::test]
    async fn a_record_continues_a_given_header_then_its_cause_then_the_task_then_starts_a_trace() {
        let tracer = Tracer::default();
        let service: Arc<str> = Arc::from("svc");
        let cause = Uuid::now_v7();
        let processing = TraceContext::new_root();
        tracer.remember(&service, vec![(cause, processing)]);
        let given = TraceContext::new_root();
        let request = TraceContext::new_root();
        let mut records = vec![
            NewRecord::new("k", envelope(Uuid::now_v7(), Some(cause)))
                .with_header("traceparent", given.to_header()),
            NewRecord::new("k", envelope(Uuid::now_v7(), Some(cause))),
            NewRecord::new("k", envelope(Uuid::now_v7(), Some(Uuid::now_v7()))),
            NewRecord::new("k", "not an envelope").with_header("traceparent", "garbage"),
        ];
        let spans = scope(request, async {
            start_sends(&tracer, &service, "out", &mut records, false)
        })
        .await;
        let parents: Vec<Option<TraceContext>> =
            vec![Some(given), Some(processing), Some(request), Some(request)];
        for ((record, span), parent) in records.iter().zip(&spans).zip(parents) {
            let headers: Vec<&Header> = record
                .headers
                .iter()
                .filter(|h| h.key == "traceparent")
                .collect();
            assert_eq!(headers.len(), 1, "one traceparent");
            let ctx = TraceContext::from_header(&headers[0].value).unwrap();
            assert_eq!(ctx, span.context(), "the header names the send span");
            let parent = parent.unwrap();
            assert_eq!(ctx.trace_id, parent.trace_id);
            assert_eq!(span.parent_span_id, Some(parent.span_id));
            assert_eq!(span.kind, SpanKind::Producer);
        }
        // Outside a scope, with no cause remembered: a new trace.
        let mut lone = vec![NewRecord::new("k", envelope(Uuid::now_v7(), None))];
        let spans = start_sends(&tracer, &service, "out", &mut lone, false);
        assert_eq!(spans[0].parent_span_id, None);
        assert_eq!(spans[0].correlation_id.as_deref(), Some("req-1"));
        assert_eq!(spans[0].event_type.as_deref(), Some("thing_done"));
        // Another service's processing is not this one's cause.
        let mut other = vec![NewRecord::new("k", envelope(Uuid::now_v7(), Some(cause)))];
        let spans = start_sends(&tracer, &Arc::from("other"), "out", &mut other, false);
        assert_eq!(spans[0].parent_span_id, None);
        // Unless the writer is shared by the process's services.
        let mut shared = vec![NewRecord::new("k", envelope(Uuid::now_v7(), Some(cause)))];
        let spans = start_sends(&tracer, &Arc::from("other"), "out", &mut shared, true);
        assert_eq!(spans[0].parent_span_id, Some(processing.span_id));
        assert_eq!(spans[0].trace_id, processing.trace_id);
    }

    fn polled(topic: &str, partition: u32, offset: u64) -> Record {
        Record {
            topic: topic.into(),
            partition,
            offset,
            timestamp: 0,
            key: None,
            value: envelope(Uuid::now_v7(), None),
            headers: vec![Header::new(
                "traceparent",
                TraceContext::new_root().to_header(),
            )],
        }
    }

    #[test]
    fn process_spans_end_at_the_commit_past_them() {
        let tracer = Tracer::default();
        let (service, group): (Arc<str>, Arc<str>) = (Arc::from("svc"), Arc::from("g"));
        let mut p = Processing::default();
        let batch = [polled("a", 0, 7), polled("a", 1, 3), polled("b", 0, 9)];
        p.polled(&tracer, &service, &group, &batch);
        assert_eq!(tracer.len(), 0);
        assert_eq!(
            p.open[0].parent_span_id,
            traceparent_of(&batch[0]).map(|c| c.span_id)
        );
        p.committed(
            &tracer,
            &[Position {
                topic: "a".into(),
                partition: 0,
                offset: 8,
            }],
        );
        assert_eq!((tracer.len(), p.open.len()), (1, 2));
        // A committing member keeps spans open across polls (pipelining).
        p.polling(&tracer);
        assert_eq!(p.open.len(), 2);
        p.committed(&tracer, &Position::after(&batch));
        assert_eq!((tracer.len(), p.open.len()), (3, 0));
        // A member that never committed ends them at its next poll.
        let mut reader = Processing::default();
        reader.polled(&tracer, &service, &group, &batch);
        reader.polling(&tracer);
        assert_eq!((tracer.len(), reader.open.len()), (6, 0));
    }
}
