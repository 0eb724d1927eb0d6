//! Slots, snapshots and the change stream, against the real test cluster.
//!
//! Each test makes its own tables, publication and slot (unique names) and
//! drops them at the end, also when it fails: a leftover slot pins WAL.

mod common;

use common::*;
use ultracore_pgrepl::pgoutput::{Column, Message, Relation, Value};
use ultracore_pgrepl::{Lsn, ReplicationConnection, StreamMessage, POSTGRES_EPOCH_UNIX_MICROS};

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn column(key: bool, name: &str, type_oid: u32, type_modifier: i32) -> Column {
    Column {
        key,
        name: name.to_owned(),
        type_oid,
        type_modifier,
    }
}

fn drop_sql(publication: &str, tables: &[&str]) -> String {
    let mut sql = format!("DROP PUBLICATION IF EXISTS {publication};");
    for table in tables {
        sql.push_str(&format!(" DROP TABLE IF EXISTS {table};"));
    }
    sql
}

#[tokio::test]
async fn exported_snapshot_sees_exactly_the_rows_before_the_slot() -> TestResult {
    let _serial = serial().await;
    let table = unique("snap");
    let publication = format!("{table}_pub");
    let slot = table.clone();
    let client = sql().await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY);
             CREATE PUBLICATION {publication} FOR TABLE {table};
             INSERT INTO {table} VALUES (1), (2);"
        ))
        .await?;

    with_cleanup(&slot, &drop_sql(&publication, &[&table]), async {
        let mut conn = ReplicationConnection::connect(&config()).await?;
        let created = conn.create_logical_slot(&slot, true).await?;
        assert_eq!(created.slot_name, slot);
        assert_eq!(created.output_plugin, "pgoutput");
        assert!(created.consistent_point > Lsn::ZERO);
        let snapshot = created
            .snapshot_name
            .clone()
            .ok_or("no snapshot was exported")?;

        // Committed after the slot: in the stream, not in the snapshot.
        client
            .batch_execute(&format!("INSERT INTO {table} VALUES (3)"))
            .await?;

        let reader = sql().await?;
        reader
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{snapshot}'"
            ))
            .await?;
        let ids: Vec<i32> = reader
            .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(ids, [1, 2]);
        reader.batch_execute("COMMIT").await?;

        // The stream starts where the snapshot ends: row 3, and only it.
        let mut stream = conn
            .start(&slot, created.consistent_point, &[&publication])
            .await?;
        let transaction = next_transaction(&mut stream).await?;
        assert_eq!(inserted_ids(&transaction), ["3"]);

        let mut conn = stream.stop().await?;
        conn.drop_slot(&slot).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn streams_row_changes_with_their_values() -> TestResult {
    let _serial = serial().await;
    let base = unique("rows");
    let full = format!("{base}_full");
    let keyed = format!("{base}_keyed");
    let publication = format!("{base}_pub");
    let slot = base.clone();
    let client = sql().await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE {full} (
                 id int PRIMARY KEY, name text, note text, amount numeric(12,2),
                 ratio float8, at timestamptz, raw bytea);
             ALTER TABLE {full} REPLICA IDENTITY FULL;
             CREATE TABLE {keyed} (id int PRIMARY KEY, name text, big text);
             ALTER TABLE {keyed} ALTER COLUMN big SET STORAGE EXTERNAL;
             CREATE PUBLICATION {publication} FOR TABLE {full}, {keyed};"
        ))
        .await?;

    with_cleanup(&slot, &drop_sql(&publication, &[&full, &keyed]), async {
        let mut conn = ReplicationConnection::connect(&config()).await?;
        let created = conn.create_logical_slot(&slot, false).await?;
        assert_eq!(created.snapshot_name, None);
        let mut stream = conn
            .start(&slot, created.consistent_point, &[&publication])
            .await?;

        // REPLICA IDENTITY FULL: updates and deletes carry the whole old row.
        client
            .batch_execute(&format!(
                "BEGIN;
                 INSERT INTO {full} VALUES
                     (1, 'Zoë 🚀 日本', NULL, 12.50, 0.1, '2024-02-29 12:34:56.789+02', '\\x0102ff'),
                     (2, 'two', 'n', 0, -1.5, '1999-12-31 23:59:59+00', '');
                 UPDATE {full} SET name = 'Zoë renamed', note = 'x' WHERE id = 1;
                 DELETE FROM {full} WHERE id = 2;
                 COMMIT;"
            ))
            .await?;
        let txn = next_transaction(&mut stream).await?;
        let [Message::Begin {
            final_lsn,
            commit_time_micros,
            xid,
        }, Message::Relation(relation), Message::Insert {
            relation_id: insert_1,
            new: row_1,
        }, Message::Insert {
            relation_id: insert_2,
            new: row_2,
        }, Message::Update {
            relation_id: update_id,
            old,
            key_only: update_key_only,
            new: updated,
        }, Message::Delete {
            relation_id: delete_id,
            old: deleted,
            key_only: delete_key_only,
        }, Message::Commit {
            commit_lsn, end_lsn, ..
        }] = txn.as_slice()
        else {
            return Err(format!("unexpected transaction shape: {txn:#?}").into());
        };
        assert_eq!(final_lsn, commit_lsn);
        assert!(end_lsn > commit_lsn && *commit_lsn > created.consistent_point);
        assert!(*xid > 0);
        let now_pg = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros() as i64
            - POSTGRES_EPOCH_UNIX_MICROS;
        assert!((now_pg - commit_time_micros).abs() < 300_000_000, "{commit_time_micros}");

        assert_eq!(
            relation,
            &Relation {
                id: relation.id,
                namespace: "public".into(),
                name: full.clone(),
                replica_identity: b'f',
                // With FULL, every column is part of the identity.
                columns: vec![
                    column(true, "id", 23, -1),
                    column(true, "name", 25, -1),
                    column(true, "note", 25, -1),
                    column(true, "amount", 1700, (12 << 16 | 2) + 4),
                    column(true, "ratio", 701, -1),
                    column(true, "at", 1184, -1),
                    column(true, "raw", 17, -1),
                ],
            }
        );
        for id in [insert_1, insert_2, update_id, delete_id] {
            assert_eq!(*id, relation.id);
        }
        let first = vec![
            text("1"),
            text("Zoë 🚀 日本"),
            Value::Null,
            text("12.50"),
            text("0.1"),
            // TimeZone=UTC, DateStyle=ISO.
            text("2024-02-29 10:34:56.789+00"),
            text("\\x0102ff"),
        ];
        assert_eq!(row_1, &first);
        assert_eq!(
            row_2,
            &vec![
                text("2"),
                text("two"),
                text("n"),
                text("0.00"),
                text("-1.5"),
                text("1999-12-31 23:59:59+00"),
                text("\\x"),
            ]
        );
        assert_eq!(old.as_ref(), Some(&first));
        assert!(!update_key_only);
        let mut renamed = first.clone();
        renamed[1] = text("Zoë renamed");
        renamed[2] = text("x");
        assert_eq!(updated, &renamed);
        assert_eq!(deleted, row_2);
        assert!(!delete_key_only);

        // Default replica identity (the primary key), with a TOASTed column.
        client
            .batch_execute(&format!(
                "INSERT INTO {keyed} VALUES (10, 'a', repeat('x', 10000));"
            ))
            .await?;
        let txn = next_transaction(&mut stream).await?;
        let keyed_id = match txn.as_slice() {
            [Message::Begin { .. }, Message::Relation(rel), Message::Insert { relation_id, new }, Message::Commit { .. }] =>
            {
                assert_eq!(rel.name, keyed);
                assert_eq!(rel.replica_identity, b'd');
                assert_eq!(
                    rel.columns,
                    vec![
                        column(true, "id", 23, -1),
                        column(false, "name", 25, -1),
                        column(false, "big", 25, -1),
                    ]
                );
                assert_eq!(*relation_id, rel.id);
                assert_eq!(new[..2], [text("10"), text("a")]);
                assert_eq!(new[2].as_str().map(str::len), Some(10_000));
                rel.id
            }
            other => return Err(format!("unexpected transaction shape: {other:#?}").into()),
        };

        client
            .batch_execute(&format!(
                "BEGIN;
                 UPDATE {keyed} SET name = 'b' WHERE id = 10;
                 UPDATE {keyed} SET id = 11 WHERE id = 10;
                 DELETE FROM {keyed} WHERE id = 11;
                 COMMIT;"
            ))
            .await?;
        let txn = next_transaction(&mut stream).await?;
        assert_eq!(
            txn[1..txn.len() - 1],
            [
                // Key unchanged: no old row; the big value was not touched.
                Message::Update {
                    relation_id: keyed_id,
                    old: None,
                    key_only: false,
                    new: vec![text("10"), text("b"), Value::UnchangedToast],
                },
                // Key changed: the old key, other columns null.
                Message::Update {
                    relation_id: keyed_id,
                    old: Some(vec![text("10"), Value::Null, Value::Null]),
                    key_only: true,
                    new: vec![text("11"), text("b"), Value::UnchangedToast],
                },
                Message::Delete {
                    relation_id: keyed_id,
                    old: vec![text("11"), Value::Null, Value::Null],
                    key_only: true,
                },
            ]
        );

        client
            .batch_execute(&format!("TRUNCATE {keyed} RESTART IDENTITY"))
            .await?;
        let txn = next_transaction(&mut stream).await?;
        // TRUNCATE gives the table a new file, and pgoutput sends its
        // Relation again before the Truncate.
        let changes: Vec<&Message> = txn[1..txn.len() - 1]
            .iter()
            .filter(|m| !matches!(m, Message::Relation(rel) if rel.id == keyed_id))
            .collect();
        assert_eq!(
            changes,
            [&Message::Truncate {
                cascade: false,
                restart_identity: true,
                relation_ids: vec![keyed_id],
            }]
        );

        let mut conn = stream.stop().await?;
        conn.drop_slot(&slot).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn status_updates_advance_the_confirmed_flush_lsn() -> TestResult {
    let _serial = serial().await;
    let table = unique("ack");
    let publication = format!("{table}_pub");
    let slot = table.clone();
    let client = sql().await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY);
             CREATE PUBLICATION {publication} FOR TABLE {table};"
        ))
        .await?;

    with_cleanup(&slot, &drop_sql(&publication, &[&table]), async {
        let mut conn = ReplicationConnection::connect(&config()).await?;
        let created = conn.create_logical_slot(&slot, false).await?;
        assert_eq!(
            confirmed_flush(&client, &slot).await?,
            Some(created.consistent_point)
        );
        let mut stream = conn
            .start(&slot, created.consistent_point, &[&publication])
            .await?;

        for id in 1..=2 {
            client
                .batch_execute(&format!("INSERT INTO {table} VALUES ({id})"))
                .await?;
            let txn = next_transaction(&mut stream).await?;
            assert_eq!(inserted_ids(&txn), [id.to_string()]);
            let end = end_lsn(&txn);

            // Ask for a keepalive, and answer it with what is handled, as a
            // relay does.
            stream
                .send_status(Lsn::ZERO, Lsn::ZERO, Lsn::ZERO, true)
                .await?;
            match next(&mut stream).await? {
                StreamMessage::Keepalive {
                    wal_end,
                    server_time_micros,
                    ..
                } => {
                    assert!(wal_end >= end, "keepalive at {wal_end}, before {end}");
                    assert!(server_time_micros > 0);
                }
                StreamMessage::XLogData { message, .. } => {
                    return Err(format!("expected a keepalive, got {message:?}").into())
                }
            }
            stream.send_status(end, end, end, false).await?;
            wait_confirmed(&client, &slot, end).await?;
        }

        let mut conn = stream.stop().await?;
        conn.drop_slot(&slot).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn restarting_from_a_confirmed_lsn_skips_what_was_confirmed() -> TestResult {
    let _serial = serial().await;
    let table = unique("restart");
    let publication = format!("{table}_pub");
    let slot = table.clone();
    let client = sql().await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY);
             CREATE PUBLICATION {publication} FOR TABLE {table};"
        ))
        .await?;
    let insert = |id: u32| format!("INSERT INTO {table} VALUES ({id})");

    with_cleanup(&slot, &drop_sql(&publication, &[&table]), async {
        let mut conn = ReplicationConnection::connect(&config()).await?;
        let created = conn.create_logical_slot(&slot, false).await?;
        let mut stream = conn
            .start(&slot, created.consistent_point, &[&publication])
            .await?;

        // Transaction 1 is confirmed; transaction 2 is received but not.
        client.batch_execute(&insert(1)).await?;
        let first = next_transaction(&mut stream).await?;
        assert_eq!(inserted_ids(&first), ["1"]);
        let confirmed = end_lsn(&first);
        stream
            .send_status(confirmed, confirmed, confirmed, false)
            .await?;
        wait_confirmed(&client, &slot, confirmed).await?;
        client.batch_execute(&insert(2)).await?;
        let second = next_transaction(&mut stream).await?;
        assert_eq!(inserted_ids(&second), ["2"]);
        stream.stop().await?.close().await?;

        // A new connection from the confirmed LSN: 2 again, 1 never.
        let conn = ReplicationConnection::connect(&config()).await?;
        let mut stream = conn.start(&slot, confirmed, &[&publication]).await?;
        let again = next_transaction(&mut stream).await?;
        assert_eq!(inserted_ids(&again), ["2"]);
        assert_eq!(end_lsn(&again), end_lsn(&second));
        let confirmed = end_lsn(&again);
        stream
            .send_status(confirmed, confirmed, confirmed, false)
            .await?;
        wait_confirmed(&client, &slot, confirmed).await?;
        stream.stop().await?.close().await?;

        // Lsn::ZERO means "from the slot's confirmed position".
        client.batch_execute(&insert(3)).await?;
        let conn = ReplicationConnection::connect(&config()).await?;
        let mut stream = conn.start(&slot, Lsn::ZERO, &[&publication]).await?;
        let third = next_transaction(&mut stream).await?;
        assert_eq!(inserted_ids(&third), ["3"]);

        let mut conn = stream.stop().await?;
        conn.drop_slot(&slot).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn recv_loses_nothing_when_cancelled_by_select() -> TestResult {
    const TRANSACTIONS: usize = 10;
    const ROWS: usize = 100;
    /// 500 md5 digests: 16 kB per value, several socket reads per message.
    const PAYLOAD_LEN: usize = 500 * 32;
    let _serial = serial().await;
    let table = unique("select");
    let publication = format!("{table}_pub");
    let slot = table.clone();
    let client = sql().await?;
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, payload text);
             CREATE PUBLICATION {publication} FOR TABLE {table};"
        ))
        .await?;

    with_cleanup(&slot, &drop_sql(&publication, &[&table]), async {
        let mut conn = ReplicationConnection::connect(&config()).await?;
        let created = conn.create_logical_slot(&slot, false).await?;
        let mut stream = conn
            .start(&slot, created.consistent_point, &[&publication])
            .await?;
        // Write while the stream is read, so recv often has to wait.
        let writer = {
            let table = table.clone();
            tokio::spawn(async move {
                let client = sql().await?;
                for t in 0..TRANSACTIONS {
                    let from = t * ROWS + 1;
                    let to = from + ROWS - 1;
                    client
                        .batch_execute(&format!(
                            "INSERT INTO {table} SELECT i, repeat(md5(i::text), 500)
                             FROM generate_series({from}, {to}) i"
                        ))
                        .await?;
                }
                TestResult::Ok(())
            })
        };

        // The other branch is ready when polled a second time, so
        // whenever recv has to wait for bytes, it is dropped, often with
        // part of a message already read.
        let mut ids = Vec::new();
        let mut commits = 0;
        let mut cancelled = 0u64;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while commits < TRANSACTIONS {
            tokio::select! {
                msg = stream.recv() => match msg?.ok_or("the stream ended")? {
                    StreamMessage::XLogData { message: Message::Insert { new, .. }, .. } => {
                        assert_eq!(new[1].as_str().map(str::len), Some(PAYLOAD_LEN));
                        ids.push(new[0].as_str().ok_or("null id")?.parse::<usize>()?);
                    }
                    StreamMessage::XLogData { message: Message::Commit { .. }, .. } => commits += 1,
                    _ => {}
                },
                () = tokio::task::yield_now() => cancelled += 1,
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("only {} rows arrived", ids.len()).into());
            }
        }
        writer.await??;
        assert_eq!(ids, (1..=TRANSACTIONS * ROWS).collect::<Vec<_>>());
        assert!(
            cancelled > 0,
            "recv was never cancelled: the test proved nothing"
        );
        eprintln!("recv was cancelled {cancelled} times");

        let mut conn = stream.stop().await?;
        conn.drop_slot(&slot).await?;
        Ok(())
    })
    .await
}
