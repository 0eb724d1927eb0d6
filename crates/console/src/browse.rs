//! The message browser: `GET /api/v1/topics/{name}/messages`.
//!
//! Reads a topic from an offset or a time through a consumer group of its
//! own that never commits, and returns up to `limit` records with their
//! envelopes decoded, optionally only one partition, one key, or those
//! whose JSON matches a path filter:
//!
//! - `partition=N`, `offset=N` (in each partition read; default: the
//!   last `limit` records of each), or `from_time` (RFC 3339 or ms);
//! - `key=K`: records with that key;
//! - `filter=$.payload.portfolio_id=pf-1` (equals) or
//!   `filter=$.payload.note~=late` (contains) or `filter=$.causation_id`
//!   (present): a path of `.name` and `[index]` steps from `$`, the
//!   record's JSON value.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use ultracore_http::Problem;
use ultracore_log::{Consumer, ConsumerOptions, EventLog, Record, Seek, StartFrom};

use crate::Console;

/// Most records one request returns.
pub const MAX_LIMIT: usize = 500;
/// Longest a read waits for records.
const READ_FOR: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
pub(crate) struct BrowseQuery {
    partition: Option<u32>,
    offset: Option<u64>,
    from_time: Option<String>,
    key: Option<String>,
    filter: Option<String>,
    limit: Option<usize>,
}

/// One step of a path filter.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
}

/// What the filter compares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Present,
    Equals(String),
    Contains(String),
}

/// A parsed `filter`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    steps: Vec<Step>,
    test: Test,
}

impl Filter {
    pub(crate) fn parse(text: &str) -> Result<Filter, String> {
        let (path, test) = if let Some((p, v)) = text.split_once("~=") {
            (p, Test::Contains(v.to_owned()))
        } else if let Some((p, v)) = text.split_once('=') {
            (p, Test::Equals(v.to_owned()))
        } else {
            (text, Test::Present)
        };
        let path = path.trim();
        let rest = path
            .strip_prefix('$')
            .ok_or("a filter path starts with $ (e.g. $.payload.portfolio_id=pf-1)")?;
        let mut steps = Vec::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if n == '.' || n == '[' {
                            break;
                        }
                        name.push(n);
                        chars.next();
                    }
                    if name.is_empty() {
                        return Err("an empty name in the filter path".into());
                    }
                    steps.push(Step::Field(name));
                }
                '[' => {
                    let mut digits = String::new();
                    for n in chars.by_ref() {
                        if n == ']' {
                            break;
                        }
                        digits.push(n);
                    }
                    let i = digits
                        .parse()
                        .map_err(|_| format!("'[{digits}]' is not an array index"))?;
                    steps.push(Step::Index(i));
                }
                other => return Err(format!("unexpected '{other}' in the filter path")),
            }
        }
        if steps.len() > 32 {
            return Err("a filter path has at most 32 steps".into());
        }
        Ok(Filter { steps, test })
    }

    pub(crate) fn matches(&self, value: &Value) -> bool {
        let mut v = value;
        for s in &self.steps {
            let next = match s {
                Step::Field(f) => v.get(f.as_str()),
                Step::Index(i) => v.get(*i),
            };
            match next {
                Some(n) => v = n,
                None => return false,
            }
        }
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &self.test {
            Test::Present => !v.is_null(),
            Test::Equals(want) => text == *want,
            Test::Contains(part) => text.contains(part.as_str()),
        }
    }
}

fn parse_time(s: &str) -> Result<i64, Problem> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono_like(s).ok_or_else(|| {
        Problem::bad_request(
            "invalid_query",
            format!(
                "from_time '{}' is not a time: use RFC 3339 (2026-12-06T08:00:00Z) or milliseconds since the epoch",
                s.chars().take(40).collect::<String>()
            ),
        )
    })
}

/// RFC 3339 in UTC (`Z` or `+00:00`), to milliseconds; enough for the
/// browser's form without a date crate here.
fn chrono_like(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', ' '])?;
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (h, mi, sec) = (
        t.next()?.ok()?,
        t.next()?.ok()?,
        t.next().unwrap_or(Ok(0)).ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

fn decode(r: &Record) -> Value {
    let key = r
        .key
        .as_deref()
        .map(|k| String::from_utf8_lossy(k).into_owned());
    let value: Value = serde_json::from_slice(&r.value).unwrap_or_else(|_| {
        Value::String(
            String::from_utf8_lossy(&r.value)
                .chars()
                .take(4096)
                .collect(),
        )
    });
    let envelope = ultracore_log::RawEnvelope::from_bytes(&r.value).is_ok();
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|h| {
            (
                h.key.clone(),
                Value::String(String::from_utf8_lossy(&h.value).into_owned()),
            )
        })
        .collect();
    json!({
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": key,
        "headers": headers,
        "envelope": envelope,
        "value": value,
    })
}

pub(crate) async fn messages<L: EventLog>(
    State(c): State<Arc<Console<L>>>,
    Path(name): Path<String>,
    Query(q): Query<BrowseQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Problem::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let filter = q
        .filter
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(Filter::parse)
        .transpose()
        .map_err(|e| Problem::bad_request("invalid_query", e))?;
    let info = c.log.describe_topic(&name).await.map_err(|e| match e {
        ultracore_log::Error::UnknownTopic(_) => Problem::not_found(format!(
            "topic '{}' does not exist",
            name.chars().take(100).collect::<String>()
        )),
        other => Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "log_unavailable",
            format!("the log could not describe the topic: {other}"),
        ),
    })?;
    if let Some(p) = q.partition {
        if !info.partitions.iter().any(|x| x.partition == p) {
            return Err(Problem::bad_request(
                "invalid_query",
                format!(
                    "partition {p} does not exist: the topic has {}",
                    info.partitions.len()
                ),
            ));
        }
    }
    let from_time = q.from_time.as_deref().map(parse_time).transpose()?;
    // Where to start: an offset, a time, or the last `limit` of each partition.
    let seek = match (q.offset, from_time) {
        (Some(o), _) => Seek::Offset(o),
        (None, Some(t)) => Seek::Timestamp(t),
        (None, None) => {
            let latest = info
                .partitions
                .iter()
                .filter(|p| q.partition.is_none_or(|x| x == p.partition))
                .map(|p| {
                    p.high_watermark
                        .saturating_sub(limit as u64)
                        .max(p.log_start_offset)
                })
                .min()
                .unwrap_or(0);
            Seek::Offset(latest)
        }
    };
    let ends: std::collections::BTreeMap<u32, u64> = info
        .partitions
        .iter()
        .map(|p| (p.partition, p.high_watermark))
        .collect();
    let mut consumer = c
        .log
        .consumer(
            ConsumerOptions::new(format!("console-browse-{}", uuid_like()), [name.clone()])
                .start(StartFrom::Earliest),
        )
        .await
        .map_err(unavailable)?;
    consumer.seek(seek).await.map_err(unavailable)?;
    let deadline = tokio::time::Instant::now() + READ_FOR;
    let mut out = Vec::new();
    let mut scanned = 0u64;
    let mut done: std::collections::BTreeSet<u32> = std::collections::BTreeSet::new();
    while out.len() < limit && tokio::time::Instant::now() < deadline {
        let batch = consumer
            .poll(512, Duration::from_millis(200))
            .await
            .map_err(unavailable)?;
        for r in &batch {
            scanned += 1;
            if ends.get(&r.partition).is_some_and(|hw| r.offset + 1 >= *hw) {
                done.insert(r.partition);
            }
            if q.partition.is_some_and(|p| p != r.partition) {
                continue;
            }
            if let Some(k) = &q.key {
                if r.key.as_deref() != Some(k.as_bytes()) {
                    continue;
                }
            }
            let decoded = decode(r);
            if let Some(f) = &filter {
                if !f.matches(&decoded["value"]) {
                    continue;
                }
            }
            if out.len() < limit {
                out.push(decoded);
            }
        }
        let wanted: Vec<u32> = ends
            .iter()
            .filter(|(p, hw)| q.partition.is_none_or(|x| x == **p) && **hw > 0)
            .map(|(p, _)| *p)
            .collect();
        if batch.is_empty() && wanted.iter().all(|p| done.contains(p)) {
            break;
        }
        if batch.is_empty() && wanted.is_empty() {
            break;
        }
    }
    Ok(Json(json!({
        "topic": name,
        "records": out,
        "returned": out.len(),
        "scanned": scanned,
    })))
}

fn unavailable(e: ultracore_log::Error) -> Problem {
    Problem::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "log_unavailable",
        format!("reading the topic failed: {e}"),
    )
}

/// A unique-enough suffix for the browser's throwaway groups.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        ultracore_log::now_millis(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_filters_match_fields_indices_and_substrings() {
        let v = json!({"payload": {"portfolio_id": "pf-1", "weights": [{"isin": "US1"}], "n": 3}, "causation_id": null});
        assert!(Filter::parse("$.payload.portfolio_id=pf-1")
            .unwrap()
            .matches(&v));
        assert!(!Filter::parse("$.payload.portfolio_id=pf-2")
            .unwrap()
            .matches(&v));
        assert!(Filter::parse("$.payload.weights[0].isin=US1")
            .unwrap()
            .matches(&v));
        assert!(Filter::parse("$.payload.n=3").unwrap().matches(&v));
        assert!(Filter::parse("$.payload.portfolio_id~=pf")
            .unwrap()
            .matches(&v));
        assert!(Filter::parse("$.payload").unwrap().matches(&v));
        assert!(!Filter::parse("$.causation_id").unwrap().matches(&v));
        assert!(!Filter::parse("$.missing.deeper").unwrap().matches(&v));
        assert!(Filter::parse("payload.x")
            .unwrap_err()
            .contains("starts with $"));
        assert!(Filter::parse("$.a[x]").is_err());
        assert!(Filter::parse("$..a").is_err());
    }

    #[test]
    fn times_read_as_rfc3339_or_milliseconds() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("2026-12-06T08:00:00.5Z").unwrap(),
            1_796_544_000_500
        );
        assert_eq!(
            parse_time("2000-03-01T00:00:00+00:00").unwrap(),
            951_868_800_000
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-01T00:00:00Z").is_err());
    }
}
