//! The HTTP edge every UltraCore route stands on.
//!
//! - [`Problem`]: the one error body, RFC 9457 `application/problem+json`.
//! - [`policy::ROUTES`]: who may call each route and which portfolio it
//!   touches; a route missing from it is refused.
//! - [`Guard`]: the middleware that enforces it (Host allowlist, Origin,
//!   JSON-only bodies, authentication, authorization, portfolio scope,
//!   per-key rate limits, the stream cap, the request timeout) and hands the
//!   [`Principal`] to the handlers.
//! - [`session`]: the web console's sign-in sessions (an `HttpOnly`,
//!   `SameSite=Strict` cookie and a CSRF token), [`session_router`].
//! - [`oidc`]: OpenID Connect sign-in for the console (authorization code
//!   with PKCE), [`oidc_router`], and the provider's keys, [`JwksSource`].
//! - [`serve`]: the server loop with a header-read timeout, a connection
//!   cap and a bounded drain.
//!
//! A handler that needs the caller takes `Extension<Principal>`:
//!
//! ```no_run
//! use axum::Extension;
//! use ultracore_http::{Principal, Problem};
//!
//! async fn orders(Extension(who): Extension<Principal>) -> Result<String, Problem> {
//!     if !who.can_access_portfolio("pf-1") {
//!         return Err(Problem::not_found("portfolio 'pf-1' is not found for this key"));
//!     }
//!     Ok(format!("orders for {}", who.id()))
//! }
//! ```

mod guard;
pub mod oidc;
pub mod policy;
mod problem;
mod server;
pub mod session;
mod signin;

pub use guard::{encode_next, guard, loopback_hosts, EdgeConfig, Guard};
pub use oidc::{oidc_router, JwksSource, OidcSignIn};
pub use policy::{Access, Portfolios, RoutePolicy, ROUTES};
pub use problem::{Problem, PROBLEM_JSON};
pub use server::{serve, ServerLimits};
pub use session::{SessionLimits, Sessions};
pub use signin::{session_router, SESSION_PATH};
pub use ultracore_auth::{
    is_valid_customer_id, is_valid_portfolio_id, AuthMethod, Permission, Principal, Role, Scope,
};
