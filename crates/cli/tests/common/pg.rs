//! A PostgreSQL database of a test's own on the test cluster
//! (`ULTRACORE_TEST_PG`, from `scripts/pg-up.sh`), dropped with its
//! replication slots when the test ends.

use super::Error;

/// The test cluster. Unset is a failure, not a skip: these tests are part of the suite.
pub fn cluster() -> String {
    std::env::var("ULTRACORE_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ULTRACORE_TEST_PG is not set: run scripts/test.sh, which starts a local PostgreSQL \
             cluster (scripts/pg-up.sh) and sets it"
        )
    })
}

pub struct TestDatabase {
    pub url: String,
    pub name: String,
}

fn admin<T>(f: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, Error>) -> Result<T, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, conn) = tokio_postgres::connect(&cluster(), tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        f(&client).await
    })
}

impl TestDatabase {
    /// `<prefix>_<random>`, created now.
    pub fn new(prefix: &str) -> Result<TestDatabase, Error> {
        let name = format!("{prefix}_{:08x}", std::process::id() ^ rand_u32());
        let create = format!("CREATE DATABASE {name}");
        admin(async |c| Ok(c.batch_execute(&create).await?))?;
        let base = cluster();
        let (head, _) = base.rsplit_once('/').ok_or("no database in the URL")?;
        Ok(TestDatabase {
            url: format!("{head}/{name}"),
            name,
        })
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A thread of its own: the test's runtime may still be around.
        let _ = std::thread::spawn(move || {
            admin(async |c| {
                let _ = c
                    .execute(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active",
                        &[&name],
                    )
                    .await;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                Ok(())
            })
            .is_ok()
        })
        .join();
    }
}
