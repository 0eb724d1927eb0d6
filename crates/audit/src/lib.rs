//! The audit trail's core: an RFC 9162 (Certificate Transparency v2)
//! Merkle tree over a sequence of leaves, its inclusion and consistency
//! proofs, and their verification.
//!
//! # Layout
//!
//! - `leaf`: the bytes a record's leaf holds ([`leaf`], encoding v1).
//! - `merkle`: the hashes ([`leaf_hash`], [`node_hash`]), the tree's
//!   O(log n) append state ([`Frontier`]), a [`Tree`] that keeps every full
//!   subtree's hash so proofs can be served for any past tree size, and the
//!   verifiers ([`verify_inclusion`], [`verify_consistency`]); proofs come
//!   from any [`Nodes`] source.
//! - `store`: [`TreeStore`], the tree in files, one per level, recovered
//!   from its leaves after a crash.
//! - `positions`: [`Positions`], where each leaf's record is on the log.
//! - `note`: C2SP signed notes and checkpoints ([`NoteSigner`],
//!   [`NoteVerifier`], [`Checkpoint`]), witness cosignatures.
//! - `trail`: [`AuditTrail`], all of it in one directory: appends,
//!   signed checkpoints, inclusion and consistency proofs.
//! - `service`: [`AuditService`], the consumer of every topic on the
//!   service runtime.
//! - `verify`: [`verify`], the trail against the log and the signatures.
//! - `export`: [`export`], records with their proofs for a verifier without the server.
//! - `witness`: [`witness()`], cosigning checkpoints that extend the last one seen.
//! - `http`: [`api_router`], checkpoints, proofs and verification for auditors.

mod export;
mod http;
mod leaf;
mod merkle;
mod note;
mod positions;
mod service;
mod store;
mod trail;
mod verify;
mod witness;

pub use export::{export, ExportError, ExportReport, PYTHON_VERIFIER};
pub use http::{api_router, AuditApi};
pub use leaf::{leaf, leaf_at, LeafError, LEAF_TAG};

pub use merkle::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, Frontier, Hash, Nodes,
    ProofError, Tree,
};
pub use note::{Checkpoint, Note, NoteError, NoteSignature, NoteSigner, NoteVerifier};
pub use positions::{PositionIndex, Positions, RecordPosition};
pub use service::{AuditOptions, AuditService, SharedTrail, CHECKPOINT_TOPIC};
pub use store::{StoreError, TreeStore};
pub use trail::{
    read_checkpoints, record_hash, AuditTrail, InclusionProof, Opened, SignedCheckpoint, TrailError,
};
pub use verify::{
    check_checkpoints, verify, Issue, IssueKind, TrailSnapshot, VerifyError, VerifyReport,
};
pub use witness::{witness, WitnessError, WitnessState};
