//! Events that come from outside systems, checked at the edge before they
//! are published:
//!
//! - `external.crm.events` — `customer_interaction_logged`: a customer's
//!   contact with the bank as the CRM recorded it (a call, a complaint, a
//!   meeting), from the CRM webhook or the MCP tool.
//! - `external.market.data` — `market_prices_published`: closing prices of
//!   one instrument from a price feed, `ultracore etf import --publish` or
//!   the market-data endpoint; the data mesh's financial product takes them in.
//!
//! [`CustomerInteraction::validate`] and [`MarketPrices::validate`] are the
//! edge: every producer calls them, and a consumer that finds a record
//! failing them dead-letters it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::event_family_v1;

pub const CRM_TOPIC: &str = "external.crm.events";
pub const MARKET_DATA_TOPIC: &str = "external.market.data";

/// The aggregate type of CRM events; the aggregate id is the customer.
pub const CRM_AGGREGATE_TYPE: &str = "CrmCustomer";
/// The aggregate type of price events; the aggregate id is the ticker.
pub const MARKET_AGGREGATE_TYPE: &str = "Instrument";

/// Longest interaction summary accepted (bytes).
pub const MAX_SUMMARY: usize = 4_000;
/// Most prices in one `market_prices_published`.
pub const MAX_BARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CrmEvent {
    InteractionLogged(CustomerInteraction),
}

event_family_v1!(CrmEvent {
    InteractionLogged => "customer_interaction_logged",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MarketDataEvent {
    PricesPublished(MarketPrices),
}

event_family_v1!(MarketDataEvent {
    PricesPublished => "market_prices_published",
});

/// How the customer reached the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Channel {
    Phone,
    Email,
    Chat,
    Branch,
    Web,
    App,
    Letter,
}

/// What the interaction was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum InteractionKind {
    Enquiry,
    Complaint,
    Meeting,
    Application,
    Feedback,
    Note,
}

/// A customer's contact with the bank, as the CRM recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct CustomerInteraction {
    /// The CRM's id of the interaction: the same id sent twice is one
    /// interaction (the event id is derived from it).
    pub interaction_id: String,
    pub customer_id: String,
    pub channel: Channel,
    pub kind: InteractionKind,
    /// What happened, in words; personal data in it is masked before it
    /// is published.
    pub summary: String,
    pub occurred_at: DateTime<Utc>,
    /// The system that sent it (`salesforce`, `dynamics`, …).
    pub source: String,
    /// The staff member who handled it, as the CRM names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_by: Option<String>,
}

/// One closing price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Close {
    pub date: NaiveDate,
    pub close: f64,
}

/// Closing prices of one instrument from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketPrices {
    pub ticker: String,
    /// The feed or file they came from.
    pub source: String,
    /// Ascending by date, each date once.
    pub prices: Vec<Close>,
}

/// What is wrong with an external event: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Ids of outside systems: 1 to 128 printable ASCII characters without spaces.
fn check_id(field: &str, v: &str) -> Result<(), Invalid> {
    if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            field,
            format!("{v:?} is not an id: 1 to 128 printable characters without spaces"),
        ));
    }
    Ok(())
}

/// Platform ids (customers): 1 to 64 of letters, digits, `-`, `_`, `.`.
fn check_platform_id(field: &str, v: &str) -> Result<(), Invalid> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid(
            field,
            format!("{v:?} is not an id: 1 to 64 letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(())
}

impl CustomerInteraction {
    /// The edge's checks; `now` bounds `occurred_at` (five minutes of clock
    /// skew allowed).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), Invalid> {
        check_id("interaction_id", &self.interaction_id)?;
        check_platform_id("customer_id", &self.customer_id)?;
        check_id("source", &self.source)?;
        if let Some(h) = &self.handled_by {
            if h.is_empty() || h.len() > 128 || h.chars().any(char::is_control) {
                return Err(invalid(
                    "handled_by",
                    "1 to 128 characters without control characters",
                ));
            }
        }
        if self.summary.trim().is_empty() {
            return Err(invalid("summary", "it is empty: say what happened"));
        }
        if self.summary.len() > MAX_SUMMARY {
            return Err(invalid(
                "summary",
                format!(
                    "{} bytes, at most {MAX_SUMMARY}: attach long documents in the CRM",
                    self.summary.len()
                ),
            ));
        }
        if self
            .summary
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(invalid("summary", "it has control characters"));
        }
        if self.occurred_at > now + chrono::Duration::minutes(5) {
            return Err(invalid(
                "occurred_at",
                format!("{} is in the future", self.occurred_at),
            ));
        }
        Ok(())
    }
}

/// Tickers: 1 to 16 of upper-case letters, digits, `.`, `-`, `^`, `=`.
pub fn is_valid_ticker(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 16
        && t.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b".-^=".contains(&b))
}

impl MarketPrices {
    /// The edge's checks; `today` bounds the dates.
    pub fn validate(&self, today: NaiveDate) -> Result<(), Invalid> {
        if !is_valid_ticker(&self.ticker) {
            return Err(invalid(
                "ticker",
                format!(
                    "{:?} is not a ticker: 1 to 16 upper-case letters, digits, '.', '-', '^' or '='",
                    self.ticker
                ),
            ));
        }
        check_id("source", &self.source)?;
        if self.prices.is_empty() {
            return Err(invalid("prices", "no prices: send at least one"));
        }
        if self.prices.len() > MAX_BARS {
            return Err(invalid(
                "prices",
                format!(
                    "{} prices, at most {MAX_BARS} in one event: split them",
                    self.prices.len()
                ),
            ));
        }
        for (i, p) in self.prices.iter().enumerate() {
            if !(p.close.is_finite() && p.close > 0.0) {
                return Err(invalid(
                    format!("prices[{i}].close"),
                    format!("{} is not a price: a positive number", p.close),
                ));
            }
            if p.date > today {
                return Err(invalid(
                    format!("prices[{i}].date"),
                    format!("{} is after today ({today})", p.date),
                ));
            }
            if i > 0 && p.date <= self.prices[i - 1].date {
                return Err(invalid(
                    format!("prices[{i}].date"),
                    format!(
                        "{} is not after {}: send prices in ascending order of date, each date once",
                        p.date,
                        self.prices[i - 1].date
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interaction() -> CustomerInteraction {
        CustomerInteraction {
            interaction_id: "CRM-00042".into(),
            customer_id: "c-1".into(),
            channel: Channel::Phone,
            kind: InteractionKind::Complaint,
            summary: "Called about a declined card payment.".into(),
            occurred_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            source: "salesforce".into(),
            handled_by: None,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-05T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn interactions_are_checked_field_by_field() {
        assert_eq!(interaction().validate(now()), Ok(()));
        let field = |i: CustomerInteraction| i.validate(now()).unwrap_err().field;
        assert_eq!(
            field(CustomerInteraction {
                customer_id: "c 1".into(),
                ..interaction()
            }),
            "customer_id"
        );
        assert_eq!(
            field(CustomerInteraction {
                summary: " ".into(),
                ..interaction()
            }),
            "summary"
        );
        assert_eq!(
            field(CustomerInteraction {
                summary: "x".repeat(MAX_SUMMARY + 1),
                ..interaction()
            }),
            "summary"
        );
        assert_eq!(
            field(CustomerInteraction {
                occurred_at: "2027-01-01T00:00:00Z".parse().unwrap(),
                ..interaction()
            }),
            "occurred_at"
        );
        assert_eq!(
            field(CustomerInteraction {
                interaction_id: String::new(),
                ..interaction()
            }),
            "interaction_id"
        );
    }

    #[test]
    fn unknown_fields_and_channels_are_refused() {
        let mut v = serde_json::to_value(interaction()).unwrap();
        v["channel"] = "pigeon".into();
        assert!(serde_json::from_value::<CustomerInteraction>(v.clone()).is_err());
        v["channel"] = "phone".into();
        v["extra"] = 1.into();
        assert!(serde_json::from_value::<CustomerInteraction>(v).is_err());
    }

    #[test]
    fn prices_are_positive_ascending_and_not_in_the_future() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let today = d("2026-12-04");
        let prices = |p: Vec<(&str, f64)>| MarketPrices {
            ticker: "QUAL".into(),
            source: "feed".into(),
            prices: p
                .into_iter()
                .map(|(date, close)| Close {
                    date: d(date),
                    close,
                })
                .collect(),
        };
        assert_eq!(
            prices(vec![("2026-12-02", 180.5), ("2026-12-03", 181.0)]).validate(today),
            Ok(())
        );
        let field = |m: MarketPrices| m.validate(today).unwrap_err().field;
        assert_eq!(field(prices(vec![])), "prices");
        assert_eq!(
            field(prices(vec![("2026-12-02", f64::NAN)])),
            "prices[0].close"
        );
        assert_eq!(field(prices(vec![("2026-12-02", -1.0)])), "prices[0].close");
        assert_eq!(
            field(prices(vec![("2026-12-03", 1.0), ("2026-12-03", 1.0)])),
            "prices[1].date"
        );
        assert_eq!(field(prices(vec![("2026-12-05", 1.0)])), "prices[0].date");
        let mut bad = prices(vec![("2026-12-02", 1.0)]);
        bad.ticker = "qual".into();
        assert_eq!(field(bad), "ticker");
    }
}
