//! Pre-trade risk checks on the position the trade would leave.
//!
//! - `position_limit`: |units after the trade| ≤ `max_position_units`.
//! - `concentration`: |units after| × price / portfolio value ≤ `max_concentration`.
//! - `correlation`: the symbol's correlation with the current holdings, with
//!   its sign flipped when the trade adds short exposure, ≤ `max_correlation`.
//!
//! A trade that adds no exposure (HOLD, quantity 0, or a trade that moves
//! the position towards zero without crossing it) passes every check: risk
//! limits never stop a desk from reducing risk. When a check lacks its
//! inputs (no price or portfolio value; no correlation) and the trade adds
//! exposure, [`MissingInputs`] decides: fail (default) or pass as "not evaluated".

use ultracore_events::trading::{Action, RiskCheck};

use crate::{DecisionRequest, MissingInputs, RiskLimits};

/// The names of the checks, in the order they are reported.
pub const CHECKS: [&str; 3] = ["position_limit", "concentration", "correlation"];

/// Evaluates every check for trading `quantity` units (≥ 0) in the direction of `action`.
pub fn evaluate(
    limits: &RiskLimits,
    request: &DecisionRequest,
    action: Action,
    quantity: f64,
) -> Vec<RiskCheck> {
    let before = request.portfolio.position_units;
    let delta = match action {
        Action::Buy => quantity,
        Action::Sell => -quantity,
        Action::Hold => 0.0,
    };
    let after = before + delta;
    // Exposure is added when |after| grows or the position changes side.
    let adds_exposure = delta != 0.0 && (after.abs() > before.abs() || after * before < 0.0);
    let reduces = "the trade adds no exposure";

    let position = RiskCheck {
        name: CHECKS[0].into(),
        passed: !adds_exposure || after.abs() <= limits.max_position_units,
        value: after.abs(),
        limit: limits.max_position_units,
        detail: Some(if adds_exposure {
            format!(
                "{} units held after the trade ({before} before)",
                after.abs()
            )
        } else {
            format!("{} units held after the trade; {reduces}", after.abs())
        }),
    };

    let missing = |name: &str, what: &str, limit: f64| RiskCheck {
        name: name.into(),
        passed: limits.missing_inputs == MissingInputs::Skip,
        value: 0.0,
        limit,
        detail: Some(match limits.missing_inputs {
            MissingInputs::Reject => {
                format!("cannot be evaluated: the request has no {what}; send it, or configure risk.missing_inputs = \"skip\"")
            }
            MissingInputs::Skip => format!("not evaluated: the request has no {what}"),
        }),
    };

    let concentration = match (request.price, request.portfolio.value) {
        (Some(price), Some(value)) => {
            let weight = after.abs() * price / value;
            RiskCheck {
                name: CHECKS[1].into(),
                passed: !adds_exposure || weight <= limits.max_concentration,
                value: weight,
                limit: limits.max_concentration,
                detail: Some(format!(
                    "position after the trade {:.2} of portfolio value {value:.2}{}",
                    after.abs() * price,
                    if adds_exposure {
                        String::new()
                    } else {
                        format!("; {reduces}")
                    }
                )),
            }
        }
        _ if !adds_exposure => RiskCheck {
            name: CHECKS[1].into(),
            passed: true,
            value: 0.0,
            limit: limits.max_concentration,
            detail: Some(format!("not evaluated: {reduces}")),
        },
        (None, _) => missing(CHECKS[1], "price", limits.max_concentration),
        (_, None) => missing(CHECKS[1], "portfolio.value", limits.max_concentration),
    };

    let correlation = match request.portfolio.correlation_with_holdings {
        Some(c) => {
            // A short position hedges what is correlated with the holdings.
            let effective = if after < 0.0 { -c } else { c };
            RiskCheck {
                name: CHECKS[2].into(),
                passed: !adds_exposure || effective <= limits.max_correlation,
                value: effective,
                limit: limits.max_correlation,
                detail: Some(if !adds_exposure {
                    format!("correlation with holdings {c}; {reduces}")
                } else if after < 0.0 {
                    format!("correlation with holdings {c}, sign flipped for a short position")
                } else {
                    format!("correlation with holdings {c}")
                }),
            }
        }
        None if !adds_exposure => RiskCheck {
            name: CHECKS[2].into(),
            passed: true,
            value: 0.0,
            limit: limits.max_correlation,
            detail: Some(format!("not evaluated: {reduces}")),
        },
        None => missing(
            CHECKS[2],
            "portfolio.correlation_with_holdings",
            limits.max_correlation,
        ),
    };
    vec![position, concentration, correlation]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PortfolioContext;

    fn request(
        position: f64,
        price: Option<f64>,
        value: Option<f64>,
        corr: Option<f64>,
    ) -> DecisionRequest {
        DecisionRequest {
            symbol: "AAPL".into(),
            features: [("rsi_14".to_owned(), 50.0)].into(),
            price,
            portfolio: PortfolioContext {
                position_units: position,
                value,
                correlation_with_holdings: corr,
            },
            correlation_id: None,
        }
    }

    fn failed(checks: &[RiskCheck]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn each_limit_rejects_by_name() {
        let limits = RiskLimits::default(); // 10,000 units, 10 %, 0.8
        let ok = request(0.0, Some(100.0), Some(1_000_000.0), Some(0.3));
        assert!(failed(&evaluate(&limits, &ok, Action::Buy, 500.0)).is_empty());

        let big = request(9_800.0, Some(1.0), Some(1e9), Some(0.3));
        let checks = evaluate(&limits, &big, Action::Buy, 500.0);
        assert_eq!(failed(&checks), ["position_limit"]);
        assert_eq!(checks[0].value, 10_300.0);

        // 1,500 units × 100 = 150,000 of 1,000,000 = 15 % > 10 %.
        let concentrated = request(1_000.0, Some(100.0), Some(1_000_000.0), Some(0.3));
        let checks = evaluate(&limits, &concentrated, Action::Buy, 500.0);
        assert_eq!(failed(&checks), ["concentration"]);
        assert!((checks[1].value - 0.15).abs() < 1e-12);

        let correlated = request(0.0, Some(100.0), Some(1_000_000.0), Some(0.9));
        assert_eq!(
            failed(&evaluate(&limits, &correlated, Action::Buy, 10.0)),
            ["correlation"]
        );
        // Shorting it hedges: -0.9 ≤ 0.8.
        assert!(failed(&evaluate(&limits, &correlated, Action::Sell, 10.0)).is_empty());
    }

    #[test]
    fn reducing_risk_always_passes_and_missing_inputs_follow_the_configuration() {
        let mut limits = RiskLimits::default();
        let over = request(50_000.0, None, None, Some(0.99));
        assert!(failed(&evaluate(&limits, &over, Action::Sell, 100.0)).is_empty());
        assert!(failed(&evaluate(&limits, &over, Action::Hold, 0.0)).is_empty());

        let bare = request(0.0, None, None, None);
        let checks = evaluate(&limits, &bare, Action::Buy, 10.0);
        assert_eq!(failed(&checks), ["concentration", "correlation"]);
        assert!(checks[1].detail.as_deref().unwrap().contains("price"));
        limits.missing_inputs = MissingInputs::Skip;
        let checks = evaluate(&limits, &bare, Action::Buy, 10.0);
        assert!(failed(&checks).is_empty());
        assert!(checks[2]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("not evaluated"));
    }
}
