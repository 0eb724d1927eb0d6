//! Sample card accounts for the demo customers (`c-1`, `c-2`), written as
//! commands through the event store like any account: what `ultracore
//! demo` leaves for `ultracore assist` to read. Idempotent: an open
//! account is not opened again and a transaction id is posted once.

use chrono::{Duration, Utc};
use ultracore_es::{Aggregate, CommandError, EventStore};
use ultracore_log::EventLog;

use crate::account::{
    CardAccount, CardAccountCommand, CardAccountError, Opened, Payment, Transaction,
};
use crate::specialists::CardAgent;

/// (customer, product, limit, [(transaction id, merchant, category, amount)]).
type Sample = (
    &'static str,
    &'static str,
    f64,
    &'static [(&'static str, &'static str, &'static str, f64)],
);

const SAMPLES: &[Sample] = &[
    (
        "c-1",
        "rewards",
        6_000.0,
        &[
            ("c1-t1", "Harbour Grocers", "groceries", 142.35),
            ("c1-t2", "Coastline Fuel", "fuel", 88.10),
            ("c1-t3", "Skyway Airlines", "travel", 612.00),
            ("c1-t4", "Harbour Grocers", "groceries", -23.50),
            ("c1-t5", "City Pharmacy", "health", 36.90),
        ],
    ),
    (
        "c-2",
        "low-rate",
        3_000.0,
        &[
            ("c2-t1", "Metro Transport", "transport", 50.00),
            ("c2-t2", "Bookshop on King", "shopping", 74.95),
        ],
    ),
];

/// Opens the sample accounts and posts their transactions (and a payment
/// on `c-1`) unless already there. Returns the account ids.
pub async fn seed_demo_accounts<L: EventLog>(
    store: &EventStore<L>,
) -> ultracore_es::Result<Vec<String>> {
    store.ensure_topic(CardAccount::TYPE).await?;
    let now = Utc::now();
    let mut ids = Vec::new();
    for (customer, product, limit, transactions) in SAMPLES {
        let id = CardAgent::<L>::account_id(customer);
        let open = CardAccountCommand::Open(Opened {
            customer_id: (*customer).into(),
            product_id: (*product).into(),
            limit: *limit,
            opened_at: now - Duration::days(400),
        });
        let mut commands = vec![open];
        for (i, (tid, merchant, category, amount)) in transactions.iter().enumerate() {
            commands.push(CardAccountCommand::Post(Transaction {
                transaction_id: (*tid).into(),
                merchant: (*merchant).into(),
                category: (*category).into(),
                amount: *amount,
                posted_at: now - Duration::days(10 - i as i64),
            }));
        }
        if *customer == "c-1" {
            commands.push(CardAccountCommand::Pay(Payment {
                payment_id: "c1-p1".into(),
                amount: 300.0,
                received_at: now - Duration::days(2),
            }));
        }
        for c in commands {
            match store.execute::<CardAccount>(&id, c).await {
                Ok(_) | Err(CommandError::Rejected(CardAccountError::AlreadyOpen)) => {}
                Err(CommandError::Rejected(e)) => {
                    tracing::warn!(account = %id, error = %e, "a sample command was refused")
                }
                Err(CommandError::Store(e)) => return Err(e),
            }
        }
        ids.push(id);
    }
    Ok(ids)
}
