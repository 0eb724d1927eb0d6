//! What the forensics tests share: the shipped specialists, the shap
//! fixture, decisions and their records, and a service running in the background.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use ultracore_events::trading::{TradingDecision, TradingDecisionEvent, AGGREGATE_TYPE};
use ultracore_forensics::{
    encode_decision, parse_decision_id, DecisionView, FeatureIndex, ForensicsConfig,
    ForensicsMetrics, ForensicsService, ForensicsStore, ModelSet, NewExplanation, ServiceStats,
    Specialists, StoreReader,
};
use ultracore_log::{Envelope, EventLog, NewRecord};
use uuid::Uuid;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped specialists, loaded once per test binary.
pub fn specialists() -> Arc<Specialists> {
    static S: OnceLock<Arc<Specialists>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Specialists::load(root().join("models")).expect("shipped models")))
        .clone()
}

/// `tests/fixtures/reference_decisions.json` (tools/reference_forensics.py).
pub fn fixture() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_decisions.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

/// The fixture's decisions.
pub fn reference_decisions() -> Vec<TradingDecision> {
    serde_json::from_value(fixture()["decisions"].clone()).expect("fixture decisions")
}

/// Decision `i`: a fixture decision with a fresh id and the given time.
pub fn decision(i: u64, timestamp: chrono::DateTime<chrono::Utc>) -> TradingDecision {
    static TEMPLATES: OnceLock<Vec<TradingDecision>> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(reference_decisions);
    let mut d = templates[i as usize % templates.len()].clone();
    d.decision_id = decision_id(i).to_string();
    d.timestamp = timestamp;
    d
}

/// The id of decision `i` (distinct from the fixture's ids).
pub fn decision_id(i: u64) -> Uuid {
    Uuid::from_u128(0x0190_f7a2_0000_7000_8000_0000_0000_0000 | (u128::from(i) + (1 << 40)))
}

/// The record the decision engine appends for a decision.
pub fn record(d: &TradingDecision) -> NewRecord {
    Envelope::new(
        AGGREGATE_TYPE,
        d.symbol.clone(),
        1,
        TradingDecisionEvent::TradingDecision(Box::new(d.clone())),
    )
    .to_record()
}

/// A service running in the background until [`Running::stop`].
pub struct Running {
    pub metrics: Arc<ForensicsMetrics>,
    pub reader: StoreReader,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<ultracore_forensics::Result<ServiceStats>>,
}

impl Running {
    pub async fn stop(self) -> TestResult<ServiceStats> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }

    /// Waits until the store holds `rows` rows.
    pub async fn wait_rows(&self, rows: u64, within: Duration) -> TestResult {
        let deadline = Instant::now() + within;
        loop {
            let n = self.reader.count()?;
            if n >= rows {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{n} rows stored after {within:?}, expected {rows}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn config(db: &Path) -> ForensicsConfig {
    ForensicsConfig {
        db: db.to_owned(),
        models_dir: root().join("models"),
        workers: 2,
        lag_interval_ms: 100,
        ..Default::default()
    }
}

pub fn start<L: EventLog>(log: L, config: ForensicsConfig) -> TestResult<Running> {
    let service = ForensicsService::with_specialists(log, config, specialists())?;
    let metrics = service.metrics();
    let reader = service.reader()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(service.run(async {
        let _ = stopped.await;
    }));
    Ok(Running {
        metrics,
        reader,
        stop,
        task,
    })
}

/// Explains `decisions` with the shipped specialists and stores them
/// straight into `store`, as the service's writer does, each with its
/// `explained_at` (milliseconds since the epoch): no log, no service, and
/// every stored number known to the test.
pub fn store_explained(
    store: &mut ForensicsStore,
    decisions: &[(TradingDecision, i64)],
) -> TestResult {
    let s = specialists();
    store.register_models(&ModelSet::of(&s))?;
    let index = FeatureIndex::new(s.feature_names());
    let (mut rows, mut row) = (Vec::new(), Vec::new());
    for (d, _) in decisions {
        s.row(d, &mut row)?;
        rows.extend_from_slice(&row);
    }
    let mut blobs = Vec::new();
    s.explain_rows(&rows, &mut s.workspace(), &mut blobs);
    assert_eq!(blobs.len(), decisions.len());
    let mut present = Vec::new();
    let mut new = Vec::with_capacity(decisions.len());
    for (i, ((d, explained_at), shap)) in decisions.iter().zip(blobs).enumerate() {
        let mut decision = Vec::new();
        encode_decision(&DecisionView::of(d), &index, &mut present, &mut decision);
        new.push(NewExplanation {
            decision_id: parse_decision_id(&d.decision_id).ok_or("a decision id")?,
            event_id: Uuid::now_v7(),
            decided_at: d.timestamp.timestamp_millis(),
            symbol: d.symbol.clone(),
            action: d.action.as_str(),
            model_version: d.model_version.clone(),
            explained_at: *explained_at,
            source_partition: 0,
            source_offset: i as u64,
            decision,
            shap,
            head: None,
        });
    }
    store.insert(s.version(), &new)?;
    Ok(())
}
