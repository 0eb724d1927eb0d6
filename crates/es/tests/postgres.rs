//! What only PostgreSQL has: URLs and credentials, connection failures and
//! lost connections, a schema per database, concurrent migrations. (The
//! storage contract itself runs on both databases in `tests/storage.rs`.)

mod common;

use common::{pg_url, pg_url_with, unique_schema, with_pg, Backend, SchemaGuard, TestResult};
use serde_json::json;
use ultracore_es::{Batch, Database, Error, PostgresStorage, Storage};

/// The test URL with its password replaced.
fn with_password(password: &str) -> String {
    let url = pg_url();
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.rsplit_once('@').expect("credentials in the test URL");
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    format!("{scheme}://{user}:{password}@{host}")
}

#[test]
fn a_refused_connection_names_the_address_and_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let err = Database::open(dir.path(), Some("postgres://ada:s3cret@127.0.0.1:1/core"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_wrong_password_says_so_without_the_password() {
    let err = PostgresStorage::open(&with_password("wr0ng-s3cret"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("authentication failed"), "{err}");
    assert!(err.contains("refused the login of role"), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("wr0ng-s3cret"), "{err}");
    assert!(!err.contains(&pg_url()), "{err}");
}

#[test]
fn a_missing_database_says_so() {
    let url = pg_url();
    let (base, _) = url.rsplit_once('/').expect("a database in the test URL");
    let err = PostgresStorage::open(&format!("{base}/no_such_database_here"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_database_here"), "{err}");
    assert!(err.contains("create the database"), "{err}");
}

#[test]
fn the_location_is_the_url_without_credentials() -> TestResult {
    let db = Backend::Postgres.database();
    let schema = db.schema().unwrap();
    let location = db.db.location();
    let host = pg_url().rsplit_once('@').unwrap().1.to_owned();
    assert_eq!(location, format!("postgres://{host}?schema={schema}"));
    assert!(!location.contains("ultracore:"), "{location}");
    Ok(())
}

#[test]
fn the_tables_live_in_their_schema_alone() -> TestResult {
    let one = Backend::Postgres.database();
    let two = Backend::Postgres.database();
    let (s1, s2) = (one.schema().unwrap(), two.schema().unwrap());
    let tables = {
        let s1 = s1.clone();
        with_pg(move |c| {
            c.query(
                "SELECT table_schema, table_name FROM information_schema.tables
                 WHERE table_name IN ('documents', 'es_events', 'meta', 'schema_migrations')
                 AND table_schema = $1 ORDER BY table_name",
                &[&s1],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(1))
            .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        tables,
        ["documents", "es_events", "meta", "schema_migrations"]
    );
    // Two schemas of one database are two databases.
    let mut batch = Batch::default();
    batch
        .documents
        .insert(("v".into(), "k".into()), Some(json!(1)));
    one.db.with(|s| s.commit("p", &batch))?;
    assert_eq!(one.db.document("p", "v", "k")?, Some(json!(1)));
    assert_eq!(two.db.document("p", "v", "k")?, None);
    assert_ne!(
        one.db.with(|s| s.instance_id())?,
        two.db.with(|s| s.instance_id())?
    );
    assert_ne!(s1, s2);
    Ok(())
}

#[test]
fn concurrent_opens_of_a_new_schema_migrate_it_once() -> TestResult {
    let schema = SchemaGuard(unique_schema());
    let url = pg_url_with("schema", &schema.0);
    let opened: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PostgresStorage::open(&url)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let opened = opened.into_iter().collect::<Result<Vec<_>, _>>()?;
    let ids: std::collections::BTreeSet<String> = opened
        .iter()
        .map(|s| s.instance_id())
        .collect::<Result<_, _>>()?;
    assert_eq!(ids.len(), 1, "one instance id: {ids:?}");
    assert_eq!(opened[0].schema_version()?, 1);
    let table = format!("\"{}\".schema_migrations", opened[0].schema());
    let migrations: i64 = with_pg(move |c| {
        c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0)
    });
    assert_eq!(migrations, 1);
    Ok(())
}

#[test]
fn a_schema_newer_than_this_build_is_refused() -> TestResult {
    let db = Backend::Postgres.database();
    let schema = db.schema().unwrap();
    with_pg(move |c| {
        c.batch_execute(&format!(
            "INSERT INTO \"{schema}\".schema_migrations (version) VALUES (99)"
        ))
        .unwrap()
    });
    match db.reopen() {
        Err(Error::SchemaTooNew {
            path, found, known, ..
        }) => {
            assert_eq!((found, known), (99, 1));
            assert!(
                path.starts_with("postgres://") && !path.contains('@'),
                "{path}"
            );
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    Ok(())
}

/// A server-side kill of every connection (a restart, a cut idle
/// connection): the next calls reconnect, reads and batches are retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_are_reopened() -> TestResult {
    let app = format!("ultracore-{}", unique_schema());
    let test_db = Backend::Postgres.database_with(&format!("application_name={app}"));
    let db = &test_db.db;
    let mut batch = Batch::default();
    batch
        .documents
        .insert(("v".into(), "k".into()), Some(json!({"n": 1})));
    db.with(|s| s.commit("p", &batch))?;
    let kill = move || {
        let app = app.clone();
        with_pg(move |c| {
            c.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .len()
        })
    };
    // Calls one after another use one connection of the pool.
    assert_eq!(kill(), 1, "the storage's one connection was found");
    assert_eq!(db.document("p", "v", "k")?, Some(json!({"n": 1})));
    assert_eq!(kill(), 1);
    batch
        .documents
        .insert(("v".into(), "k".into()), Some(json!({"n": 2})));
    db.with(|s| s.commit("p", &batch))?;
    assert_eq!(db.document("p", "v", "k")?, Some(json!({"n": 2})));
    // A reset is not retried (it would bump the generation twice): after a
    // kill it fails once, and the call after it works on a new connection.
    assert_eq!(kill(), 1);
    let first = db.with(|s| s.reset("p"));
    let generation = match first {
        Ok(g) => g,
        Err(Error::Storage { .. }) => db.with(|s| s.reset("p"))?,
        Err(e) => return Err(e.into()),
    };
    assert_eq!(generation, 1);
    assert_eq!(db.document("p", "v", "k")?, None);
    Ok(())
}
