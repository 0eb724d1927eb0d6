//! API keys: create, verify, revoke, and what other processes see.

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use ultracore_auth::{AuthError, AuthMethod, Error, KeyStore, Permission, Role, Scope};

#[test]
fn create_verify_revoke() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KeyStore::open(dir.path())?;
    let (record, key) = store.create(
        Role::PortfolioManager,
        Scope::portfolios(["pf-1"])?,
        Some("desk 4"),
    )?;
    let p = store.verify(key.expose())?;
    assert_eq!(p.id(), record.id.as_str());
    assert_eq!(p.name(), Some("desk 4"));
    assert_eq!(p.role(), Role::PortfolioManager);
    assert_eq!(p.method(), AuthMethod::ApiKey);
    assert!(p.allows(Permission::RequestOptimization));
    assert!(!p.allows(Permission::Trade));
    assert!(p.can_access_portfolio("pf-1"));
    assert!(!p.can_access_portfolio("pf-2"));

    // The right id with another secret.
    let text = key.expose();
    let flipped = if text.ends_with('a') { 'b' } else { 'a' };
    let wrong = format!("{}{flipped}", &text[..text.len() - 1]);
    assert_eq!(
        store.verify(&wrong),
        Err(AuthError::WrongSecret { id: record.id })
    );
    // A well-formed key nobody issued.
    let stranger = format!("uck_{}{}", "a".repeat(12), &text[16..]);
    assert!(matches!(
        store.verify(&stranger),
        Err(AuthError::UnknownKey { .. })
    ));

    let revoked = store.revoke(record.id.as_str())?;
    assert!(revoked.is_revoked());
    assert_eq!(
        store.verify(text),
        Err(AuthError::Revoked { id: record.id })
    );
    // A revoked key with a wrong secret is a wrong secret: only the key's
    // holder learns (in the logs) that it was revoked.
    assert_eq!(
        store.verify(&wrong),
        Err(AuthError::WrongSecret { id: record.id })
    );
    // Revoking twice keeps the first time.
    assert_eq!(
        store.revoke(record.id.as_str())?.revoked_at,
        revoked.revoked_at
    );
    assert!(matches!(
        store.revoke("nosuchkeyid0"),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(matches!(
        store.revoke("../../etc"),
        Err(Error::KeyNotFound { .. })
    ));
    Ok(())
}

#[test]
fn other_processes_see_changes_on_reload() -> TestResult {
    let dir = tempfile::tempdir()?;
    // `server` stands for a running server, `cli` for `ultracore keys`.
    let server = KeyStore::open(dir.path())?;
    let cli = KeyStore::open(dir.path())?;
    let (record, key) = cli.create(Role::Viewer, Scope::All, None)?;
    // A key made a moment ago works at once: an id the server does not
    // know makes it look at the file.
    server.verify(key.expose())?;
    assert!(!server.reload()?, "unchanged file, nothing to do");
    cli.revoke(record.id.as_str())?;
    assert!(server.reload()?);
    assert!(matches!(
        server.verify(key.expose()),
        Err(AuthError::Revoked { .. })
    ));
    Ok(())
}

#[test]
fn the_file_holds_hashes_only_and_is_private() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let store = KeyStore::open(&data)?;
    assert!(!data.exists(), "opening creates nothing");
    let (_, key) = store.create(Role::Admin, Scope::All, None)?;
    let text = fs::read_to_string(store.path())?;
    let secret = &key.expose()[17..];
    assert!(!text.contains(secret), "secret in the key file");
    assert!(text.contains("secret_sha256"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(store.path())?.permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::metadata(&data)?.permissions().mode() & 0o777, 0o700);
    }
    // Listings carry no hash either.
    let listed = serde_json::to_string(&store.list()?)?;
    assert!(
        !listed.contains("sha256") && !listed.contains(secret),
        "{listed}"
    );
    Ok(())
}

#[test]
fn bootstrap_admin_only_for_an_empty_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KeyStore::open(dir.path())?;
    let (record, key) = store.ensure_bootstrap_admin()?.ok_or("no bootstrap key")?;
    assert_eq!(record.role, Role::Admin);
    assert_eq!(record.portfolios, Scope::All);
    assert_eq!(store.verify(key.expose())?.role(), Role::Admin);
    assert!(store.ensure_bootstrap_admin()?.is_none(), "only once");
    // Revoking every key does not mint a new admin key on the next start.
    store.revoke(record.id.as_str())?;
    assert!(KeyStore::open(dir.path())?
        .ensure_bootstrap_admin()?
        .is_none());
    Ok(())
}

#[test]
fn concurrent_writers_lose_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = Arc::new(dir.path().to_owned());
    // Separate stores stand for separate processes: each write re-reads the
    // file under the lock, so no write undoes another.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = Arc::clone(&path);
            std::thread::spawn(move || -> Result<Vec<String>, Error> {
                let store = KeyStore::open(&*path)?;
                (0..5)
                    .map(|i| {
                        let name = format!("t{t}-{i}");
                        store
                            .create(Role::Viewer, Scope::All, Some(&name))
                            .map(|_| name)
                    })
                    .collect()
            })
        })
        .collect();
    let mut created = Vec::new();
    for t in threads {
        created.extend(t.join().map_err(|_| "writer panicked")??);
    }
    let mut listed: Vec<String> = KeyStore::open(dir.path())?
        .list()?
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    listed.sort();
    created.sort();
    assert_eq!(listed, created);
    Ok(())
}

#[test]
fn a_bad_edit_keeps_the_loaded_keys_and_a_removed_file_means_none() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KeyStore::open(dir.path())?;
    let (_, key) = store.create(Role::Viewer, Scope::All, None)?;
    fs::write(store.path(), "{ not json")?;
    assert!(matches!(store.reload(), Err(Error::Corrupt { .. })));
    store.verify(key.expose())?;
    assert!(matches!(
        KeyStore::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));
    fs::remove_file(store.path())?;
    assert!(store.reload()?);
    assert!(matches!(
        store.verify(key.expose()),
        Err(AuthError::UnknownKey { .. })
    ));
    Ok(())
}

#[test]
fn keys_need_a_scope_and_a_sane_name() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KeyStore::open(dir.path())?;
    assert!(matches!(
        store.create(Role::Viewer, Scope::None, None),
        Err(Error::EmptyScope)
    ));
    assert!(matches!(
        store.create(Role::Viewer, Scope::All, Some("a\nb")),
        Err(Error::InvalidName { .. })
    ));
    assert!(store.list()?.is_empty(), "nothing written for refused keys");
    Ok(())
}

#[test]
fn listing_keeps_creation_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = KeyStore::open(dir.path())?;
    let ids: Vec<_> = (0..3)
        .map(|_| {
            store
                .create(Role::Viewer, Scope::All, None)
                .map(|(r, _)| r.id)
        })
        .collect::<Result<_, _>>()?;
    let listed: Vec<_> = store.list()?.into_iter().map(|r| r.id).collect();
    assert_eq!(listed, ids);
    Ok(())
}

/// Latency of `Authenticator::authenticate` with an API key, per call, with
/// 1,000 keys in the store. Ignored by default; the figure that counts is
/// measured end to end. Run with
/// `cargo test -p ultracore-auth --release --test keys -- --ignored --nocapture`.
#[test]
#[ignore]
fn authenticate_latency_percentiles() -> TestResult {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir()?;
    let store = Arc::new(KeyStore::open(dir.path())?);
    let headers: Vec<String> = (0..1000)
        .map(|_| {
            let (_, key) = store.create(Role::Viewer, Scope::All, None)?;
            Ok(format!("Bearer {}", key.expose()))
        })
        .collect::<Result<_, Error>>()?;
    let auth = ultracore_auth::Authenticator::new(store);
    let n = 200_000;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let header = &headers[(i * 7919) % headers.len()];
        let t = Instant::now();
        let p = auth.authenticate(Some(header));
        samples.push(t.elapsed());
        assert!(p.is_ok());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    eprintln!(
        "authenticate (API key, 1,000 keys, {n} calls): p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        at(0.50),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1]
    );
    assert!(at(0.99) < Duration::from_millis(1));
    Ok(())
}
