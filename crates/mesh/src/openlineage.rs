//! OpenLineage run events (spec 2-0-2) for data product refreshes and for
//! streaming jobs, so that lineage tools that speak OpenLineage (Marquez,
//! DataHub, OpenMetadata) draw UltraCore's lineage without knowing
//! UltraCore.
//!
//! The JSON is exactly the spec's: field names come from the serde renames
//! here, and events are checked against the published JSON Schema, stored
//! verbatim in `crates/mesh/schema/openlineage/` with its origin, by
//! `tools/validate_openlineage.py`.
//!
//! Names follow OpenLineage's naming conventions:
//! - topics are datasets named by the topic in the namespace of the log
//!   ([`topic_namespace`]): `kafka://{first bootstrap host}:{port}` on
//!   Kafka, [`EMBEDDED_LOG_NAMESPACE`] on the embedded log;
//! - data products are datasets in [`PRODUCT_NAMESPACE`];
//! - a refresh is a run of the job `mesh.refresh.{product id}`, a streaming
//!   job is named after its service; both in the job namespace given to
//!   [`Lineage::new`] (the spec leaves job namespaces to the scheduler's
//!   configuration).
//!
//! Run ids are name-based UUIDs (v5), not random ones: an event emitted
//! again after a crash (emitted, then the crash before the offset commit)
//! carries the same run id, so the lineage tool updates one run instead of
//! recording a phantom second one.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The JSON Schema every event names in `schemaURL`: the `RunEvent`
/// definition of OpenLineage 2-0-2.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// Who produced the events and facets (`producer`, `_producer`). The spec
/// asks for a URI and suggests a source URL; a URN names this crate's
/// version without tying events to a host.
pub const PRODUCER: &str = concat!("urn:ultracore:mesh:", env!("CARGO_PKG_VERSION"));

/// The dataset namespace of data products.
pub const PRODUCT_NAMESPACE: &str = "ultracore://mesh";

/// The dataset namespace of the embedded log's topics.
pub const EMBEDDED_LOG_NAMESPACE: &str = "ultracore-log://embedded";

/// The namespace of run ids (UUIDv5). Fixed forever: changing it changes
/// every run id, and lineage tools would see every run twice.
pub const RUN_ID_NAMESPACE: Uuid = Uuid::from_u128(0x96a7_8bbf_6797_416a_a1b2_e240_676b_db82);

// The `_schemaURL`s of the facets used here; each names a file in
// crates/mesh/schema/openlineage/ (by its `$id`) and a definition in it.
const JOB_TYPE_FACET: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const VERSION_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";
const CAUSES_FACET: &str = "urn:ultracore:openlineage:facets:1-0-0:UltracoreCausesRunFacet.json#/$defs/UltracoreCausesRunFacet";
const CONSUMER_GROUP_FACET: &str = "urn:ultracore:openlineage:facets:1-0-0:UltracoreConsumerGroupJobFacet.json#/$defs/UltracoreConsumerGroupJobFacet";

/// The `integration` of the job type facet: what lineage tools show as the
/// system that ran the job.
const INTEGRATION: &str = "ULTRACORE";

/// One OpenLineage `RunEvent`: a job's run changed state, reading `inputs`
/// and writing `outputs`. Serialise it with `serde_json` to get the wire
/// form (one JSON object, as the OpenLineage HTTP and Kafka transports send).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    /// When the state changed; written as RFC 3339 in UTC.
    #[serde(serialize_with = "rfc3339")]
    pub event_time: DateTime<Utc>,
    pub event_type: EventType,
    pub run: Run,
    pub job: Job,
    #[serde(default)]
    pub inputs: Vec<Dataset>,
    #[serde(default)]
    pub outputs: Vec<Dataset>,
    /// [`PRODUCER`] for the events built here.
    pub producer: String,
    /// [`SCHEMA_URL`] for the events built here.
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
}

/// The state a run moved to (the spec's `eventType`, spelled in capitals
/// on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

/// A run: one execution of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: Uuid,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: Facets,
}

/// A job, identified by its namespace and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: Facets,
}

/// A dataset (a topic or a data product), identified by its namespace and
/// name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facets: Facets,
}

/// Facets by key (`jobType`, `schema`, `ultracore_causes`, …); sorted, so
/// the same event always serialises to the same bytes.
pub type Facets = BTreeMap<String, Facet>;

/// A facet: the two fields every OpenLineage facet must carry, and its own
/// fields beside them. The type makes a facet without `_producer` or
/// `_schemaURL`, which the spec's `BaseFacet` rejects, impossible to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facet {
    #[serde(rename = "_producer")]
    pub producer: String,
    /// The facet's JSON Schema, as the URI of its definition.
    #[serde(rename = "_schemaURL")]
    pub schema_url: String,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Facet {
    fn new(schema_url: &str, fields: Value) -> Facet {
        Facet {
            producer: PRODUCER.to_owned(),
            schema_url: schema_url.to_owned(),
            fields: match fields {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }
}

/// A log record that caused a refresh. Its topic becomes one of the run's
/// inputs; the position goes into the `ultracore_causes` run facet, so an
/// auditor can go from a product version back to the exact events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CauseEvent {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// The `event_id` of the record's envelope, when it has one; the
    /// position alone identifies the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
}

/// The dataset a refresh writes: the product's output, named in
/// [`PRODUCT_NAMESPACE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductOutput {
    pub name: String,
    /// Its columns, as the `schema` dataset facet; none leaves the facet
    /// out (an empty schema would tell lineage tools the product has no
    /// columns).
    pub fields: Vec<SchemaField>,
}

/// A column of a product, as the `schema` facet lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaField {
    pub name: String,
    /// The type as the product declares it (`STRING`, `DECIMAL(18,4)`, …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A streaming job: a service consuming topics with a consumer group and
/// writing topics. Described once when the service starts; each state
/// change is then one [`Lineage::streaming_job`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingJob {
    /// The service's name, which is the job's name.
    pub service: String,
    pub group: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// Where a streaming job's run is.
///
/// A streaming job never finishes its input, so its run ends only when the
/// process stops: [`StreamState::Stopped`] is `ABORT`, as OpenLineage's
/// Flink integration reports a cancelled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// The service started consuming: `START`.
    Started,
    /// Still consuming (a periodic heartbeat, or after a change of
    /// inputs): `RUNNING`.
    Running,
    /// Stopped on shutdown: `ABORT`.
    Stopped,
    /// Stopped by an error: `FAIL`.
    Failed,
}

impl StreamState {
    fn event_type(self) -> EventType {
        match self {
            StreamState::Started => EventType::Start,
            StreamState::Running => EventType::Running,
            StreamState::Stopped => EventType::Abort,
            StreamState::Failed => EventType::Fail,
        }
    }
}

/// The dataset namespace of the topics of the log at `log_url` (the
/// `--log` / `ULTRACORE_LOG` forms): `kafka://host:port` of the first
/// bootstrap server, as OpenLineage names Kafka (so every service must list
/// its bootstrap servers in the same order, or one topic becomes two
/// datasets), or [`EMBEDDED_LOG_NAMESPACE`] for `file://` URLs and plain
/// paths. `None` for a URL that names no log.
pub fn topic_namespace(log_url: &str) -> Option<String> {
    if let Some(servers) = log_url.strip_prefix("kafka://") {
        let first = servers.split(',').next()?.trim();
        let (host, port) = first.rsplit_once(':')?;
        let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        return (!host.is_empty() && port_ok).then(|| format!("kafka://{first}"));
    }
    match log_url.split_once("://") {
        Some(("file", path)) if !path.is_empty() => Some(EMBEDDED_LOG_NAMESPACE.to_owned()),
        Some(_) => None,
        None if !log_url.is_empty() => Some(EMBEDDED_LOG_NAMESPACE.to_owned()),
        None => None,
    }
}

/// Builds the run events of one deployment: its job namespace and the
/// namespace of its log's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    job_namespace: String,
    topic_namespace: String,
}

impl Lineage {
    /// `job_namespace` names the deployment (`ultracore`, `ultracore-prod`);
    /// `topic_namespace` comes from [`topic_namespace`].
    pub fn new(job_namespace: impl Into<String>, topic_namespace: impl Into<String>) -> Lineage {
        Lineage {
            job_namespace: job_namespace.into(),
            topic_namespace: topic_namespace.into(),
        }
    }

    /// The `COMPLETE` event of a product refresh: job
    /// `mesh.refresh.{product_id}` (a `BATCH` job), reading `inputs` and
    /// the topics of `causes` (listed once each, `inputs` first), writing
    /// `output` at `product_version`.
    ///
    /// The run id is derived from the job, the product version and the
    /// positions of the causes (in any order), never from `when`: the same
    /// refresh emitted twice is one run.
    ///
    /// Only the terminal event is built because a refresh is recorded once
    /// its version is committed. The spec also asks for a `START`; a caller
    /// that knows when the refresh began sends a copy of this event with
    /// `event_type` [`EventType::Start`] and that `event_time` first (same
    /// run id).
    pub fn refresh_run<S: AsRef<str>>(
        &self,
        product_id: &str,
        product_version: &str,
        causes: &[CauseEvent],
        inputs: &[S],
        output: &ProductOutput,
        when: DateTime<Utc>,
    ) -> RunEvent {
        let job_name = format!("mesh.refresh.{product_id}");
        let mut positions: Vec<_> = causes
            .iter()
            .map(|c| (c.topic.as_str(), c.partition, c.offset))
            .collect();
        positions.sort_unstable();
        positions.dedup();
        let mut key = RunKey::new(&self.job_namespace, &job_name);
        key.text(product_version);
        for (topic, partition, offset) in positions {
            key.text(topic);
            key.number(u64::from(partition));
            key.number(offset);
        }

        let mut topics: Vec<&str> = Vec::new();
        for topic in inputs
            .iter()
            .map(AsRef::as_ref)
            .chain(causes.iter().map(|c| c.topic.as_str()))
        {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }

        let run_facets = Facets::from([(
            "ultracore_causes".to_owned(),
            Facet::new(CAUSES_FACET, json!({ "causes": causes })),
        )]);

        let mut output_facets = Facets::from([(
            "version".to_owned(),
            Facet::new(VERSION_FACET, json!({ "datasetVersion": product_version })),
        )]);
        if !output.fields.is_empty() {
            output_facets.insert(
                "schema".to_owned(),
                Facet::new(SCHEMA_FACET, json!({ "fields": output.fields })),
            );
        }

        RunEvent {
            event_time: when,
            event_type: EventType::Complete,
            run: Run {
                run_id: key.uuid(),
                facets: run_facets,
            },
            job: Job {
                namespace: self.job_namespace.clone(),
                name: job_name,
                facets: job_type("BATCH", "REFRESH"),
            },
            inputs: topics.into_iter().map(|t| self.topic(t)).collect(),
            outputs: vec![Dataset {
                namespace: PRODUCT_NAMESPACE.to_owned(),
                name: output.name.clone(),
                facets: output_facets,
            }],
            producer: PRODUCER.to_owned(),
            schema_url: SCHEMA_URL.to_owned(),
        }
    }

    /// The event of a streaming job moving to `state` at `when`: job named
    /// after the service (a `STREAMING` job, its consumer group in the
    /// `ultracore_consumerGroup` facet), reading and writing topics.
    ///
    /// One process's life is one run: the run id is derived from the job,
    /// the group and `started_at` (when this process started consuming), so
    /// its `START`, `RUNNING`s and `ABORT` share one run and a restart is a
    /// new one.
    pub fn streaming_job(
        &self,
        job: &StreamingJob,
        state: StreamState,
        started_at: DateTime<Utc>,
        when: DateTime<Utc>,
    ) -> RunEvent {
        let mut key = RunKey::new(&self.job_namespace, &job.service);
        key.text(&job.group);
        key.text(&started_at.to_rfc3339_opts(SecondsFormat::Nanos, true));

        let mut facets = job_type("STREAMING", "STREAM_PROCESSOR");
        facets.insert(
            "ultracore_consumerGroup".to_owned(),
            Facet::new(CONSUMER_GROUP_FACET, json!({ "group": job.group })),
        );
        RunEvent {
            event_time: when,
            event_type: state.event_type(),
            run: Run {
                run_id: key.uuid(),
                facets: Facets::new(),
            },
            job: Job {
                namespace: self.job_namespace.clone(),
                name: job.service.clone(),
                facets,
            },
            inputs: job.inputs.iter().map(|t| self.topic(t)).collect(),
            outputs: job.outputs.iter().map(|t| self.topic(t)).collect(),
            producer: PRODUCER.to_owned(),
            schema_url: SCHEMA_URL.to_owned(),
        }
    }

    fn topic(&self, name: &str) -> Dataset {
        Dataset {
            namespace: self.topic_namespace.clone(),
            name: name.to_owned(),
            facets: Facets::new(),
        }
    }
}

/// The `jobType` facet, telling lineage tools whether to expect an end.
fn job_type(processing_type: &str, job_type: &str) -> Facets {
    Facets::from([(
        "jobType".to_owned(),
        Facet::new(
            JOB_TYPE_FACET,
            json!({
                "processingType": processing_type,
                "integration": INTEGRATION,
                "jobType": job_type,
            }),
        ),
    )])
}

/// The name a run id is derived from, and the id: the UUIDv5 in
/// [`RUN_ID_NAMESPACE`] of the job namespace and job name, then the run's
/// own parts (a refresh: product version, then topic, partition, offset of
/// each cause, sorted and once each; a streaming run: group, then
/// `started_at` in RFC 3339 with nanoseconds). A string is written as its
/// UTF-8 length (u64, big-endian) and its bytes, a number as a u64,
/// big-endian: different parts never run into the same name (`"ab" + "c"`
/// and `"a" + "bc"` differ).
struct RunKey(Vec<u8>);

impl RunKey {
    fn new(job_namespace: &str, job_name: &str) -> RunKey {
        let mut key = RunKey(Vec::new());
        key.text(job_namespace);
        key.text(job_name);
        key
    }

    fn text(&mut self, s: &str) {
        self.number(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn number(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_be_bytes());
    }

    fn uuid(&self) -> Uuid {
        Uuid::new_v5(&RUN_ID_NAMESPACE, &self.0)
    }
}

/// RFC 3339 in UTC with `Z`, and only as many fraction digits as the time
/// has (so a time read back compares equal).
fn rfc3339<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn lineage() -> Lineage {
        Lineage::new("ultracore", "kafka://broker-1:9092")
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_714_555_800 + secs, 0).unwrap()
    }

    fn cause(topic: &str, partition: u32, offset: u64) -> CauseEvent {
        CauseEvent {
            topic: topic.to_owned(),
            partition,
            offset,
            event_id: Some(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)),
        }
    }

    fn output() -> ProductOutput {
        ProductOutput {
            name: "holdings.daily".to_owned(),
            fields: vec![
                SchemaField {
                    name: "account_id".to_owned(),
                    data_type: Some("STRING".to_owned()),
                    description: None,
                },
                SchemaField {
                    name: "market_value".to_owned(),
                    data_type: Some("DECIMAL(18,4)".to_owned()),
                    description: Some("in the account's currency".to_owned()),
                },
            ],
        }
    }

    fn refresh(causes: &[CauseEvent], version: &str, when: DateTime<Utc>) -> RunEvent {
        lineage().refresh_run(
            "holdings-daily",
            version,
            causes,
            &["portfolio.events"],
            &output(),
            when,
        )
    }

    fn stream() -> StreamingJob {
        StreamingJob {
            service: "portfolio-projector".to_owned(),
            group: "portfolio-projector-v1".to_owned(),
            inputs: vec!["portfolio.events".to_owned()],
            outputs: vec!["portfolio.views".to_owned()],
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_refresh_serialises_with_the_spec_field_names() -> TestResult {
        let causes = [cause("trades", 3, 41), cause("portfolio.events", 0, 7)];
        let v = serde_json::to_value(refresh(&causes, "12", at(0)))?;

        let mut top = keys(&v);
        top.sort_unstable();
        let want = "eventTime eventType inputs job outputs producer run schemaURL";
        assert_eq!(top.join(" "), want);
        assert_eq!(v["eventTime"], "2024-05-01T09:30:00Z");
        assert_eq!(v["eventType"], "COMPLETE");
        assert_eq!(v["schemaURL"], SCHEMA_URL);
        assert_eq!(v["producer"], PRODUCER);
        assert!(PRODUCER.starts_with("urn:ultracore:mesh:"));

        assert_eq!(keys(&v["run"]), ["facets", "runId"]);
        let caused = &v["run"]["facets"]["ultracore_causes"];
        assert_eq!(caused["_producer"], PRODUCER);
        assert_eq!(caused["_schemaURL"], CAUSES_FACET);
        assert_eq!(
            caused["causes"][0],
            json!({"topic": "trades", "partition": 3, "offset": 41,
                   "eventId": "01900000-0000-7000-8000-000000000001"})
        );
        let no_id = CauseEvent {
            event_id: None,
            ..cause("trades", 3, 41)
        };
        let v2 = serde_json::to_value(refresh(&[no_id], "12", at(0)))?;
        assert_eq!(
            v2["run"]["facets"]["ultracore_causes"]["causes"][0],
            json!({"topic": "trades", "partition": 3, "offset": 41})
        );

        assert_eq!(v["job"]["namespace"], "ultracore");
        assert_eq!(v["job"]["name"], "mesh.refresh.holdings-daily");
        let job_type = &v["job"]["facets"]["jobType"];
        assert_eq!(job_type["processingType"], "BATCH");
        assert_eq!(job_type["integration"], "ULTRACORE");
        assert_eq!(job_type["jobType"], "REFRESH");
        assert_eq!(job_type["_schemaURL"], JOB_TYPE_FACET);

        // The listed input first, then the causes' other topics, once each.
        assert_eq!(
            v["inputs"],
            json!([{"namespace": "kafka://broker-1:9092", "name": "portfolio.events"},
                   {"namespace": "kafka://broker-1:9092", "name": "trades"}])
        );

        let out = &v["outputs"][0];
        assert_eq!(out["namespace"], PRODUCT_NAMESPACE);
        assert_eq!(out["name"], "holdings.daily");
        assert_eq!(out["facets"]["version"]["datasetVersion"], "12");
        assert_eq!(
            out["facets"]["schema"]["fields"],
            json!([{"name": "account_id", "type": "STRING"},
                   {"name": "market_value", "type": "DECIMAL(18,4)",
                    "description": "in the account's currency"}])
        );
        Ok(())
    }

    #[test]
    fn every_event_type_is_spelled_in_capitals() -> TestResult {
        let all = [
            (EventType::Start, "START"),
            (EventType::Running, "RUNNING"),
            (EventType::Complete, "COMPLETE"),
            (EventType::Abort, "ABORT"),
            (EventType::Fail, "FAIL"),
            (EventType::Other, "OTHER"),
        ];
        for (t, spelled) in all {
            assert_eq!(serde_json::to_value(t)?, spelled);
            assert_eq!(serde_json::from_value::<EventType>(json!(spelled))?, t);
        }
        Ok(())
    }

    #[test]
    fn the_same_refresh_has_the_same_run_id_whenever_it_is_emitted() {
        let a = refresh(
            &[cause("trades", 3, 41), cause("trades", 0, 9)],
            "12",
            at(0),
        );
        let b = refresh(
            &[cause("trades", 0, 9), cause("trades", 3, 41)],
            "12",
            at(3600),
        );
        assert_eq!(a.run.run_id, b.run.run_id);
        assert_eq!(a.run.run_id.get_version_num(), 5);
        // Pinned (recomputed outside Rust from the derivation documented on
        // `RunKey`): a changed derivation would split every run in the
        // lineage tools. Inputs and the topic namespace play no part.
        let elsewhere = Lineage::new("ultracore", "ultracore-log://embedded").refresh_run(
            "holdings-daily",
            "12",
            &[cause("trades", 0, 9), cause("trades", 3, 41)],
            &[] as &[&str],
            &output(),
            at(7),
        );
        assert_eq!(elsewhere.run.run_id, a.run.run_id);
        assert_eq!(
            a.run.run_id.to_string(),
            "9dd6f083-244f-5b58-aa4e-cf43d2a5347d"
        );
    }

    #[test]
    fn a_different_refresh_has_a_different_run_id() {
        let base = refresh(&[cause("trades", 3, 41)], "12", at(0)).run.run_id;
        let others = [
            refresh(&[cause("trades", 3, 42)], "12", at(0)),
            refresh(&[cause("trades", 4, 41)], "12", at(0)),
            refresh(&[cause("trade", 3, 41)], "12", at(0)),
            refresh(&[cause("trades", 3, 41)], "13", at(0)),
            refresh(&[], "12", at(0)),
            Lineage::new("ultracore-prod", "kafka://broker-1:9092").refresh_run(
                "holdings-daily",
                "12",
                &[cause("trades", 3, 41)],
                &["portfolio.events"],
                &output(),
                at(0),
            ),
        ];
        for other in others {
            assert_ne!(other.run.run_id, base, "{:?}", other.run);
        }
        // Length prefixes: moving a character between two parts changes the id.
        let ab = RunKey::new("ab", "c").uuid();
        let a_bc = RunKey::new("a", "bc").uuid();
        assert_ne!(ab, a_bc);
    }

    #[test]
    fn offsets_past_two_to_the_31_and_the_largest_are_written_exactly() -> TestResult {
        let big = [
            cause("trades", u32::MAX, 1 << 40),
            cause("trades", 0, u64::MAX),
        ];
        let v = serde_json::to_value(refresh(&big, "1", at(0)))?;
        let causes = &v["run"]["facets"]["ultracore_causes"]["causes"];
        assert_eq!(causes[0]["partition"].as_u64(), Some(u64::from(u32::MAX)));
        assert_eq!(causes[0]["offset"].as_u64(), Some(1 << 40));
        assert_eq!(causes[1]["offset"].as_u64(), Some(u64::MAX));
        assert_ne!(
            refresh(&big[..1], "1", at(0)).run.run_id,
            refresh(&big[1..], "1", at(0)).run.run_id
        );
        Ok(())
    }

    #[test]
    fn a_refresh_without_causes_or_columns_says_so() -> TestResult {
        let bare = ProductOutput {
            name: "holdings.daily".to_owned(),
            fields: vec![],
        };
        let e = lineage().refresh_run("p", "1", &[], &[] as &[&str], &bare, at(0));
        let v = serde_json::to_value(&e)?;
        assert_eq!(v["run"]["facets"]["ultracore_causes"]["causes"], json!([]));
        assert_eq!(v["inputs"], json!([]));
        assert_eq!(keys(&v["outputs"][0]["facets"]), ["version"]);
        Ok(())
    }

    #[test]
    fn a_streaming_job_shares_one_run_per_process_life() -> TestResult {
        let l = lineage();
        let job = stream();
        let start = l.streaming_job(&job, StreamState::Started, at(0), at(0));
        let running = l.streaming_job(&job, StreamState::Running, at(0), at(300));
        let stopped = l.streaming_job(&job, StreamState::Stopped, at(0), at(900));
        let restarted = l.streaming_job(&job, StreamState::Started, at(901), at(901));
        assert_eq!(start.run.run_id, running.run.run_id);
        assert_eq!(start.run.run_id, stopped.run.run_id);
        assert_ne!(start.run.run_id, restarted.run.run_id);
        let other_group = StreamingJob {
            group: "portfolio-projector-v2".to_owned(),
            ..stream()
        };
        assert_ne!(
            l.streaming_job(&other_group, StreamState::Started, at(0), at(0))
                .run
                .run_id,
            start.run.run_id
        );

        let v = serde_json::to_value(&running)?;
        assert_eq!(v["eventType"], "RUNNING");
        assert_eq!(v["eventTime"], "2024-05-01T09:35:00Z");
        assert_eq!(keys(&v["run"]), ["runId"]);
        assert_eq!(v["job"]["name"], "portfolio-projector");
        assert_eq!(v["job"]["facets"]["jobType"]["processingType"], "STREAMING");
        assert_eq!(v["job"]["facets"]["jobType"]["integration"], "ULTRACORE");
        assert_eq!(
            v["job"]["facets"]["ultracore_consumerGroup"]["group"],
            "portfolio-projector-v1"
        );
        assert_eq!(
            v["job"]["facets"]["ultracore_consumerGroup"]["_schemaURL"],
            CONSUMER_GROUP_FACET
        );
        assert_eq!(
            v["inputs"],
            json!([{"namespace": "kafka://broker-1:9092", "name": "portfolio.events"}])
        );
        assert_eq!(
            v["outputs"],
            json!([{"namespace": "kafka://broker-1:9092", "name": "portfolio.views"}])
        );
        let states = [
            (StreamState::Started, "START"),
            (StreamState::Running, "RUNNING"),
            (StreamState::Stopped, "ABORT"),
            (StreamState::Failed, "FAIL"),
        ];
        for (state, spelled) in states {
            let e = l.streaming_job(&job, state, at(0), at(1));
            assert_eq!(serde_json::to_value(e.event_type)?, spelled);
        }
        Ok(())
    }

    #[test]
    fn an_event_reads_back_equal() -> TestResult {
        let when = Utc.timestamp_opt(1_714_555_800, 123_456_789).unwrap();
        let e = refresh(&[cause("trades", 1, 2)], "3", when);
        let text = serde_json::to_string(&e)?;
        assert!(text.contains(r#""eventTime":"2024-05-01T09:30:00.123456789Z""#));
        assert_eq!(serde_json::from_str::<RunEvent>(&text)?, e);
        Ok(())
    }

    #[test]
    fn topic_namespaces_follow_the_naming_conventions() {
        let cases = [
            ("kafka://broker-1:9092", Some("kafka://broker-1:9092")),
            ("kafka://b1:9092,b2:9093", Some("kafka://b1:9092")),
            ("kafka://[::1]:9092", Some("kafka://[::1]:9092")),
            ("file:///var/lib/ultracore", Some(EMBEDDED_LOG_NAMESPACE)),
            ("/var/lib/ultracore", Some(EMBEDDED_LOG_NAMESPACE)),
            ("kafka://", None),
            ("kafka://nohost", None),
            ("kafka://host:", None),
            ("kafka://:9092", None),
            ("file://", None),
            ("s3://bucket", None),
            ("", None),
        ];
        for (url, want) in cases {
            assert_eq!(topic_namespace(url).as_deref(), want, "{url}");
        }
    }

    /// The `_schemaURL`s and `schemaURL` written here name schemas stored in
    /// crates/mesh/schema/openlineage/ (by `$id`) and definitions in them,
    /// so the validator can check every facet.
    #[test]
    fn every_schema_url_names_a_stored_schema() -> TestResult {
        let stored = [
            include_str!("../schema/openlineage/OpenLineage.json"),
            include_str!("../schema/openlineage/facets/JobTypeJobFacet.json"),
            include_str!("../schema/openlineage/facets/SchemaDatasetFacet.json"),
            include_str!("../schema/openlineage/facets/DatasetVersionDatasetFacet.json"),
            include_str!("../schema/openlineage/ultracore/UltracoreCausesRunFacet.json"),
            include_str!("../schema/openlineage/ultracore/UltracoreConsumerGroupJobFacet.json"),
        ];
        let schemas: Vec<Value> = stored
            .iter()
            .map(|s| serde_json::from_str(s))
            .collect::<Result<_, _>>()?;
        for url in [
            SCHEMA_URL,
            JOB_TYPE_FACET,
            SCHEMA_FACET,
            VERSION_FACET,
            CAUSES_FACET,
            CONSUMER_GROUP_FACET,
        ] {
            let (id, pointer) = url.split_once('#').ok_or(url)?;
            let schema = schemas
                .iter()
                .find(|s| s["$id"] == id)
                .ok_or_else(|| format!("no stored schema has $id {id}"))?;
            assert!(
                schema.pointer(pointer).is_some(),
                "{url}: no {pointer} in {id}"
            );
        }
        Ok(())
    }
}
