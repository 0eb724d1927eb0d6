//! The decision service's metrics and their Prometheus text exposition.
//!
//! Names are constants here so the exposition, dashboards and tests agree.
//! Every figure is an atomic the service updates on its way: a decision
//! costs a few relaxed increments and two clock reads, nothing that waits.
//!
//! The emitter's figures (breaker state, consecutive failures, spool
//! backlog, events delivered and spooled) are the `ultracore_spool_*`
//! families, which the forensics router already exports from the same
//! emitter (`ApiState::with_emitter`); they are not repeated here, so a
//! server that appends [`crate::DecisionService::render_metrics`] to that
//! exposition has each family once.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ultracore_events::trading::Action;

use crate::risk::CHECKS;
use crate::RegimeHistory;

/// Decisions made, by action (`BUY`, `SELL`, `HOLD`).
pub const DECISIONS_TOTAL: &str = "ultracore_decisions_total";
/// Decisions the risk checks rejected (published with quantity 0).
pub const REJECTED_TOTAL: &str = "ultracore_decisions_rejected_total";
/// Failed checks of rejected decisions, by check; a decision that fails two
/// checks counts in both.
pub const RISK_REJECTIONS_TOTAL: &str = "ultracore_decisions_risk_rejections_total";
/// Time `decide` takes: the models, sizing, risk checks, the envelopes and
/// handing the events to the emitter (not their delivery).
pub const DECIDE_SECONDS: &str = "ultracore_decisions_decide_seconds";
/// Changes of a symbol's most probable regime seen by decisions.
pub const REGIME_CHANGES_TOTAL: &str = "ultracore_decisions_regime_changes_total";
/// Model reloads (`DecisionService::reload` calls that succeeded).
pub const MODEL_RELOADS_TOTAL: &str = "ultracore_decisions_model_reloads_total";
/// Specialists replaced by a reload (one `model_update` each).
pub const MODEL_UPDATES_TOTAL: &str = "ultracore_decisions_model_updates_total";
/// Decisions refused because their event could not be queued (HTTP 503).
pub const NOT_RECORDED_TOTAL: &str = "ultracore_decisions_not_recorded_total";
/// Risk-decision, regime-change and model-update events that could not be queued.
pub const UNPUBLISHED_EVENTS_TOTAL: &str = "ultracore_decisions_unpublished_events_total";
/// Symbols whose last regime the start-up rebuild found.
pub const REGIME_HISTORY_SYMBOLS: &str = "ultracore_decisions_regime_history_symbols";
/// How long the start-up rebuild of the regime history took.
pub const REGIME_HISTORY_SECONDS: &str = "ultracore_decisions_regime_history_seconds";
/// 1 when the start-up regime history was dropped (see the warning in the log).
pub const REGIME_HISTORY_DROPPED: &str = "ultracore_decisions_regime_history_dropped";

/// Upper bounds of the `decide` latency buckets, seconds (p50 is ~20 µs in
/// a release build; the tail is a lost core).
const DECIDE_BUCKETS: [f64; 11] = [
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1, 1.0,
];

const ACTIONS: [Action; 3] = [Action::Buy, Action::Sell, Action::Hold];

/// Every figure of one decision service.
#[derive(Debug)]
pub(crate) struct DecisionMetrics {
    /// By [`ACTIONS`] order.
    decisions: [AtomicU64; 3],
    rejected: AtomicU64,
    /// By [`CHECKS`] order.
    failed_checks: [AtomicU64; 3],
    /// Per bucket (not cumulative), then +Inf.
    decide_buckets: [AtomicU64; DECIDE_BUCKETS.len() + 1],
    decide_nanos: AtomicU64,
    regime_changes: AtomicU64,
    reloads: AtomicU64,
    model_updates: AtomicU64,
    not_recorded: AtomicU64,
}

impl Default for DecisionMetrics {
    fn default() -> Self {
        DecisionMetrics {
            decisions: Default::default(),
            rejected: AtomicU64::new(0),
            failed_checks: Default::default(),
            decide_buckets: Default::default(),
            decide_nanos: AtomicU64::new(0),
            regime_changes: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            model_updates: AtomicU64::new(0),
            not_recorded: AtomicU64::new(0),
        }
    }
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl DecisionMetrics {
    /// One decision made in `took`.
    pub(crate) fn decided(&self, d: &crate::Decision, took: Duration) {
        if let Some(i) = ACTIONS.iter().position(|a| *a == d.decision.action) {
            inc(&self.decisions[i]);
        }
        if !d.approved {
            inc(&self.rejected);
            for check in &d.failed_checks {
                if let Some(i) = CHECKS.iter().position(|c| c == check) {
                    inc(&self.failed_checks[i]);
                }
            }
        }
        let secs = took.as_secs_f64();
        let bucket = DECIDE_BUCKETS.partition_point(|&b| b < secs);
        inc(&self.decide_buckets[bucket]);
        self.decide_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn not_recorded(&self) {
        inc(&self.not_recorded);
    }

    pub(crate) fn regime_changed(&self) {
        inc(&self.regime_changes);
    }

    pub(crate) fn reloaded(&self, updates: usize) {
        inc(&self.reloads);
        self.model_updates
            .fetch_add(updates as u64, Ordering::Relaxed);
    }

    /// Decisions made so far.
    pub(crate) fn decisions(&self) -> u64 {
        self.decisions.iter().map(load).sum()
    }

    /// Appends the Prometheus text (format 0.0.4) of these figures, the
    /// events not queued and, when there was one, the start-up regime
    /// history.
    pub(crate) fn render(
        &self,
        out: &mut String,
        unpublished: u64,
        history: Option<&RegimeHistory>,
    ) {
        header(
            out,
            DECISIONS_TOTAL,
            "counter",
            "Decisions made, by action.",
        );
        for (a, n) in ACTIONS.iter().zip(&self.decisions) {
            let _ = writeln!(out, "{DECISIONS_TOTAL}{{action=\"{a}\"}} {}", load(n));
        }
        counter(
            out,
            REJECTED_TOTAL,
            "Decisions the risk checks rejected (published with quantity 0).",
            load(&self.rejected),
        );
        header(
            out,
            RISK_REJECTIONS_TOTAL,
            "counter",
            "Failed risk checks of rejected decisions, by check (a decision failing two counts in both).",
        );
        for (c, n) in CHECKS.iter().zip(&self.failed_checks) {
            let _ = writeln!(out, "{RISK_REJECTIONS_TOTAL}{{check=\"{c}\"}} {}", load(n));
        }
        header(
            out,
            DECIDE_SECONDS,
            "histogram",
            "Time decide takes: models, sizing, risk checks, envelopes and handing the events to the emitter.",
        );
        let mut cumulative = 0;
        for (bound, n) in DECIDE_BUCKETS.iter().zip(&self.decide_buckets) {
            cumulative += load(n);
            let _ = writeln!(
                out,
                "{DECIDE_SECONDS}_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += load(&self.decide_buckets[DECIDE_BUCKETS.len()]);
        let _ = writeln!(out, "{DECIDE_SECONDS}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{DECIDE_SECONDS}_sum {}\n{DECIDE_SECONDS}_count {cumulative}",
            load(&self.decide_nanos) as f64 * 1e-9
        );
        counter(
            out,
            REGIME_CHANGES_TOTAL,
            "Changes of a symbol's most probable regime seen by decisions.",
            load(&self.regime_changes),
        );
        counter(
            out,
            MODEL_RELOADS_TOTAL,
            "Model reloads.",
            load(&self.reloads),
        );
        counter(
            out,
            MODEL_UPDATES_TOTAL,
            "Specialists replaced by a reload (one model_update each).",
            load(&self.model_updates),
        );
        counter(
            out,
            NOT_RECORDED_TOTAL,
            "Decisions refused because their event could not be queued.",
            load(&self.not_recorded),
        );
        counter(
            out,
            UNPUBLISHED_EVENTS_TOTAL,
            "Risk-decision, regime-change and model-update events that could not be queued.",
            unpublished,
        );
        if let Some(h) = history {
            gauge(
                out,
                REGIME_HISTORY_SYMBOLS,
                "Symbols whose last regime the start-up rebuild found.",
                h.symbols as f64,
            );
            gauge(
                out,
                REGIME_HISTORY_SECONDS,
                "How long the start-up rebuild of the regime history took.",
                h.elapsed.as_secs_f64(),
            );
            gauge(
                out,
                REGIME_HISTORY_DROPPED,
                "1 when the start-up regime history was dropped (the log says why).",
                if h.dropped.is_some() { 1.0 } else { 0.0 },
            );
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {v}");
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_cumulative_buckets() {
        let m = DecisionMetrics::default();
        let mut out = String::new();
        for micros in [5, 20, 20, 3_000, 2_000_000] {
            let bucket = DECIDE_BUCKETS
                .partition_point(|&b| b < Duration::from_micros(micros).as_secs_f64());
            inc(&m.decide_buckets[bucket]);
        }
        m.render(&mut out, 0, None);
        for (le, n) in [(1e-5, 1), (2.5e-5, 3), (1e-3, 3), (1e-2, 4), (1.0, 4)] {
            let line = format!("{DECIDE_SECONDS}_bucket{{le=\"{le}\"}} {n}\n");
            assert!(out.contains(&line), "{line} in\n{out}");
        }
        for tail in ["_bucket{le=\"+Inf\"} 5\n", "_count 5\n"] {
            let line = format!("{DECIDE_SECONDS}{tail}");
            assert!(out.contains(&line), "{line} in\n{out}");
        }
        assert!(
            !out.contains(REGIME_HISTORY_SYMBOLS),
            "no history, no gauge"
        );
    }
}
