//! Metrics in the Prometheus text exposition format: one [`Registry`] per
//! process serves one `/metrics` for every service, and a few typed
//! families ([`CounterVec`], [`GaugeVec`], [`HistogramVec`]) keep names,
//! help texts and label sets consistent.
//!
//! Hot paths take a handle once ([`CounterVec::with`] returns a cheap
//! clone of the series' atomic) and then pay one relaxed atomic add per
//! event: nothing here locks on the way of an event once the handle exists.
//! Families that already render themselves (a service's own exposition)
//! join through the [`Collector`] trait.
//!
//! # Layout
//!
//! - `registry`: the [`Registry`] and the [`Collector`] trait.
//! - `family`: [`CounterVec`], [`GaugeVec`], [`HistogramVec`] and their
//!   series handles.
//! - `text`: escaping and the `# HELP` / `# TYPE` lines ([`Exposition`]).

mod family;
mod registry;
mod text;

pub use family::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec};
pub use registry::{Collector, FnCollector, Registry};
pub use text::{escape_label_value, Exposition, Kind};

/// Latency buckets, in seconds, from 100 µs to 10 s: HTTP requests and
/// batch handling.
pub const LATENCY_BUCKETS: &[f64] = &[
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
