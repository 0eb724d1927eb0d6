//! The Portfolio aggregate: what happened to one portfolio's optimizations,
//! folded from its own events on `es.Portfolio`.
//!
//! The flow's facts arrive on integration topics (`esg-portfolio-events`,
//! `portfolio-events`), written by the API, MCP clients, plain Kafka
//! producers and the services. The reporting service records them on the
//! aggregate with commands; the aggregate decides which are new:
//!
//! ```text
//! requested ──► completed ──► orders staged
//!          └──► failed
//! ```
//!
//! Every command is idempotent: a second completion or failure of a request
//! (a redelivery, or a request processed twice after a crash) produces no
//! event, so the aggregate — and every read model built from it — holds
//! exactly one result per request. Facts may arrive out of order across
//! topics (orders staged read before the completion they follow); `apply`
//! accepts them in any order and the state converges.
//!
//! The portfolio's owner also states its ESG preferences on it (module
//! `preferences`): the criteria its holdings are screened against
//! ([`ScreeningCriteria`](ultracore_esg::screening::ScreeningCriteria)) and a standing list of issuers it must not hold
//! (the exclusion list, by ticker or ISIN). Both are commands of their own,
//! checked for shape here (the data mesh is not consulted: an issuer the
//! data does not have yet may still be excluded), and idempotent too:
//! preferences equal to the current ones, or an update that adds only
//! listed issuers and removes only unlisted ones, produce no event.
//!
//! The events are new types of the family at schema version 1: readers
//! that do not know them yet reject them as unknown types, and states
//! stored before them (snapshots) load with no preferences and an empty
//! exclusion list, which is what their events say.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ultracore_es::Aggregate;
use ultracore_esg::OptimizationResult;
use ultracore_events::portfolio::TradeOrdersStaged;
use ultracore_log::{payload_as, DecodeError, EventFamily};

mod preferences;

pub use preferences::{
    EsgPreferenceSet, EsgPreferences, ExclusionListUpdated, ExclusionsUpdate, MAX_EXCLUSIONS,
};

/// Where one request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    #[default]
    Pending,
    Completed,
    Failed,
}

/// What the aggregate keeps of one request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RequestState {
    pub status: RequestStatus,
    #[serde(default)]
    pub requested_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub answered_at: Option<DateTime<Utc>>,
    /// The objective, as the request named it.
    #[serde(default)]
    pub objective: Option<Value>,
    #[serde(default)]
    pub failure: Option<String>,
    /// Orders staged for this request.
    #[serde(default)]
    pub orders: usize,
    #[serde(default)]
    pub orders_staged: bool,
}

/// The portfolio's state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Portfolio {
    pub portfolio_id: String,
    /// Request id → its state.
    pub requests: BTreeMap<String, RequestState>,
    /// The request recorded last.
    pub latest_request: Option<String>,
    /// The weights of the latest completed optimization.
    pub weights: BTreeMap<String, f64>,
    /// The request those weights came from.
    pub weights_from: Option<String>,
    pub completed: u64,
    pub failed: u64,
    pub orders_staged: u64,
    /// The ESG preferences set last (none until set).
    #[serde(default)]
    pub esg_preferences: Option<EsgPreferences>,
    /// Issuers the portfolio must not hold, by ticker or ISIN.
    #[serde(default)]
    pub exclusions: BTreeSet<String>,
}

impl Portfolio {
    /// The portfolio's status in one word: the state of its latest request.
    pub fn status(&self) -> &'static str {
        match self
            .latest_request
            .as_ref()
            .and_then(|r| self.requests.get(r))
        {
            None => "new",
            Some(r) if r.orders_staged => "orders_staged",
            Some(r) => match r.status {
                RequestStatus::Pending => "optimization_pending",
                RequestStatus::Completed => "optimized",
                RequestStatus::Failed => "optimization_failed",
            },
        }
    }
}

/// A request was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requested {
    pub request_id: String,
    pub portfolio_id: String,
    pub requested_at: DateTime<Utc>,
    pub objective: Value,
}

/// A request failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub request_id: String,
    pub reason: String,
    #[serde(default)]
    pub field: Option<String>,
    pub failed_at: DateTime<Utc>,
}

/// A request completed: the full result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completed {
    pub completed_at: DateTime<Utc>,
    pub result: OptimizationResult,
}

/// Orders were staged for a completed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdersStaged {
    pub staged_at: DateTime<Utc>,
    pub staged: TradeOrdersStaged,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PortfolioEvent {
    OptimizationRequested(Requested),
    OptimizationCompleted(Box<Completed>),
    OptimizationFailed(Failed),
    OrdersStaged(Box<OrdersStaged>),
    EsgPreferenceSet(Box<EsgPreferenceSet>),
    ExclusionListUpdated(ExclusionListUpdated),
}

impl EventFamily for PortfolioEvent {
    fn event_type(&self) -> &'static str {
        match self {
            PortfolioEvent::OptimizationRequested(_) => "optimization_requested",
            PortfolioEvent::OptimizationCompleted(_) => "optimization_completed",
            PortfolioEvent::OptimizationFailed(_) => "optimization_failed",
            PortfolioEvent::OrdersStaged(_) => "orders_staged",
            PortfolioEvent::EsgPreferenceSet(_) => "esg_preference_set",
            PortfolioEvent::ExclusionListUpdated(_) => "exclusion_list_updated",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn to_payload(&self) -> Value {
        match self {
            PortfolioEvent::OptimizationRequested(p) => serde_json::to_value(p),
            PortfolioEvent::OptimizationCompleted(p) => serde_json::to_value(p),
            PortfolioEvent::OptimizationFailed(p) => serde_json::to_value(p),
            PortfolioEvent::OrdersStaged(p) => serde_json::to_value(p),
            PortfolioEvent::EsgPreferenceSet(p) => serde_json::to_value(p),
            PortfolioEvent::ExclusionListUpdated(p) => serde_json::to_value(p),
        }
        .expect("payloads always serialize")
    }

    fn decode(event_type: &str, version: u32, payload: Value) -> Result<Self, DecodeError> {
        if version > 1 {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version,
                newest: 1,
            });
        }
        match event_type {
            "optimization_requested" => {
                payload_as(event_type, payload).map(PortfolioEvent::OptimizationRequested)
            }
            "optimization_completed" => payload_as(event_type, payload)
                .map(|c| PortfolioEvent::OptimizationCompleted(Box::new(c))),
            "optimization_failed" => {
                payload_as(event_type, payload).map(PortfolioEvent::OptimizationFailed)
            }
            "orders_staged" => {
                payload_as(event_type, payload).map(|o| PortfolioEvent::OrdersStaged(Box::new(o)))
            }
            "esg_preference_set" => payload_as(event_type, payload)
                .map(|p| PortfolioEvent::EsgPreferenceSet(Box::new(p))),
            "exclusion_list_updated" => {
                payload_as(event_type, payload).map(PortfolioEvent::ExclusionListUpdated)
            }
            other => Err(DecodeError::UnknownEventType(other.to_owned())),
        }
    }
}

/// Commands: record a fact of the flow on the aggregate, or change its
/// ESG preferences.
#[derive(Debug, Clone, PartialEq)]
pub enum PortfolioCommand {
    RecordRequest(Requested),
    RecordCompletion(Box<Completed>),
    RecordFailure(Failed),
    RecordOrders(Box<OrdersStaged>),
    SetEsgPreferences(Box<EsgPreferenceSet>),
    UpdateExclusions(ExclusionsUpdate),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortfolioError {
    #[error("the fact belongs to portfolio '{got}', not to '{this}'")]
    WrongPortfolio { this: String, got: String },
    /// A command's argument is malformed (the field is relative to the
    /// command: `preferences.min_esg_score`, `add[2]`, `set_by`, …).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl Portfolio {
    fn check_owner(&self, got: &str) -> Result<(), PortfolioError> {
        if !self.portfolio_id.is_empty() && self.portfolio_id != got {
            return Err(PortfolioError::WrongPortfolio {
                this: self.portfolio_id.clone(),
                got: got.to_owned(),
            });
        }
        Ok(())
    }

    fn answered(&self, request_id: &str) -> bool {
        self.requests
            .get(request_id)
            .is_some_and(|r| r.status != RequestStatus::Pending)
    }
}

impl Aggregate for Portfolio {
    const TYPE: &'static str = "Portfolio";
    const SNAPSHOT_EVERY: u64 = 50;
    type Event = PortfolioEvent;
    type Command = PortfolioCommand;
    type Error = PortfolioError;

    fn handle(&self, command: PortfolioCommand) -> Result<Vec<PortfolioEvent>, PortfolioError> {
        Ok(match command {
            PortfolioCommand::RecordRequest(r) => {
                self.check_owner(&r.portfolio_id)?;
                let known = self
                    .requests
                    .get(&r.request_id)
                    .is_some_and(|s| s.requested_at.is_some());
                if known {
                    vec![]
                } else {
                    vec![PortfolioEvent::OptimizationRequested(r)]
                }
            }
            PortfolioCommand::RecordCompletion(c) => {
                self.check_owner(&c.result.portfolio_id)?;
                if self.answered(&c.result.request_id.to_string()) {
                    vec![]
                } else {
                    vec![PortfolioEvent::OptimizationCompleted(c)]
                }
            }
            PortfolioCommand::RecordFailure(f) => {
                if self.answered(&f.request_id) {
                    vec![]
                } else {
                    vec![PortfolioEvent::OptimizationFailed(f)]
                }
            }
            PortfolioCommand::RecordOrders(o) => {
                self.check_owner(&o.staged.portfolio_id)?;
                let staged = self
                    .requests
                    .get(&o.staged.request_id)
                    .is_some_and(|r| r.orders_staged);
                if staged {
                    vec![]
                } else {
                    vec![PortfolioEvent::OrdersStaged(o)]
                }
            }
            PortfolioCommand::SetEsgPreferences(p) => self.set_preferences(*p)?,
            PortfolioCommand::UpdateExclusions(u) => self.update_exclusions(u)?,
        })
    }

    fn apply(&mut self, event: &PortfolioEvent) {
        match event {
            PortfolioEvent::OptimizationRequested(r) => {
                self.portfolio_id.clone_from(&r.portfolio_id);
                let state = self.requests.entry(r.request_id.clone()).or_default();
                state.requested_at = Some(r.requested_at);
                state.objective = Some(r.objective.clone());
                self.latest_request = Some(r.request_id.clone());
            }
            PortfolioEvent::OptimizationCompleted(c) => {
                let id = c.result.request_id.to_string();
                self.portfolio_id.clone_from(&c.result.portfolio_id);
                let state = self.requests.entry(id.clone()).or_default();
                state.status = RequestStatus::Completed;
                state.answered_at = Some(c.completed_at);
                self.weights.clone_from(&c.result.weights);
                self.weights_from = Some(id.clone());
                self.completed += 1;
                self.latest_request.get_or_insert(id);
            }
            PortfolioEvent::OptimizationFailed(f) => {
                let state = self.requests.entry(f.request_id.clone()).or_default();
                state.status = RequestStatus::Failed;
                state.answered_at = Some(f.failed_at);
                state.failure = Some(match &f.field {
                    Some(field) => format!("{field}: {}", f.reason),
                    None => f.reason.clone(),
                });
                self.failed += 1;
                self.latest_request.get_or_insert(f.request_id.clone());
            }
            PortfolioEvent::OrdersStaged(o) => {
                self.portfolio_id.clone_from(&o.staged.portfolio_id);
                let state = self
                    .requests
                    .entry(o.staged.request_id.clone())
                    .or_default();
                state.orders_staged = true;
                state.orders = o.staged.orders.len();
                self.orders_staged += 1;
                self.latest_request
                    .get_or_insert(o.staged.request_id.clone());
            }
            PortfolioEvent::EsgPreferenceSet(p) => {
                self.esg_preferences = Some(EsgPreferences {
                    criteria: p.preferences.clone(),
                    set_by: p.set_by.clone(),
                    set_at: p.set_at,
                });
            }
            PortfolioEvent::ExclusionListUpdated(u) => {
                self.exclusions.extend(u.added.iter().cloned());
                for id in &u.removed {
                    self.exclusions.remove(id);
                }
            }
        }
    }
}
