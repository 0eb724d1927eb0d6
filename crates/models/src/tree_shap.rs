//! Exact path-dependent TreeSHAP: Lundberg, Erion and Lee, "Consistent
//! individualized feature attribution for tree ensembles" (2018), Algorithm 2,
//! the algorithm shap's `TreeExplainer` runs by default
//! (`feature_perturbation="tree_path_dependent"`, no background data).
//!
//! For each tree it walks every root-to-leaf path once, keeping the
//! permutation weights of the path's unique features (EXTEND), and at each
//! leaf credits every feature on the path with its share of the leaf value
//! (UNWOUND_SUM). A feature met twice on a path is first unwound (UNWIND) and
//! re-extended with the product of its fractions. Cost per row:
//! O(trees × leaves × depth²).
//!
//! The "zero fraction" of a branch is the share of training cover that went
//! that way ([`Node::left_share`](crate::tree::Node)), the "one fraction" is
//! 1 when the row goes that way and 0 when it does not.

use crate::tree::Tree;
use crate::{Error, Model, Result};

/// Sentinel feature of the path's first element (the root, no feature).
const NO_FEATURE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PathElement {
    feature: u32,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

/// Exact path-dependent TreeSHAP values of one model.
///
/// Immutable and `Sync`: share one across threads, give each thread its own
/// [`TreeShapWorkspace`].
#[derive(Debug, Clone)]
pub struct TreeShap {
    model: Model,
    path_len: usize,
}

/// Scratch memory for [`TreeShap::shap_values`], so a row allocates nothing.
#[derive(Debug, Clone)]
pub struct TreeShapWorkspace {
    path: Vec<PathElement>,
}

impl TreeShap {
    pub fn new(model: &Model) -> Self {
        Self {
            path_len: path_buffer_len(model.max_depth()),
            model: model.clone(),
        }
    }

    pub fn workspace(&self) -> TreeShapWorkspace {
        TreeShapWorkspace {
            path: vec![PathElement::default(); self.path_len],
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The base the SHAP values start from: [`Model::expected_value`].
    pub fn expected_value(&self) -> f64 {
        self.model.expected_value()
    }

    /// Writes the SHAP value of every feature of `row` into `phi` (one per
    /// feature, in the model's feature order) and returns the row's margin in
    /// double precision; `phi` sums to `margin - expected_value()`.
    ///
    /// Errors: [`Error::RowLength`] when `row` or `phi` does not have one
    /// value per feature.
    pub fn shap_values(
        &self,
        row: &[f32],
        workspace: &mut TreeShapWorkspace,
        phi: &mut [f64],
    ) -> Result<f64> {
        check_lengths(self.model.num_features(), row, phi)?;
        phi.fill(0.0);
        let mut margin = self.model.base_margin();
        for tree in &self.model.trees {
            margin += tree_shap(tree, row, &mut workspace.path, phi);
        }
        Ok(margin)
    }
}

pub(crate) fn check_lengths(num_features: usize, row: &[f32], phi: &[f64]) -> Result<()> {
    for len in [row.len(), phi.len()] {
        if len != num_features {
            return Err(Error::RowLength {
                expected: num_features,
                actual: len,
            });
        }
    }
    Ok(())
}

/// Path elements the recursion needs for a tree of `depth` edges: each level
/// copies its parent's path (at most depth + 1 elements) after it.
pub(crate) fn path_buffer_len(depth: usize) -> usize {
    (depth + 2) * (depth + 3) / 2
}

/// Adds one tree's SHAP values of `row` to `phi`; returns the tree's leaf value.
pub(crate) fn tree_shap(
    tree: &Tree,
    row: &[f32],
    path: &mut [PathElement],
    phi: &mut [f64],
) -> f64 {
    recurse(tree, row, phi, path, 0, 0, 0, 1.0, 1.0, NO_FEATURE);
    f64::from(tree.leaf(row).value)
}

/// Lundberg's RECURSE. The path of this call starts at
/// `parent_start + unique_depth + 1` in `path`, right after the parent's.
#[allow(clippy::too_many_arguments)]
fn recurse(
    tree: &Tree,
    row: &[f32],
    phi: &mut [f64],
    path: &mut [PathElement],
    node: usize,
    parent_start: usize,
    mut unique_depth: usize,
    parent_zero: f64,
    parent_one: f64,
    parent_feature: u32,
) {
    // A branch the row does not take (one = 0) that no training row took
    // either (zero = 0) contributes exactly nothing, and its arithmetic would
    // divide 0 by 0.
    if parent_zero == 0.0 && parent_one == 0.0 {
        return;
    }
    let start = parent_start + unique_depth + 1;
    path.copy_within(parent_start..parent_start + unique_depth + 1, start);
    let p = &mut path[start..start + unique_depth + 2];
    extend(p, unique_depth, parent_zero, parent_one, parent_feature);

    let n = &tree.nodes[node];
    if n.is_leaf() {
        let value = f64::from(n.value);
        for i in 1..=unique_depth {
            let w = unwound_sum(p, unique_depth, i);
            let el = p[i];
            phi[el.feature as usize] += w * (el.one_fraction - el.zero_fraction) * value;
        }
        return;
    }

    let left = n.goes_left(row[n.feature as usize]);
    let (hot, cold, hot_share, cold_share) = if left {
        (n.left, n.right, n.left_share, n.right_share)
    } else {
        (n.right, n.left, n.right_share, n.left_share)
    };
    let mut incoming_zero = 1.0;
    let mut incoming_one = 1.0;
    if let Some(k) = (0..=unique_depth).find(|&k| p[k].feature == n.feature) {
        incoming_zero = p[k].zero_fraction;
        incoming_one = p[k].one_fraction;
        unwind(p, unique_depth, k);
        unique_depth -= 1;
    }
    recurse(
        tree,
        row,
        phi,
        path,
        hot as usize,
        start,
        unique_depth + 1,
        hot_share * incoming_zero,
        incoming_one,
        n.feature,
    );
    recurse(
        tree,
        row,
        phi,
        path,
        cold as usize,
        start,
        unique_depth + 1,
        cold_share * incoming_zero,
        0.0,
        n.feature,
    );
}

/// EXTEND: add a feature with the given fractions at position `d`.
fn extend(p: &mut [PathElement], d: usize, zero: f64, one: f64, feature: u32) {
    p[d] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if d == 0 { 1.0 } else { 0.0 },
    };
    let denom = (d + 1) as f64;
    for i in (0..d).rev() {
        p[i + 1].pweight += one * p[i].pweight * (i + 1) as f64 / denom;
        p[i].pweight = zero * p[i].pweight * (d - i) as f64 / denom;
    }
}

/// UNWIND: remove the element at `k` from a path of `d + 1` elements.
fn unwind(p: &mut [PathElement], d: usize, k: usize) {
    let one = p[k].one_fraction;
    let zero = p[k].zero_fraction;
    let denom = (d + 1) as f64;
    let mut next_one_portion = p[d].pweight;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = p[i].pweight;
            p[i].pweight = next_one_portion * denom / ((i + 1) as f64 * one);
            next_one_portion = tmp - p[i].pweight * zero * (d - i) as f64 / denom;
        } else {
            p[i].pweight = p[i].pweight * denom / (zero * (d - i) as f64);
        }
    }
    for i in k..d {
        p[i].feature = p[i + 1].feature;
        p[i].zero_fraction = p[i + 1].zero_fraction;
        p[i].one_fraction = p[i + 1].one_fraction;
    }
}

/// UNWOUND_SUM: the total permutation weight of the path without element `k`.
fn unwound_sum(p: &[PathElement], d: usize, k: usize) -> f64 {
    let one = p[k].one_fraction;
    let zero = p[k].zero_fraction;
    let mut total = 0.0;
    if one != 0.0 {
        let mut next_one_portion = p[d].pweight;
        for i in (0..d).rev() {
            let tmp = next_one_portion / ((i + 1) as f64 * one);
            total += tmp;
            next_one_portion = p[i].pweight - tmp * zero * (d - i) as f64;
        }
    } else {
        for i in (0..d).rev() {
            total += p[i].pweight / (zero * (d - i) as f64);
        }
    }
    total * (d + 1) as f64
}
