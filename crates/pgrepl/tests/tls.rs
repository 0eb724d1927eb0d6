//! TLS against real servers, with libpq's `sslmode` semantics, for both
//! clients: the replication client of this crate and the tokio-postgres
//! connections made through [`ultracore_pgrepl::url`].
//!
//! The TLS cluster (`ULTRACORE_TEST_PG_TLS`, `scripts/pg-up.sh` with
//! `PG_SSL=1`) accepts only TLS (`hostssl` in `pg_hba.conf`); its
//! certificate names `localhost` and `127.0.0.1` and is signed by a
//! throwaway CA (`ULTRACORE_TEST_PG_TLS_CA`). The plain cluster
//! (`ULTRACORE_TEST_PG`) has no TLS at all.

mod common;

use common::*;
use ultracore_pgrepl::tls::SslMode;
use ultracore_pgrepl::{url, Config, Error, ReplicationConnection};

/// The TLS cluster's URL with `params`.
fn tls_url_with(params: &str) -> String {
    with_params(&tls_url(), params)
}

/// `verify-full` against the CA: the settings every deployment should use.
fn verified_url() -> String {
    tls_url_with(&format!("sslmode=verify-full&{}", rootcert_param()))
}

fn tls_config(params: &str) -> TestResult<Config> {
    Ok(Config::from_url(&tls_url_with(params))?)
}

/// What the server says of this session's TLS (`pg_stat_ssl`), asked on
/// the replication connection itself (`replication=database` takes SQL).
async fn server_sees_tls(conn: &mut ReplicationConnection) -> TestResult<bool> {
    let rows = conn
        .simple_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await?;
    Ok(rows == [[Some("t".to_owned())]])
}

/// The same over a tokio-postgres connection.
async fn sql_sees_tls(client: &tokio_postgres::Client) -> TestResult<bool> {
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The message a tokio-postgres connection to `url` fails with, as the
/// components report it.
async fn sql_failure(url: &str) -> TestResult<String> {
    let target = url::parse(url)?;
    match target.connect().await {
        Ok(_) => Err(format!("connecting to {} succeeded", target.location).into()),
        Err(e) => Ok(target.connect_error(&e, 1)),
    }
}

#[tokio::test]
async fn replicates_over_tls_with_verify_full() -> TestResult {
    let _serial = serial().await;
    let table = unique("tls");
    let publication = format!("{table}_pub");
    let slot = table.clone();
    let url = verified_url();
    let client = sql_at(&url).await?;
    assert!(sql_sees_tls(&client).await?);
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY);
             CREATE PUBLICATION {publication} FOR TABLE {table};"
        ))
        .await?;

    let cleanup =
        format!("DROP PUBLICATION IF EXISTS {publication}; DROP TABLE IF EXISTS {table};");
    with_cleanup_at(&url, &slot, &cleanup, async {
        let cfg = Config::from_url(&url)?;
        assert_eq!(cfg.tls.mode, SslMode::VerifyFull);
        let mut conn = ReplicationConnection::connect(&cfg).await?;
        assert!(conn.is_tls());
        assert!(server_sees_tls(&mut conn).await?);

        let info = conn.identify_system().await?;
        assert_eq!(info.dbname.as_deref(), Some(cfg.dbname.as_str()));
        let created = conn.create_logical_slot(&slot, false).await?;
        let mut stream = conn
            .start(&slot, created.consistent_point, &[&publication])
            .await?;

        // A receive cancelled by select! (nothing to read yet) loses nothing
        // over TLS either: the change committed after it arrives whole.
        tokio::select! {
            biased;
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            msg = stream.recv() => {
                let msg = msg?;
                assert!(
                    matches!(msg, Some(ultracore_pgrepl::StreamMessage::Keepalive { .. })),
                    "{msg:?}"
                );
            }
        }
        client
            .batch_execute(&format!("INSERT INTO {table} VALUES (7), (8)"))
            .await?;
        let transaction = next_transaction(&mut stream).await?;
        assert_eq!(inserted_ids(&transaction), ["7", "8"]);
        let end = end_lsn(&transaction);
        stream.send_status(end, end, end, false).await?;
        wait_confirmed(&client, &slot, end).await?;

        let mut conn = stream.stop().await?;
        conn.drop_slot(&slot).await?;
        conn.close().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn require_without_a_ca_encrypts_without_checking() -> TestResult {
    let mut conn = ReplicationConnection::connect(&tls_config("sslmode=require")?).await?;
    assert!(conn.is_tls());
    assert!(server_sees_tls(&mut conn).await?);
    conn.identify_system().await?;
    conn.close().await?;

    // prefer (the default) takes the TLS the server offers.
    let mut conn = ReplicationConnection::connect(&Config::from_url(&tls_url())?).await?;
    assert!(conn.is_tls());
    assert!(server_sees_tls(&mut conn).await?);

    for mode in ["require", "prefer"] {
        let client = sql_at(&tls_url_with(&format!("sslmode={mode}"))).await?;
        assert!(sql_sees_tls(&client).await?, "{mode}");
    }
    Ok(())
}

#[tokio::test]
async fn verify_full_without_the_ca_names_sslrootcert() -> TestResult {
    // Without sslrootcert the system's CAs are the roots; none signed the
    // test CA.
    // verify-ca without its own CA is refused before connecting: it checks
    // no name, so the system's CAs would accept any public certificate.
    let err = Config::from_url(&tls_url_with("sslmode=verify-ca")).unwrap_err();
    assert!(err.to_string().contains("sslrootcert=PATH"), "{err}");
    assert!(!err.to_string().contains(&password()), "{err}");
    for mode in ["verify-full"] {
        let err = ReplicationConnection::connect(&tls_config(&format!("sslmode={mode}"))?)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sslrootcert"), "{mode}: {text}");
        assert!(!text.contains(&password()), "{text}");

        let text = match url::parse(&tls_url_with(&format!("sslmode={mode}"))) {
            // A machine without any system CA fails here, naming sslrootcert too.
            Err(e) => e.to_string(),
            Ok(_) => sql_failure(&tls_url_with(&format!("sslmode={mode}"))).await?,
        };
        assert!(text.contains("sslrootcert"), "{mode}: {text}");
        assert!(!text.contains(&password()), "{text}");
    }
    // A CA that did not sign the server's certificate: the same refusal,
    // naming the file. The system's bundle is such a file.
    let other_ca = "/etc/ssl/certs/ca-certificates.crt";
    if std::path::Path::new(other_ca).exists() {
        let cfg = tls_config(&format!("sslmode=verify-ca&sslrootcert={other_ca}"))?;
        let err = ReplicationConnection::connect(&cfg).await.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("sslrootcert '{other_ca}'")),
            "{err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn verify_full_checks_the_host_against_the_certificate() -> TestResult {
    let verified = format!("sslmode=verify-full&{}", rootcert_param());
    // The certificate names both localhost and 127.0.0.1.
    for host in ["localhost", "127.0.0.1"] {
        let mut cfg = tls_config(&verified)?;
        cfg.host = host.to_owned();
        let mut conn = ReplicationConnection::connect(&cfg).await?;
        assert!(server_sees_tls(&mut conn).await?, "{host}");
        let client =
            sql_at(&verified_url().replacen("@127.0.0.1:", &format!("@{host}:"), 1)).await?;
        assert!(sql_sees_tls(&client).await?, "{host}");
    }

    // A name the certificate does not have, at the same address (libpq's
    // hostaddr): verify-full refuses it, saying what the certificate names.
    let elsewhere = |params: &str| {
        with_params(
            &tls_url().replacen("@127.0.0.1:", "@db.example.invalid:", 1),
            &format!("{params}&hostaddr=127.0.0.1"),
        )
    };
    let err = ReplicationConnection::connect(&Config::from_url(&elsewhere(&verified))?)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("not valid for host 'db.example.invalid'"),
        "{text}"
    );
    assert!(text.contains("(it names localhost, 127.0.0.1)"), "{text}");
    assert!(text.contains("verify-ca"), "{text}");
    let text = sql_failure(&elsewhere(&verified)).await?;
    assert!(
        text.contains("not valid for host 'db.example.invalid'"),
        "{text}"
    );

    // verify-ca checks the chain only, so the same name passes.
    let chain_only = elsewhere(&format!("sslmode=verify-ca&{}", rootcert_param()));
    let mut conn = ReplicationConnection::connect(&Config::from_url(&chain_only)?).await?;
    assert!(server_sees_tls(&mut conn).await?);
    let client = sql_at(&chain_only).await?;
    assert!(sql_sees_tls(&client).await?);
    Ok(())
}

#[tokio::test]
async fn require_against_a_server_without_tls_fails_naming_the_refusal() -> TestResult {
    for mode in ["require", "verify-ca", "verify-full"] {
        let params = format!("sslmode={mode}&{}", rootcert_param());
        let cfg = Config::from_url(&with_params(&url(), &params))?;
        let err = ReplicationConnection::connect(&cfg).await.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("does not offer TLS"), "{text}");
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");

        let text = sql_failure(&with_params(&url(), &params)).await?;
        assert!(text.contains("does not offer TLS"), "{text}");
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");
    }

    // prefer and allow go on without TLS there, as libpq does.
    for mode in ["prefer", "allow"] {
        let cfg = Config::from_url(&with_params(&url(), &format!("sslmode={mode}")))?;
        let mut conn = ReplicationConnection::connect(&cfg).await?;
        assert!(!conn.is_tls(), "{mode}");
        assert!(!server_sees_tls(&mut conn).await?, "{mode}");
        let client = sql_at(&with_params(&url(), &format!("sslmode={mode}"))).await?;
        assert!(!sql_sees_tls(&client).await?, "{mode}");
    }
    Ok(())
}

#[tokio::test]
async fn allow_retries_with_tls_where_disable_is_refused() -> TestResult {
    // The TLS cluster's pg_hba.conf has only hostssl lines.
    let err = ReplicationConnection::connect(&tls_config("sslmode=disable")?)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("no encryption"), "{err}");
    let text = sql_failure(&tls_url_with("sslmode=disable")).await?;
    assert!(text.contains("only over TLS"), "{text}");
    assert!(text.contains("sslmode=verify-full"), "{text}");

    let mut conn = ReplicationConnection::connect(&tls_config("sslmode=allow")?).await?;
    assert!(conn.is_tls());
    assert!(server_sees_tls(&mut conn).await?);
    let client = sql_at(&tls_url_with("sslmode=allow")).await?;
    assert!(sql_sees_tls(&client).await?);
    Ok(())
}

#[tokio::test]
async fn tokio_postgres_binds_scram_to_the_tls_channel() -> TestResult {
    // Over TLS the server offers SCRAM-SHA-256-PLUS, and the tokio-postgres
    // connector supplies the channel binding data.
    let client = sql_at(&with_params(&verified_url(), "channel_binding=require")).await?;
    assert!(sql_sees_tls(&client).await?);
    Ok(())
}

/// The TLS cluster's password, which no message may contain.
fn password() -> String {
    Config::from_url(&tls_url())
        .ok()
        .and_then(|c| c.password)
        .unwrap_or_else(|| "no password in the URL".to_owned())
}
