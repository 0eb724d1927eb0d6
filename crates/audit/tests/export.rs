//! Exports checked by the independent Python verifier, and checkpoints that
//! stay verifiable after retention deleted the records they cover.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{audit, Error};
use ultracore_audit::{export, verify, TrailSnapshot};
use ultracore_log::{EventLog, NewRecord, Retention, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

const T0: i64 = 1_700_000_000_000;

async fn fill(log: &EmbeddedLog, topic: &str, n: usize) -> Result<(), Error> {
    let records = (0..n)
        .map(|i| {
            NewRecord::new(
                format!("k{}", i % 5),
                format!(
                    r#"{{"event_type":"e","n":{i},"principal":"key-{}","payload":{{"pad":"{}"}}}}"#,
                    i % 3,
                    "x".repeat(64)
                ),
            )
            .with_header("event_type", "e")
            .with_timestamp(T0 + i as i64 * 1_000)
        })
        .collect();
    log.append(topic, records).await?;
    Ok(())
}

/// The Python the tests use (the venv of scripts/test.sh), or python3.
fn python() -> String {
    std::env::var("ULTRACORE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run_verifier(dir: &std::path::Path, key: &str) -> Result<(bool, String), Error> {
    let out = Command::new(python())
        .arg(dir.join("verify_export.py"))
        .arg(dir)
        .arg("--key")
        .arg(key)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_verified_by_the_python_verifier_and_a_changed_record_is_not(
) -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    log.create_topic(&TopicSpec::new("trades", 3)).await?;
    log.create_topic(&TopicSpec::new("orders", 2)).await?;
    fill(&log, "trades", 90).await?;
    fill(&log, "orders", 37).await?;
    let verifier = audit(&log, &dir.path().join("audit"), 127).await?;
    let trail = TrailSnapshot::read(&dir.path().join("audit"))?;

    // A window: the records of seconds 10..40 of each topic.
    let out = dir.path().join("export");
    let report = export(&log, &trail, &verifier, T0 + 10_000, T0 + 40_000, &out).await?;
    assert_eq!(report.records, 30 + 27);
    assert_eq!((report.unsigned, report.not_audited), (0, 0));
    let (ok, text) = run_verifier(&out, &verifier.to_vkey())?;
    assert!(ok, "{text}");
    assert!(text.contains("57 records"), "{text}");
    assert!(text.contains("signature verifies"), "{text}");

    // One value changed in the export: the verifier names the record.
    let records = std::fs::read_to_string(out.join("records.jsonl"))?;
    let mut lines: Vec<serde_json::Value> = records
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let victim = lines[17].clone();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut value = b64.decode(victim["value"].as_str().unwrap_or_default())?;
    value[5] ^= 1;
    lines[17]["value"] = b64.encode(value).into();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(out.join("records.jsonl"), text)?;
    let (ok, text) = run_verifier(&out, &verifier.to_vkey())?;
    assert!(!ok, "{text}");
    let name = format!(
        "{}/{}@{}",
        victim["topic"].as_str().unwrap_or_default(),
        victim["partition"],
        victim["offset"]
    );
    assert!(text.contains(&name), "{name} not in: {text}");

    // Another key's view: the signature is not by it.
    let other = ultracore_audit::NoteSigner::generate("someone.else")?;
    let (ok, text) = run_verifier(&out, &other.verifier().to_vkey())?;
    assert!(!ok && text.contains("no signature by"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_stay_verifiable_after_retention_deletes_their_records() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let small = EmbeddedOptions {
        segment_bytes: 2_048,
        retention_interval: Duration::from_secs(3_600),
        ..EmbeddedOptions::default()
    };
    let log = EmbeddedLog::open(dir.path().join("log"), small.clone())?;
    // Records from 2023 on a topic that keeps a day: every sealed segment goes.
    log.create_topic(
        &TopicSpec::new("trades", 1).with_retention(Retention::Limited {
            max_age: Some(Duration::from_secs(86_400)),
            max_bytes: None,
        }),
    )
    .await?;
    fill(&log, "trades", 120).await?;
    let verifier = audit(&log, &dir.path().join("audit"), 120).await?;
    // Audited; now retention runs.
    drop(log);
    // The auditor's consumer tasks may hold the log a moment longer after
    // the service stopped: the directory's lock goes with the last handle.
    let options = EmbeddedOptions {
        retention_interval: Duration::from_millis(50),
        ..small
    };
    let opened = std::time::Instant::now();
    let log = loop {
        match EmbeddedLog::open(dir.path().join("log"), options.clone()) {
            Err(ultracore_log::Error::Locked { .. })
                if opened.elapsed() < Duration::from_secs(10) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other?,
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let start = log.describe_topic("trades").await?.partitions[0].log_start_offset;
        if start > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention deleted nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trail = TrailSnapshot::read(&dir.path().join("audit"))?;
    let report = verify(&log, &trail, &verifier).await?;
    assert!(report.integrity_valid, "{:#?}", report.issues);
    assert!(report.expired > 0);
    assert_eq!(report.expired + report.verified_events, 120);
    assert_eq!(report.signed_size, 120);
    Ok(())
}
