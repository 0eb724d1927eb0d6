//! A small but faithful OpenID Connect provider for the tests, on
//! 127.0.0.1:0 in its own thread: discovery, JWKS, an authorization
//! endpoint that signs the user in at once (as if they consented), and a
//! token endpoint that checks the client (Basic), the code, the redirect
//! URI and PKCE (S256) before it gives an RS256-signed ID token.

#![allow(dead_code)] // not every test uses every knob

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Error;

/// rand 0.9's generator for the rsa crate, which speaks rand_core 0.6.
struct Rng;

impl rsa::rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        rand::random()
    }
    fn next_u64(&mut self) -> u64 {
        rand::random()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        rand::fill(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for Rng {}

/// An RSA signing key and its public JWK.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn rsa_key(kid: &str) -> Result<Key, Error> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut Rng, 2048)?;
    let der = key.to_pkcs1_der()?;
    Ok(Key {
        kid: kid.to_owned(),
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                    "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                    "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())}),
    })
}

/// A code handed out and not yet exchanged.
struct Grant {
    challenge: String,
    nonce: String,
    redirect_uri: String,
}

/// The provider's state, shared with the test.
pub struct Provider {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// The issuer its discovery document names (another one to test the
    /// server's check).
    pub discovered_issuer: Mutex<String>,
    /// The signing key; [`Idp::rotate`] replaces it.
    key: Mutex<Key>,
    codes: Mutex<HashMap<String, Grant>>,
    /// The claims the ID tokens carry besides iss, aud, sub, exp, iat, nonce.
    pub claims: Mutex<Value>,
    /// An `aud` to put in ID tokens instead of the client id.
    pub audience_override: Mutex<Option<String>>,
    pub jwks_fetches: AtomicUsize,
    pub token_requests: AtomicUsize,
}

/// The running provider.
pub struct Idp {
    pub provider: Arc<Provider>,
    pub port: u16,
}

impl Idp {
    /// Starts a provider for a client whose callback is `redirect_uri`.
    pub fn start(client_id: &str, client_secret: &str, redirect_uri: &str) -> Result<Idp, Error> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let issuer = format!("http://127.0.0.1:{port}/realms/test");
        let provider = Arc::new(Provider {
            issuer: issuer.clone(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            discovered_issuer: Mutex::new(issuer),
            key: Mutex::new(rsa_key("key-1")?),
            codes: Mutex::new(HashMap::new()),
            claims: Mutex::new(
                json!({"ultracore_role": "viewer", "ultracore_portfolios": "*",
                                      "name": "Alice Example", "email": "alice@example.com"}),
            ),
            audience_override: Mutex::new(None),
            jwks_fetches: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(
                "/realms/test/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/test/jwks", get(jwks))
            .route("/realms/test/auth", get(authorize))
            .route("/realms/test/token", post(token))
            .with_state(provider.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app).await.expect("the provider runs");
            });
        });
        Ok(Idp { provider, port })
    }

    pub fn issuer(&self) -> &str {
        &self.provider.issuer
    }

    /// A token of this provider for the client, signed with its current
    /// key (what it would give an API client).
    pub fn mint(&self) -> Result<String, Error> {
        let p = &self.provider;
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = p.claims.lock().unwrap().clone();
        for (k, v) in [
            ("iss", json!(p.issuer)),
            ("aud", json!(p.client_id)),
            ("sub", json!("api-client")),
            ("iat", json!(now)),
            ("exp", json!(now + 300)),
        ] {
            claims[k] = v;
        }
        let key = p.key.lock().unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &key.encoding)?)
    }

    /// A new signing key with a new `kid`; the JWKS lists only it.
    pub fn rotate(&self, kid: &str) -> Result<(), Error> {
        *self.provider.key.lock().unwrap() = rsa_key(kid)?;
        Ok(())
    }
}

async fn discovery(State(p): State<Arc<Provider>>) -> Json<Value> {
    let base = &p.issuer;
    Json(json!({
        "issuer": *p.discovered_issuer.lock().unwrap(),
        "authorization_endpoint": format!("{base}/auth"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
}

async fn jwks(State(p): State<Arc<Provider>>) -> Json<Value> {
    p.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({"keys": [p.key.lock().unwrap().jwk.clone()]}))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The user signs in and consents at once: back to the client with a code.
async fn authorize(
    State(p): State<Arc<Provider>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let param = |k: &str| q.get(k).cloned().unwrap_or_default();
    // Errors about the client or the redirect URI are shown to the user,
    // never sent to an unchecked redirect URI (RFC 6749 §4.1.2.1).
    if param("client_id") != p.client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "unknown client_id",
        );
    }
    if param("redirect_uri") != p.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not registered",
        );
    }
    let back = |params: &[(&str, &str)]| {
        let mut url = reqwest::Url::parse(&p.redirect_uri).expect("a registered URL");
        url.query_pairs_mut().extend_pairs(params);
        (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response()
    };
    let state = param("state");
    if param("response_type") != "code"
        || param("code_challenge_method") != "S256"
        || param("code_challenge").len() != 43
        || !param("scope").split(' ').any(|s| s == "openid")
    {
        return back(&[
            ("error", "invalid_request"),
            (
                "error_description",
                "code flow with PKCE S256 and scope openid only",
            ),
            ("state", &state),
        ]);
    }
    let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    p.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge: param("code_challenge"),
            nonce: param("nonce"),
            redirect_uri: param("redirect_uri"),
        },
    );
    back(&[("code", &code), ("state", &state)])
}

/// `application/x-www-form-urlencoded` decoding of one part.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect()
}

/// The code for an ID token, after checking the client, the code, the
/// redirect URI and PKCE.
async fn token(State(p): State<Arc<Provider>>, headers: HeaderMap, body: String) -> Response {
    p.token_requests.fetch_add(1, Ordering::SeqCst);
    let client_ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some(form_decode(id) == p.client_id && form_decode(secret) == p.client_secret)
        })
        .unwrap_or(false);
    if !client_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    let form = parse_form(&body);
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "authorization_code only",
        );
    }
    // A code is good once, used or not.
    let Some(grant) = p.codes.lock().unwrap().remove(&field("code")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or used code",
        );
    };
    if field("redirect_uri") != grant.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let verifier = field("code_verifier");
    if verifier.len() < 43
        || URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }
    let now = jsonwebtoken::get_current_timestamp();
    let mut claims = p.claims.lock().unwrap().clone();
    let aud = p
        .audience_override
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| p.client_id.clone());
    for (k, v) in [
        ("iss", json!(p.issuer)),
        ("aud", json!(aud)),
        ("sub", json!("alice")),
        ("iat", json!(now)),
        ("exp", json!(now + 300)),
        ("nonce", json!(grant.nonce)),
    ] {
        claims[k] = v;
    }
    let id_token = {
        let key = p.key.lock().unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        match jsonwebtoken::encode(&header, &claims, &key.encoding) {
            Ok(t) => t,
            Err(e) => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    &e.to_string(),
                )
            }
        }
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"access_token": "at-unused", "token_type": "Bearer",
                    "expires_in": 300, "id_token": id_token})),
    )
        .into_response()
}
