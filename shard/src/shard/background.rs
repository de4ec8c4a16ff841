//! Work a shard does beside requests: fetching chunks it lacks (catch-up
//! and the audit that finds them after a restart), aborting multipart
//! uploads left incomplete (the reaper), and watching whether its group
//! has a quorum.
//!
//! Every such task runs in the shard's own low-share task queue, so under
//! load it yields the core to requests, and enters the shard's gate, so
//! [`Shard::stop`] can end them: they stop at their next idle point (a
//! sleep, an empty queue, between pages) and the stop waits for the work
//! unit in progress, at most [`BACKGROUND_STOP_WAIT_MAX`].

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{select, Either, FutureExt, Shared};
use glommio::sync::Gate;
use glommio::{Latency, Shares, TaskQueueHandle};
use rand::seq::SliceRandom;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::CollectChunks;

use super::{Group, Shard};
use crate::catchup::Wanted;
use crate::clock::unix_ms_ago;
use crate::error::ShardError;
use crate::ids::ShardIndex;
use crate::limits::AUDIT_DELAY;
use crate::limits::AUDIT_QUEUE_HIGH;
use crate::limits::AUDIT_RECORDS_PER_PAGE;
use crate::limits::QUORUM_WATCH_INTERVAL;
use crate::limits::REAP_BATCH_MAX;
use crate::limits::SNAPSHOT_PACE_INTERVAL;
use crate::limits::{
    BACKGROUND_STOP_WAIT_MAX, BACKGROUND_TASK_SHARES, CATCHUP_WORKERS, CHUNK_BYTES,
};
use crate::limits::{GC_COLLECT_PER_ENTRY_MAX, GC_SCAN_INTERVAL_MAX, OUT_OF_SPACE_RETRY};
use crate::limits::{LEADER_BALANCE_INTERVAL, LEADER_WATCH_INTERVAL};
use crate::meta::ChunkScan;
use crate::raft::{refs, ApplyOutcome, Handover, SnapshotPace};
use crate::replication::{Replicator, CAPABILITY_COLLECT};

/// A shard's background task queue, gate and stop signal.
pub(super) struct Background {
    shard: ShardIndex,
    gate: Gate,
    queue: TaskQueueHandle,
    /// Dropped to tell every task to stop.
    stop: RefCell<Option<oneshot::Sender<()>>>,
    stopped: Shared<oneshot::Receiver<()>>,
}

impl Background {
    /// Must run on the shard's executor (it creates the task queue there).
    pub(super) fn new(shard: ShardIndex) -> Background {
        let queue = glommio::executor().create_task_queue(
            Shares::Static(BACKGROUND_TASK_SHARES),
            Latency::NotImportant,
            &format!("shard-{shard}-background"),
        );
        let (stop, stopped) = oneshot::channel();
        Background {
            shard,
            gate: Gate::new(),
            queue,
            stop: RefCell::new(Some(stop)),
            stopped: stopped.shared(),
        }
    }

    /// Starts `task` in the background queue, behind the gate. Does nothing
    /// once the shard is stopping.
    fn spawn(&self, what: &'static str, task: impl Future<Output = ()> + 'static) {
        match self.gate.spawn_into(task, self.queue) {
            Ok(task) => {
                task.detach();
            }
            Err(_) => tracing::debug!(shard = self.shard.get(), what, "stopping: not started"),
        }
    }

    /// `work`'s output, or `None` once the shard is stopping.
    async fn unless_stopped<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        match select(std::pin::pin!(work), self.stopped.clone()).await {
            Either::Left((done, _)) => Some(done),
            Either::Right(_) => None,
        }
    }

    /// Sleeps for `period`; false if the shard began stopping meanwhile.
    pub(super) async fn sleep(&self, period: Duration) -> bool {
        self.unless_stopped(glommio::timer::sleep(period))
            .await
            .is_some()
    }

    /// Tells every task to stop and waits (at most
    /// [`BACKGROUND_STOP_WAIT_MAX`]) for those in a work unit to finish it;
    /// returns whether they all did.
    pub(super) async fn stop(&self) -> bool {
        drop(self.stop.borrow_mut().take());
        let closed = glommio::timer::timeout(BACKGROUND_STOP_WAIT_MAX, async {
            Ok(self.gate.close().await)
        })
        .await;
        if closed.is_err() {
            tracing::warn!(
                shard = self.shard.get(),
                "background work still running after {BACKGROUND_STOP_WAIT_MAX:?}; stopping without it"
            );
        }
        closed.is_ok()
    }
}

impl Shard {
    /// Starts the shard's background work: the reaper (uploads older than
    /// `multipart_expiry` are aborted), the collector (chunks unreferenced
    /// for `--gc-grace` are collected), the sweeper and reclaimer (see
    /// `space`) and, in a cluster, catch-up, the chunk audit and the quorum
    /// watch.
    pub fn start_background(self: &Rc<Self>, multipart_expiry: Duration) {
        let shard = Rc::clone(self);
        self.background.spawn("reaper", async move {
            shard.reap_periodically(multipart_expiry).await
        });
        let shard = Rc::clone(self);
        self.background.spawn("collector", async move {
            shard.collect_periodically(shard.gc_grace).await
        });
        let shard = Rc::clone(self);
        self.background.spawn(
            "reclaimer",
            async move { shard.reclaim_periodically().await },
        );
        let shard = Rc::clone(self);
        self.background.spawn("scrub", async move {
            shard.scrub_periodically(shard.scrub_bytes_per_s).await
        });
        let shard = Rc::clone(self);
        self.background.spawn("snapshot pace", async move {
            let mut pace = SnapshotPace::new(shard.snapshot_every);
            while shard.background.sleep(SNAPSHOT_PACE_INTERVAL).await {
                if let Err(e) = shard.raft.snapshot_if_due(&mut pace).await {
                    tracing::warn!(shard = shard.index.get(), error = %e, "could not start a raft snapshot");
                }
            }
        });
        let shard = Rc::clone(self);
        self.background.spawn("out-of-space recovery", async move {
            shard
                .repeat_every(
                    OUT_OF_SPACE_RETRY,
                    "recovering from a full disk",
                    || async {
                        if shard.blob_log.recover_from_no_space().await? {
                            shard.publish_stats();
                        }
                        Ok(0)
                    },
                )
                .await
        });
        let Group::Cluster(replicator) = &self.group else {
            return;
        };
        let shard = Rc::clone(self);
        self.background
            .spawn("quorum watch", async move { shard.watch_quorum().await });
        let shard = Rc::clone(self);
        self.background
            .spawn("leader watch", async move { shard.watch_leader().await });
        let shard = Rc::clone(self);
        self.background.spawn(
            "leader balance",
            async move { shard.balance_leader().await },
        );
        let shard = Rc::clone(self);
        self.background
            .spawn("chunk audit", async move { shard.audit_chunks().await });
        for _ in 0..CATCHUP_WORKERS {
            let (shard, replicator) = (Rc::clone(self), Rc::clone(replicator));
            self.background.spawn("catch-up", async move {
                while let Some(wanted) = shard.background.unless_stopped(shard.catchup.next()).await
                {
                    shard.catch_up_one(&replicator, wanted).await;
                }
            });
        }
    }

    /// Runs `task` every `period` until the shard stops; a failure is
    /// logged (`what` failed) and the next period tries again.
    pub(super) async fn repeat_every<Fut>(
        &self,
        period: Duration,
        what: &str,
        task: impl Fn() -> Fut,
    ) where
        Fut: Future<Output = Result<usize, ShardError>>,
    {
        while self.background.sleep(period).await {
            if let Err(e) = task().await {
                tracing::warn!(shard = self.index.get(), error = %e, "{what} failed");
            }
        }
    }

    /// Aborts uploads older than `expiry` a few times per expiry period
    /// (at least every 15 minutes).
    async fn reap_periodically(&self, expiry: Duration) {
        let period = (expiry / 4).clamp(Duration::from_millis(250), Duration::from_secs(900));
        self.repeat_every(period, "reaping multipart uploads", || {
            self.reap_uploads(expiry)
        })
        .await;
    }

    /// Aborts, through raft, every upload initiated more than `max_age`
    /// ago; returns how many it aborted.
    pub async fn reap_uploads(&self, max_age: Duration) -> Result<usize, ShardError> {
        // Only the leader proposes; the others apply what it decides.
        if !self.raft.is_leader() {
            return Ok(0);
        }
        let cutoff = unix_ms_ago(max_age);
        let mut reaped = 0;
        loop {
            let expired = self
                .meta
                .uploads_initiated_before(cutoff, REAP_BATCH_MAX)
                .await?;
            let batch = expired.len();
            for upload in expired {
                tracing::info!(
                    shard = self.index.get(),
                    bucket = %upload.bucket,
                    key = %upload.key,
                    upload_id = %upload.upload_id,
                    "aborting a multipart upload left incomplete"
                );
                if self.propose(Op::AbortUpload(upload)).await? == ApplyOutcome::Applied {
                    reaped += 1;
                }
            }
            if batch < REAP_BATCH_MAX {
                return Ok(reaped);
            }
        }
    }

    /// As leader, collects the chunks whose count has been zero for
    /// `grace`, a few times per grace period (at most every
    /// [`GC_SCAN_INTERVAL_MAX`]).
    async fn collect_periodically(&self, grace: Duration) {
        let period = (grace / 4).clamp(Duration::from_millis(100), GC_SCAN_INTERVAL_MAX);
        self.repeat_every(period, "collecting unreferenced chunks", || {
            self.collect_garbage(grace)
        })
        .await;
    }

    /// Proposes collect entries for every chunk of the zero list whose
    /// count dropped to zero more than `grace` ago; returns how many it
    /// named. Leader only: applying the entries, every member forgets the
    /// same chunks, and only those still at zero from the same entry.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<usize, ShardError> {
        if !self.raft.is_leader() {
            return Ok(0);
        }
        if let Some(member) = self
            .member_lacking(&self.peer_addrs(), CAPABILITY_COLLECT)
            .await
        {
            tracing::debug!(
                shard = self.index.get(),
                %member,
                "a member does not advertise {CAPABILITY_COLLECT} (or has not answered): not collecting"
            );
            return Ok(0);
        }
        let cutoff = unix_ms_ago(grace);
        let mut named = 0;
        loop {
            let chunks = self
                .meta
                .blocking("zero_before", move |db| {
                    refs::zero_before(db, cutoff, GC_COLLECT_PER_ENTRY_MAX)
                })
                .await?;
            if chunks.is_empty() {
                return Ok(named);
            }
            let full = chunks.len() == GC_COLLECT_PER_ENTRY_MAX;
            let count = chunks.len();
            self.propose(Op::CollectChunks(CollectChunks { chunks }))
                .await?;
            named += count;
            self.stats
                .gc_chunks_collected
                .fetch_add(count as u64, Ordering::Relaxed);
            if !full {
                return Ok(named);
            }
        }
    }

    /// Publishes, every [`QUORUM_WATCH_INTERVAL`], whether the shard's
    /// group can commit writes (`/healthz` reads it), and logs each change.
    async fn watch_quorum(&self) {
        while self.background.sleep(QUORUM_WATCH_INTERVAL).await {
            let lost = !self.raft.has_quorum();
            if self.stats.quorum_lost.swap(lost, Ordering::Relaxed) != lost {
                if lost {
                    tracing::warn!(
                        shard = self.index.get(),
                        leader = self.raft.leader().map(|l| l.get()),
                        "the shard's group cannot reach a quorum; writes and reads wait"
                    );
                } else {
                    tracing::info!(
                        shard = self.index.get(),
                        leader = self.raft.leader().map(|l| l.get()),
                        "the shard's group has a quorum again"
                    );
                }
            }
        }
    }

    /// Stands for election as soon as a silent leader's lease has run out
    /// (see `crate::raft::leadership`), checked every [`LEADER_WATCH_INTERVAL`].
    async fn watch_leader(&self) {
        while self.background.sleep(LEADER_WATCH_INTERVAL).await {
            if let Some((leader, silent)) = self.raft.stand_if_leader_silent().await {
                tracing::warn!(
                    shard = self.index.get(),
                    leader = leader.get(),
                    silent_ms = silent.as_millis() as u64,
                    "the leader has been silent past its lease; standing for election"
                );
            }
        }
    }

    /// Hands the group to its preferred leader once that member is live
    /// and caught up, so leaders stay spread over the members (see
    /// `crate::raft::leadership`); checked every [`LEADER_BALANCE_INTERVAL`].
    async fn balance_leader(&self) {
        while self.background.sleep(LEADER_BALANCE_INTERVAL).await {
            let Some(target) = self.raft.balance_target() else {
                continue;
            };
            match self.raft.hand_over_to(target).await {
                Handover::HandedTo(node) => tracing::info!(
                    shard = self.index.get(),
                    to = node.get(),
                    "handed leadership to the group's preferred leader"
                ),
                other => tracing::info!(
                    shard = self.index.get(),
                    to = target.get(),
                    outcome = ?other,
                    "balancing leadership did not happen; trying again later"
                ),
            }
        }
    }

    /// Once, shortly after start: looks through every manifest and part
    /// for chunks this node lacks and queues them for the background fetch.
    /// The queue lives in memory, so this is how chunks still waiting when
    /// the node stopped (or whose push and index write were lost) are
    /// found again. Pauses while the queue is long.
    async fn audit_chunks(&self) {
        match self.meta.take_chunks_complete_mark().await {
            Ok(true) => {
                tracing::info!(
                    shard = self.index.get(),
                    "the last stop had every chunk here: no chunk audit"
                );
                self.chunks_audited.set(true);
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(shard = self.index.get(), error = %e, "reading the chunks-complete mark failed; auditing")
            }
        }
        if !self.background.sleep(AUDIT_DELAY).await {
            return;
        }
        let (mut next, mut queued) = (Some(ChunkScan::default()), 0);
        while let Some(from) = next {
            while self.catchup.pending() > AUDIT_QUEUE_HIGH {
                if !self.background.sleep(Duration::from_secs(1)).await {
                    return;
                }
            }
            match self.meta.missing_chunks(from, AUDIT_RECORDS_PER_PAGE).await {
                Ok((missing, after)) => {
                    queued += missing.len();
                    self.catchup.offer(missing);
                    next = after;
                }
                Err(e) => {
                    tracing::warn!(shard = self.index.get(), error = %e, "chunk audit failed");
                    return;
                }
            }
        }
        tracing::info!(shard = self.index.get(), queued, "chunk audit done");
        self.chunks_audited.set(true);
    }

    /// Fetches one chunk this node has refs to but no bytes for (see
    /// [`crate::catchup`]), from the member that stored it first when it
    /// is still a member, else from any other; paced per peer.
    async fn catch_up_one(&self, replicator: &Replicator, wanted: Wanted) {
        self.publish_catchup_stats();
        match self.meta.get_blob_location(&wanted.sha256).await {
            Ok(None) => {}
            Ok(Some(_)) => return, // pushed meanwhile, or already here
            Err(e) => {
                tracing::warn!(shard = self.index.get(), error = %e, "catch-up lookup failed");
                return;
            }
        }
        // A chunk no count names was collected since it was queued (or
        // its ref never applied here): fetching it would bring back bytes
        // the sweeper forgets again.
        match self.meta.is_counted(wanted.sha256).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(shard = self.index.get(), error = %e, "catch-up lookup failed");
                return;
            }
        }
        let peers = self.peer_addrs();
        let first = self
            .raft
            .member_addr(wanted.source_node)
            .filter(|addr| peers.contains(addr))
            .or_else(|| peers.choose(&mut rand::thread_rng()).cloned());
        let Some(first) = first else {
            return; // no other member (any more)
        };
        let wait = self
            .pacer
            .reserve(&first, CHUNK_BYTES as u64, Instant::now());
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
        match replicator.fetch(peers, Some(&first), wanted.sha256).await {
            Some(bytes) => match self.store_chunk(wanted.sha256, &bytes).await {
                Ok(()) => {
                    self.stats
                        .chunk_catchup_fetched
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(shard = self.index.get(), error = %e, "keeping a caught-up chunk failed")
                }
            },
            None => {
                self.stats
                    .chunk_catchup_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    shard = self.index.get(),
                    sha256 = %wanted.sha256,
                    "no member had a chunk to catch up on; it is fetched again when read"
                );
            }
        }
    }
}
