//! A shard: the blob log, metadata store and raft group one core owns, and
//! the loop that serves [`ShardRequest`]s for them.
//!
//! Runs on its owner core only. Requests run as concurrent local tasks (at
//! most [`SHARD_OPS_INFLIGHT_MAX`]) so appends from many uploads meet in the
//! blob log's group commit.

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
use crate::chunk::ChunkBuf;
use crate::directory::Directory;
use crate::error::ShardError;
use crate::limits::CHUNK_BYTES;
use crate::limits::{SEGMENT_BYTES_MAX, SHARD_OPS_INFLIGHT_MAX};
use crate::meta::MetaStore;
use crate::ops::{GroupView, MetaChange, ObjectSummary, ShardRequest};
use crate::peer::{ClusterSecret, PeerError};
use crate::raft::RaftError;
use crate::raft::{ApplyOutcome, RaftOptions, ShardRaft};
use crate::replication::{self, Durability, Replicator};

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
    /// Chunks made durable on fewer nodes than `--min-blob-replicas` (but
    /// at least two).
    pub chunkblob_replication_degraded: AtomicU64,
    /// Chunks a manifest names that neither this node nor any member had.
    pub chunkblob_unrecoverable: AtomicU64,
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
}

impl ClusterOptions {
    /// A node on its own.
    pub fn single_node() -> ClusterOptions {
        ClusterOptions {
            peer_addr: String::new(),
            secret: None,
            bootstrap: true,
            min_blob_replicas: 0,
        }
    }
}

/// How long a follower waits to apply a write it forwarded to the leader.
const FORWARDED_APPLY_WAIT_MAX: Duration = Duration::from_secs(5);

/// Uploads the reaper reads per scan of the store.
const REAP_BATCH_MAX: usize = 256;

pub struct Shard {
    index: u16,
    blob_log: BlobLog,
    meta: MetaStore,
    raft: Rc<ShardRaft>,
    stats: Arc<ShardStats>,
    permits: Rc<glommio::sync::Semaphore>,
    /// Pushes and fetches chunks; `None` on a single node.
    replicator: Option<Rc<Replicator>>,
    min_blob_replicas: usize,
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
        let replicator = cluster
            .secret
            .clone()
            .map(|secret| Rc::new(Replicator::new(index, node_id, secret)));
        let min_blob_replicas = cluster.min_blob_replicas;
        let options = RaftOptions {
            directory,
            node_addr: cluster.peer_addr,
            secret: cluster.secret,
            bootstrap: cluster.bootstrap,
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
            min_blob_replicas,
        }))
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    /// The shard's raft group, for its peer port.
    pub fn raft(&self) -> &Rc<ShardRaft> {
        &self.raft
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
                let _ = reply.send(
                    self.meta
                        .get_object(&bucket, &key)
                        .await
                        .map_err(Into::into),
                );
            }
            ShardRequest::ReadChunk { sha256, reply } => {
                let _ = reply.send(self.read_chunk(sha256).await);
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
                let listed = self.meta.list_objects(&bucket, &prefix, after, limit).await;
                let summaries = listed.map_err(ShardError::from).map(|manifests| {
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
                let _ = reply.send(
                    self.meta
                        .bucket_has_objects(&bucket)
                        .await
                        .map_err(Into::into),
                );
            }
            ShardRequest::CreateBucket { record, reply } => {
                let _ = reply.send(self.propose(Op::CreateBucket(record)).await);
            }
            ShardRequest::DeleteBucket { name, reply } => {
                let _ = reply.send(self.propose(Op::DeleteBucket(name)).await);
            }
            ShardRequest::ListBuckets { reply } => {
                let _ = reply.send(self.meta.list_buckets().await.map_err(Into::into));
            }
            ShardRequest::ChangeMetadata { change, reply } => {
                let op = match change {
                    MetaChange::CreateUser(user) => Op::CreateUser(user),
                    MetaChange::DeleteUser(name) => Op::DeleteUser(name),
                    MetaChange::AddAccessKey(add) => Op::AddAccessKey(add),
                    MetaChange::SetUserEnabled(set) => Op::SetUserEnabled(set),
                    MetaChange::SetKeyEnabled(set) => Op::SetKeyEnabled(set),
                    MetaChange::DeleteAccessKey(key) => Op::DeleteAccessKey(key),
                    MetaChange::PutBucketAcl(put) => Op::PutBucketAcl(put),
                };
                let _ = reply.send(self.propose(op).await);
            }
            ShardRequest::ClusterView { reply } => {
                let _ = reply.send(Ok(GroupView {
                    shard: self.index,
                    leader: self.raft.leader(),
                    members: self.raft.membership(),
                }));
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
                    .get_upload(&upload.bucket, &upload.key, &upload.upload_id)
                    .await;
                let _ = reply.send(found.map_err(Into::into));
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
                let parts = self.meta.list_parts(&upload_id, after, limit).await;
                let _ = reply.send(parts.map_err(Into::into));
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
                let uploads = self.meta.list_uploads(&bucket, &prefix, after, limit).await;
                let _ = reply.send(uploads.map_err(Into::into));
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
            // The chunks were forwarded too; the leader indexed them.
            return self.propose(op).await;
        }
        let locations = blobs
            .into_iter()
            .map(|(hash, at)| {
                let stored = meta::BlobLocation {
                    segment: at.segment,
                    offset_bytes: at.offset_bytes,
                    size_bytes: at.size_bytes,
                };
                (hash, stored)
            })
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
        let peers = self.peer_addrs();
        let Some(replicator) = self.replicator.as_ref().filter(|_| !peers.is_empty()) else {
            return Ok(self.blob_log.append(buf, sha256).await?);
        };
        if let Some(leader_addr) = self.forward_target() {
            let location = replicator
                .forward_append(&leader_addr, sha256, buf.payload())
                .await
                .map_err(|e| self.forward_failed(e))?;
            return Ok((location, buf));
        }
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
        let (at, _) = &stored_here;
        let location = meta::BlobLocation {
            segment: at.segment,
            offset_bytes: at.offset_bytes,
            size_bytes: at.size_bytes,
        };
        self.meta
            .put_blob_locations(vec![(sha256, location)], false)
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
        let location = meta::BlobLocation {
            segment: at.segment,
            offset_bytes: at.offset_bytes,
            size_bytes: at.size_bytes,
        };
        self.meta
            .put_blob_locations(vec![(sha256, location)], true)
            .await?;
        self.publish_stats();
        Ok(())
    }

    /// A chunk's bytes: from this node's blob log, else (in a cluster)
    /// fetched from another member, checked and kept.
    pub async fn read_chunk(&self, sha256: [u8; 32]) -> Result<bytes::Bytes, ShardError> {
        match self.read_local_chunk(sha256).await {
            Err(ShardError::ChunkMissing { .. }) if self.replicator.is_some() => {}
            other => return other,
        }
        let replicator = self.replicator.as_ref().expect("checked above");
        let Some(bytes) = replicator.fetch(self.peer_addrs(), sha256).await else {
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
        let stored = self.meta.get_blob_location(&sha256).await?.ok_or_else(|| {
            ShardError::ChunkMissing {
                sha256_hex: hex::encode(sha256),
            }
        })?;
        let location = BlobLocation {
            segment: stored.segment,
            offset_bytes: stored.offset_bytes,
            size_bytes: stored.size_bytes,
        };
        Ok(self.blob_log.read(location, &sha256).await?)
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
    }
}
