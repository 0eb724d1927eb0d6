//! `ultracore audit verify | key | export | witness`: the audit trail,
//! offline (no server needed).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use ultracore_audit::{read_checkpoints, verify, NoteVerifier, TrailSnapshot, VerifyReport};
use ultracore_log_any::{Access, AnyLog};

use crate::output::{clip, table};
use crate::LogArgs;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every record's leaf from the log and check it against the
    /// trail and its signed checkpoints; exits non-zero naming the first
    /// bad record (topic, partition, offset) and what is wrong with it.
    ///
    /// Example: ultracore --data-dir /var/lib/ultracore audit verify --key "$(cat audit.vkey)"
    Verify(VerifyArgs),
    /// Write the records of a time window with their inclusion proofs and
    /// the checkpoint that covers them, plus `verify_export.py`, a verifier
    /// that needs only Python (and `cryptography` for the signature).
    ///
    /// Example: ultracore audit export --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z --out audit-2026-01 && python3 audit-2026-01/verify_export.py audit-2026-01
    Export(ExportArgs),
    /// Witness the trail: fetch its latest checkpoint, check that it extends
    /// the last one this witness cosigned (a consistency proof), and add
    /// this witness's cosignature. Run it from another machine against the
    /// server, or beside the trail.
    ///
    /// Example: ULTRACORE_API_KEY=… ultracore audit witness --server http://10.0.0.5:8080 --log-key "$(cat audit.vkey)" --key-file witness.key --state witness.json
    Witness(WitnessArgs),
    /// Print the verifier key of the trail's checkpoints (C2SP vkey format).
    ///
    /// Example: ultracore audit key > audit.vkey
    Key {
        #[command(flatten)]
        trail: TrailArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct TrailArg {
    /// The trail's directory [default: DATA_DIR/audit].
    #[arg(long, value_name = "DIR")]
    trail: Option<PathBuf>,
}

impl TrailArg {
    fn dir(&self, args: &LogArgs) -> PathBuf {
        self.trail
            .clone()
            .unwrap_or_else(|| args.config().data_dir().join("audit"))
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    trail: TrailArg,
    /// Checkpoints to check against, one JSON object a line as the trail
    /// writes them [default: the trail's own checkpoints.jsonl]: keep a
    /// copy away from the server and check against it.
    #[arg(long, value_name = "FILE")]
    checkpoints: Option<PathBuf>,
    /// The verifier key you trust (`ultracore audit key` printed it when
    /// the trail began) [default: the trail's own key, which someone with
    /// the disk could have replaced].
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    trail: TrailArg,
    /// First instant (RFC 3339, or milliseconds since the epoch), included.
    #[arg(long, value_parser = parse_instant)]
    from: i64,
    /// Last instant, excluded.
    #[arg(long, value_parser = parse_instant)]
    to: i64,
    /// The directory to write (created).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The verifier key the checkpoint must verify with [default: the trail's own].
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct WitnessArgs {
    #[command(flatten)]
    trail: TrailArg,
    /// The server to witness (`http://host:port`, with ULTRACORE_API_KEY of
    /// an auditor key) [default: the trail's directory on this machine].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The verifier key of the log this witness follows.
    #[arg(long, value_name = "VKEY")]
    log_key: String,
    /// This witness's signing key (created when missing) [default: DATA_DIR/witness.key].
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The name of a new witness key.
    #[arg(long, default_value = "witness.local", value_name = "NAME")]
    name: String,
    /// The last checkpoint this witness cosigned [default: DATA_DIR/witness.json].
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn parse_instant(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            format!(
                "'{s}' is neither RFC 3339 (2026-01-31T00:00:00Z) nor milliseconds since the epoch"
            )
        })
}

pub async fn run(args: &LogArgs, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Export(a) => export_command(args, a).await,
        AuditCommand::Witness(a) => witness_command(args, a).await,
        AuditCommand::Verify(a) => verify_command(args, a).await,
        AuditCommand::Key { trail, json } => {
            let dir = trail.dir(args);
            let key = own_key(&dir)?;
            if json {
                println!(
                    "{}",
                    json!({"verifier_key": key.to_vkey(), "origin": key.name()})
                );
            } else {
                println!("{}", key.to_vkey());
            }
            Ok(())
        }
    }
}

fn own_key(dir: &Path) -> Result<NoteVerifier> {
    let path = dir.join("signing.key");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: no audit trail there yet (`ultracore serve` starts one) or pass --trail",
            path.display()
        )
    })?;
    Ok(ultracore_audit::NoteSigner::from_skey(&text)
        .with_context(|| format!("reading {}", path.display()))?
        .verifier())
}

fn verifier(key: Option<&str>, snapshot: &TrailSnapshot, quiet: bool) -> Result<NoteVerifier> {
    match key {
        Some(k) => Ok(NoteVerifier::parse(k).context("--key")?),
        None => {
            let key = snapshot
                .own_key
                .clone()
                .context("the trail's signing key cannot be read; pass --key")?;
            if !quiet {
                eprintln!(
                    "checking signatures with the trail's own key {}; pass --key with the key you recorded to rule out a replaced key",
                    key.to_vkey()
                );
            }
            Ok(key)
        }
    }
}

async fn export_command(args: &LogArgs, a: ExportArgs) -> Result<()> {
    if a.from >= a.to {
        bail!("--from must be before --to");
    }
    let snapshot = TrailSnapshot::read(&a.trail.dir(args))?;
    let verifier = verifier(a.key.as_deref(), &snapshot, a.json)?;
    let log = AnyLog::open(&args.config(), Access::ReadOnly).await?;
    let report = ultracore_audit::export(&log, &snapshot, &verifier, a.from, a.to, &a.out).await?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} records with their proofs in the tree of {} leaves written to {}",
            report.records,
            report.tree_size,
            a.out.display()
        );
        if report.unsigned > 0 {
            println!(
                "{} records of the window are newer than the latest checkpoint and were left out: export again after the next one",
                report.unsigned
            );
        }
        if report.not_audited > 0 {
            println!(
                "{} records of the window are not in the trail yet",
                report.not_audited
            );
        }
        println!(
            "check it anywhere: python3 {}/verify_export.py {} --key '{}'",
            a.out.display(),
            a.out.display(),
            verifier.to_vkey()
        );
    }
    Ok(())
}

/// The latest checkpoint's note and the consistency proof to it from `from` leaves.
async fn fetch_checkpoint(
    args: &LogArgs,
    a: &WitnessArgs,
    from: Option<u64>,
) -> Result<(String, Vec<ultracore_audit::Hash>)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    match &a.server {
        Some(url) => {
            let key = std::env::var("ULTRACORE_API_KEY").ok();
            let cp = http_get_json(url, "/api/v1/audit/checkpoint", key.as_deref()).await?;
            let note = cp["note"]
                .as_str()
                .context("the server's checkpoint has no note")?
                .to_owned();
            let size = cp["tree_size"].as_u64().unwrap_or(0);
            let mut proof = Vec::new();
            if let Some(first) = from.filter(|f| *f > 0 && *f < size) {
                let p = http_get_json(
                    url,
                    &format!("/api/v1/audit/consistency?first={first}&second={size}"),
                    key.as_deref(),
                )
                .await?;
                for h in p["consistency"].as_array().into_iter().flatten() {
                    let bytes = b64.decode(h.as_str().unwrap_or_default())?;
                    proof.push(
                        ultracore_audit::Hash::try_from(bytes.as_slice())
                            .map_err(|_| anyhow::anyhow!("a proof hash is not 32 bytes"))?,
                    );
                }
            }
            Ok((note, proof))
        }
        None => {
            let snapshot = TrailSnapshot::read(&a.trail.dir(args))?;
            let latest = snapshot
                .checkpoints
                .last()
                .context("the trail has signed no checkpoint yet")?
                .clone();
            let size = latest.tree_size;
            let mut proof = Vec::new();
            if let Some(first) = from.filter(|f| *f > 0 && *f < size) {
                use ultracore_audit::Nodes;
                let tree = snapshot.tree(size);
                proof = tree
                    .consistency_proof(first, size.min(tree.size()))
                    .context("the trail holds fewer leaves than its checkpoint")?;
            }
            Ok((latest.note, proof))
        }
    }
}

/// GET `path` of a server (plain HTTP) as JSON.
async fn http_get_json(base: &str, path: &str, key: Option<&str>) -> Result<serde_json::Value> {
    if !base.starts_with("http://") {
        bail!("--server {base}: only http:// is spoken here; run the witness where it reaches the server over plain HTTP (a private network or an SSH tunnel)");
    }
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(30))
        .header("accept", "application/json");
    if let Some(k) = key {
        request = request.bearer_auth(k);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("GET {path}: {}: {}", status.as_u16(), body.trim());
    }
    Ok(serde_json::from_str(&body)?)
}

async fn witness_command(args: &LogArgs, a: WitnessArgs) -> Result<()> {
    use ultracore_audit::{NoteSigner, WitnessState};
    let data = args.config().data_dir();
    let key_file = a
        .key_file
        .clone()
        .unwrap_or_else(|| data.join("witness.key"));
    let state_file = a.state.clone().unwrap_or_else(|| data.join("witness.json"));
    let log_key = NoteVerifier::parse(&a.log_key).context("--log-key")?;
    let signer = if key_file.exists() {
        let text = std::fs::read_to_string(&key_file)
            .with_context(|| format!("reading {}", key_file.display()))?;
        NoteSigner::from_skey(&text).with_context(|| format!("reading {}", key_file.display()))?
    } else {
        let signer = NoteSigner::generate(&a.name)?;
        if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
            ultracore_log::files::create_dir_all(dir)?;
        }
        ultracore_log::files::write(&key_file, format!("{}\n", signer.to_skey()).as_bytes())
            .with_context(|| format!("writing {}", key_file.display()))?;
        eprintln!(
            "created the witness key {} ({}); its cosignatures verify with:\n\n  {}\n",
            a.name,
            key_file.display(),
            signer.cosignature_verifier().to_vkey()
        );
        signer
    };
    let seen: Option<WitnessState> = match std::fs::read_to_string(&state_file) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .with_context(|| format!("reading the witness state {}", state_file.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", state_file.display())),
    };
    let (note, proof) = fetch_checkpoint(args, &a, seen.as_ref().map(|s| s.tree_size)).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (cosigned, checkpoint) =
        ultracore_audit::witness(&signer, &log_key, seen.as_ref(), &note, &proof, now)
            .context("refusing to cosign")?;
    let state = WitnessState::new(&cosigned, &checkpoint);
    let tmp = state_file.with_extension("json.tmp");
    ultracore_log::files::write(&tmp, serde_json::to_string_pretty(&state)?.as_bytes())?;
    std::fs::rename(&tmp, &state_file)
        .with_context(|| format!("writing {}", state_file.display()))?;
    if a.json {
        println!(
            "{}",
            json!({
                "tree_size": checkpoint.size,
                "previous_size": seen.as_ref().map(|s| s.tree_size),
                "note": cosigned.text(),
                "witness_key": signer.cosignature_verifier().to_vkey(),
            })
        );
    } else {
        eprintln!(
            "cosigned the checkpoint of {} leaves{}",
            checkpoint.size,
            seen.map(|s| format!(" (consistent with {} before)", s.tree_size))
                .unwrap_or_default()
        );
        print!("{}", cosigned.text());
    }
    Ok(())
}

async fn verify_command(args: &LogArgs, a: VerifyArgs) -> Result<()> {
    let dir = a.trail.dir(args);
    let mut snapshot = TrailSnapshot::read(&dir)?;
    if let Some(file) = &a.checkpoints {
        snapshot.checkpoints = read_checkpoints(file)?;
    }
    let verifier = verifier(a.key.as_deref(), &snapshot, a.json)?;
    let log = AnyLog::open(&args.config(), Access::ReadOnly).await?;
    let started = std::time::Instant::now();
    let report = verify(&log, &snapshot, &verifier).await?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["verifier_key"] = json!(verifier.to_vkey());
        v["seconds"] = json!(secs);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_report(&report, secs);
    }
    match report.issues.first() {
        None => Ok(()),
        Some(first) => bail!(
            "the audit trail does not verify: {} issue(s); the first: {} at {}/{}@{}: {}",
            report.issues.len(),
            first.kind,
            first.topic,
            first.partition,
            first.offset,
            first.detail
        ),
    }
}

fn print_report(r: &VerifyReport, secs: f64) {
    let rate = r.verified_events as f64 / secs.max(1e-9);
    let rows = vec![
        vec!["records verified".into(), r.verified_events.to_string()],
        vec!["leaves in the trail".into(), r.tree_size.to_string()],
        vec![
            "signed (latest valid checkpoint)".into(),
            r.signed_size.to_string(),
        ],
        vec!["checkpoints".into(), r.checkpoints.to_string()],
        vec!["expired (retention)".into(), r.expired.to_string()],
        vec!["not yet audited".into(), r.not_yet_audited.to_string()],
        vec!["issues".into(), r.issues.len().to_string()],
        vec!["seconds".into(), format!("{secs:.2}")],
        vec!["records/s".into(), format!("{rate:.0}")],
    ];
    println!("{}", table(&["check", ">count"], &rows));
    if r.issues.is_empty() {
        println!("integrity valid: every record has the leaf the trail signed");
        return;
    }
    let rows: Vec<Vec<String>> = r
        .issues
        .iter()
        .take(20)
        .map(|i| {
            vec![
                i.kind.to_string(),
                i.topic.clone(),
                i.partition.to_string(),
                i.offset.to_string(),
                i.leaf.map_or("-".into(), |l| l.to_string()),
                clip(&i.detail, 90),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["kind", "topic", ">partition", ">offset", ">leaf", "detail"],
            &rows
        )
    );
    if r.issues.len() > 20 {
        println!("… and {} more (--json lists all)", r.issues.len() - 20);
    }
}
