//! The tree in files: `level-00.hashes` holds the leaf hashes in order,
//! `level-LL.hashes` the hashes of the full subtrees of 2^LL leaves, 32
//! bytes each. Appends go to the end of each file; proofs read the few
//! hashes they need with positioned reads, so the tree can grow past memory
//! and serve proofs for every size it has had.
//!
//! The leaf file is the truth. A crash can leave a torn hash at the end of
//! a file, or parents missing or in excess of what the leaves make: on open
//! the leaf file is cut to whole hashes, and every other level is cut to, or
//! completed up to, what the leaves make (parents recomputed from their
//! children). [`TreeStore::sync`] makes appended hashes durable.
//! Directories are created 0700 and files 0600.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::merkle::{node_hash, Frontier, Hash, Nodes, ProofError};

/// A failure of the tree's files, or a proof asked of sizes it never had.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The files disagree with each other in a way no crash leaves.
    #[error("the audit trail's files are inconsistent: {0}")]
    Corrupt(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

const HASH: u64 = 32;

struct Level {
    path: PathBuf,
    /// For reads (positioned) and syncs.
    file: File,
    /// Appends, buffered until the end of [`TreeStore::append`].
    writer: BufWriter<File>,
    /// Hashes in the file plus those buffered.
    len: u64,
    /// Hashes buffered and not yet written.
    buffered: u64,
    /// Appended since the last sync.
    dirty: bool,
}

impl Level {
    fn open(dir: &Path, level: u32) -> Result<Level, StoreError> {
        let path = dir.join(format!("level-{level:02}.hashes"));
        let file = ultracore_log::files::open_options()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        let bytes = file.metadata().map_err(io(&path))?.len();
        let writer = BufWriter::with_capacity(64 * 1024, file.try_clone().map_err(io(&path))?);
        Ok(Level {
            len: bytes / HASH,
            buffered: 0,
            dirty: false,
            path,
            file,
            writer,
        })
    }

    fn truncate(&mut self, len: u64) -> Result<(), StoreError> {
        self.flush()?;
        self.file.set_len(len * HASH).map_err(io(&self.path))?;
        self.len = len;
        Ok(())
    }

    fn push(&mut self, hash: &Hash) -> Result<(), StoreError> {
        self.writer.write_all(hash).map_err(io(&self.path))?;
        self.len += 1;
        self.buffered += 1;
        self.dirty = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffered > 0 {
            self.writer.flush().map_err(io(&self.path))?;
            self.buffered = 0;
        }
        Ok(())
    }

    fn read(&self, index: u64) -> Result<Hash, StoreError> {
        let mut out = [0u8; 32];
        self.file
            .read_exact_at(&mut out, index * HASH)
            .map_err(io(&self.path))?;
        Ok(out)
    }
}

/// The Merkle tree kept in a directory (see the module docs).
pub struct TreeStore {
    dir: PathBuf,
    levels: Vec<Level>,
    frontier: Frontier,
}

impl std::fmt::Debug for TreeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeStore")
            .field("dir", &self.dir)
            .field("size", &self.frontier.size())
            .finish()
    }
}

impl TreeStore {
    /// Opens (creating if need be) the tree in `dir`, repairing what a
    /// crash left (see the module docs).
    pub fn open(dir: impl AsRef<Path>) -> Result<TreeStore, StoreError> {
        TreeStore::open_trusting(dir, u64::MAX)
    }

    /// Like [`TreeStore::open`], but trusts the levels above the leaves
    /// only for the first `trusted` leaves (the size of the last
    /// [`TreeStore::sync`]): the parents of later leaves may not have
    /// reached the disk before a power loss, and are recomputed.
    pub fn open_trusting(dir: impl AsRef<Path>, trusted: u64) -> Result<TreeStore, StoreError> {
        let dir = dir.as_ref().to_owned();
        ultracore_log::files::create_dir_all(&dir).map_err(io(&dir))?;
        let mut leaves = Level::open(&dir, 0)?;
        let size = leaves.len;
        // A torn last hash: cut to whole hashes.
        let bytes = leaves.file.metadata().map_err(io(&leaves.path))?.len();
        if bytes != size * HASH {
            leaves.truncate(size)?;
        }
        let mut store = TreeStore {
            dir,
            levels: vec![leaves],
            frontier: Frontier::new(),
        };
        let mut level = 1;
        while size >> level > 0 || store.dir.join(format!("level-{level:02}.hashes")).exists() {
            let mut l = Level::open(&store.dir, level)?;
            let want = size >> level;
            let keep = l.len.min(want).min(trusted >> level);
            if l.len != keep || l.file.metadata().map_err(io(&l.path))?.len() != l.len * HASH {
                l.truncate(keep)?;
            }
            store.levels.push(l);
            // Parents the crash left unwritten.
            for index in store.levels[level as usize].len..want {
                let below = &store.levels[level as usize - 1];
                let parent = node_hash(&below.read(2 * index)?, &below.read(2 * index + 1)?);
                store.levels[level as usize].push(&parent)?;
            }
            store.levels[level as usize].flush()?;
            level += 1;
        }
        store.frontier = Frontier::from_nodes(size, |level, index| {
            store.levels[level as usize].read(index)
        })?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The root of the tree now.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Appends leaves by their leaf hashes (one write per level for the
    /// lot); returns the index of the first. Durable after
    /// [`TreeStore::sync`].
    pub fn append(&mut self, leaves: &[Hash]) -> Result<u64, StoreError> {
        let first = self.frontier.size();
        for leaf in leaves {
            let mut failed = None;
            let levels = &mut self.levels;
            let dir = &self.dir;
            self.frontier.append(*leaf, |level, _, hash| {
                if failed.is_some() {
                    return;
                }
                let level = level as usize;
                if levels.len() == level {
                    match Level::open(dir, level as u32) {
                        Ok(l) => levels.push(l),
                        Err(e) => {
                            failed = Some(e);
                            return;
                        }
                    }
                }
                if let Err(e) = levels[level].push(hash) {
                    failed = Some(e);
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
        }
        self.flush()?;
        Ok(first)
    }

    /// Writes what is buffered and makes every level durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        for l in &mut self.levels {
            l.flush()?;
        }
        // Parents before leaves: the leaf file is the truth on recovery.
        for l in self.levels.iter_mut().rev() {
            if l.dirty {
                l.file.sync_data().map_err(io(&l.path))?;
                l.dirty = false;
            }
        }
        Ok(())
    }

    /// Writes what is buffered and makes the leaves durable (the parents
    /// are recomputed from them after a crash; see
    /// [`TreeStore::open_trusting`]).
    pub fn sync_leaves(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        let leaves = &mut self.levels[0];
        if leaves.dirty {
            leaves.file.sync_data().map_err(io(&leaves.path))?;
            leaves.dirty = false;
        }
        Ok(())
    }

    /// Writes what is buffered, so reads see it.
    fn flush(&mut self) -> Result<(), StoreError> {
        for l in &mut self.levels {
            l.flush()?;
        }
        Ok(())
    }
}

impl Nodes for TreeStore {
    type Error = StoreError;

    fn size(&self) -> u64 {
        self.frontier.size()
    }

    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        let l = self
            .levels
            .get(level as usize)
            .filter(|l| index < l.len)
            .ok_or(ProofError::SizeOutOfRange {
                asked: (index + 1) << level,
                have: self.frontier.size(),
            })?;
        l.read(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion, Tree};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn the_store_proves_what_the_tree_in_memory_proves() {
        let dir = tempfile::tempdir().unwrap();
        let d = leaves(100);
        let mut store = TreeStore::open(dir.path()).unwrap();
        let mut tree = Tree::new();
        for chunk in d.chunks(7) {
            store.append(chunk).unwrap();
            for l in chunk {
                tree.append_hash(*l);
            }
        }
        store.sync().unwrap();
        assert_eq!(store.root(), tree.root());
        let store = TreeStore::open(dir.path()).unwrap();
        assert_eq!(store.size(), 100);
        assert_eq!(store.root(), tree.root());
        for n in [1, 2, 3, 17, 64, 99, 100] {
            let root = store.root_at(n).unwrap();
            assert_eq!(root, tree.root_at(n).unwrap());
            for m in [0, n / 2, n - 1] {
                let p = store.inclusion_proof(m, n).unwrap();
                assert_eq!(p, tree.inclusion_proof(m, n).unwrap());
                verify_inclusion(&d[m as usize], m, n, &p, &root).unwrap();
            }
            let c = store.consistency_proof(n / 3, n).unwrap();
            assert_eq!(c, tree.consistency_proof(n / 3, n).unwrap());
            verify_consistency(n / 3, n, &c, &store.root_at(n / 3).unwrap(), &root).unwrap();
        }
        assert!(matches!(
            store.inclusion_proof(0, 101),
            Err(StoreError::Proof(ProofError::SizeOutOfRange {
                asked: 101,
                have: 100
            }))
        ));
    }

    #[test]
    fn parents_past_the_trusted_size_are_recomputed_from_the_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TreeStore::open(dir.path()).unwrap();
        store.append(&leaves(16)).unwrap();
        store.sync().unwrap();
        store.append(&leaves(20)).unwrap();
        store.sync_leaves().unwrap();
        let (root, proof) = (store.root(), store.inclusion_proof(30, 36).unwrap());
        drop(store);
        // Parents of the unsynced leaves: garbage a power loss could leave.
        for level in 1..=5 {
            let path = dir.path().join(format!("level-{level:02}.hashes"));
            if let Ok(bytes) = std::fs::read(&path) {
                let keep = ((16u64 >> level) * 32) as usize;
                let mut b = bytes[..keep.min(bytes.len())].to_vec();
                b.resize(bytes.len(), 0);
                std::fs::write(&path, b).unwrap();
            }
        }
        let store = TreeStore::open_trusting(dir.path(), 16).unwrap();
        assert_eq!(store.size(), 36);
        assert_eq!(store.root(), root);
        assert_eq!(store.inclusion_proof(30, 36).unwrap(), proof);
        assert_eq!(store.root_at(36).unwrap(), root);
    }

    #[test]
    fn a_crash_mid_append_is_repaired_from_the_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let d = leaves(37);
        let mut store = TreeStore::open(dir.path()).unwrap();
        store.append(&d).unwrap();
        store.sync().unwrap();
        let root = store.root();
        drop(store);
        // A torn leaf hash at the end, a missing parent and one too many.
        let leaf_file = dir.path().join("level-00.hashes");
        let mut bytes = std::fs::read(&leaf_file).unwrap();
        bytes.extend_from_slice(&[7u8; 13]);
        std::fs::write(&leaf_file, &bytes).unwrap();
        let level2 = dir.path().join("level-02.hashes");
        let l2 = std::fs::read(&level2).unwrap();
        std::fs::write(&level2, &l2[..l2.len() - 64]).unwrap();
        let level3 = dir.path().join("level-03.hashes");
        let mut l3 = std::fs::read(&level3).unwrap();
        l3.extend_from_slice(&[9u8; 32]);
        std::fs::write(&level3, &l3).unwrap();

        let mut store = TreeStore::open(dir.path()).unwrap();
        assert_eq!(store.size(), 37);
        assert_eq!(store.root(), root);
        assert_eq!(std::fs::read(&level2).unwrap(), l2);
        assert_eq!(std::fs::metadata(&level3).unwrap().len(), (37 >> 3) * 32);
        // And it goes on.
        store.append(&leaves(3)).unwrap();
        assert_eq!(store.size(), 40);
        let p = store.inclusion_proof(38, 40).unwrap();
        verify_inclusion(&leaf_hash(&1u64.to_be_bytes()), 38, 40, &p, &store.root()).unwrap();
    }

    #[test]
    fn files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("audit");
        let mut store = TreeStore::open(&at).unwrap();
        store.append(&leaves(4)).unwrap();
        store.sync().unwrap();
        assert_eq!(
            std::fs::metadata(&at).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for e in std::fs::read_dir(&at).unwrap() {
            let mode = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
