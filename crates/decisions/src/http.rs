//! `POST /api/v1/decisions`: one decision over HTTP, the same as
//! `ultracore decide`.
//!
//! | answer | when |
//! |---|---|
//! | 200 and the decision JSON | decided (approved or rejected by risk: see `approved`) |
//! | 400 `{error}` | the body is not JSON |
//! | 422 `{error, field, reason}` | the request is invalid; `field` names it |
//! | 503 `{error}` | the decision could not be recorded (emitter full or stopped): retry |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::{DecisionRequest, DecisionService, Error};

/// The decision routes, to be merged into the platform's server:
/// `POST /api/v1/decisions`. The service decides and publishes.
pub fn router(service: Arc<DecisionService>) -> Router {
    Router::new()
        .route("/api/v1/decisions", post(decide))
        .with_state(service)
}

async fn decide(State(service): State<Arc<DecisionService>>, body: Bytes) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("the body is not JSON: {e}; send a decision request object")})),
            )
                .into_response()
        }
    };
    let result = DecisionRequest::from_json(&value)
        .map_err(Error::Invalid)
        .and_then(|request| service.decide(&request));
    match result {
        Ok(decision) => (StatusCode::OK, Json(decision)).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The crate's errors as HTTP answers.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.0 {
            Error::Invalid(invalid) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": format!("invalid request: {invalid}"),
                    "field": invalid.field,
                    "reason": invalid.reason,
                })),
            )
                .into_response(),
            e @ Error::NotRecorded(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": e.to_string()})),
            )
                .into_response(),
            e => {
                tracing::error!(error = %e, "decision failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": e.to_string()})),
                )
                    .into_response()
            }
        }
    }
}
