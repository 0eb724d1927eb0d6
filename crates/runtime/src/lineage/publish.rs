//! Lineage on the log: each newly seen edge as a `lineage_edge_observed`
//! event on `mesh.lineage`, and back.
//!
//! The event is an ordinary envelope (aggregate type `topic`, aggregate id
//! and so key the edge's topic; one partition, so one total order), its
//! payload the [`Edge`] as JSON:
//!
//! ```json
//! { "service": "enricher", "topic": "query-events", "role": "consumes",
//!   "group": "enricher", "first_seen_ms": 1767225600000,
//!   "last_seen_ms": 1767225600000, "records": 0 }
//! ```
//!
//! Its event id is derived from the edge's key (service, topic, role,
//! group) alone, so the same edge published again (by a restarted
//! publisher, another instance of the service, a later process) is the
//! same event to a consumer that deduplicates by id. Its counts and times
//! are those of the edge when it was published: the log says which edges
//! exist and since when; the live counts are in each process's [`Lineage`].

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use ultracore_log::{
    derive_event_id, read_to_end, DecodeError, EnvelopeBuilder, EventLog, RawEnvelope, Record,
    Seek, EVENT_ID_NAMESPACE,
};

use super::{Edge, Lineage};
use crate::{catalogue, Registration, ServiceError};

/// The topic lineage edges go to (a row of [`crate::catalogue::TOPICS`]).
pub const TOPIC: &str = "mesh.lineage";
/// The event type of a newly seen edge.
pub const EDGE_OBSERVED: &str = "lineage_edge_observed";
/// The schema version of [`EDGE_OBSERVED`] this code writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// The name [`publisher`] registers under.
pub const PUBLISHER: &str = "lineage";

/// The event of `edge` as it goes on [`TOPIC`], with the id its key
/// derives (see the module's documentation).
pub fn envelope(edge: &Edge) -> RawEnvelope {
    let payload = serde_json::to_value(edge).expect("an edge always serializes");
    let mut env = EnvelopeBuilder::new("topic", edge.topic.clone()).build_raw(
        EDGE_OBSERVED,
        SCHEMA_VERSION,
        payload,
    );
    // NUL between the fields: no name has one, so different keys are
    // different tags. A producer's group is empty; the role tells the two apart.
    let tag = format!(
        "lineage\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        edge.service,
        edge.topic,
        edge.role,
        edge.group.as_deref().unwrap_or("")
    );
    env.event_id = derive_event_id(EVENT_ID_NAMESPACE, tag.as_bytes(), 0);
    env
}

/// The edge a `lineage_edge_observed` record carries; `None` for a record
/// of another event type. Errors when it is not an envelope, or its
/// payload not an edge of a schema version this code knows.
pub fn edge_of(record: &Record) -> Result<Option<Edge>, DecodeError> {
    let env = RawEnvelope::from_bytes(&record.value)?;
    if env.event_type != EDGE_OBSERVED {
        return Ok(None);
    }
    if env.schema_version > SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            event_type: env.event_type,
            version: env.schema_version,
            newest: SCHEMA_VERSION,
        });
    }
    ultracore_log::payload_as(EDGE_OBSERVED, env.payload).map(Some)
}

/// Appends `edges` to [`TOPIC`] in one call.
async fn append<L: EventLog>(log: &L, edges: &[Edge]) -> Result<(), ServiceError> {
    if edges.is_empty() {
        return Ok(());
    }
    let records = edges.iter().map(|e| envelope(e).to_record()).collect();
    log.append(TOPIC, records).await?;
    tracing::debug!(edges = edges.len(), "lineage edges published");
    Ok(())
}

/// Puts `lineage`'s edges on [`TOPIC`] until `token` is cancelled: first
/// every edge known (after a restart, the edges taken before a failed
/// append would otherwise never reach the log; their ids make the repeats
/// harmless), then each edge as it is first seen, several in one append
/// when they arrive together. On cancellation, publishes what is left and
/// returns `Ok`. Errors when the log fails. One publisher per
/// [`Lineage`]: it takes the new edges ([`Lineage::take_new`]).
pub async fn publish<L: EventLog>(
    lineage: &Lineage,
    log: &L,
    token: &CancellationToken,
) -> Result<(), ServiceError> {
    catalogue::ensure(log, &[TOPIC]).await?;
    // Take before listing: an edge first seen in between is published
    // twice (harmless), never missed.
    lineage.take_new();
    let mut edges = lineage.edges();
    loop {
        append(log, &edges).await?;
        tokio::select! {
            _ = token.cancelled() => {
                append(log, &lineage.take_new()).await?;
                return Ok(());
            }
            _ = lineage.wait_new() => {}
        }
        edges = lineage.take_new();
    }
}

/// The service that publishes the supervisor's lineage
/// ([`crate::ServiceContext::lineage`]) on [`TOPIC`], named [`PUBLISHER`];
/// see [`publish`]. It writes through its own traced log, so the catalogue
/// also shows it as `mesh.lineage`'s producer.
pub fn publisher<L: EventLog>(log: L) -> Registration {
    Registration::task(PUBLISHER, move |ctx| {
        let log = ctx.traced(log.clone());
        async move { publish(&ctx.lineage, &log, &ctx.token).await }
    })
}

/// What [`read_lineage`] read.
#[derive(Debug, Clone)]
pub struct LineageRead {
    /// Every edge of the events read, merged.
    pub lineage: Lineage,
    /// Records read.
    pub records: u64,
    /// Records that were not readable lineage events (each logged at WARN).
    pub unreadable: u64,
    /// Reached the end the topic had when the read began.
    pub complete: bool,
}

/// Folds [`TOPIC`] from the beginning up to the end it had when the read
/// began (or until `deadline`) into a new [`Lineage`], through a consumer
/// group of its own that never commits: the catalogue's view, in any
/// process. A missing topic is an empty, complete lineage. Errors only
/// when the log fails; an unreadable record is counted and skipped.
pub async fn read_lineage<L: EventLog>(
    log: &L,
    deadline: tokio::time::Instant,
) -> Result<LineageRead, ultracore_log::Error> {
    let lineage = Lineage::new();
    let mut unreadable = 0;
    let read = read_to_end(
        log,
        "lineage-read",
        TOPIC,
        Seek::Beginning,
        deadline,
        Duration::from_millis(500),
        |record| {
            if let Err(e) = lineage.fold(record) {
                unreadable += 1;
                tracing::warn!(
                    topic = TOPIC, partition = record.partition, offset = record.offset,
                    error = %e, "unreadable lineage record skipped"
                );
            }
        },
    )
    .await?;
    Ok(LineageRead {
        lineage,
        records: read.records,
        unreadable,
        complete: read.complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::Role;
    use ultracore_log::{EnvelopeBuilder, NewRecord};

    fn edge(role: Role, group: Option<&str>) -> Edge {
        Edge {
            service: "svc".into(),
            topic: "a".into(),
            role,
            group: group.map(str::to_owned),
            first_seen_ms: 10,
            last_seen_ms: 20,
            records: 3,
        }
    }

    fn record(new: NewRecord) -> Record {
        Record {
            topic: TOPIC.into(),
            partition: 0,
            offset: 7,
            timestamp: new.timestamp.unwrap_or(0),
            key: new.key,
            value: new.value,
            headers: new.headers,
        }
    }

    #[test]
    fn an_edge_round_trips_through_its_record() -> Result<(), DecodeError> {
        let e = edge(Role::Consumes, Some("g"));
        let env = envelope(&e);
        assert_eq!(env.event_type, EDGE_OBSERVED);
        let new = env.to_record();
        assert_eq!(new.key.as_deref(), Some(&b"a"[..]), "keyed by topic");
        assert_eq!(edge_of(&record(new.clone()))?, Some(e.clone()));
        let folded = Lineage::new();
        assert!(folded.fold(&record(new.clone()))?);
        assert!(!folded.fold(&record(new))?, "a repeat is harmless");
        assert_eq!(folded.edges(), vec![e]);
        Ok(())
    }

    #[test]
    fn the_event_id_is_the_edge_key_and_nothing_else() {
        let consumes = edge(Role::Consumes, Some("g"));
        let later = Edge {
            last_seen_ms: 99,
            records: 1_000,
            ..consumes.clone()
        };
        assert_eq!(envelope(&consumes).event_id, envelope(&later).event_id);
        assert_eq!(envelope(&consumes).event_id.get_version_num(), 5);
        let ids = [
            envelope(&consumes).event_id,
            envelope(&edge(Role::Consumes, Some("h"))).event_id,
            envelope(&edge(Role::Produces, None)).event_id,
            envelope(&Edge {
                service: "svc2".into(),
                ..consumes.clone()
            })
            .event_id,
            envelope(&Edge {
                topic: "a.dlq".into(),
                ..consumes.clone()
            })
            .event_id,
        ];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn other_events_are_skipped_and_garbage_is_an_error() {
        let other = EnvelopeBuilder::new("topic", "a")
            .build_raw("lineage_edge_retired", 1, serde_json::json!({}))
            .to_record();
        assert_eq!(edge_of(&record(other)), Ok(None));
        assert!(matches!(
            edge_of(&record(NewRecord::new("a", "not json"))),
            Err(DecodeError::NotJson(_))
        ));
        let mut newer = envelope(&edge(Role::Produces, None));
        newer.schema_version = SCHEMA_VERSION + 1;
        assert!(matches!(
            edge_of(&record(newer.to_record())),
            Err(DecodeError::UnsupportedVersion { version: 2, .. })
        ));
        let bad = EnvelopeBuilder::new("topic", "a")
            .build_raw(EDGE_OBSERVED, 1, serde_json::json!({"service": "svc"}))
            .to_record();
        assert!(matches!(
            edge_of(&record(bad)),
            Err(DecodeError::PayloadMismatch { .. })
        ));
    }
}
