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
use ultracore_cdc::{Operational, SqliteDb};
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
    let (_, metrics) = admin("GET", "/metrics", "")?;
    assert!(
        metrics.contains("ultracore_cdc_events_total 7"),
        "{metrics}"
    );
    Ok(())
}

/// Where a kill test runs: the database (PostgreSQL's URL, or SQLite in
/// the data directory) and the log (Kafka's broker and a topic prefix of
/// its own, or the embedded log).
#[derive(Clone, Copy)]
struct Setup<'a> {
    database_url: Option<&'a str>,
    kafka: Option<(&'a str, &'a str)>,
}

impl Setup<'_> {
    /// `ultracore` on `dir` with this setup's environment.
    fn command(&self, dir: &std::path::Path) -> std::process::Command {
        let mut c = in_data_dir(dir);
        if let Some(url) = self.database_url {
            c.env("DATABASE_URL", url);
        }
        if let Some((broker, prefix)) = self.kafka {
            c.env("KAFKA_BOOTSTRAP_SERVERS", broker)
                .env("KAFKA_TOPIC_PREFIX", prefix)
                .env("EVENT_STORE_TYPE", "kafka");
        }
        c
    }
}

fn spawn_relay(dir: &std::path::Path, setup: Setup) -> Result<Child, Box<dyn std::error::Error>> {
    Ok(setup
        .command(dir)
        .args(["cdc", "relay", "--recovery-idle-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// One seeded random change of the tables.
async fn change(
    db: &Operational,
    rng: &mut SplitMix64,
    users: &mut Vec<String>,
    conversations: &mut Vec<String>,
    n: usize,
) -> TestResult {
    let roll = rng.below(100);
    match roll {
        _ if roll < 30 || users.is_empty() => {
            let id = format!("u{n}");
            db.create_user(NewUser {
                id: Some(id.clone()),
                name: format!("User {n}"),
                email: format!("u{n}@example.com"),
                phone: rng
                    .chance(0.5)
                    .then(|| format!("+61 4{:08}", rng.below(100_000_000))),
                country: rng.pick(&["AU", "NZ", "GB", "US"]).to_string(),
                risk_profile: "balanced".into(),
                status: "active".into(),
            })
            .await?;
            users.push(id);
        }
        30..=54 => {
            let id = rng.pick(users).clone();
            let patch = UserPatch {
                risk_profile: Some(rng.pick(ultracore_cdc::model::RISK_PROFILES).to_string()),
                name: rng.chance(0.3).then(|| format!("Renamed {n}")),
                ..Default::default()
            };
            db.update_user(id, patch).await?;
        }
        55..=64 => {
            let i = rng.below(users.len());
            let id = users.swap_remove(i);
            db.delete_user(id).await?;
        }
        65..=79 => {
            let id = format!("conv-{n}");
            db.create_conversation(NewConversation {
                id: Some(id.clone()),
                customer_id: rng.pick(users).clone(),
                subject: Some(format!("Subject {n}")),
            })
            .await?;
            conversations.push(id);
        }
        _ => {
            if !conversations.is_empty() {
                let id = rng.pick(conversations).clone();
                db.add_message(
                    id,
                    NewMessage {
                        role: rng.pick(&["customer", "agent"]).to_string(),
                        text: format!("message {n}: \"quoted\" and ünïcode"),
                    },
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// 10,000 seeded random inserts, updates and deletes of users and
/// conversations while the relay, a process of its own, is killed with
/// SIGKILL 100 times; then the change topics replay to the tables row for
/// row, with no duplicate and per-key order kept (`ultracore cdc verify`),
/// and every event matches Debezium's envelope.
fn killed(setup: Setup, changes: usize, kills: usize) -> TestResult {
    let database_url = setup.database_url;
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let db = runtime.block_on(async {
        match database_url {
            Some(url) => Ok::<_, ultracore_cdc::Error>(Operational::Postgres(
                ultracore_cdc::PgDb::connect(url).await?,
            )),
            None => Ok(Operational::Sqlite(std::sync::Arc::new(SqliteDb::open(
                dir.path().join(FILE_NAME),
            )?))),
        }
    })?;
    let mut rng = SplitMix64::new(17);
    let (mut users, mut conversations) = (Vec::new(), Vec::new());
    let mut n = 0;
    let per_run = changes / kills;
    for _ in 0..kills {
        let mut relay = spawn_relay(dir.path(), setup)?;
        // Kill after a random one of this run's 100 changes: the relay may
        // be starting, recovering, snapshotting, mid-batch or idle.
        let kill_after = rng.below(per_run);
        for i in 0..per_run {
            runtime.block_on(change(&db, &mut rng, &mut users, &mut conversations, n))?;
            n += 1;
            std::thread::sleep(Duration::from_millis(3));
            if i == kill_after {
                relay.kill()?; // SIGKILL
                relay.wait()?;
            }
        }
    }
    assert_eq!(n, changes);
    // A last relay catches up (in this process), then the log is released.
    runtime.block_on(async {
        let config = ultracore_log_any::LogConfig {
            data_dir: Some(dir.path().to_owned()),
            bootstrap_servers: setup.kafka.map(|(b, _)| b.to_owned()),
            topic_prefix: setup.kafka.map(|(_, p)| p.to_owned()),
            ..Default::default()
        };
        let log =
            ultracore_log_any::AnyLog::open(&config, ultracore_log_any::Access::Write).await?;
        let (_, relay) =
            ultracore_cdc::open(log, dir.path(), database_url, Default::default()).await?;
        relay.drain().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let out = setup
        .command(dir.path())
        .args(["cdc", "verify", "--json"])
        .output()?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "cdc verify printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    assert_eq!(v["ok"], true, "{v:#}");
    for t in v["tables"].as_array().ok_or("no tables")? {
        // On Kafka a producer retry may duplicate a record (verify counts
        // a duplicate by its source position; the replay still equals the
        // tables); on the embedded log there is none.
        if setup.kafka.is_none() {
            assert_eq!(t["duplicates"], 0, "{t:#}");
        }
        assert_eq!(t["out_of_order"], 0, "{t:#}");
        assert!(t["table_rows"].as_u64() > Some(20), "{t:#}");
    }
    if setup.kafka.is_none() {
        assert!(validate_envelopes(dir.path())? > 10_000);
    }
    Ok(())
}

#[test]
fn sqlite_a_relay_killed_100_times_loses_nothing_and_repeats_nothing() -> TestResult {
    let setup = Setup {
        database_url: None,
        kafka: None,
    };
    killed(setup, 10_000, 100)
}

/// On Kafka: nothing lost, per-key order kept (fewer changes and kills:
/// each start joins consumer groups to recover, which takes seconds on
/// the test broker).
#[test]
fn sqlite_onto_kafka_a_killed_relay_loses_nothing() -> TestResult {
    let broker = std::env::var("ULTRACORE_TEST_KAFKA").map_err(|_| {
        "ULTRACORE_TEST_KAFKA is not set: run scripts/test.sh, which starts a local Kafka-protocol broker and sets it"
    })?;
    let prefix = format!("cdckill{}.", std::process::id());
    let setup = Setup {
        database_url: None,
        kafka: Some((&broker, &prefix)),
    };
    killed(setup, 2_000, 10)
}

#[test]
fn postgres_a_relay_killed_100_times_loses_nothing_and_repeats_nothing() -> TestResult {
    let db = common::pg::TestDatabase::new("cdc_kill")?;
    let setup = Setup {
        database_url: Some(&db.url),
        kafka: None,
    };
    killed(setup, 10_000, 100)
}

/// `serve` with DATABASE_URL=postgres://…: the read models and the users
/// and conversations tables in PostgreSQL, the changes captured by logical
/// replication, an optimization answered through the PostgreSQL read models.
#[test]
fn serve_on_postgresql_keeps_its_tables_and_read_models_there() -> TestResult {
    let db = common::pg::TestDatabase::new("cdc_serve")?;
    let server = Serve::start_with_env(&[], &[("DATABASE_URL", db.url.as_str())])?;
    server.wait_ready()?;
    let (s, body) = server
        .http("POST", "/api/v1/users", r#"{"id": "c-pg", "name": "Grace Hopper", "email": "grace@example.com", "country": "US"}"#)
        .ok_or("no answer")?;
    assert_eq!(s, 201, "{body}");
    let (s, body) = server
        .http(
            "POST",
            "/api/v1/conversations",
            r#"{"id": "conv-pg", "customer_id": "c-pg"}"#,
        )
        .ok_or("no answer")?;
    assert_eq!(s, 201, "{body}");
    let (s, body) = server
        .http(
            "POST",
            "/api/v1/conversations/conv-pg/messages",
            r#"{"role": "advisor", "text": "Welcome."}"#,
        )
        .ok_or("no answer")?;
    assert_eq!(s, 201, "{body}");
    // An optimization, answered through the read models in PostgreSQL.
    let request = r#"{"request_id": "0190f7a2-3c4d-7e5f-8a9b-0000000000c1",
        "portfolio": {"holdings": [{"ticker": "XOM", "units": 300}, {"ticker": "KO", "units": 400}], "cash": 20000.0},
        "objective": {"kind": "max_sharpe"}, "constraints": {"weight_bounds": [0.0, 0.4]},
        "universe": ["MSFT", "JNJ", "PG", "WMT", "AAPL"]}"#;
    let (s, body) = server
        .http("POST", "/api/v1/portfolios/pf-pg/optimizations", request)
        .ok_or("no answer")?;
    assert_eq!(s, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, body) = server
            .http(
                "GET",
                "/api/v1/optimizations/0190f7a2-3c4d-7e5f-8a9b-0000000000c1",
                "",
            )
            .ok_or("no answer")?;
        if s == 200 && body.contains("completed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the optimization did not complete: {s} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (s, body) = server
        .http("GET", "/api/v1/portfolios/pf-pg", "")
        .ok_or("no answer")?;
    assert_eq!(s, 200, "{body}");
    // The tables and the read models are in PostgreSQL, not in the data directory.
    assert!(!server.data_dir().join("ultracore.sqlite").exists());
    assert!(!server.data_dir().join(FILE_NAME).exists());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (documents, users): (i64, i64) = runtime.block_on(async {
        let (c, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let documents: i64 = c
            .query_one("SELECT count(*) FROM ultracore_es.documents", &[])
            .await?
            .get(0);
        let users: i64 = c
            .query_one("SELECT count(*) FROM public.users", &[])
            .await?
            .get(0);
        Ok::<_, tokio_postgres::Error>((documents, users))
    })?;
    assert!(documents > 0, "no read-model documents in PostgreSQL");
    assert_eq!(users, 1);
    // Every change on the log, replaying to the tables.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut verify = in_data_dir(server.data_dir());
        let out = verify
            .args(["cdc", "verify", "--json"])
            .env("DATABASE_URL", &db.url)
            .output()?;
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if v["ok"] == true {
            assert_eq!(v["tables"][0]["ops"]["c"], 1, "{v:#}");
            assert_eq!(v["tables"][1]["ops"]["u"], 1, "{v:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change topics never matched the tables: {v:#} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = in_data_dir(server.data_dir())
        .args(["cdc", "status", "--json"])
        .env("DATABASE_URL", &db.url)
        .output()?;
    let status: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(status["connector"], "postgresql", "{status:#}");
    assert_eq!(
        status["active"], true,
        "the server's relay holds the slot: {status:#}"
    );
    assert_eq!(status["snapshot_done"], true);
    drop(server);
    Ok(())
}
