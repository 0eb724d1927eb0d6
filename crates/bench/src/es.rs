//! `ultracore bench es`: event-sourcing figures on the embedded log.
//!
//! 1. Load time of one aggregate with `--events` events, without snapshots
//!    and with a snapshot (median of `--runs` loads after a warm-up).
//! 2. Projection catch-up: `--projection-events` events over `--aggregates`
//!    accounts, applied into the SQLite read model from offset 0 (events/s).
//! 3. Command round trip: load, decide, save durably (log fsync and index
//!    catch-up), one command at a time on random accounts (p50/p99).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use ultracore_es::account::{Account, AccountBalances, AccountCommand, AccountEvent};
use ultracore_es::{
    topic_for, Aggregate, Cut, Database, EventStore, Expected, ProjectionRunner, Snapshot,
    StoreOptions,
};
use ultracore_log::{EnvelopeBuilder, EventLog, EventLogExt, Retention, TopicSpec};
use ultracore_log_any::{Access, AnyLog, LogConfig};

use crate::Rng;

#[derive(Debug, Args)]
pub struct EsBench {
    /// Events of the aggregate timed in the load phases.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Snapshot interval of the snapshot load phase; the load is timed in
    /// its worst case, with the latest snapshot interval - 1 events behind.
    #[arg(long, default_value_t = 100)]
    snapshot_every: u64,
    /// Events the projection catches up on.
    #[arg(long, default_value_t = 200_000)]
    projection_events: u64,
    /// Accounts those events are spread over.
    #[arg(long, default_value_t = 1_000)]
    aggregates: u64,
    /// Commands timed in the round-trip phase.
    #[arg(long, default_value_t = 2_000)]
    commands: usize,
    /// Timed loads per load phase (the median is reported).
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Where to write (default: a fresh directory under the data dir, deleted afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(config: &LogConfig, b: EsBench, seed: u64) -> Result<()> {
    if b.events == 0 || b.runs == 0 || b.aggregates == 0 || b.commands == 0 {
        bail!("--events, --runs, --aggregates and --commands must be positive");
    }
    let dir = b.dir.clone().unwrap_or_else(|| {
        config
            .data_dir()
            .join(format!("bench-es-{}", std::process::id()))
    });
    let cleanup = b.dir.is_none().then(|| dir.clone());
    let result = bench(config, &dir, &b, seed).await;
    if let Some(d) = cleanup {
        let _ = std::fs::remove_dir_all(d);
    }
    let figures = result?;
    if b.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        let f = |k: &str| figures[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "load of {} events, no snapshot: {:.3} ms (median of {})",
            b.events,
            f("load_10k_no_snapshot_ms"),
            b.runs
        );
        println!(
            "load of {} events, snapshot:    {:.3} ms (snapshot every {}: the worst case, snapshot at version {} and {} events after it; {:.3} ms with the snapshot at the head)",
            b.events,
            f("load_10k_snapshot_ms"),
            figures["snapshot_every"],
            figures["snapshot_version"],
            figures["events_after_snapshot"],
            f("load_10k_snapshot_at_head_ms"),
        );
        println!(
            "projection catch-up into SQLite: {:.0} events/s ({} events)",
            f("projection_events_per_sec"),
            figures["projection_events"]
        );
        println!(
            "command round trip (load, decide, save durably): p50 {:.3} ms, p99 {:.3} ms ({} commands)",
            f("command_p50_ms"),
            f("command_p99_ms"),
            b.commands
        );
    }
    Ok(())
}

async fn bench(
    config: &LogConfig,
    dir: &std::path::Path,
    b: &EsBench,
    seed: u64,
) -> Result<serde_json::Value> {
    std::fs::create_dir_all(dir)?;
    let config = LogConfig {
        url: Some(format!("file://{}", std::path::absolute(dir)?.display())),
        ..config.clone()
    };
    let log = AnyLog::open(&config, Access::Write).await?;
    let db = Database::open(dir, None)?;
    let say = |s: &str| {
        if !b.json {
            eprintln!("{s}");
        }
    };

    // 1. Loads.
    say(&format!("writing {} events of one account", b.events));
    let plain = EventStore::new(
        log.clone(),
        db.clone(),
        StoreOptions::default().snapshot_every(Account::TYPE, 0),
    )?;
    let builder = EnvelopeBuilder::new(Account::TYPE, "bench-load");
    let mut version = 0;
    while version < b.events {
        let n = (b.events - version).min(1_000);
        let batch = (0..n)
            .map(|i| {
                builder.build(if version + i == 0 {
                    AccountEvent::Opened {
                        owner: "bench".into(),
                    }
                } else {
                    AccountEvent::Deposited { amount_cents: 1 }
                })
            })
            .collect();
        version = plain
            .append::<Account>("bench-load", Expected::Exact(version), batch)
            .await?
            .version;
    }
    let mut samples = Vec::with_capacity(b.runs);
    plain.load::<Account>("bench-load").await?;
    for _ in 0..b.runs {
        let t = Instant::now();
        let loaded = plain.load::<Account>("bench-load").await?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        if loaded.version != b.events {
            bail!("loaded version {} instead of {}", loaded.version, b.events);
        }
    }
    let no_snapshot = median_ms(samples);
    // The worst case of a snapshot interval N: the latest snapshot N - 1
    // events behind the head (stored directly, as the write path would have).
    let every = b.snapshot_every.clamp(1, b.events);
    let behind = plain
        .load_at::<Account>("bench-load", Cut::Version(b.events - (every - 1)))
        .await?;
    db.with(|s| {
        s.put_snapshot(
            Account::TYPE,
            "bench-load",
            &Snapshot {
                version: behind.version,
                state_schema: Account::STATE_SCHEMA,
                state: serde_json::to_vec(&behind.state).map_err(|e| {
                    ultracore_es::Error::InvalidArgument(format!("state does not serialize: {e}"))
                })?,
            },
        )
    })?;
    drop(plain);
    let snapshotting = EventStore::new(
        log.clone(),
        db.clone(),
        StoreOptions::default().snapshot_every(Account::TYPE, every),
    )?;
    let time_loads = |store: EventStore<AnyLog>| async move {
        let mut samples = Vec::with_capacity(b.runs);
        let mut last = None;
        for _ in 0..b.runs {
            let t = Instant::now();
            let loaded = store.load::<Account>("bench-load").await?;
            samples.push(t.elapsed().as_secs_f64() * 1e3);
            last = Some(loaded);
        }
        anyhow::Ok((median_ms(samples), last.expect("at least one run")))
    };
    let (with_snapshot, last) = time_loads(snapshotting.clone()).await?;
    if last.from_snapshot != Some(behind.version) || last.version != b.events {
        bail!("the snapshot load did not start from the snapshot: {last:?}");
    }
    // The best case: a snapshot at the head.
    let head_state = snapshotting.load::<Account>("bench-load").await?;
    db.with(|s| {
        s.put_snapshot(
            Account::TYPE,
            "bench-load",
            &Snapshot {
                version: head_state.version,
                state_schema: Account::STATE_SCHEMA,
                state: serde_json::to_vec(&head_state.state).map_err(|e| {
                    ultracore_es::Error::InvalidArgument(format!("state does not serialize: {e}"))
                })?,
            },
        )
    })?;
    let (at_head, _) = time_loads(snapshotting.clone()).await?;

    // 2. Projection catch-up.
    say(&format!(
        "writing {} events over {} accounts",
        b.projection_events, b.aggregates
    ));
    let written = write_account_events(&log, b.projection_events, b.aggregates).await?;
    say("catching the projection up");
    let catch_up = projection_catch_up(&log, db.clone()).await?;

    // 3. Command round trips.
    say(&format!("timing {} commands", b.commands));
    let store = snapshotting;
    store.load::<Account>("acc-0").await?; // indexes what phase 2 wrote
    let mut hist = Histogram::<u64>::new(3)?;
    let mut rng = Rng::new(seed);
    for _ in 0..b.commands {
        let id = format!("acc-{}", rng.next_u64() % b.aggregates.min(written.max(1)));
        let t = Instant::now();
        store
            .execute::<Account>(&id, AccountCommand::Deposit { cents: 1 })
            .await?;
        hist.record(t.elapsed().as_micros() as u64)?;
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1e3;
    Ok(json!({
        "backend": log.kind(),
        "events": b.events,
        "load_10k_no_snapshot_ms": no_snapshot,
        "load_10k_snapshot_ms": with_snapshot,
        "load_10k_snapshot_at_head_ms": at_head,
        "snapshot_every": every,
        "snapshot_version": last.from_snapshot,
        "events_after_snapshot": last.events_replayed,
        "projection_events": catch_up.events,
        "projection_seconds": catch_up.seconds,
        "projection_events_per_sec": catch_up.events_per_sec(),
        "command_p50_ms": ms(0.5),
        "command_p99_ms": ms(0.99),
        "command_max_ms": hist.max() as f64 / 1e3,
        "commands": b.commands,
    }))
}

/// Appends `events` account events spread over `aggregates` accounts
/// (`acc-0`, `acc-1`, …: an opening, then deposits of 100 cents) to the
/// accounts' topic (created as the event store creates it when missing),
/// in batches; returns how many it wrote.
pub(crate) async fn write_account_events<L: EventLog>(
    log: &L,
    events: u64,
    aggregates: u64,
) -> Result<u64> {
    let topic = topic_for(Account::TYPE);
    let spec = TopicSpec::new(topic.clone(), StoreOptions::default().partitions)
        .with_retention(Retention::Forever);
    log.ensure_topic(&spec).await?;
    let per = events.div_ceil(aggregates.max(1));
    let mut written = 0u64;
    let mut pending = Vec::with_capacity(5_000);
    for a in 0..aggregates {
        let builder = EnvelopeBuilder::new(Account::TYPE, format!("acc-{a}"));
        for v in 1..=per {
            if written == events {
                break;
            }
            let event = if v == 1 {
                AccountEvent::Opened {
                    owner: format!("owner-{a}"),
                }
            } else {
                AccountEvent::Deposited { amount_cents: 100 }
            };
            pending.push(builder.clone().version(v).build(event).to_record());
            written += 1;
            if pending.len() == 5_000 {
                log.append(&topic, std::mem::take(&mut pending)).await?;
            }
        }
    }
    if !pending.is_empty() {
        log.append(&topic, pending).await?;
    }
    Ok(written)
}

/// A projection caught up from offset 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CatchUpRate {
    /// Events applied.
    pub events: u64,
    pub seconds: f64,
}

impl CatchUpRate {
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// Catches [`AccountBalances`] up from offset 0 on whatever the accounts'
/// topic holds into `db` (SQLite or PostgreSQL), in batches of 10,000,
/// and times it.
pub(crate) async fn projection_catch_up<L: EventLog>(log: &L, db: Database) -> Result<CatchUpRate> {
    let mut runner =
        ProjectionRunner::new(log.clone(), db, AccountBalances::default())?.with_max_batch(10_000);
    let t = Instant::now();
    let stats = runner.catch_up().await?;
    Ok(CatchUpRate {
        events: stats.applied,
        seconds: t.elapsed().as_secs_f64(),
    })
}
