//! The HTTP surface: `GET /api/v1/forensics/{decision_id}` and `GET /metrics`.
//!
//! [`router`] returns a plain `axum::Router` with its state applied, so a
//! server can merge it with other routers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ultracore_http::Problem;

use crate::metrics::EmitterStatsSource;
use crate::{parse_decision_id, Error, ForensicsMetrics, StoreReader};

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

/// The forensics routes:
///
/// - `GET /api/v1/forensics/{decision_id}`: 200 with the stored explanation
///   (see [`crate::report`]); 400 when the id is not a UUID, saying what a
///   valid id looks like; 404 when no explanation is stored for it; 503 when
///   the store cannot be read.
/// - `GET /metrics`: Prometheus text format 0.0.4.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/forensics/{decision_id}", get(explanation))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The explanation route alone, for a server whose one `/metrics` renders
/// a registry (register [`ApiState::collector`] in it).
pub fn api_router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/forensics/{decision_id}", get(explanation))
        .with_state(state)
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
    // SQLite reads block; keep them off the async workers.
    let found = tokio::task::spawn_blocking(move || store.get(id))
        .await
        .map_err(|e| Error::Pipeline(format!("the store reader task failed: {e}")))??;
    match found {
        Some(stored) => Ok(Json(stored.to_json()).into_response()),
        None => Err(Problem::not_found(format!(
            "no explanation is stored for decision {id}: the id is unknown, not explained yet (see {}), or older than the retention",
            crate::metrics::CONSUMER_LAG_SECONDS
        ))),
    }
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
