//! The agent as the optimization service calls it: one decision for a
//! request, from its price history, its universe and constraints and its
//! current weights, with the reasons in words.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::base::{Universe, BASES};
use crate::data::sha256_hex;
use crate::features::{EsgInputs, WARMUP};
use crate::model::Model;
use crate::train::{l1, mix_weights, state_at, Policy, INPUTS, K};
use crate::{Error, Result};

/// The model shipped with the repository, built into the binary.
const SHIPPED: &str = include_str!("../../../models/epsilon.json");

/// A trained model, ready to decide.
#[derive(Debug, Clone)]
pub struct Agent {
    model: Model,
    sha256: String,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The new weights (the mix of the bases).
    pub weights: Vec<f64>,
    /// Base name → its share of the mix.
    pub mix: Vec<(String, f64)>,
    /// The bases' weights, in [`BASES`] order.
    pub bases: Vec<Vec<f64>>,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// SHA-256 of the model file: the agent's version.
    pub agent_version: String,
    /// The fold that decided (its test year).
    pub fold: i32,
}

impl Agent {
    /// The shipped model (parsed once).
    pub fn shipped() -> &'static Agent {
        static AGENT: OnceLock<Agent> = OnceLock::new();
        AGENT.get_or_init(|| Agent::from_json(SHIPPED).expect("the shipped model is valid"))
    }

    pub fn from_json(text: &str) -> Result<Agent> {
        let model = Model::from_json(text)?;
        if model.inputs.len() != INPUTS || model.bases.len() != K {
            return Err(Error::Model {
                reason: format!(
                    "the model has {} inputs and {} bases; this build expects {INPUTS} and {K}",
                    model.inputs.len(),
                    model.bases.len()
                ),
            });
        }
        Ok(Agent {
            model,
            sha256: sha256_hex(text.as_bytes()),
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model file's SHA-256.
    pub fn version(&self) -> &str {
        &self.sha256
    }

    /// Decides at the last row of `prices` (daily closes, oldest first, one
    /// column per asset of `universe`; at least [`WARMUP`] rows) for a
    /// portfolio now holding `current`. The bases are solved under the
    /// universe's constraints against `current` (so a turnover limit holds
    /// for each, and for their mix). The previous mix is not known for a
    /// request: the network sees a uniform one.
    pub fn decide(
        &self,
        prices: &[Vec<f64>],
        universe: &Universe,
        current: &[f64],
    ) -> Result<Decision> {
        if prices.len() < WARMUP {
            return Err(Error::Data {
                reason: format!(
                    "the agent needs {WARMUP} days of prices (about a year), got {}",
                    prices.len()
                ),
            });
        }
        let mut returns = vec![vec![0.0; universe.assets()]; prices.len()];
        for d in 1..prices.len() {
            for (i, r) in returns[d].iter_mut().enumerate() {
                *r = prices[d][i] / prices[d - 1][i] - 1.0;
            }
        }
        let esg = EsgInputs {
            esg_score: universe.data.esg_score.clone(),
            carbon_intensity: universe.data.carbon_intensity.clone(),
            min_esg_score: universe.constraints.min_esg_score,
            max_carbon_intensity: universe.constraints.max_carbon_intensity,
        };
        let day = prices.len() - 1;
        let (bases, static_inputs) = state_at(prices, &returns, universe, &esg, day, current)?;
        let fold = self.model.live().expect("a model has folds");
        let turnover: Vec<f64> = bases.iter().map(|b| l1(b, current)).collect();
        let previous = vec![1.0 / K as f64; K];
        let x = fold.normaliser.input(&static_inputs, &turnover, &previous);
        let mix = fold.networks.mix(&x);
        let weights = mix_weights(&bases, &mix);
        let reasons = self.reasons(fold, &x, &mix, &turnover, l1(&weights, current));
        Ok(Decision {
            weights,
            mix: BASES
                .iter()
                .zip(&mix)
                .map(|(b, m)| ((*b).to_owned(), *m))
                .collect(),
            bases: bases.to_vec(),
            reasons,
            agent_version: self.sha256.clone(),
            fold: fold.test_year,
        })
    }

    /// The mix in words, and the inputs that pushed hardest towards the
    /// base with the largest share: gradient × input of its log share, on
    /// the normalised inputs (how many training standard deviations each
    /// input is from its training mean).
    fn reasons(
        &self,
        fold: &crate::model::Fold,
        x: &[f64],
        mix: &[f64],
        turnover: &[f64],
        traded: f64,
    ) -> Vec<String> {
        let names = &self.model.inputs;
        let top = (0..K).fold(0, |b, k| if mix[k] > mix[b] { k } else { b });
        let mut shares: Vec<(usize, f64)> = mix.iter().copied().enumerate().collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1));
        let words: Vec<String> = shares
            .iter()
            .map(|(k, m)| format!("{} {:.0} %", human(BASES[*k]), 100.0 * m))
            .collect();
        let mut out = vec![format!(
            "The Epsilon Agent (model {}, trained on data through {} and validated on {}) mixed {}.",
            &self.sha256[..12],
            fold.train_to,
            fold.validation_from.format("%Y"),
            words.join(", ")
        )];
        // ∂ log mix_top / ∂x, averaged over the seeds' networks.
        let mut attribution = vec![0.0; x.len()];
        for net in &fold.networks {
            let pass = net.forward(x);
            let mut d_mix = vec![0.0; K];
            d_mix[top] = 1.0 / pass.mix[top].max(1e-12);
            let dx = net.input_gradient(x, &pass, &d_mix);
            for (a, g) in attribution.iter_mut().zip(&dx) {
                *a += g / fold.networks.len() as f64;
            }
        }
        let mut ranked: Vec<(usize, f64)> = attribution
            .iter()
            .zip(x)
            .map(|(g, v)| g * v)
            .enumerate()
            .collect();
        ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        let drivers: Vec<String> = ranked
            .iter()
            .take(3)
            .map(|(j, c)| {
                format!(
                    "{} ({} {:.1}, {} it)",
                    input_words(&names[*j]),
                    if *j < crate::train::STATIC_INPUTS {
                        "z-score"
                    } else {
                        "value"
                    },
                    x[*j],
                    if *c > 0.0 { "raised" } else { "lowered" }
                )
            })
            .collect();
        out.push(format!(
            "{} got the largest share. The inputs that moved it most: {}.",
            capitalise(&human(BASES[top])),
            drivers.join("; ")
        ));
        out.push(format!(
            "Every base portfolio satisfies the request's constraints, so their mix does too. Reaching it trades {:.1} % of the portfolio (each base alone: {}).",
            50.0 * traded,
            BASES
                .iter()
                .zip(turnover)
                .map(|(b, t)| format!("{} {:.1} %", human(b), 50.0 * t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out
    }
}

/// An input's name in words: `min_variance.volatility_63d` →
/// `minimum variance: volatility 63d`.
fn input_words(name: &str) -> String {
    match name.split_once('.') {
        Some((owner, feature)) => {
            let owner = match owner {
                "market" => "market".to_owned(),
                "previous_mix" => "previous mix".to_owned(),
                base => human(base),
            };
            let feature = match owner.as_str() {
                "previous mix" => human(feature),
                _ => feature.replace('_', " ").replace("esg", "ESG"),
            };
            format!("{owner}: {feature}")
        }
        None => name.replace('_', " "),
    }
}

/// A base's name in words.
pub fn human(base: &str) -> String {
    match base {
        "esg_equal_weight" => "ESG-projected 1/N".into(),
        "min_variance" => "minimum variance".into(),
        "max_sharpe" => "maximum Sharpe".into(),
        "inverse_volatility" => "ESG-projected inverse volatility".into(),
        other => other.replace('_', " "),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_read_as_words() {
        assert_eq!(
            input_words("min_variance.volatility_63d"),
            "minimum variance: volatility 63d"
        );
        assert_eq!(
            input_words("inverse_volatility.esg_slack"),
            "ESG-projected inverse volatility: ESG slack"
        );
        assert_eq!(
            input_words("previous_mix.max_sharpe"),
            "previous mix: maximum Sharpe"
        );
        assert_eq!(input_words("market.turbulence"), "market: turbulence");
    }

    #[test]
    fn the_shipped_model_loads_and_names_its_inputs() {
        let a = Agent::shipped();
        assert_eq!(a.version().len(), 64);
        assert_eq!(a.model().inputs, crate::train::input_names());
        assert!(a.model().folds.len() >= 2);
    }
}
