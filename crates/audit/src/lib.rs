//! The audit trail's core: an RFC 9162 (Certificate Transparency v2)
//! Merkle tree over a sequence of leaves, its inclusion and consistency
//! proofs, and their verification.
//!
//! # Layout
//!
//! - `merkle`: the hashes ([`leaf_hash`], [`node_hash`]), the tree's
//!   O(log n) append state ([`Frontier`]), a [`Tree`] that keeps every full
//!   subtree's hash so proofs can be served for any past tree size, and the
//!   verifiers ([`verify_inclusion`], [`verify_consistency`]).

mod merkle;

pub use merkle::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, Frontier, Hash,
    ProofError, Tree,
};
