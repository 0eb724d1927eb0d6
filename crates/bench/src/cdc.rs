//! `ultracore bench cdc`: change data capture on SQLite and on PostgreSQL,
//! side by side in one run.
//!
//! 1. Commit → durable: users inserted one per autocommit write (as the API
//!    writes them) on a fixed schedule of `--rate` a second for
//!    `--seconds`, shared by eight connections (as an application's
//!    requests are; concurrent commits share PostgreSQL's WAL flushes), with the database's relay running onto a fresh embedded
//!    log. A consumer of `db.changes.users` in a group of its own stamps
//!    each `c` event it reads; the latency of a change runs from the
//!    instant its write returned to that stamp (p50/p95/p99/max). The
//!    embedded log hands consumers only durable records, so this is an
//!    upper bound of commit → durable.
//! 2. Sustained: eight writers insert as fast as they can for `--seconds`/2;
//!    changes/s written, changes/s relayed (everything written, durable on
//!    the log, over the time from the first write until then), and how far
//!    the relay was behind when writing stopped.
//! 3. Projections: the `AccountBalances` catch-up of `bench es` over
//!    `--projection-events` events, into SQLite and into PostgreSQL.
//!
//! PostgreSQL (`--database-url` or `DATABASE_URL`; the role needs
//! CREATEDB and REPLICATION, the server `wal_level = logical`): 1 and 2 run
//! in a database `bench_cdc_<random>` the bench creates, and drops at the
//! end with its replication slot; 3 runs in a schema `bench_<random>` of
//! the given database, dropped at the end. Without a URL the PostgreSQL
//! figures are skipped and the SQLite ones still run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use ultracore_cdc::model::{NewUser, RISK_PROFILES};
use ultracore_cdc::postgres::{client_url, PgDb, PgRelay, PgRelayOptions};
use ultracore_cdc::{ChangeEvent, Op, Operational, RelayOptions, SqliteDb, SqliteRelay};
use ultracore_es::Database;
use ultracore_log::{Consumer, ConsumerOptions, EventLog};
use ultracore_log_any::embedded_options_from_env;
use ultracore_log_embedded::EmbeddedLog;
use ultracore_runtime::CancellationToken;
use ultracore_term::table;
use uuid::Uuid;

use crate::es::{projection_catch_up, write_account_events, CatchUpRate};
use crate::Rng;

#[derive(Debug, Args)]
pub struct CdcBench {
    /// Seconds of the paced phase on each database (the sustained phase
    /// writes for half as long).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Changes a second offered in the paced phase.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Events the projections catch up on.
    #[arg(long, default_value_t = 200_000)]
    projection_events: u64,
    /// Accounts those events are spread over.
    #[arg(long, default_value_t = 1_000)]
    aggregates: u64,
    /// PostgreSQL to measure next to SQLite:
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`. Unset: SQLite only.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    #[arg(long)]
    json: bool,
}

/// Concurrent writers of the sustained phase.
const WRITERS: usize = 8;
/// Connections sharing the paced writes.
const PACED_WRITERS: usize = 8;
/// Which paced writes a writer made, and when each commit returned.
type Commits = Vec<(usize, Instant)>;
/// Changes written and awaited before anything is timed: the relay has
/// started (on PostgreSQL: its slot exists and it streams).
const WARM_UP: usize = 20;
/// How long the relay may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the relay may take to catch up after a phase's last write.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a stopped relay or consumer may take to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How the consumer of `db.changes.users` polls: a short timeout, so it
/// notices the end of the run quickly (a poll returns as soon as records
/// are there, whatever the timeout).
const POLL: Duration = Duration::from_millis(10);

const SKIPPED: &str = "PostgreSQL: skipped (no URL). Give one with --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE or DATABASE_URL (the role needs CREATEDB and REPLICATION, the server wal_level = logical)";
const UPPER_BOUND: &str = "commit → durable is measured to the instant a consumer of db.changes.users read the change; the embedded log hands consumers only durable records, so it is an upper bound of commit → durable";

pub async fn run(b: CdcBench, seed: u64) -> Result<()> {
    if b.seconds == 0 || b.rate == 0 || b.projection_events == 0 || b.aggregates == 0 {
        bail!("--seconds, --rate, --projection-events and --aggregates must be positive");
    }
    let say = |s: &str| {
        if !b.json {
            eprintln!("{s}");
        }
    };
    let scratch = tempfile::Builder::new()
        .prefix("ultracore-bench-cdc-")
        .tempdir()?;
    let admin = match &b.database_url {
        Some(url) => Some(Admin::connect(url).await?),
        None => None,
    };

    say(&format!(
        "SQLite: {} changes at {}/s, then {} writers for {:.1} s",
        b.rate * b.seconds,
        b.rate,
        WRITERS,
        sustained_seconds(&b)
    ));
    let sqlite = {
        let mut rig = Rig::sqlite(&scratch.path().join("sqlite")).await?;
        let measured = measure(&mut rig, &b, seed).await;
        finish(rig, measured).await?
    };
    let postgres = match &admin {
        Some(admin) => {
            let database = format!("bench_cdc_{}", Uuid::now_v7().simple());
            say(&format!(
                "PostgreSQL ({}, database {database}): {} changes at {}/s, then {} writers for {:.1} s",
                admin.location,
                b.rate * b.seconds,
                b.rate,
                WRITERS,
                sustained_seconds(&b)
            ));
            admin.create_database(&database).await?;
            let measured = async {
                let mut rig =
                    Rig::postgres(&scratch.path().join("postgres"), &admin.url_of(&database))
                        .await?;
                let measured = measure(&mut rig, &b, seed).await;
                finish(rig, measured).await
            }
            .await;
            let dropped = admin.drop_database(&database).await;
            let measured = measured?;
            dropped?;
            Some(measured)
        }
        None => None,
    };

    say(&format!(
        "projections: writing {} events over {} accounts",
        b.projection_events, b.aggregates
    ));
    let es_log = EmbeddedLog::open(scratch.path().join("es-log"), embedded_options_from_env()?)?;
    write_account_events(&es_log, b.projection_events, b.aggregates).await?;
    say("projections: catching up into SQLite");
    let sqlite_db = scratch.path().join("es-sqlite");
    let sqlite_projection = projection_catch_up(&es_log, Database::open(&sqlite_db, None)?).await?;
    let postgres_projection = match &admin {
        Some(admin) => {
            let schema = format!("bench_{}", Uuid::now_v7().simple());
            say(&format!(
                "projections: catching up into PostgreSQL (schema {schema})"
            ));
            let url = admin.url_with_schema(&schema);
            let caught_up = async {
                let db = Database::open(&scratch.path().join("es-postgres"), Some(&url))?;
                projection_catch_up(&es_log, db).await
            }
            .await;
            let dropped = admin.drop_schema(&schema).await;
            let caught_up = caught_up?;
            dropped?;
            Some(caught_up)
        }
        None => None,
    };
    drop(es_log);
    scratch.close()?;

    report(
        &b,
        &sqlite,
        postgres.as_ref(),
        sqlite_projection,
        postgres_projection,
    )
}

fn sustained_seconds(b: &CdcBench) -> f64 {
    b.seconds as f64 / 2.0
}

/// The figures of one database, phases 1 and 2.
#[derive(Debug)]
struct Figures {
    /// Commit → read by the consumer, in microseconds.
    latency: Histogram<u64>,
    paced_changes: usize,
    paced_seconds: f64,
    sustained_changes: usize,
    sustained_seconds: f64,
    /// Changes written but not yet durable on the log when writing stopped.
    lag_at_end: u64,
    /// From the end of writing until every change was durable on the log.
    catch_up_seconds: f64,
}

impl Figures {
    fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1e3
    }

    fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1e3
    }

    fn paced_per_sec(&self) -> f64 {
        self.paced_changes as f64 / self.paced_seconds
    }

    fn written_per_sec(&self) -> f64 {
        self.sustained_changes as f64 / self.sustained_seconds
    }

    fn relayed_per_sec(&self) -> f64 {
        self.sustained_changes as f64 / (self.sustained_seconds + self.catch_up_seconds)
    }

    fn json(&self, prefix: &str, out: &mut Map<String, Value>) {
        let mut put = |k: &str, v: Value| {
            out.insert(format!("{prefix}_{k}"), v);
        };
        put("commit_to_durable_p50_ms", json!(self.ms(0.5)));
        put("commit_to_durable_p95_ms", json!(self.ms(0.95)));
        put("commit_to_durable_p99_ms", json!(self.ms(0.99)));
        put("commit_to_durable_max_ms", json!(self.max_ms()));
        put("paced_changes", json!(self.paced_changes));
        put("paced_changes_per_sec", json!(self.paced_per_sec()));
        put("sustained_changes", json!(self.sustained_changes));
        put("sustained_changes_per_sec", json!(self.written_per_sec()));
        put(
            "sustained_relayed_changes_per_sec",
            json!(self.relayed_per_sec()),
        );
        put("relay_lag_at_end_changes", json!(self.lag_at_end));
        put("relay_catch_up_ms", json!(self.catch_up_seconds * 1e3));
    }
}

/// Phases 1 and 2 on a running rig.
async fn measure(rig: &mut Rig, b: &CdcBench, seed: u64) -> Result<Figures> {
    let mut rng = Rng::new(seed);

    // The relay is streaming once it has taken its snapshot and delivered
    // these.
    rig.wait_snapshot().await?;
    for n in 0..WARM_UP {
        rig.db.create_user(user(&mut rng, Phase::WarmUp, n)).await?;
    }
    rig.wait_for(Phase::WarmUp, WARM_UP, START_TIMEOUT).await?;

    // 1. Paced: write n is due at start + n / rate. The writes are shared
    // by PACED_WRITERS connections (writer w takes n ≡ w), as an
    // application's requests are: one connection waiting for each commit's
    // flush before the next could not reach the rate on a disk whose flush
    // takes milliseconds, while concurrent commits share flushes. A late
    // write does not thin out the ones after it.
    let total = (b.rate * b.seconds) as usize;
    let start = tokio::time::Instant::now();
    let mut tasks: Vec<JoinHandle<Result<Commits>>> = Vec::new();
    for w in 0..PACED_WRITERS {
        let db = rig.db.clone();
        let rate = b.rate as f64;
        let mut rng = Rng::new(seed ^ (0x5eed + w as u64));
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::with_capacity(total / PACED_WRITERS + 1);
            for n in (w..total).step_by(PACED_WRITERS) {
                tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate)).await;
                db.create_user(user(&mut rng, Phase::Paced, n)).await?;
                done.push((n, Instant::now()));
            }
            Ok(done)
        }));
    }
    let mut committed = vec![Instant::now(); total];
    for task in tasks {
        for (n, at) in task.await.context("a paced writer panicked")?? {
            committed[n] = at;
        }
    }
    let paced_seconds = start.elapsed().as_secs_f64();
    rig.wait_for(Phase::Paced, total, CATCH_UP_TIMEOUT).await?;
    let mut latency = Histogram::<u64>::new(3)?;
    for (n, at) in committed.iter().enumerate() {
        let seen = *rig.seen[Phase::Paced as usize]
            .get(&n)
            .with_context(|| format!("{}: change {n} was not read", rig.name))?;
        // A change can be read before its write's await has returned (the
        // relay polls while the writer's task is being woken): 1 µs then.
        latency.record(seen.saturating_duration_since(*at).as_micros().max(1) as u64)?;
    }

    // 2. Sustained: as fast as the writers go.
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(sustained_seconds(b));
    let writers: Vec<JoinHandle<Result<()>>> = (0..WRITERS)
        .map(|w| {
            let db = rig.db.clone();
            let next = next.clone();
            let mut rng = Rng::new(seed ^ (w as u64 + 1));
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    db.create_user(user(&mut rng, Phase::Sustained, n)).await?;
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.await??;
    }
    let ended = Instant::now();
    let sustained_seconds = (ended - start).as_secs_f64();
    let written = next.load(Ordering::Relaxed);
    let lag_at_end = rig.lag(Phase::Sustained, written).await?;
    rig.wait_relayed(Phase::Sustained, written).await?;
    let catch_up_seconds = ended.elapsed().as_secs_f64();

    Ok(Figures {
        latency,
        paced_changes: total,
        paced_seconds,
        sustained_changes: written,
        sustained_seconds,
        lag_at_end,
        catch_up_seconds,
    })
}

/// Stops the rig, whatever `measured` says, and reports the first failure.
async fn finish(rig: Rig, measured: Result<Figures>) -> Result<Figures> {
    let stopped = rig.stop().await;
    let figures = measured?;
    stopped?;
    Ok(figures)
}

/// Which phase a user was written in: the prefix of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    WarmUp = 0,
    Paced = 1,
    Sustained = 2,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::WarmUp, Phase::Paced, Phase::Sustained];

    fn prefix(self) -> &'static str {
        match self {
            Phase::WarmUp => "w",
            Phase::Paced => "p",
            Phase::Sustained => "s",
        }
    }

    /// The phase and number of a user id (`p-17`).
    fn parse(id: &str) -> Option<(Phase, usize)> {
        let (prefix, n) = id.split_once('-')?;
        let phase = Phase::ALL.into_iter().find(|p| p.prefix() == prefix)?;
        Some((phase, n.parse().ok()?))
    }
}

const COUNTRIES: &[&str] = &["AU", "NZ", "GB", "US", "SG", "DE", "FR", "JP"];

/// The `n`th user of a phase: a unique id and e-mail address.
fn user(rng: &mut Rng, phase: Phase, n: usize) -> NewUser {
    let id = format!("{}-{n}", phase.prefix());
    NewUser {
        name: format!("Bench User {n}"),
        email: format!("{id}@bench.example.com"),
        id: Some(id),
        phone: None,
        country: (*rng.pick(COUNTRIES)).to_owned(),
        risk_profile: (*rng.pick(RISK_PROFILES)).to_owned(),
        status: "active".into(),
    }
}

/// One database with its relay running onto a fresh embedded log, and a
/// consumer of `db.changes.users` stamping every `c` event it reads.
struct Rig {
    name: &'static str,
    db: Operational,
    /// Whether the relay has taken its initial snapshot: a row written
    /// before that is relayed as a snapshot read (`r`), not a `c` event.
    snapshot_done: Box<dyn Fn() -> bool + Send>,
    token: CancellationToken,
    relay: Option<JoinHandle<Result<()>>>,
    consumer: Option<JoinHandle<Result<()>>>,
    stamps: mpsc::UnboundedReceiver<(String, Instant)>,
    /// When each user was first read, by phase and number.
    seen: [HashMap<usize, Instant>; 3],
}

impl Rig {
    /// `operational.sqlite` in `dir` with [`SqliteRelay`].
    async fn sqlite(dir: &Path) -> Result<Rig> {
        let log = EmbeddedLog::open(dir.join("log"), embedded_options_from_env()?)?;
        let path = dir.join(ultracore_cdc::sqlite::FILE_NAME);
        let db = Arc::new(SqliteDb::open(&path)?);
        let relay = SqliteRelay::open(log.clone(), &path, RelayOptions::default())?;
        let progress = relay.progress_handle();
        Rig::start(
            "SQLite",
            log,
            Operational::Sqlite(db),
            Box::new(move || {
                progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .snapshot_done
            }),
            move |token| async move { Ok(relay.run(token).await?) },
        )
        .await
    }

    /// The PostgreSQL database at `url` with [`PgRelay`] (the log in `dir`).
    async fn postgres(dir: &Path, url: &str) -> Result<Rig> {
        let log = EmbeddedLog::open(dir.join("log"), embedded_options_from_env()?)?;
        let db = PgDb::connect(url).await?;
        let relay = Arc::new(PgRelay::new(log.clone(), url, PgRelayOptions::default()));
        let progress = relay.clone();
        Rig::start(
            "PostgreSQL",
            log,
            Operational::Postgres(db),
            Box::new(move || progress.progress().snapshot_done),
            move |token| async move { Ok(relay.run(token).await?) },
        )
        .await
    }

    async fn start<F, R>(
        name: &'static str,
        log: EmbeddedLog,
        db: Operational,
        snapshot_done: Box<dyn Fn() -> bool + Send>,
        relay: R,
    ) -> Result<Rig>
    where
        R: FnOnce(CancellationToken) -> F,
        F: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        // The topics exist before the consumer joins, whichever starts first.
        ultracore_runtime::catalogue::ensure(
            &log,
            &["db.changes.users", "db.changes.conversations"],
        )
        .await?;
        let consumer = log
            .consumer(ConsumerOptions::new("bench-cdc", ["db.changes.users"]))
            .await?;
        let token = CancellationToken::new();
        let (tx, stamps) = mpsc::unbounded_channel();
        let consumer = tokio::spawn(stamp(consumer, tx, token.clone()));
        let relay = tokio::spawn(relay(token.clone()));
        Ok(Rig {
            name,
            db,
            snapshot_done,
            token,
            relay: Some(relay),
            consumer: Some(consumer),
            stamps,
            seen: Default::default(),
        })
    }

    /// Fails if the relay or the consumer has stopped.
    async fn check_running(&mut self) -> Result<()> {
        for (what, task) in [("relay", &mut self.relay), ("consumer", &mut self.consumer)] {
            if task.as_ref().is_some_and(|t| t.is_finished()) {
                let task = task.take().expect("checked above");
                task.await
                    .with_context(|| format!("the {} {what} panicked", self.name))?
                    .with_context(|| format!("the {} {what} failed", self.name))?;
                bail!("the {} {what} stopped before the run ended", self.name);
            }
        }
        Ok(())
    }

    /// Waits until the relay has taken its initial snapshot.
    async fn wait_snapshot(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        while !(self.snapshot_done)() {
            if Instant::now() >= deadline {
                bail!(
                    "{}: the relay took no snapshot within {} s",
                    self.name,
                    START_TIMEOUT.as_secs()
                );
            }
            self.check_running().await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Takes in the stamps the consumer has sent, waiting up to `wait` for
    /// the first.
    async fn receive(&mut self, wait: Duration) -> Result<()> {
        self.check_running().await?;
        if let Ok(Some(first)) = tokio::time::timeout(wait, self.stamps.recv()).await {
            self.note(first);
        }
        while let Ok(stamp) = self.stamps.try_recv() {
            self.note(stamp);
        }
        Ok(())
    }

    fn note(&mut self, (id, at): (String, Instant)) {
        if let Some((phase, n)) = Phase::parse(&id) {
            self.seen[phase as usize].entry(n).or_insert(at);
        }
    }

    /// Waits until the consumer has read users 0..count of `phase`.
    async fn wait_for(&mut self, phase: Phase, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.seen[phase as usize].len() < count {
            if Instant::now() >= deadline {
                bail!(
                    "{}: {} of {count} changes did not reach the consumer within {} s",
                    self.name,
                    count - self.seen[phase as usize].len(),
                    timeout.as_secs()
                );
            }
            self.receive(Duration::from_millis(50)).await?;
        }
        Ok(())
    }

    /// Changes of `phase` written but not yet durable on the log. SQLite:
    /// the outbox past the relay's position; PostgreSQL: not yet read by
    /// the consumer.
    async fn lag(&mut self, phase: Phase, written: usize) -> Result<u64> {
        match &self.db {
            Operational::Sqlite(db) => {
                let (position, high) = relay_position(db).await?;
                Ok(high.saturating_sub(position))
            }
            Operational::Postgres(_) => {
                self.receive(Duration::ZERO).await?;
                Ok(written.saturating_sub(self.seen[phase as usize].len()) as u64)
            }
        }
    }

    /// Waits until the relay has relayed everything written. SQLite: its
    /// durable position reaches the outbox's last change; PostgreSQL: the
    /// consumer has read all `written` changes of `phase`.
    async fn wait_relayed(&mut self, phase: Phase, written: usize) -> Result<()> {
        let Operational::Sqlite(db) = &self.db else {
            return self.wait_for(phase, written, CATCH_UP_TIMEOUT).await;
        };
        let db = db.clone();
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            let (position, high) = relay_position(&db).await?;
            if position == high {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "SQLite: the relay is {} changes behind after {} s",
                    high - position,
                    CATCH_UP_TIMEOUT.as_secs()
                );
            }
            self.check_running().await?;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops the relay and the consumer and reports how they ended.
    async fn stop(mut self) -> Result<()> {
        self.token.cancel();
        let mut result = Ok(());
        for (what, task) in [
            ("relay", self.relay.take()),
            ("consumer", self.consumer.take()),
        ] {
            let Some(mut task) = task else { continue };
            let ended = match tokio::time::timeout(STOP_TIMEOUT, &mut task).await {
                Ok(joined) => joined
                    .with_context(|| format!("the {} {what} panicked", self.name))
                    .and_then(|r| r.with_context(|| format!("the {} {what} failed", self.name))),
                Err(_) => {
                    task.abort();
                    Err(anyhow::anyhow!(
                        "the {} {what} did not stop within {} s",
                        self.name,
                        STOP_TIMEOUT.as_secs()
                    ))
                }
            };
            if result.is_ok() {
                result = ended;
            }
        }
        result
    }
}

/// The SQLite relay's durable position and the outbox's last change.
async fn relay_position(db: &Arc<SqliteDb>) -> Result<(u64, u64)> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let position = db.relay_state()?.position;
        Ok((position, db.outbox_high()?))
    })
    .await?
}

/// Reads `db.changes.users` until `token` is cancelled and sends the id of
/// every `c` event with the instant its poll returned.
async fn stamp<C: Consumer>(
    mut consumer: C,
    tx: mpsc::UnboundedSender<(String, Instant)>,
    token: CancellationToken,
) -> Result<()> {
    while !token.is_cancelled() {
        let records = consumer.poll(4_096, POLL).await?;
        let at = Instant::now();
        for r in records.iter().filter(|r| !r.value.is_empty()) {
            let event: ChangeEvent = serde_json::from_slice(&r.value)
                .context("a record of db.changes.users is not a change event")?;
            if event.op != Op::Create {
                continue;
            }
            let key: Value = r
                .key
                .as_deref()
                .and_then(|k| serde_json::from_slice(k).ok())
                .context("a record of db.changes.users has no JSON key")?;
            let Some(id) = key["id"].as_str() else {
                bail!("a record of db.changes.users has the key {key}, not {{\"id\": …}}");
            };
            if tx.send((id.to_owned(), at)).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A connection to the PostgreSQL of `--database-url`, for the bench's
/// own databases and schemas.
struct Admin {
    client: tokio_postgres::Client,
    /// The URL without the parameters only UltraCore reads.
    url: String,
    /// The URL without credentials or parameters, for messages.
    location: String,
}

impl Admin {
    async fn connect(url: &str) -> Result<Admin> {
        let location = location(url);
        // TLS as the URL's sslmode and sslrootcert say, like every component.
        let target =
            ultracore_pgrepl::url::parse(url).map_err(|e| anyhow::anyhow!("--database-url {e}"))?;
        let url = client_url(url);
        let (client, connection) = target
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!(target.connect_error(&e, 1)))
            .with_context(|| format!("connecting to PostgreSQL at {location}"))?;
        // Driven on its own task; if it ends, the next call says why.
        tokio::spawn(connection);
        Ok(Admin {
            client,
            url,
            location,
        })
    }

    /// The URL of `database` on the same server, with the same parameters.
    fn url_of(&self, database: &str) -> String {
        with_database(&self.url, database)
    }

    /// The URL of the read models in `schema` of the given database.
    fn url_with_schema(&self, schema: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={schema}", self.url)
    }

    async fn create_database(&self, name: &str) -> Result<()> {
        self.client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| {
                format!(
                    "creating the database {name} at {} (the role needs CREATEDB)",
                    self.location
                )
            })
    }

    /// Drops `name`, first its replication slots, which would otherwise
    /// pin the server's WAL forever. A slot stays active for a moment after
    /// its relay stopped: that is retried.
    async fn drop_database(&self, name: &str) -> Result<()> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self
                .client
                .execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1",
                    &[&name],
                )
                .await
            {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(e).with_context(|| {
                        format!("dropping the replication slots of the database {name}")
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        self.client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .with_context(|| format!("dropping the database {name}"))
    }

    async fn drop_schema(&self, schema: &str) -> Result<()> {
        self.client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .with_context(|| format!("dropping the schema {schema}"))
    }
}

/// `url` naming `database` instead of its own, with the same parameters.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `postgres://HOST:PORT/DATABASE`: the URL without credentials or
/// parameters.
fn location(url: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &base[..scheme + 3], &base[at + 1..])
        }
        _ => base.to_owned(),
    }
}

fn report(
    b: &CdcBench,
    sqlite: &Figures,
    postgres: Option<&Figures>,
    sqlite_projection: CatchUpRate,
    postgres_projection: Option<CatchUpRate>,
) -> Result<()> {
    let ratio =
        postgres_projection.map(|p| p.events_per_sec() / sqlite_projection.events_per_sec());
    if b.json {
        let mut doc = Map::new();
        doc.insert("paced_rate_per_sec".into(), json!(b.rate));
        doc.insert("seconds".into(), json!(b.seconds));
        doc.insert("sustained_writers".into(), json!(WRITERS));
        sqlite.json("sqlite", &mut doc);
        match postgres {
            Some(p) => p.json("postgres", &mut doc),
            None => {
                // The same keys as SQLite's, null: skipped, not zero.
                let keys: Vec<String> = doc
                    .keys()
                    .filter_map(|k| k.strip_prefix("sqlite_"))
                    .map(|k| format!("postgres_{k}"))
                    .collect();
                for k in keys {
                    doc.insert(k, Value::Null);
                }
                doc.insert("postgres_skipped".into(), json!(SKIPPED));
                eprintln!("{SKIPPED}");
            }
        }
        doc.insert("projection_events".into(), json!(sqlite_projection.events));
        doc.insert(
            "sqlite_projection_events_per_sec".into(),
            json!(sqlite_projection.events_per_sec()),
        );
        doc.insert(
            "postgres_projection_events_per_sec".into(),
            json!(postgres_projection.map(|p| p.events_per_sec())),
        );
        doc.insert("postgres_to_sqlite_projection_ratio".into(), json!(ratio));
        doc.insert("commit_to_durable_note".into(), json!(UPPER_BOUND));
        println!("{}", Value::Object(doc));
        return Ok(());
    }
    let cell = |f: &dyn Fn(&Figures) -> String| -> [String; 2] {
        [f(sqlite), postgres.map_or_else(|| "skipped".into(), f)]
    };
    let row = |figure: &str, [s, p]: [String; 2], unit: &str| {
        vec![figure.to_owned(), s, p, unit.to_owned()]
    };
    let rows = vec![
        row(
            "commit → durable, p50",
            cell(&|f| format!("{:.2}", f.ms(0.5))),
            "ms",
        ),
        row(
            "commit → durable, p95",
            cell(&|f| format!("{:.2}", f.ms(0.95))),
            "ms",
        ),
        row(
            "commit → durable, p99",
            cell(&|f| format!("{:.2}", f.ms(0.99))),
            "ms",
        ),
        row(
            "commit → durable, max",
            cell(&|f| format!("{:.2}", f.max_ms())),
            "ms",
        ),
        row(
            &format!("paced writer at {}/s, achieved", b.rate),
            cell(&|f| format!("{:.0}", f.paced_per_sec())),
            "changes/s",
        ),
        row(
            &format!("sustained, written ({WRITERS} writers)"),
            cell(&|f| format!("{:.0}", f.written_per_sec())),
            "changes/s",
        ),
        row(
            "sustained, relayed (all durable)",
            cell(&|f| format!("{:.0}", f.relayed_per_sec())),
            "changes/s",
        ),
        row(
            "relay lag when writing stopped",
            cell(&|f| f.lag_at_end.to_string()),
            "changes",
        ),
        row(
            "relay catch-up after writing stopped",
            cell(&|f| format!("{:.1}", f.catch_up_seconds * 1e3)),
            "ms",
        ),
        vec![
            "projection catch-up (AccountBalances)".into(),
            format!("{:.0}", sqlite_projection.events_per_sec()),
            postgres_projection.map_or_else(
                || "skipped".into(),
                |p| format!("{:.0}", p.events_per_sec()),
            ),
            "events/s".into(),
        ],
    ];
    print!(
        "{}",
        table(&["figure", "SQLite", "PostgreSQL", "unit"], &rows)
    );
    println!(
        "{} paced changes over {} s and {:.1} s of sustained writes per database; projections over {} events",
        b.rate * b.seconds,
        b.seconds,
        sustained_seconds(b),
        sqlite_projection.events
    );
    if let Some(ratio) = ratio {
        println!("projection catch-up, PostgreSQL / SQLite: {ratio:.2}×");
    }
    println!("{UPPER_BOUND}");
    if postgres.is_none() {
        println!("{SKIPPED}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_phase() {
        assert_eq!(Phase::parse("p-17"), Some((Phase::Paced, 17)));
        assert_eq!(Phase::parse("s-0"), Some((Phase::Sustained, 0)));
        assert_eq!(Phase::parse("w-3"), Some((Phase::WarmUp, 3)));
        assert_eq!(Phase::parse("x-3"), None);
        assert_eq!(Phase::parse("p-"), None);
        assert_eq!(Phase::parse("usr_01"), None);
    }

    #[test]
    fn locations_hide_credentials() {
        assert_eq!(
            location("postgres://u:secret@127.0.0.1:5432/db?schema=x"),
            "postgres://127.0.0.1:5432/db"
        );
        assert_eq!(location("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn database_urls_keep_server_and_parameters() {
        assert_eq!(
            with_database(
                "postgres://u:p@h:5432/ultracore?connect_timeout=5",
                "bench_cdc_1"
            ),
            "postgres://u:p@h:5432/bench_cdc_1?connect_timeout=5"
        );
        assert_eq!(
            with_database("postgresql://u@h", "bench_cdc_1"),
            "postgresql://u@h/bench_cdc_1"
        );
    }
}
