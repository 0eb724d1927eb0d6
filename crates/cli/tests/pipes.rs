//! A command piped into a reader that closes early (`| head -1`) exits 0
//! with nothing on stderr, as other Unix tools do.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_reader_that_closes_early_ends_the_command_quietly() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Far more output than a pipe holds, so the writer meets the closed end.
    let mut produce = common::in_data_dir(dir.path())
        .args(["events", "produce", "piped", "--key", "k"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    {
        let mut stdin = produce.stdin.take().ok_or("stdin")?;
        for i in 0..5_000 {
            writeln!(stdin, r#"{{"n": {i}, "padding": "{}"}}"#, "x".repeat(64))?;
        }
    }
    let out = produce.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for args in [
        &["events", "tail", "piped", "--from-beginning", "--no-follow"][..],
        &[
            "events",
            "tail",
            "piped",
            "--from-beginning",
            "--no-follow",
            "--json",
        ][..],
    ] {
        let mut tail = common::in_data_dir(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut first = String::new();
        BufReader::new(tail.stdout.take().ok_or("stdout")?).read_line(&mut first)?;
        // The reader is gone (its end of the pipe closed when dropped).
        assert!(!first.is_empty());
        let out = tail.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{args:?} exited {}: {stderr}",
            out.status
        );
        assert!(stderr.trim().is_empty(), "{args:?} said: {stderr}");
    }
    Ok(())
}
