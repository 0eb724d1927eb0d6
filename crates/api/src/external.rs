//! `POST /api/v1/external/market-data`: closing prices from a price feed,
//! checked at the edge and published on `external.market.data`, where the
//! market-data service merges them into the data mesh's financial product.
//!
//! Body: `{"updates": [{"ticker": "QUAL", "source": "feed-1", "prices":
//! [{"date": "2026-12-03", "close": 181.2}, …]}, …]}`. All or nothing: one
//! bad update and nothing is published (422 naming it).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use ultracore_events::external::MarketPrices;
use ultracore_http::{Principal, Problem};
use ultracore_log::EventLog;

use crate::AppState;

/// Most updates in one request.
pub const MAX_UPDATES: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    updates: Vec<MarketPrices>,
}

pub(crate) async fn publish_market_data<L: EventLog>(
    State(state): State<Arc<AppState<L>>>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Response {
    let body: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return Problem::bad_request(
                "invalid_body",
                format!("the body is not a market-data update: {e}; send {{\"updates\": [{{\"ticker\", \"source\", \"prices\": [{{\"date\", \"close\"}}]}}]}}"),
            )
            .into_response()
        }
    };
    if body.updates.is_empty() || body.updates.len() > MAX_UPDATES {
        return Problem::invalid_field(
            "updates",
            format!(
                "{} updates: send 1 to {MAX_UPDATES} in one request",
                body.updates.len()
            ),
        )
        .into_response();
    }
    // Behind the guard every request has a principal; without one, refuse.
    let Some(Extension(who)) = principal else {
        return Problem::unauthorized("authentication required", "Bearer").into_response();
    };
    match ultracore_flow::publish_prices_as(&state.traced, body.updates, who.id()).await {
        Ok(published) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "topic": ultracore_events::external::MARKET_DATA_TOPIC,
                "published": published,
            })),
        )
            .into_response(),
        Err(ultracore_flow::Error::InvalidPrices { index, invalid, .. }) => Problem::invalid_field(
            format!("updates[{index}].{}", invalid.field),
            invalid.reason,
        )
        .into_response(),
        Err(e) => Problem::unavailable("the event log", e).into_response(),
    }
}
