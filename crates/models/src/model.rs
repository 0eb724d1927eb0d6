//! A loaded tree ensemble and its predictions.

use std::path::Path;

use crate::tree::Tree;
use crate::{xgboost_json, Error, Objective, Result};

/// A gradient-boosted tree ensemble with one output, as XGBoost's
/// `save_model("model.json")` writes it.
///
/// Rows are `&[f32]` in the order of [`Model::feature_names`], `f32::NAN` for a
/// missing value (XGBoost converts its input to float32 too, and treats NaN as
/// missing by default).
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) objective: Objective,
    pub(crate) base_score: f32,
    pub(crate) feature_names: Vec<String>,
    pub(crate) trees: Vec<Tree>,
    base_margin_f32: f32,
    base_margin: f64,
    expected_value: f64,
}

impl Model {
    pub(crate) fn new(
        objective: Objective,
        base_score: f32,
        feature_names: Vec<String>,
        trees: Vec<Tree>,
    ) -> Self {
        let base_margin = objective.base_margin(base_score);
        let expected_value = base_margin + trees.iter().map(|t| t.expected_value).sum::<f64>();
        Self {
            objective,
            base_score,
            feature_names,
            base_margin_f32: objective.base_margin_f32(base_score),
            base_margin,
            expected_value,
            trees,
        }
    }

    /// Parses the JSON text of a model.
    ///
    /// Errors: [`Error::Json`] for text that is not a model,
    /// [`Error::Unsupported`] for objectives, boosters, categorical splits or
    /// multi-output models this crate does not implement, [`Error::Invalid`]
    /// for inconsistent trees.
    pub fn from_json(text: &str) -> Result<Self> {
        xgboost_json::parse(text)
    }

    /// Reads and parses a model file (see [`Model::from_json`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text)
    }

    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// `base_score` as stored (a probability for `binary:logistic`).
    pub fn base_score(&self) -> f32 {
        self.base_score
    }

    /// The margin every row starts from before the trees are added
    /// (the logit of `base_score` for `binary:logistic`).
    pub fn base_margin(&self) -> f64 {
        self.base_margin
    }

    /// The feature names, in row order (`f0`, `f1`, … when the model has none).
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    pub fn num_trees(&self) -> usize {
        self.trees.len()
    }

    /// Edges on the longest root-to-leaf path of any tree.
    pub fn max_depth(&self) -> usize {
        self.trees.iter().map(|t| t.depth).max().unwrap_or(0)
    }

    /// The expected margin when no feature is known: the base margin plus
    /// each tree's cover-weighted mean leaf value. SHAP values of a row add up
    /// to its [`Model::margin`] minus this.
    pub fn expected_value(&self) -> f64 {
        self.expected_value
    }

    fn check(&self, row: &[f32]) -> Result<()> {
        if row.len() != self.feature_names.len() {
            return Err(Error::RowLength {
                expected: self.feature_names.len(),
                actual: row.len(),
            });
        }
        Ok(())
    }

    /// The raw margin exactly as XGBoost computes it (`output_margin=True`):
    /// float32, starting from the base margin and adding the trees in order.
    pub fn predict_margin(&self, row: &[f32]) -> Result<f32> {
        self.check(row)?;
        let mut margin = self.base_margin_f32;
        for tree in &self.trees {
            margin += tree.leaf(row).value;
        }
        Ok(margin)
    }

    /// The prediction as XGBoost computes it: a probability for
    /// `binary:logistic`, the value for `reg:squarederror`.
    pub fn predict(&self, row: &[f32]) -> Result<f32> {
        Ok(self.objective.transform_f32(self.predict_margin(row)?))
    }

    /// The raw margin in double precision: the quantity SHAP values explain.
    /// Agrees with [`Model::predict_margin`] to float32 rounding.
    pub fn margin(&self, row: &[f32]) -> Result<f64> {
        self.check(row)?;
        // Base first, then the trees in order: the order the explainers add in.
        Ok(self
            .trees
            .iter()
            .fold(self.base_margin, |m, t| m + f64::from(t.leaf(row).value)))
    }
}
