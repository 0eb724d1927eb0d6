//! The explanation store: SQLite, one file (`forensics.sqlite` in the data
//! directory by default), WAL mode, one row per decision.
//!
//! # Durability
//!
//! `synchronous=FULL`: a committed transaction is fsynced. The service
//! commits its consumer offsets only after the transaction holding the rows
//! has committed, so a crash or a power loss can re-deliver decisions (the
//! unique decision id makes that a no-op) but never skip one. (The event
//! sourcing read models use `NORMAL`, because they keep their checkpoints in
//! the same database; this store relies on the log's committed offsets.)
//!
//! # Schema (version 7)
//!
//! - `explanations`: `decision_id` (16-byte UUID, unique), the decision's
//!   time, symbol, action and `model_version`, the model set that explained
//!   it (`explained_with`), where the record was on the log, the decision
//!   as published (binary, [`crate::codec`]: about 40 % of its JSON), the
//!   specialists' SHAP values (`shap`, format 2: the ensemble follows from
//!   them and the decision) and `narrative`, NULL: the words are written
//!   when the row is read, from the stored numbers (pinned by a test).
//!   Rows written under schema 1 keep the decision as JSON text, every
//!   number ([`encode_values`], format 1) and the words written then; they
//!   read as before.
//!   Since schema 3 also `confidence` and `dominant_regime` (the most
//!   probable regime, [`crate::codec`]'s rule), read out of the decision
//!   on insert so the listing and the statistics filter and aggregate
//!   without decoding decisions; migration 4 fills them in rows stored
//!   before, in place. Since schema 6 also `latency_us`, the decision's
//!   own latency as published, read out of the decision on insert like
//!   them; NULL for decisions published without one, which every row
//!   stored before is (their stored decisions do not hold it, so there is
//!   nothing to fill them from). Indexes: by time; since schema 7 by
//!   symbol and time, and no other (schema 5 and 6 also had a covering
//!   symbol index, one by action and one by regime, which cost the writer
//!   a third of its speed; see [`crate::query`]).
//! - `model_sets`: per model set, its specialists (name, objective) and
//!   feature names, so old rows stay readable after the models change.
//! - `schema_migrations`: applied migrations, as in the event-sourcing store.
//!
//! Every statement is parameterized; inserts use cached prepared statements
//! inside one transaction per batch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use ultracore_log::files;
use uuid::Uuid;

use ultracore_events::trading::TradingDecision;

use crate::codec::{
    decision_head, decode_decision, decode_shap, DecisionHead, FeatureIndex, SHAP_FORMAT,
};
use crate::decode::{DecisionView, Rejection};
use crate::explain::{fill_row, fill_weights};
use crate::{Error, Explanation, Result, Specialists};

mod migrations;

pub(crate) use migrations::SCHEMA_VERSION;
use migrations::{Step, MIGRATIONS};

/// Rows deleted per purge transaction, so a purge never holds the write
/// lock for long.
const PURGE_CHUNK: i64 = 10_000;

/// Format tag of the `shap` column.
const VALUES_FORMAT: u8 = 1;

/// One explained decision on its way into the store, in the stored forms
/// of [`crate::codec`].
#[derive(Debug, Clone)]
pub struct NewExplanation {
    pub decision_id: Uuid,
    pub event_id: Uuid,
    /// The decision's time, milliseconds since the epoch (retention uses it).
    pub decided_at: i64,
    pub symbol: String,
    pub action: &'static str,
    pub model_version: String,
    pub explained_at: i64,
    pub source_partition: u32,
    pub source_offset: u64,
    /// The decision as published, in binary form.
    pub decision: Vec<u8>,
    /// The specialists' SHAP values (format 2).
    pub shap: Vec<u8>,
    /// The decision's confidence, latency and dominant regime, for their
    /// columns: [`DecisionHead::of_view`] where the decision is decoded
    /// anyway (the service's workers), `None` to have the store read them
    /// out of `decision` on its one writer thread.
    pub head: Option<DecisionHead>,
}

/// What a batch insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// New rows.
    pub inserted: u64,
    /// Decisions already stored (a redelivery or a decision published twice).
    pub duplicates: u64,
}

/// A stored explanation, as read back.
#[derive(Debug, Clone)]
pub struct StoredExplanation {
    pub decision_id: Uuid,
    pub event_id: Uuid,
    pub decided_at: i64,
    pub symbol: String,
    pub action: String,
    pub model_version: String,
    pub explained_with: String,
    pub explained_at: i64,
    pub source_topic: String,
    pub source_partition: u32,
    pub source_offset: u64,
    /// The decision as published.
    pub decision: TradingDecision,
    pub explanation: Explanation,
    /// The plain words: as stored (rows written before schema 2), or
    /// written now from the stored numbers by [`crate::narrative`].
    pub narrative: String,
    pub model_set: Arc<ModelSet>,
}

/// The specialists and features of a model set, as registered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSet {
    pub version: String,
    /// `(name, objective)` of each specialist, in order.
    pub specialists: Vec<(String, String)>,
    pub features: Vec<String>,
}

impl ModelSet {
    pub fn of(specialists: &Specialists) -> ModelSet {
        ModelSet {
            version: specialists.version().to_owned(),
            specialists: specialists
                .names()
                .enumerate()
                .map(|(i, n)| (n.to_owned(), specialists.objective(i).name().to_owned()))
                .collect(),
            features: specialists.feature_names().to_vec(),
        }
    }

    /// The specialists' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.specialists.iter().map(|(n, _)| n.as_str())
    }

    /// The model row and the specialists' weights of a decision, as
    /// [`Specialists::check`] makes them when explaining it.
    pub fn inputs(&self, decision: &TradingDecision) -> Result<(Vec<f32>, Vec<f64>), Rejection> {
        let view = DecisionView::of(decision);
        let (mut row, mut present) = (Vec::new(), Vec::new());
        let mut weights = vec![0.0; self.specialists.len()];
        fill_weights(self.names(), &view.strategy_weights, &mut weights)?;
        let index = FeatureIndex::new(&self.features);
        index.place(&view.features, &mut present);
        fill_row(&index, &present, &mut row)?;
        Ok((row, weights))
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Encodes the numbers of an explanation: a format byte (1), the number of
/// parts (u8), of features (u16 LE), of weights (u8); then for each part its
/// margin, expected value and SHAP values (f64 LE); then the row (f32 LE,
/// NaN = missing); then the weights (f64 LE). Bit-exact, 4 × 22 × 8 + 80 +
/// 24 bytes for the shipped models.
pub fn encode_values(e: &Explanation) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(5 + e.values.len() * 8 + e.row.len() * 4 + e.weights.len() * 8);
    out.push(VALUES_FORMAT);
    out.push(e.num_parts() as u8);
    out.extend_from_slice(&(e.row.len() as u16).to_le_bytes());
    out.push(e.weights.len() as u8);
    for v in &e.values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in &e.row {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in &e.weights {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The inverse of [`encode_values`].
pub fn decode_values(bytes: &[u8]) -> std::result::Result<Explanation, String> {
    let [format, parts, n0, n1, w, rest @ ..] = bytes else {
        return Err("the SHAP values are truncated".into());
    };
    if *format != VALUES_FORMAT {
        return Err(format!("unknown SHAP value format {format}"));
    }
    let (parts, n, w) = (
        *parts as usize,
        u16::from_le_bytes([*n0, *n1]) as usize,
        *w as usize,
    );
    let values_len = parts * (n + 2);
    if rest.len() != values_len * 8 + n * 4 + w * 8 {
        return Err(format!(
            "the SHAP values have {} bytes, {parts} parts of {n} features need {}",
            rest.len(),
            values_len * 8 + n * 4 + w * 8
        ));
    }
    let f64s = |b: &[u8]| -> Vec<f64> {
        b.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    };
    let (v, rest) = rest.split_at(values_len * 8);
    let (r, weights) = rest.split_at(n * 4);
    let row = r
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Ok(Explanation::from_parts(f64s(v), row, f64s(weights)))
}

fn open_connection(path: &Path, flags: OpenFlags, what: &'static str) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags).map_err(|source| Error::Store {
        path: path.display().to_string(),
        operation: what,
        source,
    })?;
    // The service's writer and the API's readers share the file; WAL lets
    // readers run beside the writer, the timeout covers checkpoints.
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|source| Error::Store {
            path: path.display().to_string(),
            operation: "setting the busy timeout",
            source,
        })?;
    Ok(conn)
}

/// The store's single writer (the service holds it on its writer thread).
#[derive(Debug)]
pub struct ForensicsStore {
    conn: Connection,
    path: PathBuf,
    topic: String,
}

impl ForensicsStore {
    /// The file name in the data directory.
    pub const FILE_NAME: &'static str = "forensics.sqlite";

    /// Opens (creating and migrating as needed) the store at `path`. `topic`
    /// is recorded as the source topic of the rows it inserts.
    pub fn open(path: impl AsRef<Path>, topic: impl Into<String>) -> Result<ForensicsStore> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_dir_all(dir).map_err(|e| {
                Error::Config(format!(
                    "cannot create the directory of the forensics store {}: {e}",
                    dir.display()
                ))
            })?;
        }
        // Decisions and their explanations are private: the file is created
        // owner-only here (SQLite would use the umask), and SQLite gives its
        // -wal and -shm files the database file's mode.
        files::create_if_missing(&path).map_err(|e| {
            Error::Config(format!(
                "cannot create the forensics store {}: {e}",
                path.display()
            ))
        })?;
        let conn = open_connection(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            "opening the database",
        )?;
        let mut store = ForensicsStore {
            conn,
            path,
            topic: topic.into(),
        };
        // 64 KiB pages (set before the first table exists; ignored on an
        // existing file): a row is ~2.6 KB, so with the default 4 KiB pages
        // most rows spill onto overflow pages; 64 KiB pages halve the
        // writer's CPU per row (measured: 7.5 → 3.5 us) at the price of
        // larger page reads on lookups (still well under a millisecond).
        store
            .conn
            .execute_batch("PRAGMA page_size=65536;")
            .map_err(store.err("setting the page size"))?;
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(store.err("enabling WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Config(format!(
                "the forensics store {} cannot use WAL mode (got '{mode}'): put it on a local file system",
                store.path.display()
            )));
        }
        store
            .conn
            .execute_batch(
                "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;",
            )
            .map_err(store.err("setting pragmas"))?;
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, operation: &'static str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Store {
            path: self.path.display().to_string(),
            operation,
            source,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this store is at.
    pub fn schema_version(&self) -> Result<i64> {
        schema_version(&self.conn).map_err(self.err("reading the schema version"))
    }

    fn migrate(&mut self) -> Result<()> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
            )
            .map_err(self.err("creating schema_migrations"))?;
        let current = self.schema_version()?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > known {
            return Err(Error::SchemaTooNew {
                path: self.path.display().to_string(),
                found: current,
                known,
            });
        }
        for (version, step) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let sql = match step {
                Step::Sql(sql) => *sql,
                Step::Rust(run) => {
                    run(&mut self.conn, &self.path)?;
                    ""
                }
            };
            let path = self.path.display().to_string();
            let e = |operation| {
                let path = path.clone();
                move |source| Error::Store {
                    path,
                    operation,
                    source,
                }
            };
            let tx = self.conn.transaction().map_err(e("starting a migration"))?;
            tx.execute_batch(sql).map_err(e("applying a migration"))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, chrono::Utc::now().to_rfc3339()],
            )
            .map_err(e("recording a migration"))?;
            tx.commit().map_err(e("committing a migration"))?;
            tracing::info!(path = %self.path.display(), version, "forensics store schema migrated");
        }
        Ok(())
    }

    /// Records a model set (a no-op when it is known).
    pub fn register_models(&mut self, set: &ModelSet) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO model_sets (version, specialists, features, registered_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (version) DO NOTHING",
                params![
                    set.version,
                    serde_json::to_string(&set.specialists).expect("names serialize"),
                    serde_json::to_string(&set.features).expect("names serialize"),
                    chrono::Utc::now().timestamp_millis()
                ],
            )
            .map_err(self.err("registering the model set"))?;
        Ok(())
    }

    /// Inserts a batch in one transaction, skipping decisions already
    /// stored. When this returns, the rows are durable.
    pub fn insert(&mut self, explained_with: &str, rows: &[NewExplanation]) -> Result<Inserted> {
        let path = self.path.display().to_string();
        let e = |operation| {
            let path = path.clone();
            move |source| Error::Store {
                path,
                operation,
                source,
            }
        };
        let tx = self
            .conn
            .transaction()
            .map_err(e("starting a transaction"))?;
        let mut out = Inserted::default();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO explanations (decision_id, event_id, decided_at, symbol, action, model_version, \
                     explained_with, explained_at, source_topic, source_partition, source_offset, decision, shap, narrative, \
                     confidence, dominant_regime, latency_us) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
                     ON CONFLICT (decision_id) DO NOTHING",
                )
                .map_err(e("preparing the insert"))?;
            for row in rows {
                // A decision that does not read gets NULLs (it would not
                // read through the API either); the writer never made one.
                let read;
                let head = match &row.head {
                    Some(h) => Some(h),
                    None => {
                        read = decision_head(&row.decision).ok();
                        read.as_ref()
                    }
                };
                let changed = stmt
                    .execute(params![
                        row.decision_id.as_bytes().as_slice(),
                        row.event_id.as_bytes().as_slice(),
                        row.decided_at,
                        row.symbol,
                        row.action,
                        row.model_version,
                        explained_with,
                        row.explained_at,
                        self.topic,
                        row.source_partition,
                        to_i64(row.source_offset),
                        row.decision,
                        row.shap,
                        None::<String>,
                        head.map(|h| h.confidence),
                        head.and_then(|h| h.dominant_regime.as_deref()),
                        head.and_then(|h| h.latency_us).map(to_i64),
                    ])
                    .map_err(e("inserting an explanation"))?;
                if changed == 1 {
                    out.inserted += 1;
                } else {
                    out.duplicates += 1;
                }
            }
        }
        tx.commit().map_err(e("committing explanations"))?;
        Ok(out)
    }

    /// Deletes the explanations of decisions made before `cutoff_millis`
    /// (milliseconds since the epoch), in transactions of at most 10,000
    /// rows. Returns how many were deleted.
    pub fn purge_before(&mut self, cutoff_millis: i64) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = self
                .conn
                .prepare_cached(
                    "DELETE FROM explanations WHERE id IN \
                     (SELECT id FROM explanations WHERE decided_at < ?1 ORDER BY decided_at LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![cutoff_millis, PURGE_CHUNK]))
                .map_err(self.err("purging old explanations"))?;
            total += n as u64;
            if (n as i64) < PURGE_CHUNK {
                break;
            }
        }
        Ok(total)
    }

    /// Rows in the store.
    pub fn count(&self) -> Result<u64> {
        count(&self.conn).map_err(self.err("counting explanations"))
    }

    /// One explanation (see [`StoreReader::get`]).
    pub fn get(&self, decision_id: Uuid) -> Result<Option<StoredExplanation>> {
        get(&self.conn, &self.path, decision_id, &Mutex::new(Vec::new()))
    }
}

pub(crate) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM explanations", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
}

pub(crate) type ModelCache = Mutex<Vec<Arc<ModelSet>>>;

fn model_set(
    conn: &Connection,
    path: &Path,
    version: &str,
    cache: &ModelCache,
) -> Result<Arc<ModelSet>> {
    if let Some(set) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|s| s.version == version)
    {
        return Ok(set.clone());
    }
    let store_err = |source| Error::Store {
        path: path.display().to_string(),
        operation: "reading a model set",
        source,
    };
    let (specialists, features): (String, String) = conn
        .prepare_cached("SELECT specialists, features FROM model_sets WHERE version = ?1")
        .and_then(|mut s| s.query_row(params![version], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(store_err)?;
    let set = Arc::new(ModelSet {
        version: version.to_owned(),
        specialists: serde_json::from_str(&specialists).map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            decision_id: String::new(),
            reason: format!("model set {version}: {e}"),
        })?,
        features: serde_json::from_str(&features).map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            decision_id: String::new(),
            reason: format!("model set {version}: {e}"),
        })?,
    });
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(set.clone());
    Ok(set)
}

fn get(
    conn: &Connection,
    path: &Path,
    decision_id: Uuid,
    cache: &ModelCache,
) -> Result<Option<StoredExplanation>> {
    type Raw = (
        Vec<u8>,
        i64,
        String,
        String,
        String,
        String,
        i64,
        String,
        i64,
        i64,
        rusqlite::types::Value,
        Vec<u8>,
        Option<String>,
    );
    let raw: Option<Raw> = conn
        .prepare_cached(
            "SELECT event_id, decided_at, symbol, action, model_version, explained_with, explained_at, \
             source_topic, source_partition, source_offset, decision, shap, narrative \
             FROM explanations WHERE decision_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![decision_id.as_bytes().as_slice()], |r| {
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
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                ))
            })
            .optional()
        })
        .map_err(|source| Error::Store {
            path: path.display().to_string(),
            operation: "reading an explanation",
            source,
        })?;
    let Some((
        event_id,
        decided_at,
        symbol,
        action,
        model_version,
        explained_with,
        explained_at,
        source_topic,
        source_partition,
        source_offset,
        decision,
        shap,
        narrative,
    )) = raw
    else {
        return Ok(None);
    };
    let (model_set, decision, explanation) = decode_row(
        conn,
        path,
        cache,
        decision_id,
        &explained_with,
        decision,
        &shap,
    )?;
    let corrupt = |reason: String| Error::Corrupt {
        path: path.display().to_string(),
        decision_id: decision_id.to_string(),
        reason,
    };
    let narrative =
        narrative.unwrap_or_else(|| crate::narrative(&model_set, &decision, &explanation));
    Ok(Some(StoredExplanation {
        decision_id,
        event_id: Uuid::from_slice(&event_id).map_err(|e| corrupt(e.to_string()))?,
        decided_at,
        symbol,
        action,
        model_version,
        explained_with,
        explained_at,
        source_topic,
        source_partition: source_partition as u32,
        source_offset: source_offset as u64,
        decision,
        explanation,
        narrative,
        model_set,
    }))
}

/// The decision and the explanation of a stored row, from its `decision`
/// and `shap` columns and the model set that explained it.
pub(crate) fn decode_row(
    conn: &Connection,
    path: &Path,
    cache: &ModelCache,
    decision_id: Uuid,
    explained_with: &str,
    decision: rusqlite::types::Value,
    shap: &[u8],
) -> Result<(Arc<ModelSet>, TradingDecision, Explanation)> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.display().to_string(),
        decision_id: decision_id.to_string(),
        reason,
    };
    let model_set = model_set(conn, path, explained_with, cache)?;
    let decision = match decision {
        rusqlite::types::Value::Blob(bytes) => {
            decode_decision(&bytes, &model_set.features).map_err(&corrupt)?
        }
        rusqlite::types::Value::Text(json) => serde_json::from_str(&json)
            .map_err(|e| corrupt(format!("its decision JSON does not read: {e}")))?,
        other => {
            return Err(corrupt(format!(
                "its decision is a {:?}, not a blob or JSON text",
                other.data_type()
            )))
        }
    };
    let explanation = match shap.first() {
        Some(&SHAP_FORMAT) => {
            let (n, values) = decode_shap(shap).map_err(corrupt)?;
            if n != model_set.features.len()
                || values.len() != model_set.specialists.len() * (n + 2)
            {
                return Err(corrupt(format!(
                    "its SHAP values do not fit model set {explained_with}"
                )));
            }
            let (row, weights) = model_set
                .inputs(&decision)
                .map_err(|e| corrupt(format!("its decision does not fit its model set: {e}")))?;
            Explanation::with_ensemble(values, row, weights)
        }
        _ => {
            let e = decode_values(shap).map_err(corrupt)?;
            if e.row().len() != model_set.features.len()
                || e.num_parts() != model_set.specialists.len() + 1
            {
                return Err(corrupt(format!(
                    "its SHAP values do not fit model set {explained_with}"
                )));
            }
            e
        }
    };
    Ok((model_set, decision, explanation))
}

/// Readers of the store for the API and the CLI: a small pool of
/// connections (WAL readers never wait for the writer), cheap to clone.
#[derive(Debug, Clone)]
pub struct StoreReader {
    inner: Arc<ReaderInner>,
}

#[derive(Debug)]
struct ReaderInner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    models: ModelCache,
}

impl StoreReader {
    /// Opens readers of an existing store (the service creates it).
    pub fn open(path: impl AsRef<Path>) -> Result<StoreReader> {
        let path = path.as_ref().to_owned();
        if !path.exists() {
            return Err(Error::Config(format!(
                "there is no forensics store at {}: start the forensics service (`ultracore service forensics`) first, or pass the store's path",
                path.display()
            )));
        }
        let reader = StoreReader {
            inner: Arc::new(ReaderInner {
                path,
                idle: Mutex::new(Vec::new()),
                models: Mutex::new(Vec::new()),
            }),
        };
        // Open one now, so a bad file is an error at start-up, not per request.
        let conn = reader.connect()?;
        let version = schema_version(&conn).map_err(|source| Error::Store {
            path: reader.inner.path.display().to_string(),
            operation: "reading the schema version (is this a forensics store?)",
            source,
        })?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if version > known {
            return Err(Error::SchemaTooNew {
                path: reader.inner.path.display().to_string(),
                found: version,
                known,
            });
        }
        reader.put_back(conn);
        Ok(reader)
    }

    fn connect(&self) -> Result<Connection> {
        open_connection(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            "opening the database for reading",
        )
    }

    /// Runs `f` on a pooled connection, with the store's path and model
    /// cache (for the query module).
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection, &Path, &ModelCache) -> Result<T>,
    ) -> Result<T> {
        let conn = self.take()?;
        let out = f(&conn, &self.inner.path, &self.inner.models);
        self.put_back(conn);
        out
    }

    fn take(&self) -> Result<Connection> {
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        match idle {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 16 {
            idle.push(conn);
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The explanation of one decision, `None` when it is not stored
    /// (unknown, not explained yet, or purged by retention). Blocking: call
    /// it from a blocking thread in async code.
    pub fn get(&self, decision_id: Uuid) -> Result<Option<StoredExplanation>> {
        let conn = self.take()?;
        let out = get(&conn, &self.inner.path, decision_id, &self.inner.models);
        self.put_back(conn);
        out
    }

    /// Rows in the store. Blocking.
    pub fn count(&self) -> Result<u64> {
        let conn = self.take()?;
        let out = count(&conn).map_err(|source| Error::Store {
            path: self.inner.path.display().to_string(),
            operation: "counting explanations",
            source,
        });
        self.put_back(conn);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_and_its_wal_are_owner_only(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data/forensics");
        let store = ForensicsStore::open(dir.join(ForensicsStore::FILE_NAME), "trading_decisions")?;
        assert_eq!(store.count()?, 0);
        // While the connection is open, SQLite's -wal and -shm exist.
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.join(format!("{}{suffix}", ForensicsStore::FILE_NAME));
            assert!(file.exists(), "{} missing", file.display());
        }
        assert_eq!(files::not_owner_only(&tmp.path().join("data"))?, vec![]);
        Ok(())
    }
}
