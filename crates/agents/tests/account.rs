//! The card account on a real embedded log and SQLite: commands decided
//! and saved, state loaded back (balance, available credit, recent
//! transactions), a declined purchase saving nothing.

use chrono::Utc;
use ultracore_agents::account::{
    CardAccount, CardAccountCommand, CardAccountError, Opened, Payment, Transaction,
};
use ultracore_es::{Aggregate, CommandError, Database, EventStore, StoreOptions};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn purchase(id: &str, merchant: &str, amount: f64) -> CardAccountCommand {
    CardAccountCommand::Post(Transaction {
        transaction_id: id.into(),
        merchant: merchant.into(),
        category: "shopping".into(),
        amount,
        posted_at: Utc::now(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_folds_from_its_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default())?;
    let store = EventStore::new(
        log,
        Database::open(dir.path(), None)?,
        StoreOptions::default(),
    )?;
    store.ensure_topic(CardAccount::TYPE).await?;
    let id = "card-c-1";
    store
        .execute::<CardAccount>(
            id,
            CardAccountCommand::Open(Opened {
                customer_id: "c-1".into(),
                product_id: "rewards".into(),
                limit: 5_000.0,
                opened_at: Utc::now(),
            }),
        )
        .await?;
    store
        .execute::<CardAccount>(id, purchase("t1", "Airline", 1_200.0))
        .await?;
    store
        .execute::<CardAccount>(id, purchase("t2", "Grocer", 180.5))
        .await?;
    store
        .execute::<CardAccount>(
            id,
            CardAccountCommand::Pay(Payment {
                payment_id: "p1".into(),
                amount: 500.0,
                received_at: Utc::now(),
            }),
        )
        .await?;
    match store
        .execute::<CardAccount>(id, purchase("t3", "Jeweller", 9_000.0))
        .await
    {
        Err(CommandError::Rejected(CardAccountError::Declined { .. })) => {}
        other => panic!("expected a decline, got {other:?}"),
    }
    let loaded = store.load::<CardAccount>(id).await?;
    assert_eq!(loaded.version, 4, "the decline saved nothing");
    let a = loaded.state;
    assert!((a.balance - 880.5).abs() < 1e-9);
    assert!((a.available() - 4_119.5).abs() < 1e-9);
    let merchants: Vec<&str> = a.recent.iter().map(|t| t.merchant.as_str()).collect();
    assert_eq!(merchants, ["Airline", "Grocer"]);
    Ok(())
}
