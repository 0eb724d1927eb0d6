//! Checks of a request before any data is read: every problem names the
//! field, so a failed event says what to fix.

use crate::events::OptimizationRequest;
use crate::optimize::Failure;

/// The largest cash amount or portfolio value a request may give.
pub const MAX_AMOUNT: f64 = 1e15;
/// The largest quantity of one holding a request may give.
pub const MAX_UNITS: f64 = 1e12;
/// The most holdings a request may give.
pub const MAX_HOLDINGS: usize = 10_000;

/// Checks a request's shape and ranges before any data is read
/// (identifiers, amounts, weights, holdings given one way): the API rejects
/// what fails here with 422 and the MCP tool with a tool error, before
/// anything is published. Instruments are checked against the data products
/// later, by [`optimize`](crate::optimize).
///
/// # Errors
///
/// The first problem found, with the field at fault
/// (`portfolio.holdings[2].weight`, …).
pub fn validate(r: &OptimizationRequest) -> Result<(), Failure> {
    let bad = |field: &str, reason: String| Err(Failure::field(field, reason));
    if r.portfolio_id.trim().is_empty() || r.portfolio_id.len() > 128 {
        return bad("portfolio_id", "must be 1 to 128 characters".into());
    }
    if !(r.lookback_years.is_finite() && r.lookback_years > 0.0 && r.lookback_years <= 50.0) {
        return bad(
            "lookback_years",
            format!(
                "{} is not a number of years between 0 and 50",
                r.lookback_years
            ),
        );
    }
    if !(r.risk_free_rate.is_finite() && r.risk_free_rate.abs() < 1.0) {
        return bad(
            "risk_free_rate",
            format!("{} is not an annual rate (e.g. 0.02)", r.risk_free_rate),
        );
    }
    let p = &r.portfolio;
    if !(p.cash.is_finite() && p.cash >= 0.0) {
        return bad("portfolio.cash", format!("{} is not an amount ≥ 0", p.cash));
    }
    // Amounts and quantities past the maximums are not portfolios but
    // typos or probes; bounding them keeps every derived figure (values,
    // notionals, sums over holdings) finite.
    if p.cash > MAX_AMOUNT {
        return bad(
            "portfolio.cash",
            format!(
                "{} is above the largest amount accepted, {MAX_AMOUNT:e}",
                p.cash
            ),
        );
    }
    if let Some(v) = p.value {
        if !(v.is_finite() && v > 0.0) {
            return bad("portfolio.value", format!("{v} is not an amount > 0"));
        }
        if v > MAX_AMOUNT {
            return bad(
                "portfolio.value",
                format!("{v} is above the largest amount accepted, {MAX_AMOUNT:e}"),
            );
        }
    }
    if p.holdings.len() > MAX_HOLDINGS {
        return bad(
            "portfolio.holdings",
            format!(
                "{} holdings; at most {MAX_HOLDINGS} are accepted",
                p.holdings.len()
            ),
        );
    }
    let mut by_weight = false;
    let mut by_units = false;
    for (i, h) in p.holdings.iter().enumerate() {
        let at = |f: &str| format!("portfolio.holdings[{i}].{f}");
        if h.ticker.is_none() && h.isin.is_none() {
            return bad(
                &at("ticker"),
                "name the instrument by ticker or isin".into(),
            );
        }
        match (h.units, h.weight) {
            (Some(u), None) => {
                by_units = true;
                if !(u.is_finite() && u >= 0.0) {
                    return bad(
                        &at("units"),
                        format!("{u} is not a quantity ≥ 0 (short positions are not supported)"),
                    );
                }
                if u > MAX_UNITS {
                    return bad(
                        &at("units"),
                        format!("{u} is above the largest quantity accepted, {MAX_UNITS:e}"),
                    );
                }
            }
            (None, Some(w)) => {
                by_weight = true;
                if !(w.is_finite() && (0.0..=1.0).contains(&w)) {
                    return bad(
                        &at("weight"),
                        format!("{w} is not a weight between 0 and 1"),
                    );
                }
            }
            _ => return bad(&at("units"), "give either units or weight".into()),
        }
    }
    if by_units && by_weight {
        return bad(
            "portfolio.holdings",
            "give every holding in units, or every holding as a weight, not both".into(),
        );
    }
    if by_weight {
        if p.value.is_none() {
            return bad(
                "portfolio.value",
                "holdings given as weights need the portfolio's total value for the trade list"
                    .into(),
            );
        }
        let sum: f64 = p.holdings.iter().filter_map(|h| h.weight).sum();
        if sum > 1.0 + 1e-9 {
            return bad(
                "portfolio.holdings",
                format!("weights add up to {sum:.4}, above 1"),
            );
        }
    }
    if by_units && p.value.is_some() {
        return bad(
            "portfolio.value",
            "with holdings in units the value follows from prices and cash; leave it out".into(),
        );
    }
    if !by_units && !by_weight && p.cash <= 0.0 {
        return bad(
            "portfolio",
            "the portfolio is empty: give holdings or cash to invest".into(),
        );
    }
    Ok(())
}
