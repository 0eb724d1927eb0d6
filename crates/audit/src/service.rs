//! The audit service: every record of every topic into the trail, in one
//! global leaf sequence, with signed checkpoints published on
//! `audit.checkpoints` every N records or T milliseconds.
//!
//! It reads every topic of the log (dead-letter topics included, topics
//! created later included) but its own output, as a consumer group of its
//! own trail (`audit-<hash of the origin>`): every trail sees the whole log,
//! so two servers with two data directories keep two complete trails
//! rather than splitting the partitions between them.
//!
//! A batch's leaves are durable before the runtime commits the batch; a
//! record delivered again after a crash is at or below its partition's
//! high-water mark in the positions index and is skipped, so nothing is
//! missed or doubled.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ultracore_log::{EnvelopeBuilder, EventLog, Record};
use ultracore_runtime::{
    catalogue, run_consumer, ConsumerConfig, ConsumerSpec, Handler, HandlerError, Registration,
    ServiceContext, ServiceError, Subscription,
};

use crate::positions::RecordPosition;
use crate::trail::{record_hash, AuditTrail, Opened, SignedCheckpoint, TrailError};

/// Where the signed checkpoints are published.
pub const CHECKPOINT_TOPIC: &str = "audit.checkpoints";

/// The audit service's settings.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The trail's directory.
    pub dir: PathBuf,
    /// The origin of a new trail (`ultracore.audit/<random id>` by default).
    pub origin: Option<String>,
    /// Sign a checkpoint once this many records are not yet covered...
    pub checkpoint_records: u64,
    /// ...or once the oldest of them waited this long.
    pub checkpoint_interval: Duration,
    /// How it polls (at most `max_batch` records appended at once), how
    /// often it looks for new topics, retries.
    pub consumer: ConsumerConfig,
}

impl AuditOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AuditOptions {
            dir: dir.into(),
            origin: None,
            checkpoint_records: 10_000,
            checkpoint_interval: Duration::from_secs(1),
            consumer: ConsumerConfig {
                max_batch: 2_048,
                ..ConsumerConfig::default()
            },
        }
    }
}

/// The trail, shared by the service and the routes that serve proofs.
pub type SharedTrail = Arc<Mutex<AuditTrail>>;

fn lock(trail: &SharedTrail) -> MutexGuard<'_, AuditTrail> {
    trail.lock().unwrap_or_else(|p| p.into_inner())
}

/// The audit service (see the module docs).
#[derive(Debug, Clone)]
pub struct AuditService {
    options: AuditOptions,
    trail: SharedTrail,
    /// The largest tree size published on the checkpoint topic by this
    /// process (0: none yet, so the latest is published again at start).
    published: Arc<AtomicU64>,
    /// One checkpoint signed and published at a time, in order.
    publishing: Arc<tokio::sync::Mutex<()>>,
    /// The trail directory's lock: one auditor per trail.
    _lock: Arc<std::fs::File>,
    /// Times [`AuditService::run`] started (the first uses the trail `open` read).
    starts: Arc<AtomicU64>,
}

impl AuditService {
    /// Opens (creating) the trail.
    pub fn open(options: AuditOptions) -> Result<(AuditService, Opened), TrailError> {
        let lock = lock_dir(&options.dir)?;
        let (trail, opened) = AuditTrail::open(&options.dir, options.origin.as_deref())?;
        Ok((
            AuditService {
                options,
                trail: Arc::new(Mutex::new(trail)),
                published: Arc::default(),
                publishing: Arc::default(),
                _lock: Arc::new(lock),
                starts: Arc::default(),
            },
            opened,
        ))
    }

    pub fn trail(&self) -> SharedTrail {
        self.trail.clone()
    }

    /// The consumer group of this trail.
    pub fn group(&self) -> String {
        let origin = lock(&self.trail).origin().to_owned();
        let h = Sha256::digest(origin.as_bytes());
        let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("audit-{hex}")
    }

    /// What the service reads.
    pub fn spec(&self) -> ConsumerSpec {
        ConsumerSpec::new(
            self.group(),
            Subscription::All {
                dead_letters: true,
                except: vec![CHECKPOINT_TOPIC.to_owned()],
            },
        )
        .config(self.options.consumer.clone())
    }

    /// The service's registration: the consumer loop, plus a timer that
    /// signs a checkpoint when records wait longer than the interval.
    pub fn registration<L: EventLog>(&self, log: L) -> Registration {
        let service = self.clone();
        Registration::task("audit", move |ctx| {
            let (service, log) = (service.clone(), log.clone());
            async move { service.run(log, ctx).await }
        })
        .waits_until_ready()
    }

    /// Runs until the context is cancelled; signs a last checkpoint then.
    pub async fn run<L: EventLog>(&self, log: L, ctx: ServiceContext) -> Result<(), ServiceError> {
        catalogue::ensure(&log, &[CHECKPOINT_TOPIC])
            .await
            .map_err(ServiceError::other)?;
        // After a restart in this process the trail in memory may be ahead
        // of a write that failed: start again from the files.
        if self.starts.fetch_add(1, Ordering::SeqCst) > 0 {
            let dir = self.options.dir.clone();
            let reopened = tokio::task::spawn_blocking(move || AuditTrail::open(&dir, None))
                .await
                .map_err(ServiceError::other)?
                .map_err(ServiceError::other)?;
            *lock(&self.trail) = reopened.0;
        }
        self.published.store(0, Ordering::SeqCst);
        self.settle(&log, false)
            .await
            .map_err(ServiceError::other)?;
        let spec = self.spec();
        let mut handler = AuditHandler {
            service: self.clone(),
            log: log.clone(),
        };
        let timer = async {
            let every = self
                .options
                .checkpoint_interval
                .max(Duration::from_millis(10));
            let mut tick = tokio::time::interval(every / 4);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut waiting_since: Option<Instant> = None;
            loop {
                tick.tick().await;
                let unsigned = lock(&self.trail).unsigned();
                if unsigned == 0 {
                    waiting_since = None;
                    continue;
                }
                let since = *waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= every {
                    if let Err(e) = self.settle(&log, true).await {
                        tracing::warn!(error = %e, "signing a checkpoint failed; trying again");
                    }
                    waiting_since = None;
                }
            }
        };
        let outcome = tokio::select! {
            r = run_consumer(&log, &spec, &mut handler, &ctx) => r,
            _ = timer => unreachable!("the timer never ends"),
        };
        // Sign what was appended before stopping.
        if let Err(e) = self.settle(&log, true).await {
            tracing::warn!(error = %e, "the last checkpoint was not signed; the next start signs it");
        }
        outcome
    }

    /// Signs a checkpoint when `sign` and the tree grew, then publishes the
    /// latest checkpoint unless this process already did.
    async fn settle<L: EventLog>(&self, log: &L, sign: bool) -> Result<(), HandlerError> {
        let _one = self.publishing.lock().await;
        let latest = if sign {
            // Signing syncs the tree's files: off the async workers.
            let trail = self.trail.clone();
            tokio::task::spawn_blocking(move || {
                let mut t = lock(&trail);
                t.checkpoint()?;
                Ok::<_, TrailError>(t.latest().cloned())
            })
            .await
            .map_err(|e| HandlerError::infra(e.to_string()))?
            .map_err(|e| HandlerError::infra(e.to_string()))?
        } else {
            lock(&self.trail).latest().cloned()
        };
        let Some(latest) = latest else {
            return Ok(());
        };
        if latest.tree_size > self.published.load(Ordering::SeqCst) {
            let origin = lock(&self.trail).origin().to_owned();
            publish(log, &origin, &latest).await?;
            self.published.store(latest.tree_size, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Locks `dir/LOCK` for this process (holding its pid), or says who holds it.
fn lock_dir(dir: &std::path::Path) -> Result<std::fs::File, TrailError> {
    use std::io::{Read, Seek, Write};
    let io = |source| TrailError::Io {
        path: dir.join("LOCK"),
        source,
    };
    ultracore_log::files::create_dir_all(dir).map_err(io)?;
    let mut file = ultracore_log::files::open_options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(TrailError::BadRequest(format!(
                "the audit trail in {} is in use by process {}: one auditor per trail (give this one another data directory)",
                dir.display(),
                if pid.trim().is_empty() { "unknown" } else { pid.trim() }
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// The record of a checkpoint on `audit.checkpoints`: an envelope
/// `audit_checkpoint` keyed by the origin, its payload the checkpoint.
async fn publish<L: EventLog>(
    log: &L,
    origin: &str,
    checkpoint: &SignedCheckpoint,
) -> Result<(), HandlerError> {
    let payload = serde_json::json!({
        "origin": origin,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "note": checkpoint.note,
    });
    let record = EnvelopeBuilder::new("audit_trail", origin)
        .version(checkpoint.tree_size)
        .principal("audit")
        .build_raw("audit_checkpoint", 1, payload)
        .to_record();
    log.append(CHECKPOINT_TOPIC, vec![record]).await?;
    Ok(())
}

struct AuditHandler<L> {
    service: AuditService,
    log: L,
}

impl<L: EventLog> Handler for AuditHandler<L> {
    async fn handle(&mut self, batch: &[Record]) -> Result<(), HandlerError> {
        let mut leaves = Vec::with_capacity(batch.len());
        for r in batch {
            let hash = record_hash(r).map_err(|e| HandlerError::reject(e.to_string()))?;
            leaves.push((
                RecordPosition {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                },
                hash,
            ));
        }
        let trail = self.service.trail.clone();
        let due = self.service.options.checkpoint_records.max(1);
        let unsigned = tokio::task::spawn_blocking(move || {
            let mut t = lock(&trail);
            t.append(&leaves)?;
            Ok::<_, TrailError>(t.unsigned())
        })
        .await
        .map_err(|e| HandlerError::infra(e.to_string()))?
        .map_err(|e| HandlerError::infra(e.to_string()))?;
        self.service.settle(&self.log, unsigned >= due).await
    }
}
