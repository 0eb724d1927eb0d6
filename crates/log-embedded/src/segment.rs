//! One segment: a log file of frames starting at `base_offset`, with a
//! sparse offset index and a time index.
//!
//! Files: `{base:020}.log`, `{base:020}.index` (u32 relative offset, u32
//! position), `{base:020}.timeindex` (i64 max timestamp so far, u32 relative
//! offset). Each index file ends with the CRC32C (u32) of the entries before
//! it.
//!
//! Index files are written when a segment is sealed, and deliberately not
//! fsynced: they are derivable from the log file, so recovery never needs
//! them. Instead a missing, torn, truncated or garbage index file (a crash
//! before the kernel wrote it back, a damaged disk) is detected on open by
//! its checksum and consistency checks and rebuilt by scanning the segment,
//! never trusted. Trusting one would be worse than a slow open: a wrong
//! position makes reads fail, and a wrong maximum timestamp makes seeks by
//! time skip records and retention delete a segment early.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use ultracore_log::{files, Error, Result};

use crate::codec::{self, FrameError, FRAME_HEADER};

/// An index entry every this many bytes of log.
pub const INDEX_INTERVAL: u64 = 4096;

/// One point of the sparse index: the record at `offset` starts at byte
/// `position`; `max_timestamp` is the largest timestamp up to and including it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub position: u64,
    pub max_timestamp: i64,
}

#[derive(Debug, Default)]
pub struct SegmentIndex {
    pub entries: Vec<IndexEntry>,
    /// Largest timestamp in the segment.
    pub max_timestamp: i64,
    /// Position of the last indexed byte, to space entries.
    pub last_indexed_position: Option<u64>,
}

impl SegmentIndex {
    /// Records a frame at `position`; adds an entry if far enough from the last.
    pub fn observe(&mut self, offset: u64, position: u64, timestamp: i64) {
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let due = self
            .last_indexed_position
            .is_none_or(|p| position >= p + INDEX_INTERVAL);
        if due {
            self.entries.push(IndexEntry {
                offset,
                position,
                max_timestamp: self.max_timestamp,
            });
            self.last_indexed_position = Some(position);
        }
    }

    /// The last entry at or before `offset`.
    pub fn floor(&self, offset: u64) -> Option<IndexEntry> {
        let i = self.entries.partition_point(|e| e.offset <= offset);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// Where to start scanning for the first record with timestamp ≥ `ts`:
    /// the entry before the first whose running maximum reaches `ts`.
    pub fn time_floor(&self, ts: i64) -> Option<IndexEntry> {
        let i = self.entries.partition_point(|e| e.max_timestamp < ts);
        i.checked_sub(1)
            .map(|i| self.entries[i])
            .or_else(|| self.entries.first().copied())
    }
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: u64,
    pub path: PathBuf,
    /// Read handle (positional reads; shared by all readers).
    pub file: File,
    pub index: RwLock<SegmentIndex>,
}

pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

fn timeindex_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.timeindex"))
}

/// A frame that failed to decode at a position of a segment.
#[derive(Debug, Clone, Copy)]
pub struct BadFrame {
    pub position: u64,
    pub error: FrameError,
}

/// What scanning part of a segment found.
#[derive(Debug)]
pub struct TailScan {
    pub valid_len: u64,
    pub next_offset: Option<u64>,
    pub bad: Option<BadFrame>,
}

/// What scanning a segment found.
#[derive(Debug)]
pub struct Scan {
    pub index: SegmentIndex,
    /// Position after the last valid frame.
    pub valid_len: u64,
    /// Offset after the last valid frame (`None` if the segment has none).
    pub next_offset: Option<u64>,
    /// The first invalid frame, if the scan stopped before the end.
    pub bad: Option<BadFrame>,
}

impl Segment {
    pub fn open(dir: &Path, base_offset: u64) -> Result<Segment> {
        let path = log_path(dir, base_offset);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Segment {
            base_offset,
            path,
            file,
            index: RwLock::new(SegmentIndex::default()),
        })
    }

    pub fn size(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Reads `len` bytes at `pos` (fewer at the end of the file).
    pub fn read_at(&self, pos: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self.file.read_at(&mut buf[filled..], pos + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Scans the whole segment from the start, building its index and
    /// stopping at the first invalid frame.
    pub fn scan(&self) -> Result<Scan> {
        let mut index = SegmentIndex::default();
        let tail = self.scan_from(0, &mut index)?;
        Ok(Scan {
            index,
            valid_len: tail.valid_len,
            next_offset: tail.next_offset,
            bad: tail.bad,
        })
    }

    /// Scans frames from `pos`, adding them to `index`, until the end of the
    /// file or the first invalid frame.
    pub fn scan_from(&self, mut pos: u64, index: &mut SegmentIndex) -> Result<TailScan> {
        let size = self.size()?;
        let mut next_offset = None;
        const CHUNK: usize = 1 << 20;
        let mut buf = Vec::new();
        let mut buf_pos = pos; // file position of buf[0]
        while pos < size {
            let rel = (pos - buf_pos) as usize;
            let frame = if rel < buf.len() {
                codec::decode(&buf[rel..])
            } else {
                Err(FrameError::Incomplete)
            };
            match frame {
                Ok(f) => {
                    index.observe(f.offset, pos, f.timestamp);
                    next_offset = Some(f.offset + 1);
                    pos += f.len as u64;
                }
                Err(FrameError::Incomplete) if rel > 0 || buf.is_empty() => {
                    // Need more bytes: refill from `pos`, large enough for the frame.
                    let want = self.claimed_len(pos)?.map_or(CHUNK, |n| n.max(CHUNK));
                    buf = self.read_at(pos, want)?;
                    buf_pos = pos;
                }
                Err(error) => {
                    return Ok(TailScan {
                        valid_len: pos,
                        next_offset,
                        bad: Some(BadFrame {
                            position: pos,
                            error,
                        }),
                    })
                }
            }
        }
        Ok(TailScan {
            valid_len: pos,
            next_offset,
            bad: None,
        })
    }

    /// The frame length the header at `pos` claims, if plausible.
    fn claimed_len(&self, pos: u64) -> Result<Option<usize>> {
        let h = self.read_at(pos, FRAME_HEADER)?;
        if h.len() < 4 {
            return Ok(None);
        }
        let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        Ok((n <= codec::MAX_BODY).then_some(n + FRAME_HEADER))
    }

    /// After a bad frame at `from`, is there any valid frame later in the
    /// segment whose offset follows `after_offset`? If so the damage is in the
    /// middle of acknowledged data, not a torn tail.
    pub fn valid_frame_after(&self, from: u64, after_offset: Option<u64>) -> Result<Option<u64>> {
        let size = self.size()?;
        let data = self.read_at(from, (size - from) as usize)?;
        let min_offset = after_offset.unwrap_or(self.base_offset);
        for i in 1..data.len().saturating_sub(FRAME_HEADER) {
            let rest = &data[i..];
            if rest.len() < FRAME_HEADER + codec::MIN_BODY {
                break;
            }
            // Cheap plausibility checks before paying for a CRC.
            let off = u64::from_le_bytes(rest[8..16].try_into().unwrap_or([0; 8]));
            if off < min_offset || off > min_offset + 10_000_000 {
                continue;
            }
            if codec::decode(rest).is_ok() {
                return Ok(Some(from + i as u64));
            }
        }
        Ok(None)
    }

    /// Counts the frames a length-prefix walk can delimit from `from` (for the
    /// truncation warning; these frames are unverified).
    pub fn count_frames_from(&self, from: u64) -> Result<u64> {
        let size = self.size()?;
        let mut pos = from;
        let mut n = 0;
        while pos < size {
            n += 1;
            match self.claimed_len(pos)? {
                Some(len) if len >= FRAME_HEADER + codec::MIN_BODY => pos += len as u64,
                _ => break,
            }
        }
        Ok(n)
    }

    /// Writes the index files of a sealed segment (not durably: see the
    /// module notes).
    pub fn write_index_files(&self, dir: &Path) -> Result<()> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut offsets = Vec::with_capacity(index.entries.len() * 8);
        let mut times = Vec::with_capacity(index.entries.len() * 12 + 12);
        for e in &index.entries {
            offsets.extend_from_slice(&((e.offset - self.base_offset) as u32).to_le_bytes());
            offsets.extend_from_slice(&(e.position as u32).to_le_bytes());
            times.extend_from_slice(&e.max_timestamp.to_le_bytes());
            times.extend_from_slice(&((e.offset - self.base_offset) as u32).to_le_bytes());
        }
        // A final time entry holds the segment's overall maximum (for retention).
        times.extend_from_slice(&index.max_timestamp.to_le_bytes());
        times.extend_from_slice(&u32::MAX.to_le_bytes());
        seal(&mut offsets);
        seal(&mut times);
        write_file(&index_path(dir, self.base_offset), &offsets)?;
        write_file(&timeindex_path(dir, self.base_offset), &times)
    }

    /// Loads the index files of a sealed segment if they are consistent with
    /// the log file; returns false if they must be rebuilt.
    pub fn load_index_files(&self, dir: &Path) -> Result<bool> {
        let (Ok(offsets), Ok(times)) = (
            std::fs::read(index_path(dir, self.base_offset)),
            std::fs::read(timeindex_path(dir, self.base_offset)),
        ) else {
            return Ok(false);
        };
        // Files written before index files carried a checksum fail here
        // too, and are rebuilt (and rewritten by the writer) once.
        let (Some(offsets), Some(times)) = (unseal(&offsets), unseal(&times)) else {
            tracing::info!(segment = %self.path.display(), "index files are torn or damaged; rebuilding them from the segment");
            return Ok(false);
        };
        if offsets.len() % 8 != 0
            || times.len() % 12 != 0
            || times.len() / 12 != offsets.len() / 8 + 1
        {
            return Ok(false);
        }
        let size = self.size()?;
        let mut index = SegmentIndex::default();
        for (o, t) in offsets.chunks_exact(8).zip(times.chunks_exact(12)) {
            let rel = u32::from_le_bytes(o[0..4].try_into().unwrap_or_default());
            let position = u64::from(u32::from_le_bytes(o[4..8].try_into().unwrap_or_default()));
            let max_timestamp = i64::from_le_bytes(t[0..8].try_into().unwrap_or_default());
            let offset = self.base_offset + u64::from(rel);
            if position >= size
                || index
                    .entries
                    .last()
                    .is_some_and(|l| l.offset >= offset || l.position >= position)
            {
                return Ok(false);
            }
            index.entries.push(IndexEntry {
                offset,
                position,
                max_timestamp,
            });
            index.last_indexed_position = Some(position);
        }
        let last = &times[times.len() - 12..];
        index.max_timestamp = i64::from_le_bytes(last[0..8].try_into().unwrap_or_default());
        if index.entries.first().is_some_and(|e| e.position != 0) {
            return Ok(false);
        }
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = index;
        Ok(true)
    }

    /// Removes the index files, so the next open rebuilds them (after the
    /// segment was cut short: their positions may point past its end).
    pub fn remove_index_files(&self, dir: &Path) -> Result<()> {
        for p in [
            index_path(dir, self.base_offset),
            timeindex_path(dir, self.base_offset),
        ] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&p, e)),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn remove_files(&self, dir: &Path) {
        for p in [
            log_path(dir, self.base_offset),
            index_path(dir, self.base_offset),
            timeindex_path(dir, self.base_offset),
            tmp_path(&index_path(dir, self.base_offset)),
            tmp_path(&timeindex_path(dir, self.base_offset)),
        ] {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %p.display(), error = %e, "could not delete retired segment file");
                }
            }
        }
    }
}

/// Appends the CRC32C of `data` to it.
fn seal(data: &mut Vec<u8>) {
    let crc = crc32c::crc32c(data);
    data.extend_from_slice(&crc.to_le_bytes());
}

/// The data a sealed file holds, if its checksum matches.
fn unseal(file: &[u8]) -> Option<&[u8]> {
    let (data, crc) = file.split_at_checked(file.len().checked_sub(4)?)?;
    (crc32c::crc32c(data).to_le_bytes() == crc).then_some(data)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Replaces `path` by a file holding `data`, through a rename so that a
/// read-only process opening the partition meanwhile never sees half of it.
fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let written = files::open_options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(data));
    if let Err(e) = written {
        // Most likely a full disk: leave no partial file taking space.
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Makes a directory entry change (create, rename, delete) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}
