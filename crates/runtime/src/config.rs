//! A consumer service's configuration.

use std::time::Duration;

use serde::Deserialize;
use ultracore_log::StartFrom;

/// What a consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// These topics (created from the catalogue when missing).
    Topics(Vec<String>),
    /// Every topic on the log, including ones created later (looked for
    /// every `topic_refresh_ms`), but those in `except` (a service's own
    /// output) and their dead-letter topics; dead-letter topics only when
    /// asked.
    All {
        dead_letters: bool,
        except: Vec<String>,
    },
}

impl Subscription {
    pub fn topics(topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Subscription::Topics(topics.into_iter().map(Into::into).collect())
    }

    /// Every topic but the dead-letter topics, including topics created later.
    pub fn every_topic() -> Self {
        Subscription::All {
            dead_letters: false,
            except: Vec::new(),
        }
    }
}

/// Retries of a failed record or batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts of a record whose handler fails with `Retry` (or panics)
    /// before it goes to the dead-letter topic.
    pub attempts: u32,
    /// Wait before the first retry, doubled on each retry up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// How long `Infra` failures are retried before the service stops.
    pub infra_give_up_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff_ms: 50,
            max_backoff_ms: 5_000,
            infra_give_up_ms: 30_000,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u64 << retry.saturating_sub(1).min(20);
        Duration::from_millis(
            self.initial_backoff_ms
                .saturating_mul(factor)
                .min(self.max_backoff_ms),
        )
    }
}

/// How a consumer service polls, retries and reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// Most records handed to the handler at once.
    pub max_batch: usize,
    /// How long one poll waits for records.
    pub poll_timeout_ms: u64,
    pub retry: RetryPolicy,
    /// How often the group's lag is sampled for the metrics.
    pub lag_interval_ms: u64,
    /// With [`Subscription::All`]: how often new topics are looked for.
    pub topic_refresh_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_batch: 256,
            poll_timeout_ms: 100,
            retry: RetryPolicy::default(),
            lag_interval_ms: 1_000,
            topic_refresh_ms: 2_000,
        }
    }
}

/// A consumer service: its group, what it reads and how.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The consumer group (instances of the service share its partitions).
    pub group: String,
    pub subscription: Subscription,
    /// Where to start in partitions the group never committed.
    pub start: StartFrom,
    pub config: ConsumerConfig,
}

impl ConsumerSpec {
    pub fn new(group: impl Into<String>, subscription: Subscription) -> Self {
        ConsumerSpec {
            group: group.into(),
            subscription,
            start: StartFrom::Earliest,
            config: ConsumerConfig::default(),
        }
    }

    pub fn max_batch(mut self, n: usize) -> Self {
        self.config.max_batch = n.max(1);
        self
    }

    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.config = config;
        self
    }

    pub fn start(mut self, start: StartFrom) -> Self {
        self.start = start;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=6).map(|r| p.backoff(r).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(p.backoff(u32::MAX).as_millis(), 1_000);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<ConsumerConfig>(r#"{"max_batch": 10, "max_bach": 3}"#)
            .unwrap_err();
        assert!(e.to_string().contains("max_bach"), "{e}");
    }
}
