//! Burrow's evaluation rules, ported: a partition's status from its window
//! of commits, a group's from its partitions.
//!
//! A port of LinkedIn Burrow's `core/internal/evaluator/caching.go`
//! (`calculatePartitionStatus`, `evaluatePartitionStatus` and the rule
//! helpers; Apache-2.0, Copyright 2017 LinkedIn Corp.), pure and without
//! I/O. Function names follow Burrow's so the two read side by side; older
//! Burrow releases called the stop rule `isConsumerStopped`.
//!
//! Differences, all at the edges: offsets are `u64`; times are
//! milliseconds throughout (Burrow's `timeNow` is in seconds); a rewind
//! index is an `Option`; a partition without any commit is
//! [`Status::NotFound`] (Burrow returns OK with `complete` 0); a group
//! keeps its worst partition's status rather than folding STOP, STALL and
//! REWIND into ERR (see [`Status`]).

use crate::Status;

/// One commit of a partition's window, as Burrow stores it: the committed
/// offset, when it was committed, and the lag at that moment (Burrow
/// leaves the lag out when it had no broker offset to compute it from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    pub offset: u64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub lag: Option<u64>,
}

impl AsRef<Commit> for Commit {
    fn as_ref(&self) -> &Commit {
        self
    }
}

/// The evaluator's settings (Burrow's `allowed-lag` and `minimum-complete`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Lag at or below this counts as none.
    pub allowed_lag: u64,
    /// A partition whose window is filled less than this (0.0–1.0) is OK
    /// whatever its commits say: too few to judge.
    pub min_complete: f32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            allowed_lag: 0,
            min_complete: 1.0,
        }
    }
}

/// A partition's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub status: Status,
    /// How full the window is, 0.0–1.0.
    pub complete: f32,
}

/// Burrow's `evaluatePartitionStatus`: `window` holds the partition's
/// latest commits (oldest first, at most `capacity`), `broker_offsets`
/// its recent high watermarks, `current_lag` its lag now.
pub fn evaluate_partition<C: AsRef<Commit>>(
    window: &[C],
    capacity: usize,
    broker_offsets: impl IntoIterator<Item = u64>,
    current_lag: u64,
    now_ms: i64,
    rules: Rules,
) -> Evaluation {
    if window.is_empty() {
        return Evaluation {
            status: Status::NotFound,
            complete: 0.0,
        };
    }
    let complete = if window.len() < capacity {
        window.len() as f32 / capacity as f32
    } else {
        1.0
    };
    let status = if complete >= rules.min_complete {
        calculate_partition_status(
            window,
            broker_offsets,
            current_lag,
            now_ms,
            rules.allowed_lag,
        )
    } else {
        Status::Ok
    };
    Evaluation { status, complete }
}

/// Burrow's `calculatePartitionStatus`. `commits` must not be empty.
pub fn calculate_partition_status<C: AsRef<Commit>>(
    commits: &[C],
    broker_offsets: impl IntoIterator<Item = u64>,
    current_lag: u64,
    now_ms: i64,
    allowed_lag: u64,
) -> Status {
    // With no lag now the partition is never in error.
    if current_lag > allowed_lag {
        // Stopped first: a problem even if the window once had zero lag
        // (it may be old), unless the recent broker offsets show the
        // consumer was caught up a moment ago.
        if check_if_offsets_stopped(commits, now_ms)
            && !check_if_recent_lag_zero(commits, broker_offsets)
        {
            return Status::Stop;
        }
        // A rewind counts only until the consumer is back where it was.
        // Above the zero-lag check: a consumer often rewinds from zero lag.
        if let Some(index) = check_if_offsets_rewind(commits) {
            if !check_if_rewind_recovered(commits, index) {
                return Status::Rewind;
            }
        }
        if is_lag_always_not_zero(commits, allowed_lag) {
            if check_if_offsets_stalled(commits) {
                return Status::Stall;
            }
            if check_if_lag_not_decreasing(commits) {
                return Status::Warn;
            }
        }
    }
    Status::Ok
}

/// Rule 1: the window is fine if the lag was ever within the allowance.
pub fn is_lag_always_not_zero<C: AsRef<Commit>>(commits: &[C], allowed_lag: u64) -> bool {
    !commits
        .iter()
        .any(|c| c.as_ref().lag.is_some_and(|l| l <= allowed_lag))
}

/// Rule 2: the index of the first commit lower than the one before it.
pub fn check_if_offsets_rewind<C: AsRef<Commit>>(commits: &[C]) -> Option<usize> {
    (1..commits.len()).find(|&i| commits[i].as_ref().offset < commits[i - 1].as_ref().offset)
}

/// Rule 2, part 2: after the rewind at `index`, a commit got back to where
/// the consumer was before it.
pub fn check_if_rewind_recovered<C: AsRef<Commit>>(commits: &[C], index: usize) -> bool {
    let Some(before) = index.checked_sub(1).and_then(|i| commits.get(i)) else {
        return true;
    };
    let before = before.as_ref().offset;
    commits[index..].iter().any(|c| c.as_ref().offset >= before)
}

/// Rule 3: the time since the last commit is longer than the window's
/// commits span (last minus first): the consumer stopped committing.
pub fn check_if_offsets_stopped<C: AsRef<Commit>>(commits: &[C], now_ms: i64) -> bool {
    let (Some(first), Some(last)) = (commits.first(), commits.last()) else {
        return false;
    };
    let (first, last) = (first.as_ref().timestamp_ms, last.as_ref().timestamp_ms);
    now_ms - last > last - first
}

/// Rule 4: every commit of the window has the same offset (and, rule 1
/// having passed, there is lag): stalled.
pub fn check_if_offsets_stalled<C: AsRef<Commit>>(commits: &[C]) -> bool {
    commits
        .windows(2)
        .all(|w| w[0].as_ref().offset == w[1].as_ref().offset)
}

/// Rule 5: the lag never went down from one known value to the next: slow.
pub fn check_if_lag_not_decreasing<C: AsRef<Commit>>(commits: &[C]) -> bool {
    let mut last: Option<u64> = None;
    for lag in commits.iter().filter_map(|c| c.as_ref().lag) {
        if last.is_some_and(|l| lag < l) {
            return false;
        }
        last = Some(lag);
    }
    true
}

/// Whether a recent high watermark was at or below the last committed
/// offset: the consumer was caught up a moment ago, so do not call it
/// stopped yet.
pub fn check_if_recent_lag_zero<C: AsRef<Commit>>(
    commits: &[C],
    broker_offsets: impl IntoIterator<Item = u64>,
) -> bool {
    let Some(last) = commits.last() else {
        return false;
    };
    let last = last.as_ref().offset;
    broker_offsets.into_iter().any(|hw| hw <= last)
}

/// Burrow's group verdict from its partitions' (status, complete): the
/// worst status, and the share of partitions whose window is full.
/// [`Status::NotFound`] and 0 for a group without partitions.
pub fn group_status(partitions: impl IntoIterator<Item = (Status, f32)>) -> (Status, f32) {
    let (mut worst, mut total, mut full) = (Status::Ok, 0usize, 0usize);
    for (status, complete) in partitions {
        worst = worst.max(status);
        total += 1;
        if complete >= 1.0 {
            full += 1;
        }
    }
    if total == 0 {
        return (Status::NotFound, 0.0);
    }
    (worst, full as f32 / total as f32)
}

#[cfg(test)]
mod tests {
    //! The rule cases are ported from Burrow's own tests
    //! (`core/internal/evaluator/caching_test.go`, `TestCachingEvaluator_CheckRules`,
    //! Apache-2.0, Copyright 2017 LinkedIn Corp.), numbered as there. Burrow's
    //! `timeNow` is in seconds; here it is multiplied by 1,000.

    use super::*;

    struct Case {
        offsets: Vec<Commit>,
        broker_offsets: Vec<u64>,
        current_lag: u64,
        time_now_s: i64,
        allowed_lag: u64,
        is_lag_always_not_zero: bool,
        check_if_offsets_rewind: Option<usize>,
        check_if_offsets_stopped: bool,
        check_if_offsets_stalled: bool,
        check_if_lag_not_decreasing: bool,
        check_if_recent_lag_zero: bool,
        status: Status,
    }

    fn c(offset: u64, timestamp_ms: i64, lag: u64) -> Commit {
        Commit {
            offset,
            timestamp_ms,
            lag: Some(lag),
        }
    }

    fn no_lag(offset: u64, timestamp_ms: i64) -> Commit {
        Commit {
            offset,
            timestamp_ms,
            lag: None,
        }
    }

    /// Burrow's cases 9 and 10: fifteen commits a second apart, lag 0.
    fn fifteen() -> Vec<Commit> {
        (0..15)
            .map(|i| {
                let ts = [
                    1512224618356,
                    1512224619362,
                    1512224620366,
                    1512224621367,
                    1512224622370,
                    1512224623373,
                    1512224624378,
                    1512224625379,
                    1512224626383,
                    1512224627383,
                    1512224628383,
                    1512224629388,
                    1512224630391,
                    1512224631394,
                    1512224632397,
                ][i];
                c(792748079 + i as u64, ts, 0)
            })
            .collect()
    }

    #[allow(clippy::too_many_lines)]
    fn cases() -> Vec<Case> {
        let base = |lags: [u64; 5], offsets: [u64; 5]| -> Vec<Commit> {
            (0..5)
                .map(|i| c(offsets[i], (i as i64 + 1) * 100_000, lags[i]))
                .collect()
        };
        let steady = [1000, 2000, 3000, 4000, 5000];
        vec![
            // 0 - OK because there is zero lag somewhere
            Case {
                offsets: base([0, 50, 100, 150, 200], steady),
                broker_offsets: vec![5200],
                current_lag: 200,
                time_now_s: 600,
                allowed_lag: 0,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 1 - not stopped: time since last commit (400s) equals the span (500-100), not greater
            Case {
                offsets: base([0, 50, 100, 150, 200], steady),
                broker_offsets: vec![5200],
                current_lag: 200,
                time_now_s: 900,
                allowed_lag: 0,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 2 - STOP: the time since the last commit is great enough (500s), even with zero lag at the start (Burrow #290)
            Case {
                offsets: base([0, 50, 100, 150, 200], steady),
                broker_offsets: vec![5200],
                current_lag: 200,
                time_now_s: 1000,
                allowed_lag: 0,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: true,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Stop,
            },
            // 3 - STOP when the lag is always non-zero as well
            Case {
                offsets: base([50, 100, 150, 200, 250], steady),
                broker_offsets: vec![5250],
                current_lag: 250,
                time_now_s: 1000,
                allowed_lag: 0,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: true,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Stop,
            },
            // 4 - OK because of zero lag, though stalled is true (the offset never moves)
            Case {
                offsets: base([0, 50, 100, 150, 200], [1000; 5]),
                broker_offsets: vec![1200],
                current_lag: 200,
                time_now_s: 600,
                allowed_lag: 0,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: true,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 5 - STALL because the lag is always non-zero
            Case {
                offsets: base([100, 150, 200, 250, 300], [1000; 5]),
                broker_offsets: vec![1300],
                current_lag: 300,
                time_now_s: 600,
                allowed_lag: 0,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: true,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Stall,
            },
            // 6 - still STALL when the lag stays the same
            Case {
                offsets: base([100; 5], [1000; 5]),
                broker_offsets: vec![1100],
                current_lag: 100,
                time_now_s: 600,
                allowed_lag: 0,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: true,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Stall,
            },
            // 7 - OK: the offsets go back, but the consumer caught up the rewind within the window
            Case {
                offsets: base([100, 150, 200, 1250, 300], [1000, 2000, 3000, 2000, 4000]),
                broker_offsets: vec![4300],
                current_lag: 300,
                time_now_s: 600,
                allowed_lag: 0,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: Some(3),
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: false,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 8 - OK because the current lag is 0, though the timestamps say stopped
            Case {
                offsets: base([50, 100, 150, 200, 250], steady),
                broker_offsets: vec![5250],
                current_lag: 0,
                time_now_s: 1000,
                allowed_lag: 0,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: true,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 9 - STOP by the timestamps: the lag is non-zero now only because of new data (Burrow #290)
            Case {
                offsets: fifteen(),
                broker_offsets: vec![792749024, 792749000, 792748800, 792748600, 792748500],
                current_lag: 931,
                time_now_s: 1512224650,
                allowed_lag: 0,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: true,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Stop,
            },
            // 10 - OK though stopped by the timestamps: within the recent broker offsets the lag was zero (Burrow #303)
            Case {
                offsets: fifteen(),
                broker_offsets: vec![792748094, 792748093, 792748093, 792748093],
                current_lag: 1,
                time_now_s: 1512224650,
                allowed_lag: 0,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: true,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: true,
                status: Status::Ok,
            },
            // 11 - case 0 with commits without a lag in between, which change nothing
            Case {
                offsets: (0..10)
                    .map(|i| {
                        let offset = 1000 + i as u64 * 500;
                        let ts = 100_000 + i as i64 * 50_000;
                        if i % 2 == 0 {
                            c(offset, ts, i as u64 / 2 * 50)
                        } else {
                            no_lag(offset, ts)
                        }
                    })
                    .collect(),
                broker_offsets: vec![5700],
                current_lag: 200,
                time_now_s: 600,
                allowed_lag: 0,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 12 - OK: lag now and stopped by the timestamps, but within the allowed lag
            Case {
                offsets: vec![
                    c(1000, 100_000, 2),
                    c(2000, 200_000, 1),
                    c(2000, 300_000, 1),
                ],
                broker_offsets: vec![2001],
                current_lag: 1,
                time_now_s: 550,
                allowed_lag: 1,
                is_lag_always_not_zero: false,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: true,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: false,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 13 - case 5 with an allowed lag
            Case {
                offsets: base([100, 150, 200, 250, 300], [1000; 5]),
                broker_offsets: vec![1300],
                current_lag: 300,
                time_now_s: 600,
                allowed_lag: 99,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: None,
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: true,
                check_if_lag_not_decreasing: true,
                check_if_recent_lag_zero: false,
                status: Status::Stall,
            },
            // 14 - case 7 with an allowed lag
            Case {
                offsets: base([100, 150, 200, 1250, 300], [1000, 2000, 3000, 2000, 4000]),
                broker_offsets: vec![4300],
                current_lag: 300,
                time_now_s: 600,
                allowed_lag: 99,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: Some(3),
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: false,
                check_if_recent_lag_zero: false,
                status: Status::Ok,
            },
            // 15 - REWIND: the consumer did not get back to where it was
            Case {
                offsets: base([100, 150, 200, 1250, 300], [1000, 2000, 3000, 2000, 2500]),
                broker_offsets: vec![4300],
                current_lag: 300,
                time_now_s: 600,
                allowed_lag: 0,
                is_lag_always_not_zero: true,
                check_if_offsets_rewind: Some(3),
                check_if_offsets_stopped: false,
                check_if_offsets_stalled: false,
                check_if_lag_not_decreasing: false,
                check_if_recent_lag_zero: false,
                status: Status::Rewind,
            },
        ]
    }

    #[test]
    fn burrows_rule_cases() {
        for (i, t) in cases().iter().enumerate() {
            let now = t.time_now_s * 1000;
            let o = &t.offsets[..];
            assert_eq!(
                is_lag_always_not_zero(o, t.allowed_lag),
                t.is_lag_always_not_zero,
                "case {i}: is_lag_always_not_zero"
            );
            assert_eq!(
                check_if_offsets_rewind(o),
                t.check_if_offsets_rewind,
                "case {i}: check_if_offsets_rewind"
            );
            assert_eq!(
                check_if_offsets_stopped(o, now),
                t.check_if_offsets_stopped,
                "case {i}: check_if_offsets_stopped"
            );
            assert_eq!(
                check_if_offsets_stalled(o),
                t.check_if_offsets_stalled,
                "case {i}: check_if_offsets_stalled"
            );
            assert_eq!(
                check_if_lag_not_decreasing(o),
                t.check_if_lag_not_decreasing,
                "case {i}: check_if_lag_not_decreasing"
            );
            assert_eq!(
                check_if_recent_lag_zero(o, t.broker_offsets.iter().copied()),
                t.check_if_recent_lag_zero,
                "case {i}: check_if_recent_lag_zero"
            );
            assert_eq!(
                calculate_partition_status(
                    o,
                    t.broker_offsets.iter().copied(),
                    t.current_lag,
                    now,
                    t.allowed_lag
                ),
                t.status,
                "case {i}: calculate_partition_status"
            );
        }
    }

    /// Burrow's `TestCachingEvaluator_SingleRequest_Incomplete`: a partition
    /// with 2 of 4 commits stored is complete 0.5; with the threshold at 0
    /// (Burrow's default) it is still judged, and it stopped.
    #[test]
    fn an_incomplete_window_is_judged_only_above_the_threshold() {
        let window = [c(1000, 1_000, 1500), c(1400, 2_000, 2921)];
        let stopped = |min_complete| {
            evaluate_partition(
                &window,
                4,
                [4321],
                2921,
                1_000_000,
                Rules {
                    allowed_lag: 0,
                    min_complete,
                },
            )
        };
        assert_eq!(
            stopped(0.0),
            Evaluation {
                status: Status::Stop,
                complete: 0.5
            }
        );
        assert_eq!(stopped(1.0).status, Status::Ok, "too few commits to judge");
        let empty: [Commit; 0] = [];
        assert_eq!(
            evaluate_partition(&empty, 4, [], 5, 0, Rules::default()).status,
            Status::NotFound
        );
    }

    #[test]
    fn a_group_is_its_worst_partition() {
        assert_eq!(group_status([]), (Status::NotFound, 0.0));
        assert_eq!(
            group_status([(Status::Ok, 1.0), (Status::Warn, 1.0)]),
            (Status::Warn, 1.0)
        );
        assert_eq!(
            group_status([
                (Status::Stall, 1.0),
                (Status::Stop, 0.5),
                (Status::Ok, 1.0),
                (Status::Ok, 0.2)
            ]),
            (Status::Stop, 0.5)
        );
        assert_eq!(
            group_status([(Status::Rewind, 1.0), (Status::Stop, 1.0)]).0,
            Status::Rewind
        );
    }
}
