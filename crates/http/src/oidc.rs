//! OpenID Connect sign-in for the web console: the authorization-code
//! flow with PKCE (S256), `state` and `nonce`.
//!
//! 1. `GET /console/oidc/login[?next=/page]` makes a fresh `state`, `nonce`
//!    and PKCE verifier, seals them (ChaCha20-Poly1305 under a key made at
//!    start) into a short-lived cookie of the browser, and sends the
//!    browser (303) to the provider's authorization endpoint. The server
//!    keeps nothing of a sign-in in progress, so anonymous starts cannot
//!    crowd out real ones.
//! 2. The provider signs the user in and sends the browser back to
//!    `GET /console/oidc/callback?code&state`. The server opens the cookie
//!    and takes its sign-in if the `state` is its own (not this server's,
//!    changed, older than 10 minutes, already used, or another sign-in's:
//!    400, sign in again; used states are remembered for those 10 minutes),
//!    exchanges the code at the token endpoint with the PKCE verifier,
//!    checks the ID token with the same [`ultracore_auth::JwtVerifier`]
//!    rules as a pasted token (issuer, audience = the client id, expiry,
//!    signature, and the claims → role mapping) plus the `nonce`, and opens
//!    the same session as `POST /console/session`.
//!
//! The server talks to the provider only from here and from the JWKS
//! refresh: over https, or plain http to a loopback host (a provider on
//! this machine, the tests). Redirects are not followed.
//!
//! # Layout
//!
//! - `provider`: [`ProviderMetadata`] (discovery), [`JwksSource`] (the
//!   signing keys, refreshed on a timer and on an unknown `kid`),
//!   [`http_client`], the URL rules.
//! - `flow`: [`OidcSignIn`], the sealed sign-ins and the two routes,
//!   [`oidc_router`].

mod flow;
mod provider;

pub use flow::{
    oidc_router, ClientSecret, OidcSettings, OidcSignIn, PendingLimits, CALLBACK_PATH, LOGIN_PATH,
};
pub use provider::{
    check_url, discover, http_client, JwksSource, ProviderMetadata, JWKS_REFRESH_INTERVAL,
};

/// Why OpenID Connect sign-in cannot be set up or a provider document was
/// refused. Messages name the setting or URL to fix; none holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// A URL that is not https, nor http to a loopback host.
    #[error("the {what} {url} is not https: plain http is allowed only to a loopback host (localhost, 127.0.0.1, [::1])")]
    InsecureUrl { what: &'static str, url: String },
    /// A URL that does not parse or cannot be used.
    #[error("the {what} '{url}' is not a usable URL: {reason}")]
    BadUrl {
        what: &'static str,
        url: String,
        reason: String,
    },
    /// The provider could not be reached or did not answer in time.
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    /// The provider answered with an error status.
    #[error("fetching {url}: the provider answered {status}")]
    Status { url: String, status: u16 },
    /// An answer that is not the JSON document expected.
    #[error("the document at {url} is not usable: {reason}")]
    Document { url: String, reason: String },
    /// The discovery document names another issuer than the configured one.
    #[error("the discovery document of {configured} names the issuer '{discovered}': they must be equal, character for character (check --oidc-issuer, a trailing slash included)")]
    IssuerMismatch {
        configured: String,
        discovered: String,
    },
    /// The signing keys could not be installed.
    #[error("the provider's signing keys (JWKS) at {url}: {source}")]
    Jwks {
        url: String,
        source: ultracore_auth::Error,
    },
    /// A setting of the sign-in is missing or contradictory.
    #[error("OpenID Connect sign-in: {reason}")]
    Config { reason: String },
}

pub type Result<T, E = OidcError> = std::result::Result<T, E>;
