//! [`Traced`]: an [`EventLog`] that records what a service does with it
//! in a [`Lineage`], and carries traces through the log (a `traceparent`
//! header and a `send` span per record appended, a `process` span per
//! record polled: see [`crate::trace`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ultracore_log::{
    Appended, Consumer, ConsumerOptions, EventLog, GroupLag, NewRecord, Position, Record, Result,
    Seek, TopicInfo, TopicPartition, TopicSpec,
};

use super::Lineage;
use crate::trace::{self, Processing, Tracer};

tokio::task_local! {
    /// Set while a traced call is in the log beneath. A traced log inside
    /// another one (a service that passes `ctx.traced(log)` to
    /// `run_consumer`, which traces its log again) finds it set and records
    /// nothing, so every record is counted once: by the outermost wrapper.
    static TRACING: ();
}

/// Whether this call runs beneath a traced call, which records it.
fn nested() -> bool {
    TRACING.try_with(|()| ()).is_ok()
}

/// A log that forwards everything to `L` and records, under its service's
/// name, every successful append as a [`super::Role::Produces`] edge
/// (counting its records; a dead-letter append is one like any other) and
/// every consumer it creates as a [`super::Role::Consumes`] edge per
/// subscribed topic, with the consumer's group (counting the records each
/// poll returns). Topic admin, listings and lag are not recorded.
///
/// A failed append records nothing, though it may have stored a prefix of
/// the batch (see [`EventLog::append`]): the edge is recorded by the next
/// append that succeeds. A `Traced` wrapped in another records nothing:
/// the outermost records every call once, under its own service name.
///
/// Tracing: every record appended leaves with a `traceparent` header naming
/// its `send` span, and every record polled gets a `process` span, both
/// recorded in its [`Tracer`] (the rules are in [`crate::trace`]). The
/// `traceparent` is added even when this wrapper is nested, by the
/// outermost one; a failed append records its send spans with an error
/// status.
#[derive(Debug, Clone)]
pub struct Traced<L> {
    inner: L,
    lineage: Lineage,
    service: Arc<str>,
    tracer: Tracer,
}

impl<L: EventLog> Traced<L> {
    /// `log`, recording into `lineage` as `service`, its spans into the
    /// process's [`Tracer::global`]. In a service, use
    /// [`crate::ServiceContext::traced`] (the supervisor's tracer).
    pub fn new(log: L, lineage: Lineage, service: &str) -> Self {
        Traced {
            inner: log,
            lineage,
            service: Arc::from(service),
            tracer: Tracer::global(),
        }
    }

    /// The same log recording its spans into `tracer`.
    pub fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// The tracer it records spans into.
    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// The service it records as.
    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn lineage(&self) -> &Lineage {
        &self.lineage
    }

    /// The log beneath (appends to it are not recorded).
    pub fn inner(&self) -> &L {
        &self.inner
    }

    pub fn into_inner(self) -> L {
        self.inner
    }
}

impl<L: EventLog> EventLog for Traced<L> {
    type Consumer = TracedConsumer<L::Consumer>;

    fn create_topic(&self, spec: &TopicSpec) -> impl Future<Output = Result<()>> + Send {
        self.inner.create_topic(spec)
    }

    fn physical_topic(&self, topic: &str) -> String {
        self.inner.physical_topic(topic)
    }

    fn list_topics(&self) -> impl Future<Output = Result<Vec<TopicInfo>>> + Send {
        self.inner.list_topics()
    }

    fn describe_topic(&self, topic: &str) -> impl Future<Output = Result<TopicInfo>> + Send {
        self.inner.describe_topic(topic)
    }

    async fn append(&self, topic: &str, mut records: Vec<NewRecord>) -> Result<Vec<Appended>> {
        if nested() {
            return self.inner.append(topic, records).await;
        }
        // The headers are set before the records leave, so the send spans
        // start here: their duration is the append's, durability included.
        let sends = trace::start_sends(&self.tracer, &self.service, topic, &mut records, false);
        let outcome = TRACING.scope((), self.inner.append(topic, records)).await;
        trace::finish_sends(&self.tracer, sends, outcome.as_deref());
        let appended = outcome?;
        // Counted per call, once durable: one short lock per append,
        // whatever the batch size.
        if !appended.is_empty() {
            self.lineage
                .record_produce(&self.service, topic, appended.len() as u64);
        }
        Ok(appended)
    }

    async fn consumer(&self, options: ConsumerOptions) -> Result<Self::Consumer> {
        let group: Arc<str> = Arc::from(options.group.as_str());
        if nested() {
            let inner = self.inner.consumer(options).await?;
            return Ok(TracedConsumer::new(inner, self, group));
        }
        let topics = options.topics.clone();
        let inner = TRACING.scope((), self.inner.consumer(options)).await?;
        // A member that joined reads its topics even before a record
        // arrives: the catalogue shows it downstream at once.
        self.lineage.record_joined(&self.service, &group, &topics);
        Ok(TracedConsumer::new(inner, self, group))
    }

    fn list_groups(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        self.inner.list_groups()
    }

    fn group_lag(&self, group: &str) -> impl Future<Output = Result<Vec<GroupLag>>> + Send {
        self.inner.group_lag(group)
    }

    fn timestamp_at(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> impl Future<Output = Result<Option<i64>>> + Send {
        self.inner.timestamp_at(topic, partition, offset)
    }
}

/// A member of a consumer group created by a [`Traced`] log: counts the
/// records of each poll per topic under its service and group, and gives
/// each record a `process` span, open until the first commit past it (see
/// [`crate::trace`] for the other ways one ends: a member that never
/// commits ends them at its next poll; a seek or dropping the member ends
/// them all).
#[derive(Debug)]
pub struct TracedConsumer<C> {
    inner: C,
    lineage: Lineage,
    service: Arc<str>,
    group: Arc<str>,
    tracer: Tracer,
    processing: Processing,
}

impl<C: Consumer> TracedConsumer<C> {
    fn new<L>(inner: C, log: &Traced<L>, group: Arc<str>) -> Self {
        TracedConsumer {
            inner,
            lineage: log.lineage.clone(),
            service: log.service.clone(),
            group,
            tracer: log.tracer.clone(),
            processing: Processing::default(),
        }
    }

    /// Its consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The consumer beneath (polls through it are not recorded).
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

impl<C: Consumer> Consumer for TracedConsumer<C> {
    /// As cancel-safe as the consumer beneath: records are counted, and
    /// their `process` spans started, in the same step that returns them,
    /// so a dropped poll counts nothing.
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>> {
        if nested() {
            return self.inner.poll(max, timeout).await;
        }
        self.processing.polling(&self.tracer);
        let records = TRACING.scope((), self.inner.poll(max, timeout)).await?;
        if !records.is_empty() {
            self.lineage
                .record_polled(&self.service, &self.group, &records);
            self.processing
                .polled(&self.tracer, &self.service, &self.group, &records);
        }
        Ok(records)
    }

    /// Ends, once the commit is durable, the `process` spans of the records
    /// before `positions`.
    async fn commit(&mut self, positions: &[Position]) -> Result<()> {
        self.inner.commit(positions).await?;
        self.processing.committed(&self.tracer, positions);
        Ok(())
    }

    /// Ends every open `process` span: their records are read again.
    async fn seek(&mut self, target: Seek) -> Result<()> {
        self.processing.end_all(&self.tracer);
        self.inner.seek(target).await
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.inner.assignment()
    }
}

impl<C> Drop for TracedConsumer<C> {
    /// A member leaving ends what it was processing.
    fn drop(&mut self) {
        self.processing.end_all(&self.tracer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::Role;
    use ultracore_log::{DeadLetter, EventLogExt};
    use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn open() -> std::result::Result<(tempfile::TempDir, EmbeddedLog), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
        Ok((dir, log))
    }

    async fn poll_all<C: Consumer>(c: &mut C, want: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for _ in 0..100 {
            out.extend(c.poll(100, Duration::from_millis(50)).await?);
            if out.len() >= want {
                break;
            }
        }
        Ok(out)
    }

    #[tokio::test]
    async fn appends_and_polls_are_recorded_under_the_service() -> TestResult {
        let (_dir, log) = open()?;
        log.ensure_topic(&TopicSpec::new("a", 2)).await?;
        log.ensure_topic(&TopicSpec::new("idle", 1)).await?;
        let lineage = Lineage::new();
        let traced = Traced::new(log.clone(), lineage.clone(), "svc");
        traced
            .append(
                "a",
                vec![
                    NewRecord::new("k1", "1"),
                    NewRecord::new("k2", "2"),
                    NewRecord::new("k3", "3"),
                ],
            )
            .await?;
        traced.append("a", Vec::new()).await?;
        assert_eq!(
            lineage
                .get("svc", "a", Role::Produces, None)
                .map(|e| e.records),
            Some(3),
            "an empty append is no data flowing"
        );
        // Untraced appends are not recorded.
        log.append("a", vec![NewRecord::new("k4", "4")]).await?;
        assert_eq!(lineage.producers_of("a").len(), 1);

        let mut c = traced
            .consumer(ConsumerOptions::new("readers", ["a", "idle"]))
            .await?;
        assert_eq!(c.group(), "readers");
        let joined = lineage.consumers_of("idle");
        assert_eq!(joined.len(), 1, "joining records the edge");
        assert_eq!(
            (joined[0].group.as_deref(), joined[0].records),
            (Some("readers"), 0)
        );
        let got = poll_all(&mut c, 4).await?;
        assert_eq!(got.len(), 4);
        assert_eq!(
            lineage
                .get("svc", "a", Role::Consumes, Some("readers"))
                .map(|e| e.records),
            Some(4)
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_traced_log_inside_another_counts_once_as_the_outermost() -> TestResult {
        let (_dir, log) = open()?;
        log.ensure_topic(&TopicSpec::new("a", 1)).await?;
        let lineage = Lineage::new();
        let inner = Traced::new(log, lineage.clone(), "inner");
        let outer = Traced::new(inner, lineage.clone(), "outer");
        outer
            .append(
                "a",
                vec![NewRecord::new("k", "1"), NewRecord::new("k", "2")],
            )
            .await?;
        let mut c = outer.consumer(ConsumerOptions::new("g", ["a"])).await?;
        assert_eq!(poll_all(&mut c, 2).await?.len(), 2);
        let edges = lineage.edges();
        assert_eq!(edges.len(), 2, "{edges:?}");
        assert!(edges.iter().all(|e| e.service == "outer" && e.records == 2));
        // The inner one used on its own records as itself.
        outer
            .inner()
            .append("a", vec![NewRecord::new("k", "3")])
            .await?;
        assert_eq!(
            lineage
                .get("inner", "a", Role::Produces, None)
                .map(|e| e.records),
            Some(1)
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_dead_letter_is_a_produce_edge_to_the_dlq_topic() -> TestResult {
        let (_dir, log) = open()?;
        log.ensure_topic(&TopicSpec::new("a", 1)).await?;
        log.append("a", vec![NewRecord::new("k", "poison")]).await?;
        let lineage = Lineage::new();
        let traced = Traced::new(log, lineage.clone(), "svc");
        let mut c = traced.consumer(ConsumerOptions::new("g", ["a"])).await?;
        let got = poll_all(&mut c, 1).await?;
        DeadLetter::new(&got[0], "not an event")
            .send(&traced)
            .await?;
        let dlq = lineage.producers_of("a.dlq");
        assert_eq!(dlq.len(), 1);
        assert_eq!((dlq[0].service.as_str(), dlq[0].records), ("svc", 1));
        assert!(dlq[0].is_dead_letter());
        Ok(())
    }
}
