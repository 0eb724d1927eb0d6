//! The pure part: SHAP values of a decision for each regime specialist and
//! for the regime-weighted ensemble.
//!
//! # The ensemble
//!
//! The decision engine scores a decision with three specialists (bull,
//! bear, sideways) and mixes their raw margins with the decision's
//! `strategy_weights`:
//!
//! ```text
//! ensemble margin          m = Σ_s w_s · m_s
//! ensemble expected value  E = Σ_s w_s · E_s
//! ensemble SHAP value      φ_j = Σ_s w_s · φ_{s,j}        (feature j)
//! ```
//!
//! SHAP values are linear in the model (a weighted sum of models has the
//! weighted sum of their Shapley values, with the same value function), so
//! these are exactly the ensemble's TreeSHAP values, and additivity carries
//! over: `Σ_j φ_j + E = Σ_s w_s (Σ_j φ_{s,j} + E_s) = Σ_s w_s m_s = m`.
//! The margins are in each specialist's own units (log-odds for the
//! `binary:logistic` bull and bear, basis points for the `reg:squarederror`
//! sideways model); the ensemble adds them as the engine does. A specialist
//! missing from `strategy_weights` has weight 0.
//!
//! Missing features (absent from the decision's `features` map) are NaN in
//! the row and follow each split's default direction, as in XGBoost. Values
//! are converted to float32 as XGBoost converts its input.

use std::path::Path;

use ultracore_events::trading::TradingDecision;
use ultracore_models::{FastTreeShap, FastWorkspace, Model, Objective};

use crate::codec::{encode_shap, FeatureIndex};
use crate::decode::{DecisionView, Pairs};
use crate::{Error, Rejection, Result};

/// Rows explained together by [`Specialists::explain_rows`]: enough that
/// each tree's tables are read once for many rows, few enough that the
/// rows' sums stay in the core's first-level cache.
const BATCH: usize = 128;

/// The specialists' names, in the order explanations list them.
pub const SPECIALISTS: [&str; 3] = ["bull", "bear", "sideways"];

/// One loaded specialist.
#[derive(Debug)]
struct Specialist {
    name: String,
    model: Model,
    fast: FastTreeShap,
}

/// The regime specialists the decisions were made with, ready to explain
/// decisions. Immutable and `Sync`: share one across worker threads, each
/// with its own [`Workspace`].
#[derive(Debug)]
pub struct Specialists {
    specialists: Vec<Specialist>,
    feature_names: Vec<String>,
    index: FeatureIndex,
    version: String,
}

/// Scratch memory for [`Specialists::explain`], one per thread.
#[derive(Debug)]
pub struct Workspace {
    fast: Vec<FastWorkspace>,
    /// Per specialist: SHAP values and margins of a batch of rows.
    phi: Vec<Vec<f64>>,
    margins: Vec<Vec<f64>>,
}

/// What explaining a decision takes from it, made by
/// [`Specialists::check`]: its model row, its specialists' weights, and its
/// features placed in model order (for the store's encoding).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// One value per feature (float32, NaN = missing).
    pub row: Vec<f32>,
    /// One weight per specialist.
    pub weights: Vec<f64>,
    present: Vec<Option<f64>>,
    others: usize,
}

impl Inputs {
    /// Appends the decision's binary form (see [`crate::codec`]).
    pub fn encode(&self, d: &DecisionView<'_>, index: &FeatureIndex, out: &mut Vec<u8>) {
        crate::codec::encode_placed(d, index, &self.present, self.others, out);
    }
}

/// Margin, expected value and SHAP values of one model (a specialist or the
/// ensemble) for one decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part<'a> {
    /// The raw margin in double precision.
    pub margin: f64,
    /// The expected margin (`shap`'s `expected_value`); `margin = expected_value + Σ shap`.
    pub expected_value: f64,
    /// One value per feature, in [`Specialists::feature_names`] order.
    pub shap: &'a [f64],
}

/// The SHAP explanation of one decision: each specialist, then the ensemble.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// `parts × (2 + features)` values: for each part its margin, its
    /// expected value, then its SHAP values. Parts are the specialists in
    /// [`Specialists::names`] order, then the ensemble.
    pub(crate) values: Vec<f64>,
    /// The row the models saw (float32, NaN = missing).
    pub(crate) row: Vec<f32>,
    /// The weight of each specialist, in order.
    pub(crate) weights: Vec<f64>,
}

impl Explanation {
    /// Reassembles an explanation from its parts (the store's decoder).
    pub(crate) fn from_parts(values: Vec<f64>, row: Vec<f32>, weights: Vec<f64>) -> Self {
        Explanation {
            values,
            row,
            weights,
        }
    }

    /// An explanation from its specialists' values (`weights.len() × (2 +
    /// row.len())`: margin, expected value, SHAP values), adding the
    /// ensemble: the weighted sums, specialists added in order. Explaining
    /// and reading a stored explanation both come here, so the ensemble is
    /// the same to the bit.
    pub(crate) fn with_ensemble(mut values: Vec<f64>, row: Vec<f32>, weights: Vec<f64>) -> Self {
        let stride = row.len() + 2;
        debug_assert_eq!(values.len(), weights.len() * stride);
        let mut ensemble = vec![0.0; stride];
        for (out, &w) in values.chunks_exact(stride).zip(&weights) {
            for (e, v) in ensemble.iter_mut().zip(out) {
                *e += w * v;
            }
        }
        values.extend_from_slice(&ensemble);
        Explanation {
            values,
            row,
            weights,
        }
    }

    fn stride(&self) -> usize {
        self.row.len() + 2
    }

    /// Parts: the specialists, then the ensemble.
    pub fn num_parts(&self) -> usize {
        self.values.len() / self.stride()
    }

    /// The `i`-th specialist, or the ensemble for `i == num_parts() - 1`.
    pub fn part(&self, i: usize) -> Part<'_> {
        let s = self.stride();
        let v = &self.values[i * s..(i + 1) * s];
        Part {
            margin: v[0],
            expected_value: v[1],
            shap: &v[2..],
        }
    }

    /// The regime-weighted ensemble.
    pub fn ensemble(&self) -> Part<'_> {
        self.part(self.num_parts() - 1)
    }

    /// The specialists' weights, in order.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The inputs as the models saw them (float32, NaN = missing).
    pub fn row(&self) -> &[f32] {
        &self.row
    }
}

impl Specialists {
    /// Loads `bull.json`, `bear.json` and `sideways.json` from `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let mut models = Vec::new();
        for name in SPECIALISTS {
            let path = dir.join(format!("{name}.json"));
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Model {
                path: path.clone(),
                source: ultracore_models::Error::Io {
                    path: path.clone(),
                    source: e,
                },
            })?;
            let model = Model::from_json(&text).map_err(|source| Error::Model {
                path: path.clone(),
                source,
            })?;
            models.push((name.to_owned(), model, text));
        }
        let version = format!(
            "specialists@{:016x}",
            digest(models.iter().map(|(n, _, t)| (n.as_str(), t.as_bytes())))
        );
        Self::new(
            models.into_iter().map(|(n, m, _)| (n, m)).collect(),
            version,
        )
    }

    /// Specialists from models already loaded, named, in order. `version`
    /// identifies the set (stored with every explanation).
    pub fn new(models: Vec<(String, Model)>, version: impl Into<String>) -> Result<Self> {
        let Some((_, first)) = models.first() else {
            return Err(Error::Specialists("no specialist models were given".into()));
        };
        let feature_names = first.feature_names().to_vec();
        if feature_names.is_empty() {
            return Err(Error::Specialists("the models have no features".into()));
        }
        for (name, model) in &models {
            if model.feature_names() != feature_names.as_slice() {
                return Err(Error::Specialists(format!(
                    "specialist '{name}' has features {:?}, the first specialist {:?}: train every specialist on the same features in the same order",
                    model.feature_names(),
                    feature_names
                )));
            }
        }
        let index = FeatureIndex::new(&feature_names);
        Ok(Specialists {
            specialists: models
                .into_iter()
                .map(|(name, model)| Specialist {
                    fast: FastTreeShap::new(&model),
                    name,
                    model,
                })
                .collect(),
            feature_names,
            index,
            version: version.into(),
        })
    }

    /// Identifies the model set: `specialists@` and a 64-bit FNV-1a digest
    /// of the specialists' names and model files.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The feature names, in row order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The specialists' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.specialists.iter().map(|s| s.name.as_str())
    }

    /// The `i`-th specialist's model.
    pub fn model(&self, i: usize) -> &Model {
        &self.specialists[i].model
    }

    pub fn len(&self) -> usize {
        self.specialists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specialists.is_empty()
    }

    /// Scratch memory for one thread.
    pub fn workspace(&self) -> Workspace {
        Workspace {
            fast: self
                .specialists
                .iter()
                .map(|s| s.fast.workspace())
                .collect(),
            phi: vec![Vec::new(); self.specialists.len()],
            margins: vec![Vec::new(); self.specialists.len()],
        }
    }

    /// The feature names with their row index, for lookups.
    pub(crate) fn index(&self) -> &FeatureIndex {
        &self.index
    }

    /// The model row of a decision: its features in model order, float32,
    /// NaN where absent. Features the models do not know are ignored.
    pub fn row(&self, decision: &TradingDecision, row: &mut Vec<f32>) -> Result<(), Rejection> {
        let mut present = Vec::new();
        self.index
            .place(&Pairs::of_map(&decision.features), &mut present);
        fill_row(&self.index, &present, row)
    }

    /// The weight of each specialist, in order (0 for one the decision does
    /// not weigh). A weight naming no specialist is a rejection.
    pub fn weights(&self, decision: &TradingDecision) -> Result<Vec<f64>, Rejection> {
        let mut weights = vec![0.0; self.specialists.len()];
        fill_weights(
            self.names(),
            &Pairs::of_map(&decision.strategy_weights),
            &mut weights,
        )?;
        Ok(weights)
    }

    /// SHAP values of `decision` for every specialist and for the ensemble.
    pub fn explain(
        &self,
        decision: &TradingDecision,
        ws: &mut Workspace,
    ) -> Result<Explanation, Rejection> {
        self.explain_view(&DecisionView::of(decision), ws)
    }

    /// [`explain`](Self::explain) for a decision read from the log.
    pub fn explain_view(
        &self,
        decision: &DecisionView<'_>,
        ws: &mut Workspace,
    ) -> Result<Explanation, Rejection> {
        let mut inputs = Inputs::default();
        self.check(decision, &mut inputs)?;
        let n = self.feature_names.len();
        let stride = n + 2;
        let mut values = vec![0.0; self.specialists.len() * stride];
        for ((s, fast_ws), out) in self
            .specialists
            .iter()
            .zip(&mut ws.fast)
            .zip(values.chunks_exact_mut(stride))
        {
            let (head, phi) = out.split_at_mut(2);
            // Lengths match by construction: the row and phi have one value per feature.
            let margin = s
                .fast
                .shap_values(&inputs.row, fast_ws, phi)
                .expect("row and phi have the model's length");
            head[0] = margin;
            head[1] = s.fast.expected_value();
        }
        Ok(Explanation::with_ensemble(
            values,
            inputs.row,
            inputs.weights,
        ))
    }

    /// Checks a decision and makes what explaining it needs: its model row
    /// and its specialists' weights.
    pub fn check(&self, decision: &DecisionView<'_>, inputs: &mut Inputs) -> Result<(), Rejection> {
        inputs.weights.resize(self.specialists.len(), 0.0);
        fill_weights(
            self.names(),
            &decision.strategy_weights,
            &mut inputs.weights,
        )?;
        inputs.others = self.index.place(&decision.features, &mut inputs.present);
        fill_row(&self.index, &inputs.present, &mut inputs.row)
    }

    /// The stored form of the SHAP values (see [`crate::codec`]) of many
    /// rows: `rows` holds one row per decision, one after another (as
    /// [`check`](Self::check) makes them); a blob per row is appended to
    /// `out`. The values are bit for bit those of
    /// [`explain`](Self::explain): each row goes through the same trees in
    /// the same order, only a batch at a time.
    pub fn explain_rows(&self, rows: &[f32], ws: &mut Workspace, out: &mut Vec<Vec<u8>>) {
        let n = self.feature_names.len();
        if n == 0 {
            return;
        }
        for batch in rows.chunks(BATCH * n) {
            let count = batch.len() / n;
            for (i, s) in self.specialists.iter().enumerate() {
                let (phi, margins) = (&mut ws.phi[i], &mut ws.margins[i]);
                phi.resize(count * n, 0.0);
                margins.resize(count, 0.0);
                // Lengths match by construction.
                s.fast
                    .shap_values_batch(batch, &mut ws.fast[i], phi, margins)
                    .expect("the batch has whole rows");
            }
            for r in 0..count {
                let mut blob = Vec::with_capacity(4 + self.specialists.len() * (n + 2) * 8);
                encode_shap(
                    n,
                    self.specialists.iter().enumerate().map(|(i, s)| {
                        (
                            ws.margins[i][r],
                            s.fast.expected_value(),
                            &ws.phi[i][r * n..(r + 1) * n],
                        )
                    }),
                    &mut blob,
                );
                out.push(blob);
            }
        }
    }

    /// The specialist's objective (what its margin means).
    pub fn objective(&self, i: usize) -> Objective {
        self.specialists[i].model.objective()
    }
}

/// The model row of features placed by [`FeatureIndex::place`]: float32,
/// as XGBoost converts its input, NaN where missing.
pub(crate) fn fill_row(
    index: &FeatureIndex,
    present: &[Option<f64>],
    row: &mut Vec<f32>,
) -> Result<(), Rejection> {
    row.clear();
    for (i, v) in present.iter().enumerate() {
        row.push(match v {
            Some(v) if !v.is_finite() => {
                return Err(Rejection::NotFinite {
                    field: format!("features.{}", index.name(i)),
                })
            }
            Some(v) => *v as f32,
            None => f32::NAN,
        });
    }
    Ok(())
}

/// Writes the weight of each specialist (named by `names`, in order) into
/// `weights`; 0 for one the decision does not weigh.
pub(crate) fn fill_weights<'n>(
    names: impl Iterator<Item = &'n str> + Clone,
    strategy_weights: &Pairs<'_>,
    weights: &mut [f64],
) -> Result<(), Rejection> {
    weights.fill(0.0);
    for &(ref name, w) in &strategy_weights.0 {
        let Some(i) = names.clone().position(|s| s == &**name) else {
            return Err(Rejection::UnknownSpecialist {
                name: name.to_string(),
                known: names.collect::<Vec<_>>().join(", "),
            });
        };
        if !w.is_finite() {
            return Err(Rejection::NotFinite {
                field: format!("strategy_weights.{}", &**name),
            });
        }
        weights[i] = w;
    }
    Ok(())
}

/// 64-bit FNV-1a over each (name, bytes) pair, separated so that moving
/// bytes between names changes the digest.
fn digest<'a>(parts: impl Iterator<Item = (&'a str, &'a [u8])>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, bytes) in parts {
        eat(name.as_bytes());
        eat(&[0]);
        eat(&(bytes.len() as u64).to_le_bytes());
        eat(bytes);
    }
    h
}
