//! The analytics routes. [`router`] returns a plain `axum::Router` with its
//! state applied, so a server can merge it with other routers (and put its
//! authentication and limits in front).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use ultracore_http::Problem;

use super::{valid_agent_id, AgentAnalytics, AgentReport, Summary, UserChanges, SERVICE_GROUP};

/// Every agent's figures.
pub const SUMMARY_ROUTE: &str = "/api/v1/analytics/agents";
/// One agent's figures and trends.
pub const AGENT_ROUTE: &str = "/api/v1/analytics/agents/{agent_id}";
/// The changes to users (from `db.changes.users`) and their trends.
pub const USERS_ROUTE: &str = "/api/v1/analytics/users";

/// The analytics routes (shapes and errors in the module documentation of
/// [`crate::analytics`]):
///
/// - `GET /api/v1/analytics/agents`: 200 with a [`Summary`].
/// - `GET /api/v1/analytics/agents/{agent_id}`: 200 with an
///   [`AgentReport`] as of now; 400 when the id is not a valid agent id;
///   404 when no execution of the agent is stored.
/// - `GET /api/v1/analytics/users`: 200 with the [`UserChanges`] as of now.
///
/// Each answers 503 when the store cannot be read.
pub fn router(reader: Arc<AgentAnalytics>) -> Router {
    Router::new()
        .route(SUMMARY_ROUTE, get(summary))
        .route(AGENT_ROUTE, get(agent))
        .route(USERS_ROUTE, get(users))
        .with_state(reader)
}

/// Runs a store read off the async workers (SQLite blocks); its failure,
/// or the task's, is a 503.
async fn off_workers<T: Send + 'static>(
    f: impl FnOnce() -> super::Result<T> + Send + 'static,
) -> Result<T, Problem> {
    const WHAT: &str = "the agent analytics store cannot be read";
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::unavailable(WHAT, e))?
        .map_err(|e| Problem::unavailable(WHAT, e))
}

async fn summary(State(reader): State<Arc<AgentAnalytics>>) -> Result<Json<Summary>, Problem> {
    off_workers(move || reader.summary()).await.map(Json)
}

async fn users(State(reader): State<Arc<AgentAnalytics>>) -> Result<Json<UserChanges>, Problem> {
    let now = Utc::now();
    off_workers(move || reader.users(now)).await.map(Json)
}

async fn agent(
    State(reader): State<Arc<AgentAnalytics>>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentReport>, Problem> {
    if !valid_agent_id(&agent_id) {
        return Err(Problem::bad_request(
            "invalid_id",
            format!(
                "agent id {:?} is invalid: use 1 to 64 letters, digits, '-', '_' or '.' (e.g. card)",
                agent_id.chars().take(80).collect::<String>()
            ),
        )
        .with_field("agent_id"));
    }
    let now = Utc::now();
    let id = agent_id.clone();
    match off_workers(move || reader.agent(&id, now)).await? {
        Some(report) => Ok(Json(report)),
        None => Err(Problem::not_found(format!(
            "no execution of agent '{agent_id}' is stored: it has not run, or its executions are not counted yet (see ultracore_consumer_lag_records{{group=\"{SERVICE_GROUP}\"}})"
        ))),
    }
}
