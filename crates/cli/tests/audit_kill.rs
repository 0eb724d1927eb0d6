//! The auditor killed with SIGKILL 100 times at random moments under load
//! (`ultracore bench audit --only keep-up` appends events and audits them
//! in one process, on the embedded log): after a last clean run, every
//! record of the log is in the trail exactly once (`audit verify`: nothing
//! missed, nothing doubled, every leaf as signed), and every checkpoint is
//! consistency-provable from the one before it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ultracore_audit::{read_checkpoints, verify_consistency, Nodes, TrailSnapshot};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn bench(dir: &Path, rate: u64, seconds: u64) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ultracore"));
    c.args(["bench", "audit", "--only", "keep-up", "--json"])
        .arg("--dir")
        .arg(dir)
        .args([
            "--rate",
            &rate.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .args(["--checkpoint-ms", "100"])
        .env_remove("ULTRACORE_LOG")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn the_auditor_killed_a_hundred_times_misses_and_doubles_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut seed = 0x5eed_u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for _ in 0..100 {
        let mut child = bench(dir.path(), 3_000, 3_600).spawn()?;
        std::thread::sleep(Duration::from_millis(60 + next() % 500));
        child.kill()?; // SIGKILL
        child.wait()?;
    }
    // A last run that ends cleanly: it catches up and signs the tail.
    let out = bench(dir.path(), 100, 1).output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trail_dir = dir.path().join("audit");
    let out = Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["audit", "verify", "--json"])
        .env_remove("ULTRACORE_LOG")
        .env_remove("EVENT_STORE_TYPE")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .output()?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["integrity_valid"], true, "{report:#}");
    assert_eq!(report["not_yet_audited"], 0, "{report:#}");
    let verified = report["verified_events"].as_u64().unwrap_or(0);
    assert_eq!(report["tree_size"].as_u64(), Some(verified), "{report:#}");
    assert_eq!(report["signed_size"].as_u64(), Some(verified), "{report:#}");
    // Enough load got through for the kills to have hit work in progress.
    assert!(verified > 5_000, "only {verified} records were audited");

    // Each checkpoint extends the one before it.
    let snapshot = TrailSnapshot::read(&trail_dir)?;
    let checkpoints = read_checkpoints(&trail_dir.join("checkpoints.jsonl"))?;
    assert!(checkpoints.len() > 20, "{} checkpoints", checkpoints.len());
    let tree = snapshot.tree(u64::MAX);
    for pair in checkpoints.windows(2) {
        let (_, a) = pair[0].parse()?;
        let (_, b) = pair[1].parse()?;
        assert!(a.size <= b.size, "{} after {}", b.size, a.size);
        let proof = tree.consistency_proof(a.size, b.size)?;
        verify_consistency(a.size, b.size, &proof, &a.root, &b.root)?;
    }
    Ok(())
}
