//! Adding a service: one module (a handler and its registration) plus one
//! line that adds the registration to the supervisor. This one counts the
//! events of every topic, including topics created after it started.
//!
//! Run it: `cargo run -p ultracore-runtime --example adding_a_service`

use std::collections::BTreeMap;
use std::time::Duration;

use ultracore_log::{EventLog, EventLogExt, NewRecord, Record, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_runtime::{
    ConsumerSpec, Handler, HandlerError, Registration, Subscription, Supervisor, SupervisorOptions,
};

// ---- the module: a handler and its registration ---------------------------

/// Counts events per topic.
#[derive(Debug, Default)]
struct EventCounter {
    per_topic: BTreeMap<String, u64>,
}

impl Handler for EventCounter {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        for record in batch {
            if record.value.is_empty() {
                // The runtime sends it to `<topic>.dlq` with this reason.
                return Err(HandlerError::reject("an event must not be empty"));
            }
            *self.per_topic.entry(record.topic.clone()).or_default() += 1;
        }
        tracing::info!(counts = ?self.per_topic, "counted");
        Ok(())
    }
}

fn event_counter<L: EventLog>(log: L) -> Registration {
    let spec = ConsumerSpec::new("event-counter", Subscription::every_topic());
    Registration::consumer("event-counter", log, spec, |_ctx| {
        Ok(EventCounter::default())
    })
}

// ---- the process ------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    let mut supervisor = Supervisor::new(Default::default(), SupervisorOptions::default());
    supervisor.add(event_counter(log.clone())); // the one registration line
    let registry = supervisor.registry();
    let token = supervisor.token();
    let running = tokio::spawn(supervisor.run(token.clone().cancelled_owned()));

    log.ensure_topic(&TopicSpec::new("portfolio-events", 3))
        .await?;
    log.append(
        "portfolio-events",
        vec![NewRecord::new("pf-1", "{}"), NewRecord::new("pf-2", "{}")],
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel();
    running.await??;
    for line in registry.render().lines() {
        if line.starts_with("ultracore_service_records_total") {
            println!("{line}");
        }
    }
    Ok(())
}
