//! The operational tables and change capture on a PostgreSQL that accepts
//! only TLS: the TLS test cluster (`ULTRACORE_TEST_PG_TLS`, from
//! `PG_SSL=1 scripts/pg-up.sh`; its CA in `ULTRACORE_TEST_PG_TLS_CA`).
//! Unset is a failure, not a skip, as for the plain cluster. Each test
//! makes a database of its own and drops it (and its slot) at the end.

use std::time::Duration;

use ultracore_cdc::model::NewUser;
use ultracore_cdc::postgres::{PgDb, PgRelay, PgRelayOptions};
use ultracore_cdc::RelayOptions;
use ultracore_log::EventLog;
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/test.sh, which starts the TLS test cluster and sets \
             it, or export ULTRACORE_TEST_PG_TLS=\"$(PG_PORT=55434 PG_SSL=1 scripts/pg-up.sh \
             --url)\" ULTRACORE_TEST_PG_TLS_CA=\"$(PG_PORT=55434 PG_SSL=1 scripts/pg-up.sh --ca)\""
        )
    })
}

/// The TLS cluster's URL with `database` and `params`.
fn url(database: &str, params: &str) -> String {
    let base = var("ULTRACORE_TEST_PG_TLS");
    let (head, _) = base.rsplit_once('/').expect("a database in the URL");
    format!("{head}/{database}?{params}")
}

/// `verify-full` against the test CA (its path has no characters a URL
/// would need escaped: /var/tmp/ultracore-pg-PORT/ca.crt).
fn verified() -> String {
    format!(
        "sslmode=verify-full&sslrootcert={}",
        var("ULTRACORE_TEST_PG_TLS_CA")
    )
}

/// A connection to the cluster's own database, over verified TLS.
async fn admin() -> TestResult<tokio_postgres::Client> {
    let target = ultracore_pgrepl::url::parse(&url("ultracore", &verified()))?;
    let (client, connection) = target
        .connect()
        .await
        .map_err(|e| target.connect_error(&e, 1))?;
    tokio::spawn(connection);
    Ok(client)
}

/// A database of the test's own, dropped with its slot at the end.
struct TestDb {
    name: String,
}

impl TestDb {
    async fn new() -> TestResult<TestDb> {
        let name = format!("cdc_tls_{:08x}", rand::random::<u32>());
        admin()
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        Ok(TestDb { name })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop needs its own runtime: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(a) = admin().await {
                    let _ = a
                        .execute(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                             WHERE database = $1 AND NOT active",
                            &[&name],
                        )
                        .await;
                    let _ = a
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_capture_work_over_verified_tls() -> TestResult {
    let test = TestDb::new().await?;
    let db_url = url(&test.name, &verified());
    let db = PgDb::connect(&db_url).await?;
    let created = db
        .create_user(&NewUser {
            id: Some("u_tls".into()),
            name: "Grace Hopper".into(),
            email: "grace@example.com".into(),
            phone: None,
            country: "us".into(),
            risk_profile: "growth".into(),
            status: "active".into(),
        })
        .await?;
    assert_eq!(db.user("u_tls").await?, Some(created));

    // Every connection to this database is encrypted (the cluster allows no
    // other), and the pool's are among them.
    let encrypted: i64 = admin()
        .await?
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE datname = $1 AND ssl",
            &[&test.name],
        )
        .await?
        .get(0);
    assert!(encrypted >= 1, "{encrypted} TLS connections");

    // The relay: a replication connection and a SQL one, both over TLS.
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let options = PgRelayOptions {
        relay: RelayOptions {
            recovery_idle: Duration::from_millis(100),
            ..Default::default()
        },
        ..Default::default()
    };
    let relay = PgRelay::new(log.clone(), &db_url, options);
    let relayed = relay.drain().await?;
    assert!(
        relayed >= 1,
        "the snapshot of one user gave {relayed} events"
    );
    assert!(relay.progress().snapshot_done);
    assert!(!log.list_topics().await?.is_empty(), "no topics on the log");
    Ok(())
}

#[tokio::test]
async fn tls_failures_name_what_to_change() -> TestResult {
    // Without sslrootcert the system's CAs are the roots, and none signed
    // the test CA.
    let err = PgDb::connect(&url("ultracore", "sslmode=verify-full"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("sslrootcert"), "{err}");

    // The cluster takes no login without TLS.
    let err = PgDb::connect(&url("ultracore", "sslmode=disable"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("only over TLS"), "{err}");

    let password = var("ULTRACORE_TEST_PG_TLS")
        .split_once('@')
        .and_then(|(c, _)| c.rsplit_once(':'))
        .map(|(_, p)| p.to_owned())
        .ok_or("no password in the URL")?;
    assert!(!err.contains(&password), "{err}");
    Ok(())
}
