//! The HTTP API under `/api/v1` (axum), over any [`EventLog`].
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | `/api/v1/portfolios/{id}/optimizations` | publish a request → 202 `{status: "pending", request_id}` |
//! | GET | `/api/v1/optimizations/{request_id}` | status and result (reporting read model) |
//! | GET | `/api/v1/portfolios/{id}` | the Portfolio aggregate: state and history (`?as_of=`, `?version=`) |
//! | GET | `/api/v1/portfolios/{id}/orders` | staged orders (order status read model) |
//! | GET | `/api/v1/notifications` | stored notifications, newest first |
//! | GET | `/api/v1/notifications/stream` | notifications as they are stored (SSE) |
//! | GET | `/api/v1/alerts` | compliance alerts, newest first |
//! | GET | `/api/v1/alerts/stream` | compliance alerts as they are stored (SSE) |
//! | GET | `/api/v1/events/stream` | live events of the log (SSE, `?topic=`) |
//! | POST | `/api/v1/external/market-data` | closing prices from a feed → `external.market.data` (202) |
//! | GET | `/healthz` | liveness and the services' state (503 naming a failed service) |
//! | GET | `/readyz` | 200 once every consumer joined its group and caught up, 503 before |
//! | GET | `/metrics` | every family of the process's registry (when it has one) |
//! | GET | `/api/v1/openapi.json` | the OpenAPI 3.1 document |
//!
//! Every route but `/healthz` and `/readyz` needs `Authorization: Bearer`
//! and a role that grants it (see `ultracore_http::ROUTES`); a key scoped
//! to some portfolios sees only those (404 for others). Serve the router
//! behind `ultracore_http::Guard`, which also refuses foreign `Host`s and
//! origins and non-JSON POSTs.
//!
//! Errors are RFC 9457 `application/problem+json` (`type`, `title`,
//! `status`, `detail`, `field` when one is at fault): 400 (not JSON,
//! malformed ids), 404, 409 (a request id reused for another request), 422
//! (a field with a bad value); nothing is published for them.
//!
//! # Layout
//!
//! - `error`: [`ApiError`], the problem+json error body.
//! - `routes`: the handlers.
//! - `external`: the market-data endpoint.
//! - `live`: the live event tail and the SSE streams.
//! - `openapi`: the OpenAPI document.
//! - `http_metrics`: requests and latency per route and status.

// The OpenAPI document is one deeply nested `json!`.
#![recursion_limit = "256"]

mod error;
mod external;
mod http_metrics;
mod live;
mod openapi;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::broadcast;
use ultracore_es::EventStore;
use ultracore_flow::{Notification, Notifications, Orders, Reports};
use ultracore_log::EventLog;
use ultracore_runtime::{Health, Lineage, Registry, TraceContext, Traced, Tracer};

/// The name the API's publishes are recorded under.
pub const API_SERVICE: &str = "http-api";

/// Runs each request that carries a valid `traceparent` (W3C Trace
/// Context) inside the caller's trace, so the events it publishes continue
/// it; without one, each event the request publishes starts a trace.
pub async fn trace_requests(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ctx = req
        .headers()
        .get(TraceContext::HEADER)
        .and_then(|v| TraceContext::from_header(v.as_bytes()));
    match ctx {
        Some(ctx) => ultracore_runtime::trace::scope(ctx, next.run(req)).await,
        None => next.run(req).await,
    }
}
use uuid::Uuid;

pub use error::ApiError;
pub use http_metrics::{track_requests, HttpMetrics};
pub use live::{spawn_event_tail, LiveEvent, LIVE_TOPICS};
pub use openapi::{openapi, MOUNTED_ELSEWHERE};

/// What the handlers share.
#[derive(Debug)]
pub struct AppState<L: EventLog> {
    pub log: L,
    /// The log as the API publishes to it: recorded in the lineage as the
    /// `http-api` service and traced (each request's events carry a
    /// `traceparent`, a child of the caller's when it sent one).
    pub traced: Traced<L>,
    pub store: EventStore<L>,
    pub reports: Reports,
    pub orders: Orders,
    pub notifications: Notifications,
    /// Notifications as they are stored (from the notification service).
    pub live_notifications: broadcast::Sender<Notification>,
    pub alerts: ultracore_flow::Alerts,
    /// Compliance alerts as they are stored (from the notification service).
    pub live_alerts: broadcast::Sender<ultracore_events::compliance::ComplianceAlert>,
    /// Envelopes as they are appended (from [`spawn_event_tail`]).
    pub live_events: broadcast::Sender<LiveEvent>,
    /// The services running in this process, for `/healthz`.
    pub services: Vec<String>,
    /// Requests published by this process, so a GET right after the POST
    /// says pending and a reused request id is recognized.
    pub(crate) submitted: Submitted,
    pub(crate) health: Mutex<Option<String>>,
    /// The supervisor's health (services, checks) and the process's metrics.
    pub(crate) runtime: Option<(Health, Registry)>,
}

impl<L: EventLog> AppState<L> {
    pub fn new(
        log: L,
        store: EventStore<L>,
        live_notifications: broadcast::Sender<Notification>,
        live_events: broadcast::Sender<LiveEvent>,
        services: Vec<String>,
    ) -> Self {
        let db = store.database().clone();
        AppState {
            traced: Traced::new(log.clone(), Lineage::new(), API_SERVICE),
            log,
            store,
            reports: Reports::new(db.clone()),
            orders: Orders::new(db.clone()),
            notifications: Notifications::new(db.clone()),
            live_notifications,
            alerts: ultracore_flow::Alerts::new(db),
            live_alerts: broadcast::channel(16).0,
            live_events,
            services,
            submitted: Submitted::default(),
            health: Mutex::new(None),
            runtime: None,
        }
    }

    /// Alerts stream from `live` (the flow's `live_alerts`).
    pub fn with_alerts(
        mut self,
        live: broadcast::Sender<ultracore_events::compliance::ComplianceAlert>,
    ) -> Self {
        self.live_alerts = live;
        self
    }

    /// The API's publishes are recorded in `lineage` and traced by `tracer`
    /// (the supervisor's, so the console shows them with the services').
    pub fn with_tracing(mut self, lineage: Lineage, tracer: Tracer) -> Self {
        self.traced = Traced::new(self.log.clone(), lineage, API_SERVICE).with_tracer(tracer);
        self
    }

    /// `/healthz` and `/readyz` answer from the supervisor's `health`, and
    /// `/metrics` renders `registry`.
    pub fn with_runtime(mut self, health: Health, registry: Registry) -> Self {
        self.runtime = Some((health, registry));
        self
    }

    /// Request ids remembered by this process (bounded; a metric).
    pub fn submitted_len(&self) -> usize {
        self.submitted.len()
    }

    /// Marks the process unhealthy (a service stopped): `/healthz` answers 503 with the reason.
    pub fn set_unhealthy(&self, reason: impl Into<String>) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.into());
    }
}

/// Requests this process published: request id → (portfolio, fingerprint
/// of the request). Bounded: past [`Submitted::CAPACITY`] it starts over
/// (the read model answers for older ones).
#[derive(Debug, Default)]
pub(crate) struct Submitted(Mutex<HashMap<Uuid, (String, u64)>>);

impl Submitted {
    pub(crate) const CAPACITY: usize = 100_000;

    /// A hash of the request's canonical JSON: equal requests, equal prints.
    pub(crate) fn fingerprint(request: &ultracore_esg::OptimizationRequest) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        serde_json::to_string(request)
            .unwrap_or_default()
            .hash(&mut h);
        h.finish()
    }

    pub(crate) fn insert(&self, id: Uuid, portfolio: String, fingerprint: u64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(id, (portfolio, fingerprint));
    }

    pub(crate) fn get(&self, id: &Uuid) -> Option<(String, u64)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// How many are remembered (a metric).
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The API's routes, with `state`. Merge other routers (decisions,
/// forensics, MCP) into it before serving.
pub fn router<L: EventLog>(state: Arc<AppState<L>>) -> Router {
    Router::new()
        .route(
            "/api/v1/portfolios/{id}/optimizations",
            post(routes::request_optimization::<L>),
        )
        .route(
            "/api/v1/optimizations/{request_id}",
            get(routes::get_optimization::<L>),
        )
        .route("/api/v1/portfolios/{id}", get(routes::get_portfolio::<L>))
        .route(
            "/api/v1/portfolios/{id}/orders",
            get(routes::get_orders::<L>),
        )
        .route("/api/v1/notifications", get(routes::get_notifications::<L>))
        .route(
            "/api/v1/notifications/stream",
            get(live::notification_stream::<L>),
        )
        .route("/api/v1/alerts", get(routes::get_alerts::<L>))
        .route("/api/v1/alerts/stream", get(live::alert_stream::<L>))
        .route("/api/v1/events/stream", get(live::event_stream::<L>))
        .route(
            "/api/v1/external/market-data",
            post(external::publish_market_data::<L>),
        )
        .route("/healthz", get(routes::healthz::<L>))
        .route("/readyz", get(routes::readyz::<L>))
        .route("/metrics", get(routes::metrics::<L>))
        .route("/api/v1/openapi.json", get(routes::openapi_json))
        .fallback(routes::not_found)
        .with_state(state)
}
