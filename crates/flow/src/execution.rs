//! The execution service: stages trade orders for every completed
//! optimization, and keeps the order status read model.
//!
//! - The stager (consumer group `execution-service` on
//!   `esg-portfolio-events`) turns a completion's trade list into orders of
//!   whole units (rounded towards zero, so an order never exceeds the trade
//!   the optimization asked for), drops those below the minimum order size,
//!   and publishes one `trade_orders_staged` on `portfolio-events`. The
//!   event id and the order ids are derived from the completion, so staging
//!   a completion twice (a redelivery, a duplicate completion) publishes the
//!   same event, which downstream deduplicates.
//! - The projection `orders` (over `es.Portfolio`) keeps one document per
//!   order (view `orders`, key `PORTFOLIO/ORDER_ID`) with its status.

use std::collections::{HashSet, VecDeque};
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::json;
use ultracore_es::{topic_for, Aggregate, Database, Projection, Views};
use ultracore_esg::{EsgPortfolioEvent, OptimizationResult, Side};
use ultracore_events::portfolio::{
    self as portfolio_topic, PortfolioEvent as AnalyticsEvent, SkippedTrade, StagedOrder,
    TradeOrdersStaged,
};
use ultracore_log::{Envelope, EnvelopeBuilder, EventLog, Record};
use uuid::Uuid;

use crate::group::{run_group, BatchHandler};
use crate::portfolio::{Portfolio, PortfolioEvent};
use crate::{derived_id, Error, Result};

/// The stager's consumer group.
pub const EXECUTION_GROUP: &str = "execution-service";
/// The order status projection's name.
pub const ORDERS_PROJECTION: &str = "orders";
/// Completions remembered to skip duplicates without publishing again.
const REMEMBERED: usize = 100_000;

/// How orders are staged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutionOptions {
    /// Orders below this notional (portfolio currency) are not staged.
    pub min_order_notional: f64,
}

impl Default for ExecutionOptions {
    fn default() -> Self {
        ExecutionOptions {
            min_order_notional: 100.0,
        }
    }
}

/// The orders for one completed optimization.
pub fn stage_orders(
    result: &OptimizationResult,
    completion_event_id: Uuid,
    options: &ExecutionOptions,
) -> TradeOrdersStaged {
    let mut orders = Vec::new();
    let mut skipped = Vec::new();
    for (i, trade) in result.trades.iter().enumerate() {
        // Towards zero, forgiving float noise (99.9999999 units is 100).
        let units = if trade.units.is_finite() {
            (trade.units.abs() + 1e-6).floor()
        } else {
            0.0
        };
        if units < 1.0 {
            skipped.push(SkippedTrade {
                ticker: trade.ticker.clone(),
                reason: format!("{:.4} units is less than one whole unit", trade.units.abs()),
            });
            continue;
        }
        let notional = units * trade.price;
        if notional < options.min_order_notional {
            skipped.push(SkippedTrade {
                ticker: trade.ticker.clone(),
                reason: format!(
                    "notional {notional:.2} is below the minimum order size {:.2}",
                    options.min_order_notional
                ),
            });
            continue;
        }
        orders.push(StagedOrder {
            order_id: derived_id(completion_event_id, b"order", i as u64).to_string(),
            ticker: trade.ticker.clone(),
            isin: trade.isin.clone(),
            side: match trade.side {
                Side::Buy => "buy".into(),
                Side::Sell => "sell".into(),
            },
            units: units as u64,
            reference_price: trade.price,
            notional,
            status: "staged".into(),
        });
    }
    TradeOrdersStaged {
        request_id: result.request_id.to_string(),
        portfolio_id: result.portfolio_id.clone(),
        total_notional: orders.iter().map(|o| o.notional).sum(),
        orders,
        skipped,
    }
}

/// Stages orders for completed optimizations.
#[derive(Debug)]
pub struct Stager<L: EventLog> {
    log: L,
    options: ExecutionOptions,
    staged: HashSet<Uuid>,
    order: VecDeque<Uuid>,
    /// `trade_orders_staged` events published.
    pub published: u64,
}

impl<L: EventLog> Stager<L> {
    pub fn new(log: L, options: ExecutionOptions) -> Self {
        Stager {
            log,
            options,
            staged: HashSet::new(),
            order: VecDeque::new(),
            published: 0,
        }
    }

    /// Serves the stager's group alone until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let log = self.log.clone();
        crate::ensure_flow_topics(&log).await?;
        run_group(
            &log,
            "execution",
            EXECUTION_GROUP,
            &[ultracore_esg::TOPIC],
            self,
            shutdown,
        )
        .await
        .map(drop)
    }

    fn remember(&mut self, request_id: Uuid) -> bool {
        if !self.staged.insert(request_id) {
            return false;
        }
        self.order.push_back(request_id);
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.staged.remove(&old);
            }
        }
        true
    }
}

impl<L: EventLog> BatchHandler for Stager<L> {
    async fn handle(&mut self, records: &[Record]) -> Result<()> {
        let mut out = Vec::new();
        for record in records {
            let Ok(env) = Envelope::<EsgPortfolioEvent>::from_record(record) else {
                continue; // the optimization service dead-letters what it cannot read
            };
            let EsgPortfolioEvent::Completed(result) = &env.payload else {
                continue;
            };
            if !self.remember(result.request_id) {
                continue;
            }
            let staged = stage_orders(result, env.event_id, &self.options);
            tracing::info!(
                request_id = %result.request_id,
                orders = staged.orders.len(),
                skipped = staged.skipped.len(),
                "orders staged"
            );
            let mut event =
                EnvelopeBuilder::new(portfolio_topic::AGGREGATE_TYPE, result.portfolio_id.clone())
                    .correlation_id(
                        env.correlation_id
                            .clone()
                            .unwrap_or_else(|| result.request_id.to_string()),
                    )
                    .causation_id(env.event_id)
                    .build(AnalyticsEvent::TradeOrdersStaged(staged));
            event.event_id = derived_id(env.event_id, b"orders", 0);
            out.push(event.to_record());
        }
        if !out.is_empty() {
            self.published += out.len() as u64;
            self.log.append(portfolio_topic::TOPIC, out).await?;
        }
        Ok(())
    }
}

/// One order as the order status read model keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderView {
    pub order_id: String,
    pub request_id: String,
    pub portfolio_id: String,
    pub ticker: String,
    pub isin: String,
    pub side: String,
    pub units: u64,
    pub reference_price: f64,
    pub notional: f64,
    pub status: String,
    pub staged_at: chrono::DateTime<chrono::Utc>,
}

/// The order status projection.
#[derive(Debug, Clone, Default)]
pub struct OrdersProjection;

impl Projection for OrdersProjection {
    fn name(&self) -> &str {
        ORDERS_PROJECTION
    }

    fn topics(&self) -> Vec<String> {
        vec![topic_for(Portfolio::TYPE)]
    }

    fn apply(
        &mut self,
        env: &ultracore_log::RawEnvelope,
        views: &mut Views<'_>,
    ) -> ultracore_es::Result<()> {
        if env.event_type != "orders_staged" {
            return Ok(());
        }
        let PortfolioEvent::OrdersStaged(o) = env
            .clone()
            .typed::<PortfolioEvent>()
            .map_err(|e| ultracore_es::Error::InvalidArgument(e.to_string()))?
            .payload
        else {
            return Ok(());
        };
        for order in &o.staged.orders {
            let view = OrderView {
                order_id: order.order_id.clone(),
                request_id: o.staged.request_id.clone(),
                portfolio_id: o.staged.portfolio_id.clone(),
                ticker: order.ticker.clone(),
                isin: order.isin.clone(),
                side: order.side.clone(),
                units: order.units,
                reference_price: order.reference_price,
                notional: order.notional,
                status: order.status.clone(),
                staged_at: o.staged_at,
            };
            // One document per order, in the only order it is read in:
            // by portfolio, newest first (earlier versions also kept an
            // "orders" view by order id that nothing read; every stored
            // document costs the flow's throughput a write).
            views.put_as("by_time", &order_time_key(&view), &view)?;
        }
        let key = format!("{}/{}", o.staged.portfolio_id, o.staged.request_id);
        views.put(
            "skipped",
            &key,
            json!({"request_id": o.staged.request_id, "skipped": o.staged.skipped}),
        );
        Ok(())
    }
}

/// The key of an order in the `by_time` view: portfolio, newest first,
/// then the order id.
fn order_time_key(o: &OrderView) -> String {
    format!(
        "{}/{}/{}",
        o.portfolio_id,
        crate::newest_first(o.staged_at),
        o.order_id
    )
}

/// Writes the `by_time` view of orders stored before it existed, once: a
/// read model from an earlier version pages its orders like a new one.
/// Returns how many it wrote.
pub fn backfill_order_times(db: &Database) -> Result<usize> {
    if !db
        .documents_page(ORDERS_PROJECTION, "by_time", "", None, 1)?
        .is_empty()
        || db
            .documents_page(ORDERS_PROJECTION, "orders", "", None, 1)?
            .is_empty()
    {
        return Ok(0);
    }
    let mut batch = ultracore_es::Batch::default();
    for (_, doc) in db.documents(ORDERS_PROJECTION, "orders")? {
        let view: OrderView =
            serde_json::from_value(doc.clone()).map_err(|e| Error::ReadModel(e.to_string()))?;
        batch
            .documents
            .insert(("by_time".into(), order_time_key(&view)), Some(doc));
    }
    let n = batch.documents.len();
    db.with(|s| s.commit(ORDERS_PROJECTION, &batch))?;
    tracing::info!(orders = n, "indexed the stored orders by time");
    Ok(n)
}

/// Reads the order status read model.
#[derive(Debug, Clone)]
pub struct Orders {
    db: Database,
}

impl Orders {
    pub fn new(db: Database) -> Self {
        Orders { db }
    }

    /// A portfolio's orders, newest first (every one of them).
    pub fn of(&self, portfolio_id: &str) -> Result<Vec<OrderView>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.page(portfolio_id, cursor.as_deref(), 1000)?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// At most `limit` of a portfolio's orders, newest first, after
    /// `cursor` (the `next_cursor` of the page before). One range of the
    /// read model's key index: the other portfolios' orders are not read.
    pub fn page(
        &self,
        portfolio_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<crate::Page<OrderView>> {
        let prefix = format!("{portfolio_id}/");
        let after = cursor.map(|c| format!("{prefix}{c}"));
        let docs = self.db.documents_page(
            ORDERS_PROJECTION,
            "by_time",
            &prefix,
            after.as_deref(),
            limit,
        )?;
        let next_cursor = (docs.len() == limit)
            .then(|| docs.last().map(|(k, _)| k[prefix.len()..].to_owned()))
            .flatten();
        let items = docs
            .into_iter()
            .map(|(_, doc)| {
                serde_json::from_value::<OrderView>(doc)
                    .map_err(|e| Error::ReadModel(e.to_string()))
            })
            .collect::<Result<_>>()?;
        Ok(crate::Page { items, next_cursor })
    }
}
