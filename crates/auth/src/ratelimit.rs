//! Per-principal rate limits: [`RateLimiter`], a token bucket per id.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How fast each principal may go.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second [default: 50].
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell [default: 100].
    pub burst: u32,
    /// How many principals are tracked at most [default: 10,000]; see
    /// [`RateLimiter`] for what happens past it.
    pub max_tracked: usize,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            per_second: 50.0,
            burst: 100,
            max_tracked: 10_000,
        }
    }
}

/// A request over the limit, and when the next one would be allowed (for a
/// 429 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded: retry after {} ms", .0.as_millis())]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// The HTTP status: 429.
    pub const STATUS: u16 = 429;

    /// Whole seconds, rounded up, for the `Retry-After` header (never 0).
    pub fn header_secs(&self) -> u64 {
        let d = self.0;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<Box<str>, Bucket>,
    last_sweep: Option<Instant>,
}

/// Token buckets keyed by principal id: each holds up to `burst` tokens,
/// refills at `per_second`, and a request takes one.
///
/// Memory is bounded. A bucket that has refilled to `burst` behaves exactly
/// like no bucket, so it is dropped: a sweep does that at most once per
/// time-to-refill (and at least once a second), and before a new id would
/// go past `max_tracked`. If every tracked bucket is still refilling, the
/// one used longest ago is dropped, which gives that principal a full
/// bucket early: a bounded leniency that needs more than `max_tracked`
/// principals busy at once, never a refusal of someone within their limit.
///
/// One mutex guards the map; a check holds it for a hash lookup and a few
/// float operations.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    /// The time from empty to full, after which a bucket can go.
    refill: Duration,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// Errors: `per_second` not positive and finite, `burst` or
    /// `max_tracked` zero.
    pub fn new(limit: RateLimit) -> Result<RateLimiter> {
        if !(limit.per_second.is_finite() && limit.per_second > 0.0) {
            return Err(Error::RateLimitConfig {
                reason: "per_second must be a positive number",
            });
        }
        if limit.burst == 0 {
            return Err(Error::RateLimitConfig {
                reason: "burst must be at least 1",
            });
        }
        if limit.max_tracked == 0 {
            return Err(Error::RateLimitConfig {
                reason: "max_tracked must be at least 1",
            });
        }
        let refill = Duration::try_from_secs_f64(f64::from(limit.burst) / limit.per_second)
            .unwrap_or(Duration::MAX);
        Ok(RateLimiter {
            limit,
            refill,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                last_sweep: None,
            }),
        })
    }

    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Takes one token from `id`'s bucket, now.
    pub fn check(&self, id: &str) -> Result<(), RetryAfter> {
        self.check_at(id, Instant::now())
    }

    /// [`RateLimiter::check`] at `now`. Times must not run backwards for
    /// one id; if they do, no time has passed.
    pub fn check_at(&self, id: &str, now: Instant) -> Result<(), RetryAfter> {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let sweep_every = self.refill.min(Duration::from_secs(1));
        if b.last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= sweep_every)
        {
            self.sweep(&mut b, now);
        }
        let burst = f64::from(self.limit.burst);
        let bucket = match b.map.get_mut(id) {
            Some(bucket) => {
                let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(burst);
                bucket.updated = bucket.updated.max(now);
                bucket
            }
            None => {
                if b.map.len() >= self.limit.max_tracked {
                    self.sweep(&mut b, now);
                    if b.map.len() >= self.limit.max_tracked {
                        evict_oldest(&mut b.map);
                    }
                }
                b.map.entry(id.into()).or_insert(Bucket {
                    tokens: burst,
                    updated: now,
                })
            }
        };
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.limit.per_second;
            Err(RetryAfter(
                Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX),
            ))
        }
    }

    /// How many principals have a bucket now, for a metrics gauge.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// Drops the buckets that are full again at `now`.
    fn sweep(&self, b: &mut Buckets, now: Instant) {
        let refill = self.refill;
        let burst = f64::from(self.limit.burst);
        let rate = self.limit.per_second;
        b.map.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated);
            elapsed < refill && bucket.tokens + elapsed.as_secs_f64() * rate < burst
        });
        b.last_sweep = Some(now);
    }
}

fn evict_oldest(map: &mut HashMap<Box<str>, Bucket>) {
    let oldest = map
        .iter()
        .min_by_key(|(_, b)| b.updated)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn limiter(per_second: f64, burst: u32, max_tracked: usize) -> Result<RateLimiter> {
        RateLimiter::new(RateLimit {
            per_second,
            burst,
            max_tracked,
        })
    }

    const MS: Duration = Duration::from_millis(1);

    /// The wait, to the microsecond (the arithmetic is in floating point).
    fn wait(r: Result<(), RetryAfter>) -> Duration {
        let d = r.err().map_or(Duration::ZERO, |RetryAfter(d)| d);
        Duration::from_micros((d.as_nanos() as f64 / 1000.0).round() as u64)
    }

    #[test]
    fn burst_then_the_sustained_rate() -> TestResult {
        let rl = limiter(10.0, 3, 100)?;
        let t = Instant::now();
        for _ in 0..3 {
            rl.check_at("a", t)?;
        }
        let refused = rl.check_at("a", t);
        assert_eq!(refused.map_err(|r| r.header_secs()), Err(1));
        assert_eq!(wait(refused), 100 * MS);
        // 100 ms later exactly one more token has arrived.
        rl.check_at("a", t + 100 * MS)?;
        assert!(rl.check_at("a", t + 100 * MS).is_err());
        // A quiet spell refills to the burst, not beyond it.
        let later = t + Duration::from_secs(60);
        for _ in 0..3 {
            rl.check_at("a", later)?;
        }
        assert!(rl.check_at("a", later).is_err());
        Ok(())
    }

    #[test]
    fn principals_have_their_own_buckets() -> TestResult {
        let rl = limiter(1.0, 1, 100)?;
        let t = Instant::now();
        rl.check_at("a", t)?;
        assert!(rl.check_at("a", t).is_err());
        rl.check_at("b", t)?;
        assert_eq!(rl.tracked(), 2);
        Ok(())
    }

    #[test]
    fn retry_after_says_when_the_next_token_comes() -> TestResult {
        let rl = limiter(2.0, 1, 100)?;
        let t = Instant::now();
        rl.check_at("a", t)?;
        assert_eq!(wait(rl.check_at("a", t + 200 * MS)), 300 * MS);
        // A refused request takes nothing.
        assert_eq!(wait(rl.check_at("a", t + 400 * MS)), 100 * MS);
        rl.check_at("a", t + 501 * MS)?;
        Ok(())
    }

    #[test]
    fn idle_buckets_are_dropped() -> TestResult {
        let rl = limiter(10.0, 10, 100)?;
        let t = Instant::now();
        for i in 0..50 {
            rl.check_at(&format!("p{i}"), t)?;
        }
        assert_eq!(rl.tracked(), 50);
        // 100 ms later every bucket is full again (one token used, 10/s):
        // the next sweep drops them all but the caller's.
        rl.check_at("p0", t + Duration::from_secs(1))?;
        assert_eq!(rl.tracked(), 1);
        Ok(())
    }

    #[test]
    fn memory_stays_bounded_under_many_busy_principals() -> TestResult {
        let rl = limiter(1.0, 5, 10)?;
        let t = Instant::now();
        for i in 0..1000u64 {
            // All busy: each within the same millisecond window.
            rl.check_at(&format!("p{i}"), t + Duration::from_micros(i))?;
            assert!(rl.tracked() <= 10);
        }
        // The evicted ones were the oldest; the newest are still tracked
        // and still limited.
        for _ in 0..4 {
            rl.check_at("p999", t + MS)?;
        }
        assert!(rl.check_at("p999", t + MS).is_err());
        Ok(())
    }

    #[test]
    fn time_running_backwards_adds_nothing() -> TestResult {
        let rl = limiter(1.0, 1, 10)?;
        let t = Instant::now() + Duration::from_secs(10);
        rl.check_at("a", t)?;
        assert!(rl.check_at("a", t - Duration::from_secs(5)).is_err());
        assert!(rl.check_at("a", t).is_err());
        Ok(())
    }

    #[test]
    fn bad_settings_are_refused() {
        for (rate, burst, max) in [
            (0.0, 1, 1),
            (f64::NAN, 1, 1),
            (-1.0, 1, 1),
            (1.0, 0, 1),
            (1.0, 1, 0),
        ] {
            assert!(limiter(rate, burst, max).is_err(), "{rate} {burst} {max}");
        }
    }
}
