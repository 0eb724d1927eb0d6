//! Verification of the trail against the log and its signed checkpoints.
//!
//! Three checks, each independent of the others:
//!
//! 1. Every checkpoint's signature, by the verifier key the caller trusts,
//!    and the sizes never shrink.
//! 2. The trail's stored leaves have the signed roots: the root of the
//!    first N stored leaves, recomputed from the leaves alone, is the root
//!    of the checkpoint of size N, for every checkpoint.
//! 3. Every record on the log has the leaf the trail stored for its
//!    position. A record that does not is classified by looking at its
//!    neighbours: `changed` (in place), `missing` (gone, later records
//!    slid down or a gap left), `inserted` / `duplicated` (an extra record,
//!    later records slid up), `reordered` (two records swapped),
//!    `truncated` (the partition ends before records the trail holds).
//!    Records that retention deleted are `expired` (counted, not an issue:
//!    their leaves still prove the checkpoints); records past the trail
//!    are not audited yet (counted).
//!
//! Issues are reported in leaf order, so the first names the first bad
//! position of the global sequence.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use ultracore_log::{Consumer, ConsumerOptions, EventLog, Record, StartFrom};

use crate::leaf::leaf_at;
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::note::{NoteSigner, NoteVerifier};
use crate::positions::PositionIndex;
use crate::service::CHECKPOINT_TOPIC;
use crate::trail::{read_checkpoints, SignedCheckpoint, TrailError};

/// The trail's files as a verifier reads them: without changing them, so
/// beside a running auditor too (checkpoints first, then leaves, then
/// positions: each covers the one read before it).
#[derive(Debug, Clone)]
pub struct TrailSnapshot {
    pub checkpoints: Vec<SignedCheckpoint>,
    /// The stored leaf hashes, in order.
    pub leaves: Vec<Hash>,
    pub index: PositionIndex,
    /// The verifier key of the trail's own signing key, when it is there.
    pub own_key: Option<NoteVerifier>,
    /// What is wrong with the files themselves.
    pub problems: Vec<String>,
}

impl TrailSnapshot {
    /// The tree of the first `size` stored leaves (all of them when fewer),
    /// in memory: for proofs of a trail another process is writing.
    pub fn tree(&self, size: u64) -> crate::Tree {
        let mut tree = crate::Tree::new();
        for leaf in self.leaves.iter().take(size as usize) {
            tree.append_hash(*leaf);
        }
        tree
    }

    pub fn read(dir: &std::path::Path) -> Result<TrailSnapshot, TrailError> {
        if !dir.join("signing.key").exists() && !dir.join("positions").exists() {
            return Err(TrailError::BadRequest(format!(
                "no audit trail in {}: the audit service writes it there (run `ultracore serve`), or pass the right --data-dir",
                dir.display()
            )));
        }
        let mut problems = Vec::new();
        let cp_path = dir.join("checkpoints.jsonl");
        let checkpoints = if cp_path.exists() {
            read_checkpoints(&cp_path)?
        } else {
            Vec::new()
        };
        let leaf_path = dir.join("tree").join("level-00.hashes");
        let bytes = match std::fs::read(&leaf_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(TrailError::Io {
                    path: leaf_path,
                    source,
                })
            }
        };
        let mut leaves: Vec<Hash> = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        let mut index = PositionIndex::read(dir)?;
        if index.len() < leaves.len() as u64 {
            problems.push(format!(
                "the positions index holds {} entries for {} leaves: the leaves past it cannot be placed on the log",
                index.len(),
                leaves.len()
            ));
            leaves.truncate(index.len() as usize);
        }
        index.truncate(leaves.len() as u64);
        let own_key = std::fs::read_to_string(dir.join("signing.key"))
            .ok()
            .and_then(|k| NoteSigner::from_skey(&k).ok())
            .map(|s| s.verifier());
        Ok(TrailSnapshot {
            checkpoints,
            leaves,
            index,
            own_key,
            problems,
        })
    }
}

/// What is wrong at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    Changed,
    Missing,
    Inserted,
    Duplicated,
    Reordered,
    Truncated,
    /// A checkpoint whose signature or size is wrong.
    Checkpoint,
    /// The trail's stored leaves do not have a signed root.
    Trail,
}

impl std::fmt::Display for IssueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub kind: IssueKind,
    pub detail: String,
    /// The leaf at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<u64>,
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub integrity_valid: bool,
    /// Records whose leaf matched.
    pub verified_events: u64,
    /// Leaves in the trail.
    pub tree_size: u64,
    /// The size of the latest valid checkpoint.
    pub signed_size: u64,
    pub checkpoints: u64,
    /// Leaves whose records retention deleted.
    pub expired: u64,
    /// Records on the log the trail does not hold yet.
    pub not_yet_audited: u64,
    pub issues: Vec<Issue>,
}

/// A verification that could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Log(#[from] ultracore_log::Error),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("reading the log: {0}")]
    Read(String),
}

/// Checks `checkpoints` (oldest first) against `verifier` and the trail's
/// stored leaves (checks 1 and 2 of the module docs). Returns the issues
/// and the largest size that checked out.
pub fn check_checkpoints(
    leaves: &[Hash],
    checkpoints: &[SignedCheckpoint],
    verifier: &NoteVerifier,
) -> (Vec<Issue>, u64) {
    let mut issues = Vec::new();
    let mut valid: Vec<(usize, u64, Hash)> = Vec::new();
    let mut last = 0u64;
    let bad = |i: usize, detail: String| Issue {
        topic: CHECKPOINT_TOPIC.into(),
        partition: 0,
        offset: i as u64,
        kind: IssueKind::Checkpoint,
        detail,
        leaf: None,
    };
    for (i, c) in checkpoints.iter().enumerate() {
        let parsed = c.parse().map_err(|e| e.to_string()).and_then(|(note, cp)| {
            verifier.verify(&note).map_err(|e| e.to_string())?;
            if cp.origin != verifier.name() {
                return Err(format!(
                    "the origin is {}, the key's {}",
                    cp.origin,
                    verifier.name()
                ));
            }
            if cp.size != c.tree_size {
                return Err(format!(
                    "the note says size {}, the record {}",
                    cp.size, c.tree_size
                ));
            }
            Ok(cp)
        });
        match parsed {
            Err(e) => issues.push(bad(i, format!("checkpoint {} (size {}): {e}", i + 1, c.tree_size))),
            Ok(cp) if cp.size < last => issues.push(bad(
                i,
                format!(
                    "checkpoint {} has size {}, smaller than the {last} before it: a log never shrinks",
                    i + 1,
                    cp.size
                ),
            )),
            Ok(cp) => {
                last = cp.size;
                valid.push((i, cp.size, cp.root));
            }
        }
    }
    // Roots recomputed from the stored leaves alone.
    let size = leaves.len() as u64;
    let mut frontier = Frontier::new();
    let mut want = valid.iter().peekable();
    let mut signed = 0;
    let mut index = 0;
    while let Some((i, s, root)) = want.peek().copied() {
        if *s > size {
            break;
        }
        while frontier.size() < *s {
            frontier.append(leaves[index], |_, _, _| {});
            index += 1;
        }
        if frontier.root() == *root {
            signed = *s;
        } else {
            issues.push(trail_issue(
                *i,
                format!(
                    "the trail's first {s} leaves do not have the root signed in checkpoint {}: the trail's files were changed",
                    i + 1
                ),
            ));
        }
        want.next();
    }
    for (i, s, _) in want {
        issues.push(trail_issue(
            *i,
            format!(
                "checkpoint {} covers {s} leaves, the trail holds {size}: leaves were cut from the trail",
                i + 1
            ),
        ));
    }
    (issues, signed)
}

/// A `trail` issue about checkpoint number `index` (from 0).
fn trail_issue(index: usize, detail: String) -> Issue {
    Issue {
        topic: CHECKPOINT_TOPIC.into(),
        partition: 0,
        offset: index as u64,
        kind: IssueKind::Trail,
        detail,
        leaf: None,
    }
}

/// One partition's records as the log has them, in offset order, checked
/// against the trail's leaves for that partition.
struct PartitionCheck<'a> {
    topic: String,
    partition: u32,
    index: &'a PositionIndex,
    stored: &'a [Hash],
    /// Stored offset minus log offset: what deletions and insertions did.
    shift: i64,
    /// A record that did not match, waiting for the next to say why.
    pending: Option<Record>,
    seen: HashSet<u64>,
    reported: HashSet<u64>,
    issues: Vec<Issue>,
    verified: u64,
    unaudited: u64,
}

impl<'a> PartitionCheck<'a> {
    fn new(topic: &str, partition: u32, index: &'a PositionIndex, stored: &'a [Hash]) -> Self {
        PartitionCheck {
            topic: topic.to_owned(),
            partition,
            index,
            stored,
            shift: 0,
            pending: None,
            seen: HashSet::new(),
            reported: HashSet::new(),
            issues: Vec::new(),
            verified: 0,
            unaudited: 0,
        }
    }

    fn leaf(&self, offset: i64) -> Option<u64> {
        u64::try_from(offset)
            .ok()
            .and_then(|o| self.index.leaf_of(&self.topic, self.partition, o))
    }

    /// Whether `record`, were it at `offset`, has the stored leaf there.
    fn fits(&self, record: &Record, offset: i64) -> Option<u64> {
        let leaf = self.leaf(offset)?;
        let h = leaf_hash(&leaf_at(record, offset as u64).ok()?);
        (self.stored.get(leaf as usize) == Some(&h)).then_some(leaf)
    }

    fn issue(&mut self, offset: i64, kind: IssueKind, detail: String) {
        let leaf = self.leaf(offset);
        if let Some(l) = leaf {
            self.reported.insert(l);
        }
        self.issues.push(Issue {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: offset.max(0) as u64,
            kind,
            detail,
            leaf,
        });
    }

    fn push(&mut self, record: Record) {
        if let Some(pending) = self.pending.take() {
            self.settle(pending, Some(record));
            return;
        }
        self.check(record);
    }

    fn check(&mut self, record: Record) {
        let e = record.offset as i64 + self.shift;
        if self.leaf(e).is_none() {
            let high = self.index.high_water(&self.topic, self.partition);
            if high.is_none_or(|h| e > h as i64) {
                self.unaudited += 1;
            } else {
                self.issue(
                    record.offset as i64,
                    IssueKind::Inserted,
                    "a record where the trail holds none".into(),
                );
            }
            return;
        }
        if let Some(leaf) = self.fits(&record, e) {
            self.seen.insert(leaf);
            self.verified += 1;
        } else {
            self.pending = Some(record);
        }
    }

    /// Classifies `r`, which did not match, by the record after it.
    fn settle(&mut self, r: Record, next: Option<Record>) {
        let e = r.offset as i64 + self.shift;
        let slid_down = self.fits(&r, e + 1);
        let next_fits_here = next.as_ref().and_then(|n| self.fits(n, e));
        match (slid_down, next_fits_here) {
            (Some(l1), Some(l0)) => {
                self.issue(
                    e,
                    IssueKind::Reordered,
                    format!("the records at offsets {e} and {} were swapped", e + 1),
                );
                self.reported.insert(l1);
                self.seen.insert(l0);
                self.seen.insert(l1);
            }
            (Some(l1), None) => {
                self.issue(
                    e,
                    IssueKind::Missing,
                    "the record the trail holds here is gone; the records after it moved down one offset".into(),
                );
                self.seen.insert(l1);
                self.verified += 1;
                self.shift += 1;
                if let Some(n) = next {
                    self.check(n);
                }
            }
            (None, Some(l0)) => {
                let dup = self.fits(&r, e - 1).is_some();
                let (kind, what) = if dup {
                    (IssueKind::Duplicated, "a copy of the record before it")
                } else {
                    (IssueKind::Inserted, "a record the trail never held")
                };
                self.issue(
                    r.offset as i64,
                    kind,
                    format!("{what}; the records after it moved up one offset"),
                );
                self.seen.insert(l0);
                self.verified += 1;
                self.shift -= 1;
            }
            (None, None) => {
                let dup = self.fits(&r, e - 1).is_some();
                if dup {
                    self.issue(
                        r.offset as i64,
                        IssueKind::Duplicated,
                        "a copy of the record before it".into(),
                    );
                    self.shift -= 1;
                } else {
                    self.issue(
                        e,
                        IssueKind::Changed,
                        "the record differs from the one the trail holds (its value, key, headers, timestamp or principal)".into(),
                    );
                }
                if let Some(n) = next {
                    self.check(n);
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            self.settle(p, None);
        }
    }
}

/// Reads the whole log and checks every record against the trail (check 3),
/// then the checkpoints against `verifier` (checks 1 and 2).
pub async fn verify<L: EventLog>(
    log: &L,
    trail: &TrailSnapshot,
    verifier: &NoteVerifier,
) -> Result<VerifyReport, VerifyError> {
    let (index, stored) = (&trail.index, trail.leaves.as_slice());
    let mut checks: HashMap<(String, u32), PartitionCheck<'_>> = HashMap::new();
    for (topic, partition, _) in index.partitions() {
        checks.insert(
            (topic.to_owned(), partition),
            PartitionCheck::new(topic, partition, index, stored),
        );
    }
    let ends = read_log(log, |record| {
        let key = (record.topic.clone(), record.partition);
        checks
            .entry(key)
            .or_insert_with(|| PartitionCheck::new(&record.topic, record.partition, index, stored))
            .push(record);
    })
    .await?;
    let mut report = VerifyReport {
        tree_size: stored.len() as u64,
        checkpoints: trail.checkpoints.len() as u64,
        ..VerifyReport::default()
    };
    for check in checks.values_mut() {
        check.finish();
    }
    // Leaves no record answered for.
    for (topic, partition, entries) in index.partitions() {
        let check = &checks[&(topic.to_owned(), partition)];
        let key = (topic.to_owned(), partition);
        let gone = !ends.contains_key(&key);
        let (start, end) = ends.get(&key).copied().unwrap_or((0, 0));
        let mut truncated = false;
        for (offset, leaf) in entries {
            if check.seen.contains(leaf) || check.reported.contains(leaf) {
                continue;
            }
            if !gone && *offset < start {
                report.expired += 1;
                continue;
            }
            let (kind, detail) = if gone {
                (
                    IssueKind::Missing,
                    "the partition is gone from the log".to_owned(),
                )
            } else if *offset >= end {
                if truncated {
                    continue;
                }
                truncated = true;
                (
                    IssueKind::Truncated,
                    format!(
                        "the partition ends at offset {end}; the trail holds its records up to offset {}",
                        entries.last().map_or(0, |e| e.0)
                    ),
                )
            } else {
                (
                    IssueKind::Missing,
                    "the record the trail holds here is gone".to_owned(),
                )
            };
            report.issues.push(Issue {
                topic: topic.to_owned(),
                partition,
                offset: *offset,
                kind,
                detail,
                leaf: Some(*leaf),
            });
        }
    }
    for check in checks.into_values() {
        report.verified_events += check.verified;
        report.not_yet_audited += check.unaudited;
        report.issues.extend(check.issues);
    }
    report.issues.sort_by(|a, b| {
        (a.leaf.unwrap_or(u64::MAX), &a.topic, a.partition, a.offset).cmp(&(
            b.leaf.unwrap_or(u64::MAX),
            &b.topic,
            b.partition,
            b.offset,
        ))
    });
    for p in &trail.problems {
        report.issues.push(Issue {
            topic: String::new(),
            partition: 0,
            offset: 0,
            kind: IssueKind::Trail,
            detail: p.clone(),
            leaf: None,
        });
    }
    let (cp_issues, signed) = check_checkpoints(stored, &trail.checkpoints, verifier);
    report.signed_size = signed;
    report.issues.extend(cp_issues);
    report.integrity_valid = report.issues.is_empty();
    Ok(report)
}

/// Where each partition of the log started and ended (high watermark) when
/// it was read.
pub type LogEnds = HashMap<(String, u32), (u64, u64)>;

/// Reads every record of every topic but the checkpoints' (in offset
/// order per partition) up to the ends seen at the start; returns those ends.
pub async fn read_log<L: EventLog>(
    log: &L,
    each: impl FnMut(Record),
) -> Result<LogEnds, VerifyError> {
    let mut ends = LogEnds::new();
    let mut names = Vec::new();
    for t in log.list_topics().await? {
        if t.name
            .strip_suffix(ultracore_log::DLQ_SUFFIX)
            .unwrap_or(&t.name)
            == CHECKPOINT_TOPIC
        {
            continue;
        }
        for p in &t.partitions {
            ends.insert(
                (t.name.clone(), p.partition),
                (p.log_start_offset, p.high_watermark),
            );
        }
        names.push(t.name);
    }
    if !names.is_empty() {
        read_all(log, &names, &ends, each).await?;
    }
    Ok(ends)
}

/// Reads every record of `topics` up to the ends seen at the start, with a
/// group of its own that never commits.
async fn read_all<L: EventLog>(
    log: &L,
    topics: &[String],
    ends: &HashMap<(String, u32), (u64, u64)>,
    mut each: impl FnMut(Record),
) -> Result<(), VerifyError> {
    let group = format!(
        "audit-verify-{}-{}",
        std::process::id(),
        ultracore_log::now_millis()
    );
    let mut consumer = log
        .consumer(ConsumerOptions::new(group, topics.iter().cloned()).start(StartFrom::Earliest))
        .await?;
    let mut remaining: HashMap<(String, u32), u64> = ends
        .iter()
        .filter(|(_, (start, end))| end > start)
        .map(|(k, (_, end))| (k.clone(), *end))
        .collect();
    let (mut idle, mut waiting) = (0, 0);
    while !remaining.is_empty() {
        let batch = consumer.poll(4096, Duration::from_millis(200)).await?;
        if batch.is_empty() {
            if consumer.assignment().is_empty() {
                waiting += 1;
            } else {
                idle += 1;
            }
            // Assigned and nothing more: the rest of each partition is a
            // gap (records deleted, or offsets the log skips).
            if idle >= 6 {
                return Ok(());
            }
            if waiting >= 150 {
                let left: Vec<String> = remaining
                    .iter()
                    .take(5)
                    .map(|((t, p), e)| format!("{t}/{p} (to offset {e})"))
                    .collect();
                return Err(VerifyError::Read(format!(
                    "no partitions assigned in 30 s while {} partitions were to be read: {}",
                    remaining.len(),
                    left.join(", ")
                )));
            }
            continue;
        }
        idle = 0;
        for r in batch {
            let key = (r.topic.clone(), r.partition);
            let Some(end) = remaining.get(&key).copied() else {
                continue; // past the end seen at the start
            };
            if r.offset >= end {
                continue;
            }
            if r.offset + 1 >= end {
                remaining.remove(&key);
            }
            each(r);
        }
    }
    Ok(())
}
