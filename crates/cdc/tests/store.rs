//! The operational tables' one suite, on both databases: every scenario
//! runs on SQLite (a temp dir) and on PostgreSQL (a database of its own on
//! the test cluster, dropped afterwards), through [`Operational`], the
//! dispatch the API uses. Then the same scripted writes on both must leave
//! the same rows, and PostgreSQL's own concerns (connecting, migrating,
//! reconnecting) get tests of their own.
//!
//! PostgreSQL comes from `ULTRACORE_TEST_PG` (scripts/test.sh sets it);
//! unset is a failure, not a skip. Each test database uses an ICU `en-US`
//! collation and Sydney time with the `SQL, DMY` date style by default, so
//! a query relying on the database's order or the session's defaults
//! would show here.

use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::FutureExt;
use serde_json::{json, Value};
use tokio_postgres::NoTls;
use tower::ServiceExt;
use ultracore_cdc::model::{
    self, NewConversation, NewMessage, NewUser, UserPatch, MAX_MESSAGES, RISK_PROFILES,
    USER_STATUSES,
};
use ultracore_cdc::sqlite::FILE_NAME;
use ultracore_cdc::tables::{Kind, Table, CONVERSATIONS, USERS};
use ultracore_cdc::{Error, Operational, PgDb, Row, SqliteDb};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult<T = ()> = Result<T, BoxError>;

// ---- the two databases ----

/// Runs a scenario on a fresh SQLite database.
async fn on_sqlite<T, F, Fut>(scenario: F) -> TestResult<T>
where
    F: FnOnce(Operational) -> Fut,
    Fut: Future<Output = TestResult<T>>,
{
    let dir = tempfile::tempdir()?;
    let db = SqliteDb::open(dir.path().join(FILE_NAME))?;
    scenario(Operational::Sqlite(Arc::new(db))).await
}

/// Runs a scenario on a fresh PostgreSQL database.
async fn on_postgres<T, F, Fut>(scenario: F) -> TestResult<T>
where
    F: FnOnce(Operational) -> Fut,
    Fut: Future<Output = TestResult<T>>,
{
    in_scratch(|pg| async move {
        let db = PgDb::connect(&pg.url).await?;
        scenario(Operational::Postgres(db)).await
    })
    .await
}

/// The test cluster's URL. Unset is a failure: the PostgreSQL half of the
/// suite is part of the suite.
fn cluster_url() -> String {
    std::env::var("ULTRACORE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG is not set: run scripts/test.sh, which starts the throwaway \
             PostgreSQL cluster and sets it, or export \
             ULTRACORE_TEST_PG=\"$(scripts/pg-up.sh --url)\""
        )
    })
}

/// The password in the test cluster's URL.
fn cluster_password() -> String {
    let url = cluster_url();
    let credentials = url.split_once('@').map_or("", |(c, _)| c);
    let password = credentials.rsplit_once(':').map_or("", |(_, p)| p);
    assert!(
        !password.is_empty() && !password.starts_with('/'),
        "the test URL has no password"
    );
    password.to_owned()
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{name}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// An ordinary connection, for setting up and inspecting.
async fn sql(url: &str) -> TestResult<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("test SQL connection: {e}");
        }
    });
    Ok(client)
}

/// A database of the test's own on the cluster.
#[derive(Debug, Clone)]
struct Scratch {
    name: String,
    /// Its URL (with the cluster's credentials).
    url: String,
}

impl Scratch {
    /// A connection to the scratch database.
    async fn sql(&self) -> TestResult<tokio_postgres::Client> {
        sql(&self.url).await
    }
}

/// Creates a database, runs `f` on it and drops the database, also when
/// `f` fails or panics (the panic is resumed afterwards).
async fn in_scratch<T, F, Fut>(f: F) -> TestResult<T>
where
    F: FnOnce(Scratch) -> Fut,
    Fut: Future<Output = TestResult<T>>,
{
    let cluster = cluster_url();
    let admin = sql(&cluster).await?;
    let name = format!("cdc_store_{:016x}", rand::random::<u64>());
    // ICU en-US sorts '_x' < 'a' < 'B': unlike byte order.
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        ))
        .await?;
    let scratch = Scratch {
        url: with_database(&cluster, &name),
        name: name.clone(),
    };
    let outcome = AssertUnwindSafe(async {
        // Session defaults unlike those the pool sets: its connections must
        // override them for timestamps to read back.
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {name} SET timezone TO 'Australia/Sydney';
                 ALTER DATABASE {name} SET datestyle TO 'SQL, DMY'"
            ))
            .await?;
        f(scratch).await
    })
    .catch_unwind()
    .await;
    let dropped = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    match outcome {
        Ok(result) => {
            let value = result?;
            dropped?;
            Ok(value)
        }
        Err(panic) => {
            if let Err(e) = dropped {
                eprintln!("dropping test database {name}: {e}");
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// Each scenario as two tests, `sqlite::<name>` and `postgres::<name>`.
macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() -> super::TestResult {
                    super::on_sqlite(super::$scenario).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() -> super::TestResult {
                    super::on_postgres(super::$scenario).await
                }
            )*
        }
    };
}

suite!(
    users_are_created_read_listed_patched_and_deleted,
    users_page_in_byte_order,
    conflicts_say_what_is_taken,
    rejections_name_the_field,
    the_checks_accept_every_value_the_model_does,
    conversations_keep_their_messages,
    a_conversation_holds_at_most_max_messages,
    conversations_list_by_customer_in_pages,
    concurrent_writers_are_all_served,
    the_api_answers_alike,
);

// ---- helpers ----

fn ada() -> NewUser {
    NewUser {
        id: Some("u1".into()),
        name: "  Ada Lovelace ".into(),
        email: "Ada@Example.com".into(),
        phone: Some("+61 2 9374-4000".into()),
        country: "au".into(),
        risk_profile: "growth".into(),
        status: "active".into(),
    }
}

fn user(id: &str) -> NewUser {
    NewUser {
        id: Some(id.into()),
        name: format!("User {id}"),
        // Addresses are stored lowercased: 'A' and 'a' need different ones.
        email: format!(
            "{}@example.com",
            id.chars()
                .map(|c| match c.is_ascii_uppercase() {
                    true => format!("^{}", c.to_ascii_lowercase()),
                    false => c.to_string(),
                })
                .collect::<String>()
        ),
        phone: None,
        country: "NZ".into(),
        risk_profile: "balanced".into(),
        status: "active".into(),
    }
}

fn conversation(id: &str, customer: &str) -> NewConversation {
    NewConversation {
        id: Some(id.into()),
        customer_id: customer.into(),
        subject: None,
    }
}

fn message(role: &str, text: &str) -> NewMessage {
    NewMessage {
        role: role.into(),
        text: text.into(),
    }
}

/// The message of a conflict; anything else fails the test.
fn conflict<T: Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// The field a rejection names; anything else fails the test.
fn rejected<T: Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// An RFC 3339 instant in UTC (`…Z`), as the API shows every timestamp.
fn instant(s: &str) -> chrono::DateTime<chrono::Utc> {
    assert!(s.ends_with('Z'), "'{s}' is not in UTC");
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("'{s}' is not RFC 3339: {e}"))
        .to_utc()
}

// ---- scenarios ----

async fn users_are_created_read_listed_patched_and_deleted(db: Operational) -> TestResult {
    let created = db.create_user(ada()).await?;
    assert_eq!(created.id, "u1");
    assert_eq!(created.name, "Ada Lovelace");
    assert_eq!(created.email, "ada@example.com");
    assert_eq!(created.phone.as_deref(), Some("+61293744000"));
    assert_eq!(created.country, "AU");
    assert_eq!(instant(&created.created_at), instant(&created.updated_at));
    assert_eq!(db.user("u1".into()).await?, Some(created.clone()));
    assert_eq!(db.user("nope".into()).await?, None);

    let generated = db
        .create_user(NewUser {
            id: None,
            ..user("ignored")
        })
        .await?;
    assert!(generated.id.starts_with("usr-"), "{}", generated.id);
    assert_eq!(db.user(generated.id.clone()).await?, Some(generated));

    // `phone: null` removes the phone; absent fields stay.
    let patch: UserPatch = serde_json::from_str(r#"{"phone": null, "country": "gb"}"#)?;
    let patched = db
        .update_user("u1".into(), patch)
        .await?
        .ok_or("u1 vanished")?;
    assert_eq!(patched.phone, None);
    assert_eq!(patched.country, "GB");
    assert_eq!(
        (&patched.name, &patched.email, &patched.risk_profile),
        (&created.name, &created.email, &created.risk_profile)
    );
    assert_eq!(patched.created_at, created.created_at);
    assert!(instant(&patched.updated_at) >= instant(&created.updated_at));
    assert_eq!(db.user("u1".into()).await?, Some(patched.clone()));

    // Setting a phone again, and one's own e-mail address, is no conflict.
    let patch = UserPatch {
        phone: Some(Some("+44 20 7946 0000".into())),
        email: Some("ADA@example.com".into()),
        status: Some("suspended".into()),
        ..Default::default()
    };
    let patched = db
        .update_user("u1".into(), patch)
        .await?
        .ok_or("u1 vanished")?;
    assert_eq!(patched.phone.as_deref(), Some("+442079460000"));
    assert_eq!(patched.email, "ada@example.com");
    assert_eq!(patched.status, "suspended");

    let rename = UserPatch {
        name: Some("B".into()),
        ..Default::default()
    };
    assert_eq!(db.update_user("nope".into(), rename).await?, None);
    assert!(db.delete_user("u1".into()).await?);
    assert!(!db.delete_user("u1".into()).await?);
    assert_eq!(db.user("u1".into()).await?, None);
    Ok(())
}

async fn users_page_in_byte_order(db: Operational) -> TestResult {
    let mut ids = vec![
        "B", "a", "_x", "a-b", "a.b", "ab", "Z9", "0", "a_b", "A", "b", "-",
    ];
    for id in &ids {
        db.create_user(user(id)).await?;
    }
    ids.sort_unstable();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = db.users(cursor.clone(), 5).await?;
        assert!(page.len() <= 5);
        seen.extend(page.iter().map(|u| u.id.clone()));
        if page.len() < 5 {
            break;
        }
        cursor = page.last().map(|u| u.id.clone());
    }
    assert_eq!(seen, ids);
    // A cursor is a position, not a row: it need not exist.
    let after_a = db.users(Some("a".into()), 2).await?;
    let after_a: Vec<&str> = after_a.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(after_a, ["a-b", "a.b"]);
    let after_aa = db.users(Some("aa".into()), 100).await?;
    assert_eq!(after_aa.first().map(|u| u.id.as_str()), Some("ab"));
    assert!(db.users(Some("z".into()), 10).await?.is_empty());
    Ok(())
}

async fn conflicts_say_what_is_taken(db: Operational) -> TestResult {
    db.create_user(ada()).await?;
    // Both the id and the e-mail address are taken: the id is reported.
    assert_eq!(
        conflict(db.create_user(ada()).await),
        "a user with id 'u1' exists: choose another id or leave it out to have one generated"
    );
    let same_email = NewUser {
        id: Some("u2".into()),
        email: "ADA@EXAMPLE.COM".into(),
        ..ada()
    };
    assert_eq!(
        conflict(db.create_user(same_email).await),
        "the e-mail address 'ada@example.com' belongs to another user: each user has their own"
    );
    let generated_id = NewUser { id: None, ..ada() };
    assert!(conflict(db.create_user(generated_id).await).contains("e-mail"));

    let bob = db.create_user(user("bob")).await?;
    let steal = UserPatch {
        email: Some("ada@example.com".into()),
        name: Some("Robert".into()),
        ..Default::default()
    };
    assert_eq!(
        conflict(db.update_user("bob".into(), steal).await),
        "the e-mail address 'ada@example.com' belongs to another user: each user has their own"
    );
    assert_eq!(
        db.user("bob".into()).await?,
        Some(bob),
        "a refused patch changes nothing"
    );

    db.create_conversation(conversation("c1", "u1")).await?;
    assert_eq!(
        conflict(db.create_conversation(conversation("c1", "bob")).await),
        "a conversation with id 'c1' exists: choose another id or leave it out to have one generated"
    );
    assert_eq!(
        db.conversation("c1".into()).await?.map(|c| c.customer_id),
        Some("u1".into())
    );
    Ok(())
}

/// Makes one field of a valid user invalid.
type Spoil = fn(&mut NewUser);

async fn rejections_name_the_field(db: Operational) -> TestResult {
    let cases: [(&str, Spoil); 10] = [
        ("name", |u| u.name = " ".into()),
        ("name", |u| u.name = "x\u{0}y".into()),
        ("name", |u| u.name = "n".repeat(201)),
        ("email", |u| u.email = "ada".into()),
        ("phone", |u| u.phone = Some("12345".into())),
        ("country", |u| u.country = "AUS".into()),
        ("risk_profile", |u| u.risk_profile = "yolo".into()),
        ("status", |u| u.status = "gone".into()),
        ("id", |u| u.id = Some("a/b".into())),
        ("id", |u| u.id = Some("x".repeat(65))),
    ];
    for (field, spoil) in cases {
        let mut new = ada();
        spoil(&mut new);
        assert_eq!(
            rejected(db.create_user(new.clone()).await),
            field,
            "{new:?}"
        );
    }
    assert!(db.users(None, 10).await?.is_empty(), "nothing was written");

    db.create_user(ada()).await?;
    assert_eq!(
        rejected(db.update_user("u1".into(), UserPatch::default()).await),
        "body"
    );
    let bad_phone = UserPatch {
        phone: Some(Some("+0123".into())),
        ..Default::default()
    };
    assert_eq!(
        rejected(db.update_user("u1".into(), bad_phone).await),
        "phone"
    );
    let bad_status = UserPatch {
        status: Some("asleep".into()),
        ..Default::default()
    };
    // Validation comes first: even for a user that does not exist.
    assert_eq!(
        rejected(db.update_user("nope".into(), bad_status).await),
        "status"
    );

    assert_eq!(
        rejected(db.create_conversation(conversation("c/1", "u1")).await),
        "id"
    );
    assert_eq!(
        rejected(db.create_conversation(conversation("c1", "")).await),
        "customer_id"
    );
    let blank_subject = NewConversation {
        subject: Some("   ".into()),
        ..conversation("c1", "u1")
    };
    assert_eq!(
        rejected(db.create_conversation(blank_subject).await),
        "subject"
    );
    db.create_conversation(conversation("c1", "u1")).await?;
    assert_eq!(
        rejected(db.add_message("c1".into(), message("bot", "hi")).await),
        "role"
    );
    let long = "x".repeat(model::MAX_MESSAGE_CHARS + 1);
    assert_eq!(
        rejected(
            db.add_message("c1".into(), message("customer", &long))
                .await
        ),
        "text"
    );
    assert_eq!(
        rejected(db.add_message("nope".into(), message("customer", "")).await),
        "text"
    );
    let c1 = db.conversation("c1".into()).await?.ok_or("c1 vanished")?;
    assert_eq!(c1.message_count, 0);
    Ok(())
}

/// The tables' CHECK constraints agree with the model's lists.
async fn the_checks_accept_every_value_the_model_does(db: Operational) -> TestResult {
    for (i, risk_profile) in RISK_PROFILES.iter().enumerate() {
        for (j, status) in USER_STATUSES.iter().enumerate() {
            let new = NewUser {
                risk_profile: (*risk_profile).into(),
                status: (*status).into(),
                ..user(&format!("u{i}-{j}"))
            };
            let created = db.create_user(new).await?;
            assert_eq!(
                (created.risk_profile.as_str(), created.status.as_str()),
                (*risk_profile, *status)
            );
        }
    }
    Ok(())
}

async fn conversations_keep_their_messages(db: Operational) -> TestResult {
    let created = db
        .create_conversation(NewConversation {
            id: None,
            customer_id: "cust-1".into(),
            subject: Some("  Card fees — Gebühren  ".into()),
        })
        .await?;
    assert!(created.id.starts_with("conv-"), "{}", created.id);
    assert_eq!(created.subject.as_deref(), Some("Card fees — Gebühren"));
    assert_eq!(
        (created.status.as_str(), created.message_count),
        ("open", 0)
    );
    assert!(created.messages.is_empty());
    assert_eq!(instant(&created.created_at), instant(&created.updated_at));
    assert_eq!(
        db.conversation(created.id.clone()).await?,
        Some(created.clone())
    );

    let texts = [
        ("customer", "Grüße 👋 — 日本語のテキスト, ünïcödé"),
        (
            "agent",
            r#"He said "hi", it's 'fine' \ and \n is not a newline"#,
        ),
        ("advisor", "line one\nline two\tand a tab"),
        ("system", r#"{"looks": ["like", "json"], "n": 1}"#),
        ("customer", "'; DROP TABLE conversations; --"),
    ];
    let mut last = created.clone();
    for (i, (role, text)) in texts.iter().enumerate() {
        last = db
            .add_message(created.id.clone(), message(role, text))
            .await?
            .ok_or("the conversation vanished")?;
        assert_eq!(last.message_count as usize, i + 1);
        let added = last.messages.last().ok_or("no message")?;
        assert_eq!((added.role.as_str(), added.text.as_str()), (*role, *text));
        assert_eq!(instant(&last.updated_at), instant(&added.at));
    }
    let read = db
        .conversation(created.id.clone())
        .await?
        .ok_or("the conversation vanished")?;
    assert_eq!(read, last);
    let got: Vec<(&str, &str)> = read
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(got, texts);
    assert_eq!(read.created_at, created.created_at);
    assert!(read
        .messages
        .windows(2)
        .all(|w| instant(&w[0].at) <= instant(&w[1].at)));

    assert_eq!(
        db.add_message("nope".into(), message("customer", "hi"))
            .await?,
        None
    );
    assert_eq!(db.conversation("nope".into()).await?, None);
    Ok(())
}

async fn a_conversation_holds_at_most_max_messages(db: Operational) -> TestResult {
    db.create_conversation(conversation("c1", "cust-1")).await?;
    for i in 0..MAX_MESSAGES - 1 {
        db.add_message("c1".into(), message("customer", &format!("m{i}")))
            .await?
            .ok_or("c1 vanished")?;
    }
    // One slot left and eight writers at once: exactly one gets it.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.add_message("c1".into(), message("agent", &format!("last {i}")))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await? {
            Ok(Some(c)) => {
                won += 1;
                assert_eq!(c.message_count as usize, MAX_MESSAGES);
            }
            other => assert_eq!(
                conflict(other),
                format!(
                    "conversation 'c1' holds {MAX_MESSAGES} messages, the most one conversation \
                     keeps: start a new conversation"
                )
            ),
        }
    }
    assert_eq!(won, 1);
    let full = db.conversation("c1".into()).await?.ok_or("c1 vanished")?;
    assert_eq!(full.messages.len(), MAX_MESSAGES);
    assert_eq!(full.message_count as usize, MAX_MESSAGES);
    assert_eq!(full.messages[0].text, "m0");
    conflict(
        db.add_message("c1".into(), message("customer", "one more"))
            .await,
    );
    assert_eq!(db.conversation("c1".into()).await?, Some(full));
    Ok(())
}

async fn conversations_list_by_customer_in_pages(db: Operational) -> TestResult {
    let made = [
        ("k-b", "cust-1"),
        ("K-a", "cust-2"),
        ("k_c", "cust-1"),
        ("k.d", "cust-2"),
        ("ka", "cust-1"),
        ("_k", "cust-1"),
    ];
    for (id, customer) in made {
        db.create_conversation(conversation(id, customer)).await?;
    }
    let ids = |list: &[ultracore_cdc::model::Conversation]| -> Vec<String> {
        list.iter().map(|c| c.id.clone()).collect()
    };
    let mut all: Vec<String> = made.iter().map(|(id, _)| id.to_string()).collect();
    all.sort_unstable();
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = db.conversations(None, cursor.clone(), 4).await?;
        paged.extend(ids(&page));
        if page.len() < 4 {
            break;
        }
        cursor = page.last().map(|c| c.id.clone());
    }
    assert_eq!(paged, all);

    let mut mine: Vec<String> = made
        .iter()
        .filter(|(_, c)| *c == "cust-1")
        .map(|(id, _)| id.to_string())
        .collect();
    mine.sort_unstable();
    let first = db.conversations(Some("cust-1".into()), None, 2).await?;
    assert_eq!(ids(&first), mine[..2]);
    let rest = db
        .conversations(Some("cust-1".into()), Some(mine[1].clone()), 10)
        .await?;
    assert_eq!(ids(&rest), mine[2..]);
    assert!(rest.iter().all(|c| c.customer_id == "cust-1"));
    assert!(db
        .conversations(Some("cust-9".into()), None, 10)
        .await?
        .is_empty());
    Ok(())
}

/// More writers than the pool has connections: all are served, and races
/// for one e-mail address end in one winner and conflicts.
async fn concurrent_writers_are_all_served(db: Operational) -> TestResult {
    let writers: Vec<_> = (0..(PgDb::POOL_SIZE * 4))
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { db.create_user(user(&format!("w{i:03}"))).await })
        })
        .collect();
    for w in writers {
        w.await??;
    }
    assert_eq!(db.users(None, 1000).await?.len(), PgDb::POOL_SIZE * 4);

    let racers: Vec<_> = (0..(PgDb::POOL_SIZE + 2))
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.create_user(NewUser {
                    email: "same@example.com".into(),
                    ..user(&format!("r{i}"))
                })
                .await
            })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        match r.await? {
            Ok(_) => won += 1,
            other => assert!(conflict(other).contains("e-mail address 'same@example.com'")),
        }
    }
    assert_eq!(won, 1);
    Ok(())
}

/// Sends one request to the router; the status and the JSON body (null
/// when empty).
async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> TestResult<(StatusCode, Value)> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(match body {
            Some(b) => Body::from(serde_json::to_vec(&b)?),
            None => Body::empty(),
        })?;
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok((status, value))
}

/// The users routes over this database (they need no principal).
async fn the_api_answers_alike(db: Operational) -> TestResult {
    let app = ultracore_cdc::http::router(db);
    let ada = json!({"id": "u1", "name": "Ada", "email": "ada@example.com", "country": "au"});
    let (status, created) = call(&app, "POST", "/api/v1/users", Some(ada.clone())).await?;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["country"], "AU");
    assert_eq!(created["phone"], Value::Null);
    instant(created["created_at"].as_str().ok_or("no created_at")?);

    let (status, _) = call(&app, "POST", "/api/v1/users", Some(ada)).await?;
    assert_eq!(status, StatusCode::CONFLICT);
    let bad = json!({"name": "Bob", "email": "bob@example.com", "country": "Australia"});
    let (status, problem) = call(&app, "POST", "/api/v1/users", Some(bad)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "country");

    let bob = json!({"id": "u2", "name": "Bob", "email": "bob@example.com", "country": "NZ", "phone": "+64 9 123 4567"});
    assert_eq!(
        call(&app, "POST", "/api/v1/users", Some(bob)).await?.0,
        StatusCode::CREATED
    );
    let (status, page) = call(&app, "GET", "/api/v1/users?limit=1", None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["users"][0]["id"], "u1");
    assert_eq!(page["next_cursor"], "u1");
    let (_, page) = call(&app, "GET", "/api/v1/users?limit=1&cursor=u1", None).await?;
    assert_eq!(page["users"][0]["id"], "u2");

    let (status, patched) = call(
        &app,
        "PATCH",
        "/api/v1/users/u2",
        Some(json!({"phone": null})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["phone"], Value::Null);
    let (_, read) = call(&app, "GET", "/api/v1/users/u2", None).await?;
    assert_eq!(read, patched);
    let steal = json!({"email": "ada@example.com"});
    assert_eq!(
        call(&app, "PATCH", "/api/v1/users/u2", Some(steal))
            .await?
            .0,
        StatusCode::CONFLICT
    );

    assert_eq!(
        call(&app, "DELETE", "/api/v1/users/u2", None).await?.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, "GET", "/api/v1/users/u2", None).await?.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "DELETE", "/api/v1/users/u2", None).await?.0,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

// ---- the same writes on both databases ----

/// Users, patches, a delete, conversations and messages; then every row.
async fn scripted_writes(db: Operational) -> TestResult<(Vec<Row>, Vec<Row>)> {
    for id in ["B", "a", "_x", "a-b", "Z9"] {
        db.create_user(user(id)).await?;
    }
    db.create_user(ada()).await?;
    let patch: UserPatch =
        serde_json::from_str(r#"{"phone": null, "risk_profile": "aggressive"}"#)?;
    db.update_user("u1".into(), patch).await?;
    let patch = UserPatch {
        email: Some("Bee@Example.org".into()),
        phone: Some(Some("+1 (212) 555-0100".into())),
        country: Some("us".into()),
        ..Default::default()
    };
    db.update_user("B".into(), patch).await?;
    db.delete_user("Z9".into()).await?;

    db.create_conversation(NewConversation {
        subject: Some("Grüße — \"quotes\" and 'apostrophes'".into()),
        ..conversation("c-2", "u1")
    })
    .await?;
    db.create_conversation(conversation("c-1", "a")).await?;
    db.create_conversation(conversation("C-0", "a")).await?;
    for (role, text) in [
        ("customer", "こんにちは 👋"),
        ("agent", r#"a "quoted" \ backslash"#),
        ("customer", "two\nlines"),
    ] {
        db.add_message("c-2".into(), message(role, text)).await?;
    }
    db.add_message("c-1".into(), message("system", "{}"))
        .await?;
    Ok((db.rows(&USERS).await?, db.rows(&CONVERSATIONS).await?))
}

/// Rows without what legitimately differs: the timestamp columns (each
/// checked to be an RFC 3339 instant first) and each message's `at`; the
/// JSON column compared as a document (each database prints its own).
fn comparable(table: &Table, rows: Vec<Row>) -> Vec<Row> {
    rows.into_iter()
        .map(|mut row| {
            for c in table.columns {
                match c.kind {
                    Kind::Timestamp => {
                        let v = row.remove(c.name).unwrap_or(Value::Null);
                        instant(v.as_str().unwrap_or_else(|| panic!("{}: {v}", c.name)));
                    }
                    Kind::Json => {
                        let text = row[c.name].as_str().expect("a JSON column is a string");
                        let mut doc: Value = serde_json::from_str(text).expect("valid JSON");
                        for m in doc.as_array_mut().into_iter().flatten() {
                            let at = m.as_object_mut().and_then(|o| o.remove("at"));
                            instant(at.as_ref().and_then(Value::as_str).expect("an `at`"));
                        }
                        row.insert(c.name.into(), doc);
                    }
                    Kind::Text | Kind::Integer => {}
                }
            }
            row
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_databases_hold_the_same_rows() -> TestResult {
    let (sqlite_users, sqlite_conversations) = on_sqlite(scripted_writes).await?;
    let (pg_users, pg_conversations) = on_postgres(scripted_writes).await?;
    assert_eq!(sqlite_users.len(), 5);
    assert_eq!(sqlite_conversations.len(), 3);
    let keys = |rows: &[Row]| -> Vec<String> {
        rows.iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        keys(&pg_users),
        ["B", "_x", "a", "a-b", "u1"],
        "key (byte) order"
    );
    assert_eq!(keys(&pg_conversations), ["C-0", "c-1", "c-2"]);
    for row in pg_users.iter().chain(&pg_conversations) {
        let names: Vec<&str> = row.keys().map(String::as_str).collect();
        let table = if row.contains_key("email") {
            &USERS
        } else {
            &CONVERSATIONS
        };
        let mut expected: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        expected.sort_unstable();
        let mut names = names;
        names.sort_unstable();
        assert_eq!(names, expected, "every column, nothing else");
    }
    assert_eq!(
        comparable(&USERS, pg_users),
        comparable(&USERS, sqlite_users)
    );
    assert_eq!(
        comparable(&CONVERSATIONS, pg_conversations),
        comparable(&CONVERSATIONS, sqlite_conversations)
    );
    Ok(())
}

// ---- PostgreSQL's own concerns ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_errors_say_where_and_never_the_password() -> TestResult {
    let url = cluster_url();
    let (scheme_user, rest) = url
        .split_once('@')
        .ok_or("the test URL has no credentials")?;
    let (_, host_db) = rest.split_once('/').ok_or("the test URL has no database")?;
    let password = cluster_password();
    let user_part = scheme_user.rsplit_once(':').map_or(scheme_user, |(u, _)| u);
    let endpoint = rest.split_once('/').map_or(rest, |(e, _)| e);

    let message = |result: Result<PgDb, Error>| -> String {
        match result {
            Err(e @ Error::Postgres { .. }) => {
                let m = e.to_string();
                assert!(!m.contains("s3cret"), "{m}");
                assert!(!m.contains(&password), "{m}");
                m
            }
            other => panic!("expected a PostgreSQL error, got {other:?}"),
        }
    };

    let wrong_password = format!("{user_part}:not-the-s3cret@{endpoint}/{host_db}");
    let m = message(PgDb::connect(&wrong_password).await);
    assert!(
        m.contains(endpoint) && m.contains("password in DATABASE_URL"),
        "{m}"
    );

    let missing = with_database(&url, "cdc_store_no_such_database");
    let m = message(PgDb::connect(&missing).await);
    assert!(m.contains("create the database"), "{m}");

    let refused = "postgres://ultracore:s3cret@127.0.0.1:1/ultracore";
    let m = message(PgDb::connect(refused).await);
    assert!(
        m.contains("127.0.0.1:1") && m.contains("connection refused") && m.contains("DATABASE_URL"),
        "{m}"
    );

    for bad in [
        "mysql://u:s3cret@h/db",
        "postgres://u:s3cret@h/db?bogus=1",
        "postgres://u:s3cret@h:notaport/db",
        "postgres://u:s3cret@h/db?sslmode=verify_full",
    ] {
        let m = message(PgDb::connect(bad).await);
        assert!(m.contains("DATABASE_URL"), "{bad}: {m}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_location_hides_credentials_and_the_tables_are_in_public() -> TestResult {
    in_scratch(|pg| async move {
        // The read models' `schema` parameter rides along in DATABASE_URL.
        let url = format!(
            "{}?schema=es_elsewhere&application_name=cdc_store_test",
            pg.url
        );
        let db = PgDb::connect(&url).await?;
        let endpoint = cluster_url()
            .split_once('@')
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(e, _)| e.to_owned())
            .ok_or("no endpoint")?;
        assert_eq!(db.location(), format!("postgres://{endpoint}/{}", pg.name));
        let op = Operational::Postgres(db.clone());
        assert_eq!(op.location(), db.location());
        assert!(!format!("{db:?}").contains(&cluster_password()));
        op.create_user(ada()).await?;

        let client = pg.sql().await?;
        let tables: Vec<(String, String)> = client
            .query(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 2",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let public = |t: &str| ("public".to_owned(), t.to_owned());
        assert_eq!(
            tables,
            [
                public("conversations"),
                public("ultracore_ops_migrations"),
                public("users")
            ]
        );
        let identities: Vec<String> = client
            .query(
                "SELECT relreplident::text FROM pg_class
                 WHERE oid IN ('public.users'::regclass, 'public.conversations'::regclass)",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(identities, ["f", "f"], "REPLICA IDENTITY FULL");
        let apps: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cdc_store_test'",
                &[],
            )
            .await?
            .get(0);
        assert!(apps >= 1, "other parameters reach the server");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_connects_migrate_once() -> TestResult {
    in_scratch(|pg| async move {
        let connects: Vec<_> = (0..6)
            .map(|_| {
                let url = pg.url.clone();
                tokio::spawn(async move { PgDb::connect(&url).await })
            })
            .collect();
        let mut dbs = Vec::new();
        for c in connects {
            dbs.push(c.await??);
        }
        let client = pg.sql().await?;
        let versions: Vec<i32> = client
            .query(
                "SELECT version FROM ultracore_ops_migrations ORDER BY version",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, [1]);
        // Each handle works on the one set of tables.
        dbs[0].create_user(&ada()).await?;
        assert!(dbs[5].user("u1").await?.is_some());
        drop(dbs);
        PgDb::connect(&pg.url).await?;

        // A database migrated by a newer build is refused, not downgraded.
        client
            .execute(
                "INSERT INTO ultracore_ops_migrations (version) VALUES (99)",
                &[],
            )
            .await?;
        match PgDb::connect(&pg.url).await {
            Err(e @ Error::Postgres { .. }) => {
                assert!(e.to_string().contains("newer UltraCore"), "{e}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reconnects_after_its_connections_are_killed() -> TestResult {
    in_scratch(|pg| async move {
        let db = PgDb::connect(&pg.url).await?;
        db.create_user(&ada()).await?;
        // Open every connection of the pool.
        let busy: Vec<_> = (0..PgDb::POOL_SIZE)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.users(None, 10).await })
            })
            .collect();
        for b in busy {
            b.await??;
        }
        let admin = sql(&cluster_url()).await?;
        let killed: i64 = admin
            .query_one(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()) k",
                &[&pg.name],
            )
            .await?
            .get(0);
        assert!(killed >= 1);
        // Until the backends are gone, a call could still be served by one.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&pg.name],
                )
                .await?
                .get(0);
            if left == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{left} backends outlived their termination"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Each dead connection fails at most the one call that finds it
        // dead; after that the pool has reconnected.
        let mut failures = 0;
        loop {
            match db.user("u1").await {
                Ok(user) => {
                    assert!(user.is_some());
                    break;
                }
                Err(e @ Error::Postgres { .. }) => {
                    failures += 1;
                    assert!(
                        failures <= PgDb::POOL_SIZE,
                        "no reconnect after {failures} calls: {e}"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        for _ in 0..20 {
            assert!(db.user("u1").await?.is_some());
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unavailable_is_503_without_credentials() -> TestResult {
    in_scratch(|pg| async move {
        let app = ultracore_cdc::http::router(Operational::Postgres(PgDb::connect(&pg.url).await?));
        let (status, _) = call(&app, "GET", "/api/v1/users", None).await?;
        assert_eq!(status, StatusCode::OK);
        let admin = sql(&cluster_url()).await?;
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", pg.name))
            .await?;
        // The first calls find the dropped connections; later ones fail to reconnect.
        for _ in 0..(PgDb::POOL_SIZE + 2) {
            let (status, problem) = call(&app, "GET", "/api/v1/users/u1", None).await?;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
            let detail = problem["detail"].as_str().ok_or("no detail")?;
            assert!(detail.contains(&format!("/{}", pg.name)), "{detail}");
            assert!(!detail.contains(&cluster_password()), "{detail}");
        }
        Ok(())
    })
    .await
}

#[test]
fn test_urls_name_their_database() {
    assert_eq!(
        with_database("postgres://u:p@h:1/db?x=1", "other"),
        "postgres://u:p@h:1/other?x=1"
    );
    assert_eq!(
        with_database("postgres://u:p@h:1", "other"),
        "postgres://u:p@h:1/other"
    );
}
