//! One regression tree, flattened: nodes in breadth-first order, so a node's
//! children always come after it and a single backwards pass sees children
//! before parents.

/// `left`/`right` of a leaf.
pub(crate) const LEAF: u32 = u32::MAX;

/// A node. Internal nodes use `feature`, `threshold`, `default_left`, the
/// children and their fractions; leaves use `value`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub(crate) feature: u32,
    /// XGBoost's split condition: a row goes left when `x < threshold`
    /// (compared in float32), right otherwise.
    pub(crate) threshold: f32,
    pub(crate) left: u32,
    pub(crate) right: u32,
    /// Where a missing value (NaN) goes.
    pub(crate) default_left: bool,
    /// The leaf value (learning rate already applied, as XGBoost stores it).
    pub(crate) value: f32,
    /// Share of the node's training cover (`sum_hessian`) that went left and
    /// right: `cover(child) / (cover(left) + cover(right))`. Normalising by the
    /// children's sum rather than the node's own float32 cover makes the two
    /// shares add up to one, so SHAP values plus the expected value equal the
    /// margin to rounding error (shap divides by the node's cover; the two
    /// differ by float32 rounding of `sum_hessian`, about 1e-7 relative).
    pub(crate) left_share: f64,
    pub(crate) right_share: f64,
}

impl Node {
    #[inline]
    pub(crate) fn is_leaf(&self) -> bool {
        self.left == LEAF
    }

    /// Whether a row with value `x` for this node's feature goes left.
    #[inline]
    pub(crate) fn goes_left(&self, x: f32) -> bool {
        if x.is_nan() {
            self.default_left
        } else {
            x < self.threshold
        }
    }
}

/// A tree: nodes in breadth-first order from the root (index 0).
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
    /// Edges on the longest root-to-leaf path.
    pub(crate) depth: usize,
    /// The cover-weighted mean of the leaf values: the tree's output when no
    /// feature is known, the base of its SHAP values.
    pub(crate) expected_value: f64,
}

impl Tree {
    /// Builds from nodes already in breadth-first order; computes depth and
    /// expected value.
    pub(crate) fn new(nodes: Vec<Node>) -> Self {
        let mut expected = vec![0.0f64; nodes.len()];
        let mut depth_below = vec![0usize; nodes.len()];
        for (i, n) in nodes.iter().enumerate().rev() {
            if n.is_leaf() {
                expected[i] = f64::from(n.value);
            } else {
                let (l, r) = (n.left as usize, n.right as usize);
                expected[i] = n.left_share * expected[l] + n.right_share * expected[r];
                depth_below[i] = 1 + depth_below[l].max(depth_below[r]);
            }
        }
        Self {
            depth: depth_below[0],
            expected_value: expected[0],
            nodes,
        }
    }

    /// The leaf a row falls into.
    #[inline]
    pub(crate) fn leaf(&self, row: &[f32]) -> &Node {
        let mut n = &self.nodes[0];
        while !n.is_leaf() {
            let next = if n.goes_left(row[n.feature as usize]) {
                n.left
            } else {
                n.right
            };
            n = &self.nodes[next as usize];
        }
        n
    }
}
