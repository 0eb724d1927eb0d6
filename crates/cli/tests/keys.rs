//! `ultracore keys`: create, list and revoke as an operator runs them.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ultracore(dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    common::in_data_dir(dir).args(args).output()
}

/// Stdout of a run that must succeed.
fn ok(dir: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = ultracore(dir, args)?;
    if !out.status.success() {
        return Err(format!(
            "ultracore {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Stderr of a run that must fail.
fn fails(dir: &Path, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = ultracore(dir, args)?;
    if out.status.success() {
        return Err(format!("ultracore {args:?} succeeded").into());
    }
    Ok(String::from_utf8(out.stderr)?)
}

#[test]
fn create_list_revoke() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");

    // --json: exactly {"id", "key"}.
    let created: Value = serde_json::from_str(&ok(
        &dir,
        &[
            "keys",
            "create",
            "--role",
            "trader",
            "--portfolio",
            "pf-1",
            "--portfolio",
            "pf-2",
            "--name",
            "desk 4",
            "--json",
        ],
    )?)?;
    let obj = created.as_object().ok_or("not an object")?;
    let mut fields: Vec<&str> = obj.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["id", "key"]);
    let id = created["id"].as_str().ok_or("id")?.to_owned();
    let key = created["key"].as_str().ok_or("key")?.to_owned();
    assert_eq!(id.len(), 12);
    assert!(key.starts_with(&format!("uck_{id}_")), "{key}");

    // Human form: a table, the key on its own line, and the warning.
    let text = ok(&dir, &["keys", "create", "--role", "admin"])?;
    let admin_key = text
        .lines()
        .find(|l| l.starts_with("uck_"))
        .ok_or_else(|| format!("no key line in:\n{text}"))?
        .to_owned();
    assert_eq!(admin_key.trim(), admin_key);
    assert!(text.contains("shown once"), "{text}");
    assert!(text.contains("admin") && text.contains("all"), "{text}");

    // list --json: the records, no secrets, no hashes.
    let listed = ok(&dir, &["keys", "list", "--json"])?;
    assert!(
        !listed.contains("sha256") && !listed.contains(&key[17..]),
        "{listed}"
    );
    let records: Vec<Value> = serde_json::from_str(&listed)?;
    assert_eq!(records.len(), 2);
    let trader = &records[0];
    let mut fields: Vec<&str> = trader
        .as_object()
        .ok_or("not an object")?
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "created_at",
            "id",
            "name",
            "portfolios",
            "revoked_at",
            "role"
        ]
    );
    assert_eq!(trader["id"], id.as_str());
    assert_eq!(trader["name"], "desk 4");
    assert_eq!(trader["role"], "trader");
    assert_eq!(trader["portfolios"], serde_json::json!(["pf-1", "pf-2"]));
    assert_eq!(trader["revoked_at"], Value::Null);
    assert_eq!(records[1]["portfolios"], "all");

    // The human list names both.
    let text = ok(&dir, &["keys", "list"])?;
    assert!(
        text.contains(&id) && text.contains("pf-1,pf-2") && text.contains("desk 4"),
        "{text}"
    );

    // revoke: then listed with its time; again is a no-op.
    let text = ok(&dir, &["keys", "revoke", &id])?;
    assert!(text.contains("Revoked key"), "{text}");
    let records: Vec<Value> = serde_json::from_str(&ok(&dir, &["keys", "list", "--json"])?)?;
    assert!(records[0]["revoked_at"].is_string(), "{records:?}");
    assert_eq!(records[1]["revoked_at"], Value::Null);
    assert!(ok(&dir, &["keys", "revoke", &id])?.contains("already revoked"));
    let err = fails(&dir, &["keys", "revoke", "nosuchkeyid0"])?;
    assert!(err.contains("no API key with id 'nosuchkeyid0'"), "{err}");

    // The file: 0600 in a 0700 directory, and no key in it.
    let file = dir.join("keys.json");
    let stored = std::fs::read_to_string(&file)?;
    for k in [&key, &admin_key] {
        assert!(
            !stored.contains(k.as_str()) && !stored.contains(&k[17..]),
            "key text in keys.json"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file)?.permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::metadata(&dir)?.permissions().mode() & 0o777, 0o700);
    }
    Ok(())
}

#[test]
fn create_refuses_unclear_requests() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let err = fails(dir, &["keys", "create", "--role", "root"])?;
    for role in ["viewer", "trader", "portfolio-manager", "auditor", "admin"] {
        assert!(err.contains(role), "{err}");
    }
    // A portfolio role must say which portfolios.
    let err = fails(dir, &["keys", "create", "--role", "viewer"])?;
    assert!(
        err.contains("--portfolio") && err.contains("--all-portfolios"),
        "{err}"
    );
    let err = fails(
        dir,
        &["keys", "create", "--role", "viewer", "--portfolio", "a/b"],
    )?;
    assert!(err.contains("portfolio id 'a/b' is invalid"), "{err}");
    assert!(
        !dir.join("keys.json").exists(),
        "nothing written for refused keys"
    );
    let text = ok(dir, &["keys", "list"])?;
    assert!(text.contains("No API keys"), "{text}");
    let created: Value = serde_json::from_str(&ok(
        dir,
        &[
            "keys",
            "create",
            "--role",
            "viewer",
            "--all-portfolios",
            "--json",
        ],
    )?)?;
    assert!(created["key"].is_string());
    Ok(())
}
