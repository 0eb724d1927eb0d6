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
//!   regime differs from the one of this service's previous decision for
//!   that symbol (the first decision per symbol after a start sets the
//!   baseline and publishes none).
//!
//! Every envelope is keyed by the symbol and carries the request's
//! `correlation_id` (or the decision id). [`DecisionService::reload`]
//! swaps the specialists and publishes a `model_update` on `model_updates`
//! for each one whose file content changed.
//!
//! If the decision event cannot even be queued (the emitter's queue is full
//! or it has stopped), the decision fails with [`crate::Error::NotRecorded`]: a
//! decision that is not on the record must not be acted on.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use ultracore_events::trading::{
    ModelUpdate, ModelUpdateEvent, RegimeChange, RegimeChangeEvent, RiskDecision,
    RiskDecisionEvent, RiskOutcome, TradingDecisionEvent, AGGREGATE_TYPE, DECISIONS_TOPIC,
    MODEL_AGGREGATE_TYPE, MODEL_UPDATES_TOPIC, REGIME_AGGREGATE_TYPE, REGIME_CHANGES_TOPIC,
    RISK_DECISIONS_TOPIC,
};
use ultracore_log::{Envelope, EventFamily, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_spool::{EmitterOptions, EmitterStats, SpooledEmitter};
use uuid::Uuid;

use crate::{
    Decision, DecisionEngine, DecisionRequest, EvaluationSet, Regime, Result, Specialists,
    StabilityBounds,
};

/// The four topics decisions publish on.
pub const TOPICS: [&str; 4] = [
    DECISIONS_TOPIC,
    RISK_DECISIONS_TOPIC,
    REGIME_CHANGES_TOPIC,
    MODEL_UPDATES_TOPIC,
];

/// How [`DecisionService::start`] sets up its events.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    pub emitter: EmitterOptions,
    /// Partitions of the topics created at start.
    pub partitions: u32,
    /// How long to try creating the topics at start; on a log that does not
    /// answer in time, start goes on (events are spooled) and warns.
    pub topic_timeout: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            emitter: EmitterOptions::default(),
            partitions: 3,
            topic_timeout: Duration::from_secs(5),
        }
    }
}

/// A symbol's most probable regime and its probabilities at its last decision.
type LastRegime = (Regime, BTreeMap<String, f64>);

/// Decides and publishes. Share it as `Arc<DecisionService>`.
#[derive(Debug)]
pub struct DecisionService {
    engine: RwLock<Arc<DecisionEngine>>,
    emitter: Option<SpooledEmitter>,
    /// The most probable regime and probabilities of the last decision per symbol.
    regimes: Mutex<HashMap<String, LastRegime>>,
    /// Risk-decision, regime-change and model-update events that could not be queued.
    unpublished: AtomicU64,
    decisions: AtomicU64,
}

impl DecisionService {
    /// A service that publishes through `emitter`, or publishes nothing
    /// when it is `None` (no log configured).
    pub fn new(engine: DecisionEngine, emitter: Option<SpooledEmitter>) -> DecisionService {
        DecisionService {
            engine: RwLock::new(Arc::new(engine)),
            emitter,
            regimes: Mutex::new(HashMap::new()),
            unpublished: AtomicU64::new(0),
            decisions: AtomicU64::new(0),
        }
    }

    /// Creates the four topics on `target` (bounded by `topic_timeout`),
    /// opens the spool (an embedded log of its own in `spool_dir`; whatever
    /// an earlier run left there is forwarded first) and starts emitting.
    /// Must be called within a Tokio runtime.
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
        match tokio::time::timeout(options.topic_timeout, ensure).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot create the decision topics; events are spooled until the log accepts them"),
            Err(_) => tracing::warn!(
                timeout_ms = options.topic_timeout.as_millis() as u64,
                "the log did not answer while creating the decision topics; events are spooled until it does"
            ),
        }
        std::fs::create_dir_all(spool_dir).map_err(|e| ultracore_log::Error::Io {
            path: spool_dir.to_owned(),
            source: e,
        })?;
        let spool = EmbeddedLog::open(spool_dir, EmbeddedOptions::default())?;
        let emitter = SpooledEmitter::start(target, spool, options.emitter).await?;
        Ok(DecisionService::new(engine, Some(emitter)))
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
        self.decisions.load(Ordering::Relaxed)
    }

    /// Makes a decision and queues its events; never waits for the log.
    pub fn decide(&self, request: &DecisionRequest) -> Result<Decision> {
        let engine = self.engine();
        let decision_id = Uuid::now_v7();
        let now = Utc::now().trunc_subsecs(3);
        let decision = engine.decide(request, decision_id, now)?;
        self.decisions.fetch_add(1, Ordering::Relaxed);
        let Some(emitter) = &self.emitter else {
            self.note_regime(&decision);
            return Ok(decision);
        };
        let symbol = decision.decision.symbol.as_str();
        let correlation = request
            .correlation_id
            .clone()
            .unwrap_or_else(|| decision.decision.decision_id.clone());
        let event = TradingDecisionEvent::TradingDecision(Box::new(decision.decision.clone()));
        let first = record(
            decision_id,
            now,
            (AGGREGATE_TYPE, symbol),
            &correlation,
            None,
            event,
        );
        emitter.emit(DECISIONS_TOPIC, first)?;

        let risk = RiskDecisionEvent::RiskDecision(RiskDecision {
            decision_id: decision.decision.decision_id.clone(),
            symbol: symbol.to_owned(),
            outcome: if decision.approved {
                RiskOutcome::Approved
            } else {
                RiskOutcome::Rejected
            },
            failed_checks: decision.failed_checks.clone(),
            checks: decision.decision.risk_checks.clone(),
            timestamp: now,
        });
        self.emit_secondary(
            emitter,
            RISK_DECISIONS_TOPIC,
            record(
                Uuid::now_v7(),
                now,
                (AGGREGATE_TYPE, symbol),
                &correlation,
                Some(decision_id),
                risk,
            ),
        );
        if let Some(change) = self.note_regime(&decision) {
            let event = RegimeChangeEvent::RegimeChange(change);
            self.emit_secondary(
                emitter,
                REGIME_CHANGES_TOPIC,
                record(
                    Uuid::now_v7(),
                    now,
                    (REGIME_AGGREGATE_TYPE, symbol),
                    &correlation,
                    Some(decision_id),
                    event,
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
        (previous.0 != decision.regime).then(|| RegimeChange {
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
        if let Some(emitter) = &self.emitter {
            let correlation = Uuid::now_v7().to_string();
            for update in &updates {
                let id = update.model_id.clone();
                let event = ModelUpdateEvent::ModelUpdate(update.clone());
                self.emit_secondary(
                    emitter,
                    MODEL_UPDATES_TOPIC,
                    record(
                        Uuid::now_v7(),
                        now,
                        (MODEL_AGGREGATE_TYPE, &id),
                        &correlation,
                        None,
                        event,
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

/// An envelope with the given id and time, as the record to append.
fn record<E: EventFamily>(
    event_id: Uuid,
    timestamp: DateTime<Utc>,
    (aggregate_type, aggregate_id): (&str, &str),
    correlation_id: &str,
    causation_id: Option<Uuid>,
    event: E,
) -> NewRecord {
    Envelope {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        timestamp,
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version: 1,
        correlation_id: Some(correlation_id.to_owned()),
        causation_id,
        payload: event,
    }
    .to_record()
}
