//! The API over real HTTP on 127.0.0.1, behind the platform's guard, with
//! every service of the flow running on an embedded log in a temporary
//! directory.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast;
use ultracore_api::{router, spawn_event_tail, AppState};
use ultracore_auth::{Authenticator, KeyStore, RateLimit, RateLimiter, Role, Scope};
use ultracore_es::Database;
use ultracore_flow::{Flow, FlowOptions};
use ultracore_http::{EdgeConfig, Guard};
use ultracore_log::EventLog;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};
use ultracore_marketdata::mesh::{build_products, DataMesh};
use ultracore_marketdata::read_prices_file;

/// One key file for the whole test binary, with an admin key every
/// request of these tests sends, and a viewer key of `pf-view` only.
struct Keys {
    store: Arc<KeyStore>,
    admin: String,
    viewer: String,
    _dir: tempfile::TempDir,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let (_, admin) = store
            .create(Role::Admin, Scope::All, Some("tests"))
            .unwrap();
        let (_, viewer) = store
            .create(Role::Viewer, Scope::portfolios(["pf-view"]).unwrap(), None)
            .unwrap();
        Keys {
            admin: admin.expose().to_owned(),
            viewer: viewer.expose().to_owned(),
            store: Arc::new(store),
            _dir: dir,
        }
    })
}

/// `app` behind the guard, as `ultracore serve` runs it.
fn guarded(app: axum::Router) -> axum::Router {
    let limiter = RateLimiter::new(RateLimit {
        per_second: 10_000.0,
        burst: 10_000,
        ..RateLimit::default()
    })
    .unwrap();
    Guard::new(
        EdgeConfig::default(),
        Authenticator::new(keys().store.clone()),
        limiter,
    )
    .protect(app)
}

fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", keys().admin).parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

struct Server {
    base: String,
    log: EmbeddedLog,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
    let series = read_prices_file(&root.join("sp500_prices.csv"), None).unwrap();
    build_products(&series, &dir.path().join("mesh")).unwrap();
    let mesh = DataMesh::open(dir.path().join("mesh")).unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap();
    let db = Database::open(dir.path(), None).unwrap();
    let flow = Flow::start(log.clone(), db, FlowOptions::all(mesh))
        .await
        .unwrap();
    let (events, _) = broadcast::channel(1024);
    spawn_event_tail(log.clone(), events.clone(), std::future::pending())
        .await
        .unwrap();
    let state = Arc::new(
        AppState::new(
            log.clone(),
            flow.store().clone(),
            flow.live(),
            events,
            vec!["optimization".into(), "reporting".into()],
        )
        .with_runtime(flow.health(), flow.registry()),
    );
    let app = guarded(router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // The flow lives as long as the test's runtime.
    std::mem::forget(flow);
    Server {
        base: format!("http://{addr}"),
        log,
        _dir: dir,
    }
}

fn body(min_esg: f64) -> Value {
    json!({
        "portfolio": {"holdings": [{"ticker": "XOM", "units": 300}, {"ticker": "KO", "units": 400}], "cash": 20000.0},
        "objective": {"kind": "max_sharpe"},
        "constraints": {"min_esg_score": min_esg, "weight_bounds": [0.0, 0.4]},
        "universe": ["MSFT", "JNJ", "PG", "WMT", "AAPL"]
    })
}

async fn get(url: &str) -> (u16, Value) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn until(url: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = get(url).await;
        if status == 200 && ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads an SSE response until a chunk contains `needle`.
async fn sse_until(mut response: reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no '{needle}' in the stream: {seen}"))
            .unwrap()
            .expect("the stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimization_through_the_api() {
    let s = start().await;
    let notifications = client()
        .get(format!("{}/api/v1/notifications/stream", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(notifications.status().as_u16(), 200);
    let events = client()
        .get(format!(
            "{}/api/v1/events/stream?topic=esg-portfolio-events",
            s.base
        ))
        .send()
        .await
        .unwrap();

    let (status, accepted) = post(
        &format!("{}/api/v1/portfolios/pf-api/optimizations", s.base),
        &body(55.0).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "pending");
    let rid = accepted["request_id"].as_str().unwrap().to_owned();

    let done = until(
        &format!("{}/api/v1/optimizations/{rid}", s.base),
        "the completion",
        |v| v["status"] == "completed",
    )
    .await;
    assert_eq!(done["portfolio_id"], "pf-api");
    let weights = done["result"]["weights"].as_object().unwrap();
    let total: f64 = weights.values().map(|w| w.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-6, "weights sum to {total}");
    assert!(done["result"]["explanation"].as_array().unwrap().len() > 1);

    let seen = sse_until(notifications, &rid).await;
    assert!(seen.contains("event: notification"), "{seen}");
    let seen = sse_until(events, "portfolio_optimization_completed").await;
    assert!(seen.contains(&rid), "{seen}");

    let orders = until(
        &format!("{}/api/v1/portfolios/pf-api/orders", s.base),
        "staged orders",
        |v| !v["orders"].as_array().unwrap().is_empty(),
    )
    .await;
    for o in orders["orders"].as_array().unwrap() {
        assert!(o["units"].as_u64().unwrap() >= 1);
        assert_eq!(o["request_id"], rid.as_str());
    }
    // The same orders a page of one at a time, each once, by the cursor.
    let all: Vec<Value> = orders["orders"].as_array().unwrap().clone();
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => format!("{}/api/v1/portfolios/pf-api/orders?limit=1", s.base),
            Some(c) => format!(
                "{}/api/v1/portfolios/pf-api/orders?limit=1&cursor={c}",
                s.base
            ),
        };
        let (status, page) = get(&url).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(page["orders"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(paged.len() <= all.len(), "the cursor does not advance");
    }
    assert_eq!(paged, all);
    let (status, e) = get(&format!(
        "{}/api/v1/portfolios/pf-api/orders?cursor=..%2F..%2Fx",
        s.base
    ))
    .await;
    assert_eq!((status, e["field"].as_str()), (400, Some("cursor")), "{e}");
    let portfolio = until(
        &format!("{}/api/v1/portfolios/pf-api", s.base),
        "the portfolio's orders in its history",
        |v| v["status"] == "orders_staged",
    )
    .await;
    let types: Vec<&str> = portfolio["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "optimization_requested",
            "optimization_completed",
            "orders_staged"
        ]
    );
    let (status, first) = get(&format!("{}/api/v1/portfolios/pf-api?version=1", s.base)).await;
    assert_eq!(status, 200);
    assert_eq!(first["status"], "optimization_pending");
    assert_eq!(first["history"].as_array().unwrap().len(), 1);

    let (status, list) = get(&format!(
        "{}/api/v1/notifications?portfolio_id=pf-api",
        s.base
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["notifications"][0]["request_id"], rid.as_str());
    assert_eq!(list["notifications"][0]["kind"], "optimization_completed");

    let (status, health) = get(&format!("{}/healthz", s.base)).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    // A viewer of another portfolio sees none of it: the request, the
    // portfolio and its orders are 404, the notifications list is empty.
    let base = s.base.clone();
    let viewer = |path: String| {
        let base = base.clone();
        async move {
            let r = reqwest::Client::new()
                .get(format!("{base}{path}"))
                .bearer_auth(&keys().viewer)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for path in [
        format!("/api/v1/optimizations/{rid}"),
        "/api/v1/portfolios/pf-api".to_owned(),
        "/api/v1/portfolios/pf-api/orders".to_owned(),
        "/api/v1/notifications?portfolio_id=pf-api".to_owned(),
    ] {
        let (status, body) = viewer(path.clone()).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, list) = viewer("/api/v1/notifications".to_owned()).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["notifications"], json!([]), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_the_field_and_nothing_is_published() {
    let s = start().await;
    let topic = ultracore_esg::TOPIC;
    let before = s.log.describe_topic(topic).await.unwrap().records();
    let url = format!("{}/api/v1/portfolios/pf-bad/optimizations", s.base);

    let (status, e) = post(&url, "{not json").await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("invalid_json")),
        "{e}"
    );

    let mut negative_cash = body(50.0);
    negative_cash["portfolio"]["cash"] = json!(-5.0);
    let (status, e) = post(&url, &negative_cash.to_string()).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["field"], "portfolio.cash");

    let mut unknown = body(50.0);
    unknown["constraints"]["min_esg"] = json!(50);
    let (status, e) = post(&url, &unknown.to_string()).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["field"], "constraints.min_esg");
    assert!(
        e["detail"].as_str().unwrap().contains("unknown field"),
        "{e}"
    );

    // Finite but absurd, and past what a float holds: 422 naming the field.
    let mut huge = body(50.0);
    huge["portfolio"]["holdings"][0]["units"] = json!(1e300);
    let (status, e) = post(&url, &huge.to_string()).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["field"], "portfolio.holdings[0].units", "{e}");
    let overflow = body(50.0).to_string().replace("20000.0", "1e400");
    let (status, e) = post(&url, &overflow).await;
    assert!(
        (status == 422 && e["field"] == "portfolio.cash") || status == 400,
        "{status} {e}"
    );

    let mut wrong_type = body(50.0);
    wrong_type["portfolio"]["holdings"][0]["units"] = json!("many");
    let (status, e) = post(&url, &wrong_type.to_string()).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["field"], "portfolio.holdings[0].units");

    let mut other = body(50.0);
    other["portfolio_id"] = json!("pf-other");
    let (status, e) = post(&url, &other.to_string()).await;
    assert_eq!(
        (status, e["field"].as_str()),
        (422, Some("portfolio_id")),
        "{e}"
    );

    let (status, e) = post(
        &format!("{}/api/v1/portfolios/bad%20id!/optimizations", s.base),
        &body(50.0).to_string(),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("invalid_id")),
        "{e}"
    );

    let (status, e) = get(&format!("{}/api/v1/optimizations/not-a-uuid", s.base)).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("invalid_id")),
        "{e}"
    );
    let (status, _) = get(&format!(
        "{}/api/v1/optimizations/0190f7a2-3c4d-7e5f-8a9b-0c1d2e3f4a5b",
        s.base
    ))
    .await;
    assert_eq!(status, 404);
    let (status, _) = get(&format!("{}/api/v1/portfolios/pf-nobody", s.base)).await;
    assert_eq!(status, 404);
    let (status, e) = get(&format!(
        "{}/api/v1/portfolios/pf-x?as_of=yesterday",
        s.base
    ))
    .await;
    assert_eq!(status, 400, "{e}");
    let (status, e) = get(&format!("{}/api/v1/notifications?limit=0", s.base)).await;
    assert_eq!(status, 400, "{e}");
    let (status, e) = get(&format!("{}/api/v1/events/stream?topic=secrets", s.base)).await;
    assert_eq!(status, 400, "{e}");

    let after = s.log.describe_topic(topic).await.unwrap().records();
    assert_eq!(before, after, "a refused request published something");

    // An infeasible but well-formed request is accepted, then fails with the field.
    let (status, accepted) = post(&url, &body(99.0).to_string()).await;
    assert_eq!(status, 202);
    let rid = accepted["request_id"].as_str().unwrap();
    let failed = until(
        &format!("{}/api/v1/optimizations/{rid}", s.base),
        "the failure",
        |v| v["status"] == "failed",
    )
    .await;
    assert_eq!(failed["failure"]["field"], "constraints.min_esg_score");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let s = start().await;
    let (status, doc) = get(&format!("{}/api/v1/openapi.json", s.base)).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let src = include_str!("../src/lib.rs");
    let mut routes = 0;
    for call in src.split(".route(").skip(1) {
        let path = call.split('"').nth(1).unwrap();
        assert!(
            paths.contains_key(path),
            "{path} is routed but not documented"
        );
        routes += 1;
    }
    for path in paths.keys() {
        let here = src.contains(&format!("\"{path}\""));
        assert!(
            here || ultracore_api::MOUNTED_ELSEWHERE.contains(&path.as_str()),
            "{path} is documented but routed nowhere"
        );
    }
    assert_eq!(routes + ultracore_api::MOUNTED_ELSEWHERE.len(), paths.len());
    let (status, e) = get(&format!("{}/api/v1/nothing-here", s.base)).await;
    assert_eq!(status, 404, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_metrics_come_from_the_supervisor() {
    let server = start().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(&format!("{}/readyz", server.base)).await;
        if status == 200 {
            assert_eq!(body["ready"], true);
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, health) = get(&format!("{}/healthz", server.base)).await;
    assert_eq!(status, 200, "{health}");
    let names: Vec<&str> = health["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for service in ["optimization", "reporting", "execution", "notification"] {
        assert!(names.contains(&service), "{names:?}");
    }
    let text = client()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "ultracore_service_up{service=\"optimization\"} 1",
        "ultracore_consumer_lag_records{group=\"optimization-service\",topic=\"esg-portfolio-events\",partition=\"0\"}",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_service_turns_healthz_503_naming_it() {
    use ultracore_runtime::{Registration, ServiceError, Supervisor, SupervisorOptions};
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap();
    let db = Database::open(dir.path(), None).unwrap();
    let store = ultracore_es::EventStore::new(log.clone(), db, Default::default()).unwrap();
    let mut supervisor = Supervisor::new(
        Default::default(),
        SupervisorOptions {
            failure_linger: Duration::from_secs(30),
            ..SupervisorOptions::default()
        },
    );
    supervisor.add(Registration::task("audit", |_ctx| async {
        Err(ServiceError::other("the audit store is corrupt"))
    }));
    let (health, registry) = (supervisor.health(), supervisor.registry());
    tokio::spawn(supervisor.run(std::future::pending()));
    let (live, _) = broadcast::channel(1);
    let (events, _) = broadcast::channel(1);
    let state = Arc::new(
        AppState::new(log, store, live, events, vec!["audit".into()])
            .with_runtime(health, registry),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = guarded(router(state));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&format!("http://{addr}/healthz")).await;
        if status == 503 {
            assert_eq!(
                body["problems"][0], "service audit failed: the audit store is corrupt",
                "{body}"
            );
            assert_eq!(body["status"], "failing");
            break;
        }
        assert!(Instant::now() < deadline, "still {status}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
