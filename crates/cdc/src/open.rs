//! Opening capture on whichever database holds the tables: PostgreSQL when
//! `DATABASE_URL` names one (its tables, its logical replication), else
//! SQLite in the data directory (`operational.sqlite`, its outbox).

use std::path::Path;

use ultracore_log::EventLog;
use ultracore_runtime::CancellationToken;

use crate::postgres::{PgRelay, PgRelayOptions};
use crate::{Operational, PgDb, RelayOptions, RelayProgress, Result, SqliteDb, SqliteRelay};

/// Whether `url` names PostgreSQL.
pub fn is_postgres(url: Option<&str>) -> bool {
    url.map(str::trim)
        .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// The relay of the database the tables are on.
#[derive(Debug)]
pub enum Relay<L: EventLog> {
    Sqlite(SqliteRelay<L>),
    Postgres(PgRelay<L>),
}

impl<L: EventLog> Relay<L> {
    /// Relays until `token` is cancelled.
    pub async fn run(&self, token: CancellationToken) -> Result<()> {
        match self {
            Relay::Sqlite(r) => r.run(token).await,
            Relay::Postgres(r) => r.run(token).await,
        }
    }

    /// Relays what is committed now, then returns the events appended.
    pub async fn drain(&self) -> Result<u64> {
        match self {
            Relay::Sqlite(r) => r.drain().await,
            Relay::Postgres(r) => r.drain().await,
        }
    }

    /// A handle on the progress that stays valid while the relay runs
    /// (for metrics: [`RelayProgress::register`]).
    pub fn progress_handle(&self) -> std::sync::Arc<std::sync::Mutex<RelayProgress>> {
        match self {
            Relay::Sqlite(r) => r.progress_handle(),
            Relay::Postgres(r) => r.progress_handle(),
        }
    }

    pub fn progress(&self) -> RelayProgress {
        match self {
            Relay::Sqlite(r) => r.progress(),
            Relay::Postgres(r) => r.progress(),
        }
    }
}

/// The tables (created or migrated as needed) and their relay.
pub async fn open<L: EventLog>(
    log: L,
    data_dir: &Path,
    database_url: Option<&str>,
    options: RelayOptions,
) -> Result<(Operational, Relay<L>)> {
    match database_url.filter(|u| is_postgres(Some(u))) {
        Some(url) => {
            let db = PgDb::connect(url).await?;
            let relay = PgRelay::new(
                log,
                url,
                PgRelayOptions {
                    relay: options,
                    ..Default::default()
                },
            );
            Ok((Operational::Postgres(db), Relay::Postgres(relay)))
        }
        None => {
            let path = data_dir.join(crate::sqlite::FILE_NAME);
            let db = SqliteDb::open(&path)?;
            let relay = SqliteRelay::open(log, &path, options)?;
            Ok((
                Operational::Sqlite(std::sync::Arc::new(db)),
                Relay::Sqlite(relay),
            ))
        }
    }
}
