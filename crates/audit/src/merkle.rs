//! An RFC 9162 Merkle tree: SHA-256, leaf hash `SHA-256(0x00 ‖ leaf)`, node
//! hash `SHA-256(0x01 ‖ left ‖ right)`, and a tree of `n` leaves split at the
//! largest power of two below `n` (the left subtree full, the right one the
//! rest), as Certificate Transparency defines it.
//!
//! A [`Frontier`] is what appending needs: the roots of the full subtrees
//! the tree is made of, one per set bit of its size, so an append costs
//! O(log n) time and the state O(log n) space. A [`Tree`] also keeps every
//! full subtree's hash (2n hashes in all), from which it computes the root
//! of any past size and inclusion and consistency proofs in O(log² n)
//! hash lookups. The verifiers are RFC 9162's algorithms, §2.1.3.2 and
//! §2.1.4.2, word for word.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A leaf's hash: `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// An interior node's hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the tree has {have} leaves; a tree of {asked} was asked for")]
    SizeOutOfRange { asked: u64, have: u64 },
    #[error("a consistency proof needs the first size ({first}) not above the second ({second})")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("the proof has {got} hashes; a proof for these sizes has {want}")]
    WrongLength { got: usize, want: usize },
    #[error("the proof does not lead to the root it was checked against")]
    RootMismatch,
}

/// The largest power of two strictly below `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The append state of a tree: its size and the roots of the full
/// subtrees it is made of, largest (leftmost) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frontier of a tree of `size` leaves, from the hashes of its
    /// full subtrees (`node(level, index)`), largest first.
    pub fn from_nodes<E>(
        size: u64,
        mut node: impl FnMut(u32, u64) -> Result<Hash, E>,
    ) -> Result<Frontier, E> {
        let mut roots = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                roots.push(node(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Frontier { size, roots })
    }

    /// Appends a leaf by its hash. `completed` is called with the level,
    /// the index within the level and the hash of every full subtree the
    /// leaf completes, from the leaf itself (level 0) up.
    pub fn append(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut index = self.size;
        completed(0, index, &leaf);
        self.roots.push(leaf);
        let mut level = 0;
        while index & 1 == 1 {
            let right = self.roots.pop().expect("a set bit has its subtree");
            let left = self.roots.pop().expect("a set bit has its subtree");
            let parent = node_hash(&left, &right);
            level += 1;
            index >>= 1;
            completed(level, index, &parent);
            self.roots.push(parent);
        }
        self.size += 1;
    }

    /// The root of the tree as it is now.
    pub fn root(&self) -> Hash {
        let mut roots = self.roots.iter().rev();
        let Some(last) = roots.next() else {
            return empty_root();
        };
        roots.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Where the hashes of a tree's full subtrees come from: memory ([`Tree`])
/// or files ([`crate::TreeStore`]). `node(level, index)` is the hash of
/// leaves `index·2^level .. (index+1)·2^level`, for full subtrees only.
pub trait Nodes {
    type Error: From<ProofError>;

    /// Leaves in the tree now.
    fn size(&self) -> u64;

    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;

    /// The root the tree had at `size` leaves.
    fn root_at(&self, size: u64) -> Result<Hash, Self::Error> {
        check_size(size, self.size())?;
        if size == 0 {
            return Ok(empty_root());
        }
        subtree(self, 0, size)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves, from
    /// the leaf's sibling up (RFC 9162 §2.1.3.1).
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Self::Error> {
        check_size(size, self.size())?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size }.into());
        }
        let mut out = Vec::with_capacity(64);
        path(self, index, 0, size, &mut out)?;
        Ok(out)
    }

    /// The proof that the tree of `first` leaves is a prefix of the tree
    /// of `second` leaves (RFC 9162 §2.1.4.1); empty when `first` is 0 or
    /// equals `second`.
    fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, Self::Error> {
        check_size(second, self.size())?;
        if first > second {
            return Err(ProofError::SizesOutOfOrder { first, second }.into());
        }
        let mut out = Vec::with_capacity(64);
        if first > 0 && first < second {
            subproof(self, first, 0, second, true, &mut out)?;
        }
        Ok(out)
    }
}

fn check_size(size: u64, have: u64) -> Result<(), ProofError> {
    if size > have {
        return Err(ProofError::SizeOutOfRange { asked: size, have });
    }
    Ok(())
}

/// The hash of leaves `start..end`, a subtree as RFC 9162's recursion cuts
/// it: full and aligned, or a full left part and the rest.
fn subtree<N: Nodes + ?Sized>(nodes: &N, start: u64, end: u64) -> Result<Hash, N::Error> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return nodes.node(level, start >> level);
    }
    let k = split(n);
    Ok(node_hash(
        &subtree(nodes, start, start + k)?,
        &subtree(nodes, start + k, end)?,
    ))
}

fn path<N: Nodes + ?Sized>(
    nodes: &N,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(nodes, m, start, start + k, out)?;
        out.push(subtree(nodes, start + k, end)?);
    } else {
        path(nodes, m - k, start + k, end, out)?;
        out.push(subtree(nodes, start, start + k)?);
    }
    Ok(())
}

fn subproof<N: Nodes + ?Sized>(
    nodes: &N,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree(nodes, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, start, start + k, whole, out)?;
        out.push(subtree(nodes, start + k, end)?);
    } else {
        subproof(nodes, m - k, start + k, end, false, out)?;
        out.push(subtree(nodes, start, start + k)?);
    }
    Ok(())
}

/// A Merkle tree in memory that keeps every full subtree's hash, so it can
/// prove inclusion and consistency for any size it has had (see [`Nodes`]).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    frontier: Frontier,
    /// `levels[l][j]`: the hash of leaves `j·2^l .. (j+1)·2^l`.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Appends a leaf (its data; the tree hashes it); returns its index.
    pub fn append(&mut self, leaf: &[u8]) -> u64 {
        self.append_hash(leaf_hash(leaf))
    }

    /// Appends a leaf by its leaf hash; returns its index.
    pub fn append_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.frontier.size();
        let levels = &mut self.levels;
        self.frontier.append(leaf, |level, at, hash| {
            let level = level as usize;
            if levels.len() == level {
                levels.push(Vec::new());
            }
            debug_assert_eq!(levels[level].len() as u64, at);
            levels[level].push(*hash);
        });
        index
    }

    /// The hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first()?.get(index as usize).copied()
    }

    /// The root of the current tree.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

impl Nodes for Tree {
    type Error = ProofError;

    fn size(&self) -> u64 {
        self.frontier.size()
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(ProofError::SizeOutOfRange {
                asked: (index + 1) << level,
                have: self.frontier.size(),
            })
    }
}

/// Shifts `a` and `b` right together until `a`'s lowest bit is set or `a`
/// is 0.
fn shift_to_set_bit(a: &mut u64, b: &mut u64) {
    while *a & 1 == 0 && *a != 0 {
        *a >>= 1;
        *b >>= 1;
    }
}

/// Checks that `leaf` (a leaf hash) is leaf `index` of the tree of `size`
/// leaves whose root is `root`, by its audit path (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return Err(ProofError::WrongLength {
                got: path.len(),
                want: inclusion_length(index, size),
            });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            shift_to_set_bit(&mut f, &mut s);
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength {
            got: path.len(),
            want: inclusion_length(index, size),
        });
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// How many hashes the audit path of leaf `index` in a tree of `size` has.
fn inclusion_length(index: u64, size: u64) -> usize {
    let (mut f, mut s, mut n) = (index, size - 1, 0);
    while s != 0 {
        if f & 1 == 1 || f == s {
            shift_to_set_bit(&mut f, &mut s);
        }
        f >>= 1;
        s >>= 1;
        n += 1;
    }
    n
}

/// Checks that the tree of `first` leaves with root `first_root` is a
/// prefix of the tree of `second` leaves with root `second_root`
/// (RFC 9162 §2.1.4.2). A tree is consistent with itself (empty proof,
/// equal roots), and the empty tree with every tree (empty proof).
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == second || first == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: 0,
            });
        }
        let matches = if first == 0 {
            *first_root == empty_root()
        } else {
            first_root == second_root
        };
        return if matches {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(first_root);
    }
    path.extend(proof.iter());
    let Some((start, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength { got: 0, want: 1 });
    };
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (**start, **start);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: proof.len() - 1,
            });
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            shift_to_set_bit(&mut f, &mut s);
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want: proof.len() + 1,
        });
    }
    if fr != *first_root || sr != *second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
