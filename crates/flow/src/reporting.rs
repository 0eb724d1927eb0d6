//! The reporting service: records the flow's facts on the [`Portfolio`]
//! aggregate and keeps the reporting read model.
//!
//! - The recorder (consumer group `reporting-service` on
//!   `esg-portfolio-events` and `portfolio-events`) turns each request,
//!   completion, failure and staged-orders fact into a command on its
//!   portfolio. The aggregate event's id is derived from the fact's
//!   `event_id`, and the aggregate ignores facts it has (a second answer to
//!   one request), so redeliveries and duplicates change nothing.
//! - The projection `reporting` (over `es.Portfolio`) keeps, in SQLite:
//!   view `portfolios` (one document per portfolio: status, counts, latest
//!   request and weights; `esg_preferences` and `exclusions` once set) and
//!   view `optimizations` (one per request: status, timings, the full
//!   result or the failure).

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use ultracore_es::{topic_for, Aggregate, Database, EventStore, Expected, Projection, Views};
use ultracore_esg::EsgPortfolioEvent;
use ultracore_events::portfolio::{self as portfolio_topic, PortfolioEvent as AnalyticsEvent};
use ultracore_log::{EnvelopeBuilder, EventLog, RawEnvelope, Record};
use uuid::Uuid;

use crate::group::{run_group, BatchHandler};
use crate::portfolio::{
    Completed, Failed, OrdersStaged, Portfolio, PortfolioCommand, PortfolioEvent, Requested,
};
use crate::{derived_id, Error, Result};

/// The recorder's consumer group.
pub const REPORTING_GROUP: &str = "reporting-service";
/// The recorder's consumer group on `portfolio-events` (staged orders).
pub const ORDERS_GROUP: &str = "reporting-service.orders";
/// How long an orders fact waits for its request's answer before it is
/// recorded anyway.
pub const ORDERS_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// The reporting projection's name (its documents' namespace).
pub const REPORTING_PROJECTION: &str = "reporting";

/// Attempts of one command when concurrent writers keep winning.
const ATTEMPTS: usize = 8;

/// Records the flow's facts on the Portfolio aggregate.
#[derive(Debug)]
pub struct Recorder<L: EventLog> {
    store: EventStore<L>,
    /// Cancelled when the service stops: an orders fact stops waiting for
    /// its request's answer, and its batch is left for the next start.
    stop: CancellationToken,
    /// Facts recorded as new aggregate events.
    pub recorded: u64,
    /// Facts the aggregate already had.
    pub unchanged: u64,
}

impl<L: EventLog> Recorder<L> {
    pub fn new(store: EventStore<L>) -> Self {
        Recorder {
            store,
            stop: CancellationToken::new(),
            recorded: 0,
            unchanged: 0,
        }
    }

    /// Stops waiting (see [`ORDERS_WAIT`]) when `token` is cancelled.
    pub fn stop_on(mut self, token: CancellationToken) -> Self {
        self.stop = token;
        self
    }

    /// Serves the recorder until `shutdown` resolves: group
    /// `reporting-service` on `esg-portfolio-events` and group
    /// `reporting-service.orders` on `portfolio-events`. An orders fact waits
    /// (up to [`ORDERS_WAIT`]) until its request's answer is recorded, so a
    /// portfolio's history reads requested → completed → orders staged even
    /// though the two topics are read independently.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let log = self.store.log().clone();
        crate::ensure_flow_topics(&log).await?;
        self.store.ensure_topic(Portfolio::TYPE).await?;
        let stop = CancellationToken::new();
        let orders = Recorder::new(self.store.clone()).stop_on(stop.clone());
        let orders_log = log.clone();
        let stopped = stop.clone().cancelled_owned();
        let orders_task = tokio::spawn(async move {
            run_group(
                &orders_log,
                "reporting.orders",
                ORDERS_GROUP,
                &[portfolio_topic::TOPIC],
                orders,
                stopped,
            )
            .await
        });
        let main = run_group(
            &log,
            "reporting",
            REPORTING_GROUP,
            &[ultracore_esg::TOPIC],
            self,
            async move {
                shutdown.await;
                stop.cancel();
            },
        )
        .await;
        let orders = orders_task.await.map_err(|e| Error::Service {
            service: "reporting (orders)".into(),
            reason: e.to_string(),
        })?;
        main.and(orders).map(drop)
    }

    /// Records one fact (an envelope from either topic). Returns whether the
    /// aggregate changed.
    pub async fn record(&mut self, env: &RawEnvelope) -> Result<bool> {
        let Some((portfolio_id, _)) = command_for(env) else {
            return Ok(false);
        };
        let (recorded, unchanged) = record_group(
            &self.store,
            &portfolio_id,
            std::slice::from_ref(env),
            &self.stop,
        )
        .await?;
        self.recorded += recorded;
        self.unchanged += unchanged;
        Ok(recorded > 0)
    }
}

/// Records the facts of one portfolio (in order) with one durable append.
/// Returns (facts recorded, facts the aggregate already had).
async fn record_group<L: EventLog>(
    store: &EventStore<L>,
    portfolio_id: &str,
    facts: &[RawEnvelope],
    stop: &CancellationToken,
) -> Result<(u64, u64)> {
    let waiting_since = std::time::Instant::now();
    let mut attempt = 0;
    'attempts: while attempt < ATTEMPTS {
        attempt += 1;
        let loaded = store.load::<Portfolio>(portfolio_id).await?;
        let mut state = loaded.state.clone();
        let mut envelopes = Vec::new();
        let (mut recorded, mut unchanged) = (0, 0);
        for env in facts {
            let Some((_, command)) = command_for(env) else {
                continue;
            };
            if let PortfolioCommand::RecordOrders(o) = &command {
                let answered = state
                    .requests
                    .get(&o.staged.request_id)
                    .is_some_and(|r| r.status != crate::RequestStatus::Pending);
                if !answered && waiting_since.elapsed() < ORDERS_WAIT {
                    attempt -= 1;
                    tokio::select! {
                        _ = stop.cancelled() => return Err(Error::Stopping),
                        _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                    }
                    continue 'attempts;
                }
                if !answered {
                    tracing::warn!(request_id = %o.staged.request_id, "orders recorded before their request's answer");
                }
            }
            let events = match state.handle(command) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(event_id = %env.event_id, error = %e, "fact not recorded");
                    continue;
                }
            };
            if events.is_empty() {
                unchanged += 1;
                continue;
            }
            recorded += 1;
            let builder = EnvelopeBuilder::new(Portfolio::TYPE, portfolio_id.to_owned())
                .correlation_id(
                    env.correlation_id
                        .clone()
                        .unwrap_or_else(|| env.event_id.to_string()),
                )
                .causation_id(env.event_id);
            for (i, e) in events.into_iter().enumerate() {
                state.apply(&e);
                let mut built = builder.build(e);
                built.event_id = derived_id(env.event_id, b"portfolio", i as u64);
                envelopes.push(built);
            }
        }
        if envelopes.is_empty() {
            return Ok((0, unchanged));
        }
        match store
            .append::<Portfolio>(portfolio_id, Expected::Exact(loaded.version), envelopes)
            .await
        {
            Ok(saved) if saved.stored > 0 => return Ok((recorded, unchanged)),
            Ok(_) => return Ok((0, unchanged + recorded)),
            Err(ultracore_es::Error::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Contended(portfolio_id.to_owned()))
}

impl<L: EventLog> BatchHandler for Recorder<L> {
    /// The batch's facts grouped by portfolio (in log order within each),
    /// the portfolios recorded concurrently, so their appends share the
    /// log's group commits.
    async fn handle(&mut self, records: &[Record]) -> Result<()> {
        let mut groups: Vec<(String, Vec<RawEnvelope>)> = Vec::new();
        for record in records {
            let env = match RawEnvelope::from_bytes(&record.value) {
                Ok(env) => env,
                // The optimization service dead-letters what it cannot read.
                Err(e) => {
                    tracing::debug!(topic = %record.topic, offset = record.offset, error = %e, "record skipped");
                    continue;
                }
            };
            let Some((pid, _)) = command_for(&env) else {
                continue;
            };
            match groups.iter_mut().find(|(p, _)| *p == pid) {
                Some((_, facts)) => facts.push(env),
                None => groups.push((pid, vec![env])),
            }
        }
        let (store, stop) = (&self.store, &self.stop);
        let outcomes = futures::future::try_join_all(
            groups
                .iter()
                .map(|(pid, facts)| record_group(store, pid, facts, stop)),
        )
        .await?;
        for (recorded, unchanged) in outcomes {
            self.recorded += recorded;
            self.unchanged += unchanged;
        }
        Ok(())
    }
}

/// The command a fact asks for, with its portfolio, if it concerns one.
fn command_for(env: &RawEnvelope) -> Option<(String, PortfolioCommand)> {
    let at = env.timestamp;
    match env.event_type.as_str() {
        "portfolio_optimization_requested"
        | "portfolio_optimization_completed"
        | "portfolio_optimization_failed" => {
            let event = env.clone().typed::<EsgPortfolioEvent>().ok()?.payload;
            Some(match event {
                EsgPortfolioEvent::Requested(r) => (
                    r.portfolio_id.clone(),
                    PortfolioCommand::RecordRequest(Requested {
                        request_id: r.request_id.to_string(),
                        portfolio_id: r.portfolio_id.clone(),
                        requested_at: at,
                        objective: serde_json::to_value(&r.objective).unwrap_or(Value::Null),
                    }),
                ),
                EsgPortfolioEvent::Completed(c) => (
                    c.portfolio_id.clone(),
                    PortfolioCommand::RecordCompletion(Box::new(Completed {
                        completed_at: at,
                        result: *c,
                    })),
                ),
                EsgPortfolioEvent::Failed(f) => (
                    f.portfolio_id.clone(),
                    PortfolioCommand::RecordFailure(Failed {
                        request_id: f.request_id.to_string(),
                        reason: f.reason,
                        field: f.field,
                        failed_at: at,
                    }),
                ),
            })
        }
        "trade_orders_staged" => match env.clone().typed::<AnalyticsEvent>().ok()?.payload {
            AnalyticsEvent::TradeOrdersStaged(staged) => Some((
                staged.portfolio_id.clone(),
                PortfolioCommand::RecordOrders(Box::new(OrdersStaged {
                    staged_at: at,
                    staged,
                })),
            )),
            _ => None,
        },
        _ => None,
    }
}

/// One optimization as the reporting read model keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizationView {
    pub request_id: String,
    pub portfolio_id: String,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    pub requested_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    /// Milliseconds from request to answer, when both are known.
    pub latency_ms: Option<i64>,
    pub objective: Option<Value>,
    pub result: Option<Value>,
    pub failure: Option<Value>,
    pub orders_staged: usize,
}

/// The reporting projection.
#[derive(Debug, Clone, Default)]
pub struct ReportingProjection;

impl ReportingProjection {
    fn optimization(
        views: &mut Views<'_>,
        request_id: &str,
        portfolio_id: &str,
    ) -> Result<OptimizationView, ultracore_es::Error> {
        Ok(views
            .get_as::<OptimizationView>("optimizations", request_id)?
            .unwrap_or_else(|| OptimizationView {
                request_id: request_id.to_owned(),
                portfolio_id: portfolio_id.to_owned(),
                status: "pending".into(),
                requested_at: None,
                answered_at: None,
                latency_ms: None,
                objective: None,
                result: None,
                failure: None,
                orders_staged: 0,
            }))
    }
}

impl Projection for ReportingProjection {
    fn name(&self) -> &str {
        REPORTING_PROJECTION
    }

    fn topics(&self) -> Vec<String> {
        vec![topic_for(Portfolio::TYPE)]
    }

    fn apply(&mut self, env: &RawEnvelope, views: &mut Views<'_>) -> ultracore_es::Result<()> {
        let event = env
            .clone()
            .typed::<PortfolioEvent>()
            .map_err(|e| ultracore_es::Error::InvalidArgument(e.to_string()))?
            .payload;
        let pid = env.aggregate_id.as_str();
        let mut summary = views.get("portfolios", pid)?.unwrap_or_else(|| {
            json!({"portfolio_id": pid, "status": "new", "optimizations": 0, "completed": 0,
                   "failed": 0, "orders_staged": 0, "latest_request_id": null, "weights": {},
                   "figures": null})
        });
        // A request id belongs to one portfolio: the one the optimization
        // service answered (it dead-letters a reuse of the id by another).
        // Until an answer, the first request seen holds the view; an answer
        // for another portfolio takes a pending view over (that request was
        // the one dead-lettered). Any other event of another portfolio under
        // the id changes neither that view nor its own summary.
        // ESG preferences and exclusions belong to no request.
        let request = match &event {
            PortfolioEvent::OptimizationRequested(r) => Some((r.request_id.clone(), false)),
            PortfolioEvent::OptimizationCompleted(c) => {
                Some((c.result.request_id.to_string(), true))
            }
            PortfolioEvent::OptimizationFailed(f) => Some((f.request_id.clone(), true)),
            PortfolioEvent::OrdersStaged(o) => Some((o.staged.request_id.clone(), false)),
            PortfolioEvent::EsgPreferenceSet(_) | PortfolioEvent::ExclusionListUpdated(_) => None,
        };
        if let Some((request_id, is_answer)) = &request {
            if let Some(held) = views
                .get_as::<OptimizationView>("optimizations", request_id)?
                .filter(|v| v.portfolio_id != pid)
            {
                if *is_answer && held.status == "pending" {
                    views.delete("optimizations", request_id);
                } else {
                    tracing::warn!(
                        request_id,
                        portfolio_id = pid,
                        owner = held.portfolio_id,
                        "ignoring an event of another portfolio under a request id already in use"
                    );
                    return Ok(());
                }
            }
        }
        let bump = |summary: &mut Value, field: &str| {
            summary[field] = json!(summary[field].as_u64().unwrap_or(0) + 1);
        };
        match &event {
            PortfolioEvent::OptimizationRequested(r) => {
                let mut view = Self::optimization(views, &r.request_id, pid)?;
                view.requested_at = Some(r.requested_at);
                view.objective = Some(r.objective.clone());
                view.latency_ms = latency(view.requested_at, view.answered_at);
                views.put_as("optimizations", &r.request_id, &view)?;
                bump(&mut summary, "optimizations");
                summary["latest_request_id"] = json!(r.request_id);
                if view.status == "pending" {
                    summary["status"] = json!("optimization_pending");
                }
            }
            PortfolioEvent::OptimizationCompleted(c) => {
                let id = c.result.request_id.to_string();
                let mut view = Self::optimization(views, &id, pid)?;
                view.status = "completed".into();
                view.answered_at = Some(c.completed_at);
                view.latency_ms = latency(view.requested_at, view.answered_at);
                view.result = Some(serde_json::to_value(&c.result).unwrap_or(Value::Null));
                if view.objective.is_none() {
                    view.objective = serde_json::to_value(c.result.objective).ok();
                }
                views.put_as("optimizations", &id, &view)?;
                bump(&mut summary, "completed");
                summary["status"] = json!("optimized");
                summary["weights"] = json!(c.result.weights);
                summary["figures"] = json!({"before": c.result.before, "after": c.result.after});
                summary["weights_from_request_id"] = json!(id);
            }
            PortfolioEvent::OptimizationFailed(f) => {
                let mut view = Self::optimization(views, &f.request_id, pid)?;
                view.status = "failed".into();
                view.answered_at = Some(f.failed_at);
                view.latency_ms = latency(view.requested_at, view.answered_at);
                view.failure = Some(json!({"reason": f.reason, "field": f.field}));
                views.put_as("optimizations", &f.request_id, &view)?;
                bump(&mut summary, "failed");
                summary["status"] = json!("optimization_failed");
            }
            PortfolioEvent::OrdersStaged(o) => {
                let mut view = Self::optimization(views, &o.staged.request_id, pid)?;
                view.orders_staged = o.staged.orders.len();
                views.put_as("optimizations", &o.staged.request_id, &view)?;
                bump(&mut summary, "orders_staged");
                summary["status"] = json!("orders_staged");
            }
            PortfolioEvent::EsgPreferenceSet(p) => {
                summary["esg_preferences"] = json!({
                    "criteria": p.preferences, "set_by": p.set_by, "set_at": p.set_at,
                });
            }
            PortfolioEvent::ExclusionListUpdated(u) => {
                let mut list: std::collections::BTreeSet<String> =
                    serde_json::from_value(summary["exclusions"].clone()).unwrap_or_default();
                list.extend(u.added.iter().cloned());
                for id in &u.removed {
                    list.remove(id);
                }
                summary["exclusions"] = json!(list);
            }
        }
        summary["updated_at"] = json!(env.timestamp);
        summary["version"] = json!(env.version);
        views.put("portfolios", pid, summary);
        Ok(())
    }
}

fn latency(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<i64> {
    Some((to? - from?).num_milliseconds())
}

/// Reads the reporting read model.
#[derive(Debug, Clone)]
pub struct Reports {
    db: Database,
}

impl Reports {
    pub fn new(db: Database) -> Self {
        Reports { db }
    }

    /// One optimization by request id.
    pub fn optimization(&self, request_id: Uuid) -> Result<Option<OptimizationView>> {
        let Some(doc) = self.db.document(
            REPORTING_PROJECTION,
            "optimizations",
            &request_id.to_string(),
        )?
        else {
            return Ok(None);
        };
        Ok(Some(
            serde_json::from_value(doc).map_err(|e| Error::ReadModel(e.to_string()))?,
        ))
    }

    /// One portfolio's summary.
    pub fn portfolio(&self, portfolio_id: &str) -> Result<Option<Value>> {
        Ok(self
            .db
            .document(REPORTING_PROJECTION, "portfolios", portfolio_id)?)
    }

    /// The latest `limit` optimizations of every portfolio, newest request
    /// first.
    pub fn recent(&self, limit: usize) -> Result<Vec<OptimizationView>> {
        let mut out: Vec<OptimizationView> = self
            .db
            .documents(REPORTING_PROJECTION, "optimizations")?
            .into_iter()
            .filter_map(|(_, doc)| serde_json::from_value::<OptimizationView>(doc).ok())
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse(v.requested_at));
        out.truncate(limit);
        Ok(out)
    }

    /// A portfolio's optimizations, newest request first.
    pub fn optimizations_of(&self, portfolio_id: &str) -> Result<Vec<OptimizationView>> {
        let mut out: Vec<OptimizationView> = self
            .db
            .documents(REPORTING_PROJECTION, "optimizations")?
            .into_iter()
            .filter_map(|(_, doc)| serde_json::from_value::<OptimizationView>(doc).ok())
            .filter(|v| v.portfolio_id == portfolio_id)
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse(v.requested_at));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use ultracore_es::{ProjectionRunner, StoreOptions};
    use ultracore_esg::screening::ScreeningCriteria;
    use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

    use super::*;
    use crate::portfolio::{EsgPreferenceSet, ExclusionsUpdate};

    #[tokio::test]
    async fn preferences_and_exclusions_reach_the_portfolio_summary(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
        let db = Database::open(dir.path(), None)?;
        let store = EventStore::new(log.clone(), db.clone(), StoreOptions::default())?;
        store.ensure_topic(Portfolio::TYPE).await?;
        let at: DateTime<Utc> = "2026-03-02T10:00:00Z".parse()?;
        let criteria = ScreeningCriteria {
            min_esg_score: Some(60.0),
            exclude_sectors: vec!["Energy".into()],
            ..Default::default()
        };
        let set = PortfolioCommand::SetEsgPreferences(Box::new(EsgPreferenceSet {
            preferences: criteria.clone(),
            set_by: Some("pm-ada".into()),
            set_at: at,
        }));
        store.execute::<Portfolio>("pf-esg", set.clone()).await?;
        // The same preferences again store nothing.
        let saved = store.execute::<Portfolio>("pf-esg", set).await?;
        assert_eq!((saved.version, saved.stored), (1, 0));
        for (add, remove) in [(vec!["XOM", "CVX"], vec![]), (vec![], vec!["CVX"])] {
            store
                .execute::<Portfolio>(
                    "pf-esg",
                    PortfolioCommand::UpdateExclusions(ExclusionsUpdate {
                        add: add.into_iter().map(str::to_owned).collect(),
                        remove: remove.into_iter().map(str::to_owned).collect(),
                        reason: None,
                        updated_at: at,
                    }),
                )
                .await?;
        }
        let loaded = store.load::<Portfolio>("pf-esg").await?;
        assert_eq!(loaded.version, 3);
        assert_eq!(loaded.state.exclusions, ["XOM".to_owned()].into());
        assert_eq!(
            loaded.state.esg_preferences.map(|p| p.criteria),
            Some(criteria.clone())
        );

        let mut runner = ProjectionRunner::new(log, db.clone(), ReportingProjection)?;
        runner.catch_up().await?;
        let summary = Reports::new(db).portfolio("pf-esg")?.ok_or("no summary")?;
        assert_eq!(summary["status"], "new");
        assert_eq!(summary["exclusions"], json!(["XOM"]));
        assert_eq!(
            summary["esg_preferences"],
            json!({"criteria": criteria, "set_by": "pm-ada", "set_at": "2026-03-02T10:00:00Z"})
        );
        assert_eq!(summary["version"], 3);
        Ok(())
    }
}
