//! A witness: checks that each checkpoint it is shown extends the last one
//! it cosigned (a consistency proof between the two), then adds its own
//! cosignature (`c2sp.org/tlog-cosignature`). A log that forks, rolls back
//! or rewrites its history cannot get a witness's cosignature on both
//! versions, so a client that trusts the witness sees the fork.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::merkle::{verify_consistency, Hash};
use crate::note::{Checkpoint, Note, NoteError, NoteSigner, NoteVerifier};

/// Why a witness refuses a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("the checkpoint: {0}")]
    Note(#[from] NoteError),
    #[error("the checkpoint's origin is {got}; this witness follows {want}")]
    Origin { got: String, want: String },
    #[error("the log went back from {seen} leaves to {now}: it rolled back or forked")]
    RolledBack { seen: u64, now: u64 },
    #[error("the log shows two roots for {size} leaves: it forked")]
    Forked { size: u64 },
    #[error("the consistency proof from {first} to {second} leaves does not verify: the log rewrote its history ({why})")]
    Inconsistent {
        first: u64,
        second: u64,
        why: String,
    },
}

/// What a witness keeps between runs: the last checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessState {
    pub tree_size: u64,
    /// base64
    pub root_hash: String,
    /// The cosigned note.
    pub note: String,
}

/// Checks `note` (signed by `log`) against the last cosigned `seen` with
/// `proof` (the consistency proof from `seen`'s size to the note's), and
/// cosigns it at `time` (seconds since the epoch).
pub fn witness(
    witness: &NoteSigner,
    log: &NoteVerifier,
    seen: Option<&WitnessState>,
    note: &str,
    proof: &[Hash],
    time: u64,
) -> Result<(Note, Checkpoint), WitnessError> {
    let mut note = Note::parse(note)?;
    log.verify(&note)?;
    let checkpoint = note.checkpoint()?;
    if checkpoint.origin != log.name() {
        return Err(WitnessError::Origin {
            got: checkpoint.origin,
            want: log.name().to_owned(),
        });
    }
    if let Some(seen) = seen {
        let old = Checkpoint::parse(&Note::parse(&seen.note)?.body)?;
        if checkpoint.size < old.size {
            return Err(WitnessError::RolledBack {
                seen: old.size,
                now: checkpoint.size,
            });
        }
        if checkpoint.size == old.size {
            if checkpoint.root != old.root {
                return Err(WitnessError::Forked {
                    size: checkpoint.size,
                });
            }
        } else if old.size > 0 {
            verify_consistency(
                old.size,
                checkpoint.size,
                proof,
                &old.root,
                &checkpoint.root,
            )
            .map_err(|e| WitnessError::Inconsistent {
                first: old.size,
                second: checkpoint.size,
                why: e.to_string(),
            })?;
        }
    }
    witness.cosign(&mut note, time);
    Ok((note, checkpoint))
}

impl WitnessState {
    pub fn new(note: &Note, checkpoint: &Checkpoint) -> Self {
        WitnessState {
            tree_size: checkpoint.size,
            root_hash: B64.encode(checkpoint.root),
            note: note.text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Nodes, Tree};

    fn signed(log: &NoteSigner, tree: &Tree, size: u64) -> String {
        log.sign(
            &Checkpoint {
                origin: log.name().into(),
                size,
                root: tree.root_at(size).unwrap(),
            }
            .body(),
        )
        .text()
    }

    #[test]
    fn a_witness_cosigns_what_extends_what_it_saw_and_nothing_else() {
        let log = NoteSigner::generate("log.example").unwrap();
        let w = NoteSigner::generate("witness.example").unwrap();
        let mut tree = Tree::new();
        for i in 0..20u8 {
            tree.append(&[i]);
        }
        let (first, cp) =
            witness(&w, &log.verifier(), None, &signed(&log, &tree, 7), &[], 1).unwrap();
        assert_eq!(w.cosignature_verifier().verify(&first), Ok(Some(1)));
        let seen = WitnessState::new(&first, &cp);
        // An honest extension.
        let proof = tree.consistency_proof(7, 20).unwrap();
        let (next, _) = witness(
            &w,
            &log.verifier(),
            Some(&seen),
            &signed(&log, &tree, 20),
            &proof,
            2,
        )
        .unwrap();
        assert_eq!(w.cosignature_verifier().verify(&next), Ok(Some(2)));
        // A fork: another history of 20 leaves, sharing nothing.
        let mut other = Tree::new();
        for i in 100..120u8 {
            other.append(&[i]);
        }
        let proof = other.consistency_proof(7, 20).unwrap();
        assert!(matches!(
            witness(
                &w,
                &log.verifier(),
                Some(&seen),
                &signed(&log, &other, 20),
                &proof,
                3
            ),
            Err(WitnessError::Inconsistent { .. })
        ));
        // Same size, another root; a smaller size.
        assert!(matches!(
            witness(
                &w,
                &log.verifier(),
                Some(&seen),
                &signed(&log, &other, 7),
                &[],
                3
            ),
            Err(WitnessError::Forked { size: 7 })
        ));
        assert!(matches!(
            witness(
                &w,
                &log.verifier(),
                Some(&seen),
                &signed(&log, &tree, 5),
                &[],
                3
            ),
            Err(WitnessError::RolledBack { seen: 7, now: 5 })
        ));
        // Not signed by the log it follows.
        let impostor = NoteSigner::generate("log.example").unwrap();
        assert!(matches!(
            witness(
                &w,
                &log.verifier(),
                Some(&seen),
                &signed(&impostor, &tree, 20),
                &[],
                3
            ),
            Err(WitnessError::Note(_))
        ));
    }
}
