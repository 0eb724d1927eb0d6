//! Reading a topic to the end it had when the read began, through a
//! consumer group of its own that never commits: start-up rebuilds (a
//! service's history, a relay's recovery) and tools.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::{Consumer, ConsumerOptions, EventLog, Record, Result, Seek};

/// How far one read got.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadToEnd {
    /// Records handed to the visitor.
    pub records: u64,
    /// Reached the end the topic had when the read began.
    pub complete: bool,
}

/// Reads `topic` from `from` up to the end it had when the read began (or
/// until `deadline`), handing each record to `visit`, through a consumer
/// group of its own that never commits.
///
/// A read from an offset or the beginning is complete when every partition
/// reached its high watermark. A read from a time cannot know which
/// partitions hold records in the window, so it is also complete after
/// `idle` without a record once every partition is assigned.
pub async fn read_to_end<L: EventLog>(
    log: &L,
    group_prefix: &str,
    topic: &str,
    from: Seek,
    deadline: Instant,
    idle: Duration,
    mut visit: impl FnMut(&Record),
) -> Result<ReadToEnd> {
    let mut read = ReadToEnd::default();
    let info = match tokio::time::timeout_at(deadline, log.describe_topic(topic)).await {
        Ok(Ok(info)) => info,
        Ok(Err(crate::Error::UnknownTopic(_))) => {
            read.complete = true;
            return Ok(read);
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(read),
    };
    // Partition → the offset to reach: the last record when the read began
    // (none when there is nothing to read from the start position).
    let first = |p: &crate::PartitionInfo| match from {
        Seek::Offset(o) => o.max(p.log_start_offset),
        _ => p.log_start_offset,
    };
    let mut pending: BTreeMap<u32, u64> = info
        .partitions
        .iter()
        .filter(|p| p.high_watermark > first(p))
        .map(|p| (p.partition, p.high_watermark - 1))
        .collect();
    if pending.is_empty() {
        read.complete = true;
        return Ok(read);
    }
    let all: BTreeSet<u32> = info.partitions.iter().map(|p| p.partition).collect();
    let group = format!("{group_prefix}-{}", Uuid::now_v7().simple());
    let options = ConsumerOptions::new(group, [topic]);
    let mut consumer = match tokio::time::timeout_at(deadline, log.consumer(options)).await {
        Ok(c) => c?,
        Err(_) => return Ok(read),
    };
    if from != Seek::Beginning {
        consumer.seek(from).await?;
    }
    let by_time = matches!(from, Seek::Timestamp(_));
    let mut quiet_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(read);
        }
        let wait = (deadline - now).min(Duration::from_millis(200));
        let batch = match tokio::time::timeout_at(deadline, consumer.poll(1000, wait)).await {
            Ok(b) => b?,
            Err(_) => return Ok(read),
        };
        for r in &batch {
            read.records += 1;
            visit(r);
            if pending
                .get(&r.partition)
                .is_some_and(|&last| r.offset >= last)
            {
                pending.remove(&r.partition);
            }
        }
        if pending.is_empty() {
            read.complete = true;
            return Ok(read);
        }
        if !by_time {
            continue;
        }
        let assigned: BTreeSet<u32> = consumer
            .assignment()
            .into_iter()
            .filter(|tp| tp.topic == topic)
            .map(|tp| tp.partition)
            .collect();
        if !batch.is_empty() || assigned != all {
            quiet_since = None;
        } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= idle {
            read.complete = true;
            return Ok(read);
        }
    }
}
