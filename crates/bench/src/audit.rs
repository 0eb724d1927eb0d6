//! `ultracore bench audit`: the audit trail's figures.
//!
//! - `appends`: leaves appended to the tree in files on one core (100-byte
//!   leaves hashed, appended, the leaf file synced once per batch).
//! - `proofs`: inclusion proofs of trees of 10³, 10⁶ and 10⁹ leaves (a
//!   tree whose nodes are derived, not stored, so 10⁹ fits): their sizes
//!   against 32·⌈log₂ n⌉ bytes and the time to verify one.
//! - `keep-up`: the audit service on the embedded log under an offered
//!   rate of events/s: its lag (the age of the oldest record not yet in the
//!   tree) sampled every 50 ms, and how long it takes to catch up.
//! - `verify`: records written, audited, then verified from the log
//!   (`ultracore audit verify`'s work), records/s.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use ultracore_audit::{
    leaf_hash, verify, verify_inclusion, AuditOptions, AuditService, Hash, Nodes, ProofError,
    TrailSnapshot, TreeStore,
};
use ultracore_log::{EventLog, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_runtime::{Supervisor, SupervisorOptions};

use crate::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    Appends,
    Proofs,
    KeepUp,
    Verify,
}

#[derive(Debug, Args)]
pub struct AuditBench {
    /// Parts to run (comma-separated) [default: all].
    #[arg(long, value_delimiter = ',')]
    only: Vec<Part>,
    /// Leaves appended by `appends`.
    #[arg(long, default_value_t = 5_000_000)]
    appends: u64,
    /// Leaves per batch (one sync of the leaf file each).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Events/s offered by `keep-up`.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Length of `keep-up`'s load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Records `verify` writes, audits and verifies.
    #[arg(long, default_value_t = 1_000_000)]
    verify_records: u64,
    /// Run `keep-up` in this data directory (the log, and the trail in
    /// DIR/audit, as `serve` keeps them), kept and resumed on the next run,
    /// instead of a fresh one.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The auditor signs a checkpoint once records waited this long (or
    /// 10,000 of them wait).
    #[arg(long, default_value_t = 1_000)]
    checkpoint_ms: u64,
    #[arg(long)]
    json: bool,
}

pub async fn run(b: AuditBench, seed: u64) -> Result<()> {
    let all = b.only.is_empty();
    let wants = |p: Part| all || b.only.contains(&p);
    let mut out = serde_json::Map::new();
    if wants(Part::Appends) {
        let (appends, batch) = (b.appends, b.batch.max(1));
        let v = tokio::task::spawn_blocking(move || appends_bench(appends, batch, seed)).await??;
        if !b.json {
            println!(
                "appends: {} leaves of 100 bytes in {:.2} s on one core: {:.0} leaves/s (batches of {}, each synced)",
                v["leaves"], v["seconds"].as_f64().unwrap_or(0.0), v["per_second"].as_f64().unwrap_or(0.0), v["batch"]
            );
        }
        out.insert("appends".into(), v);
    }
    if wants(Part::Proofs) {
        let v = tokio::task::spawn_blocking(move || proofs_bench(seed)).await??;
        if !b.json {
            for p in v.as_array().into_iter().flatten() {
                println!(
                    "proofs: n = {:>13}: inclusion proofs ≤ {} bytes (bound 32·⌈log₂ n⌉ = {}), verified in {:.2} µs (p50), {:.2} µs (p99)",
                    p["n"], p["max_bytes"], p["bound_bytes"],
                    p["verify_us_p50"].as_f64().unwrap_or(0.0), p["verify_us_p99"].as_f64().unwrap_or(0.0)
                );
            }
        }
        out.insert("proofs".into(), v);
    }
    if wants(Part::KeepUp) {
        let v = keep_up(&b, seed).await?;
        if !b.json {
            println!(
                "keep-up: {:.0} events/s offered ({:.0} achieved) for {} s; auditor lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; caught up {:.0} ms after the load stopped",
                v["offered_rate"].as_f64().unwrap_or(0.0), v["achieved_rate"].as_f64().unwrap_or(0.0), v["seconds"],
                v["lag_p50_ms"].as_f64().unwrap_or(0.0), v["lag_p99_ms"].as_f64().unwrap_or(0.0),
                v["lag_max_ms"].as_f64().unwrap_or(0.0), v["catch_up_ms"].as_f64().unwrap_or(0.0)
            );
        }
        out.insert("keep_up".into(), v);
    }
    if wants(Part::Verify) {
        let v = verify_bench(b.verify_records, b.checkpoint_ms).await?;
        if !b.json {
            println!(
                "verify: {} records audited at {:.0} records/s, then verified from the log in {:.2} s: {:.0} records/s",
                v["records"], v["audit_per_second"].as_f64().unwrap_or(0.0),
                v["verify_seconds"].as_f64().unwrap_or(0.0), v["verify_per_second"].as_f64().unwrap_or(0.0)
            );
        }
        out.insert("verify".into(), v);
    }
    if b.json {
        println!("{}", Value::Object(out));
    }
    Ok(())
}

fn appends_bench(leaves: u64, batch: usize, seed: u64) -> Result<Value> {
    let dir = tempfile::Builder::new()
        .prefix("ultracore-bench-audit-")
        .tempdir()?;
    let mut rng = Rng::new(seed);
    // A pool of distinct 100-byte leaves; leaf i is pool[i % 4096] with i
    // written over its first 8 bytes, so every leaf differs.
    let pool: Vec<[u8; 100]> = (0..4096)
        .map(|_| {
            let mut l = [0u8; 100];
            for chunk in l.chunks_mut(8) {
                let r = rng.next_u64().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
            l
        })
        .collect();
    let mut store = TreeStore::open(dir.path())?;
    let mut hashes = Vec::with_capacity(batch);
    let started = Instant::now();
    let mut done = 0u64;
    while done < leaves {
        hashes.clear();
        let n = batch.min((leaves - done) as usize);
        for i in done..done + n as u64 {
            let mut leaf = pool[(i % 4096) as usize];
            leaf[..8].copy_from_slice(&i.to_be_bytes());
            hashes.push(leaf_hash(&leaf));
        }
        store.append(&hashes)?;
        store.sync_leaves()?;
        done += n as u64;
    }
    store.sync()?;
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "leaves": leaves,
        "batch": batch,
        "seconds": secs,
        "per_second": leaves as f64 / secs,
    }))
}

/// A tree of any size whose node hashes are derived from their place, so
/// the shape of the proofs of a tree of 10⁹ leaves can be had without
/// storing it (the hashes are not each other's parents: the root each
/// proof is checked against is the one its path leads to).
struct Derived(u64);

/// The root an audit path leads to (RFC 9162 §2.1.3.2, the verifier's walk).
fn root_from_path(leaf: &Hash, index: u64, size: u64, path: &[Hash]) -> Hash {
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if f & 1 == 1 || f == s {
            r = ultracore_audit::node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = ultracore_audit::node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    r
}

impl Nodes for Derived {
    type Error = ProofError;

    fn size(&self) -> u64 {
        self.0
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let mut h = Sha256::new();
        h.update(level.to_be_bytes());
        h.update(index.to_be_bytes());
        Ok(h.finalize().into())
    }
}

fn proofs_bench(seed: u64) -> Result<Value> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for n in [1_000u64, 1_000_000, 1_000_000_000] {
        let tree = Derived(n);
        let bound = 32 * (64 - (n - 1).leading_zeros()) as usize;
        let mut proofs = Vec::new();
        let mut max_bytes = 0;
        for k in 0..2_000u64 {
            // The last leaves too: their paths are the irregular ones.
            let index = if k < 10 {
                n - 1 - k
            } else {
                rng.next_u64() % n
            };
            let path = tree.inclusion_proof(index, n)?;
            max_bytes = max_bytes.max(32 * path.len());
            let leaf = tree.node(0, index)?;
            let root = root_from_path(&leaf, index, n, &path);
            proofs.push((index, leaf, path, root));
        }
        let mut h = Histogram::<u64>::new(3)?;
        for round in 0..50 {
            for (index, leaf, path, root) in &proofs {
                let started = Instant::now();
                verify_inclusion(leaf, *index, n, path, root)?;
                if round > 0 {
                    h.record(started.elapsed().as_nanos() as u64)?;
                }
            }
        }
        out.push(json!({
            "n": n,
            "max_bytes": max_bytes,
            "bound_bytes": bound,
            "verify_us_p50": h.value_at_quantile(0.5) as f64 / 1000.0,
            "verify_us_p99": h.value_at_quantile(0.99) as f64 / 1000.0,
        }));
    }
    Ok(Value::Array(out))
}

const TOPICS: [(&str, u32); 2] = [("bench-audit-orders", 6), ("bench-audit-trades", 3)];

fn event(rng: &mut Rng, n: u64) -> NewRecord {
    let account = rng.next_u64() % 10_000;
    NewRecord::new(
        format!("acct-{account}"),
        format!(
            r#"{{"event_id":"{n:032x}","event_type":"order_placed","principal":"key-{}","payload":{{"account":{account},"qty":{},"price":{:.2}}}}}"#,
            account % 17,
            rng.next_u64() % 1000,
            rng.uniform() * 500.0
        ),
    )
    .with_header("event_type", "order_placed")
}

async fn open_log(dir: &std::path::Path) -> Result<EmbeddedLog> {
    let log = EmbeddedLog::open(dir, EmbeddedOptions::default())?;
    for (name, partitions) in TOPICS {
        match log.create_topic(&TopicSpec::new(name, partitions)).await {
            Ok(()) | Err(ultracore_log::Error::TopicExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(log)
}

async fn records_on(log: &EmbeddedLog) -> Result<u64> {
    let mut n = 0;
    for (name, _) in TOPICS {
        for p in log.describe_topic(name).await?.partitions {
            n += p.high_watermark - p.log_start_offset;
        }
    }
    Ok(n)
}

/// A running auditor: its service, the token that stops it, its task.
type Running = (
    AuditService,
    ultracore_runtime::CancellationToken,
    tokio::task::JoinHandle<Result<(), ultracore_runtime::Failure>>,
);

/// The audit service on `log` with the trail in `dir/audit`.
fn start_auditor(log: &EmbeddedLog, dir: &std::path::Path, checkpoint_ms: u64) -> Result<Running> {
    let mut options = AuditOptions::new(dir.join("audit"));
    options.checkpoint_interval = Duration::from_millis(checkpoint_ms.max(10));
    let (service, _) = AuditService::open(options)?;
    let mut sup = Supervisor::new(Default::default(), SupervisorOptions::default());
    sup.add(service.registration(log.clone()));
    let token = sup.token();
    let run = tokio::spawn(sup.run(token.clone().cancelled_owned()));
    Ok((service, token, run))
}

async fn keep_up(b: &AuditBench, seed: u64) -> Result<Value> {
    let (dir, _temp) = match &b.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("ultracore-bench-audit-")
                .tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    let log = open_log(&dir).await?;
    let base = records_on(&log).await?;
    let (service, token, run) = start_auditor(&log, &dir, b.checkpoint_ms)?;
    let trail = service.trail();
    let size = || trail.lock().unwrap_or_else(|p| p.into_inner()).size();
    // Wait for the auditor to catch up with what is there already.
    while size() < base {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let start_size = size();
    // (when appended durably, records appended so far this run)
    let appended: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let total = Arc::new(AtomicU64::new(0));
    let load = {
        let (log, appended, total, rate, seconds) = (
            log.clone(),
            appended.clone(),
            total.clone(),
            b.rate,
            b.seconds,
        );
        tokio::spawn(async move {
            let mut rng = Rng::new(seed);
            let tick = Duration::from_millis(10);
            let per_tick = (rate / 100).max(1);
            let started = Instant::now();
            let mut ticker = tokio::time::interval(tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0u64;
            let mut k = 0usize;
            while started.elapsed() < Duration::from_secs(seconds) {
                ticker.tick().await;
                let (topic, _) = TOPICS[k % TOPICS.len()];
                k += 1;
                let batch: Vec<NewRecord> = (0..per_tick).map(|i| event(&mut rng, n + i)).collect();
                log.append(topic, batch).await?;
                n += per_tick;
                total.store(n, Ordering::SeqCst);
                appended
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((Instant::now(), n));
            }
            anyhow::Ok(started.elapsed())
        })
    };
    let mut lag = Histogram::<u64>::new(3)?;
    while !load.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let audited = size() - start_size;
        let oldest = {
            let a = appended.lock().unwrap_or_else(|p| p.into_inner());
            // The first append whose records are not all in the tree.
            let i = a.partition_point(|(_, n)| *n <= audited);
            a.get(i).map(|(t, _)| *t)
        };
        let ms = oldest.map_or(0, |t| t.elapsed().as_millis() as u64);
        lag.record(ms)?;
    }
    let load_secs = load.await?.context("the load failed")?.as_secs_f64();
    let stopped = Instant::now();
    let sent = total.load(Ordering::SeqCst);
    while size() - start_size < sent {
        if stopped.elapsed() > Duration::from_secs(120) {
            bail!("the auditor did not catch up within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let catch_up = stopped.elapsed();
    token.cancel();
    run.await??;
    Ok(json!({
        "offered_rate": b.rate,
        "achieved_rate": sent as f64 / load_secs,
        "seconds": b.seconds,
        "events": sent,
        "lag_p50_ms": lag.value_at_quantile(0.5),
        "lag_p99_ms": lag.value_at_quantile(0.99),
        "lag_max_ms": lag.max(),
        "catch_up_ms": catch_up.as_secs_f64() * 1000.0,
    }))
}

async fn verify_bench(records: u64, checkpoint_ms: u64) -> Result<Value> {
    let dir = tempfile::Builder::new()
        .prefix("ultracore-bench-audit-")
        .tempdir()?;
    let log = open_log(dir.path()).await?;
    let mut rng = Rng::new(7);
    let mut n = 0u64;
    while n < records {
        let k = 10_000.min(records - n);
        let batch: Vec<NewRecord> = (0..k).map(|i| event(&mut rng, n + i)).collect();
        log.append(TOPICS[(n / 10_000) as usize % 2].0, batch)
            .await?;
        n += k;
    }
    let started = Instant::now();
    let (service, token, run) = start_auditor(&log, dir.path(), checkpoint_ms)?;
    let trail = service.trail();
    loop {
        let signed = trail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latest()
            .map_or(0, |c| c.tree_size);
        if signed >= records {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let audit_secs = started.elapsed().as_secs_f64();
    token.cancel();
    run.await??;
    let snapshot = TrailSnapshot::read(&dir.path().join("audit"))?;
    let key = snapshot.own_key.clone().context("the trail has no key")?;
    let started = Instant::now();
    let report = verify(&log, &snapshot, &key).await?;
    let secs = started.elapsed().as_secs_f64();
    if !report.integrity_valid || report.verified_events != records {
        bail!(
            "the benchmark's trail does not verify: {} verified, {:?}",
            report.verified_events,
            report.issues.first()
        );
    }
    Ok(json!({
        "records": records,
        "audit_seconds": audit_secs,
        "audit_per_second": records as f64 / audit_secs,
        "verify_seconds": secs,
        "verify_per_second": records as f64 / secs,
    }))
}
