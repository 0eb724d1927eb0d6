//! Change capture onto the embedded log.

mod common;

use common::TestResult;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

fn log(dir: &tempfile::TempDir) -> EmbeddedLog {
    EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).expect("open the log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_streams_every_change() -> TestResult {
    let dir = tempfile::tempdir()?;
    common::streams_every_change(log(&dir)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_snapshot_hands_over_to_streaming() -> TestResult {
    let dir = tempfile::tempdir()?;
    common::snapshot_hands_over_to_streaming(log(&dir)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_another_process_is_captured() -> TestResult {
    let dir = tempfile::tempdir()?;
    common::another_process_is_captured(log(&dir)).await
}
