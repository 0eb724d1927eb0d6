//! ESG screening over the data mesh's ESG product: one issuer's profile
//! ([`esg_profile`]), a portfolio screened against criteria
//! ([`screen_portfolio`]) and a portfolio's ESG report ([`esg_report`]).
//!
//! The ESG product holds, per issuer: ticker, ISIN, name, sector, the ESG
//! score and its environmental, social and governance pillars (0–100,
//! higher is better), the carbon intensity (tCO2e per USD m of revenue,
//! lower is better), a controversy flag and the date of the figures. It has
//! no letter ratings and no graded controversy level: an issuer's standing
//! is its rank and percentile among its sector and among the universe, the
//! holding-level floor of [`ScreeningCriteria`] is a score, and
//! controversies are allowed or not.
//!
//! The computation is pure, over records in memory ([`EsgUniverse`]); the
//! three functions read the mesh's records and call it. They read a file:
//! call them off the async workers.
//!
//! # Layout
//!
//! - `criteria`: [`ScreeningCriteria`] and the checks of their shape.
//! - `profile`: [`EsgUniverse::profile`], an issuer's [`EsgProfile`].
//! - `screen`: [`EsgUniverse::screen`], violations and their severity.
//! - `recommend`: the recommendations of a screening.
//! - `report`: [`EsgUniverse::report`] and [`EsgReport::to_markdown`].
//!
//! # Conventions
//!
//! - Weights are keyed by ticker or ISIN of the ESG product (ignoring
//!   case), finite, ≥ 0 and add up to 1 ± 1e-6. A zero weight is not a
//!   holding.
//! - A holding *has data* when its five figures (score, three pillars,
//!   carbon intensity) are numbers; a vendor file may leave some out.
//!   Portfolio-weighted figures are `Σ wᵢ·xᵢ / Σ wᵢ` over the holdings with
//!   data, and `coverage` is their `Σ wᵢ` (as the optimizer weighs over the
//!   invested part).
//! - Limits are checked with the optimizer's tolerance (1e-6, relative), so
//!   a portfolio the optimizer built at a limit passes its screening.
//! - Rank 1 is the best (highest score, lowest carbon intensity); ties
//!   share the better rank. Percentile = `100 × (n − rank) / (n − 1)` among
//!   `n` issuers with data (100 when alone): 100 is the best, 0 the worst.
//!
//! # Severity of a violation
//!
//! Two grades, low → critical:
//!
//! - by the weight involved: under 1 % low, under 5 % medium, under 10 %
//!   high, else critical ([`Severity::of_weight`]);
//! - by the distance past the limit, relative to the limit: under 5 % low,
//!   under 15 % medium, under 30 % high, else critical
//!   ([`Severity::of_distance`]).
//!
//! A held excluded issuer or sector is a prohibition, not a threshold: its
//! weight grade raised one step (so at least medium). A controversy and a
//! holding without data for a score or carbon criterion: the weight grade. A
//! holding below the holding-level score: the lower of its two grades (a
//! small holding far below, or a large one just below, is low). A
//! portfolio-weighted score or carbon intensity past its limit involves the
//! whole portfolio: the distance grade.
//!
//! # Recommendations
//!
//! Derived from the data, each with the figures it relies on, each computed
//! against the given weights on its own (they are alternatives, not
//! steps): replace a holding at fault by the best-scoring *eligible* issuer
//! (one that breaks no holding-level criterion and has data) of its
//! sector, or of the universe when its sector is excluded or has none;
//! close a weighted ESG score gap by moving weight from the lowest scorers
//! to the best eligible issuer, and a carbon gap from the most
//! carbon-intensive holdings to the least carbon-intensive eligible issuer,
//! in the amounts that close the gap (the moves of one gap add up). A
//! portfolio-level limit that holds gets a line saying by how much.

mod criteria;
mod profile;
mod recommend;
mod report;
mod screen;

use std::collections::BTreeMap;

use serde::Serialize;
use ultracore_marketdata::mesh::{DataMesh, EsgRecord};

use crate::Failure;

pub use criteria::{check_issuer_id, ScreeningCriteria, MAX_LIST};
pub use profile::{EsgProfile, Peer, Rank, Standing};
pub use report::{Contribution, EsgReport, HoldingRow, SectorRow};
pub use screen::{ScreeningReport, Severity, Violation, ViolationKind};

/// The most holdings a portfolio may have.
pub const MAX_HOLDINGS: usize = 10_000;
/// Tickers named in a message about an unknown one, at most.
const LISTED_TICKERS: usize = 40;

/// An issuer's ESG profile: `issuer` is a ticker, an ISIN or a company's
/// exact name (all ignoring case). Reads the mesh's ESG product.
///
/// # Errors
///
/// `issuer` (field `issuer`) empty or unknown, the message listing the
/// tickers there are; or the data product unreadable.
pub fn esg_profile(mesh: &DataMesh, issuer: &str) -> Result<EsgProfile, Failure> {
    let (records, synthetic) = read(mesh)?;
    EsgUniverse::new(&records)
        .synthetic(synthetic)
        .profile(issuer)
}

/// Screens a portfolio (`weights` by ticker or ISIN) against `criteria`.
/// Reads the mesh's ESG product.
///
/// # Errors
///
/// The argument at fault (`weights.XOM`, `weights`,
/// `criteria.min_esg_score`, …) or the data product unreadable.
pub fn screen_portfolio(
    mesh: &DataMesh,
    weights: &BTreeMap<String, f64>,
    criteria: &ScreeningCriteria,
) -> Result<ScreeningReport, Failure> {
    let (records, synthetic) = read(mesh)?;
    EsgUniverse::new(&records)
        .synthetic(synthetic)
        .screen(weights, criteria)
}

/// A portfolio's ESG report, with its screening when `criteria` are given.
/// Reads the mesh's ESG product.
///
/// # Errors
///
/// As [`screen_portfolio`].
pub fn esg_report(
    mesh: &DataMesh,
    weights: &BTreeMap<String, f64>,
    criteria: Option<&ScreeningCriteria>,
) -> Result<EsgReport, Failure> {
    let (records, synthetic) = read(mesh)?;
    EsgUniverse::new(&records)
        .synthetic(synthetic)
        .report(weights, criteria)
}

fn read(mesh: &DataMesh) -> Result<(Vec<EsgRecord>, bool), Failure> {
    let data_error =
        |e: ultracore_marketdata::Error| Failure::general(format!("data products: {e}"));
    let records = mesh.esg(None).map_err(data_error)?;
    let synthetic = mesh.esg_is_synthetic().map_err(data_error)?;
    Ok((records, synthetic))
}

/// ESG records in memory, the universe profiles, screenings and reports
/// are computed over. Pure: [`EsgUniverse::profile`],
/// [`EsgUniverse::screen`] and [`EsgUniverse::report`] read nothing else.
#[derive(Debug, Clone, Copy)]
pub struct EsgUniverse<'a> {
    records: &'a [EsgRecord],
    synthetic: bool,
}

/// One holding: its record and its weight (> 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position<'a> {
    pub record: &'a EsgRecord,
    pub weight: f64,
}

/// A portfolio's weighted ESG figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightedFigures {
    /// The weight of the holdings with data: what the figures average over
    /// (1 when every holding has data).
    pub coverage: f64,
    /// Weighted ESG score, 0–100 (none without data).
    pub esg_score: Option<f64>,
    pub environmental: Option<f64>,
    pub social: Option<f64>,
    pub governance: Option<f64>,
    /// Weighted carbon intensity, tCO2e per USD m of revenue.
    pub carbon_intensity: Option<f64>,
    /// The weight held in issuers under a controversy flag.
    pub controversy_weight: f64,
}

impl<'a> EsgUniverse<'a> {
    /// The universe of `records`, not marked synthetic.
    pub fn new(records: &'a [EsgRecord]) -> Self {
        EsgUniverse {
            records,
            synthetic: false,
        }
    }

    /// Marks the data synthetic (or not): outputs say so.
    pub fn synthetic(self, synthetic: bool) -> Self {
        EsgUniverse { synthetic, ..self }
    }

    pub fn records(&self) -> &'a [EsgRecord] {
        self.records
    }

    /// The record of a ticker or ISIN, ignoring case.
    pub fn find(&self, id: &str) -> Option<&'a EsgRecord> {
        let id = id.trim();
        self.records
            .iter()
            .find(|r| r.ticker.eq_ignore_ascii_case(id))
            .or_else(|| {
                self.records
                    .iter()
                    .find(|r| r.isin.eq_ignore_ascii_case(id))
            })
    }

    /// The tickers there are, for messages: the first [`LISTED_TICKERS`]
    /// in order, and how many more.
    pub(crate) fn known_tickers(&self) -> String {
        let mut tickers: Vec<&str> = self.records.iter().map(|r| r.ticker.as_str()).collect();
        tickers.sort_unstable();
        tickers.dedup();
        let n = tickers.len();
        let mut list = tickers
            .into_iter()
            .take(LISTED_TICKERS)
            .collect::<Vec<_>>()
            .join(", ");
        if n > LISTED_TICKERS {
            list.push_str(&format!(" and {} more", n - LISTED_TICKERS));
        }
        if list.is_empty() {
            list = "none (the ESG data is empty)".into();
        }
        list
    }

    /// Resolves and checks weights: finite, ≥ 0, adding up to 1 ± 1e-6,
    /// each issuer known and given once. The holdings (weights > 0), the
    /// largest first.
    pub(crate) fn positions(
        &self,
        weights: &BTreeMap<String, f64>,
    ) -> Result<Vec<Position<'a>>, Failure> {
        if weights.is_empty() {
            return Err(Failure::field(
                "weights",
                "give at least one holding, e.g. {\"AAPL\": 0.6, \"MSFT\": 0.4}",
            ));
        }
        if weights.len() > MAX_HOLDINGS {
            return Err(Failure::field(
                "weights",
                format!(
                    "{} holdings; at most {MAX_HOLDINGS} are accepted",
                    weights.len()
                ),
            ));
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let mut out = Vec::new();
        for (key, &weight) in weights {
            let field = format!("weights.{key}");
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(Failure::field(
                    &field,
                    format!("{weight} is not a weight ≥ 0 (short positions are not supported)"),
                ));
            }
            let record = self.find(key).ok_or_else(|| {
                Failure::field(
                    &field,
                    format!(
                        "{key} is not in the ESG data; give tickers or ISINs it has: {}",
                        self.known_tickers()
                    ),
                )
            })?;
            if let Some(before) = seen.insert(record.isin.as_str(), key.as_str()) {
                return Err(Failure::field(
                    &field,
                    format!(
                        "{key} and {before} are the same issuer ({}); give it once",
                        record.ticker
                    ),
                ));
            }
            if weight > 0.0 {
                out.push(Position { record, weight });
            }
        }
        let sum: f64 = weights.values().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(Failure::field(
                "weights",
                format!("the weights add up to {sum:.6}; they must add up to 1"),
            ));
        }
        out.sort_by(|a, b| {
            b.weight
                .total_cmp(&a.weight)
                .then_with(|| a.record.ticker.cmp(&b.record.ticker))
        });
        Ok(out)
    }
}

/// Whether a record's five figures are numbers.
pub(crate) fn has_data(r: &EsgRecord) -> bool {
    [
        r.esg_score,
        r.environmental,
        r.social,
        r.governance,
        r.carbon_intensity,
    ]
    .iter()
    .all(|v| v.is_finite())
}

/// The weighted figures of `positions` (see the module's conventions).
pub(crate) fn weighted(positions: &[Position<'_>]) -> WeightedFigures {
    let covered: Vec<&Position<'_>> = positions.iter().filter(|p| has_data(p.record)).collect();
    let coverage: f64 = covered.iter().map(|p| p.weight).sum();
    let average = |f: fn(&EsgRecord) -> f64| {
        (coverage > 0.0)
            .then(|| covered.iter().map(|p| p.weight * f(p.record)).sum::<f64>() / coverage)
    };
    WeightedFigures {
        coverage,
        esg_score: average(|r| r.esg_score),
        environmental: average(|r| r.environmental),
        social: average(|r| r.social),
        governance: average(|r| r.governance),
        carbon_intensity: average(|r| r.carbon_intensity),
        controversy_weight: positions
            .iter()
            .filter(|p| p.record.controversy_flag)
            .map(|p| p.weight)
            .sum(),
    }
}

/// A weight as a percentage with two decimals: `12.00 %`.
pub(crate) fn pct(weight: f64) -> String {
    format!("{:.2} %", weight * 100.0)
}

/// A figure with one decimal, `n/a` when it is not a number.
pub(crate) fn num1(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "n/a".into()
    }
}

/// `f` with its field moved under `parent` (`criteria.min_esg_score`).
pub(crate) fn within(parent: &str, f: Failure) -> Failure {
    Failure {
        field: Some(match f.field {
            Some(field) => format!("{parent}.{field}"),
            None => parent.to_owned(),
        }),
        reason: f.reason,
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A small universe with round figures, for hand-checked tests.

    use chrono::NaiveDate;
    use ultracore_marketdata::mesh::{placeholder_isin, EsgRecord};

    /// `(ticker, sector, esg, carbon, flagged)`; pillars E = esg − 5,
    /// S = esg, G = esg + 5.
    pub const ROWS: &[(&str, &str, f64, f64, bool)] = &[
        ("AAA", "Tech", 80.0, 10.0, false),
        ("BBB", "Tech", 60.0, 20.0, false),
        ("CCC", "Tech", 40.0, 30.0, true),
        ("DDD", "Energy", 30.0, 500.0, false),
        ("EEE", "Energy", 50.0, 300.0, false),
        ("FFF", "Staples", 70.0, 50.0, false),
    ];

    pub fn records() -> Vec<EsgRecord> {
        ROWS.iter()
            .map(|&(ticker, sector, esg, carbon, flagged)| EsgRecord {
                isin: placeholder_isin(ticker),
                ticker: ticker.to_owned(),
                name: format!("{ticker} Corp."),
                sector: sector.to_owned(),
                esg_score: esg,
                environmental: esg - 5.0,
                social: esg,
                governance: esg + 5.0,
                carbon_intensity: carbon,
                controversy_flag: flagged,
                as_of: NaiveDate::from_ymd_opt(2024, 6, 28).unwrap(),
            })
            .collect()
    }

    pub fn weights(pairs: &[(&str, f64)]) -> std::collections::BTreeMap<String, f64> {
        pairs.iter().map(|&(t, w)| (t.to_owned(), w)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{records, weights};
    use super::*;

    #[test]
    fn weights_are_resolved_by_ticker_or_isin_and_checked() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let isin = records[1].isin.clone();
        let p = u
            .positions(&weights(&[("aaa", 0.25), (&isin, 0.75), ("CCC", 0.0)]))
            .unwrap();
        // Largest first; the zero weight is no holding.
        assert_eq!(
            p.iter()
                .map(|p| (p.record.ticker.as_str(), p.weight))
                .collect::<Vec<_>>(),
            [("BBB", 0.75), ("AAA", 0.25)]
        );
        let field = |w: &[(&str, f64)]| u.positions(&weights(w)).unwrap_err().field.unwrap();
        assert_eq!(field(&[]), "weights");
        assert_eq!(field(&[("AAA", 0.5), ("BBB", 0.4)]), "weights");
        assert_eq!(field(&[("AAA", 1.5), ("BBB", -0.5)]), "weights.BBB");
        assert_eq!(field(&[("AAA", f64::NAN)]), "weights.AAA");
        assert_eq!(field(&[("AAA", 0.5), ("ZZZ", 0.5)]), "weights.ZZZ");
        // The second key, in order, of the issuer named twice.
        assert_eq!(
            field(&[("BBB", 0.5), (&isin, 0.5)]),
            format!("weights.{isin}")
        );
        let unknown = u.positions(&weights(&[("ZZZ", 1.0)])).unwrap_err().reason;
        assert!(
            unknown.contains("AAA, BBB, CCC, DDD, EEE, FFF"),
            "{unknown}"
        );
        // Within the tolerance.
        assert!(u
            .positions(&weights(&[("AAA", 0.5), ("BBB", 0.5 + 5e-7)]))
            .is_ok());
    }

    #[test]
    fn weighted_figures_average_over_the_holdings_with_data() {
        let mut records = records();
        let u = EsgUniverse::new(&records);
        let p = u
            .positions(&weights(&[("AAA", 0.5), ("CCC", 0.25), ("DDD", 0.25)]))
            .unwrap();
        let f = weighted(&p);
        // 0.5·80 + 0.25·40 + 0.25·30 = 57.5; carbon 0.5·10 + 0.25·30 + 0.25·500 = 137.5.
        assert_eq!(f.coverage, 1.0);
        assert_eq!(f.esg_score, Some(57.5));
        assert_eq!(f.environmental, Some(52.5));
        assert_eq!(f.social, Some(57.5));
        assert_eq!(f.governance, Some(62.5));
        assert_eq!(f.carbon_intensity, Some(137.5));
        assert_eq!(f.controversy_weight, 0.25);

        // DDD without a score: the figures cover AAA and CCC, 75 % of the weight.
        records[3].esg_score = f64::NAN;
        let u = EsgUniverse::new(&records);
        let p = u
            .positions(&weights(&[("AAA", 0.5), ("CCC", 0.25), ("DDD", 0.25)]))
            .unwrap();
        let f = weighted(&p);
        assert_eq!(f.coverage, 0.75);
        // (0.5·80 + 0.25·40) / 0.75 = 66.67; carbon (5 + 7.5) / 0.75 = 16.67.
        assert!((f.esg_score.unwrap() - 200.0 / 3.0).abs() < 1e-12);
        assert!((f.carbon_intensity.unwrap() - 50.0 / 3.0).abs() < 1e-12);
    }
}
