//! What the runtime's integration tests share: a fresh embedded log and a
//! consumer configuration that polls, retries and samples quickly.

use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_runtime::{ConsumerConfig, RetryPolicy};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn open() -> Result<(tempfile::TempDir, EmbeddedLog), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    Ok((dir, log))
}

pub fn fast() -> ConsumerConfig {
    ConsumerConfig {
        poll_timeout_ms: 20,
        lag_interval_ms: 50,
        topic_refresh_ms: 50,
        retry: RetryPolicy {
            attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
            infra_give_up_ms: 200,
        },
        ..ConsumerConfig::default()
    }
}
