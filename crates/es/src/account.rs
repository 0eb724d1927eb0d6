//! A cash account: the sample aggregate the CLI (`ultracore events replay
//! --aggregate Account/ID`), the benchmark and the tests use, and its
//! balances projection.
//!
//! Schema evolution: `deposited` v1 carried whole currency units
//! (`{"units": 5}`); v2 carries cents (`{"amount_cents": 500}`). Old events
//! stay on the log as they were written; [`AccountEvent::decode`] upcasts
//! them on read, so `apply` only knows v2.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use ultracore_log::{payload_as, DecodeError, EventFamily, RawEnvelope};

use crate::{topic_for, Aggregate, Projection, Result, Views};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub open: bool,
    pub closed: bool,
    pub owner: String,
    pub balance_cents: i64,
    pub deposits: u64,
    pub withdrawals: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount_cents: i64 },
    Withdrawn { amount_cents: i64 },
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { cents: i64 },
    Withdraw { cents: i64 },
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("amounts must be positive, not {0}")]
    NotPositive(i64),
    #[error("insufficient funds: balance {balance} cents, requested {requested}")]
    InsufficientFunds { balance: i64, requested: i64 },
    #[error("the balance must be zero to close, not {0} cents")]
    NotEmpty(i64),
}

#[derive(Serialize, Deserialize)]
struct Owner {
    owner: String,
}

#[derive(Serialize, Deserialize)]
struct Amount {
    amount_cents: i64,
}

#[derive(Deserialize)]
struct UnitsV1 {
    units: i64,
}

impl EventFamily for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::Opened { .. } => "account_opened",
            AccountEvent::Deposited { .. } => "account_deposited",
            AccountEvent::Withdrawn { .. } => "account_withdrawn",
            AccountEvent::Closed => "account_closed",
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            AccountEvent::Deposited { .. } => 2,
            _ => 1,
        }
    }

    fn to_payload(&self) -> Value {
        match self {
            AccountEvent::Opened { owner } => json!({ "owner": owner }),
            AccountEvent::Deposited { amount_cents } | AccountEvent::Withdrawn { amount_cents } => {
                json!({ "amount_cents": amount_cents })
            }
            AccountEvent::Closed => json!({}),
        }
    }

    fn decode(event_type: &str, version: u32, payload: Value) -> Result<Self, DecodeError> {
        let unsupported = |newest| DecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            version,
            newest,
        };
        match event_type {
            "account_opened" if version == 1 => {
                let o: Owner = payload_as(event_type, payload)?;
                Ok(AccountEvent::Opened { owner: o.owner })
            }
            "account_deposited" => match version {
                // The upcaster: v1 whole units → v2 cents.
                1 => {
                    let v1: UnitsV1 = payload_as(event_type, payload)?;
                    Ok(AccountEvent::Deposited {
                        amount_cents: v1.units.saturating_mul(100),
                    })
                }
                2 => {
                    let a: Amount = payload_as(event_type, payload)?;
                    Ok(AccountEvent::Deposited {
                        amount_cents: a.amount_cents,
                    })
                }
                _ => Err(unsupported(2)),
            },
            "account_withdrawn" if version == 1 => {
                let a: Amount = payload_as(event_type, payload)?;
                Ok(AccountEvent::Withdrawn {
                    amount_cents: a.amount_cents,
                })
            }
            "account_closed" if version == 1 => Ok(AccountEvent::Closed),
            "account_opened" | "account_withdrawn" | "account_closed" => Err(unsupported(1)),
            other => Err(DecodeError::UnknownEventType(other.to_owned())),
        }
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let positive = |c: i64| {
            if c > 0 {
                Ok(c)
            } else {
                Err(AccountError::NotPositive(c))
            }
        };
        match command {
            AccountCommand::Open { owner } => {
                if self.open || self.closed {
                    return Err(AccountError::AlreadyOpen);
                }
                Ok(vec![AccountEvent::Opened { owner }])
            }
            _ if !self.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { cents } => Ok(vec![AccountEvent::Deposited {
                amount_cents: positive(cents)?,
            }]),
            AccountCommand::Withdraw { cents } => {
                let cents = positive(cents)?;
                if cents > self.balance_cents {
                    return Err(AccountError::InsufficientFunds {
                        balance: self.balance_cents,
                        requested: cents,
                    });
                }
                Ok(vec![AccountEvent::Withdrawn {
                    amount_cents: cents,
                }])
            }
            AccountCommand::Close => {
                if self.balance_cents != 0 {
                    return Err(AccountError::NotEmpty(self.balance_cents));
                }
                Ok(vec![AccountEvent::Closed])
            }
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => {
                self.open = true;
                self.owner.clone_from(owner);
            }
            AccountEvent::Deposited { amount_cents } => {
                self.balance_cents += amount_cents;
                self.deposits += 1;
            }
            AccountEvent::Withdrawn { amount_cents } => {
                self.balance_cents -= amount_cents;
                self.withdrawals += 1;
            }
            AccountEvent::Closed => {
                self.open = false;
                self.closed = true;
            }
        }
    }
}

/// Read model of account balances: view `balances` (one document per
/// account) and view `totals` (key `all`: accounts and the sum of balances).
#[derive(Debug, Clone)]
pub struct AccountBalances {
    name: String,
}

impl Default for AccountBalances {
    fn default() -> Self {
        AccountBalances {
            name: Self::NAME.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceDoc {
    pub owner: String,
    pub balance_cents: i64,
    pub events: u64,
    pub closed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalsDoc {
    pub accounts: u64,
    pub balance_cents: i64,
    pub events: u64,
}

impl AccountBalances {
    pub const NAME: &'static str = "account-balances";

    /// The same projection under another name (a second read model).
    pub fn named(name: impl Into<String>) -> Self {
        AccountBalances { name: name.into() }
    }
}

impl Projection for AccountBalances {
    fn name(&self) -> &str {
        &self.name
    }

    fn topics(&self) -> Vec<String> {
        vec![topic_for(Account::TYPE)]
    }

    fn apply(&mut self, event: &RawEnvelope, views: &mut Views<'_>) -> Result<()> {
        // Decode (and upcast) only the payload: no clone of the envelope.
        let payload = AccountEvent::decode(
            &event.event_type,
            event.schema_version,
            event.payload.clone(),
        )
        .map_err(|source| crate::Error::Decode {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            version: event.version,
            source,
        })?;
        let id = &event.aggregate_id;
        let mut doc: BalanceDoc = views.get_as("balances", id)?.unwrap_or_default();
        let mut totals: TotalsDoc = views.get_as("totals", "all")?.unwrap_or_default();
        match payload {
            AccountEvent::Opened { owner } => {
                doc.owner = owner;
                totals.accounts += 1;
            }
            AccountEvent::Deposited { amount_cents } => {
                doc.balance_cents += amount_cents;
                totals.balance_cents += amount_cents;
            }
            AccountEvent::Withdrawn { amount_cents } => {
                doc.balance_cents -= amount_cents;
                totals.balance_cents -= amount_cents;
            }
            AccountEvent::Closed => doc.closed = true,
        }
        doc.events += 1;
        totals.events += 1;
        views.put_as("balances", id, &doc)?;
        views.put_as("totals", "all", &totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Given past events, when a command is handled, then these events (or this rejection).
    fn given(events: &[AccountEvent]) -> Account {
        let mut a = Account::default();
        for e in events {
            a.apply(e);
        }
        a
    }

    #[test]
    fn deposits_and_withdrawals_follow_the_rules() {
        let opened = AccountEvent::Opened {
            owner: "ada".into(),
        };
        assert_eq!(
            given(&[]).handle(AccountCommand::Deposit { cents: 5 }),
            Err(AccountError::NotOpen)
        );
        assert_eq!(
            given(std::slice::from_ref(&opened)).handle(AccountCommand::Deposit { cents: 500 }),
            Ok(vec![AccountEvent::Deposited { amount_cents: 500 }])
        );
        assert_eq!(
            given(std::slice::from_ref(&opened)).handle(AccountCommand::Deposit { cents: 0 }),
            Err(AccountError::NotPositive(0))
        );
        let funded = [
            opened.clone(),
            AccountEvent::Deposited { amount_cents: 300 },
        ];
        assert_eq!(
            given(&funded).handle(AccountCommand::Withdraw { cents: 301 }),
            Err(AccountError::InsufficientFunds {
                balance: 300,
                requested: 301
            })
        );
        assert_eq!(
            given(&funded).handle(AccountCommand::Close),
            Err(AccountError::NotEmpty(300))
        );
        assert_eq!(
            given(std::slice::from_ref(&opened)).handle(AccountCommand::Open { owner: "x".into() }),
            Err(AccountError::AlreadyOpen)
        );
    }

    #[test]
    fn deposited_v1_is_upcast_to_cents() {
        let v1 = AccountEvent::decode("account_deposited", 1, json!({"units": 7})).unwrap();
        assert_eq!(v1, AccountEvent::Deposited { amount_cents: 700 });
        let v2 = AccountEvent::decode("account_deposited", 2, json!({"amount_cents": 7})).unwrap();
        assert_eq!(v2, AccountEvent::Deposited { amount_cents: 7 });
        assert!(matches!(
            AccountEvent::decode("account_deposited", 3, json!({})),
            Err(DecodeError::UnsupportedVersion { newest: 2, .. })
        ));
        assert!(matches!(
            AccountEvent::decode("account_deposited", 1, json!({"amount_cents": 7})),
            Err(DecodeError::PayloadMismatch { .. })
        ));
    }
}
