//! `ultracore audit …` as a user runs it: a trail made under load, then
//! `audit key`, `audit verify` (valid; then an edited checkpoint found and
//! named, exit 1), `audit export` checked by the Python verifier, and
//! `audit witness` cosigning twice, the second time over a consistency proof.

use std::path::Path;
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ultracore(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ULTRACORE_LOG")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS");
    c
}

fn load(data: &Path) -> TestResult {
    let out = ultracore(
        data,
        &[
            "bench",
            "audit",
            "--only",
            "keep-up",
            "--rate",
            "2000",
            "--seconds",
            "1",
            "--checkpoint-ms",
            "100",
            "--json",
        ],
    )
    .arg("--dir")
    .arg(data)
    .output()?;
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn verify_export_and_witness_from_the_command_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    load(data)?;

    let out = ultracore(data, &["audit", "key"]).output()?;
    assert!(out.status.success(), "{}", text(&out));
    let vkey = String::from_utf8(out.stdout)?.trim().to_owned();
    assert!(vkey.starts_with("ultracore.audit/"), "{vkey}");

    let out = ultracore(data, &["audit", "verify", "--key", &vkey]).output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("integrity valid"), "{}", text(&out));

    // Export everything and check it with the Python verifier.
    let export = data.join("export");
    let out = ultracore(
        data,
        &["audit", "export", "--from", "0", "--to", "99999999999999"],
    )
    .arg("--out")
    .arg(&export)
    .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let python = std::env::var("ULTRACORE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(export.join("verify_export.py"))
        .arg(&export)
        .args(["--key", &vkey])
        .output()?;
    assert!(out.status.success(), "{}", text(&out));

    // A witness: the first checkpoint it sees, then one that extends it.
    let witness = |data: &Path| {
        ultracore(data, &["audit", "witness", "--log-key", &vkey, "--json"])
            .arg("--key-file")
            .arg(data.join("w.key"))
            .arg("--state")
            .arg(data.join("w.json"))
            .output()
    };
    let out = witness(data)?;
    assert!(out.status.success(), "{}", text(&out));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    load(data)?;
    let out = witness(data)?;
    assert!(out.status.success(), "{}", text(&out));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(second["previous_size"], first["tree_size"]);
    assert!(second["tree_size"].as_u64() > first["tree_size"].as_u64());
    assert!(second["note"]
        .as_str()
        .unwrap_or_default()
        .contains("\n\u{2014} witness.local "));

    // An edited checkpoint: one character of its root.
    let path = data.join("audit").join("checkpoints.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .map(str::to_owned)
        .collect();
    let mut cp: serde_json::Value = serde_json::from_str(&lines[0])?;
    let note = cp["note"].as_str().unwrap_or_default().to_owned();
    let root_line = note.lines().nth(2).unwrap_or_default().to_owned();
    let flipped = if root_line.starts_with('A') { "B" } else { "A" };
    cp["note"] = note
        .replacen(&root_line, &format!("{flipped}{}", &root_line[1..]), 1)
        .into();
    let mut edited = vec![cp.to_string()];
    edited.extend(lines[1..].iter().cloned());
    std::fs::write(&path, edited.join("\n") + "\n")?;
    let out = ultracore(data, &["audit", "verify", "--key", &vkey]).output()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the first: checkpoint"),
        "{}",
        text(&out)
    );
    Ok(())
}
