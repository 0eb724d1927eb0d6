//! Publishing what a command computed, without making the command wait: the
//! log opens and the events are appended in the background while the command
//! works; before exiting, the command waits briefly for them to be durable.

use std::time::{Duration, Instant};

use ultracore_log::{EnvelopeBuilder, EventFamily, Publisher, PublisherOptions};
use ultracore_log_any::{Access, AnyLog};
use uuid::Uuid;

use crate::LogArgs;

/// How long a finishing command waits for its events to reach the log.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes a command's events to the configured log; with no log
/// configured it does nothing, so analytics stays usable without one.
#[derive(Debug)]
pub struct Emitter {
    publisher: Option<Publisher>,
    correlation_id: String,
}

impl Emitter {
    /// Starts publishing if a log is configured (`--log`, `--data-dir` or
    /// their variables). Opening the log happens in the background.
    pub fn start(log: &LogArgs) -> Emitter {
        let correlation_id = Uuid::now_v7().to_string();
        if !log.is_configured() {
            return Emitter {
                publisher: None,
                correlation_id,
            };
        }
        let config = log.config();
        let publisher = Publisher::spawn(
            async move { AnyLog::open(&config, Access::Write).await },
            PublisherOptions::default(),
        );
        Emitter {
            publisher: Some(publisher),
            correlation_id,
        }
    }

    /// Queues one event and returns its id (`None` when nothing is published).
    pub fn emit<E: EventFamily>(
        &self,
        topic: &str,
        aggregate: (&str, &str),
        causation: Option<Uuid>,
        event: E,
    ) -> Option<Uuid> {
        let publisher = self.publisher.as_ref()?;
        let mut builder = EnvelopeBuilder::new(aggregate.0, aggregate.1)
            .correlation_id(self.correlation_id.clone());
        if let Some(cause) = causation {
            builder = builder.causation_id(cause);
        }
        let envelope = builder.build(event);
        match publisher.publish(topic, envelope.to_record()) {
            Ok(()) => Some(envelope.event_id),
            Err(e) => {
                eprintln!("warning: {} event not published: {e}", envelope.event_type);
                None
            }
        }
    }

    /// Waits (up to a limit) for the queued events to be durable; reports on
    /// stderr what could not be published. The command's result stands either way.
    pub async fn finish(self) {
        let Some(publisher) = self.publisher else {
            return;
        };
        let started = Instant::now();
        let report = publisher.close(FLUSH_TIMEOUT).await;
        tracing::debug!(?report, elapsed = ?started.elapsed(), "events flushed");
        if !report.is_complete() {
            let lost = report.failed + report.dropped + report.abandoned;
            eprintln!(
                "warning: {lost} of {} events not published: {}",
                lost + report.published,
                report.last_error.as_deref().unwrap_or("unknown reason")
            );
        }
    }
}

/// Milliseconds since `start`, for event payloads.
pub fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}
