//! The audit trail in a directory: the tree, the positions index, the
//! signing key and the signed checkpoints.
//!
//! | file | what |
//! |---|---|
//! | `signing.key` | the Ed25519 key checkpoints are signed with (signed-note private key format, 0600); its name is the trail's origin |
//! | `topics`, `positions` | where each leaf's record is ([`Positions`]) |
//! | `tree/level-LL.hashes` | the Merkle tree ([`TreeStore`]) |
//! | `checkpoints.jsonl` | every signed checkpoint, one JSON object a line: `tree_size`, `root_hash` (base64), `note` |
//!
//! An append writes and syncs positions first, then leaves: a crash leaves
//! at most positions without leaves, cut back on open. The levels above
//! the leaves are synced before each checkpoint is signed; after a crash
//! the parents of leaves newer than the last checkpoint are recomputed
//! from the leaves. A checkpoint is signed only over leaves already synced.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use ultracore_log::Record;

use crate::merkle::{leaf_hash, Hash, Nodes};
use crate::note::{Checkpoint, Note, NoteError, NoteSigner, NoteVerifier};
use crate::positions::{Positions, RecordPosition};
use crate::store::{StoreError, TreeStore};
use crate::{leaf, LeafError};

/// A failure of the trail.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: NoteError,
    },
    #[error("{0}")]
    Leaf(#[from] LeafError),
    #[error("no record at {topic}/{partition}@{offset} in the audit trail{why}")]
    NotAudited {
        topic: String,
        partition: u32,
        offset: u64,
        why: String,
    },
    #[error("{0}")]
    BadRequest(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrailError + '_ {
    move |source| TrailError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A checkpoint with its signed note, as stored and published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub tree_size: u64,
    /// The root hash, base64.
    pub root_hash: String,
    /// The C2SP signed note.
    pub note: String,
}

impl SignedCheckpoint {
    /// The note, parsed.
    pub fn parse(&self) -> Result<(Note, Checkpoint), NoteError> {
        let note = Note::parse(&self.note)?;
        let checkpoint = note.checkpoint()?;
        Ok((note, checkpoint))
    }
}

/// A record's inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// SHA-256(0x00 ‖ leaf), base64.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up, base64.
    pub audit_path: Vec<String>,
}

/// The leaf hash of a record.
pub fn record_hash(record: &Record) -> Result<Hash, LeafError> {
    Ok(leaf_hash(&leaf(record)?))
}

/// The default origin of a new trail: unique per trail.
fn default_origin() -> Result<String, NoteError> {
    use rand::TryRngCore;
    let mut id = [0u8; 8];
    rand::rngs::OsRng
        .try_fill_bytes(&mut id)
        .map_err(|e| NoteError::BadKey(format!("no randomness for the trail's id: {e}")))?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("ultracore.audit/{hex}"))
}

/// The audit trail (see the module docs).
pub struct AuditTrail {
    dir: PathBuf,
    tree: TreeStore,
    positions: Positions,
    signer: NoteSigner,
    checkpoints_path: PathBuf,
    checkpoints: std::fs::File,
    latest: Option<SignedCheckpoint>,
}

impl std::fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditTrail")
            .field("dir", &self.dir)
            .field("size", &self.tree.size())
            .finish_non_exhaustive()
    }
}

/// What opening a trail found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// A new signing key was made: its verifier key.
    pub new_key: Option<String>,
    /// Positions cut back to the tree after a crash.
    pub positions_cut: u64,
}

impl AuditTrail {
    /// Opens the trail in `dir`, creating it (and its signing key, named
    /// `origin` or a fresh `ultracore.audit/<random id>`) when missing.
    pub fn open(dir: &Path, origin: Option<&str>) -> Result<(AuditTrail, Opened), TrailError> {
        ultracore_log::files::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join("signing.key");
        let key_err = |source| TrailError::Key {
            path: key_path.clone(),
            source,
        };
        let (signer, new_key) = if key_path.exists() {
            let text = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let signer = NoteSigner::from_skey(&text).map_err(key_err)?;
            if let Some(o) = origin.filter(|o| *o != signer.name()) {
                return Err(TrailError::BadRequest(format!(
                    "the trail in {} has the origin {}, not {o}: a trail keeps its origin; use another directory for another",
                    dir.display(),
                    signer.name()
                )));
            }
            (signer, None)
        } else {
            let name = match origin {
                Some(o) => o.to_owned(),
                None => default_origin().map_err(key_err)?,
            };
            let signer = NoteSigner::generate(&name).map_err(key_err)?;
            ultracore_log::files::write(&key_path, format!("{}\n", signer.to_skey()).as_bytes())
                .map_err(io(&key_path))?;
            let vkey = signer.verifier().to_vkey();
            (signer, Some(vkey))
        };
        let checkpoints_path = dir.join("checkpoints.jsonl");
        let (checkpoints, latest) = open_checkpoints(&checkpoints_path)?;
        // Every level was synced before the last checkpoint was signed.
        let trusted = latest
            .as_ref()
            .map_or(0, |c: &SignedCheckpoint| c.tree_size);
        let tree = TreeStore::open_trusting(dir.join("tree"), trusted)?;
        let mut positions = Positions::open(dir)?;
        let size = tree.size();
        let positions_cut = positions.len().saturating_sub(size);
        if positions.len() < size {
            return Err(StoreError::Corrupt(format!(
                "the tree has {size} leaves but the positions index only {}: it was changed or lost; `ultracore audit verify` says more",
                positions.len()
            ))
            .into());
        }
        positions.truncate(size)?;
        let trail = AuditTrail {
            dir: dir.to_owned(),
            tree,
            positions,
            signer,
            checkpoints_path,
            checkpoints,
            latest,
        };
        if let Some(latest) = &trail.latest {
            let (_, cp) = latest.parse().map_err(|e| {
                StoreError::Corrupt(format!("the last checkpoint does not parse: {e}"))
            })?;
            if cp.size > size || trail.tree.root_at(cp.size)? != cp.root {
                return Err(StoreError::Corrupt(format!(
                    "the tree ({size} leaves) does not have the root of the last checkpoint (size {}): its files were changed or lost",
                    cp.size
                ))
                .into());
            }
        }
        Ok((
            trail,
            Opened {
                new_key,
                positions_cut,
            },
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The trail's origin (the name of its signing key).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The verifier key of the trail's checkpoints.
    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    pub fn tree(&self) -> &TreeStore {
        &self.tree
    }

    /// Whether the record at `topic`/`partition`/`offset` is in the trail
    /// (below the partition's high-water mark).
    pub fn seen(&self, topic: &str, partition: u32, offset: u64) -> bool {
        self.positions
            .high_water(topic, partition)
            .is_some_and(|h| offset <= h)
    }

    /// Appends leaves (record position and leaf hash), skipping records at
    /// or below their partition's high-water mark; durable on return.
    /// Returns how many were appended.
    pub fn append(&mut self, leaves: &[(RecordPosition, Hash)]) -> Result<u64, TrailError> {
        let fresh: Vec<&(RecordPosition, Hash)> = leaves
            .iter()
            .filter(|(p, _)| !self.seen(&p.topic, p.partition, p.offset))
            .collect();
        // Within one call a partition's offsets rise (the log delivers them
        // in order); a repeat within the call is dropped too.
        let mut last: std::collections::HashMap<(&str, u32), u64> = Default::default();
        let fresh: Vec<&(RecordPosition, Hash)> = fresh
            .into_iter()
            .filter(|(p, _)| {
                let k = (p.topic.as_str(), p.partition);
                match last.get(&k) {
                    Some(o) if *o >= p.offset => false,
                    _ => {
                        last.insert(k, p.offset);
                        true
                    }
                }
            })
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        self.positions.append(
            fresh
                .iter()
                .map(|(p, _)| (p.topic.as_str(), p.partition, p.offset)),
        )?;
        self.positions.sync()?;
        let hashes: Vec<Hash> = fresh.iter().map(|(_, h)| *h).collect();
        self.tree.append(&hashes)?;
        self.tree.sync_leaves()?;
        Ok(hashes.len() as u64)
    }

    /// The latest signed checkpoint.
    pub fn latest(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// Leaves not yet covered by a checkpoint.
    pub fn unsigned(&self) -> u64 {
        self.size() - self.latest.as_ref().map_or(0, |c| c.tree_size)
    }

    /// Signs a checkpoint of the tree now (when it grew since the last)
    /// and appends it to the checkpoints file, synced.
    pub fn checkpoint(&mut self) -> Result<Option<SignedCheckpoint>, TrailError> {
        if self.latest.is_some() && self.unsigned() == 0 {
            return Ok(None);
        }
        // The levels above the leaves are trusted up to the last checkpoint
        // after a crash (see `TreeStore::open_trusting`).
        self.tree.sync()?;
        let checkpoint = Checkpoint {
            origin: self.origin().to_owned(),
            size: self.size(),
            root: self.root(),
        };
        let note = self.signer.sign(&checkpoint.body());
        let signed = SignedCheckpoint {
            tree_size: checkpoint.size,
            root_hash: B64.encode(checkpoint.root),
            note: note.text(),
        };
        let mut line = serde_json::to_string(&signed).map_err(|e| {
            TrailError::BadRequest(format!("the checkpoint does not serialize: {e}"))
        })?;
        line.push('\n');
        self.checkpoints
            .write_all(line.as_bytes())
            .map_err(io(&self.checkpoints_path))?;
        self.checkpoints
            .sync_data()
            .map_err(io(&self.checkpoints_path))?;
        self.latest = Some(signed.clone());
        Ok(Some(signed))
    }

    /// The inclusion proof of the record at `topic`/`partition`/`offset`
    /// in the tree of `tree_size` leaves (the latest checkpoint's by default).
    pub fn inclusion(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, TrailError> {
        let not = |why: String| TrailError::NotAudited {
            topic: topic.to_owned(),
            partition,
            offset,
            why,
        };
        let index = self
            .positions
            .leaf_of(topic, partition, offset)
            .ok_or_else(|| {
                not(": the auditor has not read it yet, or there is no such record".into())
            })?;
        let size = match tree_size {
            Some(s) => s,
            None => self.latest.as_ref().map_or(0, |c| c.tree_size),
        };
        if index >= size {
            return Err(not(format!(
                " of {size} leaves: it is leaf {index}; ask again after the next checkpoint, or name a larger tree_size (at most {})",
                self.size()
            )));
        }
        let path = self.tree.inclusion_proof(index, size)?;
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: size,
            leaf_hash: B64.encode(self.tree.node(0, index)?),
            audit_path: path.iter().map(|h| B64.encode(h)).collect(),
        })
    }

    /// The consistency proof from the tree of `first` leaves to that of `second`.
    pub fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, TrailError> {
        Ok(self.tree.consistency_proof(first, second)?)
    }
}

/// Reads the checkpoints file: every whole line (a torn last line is cut).
fn open_checkpoints(path: &Path) -> Result<(std::fs::File, Option<SignedCheckpoint>), TrailError> {
    let mut file = ultracore_log::files::open_options()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io(path))?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io(path))?;
    let whole = text.rfind('\n').map_or(0, |i| i + 1);
    if whole != text.len() {
        file.set_len(whole as u64).map_err(io(path))?;
    }
    let latest =
        match text[..whole].lines().last() {
            None => None,
            Some(line) => Some(serde_json::from_str(line).map_err(|e| {
                StoreError::Corrupt(format!("{}: the last line: {e}", path.display()))
            })?),
        };
    Ok((file, latest))
}

/// Every checkpoint of a checkpoints file, in order.
pub fn read_checkpoints(path: &Path) -> Result<Vec<SignedCheckpoint>, TrailError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        out.push(serde_json::from_str(line).map_err(|e| {
            TrailError::BadRequest(format!(
                "{} line {}: not a checkpoint ({e})",
                path.display(),
                n + 1
            ))
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::verify_inclusion;

    fn pos(topic: &str, partition: u32, offset: u64) -> RecordPosition {
        RecordPosition {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    #[test]
    fn appends_skip_what_was_seen_and_checkpoints_prove_inclusion() {
        let dir = tempfile::tempdir().unwrap();
        let (mut trail, opened) = AuditTrail::open(dir.path(), Some("test/audit")).unwrap();
        assert!(opened.new_key.unwrap().starts_with("test/audit+"));
        let leaves: Vec<(RecordPosition, Hash)> = (0..10)
            .map(|i| (pos("t", i % 2, u64::from(i / 2)), leaf_hash(&[i as u8])))
            .collect();
        assert_eq!(trail.append(&leaves[..6]).unwrap(), 6);
        // Redelivered with more: only the new ones count.
        assert_eq!(trail.append(&leaves).unwrap(), 4);
        let signed = trail.checkpoint().unwrap().unwrap();
        assert_eq!(signed.tree_size, 10);
        assert!(trail.checkpoint().unwrap().is_none());
        let (note, cp) = signed.parse().unwrap();
        trail.verifier().verify(&note).unwrap();
        let proof = trail.inclusion("t", 1, 3, None).unwrap();
        assert_eq!(proof.leaf_index, 7);
        let path: Vec<Hash> = proof
            .audit_path
            .iter()
            .map(|h| B64.decode(h).unwrap().try_into().unwrap())
            .collect();
        verify_inclusion(&leaf_hash(&[7]), 7, 10, &path, &cp.root).unwrap();
        assert!(matches!(
            trail.inclusion("t", 1, 9, None),
            Err(TrailError::NotAudited { .. })
        ));
        drop(trail);
        let (trail, opened) = AuditTrail::open(dir.path(), None).unwrap();
        assert_eq!(opened.new_key, None);
        assert_eq!(trail.size(), 10);
        assert_eq!(trail.latest(), Some(&signed));
        assert!(AuditTrail::open(dir.path(), Some("other")).is_err());
    }
}
