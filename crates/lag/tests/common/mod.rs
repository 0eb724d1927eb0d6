//! What the lag monitor's tests share: an embedded log in a temp dir and
//! scripted consumers, each a group that commits by a plan, one step at a
//! time, without reading anything.

#![allow(dead_code)]

use std::time::Duration;

use ultracore_lag::{LagConfig, Status};
use ultracore_log::{Consumer, ConsumerOptions, EventLog, NewRecord, Position, Result, TopicSpec};
use ultracore_log_embedded::{EmbeddedConsumer, EmbeddedLog, EmbeddedOptions};

pub type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Monitor rounds 50 ms apart, 10 samples a window.
pub const INTERVAL: Duration = Duration::from_millis(50);
pub const WINDOW: usize = 10;

pub fn open() -> std::result::Result<(tempfile::TempDir, EmbeddedLog), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default())?;
    Ok((dir, log))
}

pub fn config() -> LagConfig {
    LagConfig::default()
        .with_interval(INTERVAL)
        .with_window(WINDOW)
}

/// How a scripted group behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Records arrive; it commits to the end every step.
    Healthy,
    /// Three records arrive per step; it commits one: the lag grows.
    Slow,
    /// Two partitions, records arriving on both: it keeps up on the first
    /// and its offset on the second never moves.
    Stalled,
    /// A backlog; it works through it for `STOP_AFTER` steps, then commits
    /// nothing more.
    Stopped,
    /// A backlog; it commits ten per step, and at step `REWIND_AT` goes
    /// back to offset 20, then creeps on by one.
    Rewound,
}

pub const STOP_AFTER: u64 = 12;
pub const REWIND_AT: u64 = 12;

impl Plan {
    pub const ALL: [Plan; 5] = [
        Plan::Healthy,
        Plan::Slow,
        Plan::Stalled,
        Plan::Stopped,
        Plan::Rewound,
    ];

    /// The status the plan must lead to.
    pub fn expected(self) -> Status {
        match self {
            Plan::Healthy => Status::Ok,
            Plan::Slow => Status::Warn,
            Plan::Stalled => Status::Stall,
            Plan::Stopped => Status::Stop,
            Plan::Rewound => Status::Rewind,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Plan::Healthy => "healthy",
            Plan::Slow => "slow",
            Plan::Stalled => "stalled",
            Plan::Stopped => "stopped",
            Plan::Rewound => "rewound",
        }
    }

    /// The step from which the plan's status is due (its window then
    /// needs at most two more windows of rounds to show it).
    pub fn due_from(self) -> u64 {
        match self {
            Plan::Stopped => STOP_AFTER,
            Plan::Rewound => REWIND_AT,
            _ => 0,
        }
    }
}

/// A group following a [`Plan`] on a topic of its own.
pub struct Scripted {
    pub plan: Plan,
    pub group: String,
    pub topic: String,
    member: EmbeddedConsumer,
    log: EmbeddedLog,
    committed: [u64; 2],
}

impl Scripted {
    pub async fn new(log: &EmbeddedLog, plan: Plan, suffix: &str) -> Result<Scripted> {
        let group = format!("{}-{suffix}", plan.name());
        let topic = format!("lag-{}-{suffix}", plan.name());
        let partitions = if plan == Plan::Stalled { 2 } else { 1 };
        log.create_topic(&TopicSpec::new(topic.clone(), partitions))
            .await?;
        let member = log
            .consumer(ConsumerOptions::new(group.clone(), [topic.clone()]))
            .await?;
        let mut s = Scripted {
            plan,
            group,
            topic,
            member,
            log: log.clone(),
            committed: [0, 0],
        };
        match plan {
            Plan::Stopped | Plan::Rewound => s.append(0, 1_000).await?,
            Plan::Stalled => s.append(1, 5).await?,
            _ => {}
        }
        s.commit(0, 0).await?;
        if plan == Plan::Stalled {
            s.commit(1, 1).await?;
        }
        Ok(s)
    }

    async fn append(&self, partition: u32, n: usize) -> Result<()> {
        let records = (0..n)
            .map(|i| {
                let mut r = NewRecord::new("k", format!("r{i}"));
                r.partition = Some(partition);
                r
            })
            .collect();
        self.log.append(&self.topic, records).await.map(|_| ())
    }

    async fn commit(&mut self, partition: u32, offset: u64) -> Result<()> {
        self.member
            .commit(&[Position {
                topic: self.topic.clone(),
                partition,
                offset,
            }])
            .await?;
        self.committed[partition as usize] = offset;
        Ok(())
    }

    async fn end(&self, partition: u32) -> Result<u64> {
        let info = self.log.describe_topic(&self.topic).await?;
        Ok(info.partitions[partition as usize].high_watermark)
    }

    /// Step `step` of the plan.
    pub async fn step(&mut self, step: u64) -> Result<()> {
        match self.plan {
            Plan::Healthy => {
                self.append(0, 2).await?;
                let end = self.end(0).await?;
                self.commit(0, end).await
            }
            Plan::Slow => {
                self.append(0, 3).await?;
                self.commit(0, self.committed[0] + 1).await
            }
            Plan::Stalled => {
                self.append(0, 1).await?;
                self.append(1, 1).await?;
                let end = self.end(0).await?;
                self.commit(0, end).await
            }
            Plan::Stopped if step < STOP_AFTER => self.commit(0, self.committed[0] + 2).await,
            Plan::Stopped => Ok(()),
            Plan::Rewound if step < REWIND_AT => self.commit(0, self.committed[0] + 10).await,
            Plan::Rewound if step == REWIND_AT => self.commit(0, 20).await,
            Plan::Rewound => self.commit(0, self.committed[0] + 1).await,
        }
    }
}
