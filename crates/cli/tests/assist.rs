//! `ultracore assist` as a new user runs it after `ultracore demo`: the
//! demo's sample card account read by the card agent, the loan agent's
//! figures, the critic's checks, and the executions on the log.

use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ultracore(data: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .arg("--data-dir")
        .arg(data);
    c
}

#[test]
fn the_assistant_answers_from_the_demo_accounts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let demo = ultracore(dir.path()).arg("demo").output()?;
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let out = ultracore(dir.path())
        .args([
            "assist",
            "check my balance and also show loan options with $50,000 down payment",
            "--customer",
            "c-1",
            "--json",
        ])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(reply["intents"], serde_json::json!(["card", "loan"]));
    let answers = reply["answers"].as_array().ok_or("answers")?;
    assert_eq!(answers.len(), 2);
    for a in answers {
        assert_eq!(a["passed"], true, "{a}");
        assert!(!a["tools"].as_array().ok_or("tools")?.is_empty());
    }
    // The demo's account: 5 transactions and a payment.
    assert!(answers[0]["text"]
        .as_str()
        .ok_or("text")?
        .contains("$555.85"));
    assert!(answers[1]["text"]
        .as_str()
        .ok_or("text")?
        .contains("$50,000.00 deposit"));

    // An empty question is refused with the reason.
    let bad = ultracore(dir.path()).args(["assist", " "]).output()?;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("empty"));

    // Both executions are on agent.executions.
    let tail = ultracore(dir.path())
        .args([
            "events",
            "tail",
            "agent.executions",
            "--from-beginning",
            "--no-follow",
            "--json",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&tail.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    Ok(())
}
