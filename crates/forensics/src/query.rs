//! The listing and the statistics over the store, for the desk's tools
//! (`GET /api/v1/forensics?…`, `GET /api/v1/forensics/symbols/{symbol}/stats`,
//! `GET /api/v1/forensics/regimes`, see [`crate::router`]) and for callers
//! in the same process (a web console): [`StoreReader::query`],
//! [`StoreReader::symbol_stats`] and [`StoreReader::regime_stats`], and
//! the parsing of the routes' parameters ([`ForensicsQuery::from_params`],
//! [`days_param`]), so every caller validates them the same way.
//!
//! # Why these stay fast on a million rows
//!
//! Filters and aggregates read columns, never the stored decisions: the
//! symbol, action and time, since schema 3 the confidence and the
//! dominant regime, and since schema 6 the decision's latency (filled on
//! insert). Each query names its index (`INDEXED BY`), chosen by the
//! filters given, so the plan does not depend on the planner's guesses:
//! by symbol `(symbol, decided_at)`, else by time `(decided_at)`. Those
//! two are all the writer maintains (schema 7): every index not led by
//! the time takes its inserts at as many places as it has keys, and the
//! indexes of schema 5 and 6 (a covering one by symbol, one by action,
//! one by regime) cut the drain from 97,000 – 101,000 decisions/s (the
//! time index alone) to 67,000 – 71,000 (see migration 7). So the reads pay instead, in proportion to the
//! window they cover:
//! - the listing walks its index newest first (ties in one millisecond
//!   newest stored first: the rowid ends each entry) and skips `offset`
//!   matches as ids (the page is found as ids first); only the page's rows
//!   are decoded, for their top SHAP contributions. Without an action
//!   filter the count and the skipped rows come from the index alone; an
//!   action is checked on each row of the index's range (by time over the
//!   window when no symbol is given, so keep that window short);
//! - a symbol's statistics read the symbol's rows in the window;
//! - the regime statistics read every row in the window, grouped by
//!   regime (a sort of the window's regimes and confidences).
//!
//! (A unit test pins the plans.)
//!
//! Every value is bound as a parameter; only fixed clause text is
//! assembled.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value;
use rusqlite::Connection;
use serde::{Deserialize, Serialize, Serializer};
use ultracore_events::trading::Action;
use uuid::Uuid;

use crate::store::{decode_row, schema_version, ModelCache, SCHEMA_VERSION};
use crate::{Error, Result, StoreReader};

mod params;

pub use params::{days_param, since_days, InvalidParameter};

/// Records per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest `limit`.
pub const MAX_LIMIT: u32 = 1000;
/// The statistics' window unless `days` says otherwise.
pub const DEFAULT_DAYS: u32 = 7;
/// The longest statistics window.
pub const MAX_DAYS: u32 = 365;
/// SHAP contributions listed per record.
pub const TOP_CONTRIBUTIONS: usize = 3;

/// Which stored decisions to list (`GET /api/v1/forensics`), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForensicsQuery {
    /// Exactly this symbol (as published, case-sensitive).
    pub symbol: Option<String>,
    pub action: Option<Action>,
    /// Decisions made at or after this time, milliseconds since the epoch.
    pub start_ms: Option<i64>,
    /// Decisions made before this time (exclusive), milliseconds since the epoch.
    pub end_ms: Option<i64>,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
    /// Matches skipped before the page.
    pub offset: u64,
}

impl Default for ForensicsQuery {
    /// Every decision, the first page of [`DEFAULT_LIMIT`].
    fn default() -> Self {
        ForensicsQuery {
            symbol: None,
            action: None,
            start_ms: None,
            end_ms: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// Times in JSON: RFC 3339, UTC, milliseconds, as [`crate::report`] writes them.
fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn rfc3339_opt<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn time(path: &std::path::Path, millis: i64) -> Result<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(millis).ok_or_else(|| Error::Corrupt {
        path: path.display().to_string(),
        decision_id: String::new(),
        reason: format!("a decision time of {millis} ms is out of range"),
    })
}

/// One page of the listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Every stored decision the filters match, not only this page's.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    /// Newest first.
    pub records: Vec<DecisionSummary>,
}

/// A stored decision in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionSummary {
    pub decision_id: Uuid,
    pub symbol: String,
    pub action: Action,
    /// 0..1, as the decision carries it.
    pub confidence: f64,
    #[serde(serialize_with = "rfc3339")]
    pub decided_at: DateTime<Utc>,
    /// How long the decision service took to decide (the decision's
    /// `latency_us` in milliseconds); `None` for decisions published
    /// without it (by services before the field existed).
    pub latency_ms: Option<f64>,
    /// The most probable regime; `None` when the decision gives no regime
    /// probabilities.
    pub dominant_regime: Option<String>,
    /// The ensemble's largest SHAP values by magnitude, largest first (at
    /// most [`TOP_CONTRIBUTIONS`]; zeros are not listed).
    pub top_contributions: Vec<Contribution>,
    /// Where the full explanation is: `/api/v1/forensics/{decision_id}`.
    pub explanation_url: String,
}

/// One feature's part in the ensemble's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    /// The feature's value in the decision; `None` when it was missing.
    pub value: Option<f64>,
    /// Its SHAP value (margin units): positive pushes the score up.
    pub shap: f64,
}

/// Decisions of one symbol over a window (`GET /api/v1/forensics/symbols/{symbol}/stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolStats {
    pub symbol: String,
    /// The window's start (inclusive); it runs to now.
    #[serde(serialize_with = "rfc3339")]
    pub since: DateTime<Utc>,
    /// Decisions in the window.
    pub decisions: u64,
    /// Per action; every action is listed, zero or not.
    pub actions: ActionCounts,
    /// `None` when there are no decisions.
    pub avg_confidence: Option<f64>,
    /// How long the decision service took to decide, over the window's
    /// decisions that say (see [`DecisionSummary::latency_ms`]); `None`
    /// when none does.
    pub latency_ms: Spread,
    /// From the decision's time to its explanation being stored: how far
    /// the forensics service ran behind the desk.
    pub explain_lag_ms: Spread,
    #[serde(serialize_with = "rfc3339_opt")]
    pub first_decision_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_decision_at: Option<DateTime<Utc>>,
}

/// Decisions per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCounts {
    #[serde(rename = "BUY")]
    pub buy: u64,
    #[serde(rename = "SELL")]
    pub sell: u64,
    #[serde(rename = "HOLD")]
    pub hold: u64,
}

/// The mean and the 95th percentile of a duration, milliseconds; `None`
/// when there is nothing to measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub avg: Option<f64>,
    /// Nearest rank: the smallest value at least 95 % of the values are
    /// at or below.
    pub p95: Option<f64>,
}

/// The dominant regimes of the decisions over a window (`GET /api/v1/forensics/regimes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeStats {
    /// The window's start (inclusive); it runs to now.
    #[serde(serialize_with = "rfc3339")]
    pub since: DateTime<Utc>,
    /// Decisions in the window.
    pub decisions: u64,
    /// Most frequent first (then by name); the shares sum to 1.
    pub regimes: Vec<RegimeShare>,
}

/// One dominant regime's part of the decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeShare {
    /// `bull`, `bear`, `sideways`, …; `None` for decisions that give no
    /// regime probabilities (or whose decision does not read).
    pub regime: Option<String>,
    pub count: u64,
    /// `count` over the window's decisions.
    pub share: f64,
    pub avg_confidence: Option<f64>,
}

/// The index a listing walks, by the filters it has (see the module docs):
/// an action alone is checked on the rows the time index finds.
fn index_for(q: &ForensicsQuery) -> &'static str {
    if q.symbol.is_some() {
        "explanations_by_symbol"
    } else {
        "explanations_by_time"
    }
}

/// The `WHERE` clause of a listing (fixed text) and its values, in order.
fn filters(q: &ForensicsQuery) -> (String, Vec<Value>) {
    let (mut clauses, mut values) = (Vec::new(), Vec::new());
    if let Some(s) = &q.symbol {
        clauses.push("symbol = ?");
        values.push(Value::Text(s.clone()));
    }
    if let Some(a) = q.action {
        clauses.push("action = ?");
        values.push(Value::Text(a.as_str().to_owned()));
    }
    if let Some(t) = q.start_ms {
        clauses.push("decided_at >= ?");
        values.push(Value::Integer(t));
    }
    if let Some(t) = q.end_ms {
        clauses.push("decided_at < ?");
        values.push(Value::Integer(t));
    }
    if clauses.is_empty() {
        (String::new(), values)
    } else {
        (format!(" WHERE {}", clauses.join(" AND ")), values)
    }
}

fn count_sql(q: &ForensicsQuery) -> (String, Vec<Value>) {
    let (filter, values) = filters(q);
    // Unfiltered, the planner counts the smallest index; filtered, through
    // the one the listing walks.
    let sql = if filter.is_empty() {
        "SELECT count(*) FROM explanations".to_owned()
    } else {
        format!(
            "SELECT count(*) FROM explanations INDEXED BY {}{filter}",
            index_for(q)
        )
    };
    (sql, values)
}

fn page_sql(q: &ForensicsQuery) -> (String, Vec<Value>) {
    let (filter, mut values) = filters(q);
    // Ids only: the rows skipped by the offset are not decoded (nor read,
    // unless an action is checked on them).
    let sql = format!(
        "SELECT id FROM explanations INDEXED BY {}{filter} \
         ORDER BY decided_at DESC, id DESC LIMIT ? OFFSET ?",
        index_for(q)
    );
    values.push(Value::Integer(i64::from(q.limit)));
    values.push(Value::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    (sql, values)
}

/// The largest `k` values of `shap` by magnitude, largest first (ties:
/// the earlier feature), zeros left out: `(feature index, value)`.
fn top_by_magnitude(shap: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut picked: Vec<(usize, f64)> = shap
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| *v != 0.0 && !v.is_nan())
        .collect();
    picked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    picked.truncate(k);
    picked
}

fn store_err(path: &std::path::Path, operation: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    let path = path.display().to_string();
    move |source| Error::Store {
        path: path.clone(),
        operation,
        source,
    }
}

/// Refuses a store the writer has not migrated to the columns these
/// queries read (a reader cannot migrate: it opens the file read-only).
fn require_schema(conn: &Connection, path: &std::path::Path) -> Result<()> {
    let found = schema_version(conn).map_err(store_err(path, "reading the schema version"))?;
    if found < SCHEMA_VERSION {
        return Err(Error::SchemaTooOld {
            path: path.display().to_string(),
            found,
            needed: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn query(
    conn: &Connection,
    path: &std::path::Path,
    cache: &ModelCache,
    q: &ForensicsQuery,
) -> Result<Page> {
    require_schema(conn, path)?;
    // One read transaction, so the count and the page see the same rows
    // while the writer commits beside them (WAL snapshot).
    conn.execute_batch("BEGIN")
        .map_err(store_err(path, "starting a read"))?;
    let out = page(conn, path, cache, q);
    let _ = conn.execute_batch("COMMIT");
    out
}

fn page(
    conn: &Connection,
    path: &std::path::Path,
    cache: &ModelCache,
    q: &ForensicsQuery,
) -> Result<Page> {
    let (sql, values) = count_sql(q);
    let total: i64 = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(rusqlite::params_from_iter(values), |r| r.get(0)))
        .map_err(store_err(path, "counting matching decisions"))?;
    let (sql, values) = page_sql(q);
    let ids: Vec<i64> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(values), |r| r.get(0))?
                .collect()
        })
        .map_err(store_err(path, "listing decisions"))?;
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        let (id, explained_with, decision, shap): (Vec<u8>, String, Value, Vec<u8>) = conn
            .prepare_cached(
                "SELECT decision_id, explained_with, decision, shap FROM explanations WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            })
            .map_err(store_err(path, "reading a listed decision"))?;
        let decision_id = Uuid::from_slice(&id).map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            decision_id: String::new(),
            reason: format!("a decision id of {} bytes: {e}", id.len()),
        })?;
        let (set, decision, explanation) = decode_row(
            conn,
            path,
            cache,
            decision_id,
            &explained_with,
            decision,
            &shap,
        )?;
        let ensemble = explanation.ensemble();
        let row = explanation.row();
        let top_contributions = top_by_magnitude(ensemble.shap, TOP_CONTRIBUTIONS)
            .into_iter()
            .map(|(i, shap)| Contribution {
                feature: set.features[i].clone(),
                value: Some(f64::from(row[i])).filter(|v| !v.is_nan()),
                shap,
            })
            .collect();
        let dominant_regime = crate::codec::dominant_regime(
            decision.regime_probs.iter().map(|(k, v)| (k.as_str(), *v)),
        )
        .map(str::to_owned);
        records.push(DecisionSummary {
            decision_id,
            explanation_url: format!("/api/v1/forensics/{decision_id}"),
            symbol: decision.symbol,
            action: decision.action,
            confidence: decision.confidence,
            // The decision's own time, not the column's whole
            // milliseconds: the same instant the explanation shows.
            decided_at: decision.timestamp,
            latency_ms: decision.latency_us.map(millis),
            dominant_regime,
            top_contributions,
        });
    }
    Ok(Page {
        total: total as u64,
        limit: q.limit,
        offset: q.offset,
        records,
    })
}

/// Microseconds as milliseconds.
fn millis(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The position (0-based) of the nearest-rank 95th percentile among `n`
/// sorted values, `n > 0`.
fn p95_offset(n: u64) -> u64 {
    (95 * n).div_ceil(100) - 1
}

/// A symbol's window per action. These three read the window's rows
/// through the symbol index (it does not cover them, see the module docs).
const SYMBOL_GROUPS: &str = "SELECT action, count(*), count(confidence), total(confidence), \
     min(decided_at), max(decided_at), total(explained_at - decided_at), \
     count(latency_us), total(latency_us) \
     FROM explanations INDEXED BY explanations_by_symbol \
     WHERE symbol = ?1 AND decided_at >= ?2 GROUP BY action";
/// The explanation lag at a rank of a symbol's window.
const SYMBOL_P95: &str = "SELECT explained_at - decided_at AS lag \
     FROM explanations INDEXED BY explanations_by_symbol \
     WHERE symbol = ?1 AND decided_at >= ?2 ORDER BY lag LIMIT 1 OFFSET ?3";
/// The decision latency at a rank of a symbol's window, among the
/// decisions that carry one.
const SYMBOL_LATENCY_P95: &str = "SELECT latency_us \
     FROM explanations INDEXED BY explanations_by_symbol \
     WHERE symbol = ?1 AND decided_at >= ?2 AND latency_us IS NOT NULL \
     ORDER BY latency_us LIMIT 1 OFFSET ?3";

fn symbol_stats(
    conn: &Connection,
    path: &std::path::Path,
    symbol: &str,
    since_ms: i64,
) -> Result<SymbolStats> {
    require_schema(conn, path)?;
    conn.execute_batch("BEGIN")
        .map_err(store_err(path, "starting a read"))?;
    let out = symbol_stats_in(conn, path, symbol, since_ms);
    let _ = conn.execute_batch("COMMIT");
    out
}

fn symbol_stats_in(
    conn: &Connection,
    path: &std::path::Path,
    symbol: &str,
    since_ms: i64,
) -> Result<SymbolStats> {
    type Group = (
        String,
        i64,
        i64,
        f64,
        Option<i64>,
        Option<i64>,
        f64,
        i64,
        f64,
    );
    let groups: Vec<Group> = conn
        .prepare_cached(SYMBOL_GROUPS)
        .and_then(|mut s| {
            s.query_map(rusqlite::params![symbol, since_ms], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?
            .collect()
        })
        .map_err(store_err(path, "reading a symbol's statistics"))?;
    let mut actions = ActionCounts::default();
    let (mut n, mut rated, mut confidence, mut lag) = (0u64, 0u64, 0.0f64, 0.0f64);
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    let (mut timed, mut latency) = (0u64, 0.0f64);
    for (action, count, with_confidence, sum, min, max, lag_sum, with_latency, latency_sum) in
        groups
    {
        let count = count as u64;
        match action.as_str() {
            "BUY" => actions.buy += count,
            "SELL" => actions.sell += count,
            "HOLD" => actions.hold += count,
            // The writer stores only these three; anything else is counted
            // in the total but in no action.
            _ => {}
        }
        n += count;
        rated += with_confidence as u64;
        confidence += sum;
        lag += lag_sum;
        timed += with_latency as u64;
        latency += latency_sum;
        first = first.into_iter().chain(min).min();
        last = last.into_iter().chain(max).max();
    }
    // The value at the nearest-rank p95 of `of` values, by `sql`.
    let p95 = |sql: &str, of: u64| -> Result<Option<i64>> {
        if of == 0 {
            return Ok(None);
        }
        conn.prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params![symbol, since_ms, p95_offset(of) as i64],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(Some)
            .map_err(store_err(path, "reading a symbol's statistics"))
    };
    Ok(SymbolStats {
        symbol: symbol.to_owned(),
        since: time(path, since_ms)?,
        decisions: n,
        actions,
        avg_confidence: (rated > 0).then(|| confidence / rated as f64),
        latency_ms: Spread {
            avg: (timed > 0).then(|| latency / timed as f64 / 1000.0),
            p95: p95(SYMBOL_LATENCY_P95, timed)?.map(|us| millis(us as u64)),
        },
        explain_lag_ms: Spread {
            avg: (n > 0).then(|| lag / n as f64),
            p95: p95(SYMBOL_P95, n)?.map(|ms| ms as f64),
        },
        first_decision_at: first.map(|t| time(path, t)).transpose()?,
        last_decision_at: last.map(|t| time(path, t)).transpose()?,
    })
}

/// The window's decisions per dominant regime (NULL: none), through the
/// time index: every row of the window is read, and grouped by a sort of
/// its regime and confidence.
const REGIME_GROUPS: &str =
    "SELECT dominant_regime, count(*), count(confidence), total(confidence) \
     FROM explanations INDEXED BY explanations_by_time WHERE decided_at >= ?1 \
     GROUP BY dominant_regime";

fn regime_stats(conn: &Connection, path: &std::path::Path, since_ms: i64) -> Result<RegimeStats> {
    require_schema(conn, path)?;
    conn.execute_batch("BEGIN")
        .map_err(store_err(path, "starting a read"))?;
    let out = regime_stats_in(conn, path, since_ms);
    let _ = conn.execute_batch("COMMIT");
    out
}

fn regime_stats_in(
    conn: &Connection,
    path: &std::path::Path,
    since_ms: i64,
) -> Result<RegimeStats> {
    let groups: Vec<(Option<String>, i64, i64, f64)> = conn
        .prepare_cached(REGIME_GROUPS)
        .and_then(|mut s| {
            s.query_map([since_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
        .map_err(store_err(path, "reading the regime statistics"))?;
    let n: u64 = groups.iter().map(|g| g.1 as u64).sum();
    let mut regimes: Vec<RegimeShare> = groups
        .into_iter()
        .map(|(regime, count, rated, sum)| RegimeShare {
            regime,
            count: count as u64,
            share: count as f64 / n as f64,
            avg_confidence: (rated > 0).then(|| sum / rated as f64),
        })
        .collect();
    // Most frequent first; then by name, a decision without a regime last.
    regimes.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (a.regime.is_none(), &a.regime).cmp(&(b.regime.is_none(), &b.regime)))
    });
    Ok(RegimeStats {
        since: time(path, since_ms)?,
        decisions: n,
        regimes,
    })
}

impl StoreReader {
    /// A page of the stored decisions `q` matches, newest first, with how
    /// many match in all; the count and the page are read from one
    /// snapshot. A corrupt row in the page is an [`Error::Corrupt`]; a store
    /// the writer has not migrated yet, [`Error::SchemaTooOld`]. Blocking:
    /// call it from a blocking thread in async code.
    pub fn query(&self, q: &ForensicsQuery) -> Result<Page> {
        self.with_conn(|conn, path, cache| query(conn, path, cache, q))
    }

    /// The decisions on `symbol` made at or after `since_ms` (milliseconds
    /// since the epoch; see [`since_days`]): counts per action, average
    /// confidence, decision latency (mean and p95 over the decisions that
    /// carry one), explanation lag, first and last decision time. An
    /// unknown symbol has zero decisions. Blocking.
    pub fn symbol_stats(&self, symbol: &str, since_ms: i64) -> Result<SymbolStats> {
        self.with_conn(|conn, path, _| symbol_stats(conn, path, symbol, since_ms))
    }

    /// How the decisions made at or after `since_ms` split by dominant
    /// regime, with the average confidence of each. Blocking.
    pub fn regime_stats(&self, since_ms: i64) -> Result<RegimeStats> {
        self.with_conn(|conn, path, _| regime_stats(conn, path, since_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_contributions_are_the_largest_magnitudes() {
        assert_eq!(
            top_by_magnitude(&[0.1, -0.5, 0.0, 0.3, -0.3, 0.05], 3),
            [(1, -0.5), (3, 0.3), (4, -0.3)]
        );
        assert_eq!(top_by_magnitude(&[0.0, 0.0], 3), []);
        assert_eq!(top_by_magnitude(&[0.2], 3), [(0, 0.2)]);
    }

    #[test]
    fn the_nearest_rank_p95() {
        assert_eq!(p95_offset(1), 0);
        assert_eq!(p95_offset(2), 1);
        assert_eq!(p95_offset(20), 18);
        assert_eq!(p95_offset(21), 19);
        assert_eq!(p95_offset(100), 94);
        assert_eq!(p95_offset(101), 95);
    }

    /// Every listing, count and statistic walks one of the writer's two
    /// indexes, by symbol or by time, over its range: no full-table scan,
    /// and the listing never sorts (the index gives its order). Without an
    /// action filter the listing and its count read the index alone.
    #[test]
    fn every_query_walks_an_index() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("forensics.sqlite");
        drop(crate::ForensicsStore::open(&path, "trading_decisions")?);
        let conn = Connection::open(&path)?;
        let plan = |sql: &str, values: Vec<Value>| -> rusqlite::Result<String> {
            let mut s = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows: Vec<String> = s
                .query_map(rusqlite::params_from_iter(values), |r| r.get(3))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows.join(" | "))
        };
        let mut checked = 0;
        for symbol in [None, Some("AAPL".to_owned())] {
            for action in [None, Some(Action::Buy)] {
                for start_ms in [None, Some(1)] {
                    for end_ms in [None, Some(2)] {
                        let q = ForensicsQuery {
                            symbol: symbol.clone(),
                            action,
                            start_ms,
                            end_ms,
                            ..ForensicsQuery::default()
                        };
                        let index = index_for(&q);
                        let walked = match action {
                            None => format!("COVERING INDEX {index}"),
                            Some(_) => format!("USING INDEX {index}"),
                        };
                        let (sql, values) = page_sql(&q);
                        let p = plan(&sql, values)?;
                        assert!(p.contains(&walked), "{q:?}: {p}");
                        assert!(!p.contains("TEMP B-TREE"), "{q:?}: {p}");
                        let (sql, values) = count_sql(&q);
                        let p = plan(&sql, values)?;
                        if q == (ForensicsQuery {
                            limit: q.limit,
                            ..Default::default()
                        }) {
                            assert!(p.contains("COVERING INDEX"), "{q:?}: {p}");
                        } else {
                            assert!(p.contains(&walked), "{q:?}: {p}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 16);
        for sql in [SYMBOL_GROUPS, SYMBOL_P95, SYMBOL_LATENCY_P95] {
            let mut values = vec![Value::Text("AAPL".into()), Value::Integer(0)];
            if sql != SYMBOL_GROUPS {
                values.push(Value::Integer(3));
            }
            let p = plan(sql, values)?;
            assert!(
                p.contains("USING INDEX explanations_by_symbol (symbol=? AND decided_at>?)"),
                "{p}"
            );
        }
        let p = plan(REGIME_GROUPS, vec![Value::Integer(0)])?;
        assert!(
            p.contains("USING INDEX explanations_by_time (decided_at>?)"),
            "{p}"
        );
        Ok(())
    }
}
