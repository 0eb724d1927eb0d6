//! The audit trail over HTTP (the auditor role's `read-audit`):
//!
//! - `GET /api/v1/audit/checkpoint` → `{tree_size, root_hash, note, verifier_key}`
//! - `GET /api/v1/audit/proof?topic=T&partition=P&offset=O[&tree_size=N]` →
//!   `{leaf_index, tree_size, leaf_hash, audit_path}`
//! - `GET /api/v1/audit/consistency?first=M&second=N` → `{first, second, consistency}`
//! - `POST /api/v1/audit/verify` (body `{}` or `{"verifier_key": "…"}`) →
//!   `{integrity_valid, verified_events, issues: [{topic, partition, offset, kind, detail}], …}`
//!
//! Hashes are base64. Errors are problem+json naming the field at fault.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use ultracore_http::Problem;
use ultracore_log::EventLog;

use crate::note::NoteVerifier;
use crate::service::SharedTrail;
use crate::trail::TrailError;
use crate::verify::{verify, TrailSnapshot};

/// What the routes need: the trail (proofs), its directory (verification
/// reads the files as they are) and the log.
pub struct AuditApi<L> {
    trail: SharedTrail,
    dir: PathBuf,
    log: L,
    /// One verification at a time: each reads the whole log.
    verifying: Arc<tokio::sync::Mutex<()>>,
}

impl<L> std::fmt::Debug for AuditApi<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditApi").field("dir", &self.dir).finish()
    }
}

impl<L: Clone> Clone for AuditApi<L> {
    fn clone(&self) -> Self {
        AuditApi {
            trail: self.trail.clone(),
            dir: self.dir.clone(),
            log: self.log.clone(),
            verifying: self.verifying.clone(),
        }
    }
}

impl<L> AuditApi<L> {
    pub fn new(trail: SharedTrail, dir: impl Into<PathBuf>, log: L) -> Self {
        AuditApi {
            trail,
            dir: dir.into(),
            log,
            verifying: Arc::default(),
        }
    }
}

/// The routes (see the module docs).
pub fn api_router<L: EventLog>(state: AuditApi<L>) -> Router {
    Router::new()
        .route("/api/v1/audit/checkpoint", get(checkpoint::<L>))
        .route("/api/v1/audit/proof", get(proof::<L>))
        .route("/api/v1/audit/consistency", get(consistency::<L>))
        .route("/api/v1/audit/verify", post(verify_route::<L>))
        .with_state(state)
}

fn trail_problem(e: TrailError) -> Problem {
    match e {
        TrailError::NotAudited { .. } => Problem::not_found(e.to_string()),
        TrailError::Store(crate::StoreError::Proof(p)) => {
            Problem::invalid_field("tree_size", p.to_string())
        }
        TrailError::BadRequest(d) => Problem::bad_request("bad_request", d),
        e => Problem::unavailable("the audit trail cannot be read", e),
    }
}

/// A required unsigned integer of the query.
fn number(q: &HashMap<String, String>, field: &str) -> Result<Option<u64>, Problem> {
    match q.get(field) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            Problem::invalid_field(
                field,
                format!("{field} must be a whole number ≥ 0, not '{v}'"),
            )
        }),
    }
}

fn required(q: &HashMap<String, String>, field: &str) -> Result<u64, Problem> {
    number(q, field)?.ok_or_else(|| {
        Problem::bad_request(
            "missing_parameter",
            format!("the query parameter {field} is required"),
        )
        .with_field(field)
    })
}

async fn checkpoint<L: EventLog>(State(s): State<AuditApi<L>>) -> Result<Json<Value>, Problem> {
    let t = s.trail.lock().unwrap_or_else(|p| p.into_inner());
    let latest = t.latest().cloned().ok_or_else(|| {
        Problem::not_found(
            "no checkpoint yet: the auditor signs its first once it has read a record (within its checkpoint interval)",
        )
    })?;
    Ok(Json(json!({
        "tree_size": latest.tree_size,
        "root_hash": latest.root_hash,
        "note": latest.note,
        "verifier_key": t.verifier().to_vkey(),
        "origin": t.origin(),
    })))
}

async fn proof<L: EventLog>(
    State(s): State<AuditApi<L>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    let topic = q.get("topic").filter(|t| !t.is_empty()).ok_or_else(|| {
        Problem::bad_request("missing_parameter", "the query parameter topic is required")
            .with_field("topic")
    })?;
    let partition = required(&q, "partition")?;
    let partition = u32::try_from(partition)
        .map_err(|_| Problem::invalid_field("partition", "partition must be below 2^32"))?;
    let offset = required(&q, "offset")?;
    let tree_size = number(&q, "tree_size")?;
    let t = s.trail.lock().unwrap_or_else(|p| p.into_inner());
    let proof = t
        .inclusion(topic, partition, offset, tree_size)
        .map_err(trail_problem)?;
    Ok(Json(serde_json::to_value(proof).map_err(|e| {
        Problem::internal("the proof does not serialize", e)
    })?))
}

async fn consistency<L: EventLog>(
    State(s): State<AuditApi<L>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    let first = required(&q, "first")?;
    let second = required(&q, "second")?;
    let t = s.trail.lock().unwrap_or_else(|p| p.into_inner());
    if second > t.size() {
        return Err(Problem::invalid_field(
            "second",
            format!(
                "the tree has {} leaves; second must not exceed it",
                t.size()
            ),
        ));
    }
    if first > second {
        return Err(Problem::invalid_field(
            "first",
            format!("first ({first}) must not exceed second ({second})"),
        ));
    }
    let proof = t.consistency(first, second).map_err(trail_problem)?;
    Ok(Json(json!({
        "first": first,
        "second": second,
        "consistency": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    /// The verifier key the caller trusts; the trail's own by default.
    verifier_key: Option<String>,
}

async fn verify_route<L: EventLog>(
    State(s): State<AuditApi<L>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    let body: VerifyBody = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::bad_request(
                "invalid_json",
                format!("the body must be {{}} or {{\"verifier_key\": \"…\"}}: {e}"),
            )
        })?
    };
    let Ok(_one) = s.verifying.try_lock() else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "verification_running",
            "a verification is running; ask again when it is done",
        ));
    };
    let dir = s.dir.clone();
    let snapshot = tokio::task::spawn_blocking(move || TrailSnapshot::read(&dir))
        .await
        .map_err(|e| Problem::internal("reading the trail", e))?
        .map_err(trail_problem)?;
    let verifier = match &body.verifier_key {
        Some(k) => NoteVerifier::parse(k)
            .map_err(|e| Problem::invalid_field("verifier_key", e.to_string()))?,
        None => snapshot
            .own_key
            .clone()
            .ok_or_else(|| Problem::unavailable("the trail's signing key", "it cannot be read"))?,
    };
    let report = verify(&s.log, &snapshot, &verifier)
        .await
        .map_err(|e| Problem::unavailable("the log cannot be read to the end", e))?;
    let mut out = serde_json::to_value(&report)
        .map_err(|e| Problem::internal("the report does not serialize", e))?;
    out["verifier_key"] = json!(verifier.to_vkey());
    Ok(Json(out))
}
