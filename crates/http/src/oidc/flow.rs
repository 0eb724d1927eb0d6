//! The sign-in itself: [`OidcSignIn`] and the routes
//! `GET /console/oidc/login` and `GET /console/oidc/callback`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use ultracore_auth::{AuthError, JwtVerifier, TokenRejection};

use super::provider::{check_url, fetch_error, read_limited, JwksSource, ProviderMetadata};
use super::{OidcError, Result};
use crate::session::set_cookie;
use crate::{Guard, Problem};

/// Where the browser starts a sign-in.
pub const LOGIN_PATH: &str = "/console/oidc/login";
/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/console/oidc/callback";
/// The cookie that binds a pending sign-in to the browser that started it:
/// without it, someone could start a sign-in with their own account and
/// have another person's browser finish it (login CSRF).
const STATE_COOKIE: &str = "uc_oidc_state";
/// The scopes asked for.
const SCOPE: &str = "openid profile email";
/// Token endpoint answers larger than this are refused.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The client secret: never printed, logged or sent anywhere but the token
/// endpoint.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> ClientSecret {
        ClientSecret(secret.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(redacted)")
    }
}

/// The console's registration at the provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer, exactly as in its tokens' `iss`.
    pub issuer: String,
    /// The client id; ID tokens must name it in `aud`.
    pub client_id: String,
    /// `client_secret_basic` with it; `None`: a public client (PKCE alone).
    pub client_secret: Option<ClientSecret>,
    /// This server's callback as the provider knows it
    /// (`https://console.example.com/console/oidc/callback`).
    pub redirect_url: String,
}

/// How many sign-ins may be pending and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// A sign-in not finished within this is forgotten.
    pub ttl: Duration,
    /// Pending sign-ins at once; past it, the oldest is forgotten.
    pub max: usize,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            ttl: Duration::from_secs(10 * 60),
            max: 10_000,
        }
    }
}

/// What the server keeps of a sign-in between the two routes (its values
/// stay out of `Debug`).
struct Pending {
    nonce: String,
    verifier: String,
    next: String,
    started: Instant,
}

/// OpenID Connect sign-in for the console; give it to the guard with
/// [`Guard::set_oidc_sign_in`].
pub struct OidcSignIn {
    settings: OidcSettings,
    authorization: Url,
    token: Url,
    client: reqwest::Client,
    /// Checks ID tokens: the provider's issuer, the client id as audience.
    id_tokens: Arc<JwtVerifier>,
    /// Fetches the keys again when an ID token names an unknown `kid`.
    jwks: Option<Arc<JwksSource>>,
    limits: PendingLimits,
    /// By `state`. A std mutex: it is held for a lookup or an insert,
    /// never across an await.
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for OidcSignIn {
    /// The settings and endpoints; of the pending sign-ins only their
    /// number (their state, nonce and verifier are secrets).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = self.pending.lock().map_or(0, |p| p.len());
        f.debug_struct("OidcSignIn")
            .field("settings", &self.settings)
            .field("authorization", &self.authorization.as_str())
            .field("token", &self.token.as_str())
            .field("limits", &self.limits)
            .field("pending", &pending)
            .finish_non_exhaustive()
    }
}

impl OidcSignIn {
    /// Checks the settings against the provider's metadata: the redirect
    /// URL and the endpoints pass [`check_url`], the verifier is for this
    /// issuer and takes the client id as audience.
    pub fn new(
        settings: OidcSettings,
        provider: &ProviderMetadata,
        client: reqwest::Client,
        id_tokens: Arc<JwtVerifier>,
        jwks: Option<Arc<JwksSource>>,
    ) -> Result<OidcSignIn> {
        if settings.client_id.trim().is_empty() {
            return Err(OidcError::Config {
                reason: "the client id is empty".into(),
            });
        }
        let redirect = check_url("redirect URL", &settings.redirect_url)?;
        if redirect.path() != CALLBACK_PATH {
            return Err(OidcError::Config {
                reason: format!(
                    "the redirect URL {} must end in {CALLBACK_PATH}, where this server answers",
                    settings.redirect_url
                ),
            });
        }
        let config = id_tokens.config();
        if config.issuer != settings.issuer || config.audience != settings.client_id {
            return Err(OidcError::Config {
                reason: "the ID token verifier must take the issuer and the client id as audience"
                    .into(),
            });
        }
        Ok(OidcSignIn {
            authorization: check_url("authorization endpoint", &provider.authorization_endpoint)?,
            token: check_url("token endpoint", &provider.token_endpoint)?,
            settings,
            client,
            id_tokens,
            jwks,
            limits: PendingLimits::default(),
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Other limits for the pending sign-ins (tests).
    pub fn with_limits(mut self, limits: PendingLimits) -> OidcSignIn {
        self.limits = limits;
        self
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Sign-ins started and not yet finished or forgotten.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a sign-in that returns to `next`: its `state` and the URL to
    /// send the browser to.
    fn start(&self, next: String) -> (String, Url) {
        let state = random_b64(32);
        let nonce = random_b64(32);
        // RFC 7636 §4.1: 43 to 128 characters; 32 random bytes give 43.
        let verifier = random_b64(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = self.authorization.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", SCOPE)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.limits.max {
            map.retain(|_, p| now.duration_since(p.started) < self.limits.ttl);
            if map.len() >= self.limits.max {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, p)| p.started)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            state.clone(),
            Pending {
                nonce,
                verifier,
                next,
                started: now,
            },
        );
        (state, url)
    }

    /// The pending sign-in of `state`, forgotten as it is taken; `None`
    /// when unknown, used or older than the limit.
    fn take(&self, state: &str) -> Option<Pending> {
        let p = self.lock().remove(state)?;
        (p.started.elapsed() < self.limits.ttl).then_some(p)
    }

    /// The code for the provider's tokens; the ID token.
    async fn exchange(&self, code: &str, verifier: &str) -> Result<String, Problem> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("code_verifier", verifier),
        ];
        let mut req = self
            .client
            .post(self.token.clone())
            .header(header::ACCEPT.as_str(), "application/json");
        match &self.settings.client_secret {
            // RFC 6749 §2.3.1: both form-encoded, then Basic.
            Some(secret) => {
                let pair = format!(
                    "{}:{}",
                    form_encode(&self.settings.client_id),
                    form_encode(secret.expose())
                );
                req = req.header(
                    header::AUTHORIZATION.as_str(),
                    format!("Basic {}", STANDARD.encode(pair)),
                );
            }
            None => form.push(("client_id", self.settings.client_id.as_str())),
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let url = self.token.as_str();
        let resp = req
            .header(
                header::CONTENT_TYPE.as_str(),
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let e = fetch_error(url, &e);
                tracing::warn!(error = %e, "OIDC sign-in: token endpoint unreachable");
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "identity_provider_unreachable",
                    "the identity provider's token endpoint could not be reached: try again later",
                )
            })?;
        let status = resp.status();
        let bytes = read_limited(resp, url, MAX_TOKEN_RESPONSE_BYTES)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "OIDC sign-in: token endpoint answer unreadable");
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "identity_provider_error",
                    "the identity provider's token endpoint gave an unreadable answer",
                )
            })?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes).unwrap_or_default();
        if !status.is_success() {
            let error = answer
                .error
                .as_deref()
                .map_or_else(|| "no error code".to_owned(), clean);
            let described = answer
                .error_description
                .as_deref()
                .map(|d| format!(": {}", clean(d)))
                .unwrap_or_default();
            tracing::info!(
                status = status.as_u16(),
                error,
                "OIDC sign-in: the token endpoint refused the code"
            );
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "code_refused",
                format!(
                    "the identity provider refused to exchange the sign-in code ({error}{described}): sign in again"
                ),
            ));
        }
        answer.id_token.ok_or_else(|| {
            tracing::warn!("OIDC sign-in: the token endpoint answered without an id_token");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "identity_provider_error",
                "the identity provider answered without an ID token (is the scope 'openid' allowed for this client?)",
            )
        })
    }

    /// The ID token checked like a pasted token, plus its nonce; an
    /// unknown `kid` fetches the provider's keys again once.
    async fn verify(
        &self,
        id_token: &str,
        nonce: &str,
    ) -> Result<(ultracore_auth::Principal, i64), AuthError> {
        let first = self.id_tokens.verify_id_token(id_token, nonce);
        match (&first, &self.jwks) {
            (
                Err(AuthError::Token {
                    reason: TokenRejection::UnknownKid,
                }),
                Some(jwks),
            ) => {
                jwks.refresh_for_unknown_kid().await;
                self.id_tokens.verify_id_token(id_token, nonce)
            }
            _ => first,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A provider's text made safe to show: printable ASCII, bounded.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `application/x-www-form-urlencoded` for one name or value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `next` when it is a path of this server (not `//host`, not `/\host`,
/// no control characters), else `/`: the sign-in must not be a way to
/// send someone to another site.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 2048
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The two routes; merge into the app before [`Guard::protect`]. Without a
/// sign-in configured ([`Guard::set_oidc_sign_in`]), both answer 404.
pub fn oidc_router(guard: Guard) -> Router {
    Router::new()
        .route(LOGIN_PATH, get(login))
        .route(CALLBACK_PATH, get(callback))
        .with_state(guard)
}

fn not_configured() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "oidc_not_configured",
        "this server has no OpenID Connect sign-in (ultracore serve --oidc-client-id …): sign in with an API key",
    )
}

fn sign_in_again(detail: &str) -> Problem {
    Problem::bad_request(
        "sign_in_again",
        format!("{detail}: sign in again at /login"),
    )
}

fn no_store(r: &mut Response) {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

fn state_cookie(value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    // Lax, not Strict: the browser comes back from the provider's site by a
    // top-level GET, which Lax cookies accompany and Strict ones do not.
    HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={value}; Path=/console/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

fn state_cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == STATE_COOKIE)
        .map(|(_, value)| value.trim())
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login(State(g): State<Guard>, Query(q): Query<LoginQuery>) -> Result<Response, Problem> {
    let oidc = g.oidc_sign_in().ok_or_else(not_configured)?;
    let (state, url) = oidc.start(local_path(q.next.as_deref()));
    let mut r = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(url.as_str())
        .map_err(|e| Problem::internal("the authorization URL", e))?;
    r.headers_mut().insert(header::LOCATION, location);
    let ttl = oidc.limits.ttl.as_secs();
    if let Some(c) = state_cookie(&state, ttl, g.config().secure_cookies) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    no_store(&mut r);
    Ok(r)
}

/// The callback's answer; whatever it is, the browser's state cookie is
/// cleared (the sign-in it named is over).
async fn callback(
    State(g): State<Guard>,
    headers: HeaderMap,
    query: Query<HashMap<String, String>>,
) -> Response {
    let secure = g.config().secure_cookies;
    match finish(State(g), headers, query).await {
        Ok(r) => r,
        Err(problem) => {
            let mut r = problem.into_response();
            if let Some(c) = state_cookie("", 0, secure) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            r
        }
    }
}

async fn finish(
    State(g): State<Guard>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let oidc = g.oidc_sign_in().ok_or_else(not_configured)?;
    let state = q.get("state").map(String::as_str).unwrap_or("");
    // Taken first, whatever follows: a state is good for one answer.
    let pending = (!state.is_empty()).then(|| oidc.take(state)).flatten();
    if let Some(error) = q.get("error") {
        let error = clean(error);
        let described = q
            .get("error_description")
            .map(|d| format!(": {}", clean(d)))
            .unwrap_or_default();
        tracing::info!(
            error,
            "OIDC sign-in: the identity provider answered with an error"
        );
        let status = if error == "access_denied" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        return Err(Problem::new(
            status,
            "identity_provider_refused",
            format!("the identity provider did not sign you in ({error}{described}): sign in again at /login, or ask its administrators for access"),
        ));
    }
    if state.is_empty() {
        return Err(sign_in_again(
            "the answer of the identity provider has no state",
        ));
    }
    let Some(pending) = pending else {
        tracing::info!("OIDC sign-in: unknown, expired or used state");
        return Err(sign_in_again(
            "this sign-in is unknown, older than 10 minutes, or already used",
        ));
    };
    let same_browser = state_cookie_value(&headers)
        .is_some_and(|c| bool::from(c.as_bytes().ct_eq(state.as_bytes())));
    if !same_browser {
        tracing::info!("OIDC sign-in: the state is not the one this browser started");
        return Err(sign_in_again(
            "this sign-in was not started in this browser",
        ));
    }
    let code = q
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| sign_in_again("the answer of the identity provider has no code"))?;
    let id_token = oidc.exchange(code, &pending.verifier).await?;
    let (principal, exp) = oidc.verify(&id_token, &pending.nonce).await.map_err(|e| {
        tracing::info!(reason = e.reason(), "OIDC sign-in refused: the ID token");
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "id_token_refused",
            "the identity provider's ID token was refused (the server's log says why): sign in again",
        )
    })?;
    let new = g.sessions().create(principal.clone(), None, Some(exp));
    tracing::info!(
        principal = principal.id(),
        role = principal.role().as_str(),
        method = "oidc",
        "console sign-in"
    );
    // A page, not a 303: the browser arrived from the provider's site, and
    // a redirect would carry on that cross-site navigation, on which the
    // SameSite=Strict session cookie is not sent. The page's own refresh
    // is a navigation of this site, which carries it.
    let target = html_escape(&pending.next);
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url={target}"><title>Signed in · UltraCore</title></head><body><p>Signed in. <a href="{target}">Continue</a></p></body></html>"#
        ),
    )
        .into_response();
    let secure = g.config().secure_cookies;
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&new, secure));
    if let Some(c) = state_cookie("", 0, secure) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    no_store(&mut r);
    Ok(r)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_auth::JwtConfig;

    fn sign_in(limits: PendingLimits) -> OidcSignIn {
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;
        let verifier =
            JwtVerifier::new(JwtConfig::new("https://idp.example.com", "console"), jwks).unwrap();
        OidcSignIn::new(
            OidcSettings {
                issuer: "https://idp.example.com".into(),
                client_id: "console".into(),
                client_secret: Some(ClientSecret::new("s3cret")),
                redirect_url: "https://uc.example.com/console/oidc/callback".into(),
            },
            &ProviderMetadata {
                issuer: "https://idp.example.com".into(),
                authorization_endpoint: "https://idp.example.com/auth?kc=1".into(),
                token_endpoint: "https://idp.example.com/token".into(),
                jwks_uri: "https://idp.example.com/jwks".into(),
                code_challenge_methods_supported: vec!["S256".into()],
            },
            reqwest::Client::new(),
            Arc::new(verifier),
            None,
        )
        .unwrap()
        .with_limits(limits)
    }

    #[test]
    fn the_authorization_url_asks_for_a_code_with_pkce() {
        let s = sign_in(PendingLimits::default());
        let (state, url) = s.start("/portfolios".into());
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["kc"], "1", "the endpoint's own query stays");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "console");
        assert_eq!(q["scope"], "openid profile email");
        assert_eq!(q["state"], state);
        assert_eq!(q["code_challenge_method"], "S256");
        let pending = s.take(&state).unwrap();
        assert_eq!(
            q["code_challenge"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()))
        );
        assert_eq!(q["nonce"], pending.nonce);
        assert_eq!(pending.next, "/portfolios");
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "the secret is never printed"
        );
    }

    #[test]
    fn a_state_is_used_once_expires_and_the_table_is_bounded() {
        let s = sign_in(PendingLimits::default());
        let (state, _) = s.start("/".into());
        assert!(s.take(&state).is_some());
        assert!(s.take(&state).is_none(), "one use");
        assert!(s.take("made-up").is_none());
        let s = sign_in(PendingLimits {
            ttl: Duration::ZERO,
            max: 10,
        });
        let (state, _) = s.start("/".into());
        assert!(s.take(&state).is_none(), "expired");
        let s = sign_in(PendingLimits {
            ttl: Duration::from_secs(600),
            max: 3,
        });
        let (first, _) = s.start("/".into());
        for _ in 0..5 {
            s.start("/".into());
        }
        assert_eq!(s.pending(), 3);
        assert!(s.take(&first).is_none(), "the oldest went first");
    }

    #[test]
    fn next_is_a_local_path_or_the_overview() {
        assert_eq!(
            local_path(Some("/portfolios/pf-1?x=1")),
            "/portfolios/pf-1?x=1"
        );
        for bad in [
            None,
            Some("https://evil.example"),
            Some("//evil.example"),
            Some("/\\evil.example"),
            Some("portfolios"),
            Some("/a\nb"),
            Some(""),
        ] {
            assert_eq!(local_path(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn form_encoding_per_rfc_6749() {
        assert_eq!(form_encode("a b+c:d/é"), "a+b%2Bc%3Ad%2F%C3%A9");
        assert_eq!(form_encode("Az09-._*"), "Az09-._*");
    }
}
