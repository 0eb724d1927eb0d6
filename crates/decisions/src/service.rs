//! The decision service: the engine plus its events.
//!
//! Every decision publishes, through a [`SpooledEmitter`] (never waiting
//! for the log; a down log sends the events to a durable local spool):
//!
//! - `trading_decision` on `trading_decisions`, whose envelope `event_id` is
//!   the decision id (so deduplicating by either is the same);
//! - `risk_decision` on `risk_decisions` (approved or rejected, and which
//!   checks failed), caused by the decision event;
//! - `regime_change` on `regime_changes` when the symbol's most probable
//!   regime differs from the one of the symbol's previous decision. The
//!   previous decision may be an earlier run's: [`DecisionService::start`]
//!   rebuilds each symbol's last regime from the log (see the `history`
//!   module), so a restart neither loses nor invents a change.
//!
//! The decision carries `latency_us`: from [`DecisionService::decide_as`]
//! taking the request to the engine's answer, before any event is queued
//! (one clock read on the hot path; the log's own latency is not in it).
//! The published event and the caller's answer carry the same value.
//!
//! Every envelope is keyed by the symbol and carries the request's
//! `correlation_id` (or the decision id). [`DecisionService::reload`]
//! swaps the specialists and publishes a `model_update` on `model_updates`
//! for each one whose file content changed.
//!
//! If the decision event cannot even be queued (the emitter's queue is full
//! or it has stopped), the decision fails with [`crate::Error::NotRecorded`]: a
//! decision that is not on the record must not be acted on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serialize;
use ultracore_events::trading::{
    ModelUpdate, RegimeChange, RiskDecision, RiskOutcome, AGGREGATE_TYPE, DECISIONS_TOPIC,
    MODEL_AGGREGATE_TYPE, MODEL_UPDATES_TOPIC, REGIME_AGGREGATE_TYPE, REGIME_CHANGES_TOPIC,
    RISK_DECISIONS_TOPIC,
};
use ultracore_log::{EventLog, EventLogExt, Header, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_spool::{EmitterOptions, EmitterStats, SpooledEmitter};
use uuid::Uuid;

use crate::history::{self, LastRegime};
use crate::metrics::DecisionMetrics;
use crate::{
    Decision, DecisionEngine, DecisionRequest, EvaluationSet, Regime, RegimeHistory,
    RegimeHistoryOptions, Result, Specialists, StabilityBounds,
};

/// The four topics decisions publish on.
pub const TOPICS: [&str; 4] = [
    DECISIONS_TOPIC,
    RISK_DECISIONS_TOPIC,
    REGIME_CHANGES_TOPIC,
    MODEL_UPDATES_TOPIC,
];

/// The event types (schema version 1), as the event families in
/// `ultracore_events::trading` name them (a test checks they agree).
const DECISION_EVENT: &str = "trading_decision";
const RISK_EVENT: &str = "risk_decision";
const REGIME_EVENT: &str = "regime_change";
const MODEL_EVENT: &str = "model_update";

/// How [`DecisionService::start`] sets up its events.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub emitter: EmitterOptions,
    /// Partitions of the topics created at start.
    pub partitions: u32,
    /// How long to try creating the topics at start; on a log that does not
    /// answer in time, start goes on (events are spooled) and warns.
    pub topic_timeout: Duration,
    /// Rebuild each symbol's last regime from the log at start, so the
    /// first decision after a restart publishes a `regime_change` when the
    /// regime moved. `None` starts with no history (the first decision per
    /// symbol sets the baseline and publishes no change).
    pub regime_history: Option<RegimeHistoryOptions>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            emitter: EmitterOptions::default(),
            partitions: 3,
            topic_timeout: Duration::from_secs(5),
            regime_history: Some(RegimeHistoryOptions::default()),
        }
    }
}

/// Decides and publishes. Share it as `Arc<DecisionService>`.
#[derive(Debug)]
pub struct DecisionService {
    engine: RwLock<Arc<DecisionEngine>>,
    emitter: Option<SpooledEmitter>,
    /// The most probable regime and probabilities of the last decision per symbol.
    regimes: Mutex<HashMap<String, LastRegime>>,
    /// What the start-up rebuild of `regimes` found, when there was one.
    history: Option<RegimeHistory>,
    /// Risk-decision, regime-change and model-update events that could not be queued.
    unpublished: AtomicU64,
    metrics: DecisionMetrics,
}

impl DecisionService {
    /// A service that publishes through `emitter`, or publishes nothing
    /// when it is `None` (no log configured).
    pub fn new(engine: DecisionEngine, emitter: Option<SpooledEmitter>) -> DecisionService {
        DecisionService {
            engine: RwLock::new(Arc::new(engine)),
            emitter,
            regimes: Mutex::new(HashMap::new()),
            history: None,
            unpublished: AtomicU64::new(0),
            metrics: DecisionMetrics::default(),
        }
    }

    /// Creates the four topics on `target` (bounded by `topic_timeout`),
    /// opens the spool (an embedded log of its own in `spool_dir`; whatever
    /// an earlier run left there is forwarded first), rebuilds each
    /// symbol's last regime from `target` and the spool (bounded by
    /// `regime_history.timeout`; skipped when the log did not answer the
    /// topic creation) and starts emitting. Must be called within a Tokio
    /// runtime.
    pub async fn start<L: EventLog>(
        engine: DecisionEngine,
        target: L,
        spool_dir: &Path,
        options: ServiceOptions,
    ) -> Result<DecisionService> {
        let ensure = async {
            for topic in TOPICS {
                target
                    .ensure_topic(&TopicSpec::new(topic, options.partitions))
                    .await?;
            }
            Ok::<_, ultracore_log::Error>(())
        };
        let answered = match tokio::time::timeout(options.topic_timeout, ensure).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot create the decision topics; events are spooled until the log accepts them");
                Err(format!("creating the decision topics failed: {e}"))
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = options.topic_timeout.as_millis() as u64,
                    "the log did not answer while creating the decision topics; events are spooled until it does"
                );
                Err(format!(
                    "the log did not answer within {} ms at start",
                    options.topic_timeout.as_millis()
                ))
            }
        };
        std::fs::create_dir_all(spool_dir).map_err(|e| ultracore_log::Error::Io {
            path: spool_dir.to_owned(),
            source: e,
        })?;
        let spool = EmbeddedLog::open(spool_dir, EmbeddedOptions::default())?;
        // Before the emitter starts forwarding: what it has not forwarded
        // yet is read from the spool itself.
        let history = match (&options.regime_history, answered) {
            (None, _) => None,
            (Some(h), Ok(())) => Some(history::rebuild(&target, Some(&spool), h).await),
            (Some(_), Err(reason)) => {
                tracing::warn!(%reason, "regime history not rebuilt: the first decision per symbol sets the baseline and publishes no regime_change");
                let report = RegimeHistory {
                    dropped: Some(reason),
                    ..RegimeHistory::default()
                };
                Some((HashMap::new(), report))
            }
        };
        let emitter = SpooledEmitter::start(target, spool, options.emitter).await?;
        let mut service = DecisionService::new(engine, Some(emitter));
        if let Some((regimes, report)) = history {
            service.regimes = Mutex::new(regimes);
            service.history = Some(report);
        }
        Ok(service)
    }

    /// What the start-up rebuild of the regime history found (`None` when
    /// the service was built without one).
    pub fn regime_history(&self) -> Option<&RegimeHistory> {
        self.history.as_ref()
    }

    /// The engine decisions are made with now.
    pub fn engine(&self) -> Arc<DecisionEngine> {
        self.engine
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether decisions are published.
    pub fn publishes(&self) -> bool {
        self.emitter.is_some()
    }

    /// The emitter's counters (`None` when nothing is published).
    pub fn emitter_stats(&self) -> Option<EmitterStats> {
        self.emitter.as_ref().map(SpooledEmitter::stats)
    }

    /// Events other than decisions that could not be queued.
    pub fn unpublished(&self) -> u64 {
        self.unpublished.load(Ordering::Relaxed)
    }

    /// Decisions made.
    pub fn decisions(&self) -> u64 {
        self.metrics.decisions()
    }

    /// The service's metrics in the Prometheus text format (0.0.4): the
    /// `ultracore_decisions_*` families (see the `metrics` module). The
    /// emitter's `ultracore_spool_*` families are not included: the
    /// forensics router exports them from [`DecisionService::emitter_stats`].
    pub fn render_metrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.metrics
            .render(&mut out, self.unpublished(), self.history.as_ref());
        out
    }

    /// Makes a decision and queues its events; never waits for the log.
    pub fn decide(&self, request: &DecisionRequest) -> Result<Decision> {
        self.decide_as(request, None)
    }

    /// [`DecisionService::decide`] on behalf of `principal` (the API key
    /// id or token subject), recorded in the decision's events.
    pub fn decide_as(
        &self,
        request: &DecisionRequest,
        principal: Option<&str>,
    ) -> Result<Decision> {
        let started = Instant::now();
        let result = self.decide_and_emit(request, principal, started);
        match &result {
            Ok(decision) => self.metrics.decided(decision, started.elapsed()),
            Err(crate::Error::NotRecorded(_)) => self.metrics.not_recorded(),
            Err(_) => {}
        }
        result
    }

    /// Decides and queues the events; `started` is when the request was
    /// taken, the start of the decision's `latency_us`.
    fn decide_and_emit(
        &self,
        request: &DecisionRequest,
        principal: Option<&str>,
        started: Instant,
    ) -> Result<Decision> {
        let engine = self.engine();
        let decision_id = Uuid::now_v7();
        let now = Utc::now().trunc_subsecs(3);
        let mut decision = engine.decide(request, decision_id, now)?;
        // One clock read: the decision is made, its events not queued yet,
        // so the latency on record is the service's, not the log's.
        decision.decision.latency_us =
            Some(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        let Some(emitter) = &self.emitter else {
            self.note_regime(&decision);
            return Ok(decision);
        };
        let symbol = decision.decision.symbol.as_str();
        let correlation = request
            .correlation_id
            .clone()
            .unwrap_or_else(|| decision.decision.decision_id.clone());
        let first = record(
            decision_id,
            now,
            (AGGREGATE_TYPE, symbol),
            (&correlation, None, principal),
            (DECISION_EVENT, &decision.decision),
        );
        emitter.emit(DECISIONS_TOPIC, first)?;

        let risk = RiskDecision {
            decision_id: decision.decision.decision_id.clone(),
            symbol: symbol.to_owned(),
            outcome: if decision.approved {
                RiskOutcome::Approved
            } else {
                RiskOutcome::Rejected
            },
            failed_checks: decision.failed_checks.clone(),
            checks: decision.decision.risk_checks.clone(),
            context_source: decision.context_source,
            timestamp: now,
        };
        self.emit_secondary(
            emitter,
            RISK_DECISIONS_TOPIC,
            record(
                Uuid::now_v7(),
                now,
                (AGGREGATE_TYPE, symbol),
                (&correlation, Some(decision_id), principal),
                (RISK_EVENT, &risk),
            ),
        );
        if let Some(change) = self.note_regime(&decision) {
            self.emit_secondary(
                emitter,
                REGIME_CHANGES_TOPIC,
                record(
                    Uuid::now_v7(),
                    now,
                    (REGIME_AGGREGATE_TYPE, symbol),
                    (&correlation, Some(decision_id), principal),
                    (REGIME_EVENT, &change),
                ),
            );
        }
        Ok(decision)
    }

    fn emit_secondary(&self, emitter: &SpooledEmitter, topic: &str, record: NewRecord) {
        if let Err(e) = emitter.emit(topic, record) {
            self.unpublished.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(topic, error = %e, "event not published");
        }
    }

    /// Remembers the decision's regime; returns the change if the most
    /// probable regime differs from the symbol's previous decision's.
    fn note_regime(&self, decision: &Decision) -> Option<RegimeChange> {
        let d = &decision.decision;
        let mut regimes = self.regimes.lock().unwrap_or_else(|e| e.into_inner());
        let previous =
            regimes.insert(d.symbol.clone(), (decision.regime, d.regime_probs.clone()))?;
        if previous.0 == decision.regime {
            return None;
        }
        self.metrics.regime_changed();
        Some(RegimeChange {
            symbol: d.symbol.clone(),
            previous_regime: previous.0.as_str().to_owned(),
            new_regime: decision.regime.as_str().to_owned(),
            previous_probs: previous.1,
            new_probs: d.regime_probs.clone(),
            decision_id: Some(d.decision_id.clone()),
            timestamp: d.timestamp,
        })
    }

    /// Replaces the specialists (keeping the configuration) and publishes a
    /// `model_update` for each whose file content changed, measured on
    /// `evaluation` (see the `evaluation` module). Returns those updates;
    /// none when nothing changed.
    pub fn reload(
        &self,
        specialists: Specialists,
        evaluation: &EvaluationSet,
        bounds: StabilityBounds,
    ) -> Result<Vec<ModelUpdate>> {
        let old = self.engine();
        let now = Utc::now().trunc_subsecs(3);
        let scale = old.config().sideways_scale_bps;
        let mut updates = Vec::new();
        for regime in Regime::ALL {
            let (before, after) = (old.specialists().get(regime), specialists.get(regime));
            if before.sha256 != after.sha256 {
                updates.push(evaluation.compare(before, after, scale, bounds, now)?);
            }
        }
        let engine = DecisionEngine::new(specialists, old.config().clone())?;
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(engine);
        self.metrics.reloaded(updates.len());
        if let Some(emitter) = &self.emitter {
            let correlation = Uuid::now_v7().to_string();
            for update in &updates {
                let id = update.model_id.as_str();
                self.emit_secondary(
                    emitter,
                    MODEL_UPDATES_TOPIC,
                    record(
                        Uuid::now_v7(),
                        now,
                        (MODEL_AGGREGATE_TYPE, id),
                        (&correlation, None, None),
                        (MODEL_EVENT, update),
                    ),
                );
            }
        }
        for u in &updates {
            tracing::info!(
                model = %u.model_id,
                from = %u.previous_version,
                to = %u.new_version,
                sharpe_before = u.sharpe_before,
                sharpe_after = u.sharpe_after,
                stable = u.stability_check_passed,
                "specialist reloaded"
            );
        }
        Ok(updates)
    }

    /// Stops emitting: everything queued is delivered or spooled (see
    /// [`SpooledEmitter::shutdown`]). Returns the emitter's final counters.
    pub async fn shutdown(self) -> Option<EmitterStats> {
        match self.emitter {
            Some(e) => Some(e.shutdown().await),
            None => None,
        }
    }
}

/// The envelope as `ultracore_log::Envelope` writes it (same fields, same order, same
/// timestamp format), serialized straight from a borrowed payload: no
/// clone of the decision and no intermediate JSON tree on the hot path.
#[derive(Serialize)]
struct EnvelopeOut<'a, P: Serialize> {
    event_id: Uuid,
    event_type: &'a str,
    schema_version: u32,
    timestamp: String,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    version: u64,
    correlation_id: Option<&'a str>,
    causation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<&'a str>,
    payload: &'a P,
}

/// The record of one event: key = aggregate id, value = envelope JSON, the
/// event type in a header, the envelope time as the record timestamp (as
/// [`Envelope::to_record`] makes it). Event types are schema version 1.
fn record<P: Serialize>(
    event_id: Uuid,
    timestamp: DateTime<Utc>,
    (aggregate_type, aggregate_id): (&str, &str),
    (correlation_id, causation_id, principal): (&str, Option<Uuid>, Option<&str>),
    (event_type, payload): (&str, &P),
) -> NewRecord {
    let envelope = EnvelopeOut {
        event_id,
        event_type,
        schema_version: 1,
        timestamp: timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        aggregate_type,
        aggregate_id,
        version: 1,
        correlation_id: Some(correlation_id),
        causation_id,
        principal,
        payload,
    };
    let value = serde_json::to_vec(&envelope).expect("event payloads always serialize");
    NewRecord {
        key: Some(aggregate_id.as_bytes().to_vec()),
        value,
        headers: vec![
            Header::new("event_type", event_type),
            Header::new("content-type", "application/json"),
        ],
        timestamp: Some(timestamp.timestamp_millis()),
        partition: None,
    }
}

#[cfg(test)]
mod tests {
    use ultracore_events::trading::TradingDecisionEvent;
    use ultracore_log::{Envelope, EventFamily, RawEnvelope};

    use super::*;

    #[test]
    fn records_equal_what_the_envelope_type_writes() {
        let decision = ultracore_events::trading::TradingDecision {
            decision_id: Uuid::now_v7().to_string(),
            timestamp: Utc::now().trunc_subsecs(3),
            symbol: "AAPL".into(),
            action: ultracore_events::trading::Action::Sell,
            quantity: 12.0,
            confidence: 0.1 + 0.2,
            regime_probs: [("bull".to_owned(), 1.0 / 3.0)].into(),
            strategy_weights: [("bull".to_owned(), 1.0 / 3.0)].into(),
            features: [("rsi_14".to_owned(), 61.5)].into(),
            risk_checks: vec![],
            model_version: "bull@1".into(),
            latency_us: Some(17),
        };
        let id = Uuid::now_v7();
        let cause = Uuid::now_v7();
        let ours = record(
            id,
            decision.timestamp,
            (AGGREGATE_TYPE, "AAPL"),
            ("corr", Some(cause), Some("k7f3abcdefgh")),
            (DECISION_EVENT, &decision),
        );
        let event = TradingDecisionEvent::TradingDecision(Box::new(decision.clone()));
        assert_eq!(event.event_type(), DECISION_EVENT);
        let theirs = Envelope {
            event_id: id,
            event_type: DECISION_EVENT.to_owned(),
            schema_version: event.schema_version(),
            timestamp: decision.timestamp,
            aggregate_type: AGGREGATE_TYPE.to_owned(),
            aggregate_id: "AAPL".to_owned(),
            version: 1,
            correlation_id: Some("corr".to_owned()),
            causation_id: Some(cause),
            principal: Some("k7f3abcdefgh".to_owned()),
            payload: event,
        }
        .to_record();
        // The same JSON (the payload's keys come in declaration order
        // rather than sorted: JSON objects are unordered).
        let json = |v: &[u8]| serde_json::from_slice::<serde_json::Value>(v).unwrap();
        assert_eq!(json(&ours.value), json(&theirs.value));
        assert_eq!(
            (ours.key, ours.headers, ours.timestamp),
            (theirs.key, theirs.headers, theirs.timestamp)
        );
        let back = RawEnvelope::from_bytes(&ours.value)
            .unwrap()
            .typed::<TradingDecisionEvent>()
            .unwrap();
        let TradingDecisionEvent::TradingDecision(d) = back.payload;
        assert_eq!(*d, decision);
    }

    #[test]
    fn event_type_names_agree_with_the_event_families() {
        use ultracore_events::trading::*;
        let risk = RiskDecisionEvent::RiskDecision(RiskDecision {
            decision_id: String::new(),
            symbol: String::new(),
            outcome: RiskOutcome::Approved,
            failed_checks: vec![],
            checks: vec![],
            context_source: ContextSource::Caller,
            timestamp: Utc::now(),
        });
        assert_eq!(risk.event_type(), RISK_EVENT);
        let change = RegimeChangeEvent::RegimeChange(RegimeChange {
            symbol: String::new(),
            previous_regime: String::new(),
            new_regime: String::new(),
            previous_probs: Default::default(),
            new_probs: Default::default(),
            decision_id: None,
            timestamp: Utc::now(),
        });
        assert_eq!(change.event_type(), REGIME_EVENT);
        assert_eq!((risk.schema_version(), change.schema_version()), (1, 1));
        let update = ModelUpdateEvent::ModelUpdate(ModelUpdate {
            model_id: String::new(),
            update_type: UpdateType::FullRetrain,
            previous_version: String::new(),
            new_version: String::new(),
            data_window_start: Utc::now().date_naive(),
            data_window_end: Utc::now().date_naive(),
            sharpe_before: 0.0,
            sharpe_after: 0.0,
            degradation_pct: 0.0,
            stability_check_passed: true,
            stability_detail: None,
            timestamp: Utc::now(),
        });
        assert_eq!(update.event_type(), MODEL_EVENT);
    }
}
