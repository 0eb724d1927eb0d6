//! The store's schema migrations, applied in order by
//! [`ForensicsStore::open`](crate::ForensicsStore::open) and recorded in
//! `schema_migrations`; migration 4 is the one SQL cannot do (it decodes the
//! stored decisions).

use std::path::Path;

use rusqlite::{params, Connection};

use crate::codec::{decision_head, decision_head_json};
use crate::{Error, Result};

/// One schema migration.
pub(super) enum Step {
    /// Statements applied in one transaction with the version's record.
    Sql(&'static str),
    /// Work SQL cannot do (decoding the stored decisions), done in chunks
    /// of one transaction each and resumable: the version is recorded once
    /// it is all done, so a crash part way runs it again on the next open.
    Rust(fn(&mut Connection, &Path) -> Result<()>),
}

/// Versioned migrations, applied in order and recorded in
/// `schema_migrations`. Never edit a released one: add the next.
pub(super) const MIGRATIONS: &[(i64, Step)] = &[
    (
        1,
        Step::Sql(
            r#"
    CREATE TABLE model_sets (
        version       TEXT PRIMARY KEY,
        specialists   TEXT NOT NULL,
        features      TEXT NOT NULL,
        registered_at INTEGER NOT NULL
    );
    CREATE TABLE explanations (
        id               INTEGER PRIMARY KEY,
        decision_id      BLOB NOT NULL UNIQUE,
        event_id         BLOB NOT NULL,
        decided_at       INTEGER NOT NULL,
        symbol           TEXT NOT NULL,
        action           TEXT NOT NULL,
        model_version    TEXT NOT NULL,
        explained_with   TEXT NOT NULL,
        explained_at     INTEGER NOT NULL,
        source_topic     TEXT NOT NULL,
        source_partition INTEGER NOT NULL,
        source_offset    INTEGER NOT NULL,
        decision         TEXT NOT NULL,
        shap             BLOB NOT NULL,
        narrative        TEXT NOT NULL
    );
    CREATE INDEX explanations_by_time ON explanations (decided_at);
    "#,
        ),
    ),
    (
        2,
        // The compact row: `decision` holds the binary decision (JSON text in
        // rows written before), `narrative` is NULL when the words are written
        // on read from the stored numbers. SQLite cannot relax NOT NULL in
        // place, so the table is rebuilt.
        Step::Sql(
            r#"
    CREATE TABLE explanations_v2 (
        id               INTEGER PRIMARY KEY,
        decision_id      BLOB NOT NULL UNIQUE,
        event_id         BLOB NOT NULL,
        decided_at       INTEGER NOT NULL,
        symbol           TEXT NOT NULL,
        action           TEXT NOT NULL,
        model_version    TEXT NOT NULL,
        explained_with   TEXT NOT NULL,
        explained_at     INTEGER NOT NULL,
        source_topic     TEXT NOT NULL,
        source_partition INTEGER NOT NULL,
        source_offset    INTEGER NOT NULL,
        decision         BLOB NOT NULL,
        shap             BLOB NOT NULL,
        narrative        TEXT
    );
    INSERT INTO explanations_v2 SELECT * FROM explanations;
    DROP TABLE explanations;
    ALTER TABLE explanations_v2 RENAME TO explanations;
    CREATE INDEX explanations_by_time ON explanations (decided_at);
    "#,
        ),
    ),
    (
        3,
        // What the listing and the statistics filter and aggregate on, out
        // of the binary decision. Nullable: rows stored before are filled
        // by migration 4. (Added columns go after the blobs.)
        Step::Sql(
            r#"
    ALTER TABLE explanations ADD COLUMN confidence REAL;
    ALTER TABLE explanations ADD COLUMN dominant_regime TEXT;
    "#,
        ),
    ),
    (4, Step::Rust(backfill_heads)),
    (
        5,
        // After the backfill, so it does not maintain them row by row.
        // With `explanations_by_time (decided_at)`, which serves the
        // unfiltered listing and the retention purge:
        // - by symbol: the symbol filter (with action and time) and the
        //   symbol statistics (covering);
        // - by action: the action filter alone;
        // - by regime: the regime statistics (covering, one range per
        //   regime: no sort of the window's rows).
        // Each costs the writer: an index that does not lead with the time
        // takes its inserts at as many places as it has keys (hundreds of
        // symbols: about 2.4 times the SQLite time per row of the one time
        // index, measured with 64 KiB pages). Covering costs little more
        // than that and saves the statistics a page read per row.
        Step::Sql(
            r#"
    CREATE INDEX explanations_by_symbol ON explanations (symbol, decided_at, action, confidence, explained_at);
    CREATE INDEX explanations_by_action ON explanations (action, decided_at);
    CREATE INDEX explanations_by_regime ON explanations (dominant_regime, decided_at, confidence);
    "#,
        ),
    ),
    (
        6,
        // The decision's latency, for the symbol statistics. Rows stored
        // before stay NULL: their decisions were published without one, and
        // their stored forms (format 1, or JSON) hold none to fill it from.
        // The symbol index is rebuilt with the column last, so the symbol
        // statistics stay covered: the rebuild reads the whole table once,
        // at the open that migrates; after it the writer pays one more
        // integer per index entry.
        Step::Sql(
            r#"
    ALTER TABLE explanations ADD COLUMN latency_us INTEGER;
    DROP INDEX explanations_by_symbol;
    CREATE INDEX explanations_by_symbol ON explanations (symbol, decided_at, action, confidence, explained_at, latency_us);
    "#,
        ),
    ),
    (
        7,
        // The writer keeps one index beside the time's: by symbol, not
        // covering. The three of migrations 5 and 6 took the drain
        // (`ultracore bench forensics --no-shap --pipeline`, 300,000
        // decisions, 2 cores) from 110,600 – 126,000 decisions/s to
        // 66,700 – 71,200/s (23.5 – 24.8 us of CPU per decision; the
        // store insert 6.1 – 6.9 us on one thread). Measured on the same
        // machine the same hour, 3 runs each: with no index but the
        // time's, 96,800 – 101,500/s (17.8 – 18.5 us; insert 4.0 – 4.5
        // us); with this one, 87,100 – 95,900/s over 7 runs (18.3 –
        // 20.4 us; insert 4.8 – 5.6 us). Neither reaches the 100,000/s of
        // the goal reliably: the rest of the rise in CPU per decision is
        // outside the store (a profile of the drain shows 12 % of samples
        // in the kernel zeroing fresh pages for the allocator). This index
        // keeps the symbol's listing and statistics to the symbol's rows;
        // the action filter and the regime statistics read the window's
        // rows through the time index instead (see `crate::query`).
        Step::Sql(
            r#"
    DROP INDEX explanations_by_action;
    DROP INDEX explanations_by_regime;
    DROP INDEX explanations_by_symbol;
    CREATE INDEX explanations_by_symbol ON explanations (symbol, decided_at);
    "#,
        ),
    ),
];

/// The schema version this build migrates to (the last migration's).
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Rows decoded per backfill transaction.
const BACKFILL_CHUNK: i64 = 5_000;

/// Migration 4: fills `confidence` and `dominant_regime` of the rows stored
/// before migration 3, from their decisions (binary, or JSON text in rows
/// of schema 1). A row whose decision does not read keeps NULLs (it does
/// not read through the API either) and is logged.
fn backfill_heads(conn: &mut Connection, path: &Path) -> Result<()> {
    let e = |operation| {
        move |source| Error::Store {
            path: path.display().to_string(),
            operation,
            source,
        }
    };
    let (mut after, mut filled, mut unreadable) = (0i64, 0u64, 0u64);
    loop {
        let tx = conn.transaction().map_err(e("starting the backfill"))?;
        let mut last = None;
        {
            let mut select = tx
                .prepare_cached(
                    "SELECT id, decision FROM explanations WHERE id > ?1 AND confidence IS NULL \
                     ORDER BY id LIMIT ?2",
                )
                .map_err(e("reading decisions to backfill"))?;
            let mut update = tx
                .prepare_cached(
                    "UPDATE explanations SET confidence = ?2, dominant_regime = ?3 WHERE id = ?1",
                )
                .map_err(e("preparing the backfill"))?;
            let mut rows = select
                .query(params![after, BACKFILL_CHUNK])
                .map_err(e("reading decisions to backfill"))?;
            while let Some(row) = rows.next().map_err(e("reading decisions to backfill"))? {
                let id: i64 = row.get(0).map_err(e("reading decisions to backfill"))?;
                last = Some(id);
                let head = match row.get_ref(1).map_err(e("reading decisions to backfill"))? {
                    rusqlite::types::ValueRef::Blob(b) => decision_head(b),
                    rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t)
                        .map_err(|e| e.to_string())
                        .and_then(decision_head_json),
                    other => Err(format!("a {:?}, not a decision", other.data_type())),
                };
                match head {
                    Ok(h) => {
                        update
                            .execute(params![id, h.confidence, h.dominant_regime])
                            .map_err(e("backfilling a row"))?;
                        filled += 1;
                    }
                    Err(reason) => {
                        unreadable += 1;
                        tracing::warn!(path = %path.display(), row = id, %reason, "stored decision unreadable, left out of the statistics");
                    }
                }
            }
        }
        tx.commit().map_err(e("committing the backfill"))?;
        match last {
            Some(id) => after = id,
            None => break,
        }
    }
    tracing::info!(path = %path.display(), filled, unreadable, "forensics store: confidence and regime backfilled");
    Ok(())
}
