//! [`Authenticator`]: from an `Authorization` header to a [`Principal`].

use std::sync::Arc;

use crate::{AuthError, JwtVerifier, KeyStore, Principal, KEY_PREFIX};

/// Longer headers are refused before anything else looks at them:
/// `Bearer ` and the longest token the JWT verifier reads (16 KiB).
const MAX_HEADER_BYTES: usize = "Bearer ".len() + 16 * 1024;

/// The API keys of the data directory and, when configured, one OIDC
/// issuer. Share one per process (`Arc`); both halves are safe to use from
/// many threads.
#[derive(Debug, Clone)]
pub struct Authenticator {
    keys: Arc<KeyStore>,
    jwt: Option<Arc<JwtVerifier>>,
}

impl Authenticator {
    /// API keys only: other bearer tokens are refused.
    pub fn new(keys: Arc<KeyStore>) -> Authenticator {
        Authenticator { keys, jwt: None }
    }

    /// Also accepts JWTs of `jwt`'s issuer.
    pub fn with_jwt(mut self, jwt: Arc<JwtVerifier>) -> Authenticator {
        self.jwt = Some(jwt);
        self
    }

    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The JWT verifier, to refresh its keys ([`JwtVerifier::set_jwks`]).
    pub fn jwt(&self) -> Option<&JwtVerifier> {
        self.jwt.as_deref()
    }

    /// Authenticates a request by its `Authorization` header value (`None`
    /// when the request had none).
    ///
    /// `Bearer uck_…` goes to the key store; any other bearer token to the
    /// JWT verifier, when there is one. The scheme is matched without
    /// regard to case (RFC 9110 §11.1). Errors map to 401; log
    /// [`AuthError::reason`], never the header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer_token(authorization.ok_or(AuthError::Missing)?)?;
        if token.starts_with(KEY_PREFIX) {
            return self.keys.verify(token);
        }
        match &self.jwt {
            Some(jwt) => jwt.verify(token),
            None => Err(AuthError::TokensNotAccepted),
        }
    }
}

/// The token of `Bearer <token>`.
fn bearer_token(header: &str) -> Result<&str, AuthError> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(AuthError::NotBearer);
    }
    let (scheme, token) = header
        .trim_matches(|c| c == ' ' || c == '\t')
        .split_once(' ')
        .ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    let token = token.trim_start_matches(' ');
    // RFC 6750 token68: no spaces or other separators inside.
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    if token.is_empty() || !token.bytes().all(token68) {
        return Err(AuthError::NotBearer);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token("bearer  abc "), Ok("abc"));
        assert_eq!(bearer_token("BEARER a.b-c_d~e+f/g="), Ok("a.b-c_d~e+f/g="));
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Bearerabc",
            "Bearer a b",
            "Bearer a\tb",
            "Bearer a,b",
            "Bearer é",
        ] {
            assert_eq!(bearer_token(bad), Err(AuthError::NotBearer), "{bad:?}");
        }
        assert_eq!(
            bearer_token(&format!("Bearer {}", "a".repeat(20_000))),
            Err(AuthError::NotBearer)
        );
    }
}
