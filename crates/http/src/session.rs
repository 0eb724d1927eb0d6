//! Sign-in sessions for the web console: a browser signs in once with an
//! API key or an identity provider's token and then carries an opaque
//! session cookie instead of the credential.
//!
//! - The cookie (`uc_session`) is `HttpOnly` (page scripts cannot read
//!   it), `SameSite=Strict` (other sites' pages never send it), `Path=/`,
//!   and `Secure` when the server says it is reached over HTTPS.
//! - The session id is 256 random bits; the server keeps only its SHA-256,
//!   so the table in memory holds nothing a browser could present.
//! - A session ends after 30 minutes unused, 8 hours after sign-in, when
//!   the token it was made from expires, when its API key is revoked, or at
//!   sign-out. Sessions live in the server's memory: a restart signs
//!   everyone out.
//! - Unsafe requests (POST, PUT, PATCH, DELETE) made with the cookie must
//!   also carry the session's CSRF token in `X-CSRF-Token` (the page reads
//!   it from `GET /console/session`); with the Origin check and JSON-only
//!   bodies of the guard, a cross-site page cannot make one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use ultracore_auth::Principal;

/// The cookie's name.
pub const COOKIE: &str = "uc_session";
/// The header unsafe requests made with the cookie carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long sessions last and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Unused this long, a session ends.
    pub idle: Duration,
    /// This long after sign-in, a session ends whatever its use.
    pub absolute: Duration,
    /// Sessions at once; past it, the one unused longest ends.
    pub max: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(8 * 3600),
            max: 10_000,
        }
    }
}

/// A signed-in session, as the guard finds it.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The token unsafe requests must echo in `X-CSRF-Token`.
    pub csrf: String,
    /// When it ends at the latest (seconds since the epoch).
    pub expires_at: i64,
}

#[derive(Debug)]
struct Entry {
    session: Session,
    /// The API key it was made from, checked for revocation on each use.
    key_id: Option<String>,
    ends: Instant,
    last_seen: Instant,
}

/// The sessions of this server (cheap to clone; clones share them).
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<[u8; 32], Entry>>>,
    limits: SessionLimits,
}

/// What a new session gives the browser.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie's value: shown once, kept only as its hash.
    pub id: String,
    pub session: Session,
    pub max_age: Duration,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions {
            inner: Arc::default(),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a session for `principal`, ending at the latest at `until`
    /// (seconds since the epoch; a token's `exp`). `key_id` names the API
    /// key it was made from.
    pub fn create(
        &self,
        principal: Principal,
        key_id: Option<String>,
        until: Option<i64>,
    ) -> NewSession {
        let now = Instant::now();
        let unix = unix_now();
        let mut life = self.limits.absolute;
        if let Some(exp) = until {
            life = life.min(Duration::from_secs(exp.saturating_sub(unix).max(0) as u64));
        }
        let id = random_hex(32);
        let session = Session {
            principal,
            csrf: random_hex(32),
            expires_at: unix + life.as_secs() as i64,
        };
        let mut map = self.lock();
        if map.len() >= self.limits.max {
            map.retain(|_, e| e.ends > now && now.duration_since(e.last_seen) < self.limits.idle);
            if map.len() >= self.limits.max {
                if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(
            digest(&id),
            Entry {
                session: session.clone(),
                key_id,
                ends: now + life,
                last_seen: now,
            },
        );
        NewSession {
            id,
            session,
            max_age: life,
        }
    }

    /// The live session with this cookie value, marked as used; `None`
    /// (and the session forgotten) when it ended. `key_active` tells
    /// whether an API key is still valid.
    pub fn lookup(&self, id: &str, key_active: impl Fn(&str) -> bool) -> Option<Session> {
        if id.len() != 64 {
            return None;
        }
        let key = digest(id);
        let now = Instant::now();
        let mut map = self.lock();
        let entry = map.get_mut(&key)?;
        let live = entry.ends > now
            && now.duration_since(entry.last_seen) < self.limits.idle
            && entry.key_id.as_deref().is_none_or(&key_active);
        if !live {
            map.remove(&key);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    /// Ends the session with this cookie value (sign-out).
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(&digest(id)).is_some()
    }

    /// Sessions held now (ended ones included until next looked up or
    /// pushed out).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `given` is the session's CSRF token (constant time).
pub fn csrf_matches(session: &Session, given: Option<&str>) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// The session cookie's value in a request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(new: &NewSession, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        new.id,
        new.max_age.as_secs()
    );
    HeaderValue::from_str(&text).expect("hex and ASCII only")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .expect("ASCII only")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ultracore_auth::{AuthMethod, Role, Scope};

    fn principal() -> Principal {
        Principal::new(
            "abcdefghijkl",
            None,
            Role::Viewer,
            Scope::All,
            AuthMethod::ApiKey,
        )
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_at_sign_out() {
        let s = Sessions::default();
        let new = s.create(principal(), Some("abcdefghijkl".into()), None);
        assert_eq!(new.id.len(), 64);
        let found = s.lookup(&new.id, |_| true).unwrap();
        assert_eq!(found.principal.id(), "abcdefghijkl");
        assert!(csrf_matches(&found, Some(&new.session.csrf)));
        assert!(!csrf_matches(&found, Some("nope")));
        assert!(!csrf_matches(&found, None));
        assert!(s.lookup(&"0".repeat(64), |_| true).is_none());
        assert!(s.remove(&new.id));
        assert!(s.lookup(&new.id, |_| true).is_none());
    }

    #[test]
    fn a_revoked_key_or_an_expired_token_ends_the_session() {
        let s = Sessions::default();
        let new = s.create(principal(), Some("abcdefghijkl".into()), None);
        assert!(s.lookup(&new.id, |_| false).is_none());
        // Forgotten: a key made valid again does not bring it back.
        assert!(s.lookup(&new.id, |_| true).is_none());
        let expired = s.create(principal(), None, Some(unix_now() - 1));
        assert!(s.lookup(&expired.id, |_| true).is_none());
        assert_eq!(expired.max_age, Duration::ZERO);
        let short = s.create(principal(), None, Some(unix_now() + 60));
        assert!(short.max_age <= Duration::from_secs(60));
        assert!(s.lookup(&short.id, |_| true).is_some());
    }

    #[test]
    fn idle_sessions_end_and_the_table_is_bounded() {
        let s = Sessions::new(SessionLimits {
            idle: Duration::ZERO,
            ..SessionLimits::default()
        });
        let new = s.create(principal(), None, None);
        assert!(s.lookup(&new.id, |_| true).is_none());
        let s = Sessions::new(SessionLimits {
            max: 3,
            ..SessionLimits::default()
        });
        let first = s.create(principal(), None, None);
        for _ in 0..5 {
            s.create(principal(), None, None);
        }
        assert_eq!(s.len(), 3);
        assert!(s.lookup(&first.id, |_| true).is_none());
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header_and_written_strict() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; uc_session=abc"),
        );
        assert_eq!(cookie_value(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("uc_session=def"));
        assert_eq!(cookie_value(&h), Some("def"));
        assert_eq!(cookie_value(&HeaderMap::new()), None);
        let s = Sessions::default();
        let new = s.create(principal(), None, None);
        let c = set_cookie(&new, true);
        let c = c.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Secure",
            "Max-Age=28800",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie(&new, false).to_str().unwrap().contains("Secure"));
        assert!(clear_cookie(false).to_str().unwrap().contains("Max-Age=0"));
    }
}
