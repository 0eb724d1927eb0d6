//! What every replication test needs: the test clusters' URLs (the plain
//! one, and the TLS-only one with its CA), an ordinary SQL connection,
//! unique object names, reading a whole transaction off a stream, and
//! cleaning up slots (which pin WAL until dropped).
#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};
use ultracore_pgrepl::pgoutput::Message;
use ultracore_pgrepl::{Config, Lsn, ReplicationStream, StreamMessage};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long to wait for the server to deliver a change or apply a status
/// update. Generous: the test cluster shares two cores with the build.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The test cluster's URL, from `ULTRACORE_TEST_PG`. Unset is a failure,
/// not a skip: the PostgreSQL tests are part of the suite.
pub fn url() -> String {
    std::env::var("ULTRACORE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG is not set: run scripts/test.sh, which starts the throwaway \
             PostgreSQL cluster (wal_level=logical) and sets it, or export \
             ULTRACORE_TEST_PG=\"$(scripts/pg-up.sh --url)\""
        )
    })
}

pub fn config() -> Config {
    Config::from_url(&url()).expect("ULTRACORE_TEST_PG is a valid postgres:// URL")
}

/// The TLS test cluster's URL, from `ULTRACORE_TEST_PG_TLS`: a cluster
/// that accepts only TLS (`hostssl`), with a certificate for localhost and
/// 127.0.0.1. Unset is a failure, as for `ULTRACORE_TEST_PG`.
pub fn tls_url() -> String {
    std::env::var("ULTRACORE_TEST_PG_TLS").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG_TLS is not set: run scripts/test.sh, which starts the TLS test \
             cluster and sets it, or export \
             ULTRACORE_TEST_PG_TLS=\"$(PG_PORT=55434 PG_SSL=1 scripts/pg-up.sh --url)\" \
             ULTRACORE_TEST_PG_TLS_CA=\"$(PG_PORT=55434 PG_SSL=1 scripts/pg-up.sh --ca)\""
        )
    })
}

/// The CA certificate (PEM) that signed the TLS cluster's, from
/// `ULTRACORE_TEST_PG_TLS_CA`.
pub fn tls_ca() -> String {
    std::env::var("ULTRACORE_TEST_PG_TLS_CA").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG_TLS_CA is not set: run scripts/test.sh, or export \
             ULTRACORE_TEST_PG_TLS_CA=\"$(PG_PORT=55434 PG_SSL=1 scripts/pg-up.sh --ca)\""
        )
    })
}

/// `url` with `params` (`key=value&…`) added to its query.
pub fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

/// `sslrootcert=PATH` for the TLS cluster's CA, percent-encoded.
pub fn rootcert_param() -> String {
    let mut encoded = String::new();
    for b in tls_ca().bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("sslrootcert={encoded}")
}

/// An ordinary (non-replication) SQL connection.
pub async fn sql() -> TestResult<Client> {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("test SQL connection failed: {err}");
        }
    });
    Ok(client)
}

/// An ordinary SQL connection to `url` the way UltraCore's components
/// make them ([`ultracore_pgrepl::url::Target::connect`]: TLS as the URL
/// says).
pub async fn sql_at(url: &str) -> TestResult<Client> {
    let target = ultracore_pgrepl::url::parse(url)?;
    let (client, connection) = target
        .connect()
        .await
        .map_err(|e| target.connect_error(&e, 1))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            eprintln!("test SQL connection failed: {err}");
        }
    });
    Ok(client)
}

/// A name no other test or concurrent run uses; lowercase, as slot names
/// must be.
pub fn unique(what: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "pgrepl_{what}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Serializes the tests that create slots. Creating a logical slot waits
/// until no transaction that was running when it started is still running,
/// and then for the server's next snapshot record (logged every 15 s): a
/// sibling test writing at that moment would make creation slow.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Runs `body`, then drops `slot` and runs `cleanup_sql` whether the body
/// succeeded, failed or panicked (a failed assertion), and returns the
/// body's result or resumes its panic.
pub async fn with_cleanup<F>(slot: &str, cleanup_sql: &str, body: F) -> TestResult
where
    F: Future<Output = TestResult>,
{
    with_cleanup_at(&url(), slot, cleanup_sql, body).await
}

/// [`with_cleanup`] on the cluster of `url` (with its TLS parameters).
pub async fn with_cleanup_at<F>(url: &str, slot: &str, cleanup_sql: &str, body: F) -> TestResult
where
    F: Future<Output = TestResult>,
{
    let outcome = CatchUnwind(std::pin::pin!(body)).await;
    let cleanup = async {
        let client = sql_at(url).await?;
        drop_slot_eventually(&client, slot).await?;
        client.batch_execute(cleanup_sql).await?;
        TestResult::Ok(())
    }
    .await;
    match outcome {
        Ok(outcome) => outcome.and(cleanup),
        Err(panic) => {
            if let Err(err) = cleanup {
                eprintln!("cleanup after the panic failed: {err}");
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// Polls a future, turning a panic inside it into an `Err`.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Drops `slot` if it exists, waiting for a walsender that still holds it
/// to exit (the server releases a slot only once the connection's process
/// ends).
pub async fn drop_slot_eventually(client: &Client, slot: &str) -> TestResult {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = client
            .query(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(());
        };
        let active: bool = row.get(0);
        if !active {
            match client
                .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                .await
            {
                Ok(_) => return Ok(()),
                // Became active or was dropped in between: look again.
                Err(err) if Instant::now() < deadline => {
                    eprintln!("retrying to drop slot {slot}: {err}");
                }
                Err(err) => return Err(err.into()),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("slot {slot} stayed active").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The slot's `confirmed_flush_lsn`.
pub async fn confirmed_flush(client: &Client, slot: &str) -> TestResult<Option<Lsn>> {
    let row = client
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    let text: Option<String> = row.get(0);
    Ok(text.map(|t| t.parse()).transpose()?)
}

/// Waits until the slot's `confirmed_flush_lsn` is `lsn`.
pub async fn wait_confirmed(client: &Client, slot: &str, lsn: Lsn) -> TestResult {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = confirmed_flush(client, slot).await?;
        if now == Some(lsn) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("confirmed_flush_lsn stayed {now:?}, expected {lsn}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next stream message, failing after [`PATIENCE`].
pub async fn next(stream: &mut ReplicationStream) -> TestResult<StreamMessage> {
    match tokio::time::timeout(PATIENCE, stream.recv()).await {
        Err(_) => Err("no replication message within the time limit".into()),
        Ok(Ok(Some(msg))) => Ok(msg),
        Ok(Ok(None)) => Err("the replication stream ended".into()),
        Ok(Err(err)) => Err(err.into()),
    }
}

/// The next transaction, `Begin` to `Commit` inclusive, skipping
/// keepalives (answering those that ask, without confirming anything).
pub async fn next_transaction(stream: &mut ReplicationStream) -> TestResult<Vec<Message>> {
    let mut messages: Vec<Message> = Vec::new();
    loop {
        match next(stream).await? {
            StreamMessage::Keepalive {
                reply_requested: true,
                ..
            } => {
                stream
                    .send_status(Lsn::ZERO, Lsn::ZERO, Lsn::ZERO, false)
                    .await?
            }
            StreamMessage::Keepalive { .. } => {}
            StreamMessage::XLogData { message, .. } => {
                if messages.is_empty() && !matches!(message, Message::Begin { .. }) {
                    return Err(format!("expected Begin, got {message:?}").into());
                }
                let done = matches!(message, Message::Commit { .. });
                messages.push(message);
                if done {
                    return Ok(messages);
                }
            }
        }
    }
}

/// The `end_lsn` of a transaction's `Commit`.
pub fn end_lsn(transaction: &[Message]) -> Lsn {
    match transaction.last() {
        Some(Message::Commit { end_lsn, .. }) => *end_lsn,
        other => panic!("transaction does not end with Commit: {other:?}"),
    }
}

/// The inserted rows' first column values, in order.
pub fn inserted_ids(transaction: &[Message]) -> Vec<String> {
    transaction
        .iter()
        .filter_map(|m| match m {
            Message::Insert { new, .. } => new.first().and_then(|v| v.as_str()).map(str::to_owned),
            _ => None,
        })
        .collect()
}
