//! [`PgDb`]: the users and conversations tables on PostgreSQL, with the
//! behaviour of [`crate::SqliteDb`] call for call: the same validation, the
//! same conflicts and messages, the same paging.
//!
//! Every write is one statement, so it is atomic without an explicit
//! transaction and holds no lock across a round trip: a conflict is the
//! database's unique-key check (then classified), a patch is applied by the
//! `UPDATE` itself, and a message is appended and counted against the bound
//! by one `UPDATE … WHERE message_count < bound`. Timestamps go in as RFC
//! 3339 text cast to `timestamptz` and come back as `::text`, converted by
//! [`values::timestamp`], so the API and change capture show the same
//! instant the same way.

use std::sync::Arc;

use tokio_postgres::error::SqlState;

use super::pool::{self, Pool};
use super::values;
use crate::envelope::Row;
use crate::model::{
    self, Conversation, Message, NewConversation, NewMessage, NewUser, User, UserPatch,
};
use crate::tables::Table;
use crate::{Error, Result};
use ultracore_pgrepl::url::chain;

/// Versioned migrations, applied in order, each in its own transaction and
/// recorded in `ultracore_ops_migrations`. Never edit a released one: add
/// the next.
///
/// The tables are those of SQLite, with PostgreSQL types. Keys are
/// `COLLATE "C"`, so they sort by their UTF-8 bytes as in SQLite whatever
/// the database's collation: pages of ids are the same on both. `REPLICA
/// IDENTITY FULL` makes logical replication carry the whole row before an
/// update or delete, which change events need as their `before`.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
    CREATE TABLE public.users (
        id text COLLATE "C" NOT NULL,
        name text NOT NULL,
        email text NOT NULL,
        phone text,
        country text NOT NULL CHECK (length(country) = 2),
        risk_profile text NOT NULL
            CHECK (risk_profile IN ('conservative','moderate','balanced','growth','aggressive')),
        status text NOT NULL CHECK (status IN ('active','suspended','closed')),
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT users_pkey PRIMARY KEY (id),
        CONSTRAINT users_email_key UNIQUE (email)
    );
    CREATE TABLE public.conversations (
        id text COLLATE "C" NOT NULL,
        customer_id text COLLATE "C" NOT NULL,
        subject text,
        status text NOT NULL CHECK (status IN ('open','closed')),
        messages jsonb NOT NULL DEFAULT '[]',
        message_count integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT conversations_pkey PRIMARY KEY (id)
    );
    CREATE INDEX conversations_customer ON public.conversations (customer_id, id);
    ALTER TABLE public.users REPLICA IDENTITY FULL;
    ALTER TABLE public.conversations REPLICA IDENTITY FULL;
    "#,
)];

/// Serializes migrations across processes: taken first in each migration
/// transaction, released by its commit.
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ultracore-ops-migrations'))";

/// The columns of a user, in [`crate::tables::USERS`] order.
macro_rules! user_columns {
    () => {
        "id, name, email, phone, country, risk_profile, status, created_at::text, updated_at::text"
    };
}

/// The columns of a conversation, in [`crate::tables::CONVERSATIONS`] order.
macro_rules! conversation_columns {
    () => {
        "id, customer_id, subject, status, messages::text, message_count, \
         created_at::text, updated_at::text"
    };
}

const INSERT_USER: &str = concat!(
    "INSERT INTO public.users (id, name, email, phone, country, risk_profile, status, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::timestamptz, $8::text::timestamptz) \
     RETURNING ",
    user_columns!()
);
const USER: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM public.users WHERE id = $1"
);
const USER_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM public.users WHERE id = $1)";
const USERS_PAGE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM public.users WHERE id > $1 ORDER BY id LIMIT $2"
);
/// A patch in one statement: absent fields keep their value; `$4` says
/// whether the phone changes (to `$5`, which may be null).
const UPDATE_USER: &str = concat!(
    "UPDATE public.users SET name = COALESCE($2::text, name), email = COALESCE($3::text, email), \
     phone = CASE WHEN $4::boolean THEN $5::text ELSE phone END, \
     country = COALESCE($6::text, country), risk_profile = COALESCE($7::text, risk_profile), \
     status = COALESCE($8::text, status), updated_at = $9::text::timestamptz \
     WHERE id = $1 RETURNING ",
    user_columns!()
);
const DELETE_USER: &str = "DELETE FROM public.users WHERE id = $1";
const INSERT_CONVERSATION: &str = concat!(
    "INSERT INTO public.conversations \
     (id, customer_id, subject, status, messages, message_count, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, '[]', 0, $5::text::timestamptz, $5::text::timestamptz) \
     ON CONFLICT (id) DO NOTHING RETURNING ",
    conversation_columns!()
);
const CONVERSATION: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM public.conversations WHERE id = $1"
);
const CONVERSATIONS_PAGE: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM public.conversations WHERE id > $1 ORDER BY id LIMIT $2"
);
/// One customer's page: a range of the `(customer_id, id)` index. A
/// separate statement rather than `$2 IS NULL OR customer_id = $2`, whose
/// generic plan could not use the index.
const CUSTOMER_CONVERSATIONS_PAGE: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM public.conversations WHERE customer_id = $2 AND id > $1 ORDER BY id LIMIT $3"
);
/// The append and the bound in one statement: concurrent appends to a
/// conversation with one slot left cannot both pass the check.
const ADD_MESSAGE: &str = concat!(
    "UPDATE public.conversations \
     SET messages = messages || jsonb_build_array($2::text::jsonb), \
     message_count = message_count + 1, updated_at = $3::text::timestamptz \
     WHERE id = $1 AND message_count < $4 RETURNING ",
    conversation_columns!()
);
const CONVERSATION_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM public.conversations WHERE id = $1)";

/// The operational tables in a PostgreSQL database: a handle on a pool of
/// at most [`PgDb::POOL_SIZE`] connections. Clones share the pool.
#[derive(Debug, Clone)]
pub struct PgDb {
    pool: Arc<Pool>,
}

impl PgDb {
    /// Connections per handle (a bounded pool; callers beyond it wait).
    pub const POOL_SIZE: usize = pool::POOL_SIZE;

    /// Connects to `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or
    /// `postgresql://`) and brings the tables up to date. The tables live in
    /// the database's `public` schema; the read models' `?schema=` parameter
    /// (the same `DATABASE_URL` serves both) is ignored here, and every
    /// other parameter is libpq's as tokio-postgres reads it
    /// (`connect_timeout`, default 10 s; `application_name`, default
    /// `ultracore`), except `sslmode` and `sslrootcert`, which mean what
    /// they mean to libpq (see [`ultracore_pgrepl::tls`]: `prefer` by
    /// default, `verify-full&sslrootcert=/path/ca.crt` to authenticate the
    /// server). Processes connecting at once apply each migration once.
    ///
    /// Errors: [`Error::Postgres`] saying which `host:port` failed and what
    /// to check in `DATABASE_URL` (for TLS: the server offers none though
    /// `sslmode` requires it, a certificate not signed by `sslrootcert`'s
    /// CA, a host name the certificate does not name); never the password.
    pub async fn connect(url: &str) -> Result<PgDb> {
        let pool = Pool::new(pool::parse(url)?);
        migrate(&pool).await?;
        Ok(PgDb {
            pool: Arc::new(pool),
        })
    }

    /// `postgres://HOST:PORT/DATABASE`: the URL without credentials or
    /// parameters, for messages.
    pub fn location(&self) -> &str {
        &self.pool.target().location
    }

    fn err(&self) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
        self.pool.err()
    }

    /// Runs one prepared statement and returns its rows.
    /// The answer of a `SELECT EXISTS (…)` about `id`.
    async fn exists(&self, sql: &str, id: &str) -> Result<bool> {
        self.query(sql, &[&id])
            .await?
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(self.err())
            .map(|e| e.unwrap_or(false))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let mut conn = self.pool.get().await?;
        let statement = conn.prepare(sql).await?;
        conn.client()
            .query(&statement, params)
            .await
            .map_err(self.err())
    }

    /// Runs one prepared statement; the statement's own error (a
    /// unique-key violation, to classify) comes back inside `Ok`.
    async fn try_query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> {
        let mut conn = self.pool.get().await?;
        let statement = conn.prepare(sql).await?;
        Ok(conn.client().query(&statement, params).await)
    }

    // ---- users ----

    /// Validates and inserts a user (id generated unless given).
    ///
    /// Errors: [`Error::Invalid`] naming the field; [`Error::Conflict`] for
    /// a taken id (checked first) or e-mail address.
    pub async fn create_user(&self, new: &NewUser) -> Result<User> {
        let new = new.validate()?;
        let id = new.id.clone().unwrap_or_else(|| model::new_id("usr"));
        let now = model::now_rfc3339();
        let inserted = self
            .try_query(
                INSERT_USER,
                &[
                    &id,
                    &new.name,
                    &new.email,
                    &new.phone,
                    &new.country,
                    &new.risk_profile,
                    &new.status,
                    &now,
                ],
            )
            .await?;
        match inserted {
            Ok(rows) => self.one_user(rows),
            Err(e) if unique_violation(&e).is_some() => {
                let constraint = unique_violation(&e);
                let id_taken = self.exists(USER_EXISTS, &id).await?;
                if id_taken || constraint == Some("users_pkey") {
                    Err(id_taken_error(&id))
                } else if constraint == Some("users_email_key") {
                    Err(email_taken_error(&new.email))
                } else {
                    Err(self.err()(e))
                }
            }
            Err(e) => Err(self.err()(e)),
        }
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let rows = self.query(USER, &[&id]).await?;
        rows.first().map(|r| self.user_from_row(r)).transpose()
    }

    /// Users in id order (byte order) after `after`, at most `limit`.
    pub async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        let rows = self
            .query(USERS_PAGE, &[&after.unwrap_or(""), &page_limit(limit)])
            .await?;
        rows.iter().map(|r| self.user_from_row(r)).collect()
    }

    /// Applies a patch; `None` if there is no such user.
    ///
    /// Errors: [`Error::Invalid`] naming the field; [`Error::Conflict`] for
    /// an e-mail address another user has.
    pub async fn update_user(&self, id: &str, patch: &UserPatch) -> Result<Option<User>> {
        let patch = patch.validate()?;
        let now = model::now_rfc3339();
        let phone_changes = patch.phone.is_some();
        let phone = patch.phone.clone().flatten();
        let updated = self
            .try_query(
                UPDATE_USER,
                &[
                    &id,
                    &patch.name,
                    &patch.email,
                    &phone_changes,
                    &phone,
                    &patch.country,
                    &patch.risk_profile,
                    &patch.status,
                    &now,
                ],
            )
            .await?;
        match updated {
            Ok(rows) => rows.first().map(|r| self.user_from_row(r)).transpose(),
            Err(e) if unique_violation(&e) == Some("users_email_key") => {
                let email = patch.email.as_deref().unwrap_or_default();
                Err(email_taken_error(email))
            }
            Err(e) => Err(self.err()(e)),
        }
    }

    /// Deletes a user; whether there was one.
    pub async fn delete_user(&self, id: &str) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let statement = conn.prepare(DELETE_USER).await?;
        let n = conn
            .client()
            .execute(&statement, &[&id])
            .await
            .map_err(self.err())?;
        Ok(n == 1)
    }

    fn one_user(&self, rows: Vec<tokio_postgres::Row>) -> Result<User> {
        let row = rows.first().ok_or_else(|| {
            Error::Corrupt("PostgreSQL returned no row for an inserted user".into())
        })?;
        self.user_from_row(row)
    }

    fn user_from_row(&self, r: &tokio_postgres::Row) -> Result<User> {
        let err = self.err();
        let created_at: String = r.try_get(7).map_err(&err)?;
        let updated_at: String = r.try_get(8).map_err(&err)?;
        Ok(User {
            id: r.try_get(0).map_err(&err)?,
            name: r.try_get(1).map_err(&err)?,
            email: r.try_get(2).map_err(&err)?,
            phone: r.try_get(3).map_err(&err)?,
            country: r.try_get(4).map_err(&err)?,
            risk_profile: r.try_get(5).map_err(&err)?,
            status: r.try_get(6).map_err(&err)?,
            created_at: timestamp("users.created_at", &created_at)?,
            updated_at: timestamp("users.updated_at", &updated_at)?,
        })
    }

    // ---- conversations ----

    /// Validates and inserts an open conversation without messages.
    ///
    /// Errors: [`Error::Invalid`] naming the field; [`Error::Conflict`] for
    /// a taken id.
    pub async fn create_conversation(&self, new: &NewConversation) -> Result<Conversation> {
        new.validate()?;
        let id = new.id.clone().unwrap_or_else(|| model::new_id("conv"));
        let subject = new.subject.as_ref().map(|s| s.trim().to_owned());
        let now = model::now_rfc3339();
        let rows = self
            .query(
                INSERT_CONVERSATION,
                &[&id, &new.customer_id, &subject, &"open", &now],
            )
            .await?;
        match rows.first() {
            Some(row) => self.conversation_from_row(row),
            None => Err(Error::Conflict(format!(
                "a conversation with id '{id}' exists: choose another id or leave it out to have one generated"
            ))),
        }
    }

    pub async fn conversation(&self, id: &str) -> Result<Option<Conversation>> {
        let rows = self.query(CONVERSATION, &[&id]).await?;
        rows.first()
            .map(|r| self.conversation_from_row(r))
            .transpose()
    }

    /// Conversations in id order (byte order) after `after` (of one
    /// customer when given), at most `limit`.
    pub async fn conversations(
        &self,
        customer_id: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        let after = after.unwrap_or("");
        let limit = page_limit(limit);
        let rows = match customer_id {
            Some(customer) => {
                self.query(CUSTOMER_CONVERSATIONS_PAGE, &[&after, &customer, &limit])
                    .await?
            }
            None => self.query(CONVERSATIONS_PAGE, &[&after, &limit]).await?,
        };
        rows.iter().map(|r| self.conversation_from_row(r)).collect()
    }

    /// Appends a message; `None` if there is no such conversation.
    ///
    /// Errors: [`Error::Invalid`] naming the field; [`Error::Conflict`] when
    /// the conversation holds [`model::MAX_MESSAGES`] already.
    pub async fn add_message(
        &self,
        id: &str,
        message: &NewMessage,
    ) -> Result<Option<Conversation>> {
        message.validate()?;
        let entry = Message {
            role: message.role.clone(),
            text: message.text.clone(),
            at: model::now_rfc3339(),
        };
        let json = serde_json::to_string(&entry).expect("a message is serializable");
        let bound =
            i32::try_from(model::MAX_MESSAGES).expect("the bound fits a PostgreSQL integer");
        let rows = self
            .query(ADD_MESSAGE, &[&id, &json, &entry.at, &bound])
            .await?;
        if let Some(row) = rows.first() {
            return self.conversation_from_row(row).map(Some);
        }
        let exists = self.exists(CONVERSATION_EXISTS, id).await?;
        if exists {
            Err(Error::Conflict(format!(
                "conversation '{id}' holds {} messages, the most one conversation keeps: start a new conversation",
                model::MAX_MESSAGES
            )))
        } else {
            Ok(None)
        }
    }

    fn conversation_from_row(&self, r: &tokio_postgres::Row) -> Result<Conversation> {
        let err = self.err();
        let id: String = r.try_get(0).map_err(&err)?;
        let messages: String = r.try_get(4).map_err(&err)?;
        let messages: Vec<Message> = serde_json::from_str(&messages).map_err(|e| {
            Error::Corrupt(format!(
                "conversation '{id}': messages are not a list of {{role, text, at}}: {e}"
            ))
        })?;
        let count: i32 = r.try_get(5).map_err(&err)?;
        let created_at: String = r.try_get(6).map_err(&err)?;
        let updated_at: String = r.try_get(7).map_err(&err)?;
        Ok(Conversation {
            customer_id: r.try_get(1).map_err(&err)?,
            subject: r.try_get(2).map_err(&err)?,
            status: r.try_get(3).map_err(&err)?,
            messages,
            message_count: count.max(0) as u32,
            created_at: timestamp("conversations.created_at", &created_at)?,
            updated_at: timestamp("conversations.updated_at", &updated_at)?,
            id,
        })
    }

    // ---- capture ----

    /// Every row of a table in key order (byte order), as change capture
    /// carries it: each column printed by PostgreSQL (`::text`) and
    /// converted by [`values::to_json`], as the replication stream's values are.
    pub async fn rows(&self, table: &Table) -> Result<Vec<Row>> {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("t.\"{}\"::text", c.name))
            .collect();
        // `t.` and the explicit collation: the key column of the table in
        // byte order, not the printed output column of the same name.
        let sql = format!(
            "SELECT {} FROM public.\"{}\" AS t ORDER BY t.\"{}\" COLLATE \"C\"",
            columns.join(", "),
            table.name,
            table.key
        );
        let rows = self.query(&sql, &[]).await?;
        let err = self.err();
        rows.iter()
            .map(|r| {
                let mut row = Row::new();
                for (i, c) in table.columns.iter().enumerate() {
                    let text: Option<&str> = r.try_get(i).map_err(&err)?;
                    row.insert(
                        c.name.to_owned(),
                        values::to_json(table, c.name, c.kind, text)?,
                    );
                }
                Ok(row)
            })
            .collect()
    }
}

/// A page size as PostgreSQL's `LIMIT` takes it.
fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The constraint a unique-key violation names, if `e` is one.
fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or(""))
}

fn id_taken_error(id: &str) -> Error {
    Error::Conflict(format!(
        "a user with id '{id}' exists: choose another id or leave it out to have one generated"
    ))
}

fn email_taken_error(email: &str) -> Error {
    Error::Conflict(format!(
        "the e-mail address '{email}' belongs to another user: each user has their own"
    ))
}

/// A printed `timestamptz` as the API shows it (RFC 3339, UTC).
fn timestamp(column: &str, text: &str) -> Result<String> {
    values::timestamp(text)
        .ok_or_else(|| Error::Corrupt(format!("{column}: '{text}' is not a timestamp")))
}

/// Creates the migrations table if missing and applies the migrations the
/// database lacks. Each step takes the advisory lock and re-reads the
/// version under it, so processes connecting at once apply each migration
/// once; each migration commits with its version or not at all.
async fn migrate(pool: &Pool) -> Result<()> {
    let location = pool.target().location.clone();
    let err = |e: tokio_postgres::Error| Error::Postgres {
        location: location.clone(),
        message: format!("migrating the operational tables: {}", chain(&e)),
    };
    let mut conn = pool.get().await?;
    let client = conn.client();
    {
        let tx = client.transaction().await.map_err(err)?;
        tx.batch_execute(MIGRATION_LOCK).await.map_err(err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS public.ultracore_ops_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
    }
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    for (version, sql) in MIGRATIONS {
        let tx = client.transaction().await.map_err(err)?;
        tx.batch_execute(MIGRATION_LOCK).await.map_err(err)?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM public.ultracore_ops_migrations",
                &[],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(err)?;
        if current > known {
            return Err(Error::Postgres {
                location: location.clone(),
                message: format!(
                    "the operational tables are at version {current}, written by a newer \
                     UltraCore; this build knows versions up to {known}: upgrade it"
                ),
            });
        }
        if current >= *version {
            continue;
        }
        tx.batch_execute(sql).await.map_err(err)?;
        tx.execute(
            "INSERT INTO public.ultracore_ops_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        tracing::info!(%location, version, "operational tables migrated");
    }
    Ok(())
}
