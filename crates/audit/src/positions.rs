//! Where each leaf's record is on the log: the positions index.
//!
//! Two files beside the tree: `topics` (one topic name per line; a topic's
//! id is its line number from 0) and `positions` (16 bytes per leaf, in
//! leaf order: topic id u32, partition u32, offset u64, big-endian). Both
//! are written and synced before the leaves they describe, so after a crash
//! the index is at least as long as the tree and is cut back to it.
//!
//! Within a partition, leaves follow the log's offsets upwards; the last
//! offset of a partition is the auditor's high-water mark, below which a
//! redelivered record is known to be in the tree already.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

const ENTRY: u64 = 16;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A record's place on the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordPosition {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// The positions index in memory: what [`Positions`] keeps, and what a
/// verifier reads beside a running auditor ([`PositionIndex::read`]).
#[derive(Debug, Clone, Default)]
pub struct PositionIndex {
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Every leaf's (topic id, partition, offset), in leaf order.
    entries: Vec<(u32, u32, u64)>,
    /// Per (topic id, partition): (offset, leaf) in leaf order.
    by_partition: HashMap<(u32, u32), Vec<(u64, u64)>>,
}

impl PositionIndex {
    /// Reads the index in `dir` without changing it (whole entries only).
    pub fn read(dir: &Path) -> Result<PositionIndex, StoreError> {
        let topics_path = dir.join("topics");
        let text = match std::fs::read_to_string(&topics_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&topics_path)(e)),
        };
        let path = dir.join("positions");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path)(e)),
        };
        PositionIndex::parse(&text, &bytes, &path)
    }

    /// The index of a topics file's text and a positions file's bytes
    /// (torn tails ignored).
    fn parse(text: &str, bytes: &[u8], path: &Path) -> Result<PositionIndex, StoreError> {
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        let names: Vec<String> = text[..whole].lines().map(str::to_owned).collect();
        let ids = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        let whole = bytes.len() / ENTRY as usize * ENTRY as usize;
        let mut index = PositionIndex {
            names,
            ids,
            entries: Vec::with_capacity(whole / ENTRY as usize),
            by_partition: HashMap::new(),
        };
        for e in bytes[..whole].chunks_exact(ENTRY as usize) {
            let topic = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let partition = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
            let offset = u64::from_be_bytes([e[8], e[9], e[10], e[11], e[12], e[13], e[14], e[15]]);
            if topic as usize >= index.names.len() {
                return Err(StoreError::Corrupt(format!(
                    "{}: leaf {} names topic id {topic}, which the topics file does not list",
                    path.display(),
                    index.entries.len(),
                )));
            }
            index.remember(topic, partition, offset);
        }
        Ok(index)
    }

    fn remember(&mut self, topic: u32, partition: u32, offset: u64) {
        let leaf = self.entries.len() as u64;
        self.entries.push((topic, partition, offset));
        self.by_partition
            .entry((topic, partition))
            .or_default()
            .push((offset, leaf));
    }

    /// Leaves the index describes.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The highest offset of `topic`/`partition` in the index.
    pub fn high_water(&self, topic: &str, partition: u32) -> Option<u64> {
        let id = *self.ids.get(topic)?;
        self.by_partition
            .get(&(id, partition))
            .and_then(|v| v.last())
            .map(|(o, _)| *o)
    }

    /// The leaf of the record at `topic`/`partition`/`offset`.
    pub fn leaf_of(&self, topic: &str, partition: u32, offset: u64) -> Option<u64> {
        let id = *self.ids.get(topic)?;
        let v = self.by_partition.get(&(id, partition))?;
        v.binary_search_by_key(&offset, |(o, _)| *o)
            .ok()
            .map(|i| v[i].1)
    }

    /// Where leaf `index`'s record is.
    pub fn get(&self, index: u64) -> Option<RecordPosition> {
        let (topic, partition, offset) = *self.entries.get(index as usize)?;
        Some(RecordPosition {
            topic: self.names[topic as usize].clone(),
            partition,
            offset,
        })
    }

    /// Every (topic, partition) with its (offset, leaf) pairs in order.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, u32, &[(u64, u64)])> {
        self.by_partition
            .iter()
            .map(|((t, p), v)| (self.names[*t as usize].as_str(), *p, v.as_slice()))
    }

    /// Forgets every entry from `len` on.
    pub fn truncate(&mut self, len: u64) {
        if len >= self.len() {
            return;
        }
        for (topic, partition, _) in self.entries.drain(len as usize..) {
            if let Some(v) = self.by_partition.get_mut(&(topic, partition)) {
                v.retain(|(_, leaf)| *leaf < len);
            }
        }
        self.by_partition.retain(|_, v| !v.is_empty());
    }
}

/// The positions index in its files (see the module docs).
pub struct Positions {
    topics_path: PathBuf,
    topics_file: File,
    path: PathBuf,
    writer: BufWriter<File>,
    file: File,
    index: PositionIndex,
}

impl std::fmt::Debug for Positions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Positions")
            .field("path", &self.path)
            .field("len", &self.index.len())
            .finish()
    }
}

impl std::ops::Deref for Positions {
    type Target = PositionIndex;

    fn deref(&self) -> &PositionIndex {
        &self.index
    }
}

impl Positions {
    /// Opens (creating) the index in `dir`, cut to whole entries.
    pub fn open(dir: &Path) -> Result<Positions, StoreError> {
        ultracore_log::files::create_dir_all(dir).map_err(io(dir))?;
        let topics_path = dir.join("topics");
        let mut topics_file = ultracore_log::files::open_options()
            .read(true)
            .append(true)
            .create(true)
            .open(&topics_path)
            .map_err(io(&topics_path))?;
        let mut text = String::new();
        topics_file
            .read_to_string(&mut text)
            .map_err(io(&topics_path))?;
        // A name without its newline is torn: its entries were never written.
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        if whole != text.len() {
            topics_file
                .set_len(whole as u64)
                .map_err(io(&topics_path))?;
        }
        let path = dir.join("positions");
        let mut file = ultracore_log::files::open_options()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&path))?;
        let whole = bytes.len() as u64 / ENTRY * ENTRY;
        if whole != bytes.len() as u64 {
            file.set_len(whole).map_err(io(&path))?;
        }
        let index = PositionIndex::parse(&text, &bytes, &path)?;
        Ok(Positions {
            writer: BufWriter::with_capacity(64 * 1024, file.try_clone().map_err(io(&path))?),
            topics_path,
            topics_file,
            path,
            file,
            index,
        })
    }

    /// Appends positions (buffered; durable after [`Positions::sync`]).
    /// New topic names are written and synced at once.
    pub fn append<'a>(
        &mut self,
        positions: impl IntoIterator<Item = (&'a str, u32, u64)>,
    ) -> Result<(), StoreError> {
        for (topic, partition, offset) in positions {
            let id = match self.index.ids.get(topic) {
                Some(id) => *id,
                None => self.add_topic(topic)?,
            };
            let mut e = [0u8; ENTRY as usize];
            e[0..4].copy_from_slice(&id.to_be_bytes());
            e[4..8].copy_from_slice(&partition.to_be_bytes());
            e[8..16].copy_from_slice(&offset.to_be_bytes());
            self.writer.write_all(&e).map_err(io(&self.path))?;
            self.index.remember(id, partition, offset);
        }
        Ok(())
    }

    fn add_topic(&mut self, topic: &str) -> Result<u32, StoreError> {
        if topic.contains('\n') {
            return Err(StoreError::Corrupt(format!(
                "the topic name {topic:?} holds a newline"
            )));
        }
        let id = self.index.names.len() as u32;
        self.topics_file
            .write_all(format!("{topic}\n").as_bytes())
            .map_err(io(&self.topics_path))?;
        self.topics_file
            .sync_data()
            .map_err(io(&self.topics_path))?;
        self.index.names.push(topic.to_owned());
        self.index.ids.insert(topic.to_owned(), id);
        Ok(id)
    }

    /// Makes every appended position durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.writer.flush().map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))
    }

    /// Cuts the index to its first `len` entries (after a crash left more
    /// positions than leaves).
    pub fn truncate(&mut self, len: u64) -> Result<(), StoreError> {
        if len >= self.index.len() {
            return Ok(());
        }
        self.writer.flush().map_err(io(&self.path))?;
        self.file.set_len(len * ENTRY).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        self.index.truncate(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_a_reopen_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Positions::open(dir.path()).unwrap();
        p.append([("a", 0, 5), ("b", 1, 0), ("a", 0, 6)]).unwrap();
        p.sync().unwrap();
        assert_eq!(p.leaf_of("a", 0, 6), Some(2));
        assert_eq!(p.high_water("a", 0), Some(6));
        drop(p);
        // Half an entry: a write the crash cut.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("positions"))
            .unwrap();
        f.write_all(&[0, 0, 0]).unwrap();
        let mut p = Positions::open(dir.path()).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            p.get(1),
            Some(RecordPosition {
                topic: "b".into(),
                partition: 1,
                offset: 0
            })
        );
        p.truncate(2).unwrap();
        assert_eq!(p.high_water("a", 0), Some(5));
        assert_eq!(p.leaf_of("a", 0, 6), None);
        assert_eq!(Positions::open(dir.path()).unwrap().len(), 2);
    }
}
