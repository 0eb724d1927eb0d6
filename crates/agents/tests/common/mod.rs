//! What the agents' integration tests set up the same way: an event store
//! on a real embedded log in a temporary directory, a customer's card
//! account with its transactions, and the assistant over them.

#![allow(dead_code)]

use std::path::Path;

use chrono::Utc;
use ultracore_agents::account::{CardAccount, CardAccountCommand, Opened, Transaction};
use ultracore_agents::assist::Assistant;
use ultracore_agents::runtime::RuntimeConfig;
use ultracore_agents::specialists::CardAgent;
use ultracore_agents::{GovernanceKey, Screen};
use ultracore_es::{Aggregate, Database, EventStore, StoreOptions};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

pub type Error = Box<dyn std::error::Error>;

/// An embedded log in `dir/log` and an event store over it (SQLite in `dir`).
pub fn store(dir: &Path) -> Result<(EmbeddedLog, EventStore<EmbeddedLog>), Error> {
    let log = EmbeddedLog::open(dir.join("log"), EmbeddedOptions::default())?;
    let store = EventStore::new(
        log.clone(),
        Database::open(dir, None)?,
        StoreOptions::default(),
    )?;
    Ok((log, store))
}

/// Opens `customer`'s rewards card with a $6,000 limit and posts
/// `purchases` (id, merchant, amount) on it.
pub async fn card_account(
    store: &EventStore<EmbeddedLog>,
    customer: &str,
    purchases: &[(&str, &str, f64)],
) -> Result<(), Error> {
    store.ensure_topic(CardAccount::TYPE).await?;
    let account = CardAgent::<EmbeddedLog>::account_id(customer);
    store
        .execute::<CardAccount>(
            &account,
            CardAccountCommand::Open(Opened {
                customer_id: customer.into(),
                product_id: "rewards".into(),
                limit: 6_000.0,
                opened_at: Utc::now(),
            }),
        )
        .await?;
    for (id, merchant, amount) in purchases {
        store
            .execute::<CardAccount>(
                &account,
                CardAccountCommand::Post(Transaction {
                    transaction_id: (*id).into(),
                    merchant: (*merchant).into(),
                    category: "shopping".into(),
                    amount: *amount,
                    posted_at: Utc::now(),
                }),
            )
            .await?;
    }
    Ok(())
}

/// The assistant over `log` and `store`, its governance key and data
/// products in `dir`.
pub async fn assistant(
    dir: &Path,
    log: &EmbeddedLog,
    store: EventStore<EmbeddedLog>,
) -> Result<Assistant<EmbeddedLog>, Error> {
    ultracore_runtime::catalogue::ensure(log, &["agent.executions"]).await?;
    let screen = Screen::new(GovernanceKey::load_or_create(dir)?);
    let (mesh, _) = ultracore_flow::setup::open_mesh(&dir.join("mesh"))?;
    Ok(Assistant::with_agents(
        log.clone(),
        store,
        mesh,
        screen,
        RuntimeConfig::default(),
    ))
}
