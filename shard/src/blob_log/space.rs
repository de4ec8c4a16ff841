//! Giving disk space back: which segments may be touched, holes punched
//! over dead records, and whole segments removed.
//!
//! The log does not know which records are dead; the shard's blob index
//! does (a record is live while the index points at it). What the log
//! guarantees is that it never releases a byte an append may still need:
//!
//! - **Sealed only.** A segment is released from only once every append
//!   placed in it has completed (a newer segment exists and is ready: a
//!   roll waits for every earlier append to be durable), so no write is in
//!   flight there, and the tail is never touched.
//! - **Holds.** An append's record is dead until the caller indexes it.
//!   A caller takes a [`RecordHold`] before appending and drops it after
//!   the index write; no segment at or after the oldest held tail is
//!   released from meanwhile.
//!
//! Punching (`fallocate(PUNCH_HOLE | KEEP_SIZE)`) keeps offsets valid, so
//! live records of a segment stay where the index says. On ext4 it waits
//! for O_DIRECT I/O on the file, which is why only sealed segments, which
//! see reads only, are punched.

use std::rc::Rc;
use std::time::Duration;

use glommio::sync::Permit;

use super::segment::{io_error, Segment, Tail};
use super::{BlobLog, BlobLogError, SegmentSlot, Shared};
use crate::limits::BLOB_LOG_APPENDS_INFLIGHT_MAX;

/// How often [`Shared::quiesce`] looks again whether the last sync has
/// finished.
const SYNC_SETTLE_POLL: Duration = Duration::from_millis(1);

impl Shared {
    /// Waits until no append and no sync is in flight, and keeps it so
    /// while the returned permit lives: every append holds a permit until
    /// it has settled (durable, or failed by a poison), so with all of
    /// them here every record written is durable or its append failed.
    pub(super) async fn quiesce(&self) -> Permit<'_> {
        let all = self
            .permits
            .acquire_permit(BLOB_LOG_APPENDS_INFLIGHT_MAX as u64)
            .await
            .expect("the append semaphore is never closed");
        while self.state.borrow().group.sync_in_flight() {
            glommio::timer::sleep(SYNC_SETTLE_POLL).await;
        }
        all
    }
}

/// Keeps the segments from the tail at the time it was taken onwards out
/// of reach of release; see the module docs.
#[must_use = "a hold protects appends until it is dropped"]
pub struct RecordHold {
    shared: Rc<Shared>,
    segment: u64,
}

impl Drop for RecordHold {
    fn drop(&mut self) {
        let mut state = self.shared.state.borrow_mut();
        let count = state
            .holds
            .get_mut(&self.segment)
            .expect("a hold's segment is counted");
        *count -= 1;
        if *count == 0 {
            state.holds.remove(&self.segment);
        }
    }
}

/// Disk use of one sealed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSpace {
    pub segment: u64,
    /// The file's length.
    pub file_bytes: u64,
    /// Bytes the file system has allocated to it (less than the length
    /// once holes are punched).
    pub allocated_bytes: u64,
}

impl BlobLog {
    /// A hold on every segment an append started from now can land in;
    /// take it before appending, drop it once the record is indexed.
    pub fn hold(&self) -> RecordHold {
        let segment = {
            let mut state = self.shared.state.borrow_mut();
            let segment = state.tail.segment;
            *state.holds.entry(segment).or_default() += 1;
            segment
        };
        RecordHold {
            shared: Rc::clone(&self.shared),
            segment,
        }
    }

    /// Sealed segments nothing holds, oldest first: those whose dead
    /// records may be released.
    pub fn releasable_segments(&self) -> Vec<u64> {
        let state = self.shared.state.borrow();
        let tail = state.tail.segment;
        // While the tail is being created, appends may still be landing
        // in the segment before it.
        let mut bound = match state.segments.get(&tail) {
            Some(SegmentSlot::Ready(_)) => tail,
            _ => tail.saturating_sub(1),
        };
        if let Some((&held, _)) = state.holds.first_key_value() {
            bound = bound.min(held);
        }
        state.segments.range(..bound).map(|(&n, _)| n).collect()
    }

    /// The file and allocated sizes of `segment`.
    pub async fn segment_space(&self, segment: u64) -> Result<SegmentSpace, BlobLogError> {
        let file = self.shared.ready_segment(segment)?;
        let stat = file.stat().await?;
        Ok(SegmentSpace {
            segment,
            file_bytes: stat.file_size,
            allocated_bytes: stat.allocated_file_size,
        })
    }

    /// Whether holes can be punched here: true until a punch found the
    /// file system unable to (then the reclaimer compacts instead).
    pub fn can_punch(&self) -> bool {
        !self.shared.punch_unsupported.get()
    }

    /// Makes this log behave as on a file system that cannot punch holes.
    #[cfg(test)]
    pub(crate) fn forbid_punching(&self) {
        self.shared.punch_unsupported.set(true);
    }

    /// Punches holes over `ranges` (`(offset, length)`, aligned) of a
    /// releasable segment; returns the bytes the file system freed. On a
    /// file system that cannot punch holes it frees nothing (and says so
    /// once; see [`BlobLog::can_punch`]).
    pub async fn release(&self, segment: u64, ranges: &[(u64, u64)]) -> Result<u64, BlobLogError> {
        assert!(
            self.releasable_segments().contains(&segment),
            "segment {segment} is not releasable"
        );
        if self.shared.punch_unsupported.get() {
            return Ok(0);
        }
        let file = self.shared.ready_segment(segment)?;
        // Stands for a file system that cannot punch holes (the fault
        // suite's way onto the compaction path).
        fail::fail_point!("blob_log::punch", |_| {
            self.shared.punch_unsupported.set(true);
            Ok(0)
        });
        let before = file.stat().await?.allocated_file_size;
        if let Err(e) = file.punch(ranges).await {
            let BlobLogError::Io { source, .. } = &e else {
                return Err(e);
            };
            if source.kind() != std::io::ErrorKind::Unsupported {
                return Err(e);
            }
            self.shared.punch_unsupported.set(true);
            tracing::warn!(
                dir = %self.shared.dir_path.display(),
                error = %e,
                "this file system cannot punch holes: mostly dead segments are compacted instead (their live records copied forward)"
            );
            return Ok(0);
        }
        let after = file.stat().await?.allocated_file_size;
        let freed = before.saturating_sub(after);
        self.shared.update_stats(|s| s.released_bytes += freed);
        Ok(freed)
    }

    /// Deletes releasable segments none of whose records is live, then
    /// syncs the directory once for all of them; returns the bytes their
    /// files had allocated. Reads already holding a file finish; later
    /// reads of it fail as unknown.
    pub async fn remove_segments(&self, segments: &[u64]) -> Result<u64, BlobLogError> {
        let releasable = self.releasable_segments();
        let mut allocated_total = 0;
        let mut removed = 0;
        let mut failed = None;
        for &segment in segments {
            assert!(
                releasable.contains(&segment),
                "segment {segment} is not releasable"
            );
            let file = self.shared.ready_segment(segment)?;
            let allocated = file.stat().await?.allocated_file_size;
            self.shared.state.borrow_mut().segments.remove(&segment);
            if let Err(e) = file.unlink().await {
                self.shared
                    .state
                    .borrow_mut()
                    .segments
                    .insert(segment, SegmentSlot::Ready(file));
                failed = Some(e);
                break;
            }
            allocated_total += allocated;
            removed += 1;
        }
        if removed > 0 {
            let dir = &self.shared.dir_path;
            self.shared
                .dir
                .sync()
                .await
                .map_err(|e| io_error("sync directory", dir, e))?;
            self.shared.update_stats(|s| {
                s.released_bytes += allocated_total;
                s.segments_removed += removed;
            });
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(allocated_total),
        }
    }

    /// The newest segment and how many bytes have been placed in it.
    pub fn tail(&self) -> (u64, u64) {
        let state = self.shared.state.borrow();
        (state.tail.segment, state.tail.offset_bytes)
    }

    /// Seals the newest segment now, by creating the next one, so that its
    /// dead records can be released without waiting for it to fill (a
    /// lightly written node would otherwise keep up to a whole segment of
    /// dead bytes per shard). Waits for every append in flight to settle;
    /// appends wait meanwhile (one file creation and directory sync).
    /// Does nothing to an empty or failed log.
    pub async fn seal_tail(&self) -> Result<(), BlobLogError> {
        let shared = &self.shared;
        shared.refuse_if_poisoned()?;
        let _all = shared.quiesce().await;
        shared.refuse_if_poisoned()?;
        let tail = shared.state.borrow().tail;
        if tail.offset_bytes == 0 {
            return Ok(());
        }
        // Quiesced: every record of the old tail is durable, the same
        // condition a roll waits for.
        let next = tail.segment + 1;
        let segment = Segment::create(&shared.dir_path, next).await?;
        shared
            .dir
            .sync()
            .await
            .map_err(|e| io_error("sync directory", &shared.dir_path, e))?;
        let mut state = shared.state.borrow_mut();
        let previous = state
            .segments
            .insert(next, SegmentSlot::Ready(Rc::new(segment)));
        assert!(previous.is_none(), "segment {next} exists");
        state.tail = Tail {
            segment: next,
            offset_bytes: 0,
        };
        tracing::debug!(
            segment = tail.segment,
            "blob log sealed its newest segment early"
        );
        Ok(())
    }

    /// Bytes every segment file has allocated on disk.
    pub async fn disk_bytes(&self) -> Result<u64, BlobLogError> {
        let ready: Vec<Rc<Segment>> = self
            .shared
            .state
            .borrow()
            .segments
            .values()
            .filter_map(|slot| match slot {
                SegmentSlot::Ready(segment) => Some(Rc::clone(segment)),
                SegmentSlot::Creating(_) => None,
            })
            .collect();
        let mut total = 0;
        for segment in ready {
            total += segment.stat().await?.allocated_file_size;
        }
        Ok(total)
    }
}

impl Segment {
    /// Opens the file for writing (sealed segments are opened read-only)
    /// and punches `ranges` out of it, keeping its size.
    pub(super) async fn punch(&self, ranges: &[(u64, u64)]) -> Result<(), BlobLogError> {
        let path = self.path();
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(|e| io_error("open segment to punch", path, e))?;
        let mut punched = Ok(());
        for &(offset, len) in ranges {
            if let Err(e) = file.deallocate(offset, len).await {
                punched = Err(io_error("punch hole in segment", path, e));
                break;
            }
        }
        let closed = file
            .close()
            .await
            .map_err(|e| io_error("close segment", path, e));
        punched.and(closed)
    }
}

/// Ranges of `[0, end)` not covered by `live` (`(offset, length)`, sorted,
/// not overlapping): what can be released.
pub fn dead_ranges(live: &[(u64, u64)], end: u64) -> Vec<(u64, u64)> {
    let mut dead = Vec::new();
    let mut at = 0;
    for &(offset, len) in live {
        assert!(offset >= at, "live ranges overlap or are out of order");
        if offset > at {
            dead.push((at, offset - at));
        }
        at = offset + len;
    }
    if end > at {
        dead.push((at, end - at));
    }
    dead
}

#[cfg(test)]
mod tests {
    use super::dead_ranges;

    #[test]
    fn dead_ranges_are_the_gaps_between_live_records() {
        assert_eq!(dead_ranges(&[], 100), vec![(0, 100)]);
        assert_eq!(dead_ranges(&[(0, 100)], 100), vec![]);
        assert_eq!(
            dead_ranges(&[(10, 10), (20, 5), (40, 10)], 60),
            vec![(0, 10), (25, 15), (50, 10)]
        );
        // A file shorter than the last record's end (cannot happen for a
        // sealed segment, but the answer stays sane).
        assert_eq!(dead_ranges(&[(0, 50)], 40), vec![]);
    }
}
