//! OIDC JWTs: [`JwtVerifier`] checks a token against one issuer's JWKS and
//! maps its claims to a [`Principal`].
//!
//! This module fetches nothing: it takes the JWKS as JSON text or a
//! [`JwkSet`]. Whoever owns an HTTP client (the CLI) fetches the issuer's
//! `jwks_uri` and hands the result to [`JwtVerifier::set_jwks`], on a timer
//! and when tokens are rejected for an unknown `kid` (the issuer rotated its
//! keys). Nothing from the token itself (`jku`, `jwk`, `x5u` headers) is
//! ever used to find a key.
//!
//! # Claims
//!
//! - `sub` → principal id `jwt:<sub>`; `name` (or `preferred_username`) →
//!   its name.
//! - The role: from [`JwtConfig::role_claim`] (default `ultracore_role`),
//!   a role name or an array of them, every one a role this build knows
//!   (the claim is UltraCore's own, so an unknown name is a mistake and the
//!   token is refused). Without it, from [`JwtConfig::roles_claim`]
//!   (default `roles`), an array usually shared with other applications,
//!   whose unknown names are ignored. When a token carries several roles,
//!   the first of [`JwtConfig::role_precedence`] that it carries wins. The
//!   default order is integration, customer, viewer, trader, portfolio-manager,
//!   auditor, admin:
//!   admin only for a token that carries no other role, and in general the
//!   narrower of two roles that can be compared. An operator who wants the
//!   widest role to win reverses the list; a role left out of it is never
//!   granted by a token. No role: refused.
//! - The portfolios: from [`JwtConfig::portfolios_claim`] (default
//!   `ultracore_portfolios`), an array of portfolio ids or one id; `"*"`
//!   means all of them. Absent: auditors and admins see every portfolio
//!   (their roles are about the whole system), everyone else sees none.
//!   Safe by default: a token must name the portfolios of a viewer, trader
//!   or portfolio manager.
//! - The customer: a `customer` token names the one customer it speaks
//!   for in [`JwtConfig::customer_claim`] (default `ultracore_customer`);
//!   without a valid one it is refused. Other roles' tokens speak for no
//!   customer, whatever they carry.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use jsonwebtoken::jwk::JwkSet;

use crate::{AuthError, AuthMethod, Error, Principal, Result, Role, Scope, TokenRejection};

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The most clock skew [`JwtConfig::leeway_secs`] may allow.
const MAX_LEEWAY_SECS: u64 = 300;
/// RSA keys shorter than this are refused (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// A signing algorithm a token may use. Only asymmetric ones exist here:
/// an HMAC algorithm verified with a public key would let anyone who has
/// the public key forge tokens, and `none` is no signature at all.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 9] = [
        SigningAlgorithm::RS256,
        SigningAlgorithm::RS384,
        SigningAlgorithm::RS512,
        SigningAlgorithm::PS256,
        SigningAlgorithm::PS384,
        SigningAlgorithm::PS512,
        SigningAlgorithm::ES256,
        SigningAlgorithm::ES384,
        SigningAlgorithm::EdDSA,
    ];

    fn to_jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::RS256 => Algorithm::RS256,
            SigningAlgorithm::RS384 => Algorithm::RS384,
            SigningAlgorithm::RS512 => Algorithm::RS512,
            SigningAlgorithm::PS256 => Algorithm::PS256,
            SigningAlgorithm::PS384 => Algorithm::PS384,
            SigningAlgorithm::PS512 => Algorithm::PS512,
            SigningAlgorithm::ES256 => Algorithm::ES256,
            SigningAlgorithm::ES384 => Algorithm::ES384,
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl FromStr for SigningAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        SigningAlgorithm::ALL
            .into_iter()
            .find(|a| a.to_string() == s)
            .ok_or_else(|| Error::JwtConfig {
                reason: format!(
                    "unknown or refused signing algorithm '{s}': use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
                ),
            })
    }
}

/// How tokens are checked and mapped to principals. See the module docs
/// for the claim rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The issuer, exactly as in the tokens' `iss` (the OIDC issuer URL).
    pub issuer: String,
    /// The audience the tokens must name in `aud` (usually UltraCore's
    /// client id at the issuer).
    pub audience: String,
    /// The algorithms accepted [default: RS256, ES256, EdDSA].
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<SigningAlgorithm>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds, at most 300
    /// [default: 30].
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// UltraCore's own role claim: a role name or an array of them
    /// [default: `ultracore_role`].
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// A shared roles claim, read when the role claim is absent; unknown
    /// names in it are ignored [default: `roles`]. `null` turns it off.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: Option<String>,
    /// Which role wins when a token carries several; roles left out are
    /// never granted by a token [default: integration, customer, viewer, trader,
    /// portfolio-manager, auditor, admin].
    #[serde(default = "default_precedence")]
    pub role_precedence: Vec<Role>,
    /// The claim with the portfolio ids [default: `ultracore_portfolios`].
    #[serde(default = "default_portfolios_claim")]
    pub portfolios_claim: String,
    /// The claim with a customer token's customer id [default: `ultracore_customer`].
    #[serde(default = "default_customer_claim")]
    pub customer_claim: String,
}

fn default_algorithms() -> Vec<SigningAlgorithm> {
    vec![
        SigningAlgorithm::RS256,
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
    ]
}

fn default_leeway() -> u64 {
    30
}

fn default_role_claim() -> String {
    "ultracore_role".into()
}

fn default_roles_claim() -> Option<String> {
    Some("roles".into())
}

/// The narrower of two roles wins: integration and customer first, admin last.
fn default_precedence() -> Vec<Role> {
    vec![
        Role::Integration,
        Role::Customer,
        Role::Viewer,
        Role::Trader,
        Role::PortfolioManager,
        Role::Auditor,
        Role::Admin,
    ]
}

fn default_customer_claim() -> String {
    "ultracore_customer".into()
}

fn default_portfolios_claim() -> String {
    "ultracore_portfolios".into()
}

impl JwtConfig {
    /// The defaults, for this issuer and audience.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> JwtConfig {
        JwtConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: default_algorithms(),
            leeway_secs: default_leeway(),
            role_claim: default_role_claim(),
            roles_claim: default_roles_claim(),
            role_precedence: default_precedence(),
            portfolios_claim: default_portfolios_claim(),
            customer_claim: default_customer_claim(),
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::JwtConfig {
                reason: reason.to_owned(),
            })
        };
        if self.issuer.trim().is_empty() {
            return bad("issuer is empty");
        }
        if self.audience.trim().is_empty() {
            return bad("audience is empty");
        }
        if self.algorithms.is_empty() {
            return bad("no signing algorithm is allowed");
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return bad("leeway_secs is over 300");
        }
        if self.role_precedence.is_empty() {
            return bad("role_precedence is empty, so no token could carry a role");
        }
        if self.role_claim.is_empty()
            || self.portfolios_claim.is_empty()
            || self.customer_claim.is_empty()
        {
            return bad("a claim name is empty");
        }
        Ok(())
    }
}

/// A key from the JWKS, with the algorithms it may verify.
#[derive(Debug)]
struct VerifyKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// Keys by `kid`. A `kid` may name several keys of different types; the
/// token's `alg` picks one.
type KeyRing = HashMap<String, Vec<VerifyKey>>;

/// Verifies JWTs of one issuer. Share it (`Arc`); [`JwtVerifier::set_jwks`]
/// swaps the keys while requests are being verified.
#[derive(Debug)]
pub struct JwtVerifier {
    config: JwtConfig,
    /// One per allowed algorithm, built once: each pins `alg` to a single
    /// value so the key's type and the token's `alg` must agree.
    validations: HashMap<Algorithm, Validation>,
    keys: RwLock<Arc<KeyRing>>,
}

impl JwtVerifier {
    /// A verifier with the keys of `jwks_json` (`{"keys": [...]}`).
    ///
    /// Errors: the settings are unusable, or the JWKS holds no key usable
    /// with them (keys that are symmetric, for encryption, of an unknown
    /// type, RSA under 2048 bits, or without a `kid` are skipped with a
    /// warning).
    pub fn new(config: JwtConfig, jwks_json: &str) -> Result<JwtVerifier> {
        let verifier = JwtVerifier::without_keys(config)?;
        verifier.set_jwks(jwks_json)?;
        Ok(verifier)
    }

    /// [`JwtVerifier::new`] with a parsed [`JwkSet`].
    pub fn from_jwk_set(config: JwtConfig, jwks: &JwkSet) -> Result<JwtVerifier> {
        let verifier = JwtVerifier::without_keys(config)?;
        verifier.set_jwk_set(jwks)?;
        Ok(verifier)
    }

    fn without_keys(config: JwtConfig) -> Result<JwtVerifier> {
        config.check()?;
        let validations = config
            .algorithms
            .iter()
            .map(|a| {
                let alg = a.to_jwt();
                let mut v = Validation::new(alg);
                v.set_issuer(&[&config.issuer]);
                v.set_audience(&[&config.audience]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                v.leeway = config.leeway_secs;
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                (alg, v)
            })
            .collect();
        Ok(JwtVerifier {
            config,
            validations,
            keys: RwLock::new(Arc::new(KeyRing::new())),
        })
    }

    /// Replaces the keys with those of `jwks_json`; the refresh hook. On an
    /// error (not JSON, no usable key) the current keys stay. Returns how
    /// many keys are usable.
    pub fn set_jwks(&self, jwks_json: &str) -> Result<usize> {
        let value: Value = serde_json::from_str(jwks_json).map_err(|e| Error::Jwks {
            reason: format!("not JSON: {e}"),
        })?;
        let Some(Value::Array(raw)) = value.get("keys") else {
            return Err(Error::Jwks {
                reason: "no \"keys\" array".into(),
            });
        };
        // Key by key, so that one key of a type this library cannot parse
        // does not take the issuer's other keys down with it.
        let mut jwks = Vec::with_capacity(raw.len());
        for (i, k) in raw.iter().enumerate() {
            match serde_json::from_value::<Jwk>(k.clone()) {
                Ok(jwk) => jwks.push(jwk),
                Err(e) => {
                    tracing::warn!(index = i, error = %e, "JWKS key skipped: not a key this verifier can read")
                }
            }
        }
        self.install(&jwks)
    }

    /// [`JwtVerifier::set_jwks`] with a parsed [`JwkSet`].
    pub fn set_jwk_set(&self, jwks: &JwkSet) -> Result<usize> {
        self.install(&jwks.keys)
    }

    /// The `kid`s of the usable keys, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.ring().keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Checks a token (without `Bearer `): its `alg` is allowed, its `kid`
    /// names a key of that `alg`, the signature verifies, `exp` and `nbf`
    /// hold (within the leeway), `iss` and `aud` match; then maps its
    /// claims to a principal (module docs). Every failure reads "invalid
    /// bearer token" to the caller; [`AuthError::Token`] says why.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_claims(token)
            .and_then(|claims| self.principal(&claims))
            .map_err(AuthError::from)
    }

    /// [`JwtVerifier::verify`], and the token's `exp` (seconds since the
    /// epoch): a sign-in session made from the token ends with it.
    pub fn verify_until(&self, token: &str) -> Result<(Principal, i64), AuthError> {
        let claims = self.verify_claims(token).map_err(AuthError::from)?;
        let principal = self.principal(&claims).map_err(AuthError::from)?;
        // `exp` is required and validated above.
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        Ok((principal, exp))
    }

    /// An OpenID Connect ID token: [`JwtVerifier::verify_until`], and its
    /// `nonce` claim must be `nonce`, the value the sign-in that asked for
    /// the token kept (compared in constant time). A token without a nonce,
    /// or made for another sign-in, is [`TokenRejection::WrongNonce`].
    pub fn verify_id_token(&self, token: &str, nonce: &str) -> Result<(Principal, i64), AuthError> {
        use subtle::ConstantTimeEq;
        let claims = self.verify_claims(token).map_err(AuthError::from)?;
        let given = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if nonce.is_empty() || !bool::from(given.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(TokenRejection::WrongNonce.into());
        }
        // OpenID Connect Core 3.1.3.7: with several audiences an authorized
        // party must be named, and a named one must be this client (our
        // audience) — not a token issued to another client that lists us.
        let audiences = match claims.get("aud") {
            Some(Value::Array(a)) => a.len(),
            Some(_) => 1,
            None => 0,
        };
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != self.config.audience => {
                return Err(TokenRejection::WrongAudience.into())
            }
            None if audiences > 1 => return Err(TokenRejection::WrongAudience.into()),
            _ => {}
        }
        let principal = self.principal(&claims).map_err(AuthError::from)?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        Ok((principal, exp))
    }

    fn verify_claims(&self, token: &str) -> Result<Map<String, Value>, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::Malformed);
        }
        // `alg: none` fails here: the library has no such algorithm.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenRejection::CriticalHeader);
        }
        let alg = header.alg;
        let validation = self
            .validations
            .get(&alg)
            .ok_or(TokenRejection::AlgorithmNotAllowed)?;
        let kid = header.kid.as_deref().ok_or(TokenRejection::MissingKid)?;
        let ring = self.ring();
        let key = ring
            .get(kid)
            .ok_or(TokenRejection::UnknownKid)?
            .iter()
            .find(|k| k.algorithms.contains(&alg))
            .ok_or(TokenRejection::KeyAlgorithmMismatch)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| rejection(e.kind()))?;
        Ok(data.claims)
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, TokenRejection> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(TokenRejection::MissingClaim)?;
        if sub.is_empty() || sub.len() > 255 || sub.chars().any(char::is_control) {
            return Err(TokenRejection::BadSubject);
        }
        let role = self.role(claims)?;
        let scope = self.scope(claims, role)?;
        // A customer or an outside system never covers every portfolio.
        if matches!(role, Role::Customer | Role::Integration) && scope == Scope::All {
            return Err(TokenRejection::BadPortfolios);
        }
        let name = ["name", "preferred_username"]
            .iter()
            .filter_map(|c| claims.get(*c).and_then(Value::as_str))
            .find(|n| {
                !n.is_empty() && n.chars().count() <= 128 && !n.chars().any(char::is_control)
            });
        let customer = match role {
            Role::Customer => Some(
                claims
                    .get(&self.config.customer_claim)
                    .and_then(Value::as_str)
                    .filter(|c| crate::is_valid_customer_id(c))
                    .ok_or(TokenRejection::BadCustomer)?,
            ),
            _ => None,
        };
        Ok(
            Principal::new(format!("jwt:{sub}"), name, role, scope, AuthMethod::Jwt)
                .with_customer(customer),
        )
    }

    fn role(&self, claims: &Map<String, Value>) -> Result<Role, TokenRejection> {
        let precedence = &self.config.role_precedence;
        let first_of = |carried: &[Role]| {
            precedence
                .iter()
                .find(|r| carried.contains(r))
                .copied()
                .ok_or(TokenRejection::NoRole)
        };
        if let Some(v) = claims.get(&self.config.role_claim) {
            let names: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let roles = names
                .into_iter()
                .map(|n| n.as_str().and_then(|s| s.parse::<Role>().ok()))
                .collect::<Option<Vec<Role>>>()
                .ok_or(TokenRejection::UnknownRole)?;
            return first_of(&roles);
        }
        let Some(shared) = self.config.roles_claim.as_ref().and_then(|c| claims.get(c)) else {
            return Err(TokenRejection::NoRole);
        };
        let roles: Vec<Role> = match shared {
            Value::Array(a) => a.iter().filter_map(|n| n.as_str()?.parse().ok()).collect(),
            Value::String(s) => s.parse().ok().into_iter().collect(),
            _ => Vec::new(),
        };
        first_of(&roles)
    }

    fn scope(&self, claims: &Map<String, Value>, role: Role) -> Result<Scope, TokenRejection> {
        let bad = |_| TokenRejection::BadPortfolios;
        match claims.get(&self.config.portfolios_claim) {
            None | Some(Value::Null) => Ok(match role {
                Role::Auditor | Role::Admin => Scope::All,
                Role::Viewer
                | Role::Trader
                | Role::PortfolioManager
                | Role::Customer
                | Role::Integration => Scope::None,
            }),
            Some(Value::String(s)) if s == "*" => Ok(Scope::All),
            Some(Value::String(s)) => Scope::portfolios([s.as_str()]).map_err(bad),
            Some(Value::Array(ids)) => {
                let ids = ids
                    .iter()
                    .map(Value::as_str)
                    .collect::<Option<Vec<&str>>>()
                    .ok_or(TokenRejection::BadPortfolios)?;
                if ids.contains(&"*") {
                    Ok(Scope::All)
                } else {
                    Scope::portfolios(ids).map_err(bad)
                }
            }
            Some(_) => Err(TokenRejection::BadPortfolios),
        }
    }

    fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn install(&self, jwks: &[Jwk]) -> Result<usize> {
        let allowed: Vec<Algorithm> = self.config.algorithms.iter().map(|a| a.to_jwt()).collect();
        let mut ring = KeyRing::new();
        let mut usable = 0;
        for jwk in jwks {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            match verify_key(jwk, &allowed) {
                Ok(key) => {
                    ring.entry(kid).or_default().push(key);
                    usable += 1;
                }
                Err(reason) => tracing::warn!(kid, reason, "JWKS key skipped"),
            }
        }
        if usable == 0 {
            return Err(Error::Jwks {
                reason: format!(
                    "none of its {} keys can verify tokens signed with {}",
                    jwks.len(),
                    self.config
                        .algorithms
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(usable)
    }
}

/// The key of a JWK and the algorithms it may verify, or why it is skipped.
fn verify_key(jwk: &Jwk, allowed: &[Algorithm]) -> std::result::Result<VerifyKey, &'static str> {
    if jwk.common.key_id.as_deref().unwrap_or("").is_empty() {
        return Err("no kid: tokens name their key by kid");
    }
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("not a signing key (use is not \"sig\")"),
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err("key_ops does not include \"verify\"");
        }
    }
    if let AlgorithmParameters::OctetKey(_) = jwk.algorithm {
        return Err("symmetric (oct) keys are never accepted");
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "key material is not valid base64url")?;
    // What the key's type and size allow. The sizes are checked here, not
    // left to the verifier: the EdDSA verifier slices 32 bytes out of the
    // key and would panic on a shorter one.
    let by_type: &[Algorithm] = match (&jwk.algorithm, key.kind()) {
        (AlgorithmParameters::RSA(_), DecodingKeyKind::RsaModulusExponent { n, .. }) => {
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return Err("RSA key shorter than 2048 bits");
            }
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ]
        }
        (AlgorithmParameters::EllipticCurve(p), DecodingKeyKind::SecretOrDer(point)) => {
            match (&p.curve, point.len()) {
                (EllipticCurve::P256, 65) => &[Algorithm::ES256],
                (EllipticCurve::P384, 97) => &[Algorithm::ES384],
                (EllipticCurve::P256 | EllipticCurve::P384, _) => {
                    return Err("EC coordinates of the wrong length")
                }
                _ => return Err("EC curve not supported (P-256 and P-384 are)"),
            }
        }
        (AlgorithmParameters::OctetKeyPair(p), DecodingKeyKind::SecretOrDer(x)) => {
            match (&p.curve, x.len()) {
                (EllipticCurve::Ed25519, 32) => &[Algorithm::EdDSA],
                (EllipticCurve::Ed25519, _) => return Err("Ed25519 key is not 32 bytes"),
                _ => return Err("OKP curve not supported (Ed25519 is)"),
            }
        }
        _ => return Err("key type not supported"),
    };
    // A key that declares its `alg` verifies only that one.
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(
            Algorithm::from_str(&a.to_string())
                .ok()
                .filter(|a| by_type.contains(a))
                .ok_or("its alg does not fit its key type")?,
        ),
    };
    let algorithms: Vec<Algorithm> = by_type
        .iter()
        .copied()
        .filter(|a| declared.is_none_or(|d| d == *a) && allowed.contains(a))
        .collect();
    if algorithms.is_empty() {
        return Err("its algorithms are not among the allowed ones");
    }
    Ok(VerifyKey { key, algorithms })
}

/// What a library error says about the token.
fn rejection(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenRejection::BadSignature,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        ErrorKind::InvalidIssuer => TokenRejection::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRejection::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => TokenRejection::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenRejection::KeyAlgorithmMismatch
        }
        _ => TokenRejection::Malformed,
    }
}
