//! Scenarios every log runs: the same assertions on the embedded log
//! (`tests/embedded.rs`) and on Kafka (`tests/kafka.rs`).
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use ultracore_cdc::model::{NewConversation, NewMessage, NewUser, UserPatch};
use ultracore_cdc::sqlite::FILE_NAME;
use ultracore_cdc::{verify, ChangeEvent, Op, RelayOptions, SqliteDb, SqliteRelay};
use ultracore_log::{read_to_end, EventLog, Record, Seek};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn user(i: usize) -> NewUser {
    NewUser {
        id: Some(format!("u{i:05}")),
        name: format!("User {i}"),
        email: format!("user{i}@example.com"),
        phone: None,
        country: "AU".into(),
        risk_profile: "balanced".into(),
        status: "active".into(),
    }
}

pub fn relay<L: EventLog>(log: L, dir: &Path, options: RelayOptions) -> SqliteRelay<L> {
    SqliteRelay::open(log, dir.join(FILE_NAME), options).expect("open the relay")
}

pub async fn records<L: EventLog>(log: &L, topic: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let read = read_to_end(
        log,
        "cdc-test",
        topic,
        Seek::Beginning,
        deadline,
        Duration::from_millis(500),
        |r| out.push(r.clone()),
    )
    .await
    .expect("read the topic");
    assert!(read.complete, "{topic} was not read to its end");
    out
}

pub async fn check<L: EventLog>(log: &L, db: &SqliteDb) -> ultracore_cdc::Verification {
    verify(log, Duration::from_secs(60), |t| db.rows(t))
        .await
        .expect("verify")
}

/// Creates, updates, deletes and messages; the topics replay to the tables.
pub async fn streams_every_change<L: EventLog>(log: L) -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = SqliteDb::open(dir.path().join(FILE_NAME))?;
    let relay = relay(log.clone(), dir.path(), RelayOptions::default());
    // First start on empty tables: a snapshot of nothing.
    assert_eq!(relay.drain().await?, 0);
    for i in 0..10 {
        db.create_user(&user(i))?;
    }
    let patch = UserPatch {
        risk_profile: Some("growth".into()),
        phone: Some(Some("+61 2 9374 4000".into())),
        ..Default::default()
    };
    db.update_user("u00003", &patch)?;
    assert!(db.delete_user("u00004")?);
    let conv = db.create_conversation(&NewConversation {
        id: Some("conv-1".into()),
        customer_id: "u00001".into(),
        subject: Some("Card fees".into()),
    })?;
    for text in ["What does my card cost?", "Its annual fee is $49."] {
        db.add_message(
            &conv.id,
            &NewMessage {
                role: "customer".into(),
                text: text.into(),
            },
        )?;
    }
    assert_eq!(relay.drain().await?, 15);

    let users = records(&log, "db.changes.users").await;
    let events: Vec<ChangeEvent> = users
        .iter()
        .filter(|r| !r.value.is_empty())
        .map(|r| serde_json::from_slice(&r.value))
        .collect::<Result<_, _>>()?;
    let ops: Vec<Op> = events.iter().map(|e| e.op).collect();
    assert_eq!(ops.iter().filter(|o| **o == Op::Create).count(), 10);
    assert_eq!(ops.iter().filter(|o| **o == Op::Update).count(), 1);
    assert_eq!(ops.iter().filter(|o| **o == Op::Delete).count(), 1);
    let update = events.iter().find(|e| e.op == Op::Update).unwrap();
    assert_eq!(update.before.as_ref().unwrap()["risk_profile"], "balanced");
    assert_eq!(update.after.as_ref().unwrap()["risk_profile"], "growth");
    assert_eq!(update.after.as_ref().unwrap()["phone"], "+61293744000");
    assert_eq!(update.source.connector, "sqlite");
    assert_eq!(update.source.table, "users");
    // The delete, then its tombstone: same key, empty value.
    let delete_at = users
        .iter()
        .position(|r| {
            r.key.as_deref() == Some(br#"{"id":"u00004"}"#.as_slice())
                && !r.value.is_empty()
                && serde_json::from_slice::<ChangeEvent>(&r.value)
                    .map(|e| e.op == Op::Delete)
                    .unwrap_or(false)
        })
        .expect("the delete");
    let tombstone = users[delete_at + 1..]
        .iter()
        .find(|r| r.partition == users[delete_at].partition)
        .expect("a record after the delete");
    assert!(tombstone.value.is_empty());
    assert_eq!(tombstone.key, users[delete_at].key);

    let conversations = records(&log, "db.changes.conversations").await;
    let conv_1 = conversations
        .iter()
        .rfind(|r| r.key.as_deref() == Some(br#"{"id":"conv-1"}"#.as_slice()))
        .expect("conv-1's changes");
    let last: ChangeEvent = serde_json::from_slice(&conv_1.value)?;
    assert_eq!(last.after.as_ref().unwrap()["message_count"], 2);
    let messages: serde_json::Value =
        serde_json::from_str(last.after.as_ref().unwrap()["messages"].as_str().unwrap())?;
    assert_eq!(messages[1]["text"], "Its annual fee is $49.");

    let v = check(&log, &db).await;
    assert!(v.ok(), "{v:#?}");
    assert_eq!(v.tables[0].table_rows, 9);
    assert_eq!(v.tables[0].tombstones, 1);

    // A second relay on the same database: no new snapshot, only what is new.
    db.create_user(&user(99))?;
    let again = relay_again(&log, dir.path()).await?;
    assert_eq!(again, 1);
    assert!(check(&log, &db).await.ok());
    Ok(())
}

async fn relay_again<L: EventLog>(log: &L, dir: &Path) -> Result<u64, ultracore_cdc::Error> {
    relay(log.clone(), dir, RelayOptions::default())
        .drain()
        .await
}

/// 5,000 rows, then a snapshot taken while another connection writes:
/// every row once as `r`, one `last`, each concurrent write once after it.
pub async fn snapshot_hands_over_to_streaming<L: EventLog>(log: L) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(FILE_NAME);
    let db = Arc::new(SqliteDb::open(&path)?);
    for i in 0..5_000 {
        db.create_user(&user(i))?;
    }
    let before = db.outbox_high()?;

    // The writer: 50 writes before the relay starts, 450 while it snapshots.
    let started = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, started) = (db.clone(), started.clone());
        std::thread::spawn(move || -> Result<(), ultracore_cdc::Error> {
            for i in 0..500 {
                if i == 50 {
                    started.store(true, Ordering::SeqCst);
                }
                match i % 3 {
                    0 => drop(db.create_user(&user(10_000 + i))?),
                    1 => drop(db.update_user(
                        &format!("u{:05}", i * 7 % 5_000),
                        &UserPatch {
                            status: Some(if i % 2 == 0 { "suspended" } else { "active" }.into()),
                            ..Default::default()
                        },
                    )?),
                    _ => drop(db.delete_user(&format!("u{:05}", 4_999 - i))?),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        })
    };
    while !started.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Small snapshot chunks: the snapshot is sent over many batches while
    // the writer goes on changing the tables.
    let relay = relay(
        log.clone(),
        dir.path(),
        RelayOptions {
            snapshot_chunk: 50,
            ..Default::default()
        },
    );
    relay.drain().await?;
    writer.join().expect("the writer")?;
    relay.drain().await?;
    let after = db.outbox_high()?;

    let users = records(&log, "db.changes.users").await;
    let events: Vec<ChangeEvent> = users
        .iter()
        .filter(|r| !r.value.is_empty())
        .map(|r| serde_json::from_slice(&r.value))
        .collect::<Result<_, _>>()?;
    let snapshot: Vec<&ChangeEvent> = events.iter().filter(|e| e.op == Op::Read).collect();
    let high = snapshot[0].source.seq.unwrap();
    assert!(
        high > before && high < after,
        "the snapshot was taken at {high}, not while the writer wrote ({before}..{after})"
    );
    let keys: HashSet<String> = snapshot
        .iter()
        .map(|e| e.after.as_ref().unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), snapshot.len(), "a row was read twice");
    let lasts = snapshot
        .iter()
        .filter(|e| e.source.snapshot == ultracore_cdc::SnapshotMark::Last)
        .count();
    assert_eq!(lasts, 1);
    // Streamed: exactly the changes after the snapshot's position, once each.
    let streamed: Vec<u64> = events
        .iter()
        .filter(|e| e.op != Op::Read)
        .map(|e| e.source.seq.unwrap())
        .collect();
    assert!(
        streamed.iter().all(|&s| s > high),
        "a change from before the snapshot was streamed"
    );
    let unique: HashSet<u64> = streamed.iter().copied().collect();
    assert_eq!(unique.len(), streamed.len(), "a change was streamed twice");
    assert_eq!(
        streamed.len() as u64,
        after - high,
        "a change after the snapshot is missing"
    );
    let v = check(&log, &db).await;
    assert!(v.ok(), "{v:#?}");
    Ok(())
}

/// The `sqlite3` shell is another process: its writes are captured too.
pub async fn another_process_is_captured<L: EventLog>(log: L) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(FILE_NAME);
    let db = SqliteDb::open(&path)?;
    db.create_user(&user(1))?;
    let relay = relay(log.clone(), dir.path(), RelayOptions::default());
    relay.drain().await?;
    let out = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg(
            "INSERT INTO users (id, name, email, phone, country, risk_profile, status, created_at, updated_at) \
             VALUES ('u-shell', 'Shell User', 'shell@example.com', NULL, 'NZ', 'moderate', 'active', \
             '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'); \
             UPDATE users SET name = 'Renamed' WHERE id = 'u00001';",
        )
        .output()
        .map_err(|e| format!("the sqlite3 shell (Debian package sqlite3) could not run: {e}"))?;
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(relay.drain().await?, 2);
    let users = records(&log, "db.changes.users").await;
    let last: Vec<ChangeEvent> = users
        .iter()
        .map(|r| serde_json::from_slice(&r.value))
        .collect::<Result<_, _>>()?;
    assert!(last
        .iter()
        .any(|e| e.op == Op::Create && e.after.as_ref().unwrap()["id"] == "u-shell"));
    assert!(last
        .iter()
        .any(|e| e.op == Op::Update && e.after.as_ref().unwrap()["name"] == "Renamed"));
    assert!(check(&log, &db).await.ok());
    Ok(())
}
