//! Signed checkpoints: C2SP signed notes (`c2sp.org/signed-note`) carrying
//! a C2SP checkpoint (`c2sp.org/tlog-checkpoint`), signed with Ed25519, and
//! witness cosignatures (`c2sp.org/tlog-cosignature`, version 1).
//!
//! A checkpoint's body is three lines: the log's origin, the tree size in
//! decimal, the root hash in standard base64. A note is the body, a blank
//! line, and one line per signature: `— <key name> <base64(key id ‖ sig)>`,
//! where the key id is the first 4 bytes of
//! SHA-256(name ‖ `\n` ‖ 0x01 ‖ public key) and the signature is over the
//! body. A verifier key is written `<name>+<key id, 8 hex>+<base64(0x01 ‖ public key)>`.
//!
//! A witness cosignature uses type byte 0x04 in its key id and signs
//! `cosignature/v1\ntime <t>\n` followed by the body; its signature bytes
//! are key id ‖ t (u64, big-endian seconds) ‖ Ed25519 signature.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The type byte of an Ed25519 note signature.
const ED25519: u8 = 0x01;
/// The type byte of a timestamped Ed25519 witness cosignature.
const COSIGNATURE_V1: u8 = 0x04;
/// The prefix of a signature line.
const DASH: &str = "\u{2014} ";

/// A malformed or unverifiable note or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a signed note: {0}")]
    Malformed(String),
    #[error("not a key: {0}")]
    BadKey(String),
    #[error("no signature by {0} on the note")]
    Unsigned(String),
    #[error("the signature of {0} does not verify: the note was changed or signed by another key")]
    BadSignature(String),
    #[error("not a checkpoint: {0}")]
    BadCheckpoint(String),
}

fn key_id(name: &str, kind: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadKey(format!(
            "the key name '{name}' must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

/// A checkpoint: what a log commits to at one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note body: origin, size and base64 root, each on its own line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Reads a note body (extension lines after the third are allowed and ignored).
    pub fn parse(body: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| {
            NoteError::BadCheckpoint("the first line (the origin) is empty".into())
        })?;
        let size = lines
            .next()
            .and_then(|s| {
                // Decimal, no sign, no leading zeros.
                (s == "0" || (!s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit())))
                    .then(|| s.parse::<u64>().ok())
                    .flatten()
            })
            .ok_or_else(|| {
                NoteError::BadCheckpoint("the second line is not a tree size in decimal".into())
            })?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or_else(|| {
                NoteError::BadCheckpoint(
                    "the third line is not a 32-byte root hash in base64".into(),
                )
            })?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: [u8; 4],
    /// What follows the key id.
    pub bytes: Vec<u8>,
}

/// A signed note: its body and its signatures (verified or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub body: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a note's text.
    pub fn parse(text: &str) -> Result<Note, NoteError> {
        let split = text
            .find("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let body = &text[..split + 1];
        if body.contains(|c: char| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed(
                "the body holds control characters".into(),
            ));
        }
        let sigs = &text[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the last signature line has no newline".into(),
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest = line.strip_prefix(DASH).ok_or_else(|| {
                NoteError::Malformed(format!("'{line}' is not a signature line ('— name sig')"))
            })?;
            let (name, sig) = rest.split_once(' ').ok_or_else(|| {
                NoteError::Malformed(format!("'{line}' has no signature after the key name"))
            })?;
            check_name(name)
                .map_err(|_| NoteError::Malformed(format!("'{name}' is not a key name")))?;
            let bytes = B64.decode(sig).map_err(|_| {
                NoteError::Malformed(format!("the signature of {name} is not base64"))
            })?;
            if bytes.len() < 5 {
                return Err(NoteError::Malformed(format!(
                    "the signature of {name} is too short"
                )));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: [bytes[0], bytes[1], bytes[2], bytes[3]],
                bytes: bytes[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signature lines".into()));
        }
        Ok(Note {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The note's text: body, blank line, signature lines.
    pub fn text(&self) -> String {
        let mut out = self.body.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.id.to_vec();
            raw.extend_from_slice(&s.bytes);
            out.push_str(&format!("{DASH}{} {}\n", s.name, B64.encode(raw)));
        }
        out
    }

    /// The checkpoint in the body.
    pub fn checkpoint(&self) -> Result<Checkpoint, NoteError> {
        Checkpoint::parse(&self.body)
    }
}

/// A log's (or a witness's) Ed25519 signing key with its name.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<NoteSigner, NoteError> {
        use rand::TryRngCore;
        check_name(name)?;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| NoteError::BadKey(format!("no randomness for a new key: {e}")))?;
        Ok(NoteSigner {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The private key in the signed-note format
    /// (`PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>`). Keep it secret.
    pub fn to_skey(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let mut raw = vec![ED25519];
        raw.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex(&key_id(&self.name, ED25519, &public)),
            B64.encode(raw)
        )
    }

    /// Reads a key written by [`NoteSigner::to_skey`].
    pub fn from_skey(text: &str) -> Result<NoteSigner, NoteError> {
        let bad =
            || NoteError::BadKey("not a signed-note private key (PRIVATE+KEY+name+id+key)".into());
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(bad)?;
        // Names hold no '+', ids are hex; the base64 key may hold '+'.
        let mut parts = rest.splitn(3, '+');
        let (name, id, raw) = (
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
        );
        check_name(name)?;
        let raw = B64.decode(raw).map_err(|_| bad())?;
        if raw.len() != 33 || raw[0] != ED25519 {
            return Err(bad());
        }
        let seed: [u8; 32] = raw[1..].try_into().map_err(|_| bad())?;
        let signer = NoteSigner {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        };
        if hex(&key_id(name, ED25519, &signer.public())) != id {
            return Err(NoteError::BadKey(
                "the key id does not match the key: the file was changed".into(),
            ));
        }
        Ok(signer)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key of note signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            kind: ED25519,
            key: self.key.verifying_key(),
        }
    }

    /// The verifier key of this key's witness cosignatures.
    pub fn cosignature_verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            kind: COSIGNATURE_V1,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `body` into a note.
    pub fn sign(&self, body: &str) -> Note {
        Note {
            body: body.to_owned(),
            signatures: vec![self.signature(body)],
        }
    }

    fn signature(&self, body: &str) -> NoteSignature {
        NoteSignature {
            name: self.name.clone(),
            id: key_id(&self.name, ED25519, &self.public()),
            bytes: self.key.sign(body.as_bytes()).to_bytes().to_vec(),
        }
    }

    /// Adds this key's witness cosignature, made at `time` (seconds since
    /// the epoch), to `note`, replacing an earlier one of the same key.
    pub fn cosign(&self, note: &mut Note, time: u64) {
        let message = cosigned_message(&note.body, time);
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.key.sign(message.as_bytes()).to_bytes());
        let id = key_id(&self.name, COSIGNATURE_V1, &self.public());
        note.signatures
            .retain(|s| !(s.name == self.name && s.id == id));
        note.signatures.push(NoteSignature {
            name: self.name.clone(),
            id,
            bytes,
        });
    }
}

fn cosigned_message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A verifier key: a note signer's or a witness's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    kind: u8,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads `<name>+<id>+<base64(type ‖ key)>`.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let bad = |why: &str| NoteError::BadKey(format!("'{}': {why}", vkey.trim()));
        // Names hold no '+', ids are hex; the base64 key may hold '+'.
        let mut parts = vkey.trim().splitn(3, '+');
        let (name, id, raw) = (
            parts.next().ok_or_else(|| bad("expected name+id+key"))?,
            parts.next().ok_or_else(|| bad("expected name+id+key"))?,
            parts.next().ok_or_else(|| bad("expected name+id+key"))?,
        );
        check_name(name)?;
        let raw = B64.decode(raw).map_err(|_| bad("the key is not base64"))?;
        if raw.len() != 33 || !(raw[0] == ED25519 || raw[0] == COSIGNATURE_V1) {
            return Err(bad("not an Ed25519 key (type 0x01 or 0x04)"));
        }
        let bytes: [u8; 32] = raw[1..].try_into().map_err(|_| bad("bad length"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 point"))?;
        if hex(&key_id(name, raw[0], &bytes)) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            kind: raw[0],
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn id(&self) -> [u8; 4] {
        key_id(&self.name, self.kind, &self.key.to_bytes())
    }

    /// `<name>+<id>+<base64(type ‖ key)>`.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![self.kind];
        raw.extend_from_slice(&self.key.to_bytes());
        format!("{}+{}+{}", self.name, hex(&self.id()), B64.encode(raw))
    }

    /// Checks this key's signature on `note`; for a witness key, returns
    /// the time of its cosignature.
    pub fn verify(&self, note: &Note) -> Result<Option<u64>, NoteError> {
        let id = self.id();
        let sig = note
            .signatures
            .iter()
            .find(|s| s.name == self.name && s.id == id)
            .ok_or_else(|| NoteError::Unsigned(self.to_vkey()))?;
        let bad = || NoteError::BadSignature(self.name.clone());
        match self.kind {
            ED25519 => {
                let s = ed25519_dalek::Signature::from_slice(&sig.bytes).map_err(|_| bad())?;
                self.key
                    .verify_strict(note.body.as_bytes(), &s)
                    .map_err(|_| bad())?;
                Ok(None)
            }
            _ => {
                if sig.bytes.len() != 8 + 64 {
                    return Err(bad());
                }
                let time = u64::from_be_bytes(sig.bytes[..8].try_into().map_err(|_| bad())?);
                let s = ed25519_dalek::Signature::from_slice(&sig.bytes[8..]).map_err(|_| bad())?;
                self.key
                    .verify_strict(cosigned_message(&note.body, time).as_bytes(), &s)
                    .map_err(|_| bad())?;
                Ok(Some(time))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.com/audit".into(),
            size: 42,
            root: [7; 32],
        }
    }

    #[test]
    fn a_signed_checkpoint_round_trips_and_verifies() {
        let signer = NoteSigner::generate("example.com/audit").unwrap();
        let note = signer.sign(&checkpoint().body());
        let text = note.text();
        assert!(text.starts_with("example.com/audit\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n\u{2014} example.com/audit "));
        let parsed = Note::parse(&text).unwrap();
        assert_eq!(parsed, note);
        assert_eq!(parsed.checkpoint().unwrap(), checkpoint());
        let vkey = signer.verifier().to_vkey();
        assert_eq!(
            NoteVerifier::parse(&vkey).unwrap().verify(&parsed),
            Ok(None)
        );
        let again = NoteSigner::from_skey(&signer.to_skey()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
    }

    #[test]
    fn a_changed_note_or_another_key_is_refused() {
        let signer = NoteSigner::generate("log").unwrap();
        let text = signer
            .sign(&checkpoint().body())
            .text()
            .replace("\n42\n", "\n43\n");
        let note = Note::parse(&text).unwrap();
        assert_eq!(
            signer.verifier().verify(&note),
            Err(NoteError::BadSignature("log".into()))
        );
        let other = NoteSigner::generate("log").unwrap();
        assert!(matches!(
            other.verifier().verify(&note),
            Err(NoteError::Unsigned(_))
        ));
        assert!(Note::parse("log\n1\n").is_err());
        assert!(Checkpoint::parse("log\n01\nAAAA\n").is_err());
    }

    #[test]
    fn a_witness_cosignature_is_checked_with_its_time() {
        let log = NoteSigner::generate("log").unwrap();
        let witness = NoteSigner::generate("witness.example").unwrap();
        let mut note = log.sign(&checkpoint().body());
        witness.cosign(&mut note, 1_700_000_000);
        let note = Note::parse(&note.text()).unwrap();
        assert_eq!(log.verifier().verify(&note), Ok(None));
        let vkey = witness.cosignature_verifier().to_vkey();
        assert_eq!(
            NoteVerifier::parse(&vkey).unwrap().verify(&note),
            Ok(Some(1_700_000_000))
        );
        // A note signature of the same key is not a cosignature.
        assert!(witness.verifier().verify(&note).is_err());
    }

    #[test]
    fn the_key_id_is_the_go_note_packages() {
        // golang.org/x/mod/sumdb/note's example key:
        // PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let v = NoteVerifier::parse(vkey).unwrap();
        assert_eq!(v.to_vkey(), vkey);
        let note = Note::parse("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").unwrap();
        assert_eq!(v.verify(&note), Ok(None));
        // Its private key (base64 with a '+') signs the same bytes.
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let signer = NoteSigner::from_skey(skey).unwrap();
        assert_eq!(signer.to_skey(), skey);
        assert_eq!(signer.sign(&note.body), note);
    }
}
