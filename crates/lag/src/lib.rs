//! The consumer-lag monitor: LinkedIn Burrow's evaluation rules over any
//! [`ultracore_log::EventLog`], both backends alike.
//!
//! Every interval (5 s by default) the `lag-monitor` service lists the
//! consumer groups, reads each one's committed offsets and high watermarks
//! ([`ultracore_log::EventLog::group_lag`]), adds one sample per partition
//! to a window of the last N (10 by default), and judges each partition
//! by Burrow's rules (the [`evaluator`]): OK, WARN (committing but the lag
//! does not go down), STALL (the offset does not move, the group is alive),
//! STOP (the group committed nothing for longer than the window), REWIND
//! (the offset went back). A group is its worst partition. Every change of
//! a group's status is an `ops_alert` event on `ops.alerts` ([`alert`]);
//! the current state is in the metrics ([`metrics`]) and in
//! [`LagMonitor::snapshot`] (with [`LagMonitor::statuses`], its cheap
//! summary) for the console.
//!
//! # Samples, and the commit time the rules see
//!
//! Burrow is fed by Kafka's `__consumer_offsets`: one entry per commit,
//! with its time, and consumers that commit on a timer recommit the same
//! offset while stuck. Our log exposes only the committed positions, so
//! the monitor samples them: **one sample per partition per round**,
//! whether the offset moved or not. That keeps the lag trend (rules 1, 4
//! and 5) visible while the offset stands still, and makes a full window
//! a fixed span of time (N × interval), after which a partition is judged.
//!
//! What sampling cannot see is whether a consumer committing nothing is
//! alive. The monitor takes the group's progress as the sign of life: each
//! sample's commit time is the last time *any* of the group's committed
//! offsets was seen to move (the time it was first seen, for a group the
//! monitor just met). Burrow's rule 3 ("now minus the last commit exceeds
//! the window's span of commits") then says STOP when the whole group made
//! no progress for longer than its window saw it progressing, and rule 4
//! says STALL when one partition's offset stood still over the whole window
//! while the group kept committing elsewhere: a poison record, a blocked
//! partition. A group with a single partition, or whose other partitions
//! are idle, can only STOP. Rule 3 keeps Burrow's guard: a consumer that
//! was caught up at some sample of the window (a high watermark at or below
//! its offset) is not stopped, however long since it last moved.
//!
//! Time lag is exact: now minus the timestamp of the record at the
//! committed position ([`ultracore_log::EventLog::timestamp_at`]), 0 when
//! caught up; timestamps are cached per (topic, partition, offset), as
//! records never change.
//!
//! # Layout
//!
//! - `status`: [`Status`], ordered by severity, with its gauge code.
//! - [`evaluator`]: Burrow's rules, pure (ported with Burrow's test cases).
//! - `window`: [`Window`], the ring of a partition's last samples.
//! - `config`: [`LagConfig`] (interval, window, private group prefixes).
//! - `monitor`: [`LagMonitor`]: a round's observation and evaluation, and
//!   the snapshot.
//! - [`alert`]: [`LagAlert`], the `ops_alert` event.
//! - [`metrics`]: the `ultracore_lag_*` families.
//! - `service`: [`service`] (the `lag-monitor` registration) and [`run`].
//! - `error`: [`Error`].

pub mod alert;
mod config;
mod error;
pub mod evaluator;
pub mod metrics;
mod monitor;
mod service;
mod status;
mod window;

pub use alert::{LagAlert, PartitionAlert};
pub use config::{LagConfig, PRIVATE_GROUP_PREFIXES};
pub use error::{Error, Result};
pub use monitor::{
    GroupObservation, GroupStatus, LagMonitor, PartitionObservation, PartitionStatus, StatusChange,
    TrendPoint,
};
pub use service::{run, service, SERVICE};
pub use status::Status;
pub use window::{Sample, Window};
