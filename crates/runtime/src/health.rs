//! Health and readiness of a process's services, for `/healthz` and `/readyz`.
//!
//! - Healthy: no service has failed, and every check (the log accepts
//!   writes, …) passes. A service being restarted is still healthy; one
//!   that failed for good is not, and the report names it with its error.
//! - Ready: every consumer service has joined its group and caught up
//!   (a poll found nothing left to read) at least once since it started.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

/// A service's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServiceState {
    Starting,
    Running,
    /// It failed and will be started again.
    Restarting {
        restarts: u32,
        error: String,
    },
    /// It failed and will not be started again.
    Failed {
        error: String,
    },
    Stopped,
}

/// A service as `/healthz` and `/readyz` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    #[serde(flatten)]
    pub state: ServiceState,
    /// Joined its group and caught up at least once (always true for a
    /// service that is not a consumer, once running).
    pub ready: bool,
    /// Whether readiness waits for it.
    #[serde(skip)]
    pub consumer: bool,
    /// An operator paused its consumer loop: it reads nothing until
    /// resumed (its lag grows), and keeps its state and group.
    pub paused: bool,
}

/// A check run at every health report: `Some(reason)` when failing.
pub type Check = Arc<dyn Fn() -> Option<String> + Send + Sync>;

#[derive(Default)]
struct Inner {
    services: BTreeMap<String, ServiceStatus>,
    checks: Vec<(String, Check)>,
}

/// The health of one process (cloning shares it).
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("services", &self.lock().services.len())
            .finish()
    }
}

/// What `/healthz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub services: Vec<ServiceStatus>,
    /// Failing checks and failed services, one line each.
    pub problems: Vec<String>,
}

/// What `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyReport {
    pub ready: bool,
    /// Services not ready yet.
    pub waiting: Vec<String>,
}

impl Health {
    pub fn new() -> Self {
        Health::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a named check (e.g. "log": the log accepts writes).
    pub fn add_check(&self, name: impl Into<String>, check: Check) {
        self.lock().checks.push((name.into(), check));
    }

    pub(crate) fn register(&self, name: &str, consumer: bool) {
        self.lock().services.insert(
            name.to_owned(),
            ServiceStatus {
                name: name.to_owned(),
                state: ServiceState::Starting,
                ready: false,
                consumer,
                paused: false,
            },
        );
    }

    pub(crate) fn set_state(&self, name: &str, state: ServiceState) {
        if let Some(s) = self.lock().services.get_mut(name) {
            if !matches!(state, ServiceState::Running) {
                s.ready = false;
            }
            if matches!(state, ServiceState::Running) && !s.consumer {
                s.ready = true;
            }
            s.state = state;
        }
    }

    /// A consumer joined its group and caught up.
    pub(crate) fn set_ready(&self, name: &str) {
        if let Some(s) = self.lock().services.get_mut(name) {
            s.ready = true;
        }
    }

    /// Marks a service as not ready (e.g. it rejoined its group).
    pub(crate) fn set_unready(&self, name: &str) {
        if let Some(s) = self.lock().services.get_mut(name) {
            s.ready = false;
        }
    }

    /// Pauses a consumer service: its loop stops reading (after the batch
    /// at hand) until [`Health::resume`]. An error names what is wrong: no
    /// such service, or not a consumer.
    ///
    /// On Kafka, a member that does not poll for `max.poll.interval.ms`
    /// (5 minutes by default) leaves its group; it joins again on resume.
    pub fn pause(&self, name: &str) -> Result<(), String> {
        self.set_paused(name, true)
    }

    /// Resumes a paused consumer service.
    pub fn resume(&self, name: &str) -> Result<(), String> {
        self.set_paused(name, false)
    }

    fn set_paused(&self, name: &str, paused: bool) -> Result<(), String> {
        let mut inner = self.lock();
        let known: Vec<String> = inner
            .services
            .values()
            .filter(|s| s.consumer)
            .map(|s| s.name.clone())
            .collect();
        match inner.services.get_mut(name) {
            Some(s) if s.consumer => {
                s.paused = paused;
                Ok(())
            }
            Some(_) => Err(format!(
                "service '{name}' is not a consumer: only consumers ({}) can be paused",
                known.join(", ")
            )),
            None => Err(format!(
                "no service '{name}' runs in this process: consumers are {}",
                known.join(", ")
            )),
        }
    }

    /// Whether an operator paused the service.
    pub fn is_paused(&self, name: &str) -> bool {
        self.lock().services.get(name).is_some_and(|s| s.paused)
    }

    pub fn service(&self, name: &str) -> Option<ServiceStatus> {
        self.lock().services.get(name).cloned()
    }

    pub fn report(&self) -> HealthReport {
        let (services, checks) = {
            let inner = self.lock();
            (
                inner.services.values().cloned().collect::<Vec<_>>(),
                inner.checks.clone(),
            )
        };
        let mut problems = Vec::new();
        for s in &services {
            if let ServiceState::Failed { error } = &s.state {
                problems.push(format!("service {} failed: {error}", s.name));
            }
        }
        // Checks run outside the lock: they may take a moment.
        for (name, check) in checks {
            if let Some(reason) = check() {
                problems.push(format!("{name}: {reason}"));
            }
        }
        HealthReport {
            healthy: problems.is_empty(),
            services,
            problems,
        }
    }

    pub fn readiness(&self) -> ReadyReport {
        let inner = self.lock();
        let waiting: Vec<String> = inner
            .services
            .values()
            .filter(|s| !s.ready && !matches!(s.state, ServiceState::Stopped))
            .map(|s| s.name.clone())
            .collect();
        ReadyReport {
            ready: waiting.is_empty(),
            waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_service_and_a_failing_check_make_it_unhealthy() {
        let h = Health::new();
        h.register("a", true);
        h.register("b", false);
        h.set_state("a", ServiceState::Running);
        h.set_state("b", ServiceState::Running);
        assert!(h.report().healthy);
        assert_eq!(h.readiness().waiting, ["a"]);
        h.set_ready("a");
        assert!(h.readiness().ready);

        h.set_state(
            "b",
            ServiceState::Failed {
                error: "boom".into(),
            },
        );
        let r = h.report();
        assert!(!r.healthy);
        assert_eq!(r.problems, ["service b failed: boom"]);

        h.add_check("log", Arc::new(|| Some("stopped accepting writes".into())));
        assert_eq!(h.report().problems.len(), 2);
    }
}
