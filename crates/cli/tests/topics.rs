//! `ultracore events topics`: retention as a user reads it, in the table and
//! in `--json`.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ultracore(dir: &Path, args: &[&str]) -> Output {
    common::in_data_dir(dir)
        .args(args)
        .output()
        .expect("run ultracore")
}

fn ok(out: Output) -> Result<String, Box<dyn std::error::Error>> {
    if !out.status.success() {
        return Err(format!("failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The table row of a topic, split on runs of spaces.
fn row(table: &str, topic: &str) -> Option<Vec<String>> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(topic))
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
}

#[test]
fn event_sourced_topics_are_kept_forever() -> TestResult {
    let dir = tempfile::tempdir()?;
    // With a default retention: it applies to the demo's other topics, not
    // to the event-sourced ones.
    ok(ultracore(
        dir.path(),
        &["--retention-days", "30", "demo", "--json"],
    ))?;
    ok(ultracore(
        dir.path(),
        &[
            "events",
            "create",
            "both",
            "--retention-days",
            "7",
            "--retention-bytes",
            "1048576",
        ],
    ))?;

    let table = ok(ultracore(dir.path(), &["events", "topics"]))?;
    let es = row(&table, "es.Portfolio").ok_or_else(|| format!("no es.Portfolio in:\n{table}"))?;
    assert_eq!(es.last().map(String::as_str), Some("forever"), "{table}");
    let requests = row(&table, "esg-portfolio-events").ok_or("no esg-portfolio-events")?;
    assert_eq!(
        requests.last().map(String::as_str),
        Some("30 days"),
        "{table}"
    );
    let both = row(&table, "both").ok_or("no both")?;
    assert_eq!(
        both.last().map(String::as_str),
        Some("7 days or 1.0 MiB"),
        "{table}"
    );

    let json: Value =
        serde_json::from_str(&ok(ultracore(dir.path(), &["events", "topics", "--json"]))?)?;
    let topic = |name: &str| {
        json.as_array()
            .and_then(|a| a.iter().find(|t| t["topic"] == name))
            .cloned()
            .ok_or_else(|| format!("no {name} in {json}"))
    };
    let es = topic("es.Portfolio")?;
    assert_eq!(es["retention"], "forever", "{es}");
    assert_eq!(es["retention_ms"], Value::Null, "{es}");
    assert_eq!(es["retention_bytes"], Value::Null, "{es}");
    let requests = topic("esg-portfolio-events")?;
    assert_eq!(requests["retention"], "limited", "{requests}");
    assert_eq!(requests["retention_ms"], 30 * 86_400_000u64, "{requests}");
    let both = topic("both")?;
    assert_eq!(both["retention"], "limited", "{both}");
    assert_eq!(both["retention_ms"], 7 * 86_400_000u64, "{both}");
    assert_eq!(both["retention_bytes"], 1_048_576, "{both}");
    Ok(())
}
