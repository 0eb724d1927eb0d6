//! Projections on the embedded log: catch-up from a checkpoint, exactly-once
//! application across crashes and redeliveries, rebuild, lag; once per
//! database (`sqlite::<test>`, `postgres::<test>`).

mod common;

use common::{Backend, TestDb, TestResult};
use serde_json::Value;
use ultracore_es::account::{Account, AccountBalances, AccountCommand, AccountEvent, TotalsDoc};
use ultracore_es::{
    topic_for, Database, EventStore, Expected, Projection, ProjectionRunner, StoreOptions, Views,
};
use ultracore_log::{EnvelopeBuilder, EventLogExt, RawEnvelope};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

// Fields drop in order: the store and the log before the database.
struct Setup {
    store: EventStore<EmbeddedLog>,
    log: EmbeddedLog,
    db: Database,
    _dir: tempfile::TempDir,
    _test_db: TestDb,
}

fn setup(backend: Backend) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let test_db = backend.database();
    let db = test_db.db.clone();
    let store = EventStore::new(log.clone(), db.clone(), StoreOptions::default()).unwrap();
    Setup {
        store,
        log,
        db,
        _dir: dir,
        _test_db: test_db,
    }
}

common::on_each_database!(
    catches_up_and_resumes_from_its_checkpoint,
    killed_between_apply_and_checkpoint_applies_nothing_twice,
    a_failed_batch_stores_nothing_and_is_retried,
    duplicates_and_losing_saves_on_the_log_are_skipped,
    rebuild_equals_incremental,
    run_follows_until_shutdown,
    migrations_are_versioned_and_reopen_cleanly,
);

/// Opens `accounts` accounts and deposits `deposits` times into each: returns the events written.
async fn write(store: &EventStore<EmbeddedLog>, accounts: usize, deposits: usize) -> u64 {
    let mut n = 0;
    for a in 0..accounts {
        let id = format!("acc-{a}");
        if store.version("Account", &id).await.unwrap() == 0 {
            store
                .execute::<Account>(&id, AccountCommand::Open { owner: id.clone() })
                .await
                .unwrap();
            n += 1;
        }
        for d in 0..deposits {
            store
                .execute::<Account>(
                    &id,
                    AccountCommand::Deposit {
                        cents: (d + 1) as i64,
                    },
                )
                .await
                .unwrap();
            n += 1;
        }
    }
    n
}

fn totals(db: &Database, projection: &str) -> TotalsDoc {
    db.document(projection, "totals", "all")
        .unwrap()
        .map(|v| serde_json::from_value(v).unwrap())
        .unwrap_or_default()
}

fn all_docs(db: &Database, projection: &str) -> Vec<(String, Value)> {
    let mut docs = db.documents(projection, "balances").unwrap();
    docs.extend(db.documents(projection, "totals").unwrap());
    docs
}

async fn catches_up_and_resumes_from_its_checkpoint(backend: Backend) -> TestResult {
    let s = setup(backend);
    let written = write(&s.store, 3, 4).await;
    let mut runner =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::default())?;
    assert_eq!(runner.status().await?.lag, written);
    let first = runner.catch_up().await?;
    assert_eq!(first.applied, written);
    assert_eq!(runner.status().await?.lag, 0);
    drop(runner);
    let more = write(&s.store, 4, 1).await;
    // A new runner (a restart) continues from the checkpoint.
    let mut runner =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::default())?;
    assert_eq!(runner.status().await?.lag, more);
    let second = runner.catch_up().await?;
    assert_eq!(second.applied, more);
    let t = totals(&s.db, AccountBalances::NAME);
    assert_eq!(t.events, written + more);
    assert_eq!(t.accounts, 4);
    let acc0: Value =
        s.db.document(AccountBalances::NAME, "balances", "acc-0")?
            .unwrap();
    assert_eq!(acc0["balance_cents"], 1 + 2 + 3 + 4 + 1);
    Ok(())
}

async fn killed_between_apply_and_checkpoint_applies_nothing_twice(backend: Backend) -> TestResult {
    let s = setup(backend);
    let written = write(&s.store, 2, 5).await;
    let mut runner =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::default())?
            .with_max_batch(3);
    runner.step().await?;
    // The next batch is applied and stored, then the process "dies" before
    // the consumer group learns about it.
    runner.crash_after_next_apply();
    assert!(runner.step().await.is_err());
    drop(runner);
    let mut restarted =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::default())?;
    let stats = restarted.catch_up().await?;
    assert!(
        stats.skipped >= 3,
        "the redelivered batch is skipped: {stats:?}"
    );
    let t = totals(&s.db, AccountBalances::NAME);
    assert_eq!(t.events, written, "every event applied exactly once");
    assert_eq!(t.balance_cents, 2 * 15);
    Ok(())
}

/// A projection that fails on its n-th event, once.
struct Flaky {
    inner: AccountBalances,
    fail_at: Option<u64>,
    seen: u64,
}

impl Projection for Flaky {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn topics(&self) -> Vec<String> {
        self.inner.topics()
    }
    fn apply(&mut self, event: &RawEnvelope, views: &mut Views<'_>) -> ultracore_es::Result<()> {
        self.seen += 1;
        if Some(self.seen) == self.fail_at {
            return Err(ultracore_es::Error::InvalidArgument("disk on fire".into()));
        }
        self.inner.apply(event, views)
    }
}

async fn a_failed_batch_stores_nothing_and_is_retried(backend: Backend) -> TestResult {
    let s = setup(backend);
    let written = write(&s.store, 2, 3).await;
    let flaky = Flaky {
        inner: AccountBalances::default(),
        fail_at: Some(5),
        seen: 0,
    };
    let mut runner = ProjectionRunner::new(s.log.clone(), s.db.clone(), flaky)?;
    let err = runner.catch_up().await.unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(totals(&s.db, AccountBalances::NAME).events, 0);
    let stats = runner.catch_up().await?;
    assert_eq!(stats.applied, written);
    assert_eq!(totals(&s.db, AccountBalances::NAME).events, written);
    Ok(())
}

async fn duplicates_and_losing_saves_on_the_log_are_skipped(backend: Backend) -> TestResult {
    let s = setup(backend);
    let written = write(&s.store, 1, 2).await;
    let history = s
        .store
        .raw_history("Account", "acc-0", ultracore_es::Cut::Latest)
        .await?;
    let topic = topic_for("Account");
    // A record stored twice, and a save that lost the race for version 3
    // (a writer that did not see the winner), continuing with version 4.
    s.log.append_one(&topic, history[1].to_record()).await?;
    let b = EnvelopeBuilder::new("Account", "acc-0");
    let loser1 = b
        .clone()
        .version(3)
        .build(AccountEvent::Deposited { amount_cents: 1000 });
    let loser2 = b
        .version(4)
        .build(AccountEvent::Deposited { amount_cents: 1000 });
    for e in [&loser1, &loser2] {
        let rec = e
            .to_record()
            .with_header(ultracore_es::COMMIT_HEADER, loser1.event_id.to_string());
        s.log.append_one(&topic, rec).await?;
    }
    let mut runner =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::default())?;
    let stats = runner.catch_up().await?;
    assert_eq!(stats.applied, written);
    assert_eq!(stats.skipped, 3);
    assert_eq!(totals(&s.db, AccountBalances::NAME).balance_cents, 3);
    // The store agrees: the loser is not part of the aggregate, and the next save is version 4.
    let loaded = s.store.load::<Account>("acc-0").await?;
    assert_eq!((loaded.version, loaded.state.balance_cents), (3, 3));
    let saved = s
        .store
        .append::<Account>(
            "acc-0",
            Expected::Exact(3),
            vec![EnvelopeBuilder::new("Account", "acc-0")
                .build(AccountEvent::Deposited { amount_cents: 4 })],
        )
        .await?;
    assert_eq!(saved.version, 4);
    runner.catch_up().await?;
    assert_eq!(totals(&s.db, AccountBalances::NAME).balance_cents, 7);
    Ok(())
}

async fn rebuild_equals_incremental(backend: Backend) -> TestResult {
    let s = setup(backend);
    let mut runner =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::default())?
            .with_max_batch(7);
    for round in 0..3 {
        write(&s.store, 3 + round, 2).await;
        runner.catch_up().await?;
    }
    let incremental = all_docs(&s.db, AccountBalances::NAME);
    let generation = runner.status().await?.generation;
    let stats = runner.rebuild().await?;
    assert_eq!(stats.applied, totals(&s.db, AccountBalances::NAME).events);
    assert_eq!(all_docs(&s.db, AccountBalances::NAME), incremental);
    let status = runner.status().await?;
    assert_eq!(status.generation, generation + 1);
    assert_eq!(status.lag, 0);
    // A second projection built in one go from scratch agrees too.
    let mut fresh =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::named("fresh"))?;
    fresh.catch_up().await?;
    assert_eq!(all_docs(&s.db, "fresh"), incremental);
    Ok(())
}

async fn run_follows_until_shutdown(backend: Backend) -> TestResult {
    let s = setup(backend);
    let written = write(&s.store, 2, 2).await;
    let mut runner =
        ProjectionRunner::new(s.log.clone(), s.db.clone(), AccountBalances::default())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let db = s.db.clone();
    let handle = tokio::spawn(async move {
        runner
            .run(async {
                rx.await.ok();
            })
            .await
    });
    for _ in 0..100 {
        if totals(&db, AccountBalances::NAME).events == written {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tx.send(()).ok();
    handle.await??;
    assert_eq!(totals(&s.db, AccountBalances::NAME).events, written);
    Ok(())
}

async fn migrations_are_versioned_and_reopen_cleanly(backend: Backend) -> TestResult {
    let test_db = backend.database();
    let id = test_db.db.with(|s| s.instance_id())?;
    assert_eq!(test_db.schema_version()?, 1);
    // Opening again applies nothing and keeps the instance id.
    let again = test_db.reopen()?;
    assert_eq!(test_db.schema_version()?, 1);
    assert_eq!(again.with(|s| s.instance_id())?, id);
    assert_ne!(backend.database().db.with(|s| s.instance_id())?, id);
    if backend == Backend::Sqlite {
        assert!(
            wal_mode_in_header(&test_db.sqlite_path()),
            "WAL file mode recorded in the database header"
        );
    }
    Ok(())
}

/// SQLite records WAL mode in the file header (bytes 18 and 19 are 2).
fn wal_mode_in_header(path: &std::path::Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    bytes.len() > 20 && bytes[18] == 2 && bytes[19] == 2
}
