//! `POST /api/v1/decisions`: one decision over HTTP, the same as
//! `ultracore decide`.
//!
//! | answer | when |
//! |---|---|
//! | 200 and the decision JSON | decided (approved or rejected by risk: see `approved`) |
//! | 400 | the body is not JSON |
//! | 422 | the request is invalid; `field` names it |
//! | 503 | the decision could not be recorded (emitter full or stopped): retry |
//!
//! Errors are problem+json ([`ultracore_http::Problem`]). Behind the
//! platform's guard the caller needs the `trade` permission, and the
//! decision's events record who it was.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use ultracore_http::{Principal, Problem};

use crate::{DecisionRequest, DecisionService, Error};

/// The decision routes, to be merged into the platform's server:
/// `POST /api/v1/decisions`. The service decides and publishes.
pub fn router(service: Arc<DecisionService>) -> Router {
    Router::new()
        .route("/api/v1/decisions", post(decide))
        .with_state(service)
}

async fn decide(
    State(service): State<Arc<DecisionService>>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Problem::bad_request(
                "invalid_json",
                format!("the body is not JSON: {e}; send a decision request object"),
            )
            .into_response()
        }
    };
    let who = principal.as_ref().map(|Extension(p)| p.id());
    let result = DecisionRequest::from_json(&value)
        .map_err(Error::Invalid)
        .and_then(|request| service.decide_as(&request, who));
    match result {
        Ok(decision) => (StatusCode::OK, Json(decision)).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The crate's errors as HTTP answers (problem+json).
#[derive(Debug)]
pub struct ApiError(pub Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.0 {
            Error::Invalid(invalid) => {
                Problem::invalid_field(invalid.field.clone(), invalid.reason.clone())
                    .into_response()
            }
            e @ Error::NotRecorded(_) => Problem {
                retry_after: Some(1),
                ..Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_recorded",
                    e.to_string(),
                )
            }
            .into_response(),
            e => Problem::internal("the decision failed", e).into_response(),
        }
    }
}
