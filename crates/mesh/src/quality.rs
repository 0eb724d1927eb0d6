//! Quality: a product's freshness, completeness and schema conformance
//! measured against its contract, summed up as a tier.
//!
//! - **gold**: every objective met;
//! - **silver**: some objective missed, none badly (data at most twice as
//!   old as promised, ratios within [`SILVER_MARGIN`] of the target);
//! - **bronze**: an objective missed badly, or no data yet.
//!
//! A change of tier is an event (`data_product_quality_changed`) and a
//! search facet.

use serde::{Deserialize, Serialize};

use crate::product::{Contract, DataProduct, QualityReading};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Gold,
    Silver,
    Bronze,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Gold, Tier::Silver, Tier::Bronze];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Gold => "gold",
            Tier::Silver => "silver",
            Tier::Bronze => "bronze",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far below a ratio target still counts as silver.
pub const SILVER_MARGIN: f64 = 0.05;

/// Measures `product` against `contract` at `now_ms`.
pub fn evaluate(contract: &Contract, product: &DataProduct, now_ms: i64) -> QualityReading {
    let age_secs = product
        .last_refresh_ms
        .map(|t| (now_ms - t).max(0) as f64 / 1000.0);
    let ratio = |n: u64| {
        if product.rows_checked == 0 {
            1.0
        } else {
            n as f64 / product.rows_checked as f64
        }
    };
    let completeness = ratio(product.rows_complete);
    let schema_conformance = ratio(product.rows_conforming);
    let mut reasons = Vec::new();
    let mut severe = false;
    let slo = contract.freshness_secs as f64;
    match age_secs {
        None => {
            severe = true;
            reasons.push("no data yet: the product has never been refreshed".to_owned());
        }
        Some(age) if age > slo => {
            severe |= age > 2.0 * slo;
            reasons.push(format!(
                "stale: newest data is {age:.1} s old, the contract promises at most {slo} s"
            ));
        }
        Some(_) => {}
    }
    for (what, got, want) in [
        ("completeness", completeness, contract.completeness),
        (
            "schema conformance",
            schema_conformance,
            contract.schema_conformance,
        ),
    ] {
        if got < want {
            severe |= got < want - SILVER_MARGIN;
            reasons.push(format!(
                "{what} {:.1} % is below the contract's {:.1} %",
                got * 100.0,
                want * 100.0
            ));
        }
    }
    let tier = if reasons.is_empty() {
        Tier::Gold
    } else if severe {
        Tier::Bronze
    } else {
        Tier::Silver
    };
    QualityReading {
        tier,
        age_secs,
        completeness,
        schema_conformance,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract {
            freshness_secs: 5,
            completeness: 0.99,
            schema_conformance: 1.0,
        }
    }

    fn product(last: Option<i64>, checked: u64, complete: u64, conforming: u64) -> DataProduct {
        DataProduct {
            last_refresh_ms: last,
            rows_checked: checked,
            rows_complete: complete,
            rows_conforming: conforming,
            ..DataProduct::default()
        }
    }

    #[test]
    fn tiers_follow_the_contract() {
        let c = contract();
        let now = 100_000;
        assert_eq!(
            evaluate(&c, &product(None, 0, 0, 0), now).tier,
            Tier::Bronze
        );
        let fresh = product(Some(now - 1_000), 100, 100, 100);
        assert_eq!(evaluate(&c, &fresh, now).tier, Tier::Gold);
        let late = product(Some(now - 7_000), 100, 100, 100);
        let r = evaluate(&c, &late, now);
        assert_eq!(r.tier, Tier::Silver);
        assert!(r.reasons[0].contains("7.0 s old"), "{:?}", r.reasons);
        let very_late = product(Some(now - 11_000), 100, 100, 100);
        assert_eq!(evaluate(&c, &very_late, now).tier, Tier::Bronze);
        let gappy = product(Some(now), 100, 97, 100);
        assert_eq!(evaluate(&c, &gappy, now).tier, Tier::Silver);
        let broken = product(Some(now), 100, 100, 80);
        assert_eq!(evaluate(&c, &broken, now).tier, Tier::Bronze);
    }

    #[test]
    fn tiers_parse_back() {
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.as_str()), Some(t));
        }
        assert_eq!(Tier::parse("platinum"), None);
    }
}
