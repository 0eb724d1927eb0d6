//! Change capture on PostgreSQL by logical replication, onto the embedded
//! log and Kafka: the test cluster from `scripts/pg-up.sh` (URL in
//! `ULTRACORE_TEST_PG`); each test makes a database of its own and drops
//! it (and its replication slot) at the end.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use ultracore_cdc::model::{NewConversation, NewMessage, UserPatch};
use ultracore_cdc::postgres::{PgDb, PgRelay, PgRelayOptions};
use ultracore_cdc::{verify, ChangeEvent, Op, RelayOptions, SnapshotMark};
use ultracore_log::{EventLog, Record};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

use common::TestResult;

/// The test cluster. Unset is a failure, not a skip: this suite is part of the tests.
fn cluster() -> String {
    std::env::var("ULTRACORE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG is not set: run scripts/test.sh, which starts a local PostgreSQL \
             cluster (scripts/pg-up.sh) and sets it"
        )
    })
}

/// A database of its own, dropped (with its slot) when the test ends.
struct TestDb {
    url: String,
    name: String,
}

impl TestDb {
    async fn new() -> Result<TestDb, Box<dyn std::error::Error>> {
        let name = format!("cdc_relay_{:08x}", rand::random::<u32>());
        let admin = admin().await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let base = cluster();
        let (head, _) = base.rsplit_once('/').ok_or("no database in the URL")?;
        Ok(TestDb {
            url: format!("{head}/{name}"),
            name,
        })
    }
}

async fn admin() -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let (client, conn) = tokio_postgres::connect(&cluster(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop needs its own runtime: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(a) = admin().await {
                    let _ = a
                        .execute(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active",
                            &[&name],
                        )
                        .await;
                    let _ = a.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            })
        })
        .join();
    }
}

/// The relay's stored position and when it was stored.
async fn stored(sql: &tokio_postgres::Client) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = sql
        .query_one(
            "SELECT position, committed_at_ms FROM ultracore_cdc_state",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

fn options() -> PgRelayOptions {
    PgRelayOptions {
        relay: RelayOptions {
            recovery_idle: Duration::from_millis(100),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn events(records: &[Record]) -> Vec<ChangeEvent> {
    records
        .iter()
        .filter(|r| !r.value.is_empty())
        .map(|r| serde_json::from_slice(&r.value).expect("a change event"))
        .collect()
}

async fn check<L: EventLog>(log: &L, db: &PgDb) -> ultracore_cdc::Verification {
    let users = db.rows(&ultracore_cdc::tables::USERS).await.expect("users");
    let conversations = db
        .rows(&ultracore_cdc::tables::CONVERSATIONS)
        .await
        .expect("conversations");
    verify(log, Duration::from_secs(60), |t| {
        Ok(if t.name == "users" {
            users.clone()
        } else {
            conversations.clone()
        })
    })
    .await
    .expect("verify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_streams_every_change_and_psql_is_captured() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    streams_every_change(log).await
}

/// The same on Kafka (the test broker from `scripts/kafka-up.sh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_onto_kafka_streams_every_change() -> TestResult {
    let broker = std::env::var("ULTRACORE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!("ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local Kafka-protocol broker and sets it")
    });
    let log = ultracore_log_kafka::KafkaLog::connect(
        ultracore_log_kafka::KafkaConfig::new(broker)
            .with_prefix(format!("cdcpg{:08x}.", rand::random::<u32>()))
            .with_connect_timeout(Duration::from_secs(30)),
    )
    .await?;
    streams_every_change(log).await
}

async fn streams_every_change<L: EventLog>(log: L) -> TestResult {
    let test = TestDb::new().await?;
    let db = PgDb::connect(&test.url).await?;
    let relay = PgRelay::new(log.clone(), &test.url, options());
    assert_eq!(relay.drain().await?, 0, "a snapshot of empty tables");
    for i in 0..10 {
        db.create_user(&common::user(i)).await?;
    }
    db.update_user(
        "u00003",
        &UserPatch {
            risk_profile: Some("growth".into()),
            phone: Some(Some("+61 2 9374 4000".into())),
            ..Default::default()
        },
    )
    .await?;
    assert!(db.delete_user("u00004").await?);
    let conv = db
        .create_conversation(&NewConversation {
            id: Some("conv-1".into()),
            customer_id: "u00001".into(),
            subject: Some("Card fees".into()),
        })
        .await?;
    // Long enough to be TOASTed: an update that leaves it alone sends it as unchanged.
    let long = "x".repeat(3_000);
    for text in ["What does my card cost? \"quoted\" ünïcode", long.as_str()] {
        db.add_message(
            &conv.id,
            &NewMessage {
                role: "customer".into(),
                text: text.into(),
            },
        )
        .await?;
    }
    // psql, another process, writes too.
    let out = std::process::Command::new("psql")
        .arg(&test.url)
        .args(["-v", "ON_ERROR_STOP=1", "-qc"])
        .arg(
            "INSERT INTO users (id, name, email, country, risk_profile, status, created_at, updated_at) \
             VALUES ('u-psql', 'Psql User', 'psql@example.com', 'NZ', 'moderate', 'active', now(), now()); \
             UPDATE conversations SET status = 'closed' WHERE id = 'conv-1';",
        )
        .output()?;
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(relay.drain().await?, 17);

    let users = common::records(&log, "db.changes.users").await;
    let ev = events(&users);
    let update = ev.iter().find(|e| e.op == Op::Update).ok_or("no update")?;
    assert_eq!(update.before.as_ref().unwrap()["risk_profile"], "balanced");
    assert_eq!(update.after.as_ref().unwrap()["risk_profile"], "growth");
    assert_eq!(update.source.connector, "postgresql");
    assert!(update.source.lsn.is_some() && update.source.tx_id.is_some());
    let seq: Vec<Option<String>> =
        serde_json::from_str(update.source.sequence.as_deref().unwrap())?;
    assert_eq!(
        seq[1].as_deref(),
        Some(update.source.lsn.unwrap().to_string().as_str())
    );
    assert!(ev
        .iter()
        .any(|e| e.op == Op::Create && e.after.as_ref().unwrap()["id"] == "u-psql"));
    assert_eq!(
        users.iter().filter(|r| r.value.is_empty()).count(),
        1,
        "one tombstone"
    );
    let ts = ev[0].after.as_ref().unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");

    let conversations = events(&common::records(&log, "db.changes.conversations").await);
    let closed = conversations.last().ok_or("no conversation events")?;
    assert_eq!(closed.after.as_ref().unwrap()["status"], "closed");
    let messages: Value =
        serde_json::from_str(closed.after.as_ref().unwrap()["messages"].as_str().unwrap())?;
    assert_eq!(
        messages[1]["text"].as_str().map(str::len),
        Some(3_000),
        "the TOASTed value came from the old row"
    );

    let v = check(&log, &db).await;
    assert!(v.ok(), "{v:#?}");
    // A new relay resumes from the slot: only what is new.
    db.create_user(&common::user(99)).await?;
    let again = PgRelay::new(log.clone(), &test.url, options());
    assert_eq!(again.drain().await?, 1);
    assert!(check(&log, &db).await.ok());
    Ok(())
}

/// The relay stores its position without waiting for the server's flush,
/// so a crash of the server can take the last ones back. An older stored
/// position than what is on the log (and than the slot's) must cost a
/// longer read at start, never a change sent twice or one missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_position_lost_by_the_server_repeats_nothing() -> TestResult {
    let test = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let db = PgDb::connect(&test.url).await?;
    let (sql, conn) = tokio_postgres::connect(&test.url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let relay = PgRelay::new(log.clone(), &test.url, options());
    assert_eq!(relay.drain().await?, 0, "a snapshot of empty tables");
    let before = stored(&sql).await?;
    for i in 0..5 {
        db.create_user(&common::user(i)).await?;
    }
    assert!(db.delete_user("u00002").await?);
    assert_eq!(relay.drain().await?, 6);
    let after = stored(&sql).await?;
    assert!(
        after.0 > before.0,
        "the position moved: {before:?} → {after:?}"
    );
    // The server comes back without the positions stored since `before`.
    sql.execute(
        "UPDATE ultracore_cdc_state SET position = $1, committed_at_ms = $2",
        &[&before.0, &before.1],
    )
    .await?;
    for i in 5..8 {
        db.create_user(&common::user(i)).await?;
    }
    let again = PgRelay::new(log.clone(), &test.url, options());
    assert_eq!(again.drain().await?, 3, "only the new changes");
    assert!(stored(&sql).await?.0 > after.0);
    let users = common::records(&log, "db.changes.users").await;
    assert_eq!(
        users.len(),
        5 + 1 + 1 + 3,
        "5 creates, a delete and its tombstone, 3 creates"
    );
    let v = check(&log, &db).await;
    assert!(v.ok(), "{v:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_snapshot_hands_over_to_streaming() -> TestResult {
    let test = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let db = PgDb::connect(&test.url).await?;
    for i in 0..5_000 {
        db.create_user(&common::user(i)).await?;
    }
    // A writer inserts new users while the relay takes its snapshot.
    let writer = {
        let db = PgDb::connect(&test.url).await?;
        tokio::spawn(async move {
            for i in 0..400 {
                db.create_user(&common::user(10_000 + i)).await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<_, ultracore_cdc::Error>(())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let relay = PgRelay::new(
        log.clone(),
        &test.url,
        PgRelayOptions {
            relay: RelayOptions {
                snapshot_chunk: 100,
                ..options().relay
            },
            ..options()
        },
    );
    relay.drain().await?;
    writer.await??;
    relay.drain().await?;
    let ev = events(&common::records(&log, "db.changes.users").await);
    let snapshot: Vec<&ChangeEvent> = ev.iter().filter(|e| e.op == Op::Read).collect();
    let streamed: Vec<&ChangeEvent> = ev.iter().filter(|e| e.op != Op::Read).collect();
    assert_eq!(
        snapshot
            .iter()
            .filter(|e| e.source.snapshot == SnapshotMark::Last)
            .count(),
        1
    );
    assert!(
        snapshot.len() > 5_000 && !streamed.is_empty(),
        "{} snapshot rows, {} streamed: the writer did not overlap the snapshot",
        snapshot.len(),
        streamed.len()
    );
    let mut ids = HashSet::new();
    for e in &ev {
        assert!(
            ids.insert(e.after.as_ref().unwrap()["id"].as_str().unwrap().to_owned()),
            "a row twice"
        );
    }
    assert_eq!(ids.len(), 5_400, "every row once, as r or as c");
    let high = snapshot[0].source.lsn.unwrap();
    // A change may be written before the consistent point; its transaction
    // commits after it (the commit LSN leads `sequence`).
    for e in &streamed {
        let seq: Vec<Option<String>> = serde_json::from_str(e.source.sequence.as_deref().unwrap())?;
        let commit: u64 = seq[0].as_deref().ok_or("no commit LSN")?.parse()?;
        assert!(
            commit > high,
            "a change committed at {commit}, before the snapshot at {high}, was streamed"
        );
    }
    let v = check(&log, &db).await;
    assert!(v.ok(), "{v:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wal_level_other_than_logical_is_refused_naming_it() -> TestResult {
    let url = std::env::var("ULTRACORE_TEST_PG_REPLICA").unwrap_or_else(|_| {
        panic!("ULTRACORE_TEST_PG_REPLICA is not set: run scripts/test.sh, which starts a cluster with wal_level=replica and sets it")
    });
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    PgDb::connect(&url).await?;
    let err = PgRelay::new(log, &url, options())
        .drain()
        .await
        .expect_err("capture on wal_level=replica");
    let message = err.to_string();
    assert!(
        message.contains("wal_level is 'replica'") && message.contains("wal_level = logical"),
        "{message}"
    );
    Ok(())
}

/// Writes to other tables move the server's WAL; an idle slot that did not
/// follow would pin it. The relay confirms the WAL end the server's
/// keepalives carry whenever nothing is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_idle_slot_follows_the_server() -> TestResult {
    let test = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    PgDb::connect(&test.url).await?;
    let relay = std::sync::Arc::new(PgRelay::new(
        log.clone(),
        &test.url,
        PgRelayOptions {
            status_interval: Duration::from_millis(200),
            ..options()
        },
    ));
    relay.drain().await?;
    let token = ultracore_runtime::CancellationToken::new();
    let mut running = {
        let (relay, token) = (relay.clone(), token.clone());
        tokio::spawn(async move { relay.run(token).await })
    };
    let (client, conn) = tokio_postgres::connect(&test.url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE elsewhere (n integer);
             INSERT INTO elsewhere SELECT generate_series(1, 20000);",
        )
        .await?;
    let target: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    wait_for(
        &mut running,
        &format!("the slot to follow the server to {target} while the captured tables were idle"),
        || async {
            let behind: bool = client
                .query_one(
                    "SELECT confirmed_flush_lsn < $1::text::pg_lsn FROM pg_replication_slots WHERE database = current_database()",
                    &[&target],
                )
                .await?
                .get(0);
            Ok((!behind).then_some(()))
        },
    )
    .await?;
    token.cancel();
    running.await??;
    Ok(())
}

/// Asks `check` every 50 ms until it answers, for at most 30 s; fails
/// at once, with the relay's error, if the relay stops first.
async fn wait_for<T, F, Fut>(
    relay: &mut tokio::task::JoinHandle<ultracore_cdc::Result<()>>,
    what: &str,
    mut check: F,
) -> Result<T, Box<dyn std::error::Error>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, tokio_postgres::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(answer) = check().await? {
            return Ok(answer);
        }
        if relay.is_finished() {
            (&mut *relay).await??;
            panic!("the relay stopped while waiting for {what}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 30 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The slot's walsender: `(active, pid)`.
async fn slot_holder(
    client: &tokio_postgres::Client,
) -> Result<(bool, Option<i32>), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT active, active_pid FROM pg_replication_slots WHERE database = current_database()",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// A relay that starts while another still holds the slot (a restarted
/// instance whose predecessor's connection the server has not let go of
/// yet) waits for it instead of failing, and takes over when it is free;
/// a drain followed at once by `run` finds the slot free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_relay_waits_for_a_slot_in_use() -> TestResult {
    let test = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    PgDb::connect(&test.url).await?;
    let (client, conn) = tokio_postgres::connect(&test.url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let spawn = |token: &ultracore_runtime::CancellationToken| {
        let relay = PgRelay::new(log.clone(), &test.url, options());
        let token = token.clone();
        tokio::spawn(async move { relay.run(token).await })
    };
    PgRelay::new(log.clone(), &test.url, options())
        .drain()
        .await?;
    let first_token = ultracore_runtime::CancellationToken::new();
    let mut first = spawn(&first_token);
    let holder = wait_for(&mut first, "the first relay to hold the slot", || async {
        Ok(match slot_holder(&client).await? {
            (true, Some(pid)) => Some(pid),
            _ => None,
        })
    })
    .await?;
    let second_token = ultracore_runtime::CancellationToken::new();
    let mut second = spawn(&second_token);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !second.is_finished(),
        "the second relay gave up on a slot in use"
    );
    assert_eq!(slot_holder(&client).await?, (true, Some(holder)));
    first_token.cancel();
    first.await??;
    wait_for(
        &mut second,
        "the second relay to take the slot over",
        || async {
            Ok(match slot_holder(&client).await? {
                (true, Some(pid)) if pid != holder => Some(()),
                _ => None,
            })
        },
    )
    .await?;
    second_token.cancel();
    second.await??;
    assert!(
        !slot_holder(&client).await?.0,
        "a stopped relay let go of the slot"
    );
    Ok(())
}
