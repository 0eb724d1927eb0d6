//! `ultracore events replay`, `ultracore projections …` and `ultracore bench es`
//! as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn ultracore(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args(args)
        .env("ULTRACORE_DATA_DIR", dir)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("ULTRACORE_LOG")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run ultracore")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[test]
fn bench_replay_and_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    // A small benchmark run leaves its data behind with --dir.
    let figures = json(ultracore(
        tmp.path(),
        &[
            "bench",
            "es",
            "--events",
            "300",
            "--snapshot-every",
            "100",
            "--projection-events",
            "400",
            "--aggregates",
            "20",
            "--commands",
            "20",
            "--runs",
            "3",
            "--dir",
            data_s,
            "--json",
        ],
    ));
    for key in [
        "load_10k_no_snapshot_ms",
        "load_10k_snapshot_ms",
        "projection_events_per_sec",
        "command_p99_ms",
    ] {
        assert!(
            figures[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {figures}"
        );
    }
    assert_eq!(figures["snapshot_version"], 201);
    assert_eq!(figures["events_after_snapshot"], 99);

    // acc-3: opened, then deposits of 100 cents (20 events each), plus bench commands.
    let at2 = json(ultracore(
        &data,
        &[
            "events",
            "replay",
            "--aggregate",
            "Account/acc-3",
            "--version",
            "2",
            "--json",
        ],
    ));
    assert_eq!(at2["version"], 2);
    assert_eq!(at2["state"]["balance_cents"], 100);
    assert_eq!(at2["state"]["owner"], "owner-3");
    assert_eq!(at2["events"].as_array().unwrap().len(), 2);
    assert_eq!(at2["events"][0]["event_type"], "account_opened");

    let now = json(ultracore(
        &data,
        &["events", "replay", "--aggregate", "Account/acc-3", "--json"],
    ));
    let version = now["version"].as_u64().unwrap();
    assert!(version >= 20);
    assert_eq!(now["events"].as_array().unwrap().len() as u64, version);

    let past = json(ultracore(
        &data,
        &[
            "events",
            "replay",
            "--aggregate",
            "Account/acc-3",
            "--as-of",
            "2000-01-01T00:00:00Z",
            "--json",
        ],
    ));
    assert_eq!(past["version"], 0);
    assert_eq!(past["state"]["open"], false);
    assert_eq!(past["events"].as_array().unwrap().len(), 0);

    let human = ok(ultracore(
        &data,
        &[
            "events",
            "replay",
            "--aggregate",
            "Account/acc-3",
            "--version",
            "1",
        ],
    ));
    assert!(human.contains("Account/acc-3 at version 1"), "{human}");
    assert!(human.contains("account_opened"));

    // Rebuild the read model and the stream index; the status shows no lag after.
    ok(ultracore(
        &data,
        &["projections", "rebuild", "account-balances"],
    ));
    ok(ultracore(&data, &["projections", "rebuild", "es-index"]));
    let status = json(ultracore(&data, &["projections", "status", "--json"]));
    assert_eq!(status[0]["name"], "account-balances");
    assert_eq!(status[0]["lag"], 0);
    assert_eq!(status[0]["generation"], 1);
}

#[test]
fn replay_errors_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["events", "replay", "--aggregate", "acc-1"], "TYPE/ID"),
        (
            vec![
                "events",
                "replay",
                "--aggregate",
                "Account/a",
                "--as-of",
                "yesterday",
            ],
            "RFC 3339",
        ),
        (
            vec!["events", "replay", "--aggregate", "Account/nobody"],
            "has no events",
        ),
        (vec!["projections", "rebuild", "nope"], "unknown projection"),
    ] {
        let out = ultracore(tmp.path(), &args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
