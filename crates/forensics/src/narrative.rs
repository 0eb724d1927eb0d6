//! The plain-words explanation of a decision: what it did, the features
//! pushing the ensemble's score up and down, why this regime and why these
//! strategy weights. Written once, when the decision is explained, and
//! stored beside the numbers it was written from.

use std::fmt::Write;

use ultracore_events::trading::TradingDecision;

use crate::{Explanation, Specialists};

/// Features named per direction.
pub const TOP_FEATURES: usize = 3;

/// Weights closer than this to the regime probabilities count as equal.
const SAME_WEIGHT: f64 = 1e-6;

/// The `k` features with the largest positive (`up`) or negative SHAP values,
/// strongest first: `(feature index, value)`. Zero values are never listed.
pub fn top_features(shap: &[f64], k: usize, up: bool) -> Vec<(usize, f64)> {
    let mut picked: Vec<(usize, f64)> = Vec::with_capacity(k + 1);
    for (i, &v) in shap.iter().enumerate() {
        let strength = if up { v } else { -v };
        if strength <= 0.0 {
            continue;
        }
        let at = picked
            .iter()
            .position(|&(_, p)| strength > if up { p } else { -p })
            .unwrap_or(picked.len());
        if at < k {
            picked.insert(at, (i, v));
            picked.truncate(k);
        }
    }
    picked
}

/// Writes the explanation of `decision` (one sentence per line).
pub fn narrative(
    specialists: &Specialists,
    decision: &TradingDecision,
    explanation: &Explanation,
) -> String {
    let mut out = String::with_capacity(640);
    let ensemble = explanation.ensemble();
    let names = specialists.feature_names();
    let _ = writeln!(
        out,
        "{} {} {} with confidence {:.2}. The ensemble score is {:.4}, {:+.4} from its baseline of {:.4}.",
        decision.action,
        fmt_quantity(decision.quantity),
        decision.symbol,
        decision.confidence,
        ensemble.margin,
        ensemble.margin - ensemble.expected_value,
        ensemble.expected_value,
    );
    for (up, label) in [(true, "Pushing it up"), (false, "Pushing it down")] {
        let top = top_features(ensemble.shap, TOP_FEATURES, up);
        if top.is_empty() {
            let _ = writeln!(out, "{label}: nothing.");
            continue;
        }
        out.push_str(label);
        out.push_str(": ");
        for (n, (i, v)) in top.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            let x = explanation.row()[*i];
            if x.is_nan() {
                let _ = write!(out, "{} missing ({v:+.4})", names[*i]);
            } else {
                let _ = write!(out, "{} = {x} ({v:+.4})", names[*i]);
            }
        }
        out.push_str(".\n");
    }
    regime_sentence(&mut out, decision);
    weights_sentence(&mut out, specialists, decision, explanation);
    out
}

fn fmt_quantity(q: f64) -> String {
    if q.fract() == 0.0 && q.abs() < 1e15 {
        format!("{}", q as i64)
    } else {
        format!("{q}")
    }
}

/// Regimes from most to least likely.
fn ranked(probs: &std::collections::BTreeMap<String, f64>) -> Vec<(&str, f64)> {
    let mut r: Vec<(&str, f64)> = probs.iter().map(|(k, &v)| (k.as_str(), v)).collect();
    r.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    r
}

fn regime_sentence(out: &mut String, decision: &TradingDecision) {
    let r = ranked(&decision.regime_probs);
    match r.as_slice() {
        [] => out.push_str("Regime: the decision carries no regime probabilities.\n"),
        [(only, p)] => {
            let _ = writeln!(
                out,
                "Regime: {only} is the only regime given ({:.1} %).",
                p * 100.0
            );
        }
        [(first, p), rest @ ..] => {
            let margin = p - rest[0].1;
            let _ = write!(
                out,
                "Regime: {first} is the most likely ({:.1} %), {:.1} points ahead of ",
                p * 100.0,
                margin * 100.0
            );
            for (n, (name, q)) in rest.iter().enumerate() {
                if n > 0 {
                    out.push_str(if n + 1 == rest.len() { " and " } else { ", " });
                }
                let _ = write!(out, "{name} ({:.1} %)", q * 100.0);
            }
            out.push_str(if margin < 0.1 {
                "; a close call, so the specialists' weights stay mixed.\n"
            } else {
                ".\n"
            });
        }
    }
}

fn weights_sentence(
    out: &mut String,
    specialists: &Specialists,
    decision: &TradingDecision,
    explanation: &Explanation,
) {
    let weights = explanation.weights();
    let follows = specialists.names().zip(weights).all(|(name, w)| {
        (decision.regime_probs.get(name).copied().unwrap_or(0.0) - w).abs() <= SAME_WEIGHT
    });
    out.push_str("Strategy weights: ");
    for (i, (name, w)) in specialists.names().zip(weights).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name} {w:.2}");
        if !follows {
            match decision.regime_probs.get(name) {
                Some(p) => {
                    let _ = write!(out, " (regime probability {p:.2})");
                }
                None => out.push_str(" (no regime probability)"),
            }
        }
    }
    if follows {
        out.push_str(
            ": the regime probabilities, so each specialist counts as much as its regime is likely.",
        );
    } else {
        out.push_str(": set by the decision engine apart from the regime probabilities.");
    }
    // Which specialist moved the ensemble most.
    let strongest = (0..weights.len())
        .map(|i| (i, weights[i] * explanation.part(i).margin))
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
    if let Some((i, contribution)) = strongest {
        let name = specialists.names().nth(i).unwrap_or("?");
        let _ = write!(
            out,
            " The {name} specialist contributes most to the score: {contribution:+.4} (weight {:.2} x margin {:.4}, {}).",
            weights[i],
            explanation.part(i).margin,
            match specialists.objective(i) {
                ultracore_models::Objective::BinaryLogistic => "log-odds",
                ultracore_models::Objective::SquaredError => "regression output",
            }
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_features_pick_the_strongest_of_each_sign() {
        let shap = [0.1, -0.5, 0.0, 0.7, -0.2, 0.3, 0.05];
        assert_eq!(
            top_features(&shap, 3, true),
            vec![(3, 0.7), (5, 0.3), (0, 0.1)]
        );
        assert_eq!(top_features(&shap, 3, false), vec![(1, -0.5), (4, -0.2)]);
        assert!(top_features(&[0.0, 0.0], 3, true).is_empty());
    }
}
