//! Each symbol's last regime, rebuilt from the log when the service starts.
//!
//! A `regime_change` is published when a decision's most probable regime
//! differs from the one of the symbol's previous decision. The previous
//! decision may have been made by an earlier run, so at start the service
//! folds what the log says into "the last regime per symbol":
//!
//! - `regime_changes`, read from the beginning. It holds only changes, so
//!   it stays small, and its latest event per symbol gives the regime ever
//!   since — unless a change went unpublished (a decision made when no
//!   history was known, an event that could not be queued).
//! - The tail of `trading_decisions`: decisions whose record time is within
//!   [`RegimeHistoryOptions::decisions_lookback`]. The latest decision per
//!   symbol is the truth (its `regime_probs` give the regime exactly as the
//!   engine chose it) and it covers symbols whose regime never changed. The
//!   whole topic is not read: it grows with every decision.
//! - The decision spool's records not yet forwarded (an earlier run whose
//!   log was down): the newest decisions of all, which the log does not
//!   have yet.
//!
//! Per symbol the latest fact wins, by event time; at the same millisecond a
//! decision wins over a change (a change is published with its decision's
//! time and says the same), and within one topic the later record wins
//! (one symbol, one partition: log order).
//!
//! Start-up cost is bounded by [`RegimeHistoryOptions::timeout`]; how long
//! it took is logged. If `regime_changes` or the spool cannot be read to
//! their end in time, the history is dropped and the service starts as
//! before it existed (the first decision per symbol sets the baseline and
//! publishes no change): a partial read could hold a stale regime and make
//! the service publish a change that did not happen. A decisions tail cut
//! short is kept: what it did read is true as of its time, and any later
//! change is on `regime_changes`, which was read in full.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::time::Instant;
use ultracore_events::trading::{DECISIONS_TOPIC, REGIME_CHANGES_TOPIC};
use ultracore_log::{read_to_end, EventLog, ReadToEnd, Record, Seek};
use ultracore_log_embedded::EmbeddedLog;
use ultracore_spool::{SpooledEmitter, SPOOL_TOPIC, TOPIC_HEADER};

use crate::Regime;

/// How [`crate::DecisionService::start`] rebuilds the regime history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegimeHistoryOptions {
    /// How far back `trading_decisions` is read (by record time). A symbol
    /// whose regime never changed and that had no decision in this window
    /// starts without a baseline.
    pub decisions_lookback: Duration,
    /// The most the whole rebuild may take.
    pub timeout: Duration,
    /// On a time-bounded read, how long the consumer waits without a record,
    /// once every partition is assigned, before it takes the partitions it
    /// has not heard from as holding nothing in the window.
    pub idle: Duration,
}

impl Default for RegimeHistoryOptions {
    fn default() -> Self {
        RegimeHistoryOptions {
            decisions_lookback: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            idle: Duration::from_secs(1),
        }
    }
}

/// What the start-up rebuild found, for logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegimeHistory {
    /// Symbols with a known last regime.
    pub symbols: usize,
    /// `regime_change` records read.
    pub regime_changes_read: u64,
    /// `trading_decision` records read (the tail).
    pub decisions_read: u64,
    /// Unforwarded spool records read.
    pub spooled_read: u64,
    /// How long the rebuild took.
    pub elapsed: Duration,
    /// Why the history was not used, when it was not.
    pub dropped: Option<String>,
}

/// A symbol's most probable regime and its probabilities at its last decision.
pub(crate) type LastRegime = (Regime, BTreeMap<String, f64>);

/// One fact about a symbol's regime, and when it became true.
#[derive(Debug, Clone, PartialEq)]
struct Fact {
    /// Event time, milliseconds since the epoch.
    at: i64,
    /// At the same time a decision (1) wins over a change (0).
    rank: u8,
    regime: Regime,
    probs: BTreeMap<String, f64>,
}

/// The latest fact per symbol.
#[derive(Debug, Default)]
struct Fold {
    facts: HashMap<String, Fact>,
}

impl Fold {
    /// Keeps `fact` unless the symbol has a later one. Ties go to the newer
    /// offer, so within one topic the later record wins.
    fn offer(&mut self, symbol: String, fact: Fact) {
        match self.facts.get(&symbol) {
            Some(old) if (old.at, old.rank) > (fact.at, fact.rank) => {}
            _ => {
                self.facts.insert(symbol, fact);
            }
        }
    }

    fn merge(&mut self, other: Fold) {
        for (symbol, fact) in other.facts {
            self.offer(symbol, fact);
        }
    }

    /// Folds in a record of `topic` (`trading_decisions` or
    /// `regime_changes`); anything else, or a record that does not decode,
    /// is skipped: another producer's events are not ours to judge.
    fn record(&mut self, topic: &str, record: &Record) {
        let decoded = match topic {
            DECISIONS_TOPIC => decision_fact(&record.value),
            REGIME_CHANGES_TOPIC => change_fact(&record.value),
            _ => return,
        };
        match decoded {
            Some((symbol, fact)) => self.offer(symbol, fact),
            None => tracing::debug!(
                topic,
                partition = record.partition,
                offset = record.offset,
                "regime history: skipping a record that is not a decision event"
            ),
        }
    }

    fn into_regimes(self) -> HashMap<String, LastRegime> {
        self.facts
            .into_iter()
            .map(|(s, f)| (s, (f.regime, f.probs)))
            .collect()
    }
}

/// The envelope fields the fold needs; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Envelope<P> {
    event_type: String,
    payload: P,
}

#[derive(Deserialize)]
struct DecisionPayload {
    symbol: String,
    timestamp: DateTime<Utc>,
    regime_probs: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct ChangePayload {
    symbol: String,
    timestamp: DateTime<Utc>,
    new_regime: String,
    new_probs: BTreeMap<String, f64>,
}

fn decision_fact(value: &[u8]) -> Option<(String, Fact)> {
    let e: Envelope<DecisionPayload> = serde_json::from_slice(value).ok()?;
    if e.event_type != "trading_decision" {
        return None;
    }
    let regime = most_probable(&e.payload.regime_probs)?;
    Some((
        e.payload.symbol,
        Fact {
            at: e.payload.timestamp.timestamp_millis(),
            rank: 1,
            regime,
            probs: e.payload.regime_probs,
        },
    ))
}

fn change_fact(value: &[u8]) -> Option<(String, Fact)> {
    let e: Envelope<ChangePayload> = serde_json::from_slice(value).ok()?;
    if e.event_type != "regime_change" {
        return None;
    }
    let regime = Regime::from_name(&e.payload.new_regime)?;
    Some((
        e.payload.symbol,
        Fact {
            at: e.payload.timestamp.timestamp_millis(),
            rank: 0,
            regime,
            probs: e.payload.new_probs,
        },
    ))
}

/// The most probable regime of a `regime_probs` map, with the engine's
/// rule for ties (the earlier of bull, bear, sideways; see
/// [`crate::RegimeProbs::most_probable`]): the decision's own regime.
fn most_probable(probs: &BTreeMap<String, f64>) -> Option<Regime> {
    let mut best: Option<(Regime, f64)> = None;
    for r in Regime::ALL {
        let Some(&p) = probs.get(r.as_str()) else {
            continue;
        };
        if best.is_none_or(|(_, b)| p > b) {
            best = Some((r, p));
        }
    }
    best.map(|(r, _)| r)
}

/// The consumer groups of the start-up reads are named after this.
const HISTORY_GROUP: &str = "decisions-regime-history";

/// Reads the log (and the spool, when given) and returns each symbol's last
/// regime with a report. Never fails: what cannot be read is reported in
/// [`RegimeHistory::dropped`] and the history is then empty.
pub(crate) async fn rebuild<L: EventLog>(
    log: &L,
    spool: Option<&EmbeddedLog>,
    options: &RegimeHistoryOptions,
) -> (HashMap<String, LastRegime>, RegimeHistory) {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let since = Utc::now().timestamp_millis()
        - i64::try_from(options.decisions_lookback.as_millis()).unwrap_or(i64::MAX / 2);

    let mut changes = Fold::default();
    let mut decisions = Fold::default();
    let mut spooled = Fold::default();
    let read_changes = read_to_end(
        log,
        HISTORY_GROUP,
        REGIME_CHANGES_TOPIC,
        Seek::Beginning,
        deadline,
        options.idle,
        |r| changes.record(REGIME_CHANGES_TOPIC, r),
    );
    let read_decisions = read_to_end(
        log,
        HISTORY_GROUP,
        DECISIONS_TOPIC,
        Seek::Timestamp(since),
        deadline,
        options.idle,
        |r| decisions.record(DECISIONS_TOPIC, r),
    );
    let read_spool = async {
        let Some(spool) = spool else {
            return Ok(ReadToEnd {
                records: 0,
                complete: true,
            });
        };
        let from = SpooledEmitter::first_unforwarded(spool).await?;
        read_to_end(
            spool,
            HISTORY_GROUP,
            SPOOL_TOPIC,
            Seek::Offset(from),
            deadline,
            options.idle,
            |r| {
                let topic = r.header(TOPIC_HEADER).unwrap_or_default();
                spooled.record(&String::from_utf8_lossy(topic), r);
            },
        )
        .await
    };
    // Concurrently: on Kafka each read starts with a consumer group join.
    let (c, d, s) = tokio::join!(read_changes, read_decisions, read_spool);

    let mut report = RegimeHistory::default();
    let mut problems = Vec::new();
    let mut note =
        |what: &str, result: ultracore_log::Result<ReadToEnd>, required: bool| match result {
            Ok(read) => {
                if !read.complete {
                    problems.push((
                        required,
                        format!(
                            "{what} was not read to its end within {} ms ({} records read)",
                            options.timeout.as_millis(),
                            read.records
                        ),
                    ));
                }
                read.records
            }
            Err(e) => {
                problems.push((required, format!("{what} could not be read: {e}")));
                0
            }
        };
    report.regime_changes_read = note(REGIME_CHANGES_TOPIC, c, true);
    report.decisions_read = note(DECISIONS_TOPIC, d, false);
    report.spooled_read = note("the decision spool", s, true);
    report.elapsed = started.elapsed();

    let fatal: Vec<&str> = problems
        .iter()
        .filter(|(required, _)| *required)
        .map(|(_, p)| p.as_str())
        .collect();
    if !fatal.is_empty() {
        let reason = fatal.join("; ");
        tracing::warn!(
            elapsed_ms = report.elapsed.as_millis() as u64,
            reason = %reason,
            "regime history not rebuilt: the first decision per symbol sets the baseline and publishes no regime_change; raise the timeout if the log is slow"
        );
        report.dropped = Some(reason);
        return (HashMap::new(), report);
    }
    for (_, p) in &problems {
        tracing::warn!(problem = %p, "regime history: the decisions tail was cut short; using what was read with every regime change");
    }
    changes.merge(decisions);
    changes.merge(spooled);
    let regimes = changes.into_regimes();
    report.symbols = regimes.len();
    tracing::info!(
        symbols = report.symbols,
        regime_changes = report.regime_changes_read,
        decisions = report.decisions_read,
        spooled = report.spooled_read,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "regime history rebuilt from the log"
    );
    (regimes, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probs(bull: f64, bear: f64, sideways: f64) -> BTreeMap<String, f64> {
        [("bull", bull), ("bear", bear), ("sideways", sideways)]
            .map(|(k, v)| (k.to_owned(), v))
            .into()
    }

    fn fact(at: i64, rank: u8, regime: Regime) -> Fact {
        Fact {
            at,
            rank,
            regime,
            probs: BTreeMap::new(),
        }
    }

    #[test]
    fn ties_go_to_the_earlier_regime_as_in_the_engine() {
        assert_eq!(most_probable(&probs(0.2, 0.5, 0.3)), Some(Regime::Bear));
        assert_eq!(most_probable(&probs(0.4, 0.4, 0.2)), Some(Regime::Bull));
        assert_eq!(most_probable(&probs(0.2, 0.4, 0.4)), Some(Regime::Bear));
        assert_eq!(most_probable(&BTreeMap::new()), None);
        let engine_probs = crate::RegimeProbs {
            probs: [0.2, 0.4, 0.4],
            trend: 0.0,
            stress: 0.0,
        };
        assert_eq!(
            most_probable(&engine_probs.to_map()),
            Some(engine_probs.most_probable())
        );
    }

    #[test]
    fn the_latest_fact_wins_and_a_decision_wins_a_tie() {
        let mut fold = Fold::default();
        fold.offer("X".into(), fact(10, 0, Regime::Bear));
        fold.offer("X".into(), fact(5, 1, Regime::Bull));
        assert_eq!(fold.facts["X"].regime, Regime::Bear, "older decision");
        fold.offer("X".into(), fact(10, 1, Regime::Sideways));
        assert_eq!(fold.facts["X"].regime, Regime::Sideways, "same time");
        fold.offer("X".into(), fact(10, 0, Regime::Bull));
        assert_eq!(fold.facts["X"].regime, Regime::Sideways, "change loses");
        fold.offer("X".into(), fact(10, 1, Regime::Bear));
        assert_eq!(fold.facts["X"].regime, Regime::Bear, "later record");
    }

    #[test]
    fn other_events_are_skipped() {
        let record = |value: &str| Record {
            topic: DECISIONS_TOPIC.into(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: None,
            value: value.as_bytes().to_vec(),
            headers: vec![],
        };
        let mut fold = Fold::default();
        fold.record(DECISIONS_TOPIC, &record("not json"));
        fold.record(
            DECISIONS_TOPIC,
            &record(r#"{"event_type": "other", "payload": {"symbol": "X", "timestamp": "2026-01-01T00:00:00Z", "regime_probs": {"bull": 1}}}"#),
        );
        assert!(fold.facts.is_empty());
        fold.record(
            DECISIONS_TOPIC,
            &record(r#"{"event_type": "trading_decision", "payload": {"symbol": "X", "timestamp": "2026-01-01T00:00:00Z", "regime_probs": {"bull": 0.1, "bear": 0.7, "sideways": 0.2}, "features": {"rsi_14": 1}}}"#),
        );
        assert_eq!(fold.facts["X"].regime, Regime::Bear);
    }
}
