//! A shard: the blob log, metadata store and raft group one core owns, and
//! the loop that serves [`ShardRequest`]s for them.
//!
//! Runs on its owner core only. Requests run as concurrent local tasks (at
//! most [`SHARD_OPS_INFLIGHT_MAX`]) so appends from many uploads meet in the
//! blob log's group commit. The work is split by concern:
//!
//! - `serve`: which request does what;
//! - `write`: chunks into the blob log (offloaded or inline) and the
//!   commits that refer to them;
//! - `read`: linearizable reads and chunk reads (fetched from another
//!   member when this node lacks the bytes);
//! - `repair`: index entries whose records are damaged or lost, found at
//!   recovery or on read, dropped so that the chunk is fetched again;
//! - `group`: the shard's raft group: proposing, forwarding to the
//!   leader, the members' view;
//! - `background`: catch-up, audit, reaper, collector and quorum watch, in
//!   their own task queue behind a gate;
//! - `scrub`: re-reads every indexed record at a bounded rate and repairs
//!   or reports what it finds damaged;
//! - `space`: the sweeper (forgets chunks nothing refers to) and the
//!   reclaimer (gives their disk space back);
//! - `peer_requests`: what the shard answers on its peer port;
//! - `stats`: the counters the metrics endpoint reads.

mod background;
mod compact;
mod group;
mod options;
mod peer_requests;
mod read;
mod repair;
mod scrub;
mod serve;
mod space;
mod stats;
mod write;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::blob_log::BlobLog;
use crate::catchup::{Catchup, Pacer};
use crate::error::ShardError;
use crate::limits::{INLINE_PROPOSALS_INFLIGHT_MAX, SHARD_OPS_INFLIGHT_MAX};
use crate::meta::MetaStore;
use crate::ops::ShardRequest;
use crate::pins::Pins;
use crate::raft::{ApplyHooks, Handover, RaftOptions, ShardRaft};
use crate::replication::Replicator;
use crate::usage::UsageCache;

use crate::ids::ShardIndex;
use background::Background;
pub use group::Group;
pub use options::{ClusterOptions, ShardOptions};
pub use peer_requests::PeerRequests;
pub use scrub::{ScrubFinding, ScrubStats};
pub use stats::ShardStats;
use write::{InlinePending, WriteMode};

pub struct Shard {
    index: ShardIndex,
    /// Shared with the state machine, which appends inline chunks.
    blob_log: Rc<BlobLog>,
    meta: MetaStore,
    raft: Rc<ShardRaft>,
    stats: Arc<ShardStats>,
    permits: Rc<glommio::sync::Semaphore>,
    /// Alone, or a member of a cluster (and how to reach the others).
    group: Group,
    min_blob_replicas: usize,
    blob_offload: bool,
    /// Chunks to fetch in the background (fed by the state machine).
    catchup: Rc<Catchup>,
    pacer: Pacer,
    /// Tasks that run beside requests: catch-up, audit, reaper.
    background: Background,
    /// How the last chunk was written, to log changes.
    last_write_mode: RefCell<Option<WriteMode>>,
    /// Inline chunks waiting for an entry, oldest first.
    inline_waiting: RefCell<VecDeque<InlinePending>>,
    /// Inline entries being proposed.
    inline_proposals: glommio::sync::Semaphore,
    /// What each bucket holds here, as last scanned.
    usage: Rc<UsageCache>,
    /// Chunks that must not be forgotten right now (see `crate::pins`).
    pins: Rc<Pins>,
    /// `--gc-grace`: how long an unreferenced chunk stays.
    gc_grace: Duration,
    /// This shard's share of `--scrub-rate` (0: no scrub).
    scrub_bytes_per_s: u64,
    /// What the sweeper and reclaimer know between passes.
    space: RefCell<space::SpaceState>,
    /// Taken by each sweep-and-reclaim pass: one at a time.
    space_turn: glommio::sync::Semaphore,
    /// Set once this run's chunk audit finished (or was not needed): with
    /// nothing left to catch up on, a stop may then say every chunk is
    /// here, and the next start skips the audit.
    chunks_audited: Cell<bool>,
    /// `--snapshot-every`: entries between snapshots at the least.
    snapshot_every: u64,
}

impl Shard {
    /// Recovers the blob log and starts the raft group. Must run on the
    /// shard's own executor. Background work starts with
    /// [`Shard::start_background`].
    pub async fn open(
        options: ShardOptions,
        meta: MetaStore,
        stats: Arc<ShardStats>,
    ) -> Result<Rc<Shard>, ShardError> {
        let ShardOptions {
            index,
            node_id,
            blob_dir,
            segment_bytes,
            gc_grace,
            scrub_bytes_per_s,
            directory,
            cluster,
        } = options;
        let (blob_log, recovery) = BlobLog::open(&blob_dir, segment_bytes).await?;
        tracing::info!(
            shard = index.get(),
            segments = recovery.segments,
            records = recovery.records,
            truncated_bytes = recovery.truncated_bytes,
            "blob log recovered"
        );
        let blob_log = Rc::new(blob_log);
        let group = match cluster.secret.clone() {
            Some(secret) => Group::Cluster(Rc::new(Replicator::new(index, node_id, secret))),
            None => Group::Single,
        };
        let catchup = Rc::new(Catchup::default());
        let lost = repair::forget_lost_records(
            index,
            &meta,
            blob_log.segment_numbers(),
            &recovery,
            group.is_cluster().then_some(&*catchup),
        )
        .await?;
        stats
            .chunk_damaged
            .fetch_add(lost as u64, Ordering::Relaxed);
        let hooks = ApplyHooks {
            directory,
            blob_log: Some(Rc::clone(&blob_log)),
            // Only members of a cluster can lack a chunk they have refs to.
            catchup: group.is_cluster().then(|| Rc::clone(&catchup)),
        };
        let raft_options = RaftOptions {
            hooks,
            node_addr: cluster.peer_addr,
            secret: cluster.secret,
            bootstrap: cluster.bootstrap,
            snapshot_logs_since_last: cluster.snapshot_logs_since_last,
            logs_kept_after_snapshot: cluster.logs_kept_after_snapshot,
            ..RaftOptions::default()
        };
        let snapshot_every = raft_options.snapshot_logs_since_last;
        let raft = ShardRaft::start_with(node_id, index, meta.clone(), raft_options).await?;
        Ok(Rc::new(Shard {
            index,
            blob_log,
            meta,
            raft,
            stats,
            permits: Rc::new(glommio::sync::Semaphore::new(SHARD_OPS_INFLIGHT_MAX as u64)),
            group,
            min_blob_replicas: cluster.min_blob_replicas,
            blob_offload: cluster.blob_offload,
            catchup,
            pacer: Pacer::new(cluster.catchup_bytes_per_s),
            background: Background::new(index),
            last_write_mode: RefCell::new(None),
            inline_waiting: RefCell::new(VecDeque::new()),
            inline_proposals: glommio::sync::Semaphore::new(INLINE_PROPOSALS_INFLIGHT_MAX as u64),
            usage: Rc::default(),
            pins: Rc::default(),
            gc_grace,
            scrub_bytes_per_s,
            space: RefCell::default(),
            space_turn: glommio::sync::Semaphore::new(1),
            chunks_audited: Cell::new(false),
            snapshot_every,
        }))
    }

    /// The shard's metadata store, for tests that look at applied state.
    #[cfg(test)]
    pub(crate) fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// The shard's counters, for tests.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> &ShardStats {
        &self.stats
    }

    pub fn index(&self) -> ShardIndex {
        self.index
    }

    /// The shard's raft group, for its peer port.
    pub fn raft(&self) -> &Rc<ShardRaft> {
        &self.raft
    }

    /// Stops the shard as part of a node's orderly shutdown, once no
    /// client request is in progress: stops its background work; in a
    /// cluster, hands the group to another member if this node leads it;
    /// then stops the raft group and flushes the metadata store. Each step
    /// is logged.
    pub async fn stop(&self) {
        let stopped_in_order = self.background.stop().await;
        if self.group.is_cluster() {
            match self.raft.hand_over().await {
                Handover::NotLeader | Handover::NoOtherVoter => {}
                Handover::HandedTo(node) => {
                    tracing::info!(
                        shard = self.index.get(),
                        to = node.get(),
                        "handed leadership over"
                    )
                }
                Handover::Failed(reason) => tracing::warn!(
                    shard = self.index.get(),
                    %reason,
                    "could not hand leadership over; the group elects a new leader after its election timeout"
                ),
            }
        }
        self.raft.shutdown().await;
        // The group applies nothing more: what catch-up still has to do
        // is known now.
        if self.group.is_cluster() && self.chunks_all_here(stopped_in_order) {
            match self.meta.mark_chunks_complete().await {
                Ok(()) => tracing::info!(
                    shard = self.index.get(),
                    "every chunk is here: the next start skips the chunk audit"
                ),
                Err(e) => {
                    tracing::warn!(shard = self.index.get(), error = %e, "could not mark the chunks complete; the next start audits them")
                }
            }
        }
        match self.meta.flush().await {
            Ok(()) => tracing::info!(shard = self.index.get(), "metadata flushed"),
            Err(e) => {
                tracing::warn!(shard = self.index.get(), error = %e, "flushing metadata failed")
            }
        }
    }

    /// Whether every chunk this shard's refs name is known to be here: the
    /// audit ran (or was not needed), catch-up has nothing queued and
    /// neither missed nor failed a chunk since the start, and every
    /// background task finished its work unit.
    fn chunks_all_here(&self, stopped_in_order: bool) -> bool {
        stopped_in_order
            && self.chunks_audited.get()
            && self.catchup.pending() == 0
            && self.catchup.dropped() == 0
            && self.stats.chunk_catchup_failed.load(Ordering::Relaxed) == 0
    }

    /// Serves one request in its own task, after waiting for an in-flight
    /// slot; returns once the task is started.
    pub async fn dispatch(self: &Rc<Self>, request: ShardRequest) {
        let permit = self.permits.acquire_static_permit(1).await;
        let permit = match permit {
            Ok(permit) => permit,
            Err(_) => return, // semaphore closed: shutting down; the reply is dropped
        };
        let shard = Rc::clone(self);
        self.stats.ops_inflight.fetch_add(1, Ordering::Relaxed);
        glommio::spawn_local(async move {
            shard.serve(request).await;
            shard.stats.ops_inflight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        })
        .detach();
    }
}
