//! One issuer's ESG profile and its standing among its sector and the
//! universe.

use chrono::NaiveDate;
use serde::Serialize;
use ultracore_marketdata::mesh::EsgRecord;

use super::{has_data, EsgUniverse};
use crate::Failure;

/// Suggestions named in a message about an unknown issuer, at most.
const SUGGESTIONS: usize = 5;

/// An issuer's ESG data and standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EsgProfile {
    pub ticker: String,
    pub isin: String,
    pub name: String,
    pub sector: String,
    /// The date of the figures.
    pub as_of: NaiveDate,
    /// 0–100, higher is better.
    pub esg_score: f64,
    pub environmental: f64,
    pub social: f64,
    pub governance: f64,
    /// tCO2e per USD m of revenue.
    pub carbon_intensity: f64,
    /// Whether the issuer is under a controversy flag.
    pub controversy_flag: bool,
    /// Among the issuers of its sector (none when its figures are incomplete).
    pub sector_standing: Option<Standing>,
    /// Among every issuer of the ESG data.
    pub universe_standing: Option<Standing>,
    /// The ESG data says it is synthetic (not vendor data).
    pub esg_data_synthetic: bool,
}

/// An issuer's standing in a group of issuers (those with data).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    /// Issuers in the group, the issuer included.
    pub peers: usize,
    pub esg_score: Rank,
    pub environmental: Rank,
    pub social: Rank,
    pub governance: Rank,
    /// Rank 1 is the lowest intensity.
    pub carbon_intensity: Rank,
    pub average_esg_score: f64,
    pub average_carbon_intensity: f64,
    /// The group's best ESG score (the first ticker on a tie).
    pub leader: Peer,
}

/// A place in a group: rank 1 is the best, ties share the better rank;
/// the percentile is `100 × (peers − rank) / (peers − 1)` (100 the best).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rank {
    pub rank: usize,
    pub percentile: f64,
}

/// Another issuer, briefly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peer {
    pub ticker: String,
    pub name: String,
    pub esg_score: f64,
    pub carbon_intensity: f64,
}

impl Peer {
    pub(crate) fn of(r: &EsgRecord) -> Peer {
        Peer {
            ticker: r.ticker.clone(),
            name: r.name.clone(),
            esg_score: r.esg_score,
            carbon_intensity: r.carbon_intensity,
        }
    }
}

impl EsgUniverse<'_> {
    /// The profile of `issuer`: a ticker, an ISIN or a company's exact
    /// name, all ignoring case.
    ///
    /// # Errors
    ///
    /// Field `issuer`: empty, or matching no issuer (the message lists the
    /// tickers there are and near matches).
    pub fn profile(&self, issuer: &str) -> Result<EsgProfile, Failure> {
        let query = issuer.trim();
        if query.is_empty() {
            return Err(Failure::field(
                "issuer",
                "name an issuer by ticker (e.g. AAPL), ISIN or company name",
            ));
        }
        let lower = query.to_lowercase();
        let r = self
            .find(query)
            .or_else(|| self.records.iter().find(|r| r.name.to_lowercase() == lower))
            .ok_or_else(|| self.unknown_issuer(query))?;
        let with_data = |same_sector: bool| {
            self.records
                .iter()
                .filter(|p| has_data(p) && (!same_sector || p.sector == r.sector))
                .collect::<Vec<_>>()
        };
        let standing_in =
            |same_sector: bool| has_data(r).then(|| standing(r, &with_data(same_sector)));
        Ok(EsgProfile {
            ticker: r.ticker.clone(),
            isin: r.isin.clone(),
            name: r.name.clone(),
            sector: r.sector.clone(),
            as_of: r.as_of,
            esg_score: r.esg_score,
            environmental: r.environmental,
            social: r.social,
            governance: r.governance,
            carbon_intensity: r.carbon_intensity,
            controversy_flag: r.controversy_flag,
            sector_standing: standing_in(true),
            universe_standing: standing_in(false),
            esg_data_synthetic: self.synthetic,
        })
    }

    fn unknown_issuer(&self, query: &str) -> Failure {
        let lower = query.to_lowercase();
        let near: Vec<String> = self
            .records
            .iter()
            .filter(|r| {
                r.name.to_lowercase().contains(&lower) || r.ticker.to_lowercase().contains(&lower)
            })
            .take(SUGGESTIONS)
            .map(|r| format!("{} ({})", r.ticker, r.name))
            .collect();
        let mut reason = format!("'{query}' is no ticker, ISIN or company name in the ESG data");
        if near.is_empty() {
            reason.push('.');
        } else {
            reason.push_str(&format!("; did you mean {}?", near.join(", ")));
        }
        reason.push_str(&format!(" Tickers: {}.", self.known_tickers()));
        if let Some(r) = self.records.first() {
            reason.push_str(&format!(
                " A name must match whole, ignoring case (e.g. '{}'); an ISIN is twelve characters (e.g. {}).",
                r.name, r.isin
            ));
        }
        Failure::field("issuer", reason)
    }
}

/// `r`'s standing among `group` (which holds `r`; every member has data).
fn standing(r: &EsgRecord, group: &[&EsgRecord]) -> Standing {
    let n = group.len();
    let higher = |f: fn(&EsgRecord) -> f64| rank(f(r), group.iter().map(|p| f(p)), true);
    let leader = group
        .iter()
        .copied()
        .min_by(|a, b| {
            b.esg_score
                .total_cmp(&a.esg_score)
                .then_with(|| a.ticker.cmp(&b.ticker))
        })
        .unwrap_or(r);
    Standing {
        peers: n,
        esg_score: higher(|p| p.esg_score),
        environmental: higher(|p| p.environmental),
        social: higher(|p| p.social),
        governance: higher(|p| p.governance),
        carbon_intensity: rank(
            r.carbon_intensity,
            group.iter().map(|p| p.carbon_intensity),
            false,
        ),
        average_esg_score: group.iter().map(|p| p.esg_score).sum::<f64>() / n as f64,
        average_carbon_intensity: group.iter().map(|p| p.carbon_intensity).sum::<f64>() / n as f64,
        leader: Peer::of(leader),
    }
}

/// The rank of `own` among `values` (which hold it).
fn rank(own: f64, values: impl Iterator<Item = f64>, higher_is_better: bool) -> Rank {
    let (mut n, mut better) = (0usize, 0usize);
    for v in values {
        n += 1;
        if (higher_is_better && v > own) || (!higher_is_better && v < own) {
            better += 1;
        }
    }
    let rank = better + 1;
    let percentile = if n <= 1 {
        100.0
    } else {
        100.0 * (n.saturating_sub(rank)) as f64 / (n - 1) as f64
    };
    Rank { rank, percentile }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::records;
    use super::*;

    #[test]
    fn a_profile_ranks_the_issuer_in_its_sector_and_the_universe() {
        let records = records();
        let u = EsgUniverse::new(&records).synthetic(true);
        let p = u.profile("BBB").unwrap();
        assert_eq!(p.name, "BBB Corp.");
        assert_eq!(p.sector, "Tech");
        assert_eq!((p.esg_score, p.carbon_intensity), (60.0, 20.0));
        assert_eq!(
            (p.environmental, p.social, p.governance),
            (55.0, 60.0, 65.0)
        );
        assert!(p.esg_data_synthetic);
        // Tech: AAA 80, BBB 60, CCC 40 → second of three, percentile 50;
        // carbon 10, 20, 30 → second, 50.
        let s = p.sector_standing.unwrap();
        assert_eq!(s.peers, 3);
        assert_eq!(
            s.esg_score,
            Rank {
                rank: 2,
                percentile: 50.0
            }
        );
        assert_eq!(
            s.carbon_intensity,
            Rank {
                rank: 2,
                percentile: 50.0
            }
        );
        assert_eq!(s.average_esg_score, 60.0);
        assert_eq!(s.average_carbon_intensity, 20.0);
        assert_eq!(s.leader.ticker, "AAA");
        // Universe: 80, 70, 60, 50, 40, 30 → third of six, 100·3/5 = 60;
        // carbon 10, 20, 30, 50, 300, 500 → second, 100·4/5 = 80.
        let u6 = p.universe_standing.unwrap();
        assert_eq!(u6.peers, 6);
        assert_eq!(
            u6.esg_score,
            Rank {
                rank: 3,
                percentile: 60.0
            }
        );
        assert_eq!(
            u6.carbon_intensity,
            Rank {
                rank: 2,
                percentile: 80.0
            }
        );
        assert_eq!(u6.average_esg_score, 55.0);
        assert_eq!(u6.average_carbon_intensity, 910.0 / 6.0);

        // Alone in its sector: first, percentile 100.
        let f = u.profile("FFF").unwrap().sector_standing.unwrap();
        assert_eq!(
            f.esg_score,
            Rank {
                rank: 1,
                percentile: 100.0
            }
        );
    }

    #[test]
    fn an_issuer_is_found_by_ticker_isin_or_name_ignoring_case() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let isin = records[3].isin.to_lowercase();
        for q in ["DDD", "ddd", " DDD ", isin.as_str(), "ddd corp."] {
            assert_eq!(u.profile(q).unwrap().ticker, "DDD", "{q}");
        }
    }

    #[test]
    fn ties_share_the_better_rank() {
        let r = rank(50.0, [50.0, 50.0, 40.0].into_iter(), true);
        assert_eq!(
            r,
            Rank {
                rank: 1,
                percentile: 100.0
            }
        );
        let r = rank(40.0, [50.0, 50.0, 40.0].into_iter(), true);
        assert_eq!(
            r,
            Rank {
                rank: 3,
                percentile: 0.0
            }
        );
    }

    #[test]
    fn an_unknown_issuer_names_the_field_and_how_to_find_one() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let e = u.profile("Corp").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("issuer"));
        assert!(e.reason.contains("did you mean AAA (AAA Corp.)"), "{e}");
        assert!(
            e.reason.contains("Tickers: AAA, BBB, CCC, DDD, EEE, FFF."),
            "{e}"
        );
        let e = u.profile("  ").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("issuer"));
    }

    #[test]
    fn an_issuer_without_complete_figures_has_no_standing() {
        let mut records = records();
        records[0].carbon_intensity = f64::NAN;
        let u = EsgUniverse::new(&records);
        let p = u.profile("AAA").unwrap();
        assert!(p.sector_standing.is_none() && p.universe_standing.is_none());
        // The others are ranked without it: BBB now leads Tech.
        let b = u.profile("BBB").unwrap().sector_standing.unwrap();
        assert_eq!((b.peers, b.esg_score.rank), (2, 1));
    }
}
