//! The explanation of a result in plain words.

use ultracore_portfolio::{EsgData, EsgObjective, EsgRebalance};

use crate::events::OptimizationRequest;

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn objective_words(o: EsgObjective) -> String {
    match o {
        EsgObjective::MaxSharpe => "the highest Sharpe ratio".into(),
        EsgObjective::Epsilon => "the Epsilon Agent's learned mix of base portfolios".into(),
        EsgObjective::MinVolatility => "the lowest volatility".into(),
        EsgObjective::MaxReturn { target_volatility } => {
            format!("the highest expected return at volatility ≤ {}", pct(target_volatility))
        }
        EsgObjective::EsgTradeoff {
            risk_aversion,
            esg_weight,
        } => format!(
            "the best trade-off of return, risk (aversion {risk_aversion}) and ESG score (weight {esg_weight} per 100 points)"
        ),
    }
}

/// Sentences, most important first.
pub(crate) fn explain(
    request: &OptimizationRequest,
    r: &EsgRebalance,
    data: &EsgData,
    mu: &[f64],
    synthetic: bool,
) -> Vec<String> {
    let (b, a) = (&r.before, &r.after);
    let c = &request.constraints;
    let mut out = vec![format!(
        "Aimed for {}: expected return {} → {}, volatility {} → {}, Sharpe {:.2} → {:.2}, ESG score {:.1} → {:.1}, carbon intensity {:.0} → {:.0} tCO2e/$m; turnover {} costing {}.",
        objective_words(request.objective),
        pct(b.expected_return),
        pct(a.expected_return),
        pct(b.volatility),
        pct(a.volatility),
        b.sharpe,
        a.sharpe,
        b.esg_score,
        a.esg_score,
        b.carbon_intensity,
        a.carbon_intensity,
        pct(a.turnover),
        pct(a.transaction_cost),
    )];
    if r.binding.is_empty() {
        out.push(
            "No constraint binds: the result is the objective's own optimum within the universe."
                .into(),
        );
    } else {
        out.push(format!("Binding constraints: {}.", r.binding.join("; ")));
    }
    let esg_binds = r.binding.iter().any(|b| b.starts_with("minimum ESG score"));
    let carbon_binds = r
        .binding
        .iter()
        .any(|b| b.starts_with("maximum carbon intensity"));
    let avg_esg = data.esg_score.iter().sum::<f64>() / data.esg_score.len().max(1) as f64;
    let reasons: Vec<String> = r
        .changes
        .iter()
        .take(3)
        .map(|ch| {
            let i = data.names.iter().position(|n| *n == ch.asset).unwrap_or(0);
            let why = if c.exclude.contains(&ch.asset) {
                "excluded by name".to_owned()
            } else if c.exclude_sectors.contains(&data.sector[i]) {
                format!("sector {} excluded", data.sector[i])
            } else if c.exclude_flagged && data.flagged[i] {
                "issuer under a controversy flag".to_owned()
            } else if ch.delta() < 0.0
                && esg_binds
                && c.min_esg_score.is_some_and(|m| data.esg_score[i] < m)
            {
                format!(
                    "ESG score {:.1} below the required portfolio {:.1}",
                    data.esg_score[i],
                    c.min_esg_score.unwrap_or_default()
                )
            } else if ch.delta() < 0.0
                && carbon_binds
                && c.max_carbon_intensity
                    .is_some_and(|m| data.carbon_intensity[i] > m)
            {
                format!(
                    "carbon intensity {:.0} above the limit {:.0}",
                    data.carbon_intensity[i],
                    c.max_carbon_intensity.unwrap_or_default()
                )
            } else if ch.delta() > 0.0 {
                format!(
                    "expected return {} with ESG score {:.1} ({} the universe's average)",
                    pct(mu[i]),
                    data.esg_score[i],
                    if data.esg_score[i] >= avg_esg {
                        "above"
                    } else {
                        "below"
                    }
                )
            } else {
                format!(
                    "expected return {} does not pay for its risk here",
                    pct(mu[i])
                )
            };
            format!(
                "{} {} {} ({} → {}): {why}",
                if ch.delta() > 0.0 { "buy" } else { "sell" },
                ch.asset,
                pct(ch.delta().abs()),
                pct(ch.from),
                pct(ch.to),
            )
        })
        .collect();
    if !reasons.is_empty() {
        out.push(format!("Largest changes: {}.", reasons.join("; ")));
    }
    if let Some(free) = &r.without_esg_constraints {
        let cost = free.expected_return - a.expected_return;
        out.push(format!(
            "Without the ESG score, carbon and exclusion constraints the same objective reaches expected return {} (Sharpe {:.2}, ESG score {:.1}): the ESG constraints cost {} of expected return.",
            pct(free.expected_return),
            free.sharpe,
            free.esg_score,
            pct(cost.max(0.0)),
        ));
    }
    if !r.cancelled_small_trades.is_empty() {
        out.push(format!(
            "Trades below the minimum size were not made: {}.",
            r.cancelled_small_trades.join(", ")
        ));
    }
    if synthetic {
        out.push("ESG scores and carbon intensities come from SYNTHETIC sample data, not from an ESG vendor.".into());
    }
    out
}
