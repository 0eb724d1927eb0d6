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
//! Trees of depth 4 or less (every tree of the shipped specialists) take a
//! fixed form: the tree is laid out as a complete tree of depth 4, a row's 15
//! comparisons make one word of decisions, and the leaves are grouped in four
//! blocks (the subtrees two levels down), each with a table of 32 rows of
//! six columns (five features and the block's share of the margin) indexed
//! by the five decisions that settle its leaves' masks. A row then costs 15
//! comparisons and four table rows per tree, in straight-line code.
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

/// Internal nodes of a complete binary tree of depth 4.
const D4_NODES: usize = 15;
/// Blocks of a depth-4 tree: the subtrees under the four nodes two levels down.
const D4_BLOCKS: usize = 4;
/// Rows of a block's table: one per combination of the five decisions that
/// settle its leaves (the root, the block root's parent, the block root and
/// the block root's two children).
const D4_ROWS: usize = 32;
/// Columns of a block's row: the (at most five) features those decisions
/// split on, then the block's share of the margin.
const D4_COLUMNS: usize = 6;

/// A tree of depth 4 or less in the fixed form: its internal nodes at their
/// places in a complete tree of depth 4 (heap order: the children of `p` are
/// `2p + 1` and `2p + 2`; places the tree does not use hold a split no row
/// takes left), and one table per block.
///
/// A row costs 15 comparisons, which make a 15-bit word of decisions, then
/// one table row per block, indexed by five bits of that word, added into
/// the SHAP values. No loops with data-dependent lengths, no node lists: the
/// compiler keeps the decisions in a register.
#[derive(Debug, Clone)]
struct Depth4 {
    feature: [u32; D4_NODES],
    threshold: [f32; D4_NODES],
    default_left: [bool; D4_NODES],
    /// Where each column of a block's rows goes: a feature, `num_features`
    /// (the margin) or `num_features + 1` (padding, never read).
    columns: [[u32; D4_COLUMNS]; D4_BLOCKS],
    rows: [[[f64; D4_COLUMNS]; D4_ROWS]; D4_BLOCKS],
}

/// Rows explained side by side by [`FastTreeShap::shap_values_batch`].
const LANES: usize = 8;

/// A workspace's per-row buffers, lent to the batch pass.
struct Scratch<'a> {
    acc: &'a mut Vec<f64>,
    masks: &'a mut Vec<u32>,
    path: &'a mut Vec<PathElement>,
}

impl Depth4 {
    /// [`add`](Self::add) for [`LANES`] rows at once: `x[f][l]` is feature
    /// `f` of row `l`, `acc[j][l]` its sums. Each lane does exactly the
    /// additions `add` does, in the same order.
    #[inline(always)]
    fn add_lanes(&self, x: &[[f32; LANES]], acc: &mut [[f64; LANES]]) {
        let mut bits = [0u32; LANES];
        for p in 0..D4_NODES {
            let xs = &x[self.feature[p] as usize];
            let (threshold, default_left) = (self.threshold[p], self.default_left[p]);
            for (b, &v) in bits.iter_mut().zip(xs) {
                let left = (v < threshold) | (v.is_nan() & default_left);
                *b |= u32::from(left) << p;
            }
        }
        for k in 0..D4_BLOCKS {
            let mut index = [0usize; LANES];
            for (i, &b) in index.iter_mut().zip(&bits) {
                *i = Self::index(b, k);
            }
            let rows = &self.rows[k];
            for (c, &f) in self.columns[k].iter().enumerate() {
                let sum = &mut acc[f as usize];
                for (s, &i) in sum.iter_mut().zip(&index) {
                    *s += rows[i][c];
                }
            }
        }
    }

    /// The row index of block `k` in the decisions word `bits` (bit `p`:
    /// the row goes left at place `p`).
    #[inline(always)]
    fn index(bits: u32, k: usize) -> usize {
        let q = 3 + k;
        let parent = (q - 1) / 2;
        ((bits & 1) << 4
            | (bits >> parent & 1) << 3
            | (bits >> q & 1) << 2
            | (bits >> (2 * q + 1) & 1) << 1
            | (bits >> (2 * q + 2) & 1)) as usize
    }

    /// Adds the tree's SHAP values of `row` to `acc[..n]` and its leaf value
    /// to `acc[n]` (`acc` has `n + 2` slots, the last for padding).
    #[inline(always)]
    fn add(&self, row: &[f32], acc: &mut [f64]) {
        let mut bits = 0u32;
        for p in 0..D4_NODES {
            let x = row[self.feature[p] as usize];
            let left = (x < self.threshold[p]) | (x.is_nan() & self.default_left[p]);
            bits |= u32::from(left) << p;
        }
        for k in 0..D4_BLOCKS {
            let r = &self.rows[k][Self::index(bits, k)];
            for (c, &f) in self.columns[k].iter().enumerate() {
                acc[f as usize] += r[c];
            }
        }
    }
}

#[derive(Debug, Clone)]
enum TreeKind {
    /// A tree of depth 4 or less: `depth4[i]`.
    Depth4(usize),
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
    depth4: Vec<Depth4>,
}

/// Scratch memory for [`FastTreeShap::shap_values`], so a row allocates nothing.
#[derive(Debug, Clone)]
pub struct FastWorkspace {
    masks: Vec<u32>,
    path: Vec<PathElement>,
    /// The SHAP values being summed, then the margin, then a padding slot.
    acc: Vec<f64>,
    /// A batch's rows and sums, by groups of [`LANES`] rows.
    lanes_x: Vec<[f32; LANES]>,
    lanes_acc: Vec<[f64; LANES]>,
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
            depth4: Vec::new(),
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
            lanes_x: Vec::new(),
            lanes_acc: Vec::new(),
        }
    }

    /// The base the SHAP values start from: [`Model::expected_value`].
    pub fn expected_value(&self) -> f64 {
        self.expected_value
    }

    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Trees in the fixed depth-4 form (every tree of depth 4 or less).
    pub fn depth4_trees(&self) -> usize {
        self.depth4.len()
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
                TreeKind::Depth4(i) => self.depth4[*i].add(row, acc),
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

    /// [`shap_values`](Self::shap_values) of many rows at once: `rows` holds
    /// `margins.len()` rows of one value per feature, one after another;
    /// `phi` receives their SHAP values in the same layout and `margins`
    /// their margins. Every value is bit for bit what `shap_values` gives
    /// for the row alone (each row sums the same terms in the same order).
    ///
    /// Faster per row than one call per row: the rows go through the model
    /// a tree at a time, so each tree's tables are read from memory once per
    /// batch instead of once per row (the shipped specialists' tables are
    /// about 1.8 MB each, more than a core's L2 cache holds for three).
    ///
    /// Errors: [`Error::RowLength`](crate::Error::RowLength) when `rows` or
    /// `phi` does not hold `margins.len()` rows of one value per feature.
    pub fn shap_values_batch(
        &self,
        rows: &[f32],
        workspace: &mut FastWorkspace,
        phi: &mut [f64],
        margins: &mut [f64],
    ) -> Result<()> {
        let n = self.num_features;
        let count = margins.len();
        for len in [rows.len(), phi.len()] {
            if len != count * n {
                return Err(crate::Error::RowLength {
                    expected: count * n,
                    actual: len,
                });
            }
        }
        if n == 0 {
            margins.fill(self.base_margin);
            return Ok(());
        }
        let stride = n + 2;
        let groups = count.div_ceil(LANES);
        // The rows by groups of LANES, transposed: x[g * n + f][l] is
        // feature f of row g * LANES + l (rows past the end are NaN, their
        // results unused).
        let x = &mut workspace.lanes_x;
        x.clear();
        x.resize(groups * n, [f32::NAN; LANES]);
        for (r, row) in rows.chunks_exact(n).enumerate() {
            let (g, l) = (r / LANES, r % LANES);
            for (slot, &v) in x[g * n..(g + 1) * n].iter_mut().zip(row) {
                slot[l] = v;
            }
        }
        // The sums likewise: acc[g * stride + j][l].
        let acc = &mut workspace.lanes_acc;
        acc.clear();
        acc.resize(groups * stride, [0.0; LANES]);
        for g in 0..groups {
            acc[g * stride + n] = [self.base_margin; LANES];
        }
        let scratch = Scratch {
            acc: &mut workspace.acc,
            masks: &mut workspace.masks,
            path: &mut workspace.path,
        };
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has AVX-512F (checked just above).
                unsafe {
                    self.trees_avx512(rows, x, acc, scratch);
                }
            } else if std::arch::is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has AVX2 (checked just above), the only
                // feature `trees_avx2` is compiled for.
                unsafe {
                    self.trees_avx2(rows, x, acc, scratch);
                }
            } else {
                self.trees_lanes(rows, x, acc, scratch);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.trees_lanes(rows, x, acc, scratch);
        for (r, (p, m)) in phi.chunks_exact_mut(n).zip(margins.iter_mut()).enumerate() {
            let (g, l) = (r / LANES, r % LANES);
            let a = &acc[g * stride..(g + 1) * stride];
            for (out, sum) in p.iter_mut().zip(a) {
                *out = sum[l];
            }
            *m = a[n][l];
        }
        Ok(())
    }

    /// [`trees_lanes`](Self::trees_lanes) compiled for AVX2: the lanes'
    /// comparisons, table reads (gathers) and sums become vector
    /// instructions.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn trees_avx2(
        &self,
        rows: &[f32],
        x: &[[f32; LANES]],
        acc: &mut [[f64; LANES]],
        scratch: Scratch<'_>,
    ) {
        self.trees_lanes(rows, x, acc, scratch);
    }

    /// [`trees_lanes`](Self::trees_lanes) compiled for AVX-512: a group's
    /// eight sums of one column fit one register.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn trees_avx512(
        &self,
        rows: &[f32],
        x: &[[f32; LANES]],
        acc: &mut [[f64; LANES]],
        scratch: Scratch<'_>,
    ) {
        self.trees_lanes(rows, x, acc, scratch);
    }

    /// Every tree, in order, for every group of rows: trees of depth 4 a
    /// group of [`LANES`] rows at a time, others a row at a time through a
    /// row-major copy of the row's sums (the same additions in the same
    /// order as [`shap_values`](Self::shap_values), so the same bits).
    #[inline(always)]
    fn trees_lanes(
        &self,
        rows: &[f32],
        x: &[[f32; LANES]],
        acc: &mut [[f64; LANES]],
        scratch: Scratch<'_>,
    ) {
        let n = self.num_features;
        let stride = n + 2;
        let groups = acc.len() / stride;
        for tree in &self.trees {
            if let TreeKind::Depth4(i) = tree {
                let t = &self.depth4[*i];
                for (xg, ag) in x.chunks_exact(n).zip(acc.chunks_exact_mut(stride)) {
                    t.add_lanes(xg, ag);
                }
                continue;
            }
            for (r, row) in rows.chunks_exact(n).enumerate() {
                let (g, l) = (r / LANES, r % LANES);
                debug_assert!(g < groups);
                let ag = &mut acc[g * stride..(g + 1) * stride];
                for (a, sum) in scratch.acc.iter_mut().zip(ag.iter()) {
                    *a = sum[l];
                }
                let a = &mut scratch.acc[..];
                match tree {
                    TreeKind::Table {
                        first,
                        len,
                        leaf_first,
                        leaf_len,
                    } => {
                        let nodes = &self.nodes[*first..*first + *len];
                        let leaves = &self.leaves[*leaf_first..*leaf_first + *leaf_len];
                        let masks = &mut scratch.masks[..*len];
                        a[n] += self.table_tree(nodes, leaves, row, masks, &mut a[..n]);
                    }
                    TreeKind::Exact(tree) => {
                        a[n] += tree_shap(tree, row, scratch.path, &mut a[..n]);
                    }
                    TreeKind::Depth4(_) => unreachable!("handled above"),
                }
                for (sum, a) in ag.iter_mut().zip(scratch.acc.iter()) {
                    sum[l] = *a;
                }
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

    /// Builds the depth-4 form of a tree of depth 4 or less (`slots`: each
    /// node's path features and zero fractions; `fast`: the nodes with their
    /// mask bits).
    ///
    /// Each leaf belongs to one block: the one under it or above it two
    /// levels down (a leaf higher up goes to its leftmost such place). For
    /// every combination of the block's five decisions, each of its leaves'
    /// mask follows from the decisions on its path, which are all among the
    /// five; the row sums the leaves' contributions per column, and the value
    /// of the leaf whose mask is full (the leaf the row reaches, if it is in
    /// this block) in the margin column.
    fn add_depth4_tree(&mut self, tree: &Tree, slots: &[Vec<(u32, f64)>], fast: &[FastNode]) {
        let nf = self.num_features as u32;
        let nodes = &tree.nodes;
        // The node at each place of the complete tree, if any.
        let mut at = [None::<usize>; 2 * D4_NODES + 1];
        at[0] = Some(0);
        for p in 0..D4_NODES {
            if let Some(i) = at[p].filter(|&i| !nodes[i].is_leaf()) {
                at[2 * p + 1] = Some(nodes[i].left as usize);
                at[2 * p + 2] = Some(nodes[i].right as usize);
            }
        }
        let mut t = Box::new(Depth4 {
            feature: [0; D4_NODES],
            threshold: [f32::NEG_INFINITY; D4_NODES],
            default_left: [false; D4_NODES],
            columns: [[nf + 1; D4_COLUMNS]; D4_BLOCKS],
            rows: [[[0.0; D4_COLUMNS]; D4_ROWS]; D4_BLOCKS],
        });
        let mut blocks: [Vec<usize>; D4_BLOCKS] = Default::default();
        for (p, i) in at.iter().enumerate() {
            let Some(i) = *i else { continue };
            let node = &nodes[i];
            if !node.is_leaf() {
                // Depth 4 at most: internal nodes are within the first 15 places.
                t.feature[p] = node.feature;
                t.threshold[p] = node.threshold;
                t.default_left[p] = node.default_left;
                continue;
            }
            let mut q = p;
            while q > 6 {
                q = (q - 1) / 2;
            }
            let k = match q {
                0 => 0,
                1 | 2 => 2 * q + 1 - 3,
                _ => q - 3,
            };
            blocks[k].push(p);
        }
        for (k, leaves) in blocks.iter().enumerate() {
            let q = 3 + k;
            let mut features: Vec<u32> = Vec::new();
            for &p in leaves {
                for &(f, _) in &slots[at[p].expect("a leaf's place")] {
                    if !features.contains(&f) {
                        features.push(f);
                    }
                }
            }
            debug_assert!(features.len() < D4_COLUMNS);
            t.columns[k][..features.len()].copy_from_slice(&features);
            t.columns[k][D4_COLUMNS - 1] = nf;
            let tables: Vec<Vec<f64>> = leaves
                .iter()
                .map(|&p| {
                    let i = at[p].expect("a leaf's place");
                    let zeros: Vec<f64> = slots[i].iter().map(|&(_, z)| z).collect();
                    let mut table = Vec::new();
                    leaf_table(f64::from(nodes[i].value), &zeros, &mut table);
                    table
                })
                .collect();
            for index in 0..D4_ROWS {
                let mut bits = 0u32;
                for (b, place) in [0, (q - 1) / 2, q, 2 * q + 1, 2 * q + 2]
                    .into_iter()
                    .enumerate()
                {
                    bits |= ((index >> (4 - b) & 1) as u32) << place;
                }
                debug_assert_eq!(Depth4::index(bits, k), index);
                let row = &mut t.rows[k][index];
                for (&p, table) in leaves.iter().zip(&tables) {
                    let i = at[p].expect("a leaf's place");
                    let m = path_mask(p, bits, &at, fast);
                    let d = slots[i].len();
                    for (s, &(f, _)) in slots[i].iter().enumerate() {
                        let c = features.iter().position(|&g| g == f).unwrap_or(0);
                        row[c] += table[m * d + s];
                    }
                    if m == (1usize << d) - 1 {
                        row[D4_COLUMNS - 1] += f64::from(nodes[i].value);
                    }
                }
            }
        }
        self.trees.push(TreeKind::Depth4(self.depth4.len()));
        self.depth4.push(*t);
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
        if tree.depth <= 4 {
            self.add_depth4_tree(tree, &slots, &fast);
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

/// The mask of the leaf at place `p` of a depth-4 tree for the decisions
/// `bits`: down its path, each node sets its bit in the branch taken (a
/// feature new on the path) or clears it in the branch not taken (a feature
/// seen higher up), as the per-row pass of the table form does.
fn path_mask(p: usize, bits: u32, at: &[Option<usize>], fast: &[FastNode]) -> usize {
    let mut path = Vec::with_capacity(5);
    let mut v = p;
    while v > 0 {
        path.push(v);
        v = (v - 1) / 2;
    }
    let mut m = 0u32;
    let mut parent = 0usize;
    for &child in path.iter().rev() {
        let n = &fast[at[parent].expect("a node on the path")];
        let left = bits >> parent & 1 == 1;
        let (hot, cold) = (m | n.set, m & !n.clear);
        let took = (child == 2 * parent + 1) == left;
        m = if took { hot } else { cold };
        parent = child;
    }
    m as usize
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
