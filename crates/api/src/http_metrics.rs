//! HTTP requests and their latency, per route and status, for every route
//! of the server (a middleware over the whole router).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ultracore_metrics::{CounterVec, HistogramVec, Registry, LATENCY_BUCKETS};

/// Requests answered, by route template, method and status.
pub const HTTP_REQUESTS_TOTAL: &str = "ultracore_http_requests_total";
/// Time to answer (to the response's head; a stream counts until it starts).
pub const HTTP_REQUEST_SECONDS: &str = "ultracore_http_request_seconds";

/// The HTTP families.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Arc<CounterVec>,
    seconds: Arc<HistogramVec>,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Arc<Self> {
        Arc::new(HttpMetrics {
            requests: registry.family(
                HTTP_REQUESTS_TOTAL,
                CounterVec::new(
                    HTTP_REQUESTS_TOTAL,
                    "HTTP requests answered, by route template, method and status.",
                    &["route", "method", "status"],
                ),
            ),
            seconds: registry.family(
                HTTP_REQUEST_SECONDS,
                HistogramVec::new(
                    HTTP_REQUEST_SECONDS,
                    "Time to answer an HTTP request (to the response head), by route template and method.",
                    &["route", "method"],
                    LATENCY_BUCKETS,
                ),
            ),
        })
    }
}

/// The middleware: `router.layer(axum::middleware::from_fn_with_state(metrics, track_requests))`.
/// Routes are labelled by their template (`/api/v1/portfolios/{id}`), never
/// by the raw path, so an id cannot grow the series without bound; paths no
/// route matched count as `unmatched`.
pub async fn track_requests(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics
        .seconds
        .with(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    metrics.requests.with(&[&route, &method, &status]).inc();
    response
}
