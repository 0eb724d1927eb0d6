//! The console's JSON API: topology, architecture (and its diagram),
//! topics, groups.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use ultracore_http::Problem;
use ultracore_log::{EventLog, Retention, TopicInfo};

use crate::diagram::{layout, Direction};
use crate::topology::EdgeKind;
use crate::Console;

type Shared<L> = State<Arc<Console<L>>>;

pub(crate) async fn topology<L: EventLog>(State(c): Shared<L>) -> Json<crate::Topology> {
    Json(c.topology())
}

pub(crate) async fn architecture<L: EventLog>(State(c): Shared<L>) -> Json<crate::Architecture> {
    Json(c.architecture())
}

#[derive(Debug, Deserialize)]
pub(crate) struct DiagramQuery {
    /// Comma-separated layers (default all).
    layers: Option<String>,
    /// `td` (default) or `lr`.
    direction: Option<String>,
}

impl DiagramQuery {
    pub(crate) fn from_parts(layers: Option<String>, direction: Option<String>) -> Self {
        DiagramQuery { layers, direction }
    }

    pub(crate) fn parse(&self) -> Result<(Vec<String>, Direction), Problem> {
        let layers: Vec<String> = self
            .layers
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = layers
            .iter()
            .find(|l| !crate::architecture::LAYERS.contains(&l.as_str()))
        {
            return Err(Problem::bad_request(
                "invalid_query",
                format!(
                    "layer '{}' is unknown: choose from {}",
                    bad.chars().take(40).collect::<String>(),
                    crate::architecture::LAYERS.join(", ")
                ),
            ));
        }
        let direction = match self.direction.as_deref() {
            None => Direction::TopDown,
            Some(d) => Direction::parse(d).ok_or_else(|| {
                Problem::bad_request(
                    "invalid_query",
                    "direction must be td (top-down) or lr (left-right)",
                )
            })?,
        };
        Ok((layers, direction))
    }
}

fn download(body: String, content_type: &'static str, file: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(file));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    r
}

/// The architecture diagram of the query's layers and direction.
fn laid_out<L: EventLog>(
    c: &Console<L>,
    q: &DiagramQuery,
) -> Result<crate::diagram::Layout, Problem> {
    let (layers, direction) = q.parse()?;
    Ok(layout(&c.architecture().diagram(&layers), direction))
}

pub(crate) async fn diagram_svg<L: EventLog>(
    State(c): Shared<L>,
    Query(q): Query<DiagramQuery>,
) -> Result<Response, Problem> {
    Ok(download(
        laid_out(&c, &q)?.to_svg_document("UltraCore architecture"),
        "image/svg+xml",
        "inline; filename=\"ultracore-architecture.svg\"",
    ))
}

pub(crate) async fn diagram_drawio<L: EventLog>(
    State(c): Shared<L>,
    Query(q): Query<DiagramQuery>,
) -> Result<Response, Problem> {
    Ok(download(
        laid_out(&c, &q)?.to_drawio("UltraCore architecture"),
        "application/vnd.jgraph.mxfile",
        "attachment; filename=\"ultracore-architecture.drawio\"",
    ))
}

/// A topic as `/api/v1/topics` lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TopicRow {
    pub name: String,
    pub partitions: Vec<PartitionRow>,
    pub records: u64,
    /// `forever`, or the limits (`7d`, `1 GiB`).
    pub retention: String,
    /// Records per second appended, over the rate window.
    pub rate: f64,
    pub producers: Vec<String>,
    /// Consumer groups.
    pub consumers: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartitionRow {
    pub partition: u32,
    pub log_start_offset: u64,
    pub high_watermark: u64,
}

pub(crate) fn retention_text(r: Option<&Retention>) -> String {
    match r {
        None => "unknown".into(),
        Some(r) if r.is_forever() => "forever".into(),
        Some(r) => {
            let mut parts = Vec::new();
            if let Some(age) = r.max_age() {
                let s = age.as_secs();
                parts.push(if s % 86_400 == 0 {
                    format!("{}d", s / 86_400)
                } else if s % 3600 == 0 {
                    format!("{}h", s / 3600)
                } else {
                    format!("{s}s")
                });
            }
            if let Some(b) = r.max_bytes() {
                parts.push(format!("{:.1} MiB", b as f64 / 1_048_576.0));
            }
            parts.join(", ")
        }
    }
}

/// Every topic with what the topology knows of it.
pub(crate) fn topic_rows<L: EventLog>(c: &Console<L>) -> Vec<TopicRow> {
    let snapshot = c.snapshot();
    let topology = c.topology();
    let mut producers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut consumers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut rates: BTreeMap<&str, f64> = BTreeMap::new();
    for e in &topology.edges {
        match e.kind {
            EdgeKind::Produces => {
                let t = e.to.trim_start_matches("topic:");
                producers
                    .entry(t)
                    .or_default()
                    .push(e.from.trim_start_matches("service:").to_owned());
                *rates.entry(t).or_default() += e.rate;
            }
            EdgeKind::ConsumedBy => {
                consumers
                    .entry(e.from.trim_start_matches("topic:"))
                    .or_default()
                    .push(e.to.trim_start_matches("group:").to_owned());
            }
            EdgeKind::MemberOf => {}
        }
    }
    snapshot
        .topics
        .iter()
        .map(|t: &TopicInfo| TopicRow {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| PartitionRow {
                    partition: p.partition,
                    log_start_offset: p.log_start_offset,
                    high_watermark: p.high_watermark,
                })
                .collect(),
            records: t.records(),
            retention: retention_text(t.retention.as_ref()),
            rate: rates.get(t.name.as_str()).copied().unwrap_or(0.0),
            producers: producers.remove(t.name.as_str()).unwrap_or_default(),
            consumers: consumers.remove(t.name.as_str()).unwrap_or_default(),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTopic {
    name: String,
    partitions: Option<u32>,
    /// Days records are kept; forever when absent.
    retention_days: Option<u64>,
}

/// Kafka's rule for topic names: 1-249 of letters, digits, `.`, `_`, `-`,
/// and not `.` or `..`.
pub(crate) fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `POST /api/v1/topics` (admin): creates a topic on the log.
pub(crate) async fn create_topic<L: EventLog>(
    State(c): Shared<L>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let t: NewTopic = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "invalid_json",
            format!("send {{\"name\": \"…\", \"partitions\": 3, \"retention_days\": 7}} ({e})"),
        )
    })?;
    if !valid_topic_name(&t.name) {
        return Err(Problem::invalid_field(
            "name",
            "a topic name is 1 to 249 letters, digits, '.', '_' or '-' (and not '.' or '..')",
        ));
    }
    let partitions = t.partitions.unwrap_or(3);
    if !(1..=1000).contains(&partitions) {
        return Err(Problem::invalid_field(
            "partitions",
            "partitions must be 1 to 1000",
        ));
    }
    let retention = match t.retention_days {
        None => Retention::Forever,
        Some(0) => {
            return Err(Problem::invalid_field(
                "retention_days",
                "retention_days must be at least 1 (leave it out to keep records forever)",
            ))
        }
        Some(d) => Retention::days(d),
    };
    let spec = ultracore_log::TopicSpec::new(t.name.clone(), partitions).with_retention(retention);
    match c.log.create_topic(&spec).await {
        Ok(()) => {
            tracing::info!(topic = t.name, partitions, "topic created from the console");
            c.sample().await;
            Ok((
                axum::http::StatusCode::CREATED,
                Json(serde_json::json!({"name": t.name, "partitions": partitions})),
            )
                .into_response())
        }
        Err(ultracore_log::Error::TopicExists(_)) => Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            "topic_exists",
            format!("topic '{}' exists already", t.name),
        )),
        Err(e) => Err(Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "log_unavailable",
            format!("the log could not create the topic: {e}"),
        )),
    }
}

/// `POST /api/v1/services/{name}/pause` and `/resume` (admin): stops and
/// starts a consumer service's reading; its lag grows meanwhile.
pub(crate) async fn pause<L: EventLog>(
    State(c): Shared<L>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    set_paused(&c, &name, true)
}

pub(crate) async fn resume<L: EventLog>(
    State(c): Shared<L>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    set_paused(&c, &name, false)
}

fn set_paused<L: EventLog>(
    c: &Console<L>,
    name: &str,
    paused: bool,
) -> Result<Json<serde_json::Value>, Problem> {
    let outcome = if paused {
        c.health.pause(name)
    } else {
        c.health.resume(name)
    };
    outcome.map_err(Problem::not_found)?;
    tracing::warn!(
        service = name,
        paused,
        "service paused or resumed by an operator"
    );
    Ok(Json(serde_json::json!({"service": name, "paused": paused})))
}

pub(crate) async fn topics<L: EventLog>(State(c): Shared<L>) -> Json<serde_json::Value> {
    let rows = topic_rows(&c);
    Json(serde_json::json!({ "topics": rows, "total": rows.len() }))
}

/// A group as `/api/v1/groups` lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupRow {
    pub group: String,
    pub status: Option<String>,
    pub lag: u64,
    /// Age of the oldest record not handled, over its partitions (from the
    /// lag monitor: the record's own timestamp).
    pub time_lag_seconds: Option<f64>,
    /// Lag samples (time ms, records), oldest first.
    pub trend: Vec<(i64, u64)>,
    pub partitions: Vec<GroupPartition>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupPartition {
    pub topic: String,
    pub partition: u32,
    pub committed: Option<u64>,
    pub high_watermark: u64,
    pub lag: u64,
    /// Age of the oldest record of the partition not handled (lag monitor).
    pub time_lag_seconds: Option<f64>,
    /// The lag monitor's status of the partition.
    pub status: Option<String>,
}

pub(crate) fn group_rows<L: EventLog>(c: &Console<L>) -> Vec<GroupRow> {
    let snapshot = c.snapshot();
    let statuses = c
        .statuses
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let trends = c
        .trends
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let monitored = c.lag_monitor().map(|m| m.snapshot()).unwrap_or_default();
    let time_lags: BTreeMap<String, f64> = monitored
        .iter()
        .filter_map(|g| {
            let t = g.max_time_lag_seconds.filter(|t| t.is_finite())?;
            Some((g.group.clone(), t))
        })
        .collect();
    let partitions: BTreeMap<(&str, &str, u32), &ultracore_lag::PartitionStatus> = monitored
        .iter()
        .flat_map(|g| {
            g.partitions
                .iter()
                .map(move |p| ((g.group.as_str(), p.topic.as_str(), p.partition), p))
        })
        .collect();
    let mut groups: BTreeMap<String, GroupRow> = BTreeMap::new();
    for l in &snapshot.lags {
        let row = groups.entry(l.group.clone()).or_insert_with(|| GroupRow {
            group: l.group.clone(),
            status: statuses.get(&l.group).cloned(),
            lag: 0,
            time_lag_seconds: time_lags.get(&l.group).copied(),
            trend: trends
                .get(&l.group)
                .map(|t| t.iter().copied().collect())
                .unwrap_or_default(),
            partitions: Vec::new(),
        });
        row.lag += l.lag();
        row.partitions.push(GroupPartition {
            topic: l.topic.clone(),
            partition: l.partition,
            committed: l.committed,
            high_watermark: l.high_watermark,
            lag: l.lag(),
            time_lag_seconds: partitions
                .get(&(l.group.as_str(), l.topic.as_str(), l.partition))
                .and_then(|p| p.time_lag_seconds)
                .filter(|t| t.is_finite()),
            status: partitions
                .get(&(l.group.as_str(), l.topic.as_str(), l.partition))
                .map(|p| p.status.as_str().to_owned())
                .filter(|s| s != "NOTFOUND"),
        });
    }
    groups.into_values().collect()
}

pub(crate) async fn groups<L: EventLog>(State(c): Shared<L>) -> Json<serde_json::Value> {
    let rows = group_rows(&c);
    Json(serde_json::json!({ "groups": rows, "total": rows.len() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retention_reads_as_people_write_it() {
        assert_eq!(retention_text(None), "unknown");
        assert_eq!(retention_text(Some(&Retention::Forever)), "forever");
        assert_eq!(retention_text(Some(&Retention::days(7))), "7d");
        assert_eq!(
            retention_text(Some(&Retention::limited(
                Some(Duration::from_secs(7200)),
                Some(1_048_576)
            ))),
            "2h, 1.0 MiB"
        );
    }
}
