//! API keys: [`KeyStore`] over `keys.json` in the data directory.
//!
//! A key is `uck_<id>_<secret>`: `id` is 12 random base32 characters (60
//! bits) that find the record without a scan; `secret` is 52 random base32
//! characters (260 bits). Both use the lowercase RFC 4648 alphabet, so a key
//! has no character a shell, URL or double-click treats specially. The file
//! keeps the SHA-256 of the whole key text; with that much entropy a slow
//! password hash would add latency and no safety, and a plain hash cannot
//! be reversed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use rand::TryRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::keyfile::{self, Digest, FileStamp, StoredKey};
use crate::{AuthError, AuthMethod, Error, Principal, Result, Role, Scope};

/// The prefix of every API key.
pub const KEY_PREFIX: &str = "uck_";
/// RFC 4648 base32, lowercase.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const SECRET_LEN: usize = 52;
/// `uck_` + id + `_` + secret.
const KEY_LEN: usize = KEY_PREFIX.len() + KeyId::LEN + 1 + SECRET_LEN;
/// How often [`KeyStore::verify`] looks at the file for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// How often an unknown key id may make the store look at its file early.
const UNKNOWN_RECHECK: Duration = Duration::from_millis(100);
const MAX_NAME_CHARS: usize = 64;

/// The public half of a key: 12 lowercase base32 characters. Safe to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KeyId::LEN]);

impl KeyId {
    pub const LEN: usize = 12;

    /// Parses an id; `None` unless it is exactly 12 characters of `a-z2-7`.
    pub fn from_text(s: &str) -> Option<KeyId> {
        let bytes: [u8; KeyId::LEN] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| ALPHABET.contains(b))
            .then_some(KeyId(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII ever gets in (`from_text` and `random`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    fn random() -> Result<KeyId> {
        Ok(KeyId(random_base32()?))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::from_text(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("key id '{s}' is not 12 characters of a-z and 2-7"))
        })
    }
}

/// The full text of a new key, `uck_<id>_<secret>`. Shown to its owner
/// once and stored nowhere. `Debug` hides the secret and there is no
/// `Display`, so it cannot end up in a log by `{}`; [`ApiKey::expose`] is
/// the one way to the text.
pub struct ApiKey {
    id: KeyId,
    text: String,
}

impl ApiKey {
    /// The key text, to print once or hand to a client.
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub fn id(&self) -> KeyId {
        self.id
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({KEY_PREFIX}{}_…)", self.id())
    }
}

/// A key as listed: everything but the secret and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub name: Option<String>,
    pub role: Role,
    /// The portfolios the key may see (`"all"` or ids in JSON).
    pub portfolios: Scope,
    /// The customer a `customer` key speaks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyRecord {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

impl From<&StoredKey> for KeyRecord {
    fn from(k: &StoredKey) -> KeyRecord {
        KeyRecord {
            id: k.id,
            name: k.name.clone(),
            role: k.role,
            portfolios: k.portfolios.clone(),
            customer: k.customer.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// What `verify` needs of one key, prepared when the file is read.
#[derive(Debug)]
struct Entry {
    digest: Digest,
    revoked: bool,
    principal: Principal,
}

#[derive(Debug, Default)]
struct Snapshot {
    stamp: Option<FileStamp>,
    entries: HashMap<KeyId, Entry>,
}

impl Snapshot {
    fn of(stamp: Option<FileStamp>, keys: &[StoredKey]) -> Snapshot {
        let entries = keys
            .iter()
            .map(|k| {
                let principal = Principal::new(
                    k.id.as_str(),
                    k.name.as_deref(),
                    k.role,
                    k.portfolios.clone(),
                    AuthMethod::ApiKey,
                )
                .with_customer(k.customer.as_deref());
                let entry = Entry {
                    digest: k.secret_sha256,
                    revoked: k.revoked_at.is_some(),
                    principal,
                };
                (k.id, entry)
            })
            .collect();
        Snapshot { stamp, entries }
    }
}

/// The API keys of a data directory, in `<data dir>/keys.json`.
///
/// [`KeyStore::verify`] answers from memory. At most once per
/// [`RELOAD_INTERVAL`] (one second) a call to it also checks the file's
/// size, mtime and inode, and re-reads the file when they changed; so a key
/// created or revoked by `ultracore keys` in another process takes effect
/// in a running server within about a second of the next request.
/// [`KeyStore::reload`] does the same check at once.
///
/// If the file cannot be read or parsed on such a check, the keys in memory
/// stay in force and a warning is logged at every check until the file is
/// fixed; a server keeps working through a bad hand edit. A file that was
/// removed means no keys.
///
/// Writes (`create`, `revoke`, `ensure_bootstrap_admin`) take a lock file,
/// re-read the file, and replace it atomically; they block on fsync, so
/// call them from a blocking thread in async code.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The instant `next_check_ms` counts from.
    epoch: Instant,
    /// When `verify` next looks at the file, in ms since `epoch`. An atomic
    /// so that the common case (not yet due) costs one relaxed load and no
    /// lock; the compare-exchange elects one caller per interval to check.
    next_check_ms: AtomicU64,
    /// When an unknown key id may next trigger an early look at the file
    /// (a key created a moment ago works at once), in ms since `epoch`:
    /// at most one such look per [`UNKNOWN_RECHECK`].
    next_unknown_check_ms: AtomicU64,
    /// Serialises reloads and writes within this process.
    reloading: Mutex<()>,
}

impl KeyStore {
    /// The key file's name in the data directory.
    pub const FILE_NAME: &'static str = "keys.json";

    /// Opens the key store of `data_dir` and reads its keys. A missing file
    /// or directory means no keys (nothing is created until a write).
    ///
    /// Errors: the file cannot be read, is corrupt, has an unknown format,
    /// or is writable by group or others.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<KeyStore> {
        let path = data_dir.as_ref().join(KeyStore::FILE_NAME);
        let (stamp, keys) = keyfile::read(&path)?;
        let epoch = Instant::now();
        Ok(KeyStore {
            path,
            snapshot: RwLock::new(Arc::new(Snapshot::of(stamp, &keys))),
            epoch,
            next_check_ms: AtomicU64::new(RELOAD_INTERVAL.as_millis() as u64),
            next_unknown_check_ms: AtomicU64::new(0),
            reloading: Mutex::new(()),
        })
    }

    /// The path of `keys.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks an API key (`uck_…`, without `Bearer `) and returns its
    /// principal. Constant-time in the secret; never logs it.
    ///
    /// Every failure reads "invalid or revoked API key" to the caller; the
    /// variant ([`AuthError::UnknownKey`], [`AuthError::WrongSecret`],
    /// [`AuthError::Revoked`], [`AuthError::MalformedKey`]) says which.
    pub fn verify(&self, key: &str) -> Result<Principal, AuthError> {
        self.verify_at(key, Instant::now())
    }

    /// [`KeyStore::verify`] at a given time, which decides whether the file
    /// is due for a check.
    fn verify_at(&self, key: &str, now: Instant) -> Result<Principal, AuthError> {
        let id = parse_key(key).ok_or(AuthError::MalformedKey)?;
        // Hash before the lookup, so an unknown id costs the same as a
        // known one and timing does not tell which ids exist.
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.reload_if_due(now);
        let mut snapshot = self.current();
        if !snapshot.entries.contains_key(&id) && self.recheck_for_unknown(now) {
            snapshot = self.current();
        }
        let entry = snapshot
            .entries
            .get(&id)
            .ok_or(AuthError::UnknownKey { id })?;
        // The secret before the revocation, so that the logged reason says
        // "revoked" only for a caller who really holds the key; anyone else
        // is "wrong-secret".
        if !bool::from(entry.digest.0.ct_eq(&digest)) {
            return Err(AuthError::WrongSecret { id });
        }
        if entry.revoked {
            return Err(AuthError::Revoked { id });
        }
        Ok(entry.principal.clone())
    }

    /// Whether the key with this id exists and is not revoked (the file is
    /// re-read when due, as [`KeyStore::verify`] does): a session signed in
    /// with a key ends when the key is revoked.
    pub fn is_active(&self, id: &str) -> bool {
        let Some(id) = KeyId::from_text(id) else {
            return false;
        };
        self.reload_if_due(Instant::now());
        self.current().entries.get(&id).is_some_and(|e| !e.revoked)
    }

    /// Re-reads the file now if it changed since it was last read; returns
    /// whether it did. On an error the keys in memory stay in force.
    pub fn reload(&self) -> Result<bool> {
        let guard = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.reload_locked(&guard)
    }

    /// The reload itself; the guard proves the caller holds `reloading`.
    fn reload_locked(&self, _guard: &MutexGuard<'_, ()>) -> Result<bool> {
        let on_disk = keyfile::stamp(&self.path)?;
        if on_disk == self.current().stamp {
            return Ok(false);
        }
        let (stamp, keys) = keyfile::read(&self.path)?;
        self.install(Snapshot::of(stamp, &keys));
        tracing::info!(path = %self.path.display(), keys = keys.len(), "API keys reloaded");
        Ok(true)
    }

    /// Every key, revoked ones included, in the order they were created,
    /// read from the file now.
    pub fn list(&self) -> Result<Vec<KeyRecord>> {
        let _no_reload = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (stamp, keys) = keyfile::read(&self.path)?;
        self.install(Snapshot::of(stamp, &keys));
        Ok(keys.iter().map(KeyRecord::from).collect())
    }

    /// Creates a key and returns its record and its text; the text is not
    /// kept anywhere, so this is the only time it can be shown.
    ///
    /// `portfolios` must be [`Scope::All`] or name at least one portfolio;
    /// `name` (optional) is at most 64 characters with no control
    /// characters.
    pub fn create(
        &self,
        role: Role,
        portfolios: Scope,
        name: Option<&str>,
    ) -> Result<(KeyRecord, ApiKey)> {
        self.create_for(role, portfolios, None, name)
    }

    /// [`KeyStore::create`] for a key that may speak for a customer: a
    /// `customer` key names exactly one customer and any portfolios (none
    /// is fine: a customer without investments); other roles name none.
    pub fn create_for(
        &self,
        role: Role,
        portfolios: Scope,
        customer: Option<&str>,
        name: Option<&str>,
    ) -> Result<(KeyRecord, ApiKey)> {
        match (role, customer) {
            (Role::Customer, None) => return Err(Error::CustomerMissing),
            (Role::Customer, Some(c)) if !crate::is_valid_customer_id(c) => {
                return Err(Error::InvalidCustomerId { id: c.to_owned() })
            }
            (Role::Customer, Some(_)) if portfolios == Scope::All => {
                return Err(Error::AllPortfoliosForRole {
                    role,
                    reason: "name the customer's portfolios with --portfolio",
                })
            }
            (Role::Customer, Some(_)) => {}
            (role, Some(_)) => return Err(Error::CustomerForStaff { role }),
            (Role::Integration, None) if portfolios != Scope::None => {
                return Err(Error::AllPortfoliosForRole {
                    role,
                    reason: "it publishes outside systems' events and reads no portfolio",
                })
            }
            (Role::Integration, None) => {}
            (_, None) => match &portfolios {
                Scope::None => return Err(Error::EmptyScope),
                Scope::Portfolios(ids) if ids.is_empty() => return Err(Error::EmptyScope),
                _ => {}
            },
        }
        let name = name.map(check_name).transpose()?;
        let customer = customer.map(str::to_owned);
        self.modify(|keys| {
            let (mut stored, key) = new_key(keys, role, portfolios, name)?;
            stored.customer = customer;
            let record = KeyRecord::from(&stored);
            keys.push(stored);
            Ok(((record, key), true))
        })
    }

    /// Revokes a key: it stops working here at once, and in other processes
    /// at their next check of the file. Revoking a revoked key changes
    /// nothing and returns it with its first revocation time.
    pub fn revoke(&self, id: &str) -> Result<KeyRecord> {
        let not_found = || Error::KeyNotFound { id: id.to_owned() };
        let key_id = KeyId::from_text(id).ok_or_else(not_found)?;
        self.modify(|keys| {
            let key = keys
                .iter_mut()
                .find(|k| k.id == key_id)
                .ok_or_else(not_found)?;
            let changed = key.revoked_at.is_none();
            if changed {
                key.revoked_at = Some(now());
            }
            Ok((KeyRecord::from(&*key), changed))
        })
    }

    /// When the file has no keys at all, creates an admin key over every
    /// portfolio and returns it, for the server to print once. Otherwise
    /// returns `None`; in particular it never replaces keys that were all
    /// revoked, since that would hand out a new admin key on restart.
    pub fn ensure_bootstrap_admin(&self) -> Result<Option<(KeyRecord, ApiKey)>> {
        self.modify(|keys| {
            if !keys.is_empty() {
                return Ok((None, false));
            }
            let (stored, key) = new_key(
                keys,
                Role::Admin,
                Scope::All,
                Some("bootstrap admin".into()),
            )?;
            let record = KeyRecord::from(&stored);
            keys.push(stored);
            tracing::info!(key_id = %record.id, "created the bootstrap admin key");
            Ok((Some((record, key)), true))
        })
    }

    /// How many keys are in memory, revoked ones included.
    pub fn len(&self) -> usize {
        self.current().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Under the writers' lock: reads the file fresh (another process may
    /// have changed it), lets `f` change the keys, writes them when `f` says
    /// it changed them, and installs the result in memory.
    fn modify<T>(&self, f: impl FnOnce(&mut Vec<StoredKey>) -> Result<(T, bool)>) -> Result<T> {
        let _file_lock = keyfile::lock(&self.path)?;
        // Also hold off this process's reloads, so a reload that read the
        // file just before this write cannot install the older keys after
        // it (undoing a revocation in memory until the next check).
        let _no_reload = self
            .reloading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (stamp, mut keys) = keyfile::read(&self.path)?;
        let (out, changed) = f(&mut keys)?;
        let stamp = if changed {
            keyfile::write(&self.path, &keys)?;
            keyfile::stamp(&self.path)?
        } else {
            stamp
        };
        self.install(Snapshot::of(stamp, &keys));
        Ok(out)
    }

    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn install(&self, snapshot: Snapshot) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
    }

    /// Elects at most one caller per interval to check the file.
    fn reload_if_due(&self, now: Instant) {
        self.reload_when(&self.next_check_ms, RELOAD_INTERVAL, now);
    }

    /// An id not in memory may be a key created since the last look: looks
    /// at the file now, at most once per [`UNKNOWN_RECHECK`] whatever the
    /// number of unknown ids sent. Whether the keys were reloaded.
    fn recheck_for_unknown(&self, now: Instant) -> bool {
        self.reload_when(&self.next_unknown_check_ms, UNKNOWN_RECHECK, now)
    }

    /// Reloads when `next` (ms since `epoch`) has come, electing one caller
    /// per `interval`. Whether the keys were reloaded.
    fn reload_when(&self, next: &AtomicU64, interval: Duration, now: Instant) -> bool {
        let now_ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        let due = next.load(Ordering::Relaxed);
        if now_ms < due {
            return false;
        }
        let then = now_ms.saturating_add(interval.as_millis() as u64);
        if next
            .compare_exchange(due, then, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false; // another caller checks this time
        }
        // A write or an explicit reload in progress installs a fresh
        // snapshot itself; a request does not wait for it.
        let Ok(guard) = self.reloading.try_lock() else {
            return false;
        };
        match self.reload_locked(&guard) {
            Ok(reloaded) => reloaded,
            Err(error) => {
                tracing::warn!(%error, "API key file unreadable; keeping the keys already loaded");
                false
            }
        }
    }
}

/// A new key that collides with none in `keys`.
fn new_key(
    keys: &[StoredKey],
    role: Role,
    portfolios: Scope,
    name: Option<String>,
) -> Result<(StoredKey, ApiKey)> {
    // 60 random bits make a collision all but impossible; checking costs
    // nothing and makes it impossible.
    let id = loop {
        let id = KeyId::random()?;
        if keys.iter().all(|k| k.id != id) {
            break id;
        }
    };
    let secret: [u8; SECRET_LEN] = random_base32()?;
    let mut text = String::with_capacity(KEY_LEN);
    text.push_str(KEY_PREFIX);
    text.push_str(id.as_str());
    text.push('_');
    text.extend(secret.iter().copied().map(char::from));
    let stored = StoredKey {
        id,
        name,
        role,
        portfolios,
        customer: None,
        created_at: now(),
        revoked_at: None,
        secret_sha256: Digest(Sha256::digest(text.as_bytes()).into()),
    };
    Ok((stored, ApiKey { id, text }))
}

/// The id of a well-formed key text, or `None`.
fn parse_key(key: &str) -> Option<KeyId> {
    if key.len() != KEY_LEN {
        return None;
    }
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_at_checked(KeyId::LEN)?;
    let secret = secret.strip_prefix('_')?;
    let id = KeyId::from_text(id)?;
    secret.bytes().all(|b| ALPHABET.contains(&b)).then_some(id)
}

/// `N` characters from the OS random source. A byte's low five bits are
/// uniform (256 is a multiple of 32), so no value is favoured. The OS
/// source directly, not a userspace generator: keys are made rarely, and a
/// failure of the source is an error rather than a weak key.
fn random_base32<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|source| Error::Random { source })?;
    Ok(bytes.map(|b| ALPHABET[usize::from(b & 31)]))
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidName {
            reason: "it is empty; leave --name out instead",
        });
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::InvalidName {
            reason: "it is longer than 64 characters",
        });
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidName {
            reason: "it has control characters",
        });
    }
    Ok(name.to_owned())
}

/// Now, to the second: the file and the listings need no more.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn unknown_ids_look_at_the_file_at_most_every_100_ms() -> TestResult {
        let dir = tempfile::tempdir()?;
        let server = KeyStore::open(dir.path())?;
        let cli = KeyStore::open(dir.path())?;
        let t0 = Instant::now();
        let (_, a) = cli.create(Role::Viewer, Scope::All, None)?;
        // Made a moment ago elsewhere: found at once.
        server.verify_at(a.expose(), t0)?;
        let (_, b) = cli.create(Role::Viewer, Scope::All, None)?;
        // Within 100 ms of that look, an unknown id does not look again...
        assert!(matches!(
            server.verify_at(b.expose(), t0 + Duration::from_millis(10)),
            Err(AuthError::UnknownKey { .. })
        ));
        // ...after it, it does.
        server.verify_at(b.expose(), t0 + Duration::from_millis(150))?;
        Ok(())
    }

    #[test]
    fn key_text_has_the_documented_shape() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = KeyStore::open(dir.path())?;
        let (record, key) = store.create(Role::Viewer, Scope::portfolios(["pf-1"])?, None)?;
        let text = key.expose();
        assert_eq!(text.len(), 69);
        assert!(text.starts_with(&format!("uck_{}_", record.id)), "{text}");
        assert_eq!(parse_key(text), Some(record.id));
        assert_eq!(key.id(), record.id);
        let debug = format!("{key:?}");
        assert!(
            !debug.contains(&text[17..]),
            "Debug shows the secret: {debug}"
        );
        Ok(())
    }

    #[test]
    fn malformed_keys_are_rejected_before_any_lookup() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = KeyStore::open(dir.path())?;
        let (_, key) = store.create(Role::Viewer, Scope::All, None)?;
        let text = key.expose();
        let upper = text.to_uppercase().replacen("UCK_", "uck_", 1);
        for bad in [
            "",
            "uck_",
            &text[..68],
            &format!("{text}a"),
            &text.replacen('_', "-", 1),
            &upper,
            &format!("{}0{}", &text[..20], &text[21..]),
        ] {
            assert_eq!(store.verify(bad), Err(AuthError::MalformedKey), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn ids_are_unique_and_random() -> TestResult {
        let a: [u8; 12] = random_base32()?;
        let b: [u8; 12] = random_base32()?;
        assert_ne!(a, b);
        assert!(a.iter().all(|c| ALPHABET.contains(c)));
        Ok(())
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  ops  ").ok().as_deref(), Some("ops"));
        assert!(check_name(" ").is_err());
        assert!(check_name(&"é".repeat(64)).is_ok());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("a\u{1b}[31m").is_err());
    }

    #[test]
    fn reload_check_is_elected_once_per_interval() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = KeyStore::open(dir.path())?;
        let other = KeyStore::open(dir.path())?;
        let (_, key) = other.create(Role::Admin, Scope::All, None)?;
        // Not due yet: the first store has not looked at the file.
        let t0 = store.epoch;
        store.reload_if_due(t0);
        assert!(store.is_empty());
        // Due: one call reloads.
        store.reload_if_due(t0 + RELOAD_INTERVAL);
        assert_eq!(store.len(), 1);
        other.revoke(key.id().as_str())?;
        // The next check is a full interval later.
        let almost = t0 + RELOAD_INTERVAL + Duration::from_millis(999);
        assert!(store.verify_at(key.expose(), almost).is_ok());
        assert_eq!(
            store.verify_at(key.expose(), t0 + RELOAD_INTERVAL * 2),
            Err(AuthError::Revoked { id: key.id() })
        );
        Ok(())
    }
}
