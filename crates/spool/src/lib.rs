//! Emitting events that must never be lost and must never slow the caller.
//!
//! A trading decision is published as an event, but the decision may not
//! wait for the log, and a log outage may neither slow decisions down nor
//! lose one decision event. [`SpooledEmitter`] gives that:
//!
//! - [`SpooledEmitter::emit`] hands the record to a background task and
//!   returns at once (a bounded queue; when it is full the call says so).
//! - The task appends to the target log, gathering what arrives within
//!   `linger` (1 ms by default) after a batch's first record into one
//!   append per topic, so a steady trickle costs the log a few appends per
//!   millisecond rather than one per event. A circuit breaker counts
//!   consecutive failures (an error or no acknowledgement within
//!   `append_timeout`): after `failure_threshold` of them it opens and stops
//!   trying; after `open_timeout` it half-opens and tries once.
//! - Whatever could not be delivered goes to a durable local spool (a topic
//!   of the embedded log, fsynced) and so does everything after it while the
//!   spool is not empty, which keeps the order. When the target answers
//!   again the spool is forwarded in order and its progress committed.
//!
//! Delivery is at-least-once: an append that timed out may still land, and a
//! crash between forwarding and committing forwards again. Consumers
//! deduplicate by `event_id` (every envelope carries one), as they must for
//! any consumer of the log.
//!
//! # Layout
//!
//! - `breaker`: the circuit breaker's states and transitions.
//! - `emitter`: the queue, the delivery task, the spool and the statistics.

mod breaker;
mod emitter;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use emitter::{
    EmitError, EmitterOptions, EmitterStats, SpooledEmitter, SPOOL_TOPIC, TOPIC_HEADER,
};
