//! The catalogue's services on the runtime:
//!
//! - `mesh-refresh`: consumes every product's topic ports (group
//!   `mesh-refresh`); each batch refreshes the products whose topics it
//!   touched (one `data_product_refreshed` event per product and batch,
//!   listing the records that caused it). At start it first reads the
//!   topics from the beginning to rebuild the products' rows, which live in
//!   memory.
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

use crate::catalogue::{Catalogue, CatalogueError};

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
            rebuild_rows(&catalogue, &log, &topics).await?;
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
        let mut changes: Vec<(usize, crate::rows::Change)> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        read_to_end(
            log,
            "mesh-rows",
            topic,
            Seek::Beginning,
            deadline,
            Duration::from_millis(200),
            |r| {
                for (i, d) in defs.iter().enumerate() {
                    changes.push((i, crate::rows::change_of(d, r)));
                }
            },
        )
        .await
        .map_err(ServiceError::other)?;
        for (i, change) in changes {
            catalogue.apply_row(&defs[i].id, change);
        }
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
                        for (id, r) in catalogue.evaluate(now_millis()).await.map_err(ServiceError::other)? {
                            tracing::info!(product = %id, tier = %r.tier, reasons = ?r.reasons, "data product quality changed");
                        }
                    }
                }
            }
        }
    })
}
