//! The run loop every service of the flow shares: join a consumer group,
//! handle each polled batch, commit its positions only after the handler
//! has made its effects durable.

use std::future::Future;
use std::time::Duration;

use ultracore_log::{
    Consumer, ConsumerOptions, EventLog, EventLogExt, Position, Record, TopicSpec,
};

use crate::Result;

/// What a service does with one batch. Its effects must be durable (or
/// idempotent to redo) when it returns: the positions are committed next.
pub(crate) trait BatchHandler: Send {
    fn handle(&mut self, records: &[Record]) -> impl Future<Output = Result<()>> + Send;
}

/// Creates the topics unless they exist (name, partitions).
pub(crate) async fn ensure_topics<L: EventLog>(log: &L, topics: &[(&str, u32)]) -> Result<()> {
    for (name, partitions) in topics {
        log.ensure_topic(&TopicSpec::new(*name, *partitions))
            .await?;
    }
    Ok(())
}

/// Serves `group` on `topics` until `shutdown` resolves.
pub(crate) async fn run_group<L: EventLog, H: BatchHandler>(
    log: &L,
    group: &str,
    topics: &[&str],
    handler: &mut H,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut consumer = log
        .consumer(ConsumerOptions::new(group, topics.iter().copied()))
        .await?;
    tokio::pin!(shutdown);
    loop {
        let records = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = consumer.poll(512, Duration::from_millis(100)) => r?,
        };
        if records.is_empty() {
            continue;
        }
        handler.handle(&records).await?;
        consumer.commit(&Position::after(&records)).await?;
    }
}
