//! The shared conformance suite against the embedded backend.

use std::sync::Mutex;

use tempfile::TempDir;
use ultracore_log::testing::Harness;
use ultracore_log::{EventLog, NewRecord};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

struct Embedded {
    dir: TempDir,
    log: Mutex<Option<EmbeddedLog>>,
}

impl Embedded {
    fn new() -> Self {
        Embedded {
            dir: tempfile::tempdir().expect("temp dir"),
            log: Mutex::new(None),
        }
    }
}

impl Harness for Embedded {
    type Log = EmbeddedLog;

    async fn open(&self) -> EmbeddedLog {
        let mut slot = self.log.lock().unwrap();
        slot.get_or_insert_with(|| {
            EmbeddedLog::open(self.dir.path(), EmbeddedOptions::default()).expect("open log")
        })
        .clone()
    }

    async fn restart(&self, log: EmbeddedLog) -> EmbeddedLog {
        drop(log);
        self.log.lock().unwrap().take();
        self.open().await
    }

    /// Raw bytes, straight into the log: no envelope writer involved.
    async fn write_foreign(&self, topic: &str, key: &[u8], value: &[u8]) {
        let log = self.open().await;
        log.append(topic, vec![NewRecord::new(key, value)])
            .await
            .expect("raw append");
    }
}

ultracore_log::conformance_tests!(Embedded::new());
