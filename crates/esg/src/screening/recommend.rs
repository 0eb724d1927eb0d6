//! Recommendations of a screening, derived from the data (see the
//! module docs of [`screening`](super) for what they are).

use ultracore_marketdata::mesh::EsgRecord;

use super::screen::{above, below};
use super::{
    has_data, num1, pct, EsgUniverse, Position, ScreeningCriteria, Violation, ViolationKind,
    WeightedFigures,
};

/// Moves suggested to close one weighted gap, at most.
const MAX_MOVES: usize = 5;

impl EsgUniverse<'_> {
    /// The eligible issuer `better` prefers (the first ticker on a tie),
    /// among those `filter` keeps.
    fn best_eligible<'r>(
        &'r self,
        criteria: &ScreeningCriteria,
        filter: impl Fn(&EsgRecord) -> bool,
        better: impl Fn(&EsgRecord, &EsgRecord) -> std::cmp::Ordering,
    ) -> Option<&'r EsgRecord> {
        self.records
            .iter()
            .filter(|r| eligible(r, criteria) && filter(r))
            .min_by(|a, b| better(a, b).then_with(|| a.ticker.cmp(&b.ticker)))
    }

    pub(super) fn recommend(
        &self,
        positions: &[Position<'_>],
        criteria: &ScreeningCriteria,
        figures: &WeightedFigures,
        violations: &[Violation],
    ) -> Vec<String> {
        let mut out = Vec::new();
        let by_score = |a: &EsgRecord, b: &EsgRecord| b.esg_score.total_cmp(&a.esg_score);
        // Holdings at fault, the most serious first: what to replace them with.
        let mut reasons: Vec<(&str, Vec<String>)> = Vec::new();
        for v in violations {
            let Some(t) = v.ticker.as_deref() else {
                continue;
            };
            if v.kind == ViolationKind::MissingData {
                continue;
            }
            let Some(p) = positions.iter().find(|p| p.record.ticker == t) else {
                continue;
            };
            let r = p.record;
            let why = match v.kind {
                ViolationKind::ExcludedIssuer => "on the exclusion list".to_owned(),
                ViolationKind::ExcludedSector => format!("sector {} excluded", r.sector),
                ViolationKind::Controversy => "under a controversy flag".to_owned(),
                _ => format!(
                    "ESG {} below the holding minimum {:.1}",
                    num1(r.esg_score),
                    v.limit
                ),
            };
            match reasons.iter_mut().find(|(ticker, _)| *ticker == t) {
                Some((_, list)) => list.push(why),
                None => reasons.push((t, vec![why])),
            }
        }
        for (t, why) in &reasons {
            let Some(p) = positions.iter().find(|p| p.record.ticker == *t) else {
                continue;
            };
            let r = p.record;
            let head = format!(
                "{} ({}; weight {})",
                r.ticker,
                why.join(", "),
                pct(p.weight)
            );
            let figures_of = |c: &EsgRecord| {
                format!(
                    "ESG {} against {}, carbon intensity {} against {}",
                    num1(c.esg_score),
                    num1(r.esg_score),
                    num1(c.carbon_intensity),
                    num1(r.carbon_intensity)
                )
            };
            let same_sector = (!criteria.excludes_sector(&r.sector))
                .then(|| {
                    self.best_eligible(
                        criteria,
                        |c| c.sector == r.sector && c.ticker != r.ticker,
                        by_score,
                    )
                })
                .flatten();
            if let Some(c) = same_sector {
                out.push(format!(
                    "Replace {head} with {} ({}), the best-scoring eligible issuer of the same sector {}: {}.",
                    c.ticker,
                    c.name,
                    r.sector,
                    figures_of(c)
                ));
                continue;
            }
            let why_not = if criteria.excludes_sector(&r.sector) {
                format!("its sector {} is excluded", r.sector)
            } else {
                format!("no other issuer of {} is eligible", r.sector)
            };
            match self.best_eligible(criteria, |c| c.ticker != r.ticker, by_score) {
                Some(c) => out.push(format!(
                    "Sell {head}: {why_not}; the best-scoring eligible issuer of the universe is {} ({}, {}): {}.",
                    c.ticker,
                    c.name,
                    c.sector,
                    figures_of(c)
                )),
                None => out.push(format!(
                    "Sell {head}: {why_not}, and no issuer of the ESG data meets every criterion to replace it."
                )),
            }
        }
        let coverage = figures.coverage;
        if let (Some(min), Some(s)) = (criteria.min_esg_score, figures.esg_score) {
            if below(s, min) {
                let receiver = self.best_eligible(criteria, |_| true, by_score);
                out.push(close_gap(
                    positions,
                    receiver,
                    coverage,
                    Gap {
                        from: s,
                        to: min,
                        figure: "weighted ESG score",
                        unit: "points",
                        value: |r| r.esg_score,
                        label: "ESG",
                    },
                ));
            } else {
                out.push(format!(
                    "The weighted ESG score {s:.2} meets the minimum {min:.2} with {:.2} points to spare.",
                    s - min
                ));
            }
        }
        if let (Some(max), Some(c)) = (criteria.max_carbon_intensity, figures.carbon_intensity) {
            if above(c, max) {
                let receiver = self.best_eligible(
                    criteria,
                    |_| true,
                    |a, b| {
                        a.carbon_intensity
                            .total_cmp(&b.carbon_intensity)
                            .then_with(|| b.esg_score.total_cmp(&a.esg_score))
                    },
                );
                out.push(close_gap(
                    positions,
                    receiver,
                    coverage,
                    Gap {
                        from: c,
                        to: max,
                        figure: "weighted carbon intensity",
                        unit: "tCO2e per USD m",
                        value: |r| r.carbon_intensity,
                        label: "carbon intensity",
                    },
                ));
            } else {
                out.push(format!(
                    "The weighted carbon intensity {c:.1} is within the maximum {max:.1} by {:.1}.",
                    max - c
                ));
            }
        }
        out
    }
}

/// A weighted figure to bring from `from` to `to`.
struct Gap {
    from: f64,
    to: f64,
    figure: &'static str,
    unit: &'static str,
    value: fn(&EsgRecord) -> f64,
    label: &'static str,
}

/// One recommendation: moves of weight from the holdings furthest from
/// `receiver` to it, the worst first, each in the amount that closes the
/// rest of the gap (or the whole holding), at most [`MAX_MOVES`]. The moves
/// add up: each starts where the one before ends. Moving `m` from `d` to
/// `r` changes the figure by `m·(x_r − x_d) / coverage`.
fn close_gap(
    positions: &[Position<'_>],
    receiver: Option<&EsgRecord>,
    coverage: f64,
    gap: Gap,
) -> String {
    let v = gap.value;
    let improving = gap.to > gap.from; // a minimum: raise; a maximum: lower.
    let (verb, bound, sign) = if improving {
        ("Raise", "minimum", '+')
    } else {
        ("Cut", "maximum", '−')
    };
    let Some(recv) = receiver else {
        return format!(
            "{verb} the {} from {:.2} to the {bound} {:.2}: no issuer of the ESG data meets every holding-level criterion to move weight to.",
            gap.figure, gap.from, gap.to
        );
    };
    let gains = |x: f64| {
        if improving {
            v(recv) > x
        } else {
            v(recv) < x
        }
    };
    let mut donors: Vec<&Position<'_>> = positions
        .iter()
        .filter(|p| has_data(p.record) && p.record.ticker != recv.ticker && gains(v(p.record)))
        .collect();
    donors.sort_by(|a, b| {
        let (x, y) = (v(a.record), v(b.record));
        let worst_first = if improving {
            x.total_cmp(&y)
        } else {
            y.total_cmp(&x)
        };
        worst_first.then_with(|| a.record.ticker.cmp(&b.record.ticker))
    });
    let total = gap.from * coverage; // Σ wᵢ·xᵢ over the covered weight
    let mut moves = Vec::new();
    let mut now = gap.from;
    let mut closed = false;
    for d in donors.into_iter().take(MAX_MOVES) {
        let per_weight = (v(recv) - v(d.record)) / coverage;
        let needed = (gap.to - now) / per_weight;
        let moved = needed.min(d.weight);
        let next = now + moved * per_weight;
        // A maximum's figure is a sum of parts worth naming (carbon).
        let share = if !improving && total != 0.0 {
            format!(
                ", {:.1} % of the weighted figure",
                100.0 * d.weight * v(d.record) / total
            )
        } else {
            String::new()
        };
        moves.push(format!(
            "{} from {} ({} {}, weight {}{share}), {sign}{:.2} {} to {:.2}",
            pct(moved),
            d.record.ticker,
            gap.label,
            num1(v(d.record)),
            pct(d.weight),
            (next - now).abs(),
            gap.unit,
            next
        ));
        now = next;
        if moved >= needed {
            closed = true;
            break;
        }
    }
    let mut out = format!(
        "{verb} the {} from {:.2} to the {bound} {:.2} by moving weight to {} ({}, {} {}): {}.",
        gap.figure,
        gap.from,
        gap.to,
        recv.ticker,
        recv.name,
        gap.label,
        num1(v(recv)),
        moves.join("; ")
    );
    if !closed {
        out.push_str(&format!(
            " That reaches {now:.2} only: the {bound} of {:.2} needs issuers beyond these holdings or looser criteria.",
            gap.to
        ));
    }
    out
}

/// Whether `r` may replace a holding: it has data and breaks no
/// holding-level criterion.
fn eligible(r: &EsgRecord, criteria: &ScreeningCriteria) -> bool {
    let breaks = criteria.excludes_issuer(&r.ticker, &r.isin)
        || criteria.excludes_sector(&r.sector)
        || (criteria.exclude_flagged && r.controversy_flag)
        || criteria
            .min_holding_esg_score
            .is_some_and(|min| below(r.esg_score, min));
    has_data(r) && !breaks
}
