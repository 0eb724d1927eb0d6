//! A product's lineage, from what the running system recorded: the
//! services that write its topics (and what they read: the upstream
//! topics), the consumer groups that read them (downstream), and the
//! events its last refresh came from. Nobody declares any of it.

use std::collections::BTreeSet;

use serde::Serialize;
use ultracore_log::DLQ_SUFFIX;
use ultracore_runtime::lineage::{Edge, Lineage, Role};

use crate::product::{Cause, DataProduct, ProductDef};

/// A service writing one of the product's topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Producer {
    pub service: String,
    pub topic: String,
    /// Records it appended (as of when its edge was seen here).
    pub records: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// What the service reads.
    pub reads: Vec<String>,
}

/// A consumer group reading one of the product's topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Downstream {
    pub group: String,
    pub service: String,
    pub topic: String,
    pub records: u64,
    pub last_seen_ms: i64,
}

/// The last refresh and the events that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRefresh {
    pub at_ms: i64,
    pub causes: Vec<Cause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductLineage {
    pub product_id: String,
    pub version: u64,
    /// The product's change feeds.
    pub topics: Vec<String>,
    pub producers: Vec<Producer>,
    /// Topics the producers read: where the product's data comes from.
    pub upstream_topics: Vec<String>,
    /// Consumer groups reading the product's topics.
    pub downstream: Vec<Downstream>,
    pub downstream_groups: Vec<String>,
    pub last_refresh: Option<LastRefresh>,
}

/// The lineage of `def` as `lineage` saw the system run.
pub fn of(def: &ProductDef, state: &DataProduct, lineage: &Lineage) -> ProductLineage {
    let topics: Vec<String> = def.topics().map(str::to_owned).collect();
    let mut producers = Vec::new();
    let mut upstream = BTreeSet::new();
    let mut downstream = Vec::new();
    for topic in &topics {
        for e in lineage.producers_of(topic) {
            let reads: Vec<String> = reads_of(lineage, &e.service);
            upstream.extend(reads.iter().cloned());
            producers.push(Producer {
                service: e.service.clone(),
                topic: e.topic.clone(),
                records: e.records,
                first_seen_ms: e.first_seen_ms,
                last_seen_ms: e.last_seen_ms,
                reads,
            });
        }
        for e in lineage.consumers_of(topic) {
            if let Some(group) = e.group.clone() {
                downstream.push(Downstream {
                    group,
                    service: e.service,
                    topic: e.topic,
                    records: e.records,
                    last_seen_ms: e.last_seen_ms,
                });
            }
        }
    }
    let downstream_groups = downstream
        .iter()
        .map(|d| d.group.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ProductLineage {
        product_id: def.id.clone(),
        version: state.version,
        topics,
        producers,
        upstream_topics: upstream.into_iter().collect(),
        downstream,
        downstream_groups,
        last_refresh: state.last_refresh_ms.map(|at_ms| LastRefresh {
            at_ms,
            causes: state.last_causes.clone(),
        }),
    }
}

/// The topics a service consumes (dead letters and the lineage topic
/// itself left out: they are the platform's plumbing, not data).
fn reads_of(lineage: &Lineage, service: &str) -> Vec<String> {
    lineage
        .upstream_of(service)
        .into_iter()
        .filter(|e: &Edge| e.role == Role::Consumes)
        .map(|e| e.topic)
        .filter(|t| !t.ends_with(DLQ_SUFFIX) && t != ultracore_runtime::lineage::TOPIC)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Consumer group → the products it reads: what co-consumption counts.
pub fn groups_reading<'a>(
    defs: impl IntoIterator<Item = &'a ProductDef>,
    lineage: &Lineage,
) -> Vec<(String, String)> {
    let mut out = BTreeSet::new();
    for def in defs {
        for topic in def.topics() {
            for e in lineage.consumers_of(topic) {
                if let Some(g) = e.group {
                    out.insert((g, def.id.clone()));
                }
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_consumers_and_upstream_come_from_the_recorded_edges() {
        let def = crate::spec::shipped()
            .into_iter()
            .find(|p| p.id == "optimizations")
            .unwrap();
        let l = Lineage::new();
        l.record_produce("api", "esg-portfolio-events", 3);
        l.record_consume("optimization", "esg-portfolio-events", "optimization", 3);
        l.record_consume("optimization", "external.market.data", "optimization", 1);
        l.record_produce("optimization", "esg-portfolio-events", 3);
        l.record_consume("reporting", "esg-portfolio-events", "reporting", 6);
        l.record_produce("optimization", "esg-portfolio-events.dlq", 1);
        let state = DataProduct::default();
        let view = of(&def, &state, &l);
        let services: Vec<_> = view.producers.iter().map(|p| p.service.as_str()).collect();
        assert_eq!(services, ["api", "optimization"]);
        assert_eq!(
            view.upstream_topics,
            ["esg-portfolio-events", "external.market.data"]
        );
        assert_eq!(view.downstream_groups, ["optimization", "reporting"]);
        let pairs = groups_reading([&def], &l);
        assert_eq!(pairs.len(), 2);
    }
}
