//! The notification service (consumer group `notification-service` on
//! `esg-portfolio-events`): one notification per completed or failed
//! request, stored in the database (namespace `notifications`, view `all`,
//! keyed by request id, so a duplicate answer adds nothing) and then pushed
//! to live clients (the API's server-sent events) through a broadcast
//! channel. Stored before pushed, and committed on the log after stored.

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
    /// Notifications stored.
    pub stored: u64,
}

impl<L: EventLog> Notifier<L> {
    /// `live` receives each notification once it is stored.
    pub fn new(log: L, db: Database, live: broadcast::Sender<Notification>) -> Self {
        Notifier {
            log,
            db,
            live,
            stored: 0,
        }
    }

    /// Serves the notifier's group alone until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let log = self.log.clone();
        crate::ensure_flow_topics(&log).await?;
        run_group(
            &log,
            "notification",
            NOTIFICATION_GROUP,
            &[ultracore_esg::TOPIC],
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
        for record in records {
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
            batch.documents.insert(
                key,
                Some(serde_json::to_value(&n).map_err(|e| Error::ReadModel(e.to_string()))?),
            );
            fresh.push(n);
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
        self.latest_matching(|p| portfolio_id.is_none_or(|want| want == p), limit)
    }

    /// The newest `limit` notifications of the portfolios `keep` accepts,
    /// newest first.
    pub fn latest_matching(
        &self,
        keep: impl Fn(&str) -> bool,
        limit: usize,
    ) -> Result<Vec<Notification>> {
        let mut all: Vec<Notification> = self
            .db
            .documents(NOTIFICATIONS, "all")?
            .into_iter()
            .filter_map(|(_, doc)| serde_json::from_value::<Notification>(doc).ok())
            .filter(|n| keep(&n.portfolio_id))
            .collect();
        all.sort_by_key(|n| std::cmp::Reverse(n.created_at));
        all.truncate(limit);
        Ok(all)
    }
}
