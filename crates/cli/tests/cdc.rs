//! Change data capture end to end: the users and conversations API of
//! `ultracore serve` captured onto db.changes.*, and the relay killed with
//! SIGKILL again and again while the tables change under it.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{in_data_dir, Serve, TestResult};
use serde_json::{json, Value};
use ultracore_cdc::model::{NewConversation, NewMessage, NewUser, UserPatch};
use ultracore_cdc::sqlite::FILE_NAME;
use ultracore_cdc::SqliteDb;
use ultracore_rng::SplitMix64;

fn cdc_verify(dir: &std::path::Path) -> Result<Value, Box<dyn std::error::Error>> {
    let out = in_data_dir(dir)
        .args(["cdc", "verify", "--json"])
        .output()?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "cdc verify printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok(v)
}

/// Every record of db.changes.*, as `ultracore events tail` prints them,
/// checked against the JSON Schema of Debezium's envelope (written from
/// Debezium's documentation) by `tools/validate_change_events.py`, with a
/// real JSON Schema validator. Returns how many records were checked.
fn validate_envelopes(dir: &std::path::Path) -> Result<usize, Box<dyn std::error::Error>> {
    let python = std::env::var("ULTRACORE_TEST_PYTHON").map_err(|_| {
        "ULTRACORE_TEST_PYTHON is not set: run scripts/test.sh, which prepares the Python test client"
    })?;
    let mut lines = String::new();
    for topic in ["db.changes.users", "db.changes.conversations"] {
        let out = in_data_dir(dir)
            .args([
                "events",
                "tail",
                topic,
                "--from-beginning",
                "--json",
                "--no-follow",
            ])
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8(out.stdout)?.lines() {
            let r: Value = serde_json::from_str(line)?;
            let key: Value =
                serde_json::from_str(r["key"].as_str().ok_or("a record without a key")?)?;
            // An empty value (a tombstone) is printed as "".
            let value = match &r["value"] {
                Value::String(s) if s.is_empty() => Value::Null,
                v => v.clone(),
            };
            lines.push_str(&json!({"topic": topic, "key": key, "value": value}).to_string());
            lines.push('\n');
        }
    }
    let file = dir.join("change-events.jsonl");
    std::fs::write(&file, &lines)?;
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(format!("{root}/tools/validate_change_events.py"))
        .arg(&file)
        .output()?;
    assert!(
        out.status.success(),
        "change events do not match Debezium's envelope:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(lines.lines().count())
}

/// Waits until the relay has moved every captured change.
fn wait_relayed(db: &SqliteDb) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.relay_state()?.position < db.outbox_high()? {
        if Instant::now() > deadline {
            return Err(format!(
                "the relay is stuck at {} of {}",
                db.relay_state()?.position,
                db.outbox_high()?
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn the_api_writes_rows_and_every_change_reaches_the_log() -> TestResult {
    let server = Serve::start(&[])?;
    server.wait_ready()?;
    let admin = |m: &str, p: &str, b: &str| server.http(m, p, b).ok_or("no answer");
    let (s, body) = admin(
        "POST",
        "/api/v1/users",
        r#"{"id": "c-matrix", "name": "Ada Lovelace", "email": "Ada@Example.com", "country": "au", "phone": "+61 2 9374 4000"}"#,
    )?;
    assert_eq!(s, 201, "{body}");
    let user: Value = serde_json::from_str(&body)?;
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["country"], "AU");
    // Bad input names the field; a taken e-mail is a conflict.
    let (s, body) = admin(
        "POST",
        "/api/v1/users",
        r#"{"name": "B", "email": "nope", "country": "AU"}"#,
    )?;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("email"), "{body}");
    let (s, _) = admin(
        "POST",
        "/api/v1/users",
        r#"{"name": "B", "email": "ada@example.com", "country": "AU"}"#,
    )?;
    assert_eq!(s, 409);
    let (s, _) = admin(
        "POST",
        "/api/v1/users",
        r#"{"name": "B", "email": "b@example.com", "country": "AU", "role": "x"}"#,
    )?;
    assert_eq!(s, 400, "unknown fields are refused");
    let (s, body) = admin(
        "PATCH",
        "/api/v1/users/c-matrix",
        r#"{"risk_profile": "growth", "phone": null}"#,
    )?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body)?["phone"], Value::Null);
    let (s, _) = admin(
        "POST",
        "/api/v1/users",
        r#"{"id": "gone", "name": "G", "email": "g@example.com", "country": "NZ"}"#,
    )?;
    assert_eq!(s, 201);
    let (s, _) = admin("DELETE", "/api/v1/users/gone", "")?;
    assert_eq!(s, 204);
    let (s, _) = admin("GET", "/api/v1/users/gone", "")?;
    assert_eq!(s, 404);
    let (s, body) = admin("GET", "/api/v1/users?limit=10", "")?;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body)?["users"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A customer's key: its own conversations only, customer messages only.
    let customer = server.key("customer", None)?;
    let as_customer = |m: &str, p: &str, b: &str| {
        common::http(server.port, m, p, b, Some(&customer)).ok_or("no answer")
    };
    let (s, body) = as_customer(
        "POST",
        "/api/v1/conversations",
        r#"{"subject": "Card fees"}"#,
    )?;
    assert_eq!(s, 201, "{body}");
    let conv: Value = serde_json::from_str(&body)?;
    assert_eq!(conv["customer_id"], "c-matrix");
    let id = conv["id"].as_str().ok_or("no id")?;
    let (s, body) = as_customer(
        "POST",
        &format!("/api/v1/conversations/{id}/messages"),
        r#"{"role": "customer", "text": "What does my card cost?"}"#,
    )?;
    assert_eq!(s, 201, "{body}");
    let (s, _) = as_customer(
        "POST",
        &format!("/api/v1/conversations/{id}/messages"),
        r#"{"role": "agent", "text": "Nothing."}"#,
    )?;
    assert_eq!(s, 422, "a customer cannot speak for the agent");
    let (s, _) = as_customer(
        "POST",
        "/api/v1/conversations",
        r#"{"customer_id": "c-other"}"#,
    )?;
    assert_eq!(s, 404, "another customer is invisible");
    let (s, body) = admin(
        "POST",
        "/api/v1/conversations",
        r#"{"id": "conv-other", "customer_id": "c-other"}"#,
    )?;
    assert_eq!(s, 201, "{body}");
    let (s, _) = as_customer("GET", "/api/v1/conversations/conv-other", "")?;
    assert_eq!(s, 404);
    let (s, body) = as_customer("GET", "/api/v1/conversations", "")?;
    assert_eq!(s, 200);
    let listed: Value = serde_json::from_str(&body)?;
    assert_eq!(
        listed["conversations"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );

    // Every change is on the log, and the log replays to the tables.
    let db = SqliteDb::open(server.data_dir().join(FILE_NAME))?;
    wait_relayed(&db)?;
    let v = cdc_verify(server.data_dir())?;
    assert_eq!(v["ok"], true, "{v:#}");
    let users = &v["tables"][0];
    assert_eq!(users["ops"], json!({"c": 2, "d": 1, "u": 1}));
    assert_eq!(users["tombstones"], 1);
    let status = in_data_dir(server.data_dir())
        .args(["cdc", "status", "--json"])
        .output()?;
    let status: Value = serde_json::from_slice(&status.stdout)?;
    assert_eq!(status["snapshot_done"], true);
    assert_eq!(status["waiting"], 0);
    assert_eq!(validate_envelopes(server.data_dir())?, 8);
    Ok(())
}

fn spawn_relay(dir: &std::path::Path) -> Result<Child, Box<dyn std::error::Error>> {
    Ok(in_data_dir(dir)
        .args(["cdc", "relay", "--recovery-idle-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// One seeded random change of the tables.
fn change(
    db: &SqliteDb,
    rng: &mut SplitMix64,
    users: &mut Vec<String>,
    conversations: &mut Vec<String>,
    n: usize,
) -> TestResult {
    let roll = rng.below(100);
    match roll {
        _ if roll < 30 || users.is_empty() => {
            let id = format!("u{n}");
            db.create_user(&NewUser {
                id: Some(id.clone()),
                name: format!("User {n}"),
                email: format!("u{n}@example.com"),
                phone: rng
                    .chance(0.5)
                    .then(|| format!("+61 4{:08}", rng.below(100_000_000))),
                country: rng.pick(&["AU", "NZ", "GB", "US"]).to_string(),
                risk_profile: "balanced".into(),
                status: "active".into(),
            })?;
            users.push(id);
        }
        30..=54 => {
            let id = rng.pick(users).clone();
            let patch = UserPatch {
                risk_profile: Some(rng.pick(ultracore_cdc::model::RISK_PROFILES).to_string()),
                name: rng.chance(0.3).then(|| format!("Renamed {n}")),
                ..Default::default()
            };
            db.update_user(&id, &patch)?;
        }
        55..=64 => {
            let i = rng.below(users.len());
            let id = users.swap_remove(i);
            db.delete_user(&id)?;
        }
        65..=79 => {
            let id = format!("conv-{n}");
            db.create_conversation(&NewConversation {
                id: Some(id.clone()),
                customer_id: rng.pick(users).clone(),
                subject: Some(format!("Subject {n}")),
            })?;
            conversations.push(id);
        }
        _ => match conversations.is_empty() {
            true => {}
            false => {
                let id = rng.pick(conversations).clone();
                db.add_message(
                    &id,
                    &NewMessage {
                        role: rng.pick(&["customer", "agent"]).to_string(),
                        text: format!("message {n}: \"quoted\" and ünïcode"),
                    },
                )?;
            }
        },
    }
    Ok(())
}

#[test]
fn a_relay_killed_100_times_loses_nothing_and_repeats_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = SqliteDb::open(dir.path().join(FILE_NAME))?;
    let mut rng = SplitMix64::new(17);
    let (mut users, mut conversations) = (Vec::new(), Vec::new());
    let mut n = 0;
    let mut moved = 0;
    for _ in 0..100 {
        let before = db.relay_state()?.position;
        let mut relay = spawn_relay(dir.path())?;
        // Kill at a random moment of the run: starting, recovering,
        // mid-batch, idle; the changes go on around it.
        let kill_at = Duration::from_millis(rng.below(600) as u64);
        let started = Instant::now();
        let mut alive = true;
        for _ in 0..100 {
            change(&db, &mut rng, &mut users, &mut conversations, n)?;
            n += 1;
            std::thread::sleep(Duration::from_millis(2));
            if alive && started.elapsed() >= kill_at {
                relay.kill()?; // SIGKILL
                relay.wait()?;
                alive = false;
            }
        }
        if alive {
            std::thread::sleep(kill_at.saturating_sub(started.elapsed()));
            relay.kill()?;
            relay.wait()?;
        }
        if db.relay_state()?.position > before {
            moved += 1;
        }
    }
    assert_eq!(n, 10_000);
    assert!(moved >= 20, "the relay moved its position in only {moved} of 100 runs: the kills did not interrupt real work");
    // A last relay catches up and stops cleanly.
    let mut relay = spawn_relay(dir.path())?;
    wait_relayed(&db)?;
    relay.kill()?;
    relay.wait()?;
    let v = cdc_verify(dir.path())?;
    assert_eq!(v["ok"], true, "{v:#}");
    for t in v["tables"].as_array().ok_or("no tables")? {
        assert_eq!(t["duplicates"], 0, "{t:#}");
        assert_eq!(t["out_of_order"], 0, "{t:#}");
        assert!(t["table_rows"].as_u64() > Some(100), "{t:#}");
    }
    assert!(validate_envelopes(dir.path())? > 10_000);
    Ok(())
}
