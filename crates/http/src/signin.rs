//! `/console/session`: sign in (an API key or an identity provider's
//! token for a session cookie), who is signed in, sign out. See
//! [`crate::session`].

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use ultracore_auth::{AuthMethod, Permission, Principal};

use crate::session::{clear_cookie, cookie_value, set_cookie, Session};
use crate::{Guard, Problem};

/// The sign-in path.
pub const SESSION_PATH: &str = "/console/session";

/// `POST`, `GET` and `DELETE` of [`SESSION_PATH`]; merge into the app
/// before [`Guard::protect`].
pub fn session_router(guard: Guard) -> Router {
    Router::new()
        .route(SESSION_PATH, post(sign_in).get(who_am_i).delete(sign_out))
        .with_state(guard)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// An UltraCore API key (`uck_…`).
    api_key: Option<String>,
    /// A JWT of the configured identity provider.
    token: Option<String>,
}

fn describe(principal: &Principal, session: Option<&Session>) -> Value {
    let permissions: Vec<Permission> = Permission::ALL
        .iter()
        .copied()
        .filter(|p| principal.allows(*p))
        .collect();
    json!({
        "principal": principal.id(),
        "name": principal.name(),
        "role": principal.role(),
        "method": principal.method().as_str(),
        "portfolios": principal.scope(),
        "permissions": permissions,
        "csrf_token": session.map(|s| s.csrf.clone()),
        "expires_at": session.map(|s| s.expires_at),
    })
}

async fn sign_in(State(g): State<Guard>, body: Bytes) -> Result<Response, Problem> {
    let req: SignIn = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "invalid_json",
            format!("send {{\"api_key\": \"uck_…\"}} or {{\"token\": \"<the identity provider's JWT>\"}} ({e})"),
        )
    })?;
    let auth = g.authenticator();
    let (principal, key_id, until) = match (req.api_key, req.token) {
        (Some(key), None) => {
            let p = auth.keys().verify(key.trim()).map_err(|e| {
                tracing::info!(reason = e.reason(), "console sign-in refused");
                Problem::unauthorized(e.to_string(), "Bearer")
            })?;
            let id = p.id().to_owned();
            (p, Some(id), None)
        }
        (None, Some(token)) => {
            let jwt = auth.jwt().ok_or_else(|| {
                Problem::unauthorized(
                    "this server accepts no identity provider's tokens: sign in with an API key",
                    "Bearer",
                )
            })?;
            let (p, exp) = jwt.verify_until(token.trim()).map_err(|e| {
                tracing::info!(reason = e.reason(), "console sign-in refused");
                Problem::unauthorized(e.to_string(), "Bearer")
            })?;
            (p, None, Some(exp))
        }
        _ => {
            return Err(Problem::bad_request(
                "invalid_json",
                "give exactly one of api_key and token",
            ))
        }
    };
    debug_assert!(matches!(
        principal.method(),
        AuthMethod::ApiKey | AuthMethod::Jwt
    ));
    let new = g.sessions().create(principal.clone(), key_id, until);
    tracing::info!(
        principal = principal.id(),
        role = principal.role().as_str(),
        "console sign-in"
    );
    let mut r = (
        StatusCode::OK,
        Json(describe(&principal, Some(&new.session))),
    )
        .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&new, g.config().secure_cookies),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

async fn who_am_i(
    State(g): State<Guard>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    let session = cookie_value(&headers)
        .filter(|_| headers.get(header::AUTHORIZATION).is_none())
        .and_then(|id| {
            g.sessions()
                .lookup(id, |k| g.authenticator().keys().is_active(k))
        });
    let mut r = Json(describe(&principal, session.as_ref())).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

async fn sign_out(State(g): State<Guard>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_value(&headers) {
        g.sessions().remove(id);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(g.config().secure_cookies));
    r
}
