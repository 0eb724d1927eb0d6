//! The services downstream of an ESG optimization request, and a runner
//! that starts any set of them in one process.
//!
//! ```text
//! API / MCP / any Kafka client
//!   └─► esg-portfolio-events: portfolio_optimization_requested
//!         ├─► optimization ─► portfolio_optimization_completed | _failed
//!         ├─► reporting: Portfolio aggregate (es.Portfolio) ─► read model `reporting`
//!         ├─► execution: trade_orders_staged (portfolio-events) ─► read model `orders`
//!         └─► notification: stored notifications ─► live clients (SSE)
//! compliance.alerts (governance) ─► notification: stored alerts ─► admins (SSE)
//! etf import --publish / market-data endpoint
//!   └─► external.market.data: market_prices_published
//!         └─► market-data: the data mesh's financial product
//! ```
//!
//! Every service is a consumer group over the `EventLog` that commits only
//! after its effects are durable, and is idempotent per request, so a crash
//! anywhere re-processes at most a batch and downstream still sees one
//! result per request.
//!
//! # Layout
//!
//! - `portfolio`: the [`Portfolio`] aggregate: its optimizations, ESG
//!   preferences and exclusion list.
//! - `reporting`: the [`Recorder`] (facts → aggregate) and the
//!   [`ReportingProjection`]; [`Reports`] reads it.
//! - `execution`: the [`Stager`] and the [`OrdersProjection`]; [`Orders`] reads it.
//! - `notification`: the [`Notifier`]; [`Notifications`] reads them.
//! - `alerts`: compliance alerts as the notifier stores them; [`Alerts`] reads them.
//! - `market_data`: [`publish_prices`] and the market-data service
//!   ([`market_data_registration`], [`MarketDataService`]), which merges
//!   closing prices into the financial data product.
//! - `runner`: [`Flow`], the services of one process, and [`submit`] /
//!   [`await_answer`] for clients.
//! - [`setup`]: the data products and the sample request of the demo.

mod alerts;
mod execution;
mod group;
mod market_data;
mod notification;
mod portfolio;
mod reporting;
mod runner;
pub mod setup;

pub use alerts::{Alerts, ALERTS};
pub use execution::backfill_order_times;
pub use execution::{
    stage_orders, ExecutionOptions, OrderView, Orders, OrdersProjection, Stager, EXECUTION_GROUP,
    ORDERS_PROJECTION,
};
pub use market_data::{
    market_prices, prices_event_id, publish_prices, publish_prices_as,
    registration as market_data_registration, spec as market_data_spec, MarketDataService,
    MarketDataStats, PublishedPrices, MARKET_DATA_GROUP,
};
pub use notification::backfill_notification_times;
pub use notification::{
    notification_for, Notification, Notifications, Notifier, NOTIFICATIONS, NOTIFICATION_GROUP,
};
pub use portfolio::{
    Completed, EsgPreferenceSet, EsgPreferences, ExclusionListUpdated, ExclusionsUpdate, Failed,
    OrdersStaged, Portfolio, PortfolioCommand, PortfolioError, PortfolioEvent, RequestState,
    RequestStatus, Requested, MAX_EXCLUSIONS,
};
pub use reporting::{
    OptimizationView, Recorder, ReportingProjection, Reports, ORDERS_GROUP, ORDERS_WAIT,
    REPORTING_GROUP, REPORTING_PROJECTION,
};
pub use runner::{
    await_answer, flow_services, submit, submit_as, Beside, Flow, FlowOptions, FlowServices,
    Service,
};

use ultracore_log::EventLog;
use uuid::Uuid;

/// What the notification service reads: the answers to optimization
/// requests, and compliance alerts.
pub const NOTIFICATION_TOPICS: [&str; 2] =
    [ultracore_esg::TOPIC, ultracore_events::compliance::TOPIC];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Log(#[from] ultracore_log::Error),
    #[error(transparent)]
    Store(#[from] ultracore_es::Error),
    #[error("portfolio '{0}' kept changing under concurrent writers; the fact will be retried")]
    Contended(String),
    #[error("a read-model document does not match its type: {0}")]
    ReadModel(String),
    #[error("service {service} stopped: {reason}")]
    Service { service: String, reason: String },
    #[error("the service is stopping; the record is left for its next start")]
    Stopping,
    #[error(transparent)]
    Catalogue(#[from] ultracore_runtime::catalogue::CatalogueError),
    #[error("market prices #{index} ({ticker:?}) refused, nothing published: {invalid}")]
    InvalidPrices {
        /// Position in the list given.
        index: usize,
        ticker: String,
        invalid: ultracore_events::external::Invalid,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An event id derived from another one, a tag and an index (a UUIDv5,
/// see [`ultracore_log::derive_event_id`]): the same inputs always give the
/// same id, so an effect published twice carries one id, and different
/// inputs never share one, however many effects one event has.
pub fn derived_id(base: Uuid, tag: &[u8], index: u64) -> Uuid {
    ultracore_log::derive_event_id(base, tag, index)
}

/// A key part that sorts newest first: `i64::MAX` minus the time in
/// milliseconds, as 19 digits. Views keyed by it page from the newest.
pub fn newest_first(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:019}", i64::MAX - at.timestamp_millis().max(0))
}

/// One page of a list and where the next one starts (`None` after the
/// last).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Whether `cursor` has the shape of the cursors pages hand out
/// (`<19 digits>/<id>`), so a bad one is refused rather than misread.
pub fn is_cursor(cursor: &str) -> bool {
    cursor.split_once('/').is_some_and(|(time, id)| {
        time.len() == 19
            && time.bytes().all(|b| b.is_ascii_digit())
            && !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    })
}

/// Creates the flow's integration topics unless they exist.
pub async fn ensure_flow_topics<L: EventLog>(log: &L) -> Result<()> {
    ultracore_esg::ensure_topic(log).await?;
    group::ensure_topics(log, &[(ultracore_events::portfolio::TOPIC, 3)]).await
}
