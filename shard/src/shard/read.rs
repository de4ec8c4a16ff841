//! Reads: metadata reads that see every acknowledged write
//! (linearizable), and chunk reads, from this node's blob log or, when it
//! lacks the bytes, from another member.

use std::future::Future;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Group, Shard};
use crate::blob_log::BlobLocation;
use crate::chunk_hash::ChunkHash;
use crate::error::ShardError;
use crate::ids::NodeId;
use crate::limits::READ_APPLY_WAIT_MAX;

impl Shard {
    /// Makes sure this node has applied every write acknowledged before
    /// the call, so the read that follows is current (linearizable). A
    /// single node always is. A leader checks its lease (or asks a quorum);
    /// a follower asks the leader for its read index and waits until it
    /// has applied that far, at most [`READ_APPLY_WAIT_MAX`].
    async fn ensure_current(&self) -> Result<(), ShardError> {
        if !self.group.is_cluster() {
            return Ok(());
        }
        let index = if self.raft.is_leader() {
            self.raft.read_index().await?
        } else {
            let forward = self.forward_target().ok_or_else(|| self.not_leader())?;
            let call = forward.replicator.read_index(&forward.leader_addr);
            self.forwarded(forward.leader, call).await?
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
    pub(super) async fn read_current<T, E: Into<ShardError>>(
        &self,
        read: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ShardError> {
        self.ensure_current().await?;
        read.await.map_err(Into::into)
    }

    /// A chunk's bytes: from this node's blob log, else (in a cluster)
    /// fetched from another member (`source_node`, the node that stored
    /// it first, before the others), checked and kept. A local copy found
    /// damaged is replaced the same way (read repair).
    pub async fn read_chunk(
        &self,
        sha256: ChunkHash,
        source_node: NodeId,
    ) -> Result<Bytes, ShardError> {
        let local = self.read_local_chunk(sha256).await;
        let damaged = matches!(local, Err(ShardError::ChunkDamaged { .. }));
        match local {
            Err(ShardError::ChunkMissing { .. } | ShardError::ChunkDamaged { .. })
                if self.group.is_cluster() => {}
            other => return other,
        }
        self.fetch_and_keep(sha256, source_node, damaged).await
    }

    /// Fetches a chunk this node lacks (or holds `damaged`) from another
    /// member: `source_node` first when it is one, then the others;
    /// checks its SHA-256, stores it here and returns it.
    pub(super) async fn fetch_and_keep(
        &self,
        sha256: ChunkHash,
        source_node: NodeId,
        damaged: bool,
    ) -> Result<Bytes, ShardError> {
        let Group::Cluster(replicator) = &self.group else {
            return Err(ShardError::ChunkMissing {
                sha256_hex: sha256.hex(),
            });
        };
        let source = self.raft.member_addr(source_node);
        let fetched = replicator
            .fetch(self.peer_addrs(), source.as_deref(), sha256)
            .await;
        let Some(bytes) = fetched else {
            self.stats
                .chunk_unrecoverable
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(shard = self.index.get(), sha256 = %sha256, "no member has the chunk");
            return Err(ShardError::ChunkMissing {
                sha256_hex: sha256.hex(),
            });
        };
        match self.store_chunk(sha256, &bytes).await {
            Ok(()) if damaged => {
                self.stats.chunk_repaired.fetch_add(1, Ordering::Relaxed);
                tracing::info!(shard = self.index.get(), sha256 = %sha256, "repaired a damaged chunk with a copy from another member");
            }
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(shard = self.index.get(), error = %e, "keeping a fetched chunk failed")
            }
        }
        Ok(Bytes::from(bytes))
    }

    /// A chunk from this node's blob log only. Pinned while it is read,
    /// so the sweeper cannot forget it (and the reclaimer release it)
    /// between the index lookup and the read. A copy that fails its checks
    /// twice is dropped from the index ([`ShardError::ChunkDamaged`]).
    pub async fn read_local_chunk(&self, sha256: ChunkHash) -> Result<Bytes, ShardError> {
        let _pin = self.pins.pin(sha256).await;
        let location = self.local_location(sha256).await?;
        match self.blob_log.read(location, &sha256).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.is_damage() => self.confirm_damage(sha256, location, e).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Where this node's blob log holds a chunk, from the blob index.
    pub(crate) async fn local_location(
        &self,
        sha256: ChunkHash,
    ) -> Result<BlobLocation, ShardError> {
        let stored = self.meta.get_blob_location(&sha256).await?;
        stored
            .map(Into::into)
            .ok_or_else(|| ShardError::ChunkMissing {
                sha256_hex: sha256.hex(),
            })
    }
}
