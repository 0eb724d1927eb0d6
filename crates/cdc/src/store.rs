//! [`Operational`]: the users and conversations tables, on whichever
//! database holds them, behind one async API. SQLite calls block, so they
//! go to the blocking pool and never run on the async workers; PostgreSQL
//! calls are async and are awaited where they are made.

use std::sync::Arc;

use crate::envelope::Row;
use crate::model::{Conversation, NewConversation, NewMessage, NewUser, User, UserPatch};
use crate::postgres::PgDb;
use crate::sqlite::SqliteDb;
use crate::tables::Table;
use crate::{Error, Result};

/// The operational tables. Every method behaves the same on each database:
/// the same validation, conflicts, messages and paging.
#[derive(Debug, Clone)]
pub enum Operational {
    Sqlite(Arc<SqliteDb>),
    Postgres(PgDb),
}

/// `$call` on the database: on SQLite in `spawn_blocking` (the closure owns
/// what it borrows), on PostgreSQL awaited.
macro_rules! on_db {
    ($self:ident, $db:ident => $call:expr) => {
        match $self {
            Operational::Sqlite(db) => {
                let $db = db.clone();
                tokio::task::spawn_blocking(move || $call)
                    .await
                    .map_err(|e| Error::Corrupt(format!("a database call panicked: {e}")))?
            }
            Operational::Postgres($db) => $call.await,
        }
    };
}

impl Operational {
    /// Where the tables are, for messages (never with credentials).
    pub fn location(&self) -> String {
        match self {
            Operational::Sqlite(db) => db.path().display().to_string(),
            Operational::Postgres(db) => db.location().to_owned(),
        }
    }

    pub async fn create_user(&self, new: NewUser) -> Result<User> {
        on_db!(self, db => db.create_user(&new))
    }

    pub async fn user(&self, id: String) -> Result<Option<User>> {
        on_db!(self, db => db.user(&id))
    }

    pub async fn users(&self, after: Option<String>, limit: usize) -> Result<Vec<User>> {
        on_db!(self, db => db.users(after.as_deref(), limit))
    }

    pub async fn update_user(&self, id: String, patch: UserPatch) -> Result<Option<User>> {
        on_db!(self, db => db.update_user(&id, &patch))
    }

    pub async fn delete_user(&self, id: String) -> Result<bool> {
        on_db!(self, db => db.delete_user(&id))
    }

    pub async fn create_conversation(&self, new: NewConversation) -> Result<Conversation> {
        on_db!(self, db => db.create_conversation(&new))
    }

    pub async fn conversation(&self, id: String) -> Result<Option<Conversation>> {
        on_db!(self, db => db.conversation(&id))
    }

    pub async fn conversations(
        &self,
        customer_id: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        on_db!(self, db => db.conversations(customer_id.as_deref(), after.as_deref(), limit))
    }

    pub async fn add_message(
        &self,
        id: String,
        message: NewMessage,
    ) -> Result<Option<Conversation>> {
        on_db!(self, db => db.add_message(&id, &message))
    }

    /// Every row of a table in key order, as change capture carries it
    /// (verification, tests).
    pub async fn rows(&self, table: &Table) -> Result<Vec<Row>> {
        let table = *table;
        on_db!(self, db => db.rows(&table))
    }
}
