//! The HTTP surface: one explanation, the listing, the statistics (see
//! [`router`]) and `GET /metrics`.
//!
//! [`router`] returns a plain `axum::Router` with its state applied, so a
//! server can merge it with other routers.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ultracore_http::Problem;

use crate::metrics::EmitterStatsSource;
use crate::{
    days_param, parse_decision_id, since_days, Error, ForensicsMetrics, ForensicsQuery,
    InvalidParameter, Page, RegimeStats, StoreReader, SymbolStats,
};

/// What the routes need: readers of the store, the service's metrics and,
/// optionally, the decision emitter's statistics.
#[derive(Clone)]
pub struct ApiState {
    store: StoreReader,
    metrics: Arc<ForensicsMetrics>,
    emitter: Option<EmitterStatsSource>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store.path())
            .field("emitter", &self.emitter.is_some())
            .finish()
    }
}

impl ApiState {
    pub fn new(store: StoreReader, metrics: Arc<ForensicsMetrics>) -> Self {
        ApiState {
            store,
            metrics,
            emitter: None,
        }
    }

    /// Adds the decision emitter's breaker, failure and spool metrics to
    /// `/metrics`, e.g. `.with_emitter(Arc::new(move || emitter.stats()))`.
    pub fn with_emitter(mut self, emitter: EmitterStatsSource) -> Self {
        self.emitter = Some(emitter);
        self
    }
}

/// The forensics routes. Every one answers JSON, or an
/// `application/problem+json` error: 400 naming the bad parameter (`field`)
/// and what to send, 503 when the store cannot be read.
///
/// - `GET /api/v1/forensics/{decision_id}`: 200 with the stored explanation
///   (see [`crate::report`]); 400 when the id is not a UUID, saying what a
///   valid id looks like; 404 when no explanation is stored for it.
/// - `GET /api/v1/forensics?symbol=&action=&start_time=&end_time=&limit=&offset=`:
///   the stored decisions, newest first, as a [`Page`] (`total` counts every
///   match); parameters as [`ForensicsQuery::from_params`] reads them. Each
///   record's `latency_ms` is how long the decision service took to decide
///   (the decision's `latency_us` / 1000), `null` for decisions published
///   without one.
/// - `GET /api/v1/forensics/symbols/{symbol}/stats?days=N`: [`SymbolStats`]
///   over the last `days` days (1 to 365, default 7); `latency_ms` is
///   `{"avg", "p95"}` (milliseconds, nearest-rank p95) over the window's
///   decisions that carry a latency, both `null` when none does.
/// - `GET /api/v1/forensics/regimes?days=N`: [`RegimeStats`] over the last
///   `days` days.
/// - `GET /metrics`: Prometheus text format 0.0.4.
pub fn router(state: ApiState) -> Router {
    api_routes()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The routes of [`router`] but `/metrics`, for a server whose one
/// `/metrics` renders a registry (register [`ApiState::collector`] in it).
pub fn api_router(state: ApiState) -> Router {
    api_routes().with_state(state)
}

fn api_routes() -> Router<ApiState> {
    // The static segments (`symbols`, `regimes`) take precedence over the
    // `{decision_id}` capture, which is a UUID anyway.
    Router::new()
        .route("/api/v1/forensics", get(list))
        .route("/api/v1/forensics/regimes", get(regimes))
        .route(
            "/api/v1/forensics/symbols/{symbol}/stats",
            get(symbol_stats),
        )
        .route("/api/v1/forensics/{decision_id}", get(explanation))
}

impl ApiState {
    /// This service's families (and the emitter's, when given) as a
    /// collector of a process-wide registry.
    pub fn collector(&self) -> impl Fn(&mut ultracore_metrics::Exposition) + Send + Sync + 'static {
        let (metrics, emitter) = (self.metrics.clone(), self.emitter.clone());
        move |out| {
            let stats = emitter.as_ref().map(|f| f());
            out.raw(&metrics.render(stats.as_ref()));
        }
    }
}

/// An error answer: problem+json ([`ultracore_http::Problem`]).
pub type ApiError = Problem;

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        Problem::unavailable("the forensics store cannot be read", e)
    }
}

async fn explanation(
    State(state): State<ApiState>,
    Path(decision_id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(id) = parse_decision_id(&decision_id) else {
        return Err(Problem::bad_request(
            "invalid_id",
            format!(
                "'{}' is not a decision id: a decision id is a UUID, e.g. 0190f7a2-0000-7000-8000-000000000001 (36 characters, hyphenated) or the same 32 hex digits without hyphens",
                decision_id.chars().take(80).collect::<String>()
            ),
        ));
    };
    let store = state.store.clone();
    match blocking(move || store.get(id)).await? {
        Some(stored) => Ok(Json(stored.to_json()).into_response()),
        None => Err(Problem::not_found(format!(
            "no explanation is stored for decision {id}: the id is unknown, not explained yet (see {}), or older than the retention",
            crate::metrics::CONSUMER_LAG_SECONDS
        ))),
    }
}

impl From<InvalidParameter> for Problem {
    fn from(e: InvalidParameter) -> Self {
        Problem::bad_request("invalid_query", e.detail).with_field(e.parameter)
    }
}

/// The query's decoded pairs; a query string that does not decode is a 400.
fn pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    query.map(|Query(pairs)| pairs).map_err(|e| {
        Problem::bad_request(
            "invalid_query",
            format!("the query string does not decode ({e}): send name=value pairs joined by &, percent-encoded"),
        )
    })
}

fn refs(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Runs a blocking store read off the async workers (SQLite reads block).
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| Error::Pipeline(format!("the store reader task failed: {e}")))??)
}

async fn list(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let q = ForensicsQuery::from_params(refs(&pairs(query)?))?;
    let store = state.store.clone();
    Ok(Json(blocking(move || store.query(&q)).await?))
}

async fn symbol_stats(
    State(state): State<ApiState>,
    Path(symbol): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<SymbolStats>, ApiError> {
    let days = days_param(refs(&pairs(query)?))?;
    let since = since_days(days, chrono::Utc::now().timestamp_millis());
    let store = state.store.clone();
    Ok(Json(
        blocking(move || store.symbol_stats(&symbol, since)).await?,
    ))
}

async fn regimes(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<RegimeStats>, ApiError> {
    let days = days_param(refs(&pairs(query)?))?;
    let since = since_days(days, chrono::Utc::now().timestamp_millis());
    let store = state.store.clone();
    Ok(Json(blocking(move || store.regime_stats(since)).await?))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let emitter = state.emitter.as_ref().map(|f| f());
    let body = state.metrics.render(emitter.as_ref());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
