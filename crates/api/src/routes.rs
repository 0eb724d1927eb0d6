use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use ultracore_es::Cut;
use ultracore_esg::OptimizationRequest;
use ultracore_flow::Portfolio;
use ultracore_http::{Principal, Scope};
use ultracore_log::EventLog;
use uuid::Uuid;

use crate::{ApiError, AppState, Submitted};

type Shared<L> = State<Arc<AppState<L>>>;

/// Runs a blocking read-model call off the async workers; its failure (or
/// the task's) is a 503 saying `what` failed.
async fn off_workers<T, E>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::unavailable(what, e))?
        .map_err(|e| ApiError::unavailable(what, e))
}

/// Portfolio ids: 1-64 of letters, digits, `-`, `_`, `.`.
fn portfolio_id(id: &str) -> Result<&str, ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(id)
    } else {
        Err(ApiError::bad_request(
            "invalid_id",
            format!("portfolio id '{id}' is invalid: use 1 to 64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

fn request_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!(
                "'{id}' is not a request id: use the UUID the POST answered with \
                 (e.g. 0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b)"
            ),
        )
    })
}

/// `POST /api/v1/portfolios/{id}/optimizations`
pub(crate) async fn request_optimization<L: EventLog>(
    State(state): Shared<L>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let pid = portfolio_id(&id)?.to_owned();
    let mut value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not JSON ({e}); send an optimization request object"),
        )
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object with at least `portfolio`",
        ));
    };
    match obj.get("portfolio_id") {
        None => {
            obj.insert("portfolio_id".into(), json!(pid));
        }
        Some(Value::String(s)) if *s == pid => {}
        Some(other) => {
            return Err(ApiError::invalid_field(
                "portfolio_id",
                format!("{other} differs from the portfolio in the path ('{pid}'); leave it out"),
            ))
        }
    }
    let caller_id = obj.contains_key("request_id");
    if !caller_id {
        obj.insert("request_id".into(), json!(Uuid::now_v7()));
    }
    let request: OptimizationRequest = serde_path_to_error::deserialize(&value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let reason = e.into_inner().to_string();
        if field.is_empty() {
            ApiError::invalid_field("(body)", reason)
        } else {
            ApiError::invalid_field(field, reason)
        }
    })?;
    ultracore_esg::validate(&request).map_err(|f| {
        ApiError::invalid_field(f.field.unwrap_or_else(|| "(body)".into()), f.reason)
    })?;
    let request_id = request.request_id;
    let fingerprint = Submitted::fingerprint(&request);
    let replay = if caller_id {
        reused_request_id(&state, request_id, &pid, fingerprint, &request).await?
    } else {
        false
    };
    if !replay {
        ultracore_flow::submit_as(&state.traced, request, principal.id())
            .await
            .map_err(|e| ApiError::unavailable("publishing the request failed", e))?;
        state.submitted.insert(request_id, pid.clone(), fingerprint);
    }
    let location = format!("/api/v1/optimizations/{request_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(json!({
            "status": "pending",
            "request_id": request_id,
            "portfolio_id": pid,
            "links": {"result": location, "portfolio": format!("/api/v1/portfolios/{pid}")},
        })),
    )
        .into_response())
}

/// Whether a request id the caller chose was used before: `Ok(true)` for
/// the same request again (answered like the first time, published once),
/// 409 for another portfolio or another body, `Ok(false)` for a new id.
///
/// Requests this process published are compared in full; older ones (from
/// the reporting read model) by portfolio and objective.
async fn reused_request_id<L: EventLog>(
    state: &AppState<L>,
    rid: Uuid,
    pid: &str,
    fingerprint: u64,
    request: &OptimizationRequest,
) -> Result<bool, ApiError> {
    let conflict = || {
        ApiError::conflict(format!(
            "request id {rid} was already used for another request; send this one with a new request id (or none, and one is made)"
        ))
        .with_field("request_id")
    };
    if let Some((first_pid, first_print)) = state.submitted.get(&rid) {
        return if first_pid == pid && first_print == fingerprint {
            Ok(true)
        } else {
            Err(conflict())
        };
    }
    let reports = state.reports.clone();
    let view = off_workers("reading the reporting read model failed", move || {
        reports.optimization(rid)
    })
    .await?;
    match view {
        None => Ok(false),
        Some(v)
            if v.portfolio_id == pid && v.objective.as_ref() == Some(&json!(request.objective)) =>
        {
            Ok(true)
        }
        Some(_) => Err(conflict()),
    }
}

/// `GET /api/v1/optimizations/{request_id}`
pub(crate) async fn get_optimization<L: EventLog>(
    State(state): Shared<L>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rid = request_id(&id)?;
    let unknown = || {
        ApiError::not_found(format!(
            "no optimization request {rid} is known: check the id the POST answered with"
        ))
    };
    let reports = state.reports.clone();
    let view = off_workers("reading the reporting read model failed", move || {
        reports.optimization(rid)
    })
    .await?;
    if let Some(view) = view {
        if !principal.can_access_portfolio(&view.portfolio_id) {
            return Err(unknown());
        }
        return Ok(Json(json!(view)));
    }
    match state.submitted.get(&rid) {
        Some((pid, _)) if principal.can_access_portfolio(&pid) => Ok(Json(
            json!({"request_id": rid, "portfolio_id": pid, "status": "pending"}),
        )),
        _ => Err(unknown()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PortfolioQuery {
    /// State as of this time (RFC 3339).
    as_of: Option<String>,
    /// State after this version.
    version: Option<u64>,
}

/// `GET /api/v1/portfolios/{id}`
pub(crate) async fn get_portfolio<L: EventLog>(
    State(state): Shared<L>,
    Path(id): Path<String>,
    Query(q): Query<PortfolioQuery>,
) -> Result<Json<Value>, ApiError> {
    let pid = portfolio_id(&id)?;
    let cut = match (&q.as_of, q.version) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give either as_of or version, not both",
            ))
        }
        (Some(t), None) => Cut::AsOf(t.parse::<DateTime<Utc>>().map_err(|e| {
            ApiError::bad_request(
                "invalid_query",
                format!("as_of '{t}' is not an RFC 3339 time ({e}), e.g. 2026-01-02T15:04:05Z"),
            )
        })?),
        (None, Some(v)) => Cut::Version(v),
        (None, None) => Cut::Latest,
    };
    let loaded = state
        .store
        .load_at::<Portfolio>(pid, cut)
        .await
        .map_err(|e| ApiError::unavailable("loading the portfolio failed", e))?;
    if loaded.version == 0 {
        return Err(ApiError::not_found(format!(
            "portfolio '{pid}' has no events{}: request an optimization for it first",
            if matches!(cut, Cut::Latest) {
                ""
            } else {
                " at that point"
            }
        )));
    }
    let history = state
        .store
        .history::<Portfolio>(pid, cut)
        .await
        .map_err(|e| ApiError::unavailable("reading the portfolio's history failed", e))?;
    let history: Vec<Value> = history
        .iter()
        .map(|e| {
            let payload = ultracore_log::EventFamily::to_payload(&e.payload);
            let request = payload
                .get("request_id")
                .or_else(|| payload.pointer("/result/request_id"))
                .or_else(|| payload.pointer("/staged/request_id"))
                .cloned()
                .unwrap_or(Value::Null);
            json!({
                "version": e.version, "event_type": e.event_type, "timestamp": e.timestamp,
                "event_id": e.event_id, "request_id": request, "correlation_id": e.correlation_id,
            })
        })
        .collect();
    let summary = state
        .reports
        .portfolio(pid)
        .map_err(|e| ApiError::unavailable("reading the reporting read model failed", e))?;
    Ok(Json(json!({
        "portfolio_id": pid,
        "version": loaded.version,
        "status": loaded.state.status(),
        "state": loaded.state,
        "history": history,
        "report": summary,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    portfolio_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

impl PageQuery {
    /// `limit` (1 to 1000, default 50) and `cursor` (as a page handed it out).
    fn page(&self) -> Result<(usize, Option<&str>), ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit {limit} is out of range: use 1 to 1000"),
            )
            .with_field("limit"));
        }
        if let Some(c) = self
            .cursor
            .as_deref()
            .filter(|c| !ultracore_flow::is_cursor(c))
        {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "cursor '{}' is not one this API handed out: pass the next_cursor of the page before, or none for the first page",
                    c.chars().take(80).collect::<String>()
                ),
            )
            .with_field("cursor"));
        }
        Ok((limit, self.cursor.as_deref()))
    }
}

/// `GET /api/v1/portfolios/{id}/orders`: newest first, a page at a time.
pub(crate) async fn get_orders<L: EventLog>(
    State(state): Shared<L>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let pid = portfolio_id(&id)?.to_owned();
    let (limit, cursor) = q.page()?;
    let (read, key, cursor) = (state.orders.clone(), pid.clone(), cursor.map(str::to_owned));
    // SQLite reads block: off the async workers.
    let page = off_workers("reading the order read model failed", move || {
        read.page(&key, cursor.as_deref(), limit)
    })
    .await?;
    Ok(Json(
        json!({"portfolio_id": pid, "orders": page.items, "next_cursor": page.next_cursor}),
    ))
}

/// `GET /api/v1/notifications`: of the key's portfolios only, newest
/// first, a page at a time.
pub(crate) async fn get_notifications<L: EventLog>(
    State(state): Shared<L>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let (limit, cursor) = q.page()?;
    let portfolios: Option<Vec<String>> = match (&q.portfolio_id, principal.scope()) {
        (Some(p), _) => {
            portfolio_id(p)?;
            if !principal.can_access_portfolio(p) {
                return Err(ApiError::not_found(format!(
                    "portfolio '{p}' is not found for this key"
                )));
            }
            Some(vec![p.clone()])
        }
        (None, Scope::All) => None,
        (None, Scope::Portfolios(ids)) => Some(ids.iter().cloned().collect()),
        (None, Scope::None) => Some(Vec::new()),
    };
    let (notifications, cursor) = (state.notifications.clone(), cursor.map(str::to_owned));
    let page = off_workers("reading notifications failed", move || {
        notifications.page(portfolios.as_deref(), cursor.as_deref(), limit)
    })
    .await?;
    Ok(Json(
        json!({"notifications": page.items, "next_cursor": page.next_cursor}),
    ))
}

/// `GET /api/v1/alerts`: compliance alerts, newest first, a page at a time.
pub(crate) async fn get_alerts<L: EventLog>(
    State(state): Shared<L>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    if q.portfolio_id.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "alerts are not kept by portfolio: leave portfolio_id out",
        )
        .with_field("portfolio_id"));
    }
    let (limit, cursor) = q.page()?;
    let (alerts, cursor) = (state.alerts.clone(), cursor.map(str::to_owned));
    let page = off_workers("reading compliance alerts failed", move || {
        alerts.page(cursor.as_deref(), limit)
    })
    .await?;
    Ok(Json(
        json!({"alerts": page.items, "next_cursor": page.next_cursor}),
    ))
}

/// `GET /healthz`: 200 while every service runs and every check passes;
/// 503 naming the failed service or check and why.
pub(crate) async fn healthz<L: EventLog>(State(state): Shared<L>) -> Response {
    let problem = state
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some((health, _)) = &state.runtime {
        // Checks may touch the disk: off the async workers.
        let health = health.clone();
        let report = match tokio::task::spawn_blocking(move || health.report()).await {
            Ok(r) => r,
            Err(e) => return ApiError::unavailable("the health check failed", e).into_response(),
        };
        let mut problems = report.problems;
        problems.extend(problem);
        let status = if problems.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = json!({
            "status": if problems.is_empty() { "ok" } else { "failing" },
            "services": report.services,
            "problems": problems,
            "reason": problems.first(),
        });
        return (status, Json(body)).into_response();
    }
    match problem {
        None => Json(json!({"status": "ok", "services": state.services})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failing", "services": state.services, "reason": reason})),
        )
            .into_response(),
    }
}

/// `GET /readyz`: 200 once every consumer has joined its group and caught
/// up; 503 listing the services still waiting.
pub(crate) async fn readyz<L: EventLog>(State(state): Shared<L>) -> Response {
    let Some((health, _)) = &state.runtime else {
        return Json(json!({"ready": true, "waiting": []})).into_response();
    };
    let r = health.readiness();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r)).into_response()
}

/// `GET /metrics`: the process's registry in Prometheus text format.
pub(crate) async fn metrics<L: EventLog>(State(state): Shared<L>) -> Response {
    let Some((_, registry)) = &state.runtime else {
        return ApiError::not_found("this server has no metrics registry").into_response();
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        registry.render(),
    )
        .into_response()
}

/// `GET /api/v1/openapi.json`
pub(crate) async fn openapi_json() -> Json<Value> {
    Json(crate::openapi())
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint: see /api/v1/openapi.json for the API")
}
