//! One topic-partition: its segments, its durable high watermark, reading,
//! and (for the writer) appending, rolling, recovery and retention.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ultracore_log::{files, Appended, Error, NewRecord, Record, Result, Retention};

use crate::codec::{self, FrameError};
use crate::segment::{log_path, sync_dir, Segment};

/// How a partition is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The single writer: recovers (truncating a torn tail) and appends.
    Writer,
    /// A reader beside a running writer: never modifies files, follows the tail.
    ReadOnly,
}

/// State only the writer touches.
#[derive(Debug)]
struct Active {
    file: File,
    /// Bytes in the active segment file, written or staged.
    position: u64,
    next_offset: u64,
    staged: Vec<u8>,
    /// Index observations of staged frames: (offset, position, timestamp).
    staged_index: Vec<(u64, u64, i64)>,
    /// Bytes of the active file before this position were already released
    /// from the page cache.
    cached_from: u64,
    /// The segment sealed last, while its cached tail is still kept:
    /// (file, cached from).
    sealed: Option<(File, u64)>,
}

/// Where a read-only handle has verified the active segment up to.
#[derive(Debug, Default)]
struct Tail {
    valid_len: u64,
}

#[derive(Debug)]
pub struct Partition {
    pub topic: Arc<str>,
    pub id: u32,
    pub dir: PathBuf,
    segments: RwLock<Vec<Arc<Segment>>>,
    /// One past the last durable record. Readers never look beyond it.
    high_watermark: AtomicU64,
    log_start: AtomicU64,
    active: Mutex<Option<Active>>,
    tail: Mutex<Tail>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Partition {
    /// Opens (or creates) a partition directory and recovers it.
    pub fn open(topic: Arc<str>, id: u32, dir: PathBuf, mode: Mode) -> Result<Partition> {
        if mode == Mode::Writer {
            files::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let mut bases = segment_bases(&dir)?;
        if bases.is_empty() {
            if mode == Mode::ReadOnly {
                return Err(Error::io(
                    &dir,
                    std::io::Error::other("partition has no segment"),
                ));
            }
            create_segment_file(&dir, 0)?;
            bases.push(0);
        }
        let mut segments = Vec::with_capacity(bases.len());
        for (i, &base) in bases.iter().enumerate() {
            let seg = Segment::open(&dir, base)?;
            if i + 1 < bases.len() && !seg.load_index_files(&dir)? {
                let scan = seg.scan()?;
                if let Some(bad) = scan.bad {
                    tracing::warn!(segment = %seg.path.display(), position = bad.position, reason = %bad.error.describe(),
                        "sealed segment has a corrupt record; reads reaching it will fail");
                }
                *seg.index.write().unwrap_or_else(|e| e.into_inner()) = scan.index;
                if mode == Mode::Writer {
                    seg.write_index_files(&dir)?;
                }
            }
            segments.push(Arc::new(seg));
        }
        let last = segments
            .last()
            .cloned()
            .ok_or_else(|| Error::io(&dir, std::io::Error::other("no segment")))?;
        let scan = last.scan()?;
        let mut valid_len = scan.valid_len;
        if let Some(bad) = scan.bad {
            if let Some(next_good) = last.valid_frame_after(bad.position, scan.next_offset)? {
                return Err(Error::Corrupt {
                    segment: last.path.clone(),
                    position: bad.position,
                    reason: format!(
                        "{} in the middle of the segment (valid records follow at byte {next_good})",
                        bad.error.describe()
                    ),
                });
            }
            let size = last.size()?;
            match mode {
                Mode::Writer => {
                    let dropped = last.count_frames_from(bad.position)?;
                    tracing::warn!(
                        segment = %last.path.display(), position = bad.position, bytes = size - bad.position,
                        records = dropped, reason = %bad.error.describe(),
                        "truncating torn tail left by a crash ({} bytes, {} unacknowledged records dropped)",
                        size - bad.position, dropped
                    );
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&last.path)
                        .map_err(|e| Error::io(&last.path, e))?;
                    f.set_len(bad.position)
                        .map_err(|e| Error::io(&last.path, e))?;
                    f.sync_all().map_err(|e| Error::io(&last.path, e))?;
                }
                // A reader may be looking at a frame the writer is still writing.
                Mode::ReadOnly => valid_len = bad.position,
            }
        }
        let next_offset = scan.next_offset.unwrap_or(last.base_offset);
        *last.index.write().unwrap_or_else(|e| e.into_inner()) = scan.index;
        let active = match mode {
            Mode::Writer => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(|e| Error::io(&last.path, e))?;
                Some(Active {
                    file,
                    position: valid_len,
                    next_offset,
                    staged: Vec::new(),
                    staged_index: Vec::new(),
                    cached_from: 0,
                    sealed: None,
                })
            }
            Mode::ReadOnly => None,
        };
        let log_start = segments[0].base_offset;
        Ok(Partition {
            topic,
            id,
            dir,
            segments: RwLock::new(segments),
            high_watermark: AtomicU64::new(next_offset),
            log_start: AtomicU64::new(log_start),
            active: Mutex::new(active),
            tail: Mutex::new(Tail { valid_len }),
        })
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start(&self) -> u64 {
        self.log_start.load(Ordering::Acquire)
    }

    fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes stored, over all segments.
    pub fn size_bytes(&self) -> Result<u64> {
        self.segments().iter().map(|s| s.size()).sum()
    }

    // ---- writer side -------------------------------------------------------

    /// Encodes records into the staging buffer and assigns their offsets.
    /// Nothing is visible until [`Partition::flush`], `sync` and
    /// [`Partition::publish`] ran. Rolls to a new segment first when the
    /// active one would grow past `segment_bytes`.
    pub fn stage(
        &self,
        records: &[&NewRecord],
        now: i64,
        segment_bytes: u64,
        cache_window: Option<u64>,
        out: &mut Vec<Appended>,
    ) -> Result<()> {
        let mut guard = lock(&self.active);
        let active = guard.as_mut().ok_or(Error::ReadOnly("append"))?;
        for r in records {
            let len = codec::frame_len(r.key.as_deref(), &r.value, &r.headers) as u64;
            if active.position > 0 && active.position + len > segment_bytes {
                self.roll(active, cache_window)?;
            }
            let timestamp = r.timestamp.unwrap_or(now);
            let offset = active.next_offset;
            active
                .staged_index
                .push((offset, active.position, timestamp));
            codec::encode(
                &mut active.staged,
                offset,
                timestamp,
                r.key.as_deref(),
                &r.value,
                &r.headers,
            );
            active.position += len;
            active.next_offset += 1;
            out.push(Appended {
                partition: self.id,
                offset,
                timestamp,
            });
        }
        Ok(())
    }

    /// Writes staged bytes to the active file (not yet durable). Returns the
    /// file to sync, if anything was written.
    pub fn flush(&self) -> Result<Option<File>> {
        let mut guard = lock(&self.active);
        let Some(active) = guard.as_mut() else {
            return Ok(None);
        };
        if active.staged.is_empty() {
            return Ok(None);
        }
        let path = self.active_path();
        active
            .file
            .write_all(&active.staged)
            .map_err(|e| Error::io(&path, e))?;
        active.staged.clear();
        active
            .file
            .try_clone()
            .map(Some)
            .map_err(|e| Error::io(&path, e))
    }

    /// After a successful sync: indexes the new records and makes them visible.
    pub fn publish(&self) {
        let mut guard = lock(&self.active);
        let Some(active) = guard.as_mut() else { return };
        if let Some(seg) = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
        {
            let mut index = seg.index.write().unwrap_or_else(|e| e.into_inner());
            for &(offset, position, ts) in active
                .staged_index
                .iter()
                .filter(|(o, _, _)| *o >= seg.base_offset)
            {
                index.observe(offset, position, ts);
            }
        }
        active.staged_index.clear();
        self.high_watermark
            .store(active.next_offset, Ordering::Release);
    }

    /// After a successful sync: releases the page cache of this partition's
    /// bytes older than the newest `window` bytes. They are on disk, so a
    /// reader that needs them again reads them back; a consumer at the tail
    /// finds its records cached. Without this every append fills memory
    /// pages the kernel has not used lately, which on virtual machines that
    /// hand free memory back to their host costs several times more than
    /// refilling pages just released.
    pub fn release_cache(&self, window: u64) {
        let mut guard = lock(&self.active);
        let Some(active) = guard.as_mut() else { return };
        if active.position >= window {
            if let Some((file, from)) = active.sealed.take() {
                release_cache(&file, from, None);
            }
        }
        let keep_from = active.position.saturating_sub(window);
        // Released in steps of a quarter window, not a sliver per commit.
        if keep_from >= active.cached_from + (window / 4).max(1 << 20) {
            release_cache(&active.file, active.cached_from, Some(keep_from));
            active.cached_from = keep_from;
        }
    }

    fn active_path(&self) -> PathBuf {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .map(|s| s.path.clone())
            .unwrap_or_default()
    }

    /// Seals the active segment (after making it durable) and starts a new one.
    fn roll(&self, active: &mut Active, cache_window: Option<u64>) -> Result<()> {
        let path = self.active_path();
        active
            .file
            .write_all(&active.staged)
            .map_err(|e| Error::io(&path, e))?;
        active.staged.clear();
        active.file.sync_data().map_err(|e| Error::io(&path, e))?;
        let sealed = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned();
        if let Some(seg) = &sealed {
            {
                let mut index = seg.index.write().unwrap_or_else(|e| e.into_inner());
                for &(offset, position, ts) in &active.staged_index {
                    index.observe(offset, position, ts);
                }
            }
            // Not fsynced: an index file lost or torn by a crash is detected
            // and rebuilt on open (see `segment`), so it costs the roll no
            // extra fsync.
            seg.write_index_files(&self.dir)?;
        }
        active.staged_index.clear();
        // The sealed records are durable: publish them before moving on.
        self.high_watermark
            .store(active.next_offset, Ordering::Release);
        let base = active.next_offset;
        create_segment_file(&self.dir, base)?;
        let seg = Arc::new(Segment::open(&self.dir, base)?);
        let file = OpenOptions::new()
            .append(true)
            .open(&seg.path)
            .map_err(|e| Error::io(&seg.path, e))?;
        let sealed = std::mem::replace(&mut active.file, file);
        if cache_window.is_some() {
            // A segment sealed before this one that is still cached is
            // released now; the one just sealed keeps its tail until the
            // new one has grown past the window.
            if let Some((file, from)) = active.sealed.take() {
                release_cache(&file, from, None);
            }
            active.sealed = Some((sealed, active.cached_from));
        }
        active.cached_from = 0;
        active.position = 0;
        self.segments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(seg);
        tracing::debug!(topic = %self.topic, partition = self.id, base, "rolled to a new segment");
        Ok(())
    }

    /// Deletes whole sealed segments past the retention limits.
    pub fn apply_retention(&self, retention: &Retention, now: i64) -> Result<()> {
        if retention.is_forever() {
            return Ok(());
        }
        let segments = self.segments();
        let sizes: Vec<u64> = segments.iter().map(|s| s.size()).collect::<Result<_>>()?;
        let mut total: u64 = sizes.iter().sum();
        let mut drop = 0;
        for (seg, size) in segments
            .iter()
            .zip(&sizes)
            .take(segments.len().saturating_sub(1))
        {
            let max_ts = seg
                .index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .max_timestamp;
            let too_old = retention
                .max_age()
                .is_some_and(|age| max_ts < now - age.as_millis() as i64);
            let too_big = retention.max_bytes().is_some_and(|max| total > max);
            if !(too_old || too_big) {
                break;
            }
            total -= size;
            drop += 1;
        }
        if drop == 0 {
            return Ok(());
        }
        let removed: Vec<Arc<Segment>> = {
            let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
            let removed = segs.drain(..drop).collect();
            self.log_start.store(segs[0].base_offset, Ordering::Release);
            removed
        };
        for seg in &removed {
            seg.remove_files(&self.dir);
        }
        sync_dir(&self.dir)?;
        tracing::info!(topic = %self.topic, partition = self.id, segments = drop, log_start = self.log_start(), "retention deleted old segments");
        Ok(())
    }

    // ---- reader side -------------------------------------------------------

    /// Reads up to `max` records from `from`, never past the high watermark.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Record>> {
        let hw = self.high_watermark();
        let start = self.log_start();
        if from < start || from > hw {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.to_string(),
                partition: self.id,
                offset: from,
                start,
                end: hw,
            });
        }
        let mut out = Vec::new();
        if from == hw || max == 0 {
            return Ok(out);
        }
        let segments = self.segments();
        let mut i = segments
            .partition_point(|s| s.base_offset <= from)
            .saturating_sub(1);
        let mut offset = from;
        while out.len() < max && offset < hw && i < segments.len() {
            let seg = &segments[i];
            let pos = seg
                .index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .floor(offset)
                .map_or(0, |e| e.position);
            let done = self.read_segment(seg, pos, offset, hw, max, &mut out)?;
            offset = out.last().map_or(offset, |r| r.offset + 1);
            if !done {
                break;
            }
            i += 1;
        }
        Ok(out)
    }

    /// Reads frames of one segment from `pos`, keeping those at or after
    /// `from` and before `hw`. Returns true if the segment was exhausted.
    fn read_segment(
        &self,
        seg: &Segment,
        mut pos: u64,
        from: u64,
        hw: u64,
        max: usize,
        out: &mut Vec<Record>,
    ) -> Result<bool> {
        const CHUNK: usize = 256 * 1024;
        let corrupt = |position: u64, e: FrameError| Error::Corrupt {
            segment: seg.path.clone(),
            position,
            reason: e.describe(),
        };
        // The offset after the last frame decoded: once it reaches the high
        // watermark, what follows may be a frame the writer is still writing.
        let mut next: Option<u64> = None;
        loop {
            if next.is_some_and(|n| n >= hw) {
                return Ok(false);
            }
            let buf = seg.read_at(pos, CHUNK)?;
            if buf.is_empty() {
                return Ok(true);
            }
            let mut rel = 0;
            loop {
                match codec::decode(&buf[rel..]) {
                    Ok(f) => {
                        next = Some(f.offset + 1);
                        if f.offset >= hw {
                            return Ok(false);
                        }
                        if f.offset >= from {
                            out.push(
                                f.to_record(&self.topic, self.id)
                                    .map_err(|e| corrupt(pos + rel as u64, e))?,
                            );
                            if out.len() >= max {
                                return Ok(false);
                            }
                        }
                        rel += f.len;
                    }
                    Err(FrameError::Incomplete) if rel > 0 => break,
                    Err(FrameError::Incomplete) if buf.len() < codec::FRAME_HEADER => {
                        return Ok(true)
                    }
                    Err(FrameError::Incomplete) => {
                        // A frame larger than the chunk: read it whole.
                        let need = u32::from_le_bytes(buf[..4].try_into().unwrap_or_default())
                            as usize
                            + codec::FRAME_HEADER;
                        let whole = seg.read_at(pos, need)?;
                        if whole.len() < need {
                            // The end of a sealed segment, or bytes the writer has not finished.
                            return Err(corrupt(pos, FrameError::Incomplete));
                        }
                        let f = codec::decode(&whole).map_err(|e| corrupt(pos, e))?;
                        next = Some(f.offset + 1);
                        if f.offset >= hw {
                            return Ok(false);
                        }
                        if f.offset >= from {
                            out.push(
                                f.to_record(&self.topic, self.id)
                                    .map_err(|e| corrupt(pos, e))?,
                            );
                            if out.len() >= max {
                                return Ok(false);
                            }
                        }
                        rel = f.len;
                        break;
                    }
                    Err(e) => return Err(corrupt(pos + rel as u64, e)),
                }
                if rel >= buf.len() {
                    break;
                }
            }
            pos += rel as u64;
        }
    }

    /// The timestamp of the record at `offset`; `None` before the log start
    /// or at and past the high watermark.
    ///
    /// Cheap: the sparse index (an entry every 4 KiB) gives a position at
    /// most a few KiB before the record; the frames in between are skipped
    /// by their length fields alone, and only the record asked for is read
    /// whole and checked against its CRC, so a corrupt record is an error
    /// naming its position, never a wrong timestamp.
    pub fn timestamp_at(&self, offset: u64) -> Result<Option<i64>> {
        const CHUNK: usize = 2 * crate::segment::INDEX_INTERVAL as usize;
        let hw = self.high_watermark();
        if offset < self.log_start() || offset >= hw {
            return Ok(None);
        }
        let segments = self.segments();
        let i = segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let Some(seg) = segments.get(i) else {
            return Ok(None);
        };
        let corrupt = |position: u64, e: FrameError| Error::Corrupt {
            segment: seg.path.clone(),
            position,
            reason: e.describe(),
        };
        let mut pos = seg
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .floor(offset)
            .map_or(0, |e| e.position);
        loop {
            let buf = seg.read_at(pos, CHUNK)?;
            let mut rel = 0usize;
            while rel + codec::FRAME_HEADER + 16 <= buf.len() {
                let head = &buf[rel..];
                let body_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                if !(codec::MIN_BODY..=codec::MAX_BODY).contains(&body_len) {
                    return Err(corrupt(
                        pos + rel as u64,
                        FrameError::BadLength(body_len as u32),
                    ));
                }
                let at = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
                let len = codec::FRAME_HEADER + body_len;
                if at >= offset {
                    // The record asked for (or, were it missing, the first
                    // after it): read whole and verified before it is believed.
                    let whole;
                    let frame_bytes = if head.len() >= len {
                        &head[..len]
                    } else {
                        whole = seg.read_at(pos + rel as u64, len)?;
                        &whole[..]
                    };
                    let f = codec::decode(frame_bytes).map_err(|e| corrupt(pos + rel as u64, e))?;
                    return Ok((f.offset < hw).then_some(f.timestamp));
                }
                rel += len;
            }
            if rel == 0 {
                // Not even one frame header left in the segment: below the
                // high watermark that means the file was cut.
                return Err(corrupt(pos, FrameError::Incomplete));
            }
            pos += rel as u64;
        }
    }

    /// The first offset whose record has a timestamp at or after `ts`, or the
    /// high watermark if there is none.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<u64> {
        let hw = self.high_watermark();
        for seg in self.segments() {
            let entry = {
                let index = seg.index.read().unwrap_or_else(|e| e.into_inner());
                if index.max_timestamp < ts && !index.entries.is_empty() {
                    continue;
                }
                index.time_floor(ts)
            };
            let from = entry.map_or(seg.base_offset, |e| e.offset);
            let mut offset = from;
            loop {
                let batch = self.read(offset, 512)?;
                let Some(last) = batch.last() else { break };
                if let Some(r) = batch.iter().find(|r| r.timestamp >= ts) {
                    return Ok(r.offset);
                }
                offset = last.offset + 1;
                if offset >= hw {
                    return Ok(hw);
                }
            }
        }
        Ok(hw)
    }

    /// For read-only handles: picks up what the writer appended since.
    pub fn refresh(&self) -> Result<()> {
        let mut tail = lock(&self.tail);
        // New segments the writer rolled to.
        let known: Vec<u64> = self.segments().iter().map(|s| s.base_offset).collect();
        let mut bases: Vec<u64> = segment_bases(&self.dir)?;
        bases.retain(|b| known.last().is_none_or(|l| b > l));
        loop {
            let last = self.segments().last().cloned().ok_or(Error::Closed)?;
            let mut index =
                std::mem::take(&mut *last.index.write().unwrap_or_else(|e| e.into_inner()));
            let scan = last.scan_from(tail.valid_len, &mut index);
            *last.index.write().unwrap_or_else(|e| e.into_inner()) = index;
            let scan = scan?;
            tail.valid_len = scan.valid_len;
            if let Some(next) = scan.next_offset {
                self.high_watermark.store(next, Ordering::Release);
            }
            if bases.is_empty() {
                return Ok(());
            }
            let base = bases.remove(0);
            let seg = Segment::open(&self.dir, base)?;
            self.segments
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(Arc::new(seg));
            tail.valid_len = 0;
        }
    }
}

/// Drops the clean cached pages of `file` from `from` to `to` (`None`: to
/// the end). Advice only: a failure changes nothing but memory use.
#[cfg(target_os = "linux")]
fn release_cache(file: &File, from: u64, to: Option<u64>) {
    // The kernel keeps pages only partly inside the range. Bytes before
    // `from` were released already, so the range starts at the page
    // holding `from` (4 KiB or a multiple of it), or the boundary pages of
    // successive releases would stay cached for good.
    let from = from & !4095;
    let len = match to {
        None => None,
        Some(to) => match std::num::NonZeroU64::new(to.saturating_sub(from)) {
            Some(len) => Some(len),
            None => return,
        },
    };
    if let Err(e) = rustix::fs::fadvise(file, from, len, rustix::fs::Advice::DontNeed) {
        tracing::debug!(error = %e, "releasing the page cache of a segment failed");
    }
}

#[cfg(not(target_os = "linux"))]
fn release_cache(_file: &File, _from: u64, _to: Option<u64>) {}

/// Base offsets of the segment files in a partition directory, ascending.
pub fn segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

fn create_segment_file(dir: &Path, base: u64) -> Result<()> {
    let path = log_path(dir, base);
    let f = files::open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    f.sync_all().map_err(|e| Error::io(&path, e))?;
    sync_dir(dir)
}
