//! The `Storage` contract, once per database (`sqlite::<test>`,
//! `postgres::<test>`): what one stores, the other gives back the same,
//! in the same order.

mod common;

use std::collections::BTreeMap;

use common::{Backend, TestResult};
use serde_json::{json, Value};
use ultracore_es::{Batch, IndexedEvent, Snapshot, Watermark};
use uuid::Uuid;

common::on_each_database!(
    pages_are_ranges_of_one_prefix_in_key_order,
    keys_sort_by_their_bytes,
    documents_come_back_as_written,
    events_come_back_byte_for_byte,
    numbers_past_two_to_the_31_round_trip,
    a_batch_written_twice_is_written_once,
    reset_clears_one_follower_and_bumps_its_generation,
    snapshots_are_replaced,
    the_instance_id_is_kept_across_reopens,
);

fn keys(page: Vec<(String, Value)>) -> Vec<String> {
    page.into_iter().map(|(k, _)| k).collect()
}

fn documents(pairs: &[(&str, Value)]) -> Batch {
    let mut batch = Batch::default();
    for (key, doc) in pairs {
        batch
            .documents
            .insert(("v".into(), (*key).into()), Some(doc.clone()));
    }
    batch
}

fn event(id: &str, version: u64, millis: i64, envelope: Vec<u8>) -> IndexedEvent {
    IndexedEvent {
        aggregate_type: "Account".into(),
        aggregate_id: id.into(),
        version,
        event_id: Uuid::now_v7(),
        timestamp: millis,
        topic: "es.Account".into(),
        partition: 1,
        offset: version,
        envelope,
    }
}

async fn pages_are_ranges_of_one_prefix_in_key_order(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    let keys_in = ["a/1", "a/2", "a/3", "a0", "b/1", "a"];
    let pairs: Vec<_> = keys_in.iter().map(|k| (*k, json!({ "k": k }))).collect();
    s.commit("p", &documents(&pairs))?;
    assert_eq!(
        keys(s.documents_page("p", "v", "a/", None, 2)?),
        ["a/1", "a/2"]
    );
    assert_eq!(
        keys(s.documents_page("p", "v", "a/", Some("a/2"), 2)?),
        ["a/3"]
    );
    assert!(s.documents_page("p", "v", "a/", Some("a/3"), 2)?.is_empty());
    assert_eq!(
        keys(s.documents_page("p", "v", "", Some("a0"), 10)?),
        ["b/1"]
    );
    assert_eq!(
        keys(s.documents_page("p", "v", "", None, 10)?),
        ["a", "a/1", "a/2", "a/3", "a0", "b/1"]
    );
    // `after` before the prefix starts at the prefix.
    assert_eq!(
        keys(s.documents_page("p", "v", "a/", Some("0"), 1)?),
        ["a/1"]
    );
    assert!(s.documents_page("p", "w", "", None, 10)?.is_empty());
    assert!(s.documents_page("q", "v", "", None, 10)?.is_empty());
    assert!(s.documents_page("p", "v", "a/", None, 0)?.is_empty());
    Ok(())
}

/// Keys sort by their UTF-8 bytes (SQLite's order), not by a locale:
/// upper case before lower case, ASCII before accents before emoji.
async fn keys_sort_by_their_bytes(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    let written = [
        "b", "a", "B", "A", "é", "e", "z", "😀", "a b", "a-b", "ab", "_", "~",
    ];
    let pairs: Vec<_> = written.iter().map(|k| (*k, json!(k))).collect();
    s.commit("p", &documents(&pairs))?;
    let mut expected: Vec<String> = written.iter().map(|k| k.to_string()).collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(keys(s.documents("p", "v")?), expected);
    assert_eq!(keys(s.documents_page("p", "v", "", None, 100)?), expected);
    // A prefix ending in a character above ASCII.
    assert_eq!(keys(s.documents_page("p", "v", "é", None, 100)?), ["é"]);
    // Aggregate ids too.
    let mut batch = Batch::default();
    for (i, id) in written.iter().enumerate() {
        batch.events.push(event(id, 1, i as i64, b"{}".to_vec()));
    }
    s.commit("es-index", &batch)?;
    assert_eq!(s.aggregate_ids("Account", 100)?, expected);
    assert_eq!(s.aggregate_ids("Account", 3)?, expected[..3]);
    assert!(s.aggregate_ids("Other", 3)?.is_empty());
    Ok(())
}

async fn documents_come_back_as_written(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    let docs = [
        (
            "numbers",
            json!({"z": 1, "a": 2.5, "big": u64::MAX, "neg": i64::MIN, "tiny": 1e-300, "float": 1.0}),
        ),
        (
            "nested",
            json!({"list": [1, "two", null, {"three": [true, false]}], "empty": {}}),
        ),
        (
            "text",
            json!({"quote": "\"", "nul": "a\u{0}b", "emoji": "😀", "accent": "é", "newline": "a\nb"}),
        ),
        ("scalar", json!(42)),
        ("null", Value::Null),
        ("string", json!("just text")),
    ];
    s.commit("p", &documents(&docs))?;
    for (key, doc) in &docs {
        assert_eq!(s.document("p", "v", key)?.as_ref(), Some(doc), "{key}");
        // The same text, so the same bytes to anyone serializing it again.
        assert_eq!(
            s.document("p", "v", key)?.map(|d| d.to_string()),
            Some(doc.to_string())
        );
    }
    let all: BTreeMap<String, Value> = s.documents("p", "v")?.into_iter().collect();
    assert_eq!(all.len(), docs.len());
    assert_eq!(s.document("p", "v", "missing")?, None);
    assert_eq!(s.document("p", "other", "numbers")?, None);
    // Replaced and deleted in one batch.
    let mut batch = Batch::default();
    batch
        .documents
        .insert(("v".into(), "numbers".into()), Some(json!({"n": 1})));
    batch.documents.insert(("v".into(), "nested".into()), None);
    batch.documents.insert(("v".into(), "never".into()), None);
    s.commit("p", &batch)?;
    assert_eq!(s.document("p", "v", "numbers")?, Some(json!({"n": 1})));
    assert_eq!(s.document("p", "v", "nested")?, None);
    assert_eq!(s.documents("p", "v")?.len(), docs.len() - 1);
    Ok(())
}

async fn events_come_back_byte_for_byte(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    let envelopes: Vec<Vec<u8>> = vec![
        br#"{"b":1,  "a":2}"#.to_vec(),
        vec![0, 255, 1, 254, b'\\', b'\''],
        Vec::new(),
        vec![7; 100_000],
    ];
    let mut batch = Batch::default();
    for (i, env) in envelopes.iter().enumerate() {
        batch.events.push(event(
            "acc-1",
            i as u64 + 1,
            1_000 * (i as i64 + 1),
            env.clone(),
        ));
    }
    let first = batch.events[0].event_id;
    s.commit("es-index", &batch)?;
    assert_eq!(s.stream("Account", "acc-1", 0, u64::MAX)?, envelopes);
    assert_eq!(s.stream("Account", "acc-1", 1, 3)?, envelopes[1..3]);
    assert!(s.stream("Account", "acc-2", 0, u64::MAX)?.is_empty());
    assert_eq!(s.version_at("Account", "acc-1", 2_500)?, 2);
    assert_eq!(s.version_at("Account", "acc-1", 999)?, 0);
    assert_eq!(s.version_at("Account", "acc-1", i64::MAX)?, 4);
    assert_eq!(
        s.find_event(first)?,
        Some(("Account".into(), "acc-1".into(), 1))
    );
    assert_eq!(s.find_event(Uuid::now_v7())?, None);
    Ok(())
}

async fn numbers_past_two_to_the_31_round_trip(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    let big = (1u64 << 31) + 7;
    let huge = (1u64 << 53) + 1;
    let commit = Uuid::now_v7();
    let mut batch = Batch::default();
    let mut e = event("acc-big", big, 1, b"{}".to_vec());
    e.partition = u32::MAX;
    e.offset = huge;
    batch.events.push(e);
    batch.watermarks.insert(
        ("Account".into(), "acc-big".into()),
        Watermark {
            version: big,
            commit: Some(commit),
        },
    );
    batch.watermarks.insert(
        ("Account".into(), "acc-none".into()),
        Watermark {
            version: 1,
            commit: None,
        },
    );
    batch
        .checkpoints
        .insert(("es.Account".into(), u32::MAX), huge);
    batch.checkpoints.insert(("es.Account".into(), 0), 0);
    s.commit("f", &batch)?;
    assert_eq!(s.stream("Account", "acc-big", big - 1, big)?.len(), 1);
    assert_eq!(
        s.watermark("f", "Account", "acc-big")?,
        Watermark {
            version: big,
            commit: Some(commit)
        }
    );
    assert_eq!(s.watermark("f", "Account", "acc-none")?.commit, None);
    assert_eq!(s.watermark("f", "Account", "nobody")?, Watermark::default());
    assert_eq!(
        s.watermark("g", "Account", "acc-big")?,
        Watermark::default()
    );
    let expected: BTreeMap<(String, u32), u64> = [
        (("es.Account".to_string(), u32::MAX), huge),
        (("es.Account".to_string(), 0), 0),
    ]
    .into();
    assert_eq!(s.checkpoints("f")?, expected);
    assert!(s.checkpoints("g")?.is_empty());
    Ok(())
}

/// A batch committed again (a retry after a lost answer) leaves what it left once.
async fn a_batch_written_twice_is_written_once(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    let mut batch = documents(&[("k", json!({"n": 1}))]);
    batch.events.push(event("acc-1", 1, 1, b"one".to_vec()));
    batch.checkpoints.insert(("es.Account".into(), 1), 2);
    s.commit("es-index", &batch)?;
    s.commit("es-index", &batch)?;
    // Another event claiming the same version is not indexed.
    let mut rival = Batch::default();
    rival.events.push(event("acc-1", 1, 1, b"rival".to_vec()));
    s.commit("es-index", &rival)?;
    assert_eq!(s.stream("Account", "acc-1", 0, 10)?, vec![b"one".to_vec()]);
    assert_eq!(s.documents("es-index", "v")?.len(), 1);
    assert_eq!(s.checkpoints("es-index")?.len(), 1);
    s.commit("es-index", &Batch::default())?;
    Ok(())
}

async fn reset_clears_one_follower_and_bumps_its_generation(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    let mut batch = documents(&[("k", json!(1))]);
    batch
        .watermarks
        .insert(("Account".into(), "a".into()), Watermark::default());
    batch.checkpoints.insert(("t".into(), 0), 5);
    s.commit("p", &batch)?;
    s.commit("q", &batch)?;
    let mut index = Batch::default();
    index.events.push(event("acc-1", 1, 1, b"{}".to_vec()));
    s.commit("es-index", &index)?;
    assert_eq!(s.generation("p")?, 0);
    assert_eq!(s.reset("p")?, 1);
    assert_eq!(s.reset("p")?, 2);
    assert_eq!(s.generation("p")?, 2);
    assert!(s.documents("p", "v")?.is_empty());
    assert!(s.checkpoints("p")?.is_empty());
    // Other followers and the index are untouched.
    assert_eq!(s.generation("q")?, 0);
    assert_eq!(s.documents("q", "v")?.len(), 1);
    assert_eq!(s.checkpoints("q")?.len(), 1);
    assert_eq!(s.stream("Account", "acc-1", 0, 10)?.len(), 1);
    // Resetting the index deletes the indexed events.
    assert_eq!(s.reset("es-index")?, 1);
    assert!(s.stream("Account", "acc-1", 0, 10)?.is_empty());
    assert_eq!(s.find_event(index.events[0].event_id)?, None);
    Ok(())
}

async fn snapshots_are_replaced(backend: Backend) -> TestResult {
    let db = backend.database();
    let mut s = db.storage()?;
    assert_eq!(s.snapshot("Account", "a")?, None);
    let first = Snapshot {
        version: 10,
        state_schema: 1,
        state: br#"{"b":1, "a":2}"#.to_vec(),
    };
    s.put_snapshot("Account", "a", &first)?;
    assert_eq!(s.snapshot("Account", "a")?, Some(first));
    let second = Snapshot {
        version: (1 << 40) + 3,
        state_schema: u32::MAX,
        state: vec![0, 1, 2, 255],
    };
    s.put_snapshot("Account", "a", &second)?;
    assert_eq!(s.snapshot("Account", "a")?, Some(second));
    assert_eq!(s.snapshot("Account", "b")?, None);
    Ok(())
}

async fn the_instance_id_is_kept_across_reopens(backend: Backend) -> TestResult {
    let db = backend.database();
    let id = db.storage()?.instance_id()?;
    assert!(Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(db.storage()?.instance_id()?, id);
    assert_eq!(db.reopen()?.with(|s| s.instance_id())?, id);
    assert_ne!(backend.database().storage()?.instance_id()?, id);
    // Where it is, without credentials.
    let location = db.storage()?.location();
    assert!(!location.contains('@'), "{location}");
    Ok(())
}
