//! A circuit breaker: closed → open after N consecutive failures → half-open
//! after a timeout → closed on the first success, open again on a failure.

use std::time::{Duration, Instant};

use serde::Serialize;

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker waits before one trial (half-open).
    pub open_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are not attempted until the open timeout has passed.
    Open,
    /// One trial call decides: success closes, failure opens again.
    HalfOpen,
}

impl BreakerState {
    /// A stable number for metrics: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// The breaker itself: pure state, the caller supplies the clock.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Whether a call may be attempted at `now`; moves open → half-open once
    /// the open timeout has passed. Returns the state change, if any.
    pub fn try_acquire(&mut self, now: Instant) -> (bool, Option<BreakerState>) {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => (true, None),
            BreakerState::Open => {
                let due = self
                    .opened_at
                    .is_none_or(|t| now.duration_since(t) >= self.config.open_timeout);
                if due {
                    self.state = BreakerState::HalfOpen;
                    (true, Some(BreakerState::HalfOpen))
                } else {
                    (false, None)
                }
            }
        }
    }

    /// How long until an open breaker lets a trial through (zero otherwise).
    pub fn wait(&self, now: Instant) -> Duration {
        match (self.state, self.opened_at) {
            (BreakerState::Open, Some(t)) => self
                .config
                .open_timeout
                .saturating_sub(now.duration_since(t)),
            _ => Duration::ZERO,
        }
    }

    /// Records a successful call. Returns the state change, if any.
    pub fn success(&mut self) -> Option<BreakerState> {
        self.consecutive_failures = 0;
        self.opened_at = None;
        (self.state != BreakerState::Closed).then(|| {
            self.state = BreakerState::Closed;
            BreakerState::Closed
        })
    }

    /// Records a failed call at `now`. Returns the state change, if any.
    pub fn failure(&mut self, now: Instant) -> Option<BreakerState> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let open = self.state == BreakerState::HalfOpen
            || self.consecutive_failures >= self.config.failure_threshold.max(1);
        if open {
            self.opened_at = Some(now);
        }
        (open && self.state != BreakerState::Open).then(|| {
            self.state = BreakerState::Open;
            BreakerState::Open
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            open_timeout: Duration::from_secs(10),
        })
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let mut b = breaker();
        let t = Instant::now();
        assert_eq!(b.failure(t), None);
        assert_eq!(b.failure(t), None);
        assert_eq!(b.success(), None, "a success resets the count");
        assert_eq!(b.failure(t), None);
        assert_eq!(b.failure(t), None);
        assert_eq!(b.failure(t), Some(BreakerState::Open));
        assert_eq!(b.try_acquire(t + Duration::from_secs(9)), (false, None));
        assert_eq!(b.wait(t + Duration::from_secs(9)), Duration::from_secs(1));
    }

    #[test]
    fn half_opens_after_the_timeout_and_one_trial_decides() {
        let mut b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.failure(t);
        }
        let later = t + Duration::from_secs(10);
        assert_eq!(b.try_acquire(later), (true, Some(BreakerState::HalfOpen)));
        assert_eq!(
            b.failure(later),
            Some(BreakerState::Open),
            "a failed trial reopens at once"
        );
        assert_eq!(b.try_acquire(later + Duration::from_secs(5)), (false, None));
        let much_later = later + Duration::from_secs(10);
        assert!(b.try_acquire(much_later).0);
        assert_eq!(b.success(), Some(BreakerState::Closed));
        assert_eq!(b.consecutive_failures(), 0);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
