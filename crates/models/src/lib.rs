//! Gradient-boosted tree ensembles for trading decisions: load the JSON that
//! XGBoost's `save_model("model.json")` writes, predict exactly as XGBoost
//! does, and explain each prediction with SHAP values.
//!
//! ```no_run
//! use ultracore_models::{FastTreeShap, Model};
//!
//! let model = Model::load("models/bull.json")?;
//! let row = vec![f32::NAN; model.num_features()]; // NaN = missing
//! let probability = model.predict(&row)?; // as XGBoost's predict()
//!
//! let explainer = FastTreeShap::new(&model);
//! let mut workspace = explainer.workspace();
//! let mut phi = vec![0.0; model.num_features()];
//! let margin = explainer.shap_values(&row, &mut workspace, &mut phi)?;
//! // phi sums to margin - model.expected_value()
//! # Ok::<(), ultracore_models::Error>(())
//! ```
//!
//! # Layout
//!
//! - `model`: [`Model`], a loaded ensemble; predictions in XGBoost's float32
//!   arithmetic (equal to XGBoost's) and the margin in double precision.
//! - `objective`: [`Objective`], `binary:logistic` and `reg:squarederror`,
//!   what each means for `base_score` and the transformed prediction.
//! - `xgboost_json`: the `save_model` JSON schema, parsed and checked.
//! - `tree`: the flattened tree every algorithm walks.
//! - `tree_shap`: [`TreeShap`], exact path-dependent TreeSHAP (Lundberg et
//!   al. 2018, Algorithm 2; what shap's `TreeExplainer` computes by default).
//! - `fast_tree_shap`: [`FastTreeShap`], the same values from per-tree
//!   precomputed tables (Fast TreeSHAP v2, Yang 2021), for the per-row hot path.
//! - `error`: [`Error`], [`Result`].
//!
//! # Numbers
//!
//! Predictions follow XGBoost's float32 arithmetic to the bit on the shipped
//! models. SHAP values are computed in double precision from the model's
//! float32 leaf values and covers; they add up with the expected value to the
//! double-precision margin to rounding error, and agree with shap (which
//! divides by float32 covers) to about 1e-7 relative.

mod error;
mod fast_tree_shap;
mod model;
mod objective;
mod tree;
mod tree_shap;
mod xgboost_json;

pub use error::{Error, Result};
pub use fast_tree_shap::{FastTreeShap, FastWorkspace};
pub use model::Model;
pub use objective::Objective;
pub use tree_shap::{TreeShap, TreeShapWorkspace};
