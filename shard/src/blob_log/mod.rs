//! The per-shard blob log: append-only segment files of chunk records,
//! written with O_DIRECT through io_uring, made durable by group commit
//! (see `docs/architecture.md`, "Blob log").
//!
//! Owns: the segment files in one directory, the tail where the next record
//! goes, and the group-commit state. Runs on the core that owns the shard: a
//! [`BlobLog`] is `!Send`, its methods take `&self` and keep their state in
//! `Rc`/`RefCell`/`Cell`; no borrow is ever held across an `.await`. It waits
//! only on io_uring completions (writes, reads, fdatasync, file creation) and
//! on other appends' group commit; it never blocks the thread.
//!
//! Bounds: [`BLOB_LOG_APPENDS_INFLIGHT_MAX`] appends at once (later ones wait for a
//! slot), so the commit group's waiters and write window are bounded; one
//! open file per segment; one fdatasync in flight at a time.
//!
//! The pure parts live apart from this I/O shell: `record` (format, CRCs,
//! scan), `commit_group` (which appends the next fdatasync covers) and the
//! naming and placement rules in `segment`.
//!
//! Choices:
//! - **Write path.** Each append gets its offset synchronously, then writes
//!   from a detached task, so a caller that drops its future cannot leave a
//!   reserved range unwritten (group commit waits on every earlier append). A
//!   full chunk's buffer is written as is (its record fills the whole
//!   `CHUNK_BUF_BYTES` allocation) and handed back. A shorter chunk is copied
//!   into a right-sized DMA buffer, because glommio writes whole buffers and
//!   `DmaBuffer::trim_to_size` cannot be undone, which would spoil the pooled
//!   `ChunkBuf`; only the last chunk of an object pays this copy.
//! - **Durability.** An append returns once a sync that started after it
//!   *and every earlier append* had landed has finished (see
//!   `commit_group`). Each sync fdatasyncs every segment written since the
//!   previous sync started.
//! - **Rolling.** A new segment is created only after every record of the
//!   older segments is durable, and the directory is synced after creating
//!   it. So only the newest segment can ever end in a torn record. Appends
//!   placed in the new segment wait for it; the pause is one fdatasync plus a
//!   file creation per `segment_bytes_max` written.
//! - **Recovery.** `open` scans only the newest segment (the only one that
//!   can end in a torn write), keeps every valid record, truncates it after
//!   the last one and syncs it. Damage with valid records after it is bit
//!   rot, not a torn tail: it is skipped and reported, never cut, since the
//!   records after it may be acknowledged (see `Segment::recover`). The
//!   caller checks its index against the report ([`RecoveryReport::may_hold`]).
//!   A bad record in an older segment is reported when read or scrubbed.
//! - **Failure.** A failed write, fdatasync or segment creation poisons the
//!   log: every waiting append fails and later appends get
//!   [`BlobLogError::Fatal`]. Reads keep working. A full disk poisons it
//!   too, but that passes: see `no_space`.
//! - **glommio quirks.** `spawn_local` polls the new task before returning,
//!   so tasks are spawned only with no `RefCell` borrow held. glommio's
//!   per-thread iopoll probe is primed with a one-block file
//!   (`.iopoll-probe` in the log directory) before any segment is opened;
//!   see [`prime_iopoll_probe`].

mod commit_group;
mod error;
mod no_space;
mod record;
mod segment;
mod space;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use glommio::io::{Directory, DmaBuffer};
use glommio::sync::{Semaphore, StaticPermit};

use crate::chunk::ChunkBuf;
use crate::chunk_hash::ChunkHash;
use crate::limits::{
    BLOB_LOG_APPENDS_INFLIGHT_MAX, CHUNK_BUF_BYTES, CHUNK_BYTES, IO_ALIGN_BYTES,
    RECORD_HEADER_BYTES,
};

pub use error::{BlobLogError, PoisonCause, RecordError};
#[doc(hidden)]
pub use record::fuzz_segment_bytes as fuzz_record_bytes;
#[doc(hidden)]
pub use record::segment_of as fuzz_record_seed;
pub use segment::{file_name as segment_file_name, prime_iopoll_probe};
pub use space::{dead_ranges, RecordHold, SegmentSpace};

use commit_group::{AppendSeq, CommitGroup, Durability, Poisoned, SyncToken};
use segment::{io_error, Placement, Segment, Tail, WriteBuf};

/// Where a record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobLocation {
    pub segment: u64,
    pub offset_bytes: u64,
    pub size_bytes: u32,
}

/// The stored form of a location (the blob index's value, and the answer
/// to a forwarded append).
impl From<BlobLocation> for shoal_proto::meta::BlobLocation {
    fn from(at: BlobLocation) -> Self {
        shoal_proto::meta::BlobLocation {
            segment: at.segment,
            offset_bytes: at.offset_bytes,
            size_bytes: at.size_bytes,
        }
    }
}

impl From<shoal_proto::meta::BlobLocation> for BlobLocation {
    fn from(at: shoal_proto::meta::BlobLocation) -> Self {
        BlobLocation {
            segment: at.segment,
            offset_bytes: at.offset_bytes,
            size_bytes: at.size_bytes,
        }
    }
}

/// Counters since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobLogStats {
    /// Appends acknowledged as durable.
    pub appends: u64,
    /// fdatasync calls on segment files (group commits and recovery).
    pub fsyncs: u64,
    /// Group commits finished.
    pub group_commits: u64,
    /// Record bytes written, headers and padding included.
    pub bytes_written: u64,
    /// Most appends one group commit made durable.
    pub group_commit_batch_max: u64,
    /// Group commits by how many appends each made durable: entry `i`
    /// counts batches of at most `GROUP_COMMIT_BATCH_BOUNDS[i]` appends
    /// (and more than the previous bound); the last entry counts larger
    /// ones. Not cumulative.
    pub group_commit_batches: [u64; GROUP_COMMIT_BATCH_BOUNDS.len() + 1],
    /// Bytes given back to the file system (holes punched, segments
    /// removed).
    pub released_bytes: u64,
    /// Segments removed because none of their records was live.
    pub segments_removed: u64,
}

/// Upper bounds of the group-commit batch-size buckets in [`BlobLogStats`].
pub const GROUP_COMMIT_BATCH_BOUNDS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// What `open` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in the directory after opening.
    pub segments: usize,
    /// Valid records found in the scanned (newest) segment.
    pub records: u64,
    /// Bytes cut off the newest segment's end.
    pub truncated_bytes: u64,
    /// Damaged byte ranges of the newest segment that valid records follow
    /// (kept; a record indexed there cannot be read).
    pub damaged: Vec<Range<u64>>,
    /// Where the next record goes: records indexed at or past it were lost.
    pub tail: BlobLocation,
}

impl RecoveryReport {
    /// Whether an indexed record at `at` may still be readable: its
    /// segment is there, it ends before the tail and lies in no damaged
    /// range. (Older segments are not scanned: damage there shows on read.)
    pub fn may_hold(&self, at: BlobLocation, segment_present: impl Fn(u64) -> bool) -> bool {
        if at.segment > self.tail.segment || !segment_present(at.segment) {
            return false;
        }
        if at.segment < self.tail.segment {
            return true;
        }
        let end = at.offset_bytes + BlobLog::record_span(at.size_bytes);
        end <= self.tail.offset_bytes
            && !self
                .damaged
                .iter()
                .any(|bad| at.offset_bytes < bad.end && bad.start < end)
    }
}

/// A task waiting for a segment being created; `None` if creation failed.
type SegmentWaiter = oneshot::Sender<Option<Rc<Segment>>>;

/// A task waiting for its append (or every append before a roll) to be durable.
type DurableWaiter = oneshot::Sender<Result<(), Poisoned>>;

enum SegmentSlot {
    Ready(Rc<Segment>),
    Creating(Vec<SegmentWaiter>),
}

/// An append-only, group-committed log of chunk records on one core.
pub struct BlobLog {
    shared: Rc<Shared>,
}

struct Shared {
    dir_path: PathBuf,
    dir: Directory,
    segment_bytes_max: u64,
    permits: Rc<Semaphore>,
    state: RefCell<State>,
    stats: Cell<BlobLogStats>,
    /// The file system refused to punch a hole (see `space`).
    punch_unsupported: Cell<bool>,
}

struct State {
    tail: Tail,
    group: CommitGroup<DurableWaiter>,
    segments: BTreeMap<u64, SegmentSlot>,
    /// Segments with writes completed since the last sync started.
    dirty: Vec<Rc<Segment>>,
    poison: Option<PoisonCause>,
    /// Holds by the tail segment when each was taken (see `space`).
    holds: BTreeMap<u64, usize>,
}

impl BlobLog {
    /// Opens (creating if needed) the log in `dir`, recovers the newest
    /// segment and returns the log with what recovery found.
    ///
    /// `segment_bytes_max` must hold the largest record
    /// ([`CHUNK_BUF_BYTES`]) and be a multiple of [`IO_ALIGN_BYTES`].
    pub async fn open(
        dir: &Path,
        segment_bytes_max: u64,
    ) -> Result<(BlobLog, RecoveryReport), BlobLogError> {
        if segment_bytes_max < CHUNK_BUF_BYTES as u64
            || !segment_bytes_max.is_multiple_of(IO_ALIGN_BYTES as u64)
        {
            return Err(BlobLogError::BadSegmentSize {
                segment_bytes_max,
                min_bytes: CHUNK_BUF_BYTES as u64,
                align_bytes: IO_ALIGN_BYTES as u64,
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
        let directory = Directory::open(dir)
            .await
            .map_err(|e| io_error("open directory", dir, e))?;
        segment::prime_iopoll_probe(dir).await?;
        let numbers = list_segments(&directory, dir)?;

        let mut segments = BTreeMap::new();
        let mut fsyncs = 0;
        let (tail, recovered) = match numbers.last() {
            None => {
                let segment = Segment::create(dir, 0).await?;
                directory
                    .sync()
                    .await
                    .map_err(|e| io_error("sync directory", dir, e))?;
                sync_parent(dir).await?;
                segments.insert(0, SegmentSlot::Ready(Rc::new(segment)));
                let tail = Tail {
                    segment: 0,
                    offset_bytes: 0,
                };
                (tail, segment::Recovered::default())
            }
            Some(&newest) => {
                for &number in &numbers {
                    let writable = number == newest;
                    let segment = Segment::open(dir, number, writable).await?;
                    segments.insert(number, SegmentSlot::Ready(Rc::new(segment)));
                }
                let SegmentSlot::Ready(segment) = &segments[&newest] else {
                    unreachable!("segments opened above are ready");
                };
                let recovered = segment.recover().await?;
                fsyncs += 1;
                let tail = Tail {
                    segment: newest,
                    offset_bytes: recovered.end_offset_bytes,
                };
                (tail, recovered)
            }
        };
        let report = RecoveryReport {
            segments: segments.len(),
            records: recovered.records,
            truncated_bytes: recovered.truncated_bytes,
            damaged: recovered.damaged,
            tail: BlobLocation {
                segment: tail.segment,
                offset_bytes: tail.offset_bytes,
                size_bytes: 0,
            },
        };
        tracing::info!(
            dir = %dir.display(),
            segments = report.segments,
            records = report.records,
            truncated_bytes = report.truncated_bytes,
            damaged_ranges = report.damaged.len(),
            tail_segment = tail.segment,
            tail_offset_bytes = tail.offset_bytes,
            "blob log opened"
        );
        let shared = Shared {
            dir_path: dir.to_path_buf(),
            dir: directory,
            segment_bytes_max,
            permits: Rc::new(Semaphore::new(BLOB_LOG_APPENDS_INFLIGHT_MAX as u64)),
            state: RefCell::new(State {
                tail,
                group: CommitGroup::new(BLOB_LOG_APPENDS_INFLIGHT_MAX),
                segments,
                dirty: Vec::with_capacity(2),
                poison: None,
                holds: BTreeMap::new(),
            }),
            stats: Cell::new(BlobLogStats {
                fsyncs,
                ..BlobLogStats::default()
            }),
            punch_unsupported: Cell::new(false),
        };
        Ok((
            BlobLog {
                shared: Rc::new(shared),
            },
            report,
        ))
    }

    /// Writes the record header into `buf`'s header space, appends header
    /// and payload (padded to [`IO_ALIGN_BYTES`]) at the tail, waits until
    /// the record is durable (group commit), and returns where it is plus
    /// the buffer for reuse. `sha256` is the payload's hash, stored in the
    /// header and checked again on every read. On error the buffer is
    /// dropped.
    pub async fn append(
        &self,
        buf: ChunkBuf,
        sha256: ChunkHash,
    ) -> Result<(BlobLocation, ChunkBuf), BlobLogError> {
        let shared = &self.shared;
        shared.refuse_if_poisoned()?;
        let permit = shared
            .permits
            .acquire_static_permit(1)
            .await
            .expect("the append semaphore is never closed");

        let (mut dma, len) = buf.into_dma();
        let record_bytes = record::record_bytes(len);
        // From here to the spawn there is no await: the reserved range is
        // always written (or the log poisoned), never abandoned.
        let (placement, seq) = shared.reserve(record_bytes as u64)?;
        {
            let bytes = dma.as_bytes_mut();
            let (header, rest) = bytes.split_at_mut(RECORD_HEADER_BYTES);
            record::encode_header(header, &rest[..len], &sha256, placement.offset_bytes);
            rest[len..record_bytes - RECORD_HEADER_BYTES].fill(0);
        }
        let (write, kept) = if record_bytes == dma.len() {
            (WriteBuf::Lent(Rc::new(dma)), None)
        } else {
            let mut copy = glommio::allocate_dma_buffer(record_bytes);
            copy.as_bytes_mut()
                .copy_from_slice(&dma.as_bytes()[..record_bytes]);
            (WriteBuf::Owned(copy), Some(dma))
        };
        let location = BlobLocation {
            segment: placement.segment,
            offset_bytes: placement.offset_bytes,
            size_bytes: len as u32,
        };
        let task = glommio::spawn_local(Shared::write_and_commit(
            shared.clone(),
            location,
            seq,
            write,
            permit,
        ));
        let (result, lent) = task
            .detach()
            .await
            .expect("blob log append tasks are never cancelled");
        let dma = kept.or(lent).expect("the chunk buffer comes back");
        result.map(|location| (location, ChunkBuf::from_dma(dma, len)))
    }

    /// Reads the record at `loc`, verifies magic, version, length, header
    /// CRC, payload CRC32C and that the stored SHA-256 is `expected_sha256`,
    /// and returns the payload (one copy out of the DMA buffer).
    pub async fn read(
        &self,
        loc: BlobLocation,
        expected_sha256: &ChunkHash,
    ) -> Result<Bytes, BlobLogError> {
        let corrupt = |reason| BlobLogError::Corrupt {
            segment: loc.segment,
            offset_bytes: loc.offset_bytes,
            reason,
        };
        let size = loc.size_bytes as usize;
        if size > CHUNK_BYTES {
            return Err(BlobLogError::TooLarge {
                size_bytes: size as u64,
                max: CHUNK_BYTES as u64,
            });
        }
        if !loc.offset_bytes.is_multiple_of(IO_ALIGN_BYTES as u64) {
            return Err(corrupt(RecordError::Misaligned {
                offset_bytes: loc.offset_bytes,
                align_bytes: IO_ALIGN_BYTES as u64,
            }));
        }
        let segment = self.shared.ready_segment(loc.segment)?;
        let record_bytes = record::record_bytes(size);
        let data = segment.read(loc.offset_bytes, record_bytes).await?;
        if data.len() < record_bytes {
            return Err(corrupt(RecordError::Truncated {
                needed_bytes: record_bytes as u64,
                available_bytes: data.len() as u64,
            }));
        }
        let header =
            record::decode_header(&data, loc.offset_bytes, record_bytes as u64).map_err(corrupt)?;
        if header.payload_bytes != loc.size_bytes {
            return Err(corrupt(RecordError::SizeMismatch {
                stored_bytes: header.payload_bytes.into(),
                expected_bytes: loc.size_bytes.into(),
            }));
        }
        let payload = &data[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + size];
        record::verify_payload(&header, payload).map_err(corrupt)?;
        if header.sha256 != *expected_sha256 {
            return Err(BlobLogError::HashMismatch {
                segment: loc.segment,
                offset_bytes: loc.offset_bytes,
            });
        }
        Ok(Bytes::copy_from_slice(payload))
    }

    /// Bytes a record with a payload of `size_bytes` takes in a segment:
    /// header, payload and padding.
    pub fn record_span(size_bytes: u32) -> u64 {
        record::record_bytes(size_bytes as usize) as u64
    }

    /// The numbers of this log's segment files, oldest first.
    pub fn segment_numbers(&self) -> Vec<u64> {
        self.shared
            .state
            .borrow()
            .segments
            .keys()
            .copied()
            .collect()
    }

    /// Counters since open.
    pub fn stats(&self) -> BlobLogStats {
        self.shared.stats.get()
    }

    /// Why the log refuses appends, if it does.
    pub fn poisoned(&self) -> Option<PoisonCause> {
        self.shared.state.borrow().poison
    }
}

impl Shared {
    fn fatal(&self) -> BlobLogError {
        let cause = self
            .state
            .borrow()
            .poison
            .expect("a failed commit group has a recorded cause");
        BlobLogError::Fatal { cause }
    }

    fn refuse_if_poisoned(&self) -> Result<(), BlobLogError> {
        match self.state.borrow().poison {
            Some(cause) => Err(BlobLogError::Fatal { cause }),
            None => Ok(()),
        }
    }

    fn update_stats(&self, update: impl FnOnce(&mut BlobLogStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    /// Takes the append's sequence number and place; starts a segment roll
    /// when the place is in a new segment.
    fn reserve(self: &Rc<Self>, record_bytes: u64) -> Result<(Placement, AppendSeq), BlobLogError> {
        let (placement, seq) = {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            let Ok(seq) = state.group.reserve() else {
                let cause = state.poison.expect("a poisoned group has a cause");
                return Err(BlobLogError::Fatal { cause });
            };
            let placement = state.tail.place(record_bytes, self.segment_bytes_max);
            if placement.rolled {
                let previous = state
                    .segments
                    .insert(placement.segment, SegmentSlot::Creating(Vec::new()));
                assert!(previous.is_none(), "segment {} exists", placement.segment);
            }
            (placement, seq)
        };
        if placement.rolled {
            // glommio polls a spawned task at once: spawn with no borrow held.
            glommio::spawn_local(self.clone().roll(placement.segment, seq)).detach();
        }
        Ok((placement, seq))
    }

    /// Writes one reserved record and waits for its group commit. Runs
    /// detached; holds `_permit` until the append is settled.
    async fn write_and_commit(
        self: Rc<Self>,
        location: BlobLocation,
        seq: AppendSeq,
        write: WriteBuf,
        _permit: StaticPermit,
    ) -> (Result<BlobLocation, BlobLogError>, Option<DmaBuffer>) {
        let segment = match self.segment(location.segment).await {
            Ok(segment) => segment,
            Err(e) => {
                let lent = match write {
                    WriteBuf::Lent(buf) => Rc::try_unwrap(buf).ok(),
                    WriteBuf::Owned(_) => None,
                };
                return (Err(e), lent);
            }
        };
        let (written, lent) = segment.write(write, location.offset_bytes).await;
        if let Err(e) = written {
            let (segment, offset_bytes) = (location.segment, location.offset_bytes);
            let cause = if e.is_no_space() {
                tracing::warn!(segment, offset_bytes, error = %e, "blob log write found the disk full; refusing appends until it is recovered");
                PoisonCause::NoSpace {
                    segment,
                    offset_bytes,
                }
            } else {
                tracing::error!(segment, offset_bytes, error = %e, "blob log write failed; poisoning the log");
                PoisonCause::WriteFailed {
                    segment,
                    offset_bytes,
                }
            };
            self.poison(cause);
            return (Err(e), lent);
        }
        let record_bytes = record::record_bytes(location.size_bytes as usize) as u64;
        self.update_stats(|s| s.bytes_written += record_bytes);
        self.write_completed(seq, &segment);
        let result = self.wait_durable(seq).await.map(|()| {
            self.update_stats(|s| s.appends += 1);
            location
        });
        (result, lent)
    }

    fn write_completed(self: &Rc<Self>, seq: AppendSeq, segment: &Rc<Segment>) {
        let due = {
            let mut state = self.state.borrow_mut();
            state.group.write_completed(seq);
            if !state.dirty.iter().any(|s| s.number() == segment.number()) {
                state.dirty.push(segment.clone());
            }
            Self::sync_if_due(&mut state)
        };
        if let Some((token, files)) = due {
            // glommio polls a spawned task at once: spawn with no borrow held.
            glommio::spawn_local(self.clone().sync_loop(token, files)).detach();
        }
    }

    /// Starts a group commit when writes are waiting and none runs; returns
    /// it and the segments it must fdatasync.
    fn sync_if_due(state: &mut State) -> Option<(SyncToken, Vec<Rc<Segment>>)> {
        if !state.group.should_start_sync() {
            return None;
        }
        let token = state.group.sync_started();
        let files = std::mem::replace(&mut state.dirty, Vec::with_capacity(2));
        Some((token, files))
    }

    /// Runs group commits back to back while writes keep completing.
    async fn sync_loop(self: Rc<Self>, mut token: SyncToken, mut files: Vec<Rc<Segment>>) {
        loop {
            let mut failed = None;
            for segment in &files {
                self.update_stats(|s| s.fsyncs += 1);
                if let Err(e) = segment.fdatasync().await {
                    tracing::error!(
                        segment = segment.number(),
                        error = %e,
                        "blob log fdatasync failed; poisoning the log"
                    );
                    failed = Some(segment.number());
                    break;
                }
            }
            if failed.is_none() {
                // Durable, not yet acknowledged.
                crate::crash_point::crash_point("crash::blob_synced");
            }
            let mut state = self.state.borrow_mut();
            let wake = |waiter: DurableWaiter, result| {
                // A dropped receiver only means its task is gone.
                let _ = waiter.send(result);
            };
            if let Some(segment) = failed {
                state.group.sync_finished(token, false, wake);
                Self::poison_locked(&mut state, PoisonCause::SyncFailed { segment });
                return;
            }
            let outcome = state.group.sync_finished(token, true, wake);
            self.update_stats(|s| {
                s.group_commits += 1;
                s.group_commit_batch_max = s.group_commit_batch_max.max(outcome.newly_durable);
                let bucket = GROUP_COMMIT_BATCH_BOUNDS
                    .iter()
                    .position(|&bound| outcome.newly_durable <= bound)
                    .unwrap_or(GROUP_COMMIT_BATCH_BOUNDS.len());
                s.group_commit_batches[bucket] += 1;
            });
            match Self::sync_if_due(&mut state) {
                Some((next_token, next_files)) => {
                    token = next_token;
                    files = next_files;
                }
                None => return,
            }
        }
    }

    /// Waits until append `seq` and every append before it are durable.
    async fn wait_durable(&self, seq: AppendSeq) -> Result<(), BlobLogError> {
        let receiver = {
            let mut state = self.state.borrow_mut();
            match state.group.durability(seq) {
                Durability::Durable => return Ok(()),
                Durability::Failed => {
                    drop(state);
                    return Err(self.fatal());
                }
                Durability::Pending => {
                    let (sender, receiver) = oneshot::channel();
                    state.group.park(seq, sender);
                    receiver
                }
            }
        };
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Poisoned)) | Err(oneshot::Canceled) => Err(self.fatal()),
        }
    }

    /// The segment an append was placed in, waiting while it is created.
    async fn segment(&self, number: u64) -> Result<Rc<Segment>, BlobLogError> {
        let receiver = {
            let mut state = self.state.borrow_mut();
            if let Some(cause) = state.poison {
                return Err(BlobLogError::Fatal { cause });
            }
            match state.segments.get_mut(&number) {
                Some(SegmentSlot::Ready(segment)) => return Ok(segment.clone()),
                Some(SegmentSlot::Creating(waiters)) => {
                    let (sender, receiver) = oneshot::channel();
                    waiters.push(sender);
                    receiver
                }
                None => return Err(BlobLogError::UnknownSegment { segment: number }),
            }
        };
        match receiver.await {
            Ok(Some(segment)) => Ok(segment),
            Ok(None) | Err(oneshot::Canceled) => Err(self.fatal()),
        }
    }

    /// A segment that can be read now.
    fn ready_segment(&self, number: u64) -> Result<Rc<Segment>, BlobLogError> {
        match self.state.borrow().segments.get(&number) {
            Some(SegmentSlot::Ready(segment)) => Ok(segment.clone()),
            Some(SegmentSlot::Creating(_)) | None => {
                Err(BlobLogError::UnknownSegment { segment: number })
            }
        }
    }

    /// Creates segment `number`, whose first record is append `first_seq`,
    /// once every earlier append is durable; then syncs the directory.
    async fn roll(self: Rc<Self>, number: u64, first_seq: AppendSeq) {
        let created = async {
            if first_seq > 0 {
                self.wait_durable(first_seq - 1).await?;
            }
            let segment = Segment::create(&self.dir_path, number).await?;
            self.dir
                .sync()
                .await
                .map_err(|e| io_error("sync directory", &self.dir_path, e))?;
            Ok::<_, BlobLogError>(Rc::new(segment))
        }
        .await;
        let mut state = self.state.borrow_mut();
        match created {
            Ok(segment) => {
                tracing::debug!(segment = number, "blob log rolled to a new segment");
                let slot = state
                    .segments
                    .insert(number, SegmentSlot::Ready(segment.clone()));
                let Some(SegmentSlot::Creating(waiters)) = slot else {
                    unreachable!("segment {number} was being created");
                };
                for waiter in waiters {
                    let _ = waiter.send(Some(segment.clone()));
                }
            }
            Err(e) => {
                let cause = if e.is_no_space() {
                    PoisonCause::NoSpace {
                        segment: number,
                        offset_bytes: 0,
                    }
                } else {
                    PoisonCause::RollFailed { segment: number }
                };
                if state.poison.is_none() {
                    tracing::error!(segment = number, error = %e, "blob log could not roll; refusing appends");
                }
                Self::poison_locked(&mut state, cause);
            }
        }
    }

    fn poison(&self, cause: PoisonCause) {
        Self::poison_locked(&mut self.state.borrow_mut(), cause);
    }

    /// Fails the log: keeps the first cause, fails every waiting append and
    /// every task waiting for a segment.
    fn poison_locked(state: &mut State, cause: PoisonCause) {
        state.poison.get_or_insert(cause);
        state.group.poison(|waiter, result| {
            let _ = waiter.send(result);
        });
        for slot in state.segments.values_mut() {
            if let SegmentSlot::Creating(waiters) = slot {
                for waiter in waiters.drain(..) {
                    let _ = waiter.send(None);
                }
            }
        }
    }
}

/// Syncs the directory holding `dir`, so a log directory just created
/// survives a crash along with its first segment.
async fn sync_parent(dir: &Path) -> Result<(), BlobLogError> {
    let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let parent_dir = Directory::open(parent)
        .await
        .map_err(|e| io_error("open directory", parent, e))?;
    let synced = parent_dir
        .sync()
        .await
        .map_err(|e| io_error("sync directory", parent, e));
    let closed = parent_dir
        .close()
        .await
        .map_err(|e| io_error("close directory", parent, e));
    synced.and(closed)
}

/// Segment numbers in `dir`, ascending. Other files are left alone.
fn list_segments(directory: &Directory, dir: &Path) -> Result<Vec<u64>, BlobLogError> {
    let entries = directory
        .sync_read_dir()
        .map_err(|e| io_error("list directory", dir, e))?;
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list directory", dir, e))?;
        let name = entry.file_name();
        if name == segment::PROBE_FILE {
            continue;
        }
        match name.to_str().and_then(segment::parse_file_name) {
            Some(number) => numbers.push(number),
            None => tracing::warn!(file = ?name, "blob log: ignoring a file that is not a segment"),
        }
    }
    // Gaps are normal: segments with no live record are removed.
    numbers.sort_unstable();
    Ok(numbers)
}
