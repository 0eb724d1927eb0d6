//! The event store on the embedded log, once per database
//! (`sqlite::<test>`, `postgres::<test>`).

mod common;

use common::{Backend, TestResult};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

fn log() -> (tempfile::TempDir, EmbeddedLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
    (dir, log)
}

common::on_each_database!(
    load_handle_save,
    concurrent_saves_one_wins,
    two_independent_writers_one_wins,
    conflict_at_version_1_and_10000,
    idempotent_appends,
    snapshots,
    time_travel,
    upcasts_v1_events,
    index_survives_a_restart_and_catches_up,
    writer_ownership_follows_the_group,
);

async fn load_handle_save(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::load_handle_save(log, backend).await
}

async fn concurrent_saves_one_wins(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::concurrent_saves_one_wins(log, backend).await
}

async fn two_independent_writers_one_wins(backend: Backend) -> TestResult {
    // Two stores with their own databases and no shared lock: only the
    // acceptance rule on the log decides.
    let (_dir, log) = log();
    common::two_writers_one_wins(log.clone(), log, "acc-2w", backend).await
}

async fn conflict_at_version_1_and_10000(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::conflict_at_high_versions(log, 10_000, backend).await
}

async fn idempotent_appends(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::idempotent_appends(log, backend).await
}

async fn snapshots(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::snapshots(log, backend).await
}

async fn time_travel(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::time_travel(log, backend).await
}

async fn upcasts_v1_events(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::upcasts_v1_events(log, backend).await
}

async fn index_survives_a_restart_and_catches_up(backend: Backend) -> TestResult {
    use ultracore_es::account::{Account, AccountCommand};
    use ultracore_es::{EventStore, StoreOptions};
    let dir = tempfile::tempdir()?;
    let db = backend.database();
    {
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
        let store = EventStore::new(log, db.reopen()?, StoreOptions::default())?;
        common::open(&store, "acc-r").await?;
        store
            .execute::<Account>("acc-r", AccountCommand::Deposit { cents: 7 })
            .await?;
    }
    if backend == Backend::Sqlite {
        assert!(db.sqlite_path().exists());
    }
    {
        // Events appended while no store was running are picked up.
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
        let other = common::store(log.clone(), backend);
        other
            .execute::<Account>("acc-r", AccountCommand::Deposit { cents: 8 })
            .await?;
        drop(other);
        let store = EventStore::new(log, db.reopen()?, StoreOptions::default())?;
        let loaded = store.load::<Account>("acc-r").await?;
        assert_eq!((loaded.version, loaded.state.balance_cents), (3, 15));
    }
    Ok(())
}

async fn writer_ownership_follows_the_group(backend: Backend) -> TestResult {
    let (_dir, log) = log();
    common::ownership_splits_partitions(log.clone(), log, backend).await
}
