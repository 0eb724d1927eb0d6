//! [`Tracer`]: the spans of a process, kept in a bounded in-memory store
//! (indexed by trace and by correlation id) and, when configured, exported
//! over OTLP; and the contexts of the messages being processed, by event id,
//! so that what a handler publishes continues the trace of what caused it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use ultracore_metrics::{Counter, CounterVec, Registry};
use uuid::Uuid;

use super::otlp::{self, ExportConfig, Msg};
use super::{Span, TraceContext, TraceError, TraceId};

/// Spans dropped before export: the queue was full (the collector is slow
/// or down) or the collector refused or did not answer a batch.
pub const TRACE_SPANS_DROPPED_TOTAL: &str = "ultracore_trace_spans_dropped_total";
/// Spans a collector accepted.
pub const TRACE_SPANS_EXPORTED_TOTAL: &str = "ultracore_trace_spans_exported_total";

/// What a [`Tracer`] keeps and where it sends spans.
#[derive(Debug, Clone)]
pub struct TracerOptions {
    /// Finished spans kept in memory; the oldest is evicted beyond it
    /// (about 250 bytes a span). 0 keeps none.
    pub capacity: usize,
    /// Contexts of processed messages remembered per service (by event id)
    /// for the events they cause; the oldest is forgotten beyond it. A
    /// handler publishes what a message causes while processing it, so
    /// this needs to cover a few batches, not history.
    pub remembered: usize,
    /// Where finished spans go besides memory; `None`: nowhere.
    pub export: Option<ExportConfig>,
}

impl Default for TracerOptions {
    fn default() -> Self {
        TracerOptions {
            capacity: 100_000,
            remembered: 65_536,
            export: None,
        }
    }
}

/// The tracer of a process (the [`crate::Supervisor`] makes one; every
/// service of it records through [`crate::ServiceContext::tracer`]).
/// Cheap to clone: clones share one store.
///
/// Recording takes one short lock per call (a batch of spans at once);
/// exporting never blocks it: spans go to a bounded queue, and when it is
/// full they are dropped and counted in `ultracore_trace_spans_dropped_total`.
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    remembered: usize,
    store: Mutex<Store>,
    /// service → event id → the context of its `process` span. Per service,
    /// as several groups of one process consume the same event and each
    /// one's publications descend from its own processing.
    causes: Mutex<HashMap<Arc<str>, Causes>>,
    export: Option<mpsc::Sender<Msg>>,
    dropped: Counter,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("spans", &self.len())
            .field("capacity", &self.inner.capacity)
            .field("exporting", &self.exporting())
            .finish()
    }
}

impl Default for Tracer {
    /// In memory only, with default capacities, its metrics unregistered.
    fn default() -> Self {
        Tracer::new(TracerOptions::default(), &Registry::new())
    }
}

impl Tracer {
    /// A tracer; with `options.export`, its exporter starts now (on the
    /// current tokio runtime, or on a thread of its own outside one).
    /// Its counters go to `registry`.
    pub fn new(options: TracerOptions, registry: &Registry) -> Tracer {
        let dropped = registry
            .family(
                TRACE_SPANS_DROPPED_TOTAL,
                CounterVec::new(
                    TRACE_SPANS_DROPPED_TOTAL,
                    "Finished spans dropped before export (queue full, collector down or refusing).",
                    &[],
                ),
            )
            .with(&[]);
        let export = options.export.map(|config| {
            let exported = registry
                .family(
                    TRACE_SPANS_EXPORTED_TOTAL,
                    CounterVec::new(
                        TRACE_SPANS_EXPORTED_TOTAL,
                        "Finished spans an OTLP collector accepted.",
                        &[],
                    ),
                )
                .with(&[]);
            otlp::start(config, dropped.clone(), exported)
        });
        Tracer {
            inner: Arc::new(Inner {
                capacity: options.capacity,
                remembered: options.remembered.max(1),
                store: Mutex::new(Store::default()),
                causes: Mutex::new(HashMap::new()),
                export,
                dropped,
            }),
        }
    }

    /// A tracer configured by the OpenTelemetry environment variables (see
    /// [`ExportConfig::from_env`]): exporting when an OTLP endpoint is set,
    /// in memory only otherwise. Errors name the variable at fault (an
    /// `https://` endpoint, a protocol other than OTLP/HTTP, a bad number).
    pub fn from_env(registry: &Registry) -> Result<Tracer, TraceError> {
        let export = ExportConfig::from_env()?;
        if let Some(e) = &export {
            tracing::info!(endpoint = %e.url(), service = %e.service_name, "exporting spans over OTLP/HTTP JSON");
        }
        Ok(Tracer::new(
            TracerOptions {
                export,
                ..TracerOptions::default()
            },
            registry,
        ))
    }

    /// The tracer of [`crate::Traced`] logs built without one
    /// ([`crate::Traced::new`]): one per process, in memory only.
    pub fn global() -> Tracer {
        static GLOBAL: OnceLock<Tracer> = OnceLock::new();
        GLOBAL.get_or_init(Tracer::default).clone()
    }

    /// Whether finished spans are exported.
    pub fn exporting(&self) -> bool {
        self.inner.export.is_some()
    }

    /// Spans in memory.
    pub fn len(&self) -> usize {
        self.store().spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic under the lock left at worst an index a span short.
        self.inner.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn causes(&self) -> MutexGuard<'_, HashMap<Arc<str>, Causes>> {
        self.inner.causes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a finished span.
    pub fn record(&self, span: Span) {
        self.record_all(vec![span]);
    }

    /// Records finished spans (one lock for all of them).
    pub fn record_all(&self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        if let Some(tx) = &self.inner.export {
            for span in spans.iter().filter(|s| s.flags & super::SAMPLED != 0) {
                // Never waits: a full queue drops the span (and counts it).
                if tx.try_send(Msg::Span(Box::new(span.clone()))).is_err() {
                    self.inner.dropped.inc();
                }
            }
        }
        if self.inner.capacity == 0 {
            return;
        }
        let mut store = self.store();
        for span in spans {
            store.push(span, self.inner.capacity);
        }
    }

    /// The spans in memory of a correlation id (every hop of one business
    /// request), by start time.
    pub fn spans_for_correlation(&self, correlation_id: &str) -> Vec<Span> {
        let store = self.store();
        let seqs = store.by_correlation.get(correlation_id);
        store.collect(seqs)
    }

    /// The spans in memory of a trace, by start time.
    pub fn spans_for_trace(&self, trace_id: TraceId) -> Vec<Span> {
        let store = self.store();
        let seqs = store.by_trace.get(&trace_id);
        store.collect(seqs)
    }

    /// Remembers the contexts of `service`'s `process` spans by the event
    /// id of their message.
    pub(crate) fn remember(&self, service: &Arc<str>, contexts: Vec<(Uuid, TraceContext)>) {
        if contexts.is_empty() {
            return;
        }
        let mut causes = self.causes();
        if !causes.contains_key(service.as_ref()) {
            causes.insert(service.clone(), Causes::default());
        }
        let mine = causes.get_mut(service.as_ref()).expect("inserted above");
        for (id, ctx) in contexts {
            mine.insert(id, ctx, self.inner.remembered);
        }
    }

    /// The context of `service`'s `process` span of the event `event_id`,
    /// while remembered: the parent of what that event causes.
    pub fn process_context(&self, service: &str, event_id: Uuid) -> Option<TraceContext> {
        self.causes().get(service)?.map.get(&event_id).copied()
    }

    /// The context of some service's `process` span of the event
    /// `event_id` (the first remembered): the trace a record appended
    /// without a `traceparent` but caused by that event belongs to.
    pub fn any_process_context(&self, event_id: Uuid) -> Option<TraceContext> {
        self.causes()
            .values()
            .find_map(|c| c.map.get(&event_id).copied())
    }

    /// Waits until every span recorded before the call was offered to the
    /// collector (accepted, refused or timed out), or `timeout` passed.
    /// Returns at once when not exporting. The supervisor calls it on
    /// shutdown, so the last batch's spans are not lost.
    pub async fn flush(&self, timeout: Duration) {
        let Some(tx) = &self.inner.export else {
            return;
        };
        let (done, wait) = oneshot::channel();
        let flushed = async {
            if tx.send(Msg::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        };
        if tokio::time::timeout(timeout, flushed).await.is_err() {
            tracing::debug!("span export did not finish in time");
        }
    }
}

/// Finished spans in arrival order with their indexes. A span's sequence
/// number is its position plus `first`; every index lists sequence numbers
/// in increasing order, so the span evicted (the oldest) is at the front
/// of its lists.
#[derive(Default)]
struct Store {
    spans: VecDeque<Span>,
    first: u64,
    by_trace: HashMap<TraceId, VecDeque<u64>>,
    by_correlation: HashMap<Arc<str>, VecDeque<u64>>,
}

impl Store {
    fn push(&mut self, span: Span, capacity: usize) {
        while self.spans.len() >= capacity {
            self.evict();
        }
        let seq = self.first + self.spans.len() as u64;
        self.by_trace
            .entry(span.trace_id)
            .or_default()
            .push_back(seq);
        if let Some(c) = &span.correlation_id {
            match self.by_correlation.get_mut(c.as_ref()) {
                Some(list) => list.push_back(seq),
                None => {
                    self.by_correlation.insert(c.clone(), VecDeque::from([seq]));
                }
            }
        }
        self.spans.push_back(span);
    }

    fn evict(&mut self) {
        let Some(old) = self.spans.pop_front() else {
            return;
        };
        let seq = self.first;
        self.first += 1;
        unindex(&mut self.by_trace, &old.trace_id, seq);
        if let Some(c) = &old.correlation_id {
            unindex(&mut self.by_correlation, c.as_ref(), seq);
        }
    }

    fn collect(&self, seqs: Option<&VecDeque<u64>>) -> Vec<Span> {
        let mut out: Vec<Span> = seqs
            .into_iter()
            .flatten()
            .filter_map(|s| self.spans.get(s.checked_sub(self.first)? as usize))
            .cloned()
            .collect();
        // Stable: spans that started at the same nanosecond keep the order
        // they finished in.
        out.sort_by_key(|s| s.start_unix_nanos);
        out
    }
}

fn unindex<K, Q>(index: &mut HashMap<K, VecDeque<u64>>, key: &Q, seq: u64)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(list) = index.get_mut(key) {
        if list.front() == Some(&seq) {
            list.pop_front();
        }
        if list.is_empty() {
            index.remove(key);
        }
    }
}

/// One service's remembered contexts, the oldest forgotten first.
#[derive(Default)]
struct Causes {
    map: HashMap<Uuid, TraceContext>,
    order: VecDeque<Uuid>,
}

impl Causes {
    fn insert(&mut self, id: Uuid, ctx: TraceContext, capacity: usize) {
        // A message delivered again (a retry after a crash, a rebalance)
        // is processed again: its newest processing is the cause.
        if self.map.insert(id, ctx).is_some() {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{SpanKind, SpanStatus};

    fn span(ctx: TraceContext, correlation: Option<&str>, start: u64) -> Span {
        Span {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            parent_span_id: None,
            flags: ctx.flags,
            kind: SpanKind::Producer,
            service: Arc::from("svc"),
            topic: Arc::from("t"),
            group: None,
            partition: None,
            offset: None,
            event_id: None,
            correlation_id: correlation.map(Arc::from),
            event_type: None,
            start_unix_nanos: start,
            end_unix_nanos: start + 1,
            status: SpanStatus::Unset,
        }
    }

    #[test]
    fn the_store_is_bounded_and_indexed_by_trace_and_correlation() {
        let t = Tracer::new(
            TracerOptions {
                capacity: 3,
                ..TracerOptions::default()
            },
            &Registry::new(),
        );
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        t.record(span(a, Some("req-1"), 30));
        t.record(span(a.child(), Some("req-1"), 10));
        t.record(span(b, Some("req-2"), 20));
        let got = t.spans_for_correlation("req-1");
        assert_eq!(
            got.iter().map(|s| s.start_unix_nanos).collect::<Vec<_>>(),
            vec![10, 30],
            "by start time"
        );
        assert_eq!(t.spans_for_trace(a.trace_id).len(), 2);
        // A fourth evicts the oldest (the first recorded).
        t.record(span(b.child(), None, 40));
        assert_eq!(t.len(), 3);
        assert_eq!(t.spans_for_correlation("req-1").len(), 1);
        assert_eq!(t.spans_for_trace(b.trace_id).len(), 2);
        t.record(span(b.child(), None, 50));
        assert!(t.spans_for_correlation("req-1").is_empty());
        assert!(t.spans_for_trace(a.trace_id).is_empty());
        assert!(t.spans_for_correlation("nothing").is_empty());
        let store = t.store();
        assert!(!store.by_trace.contains_key(&a.trace_id), "no empty lists");
        assert!(!store.by_correlation.contains_key("req-1"));
    }

    #[test]
    fn processing_contexts_are_remembered_per_service_and_bounded() {
        let t = Tracer::new(
            TracerOptions {
                remembered: 2,
                ..TracerOptions::default()
            },
            &Registry::new(),
        );
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (ca, cb) = (TraceContext::new_root(), TraceContext::new_root());
        t.remember(&a, vec![(ids[0], ca)]);
        t.remember(&b, vec![(ids[0], cb)]);
        assert_eq!(t.process_context("a", ids[0]), Some(ca));
        assert_eq!(t.process_context("b", ids[0]), Some(cb));
        assert_eq!(t.process_context("c", ids[0]), None);
        t.remember(&a, vec![(ids[1], ca), (ids[2], ca)]);
        assert_eq!(t.process_context("a", ids[0]), None, "the oldest forgotten");
        assert_eq!(t.process_context("a", ids[2]), Some(ca));
        assert_eq!(t.process_context("b", ids[0]), Some(cb));
    }
}
