//! OIDC tokens: what is accepted, what is refused and why.

mod common;

use std::sync::Arc;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use ultracore_auth::{
    AuthError, AuthMethod, Authenticator, Error, JwtConfig, JwtVerifier, KeyStore, Role, Scope,
    SigningAlgorithm, TokenRejection,
};

fn verifier(signers: &[&Signer]) -> Res<JwtVerifier> {
    Ok(JwtVerifier::new(
        JwtConfig::new(ISSUER, AUDIENCE),
        &jwks(signers),
    )?)
}

fn rejected(v: &JwtVerifier, token: &str) -> Option<TokenRejection> {
    match v.verify(token) {
        Err(AuthError::Token { reason }) => Some(reason),
        _ => None,
    }
}

#[test]
fn valid_token_gives_the_right_principal() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let mut c = claims("alice", "trader");
    c["ultracore_portfolios"] = json!(["pf-1", "pf-2"]);
    c["name"] = json!("Alice Example");
    let p = v.verify(&signer.sign(&c)?)?;
    assert_eq!(p.id(), "jwt:alice");
    assert_eq!(p.name(), Some("Alice Example"));
    assert_eq!(p.role(), Role::Trader);
    assert_eq!(p.method(), AuthMethod::Jwt);
    assert_eq!(p.scope(), &Scope::portfolios(["pf-1", "pf-2"])?);
    assert!(p.can_access_portfolio("pf-2"));
    assert!(!p.can_access_portfolio("pf-3"));
    Ok(())
}

#[test]
fn es256_tokens_are_accepted_beside_eddsa() -> TestResult {
    let ed = Signer::ed25519("ed")?;
    let ec = Signer::es256("ec")?;
    let v = verifier(&[&ed, &ec])?;
    assert_eq!(v.key_ids(), ["ec", "ed"]);
    for s in [&ed, &ec] {
        let p = v.verify(&s.sign(&claims("bob", "admin"))?)?;
        assert_eq!(p.role(), Role::Admin);
    }
    Ok(())
}

#[test]
fn wrong_issuer_audience_and_times_are_rejected() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    // Each case sets a claim to a value, or removes it (None).
    let with = |claim: &str, value: Option<Value>| -> Res<String> {
        let mut c = claims("alice", "viewer");
        let c_map = c.as_object_mut().ok_or("object")?;
        match value {
            Some(v) => c_map.insert(claim.to_owned(), v),
            None => c_map.remove(claim),
        };
        signer.sign(&c)
    };
    let cases = [
        (
            "iss",
            Some(json!("https://evil.test")),
            TokenRejection::WrongIssuer,
        ),
        (
            "aud",
            Some(json!("someone-else")),
            TokenRejection::WrongAudience,
        ),
        ("aud", Some(json!([])), TokenRejection::WrongAudience),
        ("exp", Some(json!(now() - 3600)), TokenRejection::Expired),
        (
            "nbf",
            Some(json!(now() + 3600)),
            TokenRejection::NotYetValid,
        ),
        ("exp", None, TokenRejection::MissingClaim),
        ("iss", None, TokenRejection::MissingClaim),
        ("aud", None, TokenRejection::MissingClaim),
        ("sub", None, TokenRejection::MissingClaim),
    ];
    for (claim, value, reason) in cases {
        let token = with(claim, value.clone())?;
        assert_eq!(rejected(&v, &token), Some(reason), "{claim} = {value:?}");
    }
    // Within the 30 s leeway, a just-expired token still passes.
    let p = v.verify(&with("exp", Some(json!(now() - 10)))?)?;
    assert_eq!(p.id(), "jwt:alice");
    // An audience array passes when it names ours.
    v.verify(&with("aud", Some(json!(["other", AUDIENCE])))?)?;
    Ok(())
}

#[test]
fn wrong_signature_is_rejected() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let impostor = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let forged = impostor.sign(&claims("alice", "admin"))?;
    assert_eq!(rejected(&v, &forged), Some(TokenRejection::BadSignature));
    // A real token whose claims were swapped for others.
    let real = signer.sign(&claims("alice", "viewer"))?;
    let other = signer.sign(&claims("alice", "admin"))?;
    let parts: Vec<&str> = real.split('.').collect();
    let other_claims = other.split('.').nth(1).ok_or("no claims")?;
    let spliced = format!("{}.{}.{}", parts[0], other_claims, parts[2]);
    assert_eq!(rejected(&v, &spliced), Some(TokenRejection::BadSignature));
    Ok(())
}

#[test]
fn unknown_or_missing_kid_is_rejected() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k2".into());
    let token = signer.sign_with(header, &claims("alice", "viewer"))?;
    assert_eq!(rejected(&v, &token), Some(TokenRejection::UnknownKid));
    let token = signer.sign_with(Header::new(Algorithm::EdDSA), &claims("alice", "viewer"))?;
    assert_eq!(rejected(&v, &token), Some(TokenRejection::MissingKid));
    Ok(())
}

#[test]
fn alg_none_is_rejected() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let claims = b64(claims("alice", "admin").to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64(json!({"alg": alg, "typ": "JWT", "kid": "k1"})
            .to_string()
            .as_bytes());
        for token in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
            assert_eq!(
                rejected(&v, &token),
                Some(TokenRejection::Malformed),
                "{alg}"
            );
        }
    }
    Ok(())
}

#[test]
fn hs256_forged_with_the_public_key_is_rejected() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let x = signer.jwk["x"].as_str().ok_or("no x")?.to_owned();
    // The public key as the attacker may find it: raw bytes, the base64url
    // text, or the whole JWK; each used as an HMAC secret.
    let secrets: Vec<Vec<u8>> = vec![
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &x)?,
        x.clone().into_bytes(),
        signer.jwk.to_string().into_bytes(),
    ];
    // Even a JWKS that also offers a symmetric key under the same kid does
    // not help: symmetric keys are never loaded.
    let oct = json!({"kty": "oct", "k": x, "kid": "k1", "alg": "HS256"});
    let v = JwtVerifier::new(
        JwtConfig::new(ISSUER, AUDIENCE),
        &json!({"keys": [signer.jwk, oct]}).to_string(),
    )?;
    assert_eq!(v.key_ids(), ["k1"]);
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for secret in &secrets {
            let mut header = Header::new(alg);
            header.kid = Some("k1".into());
            let token = jsonwebtoken::encode(
                &header,
                &claims("mallory", "admin"),
                &EncodingKey::from_secret(secret),
            )?;
            assert_eq!(
                rejected(&v, &token),
                Some(TokenRejection::AlgorithmNotAllowed),
                "{alg:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn algorithms_are_pinned_to_config_and_to_the_key() -> TestResult {
    let ed = Signer::ed25519("ed")?;
    let ec = Signer::es256("ec")?;
    // Only ES256 allowed: an EdDSA token is refused, and so is the Ed25519
    // key itself (it would verify nothing).
    let mut config = JwtConfig::new(ISSUER, AUDIENCE);
    config.algorithms = vec![SigningAlgorithm::ES256];
    let v = JwtVerifier::new(config, &jwks(&[&ed, &ec]))?;
    assert_eq!(v.key_ids(), ["ec"]);
    let token = ed.sign(&claims("alice", "viewer"))?;
    assert_eq!(
        rejected(&v, &token),
        Some(TokenRejection::AlgorithmNotAllowed)
    );
    // An ES256 token that names the Ed25519 key's kid.
    let v = verifier(&[&ed, &ec])?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ed".into());
    let token = ec.sign_with(header, &claims("alice", "viewer"))?;
    assert_eq!(
        rejected(&v, &token),
        Some(TokenRejection::KeyAlgorithmMismatch)
    );
    // A header with `crit` names extensions we do not implement.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ed".into());
    header.crit = Some(vec!["exp-ext".into()]);
    let token = ed.sign_with(header, &claims("alice", "viewer"))?;
    assert_eq!(rejected(&v, &token), Some(TokenRejection::CriticalHeader));
    Ok(())
}

#[test]
fn role_comes_from_the_role_claim_or_the_roles_array() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let role_of = |c: Value| -> Res<Result<Role, AuthError>> {
        Ok(v.verify(&signer.sign(&c)?).map(|p| p.role()))
    };
    let mut base = claims("alice", "viewer");
    base.as_object_mut()
        .ok_or("object")?
        .remove("ultracore_role");
    let with = |k: &str, val: Value| {
        let mut c = base.clone();
        c[k] = val;
        c
    };
    // Our own claim: a name, or names, all known.
    assert_eq!(
        role_of(with("ultracore_role", json!("auditor")))?,
        Ok(Role::Auditor)
    );
    assert_eq!(
        role_of(with("ultracore_role", json!(["admin", "viewer"])))?,
        Ok(Role::Viewer),
        "least access first by default"
    );
    let unknown = Err(AuthError::Token {
        reason: TokenRejection::UnknownRole,
    });
    assert_eq!(role_of(with("ultracore_role", json!("root")))?, unknown);
    assert_eq!(
        role_of(with("ultracore_role", json!(["viewer", "root"])))?,
        unknown
    );
    assert_eq!(role_of(with("ultracore_role", json!(7)))?, unknown);
    // The shared claim: others' roles are ignored.
    assert_eq!(
        role_of(with(
            "roles",
            json!(["hr-admin", "trader", "offline_access"])
        ))?,
        Ok(Role::Trader)
    );
    let no_role = Err(AuthError::Token {
        reason: TokenRejection::NoRole,
    });
    assert_eq!(role_of(with("roles", json!(["hr-admin"])))?, no_role);
    assert_eq!(role_of(base.clone())?, no_role);
    // The role claim wins over the roles array.
    let mut both = with("roles", json!(["admin"]));
    both["ultracore_role"] = json!("viewer");
    assert_eq!(role_of(both)?, Ok(Role::Viewer));
    Ok(())
}

#[test]
fn role_precedence_is_configurable_and_can_exclude_roles() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let mut config = JwtConfig::new(ISSUER, AUDIENCE);
    // Admin is never granted by a token; among the rest, the widest wins.
    config.role_precedence = vec![
        Role::Auditor,
        Role::PortfolioManager,
        Role::Trader,
        Role::Viewer,
    ];
    let v = JwtVerifier::new(config, &jwks(&[&signer]))?;
    let role_of = |roles: Value| -> Res<Result<Role, AuthError>> {
        let mut c = claims("alice", "viewer");
        c.as_object_mut().ok_or("object")?.remove("ultracore_role");
        c["roles"] = roles;
        Ok(v.verify(&signer.sign(&c)?).map(|p| p.role()))
    };
    assert_eq!(
        role_of(json!(["viewer", "portfolio-manager"]))?,
        Ok(Role::PortfolioManager)
    );
    assert_eq!(role_of(json!(["admin", "viewer"]))?, Ok(Role::Viewer));
    assert_eq!(
        role_of(json!(["admin"]))?,
        Err(AuthError::Token {
            reason: TokenRejection::NoRole
        })
    );
    Ok(())
}

#[test]
fn portfolios_claim_is_safe_by_default() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let scope_of = |role: &str, portfolios: Option<Value>| -> Res<Result<Scope, AuthError>> {
        let mut c = claims("alice", role);
        if let Some(p) = portfolios {
            c["ultracore_portfolios"] = p;
        }
        Ok(v.verify(&signer.sign(&c)?).map(|p| p.scope().clone()))
    };
    // Absent: nothing for the portfolio roles, everything for auditor and admin.
    for role in ["viewer", "trader", "portfolio-manager"] {
        assert_eq!(scope_of(role, None)?, Ok(Scope::None), "{role}");
    }
    for role in ["auditor", "admin"] {
        assert_eq!(scope_of(role, None)?, Ok(Scope::All), "{role}");
    }
    assert_eq!(scope_of("viewer", Some(json!("*")))?, Ok(Scope::All));
    assert_eq!(
        scope_of("viewer", Some(json!(["pf-1", "*"])))?,
        Ok(Scope::All)
    );
    assert_eq!(
        scope_of("viewer", Some(json!("pf-1")))?,
        Ok(Scope::portfolios(["pf-1"])?)
    );
    // Explicit portfolios narrow an auditor too.
    assert_eq!(
        scope_of("auditor", Some(json!(["pf-9"])))?,
        Ok(Scope::portfolios(["pf-9"])?)
    );
    let bad = Err(AuthError::Token {
        reason: TokenRejection::BadPortfolios,
    });
    for p in [
        json!(["../x"]),
        json!([1]),
        json!({"pf-1": true}),
        json!(""),
    ] {
        assert_eq!(scope_of("viewer", Some(p.clone()))?, bad, "{p}");
    }
    Ok(())
}

#[test]
fn subjects_must_be_printable() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    for sub in ["", "a\nb", &"x".repeat(256)] {
        let token = signer.sign(&claims(sub, "viewer"))?;
        assert_eq!(
            rejected(&v, &token),
            Some(TokenRejection::BadSubject),
            "{sub:?}"
        );
    }
    Ok(())
}

#[test]
fn unusable_jwks_keys_are_skipped_without_panicking() -> TestResult {
    let signer = Signer::ed25519("good")?;
    let keys = json!({"keys": [
        // Ed25519 with a 16-byte x: the library's verifier would panic on it.
        {"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 16]), "kid": "short"},
        {"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB", "kid": "rsa1024"},
        {"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32]), "kid": "enc", "use": "enc"},
        {"kty": "OKP", "crv": "Ed25519", "x": signer.jwk["x"], "kid": "wrong-alg", "alg": "ES256"},
        {"kty": "OKP", "crv": "Ed25519", "x": signer.jwk["x"]},
        {"kty": "something-new", "kid": "future"},
        signer.jwk,
    ]});
    let v = JwtVerifier::new(JwtConfig::new(ISSUER, AUDIENCE), &keys.to_string())?;
    assert_eq!(v.key_ids(), ["good"]);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("short".into());
    let token = signer.sign_with(header, &claims("alice", "viewer"))?;
    assert_eq!(rejected(&v, &token), Some(TokenRejection::UnknownKid));
    // Nothing usable at all: an error, not a verifier that refuses everyone.
    let e = JwtVerifier::new(JwtConfig::new(ISSUER, AUDIENCE), r#"{"keys": []}"#).unwrap_err();
    assert!(matches!(e, Error::Jwks { .. }), "{e}");
    assert!(JwtVerifier::new(JwtConfig::new(ISSUER, AUDIENCE), "not json").is_err());
    Ok(())
}

#[test]
fn set_jwks_rotates_keys_and_keeps_them_on_a_bad_refresh() -> TestResult {
    let old = Signer::ed25519("2025")?;
    let new = Signer::es256("2026")?;
    let v = verifier(&[&old])?;
    let old_token = old.sign(&claims("alice", "viewer"))?;
    let new_token = new.sign(&claims("alice", "viewer"))?;
    assert_eq!(rejected(&v, &new_token), Some(TokenRejection::UnknownKid));
    assert_eq!(v.set_jwks(&jwks(&[&new]))?, 1);
    v.verify(&new_token)?;
    assert_eq!(rejected(&v, &old_token), Some(TokenRejection::UnknownKid));
    // A refresh that yields nothing usable keeps the current keys.
    assert!(v
        .set_jwks(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}"#)
        .is_err());
    assert!(v.set_jwks("<html>").is_err());
    v.verify(&new_token)?;
    Ok(())
}

#[test]
fn config_refuses_symmetric_algorithms_and_bad_settings() -> TestResult {
    for alg in ["HS256", "none", "hs256", "RSA-OAEP"] {
        assert!(alg.parse::<SigningAlgorithm>().is_err(), "{alg}");
    }
    assert!(serde_json::from_value::<JwtConfig>(json!({
        "issuer": ISSUER, "audience": AUDIENCE, "algorithms": ["HS256"]
    }))
    .is_err());
    let config: JwtConfig =
        serde_json::from_value(json!({"issuer": ISSUER, "audience": AUDIENCE}))?;
    assert_eq!(config, JwtConfig::new(ISSUER, AUDIENCE));
    assert!(serde_json::from_value::<JwtConfig>(json!({
        "issuer": ISSUER, "audience": AUDIENCE, "typo": 1
    }))
    .is_err());
    let signer = Signer::ed25519("k1")?;
    let mut bad = JwtConfig::new(ISSUER, AUDIENCE);
    bad.leeway_secs = 3600;
    assert!(JwtVerifier::new(bad, &jwks(&[&signer])).is_err());
    let mut bad = JwtConfig::new(ISSUER, "");
    bad.audience.clear();
    assert!(JwtVerifier::new(bad, &jwks(&[&signer])).is_err());
    Ok(())
}

#[test]
fn authenticator_routes_keys_and_tokens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let keys = Arc::new(KeyStore::open(dir.path())?);
    let (_, key) = keys.create(Role::Viewer, Scope::All, None)?;
    let signer = Signer::ed25519("k1")?;
    let token = signer.sign(&claims("alice", "auditor"))?;

    let keys_only = Authenticator::new(Arc::clone(&keys));
    let p = keys_only.authenticate(Some(&format!("Bearer {}", key.expose())))?;
    assert_eq!(p.method(), AuthMethod::ApiKey);
    assert_eq!(
        keys_only.authenticate(Some(&format!("Bearer {token}"))),
        Err(AuthError::TokensNotAccepted)
    );
    assert_eq!(keys_only.authenticate(None), Err(AuthError::Missing));
    assert_eq!(
        keys_only.authenticate(Some(key.expose())),
        Err(AuthError::NotBearer),
        "a key without the scheme"
    );

    let both = keys_only.with_jwt(Arc::new(verifier(&[&signer])?));
    let p = both.authenticate(Some(&format!("bearer {token}")))?;
    assert_eq!((p.id(), p.role()), ("jwt:alice", Role::Auditor));
    let p = both.authenticate(Some(&format!("Bearer {}", key.expose())))?;
    assert_eq!(p.role(), Role::Viewer);
    assert_eq!(
        both.authenticate(Some("Bearer uck_nonsense")),
        Err(AuthError::MalformedKey),
        "uck_ never falls through to the JWT verifier"
    );
    Ok(())
}

#[test]
fn a_customer_token_speaks_for_its_one_customer() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let mut c = claims("app-session-1", "customer");
    c["ultracore_customer"] = json!("c-1");
    c["ultracore_portfolios"] = json!(["pf-c1"]);
    let p = v.verify(&signer.sign(&c)?)?;
    assert_eq!((p.role(), p.customer()), (Role::Customer, Some("c-1")));
    assert!(p.can_access_customer("c-1") && !p.can_access_customer("c-2"));
    // Without its customer, or over every portfolio: refused.
    let mut none = claims("app-session-2", "customer");
    none["ultracore_portfolios"] = json!(["pf-c1"]);
    assert_eq!(
        rejected(&v, &signer.sign(&none)?),
        Some(TokenRejection::BadCustomer)
    );
    let mut all = c.clone();
    all["ultracore_portfolios"] = json!("*");
    assert_eq!(
        rejected(&v, &signer.sign(&all)?),
        Some(TokenRejection::BadPortfolios)
    );
    // Staff speak for no customer, whatever the token carries.
    let mut staff = claims("bob", "admin");
    staff["ultracore_customer"] = json!("c-1");
    let p = v.verify(&signer.sign(&staff)?)?;
    assert_eq!(p.customer(), None);
    assert!(p.can_access_customer("c-2"));
    Ok(())
}

#[test]
fn an_id_token_must_carry_the_nonce_of_its_sign_in() -> TestResult {
    let signer = Signer::ed25519("k1")?;
    let v = verifier(&[&signer])?;
    let mut c = claims("alice", "viewer");
    c["nonce"] = json!("n-123");
    let token = signer.sign(&c)?;
    let (p, exp) = v.verify_id_token(&token, "n-123")?;
    assert_eq!(p.id(), "jwt:alice");
    assert!(exp > 0);
    let wrong = |r: Result<_, AuthError>| match r {
        Err(AuthError::Token { reason }) => Some(reason),
        _ => None,
    };
    assert_eq!(
        wrong(v.verify_id_token(&token, "n-124")),
        Some(TokenRejection::WrongNonce)
    );
    assert_eq!(
        wrong(v.verify_id_token(&token, "")),
        Some(TokenRejection::WrongNonce)
    );
    let without = signer.sign(&claims("alice", "viewer"))?;
    assert_eq!(
        wrong(v.verify_id_token(&without, "n-123")),
        Some(TokenRejection::WrongNonce)
    );
    // The other checks come first: a token of another audience is refused
    // as such, whatever its nonce.
    let mut other = claims("alice", "viewer");
    other["aud"] = json!("someone-else");
    other["nonce"] = json!("n-123");
    assert_eq!(
        wrong(v.verify_id_token(&signer.sign(&other)?, "n-123")),
        Some(TokenRejection::WrongAudience)
    );
    // The authorized party (OpenID Connect Core 3.1.3.7): a token issued to
    // another client that lists this one among its audiences is refused;
    // several audiences need an azp naming this client.
    let ours = c["aud"].clone();
    let mut shared = c.clone();
    shared["aud"] = json!([ours.clone(), "other-client"]);
    assert_eq!(
        wrong(v.verify_id_token(&signer.sign(&shared)?, "n-123")),
        Some(TokenRejection::WrongAudience)
    );
    shared["azp"] = json!("other-client");
    assert_eq!(
        wrong(v.verify_id_token(&signer.sign(&shared)?, "n-123")),
        Some(TokenRejection::WrongAudience)
    );
    shared["azp"] = ours;
    assert!(v.verify_id_token(&signer.sign(&shared)?, "n-123").is_ok());
    Ok(())
}
