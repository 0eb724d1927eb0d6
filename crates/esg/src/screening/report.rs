//! A portfolio's ESG report: holdings, weighted figures, sectors, the
//! holdings that lift and weigh on its figures, its screening, and the
//! whole as Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use serde::Serialize;

use super::{
    has_data, num1, pct, weighted, within, EsgUniverse, ScreeningCriteria, ScreeningReport,
    WeightedFigures,
};
use crate::Failure;

/// Holdings named in each list of contributors, at most.
pub const CONTRIBUTORS: usize = 3;

/// One holding with its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldingRow {
    pub ticker: String,
    pub isin: String,
    pub name: String,
    pub sector: String,
    pub weight: f64,
    pub esg_score: f64,
    pub environmental: f64,
    pub social: f64,
    pub governance: f64,
    pub carbon_intensity: f64,
    pub controversy_flag: bool,
    /// `wᵢ·(sᵢ − S) / coverage`: the points of the weighted ESG score `S`
    /// the holding lifts (> 0) or weighs it down by (< 0); they add up to 0.
    pub esg_contribution: Option<f64>,
    /// `wᵢ·cᵢ / coverage`: its part of the weighted carbon intensity.
    pub carbon_contribution: Option<f64>,
    /// Its part of the weighted carbon intensity as a fraction of it.
    pub carbon_share: Option<f64>,
}

/// One sector of the portfolio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectorRow {
    pub sector: String,
    pub weight: f64,
    pub holdings: usize,
    /// Weighted within the sector (its holdings with data).
    pub esg_score: Option<f64>,
    pub carbon_intensity: Option<f64>,
    /// The sector's part of the weighted carbon intensity, as a fraction.
    pub carbon_share: Option<f64>,
}

/// A holding's contribution to a weighted figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub ticker: String,
    pub name: String,
    pub weight: f64,
    /// The holding's figure (its ESG score or carbon intensity).
    pub value: f64,
    /// Its contribution (see [`HoldingRow`]).
    pub contribution: f64,
}

/// A portfolio's ESG report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EsgReport {
    /// The largest weight first.
    pub holdings: Vec<HoldingRow>,
    pub figures: WeightedFigures,
    /// The largest weight first.
    pub sectors: Vec<SectorRow>,
    /// The holdings lifting the weighted ESG score most.
    pub esg_leaders: Vec<Contribution>,
    /// The holdings weighing on it most.
    pub esg_laggards: Vec<Contribution>,
    /// The largest parts of the weighted carbon intensity.
    pub carbon_contributors: Vec<Contribution>,
    /// The screening, when criteria were given.
    pub screening: Option<ScreeningReport>,
    /// The newest date of the holdings' figures.
    pub as_of: Option<NaiveDate>,
    /// The ESG data says it is synthetic (not vendor data).
    pub esg_data_synthetic: bool,
}

impl EsgUniverse<'_> {
    /// The ESG report of `weights` (by ticker or ISIN), screened against
    /// `criteria` when given.
    ///
    /// # Errors
    ///
    /// As [`EsgUniverse::screen`].
    pub fn report(
        &self,
        weights: &BTreeMap<String, f64>,
        criteria: Option<&ScreeningCriteria>,
    ) -> Result<EsgReport, Failure> {
        if let Some(c) = criteria {
            c.validate().map_err(|f| within("criteria", f))?;
        }
        let positions = self.positions(weights)?;
        let figures = weighted(&positions);
        let coverage = figures.coverage;
        let score = figures.esg_score;
        let carbon = figures.carbon_intensity;
        let holdings: Vec<HoldingRow> = positions
            .iter()
            .map(|p| {
                let (r, w) = (p.record, p.weight);
                let data = has_data(r) && coverage > 0.0;
                let carbon_contribution = data.then(|| w * r.carbon_intensity / coverage);
                HoldingRow {
                    ticker: r.ticker.clone(),
                    isin: r.isin.clone(),
                    name: r.name.clone(),
                    sector: r.sector.clone(),
                    weight: w,
                    esg_score: r.esg_score,
                    environmental: r.environmental,
                    social: r.social,
                    governance: r.governance,
                    carbon_intensity: r.carbon_intensity,
                    controversy_flag: r.controversy_flag,
                    esg_contribution: score
                        .filter(|_| data)
                        .map(|s| w * (r.esg_score - s) / coverage),
                    carbon_contribution,
                    carbon_share: carbon_contribution
                        .zip(carbon.filter(|c| *c > 0.0))
                        .map(|(part, total)| part / total),
                }
            })
            .collect();

        let mut sectors: BTreeMap<&str, (f64, usize, f64, f64, f64)> = BTreeMap::new();
        for p in &positions {
            let s = sectors.entry(p.record.sector.as_str()).or_default();
            s.0 += p.weight;
            s.1 += 1;
            if has_data(p.record) {
                s.2 += p.weight;
                s.3 += p.weight * p.record.esg_score;
                s.4 += p.weight * p.record.carbon_intensity;
            }
        }
        let mut sectors: Vec<SectorRow> = sectors
            .into_iter()
            .map(|(sector, (weight, n, covered, esg, co2))| SectorRow {
                sector: sector.to_owned(),
                weight,
                holdings: n,
                esg_score: (covered > 0.0).then(|| esg / covered),
                carbon_intensity: (covered > 0.0).then(|| co2 / covered),
                carbon_share: carbon
                    .filter(|c| *c > 0.0 && covered > 0.0)
                    .map(|c| co2 / coverage / c),
            })
            .collect();
        sectors.sort_by(|a, b| {
            b.weight
                .total_cmp(&a.weight)
                .then_with(|| a.sector.cmp(&b.sector))
        });

        let contribution = |h: &HoldingRow, value: f64, part: f64| Contribution {
            ticker: h.ticker.clone(),
            name: h.name.clone(),
            weight: h.weight,
            value,
            contribution: part,
        };
        let ranked = |part: fn(&HoldingRow) -> Option<f64>, keep: fn(f64) -> bool, desc: bool| {
            let mut list: Vec<(&HoldingRow, f64)> = holdings
                .iter()
                .filter_map(|h| part(h).filter(|x| keep(*x)).map(|x| (h, x)))
                .collect();
            list.sort_by(|a, b| {
                let order = if desc {
                    b.1.total_cmp(&a.1)
                } else {
                    a.1.total_cmp(&b.1)
                };
                order.then_with(|| a.0.ticker.cmp(&b.0.ticker))
            });
            list.truncate(CONTRIBUTORS);
            list
        };
        // A contribution within rounding of 0 lifts nothing.
        let esg_leaders = ranked(|h| h.esg_contribution, |x| x > 1e-9, true)
            .into_iter()
            .map(|(h, x)| contribution(h, h.esg_score, x))
            .collect();
        let esg_laggards = ranked(|h| h.esg_contribution, |x| x < -1e-9, false)
            .into_iter()
            .map(|(h, x)| contribution(h, h.esg_score, x))
            .collect();
        let carbon_contributors = ranked(|h| h.carbon_contribution, |x| x > 0.0, true)
            .into_iter()
            .map(|(h, x)| contribution(h, h.carbon_intensity, x))
            .collect();
        Ok(EsgReport {
            screening: criteria.map(|c| self.screen_positions(&positions, c)),
            as_of: positions.iter().map(|p| p.record.as_of).max(),
            holdings,
            figures,
            sectors,
            esg_leaders,
            esg_laggards,
            carbon_contributors,
            esg_data_synthetic: self.synthetic,
        })
    }
}

/// A table cell: `|` escaped, line breaks as spaces.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn opt1(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), num1)
}

fn opt_pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "n/a".into(), pct)
}

impl EsgReport {
    /// The report as Markdown: the figures, holdings, sectors,
    /// contributors and screening as tables.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# ESG report\n\n");
        let mut about = Vec::new();
        if let Some(d) = self.as_of {
            about.push(format!("ESG figures as of {d}"));
        }
        about.push(format!("{} holdings", self.holdings.len()));
        if self.esg_data_synthetic {
            about.push("**synthetic ESG data** (generated sample, not vendor data)".into());
        }
        let _ = writeln!(md, "{}.\n", about.join(" · "));

        let f = &self.figures;
        md.push_str("## Portfolio\n\n| figure | value |\n|---|---:|\n");
        for (name, value) in [
            ("ESG score (0–100)", opt1(f.esg_score)),
            ("Environmental", opt1(f.environmental)),
            ("Social", opt1(f.social)),
            ("Governance", opt1(f.governance)),
            (
                "Carbon intensity (tCO2e per USD m revenue)",
                opt1(f.carbon_intensity),
            ),
            ("Weight under a controversy flag", pct(f.controversy_weight)),
            ("Weight with ESG data", pct(f.coverage)),
        ] {
            let _ = writeln!(md, "| {name} | {value} |");
        }

        md.push_str(
            "\n## Holdings\n\n| ticker | name | sector | weight | ESG | E | S | G | carbon | carbon share | controversy |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for h in &self.holdings {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&h.ticker),
                cell(&h.name),
                cell(&h.sector),
                pct(h.weight),
                num1(h.esg_score),
                num1(h.environmental),
                num1(h.social),
                num1(h.governance),
                num1(h.carbon_intensity),
                opt_pct(h.carbon_share),
                if h.controversy_flag { "flagged" } else { "" }
            );
        }

        md.push_str(
            "\n## Sectors\n\n| sector | weight | holdings | ESG | carbon | carbon share |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for s in &self.sectors {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&s.sector),
                pct(s.weight),
                s.holdings,
                opt1(s.esg_score),
                opt1(s.carbon_intensity),
                opt_pct(s.carbon_share)
            );
        }

        md.push_str("\n## Contributors\n");
        for (title, list, unit, signed) in [
            (
                "Lifting the ESG score",
                &self.esg_leaders,
                "points of the weighted score",
                true,
            ),
            (
                "Weighing on the ESG score",
                &self.esg_laggards,
                "points of the weighted score",
                true,
            ),
            (
                "Carbon intensity",
                &self.carbon_contributors,
                "tCO2e per USD m of the weighted intensity",
                false,
            ),
        ] {
            let _ = write!(md, "\n### {title}\n\n");
            if list.is_empty() {
                md.push_str("None.\n");
                continue;
            }
            let _ = writeln!(
                md,
                "| ticker | name | weight | figure | contribution ({unit}) |\n|---|---|---:|---:|---:|"
            );
            for c in list {
                let part = if signed {
                    format!("{:+.2}", c.contribution)
                } else {
                    format!("{:.2}", c.contribution)
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {part} |",
                    cell(&c.ticker),
                    cell(&c.name),
                    pct(c.weight),
                    num1(c.value),
                );
            }
        }

        if let Some(s) = &self.screening {
            md.push_str("\n## Screening\n\n");
            if s.compliant {
                md.push_str("**Compliant**: no violation of the criteria.\n");
            } else {
                let _ = writeln!(
                    md,
                    "**Not compliant**: {} violation{}.\n\n\
                     | severity | kind | ticker | weight | value | limit | detail |\n\
                     |---|---|---|---:|---:|---:|---|",
                    s.violations.len(),
                    if s.violations.len() == 1 { "" } else { "s" }
                );
                for v in &s.violations {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} | {:.2} | {:.2} | {} |",
                        v.severity.as_str(),
                        v.kind.as_str(),
                        v.ticker.as_deref().map_or("portfolio".into(), cell),
                        pct(v.weight),
                        v.value,
                        v.limit,
                        cell(&v.detail)
                    );
                }
            }
            for (title, list) in [
                ("Recommendations", &s.recommendations),
                ("Warnings", &s.warnings),
            ] {
                if !list.is_empty() {
                    let _ = write!(md, "\n### {title}\n\n");
                    for line in list {
                        let _ = writeln!(md, "- {line}");
                    }
                }
            }
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{records, weights};
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_report_breaks_the_figures_down() {
        let records = records();
        let u = EsgUniverse::new(&records).synthetic(true);
        // ESG 0.5·80 + 0.2·60 + 0.3·30 = 61; carbon 5 + 4 + 150 = 159.
        let w = weights(&[("AAA", 0.5), ("BBB", 0.2), ("DDD", 0.3)]);
        let r = u.report(&w, None).unwrap();
        assert!(r.screening.is_none());
        assert_eq!(r.as_of, NaiveDate::from_ymd_opt(2024, 6, 28));
        assert!(close(r.figures.esg_score.unwrap(), 61.0));
        assert!(close(r.figures.carbon_intensity.unwrap(), 159.0));
        let tickers: Vec<&str> = r.holdings.iter().map(|h| h.ticker.as_str()).collect();
        assert_eq!(tickers, ["AAA", "DDD", "BBB"]);
        // AAA lifts the score by 0.5·(80 − 61) = 9.5; DDD weighs 0.3·(30 − 61) = −9.3;
        // BBB 0.2·(60 − 61) = −0.2. They add up to 0.
        let esg: Vec<f64> = r
            .holdings
            .iter()
            .map(|h| h.esg_contribution.unwrap())
            .collect();
        assert!(close(esg[0], 9.5) && close(esg[1], -9.3) && close(esg[2], -0.2));
        assert!(close(esg.iter().sum::<f64>(), 0.0));
        // DDD is 150 of the 159 of carbon.
        assert!(close(r.holdings[1].carbon_share.unwrap(), 150.0 / 159.0));

        assert_eq!(r.sectors.len(), 2);
        let tech = &r.sectors[0];
        assert_eq!((tech.sector.as_str(), tech.holdings), ("Tech", 2));
        assert!(close(tech.weight, 0.7));
        // (0.5·80 + 0.2·60) / 0.7 = 74.29; carbon (5 + 4) / 0.7 = 12.86.
        assert!(close(tech.esg_score.unwrap(), 52.0 / 0.7));
        assert!(close(tech.carbon_intensity.unwrap(), 9.0 / 0.7));
        assert!(close(tech.carbon_share.unwrap(), 9.0 / 159.0));
        assert!(close(r.sectors[1].carbon_share.unwrap(), 150.0 / 159.0));

        let names = |l: &[Contribution]| l.iter().map(|c| c.ticker.clone()).collect::<Vec<_>>();
        assert_eq!(names(&r.esg_leaders), ["AAA"]);
        assert_eq!(names(&r.esg_laggards), ["DDD", "BBB"]);
        assert_eq!(names(&r.carbon_contributors), ["DDD", "AAA", "BBB"]);
        assert!(close(r.carbon_contributors[0].contribution, 150.0));
    }

    #[test]
    fn the_report_renders_as_markdown_tables() {
        let records = records();
        let u = EsgUniverse::new(&records).synthetic(true);
        let w = weights(&[("AAA", 0.5), ("BBB", 0.2), ("DDD", 0.3)]);
        let criteria = ScreeningCriteria {
            exclude_sectors: vec!["Energy".into()],
            ..Default::default()
        };
        let r = u.report(&w, Some(&criteria)).unwrap();
        let s = r.screening.as_ref().unwrap();
        assert!(!s.compliant);
        let md = r.to_markdown();
        for expected in [
            "# ESG report\n\nESG figures as of 2024-06-28 · 3 holdings · **synthetic ESG data**",
            "| ESG score (0–100) | 61.0 |",
            "| Carbon intensity (tCO2e per USD m revenue) | 159.0 |",
            "| DDD | DDD Corp. | Energy | 30.00 % | 30.0 | 25.0 | 30.0 | 35.0 | 500.0 | 94.34 % |  |",
            "| Tech | 70.00 % | 2 | 74.3 | 12.9 | 5.66 % |",
            "| AAA | AAA Corp. | 50.00 % | 80.0 | +9.50 |",
            "**Not compliant**: 1 violation.",
            "| critical | excluded_sector | DDD | 30.00 % | 0.30 | 0.00 |",
            "### Recommendations\n\n- Sell DDD (sector Energy excluded; weight 30.00 %)",
        ] {
            assert!(md.contains(expected), "missing {expected:?} in\n{md}");
        }
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn a_bad_criterion_fails_the_report() {
        let records = records();
        let u = EsgUniverse::new(&records);
        let e = u
            .report(
                &weights(&[("AAA", 1.0)]),
                Some(&ScreeningCriteria {
                    max_carbon_intensity: Some(f64::INFINITY),
                    ..Default::default()
                }),
            )
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("criteria.max_carbon_intensity"));
    }
}
