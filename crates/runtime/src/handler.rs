//! What a consumer service supplies: a [`Handler`] of batches, and the
//! [`HandlerError`] that tells the runtime what to do when one fails.

use std::future::Future;

use ultracore_log::Record;

/// A consumer service's logic.
///
/// The runtime polls a batch, calls [`Handler::handle`], and commits the
/// batch's positions only after it returns `Ok`: so when it returns, the
/// effects of every record of the batch must be durable. Delivery is
/// at-least-once (a crash before the commit, or a retry, delivers records
/// again), so effects must be idempotent: derive output event ids from the
/// input, deduplicate by id ([`crate::Dedup`]).
///
/// When a batch fails the runtime handles its records one at a time, so
/// the record at fault is found; see [`HandlerError`] for what happens next.
/// A panic inside `handle` is caught and treated as [`ErrorKind::Retry`].
/// Keep in-memory state consistent across a failure: update it after the
/// effects are durable, never before.
pub trait Handler: Send + 'static {
    fn handle(&mut self, batch: &[Record])
        -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// How a failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The record itself is at fault (malformed, not of this topic, a
    /// request that can never succeed): it goes to `<topic>.dlq` at once.
    Reject,
    /// It may succeed later (contention, a dependency that flickered): the
    /// record is retried with backoff, then dead-lettered with the reason.
    Retry,
    /// The platform is failing (the log or the database): the batch is
    /// retried with backoff, and when that does not help the service stops
    /// with the error. The record is never blamed for it.
    Infra,
}

/// A handler's failure: its kind and a reason a person can act on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct HandlerError {
    pub kind: ErrorKind,
    pub reason: String,
}

impl HandlerError {
    pub fn reject(reason: impl Into<String>) -> Self {
        HandlerError {
            kind: ErrorKind::Reject,
            reason: reason.into(),
        }
    }

    pub fn retry(reason: impl Into<String>) -> Self {
        HandlerError {
            kind: ErrorKind::Retry,
            reason: reason.into(),
        }
    }

    pub fn infra(reason: impl Into<String>) -> Self {
        HandlerError {
            kind: ErrorKind::Infra,
            reason: reason.into(),
        }
    }
}

/// A log error is the platform's, never the record's.
impl From<ultracore_log::Error> for HandlerError {
    fn from(e: ultracore_log::Error) -> Self {
        HandlerError::infra(e.to_string())
    }
}
