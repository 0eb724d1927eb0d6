//! The catalogue's services on the runtime:
//!
//! - `mesh-refresh`: consumes every product's topic ports (group
//!   `mesh-refresh`); each batch refreshes the products whose topics it
//!   touched (one `data_product_refreshed` event per product and batch,
//!   listing the records that caused it). At start it first reads the
//!   topics' latest records (as many as a product keeps rows) to rebuild
//!   the products' rows, which live in memory.
//! - `mesh-openlineage`: an OpenLineage run event on `mesh.openlineage`
//!   for every stored refresh.
//! - `mesh-openlineage-jobs`: OpenLineage `START`/`RUNNING`/`ABORT` events
//!   of every service as a streaming job, from the lineage.
//! - `mesh-lineage`: every process's lineage edges (`mesh.lineage`)
//!   folded into the catalogue's.
//! - `mesh-quality`: grades every product against its contract every
//!   `interval`; a change of tier is an event and a search facet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ultracore_log::{now_millis, read_to_end, EventLog, Record, Seek};
use ultracore_runtime::{
    run_consumer, ConsumerSpec, Handler, HandlerError, Registration, ServiceContext, ServiceError,
    Subscription,
};

use ultracore_es::Aggregate;
use ultracore_log::EventFamily;

use crate::catalogue::{Catalogue, CatalogueError};
use crate::product::DataProduct;

pub const REFRESH_GROUP: &str = "mesh-refresh";

/// Refreshes products from their topics' records.
struct Refresh<L: EventLog> {
    catalogue: Arc<Catalogue<L>>,
    topics: BTreeMap<String, Vec<String>>,
}

impl<L: EventLog> Handler for Refresh<L> {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        let mut by_product: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        for r in batch {
            for p in self.topics.get(&r.topic).into_iter().flatten() {
                by_product.entry(p.as_str()).or_default().push(r);
            }
        }
        for (product, records) in by_product {
            self.catalogue
                .refresh(product, &records)
                .await
                .map_err(|e| match e {
                    CatalogueError::NotFound(_) | CatalogueError::Rejected(_) => {
                        HandlerError::reject(e.to_string())
                    }
                    // Another writer saved first: worth another go.
                    CatalogueError::Store(ultracore_es::Error::Conflict { .. }) => {
                        HandlerError::retry(e.to_string())
                    }
                    other => HandlerError::infra(other.to_string()),
                })?;
        }
        Ok(())
    }
}

/// The `mesh-refresh` service.
pub fn refresh_service<L: EventLog>(catalogue: Arc<Catalogue<L>>, log: L) -> Registration {
    Registration::task("mesh-refresh", move |ctx: ServiceContext| {
        let (catalogue, log) = (catalogue.clone(), log.clone());
        async move {
            let topics = catalogue.topic_products();
            catalogue.set_rebuilding(true);
            let rebuilt = rebuild_rows(&catalogue, &log, &topics).await;
            catalogue.set_rebuilding(false);
            rebuilt?;
            let spec = ConsumerSpec::new(REFRESH_GROUP, Subscription::topics(topics.keys()));
            let names: Vec<&str> = topics.keys().map(String::as_str).collect();
            ultracore_runtime::catalogue::ensure(&log, &names)
                .await
                .map_err(ServiceError::other)?;
            let mut handler = Refresh {
                catalogue,
                topics: topics.clone(),
            };
            run_consumer(&log, &spec, &mut handler, &ctx).await
        }
    })
    .waits_until_ready()
}

/// Reads each product topic from the beginning into the rows.
async fn rebuild_rows<L: EventLog>(
    catalogue: &Catalogue<L>,
    log: &L,
    topics: &BTreeMap<String, Vec<String>>,
) -> Result<(), ServiceError> {
    for (topic, products) in topics {
        let defs: Vec<_> = products
            .iter()
            .filter_map(|p| catalogue.definition(p))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        // A product keeps at most MAX_ROWS rows, the latest written: the
        // last MAX_ROWS records of each partition hold them, so a long
        // topic is not read from its start.
        let from = match log.describe_topic(topic).await {
            Ok(info) => info
                .partitions
                .iter()
                .map(|p| {
                    p.high_watermark
                        .saturating_sub(crate::rows::MAX_ROWS as u64)
                })
                .min()
                .map_or(Seek::Beginning, Seek::Offset),
            Err(_) => Seek::Beginning,
        };
        read_to_end(
            log,
            "mesh-rows",
            topic,
            from,
            deadline,
            Duration::from_millis(200),
            |r| {
                for d in &defs {
                    catalogue.apply_row(&d.id, crate::rows::change_of(d, r));
                }
            },
        )
        .await
        .map_err(ServiceError::other)
        .map(|read| {
            if !read.complete {
                tracing::warn!(topic = %topic, records = read.records, "the rows were rebuilt from part of the topic (the read ran out of time)");
            }
        })?;
    }
    Ok(())
}

/// The `mesh-quality` service: grades products every `interval`.
pub fn quality_service<L: EventLog>(
    catalogue: Arc<Catalogue<L>>,
    interval: Duration,
) -> Registration {
    Registration::task("mesh-quality", move |ctx: ServiceContext| {
        let catalogue = catalogue.clone();
        async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ctx.token.cancelled() => return Ok(()),
                    _ = tick.tick() => {
                        catalogue.sync_consumers();
                        // A failed round is reported and tried again at the
                        // next tick: grading must not take the server down.
                        match catalogue.evaluate(now_millis()).await {
                            Ok(changed) => {
                                for (id, r) in changed {
                                    tracing::info!(product = %id, tier = %r.tier, reasons = ?r.reasons, "data product quality changed");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "grading the data products failed; trying again"),
                        }
                    }
                }
            }
        }
    })
}

/// The topic OpenLineage run events go to.
pub const OPENLINEAGE_TOPIC: &str = "mesh.openlineage";
pub const OPENLINEAGE_GROUP: &str = "mesh-openlineage";

/// Turns each stored `data_product_refreshed` event into an OpenLineage
/// `COMPLETE` run event on `mesh.openlineage` (key: the product id). A
/// projection of the catalogue's own events: a refresh replayed after a
/// crash gives the same run id, so lineage tools see one run.
struct OpenLineageRuns<L: EventLog> {
    catalogue: Arc<Catalogue<L>>,
    out: ultracore_runtime::lineage::Traced<L>,
    emitter: crate::openlineage::Lineage,
}

impl<L: EventLog> Handler for OpenLineageRuns<L> {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        let mut out = Vec::new();
        for r in batch {
            let env = ultracore_log::RawEnvelope::from_bytes(&r.value)
                .map_err(|e| HandlerError::reject(format!("not an event envelope: {e}")))?;
            if env.event_type != "data_product_refreshed" {
                continue;
            }
            let Some(def) = self.catalogue.definition(&env.aggregate_id) else {
                continue;
            };
            let event = <crate::product::ProductEvent as EventFamily>::decode(
                &env.event_type,
                env.schema_version,
                env.payload.clone(),
            )
            .map_err(|e| HandlerError::reject(e.to_string()))?;
            let crate::product::ProductEvent::Refreshed(crate::product::Refresh {
                at_ms,
                causes,
                ..
            }) = event
            else {
                continue;
            };
            let causes: Vec<crate::openlineage::CauseEvent> = causes
                .into_iter()
                .map(|c| crate::openlineage::CauseEvent {
                    topic: c.topic,
                    partition: c.partition,
                    offset: c.offset,
                    event_id: c.event_id.and_then(|id| id.parse().ok()),
                })
                .collect();
            let inputs: Vec<&str> = def.topics().collect();
            let output = crate::openlineage::ProductOutput {
                name: def.id.clone(),
                fields: def
                    .schema
                    .iter()
                    .map(|c| crate::openlineage::SchemaField {
                        name: c.name.clone(),
                        data_type: Some(format!("{:?}", c.kind).to_uppercase()),
                        description: (!c.description.is_empty()).then(|| c.description.clone()),
                    })
                    .collect(),
            };
            let when = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
            let run = self.emitter.refresh_run(
                &def.id,
                &env.version.to_string(),
                &causes,
                &inputs,
                &output,
                when,
            );
            let value = serde_json::to_vec(&run)
                .map_err(|e| HandlerError::reject(format!("run event: {e}")))?;
            out.push(ultracore_log::NewRecord::new(def.id.clone(), value));
        }
        if !out.is_empty() {
            self.out.append(OPENLINEAGE_TOPIC, out).await?;
        }
        Ok(())
    }
}

/// The `mesh-openlineage` service; `topic_namespace` names the log's
/// topics as OpenLineage datasets (see [`crate::openlineage::topic_namespace`]).
pub fn openlineage_service<L: EventLog>(
    catalogue: Arc<Catalogue<L>>,
    log: L,
    topic_namespace: String,
) -> Registration {
    Registration::task("mesh-openlineage", move |ctx: ServiceContext| {
        let (catalogue, log, topic_namespace) =
            (catalogue.clone(), log.clone(), topic_namespace.clone());
        async move {
            let topic = ultracore_es::topic_for(DataProduct::TYPE);
            ultracore_runtime::catalogue::ensure(&log, &[OPENLINEAGE_TOPIC])
                .await
                .map_err(ServiceError::other)?;
            let spec = ConsumerSpec::new(OPENLINEAGE_GROUP, Subscription::topics([topic]));
            let mut handler = OpenLineageRuns {
                catalogue,
                out: ctx.traced(log.clone()),
                emitter: crate::openlineage::Lineage::new(
                    crate::openlineage::PRODUCT_NAMESPACE,
                    topic_namespace,
                ),
            };
            run_consumer(&log, &spec, &mut handler, &ctx).await
        }
    })
    .waits_until_ready()
}

/// Folds `mesh.lineage` (every process's recorded edges) into the
/// catalogue's lineage. Each process reads the whole topic (a group of its
/// own), since each serves lineage for all.
struct FoldLineage {
    lineage: ultracore_runtime::lineage::Lineage,
}

impl Handler for FoldLineage {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        for r in batch {
            self.lineage
                .fold(r)
                .map_err(|e| HandlerError::reject(format!("not a lineage edge: {e}")))?;
        }
        Ok(())
    }
}

/// The `mesh-lineage` service.
pub fn lineage_service<L: EventLog>(catalogue: Arc<Catalogue<L>>, log: L) -> Registration {
    let group = format!("mesh-lineage-{}", uuid::Uuid::now_v7().simple());
    let spec = ConsumerSpec::new(
        group,
        Subscription::topics([ultracore_runtime::lineage::TOPIC]),
    );
    Registration::consumer("mesh-lineage", log, spec, move |_ctx| {
        Ok(FoldLineage {
            lineage: catalogue.lineage().clone(),
        })
    })
}

/// The job namespace of the services' streaming jobs.
pub const SERVICES_NAMESPACE: &str = "ultracore://services";

/// The streaming jobs the lineage shows: per service that consumes, its
/// group, the topics it reads and writes (dead letters and the lineage
/// topics left out).
pub fn streaming_jobs(
    lineage: &ultracore_runtime::lineage::Lineage,
) -> BTreeMap<String, (crate::openlineage::StreamingJob, i64)> {
    use ultracore_runtime::lineage::Role;
    let plumbing = |t: &str| {
        t.ends_with(ultracore_log::DLQ_SUFFIX)
            || t == ultracore_runtime::lineage::TOPIC
            || t == OPENLINEAGE_TOPIC
    };
    let mut jobs: BTreeMap<String, (crate::openlineage::StreamingJob, i64)> = BTreeMap::new();
    for e in lineage.edges() {
        let (job, first) = jobs.entry(e.service.clone()).or_insert_with(|| {
            (
                crate::openlineage::StreamingJob {
                    service: e.service.clone(),
                    group: String::new(),
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                },
                e.first_seen_ms,
            )
        });
        *first = (*first).min(e.first_seen_ms);
        if plumbing(&e.topic) {
            continue;
        }
        match e.role {
            Role::Consumes => {
                if job.group.is_empty() {
                    job.group = e.group.clone().unwrap_or_default();
                }
                if !job.inputs.contains(&e.topic) {
                    job.inputs.push(e.topic.clone());
                }
            }
            Role::Produces => {
                if !job.outputs.contains(&e.topic) {
                    job.outputs.push(e.topic.clone());
                }
            }
        }
    }
    jobs.retain(|_, (j, _)| !j.group.is_empty());
    for (j, _) in jobs.values_mut() {
        j.inputs.sort();
        j.outputs.sort();
    }
    jobs
}

/// The `mesh-openlineage-jobs` service: every `interval`, a `START` for
/// each streaming job the lineage shows for the first time, a `RUNNING`
/// for one whose inputs or outputs changed; an `ABORT` for each on
/// shutdown (a streaming job ends only when it is stopped).
pub fn openlineage_jobs_service<L: EventLog>(
    catalogue: Arc<Catalogue<L>>,
    log: L,
    topic_namespace: String,
    interval: Duration,
) -> Registration {
    use crate::openlineage::{Lineage as Emitter, StreamState};
    Registration::task("mesh-openlineage-jobs", move |ctx: ServiceContext| {
        let (catalogue, log, topic_namespace) =
            (catalogue.clone(), log.clone(), topic_namespace.clone());
        async move {
            ultracore_runtime::catalogue::ensure(&log, &[OPENLINEAGE_TOPIC])
                .await
                .map_err(ServiceError::other)?;
            let out = ctx.traced(log);
            let emitter = Emitter::new(SERVICES_NAMESPACE, topic_namespace);
            let mut told: BTreeMap<String, crate::openlineage::StreamingJob> = BTreeMap::new();
            let mut started: BTreeMap<String, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ctx.ready();
            loop {
                let stopping = tokio::select! {
                    _ = ctx.token.cancelled() => true,
                    _ = tick.tick() => false,
                };
                let now = chrono::Utc::now();
                let mut records = Vec::new();
                let mut emit = |job: &crate::openlineage::StreamingJob,
                                state,
                                at|
                 -> Result<(), ServiceError> {
                    let event = emitter.streaming_job(job, state, at, now);
                    let value = serde_json::to_vec(&event).map_err(ServiceError::other)?;
                    records.push(ultracore_log::NewRecord::new(job.service.clone(), value));
                    Ok(())
                };
                if stopping {
                    for (service, job) in &told {
                        emit(job, StreamState::Stopped, started[service])?;
                    }
                } else {
                    for (service, (job, first_ms)) in streaming_jobs(catalogue.lineage()) {
                        let at = *started.entry(service.clone()).or_insert_with(|| {
                            chrono::DateTime::from_timestamp_millis(first_ms).unwrap_or(now)
                        });
                        match told.get(&service) {
                            None => emit(&job, StreamState::Started, at)?,
                            Some(before) if *before != job => emit(&job, StreamState::Running, at)?,
                            Some(_) => continue,
                        }
                        told.insert(service, job);
                    }
                }
                if !records.is_empty() {
                    out.append(OPENLINEAGE_TOPIC, records)
                        .await
                        .map_err(ServiceError::other)?;
                }
                if stopping {
                    return Ok(());
                }
            }
        }
    })
}
