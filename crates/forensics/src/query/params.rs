//! The routes' query parameters, read and checked once for every caller:
//! [`ForensicsQuery::from_params`] for the listing, [`days_param`] for the
//! statistics. A bad one is an [`InvalidParameter`] that names it and says
//! what to send.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ultracore_events::trading::Action;

use super::{ForensicsQuery, DEFAULT_DAYS, DEFAULT_LIMIT, MAX_DAYS, MAX_LIMIT};

const DAY_MS: i64 = 86_400_000;

/// A query parameter that cannot be used: which one, and what to send
/// instead. The HTTP routes answer it as a 400 problem naming `parameter`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct InvalidParameter {
    pub parameter: String,
    /// What was wrong and what a valid value looks like.
    pub detail: String,
}

impl InvalidParameter {
    fn new(parameter: &str, detail: impl Into<String>) -> Self {
        InvalidParameter {
            parameter: parameter.to_owned(),
            detail: detail.into(),
        }
    }
}

/// At most this much of a bad value is echoed back.
fn shown(value: &str) -> String {
    value.chars().take(80).collect()
}

/// The parameters by name. Unknown names and names given twice are
/// errors (a misspelt filter must not silently list everything); an
/// empty value counts as absent, as forms send unset fields.
fn by_name<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    known: &[&str],
) -> Result<BTreeMap<&'a str, &'a str>, InvalidParameter> {
    let mut out = BTreeMap::new();
    let mut seen = Vec::new();
    for (name, value) in params {
        if !known.contains(&name) {
            return Err(InvalidParameter::new(
                name,
                format!(
                    "unknown query parameter '{}': this route takes {}",
                    shown(name),
                    known.join(", ")
                ),
            ));
        }
        if seen.contains(&name) {
            return Err(InvalidParameter::new(
                name,
                format!("{name} is given more than once: give it once"),
            ));
        }
        seen.push(name);
        if !value.is_empty() {
            out.insert(name, value);
        }
    }
    Ok(out)
}

/// A time as RFC 3339 or milliseconds since the epoch.
fn time_param(name: &str, value: &str) -> Result<i64, InvalidParameter> {
    let millis = if value.bytes().all(|b| b.is_ascii_digit()) {
        value
            .parse::<i64>()
            .ok()
            .filter(|&ms| DateTime::<Utc>::from_timestamp_millis(ms).is_some())
    } else {
        DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    millis.ok_or_else(|| {
        let plus = if value.contains(' ') {
            " (a '+' in a query string reads as a space: send it as %2B, or use Z)"
        } else {
            ""
        };
        InvalidParameter::new(
            name,
            format!(
                "{name} '{}' is not a time{plus}: send RFC 3339, e.g. 2026-01-02T14:30:00Z, or milliseconds since the epoch, e.g. 1767364200000",
                shown(value)
            ),
        )
    })
}

impl ForensicsQuery {
    /// The parameters `GET /api/v1/forensics` takes.
    pub const PARAMETERS: [&'static str; 6] = [
        "symbol",
        "action",
        "start_time",
        "end_time",
        "limit",
        "offset",
    ];

    /// Reads the route's query parameters (decoded name, value pairs):
    /// `symbol`, `action` (`BUY`, `SELL` or `HOLD`), `start_time`
    /// (inclusive) and `end_time` (exclusive) as RFC 3339 or milliseconds
    /// since the epoch, `limit` (1 to 1000, default 50), `offset` (≥ 0,
    /// default 0). An empty value is the same as none; an unknown or
    /// repeated name, or a bad value, is an [`InvalidParameter`] naming it.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ForensicsQuery, InvalidParameter> {
        let p = by_name(params, &Self::PARAMETERS)?;
        let mut q = ForensicsQuery {
            symbol: p.get("symbol").map(|s| (*s).to_owned()),
            ..ForensicsQuery::default()
        };
        if let Some(a) = p.get("action") {
            q.action = Some(match *a {
                "BUY" => Action::Buy,
                "SELL" => Action::Sell,
                "HOLD" => Action::Hold,
                other => {
                    return Err(InvalidParameter::new(
                        "action",
                        format!(
                            "action '{}' is not one: send BUY, SELL or HOLD (upper case, as decisions carry it)",
                            shown(other)
                        ),
                    ))
                }
            });
        }
        q.start_ms = p
            .get("start_time")
            .map(|v| time_param("start_time", v))
            .transpose()?;
        q.end_ms = p
            .get("end_time")
            .map(|v| time_param("end_time", v))
            .transpose()?;
        if let (Some(start), Some(end)) = (q.start_ms, q.end_ms) {
            if end < start {
                return Err(InvalidParameter::new(
                    "end_time",
                    "end_time is before start_time: send an end_time at or after start_time (start_time is inclusive, end_time exclusive)",
                ));
            }
        }
        if let Some(v) = p.get("limit") {
            q.limit = v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    InvalidParameter::new(
                        "limit",
                        format!(
                            "limit '{}' is out of range: send a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
                            shown(v)
                        ),
                    )
                })?;
        }
        if let Some(v) = p.get("offset") {
            q.offset = v
                .parse::<u64>()
                .ok()
                .filter(|&n| i64::try_from(n).is_ok())
                .ok_or_else(|| {
                    InvalidParameter::new(
                        "offset",
                        format!(
                            "offset '{}' is not a count: send a whole number ≥ 0 (default 0), e.g. the offset of the last page plus its limit",
                            shown(v)
                        ),
                    )
                })?;
        }
        Ok(q)
    }
}

/// Reads the statistics routes' one parameter, `days` (1 to 365, default
/// 7); unknown or repeated names are an [`InvalidParameter`] too.
pub fn days_param<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<u32, InvalidParameter> {
    let p = by_name(params, &["days"])?;
    let Some(v) = p.get("days") else {
        return Ok(DEFAULT_DAYS);
    };
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_DAYS).contains(n))
        .ok_or_else(|| {
            InvalidParameter::new(
                "days",
                format!(
                    "days '{}' is out of range: send a whole number from 1 to {MAX_DAYS} (default {DEFAULT_DAYS})",
                    shown(v)
                ),
            )
        })
}

/// The start of a window of the last `days` days before `now_ms`.
pub fn since_days(days: u32, now_ms: i64) -> i64 {
    now_ms.saturating_sub(i64::from(days) * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Vec<(&str, &str)> {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect()
    }

    #[test]
    fn parameters_read_with_their_defaults() {
        assert_eq!(
            ForensicsQuery::from_params(params("")),
            Ok(ForensicsQuery::default())
        );
        let q = ForensicsQuery::from_params(params(
            "symbol=AAPL&action=SELL&start_time=2026-01-02T14:30:00Z&end_time=1767364200001&limit=1000&offset=7",
        ))
        .unwrap();
        assert_eq!(
            q,
            ForensicsQuery {
                symbol: Some("AAPL".into()),
                action: Some(Action::Sell),
                start_ms: Some(1_767_364_200_000),
                end_ms: Some(1_767_364_200_001),
                limit: 1000,
                offset: 7,
            }
        );
        // A time with an offset, to the millisecond; empty values are absent.
        let q = ForensicsQuery::from_params([
            ("start_time", "2026-01-02T15:30:00.250+01:00"),
            ("symbol", ""),
            ("limit", ""),
        ])
        .unwrap();
        assert_eq!(q.start_ms, Some(1_767_364_200_250));
        assert_eq!((q.symbol, q.limit), (None, DEFAULT_LIMIT));
        assert_eq!(days_param(params("")), Ok(DEFAULT_DAYS));
        assert_eq!(days_param(params("days=1")), Ok(1));
        assert_eq!(days_param(params("days=365")), Ok(365));
    }

    #[test]
    fn bad_parameters_name_themselves_and_what_to_send() {
        for (query, parameter, says) in [
            ("limit=0", "limit", "from 1 to 1000"),
            ("limit=1001", "limit", "from 1 to 1000"),
            ("limit=-1", "limit", "from 1 to 1000"),
            ("limit=ten", "limit", "from 1 to 1000"),
            ("offset=-1", "offset", "whole number ≥ 0"),
            ("offset=9223372036854775808", "offset", "whole number ≥ 0"),
            ("action=buy", "action", "BUY, SELL or HOLD"),
            ("action=SHORT", "action", "BUY, SELL or HOLD"),
            ("start_time=yesterday", "start_time", "RFC 3339"),
            ("end_time=2026-13-01T00:00:00Z", "end_time", "RFC 3339"),
            ("start_time=2026-01-02T15:30:00 01:00", "start_time", "%2B"),
            ("end_time=99999999999999999999", "end_time", "milliseconds"),
            (
                "start_time=2000&end_time=1000",
                "end_time",
                "at or after start_time",
            ),
            ("sybmol=AAPL", "sybmol", "symbol, action, start_time"),
            ("limit=5&limit=6", "limit", "more than once"),
        ] {
            let err = ForensicsQuery::from_params(params(query)).unwrap_err();
            assert_eq!(err.parameter, parameter, "{query}");
            assert!(err.detail.contains(says), "{query}: {}", err.detail);
        }
        for (query, parameter) in [
            ("days=0", "days"),
            ("days=366", "days"),
            ("days=1.5", "days"),
            ("day=7", "day"),
        ] {
            assert_eq!(days_param(params(query)).unwrap_err().parameter, parameter);
        }
    }
}
