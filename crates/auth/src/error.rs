//! The crate's errors, split by who sees them:
//!
//! - [`Error`]: operations on keys and configuration (file I/O, a corrupt
//!   key file, a bad role name, an unusable JWKS). For operators.
//! - [`AuthError`]: a request that did not authenticate (401). Its message
//!   is the same for every way an API key can fail, so a caller learns
//!   nothing about which ids exist; [`AuthError::reason`] and the variant
//!   carry the cause for logs. Small and allocation-free, because an
//!   attacker decides how often it is built.
//! - [`Forbidden`]: an authenticated principal without the permission a
//!   route needs (403).
//!
//! They are three types rather than one enum so that a handler cannot turn
//! a storage failure into a 401, or a 401 into a 500, by accident.

use std::fmt;
use std::path::PathBuf;

use crate::{KeyId, Permission, Role};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An operation on keys or configuration that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is not valid: {source}; restore it from a backup, or move it away to start with no keys")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("key file {path} lists key id '{id}' twice; remove one of them")]
    DuplicateKeyId { path: PathBuf, id: String },
    #[error("key file {path} has format {format}; this build reads format {supported}")]
    UnsupportedFormat {
        path: PathBuf,
        format: u32,
        supported: u32,
    },
    #[error("key file {path} is writable by group or others (mode {mode:o}), so anyone could add a key; run `chmod 600 {}`", path.display())]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error(
        "unknown role '{given}': valid roles are viewer, trader, portfolio-manager, auditor, admin, customer, integration"
    )]
    UnknownRole { given: String },
    #[error("unknown permission '{given}': valid permissions are read-portfolios, request-optimization, trade, read-forensics, read-events, read-audit, read-metrics, read-compliance, admin, assist, ingest-external, read-data-products")]
    UnknownPermission { given: String },
    #[error("no API key with id '{id}'; `ultracore keys list` shows the ids")]
    KeyNotFound { id: String },
    #[error("portfolio id '{id}' is invalid: use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidPortfolioId { id: String },
    #[error("a key needs at least one portfolio, or all of them")]
    EmptyScope,
    #[error("a customer key speaks for one customer: name it with --customer ID")]
    CustomerMissing,
    #[error("only a customer key names a customer; --customer needs --role customer, not {role}")]
    CustomerForStaff { role: crate::Role },
    #[error("a {role} key cannot cover every portfolio: {reason}")]
    AllPortfoliosForRole {
        role: crate::Role,
        reason: &'static str,
    },
    #[error("customer id '{id}' is invalid: 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidCustomerId { id: String },
    #[error("key name is invalid: {reason}")]
    InvalidName { reason: &'static str },
    #[error("the operating system's random number generator failed: {source}")]
    Random {
        #[source]
        source: rand::rand_core::OsError,
    },
    #[error("JWKS is not usable: {reason}")]
    Jwks { reason: String },
    #[error("JWT settings are not usable: {reason}")]
    JwtConfig { reason: String },
    #[error("rate limit settings are not usable: {reason}")]
    RateLimitConfig { reason: &'static str },
}

/// Why a request did not authenticate. Maps to 401 with
/// [`AuthError::www_authenticate`].
///
/// `Display` is what the caller may see; it never says whether a key id
/// exists or whether a key was revoked. Log [`AuthError::reason`] and
/// [`AuthError::key_id`] instead (neither holds a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("authentication required: send 'Authorization: Bearer <API key or token>'")]
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("unsupported Authorization header: send 'Authorization: Bearer <API key or token>'")]
    NotBearer,
    /// Starts with `uck_` but is not shaped like a key.
    #[error("invalid or revoked API key")]
    MalformedKey,
    /// A well-formed key whose id is not in the key file.
    #[error("invalid or revoked API key")]
    UnknownKey { id: KeyId },
    /// A known id with the wrong secret.
    #[error("invalid or revoked API key")]
    WrongSecret { id: KeyId },
    /// The right secret of a revoked key.
    #[error("invalid or revoked API key")]
    Revoked { id: KeyId },
    /// A bearer token that is not an API key, while no OIDC issuer is
    /// configured.
    #[error("invalid bearer token")]
    TokensNotAccepted,
    /// A JWT that was rejected, and why.
    #[error("invalid bearer token")]
    Token { reason: TokenRejection },
}

impl AuthError {
    /// The HTTP status: always 401.
    pub const STATUS: u16 = 401;

    /// The cause, as a short stable word for logs and metrics labels
    /// (`unknown-key`, `revoked`, `expired`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::NotBearer => "not-bearer",
            AuthError::MalformedKey => "malformed-key",
            AuthError::UnknownKey { .. } => "unknown-key",
            AuthError::WrongSecret { .. } => "wrong-secret",
            AuthError::Revoked { .. } => "revoked",
            AuthError::TokensNotAccepted => "tokens-not-accepted",
            AuthError::Token { reason } => reason.as_str(),
        }
    }

    /// The API key id the request named, when it named a well-formed one.
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            AuthError::UnknownKey { id }
            | AuthError::WrongSecret { id }
            | AuthError::Revoked { id } => Some(*id),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` header value for the 401 (RFC 6750 §3): a bare
    /// challenge when the request brought no bearer credentials, with
    /// `error="invalid_token"` when it brought a bad one.
    pub fn www_authenticate(&self) -> &'static str {
        match self {
            AuthError::Missing | AuthError::NotBearer => r#"Bearer realm="ultracore""#,
            _ => r#"Bearer realm="ultracore", error="invalid_token""#,
        }
    }
}

/// Why a JWT was rejected. For logs only; callers see "invalid bearer token".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenRejection {
    /// Not three base64url parts, a header or claims that are not JSON, or
    /// an `alg` this library does not know (`none` among them).
    Malformed,
    /// An `alg` outside the configured list (every HMAC `alg` among them).
    AlgorithmNotAllowed,
    /// A `crit` header: it names extensions this verifier does not implement.
    CriticalHeader,
    /// No `kid` in the header.
    MissingKid,
    /// A `kid` not in the JWKS (perhaps rotated: refresh the JWKS).
    UnknownKid,
    /// The key named by `kid` is not for the token's `alg`.
    KeyAlgorithmMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not name the configured audience.
    WrongAudience,
    /// One of `exp`, `iss`, `aud`, `sub` is missing.
    MissingClaim,
    /// `sub` is empty, too long, or has control characters.
    BadSubject,
    /// No known role in the role claims.
    NoRole,
    /// The role claim names a role this build does not know.
    UnknownRole,
    /// The portfolios claim is not a string or an array of valid ids.
    BadPortfolios,
    /// A customer's token without one valid customer id in its customer claim.
    BadCustomer,
    /// An ID token whose `nonce` is not the one of the sign-in it answers
    /// (a replayed or injected token).
    WrongNonce,
}

impl TokenRejection {
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenRejection::Malformed => "malformed-token",
            TokenRejection::AlgorithmNotAllowed => "algorithm-not-allowed",
            TokenRejection::CriticalHeader => "critical-header",
            TokenRejection::MissingKid => "missing-kid",
            TokenRejection::UnknownKid => "unknown-kid",
            TokenRejection::KeyAlgorithmMismatch => "key-algorithm-mismatch",
            TokenRejection::BadSignature => "bad-signature",
            TokenRejection::Expired => "expired",
            TokenRejection::NotYetValid => "not-yet-valid",
            TokenRejection::WrongIssuer => "wrong-issuer",
            TokenRejection::WrongAudience => "wrong-audience",
            TokenRejection::MissingClaim => "missing-claim",
            TokenRejection::BadSubject => "bad-subject",
            TokenRejection::NoRole => "no-role",
            TokenRejection::UnknownRole => "unknown-role",
            TokenRejection::BadPortfolios => "bad-portfolios",
            TokenRejection::BadCustomer => "bad-customer",
            TokenRejection::WrongNonce => "wrong-nonce",
        }
    }
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<TokenRejection> for AuthError {
    fn from(reason: TokenRejection) -> AuthError {
        AuthError::Token { reason }
    }
}

/// An authenticated principal without a permission the route needs (403).
///
/// For a portfolio outside the principal's scope, answer 404 instead, so
/// that ids are not revealed; see [`crate::Principal::can_access_portfolio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("forbidden: the {role} role does not grant the {permission} permission")]
pub struct Forbidden {
    pub role: Role,
    pub permission: Permission,
}

impl Forbidden {
    /// The HTTP status: 403.
    pub const STATUS: u16 = 403;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_failures_look_the_same_to_the_caller() {
        let id = KeyId::from_text("abcdefghijkl").unwrap();
        let all = [
            AuthError::MalformedKey,
            AuthError::UnknownKey { id },
            AuthError::WrongSecret { id },
            AuthError::Revoked { id },
        ];
        for e in all {
            assert_eq!(e.to_string(), "invalid or revoked API key");
            assert!(e.www_authenticate().contains("invalid_token"));
        }
        let reasons: std::collections::HashSet<_> = all.iter().map(AuthError::reason).collect();
        assert_eq!(reasons.len(), all.len(), "distinct reasons for logs");
        assert_eq!(AuthError::Revoked { id }.key_id(), Some(id));
    }

    #[test]
    fn missing_credentials_get_a_bare_challenge() {
        assert_eq!(
            AuthError::Missing.www_authenticate(),
            r#"Bearer realm="ultracore""#
        );
        assert_eq!(
            AuthError::from(TokenRejection::Expired).to_string(),
            "invalid bearer token"
        );
        assert_eq!(AuthError::from(TokenRejection::Expired).reason(), "expired");
    }
}
