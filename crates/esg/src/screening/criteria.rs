//! What a portfolio is screened against, and the checks of its shape.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use ultracore_marketdata::mesh::isin_is_valid;

use crate::Failure;

/// The most entries a list of the criteria may have.
pub const MAX_LIST: usize = 1_000;
/// The longest sector name accepted.
const MAX_SECTOR_CHARS: usize = 100;
/// The longest ticker accepted.
const MAX_TICKER_CHARS: usize = 16;

/// What a portfolio must satisfy, as far as the ESG data can tell.
/// Everything is optional; empty criteria find nothing to object to.
///
/// The fields are those the ESG product supports: it has scores (0–100)
/// but no letter ratings, so the holding-level floor is a score; and a
/// controversy flag rather than a graded level, so controversies are
/// allowed or not. The names follow the optimizer's
/// [`EsgConstraints`](ultracore_portfolio::EsgConstraints) where they mean
/// the same (`min_esg_score`, `max_carbon_intensity`, `exclude_sectors`,
/// `exclude_flagged`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ScreeningCriteria {
    /// Minimum portfolio-weighted ESG score, 0–100 (e.g. 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_esg_score: Option<f64>,
    /// Minimum ESG score of every holding, 0–100 (e.g. 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_holding_esg_score: Option<f64>,
    /// Maximum portfolio-weighted carbon intensity, tCO2e per USD m of
    /// revenue (e.g. 150).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_carbon_intensity: Option<f64>,
    /// Sectors to hold nothing of, as the ESG data names them (e.g.
    /// `Energy`); matched ignoring case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_sectors: Vec<String>,
    /// Issuers to hold nothing of, by ticker or ISIN, upper case (e.g.
    /// `XOM`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_issuers: Vec<String>,
    /// Hold nothing of issuers under a controversy flag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude_flagged: bool,
}

impl ScreeningCriteria {
    /// Whether no criterion is set.
    pub fn is_empty(&self) -> bool {
        *self == ScreeningCriteria::default()
    }

    /// Checks the criteria's shape and ranges, without the data: scores in
    /// 0–100, a carbon intensity ≥ 0, well-formed sector names and issuer
    /// ids (see [`check_issuer_id`]), no entry named twice, at most
    /// [`MAX_LIST`] entries a list.
    ///
    /// # Errors
    ///
    /// The first problem, naming the field relative to the criteria
    /// (`min_esg_score`, `exclude_issuers[2]`, …).
    pub fn validate(&self) -> Result<(), Failure> {
        for (field, v) in [
            ("min_esg_score", self.min_esg_score),
            ("min_holding_esg_score", self.min_holding_esg_score),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                    return Err(Failure::field(
                        field,
                        format!("{v} is not an ESG score between 0 and 100"),
                    ));
                }
            }
        }
        if let Some(v) = self.max_carbon_intensity {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Failure::field(
                    "max_carbon_intensity",
                    format!("{v} is not a carbon intensity ≥ 0 (tCO2e per USD m of revenue)"),
                ));
            }
        }
        for (list, entries) in [
            ("exclude_sectors", &self.exclude_sectors),
            ("exclude_issuers", &self.exclude_issuers),
        ] {
            if entries.len() > MAX_LIST {
                return Err(Failure::field(
                    list,
                    format!("{} entries; at most {MAX_LIST} are accepted", entries.len()),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.exclude_sectors.iter().enumerate() {
            let field = format!("exclude_sectors[{i}]");
            check_sector(s).map_err(|reason| Failure::field(&field, reason))?;
            if !seen.insert(s.to_lowercase()) {
                return Err(Failure::field(&field, format!("{s} is named twice")));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, id) in self.exclude_issuers.iter().enumerate() {
            let field = format!("exclude_issuers[{i}]");
            check_issuer_id(id).map_err(|reason| Failure::field(&field, reason))?;
            if !seen.insert(id) {
                return Err(Failure::field(&field, format!("{id} is named twice")));
            }
        }
        Ok(())
    }

    /// Whether `sector` is one of the excluded sectors (ignoring case).
    pub(crate) fn excludes_sector(&self, sector: &str) -> bool {
        self.exclude_sectors
            .iter()
            .any(|s| s.trim().eq_ignore_ascii_case(sector.trim()))
    }

    /// Whether the issuer of `ticker` / `isin` is excluded by id.
    pub(crate) fn excludes_issuer(&self, ticker: &str, isin: &str) -> bool {
        self.exclude_issuers
            .iter()
            .any(|id| id.eq_ignore_ascii_case(ticker) || id.eq_ignore_ascii_case(isin))
    }
}

/// Checks that `id` has the shape of an issuer id: an ISIN (twelve
/// characters, two letters, nine letters or digits, a correct check digit)
/// or a ticker (1 to 16 upper-case letters, digits, `.` or `-`, starting
/// with a letter or digit, e.g. `XOM`, `BRK.B`).
///
/// # Errors
///
/// Why it is not one, in words.
pub fn check_issuer_id(id: &str) -> Result<(), String> {
    let looks_like_isin = id.len() == 12
        && id.is_ascii()
        && id[..2].bytes().all(|b| b.is_ascii_uppercase())
        && id[2..11]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && id[11..].bytes().all(|b| b.is_ascii_digit());
    if looks_like_isin {
        return if isin_is_valid(id) {
            Ok(())
        } else {
            Err(format!(
                "{id} has the shape of an ISIN but its check digit is wrong"
            ))
        };
    }
    let upper = id.to_ascii_uppercase();
    let well_formed = !id.is_empty()
        && id.len() <= MAX_TICKER_CHARS
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if well_formed {
        Ok(())
    } else if upper != id && check_issuer_id(&upper).is_ok() {
        Err(format!("tickers and ISINs are upper case: write {upper}"))
    } else {
        Err(format!(
            "'{id}' is neither a ticker (1 to {MAX_TICKER_CHARS} of A-Z, 0-9, '.', '-', e.g. XOM) nor an ISIN"
        ))
    }
}

/// Checks a sector name: 1 to 100 characters, no surrounding blanks, no
/// control characters.
fn check_sector(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("a sector name is empty".into());
    }
    if s.trim() != s {
        return Err(format!("'{s}' has blanks around it"));
    }
    if s.chars().count() > MAX_SECTOR_CHARS {
        return Err(format!(
            "a sector name is at most {MAX_SECTOR_CHARS} characters"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err("a sector name has no control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_ids_are_tickers_or_isins() {
        for ok in ["XOM", "BRK.B", "BF-B", "7203", "US0378331005"] {
            assert_eq!(check_issuer_id(ok), Ok(()), "{ok}");
        }
        let placeholder = ultracore_marketdata::mesh::placeholder_isin("AAPL");
        assert_eq!(check_issuer_id(&placeholder), Ok(()));
        assert!(check_issuer_id("US0378331006")
            .unwrap_err()
            .contains("check digit"));
        assert!(check_issuer_id("xom").unwrap_err().contains("write XOM"));
        for bad in ["", ".X", "X Y", "ABCDEFGHIJKLMNOPQ", "XÖM"] {
            assert!(check_issuer_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_criteria_name_the_field() {
        let field = |c: ScreeningCriteria| c.validate().unwrap_err().field.unwrap();
        assert_eq!(ScreeningCriteria::default().validate(), Ok(()));
        assert!(ScreeningCriteria::default().is_empty());
        assert_eq!(
            field(ScreeningCriteria {
                min_esg_score: Some(101.0),
                ..Default::default()
            }),
            "min_esg_score"
        );
        assert_eq!(
            field(ScreeningCriteria {
                min_holding_esg_score: Some(f64::NAN),
                ..Default::default()
            }),
            "min_holding_esg_score"
        );
        assert_eq!(
            field(ScreeningCriteria {
                max_carbon_intensity: Some(-1.0),
                ..Default::default()
            }),
            "max_carbon_intensity"
        );
        assert_eq!(
            field(ScreeningCriteria {
                exclude_sectors: vec!["Energy".into(), "energy".into()],
                ..Default::default()
            }),
            "exclude_sectors[1]"
        );
        assert_eq!(
            field(ScreeningCriteria {
                exclude_sectors: vec![" Energy".into()],
                ..Default::default()
            }),
            "exclude_sectors[0]"
        );
        assert_eq!(
            field(ScreeningCriteria {
                exclude_issuers: vec!["XOM".into(), "bad id".into()],
                ..Default::default()
            }),
            "exclude_issuers[1]"
        );
        assert_eq!(
            field(ScreeningCriteria {
                exclude_issuers: vec!["XOM".into(); MAX_LIST + 1],
                ..Default::default()
            }),
            "exclude_issuers"
        );
    }

    #[test]
    fn criteria_decode_from_their_json_and_refuse_unknown_fields() {
        let c: ScreeningCriteria = serde_json::from_value(serde_json::json!({
            "min_esg_score": 60, "exclude_sectors": ["Energy"], "exclude_flagged": true
        }))
        .unwrap();
        assert_eq!(c.min_esg_score, Some(60.0));
        assert!(c.excludes_sector("ENERGY"));
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"min_esg_score": 60.0, "exclude_sectors": ["Energy"], "exclude_flagged": true})
        );
        assert!(
            serde_json::from_value::<ScreeningCriteria>(serde_json::json!({"min_score": 60}))
                .is_err()
        );
    }
}
