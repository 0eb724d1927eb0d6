//! The edge over real HTTP: a small router behind the guard, served by
//! `ultracore_http::serve` on 127.0.0.1, probed as a stranger, a browser
//! page of another site, a key of the wrong role or portfolio, a flood and
//! a slow client would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use ultracore_auth::{Authenticator, KeyStore, RateLimit, RateLimiter, Role, Scope};
use ultracore_http::{EdgeConfig, Guard, Principal, ServerLimits, PROBLEM_JSON};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Edge {
    base: String,
    addr: std::net::SocketAddr,
    admin: String,
    viewer: String,
    trader: String,
    _dir: tempfile::TempDir,
}

async fn who(Extension(p): Extension<Principal>) -> String {
    format!("{} {}", p.id(), p.role())
}

/// A few of the server's real route templates, answering who called.
fn app() -> Router {
    Router::new()
        .route("/api/v1/portfolios/{id}", get(who))
        .route("/api/v1/portfolios/{id}/optimizations", post(who))
        .route(
            "/api/v1/events/stream",
            get(|| async {
                // A stream that stays open, like a live event stream.
                axum::body::Body::from_stream(futures::stream::pending::<
                    Result<axum::body::Bytes, std::convert::Infallible>,
                >())
            }),
        )
        .route("/api/v1/decisions", post(who))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(|| async { "# metrics" }))
        .route(
            "/api/v1/unlisted",
            get(|| async { "should not be reachable" }),
        )
        .route(
            "/api/v1/notifications",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
}

async fn start(config: EdgeConfig, limit: RateLimit, limits: ServerLimits) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let key = |role, scope| {
        store
            .create(role, scope, None)
            .unwrap()
            .1
            .expose()
            .to_owned()
    };
    let admin = key(Role::Admin, Scope::All);
    let viewer = key(Role::Viewer, Scope::portfolios(["pf-mine"]).unwrap());
    let trader = key(Role::Trader, Scope::All);
    let guard = Guard::new(
        config,
        Authenticator::new(Arc::new(store)),
        RateLimiter::new(limit).unwrap(),
    );
    let app = guard.protect(app());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ultracore_http::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    Edge {
        base: format!("http://{addr}"),
        addr,
        admin,
        viewer,
        trader,
        _dir: dir,
    }
}

async fn default_edge() -> Edge {
    start(
        EdgeConfig::default(),
        RateLimit::default(),
        ServerLimits::default(),
    )
    .await
}

/// Status, content type and body (parsed when JSON).
async fn send(rb: reqwest::RequestBuilder) -> (u16, String, Value, reqwest::header::HeaderMap) {
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let ctype = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ctype, body, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_get_401_and_roles_and_portfolios_are_enforced() -> TestResult {
    let e = default_edge().await;
    let c = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", e.base);

    let (status, ctype, body, headers) = send(c.get(url("/api/v1/portfolios/pf-mine"))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(ctype, PROBLEM_JSON);
    assert_eq!(body["status"], 401);
    assert_eq!(body["type"], "urn:ultracore:problem:unauthorized");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="ultracore""#);

    let (status, _, body, headers) = send(
        c.get(url("/api/v1/portfolios/pf-mine"))
            .bearer_auth("uck_abcdefghijkl_notthesecret"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(headers["www-authenticate"]
        .to_str()?
        .contains("invalid_token"));

    // Open routes need nothing; unknown paths still need a key.
    assert_eq!(send(c.get(url("/healthz"))).await.0, 200);
    assert_eq!(send(c.get(url("/nothing-here"))).await.0, 401);
    assert_eq!(
        send(c.get(url("/nothing-here")).bearer_auth(&e.admin))
            .await
            .0,
        404
    );

    // The viewer of pf-mine: its portfolio yes, another one 404 (as if it
    // did not exist), changes 403, every portfolio's stream 403.
    let (status, _, body, _) = send(
        c.get(url("/api/v1/portfolios/pf-mine"))
            .bearer_auth(&e.viewer),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_str().unwrap().ends_with(" viewer"), "{body}");
    let (status, _, body, _) = send(
        c.get(url("/api/v1/portfolios/pf-theirs"))
            .bearer_auth(&e.viewer),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, _, body, _) = send(
        c.post(url("/api/v1/portfolios/pf-mine/optimizations"))
            .bearer_auth(&e.viewer)
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("request-optimization"),
        "{body}"
    );
    assert_eq!(
        send(c.get(url("/api/v1/events/stream")).bearer_auth(&e.viewer))
            .await
            .0,
        403
    );
    // A trader may trade but not read metrics; the admin may do both.
    let decide = |key: &str| {
        c.post(url("/api/v1/decisions"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body("{}")
    };
    assert_eq!(send(decide(&e.trader)).await.0, 200);
    assert_eq!(send(decide(&e.viewer)).await.0, 403);
    assert_eq!(
        send(c.get(url("/metrics")).bearer_auth(&e.trader)).await.0,
        403
    );
    assert_eq!(
        send(c.get(url("/metrics")).bearer_auth(&e.admin)).await.0,
        200
    );
    assert_eq!(send(c.get(url("/metrics"))).await.0, 401);

    // A route nobody wrote an access rule for is refused, even to an admin.
    let (status, _, body, _) = send(c.get(url("/api/v1/unlisted")).bearer_auth(&e.admin)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("no access rule"),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_and_foreign_hosts_are_refused() -> TestResult {
    let e = default_edge().await;
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1/portfolios/pf-1/optimizations", e.base);

    // What a web page can send without a preflight: a text/plain form post.
    let (status, ctype, body, _) = send(
        c.post(&url)
            .bearer_auth(&e.admin)
            .header("content-type", "text/plain")
            .body("{\"portfolio\":{}}"),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(ctype, PROBLEM_JSON);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{body}"
    );
    // The same from another site's page: its Origin is refused first.
    let (status, _, body, _) = send(
        c.post(&url)
            .header("origin", "https://evil.example")
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    // DNS rebinding: the page's own name pointing at 127.0.0.1.
    let (status, _, body, _) = send(
        c.get(format!("{}/healthz", e.base))
            .header("host", format!("evil.example:{}", e.addr.port())),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "host_not_allowed");
    // The loopback names are fine, with the server's own origin.
    let (status, _, _, _) = send(
        c.get(format!("{}/healthz", e.base))
            .header("host", format!("localhost:{}", e.addr.port()))
            .header("origin", format!("http://localhost:{}", e.addr.port())),
    )
    .await;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_origins_get_cors_headers_and_preflights() -> TestResult {
    let e = start(
        EdgeConfig {
            cors_origins: vec!["https://console.example".into()],
            ..EdgeConfig::default()
        },
        RateLimit::default(),
        ServerLimits::default(),
    )
    .await;
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1/portfolios/pf-1", e.base);
    let (status, _, _, headers) = send(
        c.request(reqwest::Method::OPTIONS, &url)
            .header("origin", "https://console.example")
            .header("access-control-request-method", "GET"),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://console.example"
    );
    assert!(headers["access-control-allow-headers"]
        .to_str()?
        .contains("authorization"));
    let (status, _, _, headers) = send(
        c.get(&url)
            .header("origin", "https://console.example")
            .bearer_auth(&e.admin),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://console.example"
    );
    let (status, _, _, _) = send(c.get(&url).header("origin", "https://other.example")).await;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_others_go_on() -> TestResult {
    let e = start(
        EdgeConfig::default(),
        RateLimit {
            per_second: 0.5,
            burst: 3,
            max_tracked: 100,
        },
        ServerLimits::default(),
    )
    .await;
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1/portfolios/pf-mine", e.base);
    for _ in 0..3 {
        assert_eq!(send(c.get(&url).bearer_auth(&e.admin)).await.0, 200);
    }
    let (status, ctype, body, headers) = send(c.get(&url).bearer_auth(&e.admin)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(ctype, PROBLEM_JSON);
    let retry: u64 = headers["retry-after"].to_str()?.parse()?;
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Another key has its own budget; health probes are not limited.
    assert_eq!(send(c.get(&url).bearer_auth(&e.viewer)).await.0, 200);
    assert_eq!(send(c.get(format!("{}/healthz", e.base))).await.0, 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handlers_time_out_and_streams_are_capped() -> TestResult {
    let e = start(
        EdgeConfig {
            request_timeout: Duration::from_millis(300),
            max_streams: 1,
            ..EdgeConfig::default()
        },
        RateLimit::default(),
        ServerLimits::default(),
    )
    .await;
    let c = reqwest::Client::new();
    let started = Instant::now();
    let (status, _, body, _) = send(
        c.get(format!("{}/api/v1/notifications", e.base))
            .bearer_auth(&e.admin),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A stream holds its slot while it is open: the second waits its turn.
    let stream = || {
        c.get(format!("{}/api/v1/events/stream", e.base))
            .bearer_auth(&e.admin)
            .send()
    };
    let first = stream().await?;
    assert_eq!(first.status().as_u16(), 200);
    let second = stream().await?;
    assert_eq!(second.status().as_u16(), 503);
    assert!(second.headers().contains_key("retry-after"));
    let body: Value = second.json().await?;
    assert_eq!(body["code"], "too_many_streams", "{body}");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = stream().await?;
        if again.status().as_u16() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Opens a connection and sends half a request header.
async fn half_header(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_while_healthz_answers_past_2000_idle_connections() -> TestResult {
    let e = start(
        EdgeConfig::default(),
        RateLimit::default(),
        ServerLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        },
    )
    .await;
    let mut slow = half_header(e.addr).await;
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(TcpStream::connect(e.addr).await?);
    }
    // With 2,000 idle connections open, health still answers at once.
    let c = reqwest::Client::new();
    let started = Instant::now();
    let (status, _, body, _) = send(c.get(format!("{}/healthz", e.base))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The slow client is disconnected within the header timeout (plus slack).
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the half-sent header kept its connection open"
    );
    drop(idle);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_gets_503_not_silence() -> TestResult {
    let e = start(
        EdgeConfig::default(),
        RateLimit::default(),
        ServerLimits {
            max_connections: 4,
            ..ServerLimits::default()
        },
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(half_header(e.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = TcpStream::connect(e.addr).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("connection limit"), "{text}");
    drop(held);
    Ok(())
}
