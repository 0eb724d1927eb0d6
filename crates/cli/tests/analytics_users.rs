//! User changes counted end to end: rows written through the users API of
//! `ultracore serve` are captured onto `db.changes.users` by its CDC relay
//! (SQLite's outbox, or PostgreSQL's logical replication), and the agent
//! analytics service counts them at `GET /api/v1/analytics/users`.

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::{Serve, TestResult};
use serde_json::{json, Value};

/// Polls the figures until `by_op` is `want`; the figures then.
fn counted(server: &Serve, want: Value) -> Result<Value, common::Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, body) = server
            .http("GET", "/api/v1/analytics/users", "")
            .ok_or("no answer")?;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body)?;
        if v["by_op"] == want {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("by_op never became {want}: {body}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two users created, one updated, then one deleted (its tombstone is no
/// change): each counted once, at the time it was committed.
fn changes_through_the_api_are_counted(server: &Serve) -> TestResult {
    let admin = |m: &str, p: &str, b: &str| server.http(m, p, b).ok_or("no answer");
    let (s, body) = admin(
        "POST",
        "/api/v1/users",
        r#"{"id": "u-ada", "name": "Ada Lovelace", "email": "ada@example.com", "country": "AU"}"#,
    )?;
    assert_eq!(s, 201, "{body}");
    let (s, body) = admin(
        "POST",
        "/api/v1/users",
        r#"{"id": "u-alan", "name": "Alan Turing", "email": "alan@example.com", "country": "GB"}"#,
    )?;
    assert_eq!(s, 201, "{body}");
    let (s, body) = admin(
        "PATCH",
        "/api/v1/users/u-ada",
        r#"{"risk_profile": "growth"}"#,
    )?;
    assert_eq!(s, 200, "{body}");

    let figures = counted(server, json!({"c": 2, "u": 1, "d": 0, "r": 0}))?;
    assert_eq!(figures["total"], 3);
    // Committed moments ago: in the last hour's buckets, at a real time.
    let per_minute = figures["trends"]["per_minute"]
        .as_array()
        .ok_or("per_minute")?;
    assert_eq!(per_minute.len(), 60);
    let in_buckets: u64 = per_minute.iter().filter_map(|b| b["total"].as_u64()).sum();
    assert_eq!(in_buckets, 3, "{figures}");
    let last: chrono::DateTime<Utc> = serde_json::from_value(figures["last_changed_at"].clone())?;
    let age = Utc::now() - last;
    assert!(
        age > -TimeDelta::seconds(5) && age < TimeDelta::minutes(5),
        "last_changed_at {last} is not just now"
    );

    let (s, body) = admin("DELETE", "/api/v1/users/u-alan", "")?;
    assert_eq!(s, 204, "{body}");
    let figures = counted(server, json!({"c": 2, "u": 1, "d": 1, "r": 0}))?;
    assert_eq!(figures["total"], 4);
    Ok(())
}

#[test]
fn users_written_through_the_api_are_counted_by_the_analytics() -> TestResult {
    let server = Serve::start(&[])?;
    server.wait_ready()?;
    changes_through_the_api_are_counted(&server)
}

/// The same with the users table in PostgreSQL: positions from the WAL.
#[test]
fn users_in_postgresql_are_counted_by_the_analytics() -> TestResult {
    let db = common::pg::TestDatabase::new("analytics_users")?;
    let server = Serve::start_with_env(&[], &[("DATABASE_URL", db.url.as_str())])?;
    server.wait_ready()?;
    changes_through_the_api_are_counted(&server)
}
