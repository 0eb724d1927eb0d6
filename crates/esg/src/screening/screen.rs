//! A portfolio screened against [`ScreeningCriteria`]: violations graded
//! by severity, the weighted figures, and recommendations from the data.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    has_data, pct, weighted, within, EsgUniverse, Position, ScreeningCriteria, WeightedFigures,
};
use crate::Failure;

/// The tolerance of limits, relative (as the optimizer's).
const TOL: f64 = 1e-6;
/// Sectors named in a warning about an unknown one, at most.
const LISTED_SECTORS: usize = 30;

/// How serious a violation is (see the module docs for the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// By the weight involved: under 1 % low, under 5 % medium, under 10 %
    /// high, else critical.
    pub fn of_weight(weight: f64) -> Severity {
        match weight {
            w if w < 0.01 => Severity::Low,
            w if w < 0.05 => Severity::Medium,
            w if w < 0.10 => Severity::High,
            _ => Severity::Critical,
        }
    }

    /// By the distance past the limit, relative to the limit: under 5 %
    /// low, under 15 % medium, under 30 % high, else critical.
    pub fn of_distance(distance: f64) -> Severity {
        match distance {
            d if d < 0.05 => Severity::Low,
            d if d < 0.15 => Severity::Medium,
            d if d < 0.30 => Severity::High,
            _ => Severity::Critical,
        }
    }

    /// One step more serious (critical stays critical).
    pub fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Which criterion a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// A holding in an excluded sector.
    ExcludedSector,
    /// A holding on the exclusion list.
    ExcludedIssuer,
    /// A holding under a controversy flag, while flagged issuers are excluded.
    Controversy,
    /// A holding below the holding-level score, or the weighted score below
    /// the minimum (no ticker).
    LowEsgScore,
    /// The weighted carbon intensity above the maximum.
    HighCarbonIntensity,
    /// A holding without the figures a score or carbon criterion needs.
    MissingData,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::ExcludedSector => "excluded_sector",
            ViolationKind::ExcludedIssuer => "excluded_issuer",
            ViolationKind::Controversy => "controversy",
            ViolationKind::LowEsgScore => "low_esg_score",
            ViolationKind::HighCarbonIntensity => "high_carbon_intensity",
            ViolationKind::MissingData => "missing_data",
        }
    }
}

/// One breach of the criteria.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub severity: Severity,
    /// The holding at fault; none for a portfolio-weighted figure.
    pub ticker: Option<String>,
    /// The weight involved: the holding's, or the weight the portfolio
    /// figure covers.
    pub weight: f64,
    /// What was found: the weight held (exclusions, controversies, missing
    /// data), the score, or the carbon intensity.
    pub value: f64,
    /// What is allowed: 0 (a weight), the minimum score, or the maximum
    /// carbon intensity.
    pub limit: f64,
    /// In words, with the figures.
    pub detail: String,
}

/// The answer of a screening.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScreeningReport {
    /// No violation.
    pub compliant: bool,
    /// The most serious first, then the largest weight.
    pub violations: Vec<Violation>,
    /// The portfolio's weighted figures.
    pub figures: WeightedFigures,
    /// What to change, derived from the data, with the figures relied on.
    pub recommendations: Vec<String>,
    /// Criteria that match nothing in the data, incomplete data.
    pub warnings: Vec<String>,
    /// The criteria screened against.
    pub criteria: ScreeningCriteria,
    /// Holdings screened (weights > 0).
    pub holdings: usize,
    /// The ESG data says it is synthetic (not vendor data).
    pub esg_data_synthetic: bool,
}

impl EsgUniverse<'_> {
    /// Screens `weights` (by ticker or ISIN) against `criteria`.
    ///
    /// # Errors
    ///
    /// The argument at fault: `criteria.…` (see
    /// [`ScreeningCriteria::validate`]), `weights.<key>` (not a weight ≥ 0,
    /// an unknown issuer, an issuer given twice) or `weights` (empty, not
    /// adding up to 1).
    pub fn screen(
        &self,
        weights: &BTreeMap<String, f64>,
        criteria: &ScreeningCriteria,
    ) -> Result<ScreeningReport, Failure> {
        criteria.validate().map_err(|f| within("criteria", f))?;
        let positions = self.positions(weights)?;
        Ok(self.screen_positions(&positions, criteria))
    }

    pub(crate) fn screen_positions(
        &self,
        positions: &[Position<'_>],
        criteria: &ScreeningCriteria,
    ) -> ScreeningReport {
        let figures = weighted(positions);
        let needs_figures = criteria.min_esg_score.is_some()
            || criteria.min_holding_esg_score.is_some()
            || criteria.max_carbon_intensity.is_some();
        let mut violations = Vec::new();
        for p in positions {
            let (r, w) = (p.record, p.weight);
            let held = |kind, severity, detail: String| Violation {
                kind,
                severity,
                ticker: Some(r.ticker.clone()),
                weight: w,
                value: w,
                limit: 0.0,
                detail,
            };
            if criteria.excludes_issuer(&r.ticker, &r.isin) {
                violations.push(held(
                    ViolationKind::ExcludedIssuer,
                    Severity::of_weight(w).raised(),
                    format!(
                        "{} ({}) is on the exclusion list and held at {}",
                        r.ticker,
                        r.name,
                        pct(w)
                    ),
                ));
            }
            if criteria.excludes_sector(&r.sector) {
                violations.push(held(
                    ViolationKind::ExcludedSector,
                    Severity::of_weight(w).raised(),
                    format!(
                        "{} ({}) is in the excluded sector {} and held at {}",
                        r.ticker,
                        r.name,
                        r.sector,
                        pct(w)
                    ),
                ));
            }
            if criteria.exclude_flagged && r.controversy_flag {
                violations.push(held(
                    ViolationKind::Controversy,
                    Severity::of_weight(w),
                    format!(
                        "{} ({}) is under a controversy flag and held at {}",
                        r.ticker,
                        r.name,
                        pct(w)
                    ),
                ));
            }
            if !has_data(r) {
                if needs_figures {
                    violations.push(held(
                        ViolationKind::MissingData,
                        Severity::of_weight(w),
                        format!(
                            "{} has incomplete ESG figures: the score and carbon criteria cannot be checked for its {}",
                            r.ticker,
                            pct(w)
                        ),
                    ));
                }
                continue;
            }
            if let Some(min) = criteria.min_holding_esg_score {
                if below(r.esg_score, min) {
                    let distance = (min - r.esg_score) / min;
                    violations.push(Violation {
                        kind: ViolationKind::LowEsgScore,
                        severity: Severity::of_distance(distance).min(Severity::of_weight(w)),
                        ticker: Some(r.ticker.clone()),
                        weight: w,
                        value: r.esg_score,
                        limit: min,
                        detail: format!(
                            "{} scores {:.1}, {:.1} % below the holding minimum {min:.1}, and is held at {}",
                            r.ticker,
                            r.esg_score,
                            distance * 100.0,
                            pct(w)
                        ),
                    });
                }
            }
        }
        if let (Some(min), Some(s)) = (criteria.min_esg_score, figures.esg_score) {
            if below(s, min) {
                let distance = (min - s) / min;
                violations.push(Violation {
                    kind: ViolationKind::LowEsgScore,
                    severity: Severity::of_distance(distance),
                    ticker: None,
                    weight: figures.coverage,
                    value: s,
                    limit: min,
                    detail: format!(
                        "the weighted ESG score is {s:.2}, {:.1} % below the minimum {min:.2}",
                        distance * 100.0
                    ),
                });
            }
        }
        if let (Some(max), Some(c)) = (criteria.max_carbon_intensity, figures.carbon_intensity) {
            if above(c, max) {
                let distance = if max > 0.0 {
                    (c - max) / max
                } else {
                    f64::INFINITY
                };
                violations.push(Violation {
                    kind: ViolationKind::HighCarbonIntensity,
                    severity: Severity::of_distance(distance),
                    ticker: None,
                    weight: figures.coverage,
                    value: c,
                    limit: max,
                    detail: format!(
                        "the weighted carbon intensity is {c:.1} tCO2e per USD m of revenue, above the maximum {max:.1}{}",
                        if max > 0.0 {
                            format!(" by {:.1} %", distance * 100.0)
                        } else {
                            String::new()
                        }
                    ),
                });
            }
        }
        violations.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| b.weight.total_cmp(&a.weight))
                .then_with(|| a.kind.cmp(&b.kind))
                .then_with(|| a.ticker.cmp(&b.ticker))
        });
        let recommendations = self.recommend(positions, criteria, &figures, &violations);
        let warnings = self.warnings(criteria, &figures);
        ScreeningReport {
            compliant: violations.is_empty(),
            violations,
            figures,
            recommendations,
            warnings,
            criteria: criteria.clone(),
            holdings: positions.len(),
            esg_data_synthetic: self.synthetic,
        }
    }

    fn warnings(&self, criteria: &ScreeningCriteria, figures: &WeightedFigures) -> Vec<String> {
        let mut out = Vec::new();
        if criteria.is_empty() {
            out.push("No criteria given: there is nothing to screen against.".to_owned());
        }
        let sectors: BTreeSet<&str> = self.records.iter().map(|r| r.sector.as_str()).collect();
        for s in &criteria.exclude_sectors {
            if !sectors.iter().any(|k| k.eq_ignore_ascii_case(s.trim())) {
                let known: Vec<&str> = sectors.iter().copied().take(LISTED_SECTORS).collect();
                out.push(format!(
                    "exclude_sectors: '{s}' is no sector of the ESG data, so it excludes nothing; its sectors are {}.",
                    known.join(", ")
                ));
            }
        }
        for id in &criteria.exclude_issuers {
            if self.find(id).is_none() {
                out.push(format!(
                    "exclude_issuers: {id} is not in the ESG data, so it excludes nothing here."
                ));
            }
        }
        if figures.coverage < 1.0 - 1e-9 {
            out.push(format!(
                "{} of the weight has incomplete ESG figures; the weighted figures average over the other {}.",
                pct(1.0 - figures.coverage),
                pct(figures.coverage)
            ));
        }
        out
    }
}

/// `value` is below the minimum `min` (beyond the tolerance).
pub(super) fn below(value: f64, min: f64) -> bool {
    value < min - TOL * min.max(1.0)
}

/// `value` is above the maximum `max` (beyond the tolerance).
pub(super) fn above(value: f64, max: f64) -> bool {
    value > max + TOL * max.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{records, weights};
    use super::*;

    fn criteria() -> ScreeningCriteria {
        ScreeningCriteria {
            min_esg_score: Some(60.0),
            min_holding_esg_score: Some(35.0),
            max_carbon_intensity: Some(100.0),
            exclude_sectors: vec!["energy".into()],
            exclude_issuers: vec![],
            exclude_flagged: true,
        }
    }

    #[test]
    fn severity_follows_weight_and_distance() {
        use Severity::*;
        let w = [0.0, 0.0099, 0.01, 0.0499, 0.05, 0.0999, 0.10, 1.0];
        assert_eq!(
            w.map(Severity::of_weight),
            [Low, Low, Medium, Medium, High, High, Critical, Critical]
        );
        let d = [0.0, 0.0499, 0.05, 0.1499, 0.15, 0.2999, 0.30, f64::INFINITY];
        assert_eq!(
            d.map(Severity::of_distance),
            [Low, Low, Medium, Medium, High, High, Critical, Critical]
        );
        assert_eq!(Low.raised(), Medium);
        assert_eq!(Critical.raised(), Critical);
        assert_eq!(serde_json::to_value(High).unwrap(), "high");
    }

    #[test]
    fn a_portfolio_breaking_every_criterion() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let w = weights(&[("AAA", 0.4), ("CCC", 0.1), ("DDD", 0.3), ("FFF", 0.2)]);
        let r = u.screen(&w, &criteria()).unwrap();
        assert!(!r.compliant);
        assert_eq!(r.holdings, 4);
        // ESG 0.4·80 + 0.1·40 + 0.3·30 + 0.2·70 = 59; carbon 4 + 3 + 150 + 10 = 167.
        assert!((r.figures.esg_score.unwrap() - 59.0).abs() < 1e-12);
        assert!((r.figures.carbon_intensity.unwrap() - 167.0).abs() < 1e-12);
        assert_eq!(r.figures.controversy_weight, 0.1);
        let got: Vec<(ViolationKind, Severity, Option<&str>)> = r
            .violations
            .iter()
            .map(|v| (v.kind, v.severity, v.ticker.as_deref()))
            .collect();
        use Severity::*;
        use ViolationKind::*;
        assert_eq!(
            got,
            [
                // (167 − 100) / 100 = 67 % past the limit.
                (HighCarbonIntensity, Critical, None),
                // 30 % of the weight, raised: critical.
                (ExcludedSector, Critical, Some("DDD")),
                // 10 % of the weight.
                (Controversy, Critical, Some("CCC")),
                // (35 − 30) / 35 = 14.3 % short: medium; 30 % weight: critical; the lower.
                (LowEsgScore, Medium, Some("DDD")),
                // (60 − 59) / 60 = 1.7 % short.
                (LowEsgScore, Low, None),
            ]
        );
        let dddscore = &r.violations[3];
        assert_eq!(
            (dddscore.value, dddscore.limit, dddscore.weight),
            (30.0, 35.0, 0.3)
        );
        let excluded = &r.violations[1];
        assert_eq!((excluded.value, excluded.limit), (0.3, 0.0));
        assert_eq!(r.violations[0].limit, 100.0);

        assert_eq!(
            r.recommendations,
            [
                "Sell DDD (sector Energy excluded, ESG 30.0 below the holding minimum 35.0; weight 30.00 %): \
                 its sector Energy is excluded; the best-scoring eligible issuer of the universe is AAA \
                 (AAA Corp., Tech): ESG 80.0 against 30.0, carbon intensity 10.0 against 500.0.",
                "Replace CCC (under a controversy flag; weight 10.00 %) with AAA (AAA Corp.), the \
                 best-scoring eligible issuer of the same sector Tech: ESG 80.0 against 40.0, carbon \
                 intensity 10.0 against 30.0.",
                // (60 − 59) / (80 − 30) = 2 % of the weight.
                "Raise the weighted ESG score from 59.00 to the minimum 60.00 by moving weight to AAA \
                 (AAA Corp., ESG 80.0): 2.00 % from DDD (ESG 30.0, weight 30.00 %), +1.00 points to \
                 60.00.",
                // (167 − 100) / (500 − 10) = 13.67 %; DDD is 150 / 167 = 89.8 % of the carbon.
                "Cut the weighted carbon intensity from 167.00 to the maximum 100.00 by moving weight \
                 to AAA (AAA Corp., carbon intensity 10.0): 13.67 % from DDD (carbon intensity 500.0, \
                 weight 30.00 %, 89.8 % of the weighted figure), −67.00 tCO2e per USD m to 100.00.",
            ]
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn a_compliant_portfolio_says_how_much_room_is_left() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let r = u
            .screen(&weights(&[("AAA", 0.5), ("FFF", 0.5)]), &criteria())
            .unwrap();
        assert!(r.compliant && r.violations.is_empty());
        assert_eq!(
            r.recommendations,
            [
                "The weighted ESG score 75.00 meets the minimum 60.00 with 15.00 points to spare.",
                "The weighted carbon intensity 30.0 is within the maximum 100.0 by 70.0.",
            ]
        );
        // At the limit, within the optimizer's tolerance: compliant.
        let at = ScreeningCriteria {
            min_esg_score: Some(75.0 + 1e-5),
            ..Default::default()
        };
        assert!(
            u.screen(&weights(&[("AAA", 0.5), ("FFF", 0.5)]), &at)
                .unwrap()
                .compliant
        );
    }

    #[test]
    fn a_gap_the_holdings_cannot_close_is_said_so() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let c = ScreeningCriteria {
            min_esg_score: Some(90.0),
            ..Default::default()
        };
        let r = u.screen(&weights(&[("EEE", 1.0)]), &c).unwrap();
        // (90 − 50) / 90 = 44 % short.
        assert_eq!(r.violations[0].severity, Severity::Critical);
        assert_eq!(
            r.recommendations,
            ["Raise the weighted ESG score from 50.00 to the minimum 90.00 by moving weight to AAA \
              (AAA Corp., ESG 80.0): 100.00 % from EEE (ESG 50.0, weight 100.00 %), +30.00 points to \
              80.00. That reaches 80.00 only: the minimum of 90.00 needs issuers beyond these \
              holdings or looser criteria."]
        );
    }

    #[test]
    fn exclusions_match_tickers_or_isins_and_small_positions_are_at_least_medium() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let c = ScreeningCriteria {
            exclude_issuers: vec![records[1].isin.clone(), "ZZZ".into()],
            exclude_sectors: vec!["Tobacco".into()],
            ..Default::default()
        };
        let r = u
            .screen(&weights(&[("AAA", 0.996), ("BBB", 0.004)]), &c)
            .unwrap();
        assert_eq!(r.violations.len(), 1);
        let v = &r.violations[0];
        assert_eq!(
            (v.kind, v.severity, v.ticker.as_deref()),
            (ViolationKind::ExcludedIssuer, Severity::Medium, Some("BBB"))
        );
        // BBB's sector peer AAA is eligible.
        assert!(r.recommendations[0]
            .starts_with("Replace BBB (on the exclusion list; weight 0.40 %) with AAA"));
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(
            r.warnings[0].contains("'Tobacco' is no sector"),
            "{:?}",
            r.warnings
        );
        assert!(
            r.warnings[1].contains("ZZZ is not in the ESG data"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn missing_figures_are_a_violation_only_when_a_figure_is_screened() {
        let mut records = records();
        records[5].esg_score = f64::NAN;
        let u = EsgUniverse::new(&records);
        let w = weights(&[("AAA", 0.75), ("FFF", 0.25)]);
        let r = u.screen(&w, &ScreeningCriteria::default()).unwrap();
        assert!(r.compliant);
        assert_eq!(r.figures.coverage, 0.75);
        assert!(r
            .warnings
            .iter()
            .any(|w| w.contains("25.00 % of the weight")));
        let r = u
            .screen(
                &w,
                &ScreeningCriteria {
                    min_esg_score: Some(50.0),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(!r.compliant);
        let v = &r.violations[0];
        assert_eq!(
            (v.kind, v.severity, v.ticker.as_deref()),
            (ViolationKind::MissingData, Severity::Critical, Some("FFF"))
        );
    }

    #[test]
    fn bad_criteria_are_named_under_criteria() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let e = u
            .screen(
                &weights(&[("AAA", 1.0)]),
                &ScreeningCriteria {
                    exclude_issuers: vec!["xom".into()],
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("criteria.exclude_issuers[0]"));
    }

    #[test]
    fn the_report_serializes_to_the_documented_shape() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let r = u
            .screen(
                &weights(&[("DDD", 1.0)]),
                &ScreeningCriteria {
                    exclude_sectors: vec!["Energy".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["compliant"], false);
        assert_eq!(v["violations"][0]["kind"], "excluded_sector");
        assert_eq!(v["violations"][0]["severity"], "critical");
        assert_eq!(v["violations"][0]["ticker"], "DDD");
        assert_eq!(v["figures"]["esg_score"], 30.0);
        assert_eq!(
            v["criteria"],
            serde_json::json!({"exclude_sectors": ["Energy"]})
        );
        assert!(v["recommendations"][0].as_str().unwrap().starts_with(
            "Sell DDD (sector Energy excluded; weight 100.00 %): its sector Energy is excluded"
        ));
    }
}
