//! What the audit tests share: running the auditor until it signed everything.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ultracore_audit::{AuditOptions, AuditService, NoteVerifier};
use ultracore_log::EventLog;
use ultracore_runtime::{ConsumerConfig, Supervisor, SupervisorOptions};

pub type Error = Box<dyn std::error::Error>;

/// Audits `log` into `dir` until every record is in a signed checkpoint.
pub async fn audit<L: EventLog>(
    log: &L,
    dir: &std::path::Path,
    total: u64,
) -> Result<NoteVerifier, Error> {
    let mut options = AuditOptions::new(dir);
    options.checkpoint_records = 40;
    options.checkpoint_interval = Duration::from_millis(100);
    options.consumer = ConsumerConfig {
        poll_timeout_ms: 20,
        topic_refresh_ms: 100,
        ..ConsumerConfig::default()
    };
    let (service, opened) = AuditService::open(options)?;
    let verifier = NoteVerifier::parse(&opened.new_key.ok_or("a new trail has a new key")?)?;
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    sup.add(service.registration(log.clone()));
    let token = sup.token();
    let run = tokio::spawn(sup.run(token.clone().cancelled_owned()));
    let trail = service.trail();
    let deadline = Instant::now() + Duration::from_secs(60);
    while trail.lock().unwrap().latest().map_or(0, |c| c.tree_size) < total {
        if Instant::now() > deadline {
            return Err(format!(
                "the auditor signed {} of {total} records in 60 s",
                trail.lock().unwrap().latest().map_or(0, |c| c.tree_size)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    run.await??;
    Ok(verifier)
}
