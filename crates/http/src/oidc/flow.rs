//! The sign-in itself: [`OidcSignIn`] and the routes
//! `GET /console/oidc/login` and `GET /console/oidc/callback`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use reqwest::Url;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use serde::{Deserialize, Serialize};
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
/// The cookie that carries a pending sign-in, sealed, in the browser that
/// started it: without it, someone could start a sign-in with their own
/// account and have another person's browser finish it (login CSRF).
const STATE_COOKIE: &str = "uc_oidc_state";
/// What the seal authenticates besides the sign-in (a cookie of another
/// purpose or format never opens as one).
const SEAL_CONTEXT: &[u8] = b"ultracore oidc sign-in v1";
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

/// How long a sign-in may take, and how many finished ones are remembered
/// as used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// A sign-in not finished within this is refused.
    pub ttl: Duration,
    /// Used states remembered (each for `ttl`); past it, the oldest is
    /// forgotten. A callback replayed after that still fails at the
    /// provider, which takes a code once.
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

/// A sign-in between the two routes, sealed into the browser's state
/// cookie (its values stay out of `Debug`). The server keeps nothing of
/// it, so no number of anonymous starts can push out a real user's.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    /// Seconds since the Unix epoch.
    started: u64,
}

/// Seals pending sign-ins (ChaCha20-Poly1305 under a key made at start
/// and never stored: a restart ends the sign-ins in progress, as it ends
/// the sessions): the browser holds them, cannot read or change them, and
/// another server's cookie does not open here.
struct Sealer(LessSafeKey);

impl Sealer {
    fn new() -> Sealer {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a 256-bit ChaCha20 key");
        Sealer(LessSafeKey::new(key))
    }

    /// `base64url(nonce ‖ ciphertext ‖ tag)`.
    fn seal(&self, pending: &Pending) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = serde_json::to_vec(pending).expect("a pending sign-in serializes");
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(SEAL_CONTEXT),
                &mut data,
            )
            .expect("sealing a small cookie");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The sign-in in `cookie`; `None` when it was not sealed here (made
    /// up, changed, or from another server or an earlier run).
    fn open(&self, cookie: &str) -> Option<Pending> {
        let mut raw = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let mut data = raw.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&raw).ok()?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(SEAL_CONTEXT), &mut data)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    sealer: Sealer,
    /// States of sign-ins finished (or refused) here, with when they were
    /// used: a state is good for one answer. A std mutex: it is held for a
    /// lookup or an insert, never across an await.
    used: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for OidcSignIn {
    /// The settings and endpoints; of the used states only their number.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.used.lock().map_or(0, |p| p.len());
        f.debug_struct("OidcSignIn")
            .field("settings", &self.settings)
            .field("authorization", &self.authorization.as_str())
            .field("token", &self.token.as_str())
            .field("limits", &self.limits)
            .field("used_states", &used)
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
            sealer: Sealer::new(),
            used: Mutex::new(HashMap::new()),
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

    /// States remembered as used.
    pub fn used_states(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a sign-in that returns to `next`: the sealed sign-in for the
    /// browser's cookie and the URL to send the browser to.
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
        let sealed = self.sealer.seal(&Pending {
            state,
            nonce,
            verifier,
            next,
            started: unix_now(),
        });
        (sealed, url)
    }

    /// The sign-in sealed in the browser's `cookie` for the provider's
    /// answer `state`, marked used as it is taken: `Err` says why not
    /// (made up or from another server, older than the limit, another
    /// sign-in's, or already used).
    fn take(&self, cookie: &str, state: &str) -> Result<Pending, Taken> {
        let pending = self.sealer.open(cookie).ok_or(Taken::Unknown)?;
        if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(Taken::OtherBrowser);
        }
        let age = unix_now().saturating_sub(pending.started);
        if age >= self.limits.ttl.as_secs() {
            return Err(Taken::Unknown);
        }
        let now = Instant::now();
        let mut used = self.lock();
        if used.contains_key(state) {
            return Err(Taken::Unknown);
        }
        if used.len() >= self.limits.max {
            used.retain(|_, at| now.duration_since(*at) < self.limits.ttl);
            if used.len() >= self.limits.max {
                if let Some(oldest) = used
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
                {
                    used.remove(&oldest);
                }
            }
        }
        used.insert(state.to_owned(), now);
        Ok(pending)
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

/// Why a provider's answer has no sign-in to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// No sign-in of this server's, a used one, or one too old.
    Unknown,
    /// The browser's sign-in is another one than the answer's.
    OtherBrowser,
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
    let (sealed, url) = oidc.start(local_path(q.next.as_deref()));
    let mut r = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(url.as_str())
        .map_err(|e| Problem::internal("the authorization URL", e))?;
    r.headers_mut().insert(header::LOCATION, location);
    let ttl = oidc.limits.ttl.as_secs();
    if let Some(c) = state_cookie(&sealed, ttl, g.config().secure_cookies) {
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
    let cookie = state_cookie_value(&headers);
    // Taken first, whatever follows: a state is good for one answer.
    let pending = match cookie {
        Some(c) if !state.is_empty() => Some(oidc.take(c, state)),
        _ => None,
    };
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
    let pending = match pending {
        Some(Ok(p)) => p,
        Some(Err(Taken::Unknown)) => {
            tracing::info!("OIDC sign-in: unknown, expired or used state");
            return Err(sign_in_again(
                "this sign-in is unknown, older than 10 minutes, or already used",
            ));
        }
        None | Some(Err(Taken::OtherBrowser)) => {
            tracing::info!("OIDC sign-in: the state is not the one this browser started");
            return Err(sign_in_again(
                "this sign-in was not started in this browser",
            ));
        }
    };
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

    fn state_of(url: &Url) -> String {
        url.query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    #[test]
    fn the_authorization_url_asks_for_a_code_with_pkce() {
        let s = sign_in(PendingLimits::default());
        let (sealed, url) = s.start("/portfolios".into());
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["kc"], "1", "the endpoint's own query stays");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "console");
        assert_eq!(q["scope"], "openid profile email");
        assert_eq!(q["code_challenge_method"], "S256");
        let pending = s.take(&sealed, &q["state"]).unwrap();
        assert_eq!(pending.state, q["state"]);
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
    fn the_cookie_is_sealed_the_browser_can_neither_read_nor_change_it() {
        let s = sign_in(PendingLimits::default());
        let (sealed, url) = s.start("/portfolios".into());
        let state = state_of(&url);
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        for secret in [&state, &q["nonce"], &"/portfolios".to_owned()] {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} readable in the cookie"
            );
        }
        // Any flipped bit, a cut, or another server's seal: not a sign-in.
        for i in [0, NONCE_LEN, raw.len() / 2, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            let bad = URL_SAFE_NO_PAD.encode(bad);
            assert_eq!(
                s.take(&bad, &state).err(),
                Some(Taken::Unknown),
                "bit at {i}"
            );
        }
        let cut = URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]);
        assert_eq!(s.take(&cut, &state).err(), Some(Taken::Unknown));
        assert_eq!(s.take("not base64 !", &state).err(), Some(Taken::Unknown));
        let other = sign_in(PendingLimits::default());
        let (theirs, their_url) = other.start("/".into());
        assert_eq!(
            s.take(&theirs, &state_of(&their_url)).err(),
            Some(Taken::Unknown)
        );
        // The browser's own sign-in, but the answer of another one.
        let (_, second) = s.start("/".into());
        assert_eq!(
            s.take(&sealed, &state_of(&second)).err(),
            Some(Taken::OtherBrowser)
        );
        assert!(s.take(&sealed, &state).is_ok(), "untouched, it opens");
    }

    #[test]
    fn a_state_is_used_once_expires_and_the_used_ones_are_bounded() {
        let s = sign_in(PendingLimits::default());
        let (sealed, url) = s.start("/".into());
        assert!(s.take(&sealed, &state_of(&url)).is_ok());
        assert_eq!(
            s.take(&sealed, &state_of(&url)).err(),
            Some(Taken::Unknown),
            "one use"
        );
        let s = sign_in(PendingLimits {
            ttl: Duration::ZERO,
            max: 10,
        });
        let (sealed, url) = s.start("/".into());
        assert_eq!(
            s.take(&sealed, &state_of(&url)).err(),
            Some(Taken::Unknown),
            "expired"
        );
        // Starting keeps nothing on the server, however many there are.
        let s = sign_in(PendingLimits {
            ttl: Duration::from_secs(600),
            max: 3,
        });
        let started: Vec<_> = (0..1_000).map(|_| s.start("/".into())).collect();
        assert_eq!(s.used_states(), 0);
        for (sealed, url) in &started[..5] {
            assert!(s.take(sealed, &state_of(url)).is_ok());
        }
        assert_eq!(s.used_states(), 3, "bounded");
        let (sealed, url) = &started[999];
        assert!(
            s.take(sealed, &state_of(url)).is_ok(),
            "the last one started still finishes"
        );
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
