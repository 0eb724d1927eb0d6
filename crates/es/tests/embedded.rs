//! The event store on the embedded log.

mod common;

use common::TestResult;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

fn log() -> (tempfile::TempDir, EmbeddedLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
    (dir, log)
}

#[tokio::test]
async fn load_handle_save() -> TestResult {
    let (_dir, log) = log();
    common::load_handle_save(log).await
}

#[tokio::test]
async fn concurrent_saves_one_wins() -> TestResult {
    let (_dir, log) = log();
    common::concurrent_saves_one_wins(log).await
}

#[tokio::test]
async fn two_independent_writers_one_wins() -> TestResult {
    // Two stores with their own databases and no shared lock: only the
    // acceptance rule on the log decides.
    let (_dir, log) = log();
    common::two_writers_one_wins(log.clone(), log, "acc-2w").await
}

#[tokio::test]
async fn conflict_at_version_1_and_10000() -> TestResult {
    let (_dir, log) = log();
    common::conflict_at_high_versions(log, 10_000).await
}

#[tokio::test]
async fn idempotent_appends() -> TestResult {
    let (_dir, log) = log();
    common::idempotent_appends(log).await
}

#[tokio::test]
async fn snapshots() -> TestResult {
    let (_dir, log) = log();
    common::snapshots(log).await
}

#[tokio::test]
async fn time_travel() -> TestResult {
    let (_dir, log) = log();
    common::time_travel(log).await
}

#[tokio::test]
async fn upcasts_v1_events() -> TestResult {
    let (_dir, log) = log();
    common::upcasts_v1_events(log).await
}

#[tokio::test]
async fn index_survives_a_restart_and_catches_up() -> TestResult {
    use ultracore_es::account::{Account, AccountCommand};
    use ultracore_es::{Database, EventStore, StoreOptions};
    let dir = tempfile::tempdir()?;
    let db_path = dir.path().join("ultracore.sqlite");
    {
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
        let store = EventStore::new(
            log,
            Database::open(dir.path(), None)?,
            StoreOptions::default(),
        )?;
        common::open(&store, "acc-r").await?;
        store
            .execute::<Account>("acc-r", AccountCommand::Deposit { cents: 7 })
            .await?;
    }
    assert!(db_path.exists());
    {
        // Events appended while no store was running are picked up.
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
        let other = EventStore::new(log.clone(), Database::in_memory()?, StoreOptions::default())?;
        other
            .execute::<Account>("acc-r", AccountCommand::Deposit { cents: 8 })
            .await?;
        drop(other);
        let store = EventStore::new(
            log,
            Database::open(dir.path(), None)?,
            StoreOptions::default(),
        )?;
        let loaded = store.load::<Account>("acc-r").await?;
        assert_eq!((loaded.version, loaded.state.balance_cents), (3, 15));
    }
    Ok(())
}

#[tokio::test]
async fn writer_ownership_follows_the_group() -> TestResult {
    let (_dir, log) = log();
    common::ownership_splits_partitions(log.clone(), log).await
}
