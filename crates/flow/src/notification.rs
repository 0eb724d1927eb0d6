//! The notification service (consumer group `notification-service` on
//! `esg-portfolio-events`): one notification per completed or failed
//! request, stored in the database (namespace `notifications`, view `all`,
//! keyed by request id, so a duplicate answer adds nothing) and then pushed
//! to live clients (the API's server-sent events) through a broadcast
//! channel. Stored before pushed, and committed on the log after stored.
//! The same group reads `compliance.alerts` and keeps the alerts for
//! admins and auditors (see [`crate::alerts`]), pushed on their own channel.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use ultracore_es::{Batch, Database};
use ultracore_esg::EsgPortfolioEvent;
use ultracore_log::{Envelope, EventLog, Record};

use crate::group::{run_group, BatchHandler};
use crate::{Error, Result};

pub const NOTIFICATION_GROUP: &str = "notification-service";
/// The notifications' namespace in the database.
pub const NOTIFICATIONS: &str = "notifications";

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The request it is about (also its key).
    pub request_id: String,
    pub portfolio_id: String,
    /// `optimization_completed` or `optimization_failed`.
    pub kind: String,
    /// What happened, in one sentence.
    pub message: String,
    /// When the answer was published.
    pub created_at: DateTime<Utc>,
    /// The answer's event id.
    pub event_id: String,
}

/// Records and pushes notifications.
#[derive(Debug)]
pub struct Notifier<L: EventLog> {
    log: L,
    db: Database,
    live: broadcast::Sender<Notification>,
    live_alerts: Option<broadcast::Sender<ultracore_events::compliance::ComplianceAlert>>,
    /// Notifications stored.
    pub stored: u64,
    /// Compliance alerts stored.
    pub alerts_stored: u64,
}

impl<L: EventLog> Notifier<L> {
    /// `live` receives each notification once it is stored.
    pub fn new(log: L, db: Database, live: broadcast::Sender<Notification>) -> Self {
        Notifier {
            log,
            db,
            live,
            live_alerts: None,
            stored: 0,
            alerts_stored: 0,
        }
    }

    /// `live` receives each compliance alert once it is stored.
    pub fn with_alerts(
        mut self,
        live: broadcast::Sender<ultracore_events::compliance::ComplianceAlert>,
    ) -> Self {
        self.live_alerts = Some(live);
        self
    }

    /// Serves the notifier's group alone until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let log = self.log.clone();
        crate::ensure_flow_topics(&log).await?;
        run_group(
            &log,
            "notification",
            NOTIFICATION_GROUP,
            &crate::NOTIFICATION_TOPICS,
            self,
            shutdown,
        )
        .await
        .map(drop)
    }
}

/// The notification for an answer, if the event is one.
pub fn notification_for(env: &Envelope<EsgPortfolioEvent>) -> Option<Notification> {
    let (request_id, portfolio_id, kind, message) = match &env.payload {
        EsgPortfolioEvent::Requested(_) => return None,
        EsgPortfolioEvent::Completed(c) => (
            c.request_id,
            c.portfolio_id.clone(),
            "optimization_completed",
            format!(
                "Portfolio {} optimized: Sharpe {:.2} → {:.2}, ESG score {:.1} → {:.1}, carbon intensity {:.1} → {:.1}, {} trade(s){}.",
                c.portfolio_id,
                c.before.sharpe,
                c.after.sharpe,
                c.before.esg_score,
                c.after.esg_score,
                c.before.carbon_intensity,
                c.after.carbon_intensity,
                c.trades.len(),
                if c.esg_data_synthetic { " (ESG data synthetic)" } else { "" }
            ),
        ),
        EsgPortfolioEvent::Failed(f) => (
            f.request_id,
            f.portfolio_id.clone(),
            "optimization_failed",
            format!(
                "Optimization of portfolio {} failed: {}{}",
                f.portfolio_id,
                f.field.as_ref().map(|x| format!("{x}: ")).unwrap_or_default(),
                f.reason
            ),
        ),
    };
    Some(Notification {
        request_id: request_id.to_string(),
        portfolio_id,
        kind: kind.into(),
        message,
        created_at: env.timestamp,
        event_id: env.event_id.to_string(),
    })
}

impl<L: EventLog> BatchHandler for Notifier<L> {
    async fn handle(&mut self, records: &[Record]) -> Result<()> {
        let mut batch = Batch::default();
        let mut fresh = Vec::new();
        let mut alerts = Batch::default();
        let mut fresh_alerts = Vec::new();
        for record in records {
            if record.topic == ultracore_events::compliance::TOPIC {
                if let Some(a) = crate::alerts::stage(&self.db, &mut alerts, record)? {
                    fresh_alerts.push(a);
                }
                continue;
            }
            let Ok(env) = Envelope::<EsgPortfolioEvent>::from_record(record) else {
                continue;
            };
            let Some(n) = notification_for(&env) else {
                continue;
            };
            let key = ("all".to_owned(), n.request_id.clone());
            if batch.documents.contains_key(&key)
                || self
                    .db
                    .document(NOTIFICATIONS, "all", &n.request_id)?
                    .is_some()
            {
                continue; // a second answer to one request
            }
            let doc = serde_json::to_value(&n).map_err(|e| Error::ReadModel(e.to_string()))?;
            for (view, key) in time_keys(&n) {
                batch
                    .documents
                    .insert((view.into(), key), Some(doc.clone()));
            }
            batch.documents.insert(key, Some(doc));
            fresh.push(n);
        }
        if !fresh_alerts.is_empty() {
            self.db.with(|s| s.commit(crate::alerts::ALERTS, &alerts))?;
            self.alerts_stored += fresh_alerts.len() as u64;
            if let Some(live) = &self.live_alerts {
                for a in fresh_alerts {
                    let _ = live.send(a);
                }
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        self.db.with(|s| s.commit(NOTIFICATIONS, &batch))?;
        self.stored += fresh.len() as u64;
        for n in fresh {
            // No live client is not an error.
            let _ = self.live.send(n);
        }
        Ok(())
    }
}

/// A notification's keys in the views that list newest first: `by_time`
/// (`<newest first>/<request id>`) and `by_portfolio` (the portfolio, then
/// the same).
fn time_keys(n: &Notification) -> [(&'static str, String); 2] {
    let cursor = format!("{}/{}", crate::newest_first(n.created_at), n.request_id);
    [
        ("by_portfolio", format!("{}/{cursor}", n.portfolio_id)),
        ("by_time", cursor),
    ]
}

/// Writes the time-ordered views of notifications stored before they
/// existed, once. Returns how many notifications it indexed.
pub fn backfill_notification_times(db: &Database) -> Result<usize> {
    if !db
        .documents_page(NOTIFICATIONS, "by_time", "", None, 1)?
        .is_empty()
        || db
            .documents_page(NOTIFICATIONS, "all", "", None, 1)?
            .is_empty()
    {
        return Ok(0);
    }
    let mut batch = Batch::default();
    let mut n = 0;
    for (_, doc) in db.documents(NOTIFICATIONS, "all")? {
        let note: Notification =
            serde_json::from_value(doc.clone()).map_err(|e| Error::ReadModel(e.to_string()))?;
        for (view, key) in time_keys(&note) {
            batch
                .documents
                .insert((view.into(), key), Some(doc.clone()));
        }
        n += 1;
    }
    db.with(|s| s.commit(NOTIFICATIONS, &batch))?;
    tracing::info!(
        notifications = n,
        "indexed the stored notifications by time"
    );
    Ok(n)
}

/// Reads stored notifications.
#[derive(Debug, Clone)]
pub struct Notifications {
    db: Database,
}

impl Notifications {
    pub fn new(db: Database) -> Self {
        Notifications { db }
    }

    /// The newest `limit` notifications, newest first (optionally of one portfolio).
    pub fn latest(&self, portfolio_id: Option<&str>, limit: usize) -> Result<Vec<Notification>> {
        let portfolios = portfolio_id.map(|p| vec![p.to_owned()]);
        Ok(self.page(portfolios.as_deref(), None, limit)?.items)
    }

    /// At most `limit` notifications, newest first, after `cursor` (the
    /// `next_cursor` of the page before): of every portfolio (`None`) or
    /// of these. Each portfolio is one range of the key index; nothing of
    /// other portfolios is read.
    pub fn page(
        &self,
        portfolios: Option<&[String]>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<crate::Page<Notification>> {
        // (sort key without the portfolio, document), merged over portfolios.
        let mut found: Vec<(String, serde_json::Value)> = match portfolios {
            None => self
                .db
                .documents_page(NOTIFICATIONS, "by_time", "", cursor, limit)?,
            Some(ids) => {
                let mut all = Vec::new();
                for id in ids {
                    let prefix = format!("{id}/");
                    let after = cursor.map(|c| format!("{prefix}{c}"));
                    for (key, doc) in self.db.documents_page(
                        NOTIFICATIONS,
                        "by_portfolio",
                        &prefix,
                        after.as_deref(),
                        limit,
                    )? {
                        all.push((key[prefix.len()..].to_owned(), doc));
                    }
                }
                all.sort_by(|a, b| a.0.cmp(&b.0));
                all
            }
        };
        let more = limit > 0 && found.len() >= limit;
        found.truncate(limit);
        let next_cursor = more.then(|| found.last().map(|(k, _)| k.clone())).flatten();
        let items = found
            .into_iter()
            .map(|(_, doc)| {
                serde_json::from_value::<Notification>(doc)
                    .map_err(|e| Error::ReadModel(e.to_string()))
            })
            .collect::<Result<_>>()?;
        Ok(crate::Page { items, next_cursor })
    }
}
