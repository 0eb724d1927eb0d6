//! The plain-words explanation of a decision: what it did, the features
//! pushing the ensemble's score up and down, why this regime and why these
//! strategy weights. A pure function of the stored decision, its SHAP values
//! and the model set that explained it, so the store keeps the numbers and
//! the words are written when an explanation is read (the same words every
//! time: `tests/exactness.rs` pins them). Rows stored before the store's
//! schema 2 keep the words written then.

use std::fmt::Write;

use ultracore_events::trading::TradingDecision;

use crate::{Explanation, ModelSet};

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
pub fn narrative(set: &ModelSet, decision: &TradingDecision, explanation: &Explanation) -> String {
    let mut out = String::with_capacity(640);
    let ensemble = explanation.ensemble();
    let names = &set.features;
    let _ = writeln!(
        out,
        "{} {} {} with confidence {}. The ensemble score is {}, {} from its baseline of {}.",
        decision.action,
        fmt_quantity(decision.quantity),
        decision.symbol,
        fixed(decision.confidence, 2),
        fixed(ensemble.margin, 4),
        signed(ensemble.margin - ensemble.expected_value, 4),
        fixed(ensemble.expected_value, 4),
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
                let _ = write!(out, "{} missing ({})", names[*i], signed(*v, 4));
            } else {
                let _ = write!(out, "{} = {x} ({})", names[*i], signed(*v, 4));
            }
        }
        out.push_str(".\n");
    }
    regime_sentence(&mut out, decision);
    weights_sentence(&mut out, set, decision, explanation);
    out
}

/// `v` with `decimals` digits after the point (`signed`: always a sign).
/// Much cheaper than `format!("{v:.4}")`, which formats exactly; the last
/// digit may differ from it on exact ties, which words never need.
struct Fixed {
    v: f64,
    decimals: u32,
    signed: bool,
}

fn fixed(v: f64, decimals: u32) -> Fixed {
    Fixed {
        v,
        decimals,
        signed: false,
    }
}

fn signed(v: f64, decimals: u32) -> Fixed {
    Fixed {
        v,
        decimals,
        signed: true,
    }
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = 10u64.pow(self.decimals);
        let scaled = (self.v.abs() * unit as f64).round();
        if !scaled.is_finite() || scaled >= 1e15 {
            return if self.signed {
                write!(f, "{:+.*}", self.decimals as usize, self.v)
            } else {
                write!(f, "{:.*}", self.decimals as usize, self.v)
            };
        }
        let n = scaled as u64;
        if self.v < 0.0 && n > 0 {
            f.write_str("-")?;
        } else if self.signed {
            f.write_str("+")?;
        }
        write!(f, "{}", n / unit)?;
        if self.decimals > 0 {
            let mut frac = n % unit;
            let mut digits = [b'0'; 16];
            for d in (0..self.decimals as usize).rev() {
                digits[d] = b'0' + (frac % 10) as u8;
                frac /= 10;
            }
            f.write_str(".")?;
            f.write_str(
                std::str::from_utf8(&digits[..self.decimals as usize])
                    .map_err(|_| std::fmt::Error)?,
            )?;
        }
        Ok(())
    }
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
                "Regime: {only} is the only regime given ({} %).",
                fixed(p * 100.0, 1)
            );
        }
        [(first, p), rest @ ..] => {
            let margin = p - rest[0].1;
            let _ = write!(
                out,
                "Regime: {first} is the most likely ({} %), {} points ahead of ",
                fixed(p * 100.0, 1),
                fixed(margin * 100.0, 1)
            );
            for (n, (name, q)) in rest.iter().enumerate() {
                if n > 0 {
                    out.push_str(if n + 1 == rest.len() { " and " } else { ", " });
                }
                let _ = write!(out, "{name} ({} %)", fixed(q * 100.0, 1));
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
    set: &ModelSet,
    decision: &TradingDecision,
    explanation: &Explanation,
) {
    let weights = explanation.weights();
    let follows = set.names().zip(weights).all(|(name, w)| {
        (decision.regime_probs.get(name).copied().unwrap_or(0.0) - w).abs() <= SAME_WEIGHT
    });
    out.push_str("Strategy weights: ");
    for (i, (name, w)) in set.names().zip(weights).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{name} {}", fixed(*w, 2));
        if !follows {
            match decision.regime_probs.get(name) {
                Some(p) => {
                    let _ = write!(out, " (regime probability {})", fixed(*p, 2));
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
        let (name, objective) = set
            .specialists
            .get(i)
            .map_or(("?", ""), |(n, o)| (n.as_str(), o.as_str()));
        let _ = write!(
            out,
            " The {name} specialist contributes most to the score: {} (weight {} x margin {}, {}).",
            signed(contribution, 4),
            fixed(weights[i], 2),
            fixed(explanation.part(i).margin, 4),
            match ultracore_models::Objective::from_name(objective) {
                Some(ultracore_models::Objective::BinaryLogistic) => "log-odds",
                Some(ultracore_models::Objective::SquaredError) => "regression output",
                None => "model output",
            }
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_numbers_read_as_format_does() {
        for (v, d) in [
            (0.0, 4),
            (1.5, 2),
            (-0.12345, 4),
            (123.456789, 1),
            (-0.00004, 4),
            (2e20, 2),
            (0.999_99, 4),
            (61.25, 0),
        ] {
            let plain = format!("{v:.*}", d as usize).replace("-0.0000", "0.0000");
            let sign = format!("{v:+.*}", d as usize).replace("-0.0000", "+0.0000");
            assert_eq!(fixed(v, d).to_string(), plain, "{v}");
            assert_eq!(signed(v, d).to_string(), sign, "{v}");
        }
        assert_eq!(fixed(f64::NAN, 2).to_string(), "NaN");
    }

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
