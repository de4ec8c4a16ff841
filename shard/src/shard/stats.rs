//! The counters a shard publishes for the metrics endpoint and `/healthz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Shard;
use crate::blob_log::GROUP_COMMIT_BATCH_BOUNDS;

/// Counters a shard publishes for the metrics endpoint. Written by the
/// owner core only; read by whichever core serves a scrape.
#[derive(Debug, Default)]
pub struct ShardStats {
    pub blob_log_appends: AtomicU64,
    pub blob_log_fsyncs: AtomicU64,
    pub blob_log_bytes_written: AtomicU64,
    pub raft_log_appended_bytes: AtomicU64,
    pub raft_entries_appended: AtomicU64,
    pub raft_entries_proposed: AtomicU64,
    pub raft_commands_proposed: AtomicU64,
    pub ops_inflight: AtomicU64,
    /// Group commits by batch size (see `GROUP_COMMIT_BATCH_BOUNDS`).
    pub group_commit_batches: [AtomicU64; GROUP_COMMIT_BATCH_BOUNDS.len() + 1],
    /// Requests sent to this shard from other cores and not yet received
    /// by it. Written by the senders and the receiver, hence shared.
    pub hop_queue_depth: AtomicU64,
    /// Lifecycle actions this node's lifecycle worker had applied, by
    /// kind, and versions and uploads it examined.
    pub lifecycle_expired_current: AtomicU64,
    pub lifecycle_expired_noncurrent: AtomicU64,
    pub lifecycle_markers_removed: AtomicU64,
    pub lifecycle_uploads_aborted: AtomicU64,
    pub lifecycle_examined: AtomicU64,
    /// Set once the shard cannot take writes any more (its blob log is
    /// poisoned or its raft group stopped); `/healthz` reports it.
    pub failed: AtomicBool,
    /// Set while the shard's group cannot reach a quorum (a cluster only);
    /// `/healthz` reports it.
    pub quorum_lost: AtomicBool,
    /// Chunks made durable on fewer nodes than `--min-blob-replicas` (but
    /// at least two).
    pub chunk_replication_degraded: AtomicU64,
    /// Chunks a manifest names that neither this node nor any member had.
    pub chunk_unrecoverable: AtomicU64,
    /// Indexed chunks whose records were found damaged or lost (by
    /// recovery or a read); each entry is counted once, then dropped.
    pub chunk_damaged: AtomicU64,
    /// Damaged chunks a read replaced with a checked copy from another
    /// member (the others are fetched by catch-up, counted there).
    pub chunk_repaired: AtomicU64,
    /// Pushes not sent because too many to that member were in flight
    /// (it gets those chunks by catch-up).
    pub chunk_push_backlog: AtomicU64,
    /// Chunks fetched in the background after their refs were applied.
    pub chunk_catchup_fetched: AtomicU64,
    /// Background fetches no member could answer (the chunk is fetched
    /// again when read).
    pub chunk_catchup_failed: AtomicU64,
    /// Chunks waiting for a background fetch.
    pub chunk_catchup_pending: AtomicU64,
    /// Chunks not queued for a background fetch because the queue was full.
    pub chunk_catchup_dropped: AtomicU64,
    /// Chunks this node wrote inline (bytes in a raft entry) as leader.
    pub chunk_inline_writes: AtomicU64,
    /// Bytes of the latest raft snapshot built or installed here.
    pub raft_snapshot_bytes: AtomicU64,
    /// Payload bytes the blob index points at (as of the last sweep).
    pub blob_live_bytes: AtomicU64,
    /// Bytes the blob log's files take on disk (as of the last sweep).
    pub blob_disk_bytes: AtomicU64,
    /// Bytes given back to the file system since start.
    pub blob_released_bytes: AtomicU64,
    /// Segments deleted since start (nothing in them was live).
    pub blob_segments_removed: AtomicU64,
    /// Payload bytes compaction copied forward since start (only where
    /// holes cannot be punched).
    pub blob_compacted_bytes: AtomicU64,
    /// Chunks removed from the blob index since start (collected, or
    /// never referred to).
    pub gc_chunks_forgotten: AtomicU64,
    /// Unreferenced chunks waiting out their grace period or a pin.
    pub gc_chunks_waiting: AtomicU64,
    /// Chunks pinned by writes, commits and reads in progress.
    pub gc_chunks_pinned: AtomicU64,
    /// Of the forgotten chunks, those no object ever referred to (orphans
    /// of failed or cut-off uploads).
    pub gc_orphans_forgotten: AtomicU64,
    /// Chunks at zero references waiting out `--gc-grace` before a
    /// collect (as of the last sweep; counted up to
    /// `GC_QUEUED_COUNT_MAX`).
    pub gc_chunks_queued: AtomicU64,
    /// Chunks named in collect entries this node proposed as leader.
    pub gc_chunks_collected: AtomicU64,
    /// What the scrub has done.
    pub scrub: super::ScrubStats,
}

impl Shard {
    /// Copies the blob log's and raft group's counters into the shared
    /// stats, and marks the shard failed (logged once) when either can no
    /// longer take writes.
    pub(super) fn publish_stats(&self) {
        let blob = self.blob_log.stats();
        self.stats
            .blob_log_appends
            .store(blob.appends, Ordering::Relaxed);
        self.stats
            .blob_log_fsyncs
            .store(blob.fsyncs, Ordering::Relaxed);
        self.stats
            .blob_log_bytes_written
            .store(blob.bytes_written, Ordering::Relaxed);
        let raft = self.raft.stats();
        let poisoned = self.blob_log.poisoned();
        let failed = poisoned.is_some() || !raft.running;
        if self.stats.failed.swap(failed, Ordering::Relaxed) != failed {
            if failed {
                tracing::error!(
                    shard = self.index.get(),
                    blob_log = ?poisoned,
                    raft_running = raft.running,
                    "shard failed; it refuses writes (until its disk has space again, if that is the cause; else until restarted)"
                );
            } else {
                tracing::info!(shard = self.index.get(), "shard takes writes again");
            }
        }
        self.stats
            .raft_log_appended_bytes
            .store(raft.log_appended_bytes, Ordering::Relaxed);
        self.stats
            .raft_entries_appended
            .store(raft.entries_appended, Ordering::Relaxed);
        self.stats
            .raft_entries_proposed
            .store(raft.entries_proposed, Ordering::Relaxed);
        self.stats
            .raft_commands_proposed
            .store(raft.commands_proposed, Ordering::Relaxed);
        self.publish_catchup_stats();
        if let Some(bytes) = self.raft.snapshot_bytes() {
            self.stats
                .raft_snapshot_bytes
                .store(bytes, Ordering::Relaxed);
        }
    }

    pub(super) fn publish_catchup_stats(&self) {
        self.stats
            .chunk_catchup_pending
            .store(self.catchup.pending() as u64, Ordering::Relaxed);
        self.stats
            .chunk_catchup_dropped
            .store(self.catchup.dropped(), Ordering::Relaxed);
    }
}
