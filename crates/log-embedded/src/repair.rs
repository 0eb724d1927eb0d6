//! Repairing a data directory after power loss or disk damage: finding the
//! corrupt records that make the log refuse to open (or make reads stop),
//! and cutting each damaged segment at its first bad record.
//!
//! Nothing is destroyed: the bytes cut from a segment are first copied,
//! durably, to `<segment>.corrupt-<millis>` beside it, where an operator (or
//! a tool that salvages valid frames) can still reach them.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use ultracore_log::{files, now_millis, Error, Result};

use crate::lock::DirLock;
use crate::partition::segment_bases;
use crate::segment::{sync_dir, BadFrame, Segment, SegmentIndex};

/// One cut: a segment truncated at its first bad record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cut {
    pub topic: String,
    pub partition: u32,
    /// The segment file.
    pub segment: PathBuf,
    /// Where the segment is cut: the first byte of its first bad record.
    pub position: u64,
    /// Bytes cut, from `position` to the end of the file.
    pub bytes: u64,
    /// The first offset cut.
    pub first_offset: u64,
    /// Records cut: the bad ones and every one after them in the segment.
    /// After a torn tail the count is an estimate (its frames are not
    /// verified).
    pub records: u64,
    /// What is wrong, in words.
    pub reason: String,
    /// Where the cut bytes were kept, once the cut is applied.
    pub kept_at: Option<PathBuf>,
}

/// What [`repair`] found and, when applied, did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// Whether the cuts were made (false: only reported).
    pub applied: bool,
    pub partitions_checked: usize,
    pub segments_checked: usize,
    pub cuts: Vec<Cut>,
}

/// Checks every segment of the data directory `dir` and reports where each
/// damaged segment must be cut: at its first record that fails its CRC or
/// is malformed, dropping it and everything after it in that segment. With
/// `apply`, makes the cuts: copies the cut bytes to
/// `<segment>.corrupt-<millis>` (synced before the segment changes),
/// truncates the segment, and removes its index files (rebuilt on open).
///
/// A cut in the last segment of a partition shortens the partition: the
/// next append reuses the first cut offset. A cut in an older segment
/// leaves a gap of offsets that consumers skip.
///
/// # Errors
///
/// [`Error::Locked`] while a writer holds the directory (the lock is held
/// for the whole repair, so none starts meanwhile); I/O errors.
pub fn repair(dir: &Path, apply: bool) -> Result<RepairReport> {
    let topics = dir.join("topics");
    if !topics.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no UltraCore data directory here",
            ),
        ));
    }
    // A running writer appends to the very files a repair cuts.
    let _lock = DirLock::acquire(dir)?;
    let stamp = now_millis();
    let mut report = RepairReport {
        applied: apply,
        partitions_checked: 0,
        segments_checked: 0,
        cuts: Vec::new(),
    };
    for (topic, topic_dir) in sorted_dirs(&topics)? {
        let partitions = sorted_dirs(&topic_dir)?
            .into_iter()
            .filter_map(|(name, path)| name.parse::<u32>().ok().map(|p| (p, path)));
        for (partition, pdir) in partitions {
            report.partitions_checked += 1;
            let bases = segment_bases(&pdir)?;
            for (i, &base) in bases.iter().enumerate() {
                report.segments_checked += 1;
                let next_base = bases.get(i + 1).copied();
                let seg = Segment::open(&pdir, base)?;
                if let Some(mut cut) = check(&seg, next_base)? {
                    cut.topic.clone_from(&topic);
                    cut.partition = partition;
                    if apply {
                        cut.kept_at = Some(make_cut(&seg, &pdir, cut.position, stamp)?);
                        tracing::warn!(segment = %seg.path.display(), position = cut.position,
                            bytes = cut.bytes, records = cut.records, reason = %cut.reason,
                            "repair cut a damaged segment");
                    }
                    report.cuts.push(cut);
                }
            }
        }
    }
    Ok(report)
}

/// Subdirectories of `dir` by name, sorted.
fn sorted_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if let (Some(name), true) = (entry.file_name().to_str(), path.is_dir()) {
            out.push((name.to_owned(), path));
        }
    }
    out.sort();
    Ok(out)
}

/// The cut one segment needs, if any (topic and partition left blank).
fn check(seg: &Segment, next_base: Option<u64>) -> Result<Option<Cut>> {
    let scan = seg.scan()?;
    let Some(bad) = scan.bad else {
        return Ok(None);
    };
    let size = seg.size()?;
    let first_offset = scan.next_offset.unwrap_or(seg.base_offset);
    let what = bad.error.describe();
    let next_good = seg.valid_frame_after(bad.position, scan.next_offset)?;
    let (records, reason) = match (next_base, next_good) {
        // An older segment: everything up to the next one's base is cut.
        (Some(next), _) => (
            next.saturating_sub(first_offset),
            match next_good {
                Some(at) => format!("{what} in the middle of a sealed segment (valid records follow at byte {at}); reads stop there"),
                None => format!("{what} at the end of a sealed segment; reads stop there"),
            },
        ),
        (None, Some(at)) => (
            last_offset_from(seg, at)?.map_or(1, |last| last + 1 - first_offset),
            format!("{what} in the middle of the segment (valid records follow at byte {at}); the log refuses to open"),
        ),
        (None, None) => (
            seg.count_frames_from(bad.position)?,
            format!("{what}: a torn tail, writes a crash cut short (never acknowledged); opening would drop it too"),
        ),
    };
    Ok(Some(Cut {
        topic: String::new(),
        partition: 0,
        segment: seg.path.clone(),
        position: bad.position,
        bytes: size - bad.position,
        first_offset,
        records,
        reason,
        kept_at: None,
    }))
}

/// The highest offset of the valid records from `pos` on, skipping over
/// further damage.
fn last_offset_from(seg: &Segment, mut pos: u64) -> Result<Option<u64>> {
    let mut last = None;
    loop {
        let tail = seg.scan_from(pos, &mut SegmentIndex::default())?;
        if let Some(next) = tail.next_offset {
            last = Some(next - 1);
        }
        let Some(BadFrame { position, .. }) = tail.bad else {
            return Ok(last);
        };
        match seg.valid_frame_after(position, tail.next_offset.or(last.map(|l| l + 1)))? {
            Some(at) => pos = at,
            None => return Ok(last),
        }
    }
}

/// Copies the bytes from `position` to the end beside the segment, makes
/// the copy durable, then truncates the segment and drops its index files.
fn make_cut(seg: &Segment, dir: &Path, position: u64, stamp: i64) -> Result<PathBuf> {
    let name = seg
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kept = dir.join(format!("{name}.corrupt-{stamp}"));
    let bytes = seg.read_at(position, (seg.size()? - position) as usize)?;
    let mut copy = files::open_options()
        .write(true)
        .create_new(true)
        .open(&kept)
        .map_err(|e| Error::io(&kept, e))?;
    copy.write_all(&bytes)
        .and_then(|_| copy.sync_all())
        .map_err(|e| Error::io(&kept, e))?;
    // The copy's directory entry must be durable before the bytes leave
    // the segment, or a crash between the two could lose them both.
    sync_dir(dir)?;
    let f = OpenOptions::new()
        .write(true)
        .open(&seg.path)
        .map_err(|e| Error::io(&seg.path, e))?;
    f.set_len(position)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&seg.path, e))?;
    seg.remove_index_files(dir)?;
    sync_dir(dir)?;
    Ok(kept)
}
