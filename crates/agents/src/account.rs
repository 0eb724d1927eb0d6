//! The card account, event-sourced (`es.CardAccount`): what the card
//! agent reads a customer's balance, available credit and recent
//! transactions from.
//!
//! Commands are decided against the folded state: a purchase beyond the
//! available credit is declined, a transaction or payment already on the
//! account (by its id, among the last [`RECENT`]) is not posted twice, and
//! every amount must be finite and positive (refunds are their own kind).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ultracore_es::Aggregate;

/// Transactions the account keeps in its state (older ones stay in the log).
pub const RECENT: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub customer_id: String,
    pub product_id: String,
    pub limit: f64,
    pub opened_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: String,
    pub merchant: String,
    pub category: String,
    /// Positive: a purchase; negative: a refund.
    pub amount: f64,
    pub posted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: String,
    pub amount: f64,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitChanged {
    pub limit: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CardAccountEvent {
    Opened(Opened),
    TransactionPosted(Transaction),
    PaymentReceived(Payment),
    LimitChanged(LimitChanged),
}

ultracore_events::event_family_v1!(CardAccountEvent {
    Opened => "card_account_opened",
    TransactionPosted => "card_transaction_posted",
    PaymentReceived => "card_payment_received",
    LimitChanged => "card_limit_changed",
});

/// What may be done to an account.
#[derive(Debug, Clone, PartialEq)]
pub enum CardAccountCommand {
    Open(Opened),
    Post(Transaction),
    Pay(Payment),
    ChangeLimit(f64),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CardAccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("there is no such card account")]
    NotOpen,
    #[error("{field} must be a finite amount above zero (got {value})")]
    BadAmount { field: &'static str, value: f64 },
    #[error("declined: {amount:.2} is more than the {available:.2} of credit available")]
    Declined { amount: f64, available: f64 },
}

/// The folded account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CardAccount {
    pub customer_id: String,
    pub product_id: String,
    pub limit: f64,
    /// What is owed (negative: in credit).
    pub balance: f64,
    /// The last [`RECENT`] transactions, oldest first.
    pub recent: Vec<Transaction>,
    pub recent_payments: Vec<Payment>,
    pub open: bool,
}

impl CardAccount {
    pub fn available(&self) -> f64 {
        (self.limit - self.balance).max(0.0)
    }
}

fn positive(field: &'static str, value: f64) -> Result<(), CardAccountError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(CardAccountError::BadAmount { field, value })
    }
}

impl Aggregate for CardAccount {
    const TYPE: &'static str = "CardAccount";
    const SNAPSHOT_EVERY: u64 = 100;
    type Event = CardAccountEvent;
    type Command = CardAccountCommand;
    type Error = CardAccountError;

    fn handle(
        &self,
        command: CardAccountCommand,
    ) -> Result<Vec<CardAccountEvent>, CardAccountError> {
        use CardAccountCommand as C;
        use CardAccountEvent as E;
        match command {
            C::Open(o) => {
                if self.open {
                    return Err(CardAccountError::AlreadyOpen);
                }
                if o.limit != 0.0 {
                    positive("limit", o.limit)?;
                }
                Ok(vec![E::Opened(o)])
            }
            _ if !self.open => Err(CardAccountError::NotOpen),
            C::Post(t) => {
                if !t.amount.is_finite() || t.amount == 0.0 {
                    return Err(CardAccountError::BadAmount {
                        field: "amount",
                        value: t.amount,
                    });
                }
                if self
                    .recent
                    .iter()
                    .any(|r| r.transaction_id == t.transaction_id)
                {
                    return Ok(vec![]);
                }
                if t.amount > self.available() {
                    return Err(CardAccountError::Declined {
                        amount: t.amount,
                        available: self.available(),
                    });
                }
                Ok(vec![E::TransactionPosted(t)])
            }
            C::Pay(p) => {
                positive("amount", p.amount)?;
                if self
                    .recent_payments
                    .iter()
                    .any(|r| r.payment_id == p.payment_id)
                {
                    return Ok(vec![]);
                }
                Ok(vec![E::PaymentReceived(p)])
            }
            C::ChangeLimit(limit) => {
                positive("limit", limit)?;
                Ok(vec![E::LimitChanged(LimitChanged { limit })])
            }
        }
    }

    fn apply(&mut self, event: &CardAccountEvent) {
        match event {
            CardAccountEvent::Opened(o) => {
                self.customer_id = o.customer_id.clone();
                self.product_id = o.product_id.clone();
                self.limit = o.limit;
                self.open = true;
            }
            CardAccountEvent::TransactionPosted(t) => {
                self.balance += t.amount;
                self.recent.push(t.clone());
                if self.recent.len() > RECENT {
                    self.recent.remove(0);
                }
            }
            CardAccountEvent::PaymentReceived(p) => {
                self.balance -= p.amount;
                self.recent_payments.push(p.clone());
                if self.recent_payments.len() > RECENT {
                    self.recent_payments.remove(0);
                }
            }
            CardAccountEvent::LimitChanged(l) => self.limit = l.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, amount: f64) -> Transaction {
        Transaction {
            transaction_id: id.into(),
            merchant: "Grocer".into(),
            category: "groceries".into(),
            amount,
            posted_at: Utc::now(),
        }
    }

    fn run(state: &mut CardAccount, c: CardAccountCommand) -> Result<usize, CardAccountError> {
        let events = state.handle(c)?;
        for e in &events {
            state.apply(e);
        }
        Ok(events.len())
    }

    #[test]
    fn purchases_payments_and_the_limit() {
        let mut a = CardAccount::default();
        assert_eq!(
            run(&mut a, CardAccountCommand::Post(t("x", 5.0))),
            Err(CardAccountError::NotOpen)
        );
        run(
            &mut a,
            CardAccountCommand::Open(Opened {
                customer_id: "c-1".into(),
                product_id: "low-rate".into(),
                limit: 1_000.0,
                opened_at: Utc::now(),
            }),
        )
        .unwrap();
        run(&mut a, CardAccountCommand::Post(t("t1", 400.0))).unwrap();
        assert_eq!(
            run(&mut a, CardAccountCommand::Post(t("t1", 400.0))),
            Ok(0),
            "posted once"
        );
        assert!(matches!(
            run(&mut a, CardAccountCommand::Post(t("t2", 700.0))),
            Err(CardAccountError::Declined { .. })
        ));
        run(&mut a, CardAccountCommand::Post(t("t3", -50.0))).unwrap();
        run(
            &mut a,
            CardAccountCommand::Pay(Payment {
                payment_id: "p1".into(),
                amount: 100.0,
                received_at: Utc::now(),
            }),
        )
        .unwrap();
        assert_eq!(a.balance, 250.0);
        assert_eq!(a.available(), 750.0);
        assert!(matches!(
            run(
                &mut a,
                CardAccountCommand::Pay(Payment {
                    payment_id: "p2".into(),
                    amount: f64::NAN,
                    received_at: Utc::now()
                })
            ),
            Err(CardAccountError::BadAmount { .. })
        ));
    }

    #[test]
    fn events_round_trip_through_their_payloads() {
        use ultracore_log::EventFamily;
        let e = CardAccountEvent::TransactionPosted(t("t9", 12.5));
        let back = CardAccountEvent::decode(e.event_type(), 1, e.to_payload()).unwrap();
        assert_eq!(back, e);
        assert!(CardAccountEvent::decode("card_transaction_posted", 2, e.to_payload()).is_err());
    }
}
