//! Consumer groups of the embedded log: membership and partition
//! assignment (in process: the data dir has one writer process), and
//! committed offsets stored durably, one JSON file per group.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ultracore_log::{files, Error, Position, Result, TopicPartition, TopicSpec};

use crate::segment::sync_dir;

#[derive(Debug, Default)]
struct Group {
    generation: u64,
    /// member id → subscribed topics.
    members: BTreeMap<u64, Vec<String>>,
    assignment: HashMap<u64, Vec<TopicPartition>>,
    /// Committed positions: (topic, partition) → next offset to read.
    committed: BTreeMap<(String, u32), u64>,
    loaded: bool,
}

#[derive(Debug)]
pub struct Groups {
    dir: PathBuf,
    writable: bool,
    groups: Mutex<HashMap<String, Group>>,
    next_member: AtomicU64,
}

/// On disk: `{"topic": {"0": 12, "1": 40}}`.
type OffsetsFile = BTreeMap<String, BTreeMap<u32, u64>>;

impl Groups {
    pub fn new(dir: PathBuf, writable: bool) -> Result<Groups> {
        if writable {
            files::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(Groups {
            dir,
            writable,
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
        })
    }

    fn path(&self, group: &str) -> PathBuf {
        self.dir.join(format!("{group}.json"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load<'a>(
        &self,
        groups: &'a mut HashMap<String, Group>,
        group: &str,
    ) -> Result<&'a mut Group> {
        let g = groups.entry(group.to_owned()).or_default();
        if !g.loaded || !self.writable {
            // Read-only handles re-read the file: the writer may have committed since.
            g.committed = read_offsets(&self.path(group))?;
            g.loaded = true;
        }
        Ok(g)
    }

    /// Adds a member and rebalances. `partitions` gives each topic's partition count.
    pub fn join(
        &self,
        group: &str,
        topics: &[String],
        partitions: impl Fn(&str) -> u32,
    ) -> Result<u64> {
        TopicSpec::validate_name(group).map_err(|_| {
            Error::InvalidArgument(format!(
                "group name '{group}' is invalid: use 1 to 249 characters from A-Z a-z 0-9 . _ -"
            ))
        })?;
        let member = self.next_member.fetch_add(1, Ordering::Relaxed);
        let mut groups = self.lock();
        let g = self.load(&mut groups, group)?;
        g.members.insert(member, topics.to_vec());
        rebalance(g, partitions);
        Ok(member)
    }

    pub fn leave(&self, group: &str, member: u64, partitions: impl Fn(&str) -> u32) {
        let mut groups = self.lock();
        if let Some(g) = groups.get_mut(group) {
            if g.members.remove(&member).is_some() {
                rebalance(g, partitions);
            }
        }
    }

    /// The member's current assignment and the group generation it belongs to.
    pub fn assignment(&self, group: &str, member: u64) -> (u64, Vec<TopicPartition>) {
        let groups = self.lock();
        groups.get(group).map_or((0, Vec::new()), |g| {
            (
                g.generation,
                g.assignment.get(&member).cloned().unwrap_or_default(),
            )
        })
    }

    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        let mut groups = self.lock();
        let g = self.load(&mut groups, group)?;
        Ok(g.committed.get(&(topic.to_owned(), partition)).copied())
    }

    /// Every committed position of the group.
    pub fn all_committed(&self, group: &str) -> Result<BTreeMap<(String, u32), u64>> {
        let mut groups = self.lock();
        Ok(self.load(&mut groups, group)?.committed.clone())
    }

    /// Stores positions durably (write, fsync, rename, fsync dir) before returning.
    pub fn commit(&self, group: &str, positions: &[Position]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly("committing offsets"));
        }
        let mut groups = self.lock();
        let g = self.load(&mut groups, group)?;
        let mut next = g.committed.clone();
        for p in positions {
            next.insert((p.topic.clone(), p.partition), p.offset);
        }
        let mut file: OffsetsFile = BTreeMap::new();
        for ((t, p), o) in &next {
            file.entry(t.clone()).or_default().insert(*p, *o);
        }
        let json =
            serde_json::to_vec_pretty(&file).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let path = self.path(group);
        let tmp = self.dir.join(format!(".{group}.json.tmp"));
        let mut f = files::open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&json)
            .and_then(|_| f.sync_data())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.dir)?;
        g.committed = next;
        Ok(())
    }

    /// Groups with a committed-offsets file.
    pub fn list(&self) -> Result<Vec<String>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_owned)
            })
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }
}

fn read_offsets(path: &Path) -> Result<BTreeMap<(String, u32), u64>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let file: OffsetsFile = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        segment: path.to_owned(),
        position: e.column() as u64,
        reason: format!("committed offsets are not valid JSON: {e}"),
    })?;
    Ok(file
        .into_iter()
        .flat_map(|(t, ps)| ps.into_iter().map(move |(p, o)| ((t.clone(), p), o)))
        .collect())
}

/// Range assignment per topic over the members subscribed to it, in member order.
fn rebalance(g: &mut Group, partitions: impl Fn(&str) -> u32) {
    g.generation += 1;
    g.assignment.clear();
    let mut topics: Vec<&String> = g.members.values().flatten().collect();
    topics.sort();
    topics.dedup();
    for topic in topics {
        let subscribers: Vec<u64> = g
            .members
            .iter()
            .filter(|(_, ts)| ts.contains(topic))
            .map(|(m, _)| *m)
            .collect();
        let n = partitions(topic);
        for p in 0..n {
            let member = subscribers[(p as usize * subscribers.len()) / n as usize];
            g.assignment
                .entry(member)
                .or_default()
                .push(TopicPartition {
                    topic: topic.clone(),
                    partition: p,
                });
        }
    }
}
