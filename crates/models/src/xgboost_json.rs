//! The JSON XGBoost writes with `save_model("model.json")` (schema version 1
//! through 3.x), read into a [`Model`].
//!
//! What is read, under `learner`:
//! - `objective.name`: `binary:logistic` or `reg:squarederror`;
//! - `learner_model_param.base_score`: a string, `"5E-1"` before XGBoost 3.1
//!   and `"[5E-1]"` (one value per target) since; a float32 probability for
//!   the logistic objective;
//! - `learner_model_param.num_feature`, `num_class`, `num_target`;
//! - `feature_names` (optional);
//! - `gradient_booster.model.trees[]`: `left_children`, `right_children`
//!   (`-1` at leaves), `split_indices`, `split_conditions` (the threshold of
//!   an internal node, the leaf value — learning rate applied — at a leaf),
//!   `default_left` (0/1, or booleans in old files), `sum_hessian` (the node
//!   cover SHAP weights paths by) and `split_type` (0 = numerical).
//!
//! `split_conditions` are parsed from their text straight to float32, as
//! XGBoost's own reader does, rather than through a double.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::tree::{Node, Tree, LEAF};
use crate::{Error, Model, Objective, Result};

#[derive(Deserialize)]
struct File {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    #[serde(default)]
    feature_names: Vec<String>,
    learner_model_param: ModelParam,
    gradient_booster: Booster,
    objective: ObjectiveJson,
}

#[derive(Deserialize)]
struct ModelParam {
    base_score: Scalar,
    num_feature: Scalar,
    #[serde(default)]
    num_class: Option<Scalar>,
    #[serde(default)]
    num_target: Option<Scalar>,
}

#[derive(Deserialize)]
struct ObjectiveJson {
    name: String,
}

#[derive(Deserialize)]
struct Booster {
    name: String,
    model: Option<GbTree>,
}

#[derive(Deserialize)]
struct GbTree {
    trees: Vec<TreeJson>,
}

#[derive(Deserialize)]
struct TreeJson {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Box<RawValue>,
    default_left: Vec<Flag>,
    sum_hessian: Vec<f64>,
    #[serde(default)]
    split_type: Vec<Flag>,
}

/// XGBoost writes most parameters as strings ("20"); accept numbers too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(f64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.trim().to_owned(),
            Scalar::Number(n) => n.to_string(),
        }
    }

    fn count(&self, what: &str) -> Result<usize> {
        let text = self.text();
        text.parse::<usize>()
            .or_else(|_| match text.parse::<f64>() {
                Ok(v) if v >= 0.0 && v.fract() == 0.0 => Ok(v as usize),
                _ => Err(()),
            })
            .map_err(|()| invalid(format!("{what} is {text:?}, not a count")))
    }
}

/// `default_left` / `split_type`: integers in current files, booleans in old ones.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(i64),
}

impl Flag {
    fn value(self) -> i64 {
        match self {
            Flag::Bool(b) => i64::from(b),
            Flag::Int(i) => i,
        }
    }
}

fn invalid(what: String) -> Error {
    Error::Invalid { what }
}

fn unsupported(what: String) -> Error {
    Error::Unsupported { what }
}

pub(crate) fn parse(text: &str) -> Result<Model> {
    let file: File = serde_json::from_str(text)?;
    let learner = file.learner;

    let objective = Objective::from_name(&learner.objective.name).ok_or_else(|| {
        unsupported(format!(
            "objective {:?} (supported: binary:logistic, reg:squarederror)",
            learner.objective.name
        ))
    })?;
    let param = &learner.learner_model_param;
    for (name, value) in [
        ("num_class", &param.num_class),
        ("num_target", &param.num_target),
    ] {
        if let Some(v) = value {
            if v.count(name)? > 1 {
                return Err(unsupported(format!(
                    "{name} = {} (only single-output models are implemented)",
                    v.text()
                )));
            }
        }
    }
    let base_score = base_score(&param.base_score)?;
    if objective == Objective::BinaryLogistic && !(base_score > 0.0 && base_score < 1.0) {
        return Err(invalid(format!(
            "base_score {base_score} of a binary:logistic model is not a probability in (0, 1)"
        )));
    }
    let num_feature = param.num_feature.count("num_feature")?;
    let feature_names = if learner.feature_names.is_empty() {
        (0..num_feature).map(|i| format!("f{i}")).collect()
    } else if learner.feature_names.len() == num_feature {
        learner.feature_names
    } else {
        return Err(invalid(format!(
            "{} feature names for {num_feature} features",
            learner.feature_names.len()
        )));
    };

    if learner.gradient_booster.name != "gbtree" {
        return Err(unsupported(format!(
            "booster {:?} (only gbtree is implemented)",
            learner.gradient_booster.name
        )));
    }
    let gbtree = learner
        .gradient_booster
        .model
        .ok_or_else(|| invalid("gradient_booster has no model".into()))?;
    let trees = gbtree
        .trees
        .iter()
        .enumerate()
        .map(|(i, t)| tree(t, num_feature).map_err(|e| prefix(e, i)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Model::new(objective, base_score, feature_names, trees))
}

fn prefix(e: Error, tree: usize) -> Error {
    match e {
        Error::Invalid { what } => invalid(format!("tree {tree}: {what}")),
        Error::Unsupported { what } => unsupported(format!("tree {tree}: {what}")),
        other => other,
    }
}

/// `"5E-1"`, `"[5E-1]"` or a number.
fn base_score(value: &Scalar) -> Result<f32> {
    let text = value.text();
    let inner = text
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(&text);
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.len() != 1 {
        return Err(unsupported(format!(
            "base_score {text} has {} values (only single-output models are implemented)",
            parts.len()
        )));
    }
    match parts[0].parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(invalid(format!("base_score {text:?} is not a number"))),
    }
}

/// A JSON array of numbers, each parsed from its text to the nearest float32.
fn f32_array(raw: &RawValue) -> Result<Vec<f32>> {
    let text = raw.get().trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| invalid("split_conditions is not an array".into()))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|s| {
            let s = s.trim();
            s.parse::<f32>()
                .map_err(|_| invalid(format!("split condition {s:?} is not a number")))
        })
        .collect()
}

/// One tree, checked and renumbered breadth-first from the root.
fn tree(t: &TreeJson, num_feature: usize) -> Result<Tree> {
    let conditions = f32_array(&t.split_conditions)?;
    let n = t.left_children.len();
    let lengths = [
        ("right_children", t.right_children.len()),
        ("split_indices", t.split_indices.len()),
        ("split_conditions", conditions.len()),
        ("default_left", t.default_left.len()),
        ("sum_hessian", t.sum_hessian.len()),
    ];
    if n == 0 {
        return Err(invalid("no nodes".into()));
    }
    for (name, len) in lengths {
        if len != n {
            return Err(invalid(format!(
                "{name} has {len} entries, left_children {n}"
            )));
        }
    }
    if !t.split_type.is_empty() && t.split_type.len() != n {
        return Err(invalid(format!(
            "split_type has {} entries, left_children {n}",
            t.split_type.len()
        )));
    }

    // Breadth-first from the root: `order[new] = old`, `new_id[old] = new`.
    let mut order = vec![0usize];
    let mut new_id = vec![u32::MAX; n];
    new_id[0] = 0;
    let mut next = 0;
    while next < order.len() {
        let old = order[next];
        next += 1;
        let (l, r) = (t.left_children[old], t.right_children[old]);
        if l == -1 && r == -1 {
            continue;
        }
        for child in [l, r] {
            if child < 0 || child as usize >= n {
                return Err(invalid(format!(
                    "node {old} has child {child} (of {n} nodes)"
                )));
            }
            let child = child as usize;
            if new_id[child] != u32::MAX {
                return Err(invalid(format!("node {child} is reached twice")));
            }
            new_id[child] = order.len() as u32;
            order.push(child);
        }
    }

    let mut nodes = Vec::with_capacity(order.len());
    for &old in &order {
        let cover = |i: usize| {
            let c = t.sum_hessian[i];
            if c.is_finite() && c >= 0.0 {
                Ok(c)
            } else {
                Err(invalid(format!("node {i} has cover (sum_hessian) {c}")))
            }
        };
        if t.left_children[old] == -1 {
            let value = conditions[old];
            if !value.is_finite() {
                return Err(invalid(format!("leaf {old} has value {value}")));
            }
            nodes.push(Node {
                feature: 0,
                threshold: 0.0,
                left: LEAF,
                right: LEAF,
                default_left: true,
                value,
                left_share: 0.0,
                right_share: 0.0,
            });
            continue;
        }
        if t.split_type.get(old).is_some_and(|f| f.value() != 0) {
            return Err(unsupported(format!("node {old} is a categorical split")));
        }
        let feature = t.split_indices[old];
        if feature < 0 || feature as usize >= num_feature {
            return Err(invalid(format!(
                "node {old} splits on feature {feature} (the model has {num_feature})"
            )));
        }
        let (l, r) = (
            t.left_children[old] as usize,
            t.right_children[old] as usize,
        );
        let (cl, cr) = (cover(l)?, cover(r)?);
        // Children nobody reached in training: split the weight evenly so
        // the shares still sum to one (XGBoost's min_child_weight normally
        // rules this out).
        let (left_share, right_share) = if cl + cr > 0.0 {
            (cl / (cl + cr), cr / (cl + cr))
        } else {
            (0.5, 0.5)
        };
        nodes.push(Node {
            feature: feature as u32,
            threshold: conditions[old],
            left: new_id[l],
            right: new_id[r],
            default_left: t.default_left[old].value() != 0,
            value: 0.0,
            left_share,
            right_share,
        });
    }
    Ok(Tree::new(nodes))
}
