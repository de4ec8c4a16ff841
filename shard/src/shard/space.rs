//! Giving disk space back, in two steps that run one after the other in
//! the shard's background queue (`docs/architecture.md`, "The life of a
//! chunk"):
//!
//! 1. **The sweeper** pages through the local blob index and forgets
//!    (removes from the index) every chunk that no reference count names
//!    and no pin holds: at once if its group collected it (it waited out
//!    its grace before the collect), else (never committed: an orphan of a
//!    failed upload) once it has been seen that way for `--gc-grace`; in
//!    the first grace after a start, collected chunks wait like orphans
//!    (`crate::sweep` says why).
//!    Every member does this for itself, after applying the same collect
//!    entries.
//! 2. **The reclaimer** looks at sealed segments nothing holds: one with no
//!    live record is deleted; one with at least
//!    [`RECLAIM_DEAD_BYTES_MIN`] of dead bytes still allocated has holes
//!    punched over them. A record is live while the index points at it.
//!    Where the file system cannot punch holes, a segment at least
//!    [`COMPACT_DEAD_PERCENT_MIN`] percent dead has its live records copied
//!    forward instead (`compact.rs`), and is deleted.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shard;
use crate::blob_log::{dead_ranges, BlobLog};
use crate::error::ShardError;
use crate::limits::{
    COMPACT_DEAD_PERCENT_MIN, COMPACT_SEGMENTS_PER_PASS_MAX, GC_QUEUED_COUNT_MAX,
    GC_SCAN_INTERVAL_MAX, RECLAIM_DEAD_BYTES_MIN, RECLAIM_SEGMENTS_PER_PASS_MAX,
    SWEEP_PAGE_ENTRIES, TAIL_SEAL_DEAD_BYTES_MIN,
};
use crate::meta::Unreferenced;
use crate::sweep::SweepCandidates;

/// What the sweeper and reclaimer carry between passes.
#[derive(Debug, Default)]
pub(super) struct SpaceState {
    candidates: SweepCandidates,
    /// Segments where a record died since the reclaimer last looked.
    dirty: BTreeSet<u64>,
    /// Where the reclaimer's round over clean segments goes on.
    next_clean: u64,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpacePass {
    /// Chunks removed from the index.
    pub forgotten: u64,
    /// Unreferenced chunks still within their grace (or pinned).
    pub waiting: u64,
    /// Payload bytes the index points at.
    pub live_bytes: u64,
    /// Segments deleted.
    pub segments_removed: u64,
    /// Bytes given back to the file system.
    pub released_bytes: u64,
    /// Payload bytes copied forward by compaction (where holes cannot be
    /// punched).
    pub compacted_bytes: u64,
    /// Segments compacted.
    pub segments_compacted: u64,
    /// Bytes the blob log's files take on disk after the pass.
    pub disk_bytes: u64,
}

impl Shard {
    /// Sweeps and reclaims a few times per grace period (at most every
    /// [`GC_SCAN_INTERVAL_MAX`]) until the shard stops.
    pub(super) async fn reclaim_periodically(&self) {
        let period = (self.gc_grace / 4).clamp(Duration::from_millis(100), GC_SCAN_INTERVAL_MAX);
        self.repeat_every(period, "reclaiming disk space", || async {
            self.sweep_and_reclaim().await.map(|_| 0)
        })
        .await;
    }

    /// One pass of the sweeper, then one of the reclaimer.
    pub async fn sweep_and_reclaim(&self) -> Result<SpacePass, ShardError> {
        // One pass at a time (the background loop, or a test or operator
        // asking for one now).
        let _turn = self
            .space_turn
            .acquire_permit(1)
            .await
            .expect("the space semaphore is never closed");
        let started = Instant::now();
        let mut pass = self.sweep().await?;
        let swept = started.elapsed();
        self.reclaim(&mut pass).await?;
        pass.disk_bytes = self.blob_log.disk_bytes().await?;
        let queued = self.meta.zero_refs_count(GC_QUEUED_COUNT_MAX).await?;
        self.stats.gc_chunks_queued.store(queued, Ordering::Relaxed);
        self.publish_space(&pass);
        if pass.forgotten > 0 || pass.released_bytes > 0 {
            tracing::info!(
                shard = self.index.get(),
                forgotten = pass.forgotten,
                released_bytes = pass.released_bytes,
                segments_removed = pass.segments_removed,
                compacted_bytes = pass.compacted_bytes,
                live_bytes = pass.live_bytes,
                disk_bytes = pass.disk_bytes,
                sweep_ms = swept.as_millis() as u64,
                reclaim_ms = (started.elapsed() - swept).as_millis() as u64,
                "gave disk space back"
            );
        }
        Ok(pass)
    }

    /// Pages through the whole index once; see the module docs.
    async fn sweep(&self) -> Result<SpacePass, ShardError> {
        self.space
            .borrow_mut()
            .candidates
            .begin_pass(Instant::now());
        let mut pass = SpacePass::default();
        let mut after = None;
        loop {
            let page = self.meta.index_page(after, SWEEP_PAGE_ENTRIES).await?;
            pass.live_bytes += page.payload_bytes;
            let unreferenced = page.unreferenced.len() as u64;
            for chunk in &page.unreferenced {
                pass.live_bytes -= u64::from(chunk.at.size_bytes);
            }
            let forgot = self.forget_due(page.unreferenced).await?;
            pass.forgotten += forgot;
            pass.waiting += unreferenced - forgot;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        self.space.borrow_mut().candidates.end_pass();
        Ok(pass)
    }

    /// Forgets the chunks of one index page that are due (`crate::sweep`)
    /// and not pinned, in one rocksdb write; returns how many it forgot.
    /// Each stays marked (pins wait) until the write is done.
    async fn forget_due(&self, page: Vec<Unreferenced>) -> Result<u64, ShardError> {
        let now = Instant::now();
        let mut marked = Vec::new();
        let mut chosen = Vec::new();
        for Unreferenced {
            hash,
            at,
            collected,
        } in page
        {
            let due =
                self.space
                    .borrow_mut()
                    .candidates
                    .due(hash, at, collected, now, self.gc_grace);
            if !due {
                continue;
            }
            if let Some(mark) = self.pins.begin_forget(hash, now) {
                marked.push(mark);
                chosen.push((hash, at, collected));
            }
        }
        if chosen.is_empty() {
            return Ok(0);
        }
        let places = chosen.iter().map(|(hash, at, _)| (*hash, *at)).collect();
        let forgot = self.meta.forget_blobs(places).await?;
        drop(marked);
        let mut space = self.space.borrow_mut();
        let mut count = 0;
        for ((hash, at, collected), forgot) in chosen.into_iter().zip(forgot) {
            space.candidates.settled(&hash);
            if !forgot {
                continue;
            }
            count += 1;
            space.dirty.insert(at.segment);
            if !collected {
                self.stats
                    .gc_orphans_forgotten
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.stats
            .gc_chunks_forgotten
            .fetch_add(count, Ordering::Relaxed);
        Ok(count)
    }

    /// Looks at the dirty releasable segments and a round of the others
    /// (records also die when a chunk is stored again elsewhere, which the
    /// sweeper does not see), at most [`RECLAIM_SEGMENTS_PER_PASS_MAX`].
    async fn reclaim(&self, pass: &mut SpacePass) -> Result<(), ShardError> {
        let releasable = self.blob_log.releasable_segments();
        let chosen: Vec<u64> = {
            let mut space = self.space.borrow_mut();
            let dirty: Vec<u64> = releasable
                .iter()
                .copied()
                .filter(|s| space.dirty.contains(s))
                .take(RECLAIM_SEGMENTS_PER_PASS_MAX)
                .collect();
            let room = RECLAIM_SEGMENTS_PER_PASS_MAX - dirty.len();
            let others: Vec<u64> = releasable
                .iter()
                .copied()
                .filter(|s| !space.dirty.contains(s))
                .collect();
            // A round from where the last one stopped, wrapping to the
            // oldest.
            let start = others.partition_point(|&s| s < space.next_clean);
            let clean: Vec<u64> = others[start..]
                .iter()
                .chain(&others[..start])
                .take(room)
                .copied()
                .collect();
            space.next_clean = clean.last().map_or(0, |s| s + 1);
            for s in &dirty {
                space.dirty.remove(s);
            }
            dirty.into_iter().chain(clean).collect()
        };
        let mut empty = Vec::new();
        for segment in chosen {
            if self.reclaim_segment(segment, pass).await? {
                empty.push(segment);
            }
        }
        if !empty.is_empty() {
            // One directory sync for every segment removed in the pass.
            pass.released_bytes += self.blob_log.remove_segments(&empty).await?;
            pass.segments_removed += empty.len() as u64;
        }
        self.seal_tail_if_mostly_dead().await
    }

    /// Seals the newest segment early when at least
    /// [`TAIL_SEAL_DEAD_BYTES_MIN`] and half of what was written to it is
    /// dead, so the next pass can release it. (Records still waiting for
    /// their index write count as dead here; that only seals it early.)
    async fn seal_tail_if_mostly_dead(&self) -> Result<(), ShardError> {
        let (segment, written) = self.blob_log.tail();
        if written < TAIL_SEAL_DEAD_BYTES_MIN {
            return Ok(());
        }
        let live: u64 = self
            .meta
            .segment_records(segment)
            .await?
            .iter()
            .map(|r| BlobLog::record_span(r.size_bytes))
            .sum();
        let dead = written.saturating_sub(live);
        if dead >= TAIL_SEAL_DEAD_BYTES_MIN
            && dead * 2 >= written
            && self.blob_log.tail() == (segment, written)
        {
            self.blob_log.seal_tail().await?;
            self.space.borrow_mut().dirty.insert(segment);
        }
        Ok(())
    }

    /// Punches the dead records of `segment` out when enough of them are
    /// still allocated (or, where holes cannot be punched, copies its live
    /// records forward once most of it is dead); returns true, punching
    /// nothing, when nothing in it is live (the caller removes it).
    async fn reclaim_segment(
        &self,
        segment: u64,
        pass: &mut SpacePass,
    ) -> Result<bool, ShardError> {
        let live = self.meta.segment_records(segment).await?;
        if live.is_empty() {
            return Ok(true);
        }
        let extents: Vec<(u64, u64)> = live
            .iter()
            .map(|r| (r.offset_bytes, BlobLog::record_span(r.size_bytes)))
            .collect();
        let live_bytes: u64 = extents.iter().map(|(_, len)| len).sum();
        let space = self.blob_log.segment_space(segment).await?;
        if !self.blob_log.can_punch() {
            let dead = space.file_bytes.saturating_sub(live_bytes);
            if dead * 100 < space.file_bytes * COMPACT_DEAD_PERCENT_MIN
                || pass.segments_compacted >= COMPACT_SEGMENTS_PER_PASS_MAX
            {
                return Ok(false);
            }
            let moved = self.compact_segment(segment, live).await?;
            pass.compacted_bytes += moved;
            self.stats
                .blob_compacted_bytes
                .fetch_add(moved, Ordering::Relaxed);
            pass.segments_compacted += 1;
            // Whatever was in use stays for a later pass.
            return Ok(self.meta.segment_records(segment).await?.is_empty());
        }
        if space.allocated_bytes.saturating_sub(live_bytes) < RECLAIM_DEAD_BYTES_MIN {
            return Ok(false);
        }
        let dead = dead_ranges(&extents, space.file_bytes);
        crate::crash_point::crash_point("crash::reclaiming");
        pass.released_bytes += self.blob_log.release(segment, &dead).await?;
        Ok(false)
    }

    fn publish_space(&self, pass: &SpacePass) {
        let now = Instant::now();
        let stats = &self.stats;
        stats
            .blob_live_bytes
            .store(pass.live_bytes, Ordering::Relaxed);
        stats
            .blob_disk_bytes
            .store(pass.disk_bytes, Ordering::Relaxed);
        stats
            .gc_chunks_waiting
            .store(pass.waiting, Ordering::Relaxed);
        stats
            .gc_chunks_pinned
            .store(self.pins.pinned(now) as u64, Ordering::Relaxed);
        let blob = self.blob_log.stats();
        stats
            .blob_released_bytes
            .store(blob.released_bytes, Ordering::Relaxed);
        stats
            .blob_segments_removed
            .store(blob.segments_removed, Ordering::Relaxed);
    }
}
