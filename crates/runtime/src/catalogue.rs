//! The topic catalogue: every topic the platform uses, with its partitions,
//! events, producers and consumers — the table of the design document as
//! code, so a service that creates a topic creates it one way.
//!
//! Two families are patterns rather than rows: `es.<AggregateType>` (an
//! event-sourced aggregate's own events, created by the event store) and
//! `<topic>.dlq` (a topic's dead letters, one partition so they keep one
//! total order).

use ultracore_log::{EventLog, EventLogExt, TopicSpec, DLQ_SUFFIX};

/// One topic of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDef {
    pub name: &'static str,
    /// Partitions when the platform creates it (the unit of parallelism:
    /// one consumer group's instances share them).
    pub partitions: u32,
    /// The `event_type`s it carries.
    pub events: &'static [&'static str],
    pub producers: &'static str,
    pub consumers: &'static str,
}

impl TopicDef {
    /// The spec the platform creates it with.
    pub fn spec(&self) -> TopicSpec {
        TopicSpec::new(self.name, self.partitions)
    }
}

/// Every named topic of the platform.
pub const TOPICS: &[TopicDef] = &[
    TopicDef {
        name: "esg-portfolio-events",
        partitions: 6,
        events: &[
            "portfolio_optimization_requested",
            "portfolio_optimization_completed",
            "portfolio_optimization_failed",
        ],
        producers: "API, MCP tools, optimization service",
        consumers: "optimization, reporting, execution, notification",
    },
    TopicDef {
        name: "etf-data-events",
        partitions: 3,
        events: &["etf_data_collected", "etf_data_updated"],
        producers: "data import",
        consumers: "data mesh, caches",
    },
    TopicDef {
        name: "portfolio-events",
        partitions: 3,
        events: &[
            "portfolio_optimized",
            "risk_metrics_calculated",
            "trade_orders_staged",
        ],
        producers: "analytics commands, execution service",
        consumers: "reporting",
    },
    TopicDef {
        name: "query-events",
        partitions: 3,
        events: &["price_data_queried"],
        producers: "ETF data provider",
        consumers: "analytics",
    },
    TopicDef {
        name: "trading_decisions",
        partitions: 6,
        events: &["trading_decision"],
        producers: "decision service",
        consumers: "forensics, audit",
    },
    TopicDef {
        name: "model_updates",
        partitions: 3,
        events: &["model_update"],
        producers: "decision service (model reloads)",
        consumers: "audit, analytics",
    },
    TopicDef {
        name: "regime_changes",
        partitions: 3,
        events: &["regime_change"],
        producers: "decision service",
        consumers: "audit, analytics, decision service (regime history at start)",
    },
    TopicDef {
        name: "risk_decisions",
        partitions: 3,
        events: &["risk_decision"],
        producers: "decision service (pre-trade risk checks)",
        consumers: "audit, analytics",
    },
    TopicDef {
        name: "db.changes.users",
        partitions: 3,
        events: &["c", "u", "d"],
        producers: "outbox relay",
        consumers: "audit, analytics",
    },
    TopicDef {
        name: "db.changes.conversations",
        partitions: 3,
        events: &["c", "u", "d"],
        producers: "outbox relay",
        consumers: "audit, analytics",
    },
    TopicDef {
        name: "agent.executions",
        partitions: 3,
        events: &["agent_execution"],
        producers: "agents",
        consumers: "analytics, audit, governance",
    },
    TopicDef {
        name: "compliance.alerts",
        partitions: 3,
        events: &["compliance_alert"],
        producers: "governance",
        consumers: "audit, notification",
    },
    TopicDef {
        name: "external.crm.events",
        partitions: 3,
        events: &["customer_interaction_logged"],
        producers: "CRM webhook, MCP tool",
        consumers: "audit",
    },
    TopicDef {
        name: "external.market.data",
        partitions: 3,
        events: &["market_prices_published"],
        producers: "etf import --publish, market-data endpoint",
        consumers: "audit, market-data (the data mesh's financial product)",
    },
    TopicDef {
        name: "audit.checkpoints",
        partitions: 1,
        events: &["audit_checkpoint"],
        producers: "audit service",
        consumers: "auditors, witnesses",
    },
    TopicDef {
        name: "workflow.events",
        partitions: 6,
        events: &[
            "started",
            "step_started",
            "step_completed",
            "step_failed",
            "timer_set",
            "timer_fired",
            "signal_received",
            "completed",
            "failed",
        ],
        producers: "workflow engine",
        consumers: "workflow engine (recovery), console, audit",
    },
    TopicDef {
        name: "mesh.lineage",
        partitions: 1,
        events: &["lineage_edge_observed"],
        producers: "service runtime",
        consumers: "data mesh catalogue",
    },
    TopicDef {
        name: "mesh.openlineage",
        partitions: 3,
        events: &["START", "RUNNING", "COMPLETE", "ABORT", "FAIL"],
        producers:
            "mesh-openlineage (OpenLineage 2-0-2 RunEvents: product refreshes, streaming jobs)",
        consumers: "lineage tools (OpenLineage's Kafka transport), audit",
    },
    TopicDef {
        name: "ops.alerts",
        partitions: 1,
        events: &["ops_alert"],
        producers: "lag monitor",
        consumers: "console (the overview's lag status changes), operators' alerting",
    },
];

/// Prefix of event-sourced aggregates' topics.
pub const AGGREGATE_PREFIX: &str = "es.";

/// The catalogue's row for `name`.
pub fn topic(name: &str) -> Option<&'static TopicDef> {
    TOPICS.iter().find(|t| t.name == name)
}

/// Whether `name` is a topic the platform knows: a row of the catalogue,
/// an aggregate's topic or a dead-letter topic of either.
pub fn is_known(name: &str) -> bool {
    let base = name.strip_suffix(DLQ_SUFFIX).unwrap_or(name);
    topic(base).is_some()
        || base
            .strip_prefix(AGGREGATE_PREFIX)
            .is_some_and(|t| !t.is_empty())
}

/// The spec `name` is created with, or `None` for a name outside the
/// catalogue (aggregate topics are the event store's to create).
pub fn spec(name: &str) -> Option<TopicSpec> {
    if let Some(base) = name.strip_suffix(DLQ_SUFFIX) {
        return is_known(base).then(|| TopicSpec::new(name, 1));
    }
    topic(name).map(TopicDef::spec)
}

/// Creates the catalogue's topics in `names` unless they exist. A name
/// outside the catalogue is an error: a service must not invent topics.
/// Aggregate topics (`es.<Type>`) are left to the event store, which
/// creates them with its own partitioning before anything reads them.
pub async fn ensure<L: EventLog>(log: &L, names: &[&str]) -> Result<(), CatalogueError> {
    for name in names {
        if name
            .strip_prefix(AGGREGATE_PREFIX)
            .is_some_and(|t| !t.is_empty())
        {
            continue;
        }
        let spec = spec(name).ok_or_else(|| CatalogueError::Unknown((*name).to_owned()))?;
        log.ensure_topic(&spec).await?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("topic '{0}' is not in the topic catalogue (ultracore_runtime::catalogue::TOPICS); add it there first")]
    Unknown(String),
    #[error(transparent)]
    Log(#[from] ultracore_log::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_partitioned() {
        let mut names: Vec<_> = TOPICS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TOPICS.len());
        assert!(TOPICS.iter().all(|t| t.partitions >= 1));
    }

    #[test]
    fn patterns_are_known() {
        assert!(is_known("es.Portfolio"));
        assert!(is_known("es.Portfolio.dlq"));
        assert!(is_known("trading_decisions.dlq"));
        assert!(!is_known("es."));
        assert!(!is_known("made-up"));
        assert_eq!(spec("trading_decisions.dlq").map(|s| s.partitions), Some(1));
        assert_eq!(spec("esg-portfolio-events").map(|s| s.partitions), Some(6));
        assert!(spec("es.Portfolio").is_none());
    }

    #[test]
    fn lineage_has_its_row() {
        let row = topic(crate::lineage::TOPIC).expect("mesh.lineage is in the catalogue");
        assert_eq!(row.partitions, 1);
        assert_eq!(row.events, [crate::lineage::EDGE_OBSERVED]);
    }
}
