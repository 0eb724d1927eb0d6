//! The flow's services on the service runtime: each is a batch handler the
//! runtime runs as a consumer group (commit after the handler's effects are
//! durable, retries, dead letters, shutdown).

use std::future::Future;

use ultracore_log::{EventLog, EventLogExt, Record, TopicSpec};
use ultracore_runtime::{run_standalone, ConsumerSpec, Handler, HandlerError, Subscription};

use crate::{Error, Result};

/// Most records one batch of a flow service holds.
pub(crate) const MAX_BATCH: usize = 512;

/// What a service does with one batch. Its effects must be durable (or
/// idempotent to redo) when it returns: the positions are committed next.
pub(crate) trait BatchHandler: Send + 'static {
    fn handle(&mut self, records: &[Record]) -> impl Future<Output = Result<()>> + Send;
}

/// A flow handler as the runtime runs it.
#[derive(Debug)]
pub(crate) struct Flowing<H>(pub H);

impl<H: BatchHandler> Handler for Flowing<H> {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        self.0.handle(batch).await.map_err(HandlerError::from)
    }
}

/// Which failures are the platform's and which may pass on a retry.
impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Contended(_) => HandlerError::retry(e.to_string()),
            Error::Store(ultracore_es::Error::Conflict { .. }) => {
                HandlerError::retry(e.to_string())
            }
            _ => HandlerError::infra(e.to_string()),
        }
    }
}

/// The consumer spec of a flow service.
pub(crate) fn spec(group: &str, topics: &[&str]) -> ConsumerSpec {
    ConsumerSpec::new(group, Subscription::topics(topics.iter().copied())).max_batch(MAX_BATCH)
}

/// Creates the topics unless they exist (name, partitions).
pub(crate) async fn ensure_topics<L: EventLog>(log: &L, topics: &[(&str, u32)]) -> Result<()> {
    for (name, partitions) in topics {
        log.ensure_topic(&TopicSpec::new(*name, *partitions))
            .await?;
    }
    Ok(())
}

/// Serves `group` on `topics` alone until `shutdown` resolves.
pub(crate) async fn run_group<L: EventLog, H: BatchHandler>(
    log: &L,
    name: &str,
    group: &str,
    topics: &[&str],
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<H> {
    let mut flowing = Flowing(handler);
    run_standalone(name, log, &spec(group, topics), &mut flowing, shutdown)
        .await
        .map_err(|e| Error::Service {
            service: name.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(flowing.0)
}
