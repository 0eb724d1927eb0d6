//! The card agent's product tools: the shipped card catalogue
//! (`data/cards.json`: fees, rates, rewards, perks, balance transfers,
//! eligibility) and a recommender that values every product for one
//! customer's first year and says how it got each figure.
//!
//! First-year value = rewards (spend × points per dollar × the value of a
//! point) + perks (for customers who travel) + balance-transfer savings
//! (interest the customer stops paying on the card they move from, less
//! the transfer fee) − annual fee − interest on the balance they carry.
//! Products the customer is not eligible for are listed with the reason.

use serde::{Deserialize, Serialize};

/// The catalogue shipped with UltraCore.
const SHIPPED: &str = include_str!("../data/cards.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub as_of: String,
    /// What one reward point is worth, in cents.
    pub point_value_cents: f64,
    pub note: String,
    pub products: Vec<Product>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: String,
    pub name: String,
    /// `debit` or `credit`.
    pub kind: String,
    pub annual_fee: f64,
    pub purchase_rate: f64,
    pub cash_advance_rate: f64,
    pub interest_free_days: u32,
    pub points_per_dollar: f64,
    pub perks: Vec<String>,
    /// What the perks are worth a year to a customer who travels.
    pub perk_value: f64,
    pub balance_transfer: Option<BalanceTransfer>,
    pub eligibility: Eligibility,
    pub limit: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceTransfer {
    pub rate: f64,
    pub months: u32,
    /// One-off fee, a fraction of the amount moved.
    pub fee: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    pub min_age: u32,
    pub min_income: f64,
    pub student_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub min: f64,
    pub max: f64,
}

/// What a catalogue can be wrong about.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the card catalogue is not valid JSON of its format: {0}")]
    Format(#[from] serde_json::Error),
    #[error("card product {id}: {reason}")]
    Product { id: String, reason: String },
}

impl Catalogue {
    /// The catalogue shipped with UltraCore.
    pub fn shipped() -> Catalogue {
        Catalogue::parse(SHIPPED).expect("the shipped card catalogue is valid (tested)")
    }

    /// A catalogue from JSON, checked: rates and fees finite and not
    /// negative, ids unique, limits ordered.
    pub fn parse(json: &str) -> Result<Catalogue, CatalogueError> {
        let c: Catalogue = serde_json::from_str(json)?;
        let mut ids = std::collections::BTreeSet::new();
        for p in &c.products {
            let bad = |reason: &str| CatalogueError::Product {
                id: p.id.clone(),
                reason: reason.to_owned(),
            };
            if !ids.insert(p.id.as_str()) {
                return Err(bad("the id is used twice"));
            }
            let figures = [
                p.annual_fee,
                p.purchase_rate,
                p.cash_advance_rate,
                p.points_per_dollar,
                p.perk_value,
                p.eligibility.min_income,
                p.limit.min,
                p.limit.max,
            ];
            if figures.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(bad(
                    "fees, rates, points, limits and incomes must be finite and not negative",
                ));
            }
            if p.purchase_rate > 1.0 || p.cash_advance_rate > 1.0 {
                return Err(bad("rates are fractions (0.2099 for 20.99 %)"));
            }
            if p.limit.min > p.limit.max {
                return Err(bad("limit.min is above limit.max"));
            }
            if !matches!(p.kind.as_str(), "debit" | "credit") {
                return Err(bad("kind is debit or credit"));
            }
        }
        Ok(c)
    }
}

/// The customer, as far as choosing a card goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub age: u32,
    /// Gross annual income, dollars.
    pub annual_income: f64,
    /// Card spending a month.
    pub monthly_spend: f64,
    /// The balance usually carried from month to month (0: paid in full).
    #[serde(default)]
    pub revolving_balance: f64,
    /// Debt on another card to move, and the rate it is charged there.
    #[serde(default)]
    pub transfer_balance: f64,
    #[serde(default)]
    pub transfer_from_rate: f64,
    #[serde(default)]
    pub student: bool,
    #[serde(default)]
    pub travels: bool,
}

/// One product valued for one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Valued {
    pub id: String,
    pub name: String,
    pub eligible: bool,
    /// Why not, when not eligible.
    pub ineligible_because: Vec<String>,
    pub rewards: f64,
    pub perks: f64,
    pub transfer_savings: f64,
    pub annual_fee: f64,
    pub interest: f64,
    /// rewards + perks + transfer savings − fee − interest.
    pub net: f64,
    /// The figures in words.
    pub workings: Vec<String>,
}

/// Every product valued for `profile`: eligible ones first, best first.
pub fn recommend(catalogue: &Catalogue, profile: &Profile) -> Vec<Valued> {
    let mut out: Vec<Valued> = catalogue
        .products
        .iter()
        .map(|p| value(catalogue, p, profile))
        .collect();
    out.sort_by(|a, b| {
        b.eligible
            .cmp(&a.eligible)
            .then(b.net.total_cmp(&a.net))
            .then(a.id.cmp(&b.id))
    });
    out
}

fn money(x: f64) -> String {
    crate::money::dollars(x, false)
}

fn value(catalogue: &Catalogue, p: &Product, c: &Profile) -> Valued {
    let mut ineligible = Vec::new();
    if c.age < p.eligibility.min_age {
        ineligible.push(format!(
            "applicants must be {} or older",
            p.eligibility.min_age
        ));
    }
    if c.annual_income < p.eligibility.min_income {
        ineligible.push(format!(
            "needs an income of {} a year",
            money(p.eligibility.min_income)
        ));
    }
    if p.eligibility.student_only && !c.student {
        ineligible.push("for students only".into());
    }
    let credit = p.kind == "credit";
    let mut workings = Vec::new();
    let points = c.monthly_spend * 12.0 * p.points_per_dollar;
    let rewards = points * catalogue.point_value_cents / 100.0;
    if points > 0.0 {
        workings.push(format!(
            "{} points a year on {} a month of spending, worth {}",
            money(points).trim_start_matches('$'),
            money(c.monthly_spend),
            money(rewards)
        ));
    }
    let perks = if c.travels { p.perk_value } else { 0.0 };
    if perks > 0.0 {
        workings.push(format!(
            "{} worth {} to a traveller",
            p.perks.join(" and "),
            money(perks)
        ));
    }
    let interest = if credit {
        c.revolving_balance * p.purchase_rate
    } else {
        0.0
    };
    if interest > 0.0 {
        workings.push(format!(
            "{} interest a year on a {} balance at {:.2} %",
            money(interest),
            money(c.revolving_balance),
            p.purchase_rate * 100.0
        ));
    }
    let transfer_savings = match p.balance_transfer {
        Some(bt) if c.transfer_balance > 0.0 => {
            let months = f64::from(bt.months.min(12));
            let saved = c.transfer_balance * (c.transfer_from_rate - bt.rate) * months / 12.0;
            let fee = c.transfer_balance * bt.fee;
            workings.push(format!(
                "moving {} at {:.2} % to {:.2} % for {} months saves {} in the first year, less a {} transfer fee",
                money(c.transfer_balance),
                c.transfer_from_rate * 100.0,
                bt.rate * 100.0,
                bt.months,
                money(saved),
                money(fee)
            ));
            saved - fee
        }
        _ => 0.0,
    };
    if p.annual_fee > 0.0 {
        workings.push(format!("annual fee {}", money(p.annual_fee)));
    }
    let net = rewards + perks + transfer_savings - p.annual_fee - interest;
    Valued {
        id: p.id.clone(),
        name: p.name.clone(),
        eligible: ineligible.is_empty(),
        ineligible_because: ineligible,
        rewards,
        perks,
        transfer_savings,
        annual_fee: p.annual_fee,
        interest,
        net,
        workings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            age: 35,
            annual_income: 90_000.0,
            monthly_spend: 2_000.0,
            revolving_balance: 0.0,
            transfer_balance: 0.0,
            transfer_from_rate: 0.0,
            student: false,
            travels: false,
        }
    }

    #[test]
    fn the_shipped_catalogue_is_valid() {
        let c = Catalogue::shipped();
        assert!(c.products.len() >= 6);
        let bad = SHIPPED.replace("\"annual_fee\": 59.0", "\"annual_fee\": -59.0");
        assert!(Catalogue::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("low-rate"));
    }

    #[test]
    fn a_big_spender_who_pays_in_full_gets_rewards() {
        let c = Catalogue::shipped();
        let r = recommend(
            &c,
            &Profile {
                monthly_spend: 6_000.0,
                travels: true,
                ..profile()
            },
        );
        // Platinum: 108,000 points × 0.6 c = $648, + $150 perks − $299.
        assert_eq!(r[0].id, "platinum");
        assert!((r[0].net - (648.0 + 150.0 - 299.0)).abs() < 1e-9);
        let ff = r.iter().find(|v| v.id == "frequent-flyer").unwrap();
        assert!(!ff.eligible && ff.ineligible_because[0].contains("100,000"));
    }

    #[test]
    fn carrying_a_balance_favours_the_low_rate_card() {
        let c = Catalogue::shipped();
        let r = recommend(
            &c,
            &Profile {
                revolving_balance: 5_000.0,
                ..profile()
            },
        );
        let credit: Vec<&Valued> = r.iter().filter(|v| v.id != "everyday-debit").collect();
        assert_eq!(credit[0].id, "low-rate");
    }

    #[test]
    fn a_balance_to_move_favours_the_transfer_card() {
        let c = Catalogue::shipped();
        let r = recommend(
            &c,
            &Profile {
                transfer_balance: 8_000.0,
                transfer_from_rate: 0.2199,
                monthly_spend: 500.0,
                ..profile()
            },
        );
        assert_eq!(r[0].id, "balance-transfer");
        // 8,000 × 21.99 % × 12/12 − 2 % of 8,000 − $99.
        assert!((r[0].net - (8_000.0 * 0.2199 - 160.0 - 99.0)).abs() < 1e-9);
        assert!(r[0].workings.iter().any(|w| w.contains("transfer fee")));
    }

    #[test]
    fn students_see_why_other_cards_are_closed() {
        let c = Catalogue::shipped();
        let r = recommend(
            &c,
            &Profile {
                age: 19,
                annual_income: 12_000.0,
                monthly_spend: 300.0,
                student: true,
                ..profile()
            },
        );
        let eligible: Vec<&str> = r
            .iter()
            .filter(|v| v.eligible)
            .map(|v| v.id.as_str())
            .collect();
        assert_eq!(eligible.len(), 2, "{eligible:?}");
        assert!(eligible.contains(&"student") && eligible.contains(&"everyday-debit"));
    }
}
