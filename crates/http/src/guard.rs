//! [`Guard`]: the middleware in front of every route. In order:
//!
//! 1. `Host` must be one this server answers to (against DNS rebinding: a
//!    web page cannot drive a loopback server through a name it controls);
//! 2. a request from a browser page of another origin is refused, unless
//!    that origin is configured (then CORS headers are added and preflights
//!    answered);
//! 3. a body of a POST, PUT or PATCH must be `application/json` (415
//!    otherwise: a cross-site `text/plain` form post never reaches a route);
//! 4. the route's row of the access table ([`crate::policy`]): open routes
//!    go straight through; others need `Authorization: Bearer` or the
//!    console's session cookie (401; a browser asking for a page is sent to
//!    `/login` instead), the session's CSRF token on unsafe requests made
//!    with the cookie (403), the row's permission (403), and a key whose
//!    portfolios cover the one in the path (404 otherwise, so other
//!    portfolios' ids stay hidden);
//! 5. the principal's rate limit (429 with `Retry-After`);
//! 6. streams (SSE) take one of a bounded number of slots (503 when full).
//!
//! The [`Principal`] goes into the request's extensions for the handlers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use ultracore_auth::{AuthError, Authenticator, Principal, RateLimiter, Scope, TokenRejection};

use crate::oidc::{JwksSource, OidcSignIn};
use crate::policy::{path_param, policy, Access, Portfolios};
use crate::session::{SessionLimits, Sessions};
use crate::Problem;

/// How the edge treats requests; `serve` fills it from its flags.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Host names (without port) requests may name in `Host`, lowercase.
    /// `*` allows any.
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://console.example.com`) whose pages may call the API;
    /// none by default (CORS off).
    pub cors_origins: Vec<String>,
    /// `/metrics` without credentials (for a scraper on a private network).
    pub public_metrics: bool,
    /// Longest a handler may take to produce its answer's headers.
    pub request_timeout: Duration,
    /// Server-sent event streams open at once, over all keys.
    pub max_streams: usize,
    /// Session cookies are marked `Secure` (the console is reached over
    /// HTTPS, through a proxy that terminates TLS).
    pub secure_cookies: bool,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            allowed_hosts: loopback_hosts(),
            cors_origins: Vec::new(),
            public_metrics: false,
            request_timeout: Duration::from_secs(30),
            max_streams: 256,
            secure_cookies: false,
        }
    }
}

/// The names of this machine's loopback interface.
pub fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]"]
        .map(String::from)
        .to_vec()
}

/// What the middleware shares: the configuration, who is who, the limits.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: EdgeConfig,
    auth: Authenticator,
    limiter: RateLimiter,
    streams: Arc<Semaphore>,
    sessions: Sessions,
    /// OpenID Connect sign-in, when configured (set once, at start).
    oidc: OnceLock<Arc<OidcSignIn>>,
    /// Where the JWT verifier's keys come from when they are fetched: a
    /// token naming an unknown `kid` makes it fetch them again.
    jwks: OnceLock<Arc<JwksSource>>,
}

impl Guard {
    pub fn new(config: EdgeConfig, auth: Authenticator, limiter: RateLimiter) -> Guard {
        let streams = Arc::new(Semaphore::new(config.max_streams));
        Guard {
            inner: Arc::new(Inner {
                config,
                auth,
                limiter,
                streams,
                sessions: Sessions::new(SessionLimits::default()),
                oidc: OnceLock::new(),
                jwks: OnceLock::new(),
            }),
        }
    }

    /// `router` behind the guard. Add it after every route, so that the
    /// matched route is known.
    pub fn protect(&self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), guard))
    }

    pub fn config(&self) -> &EdgeConfig {
        &self.inner.config
    }

    /// The console's sign-in sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// Turns on OpenID Connect sign-in ([`crate::oidc_router`]); once, at
    /// start. Errors: it was already set.
    pub fn set_oidc_sign_in(&self, sign_in: Arc<OidcSignIn>) -> Result<(), Arc<OidcSignIn>> {
        self.inner.oidc.set(sign_in)
    }

    /// The OpenID Connect sign-in, when configured.
    pub fn oidc_sign_in(&self) -> Option<&OidcSignIn> {
        self.inner.oidc.get().map(Arc::as_ref)
    }

    /// The source of the JWT verifier's keys, fetched again (in the
    /// background) when a bearer token names an unknown `kid`; once, at
    /// start. Errors: it was already set.
    pub fn set_jwks_source(&self, source: Arc<JwksSource>) -> Result<(), Arc<JwksSource>> {
        self.inner.jwks.set(source)
    }

    /// Principals whose rate-limit bucket is tracked now (bounded).
    pub fn tracked_principals(&self) -> usize {
        self.inner.limiter.tracked()
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.inner.config.max_streams - self.inner.streams.available_permits()
    }
}

/// The middleware; see the module docs.
pub async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    let config = &g.inner.config;
    if let Err(p) = check_host(req.headers(), &config.allowed_hosts) {
        return p.into_response();
    }
    let cors = match check_origin(req.headers(), &config.cors_origins) {
        Ok(cors) => cors,
        Err(p) => return p.into_response(),
    };
    if let Some(origin) = &cors {
        if req.method() == Method::OPTIONS {
            return with_cors(StatusCode::NO_CONTENT.into_response(), origin, true);
        }
    }
    if let Err(p) = check_content_type(req.method(), req.headers()) {
        return p.into_response();
    }
    let template = match req.extensions().get::<MatchedPath>() {
        Some(m) if m.as_str() == "/mcp" || m.as_str().starts_with("/mcp/") => Some("/mcp"),
        Some(m) => Some(m.as_str()),
        None => None,
    }
    .map(str::to_owned);
    let row = template.as_deref().map(|t| policy(req.method(), t));
    let mut stream_slot = None;
    let response = match row {
        // A route nobody wrote an access rule for: refused, loudly.
        Some(None) => {
            let route = template.unwrap_or_default();
            tracing::error!(method = %req.method(), route, "route has no access rule: refused");
            Problem::forbidden(format!(
                "{} {route} has no access rule on this server, so it is refused",
                req.method()
            ))
            .into_response()
        }
        Some(Some(row)) if row.access == Access::Open => next.run(req).await,
        Some(Some(row)) if row.access == Access::Metrics && config.public_metrics => {
            next.run(req).await
        }
        row => {
            // Unknown paths authenticate too: without a key, nothing about
            // the server's routes is revealed.
            let principal = match authenticate(&g, req.method(), req.headers()) {
                Ok(p) => p,
                Err(p)
                    if wants_page(req.method(), req.headers())
                        && p.status == StatusCode::UNAUTHORIZED =>
                {
                    return to_sign_in(req.uri());
                }
                Err(p) => return with_cors_opt(p.into_response(), cors.as_deref()),
            };
            if let Err(retry) = g.inner.limiter.check(principal.id()) {
                return with_cors_opt(
                    Problem::too_many_requests(retry.header_secs()).into_response(),
                    cors.as_deref(),
                );
            }
            if let Some(Some(row)) = row {
                let path = req.uri().path().to_owned();
                if let Err(p) = authorize(&principal, row, template.as_deref(), &path) {
                    return with_cors_opt(p.into_response(), cors.as_deref());
                }
                if is_stream(req.method(), template.as_deref()) {
                    match g.inner.streams.clone().try_acquire_owned() {
                        Ok(permit) => stream_slot = Some(permit),
                        Err(_) => {
                            return with_cors_opt(
                                Problem {
                                    retry_after: Some(5),
                                    ..Problem::new(
                                        StatusCode::SERVICE_UNAVAILABLE,
                                        "too_many_streams",
                                        format!(
                                            "the server has {} event streams open, its limit: retry later",
                                            config.max_streams
                                        ),
                                    )
                                }
                                .into_response(),
                                cors.as_deref(),
                            );
                        }
                    }
                }
            }
            req.extensions_mut().insert(principal);
            match tokio::time::timeout(config.request_timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    format!(
                        "the request took longer than {} s and was stopped: retry later",
                        config.request_timeout.as_secs()
                    ),
                )
                .into_response(),
            }
        }
    };
    let response = match stream_slot {
        Some(permit) => hold_until_body_ends(response, permit),
        None => response,
    };
    with_cors_opt(response, cors.as_deref())
}

/// The event-stream routes: they hold a stream slot while open.
fn is_stream(method: &Method, template: Option<&str>) -> bool {
    method == Method::GET
        && matches!(
            template,
            Some(
                "/api/v1/notifications/stream"
                    | "/api/v1/alerts/stream"
                    | "/api/v1/events/stream"
                    | "/console/stream"
                    | "/mcp"
            )
        )
}

/// A browser navigating to a page (not a script asking for data).
fn wants_page(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// A page of this server (`/portfolios?x=1`) as a `next` query value:
/// every byte but letters, digits and `/-_.~` percent-encoded.
pub fn encode_next(page: &str) -> String {
    page.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// 303 to the sign-in page, which comes back to `uri` after.
fn to_sign_in(uri: &axum::http::Uri) -> Response {
    let next = encode_next(uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/login?next={next}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn authenticate(g: &Guard, method: &Method, headers: &HeaderMap) -> Result<Principal, Problem> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    if header.is_none() {
        if let Some(id) = crate::session::cookie_value(headers) {
            let keys = g.inner.auth.keys();
            let Some(session) = g.inner.sessions.lookup(id, |k| keys.is_active(k)) else {
                return Err(Problem::unauthorized(
                    "the console session ended (signed out, idle for 30 minutes, 8 hours old, or its key was revoked): sign in again",
                    "Bearer",
                ));
            };
            let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
            if unsafe_method {
                let given = headers
                    .get(crate::session::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok());
                if !crate::session::csrf_matches(&session, given) {
                    return Err(Problem::forbidden(
                        "a request made with the console's session must carry its CSRF token in X-CSRF-Token (from GET /console/session)",
                    ));
                }
            }
            return Ok(session.principal);
        }
    }
    g.inner.auth.authenticate(header).map_err(|e| {
        if let (
            AuthError::Token {
                reason: TokenRejection::UnknownKid,
            },
            Some(source),
        ) = (e, g.inner.jwks.get())
        {
            // The issuer may have rotated its keys: fetch them (rate
            // limited) for the next request; this one is answered now.
            source.refresh_soon_for_unknown_kid();
        }
        tracing::info!(reason = e.reason(), key = ?e.key_id().map(|k| k.as_str().to_owned()), "authentication failed");
        Problem::unauthorized(e.to_string(), e.www_authenticate())
    })
}

/// The row's permission and portfolio rule for `principal`.
fn authorize(
    principal: &Principal,
    row: &crate::RoutePolicy,
    template: Option<&str>,
    path: &str,
) -> Result<(), Problem> {
    let permission = match row.access {
        Access::Open | Access::Authenticated => None,
        Access::Metrics => Some(ultracore_auth::Permission::ReadMetrics),
        Access::Permission(p) => Some(p),
    };
    if let Some(p) = permission {
        principal.require(p).map_err(|f| {
            Problem::forbidden(format!(
                "{f}: ask an administrator for a key with a role that does"
            ))
        })?;
    }
    match row.portfolios {
        Portfolios::Path(param) => {
            let id = template
                .and_then(|t| path_param(t, path, param))
                .unwrap_or_default();
            if !principal.can_access_portfolio(id) {
                return Err(Problem::not_found(format!(
                    "portfolio '{id}' is not found for this key"
                )));
            }
        }
        Portfolios::Every if *principal.scope() != Scope::All => {
            return Err(Problem::forbidden(
                "this key is limited to some portfolios and this route shows every portfolio's data: use a key for all portfolios",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The host part of `Host` (without the port), lowercase.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        // [::1]:8080
        return match host.find(']') {
            Some(end) => host[..=end].to_owned(),
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => host,
    }
}

fn check_host(headers: &HeaderMap, allowed: &[String]) -> Result<(), Problem> {
    if allowed.iter().any(|h| h == "*") {
        return Ok(());
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return Err(Problem::bad_request(
            "host_not_allowed",
            "the request has no Host header",
        ));
    };
    let name = host_name(host);
    if allowed.contains(&name) {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "host_not_allowed",
            format!(
                "this server does not answer to the host '{}'; its operator can allow it with --allowed-host",
                name.chars().take(100).collect::<String>()
            ),
        ))
    }
}

/// `Ok(Some(origin))` for a configured cross origin (CORS headers go on
/// the answer), `Ok(None)` for no `Origin` or the server's own.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<Option<String>, Problem> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    if allowed.iter().any(|o| o.trim_end_matches('/') == origin) {
        return Ok(Some(origin.to_owned()));
    }
    // Same origin: the page was served by this server (scheme://host:port
    // equals what the request addressed).
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let own = origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host));
    if own {
        return Ok(None);
    }
    Err(Problem::forbidden(format!(
        "requests from pages of {} are refused (CORS is off); the server's operator can allow that origin with --cors-origin",
        origin.chars().take(100).collect::<String>()
    )))
}

fn check_content_type(method: &Method, headers: &HeaderMap) -> Result<(), Problem> {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_json = given.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if is_json {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "send the body as JSON with 'Content-Type: application/json' ({} given)",
            given.map_or("none".to_owned(), |g| format!(
                "'{}'",
                g.chars().take(100).collect::<String>()
            ))
        ),
    ))
}

fn with_cors_opt(response: Response, origin: Option<&str>) -> Response {
    match origin {
        Some(o) => with_cors(response, o, false),
        None => response,
    }
}

fn with_cors(mut response: Response, origin: &str, preflight: bool) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(
                "authorization, content-type, mcp-session-id, mcp-protocol-version",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// Keeps `permit` until the response's body is finished or dropped.
fn hold_until_body_ends(response: Response, permit: OwnedSemaphorePermit) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        axum::body::Body::new(Permitted {
            body,
            _permit: permit,
        }),
    )
}

struct Permitted {
    body: axum::body::Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Permitted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        let loopback = loopback_hosts();
        assert!(check_host(&headers(&[("host", "127.0.0.1:8080")]), &loopback).is_ok());
        let e = check_host(&headers(&[("host", "evil.example:8080")]), &loopback).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.detail.contains("evil.example"), "{e}");
        assert!(check_host(&headers(&[]), &loopback).is_err());
        assert!(check_host(&headers(&[("host", "x")]), &["*".into()]).is_ok());
    }

    #[test]
    fn foreign_origins_are_refused_unless_configured() {
        let own = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(check_origin(&own, &[]), Ok(None));
        let foreign = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example"),
        ]);
        assert_eq!(
            check_origin(&foreign, &[]).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            check_origin(&foreign, &["https://evil.example/".into()]),
            Ok(Some("https://evil.example".into()))
        );
        assert_eq!(check_origin(&headers(&[]), &[]), Ok(None));
    }

    #[test]
    fn posts_must_be_json() {
        let post = Method::POST;
        assert!(
            check_content_type(&post, &headers(&[("content-type", "application/json")])).is_ok()
        );
        assert!(check_content_type(
            &post,
            &headers(&[("content-type", "Application/JSON; charset=utf-8")])
        )
        .is_ok());
        let e = check_content_type(&post, &headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(e.detail.contains("'text/plain'"), "{e}");
        assert!(check_content_type(&post, &headers(&[])).is_err());
        assert!(check_content_type(&Method::GET, &headers(&[])).is_ok());
    }
}
