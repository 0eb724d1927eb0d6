//! The service runtime: what every UltraCore service stands on.
//!
//! A service is a config, a handler and a registration:
//!
//! ```no_run
//! use ultracore_log::Record;
//! use ultracore_runtime::{ConsumerSpec, Handler, HandlerError, Registration, Subscription};
//!
//! /// Counts portfolio events (a real service would publish or store something).
//! struct Counter(u64);
//!
//! impl Handler for Counter {
//!     async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
//!         self.0 += batch.len() as u64;
//!         Ok(())
//!     }
//! }
//!
//! fn registration<L: ultracore_log::EventLog>(log: L) -> Registration {
//!     let spec = ConsumerSpec::new("counter", Subscription::topics(["portfolio-events"]));
//!     Registration::consumer("counter", log, spec, |_ctx| Ok(Counter(0)))
//! }
//! ```
//!
//! The runtime owns the rest: the consumer-group loop (batches; commit only
//! after the handler returns, so after its effects are durable; per-record
//! retry with backoff, then the dead-letter topic with the reason — never a
//! crash loop; a panicking handler is caught and treated the same way),
//! bounded deduplication, one cancellation token for shutdown, health and
//! readiness, restarts, metrics under one set of names, and lineage: every
//! (service, topic, produces/consumes) recorded as it happens, for the data
//! catalogue (task services and handlers write through
//! [`ServiceContext::traced`] so their appends are recorded too), and
//! distributed tracing through the same wrapper: a W3C `traceparent` on
//! every record appended, a span per record sent and processed, kept in
//! memory and exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! # Layout
//!
//! - `catalogue`: every topic of the platform ([`catalogue::TOPICS`]).
//! - `handler`: the [`Handler`] trait and [`HandlerError`] (reject, retry, infra).
//! - `config`: [`ConsumerSpec`], [`ConsumerConfig`], [`RetryPolicy`], [`Subscription`].
//! - `consumer`: the consumer-group loop, [`run_consumer`].
//! - `dedup`: [`Dedup`], bounded.
//! - `health`: [`Health`] for `/healthz` and `/readyz`.
//! - `lineage`: [`Lineage`], the edges between services and topics, recorded
//!   by the [`Traced`] log and published on `mesh.lineage` ([`lineage::publisher`]).
//! - `metrics`: the runtime's metric families ([`RuntimeMetrics`]).
//! - `supervisor`: [`Supervisor`], [`Registration`], [`RestartPolicy`].
//! - `trace`: [`trace::TraceContext`] (`traceparent`), [`trace::Span`],
//!   [`Tracer`] (the span store and the OTLP exporter), [`trace::scope`].

pub mod catalogue;
mod config;
mod consumer;
mod dedup;
mod handler;
mod health;
pub mod lineage;
pub mod metrics;
mod supervisor;
pub mod trace;

pub use config::{ConsumerConfig, ConsumerSpec, RetryPolicy, Subscription};
pub use consumer::{
    run_consumer, run_pipelined, run_standalone, Pipeline, Settled, StandaloneReport,
};
pub use dedup::Dedup;
pub use handler::{ErrorKind, Handler, HandlerError};
pub use health::{Check, Health, HealthReport, ReadyReport, ServiceState, ServiceStatus};
pub use lineage::{Edge, Lineage, Role, Traced, TracedConsumer};
pub use metrics::RuntimeMetrics;
pub use supervisor::{
    Failure, Registration, RestartPolicy, ServiceContext, ServiceError, Supervisor,
    SupervisorOptions,
};
pub use tokio_util::sync::CancellationToken;
pub use trace::{TraceContext, Tracer};
pub use ultracore_metrics::Registry;
