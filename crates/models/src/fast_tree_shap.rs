//! Fast TreeSHAP v2 (Yang, "Fast TreeSHAP: Accelerating SHAP Value
//! Computation for Trees", 2021): the same path-dependent SHAP values as
//! [`TreeShap`](crate::TreeShap), with the per-row work reduced to
//! O(trees × (nodes + leaves × depth)) by tables computed once per model.
//!
//! # Why it works
//!
//! Take a leaf with value `v` whose path splits on `d` distinct features.
//! For feature `j` of the path let `z_j` be the product of the cover shares
//! of the path's branches on `j`, and `o_j` be 1 when the row follows the
//! path at every node on `j`, else 0. The leaf's contribution to feature `i`
//! is the Shapley value of the game `S ↦ v Π_{j∈S} o_j Π_{j∉S} z_j`:
//!
//! ```text
//! φ_i = v (o_i − z_i) Σ_{S ⊆ P∖{i}} w(|S|, d) Π_{j∈S} o_j Π_{j∈P∖S∖{i}} z_j,
//! w(k, d) = k! (d−k−1)! / d!
//! ```
//!
//! The `o_j` are 0 or 1, so the row enters only through the set `m` of path
//! features it satisfies: one of 2^d cases per leaf. Precomputing the `d`
//! contributions of every case turns a row into: one comparison per internal
//! node (which branch the row takes), one mask per leaf built along the way,
//! and `d` table reads per leaf. The row reaches the leaf whose mask has
//! every bit set, which also gives the margin.
//!
//! Trees whose paths have at most four distinct features (every tree of
//! depth 4 or less, as the shipped specialists) take a tighter form: rows of
//! fixed width (five contributions and the block's margin share, so the
//! margin costs no separate walk), one row per block of leaves: the four
//! leaves two levels under a node, indexed by that node's mask and the three
//! decisions below it (their paths share all but one feature), or two sibling
//! leaves, or a lone leaf. On the shipped specialists this form is about
//! 2.7× faster per row than one variable-width row per leaf (17.5 against
//! 48 µs per decision of three specialists).
//!
//! Tables cost 2^d × d doubles per leaf; a tree whose table would exceed
//! [`MAX_TABLE_ENTRIES`] (very deep trees) is explained by the exact
//! recursion instead, so any model works.

use crate::tree::Tree;
use crate::tree_shap::{check_lengths, path_buffer_len, tree_shap, PathElement};
use crate::{Model, Result};

/// Largest table one tree may use before it falls back to the exact
/// recursion (2^20 doubles: 8 MiB).
pub const MAX_TABLE_ENTRIES: usize = 1 << 20;
/// Most distinct features on one path for the table method.
const MAX_PATH_FEATURES: usize = 16;

/// An internal node as the per-row pass needs it.
#[derive(Debug, Clone, Copy)]
struct FastNode {
    threshold: f32,
    feature: u32,
    left: u32,
    right: u32,
    default_left: bool,
    /// Bit to set in the mask of the branch the row takes, when this node's
    /// feature is new on the path (0 otherwise).
    set: u32,
    /// Bit to clear in the mask of the branch the row does not take, when the
    /// feature already appeared higher on the path (0 otherwise).
    clear: u32,
}

#[derive(Debug, Clone, Copy)]
struct FastLeaf {
    /// Tree-local node index, where the pass leaves this leaf's mask.
    node: u32,
    value: f64,
    /// Distinct features on the path.
    d: u32,
    /// Start of this leaf's `d` feature indices in `leaf_features`.
    features: u32,
    /// Start of this leaf's 2^d × d contributions in `table`.
    table: u32,
}

/// Most distinct features on a path of a narrow tree.
const NARROW: usize = 4;
/// Feature columns of a narrow row: the four leaves under a node two levels
/// up share all but one of their path features, so at most `NARROW + 1`.
const NARROW_COLUMNS: usize = NARROW + 1;
/// A narrow row: the feature columns, then the margin.
const NARROW_ROW: usize = NARROW_COLUMNS + 1;

/// An internal node of a narrow tree, with its own position (the nodes of a
/// narrow tree are kept in two lists, see [`TreeKind::Narrow`]).
#[derive(Debug, Clone, Copy)]
struct NarrowNode {
    node: u32,
    fast: FastNode,
}

/// A node two levels above four leaves, with its children (the three
/// decisions that pick the leaf).
#[derive(Debug, Clone, Copy)]
struct QuadNode {
    node: u32,
    fast: [FastNode; 3],
}

/// A block of a narrow tree (four leaves, two sibling leaves, or one leaf):
/// one table read gives the contributions of all its leaves and its share of
/// the margin.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Where the per-row pass leaves the row index: a lone leaf's mask, or
    /// the block root's mask shifted left by its decisions, in the root's place.
    node: u32,
    /// First row of this entry in `rows`.
    rows: u32,
    /// Where each column goes: the path features, `num_features + 1` for
    /// padding, `num_features` (the margin) for the last.
    features: [u32; NARROW_ROW],
}

#[derive(Debug, Clone)]
enum TreeKind {
    /// A tree whose paths have at most [`NARROW`] distinct features (every
    /// tree of depth 4 or less): fixed-width rows, sibling leaves merged.
    /// `regular` are the internal nodes outside blocks, parents before
    /// children; `pairs` the nodes whose children are both leaves (outside
    /// quads), `quads` the nodes whose children are both pairs.
    Narrow {
        len: usize,
        regular: (usize, usize),
        pairs: (usize, usize),
        quads: (usize, usize),
        entries: (usize, usize),
    },
    /// `nodes[first..first + len]` is the tree in breadth-first order (leaves
    /// are entries never read), `leaves[leaf_first..leaf_first + leaf_len]`.
    Table {
        first: usize,
        len: usize,
        leaf_first: usize,
        leaf_len: usize,
    },
    /// Explained by the exact recursion.
    Exact(Box<Tree>),
}

/// Path-dependent TreeSHAP values by Fast TreeSHAP v2. Same values as
/// [`TreeShap`](crate::TreeShap) to rounding (1e-12 relative on the shipped
/// models), several times faster per row.
///
/// Immutable and `Sync`: share one across threads, give each thread its own
/// [`FastWorkspace`].
#[derive(Debug, Clone)]
pub struct FastTreeShap {
    num_features: usize,
    base_margin: f64,
    expected_value: f64,
    trees: Vec<TreeKind>,
    nodes: Vec<FastNode>,
    leaves: Vec<FastLeaf>,
    leaf_features: Vec<u32>,
    table: Vec<f64>,
    max_nodes: usize,
    path_len: usize,
    narrow_nodes: Vec<NarrowNode>,
    quad_nodes: Vec<QuadNode>,
    entries: Vec<Entry>,
    rows: Vec<[f64; NARROW_ROW]>,
}

/// Scratch memory for [`FastTreeShap::shap_values`], so a row allocates nothing.
#[derive(Debug, Clone)]
pub struct FastWorkspace {
    masks: Vec<u32>,
    path: Vec<PathElement>,
    /// The SHAP values being summed, then the margin, then a padding slot.
    acc: Vec<f64>,
}

impl FastTreeShap {
    /// Precomputes the tables of every tree of `model`.
    pub fn new(model: &Model) -> Self {
        let mut this = Self {
            num_features: model.num_features(),
            base_margin: model.base_margin(),
            expected_value: model.expected_value(),
            trees: Vec::with_capacity(model.num_trees()),
            nodes: Vec::new(),
            leaves: Vec::new(),
            leaf_features: Vec::new(),
            table: Vec::new(),
            max_nodes: 0,
            path_len: 0,
            narrow_nodes: Vec::new(),
            quad_nodes: Vec::new(),
            entries: Vec::new(),
            rows: Vec::new(),
        };
        for tree in &model.trees {
            if !this.add_table_tree(tree) {
                this.path_len = this.path_len.max(path_buffer_len(tree.depth));
                this.trees.push(TreeKind::Exact(Box::new(tree.clone())));
            }
        }
        this
    }

    pub fn workspace(&self) -> FastWorkspace {
        FastWorkspace {
            masks: vec![0; self.max_nodes],
            path: vec![PathElement::default(); self.path_len],
            acc: vec![0.0; self.num_features + 2],
        }
    }

    /// The base the SHAP values start from: [`Model::expected_value`].
    pub fn expected_value(&self) -> f64 {
        self.expected_value
    }

    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Trees in the narrow form (paths of at most four distinct features).
    pub fn narrow_trees(&self) -> usize {
        self.trees
            .iter()
            .filter(|t| matches!(t, TreeKind::Narrow { .. }))
            .count()
    }

    /// Trees explained by the exact recursion because their tables would be
    /// too large (0 for trees of depth up to 16 with few leaves).
    pub fn exact_trees(&self) -> usize {
        self.trees
            .iter()
            .filter(|t| matches!(t, TreeKind::Exact(_)))
            .count()
    }

    /// Writes the SHAP value of every feature of `row` into `phi` and returns
    /// the row's margin in double precision, exactly as
    /// [`TreeShap::shap_values`](crate::TreeShap::shap_values) does.
    ///
    /// Errors: [`Error::RowLength`](crate::Error::RowLength) when `row` or
    /// `phi` does not have one value per feature.
    pub fn shap_values(
        &self,
        row: &[f32],
        workspace: &mut FastWorkspace,
        phi: &mut [f64],
    ) -> Result<f64> {
        check_lengths(self.num_features, row, phi)?;
        let n = self.num_features;
        let acc = &mut workspace.acc;
        acc.fill(0.0);
        acc[n] = self.base_margin;
        for tree in &self.trees {
            match tree {
                TreeKind::Narrow {
                    len,
                    regular,
                    pairs,
                    quads,
                    entries,
                } => self.narrow_tree(
                    &self.narrow_nodes[regular.0..regular.1],
                    &self.narrow_nodes[pairs.0..pairs.1],
                    &self.quad_nodes[quads.0..quads.1],
                    &self.entries[entries.0..entries.1],
                    row,
                    &mut workspace.masks[..*len],
                    acc,
                ),
                TreeKind::Table {
                    first,
                    len,
                    leaf_first,
                    leaf_len,
                } => {
                    acc[n] += self.table_tree(
                        &self.nodes[*first..*first + *len],
                        &self.leaves[*leaf_first..*leaf_first + *leaf_len],
                        row,
                        &mut workspace.masks[..*len],
                        &mut acc[..n],
                    );
                }
                TreeKind::Exact(tree) => {
                    acc[n] += tree_shap(tree, row, &mut workspace.path, &mut acc[..n]);
                }
            }
        }
        phi.copy_from_slice(&acc[..n]);
        Ok(acc[n])
    }

    /// The per-row pass over a narrow tree: masks down the regular nodes,
    /// row indices at the block roots, then one fixed-width row per entry
    /// added into `acc` (SHAP values, margin, padding).
    #[inline]
    #[allow(clippy::too_many_arguments)] // the tree's slices, split out by the caller
    fn narrow_tree(
        &self,
        regular: &[NarrowNode],
        pairs: &[NarrowNode],
        quads: &[QuadNode],
        entries: &[Entry],
        row: &[f32],
        masks: &mut [u32],
        acc: &mut [f64],
    ) {
        masks[0] = 0;
        for NarrowNode { node, fast: n } in regular {
            let m = masks[*node as usize];
            let left = goes_left(n, row);
            let hot = m | n.set;
            let cold = m & !n.clear;
            let (l, r) = if left { (hot, cold) } else { (cold, hot) };
            masks[n.left as usize] = l;
            masks[n.right as usize] = r;
        }
        for NarrowNode { node, fast: n } in pairs {
            let m = &mut masks[*node as usize];
            *m = (*m << 1) | u32::from(goes_left(n, row));
        }
        for QuadNode {
            node,
            fast: [g, a, b],
        } in quads
        {
            let m = &mut masks[*node as usize];
            *m = (*m << 3)
                | u32::from(goes_left(g, row)) << 2
                | u32::from(goes_left(a, row)) << 1
                | u32::from(goes_left(b, row));
        }
        for e in entries {
            let r = &self.rows[e.rows as usize + masks[e.node as usize] as usize];
            for (&c, &f) in r.iter().zip(&e.features) {
                acc[f as usize] += c;
            }
        }
    }

    /// The per-row pass over one tree: masks down the tree, then table reads
    /// per leaf. Returns the value of the leaf the row reaches.
    #[inline]
    fn table_tree(
        &self,
        nodes: &[FastNode],
        leaves: &[FastLeaf],
        row: &[f32],
        masks: &mut [u32],
        phi: &mut [f64],
    ) -> f64 {
        masks[0] = 0;
        for (i, n) in nodes.iter().enumerate() {
            if n.left == 0 {
                continue; // a leaf: children of the root are never 0
            }
            let m = masks[i];
            let left = goes_left(n, row);
            let hot = m | n.set;
            let cold = m & !n.clear;
            let (l, r) = if left { (hot, cold) } else { (cold, hot) };
            masks[n.left as usize] = l;
            masks[n.right as usize] = r;
        }
        let mut value = 0.0;
        for leaf in leaves {
            let m = masks[leaf.node as usize];
            let d = leaf.d as usize;
            if m == (1u32 << d) - 1 {
                value = leaf.value;
            }
            let t = leaf.table as usize + m as usize * d;
            let f = leaf.features as usize;
            let contributions = &self.table[t..t + d];
            let features = &self.leaf_features[f..f + d];
            for (&c, &j) in contributions.iter().zip(features) {
                phi[j as usize] += c;
            }
        }
        value
    }

    /// Builds the narrow form of a tree whose leaves have at most [`NARROW`]
    /// path features each (`slots`: each node's path features and zero
    /// fractions; `fast`: the nodes with their mask bits).
    ///
    /// Leaves are grouped into blocks, each read with one table row: a node
    /// whose two children are pairs (four leaves, indexed by the node's mask
    /// and the three decisions), a node whose children are both leaves (two
    /// leaves, its mask and its decision), or a lone leaf (its mask).
    // Node ids are the currency here: the predicates and blocks take them.
    #[allow(clippy::needless_range_loop)]
    fn add_narrow_tree(&mut self, tree: &Tree, slots: &[Vec<(u32, f64)>], fast: &[FastNode]) {
        let n = tree.nodes.len();
        let nf = self.num_features as u32;
        let nodes = &tree.nodes;
        let is_pair = |i: usize| {
            let nd = &nodes[i];
            !nd.is_leaf() && nodes[nd.left as usize].is_leaf() && nodes[nd.right as usize].is_leaf()
        };
        let is_quad = |i: usize| {
            let nd = &nodes[i];
            !nd.is_leaf() && is_pair(nd.left as usize) && is_pair(nd.right as usize)
        };
        let mut in_quad = vec![false; n];
        let mut in_pair = vec![false; n];
        for i in 0..n {
            if is_quad(i) {
                in_quad[nodes[i].left as usize] = true;
                in_quad[nodes[i].right as usize] = true;
            }
            if is_pair(i) {
                in_pair[nodes[i].left as usize] = true;
                in_pair[nodes[i].right as usize] = true;
            }
        }
        let narrow = |i: usize| NarrowNode {
            node: i as u32,
            fast: fast[i],
        };
        let regular_first = self.narrow_nodes.len();
        for i in 0..n {
            if !nodes[i].is_leaf() && !is_pair(i) && !is_quad(i) {
                self.narrow_nodes.push(narrow(i));
            }
        }
        let pairs_first = self.narrow_nodes.len();
        for i in 0..n {
            if is_pair(i) && !in_quad[i] {
                self.narrow_nodes.push(narrow(i));
            }
        }
        let pairs_end = self.narrow_nodes.len();
        let quads_first = self.quad_nodes.len();
        for i in 0..n {
            if is_quad(i) {
                let (a, b) = (nodes[i].left as usize, nodes[i].right as usize);
                self.quad_nodes.push(QuadNode {
                    node: i as u32,
                    fast: [fast[i], fast[a], fast[b]],
                });
            }
        }
        let quads_end = self.quad_nodes.len();
        let entries_first = self.entries.len();

        // A leaf's contributions for every mask, in `leaf_table`'s layout.
        let leaf_table_of = |i: usize| {
            let zeros: Vec<f64> = slots[i].iter().map(|&(_, z)| z).collect();
            let mut table = Vec::new();
            leaf_table(f64::from(nodes[i].value), &zeros, &mut table);
            table
        };
        // One block: its root, its internal nodes (root first, parents before
        // children: their decisions are the low bits of the index, the first
        // node's the highest) and its leaves.
        let mut block = |root: usize, internal: &[usize], leaves: &[usize]| {
            let mut features: Vec<u32> = Vec::new();
            for &l in leaves {
                for &(f, _) in &slots[l] {
                    if !features.contains(&f) {
                        features.push(f);
                    }
                }
            }
            debug_assert!(features.len() <= NARROW_COLUMNS);
            let mut columns = [nf + 1; NARROW_ROW];
            columns[..features.len()].copy_from_slice(&features);
            columns[NARROW_COLUMNS] = nf;
            let tables: Vec<Vec<f64>> = leaves.iter().map(|&l| leaf_table_of(l)).collect();
            let k = internal.len();
            let entry = Entry {
                node: root as u32,
                rows: self.rows.len() as u32,
                features: columns,
            };
            let mut masks = vec![0u32; n];
            for index in 0..(1usize << (slots[root].len() + k)) {
                masks[root] = (index >> k) as u32;
                for (j, &i) in internal.iter().enumerate() {
                    let f = &fast[i];
                    let m = masks[i];
                    let (hot, cold) = (m | f.set, m & !f.clear);
                    let left = index >> (k - 1 - j) & 1 == 1;
                    masks[nodes[i].left as usize] = if left { hot } else { cold };
                    masks[nodes[i].right as usize] = if left { cold } else { hot };
                }
                let mut row = [0.0; NARROW_ROW];
                for (&l, table) in leaves.iter().zip(&tables) {
                    let d = slots[l].len();
                    let m = masks[l] as usize;
                    for (s, &(f, _)) in slots[l].iter().enumerate() {
                        let c = features.iter().position(|&g| g == f).unwrap_or(0);
                        row[c] += table[m * d + s];
                    }
                    if m == (1usize << d) - 1 {
                        row[NARROW_COLUMNS] += f64::from(nodes[l].value);
                    }
                }
                self.rows.push(row);
            }
            self.entries.push(entry);
        };
        let mut blocks = Vec::new();
        for i in 0..n {
            let nd = &nodes[i];
            let (l, r) = (nd.left as usize, nd.right as usize);
            if is_quad(i) {
                let (a, b) = (&nodes[l], &nodes[r]);
                let leaves = [
                    a.left as usize,
                    a.right as usize,
                    b.left as usize,
                    b.right as usize,
                ];
                blocks.push((i, vec![i, l, r], leaves.to_vec()));
            } else if is_pair(i) && !in_quad[i] {
                blocks.push((i, vec![i], vec![l, r]));
            } else if nd.is_leaf() && !in_pair[i] {
                blocks.push((i, vec![], vec![i]));
            }
        }
        for (root, internal, leaves) in &blocks {
            block(*root, internal, leaves);
        }
        self.max_nodes = self.max_nodes.max(n);
        self.trees.push(TreeKind::Narrow {
            len: n,
            regular: (regular_first, pairs_first),
            pairs: (pairs_first, pairs_end),
            quads: (quads_first, quads_end),
            entries: (entries_first, self.entries.len()),
        });
    }

    /// Builds the table form of `tree`; false (and nothing added) when the
    /// tree is too deep for it.
    fn add_table_tree(&mut self, tree: &Tree) -> bool {
        // Per node: the path's distinct features (slot order) and their
        // cumulative cover shares, from the root down (breadth-first order
        // sees parents first).
        let n = tree.nodes.len();
        let mut slots: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        let mut fast = Vec::with_capacity(n);
        let mut table_entries = 0usize;
        for (i, node) in tree.nodes.iter().enumerate() {
            if node.is_leaf() {
                let d = slots[i].len();
                if d > MAX_PATH_FEATURES {
                    return false;
                }
                table_entries += (1usize << d) * d;
                fast.push(FastNode {
                    threshold: 0.0,
                    feature: 0,
                    left: 0,
                    right: 0,
                    default_left: false,
                    set: 0,
                    clear: 0,
                });
                continue;
            }
            let path = &slots[i];
            let existing = path.iter().position(|&(f, _)| f == node.feature);
            let (set, clear, slot) = match existing {
                Some(s) => (0, 1u32 << s.min(31), s),
                None => (1u32 << path.len().min(31), 0, path.len()),
            };
            let child_path = |share: f64| {
                let mut p = path.clone();
                if slot == p.len() {
                    p.push((node.feature, share));
                } else {
                    p[slot].1 *= share;
                }
                p
            };
            let (left_path, right_path) =
                (child_path(node.left_share), child_path(node.right_share));
            slots[node.left as usize] = left_path;
            slots[node.right as usize] = right_path;
            fast.push(FastNode {
                threshold: node.threshold,
                feature: node.feature,
                left: node.left,
                right: node.right,
                default_left: node.default_left,
                set,
                clear,
            });
        }
        let narrow = tree
            .nodes
            .iter()
            .zip(&slots)
            .all(|(node, path)| !node.is_leaf() || path.len() <= NARROW);
        if narrow {
            self.add_narrow_tree(tree, &slots, &fast);
            return true;
        }
        if table_entries > MAX_TABLE_ENTRIES || self.table.len() + table_entries > u32::MAX as usize
        {
            return false;
        }

        let first = self.nodes.len();
        let leaf_first = self.leaves.len();
        for (i, node) in tree.nodes.iter().enumerate() {
            if !node.is_leaf() {
                continue;
            }
            let path = &slots[i];
            let d = path.len();
            let leaf = FastLeaf {
                node: i as u32,
                value: f64::from(node.value),
                d: d as u32,
                features: self.leaf_features.len() as u32,
                table: self.table.len() as u32,
            };
            self.leaf_features.extend(path.iter().map(|&(f, _)| f));
            let zeros: Vec<f64> = path.iter().map(|&(_, z)| z).collect();
            leaf_table(leaf.value, &zeros, &mut self.table);
            self.leaves.push(leaf);
        }
        self.nodes.extend(fast);
        self.max_nodes = self.max_nodes.max(n);
        self.trees.push(TreeKind::Table {
            first,
            len: n,
            leaf_first,
            leaf_len: self.leaves.len() - leaf_first,
        });
        true
    }
}

/// Appends the 2^d × d contributions of a leaf with value `v` and path
/// zero fractions `z` (d = z.len()): entry `[m][i]` is φ_i when the row
/// satisfies exactly the path features in mask `m`.
///
/// Writing `R = m ∖ {i}`, the sum over `S ⊆ R` (other subsets vanish, their
/// `o_j` product is 0) factors into `Π_{j∈P∖m∖{i}} z_j · Σ_k w(k, d) e_{|R|−k}(z_R)`,
/// with `e` the elementary symmetric polynomials of the zero fractions in `R`.
fn leaf_table(v: f64, z: &[f64], table: &mut Vec<f64>) {
    let d = z.len();
    if d == 0 {
        return;
    }
    // w(k, d) = k! (d-k-1)! / d! = 1 / (d · C(d-1, k)).
    let mut weights = vec![0.0f64; d];
    let mut binomial = 1.0f64; // C(d-1, k)
    for (k, w) in weights.iter_mut().enumerate() {
        *w = 1.0 / (d as f64 * binomial);
        binomial = binomial * (d - 1 - k) as f64 / (k + 1) as f64;
    }
    let mut e = vec![0.0f64; d + 1];
    for m in 0..(1usize << d) {
        for i in 0..d {
            // e_0..e_|R| of the zero fractions in R = m ∖ {i}; and the
            // product of the zero fractions outside m (other than i).
            e.fill(0.0);
            e[0] = 1.0;
            let mut r = 0;
            let mut outside = 1.0;
            for (j, &zj) in z.iter().enumerate() {
                if j == i {
                    continue;
                }
                if m >> j & 1 == 1 {
                    r += 1;
                    for k in (1..=r).rev() {
                        e[k] += e[k - 1] * zj;
                    }
                } else {
                    outside *= zj;
                }
            }
            // Σ_{S ⊆ R} w(|S|, d) Π_{j∈R∖S} z_j = Σ_k w(k, d) e_{r−k}.
            let sum: f64 = (0..=r).map(|k| weights[k] * e[r - k]).sum();
            let o = (m >> i & 1) as f64;
            table.push(v * (o - z[i]) * outside * sum);
        }
    }
}

#[inline]
fn goes_left(n: &FastNode, row: &[f32]) -> bool {
    let x = row[n.feature as usize];
    if x.is_nan() {
        n.default_left
    } else {
        x < n.threshold
    }
}
