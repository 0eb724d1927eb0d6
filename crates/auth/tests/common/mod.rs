//! Test signers: fresh keys per test, made with the crypto crates that
//! jsonwebtoken already brings, so no key material is checked in.

#![allow(dead_code)] // each test file uses a different part

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub const ISSUER: &str = "https://idp.example.test/realms/bank";
pub const AUDIENCE: &str = "ultracore";

/// A private key, its algorithm and its public JWK.
pub struct Signer {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
    pub jwk: Value,
}

impl Signer {
    /// An Ed25519 key (EdDSA).
    pub fn ed25519(kid: &str) -> Res<Signer> {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let der = key.to_pkcs8_der()?;
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        Ok(Signer {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid,
                        "use": "sig", "alg": "EdDSA"}),
        })
    }

    /// A P-256 key (ES256).
    pub fn es256(kid: &str) -> Res<Signer> {
        use p256::pkcs8::EncodePrivateKey;
        let key = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>())?;
        let der = key.to_pkcs8_der()?;
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let mut jwk = serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(
            &encoding,
            Algorithm::ES256,
        )?)?;
        jwk["kid"] = json!(kid);
        Ok(Signer {
            kid: kid.into(),
            alg: Algorithm::ES256,
            key: encoding,
            jwk,
        })
    }

    /// A token over `claims` with this key's `alg` and `kid`.
    pub fn sign(&self, claims: &Value) -> Res<String> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with(header, claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> Res<String> {
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

/// A JWKS document with these keys' public halves.
pub fn jwks(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Valid claims for `sub` with a role, five minutes to live.
pub fn claims(sub: &str, role: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now(),
        "exp": now() + 300,
        "ultracore_role": role,
    })
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
