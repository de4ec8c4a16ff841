//! A shard: the blob log, metadata store and raft group one core owns, and
//! the loop that serves [`ShardRequest`]s for them.
//!
//! Runs on its owner core only. Requests run as concurrent local tasks (at
//! most [`SHARD_OPS_INFLIGHT_MAX`]) so appends from many uploads meet in the
//! blob log's group commit.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use shoal_proto::meta::{self, meta_command::Op, MetaCommand};

use crate::blob_log::{BlobLocation, BlobLog, GROUP_COMMIT_BATCH_BOUNDS};
use crate::catchup::{Catchup, PeerPacer, Wanted, CATCHUP_WORKERS};
use crate::chunk::ChunkBuf;
use crate::directory::Directory;
use crate::error::ShardError;
use crate::limits::CHUNK_BYTES;
use crate::limits::{
    INLINE_CHUNKS_PER_ENTRY, INLINE_PROPOSALS_INFLIGHT_MAX, SEGMENT_BYTES_MAX,
    SHARD_OPS_INFLIGHT_MAX,
};
use crate::meta::{ChunkScan, MetaStore};
use crate::ops::{GroupView, MetaChange, ObjectSummary, ShardRequest};
use crate::peer::{ClusterSecret, PeerError};
use crate::raft::RaftError;
use crate::raft::{op_chunks_mut, ApplyHooks};
use crate::raft::{ApplyOutcome, Handover, RaftOptions, ShardRaft};
use crate::replication::{self, Durability, Replicator};
use crate::usage::UsageCache;
use futures::channel::oneshot;
use rand::seq::SliceRandom;
use std::collections::VecDeque;
use std::time::Instant;

/// Counters a shard publishes for the metrics endpoint. Written by the
/// owner core only; read by whichever core serves a scrape.
#[derive(Debug, Default)]
pub struct ShardStats {
    pub blob_log_appends: AtomicU64,
    pub blob_log_fsyncs: AtomicU64,
    pub blob_log_bytes_written: AtomicU64,
    pub raft_log_appended_bytes: AtomicU64,
    pub raft_entries_appended: AtomicU64,
    pub ops_inflight: AtomicU64,
    /// Group commits by batch size (see `GROUP_COMMIT_BATCH_BOUNDS`).
    pub group_commit_batches: [AtomicU64; GROUP_COMMIT_BATCH_BOUNDS.len() + 1],
    /// Requests sent to this shard from other cores and not yet received
    /// by it. Written by the senders and the receiver, hence shared.
    pub hop_queue_depth: AtomicU64,
    /// Set once the shard cannot take writes any more (its blob log is
    /// poisoned or its raft group stopped); `/healthz` reports it.
    pub failed: AtomicBool,
    /// Set while the shard's group cannot reach a quorum (a cluster only);
    /// `/healthz` reports it.
    pub quorum_lost: AtomicBool,
    /// Chunks made durable on fewer nodes than `--min-blob-replicas` (but
    /// at least two).
    pub chunkblob_replication_degraded: AtomicU64,
    /// Chunks a manifest names that neither this node nor any member had.
    pub chunkblob_unrecoverable: AtomicU64,
    /// Chunks fetched in the background after their refs were applied.
    pub chunkblob_catchup_fetched: AtomicU64,
    /// Background fetches no member could answer (the chunk is fetched
    /// again when read).
    pub chunkblob_catchup_failed: AtomicU64,
    /// Chunks waiting for a background fetch.
    pub chunkblob_catchup_pending: AtomicU64,
    /// Chunks not queued for a background fetch because the queue was full.
    pub chunkblob_catchup_dropped: AtomicU64,
    /// Chunks this node wrote inline (bytes in a raft entry) as leader.
    pub chunkblob_inline_writes: AtomicU64,
    /// Bytes of the latest raft snapshot built or installed here.
    pub raft_snapshot_bytes: AtomicU64,
}

/// How a shard's raft group takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// This node's peer address (shard 0's port), as members record it;
    /// empty on a single node.
    pub peer_addr: String,
    pub secret: Option<ClusterSecret>,
    /// Whether an uninitialised group makes this node its first member.
    pub bootstrap: bool,
    /// Nodes (this one included) a chunk must be durable on before its
    /// refs are proposed; 0 means the raft quorum.
    pub min_blob_replicas: usize,
    /// Whether this node advertises (and, leading, uses) blob offload;
    /// without it chunk bytes travel inside raft entries.
    pub blob_offload: bool,
    /// Pace of background chunk fetches from each peer, in bytes per
    /// second (0: unpaced).
    pub catchup_bytes_per_s: u64,
    /// Entries applied since the last snapshot that trigger a new one.
    pub snapshot_logs_since_last: u64,
    /// Entries already in a snapshot kept in the log for slow followers.
    pub logs_kept_after_snapshot: u64,
}

impl ClusterOptions {
    /// A node on its own.
    pub fn single_node() -> ClusterOptions {
        ClusterOptions {
            peer_addr: String::new(),
            secret: None,
            bootstrap: true,
            min_blob_replicas: 0,
            blob_offload: true,
            catchup_bytes_per_s: 0,
            snapshot_logs_since_last: crate::raft::SNAPSHOT_LOGS_SINCE_LAST,
            logs_kept_after_snapshot: crate::raft::LOGS_KEPT_AFTER_SNAPSHOT,
        }
    }
}

/// How long a follower waits to apply a write it forwarded to the leader.
const FORWARDED_APPLY_WAIT_MAX: Duration = Duration::from_secs(5);

/// How long a read waits for this node to apply up to the read index
/// before it gives up with [`ShardError::NotCurrent`].
const READ_APPLY_WAIT_MAX: Duration = Duration::from_secs(5);

/// How long after start the chunk audit begins (the group settles first).
const AUDIT_DELAY: Duration = Duration::from_secs(5);
/// Manifests and parts the audit reads per page.
const AUDIT_RECORDS_PER_PAGE: usize = 256;
/// Queue length above which the audit waits for the fetches.
const AUDIT_QUEUE_HIGH: usize = 4096;

/// How often a cluster shard checks that its group has a quorum.
const QUORUM_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How long [`ShardRequest::Snapshot`] waits for the snapshot.
const SNAPSHOT_WAIT_MAX: Duration = Duration::from_secs(60);

/// Uploads the reaper reads per scan of the store.
const REAP_BATCH_MAX: usize = 256;

pub struct Shard {
    index: u16,
    /// Shared with the state machine, which appends inline chunks.
    blob_log: Rc<BlobLog>,
    meta: MetaStore,
    raft: Rc<ShardRaft>,
    stats: Arc<ShardStats>,
    permits: Rc<glommio::sync::Semaphore>,
    /// Pushes and fetches chunks; `None` on a single node.
    replicator: Option<Rc<Replicator>>,
    min_blob_replicas: usize,
    blob_offload: bool,
    /// Chunks to fetch in the background (fed by the state machine).
    catchup: Rc<Catchup>,
    pacer: PeerPacer,
    /// How the last chunk was written, to log changes.
    last_write_mode: RefCell<Option<WriteMode>>,
    /// Inline chunks waiting for an entry, oldest first.
    inline_waiting: RefCell<VecDeque<InlinePending>>,
    /// Inline entries being proposed.
    inline_proposals: glommio::sync::Semaphore,
    /// What each bucket holds here, as last scanned.
    usage: Rc<UsageCache>,
}

/// An inline chunk waiting for an entry, and where its outcome goes.
struct InlinePending {
    chunk: meta::InlineChunk,
    done: oneshot::Sender<Result<(), Rc<ShardError>>>,
}

/// How a leader writes a chunk, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
enum WriteMode {
    Offload,
    Inline(String),
}

impl Shard {
    /// Recovers the blob log and starts the raft group. Must run on the
    /// shard's own executor. The metadata shard gets the node's
    /// `directory` to publish bucket and user changes to.
    pub async fn open(
        index: u16,
        node_id: u64,
        blob_dir: &Path,
        meta: MetaStore,
        stats: Arc<ShardStats>,
        directory: Option<Arc<Directory>>,
        cluster: ClusterOptions,
    ) -> Result<Rc<Shard>, ShardError> {
        let (blob_log, recovery) = BlobLog::open(blob_dir, SEGMENT_BYTES_MAX).await?;
        tracing::info!(
            shard = index,
            segments = recovery.segments,
            records = recovery.records,
            truncated_bytes = recovery.truncated_bytes,
            "blob log recovered"
        );
        let blob_log = Rc::new(blob_log);
        let replicator = cluster
            .secret
            .clone()
            .map(|secret| Rc::new(Replicator::new(index, node_id, secret)));
        let catchup = Rc::new(Catchup::default());
        let hooks = ApplyHooks {
            directory,
            blob_log: Some(Rc::clone(&blob_log)),
            // Only members of a cluster can lack a chunk they have refs to.
            catchup: replicator.as_ref().map(|_| Rc::clone(&catchup)),
        };
        let options = RaftOptions {
            hooks,
            node_addr: cluster.peer_addr,
            secret: cluster.secret,
            bootstrap: cluster.bootstrap,
            snapshot_logs_since_last: cluster.snapshot_logs_since_last,
            logs_kept_after_snapshot: cluster.logs_kept_after_snapshot,
            ..RaftOptions::default()
        };
        let raft = ShardRaft::start_with(node_id, index, meta.clone(), options).await?;
        Ok(Rc::new(Shard {
            index,
            blob_log,
            meta,
            raft,
            stats,
            permits: Rc::new(glommio::sync::Semaphore::new(SHARD_OPS_INFLIGHT_MAX as u64)),
            replicator,
            min_blob_replicas: cluster.min_blob_replicas,
            blob_offload: cluster.blob_offload,
            catchup,
            pacer: PeerPacer::new(cluster.catchup_bytes_per_s),
            last_write_mode: RefCell::new(None),
            inline_waiting: RefCell::new(VecDeque::new()),
            inline_proposals: glommio::sync::Semaphore::new(INLINE_PROPOSALS_INFLIGHT_MAX as u64),
            usage: Rc::default(),
        }))
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    /// The shard's raft group, for its peer port.
    pub fn raft(&self) -> &Rc<ShardRaft> {
        &self.raft
    }

    /// Stops the shard as part of a node's orderly shutdown, once no
    /// client request is in progress: in a cluster, hands the group to
    /// another member if this node leads it; then stops the raft group and
    /// flushes the metadata store. Each step is logged.
    pub async fn stop(&self) {
        if self.replicator.is_some() {
            match self.raft.hand_over().await {
                Handover::NotLeader | Handover::NoOtherVoter => {}
                Handover::HandedTo(node) => {
                    tracing::info!(shard = self.index, to = node, "handed leadership over")
                }
                Handover::Failed(reason) => tracing::warn!(
                    shard = self.index,
                    %reason,
                    "could not hand leadership over; the group elects a new leader after its election timeout"
                ),
            }
        }
        self.raft.shutdown().await;
        match self.meta.flush().await {
            Ok(()) => tracing::info!(shard = self.index, "metadata flushed"),
            Err(e) => tracing::warn!(shard = self.index, error = %e, "flushing metadata failed"),
        }
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

    async fn serve(&self, request: ShardRequest) {
        // A dropped reply receiver means the client went away; nothing to do.
        match request {
            ShardRequest::AppendChunk { buf, sha256, reply } => {
                let result = self.append_replicated(buf, sha256).await;
                self.publish_stats();
                let _ = reply.send(result);
            }
            ShardRequest::CommitObject {
                manifest,
                blobs,
                condition,
                reply,
            } => {
                let op = match condition {
                    None => Op::PutObject(manifest),
                    Some(condition) => Op::PutObjectIf(meta::PutObject {
                        manifest: Some(manifest),
                        condition: Some(condition),
                    }),
                };
                let _ = reply.send(self.commit_with_blobs(op, blobs).await);
            }
            ShardRequest::GetObject { bucket, key, reply } => {
                let found = self.read_current(self.meta.get_object(&bucket, &key));
                let _ = reply.send(found.await);
            }
            ShardRequest::ReadChunk {
                sha256,
                source_node,
                reply,
            } => {
                let _ = reply.send(self.read_chunk(sha256, source_node).await);
            }
            ShardRequest::DeleteObject { bucket, key, reply } => {
                let cmd = Op::DeleteObject(meta::DeleteObject { bucket, key });
                let _ = reply.send(self.propose(cmd).await.map(|_| ()));
            }
            ShardRequest::ListObjects {
                bucket,
                prefix,
                after,
                limit,
                reply,
            } => {
                let listed = self.meta.list_objects(&bucket, &prefix, after, limit);
                let summaries = self.read_current(listed).await.map(|manifests| {
                    manifests
                        .into_iter()
                        .map(|m| ObjectSummary {
                            key: m.key,
                            size_bytes: m.size_bytes,
                            md5: m.md5,
                            part_count: m.part_count,
                            owner_id: m.owner_id,
                            last_modified_unix_ms: m.last_modified_unix_ms,
                        })
                        .collect()
                });
                let _ = reply.send(summaries);
            }
            ShardRequest::BucketHasObjects { bucket, reply } => {
                let found = self.read_current(self.meta.bucket_has_objects(&bucket));
                let _ = reply.send(found.await);
            }
            ShardRequest::BucketUsage {
                bucket,
                freshness,
                reply,
            } => {
                let usage = match bucket {
                    Some(bucket) => self.meta.bucket_usage(Some(&bucket)).await.map(Arc::new),
                    None => self.usage.get(&self.meta, freshness).await,
                };
                let _ = reply.send(usage.map_err(Into::into));
            }
            ShardRequest::CreateBucket { record, reply } => {
                let _ = reply.send(self.propose(Op::CreateBucket(record)).await);
            }
            ShardRequest::DeleteBucket { name, reply } => {
                let _ = reply.send(self.propose(Op::DeleteBucket(name)).await);
            }
            ShardRequest::ListBuckets { reply } => {
                let _ = reply.send(self.read_current(self.meta.list_buckets()).await);
            }
            ShardRequest::ChangeMetadata { change, reply } => {
                let op = match change {
                    MetaChange::CreateUser(user) => Op::CreateUser(user),
                    MetaChange::DeleteUser(name) => Op::DeleteUserWithoutBuckets(name),
                    MetaChange::AddAccessKey(add) => Op::AddAccessKey(add),
                    MetaChange::SetUserEnabled(set) => Op::SetUserEnabled(set),
                    MetaChange::SetKeyEnabled(set) => Op::SetKeyEnabled(set),
                    MetaChange::DeleteAccessKey(key) => Op::DeleteAccessKey(key),
                    MetaChange::PutBucketAcl(put) => Op::PutBucketAcl(put),
                    MetaChange::SetBucketOwner(set) => Op::SetBucketOwner(set),
                };
                let _ = reply.send(self.propose(op).await);
            }
            ShardRequest::ClusterView { reply } => {
                let _ = reply.send(Ok(self.group_view().await));
            }
            ShardRequest::AddMember {
                node_id,
                peer_addr,
                reply,
            } => {
                let added = self.raft.add_member(node_id, &peer_addr).await;
                let _ = reply.send(added.map_err(Into::into));
            }
            ShardRequest::RemoveMember { node_id, reply } => {
                let removed = self.raft.remove_member(node_id).await;
                let _ = reply.send(removed.map_err(Into::into));
            }
            ShardRequest::PutObjectAcl { put, reply } => {
                let _ = reply.send(self.propose(Op::PutObjectAcl(put)).await);
            }
            ShardRequest::CreateUpload { upload, reply } => {
                let _ = reply.send(self.propose(Op::CreateUpload(upload)).await);
            }
            ShardRequest::GetUpload { upload, reply } => {
                let found = self
                    .meta
                    .get_upload(&upload.bucket, &upload.key, &upload.upload_id);
                let _ = reply.send(self.read_current(found).await);
            }
            ShardRequest::PutPart { part, blobs, reply } => {
                let _ = reply.send(self.commit_with_blobs(Op::PutPart(part), blobs).await);
            }
            ShardRequest::ListParts {
                upload_id,
                after,
                limit,
                reply,
            } => {
                let parts = self.meta.list_parts(&upload_id, after, limit);
                let _ = reply.send(self.read_current(parts).await);
            }
            ShardRequest::CompleteUpload { complete, reply } => {
                let _ = reply.send(self.propose(Op::CompleteUpload(complete)).await);
            }
            ShardRequest::AbortUpload { upload, reply } => {
                let _ = reply.send(self.propose(Op::AbortUpload(upload)).await);
            }
            ShardRequest::ListUploads {
                bucket,
                prefix,
                after,
                limit,
                reply,
            } => {
                let uploads = self.meta.list_uploads(&bucket, &prefix, after, limit);
                let _ = reply.send(self.read_current(uploads).await);
            }
            ShardRequest::Snapshot { reply } => {
                let built = self.raft.snapshot_now(SNAPSHOT_WAIT_MAX).await;
                self.publish_stats();
                let _ = reply.send(built.map_err(Into::into));
            }
        }
    }

    /// Makes sure this node has applied every write acknowledged before
    /// the call, so the read that follows is current (linearizable). A
    /// single node always is. A leader checks its lease (or asks a quorum);
    /// a follower asks the leader for its read index and waits until it
    /// has applied that far, at most [`READ_APPLY_WAIT_MAX`].
    async fn ensure_current(&self) -> Result<(), ShardError> {
        let Some(replicator) = self.replicator.as_ref() else {
            return Ok(());
        };
        let index = if self.raft.is_leader() {
            self.raft.read_index().await?
        } else {
            let leader_addr = self.forward_target().ok_or(RaftError::NotLeader {
                leader: self.raft.leader(),
            })?;
            replicator
                .read_index(&leader_addr)
                .await
                .map_err(|e| self.forward_failed(e))?
        };
        if self.raft.wait_applied(index, READ_APPLY_WAIT_MAX).await {
            Ok(())
        } else {
            Err(ShardError::NotCurrent {
                shard: self.index,
                index,
            })
        }
    }

    /// Runs `read` (a metadata store read, not started yet) once this node
    /// is current.
    async fn read_current<T, E: Into<ShardError>>(
        &self,
        read: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ShardError> {
        self.ensure_current().await?;
        read.await.map_err(Into::into)
    }

    /// What this node advertises to the other members.
    pub fn capabilities(&self) -> Vec<String> {
        if self.blob_offload {
            vec![replication::CAPABILITY_OFFLOAD.to_string()]
        } else {
            Vec::new()
        }
    }

    /// The group as this node sees it, with what each member advertises
    /// (asked again once the cached answer is older than
    /// [`replication::CAPABILITIES_TTL`]).
    async fn group_view(&self) -> GroupView {
        let me = self.raft.node_id();
        let members = self.raft.membership();
        let mut capabilities = Vec::with_capacity(members.len());
        for (id, addr, _) in &members {
            let advertised = match &self.replicator {
                _ if *id == me => Some(self.capabilities()),
                Some(replicator) => replicator.capabilities(addr).await,
                None => None,
            };
            capabilities.push((*id, advertised));
        }
        let last_contact_ms = members
            .iter()
            .map(|(id, _, _)| {
                let since = self.raft.last_contact(*id);
                (*id, since.map(|d| d.as_millis() as u64))
            })
            .collect();
        GroupView {
            shard: self.index,
            leader: self.raft.leader(),
            members,
            capabilities,
            last_contact_ms,
            has_quorum: self.raft.has_quorum(),
        }
    }

    /// Publishes, every [`QUORUM_WATCH_INTERVAL`], whether the shard's
    /// group can commit writes (`/healthz` reads it), and logs each change.
    /// Ends with the shard.
    pub async fn watch_quorum(shard: std::rc::Weak<Shard>) {
        loop {
            glommio::timer::sleep(QUORUM_WATCH_INTERVAL).await;
            let Some(shard) = shard.upgrade() else {
                return;
            };
            let lost = !shard.raft.has_quorum();
            if shard.stats.quorum_lost.swap(lost, Ordering::Relaxed) != lost {
                if lost {
                    tracing::warn!(shard = shard.index, leader = ?shard.raft.leader(), "the shard's group cannot reach a quorum; writes and reads wait");
                } else {
                    tracing::info!(shard = shard.index, leader = ?shard.raft.leader(), "the shard's group has a quorum again");
                }
            }
        }
    }

    /// Whether chunks go outside raft: this node and every other member
    /// advertise blob offload. Logs each change of mode, with its reason.
    async fn offload_now(&self, peers: &[String]) -> bool {
        let mode = self.write_mode(peers).await;
        if self.last_write_mode.replace(Some(mode.clone())).as_ref() != Some(&mode) {
            match &mode {
                WriteMode::Offload => {
                    tracing::info!(shard = self.index, "writing chunks offloaded")
                }
                WriteMode::Inline(reason) => {
                    tracing::info!(shard = self.index, %reason, "writing chunks inline")
                }
            }
        }
        mode == WriteMode::Offload
    }

    async fn write_mode(&self, peers: &[String]) -> WriteMode {
        if !self.blob_offload {
            return WriteMode::Inline("--blob-offload is false on this node".into());
        }
        let Some(replicator) = self.replicator.as_ref() else {
            return WriteMode::Offload;
        };
        for addr in peers {
            let advertised = replicator.capabilities(addr).await.unwrap_or_default();
            if !replication::advertises_offload(&advertised) {
                return WriteMode::Inline(format!(
                    "member {addr} does not advertise {} (or has not answered)",
                    replication::CAPABILITY_OFFLOAD
                ));
            }
        }
        WriteMode::Offload
    }

    /// Fetches, in the background, chunks this node holds refs to but no
    /// bytes for (see [`crate::catchup`]). Runs until the executor stops;
    /// start it once per shard. Does nothing on a single node.
    pub async fn catch_up(self: Rc<Self>) {
        if self.replicator.is_none() {
            return;
        }
        glommio::spawn_local(Rc::clone(&self).audit_chunks()).detach();
        let workers: Vec<_> = (0..CATCHUP_WORKERS)
            .map(|_| {
                let shard = Rc::clone(&self);
                glommio::spawn_local(async move {
                    loop {
                        let wanted = shard.catchup.next().await;
                        shard.catch_up_one(wanted).await;
                    }
                })
            })
            .collect();
        futures::future::join_all(workers).await;
    }

    /// Once, shortly after start: looks through every manifest and part
    /// for chunks this node lacks and queues them for the background fetch.
    /// The queue lives in memory, so this is how chunks still waiting when
    /// the node stopped (or whose push and index write were lost) are
    /// found again. Pauses while the queue is long.
    async fn audit_chunks(self: Rc<Self>) {
        glommio::timer::sleep(AUDIT_DELAY).await;
        let (mut next, mut queued) = (Some(ChunkScan::default()), 0);
        while let Some(from) = next {
            while self.catchup.pending() > AUDIT_QUEUE_HIGH {
                glommio::timer::sleep(Duration::from_secs(1)).await;
            }
            match self.meta.missing_chunks(from, AUDIT_RECORDS_PER_PAGE).await {
                Ok((missing, after)) => {
                    queued += missing.len();
                    self.catchup.offer(missing);
                    next = after;
                }
                Err(e) => {
                    tracing::warn!(shard = self.index, error = %e, "chunk audit failed");
                    return;
                }
            }
        }
        tracing::info!(shard = self.index, queued, "chunk audit done");
    }

    async fn catch_up_one(&self, wanted: Wanted) {
        let replicator = self.replicator.as_ref().expect("catch_up checks it");
        self.publish_catchup_stats();
        match self.meta.get_blob_location(&wanted.sha256).await {
            Ok(None) => {}
            Ok(Some(_)) => return, // pushed meanwhile, or already here
            Err(e) => {
                tracing::warn!(shard = self.index, error = %e, "catch-up lookup failed");
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
                        .chunkblob_catchup_fetched
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(shard = self.index, error = %e, "keeping a caught-up chunk failed")
                }
            },
            None => {
                self.stats
                    .chunkblob_catchup_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    shard = self.index,
                    sha256 = %hex::encode(wanted.sha256),
                    "no member had a chunk to catch up on; it is fetched again when read"
                );
            }
        }
    }

    /// Aborts, through raft, every upload initiated more than `max_age`
    /// ago; returns how many it aborted.
    pub async fn reap_uploads(&self, max_age: Duration) -> Result<usize, ShardError> {
        // Only the leader proposes; the others apply what it decides.
        if !self.raft.is_leader() {
            return Ok(0);
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let cutoff = now_ms.saturating_sub(max_age.as_millis() as u64);
        let mut reaped = 0;
        loop {
            let expired = self
                .meta
                .uploads_initiated_before(cutoff, REAP_BATCH_MAX)
                .await?;
            let batch = expired.len();
            for upload in expired {
                tracing::info!(
                    shard = self.index,
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

    /// Indexes the chunks (unsynced: the raft append below is synced on the
    /// same rocksdb WAL, so both are durable together), then commits the op
    /// that refers to them (an object manifest or a part). It takes effect
    /// only when the entry is applied.
    async fn commit_with_blobs(
        &self,
        op: Op,
        blobs: Vec<([u8; 32], BlobLocation)>,
    ) -> Result<ApplyOutcome, ShardError> {
        if self.forward_target().is_some() {
            // The chunks were forwarded too; the leader stored and indexed
            // them, so it is the refs' source.
            let leader = self.raft.leader().unwrap_or_default();
            return self.propose(with_source(op, leader)).await;
        }
        let op = with_source(op, self.raft.node_id());
        let locations = blobs
            .into_iter()
            .map(|(hash, at)| (hash, at.into()))
            .collect();
        self.meta.put_blob_locations(locations, false).await?;
        fail::fail_point!("shard::commit_object", |_| Err(ShardError::Injected {
            point: "shard::commit_object"
        }));
        self.propose(op).await
    }

    /// Appends a chunk to the blob log and, in a cluster, pushes it to
    /// every other member at the same time; returns once the degradation
    /// ladder calls it durable. Only the leader takes new chunks.
    pub async fn append_replicated(
        &self,
        buf: ChunkBuf,
        sha256: [u8; 32],
    ) -> Result<(BlobLocation, ChunkBuf), ShardError> {
        if let Some(leader_addr) = self.forward_target() {
            let replicator = self.replicator.as_ref().expect("forward_target checks it");
            let location = replicator
                .forward_append(&leader_addr, sha256, buf.payload())
                .await
                .map_err(|e| self.forward_failed(e))?;
            return Ok((location, buf));
        }
        let peers = self.peer_addrs();
        if !self.offload_now(&peers).await {
            return self.append_inline(buf, sha256).await;
        }
        let Some(replicator) = self.replicator.as_ref().filter(|_| !peers.is_empty()) else {
            return Ok(self.blob_log.append(buf, sha256).await?);
        };
        if !self.raft.is_leader() {
            return Err(RaftError::NotLeader {
                leader: self.raft.leader(),
            }
            .into());
        }
        let members = peers.len() + 1;
        let bytes = Bytes::copy_from_slice(buf.payload());
        let (acks, mut answers) = futures::channel::mpsc::unbounded();
        for addr in peers {
            let (replicator, bytes, acks) = (Rc::clone(replicator), bytes.clone(), acks.clone());
            glommio::spawn_local(async move {
                let pushed = replicator.push(&addr, sha256, &bytes).await;
                if let Err(e) = &pushed {
                    tracing::debug!(peer = %addr, error = %e, "chunk push failed");
                }
                let _ = acks.unbounded_send(pushed.is_ok());
            })
            .detach();
        }
        drop(acks);
        let stored_here = self.blob_log.append(buf, sha256).await?;
        // Indexed now, not only when the manifest commits: a follower that
        // forwarded this chunk commits its manifest through us later.
        // Unsynced: the commit's synced raft append makes it durable.
        self.meta
            .put_blob_locations(vec![(sha256, stored_here.0.into())], false)
            .await?;
        let (mut stored, mut answered) = (1, 0);
        while !replication::settled(members, stored, answered, self.min_blob_replicas) {
            match answers.next().await {
                Some(ok) => {
                    answered += 1;
                    stored += usize::from(ok);
                }
                None => break,
            }
        }
        match replication::ladder(members, stored, self.min_blob_replicas) {
            Durability::Durable => Ok(stored_here),
            Durability::Degraded => {
                self.stats
                    .chunkblob_replication_degraded
                    .fetch_add(1, Ordering::Relaxed);
                Ok(stored_here)
            }
            Durability::Insufficient => Err(ShardError::ReplicationFailed { stored, members }),
        }
    }

    /// Inline mode: the chunk's bytes go into a raft entry, shared with
    /// up to two other chunks waiting at the same time (like a group
    /// commit: fewer, larger synced appends), and every member (this one
    /// included) appends them to its blob log as it applies the entry.
    /// Durable once committed, like any entry. At most
    /// [`INLINE_PROPOSALS_INFLIGHT_MAX`] such entries are proposed at once;
    /// a task whose chunk waits proposes the chunks at the front of the
    /// queue until its own is committed, by itself or another task.
    async fn append_inline(
        &self,
        buf: ChunkBuf,
        sha256: [u8; 32],
    ) -> Result<(BlobLocation, ChunkBuf), ShardError> {
        let (done, mut committed) = oneshot::channel();
        let chunk = meta::InlineChunk {
            sha256: sha256.to_vec(),
            data: buf.payload().to_vec(),
        };
        self.inline_waiting
            .borrow_mut()
            .push_back(InlinePending { chunk, done });
        let outcome = loop {
            if let Ok(Some(outcome)) = committed.try_recv() {
                break outcome;
            }
            let permit = self
                .inline_proposals
                .acquire_permit(1)
                .await
                .expect("the inline semaphore is never closed");
            let batch: Vec<InlinePending> = {
                let mut waiting = self.inline_waiting.borrow_mut();
                let take = waiting.len().min(INLINE_CHUNKS_PER_ENTRY);
                waiting.drain(..take).collect()
            };
            if batch.is_empty() {
                // Ours is in an entry another task is proposing.
                drop(permit);
                break committed.await.unwrap_or_else(|_| {
                    Err(Rc::new(ShardError::InlineWrite {
                        reason: "the task proposing the chunk stopped".into(),
                    }))
                });
            }
            let (chunks, waiters): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|p| (p.chunk, p.done)).unzip();
            let proposed = self
                .propose(Op::StoreChunks(meta::InlineChunks { chunks }))
                .await
                .map(|_| ())
                .map_err(Rc::new);
            drop(permit);
            if proposed.is_ok() {
                self.stats
                    .chunkblob_inline_writes
                    .fetch_add(waiters.len() as u64, Ordering::Relaxed);
            }
            for waiter in waiters {
                let _ = waiter.send(proposed.clone());
            }
        };
        outcome.map_err(|e| match &*e {
            ShardError::Raft(RaftError::NotLeader { leader }) => {
                RaftError::NotLeader { leader: *leader }.into()
            }
            other => ShardError::InlineWrite {
                reason: other.to_string(),
            },
        })?;
        Ok((self.local_location(sha256).await?, buf))
    }

    /// Peer addresses of the other members of this shard's group.
    fn peer_addrs(&self) -> Vec<String> {
        if self.replicator.is_none() {
            return Vec::new();
        }
        let me = self.raft.node_id();
        self.raft
            .membership()
            .into_iter()
            .filter(|(id, _, _)| *id != me)
            .map(|(_, addr, _)| addr)
            .collect()
    }

    /// Stores a chunk another node sent (a push, or a fetch this node
    /// made), durably: fsync'd and indexed with a synced write.
    pub async fn store_chunk(&self, sha256: [u8; 32], bytes: &[u8]) -> Result<(), ShardError> {
        if bytes.len() > CHUNK_BYTES || <[u8; 32]>::from(Sha256::digest(bytes)) != sha256 {
            return Err(ShardError::ChunkMissing {
                sha256_hex: hex::encode(sha256),
            });
        }
        let mut buf = ChunkBuf::new();
        buf.fill_from(bytes);
        let (at, _) = self.blob_log.append(buf, sha256).await?;
        self.meta
            .put_blob_locations(vec![(sha256, at.into())], true)
            .await?;
        self.publish_stats();
        Ok(())
    }

    /// A chunk's bytes: from this node's blob log, else (in a cluster)
    /// fetched from another member (`source_node`, the node that stored
    /// it first, before the others), checked and kept.
    pub async fn read_chunk(
        &self,
        sha256: [u8; 32],
        source_node: u64,
    ) -> Result<bytes::Bytes, ShardError> {
        match self.read_local_chunk(sha256).await {
            Err(ShardError::ChunkMissing { .. }) if self.replicator.is_some() => {}
            other => return other,
        }
        let replicator = self.replicator.as_ref().expect("checked above");
        let source = self.raft.member_addr(source_node);
        let fetched = replicator
            .fetch(self.peer_addrs(), source.as_deref(), sha256)
            .await;
        let Some(bytes) = fetched else {
            self.stats
                .chunkblob_unrecoverable
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(shard = self.index, sha256 = %hex::encode(sha256), "no member has the chunk");
            return Err(ShardError::ChunkMissing {
                sha256_hex: hex::encode(sha256),
            });
        };
        if let Err(e) = self.store_chunk(sha256, &bytes).await {
            tracing::warn!(shard = self.index, error = %e, "keeping a fetched chunk failed");
        }
        Ok(bytes::Bytes::from(bytes))
    }

    /// A chunk from this node's blob log only.
    pub async fn read_local_chunk(&self, sha256: [u8; 32]) -> Result<bytes::Bytes, ShardError> {
        let location = self.local_location(sha256).await?;
        Ok(self.blob_log.read(location, &sha256).await?)
    }

    /// Where this node's blob log holds a chunk, from the blob index.
    async fn local_location(&self, sha256: [u8; 32]) -> Result<BlobLocation, ShardError> {
        let stored = self.meta.get_blob_location(&sha256).await?;
        stored
            .map(Into::into)
            .ok_or_else(|| ShardError::ChunkMissing {
                sha256_hex: hex::encode(sha256),
            })
    }

    /// Commits a command through the group: here when this node leads,
    /// else (in a cluster) through the leader, then waits until this node
    /// has applied the entry too, so the caller reads its own write.
    async fn propose(&self, op: Op) -> Result<ApplyOutcome, ShardError> {
        let command = MetaCommand { op: Some(op) };
        debug_assert!(command.encoded_len() > 0);
        if let Some(leader_addr) = self.forward_target() {
            let replicator = self.replicator.as_ref().expect("forward_target checks it");
            let (outcome, index) = replicator
                .forward_propose(&leader_addr, &command)
                .await
                .map_err(|e| self.forward_failed(e))?;
            if !self
                .raft
                .wait_applied(index, FORWARDED_APPLY_WAIT_MAX)
                .await
            {
                tracing::warn!(
                    shard = self.index,
                    index,
                    "forwarded entry not applied here in time"
                );
            }
            return Ok(outcome);
        }
        let outcome = self.raft.propose(command).await?;
        self.publish_stats();
        Ok(outcome)
    }

    /// Proposes here only (a forwarded write: never forwarded again);
    /// returns the outcome and the entry's index.
    pub async fn propose_as_leader(
        &self,
        command: MetaCommand,
    ) -> Result<(ApplyOutcome, u64), ShardError> {
        let answer = self.raft.propose_indexed(command).await?;
        self.publish_stats();
        Ok(answer)
    }

    /// The leader's peer address when writes must go there: a cluster
    /// member that does not lead and knows who does.
    fn forward_target(&self) -> Option<String> {
        self.replicator.as_ref()?;
        if self.raft.is_leader() {
            return None;
        }
        self.raft
            .leader()
            .filter(|&leader| leader != self.raft.node_id())
            .and_then(|leader| self.raft.member_addr(leader))
    }

    /// A forwarded write that failed on the way: the client may retry.
    fn forward_failed(&self, e: PeerError) -> ShardError {
        tracing::warn!(shard = self.index, error = %e, "forwarding to the leader failed");
        RaftError::NotLeader {
            leader: self.raft.leader(),
        }
        .into()
    }

    fn publish_stats(&self) {
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
        let failed = self.blob_log.poisoned().is_some() || !raft.running;
        if failed && !self.stats.failed.swap(true, Ordering::Relaxed) {
            tracing::error!(
                shard = self.index,
                blob_log = ?self.blob_log.poisoned(),
                raft_running = raft.running,
                "shard failed; it refuses writes until restarted"
            );
        }
        self.stats
            .raft_log_appended_bytes
            .store(raft.log_appended_bytes, Ordering::Relaxed);
        self.stats
            .raft_entries_appended
            .store(raft.entries_appended, Ordering::Relaxed);
        self.publish_catchup_stats();
        if let Some(bytes) = self.raft.snapshot_bytes() {
            self.stats
                .raft_snapshot_bytes
                .store(bytes, Ordering::Relaxed);
        }
    }

    fn publish_catchup_stats(&self) {
        self.stats
            .chunkblob_catchup_pending
            .store(self.catchup.pending() as u64, Ordering::Relaxed);
        self.stats
            .chunkblob_catchup_dropped
            .store(self.catchup.dropped(), Ordering::Relaxed);
    }
}

/// `op` with `source` as the source hint of every chunk ref it carries.
fn with_source(mut op: Op, source: u64) -> Op {
    for chunk in op_chunks_mut(&mut op).into_iter().flatten() {
        chunk.source_node = source;
    }
    op
}
