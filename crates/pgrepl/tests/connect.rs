//! Logging in and running commands on a replication connection, against
//! the real test cluster.

mod common;

use common::{config, sql, TestResult};
use ultracore_pgrepl::{sqlstate, AuthMethod, Error, Lsn, ReplicationConnection};

#[tokio::test]
async fn connects_with_scram_and_identifies_the_system() -> TestResult {
    let cfg = config();
    let mut conn = ReplicationConnection::connect(&cfg).await?;
    // The test cluster's pg_hba.conf asks for scram-sha-256.
    assert_eq!(conn.auth_method(), AuthMethod::ScramSha256);
    assert!(conn.parameter("server_version").is_some());
    assert_eq!(conn.parameter("TimeZone"), Some("UTC"));
    assert!(conn.backend_pid().is_some());

    let before: Lsn = {
        let client = sql().await?;
        let row = client
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await?;
        row.get::<_, String>(0).parse()?
    };
    let info = conn.identify_system().await?;
    assert_eq!(info.dbname.as_deref(), Some(cfg.dbname.as_str()));
    assert!(info.timeline >= 1, "{info:?}");
    assert!(info.xlogpos >= before, "{info:?} is before {before}");
    assert!(
        !info.systemid.is_empty() && info.systemid.bytes().all(|b| b.is_ascii_digit()),
        "{info:?}"
    );
    conn.close().await?;
    Ok(())
}

#[tokio::test]
async fn simple_query_returns_text_rows_and_survives_errors() -> TestResult {
    let mut conn = ReplicationConnection::connect(&config()).await?;
    assert_eq!(
        conn.simple_query("SHOW wal_level").await?,
        vec![vec![Some("logical".to_owned())]]
    );
    assert_eq!(
        conn.simple_query("SELECT 1, NULL::text, 'Zoë 🚀'; SELECT ''")
            .await?,
        vec![
            vec![Some("1".to_owned()), None, Some("Zoë 🚀".to_owned())],
            vec![Some(String::new())],
        ]
    );
    assert!(conn.simple_query("").await?.is_empty());

    let err = conn.simple_query("SELEC 1").await.unwrap_err();
    assert_eq!(err.code(), Some("42601"), "{err}");
    assert!(err.to_string().contains("syntax error"), "{err}");
    // A failing replication command is an error with its SQLSTATE, too.
    let err = conn.drop_slot("pgrepl_no_such_slot").await.unwrap_err();
    assert_eq!(err.code(), Some(sqlstate::UNDEFINED_OBJECT), "{err}");
    // A query that cannot be encoded is refused before anything is sent.
    let err = conn.simple_query("SELECT 1\0").await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    // And the connection goes on.
    assert_eq!(
        conn.simple_query("SELECT 2").await?,
        vec![vec![Some("2".to_owned())]]
    );
    Ok(())
}

#[tokio::test]
async fn wrong_password_is_a_clear_auth_error() -> TestResult {
    let mut cfg = config();
    cfg.password = Some("certainly-not-the-password".to_owned());
    let err = ReplicationConnection::connect(&cfg).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert_eq!(err.code(), Some(sqlstate::INVALID_PASSWORD));
    let text = err.to_string();
    assert!(
        text.contains("password authentication failed") && text.contains(&cfg.user),
        "{text}"
    );
    assert!(!text.contains("certainly-not-the-password"), "{text}");

    cfg.password = None;
    let err = ReplicationConnection::connect(&cfg).await.unwrap_err();
    assert!(matches!(err, Error::AuthMethod { .. }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn unknown_database_is_a_server_error_not_an_auth_error() -> TestResult {
    let mut cfg = config();
    cfg.dbname = "pgrepl_no_such_database".to_owned();
    let err = ReplicationConnection::connect(&cfg).await.unwrap_err();
    assert!(matches!(err, Error::Db(_)), "{err:?}");
    assert_eq!(err.code(), Some("3D000"));
    Ok(())
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() -> TestResult {
    let mut cfg = config();
    // Port 1 (tcpmux) is closed on any machine that runs these tests.
    cfg.port = 1;
    let err = ReplicationConnection::connect(&cfg).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(":1"), "{err}");
    Ok(())
}
