//! Properties over random event sequences (embedded log), once per
//! database (`sqlite::<property>`, `postgres::<property>`):
//! - snapshot + the events after it == a full replay;
//! - time travel to any version == folding that prefix;
//! - a projection rebuilt from offset 0 == the same projection fed
//!   incrementally in random chunks.

mod common;

use common::Backend;
use proptest::prelude::*;
use ultracore_es::account::{Account, AccountBalances, AccountEvent};
use ultracore_es::{Cut, Database, EventStore, Expected, ProjectionRunner, StoreOptions};
use ultracore_log::EnvelopeBuilder;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

fn events() -> impl Strategy<Value = Vec<AccountEvent>> {
    prop::collection::vec(
        prop_oneof![
            (1i64..10_000).prop_map(|c| AccountEvent::Deposited { amount_cents: c }),
            (1i64..10_000).prop_map(|c| AccountEvent::Withdrawn { amount_cents: c }),
        ],
        0..120,
    )
    .prop_map(|mut rest| {
        rest.insert(0, AccountEvent::Opened { owner: "p".into() });
        rest
    })
}

/// Saves `events` in chunks of the given sizes through `save`, so snapshots are taken on the way.
async fn save_in_chunks(
    store: &EventStore<EmbeddedLog>,
    id: &str,
    events: &[AccountEvent],
    chunks: &[usize],
) {
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    while at < events.len() {
        let n = (*sizes.next().unwrap()).min(events.len() - at);
        let loaded = store.load::<Account>(id).await.unwrap();
        store
            .save(&loaded, events[at..at + n].to_vec())
            .await
            .unwrap();
        at += n;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Each property as a proptest once per database.
macro_rules! properties_on {
    ($($module:ident: $backend:expr),*) => {$(
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

                #[test]
                fn snapshot_plus_rest_equals_full_replay(
                    events in events(),
                    every in 1u64..20,
                    chunks in prop::collection::vec(1usize..15, 1..5),
                ) {
                    super::snapshot_plus_rest_equals_full_replay($backend, &events, every, &chunks);
                }

                #[test]
                fn time_travel_equals_folding_the_prefix(
                    events in events(),
                    every in 1u64..20,
                    cuts in prop::collection::vec(0u64..130, 1..6),
                ) {
                    super::time_travel_equals_folding_the_prefix($backend, &events, every, &cuts);
                }

                #[test]
                fn rebuild_equals_incremental(
                    per_account in prop::collection::vec(events(), 1..4),
                    batch in 1usize..50,
                    rounds in 1usize..4,
                ) {
                    super::rebuild_equals_incremental($backend, &per_account, batch, rounds);
                }
            }
        }
    )*};
}

properties_on!(sqlite: Backend::Sqlite, postgres: Backend::Postgres);

fn snapshot_plus_rest_equals_full_replay(
    backend: Backend,
    events: &[AccountEvent],
    every: u64,
    chunks: &[usize],
) {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let test_db = backend.database();
        let db = test_db.db.clone();
        let snapshotting = EventStore::new(
            log.clone(),
            db.clone(),
            StoreOptions::default().snapshot_every("Account", every),
        )
        .unwrap();
        save_in_chunks(&snapshotting, "p", events, chunks).await;
        let with = snapshotting.load::<Account>("p").await.unwrap();
        let plain = EventStore::new(
            log,
            db,
            StoreOptions::default().snapshot_every("Account", 0),
        )
        .unwrap();
        let full = plain.load::<Account>("p").await.unwrap();
        assert_eq!(full.from_snapshot, None);
        assert_eq!(full.events_replayed, events.len() as u64);
        if events.len() as u64 >= every {
            assert!(with.from_snapshot.is_some(), "a snapshot was used");
        }
        assert_eq!(with.version, full.version);
        assert_eq!(with.state, full.state);
        assert_eq!(full.state, common::fold(events));
    });
}

fn time_travel_equals_folding_the_prefix(
    backend: Backend,
    events: &[AccountEvent],
    every: u64,
    cuts: &[u64],
) {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let store = common::store_with(
            log,
            backend,
            StoreOptions::default().snapshot_every("Account", every),
        );
        let b = EnvelopeBuilder::new("Account", "p");
        let envelopes = events.iter().map(|e| b.build(e.clone())).collect();
        store
            .append::<Account>("p", Expected::NoStream, envelopes)
            .await
            .unwrap();
        store.load::<Account>("p").await.unwrap(); // leaves a snapshot at the end
        for &cut in cuts {
            let upto = cut.min(events.len() as u64);
            let at = store
                .load_at::<Account>("p", Cut::Version(cut))
                .await
                .unwrap();
            assert_eq!(at.version, upto);
            assert_eq!(at.state, common::fold(&events[..upto as usize]));
            let history = store
                .history::<Account>("p", Cut::Version(cut))
                .await
                .unwrap();
            let payloads: Vec<AccountEvent> = history.into_iter().map(|e| e.payload).collect();
            assert_eq!(payloads, events[..upto as usize].to_vec());
        }
    });
}

fn rebuild_equals_incremental(
    backend: Backend,
    per_account: &[Vec<AccountEvent>],
    batch: usize,
    rounds: usize,
) {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
        let store = common::store(log.clone(), backend);
        let db = store.database().clone();
        let mut runner = ProjectionRunner::new(log, db.clone(), AccountBalances::default())
            .unwrap()
            .with_max_batch(batch);
        // Write in rounds, catching up after each: the incremental read model.
        for round in 0..rounds {
            for (i, events) in per_account.iter().enumerate() {
                let id = format!("a{i}");
                let n = events.len();
                let (from, to) = (n * round / rounds, n * (round + 1) / rounds);
                if from < to {
                    let loaded = store.load::<Account>(&id).await.unwrap();
                    store
                        .save(&loaded, events[from..to].to_vec())
                        .await
                        .unwrap();
                }
            }
            runner.catch_up().await.unwrap();
        }
        let docs = |db: &Database| {
            let mut d = db.documents(AccountBalances::NAME, "balances").unwrap();
            d.extend(db.documents(AccountBalances::NAME, "totals").unwrap());
            d
        };
        let incremental = docs(&db);
        runner.rebuild().await.unwrap();
        assert_eq!(docs(&db), incremental);
        let total: usize = per_account.iter().map(Vec::len).sum();
        let totals = db
            .document(AccountBalances::NAME, "totals", "all")
            .unwrap()
            .unwrap();
        assert_eq!(totals["events"], total);
    });
}
