//! The tables and their versioned migrations.

use uuid::Uuid;

use super::config::pg;
use super::pool::{Conn, Pool, Retry};
use crate::{Error, Result};

/// Versioned migrations, applied in order, each in its own transaction and
/// recorded in `schema_migrations`. Never edit a released one: add the next.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
    CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
    CREATE TABLE es_events (
        aggregate_type text COLLATE "C" NOT NULL,
        aggregate_id   text COLLATE "C" NOT NULL,
        version        bigint NOT NULL,
        event_id       uuid NOT NULL,
        ts             bigint NOT NULL,
        topic          text COLLATE "C" NOT NULL,
        partition      bigint NOT NULL,
        "offset"       bigint NOT NULL,
        envelope       bytea NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, version)
    );
    CREATE UNIQUE INDEX es_events_by_id ON es_events (event_id);
    CREATE INDEX es_events_by_time ON es_events (aggregate_type, aggregate_id, ts);
    CREATE TABLE es_snapshots (
        aggregate_type text COLLATE "C" NOT NULL,
        aggregate_id   text COLLATE "C" NOT NULL,
        version        bigint NOT NULL,
        state_schema   bigint NOT NULL,
        state          bytea NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id)
    );
    CREATE TABLE followers (name text COLLATE "C" PRIMARY KEY, generation bigint NOT NULL);
    CREATE TABLE checkpoints (
        follower    text COLLATE "C" NOT NULL,
        topic       text COLLATE "C" NOT NULL,
        partition   bigint NOT NULL,
        next_offset bigint NOT NULL,
        PRIMARY KEY (follower, topic, partition)
    );
    CREATE TABLE watermarks (
        follower       text COLLATE "C" NOT NULL,
        aggregate_type text COLLATE "C" NOT NULL,
        aggregate_id   text COLLATE "C" NOT NULL,
        version        bigint NOT NULL,
        commit_id      uuid,
        PRIMARY KEY (follower, aggregate_type, aggregate_id)
    );
    CREATE TABLE documents (
        projection text COLLATE "C" NOT NULL,
        view       text COLLATE "C" NOT NULL,
        key        text COLLATE "C" NOT NULL,
        doc        text NOT NULL,
        PRIMARY KEY (projection, view, key)
    );
    "#,
)];

/// Serializes migrations of one schema across processes: taken in each
/// migration transaction, released by its commit.
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ultracore-es:' || $1))";

/// Creates the schema if missing and applies the migrations it lacks.
/// Each step takes the schema's advisory lock and re-reads the version
/// under it, so processes opening one schema at once apply each migration
/// once.
pub(super) fn migrate(pool: &Pool) -> Result<()> {
    let schema = pool.target().schema.clone();
    let location = pool.target().location.clone();
    pool.run("creating the schema", Retry::Idempotent, {
        let schema = schema.clone();
        move |c: &mut Conn| {
            let op = "creating the schema";
            let mut tx = c.client.transaction().map_err(pg(op))?;
            tx.query(MIGRATION_LOCK, &[&schema]).map_err(pg(op))?;
            let exists = tx
                .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
                .map_err(pg(op))?
                .is_some();
            if !exists {
                // Identifiers cannot be parameters; the name is checked to be
                // [a-z_][a-z0-9_]* when the URL is parsed, and quoted.
                tx.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
                    .map_err(pg(op))?;
            }
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS \"{schema}\".schema_migrations \
                 (version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            ))
            .map_err(pg(op))?;
            tx.commit().map_err(pg(op))
        }
    })?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    for (version, sql) in MIGRATIONS {
        let (schema, at) = (schema.clone(), location.clone());
        let applied = pool.run(
            "applying a migration",
            Retry::Idempotent,
            move |c: &mut Conn| {
                let op = "applying a migration";
                let mut tx = c.client.transaction().map_err(pg(op))?;
                tx.query(MIGRATION_LOCK, &[&schema]).map_err(pg(op))?;
                let current: i64 = tx
                    .query_one(
                        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                        &[],
                    )
                    .and_then(|r| r.try_get(0))
                    .map_err(pg(op))?;
                if current > known {
                    return Err(Error::SchemaTooNew {
                        path: at.clone(),
                        found: current,
                        known,
                    });
                }
                if current >= *version {
                    return Ok(false);
                }
                tx.batch_execute(sql).map_err(pg(op))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .map_err(pg(op))?;
                if *version == 1 {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ('instance_id', $1)",
                        &[&Uuid::now_v7().to_string()],
                    )
                    .map_err(pg(op))?;
                }
                tx.commit().map_err(pg(op))?;
                Ok(true)
            },
        )?;
        if applied {
            tracing::info!(%location, version, "read-model schema migrated");
        }
    }
    Ok(())
}
