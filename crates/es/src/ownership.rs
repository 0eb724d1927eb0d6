//! Single-writer ownership on a shared log (Kafka): which command-handler
//! instance writes which aggregates.
//!
//! Every instance that handles commands of an aggregate type joins the
//! consumer group `es-writers.<TYPE>` on the type's topic. The group assigns
//! each partition to exactly one live member, and one aggregate lives in one
//! partition (the key is its id), so the assignment says which instance owns
//! an aggregate. A router sends a command to the owner; an instance refuses
//! commands for aggregates it does not own ([`Error::NotOwner`]).
//!
//! During a rebalance (an instance joins, leaves or stops heartbeating),
//! Kafka's classic protocol revokes partitions before it assigns them, but
//! a stalled instance may not notice at once that it lost a partition, so
//! two instances can briefly both believe they own it. That is safe: each
//! save re-reads the partition's tail before it appends and checks after it
//! appended that partition order accepted its events (see `store`), so of
//! two overlapping saves one wins and the other gets [`Error::Conflict`].
//! Ownership keeps conflicts rare; it is not what makes them impossible.

use std::collections::BTreeSet;
use std::time::Duration;

use ultracore_log::{partition_for_key, Consumer, ConsumerOptions, EventLog, StartFrom};

use crate::{topic_for, Error, EventStore, Result};

/// This instance's membership in the writer group of one aggregate type.
pub struct Ownership<L: EventLog> {
    aggregate_type: String,
    topic: String,
    partitions: u32,
    consumer: L::Consumer,
    owned: BTreeSet<u32>,
}

impl<L: EventLog> std::fmt::Debug for Ownership<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ownership")
            .field("aggregate_type", &self.aggregate_type)
            .field("owned", &self.owned)
            .finish()
    }
}

impl<L: EventLog> Ownership<L> {
    /// The writer group of an aggregate type.
    pub fn group(aggregate_type: &str) -> String {
        format!("es-writers.{aggregate_type}")
    }

    /// Joins the writer group (creating the aggregate topic if needed).
    /// Ownership is known after [`Ownership::refresh`] has seen an assignment.
    pub async fn join(store: &EventStore<L>, aggregate_type: &str) -> Result<Self> {
        store.ensure_topic(aggregate_type).await?;
        let topic = topic_for(aggregate_type);
        let partitions = store.log().describe_topic(&topic).await?.partitions.len() as u32;
        // The group only assigns partitions: it never commits, and starts at
        // the end so the few records its polls fetch cost nothing.
        let options = ConsumerOptions::new(Self::group(aggregate_type), [topic.clone()])
            .start(StartFrom::Latest);
        let consumer = store.log().consumer(options).await?;
        Ok(Ownership {
            aggregate_type: aggregate_type.to_owned(),
            topic,
            partitions,
            consumer,
            owned: BTreeSet::new(),
        })
    }

    /// Takes part in the group protocol (call it regularly, e.g. before each
    /// command) and returns the partitions owned now.
    pub async fn refresh(&mut self) -> Result<&BTreeSet<u32>> {
        // Polling is what drives joins, heartbeats and rebalances.
        self.consumer.poll(1, Duration::from_millis(50)).await?;
        let now: BTreeSet<u32> = self
            .consumer
            .assignment()
            .into_iter()
            .filter(|tp| tp.topic == self.topic)
            .map(|tp| tp.partition)
            .collect();
        if now != self.owned {
            tracing::info!(aggregate_type = %self.aggregate_type, owned = ?now, "writer ownership changed");
            self.owned = now;
        }
        Ok(&self.owned)
    }

    /// The partition of an aggregate.
    pub fn partition_of(&self, aggregate_id: &str) -> u32 {
        partition_for_key(aggregate_id.as_bytes(), self.partitions)
    }

    /// Whether this instance owns the aggregate (as of the last refresh).
    pub fn owns(&self, aggregate_id: &str) -> bool {
        self.owned.contains(&self.partition_of(aggregate_id))
    }

    /// `Ok` if this instance owns the aggregate, else [`Error::NotOwner`].
    pub fn check(&self, aggregate_id: &str) -> Result<()> {
        if self.owns(aggregate_id) {
            return Ok(());
        }
        Err(Error::NotOwner {
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: aggregate_id.to_owned(),
            partition: self.partition_of(aggregate_id),
        })
    }
}
