//! Scenarios every backend runs: the same assertions on the embedded log
//! (`tests/embedded.rs`) and on Kafka (`tests/kafka.rs`), each on the
//! database a [`Backend`] names (SQLite or PostgreSQL).
#![allow(dead_code, unused_imports)]

mod database;

pub use database::*;

use std::error::Error as _;

use chrono::{TimeZone, Utc};
use serde_json::json;
use ultracore_es::account::{Account, AccountCommand, AccountEvent};
use ultracore_es::{
    topic_for, Aggregate, CommandError, Cut, Database, Error, EventStore, Expected, StoreOptions,
};
use ultracore_log::{EnvelopeBuilder, EventLog, EventLogExt};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An event store on a database of its own, which lives as long as the store.
pub struct Store<L: EventLog> {
    // Dropped in this order: the store, then its database.
    store: EventStore<L>,
    pub db: TestDb,
}

impl<L: EventLog> std::ops::Deref for Store<L> {
    type Target = EventStore<L>;
    fn deref(&self) -> &EventStore<L> {
        &self.store
    }
}

pub fn store<L: EventLog>(log: L, backend: Backend) -> Store<L> {
    store_with(log, backend, StoreOptions::default())
}

pub fn store_with<L: EventLog>(log: L, backend: Backend, options: StoreOptions) -> Store<L> {
    let db = backend.database();
    let store = EventStore::new(log, db.db.clone(), options).unwrap();
    Store { store, db }
}

pub fn fold(events: &[AccountEvent]) -> Account {
    let mut a = Account::default();
    for e in events {
        a.apply(e);
    }
    a
}

pub async fn open<L: EventLog>(store: &EventStore<L>, id: &str) -> TestResult {
    store
        .execute::<Account>(
            id,
            AccountCommand::Open {
                owner: "ada".into(),
            },
        )
        .await?;
    Ok(())
}

/// Load, handle, save; state and version come back as stored.
pub async fn load_handle_save<L: EventLog>(log: L, backend: Backend) -> TestResult {
    let store = store(log, backend);
    open(&store, "acc-1").await?;
    for cents in [100, 250, 50] {
        store
            .execute::<Account>("acc-1", AccountCommand::Deposit { cents })
            .await?;
    }
    let loaded = store.load::<Account>("acc-1").await?;
    assert_eq!(loaded.version, 4);
    assert_eq!(loaded.state.balance_cents, 400);
    assert_eq!(loaded.state.owner, "ada");
    let rejected = store
        .execute::<Account>("acc-1", AccountCommand::Withdraw { cents: 401 })
        .await;
    assert!(matches!(rejected, Err(CommandError::Rejected(_))));
    assert_eq!(store.version("Account", "acc-1").await?, 4);
    let history = store.history::<Account>("acc-1", Cut::Latest).await?;
    let versions: Vec<u64> = history.iter().map(|e| e.version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    assert!(history.iter().all(|e| e.aggregate_id == "acc-1"));
    // Unknown aggregates load empty at version 0.
    assert_eq!(store.load::<Account>("nobody").await?.version, 0);
    Ok(())
}

/// Two writers load the same version in one store and both save: exactly one wins.
pub async fn concurrent_saves_one_wins<L: EventLog>(log: L, backend: Backend) -> TestResult {
    let store = store(log, backend);
    open(&store, "acc-c").await?;
    for round in 0..3 {
        let a = store.load::<Account>("acc-c").await?;
        let b = store.load::<Account>("acc-c").await?;
        assert_eq!(a.version, b.version);
        let ea = a.state.handle(AccountCommand::Deposit { cents: 10 })?;
        let eb = b.state.handle(AccountCommand::Deposit { cents: 20 })?;
        let (ra, rb) = tokio::join!(store.save(&a, ea), store.save(&b, eb));
        let v = a.version;
        let (won, lost) = match (ra, rb) {
            (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s, e),
            (ra, rb) => panic!("round {round}: expected one winner, got {ra:?} and {rb:?}"),
        };
        assert_eq!(won.version, v + 1);
        match lost {
            Error::Conflict {
                expected, actual, ..
            } => {
                assert_eq!(expected, Expected::Exact(v));
                assert_eq!(actual, v + 1);
            }
            other => panic!("expected a conflict, got {other}"),
        }
    }
    assert_eq!(store.version("Account", "acc-c").await?, 4);
    Ok(())
}

/// Two independent writers (each its own store, database and connection, as
/// two processes): both load version v, both save; partition order decides,
/// exactly one wins, and both then read the same stream.
pub async fn two_writers_one_wins<L: EventLog>(
    first: L,
    second: L,
    id: &str,
    backend: Backend,
) -> TestResult {
    let one = store(first, backend);
    let two = store(second, backend);
    open(&one, id).await?;
    for _ in 0..3 {
        let a = one.load::<Account>(id).await?;
        let b = two.load::<Account>(id).await?;
        assert_eq!(a.version, b.version, "both writers see the same version");
        let v = a.version;
        let ea = a.state.handle(AccountCommand::Deposit { cents: 1 })?;
        let eb = b.state.handle(AccountCommand::Deposit { cents: 2 })?;
        let (ra, rb) = tokio::join!(one.save(&a, ea), two.save(&b, eb));
        let wins = [ra.is_ok(), rb.is_ok()].iter().filter(|w| **w).count();
        assert_eq!(wins, 1, "exactly one writer wins: {ra:?} / {rb:?}");
        for r in [ra, rb] {
            match r {
                Ok(s) => assert_eq!(s.version, v + 1),
                Err(Error::Conflict {
                    actual, expected, ..
                }) => {
                    assert_eq!(expected, Expected::Exact(v));
                    assert_eq!(actual, v + 1);
                }
                Err(e) => panic!("expected a conflict, got {e}"),
            }
        }
    }
    let x = one.load::<Account>(id).await?;
    let y = two.load::<Account>(id).await?;
    assert_eq!(x.version, 4);
    assert_eq!((x.version, &x.state), (y.version, &y.state));
    Ok(())
}

/// Conflicts report the real version, also past one digit.
pub async fn conflict_at_high_versions<L: EventLog>(
    log: L,
    events: u64,
    backend: Backend,
) -> TestResult {
    let store = store(log, backend);
    // At version 0: a second "create" finds the stream.
    open(&store, "acc-h").await?;
    let err = store
        .append::<Account>(
            "acc-h",
            Expected::NoStream,
            vec![
                EnvelopeBuilder::new("Account", "acc-h").build(AccountEvent::Opened {
                    owner: "eve".into(),
                }),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { actual: 1, .. }), "{err}");
    let b = EnvelopeBuilder::new("Account", "acc-h");
    let mut version = 1;
    while version < events {
        let n = (events - version).min(1_000);
        let batch = (0..n)
            .map(|_| b.build(AccountEvent::Deposited { amount_cents: 1 }))
            .collect();
        version = store
            .append::<Account>("acc-h", Expected::Exact(version), batch)
            .await?
            .version;
    }
    assert_eq!(version, events);
    let stale = store
        .append::<Account>(
            "acc-h",
            Expected::Exact(events - 1),
            vec![b.build(AccountEvent::Deposited { amount_cents: 1 })],
        )
        .await
        .unwrap_err();
    match stale {
        Error::Conflict {
            expected, actual, ..
        } => {
            assert_eq!(expected, Expected::Exact(events - 1));
            assert_eq!(actual, events);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(stale.to_string().contains(&format!("version {events}")));
    Ok(())
}

/// Saving events whose ids are stored is a no-op; a record stored twice on
/// the log is indexed once.
pub async fn idempotent_appends<L: EventLog>(log: L, backend: Backend) -> TestResult {
    let store = store(log.clone(), backend);
    open(&store, "acc-i").await?;
    let b = EnvelopeBuilder::new("Account", "acc-i");
    let events = vec![
        b.build(AccountEvent::Deposited { amount_cents: 5 }),
        b.build(AccountEvent::Deposited { amount_cents: 6 }),
    ];
    let first = store
        .append::<Account>("acc-i", Expected::Exact(1), events.clone())
        .await?;
    assert_eq!((first.version, first.stored), (3, 2));
    // The retry after a lost acknowledgement: same ids, same expectation.
    let again = store
        .append::<Account>("acc-i", Expected::Exact(1), events.clone())
        .await?;
    assert_eq!((again.version, again.stored), (3, 0));
    // Part of a batch stored: refused, nothing written.
    let mixed = vec![
        events[0].clone(),
        b.build(AccountEvent::Deposited { amount_cents: 7 }),
    ];
    let err = store
        .append::<Account>("acc-i", Expected::Any, mixed)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PartlyStored { .. }), "{err}");
    // The same record appended twice to the log (a producer retry outside the store).
    let history = store.raw_history("Account", "acc-i", Cut::Latest).await?;
    let mut dup = history[2].to_record();
    dup.headers.push(ultracore_log::Header::new(
        ultracore_es::COMMIT_HEADER,
        history[1].event_id.to_string(),
    ));
    log.append_one(&topic_for("Account"), dup).await?;
    let loaded = store.load::<Account>("acc-i").await?;
    assert_eq!(loaded.version, 3);
    assert_eq!(loaded.state.balance_cents, 11);
    assert_eq!(loaded.state.deposits, 2);
    Ok(())
}

/// Snapshots every N events; a snapshot of another state schema is ignored and rebuilt.
pub async fn snapshots<L: EventLog>(log: L, backend: Backend) -> TestResult {
    let store = store_with(
        log,
        backend,
        StoreOptions::default().snapshot_every("Account", 10),
    );
    let db = store.database();
    open(&store, "acc-s").await?;
    for _ in 0..24 {
        store
            .execute::<Account>("acc-s", AccountCommand::Deposit { cents: 1 })
            .await?;
    }
    let loaded = store.load::<Account>("acc-s").await?;
    assert_eq!(loaded.version, 25);
    assert_eq!(loaded.from_snapshot, Some(20));
    assert_eq!(loaded.events_replayed, 5);
    assert_eq!(loaded.state.balance_cents, 24);
    // A snapshot written by an older state schema, holding a wrong state.
    db.with(|s| {
        s.put_snapshot(
            "Account",
            "acc-s",
            &ultracore_es::Snapshot {
                version: 25,
                state_schema: Account::STATE_SCHEMA + 1,
                state: serde_json::to_vec(&json!({"garbage": true})).unwrap(),
            },
        )
    })?;
    let rebuilt = store.load::<Account>("acc-s").await?;
    assert_eq!(rebuilt.from_snapshot, None);
    assert_eq!(rebuilt.events_replayed, 25);
    assert_eq!(rebuilt.state, loaded.state);
    // The load rebuilt the snapshot in the current schema.
    let next = store.load::<Account>("acc-s").await?;
    assert_eq!(next.from_snapshot, Some(25));
    assert_eq!(next.state, loaded.state);
    Ok(())
}

/// Time travel by version and by timestamp.
pub async fn time_travel<L: EventLog>(log: L, backend: Backend) -> TestResult {
    let store = store_with(
        log,
        backend,
        StoreOptions::default().snapshot_every("Account", 3),
    );
    let b = EnvelopeBuilder::new("Account", "acc-t");
    let day = |d: u32| Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap();
    let mut events = vec![AccountEvent::Opened {
        owner: "ada".into(),
    }];
    events.extend((1..=6).map(|i| AccountEvent::Deposited {
        amount_cents: i * 100,
    }));
    let envelopes = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut env = b.build(e.clone());
            env.timestamp = day(i as u32 + 1);
            env
        })
        .collect();
    store
        .append::<Account>("acc-t", Expected::NoStream, envelopes)
        .await?;
    store.load::<Account>("acc-t").await?; // stores a snapshot at 7
    for v in 0..=7u64 {
        let at = store.load_at::<Account>("acc-t", Cut::Version(v)).await?;
        assert_eq!(at.version, v);
        assert_eq!(at.state, fold(&events[..v as usize]));
    }
    let noon_day3 = store.load_at::<Account>("acc-t", Cut::AsOf(day(3))).await?;
    assert_eq!(noon_day3.version, 3);
    assert_eq!(noon_day3.state.balance_cents, 300);
    let before_day3 = store
        .load_at::<Account>(
            "acc-t",
            Cut::AsOf(day(3) - chrono::Duration::milliseconds(1)),
        )
        .await?;
    assert_eq!(before_day3.version, 2);
    let before_all = store
        .load_at::<Account>("acc-t", Cut::AsOf(day(1) - chrono::Duration::days(1)))
        .await?;
    assert_eq!(before_all.version, 0);
    let history = store.history::<Account>("acc-t", Cut::Version(4)).await?;
    assert_eq!(history.len(), 4);
    Ok(())
}

/// A v1 payload on the log is upcast on read.
pub async fn upcasts_v1_events<L: EventLog>(log: L, backend: Backend) -> TestResult {
    let store = store(log, backend);
    open(&store, "acc-u").await?;
    let v1 = EnvelopeBuilder::new("Account", "acc-u").build_raw(
        "account_deposited",
        1,
        json!({"units": 3}),
    );
    store
        .append_raw("Account", "acc-u", Expected::Exact(1), vec![v1])
        .await?;
    store
        .execute::<Account>("acc-u", AccountCommand::Deposit { cents: 5 })
        .await?;
    let loaded = store.load::<Account>("acc-u").await?;
    assert_eq!(loaded.state.balance_cents, 305);
    let history = store.history::<Account>("acc-u", Cut::Latest).await?;
    assert_eq!(
        history[1].payload,
        AccountEvent::Deposited { amount_cents: 300 }
    );
    let raw = store.raw_history("Account", "acc-u", Cut::Latest).await?;
    assert_eq!(raw[1].schema_version, 1, "the log keeps what was written");
    assert_eq!(raw[2].schema_version, 2);
    Ok(())
}

/// The error chain of a conflict names both versions (what users read).
pub fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Refreshes until `ok` holds for the owned partition sets, or fails after `secs`.
async fn until_owned<L: EventLog>(
    members: &mut [&mut ultracore_es::Ownership<L>],
    secs: u64,
    ok: impl Fn(&[std::collections::BTreeSet<u32>]) -> bool,
) -> Vec<std::collections::BTreeSet<u32>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let mut sets = Vec::new();
        for m in members.iter_mut() {
            sets.push(m.refresh().await.unwrap().clone());
        }
        if ok(&sets) {
            return sets;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ownership did not settle: {sets:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The writer group gives every partition (so every aggregate) to exactly
/// one instance, and hands them over when an instance leaves.
pub async fn ownership_splits_partitions<L: EventLog>(
    first: L,
    second: L,
    backend: Backend,
) -> TestResult {
    use ultracore_es::Ownership;
    let one = store(first, backend);
    let two = store(second, backend);
    let all: std::collections::BTreeSet<u32> = (0..4).collect();
    let mut a = Ownership::join(&one, "Account").await?;
    until_owned(&mut [&mut a], 60, |s| s[0] == all).await;
    let mut b = Ownership::join(&two, "Account").await?;
    let sets = until_owned(&mut [&mut a, &mut b], 60, |s| {
        !s[0].is_empty() && !s[1].is_empty() && s[0].is_disjoint(&s[1]) && {
            let union: std::collections::BTreeSet<u32> = s[0].union(&s[1]).copied().collect();
            union == all
        }
    })
    .await;
    assert_eq!(sets[0].len() + sets[1].len(), 4);
    for i in 0..40 {
        let id = format!("acc-{i}");
        assert!(a.owns(&id) != b.owns(&id), "{id} has exactly one owner");
        let (owner, other) = if a.owns(&id) { (&a, &b) } else { (&b, &a) };
        owner.check(&id)?;
        let err = other.check(&id).unwrap_err();
        assert!(matches!(err, Error::NotOwner { .. }), "{err}");
    }
    drop(b);
    until_owned(&mut [&mut a], 60, |s| s[0] == all).await;
    Ok(())
}
