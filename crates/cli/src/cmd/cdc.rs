//! `ultracore cdc relay | status | verify`: change data capture of the
//! users and conversations tables onto `db.changes.*`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use ultracore_cdc::sqlite::FILE_NAME;
use ultracore_cdc::{RelayOptions, SqliteDb, SqliteRelay};
use ultracore_log::{now_millis, Error as LogError, EventLog};
use ultracore_log_any::{Access, AnyLog};
use ultracore_runtime::CancellationToken;

use crate::output::table;
use crate::LogArgs;

#[derive(Debug, Subcommand)]
pub enum CdcCommand {
    /// Relay captured changes onto db.changes.* until Ctrl-C / SIGTERM
    /// (what `serve` runs as its cdc-relay service; run it alone when no
    /// server runs on the data directory).
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
    let path = config.data_dir().join(FILE_NAME);
    let options = RelayOptions {
        poll: Duration::from_millis(a.poll_ms.max(1)),
        recovery_idle: Duration::from_millis(a.recovery_idle_ms),
        ..Default::default()
    };
    let relay = SqliteRelay::open(log, &path, options)
        .with_context(|| format!("opening {}", path.display()))?;
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        crate::cmd::serve::stop_signal().await;
        stop.cancel();
    });
    eprintln!(
        "relaying changes of {} onto db.changes.* (Ctrl-C stops)",
        path.display()
    );
    relay.run(token).await?;
    let p = relay.progress();
    eprintln!(
        "stopped at position {} after {} events",
        p.position, p.events
    );
    Ok(())
}

async fn status(args: &LogArgs, json_out: bool) -> Result<()> {
    let config = args.config();
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
    let log = AnyLog::open(&config, Access::ReadOnly).await?;
    let mut topics = Vec::new();
    for t in ultracore_cdc::tables::TABLES {
        let records = match log.describe_topic(t.topic).await {
            Ok(info) => Some(info.records()),
            Err(LogError::UnknownTopic(_)) => None,
            Err(e) => return Err(e.into()),
        };
        topics.push((t.topic, records));
    }
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
                "topics": topics.iter().map(|(t, n)| json!({"topic": t, "records": n})).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    let when = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
            .unwrap_or_default()
    };
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
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|(t, n)| {
            vec![
                t.to_string(),
                n.map(|n| n.to_string())
                    .unwrap_or_else(|| "not created".into()),
            ]
        })
        .collect();
    println!("{}", table(&["topic", "records"], &rows));
    Ok(())
}

async fn verify(args: &LogArgs, json_out: bool) -> Result<()> {
    let config = args.config();
    let path = config.data_dir().join(FILE_NAME);
    let db = SqliteDb::open(&path)?;
    let log = AnyLog::open(&config, Access::ReadOnly).await?;
    let v = ultracore_cdc::verify(&log, Duration::from_secs(120), |t| db.rows(t)).await?;
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
