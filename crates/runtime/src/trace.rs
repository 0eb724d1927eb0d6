//! Distributed tracing through the log: a W3C `traceparent` header on every
//! record a service appends, a span for every record sent and processed,
//! the spans of the process kept in memory and, when configured, exported
//! over OTLP.
//!
//! Nothing in a service's code does it: the [`crate::Traced`] log every
//! service reads and writes through (the consumer loop's own, and
//! [`crate::ServiceContext::traced`]) does, in two places:
//!
//! - each record a poll returns gets a `process <topic>` span (CONSUMER),
//!   the child of the span that sent it (its `traceparent`), and the tracer
//!   remembers that span's context by the record's `event_id`;
//! - each record appended gets a `send <topic>` span (PRODUCER) and a
//!   `traceparent` naming it; its parent is the processing of the event
//!   its envelope's `causation_id` names, else the task's current context
//!   ([`scope`], which the HTTP layer sets from a request's `traceparent`),
//!   else none (a new trace).
//!
//! So a request's events form one trace across every service that sets
//! `causation_id` on what it publishes, in one process or many (the
//! header travels with the record, on the embedded log and on Kafka).
//! Only the outermost of nested [`crate::Traced`] wrappers records, as for
//! lineage. Spans follow the OpenTelemetry messaging semantic conventions
//! (see [`Span`]); the rules for parents and for when a `process` span ends
//! are in the `propagate` module's documentation.
//!
//! # Layout
//!
//! - `context`: [`TraceContext`], [`TraceId`], [`SpanId`]: the `traceparent`
//!   header, parsed and written as W3C Trace Context level 1 says.
//! - `span`: [`Span`], [`SpanKind`], [`SpanStatus`], the attribute names ([`attr`]).
//! - `tracer`: [`Tracer`], the bounded span store ([`Tracer::spans_for_trace`],
//!   [`Tracer::spans_for_correlation`]) and the contexts of messages in process.
//! - `propagate`: what [`crate::Traced`] does on append and poll.
//! - `otlp`: [`ExportConfig`] (the `OTEL_*` variables) and the exporter:
//!   OTLP/HTTP JSON, plain `http://` only, bounded queue, drops counted.

mod context;
mod otlp;
mod propagate;
mod span;
mod tracer;

use std::future::Future;

pub use context::{ParseError, SpanId, TraceContext, TraceId, SAMPLED};
pub use otlp::{otlp_json, ExportConfig};
pub use propagate::traceparent_of;
pub(crate) use propagate::{finish_sends, start_sends, Processing};
pub use span::{attr, now_unix_nanos, AttrValue, Span, SpanKind, SpanStatus, MESSAGING_SYSTEM};
pub use tracer::{Tracer, TracerOptions, TRACE_SPANS_DROPPED_TOTAL, TRACE_SPANS_EXPORTED_TOTAL};

/// The send spans of records appended outside a [`crate::Traced`] log,
/// open until [`SendSpans::finish`].
#[derive(Debug)]
#[must_use = "finish the spans once the append returns"]
pub struct SendSpans(Vec<Span>);

/// What [`crate::Traced`] does before an append, for a writer that appends
/// to the log beneath it (an event store): gives each record a
/// `traceparent` naming a new `send` span of `service`, a child of the
/// context of the event that caused it (its envelope's `causation_id`, as
/// `service` processed it), of the task's current context, or of the
/// cause as any service of the process processed it (the writer may be
/// shared), and starts those spans.
pub fn start_appends(
    tracer: &Tracer,
    service: &str,
    topic: &str,
    records: &mut [ultracore_log::NewRecord],
) -> SendSpans {
    SendSpans(start_sends(
        tracer,
        &std::sync::Arc::from(service),
        topic,
        records,
        true,
    ))
}

impl SendSpans {
    /// Ends the spans with the append's outcome (each one's partition and
    /// offset, or the error) and records them.
    pub fn finish(
        self,
        tracer: &Tracer,
        outcome: Result<&[ultracore_log::Appended], &ultracore_log::Error>,
    ) {
        finish_sends(tracer, self.0, outcome);
    }
}

/// Why tracing could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// An environment variable (or a URL given in code) that cannot be
    /// honoured: the message names it.
    #[error("{variable}={value}: {reason}")]
    Config {
        variable: &'static str,
        value: String,
        reason: String,
    },
}

impl TraceError {
    pub(crate) fn config(variable: &'static str, value: &str, reason: &str) -> Self {
        TraceError::Config {
            variable,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

tokio::task_local! {
    /// The context of the work the task is doing (an HTTP request's).
    static CURRENT: TraceContext;
}

/// Runs `fut` with `ctx` as the task's current context: records it appends
/// through a [`crate::Traced`] log without a cause the tracer knows continue
/// `ctx`'s trace (their send spans are its children). The HTTP layer wraps a
/// request's handling in it with the request's `traceparent`.
pub async fn scope<F: Future>(ctx: TraceContext, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// The task's current context, inside [`scope`].
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}
