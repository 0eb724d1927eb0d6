//! An export of the trail for someone without the server: the records of a
//! time window, each with its inclusion proof in the tree of the latest
//! checkpoint, and that checkpoint. A verifier needs nothing else (the
//! Python one written beside them uses only its standard library, and
//! `cryptography` for the Ed25519 signature when it is installed).
//!
//! | file | what |
//! |---|---|
//! | `checkpoint.json` | `tree_size`, `root_hash`, `note` (the signed note), `verifier_key`, `origin` |
//! | `records.jsonl` | one record a line: `topic`, `partition`, `offset`, `timestamp`, `key` (base64 or null), `headers` ([{`key`, `value` (base64)}]), `value` (base64), `leaf_index`, `tree_size`, `audit_path` (base64, from the leaf's sibling up) |
//! | `verify_export.py` | the verifier: `python3 verify_export.py DIR [--key VKEY]` |

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;
use ultracore_log::EventLog;

use crate::merkle::Nodes;
use crate::note::NoteVerifier;
use crate::verify::{read_log, TrailSnapshot, VerifyError};

/// The Python verifier of an export.
pub const PYTHON_VERIFIER: &str = include_str!("../../../tools/audit_verify_export.py");

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    /// Records written with their proofs.
    pub records: u64,
    /// Records in the window past the latest checkpoint (not exported:
    /// nothing signed covers them yet).
    pub unsigned: u64,
    /// Records in the window that are not in the trail.
    pub not_audited: u64,
    pub tree_size: u64,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no signed checkpoint in the trail yet: nothing can be proven")]
    NoCheckpoint,
    #[error("the latest checkpoint does not verify: {0}")]
    BadCheckpoint(String),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Exports the records with `from <= timestamp < to` (milliseconds) into `out`.
pub async fn export<L: EventLog>(
    log: &L,
    trail: &TrailSnapshot,
    verifier: &NoteVerifier,
    from: i64,
    to: i64,
    out: &Path,
) -> Result<ExportReport, ExportError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    let latest = trail
        .checkpoints
        .last()
        .ok_or(ExportError::NoCheckpoint)?
        .clone();
    let (note, checkpoint) = latest
        .parse()
        .map_err(|e| ExportError::BadCheckpoint(e.to_string()))?;
    verifier
        .verify(&note)
        .map_err(|e| ExportError::BadCheckpoint(e.to_string()))?;
    let size = checkpoint.size;
    if size > trail.leaves.len() as u64 {
        return Err(ExportError::BadCheckpoint(format!(
            "it covers {size} leaves; the trail holds {}",
            trail.leaves.len()
        )));
    }
    let tree = trail.tree(size);
    if tree.root() != checkpoint.root {
        return Err(ExportError::BadCheckpoint(
            "the trail's leaves do not have its root: run `ultracore audit verify`".into(),
        ));
    }
    ultracore_log::files::create_dir_all(out).map_err(io(out))?;
    let cp_path = out.join("checkpoint.json");
    let cp = json!({
        "tree_size": latest.tree_size,
        "root_hash": latest.root_hash,
        "note": latest.note,
        "verifier_key": verifier.to_vkey(),
        "origin": checkpoint.origin,
    });
    ultracore_log::files::write(
        &cp_path,
        format!(
            "{}\n",
            serde_json::to_string_pretty(&cp).unwrap_or_default()
        )
        .as_bytes(),
    )
    .map_err(io(&cp_path))?;
    let script = out.join("verify_export.py");
    ultracore_log::files::write(&script, PYTHON_VERIFIER.as_bytes()).map_err(io(&script))?;
    let records_path = out.join("records.jsonl");
    let file = ultracore_log::files::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&records_path)
        .map_err(io(&records_path))?;
    let mut w = std::io::BufWriter::new(file);
    let mut report = ExportReport {
        records: 0,
        unsigned: 0,
        not_audited: 0,
        tree_size: size,
    };
    let mut failed: Option<std::io::Error> = None;
    read_log(log, |r| {
        if r.timestamp < from || r.timestamp >= to || failed.is_some() {
            return;
        }
        let Some(index) = trail.index.leaf_of(&r.topic, r.partition, r.offset) else {
            report.not_audited += 1;
            return;
        };
        if index >= size {
            report.unsigned += 1;
            return;
        }
        let path = match tree.inclusion_proof(index, size) {
            Ok(p) => p,
            Err(_) => return,
        };
        let line = json!({
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "key": r.key.as_ref().map(|k| B64.encode(k)),
            "headers": r.headers.iter().map(|h| json!({"key": h.key, "value": B64.encode(&h.value)})).collect::<Vec<_>>(),
            "value": B64.encode(&r.value),
            "leaf_index": index,
            "tree_size": size,
            "audit_path": path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        });
        if let Err(e) = writeln!(w, "{line}") {
            failed = Some(e);
            return;
        }
        report.records += 1;
    })
    .await?;
    if let Some(e) = failed {
        return Err(io(&records_path)(e));
    }
    w.flush().map_err(io(&records_path))?;
    w.get_ref().sync_all().map_err(io(&records_path))?;
    Ok(report)
}
