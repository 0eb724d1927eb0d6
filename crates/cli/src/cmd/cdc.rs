//! `ultracore cdc relay | status | verify`: change data capture of the
//! users and conversations tables onto `db.changes.*`.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use ultracore_cdc::sqlite::FILE_NAME;
use ultracore_cdc::{RelayOptions, SqliteDb};
use ultracore_log::{now_millis, Error as LogError, EventLog};
use ultracore_log_any::{Access, AnyLog};
use ultracore_runtime::CancellationToken;

use crate::output::table;
use crate::LogArgs;

#[derive(Debug, Subcommand)]
pub enum CdcCommand {
    /// Relay captured changes onto db.changes.* until Ctrl-C / SIGTERM
    /// (what `serve` runs as its cdc-relay service; run it alone when no
    /// server runs on the data directory). With DATABASE_URL=postgres://…
    /// the tables are in PostgreSQL, captured by logical replication.
    ///
    /// Example: ultracore --data-dir /var/lib/ultracore cdc relay
    Relay(RelayArgs),
    /// Where capture stands: the relay's position, changes waiting and how
    /// old the oldest is, records on each change topic.
    ///
    /// Example: ultracore cdc status --json
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Replay db.changes.* from the beginning (apply `after`, delete on
    /// `d`) and compare with the tables row for row; also checks per-key
    /// order and duplicates. Exits non-zero on any difference.
    ///
    /// Example: ultracore cdc verify --json
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// How long recovery at start waits for more records once the log
    /// seems read (milliseconds).
    #[arg(long, default_value_t = 500, env = "ULTRACORE_CDC_RECOVERY_IDLE_MS")]
    recovery_idle_ms: u64,
    /// How often an idle relay looks for changes (milliseconds).
    #[arg(long, default_value_t = 5, env = "ULTRACORE_CDC_POLL_MS")]
    poll_ms: u64,
}

pub async fn run(args: &LogArgs, command: CdcCommand) -> Result<()> {
    match command {
        CdcCommand::Relay(a) => relay(args, a).await,
        CdcCommand::Status { json } => status(args, json).await,
        CdcCommand::Verify { json } => verify(args, json).await,
    }
}

async fn relay(args: &LogArgs, a: RelayArgs) -> Result<()> {
    let config = args.config();
    let log = match AnyLog::open(&config, Access::Write).await {
        Err(LogError::Locked { .. }) => bail!(
            "the data directory {} is in use by a running server, which relays changes itself (its cdc-relay service)",
            config.data_dir().display()
        ),
        other => other?,
    };
    let options = RelayOptions {
        poll: Duration::from_millis(a.poll_ms.max(1)),
        recovery_idle: Duration::from_millis(a.recovery_idle_ms),
        ..Default::default()
    };
    let (db, relay) = crate::cmd::serve::open_operational(&config, log, options).await?;
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        crate::cmd::serve::stop_signal().await;
        stop.cancel();
    });
    eprintln!(
        "relaying changes of {} onto db.changes.* (Ctrl-C stops)",
        db.location()
    );
    relay.run(token).await?;
    let p = relay.progress();
    eprintln!("stopped after {} events", p.events);
    Ok(())
}

fn database_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| ultracore_cdc::is_postgres(Some(u)))
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_default()
}

/// Records on each change topic (`None`: not created yet).
async fn topic_records(log: &AnyLog) -> Result<Vec<(&'static str, Option<u64>)>> {
    let mut topics = Vec::new();
    for t in ultracore_cdc::tables::TABLES {
        let records = match log.describe_topic(t.topic).await {
            Ok(info) => Some(info.records()),
            Err(LogError::UnknownTopic(_)) => None,
            Err(e) => return Err(e.into()),
        };
        topics.push((t.topic, records));
    }
    Ok(topics)
}

async fn status(args: &LogArgs, json_out: bool) -> Result<()> {
    let config = args.config();
    let log = AnyLog::open(&config, Access::ReadOnly).await?;
    let topics = topic_records(&log).await?;
    let topics_json: Vec<_> = topics
        .iter()
        .map(|(t, n)| json!({"topic": t, "records": n}))
        .collect();
    let topic_rows: Vec<Vec<String>> = topics
        .iter()
        .map(|(t, n)| {
            vec![
                t.to_string(),
                n.map(|n| n.to_string())
                    .unwrap_or_else(|| "not created".into()),
            ]
        })
        .collect();
    if let Some(url) = database_url() {
        let relay = ultracore_cdc::postgres::PgRelay::new(log, &url, Default::default());
        let s = relay.status().await?;
        if json_out {
            let mut v = serde_json::to_value(&s)?;
            v["connector"] = json!("postgresql");
            v["topics"] = json!(topics_json);
            println!("{v}");
            return Ok(());
        }
        let rows = vec![
            vec![
                "database".into(),
                format!(
                    "{} (postgresql, logical replication)",
                    ultracore_cdc::postgres::client_url(&url)
                        .split('@')
                        .next_back()
                        .unwrap_or_default()
                ),
            ],
            vec![
                "replication slot".into(),
                match (&s.confirmed_flush_lsn, s.slot_exists) {
                    (Some(lsn), _) => format!(
                        "{} at {lsn} ({})",
                        s.slot,
                        if s.active {
                            "a relay is connected"
                        } else {
                            "no relay connected"
                        }
                    ),
                    (None, true) => format!("{} (not yet confirmed)", s.slot),
                    (None, false) => format!("{} not created yet", s.slot),
                },
            ],
            vec![
                "WAL held back".into(),
                s.lag_bytes
                    .map(|b| format!("{b} bytes (server at {})", s.wal_lsn))
                    .unwrap_or_else(|| "-".into()),
            ],
            vec![
                "snapshot".into(),
                if s.snapshot_done {
                    "taken"
                } else {
                    "not yet taken"
                }
                .into(),
            ],
            vec![
                "durable up to".into(),
                s.position.clone().unwrap_or_else(|| "-".into()),
            ],
            vec![
                "last relayed".into(),
                s.committed_at_ms
                    .map(when)
                    .unwrap_or_else(|| "never".into()),
            ],
        ];
        println!("{}", table(&["", ""], &rows));
        println!("{}", table(&["topic", "records"], &topic_rows));
        return Ok(());
    }
    let path = config.data_dir().join(FILE_NAME);
    if !path.exists() {
        bail!(
            "{} does not exist: the tables are created by `ultracore serve` (or the first `ultracore cdc relay`) on this data directory",
            path.display()
        );
    }
    let db = SqliteDb::open(&path)?;
    let state = db.relay_state()?;
    let high = db.outbox_high()?;
    let (waiting, oldest) = db.outbox_backlog(state.position)?;
    let lag_ms = oldest.map(|t| (now_millis() - t).max(0));
    if json_out {
        println!(
            "{}",
            json!({
                "connector": "sqlite",
                "database": path.display().to_string(),
                "snapshot_done": state.snapshot_done,
                "position": state.position,
                "captured": high,
                "waiting": waiting,
                "lag_ms": lag_ms,
                "last_commit_ms": (state.committed_at_ms > 0).then_some(state.committed_at_ms),
                "topics": topics_json,
            })
        );
        return Ok(());
    }
    let rows = vec![
        vec![
            "database".into(),
            format!("{} (sqlite, outbox)", path.display()),
        ],
        vec![
            "snapshot".into(),
            if state.snapshot_done {
                "taken"
            } else {
                "not yet taken"
            }
            .into(),
        ],
        vec![
            "relayed up to".into(),
            format!("change {} of {}", state.position, high),
        ],
        vec![
            "waiting".into(),
            match lag_ms {
                Some(ms) => format!(
                    "{waiting} changes, the oldest {:.1} s old",
                    ms as f64 / 1000.0
                ),
                None => "nothing".into(),
            },
        ],
        vec![
            "last relayed".into(),
            if state.committed_at_ms > 0 {
                when(state.committed_at_ms)
            } else {
                "never".into()
            },
        ],
    ];
    println!("{}", table(&["", ""], &rows));
    println!("{}", table(&["topic", "records"], &topic_rows));
    Ok(())
}

async fn verify(args: &LogArgs, json_out: bool) -> Result<()> {
    let config = args.config();
    let db = match database_url() {
        Some(url) => {
            ultracore_cdc::Operational::Postgres(ultracore_cdc::PgDb::connect(&url).await?)
        }
        None => ultracore_cdc::Operational::Sqlite(std::sync::Arc::new(SqliteDb::open(
            config.data_dir().join(FILE_NAME),
        )?)),
    };
    let log = AnyLog::open(&config, Access::ReadOnly).await?;
    // The tables first, then the log: changes made in between show as the
    // log lagging, so run it on a quiet database.
    let mut tables = std::collections::HashMap::new();
    for t in ultracore_cdc::tables::TABLES {
        tables.insert(t.name, db.rows(t).await?);
    }
    let v = ultracore_cdc::verify(&log, Duration::from_secs(120), |t| {
        Ok(tables.remove(t.name).unwrap_or_default())
    })
    .await?;
    if json_out {
        println!(
            "{}",
            serde_json::to_string(
                &json!({"ok": v.ok(), "complete": v.complete, "tables": v.tables})
            )?
        );
    } else {
        let rows: Vec<Vec<String>> = v
            .tables
            .iter()
            .map(|t| {
                vec![
                    t.table.clone(),
                    t.records.to_string(),
                    t.ops
                        .iter()
                        .map(|(op, n)| format!("{op}:{n}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    t.tombstones.to_string(),
                    format!("{} / {}", t.replayed_rows, t.table_rows),
                    (t.missing.len() + t.extra.len() + t.differing.len()).to_string(),
                    t.duplicates.to_string(),
                    t.out_of_order.to_string(),
                    if t.ok() {
                        "equal".into()
                    } else {
                        "DIFFERENT".into()
                    },
                ]
            })
            .collect();
        println!(
            "{}",
            table(
                &[
                    "table",
                    "records",
                    "events",
                    "tombstones",
                    "replayed / table rows",
                    "differences",
                    "duplicates",
                    "out of order",
                    "result"
                ],
                &rows
            )
        );
        if !v.complete {
            eprintln!("the log could not be read to its end in time: the comparison is partial");
        }
    }
    if !v.ok() {
        bail!("the change topics do not replay to the tables (see above)");
    }
    Ok(())
}
