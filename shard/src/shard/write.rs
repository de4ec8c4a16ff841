//! The write path as a shard sees it: a chunk goes into the blob log and,
//! in a cluster, to the other members beside raft (offload) or inside a
//! raft entry (inline); then the command that refers to the chunks (a
//! manifest or a part) is committed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::StreamExt;
use shoal_proto::meta::{self, meta_command::Op};
use std::rc::Rc;
use std::sync::Arc;

use super::{Group, Shard};
use crate::blob_log::BlobLocation;
use crate::chunk::ChunkBuf;
use crate::chunk_hash::ChunkHash;
use crate::error::ShardError;
use crate::ids::NodeId;
use crate::limits::{CHUNK_BYTES, INLINE_CHUNKS_PER_ENTRY};
use crate::ops::ChunkPlacement;
use crate::peer::PeerError;
use crate::raft::{op_chunks_mut, ApplyOutcome, RaftError};
use crate::replication::{self, Durability, Replicator};

/// An inline chunk waiting for an entry, and where its outcome goes.
pub(super) struct InlinePending {
    chunk: meta::InlineChunk,
    done: oneshot::Sender<Result<(), Rc<ShardError>>>,
}

/// How a leader writes a chunk, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum WriteMode {
    Offload,
    Inline(String),
}

impl Shard {
    /// Commits the op that refers to chunks (an object manifest or a
    /// part), each ref naming the node that stored its chunk. It takes
    /// effect only when the entry is applied.
    ///
    /// Every chunk the op names is pinned first, so the sweeper cannot
    /// forget it before the entry applies; then, on the leader, each must
    /// still be present (indexed here, or kept alive by a count elsewhere)
    /// or the commit fails: a chunk an upload stored may have been
    /// forgotten if the upload took longer than `--gc-grace`, and a copy's
    /// source may have been deleted meanwhile. So no committed ref ever
    /// names a forgotten chunk (`docs/architecture.md`, "The life of a
    /// chunk"). If the outcome is unknown (the proposal failed, but its
    /// entry may still apply) the pins linger for the grace period.
    ///
    /// A chunk another node stored (this node forwarded it to a leader, and
    /// leads now, or forwards the commit too) is in that node's blob log.
    /// This node got the chunk by push (indexed when it arrived) or fetches
    /// it from the source.
    pub(super) async fn commit_with_chunks(
        &self,
        op: Op,
        chunks: Vec<(ChunkHash, ChunkPlacement)>,
    ) -> Result<ApplyOutcome, ShardError> {
        let me = self.raft.node_id();
        let mut op = with_sources(op, &chunks);
        let mut named: Vec<ChunkHash> = op_chunks_mut(&mut op)
            .into_iter()
            .flatten()
            .filter_map(|c| ChunkHash::from_slice(&c.sha256))
            .collect();
        named.sort_unstable();
        named.dedup();
        let mut pins = Vec::with_capacity(named.len());
        for hash in &named {
            pins.push(self.pins.pin(*hash).await);
        }
        if self.forward_target().is_none() {
            self.check_present(me, named, &chunks).await?;
        }
        // The chunks are durable here and the refs not yet proposed.
        crate::crash_point::crash_point("crash::chunks_stored");
        fail::fail_point!("shard::commit_object", |_| Err(ShardError::Injected {
            point: "shard::commit_object"
        }));
        let result = self.propose(op).await;
        match &result {
            Ok(_) => {
                drop(pins);
                let mine = chunks.iter().filter(|(_, at)| at.stored_by == me);
                self.pins.release_claims(mine.map(|(hash, _)| *hash));
            }
            Err(_) => {
                let until = Instant::now() + self.gc_grace;
                for pin in pins {
                    pin.linger(until);
                }
            }
        }
        result
    }

    /// Fails unless each of `named` (pinned) may be referred to; offers
    /// the chunks other nodes stored to catch-up.
    async fn check_present(
        &self,
        me: NodeId,
        named: Vec<ChunkHash>,
        chunks: &[(ChunkHash, ChunkPlacement)],
    ) -> Result<(), ShardError> {
        // A chunk this node stored may no longer be where the upload put it
        // (a later upload of the same bytes moved its index entry, and the
        // reclaimer released the old record): what matters is that it is
        // indexed somewhere, checked below.
        let elsewhere: HashMap<ChunkHash, NodeId> = chunks
            .iter()
            .filter(|(_, at)| at.stored_by != me)
            .map(|(hash, at)| (*hash, at.stored_by))
            .collect();
        if !elsewhere.is_empty() {
            tracing::info!(
                shard = self.index.get(),
                chunks = elsewhere.len(),
                "committing chunks another node stored (leadership moved during the upload)"
            );
            self.catchup.offer(elsewhere.iter().map(|(h, n)| (*h, *n)));
        }
        let checked: Vec<ChunkHash> = named
            .into_iter()
            .filter(|h| !elsewhere.contains_key(h))
            .collect();
        let present = self.meta.chunks_present(checked.clone()).await?;
        match checked.iter().zip(present).find(|(_, present)| !present) {
            Some((hash, _)) => {
                tracing::warn!(shard = self.index.get(), sha256 = %hash, "refusing a commit: a chunk it names was forgotten meanwhile");
                Err(ShardError::ChunkMissing {
                    sha256_hex: hash.hex(),
                })
            }
            None => Ok(()),
        }
    }

    /// Appends a chunk to the blob log and, in a cluster, pushes it to
    /// every other member at the same time; returns once the degradation
    /// ladder calls it durable. A member that does not lead forwards the
    /// chunk to the leader, which stores it.
    pub async fn append_replicated(
        &self,
        buf: ChunkBuf,
        sha256: ChunkHash,
    ) -> Result<(ChunkPlacement, ChunkBuf), ShardError> {
        if let Some(forward) = self.forward_target() {
            let call =
                forward
                    .replicator
                    .forward_append(&forward.leader_addr, sha256, buf.payload());
            let location = self.forwarded(forward.leader, call).await?;
            let placement = ChunkPlacement {
                location,
                stored_by: forward.leader,
            };
            return Ok((placement, buf));
        }
        let (location, buf) = self.append_here(buf, sha256).await?;
        let placement = ChunkPlacement {
            location,
            stored_by: self.raft.node_id(),
        };
        Ok((placement, buf))
    }

    /// A chunk another member forwarded: stored here, and only if this
    /// node leads (it is never forwarded again: two members that each think
    /// the other leads would pass it back and forth).
    pub async fn append_as_leader(
        &self,
        buf: ChunkBuf,
        sha256: ChunkHash,
    ) -> Result<(BlobLocation, ChunkBuf), ShardError> {
        if !self.raft.is_leader() {
            return Err(self.not_leader());
        }
        self.append_here(buf, sha256).await
    }

    /// Stores a new chunk as the group's leader (or a single node) would:
    /// offloaded or inline, as every member allows, and indexes it.
    ///
    /// The chunk is claimed first (see `crate::pins`), so the sweeper
    /// leaves it (and any older copy of the same bytes) alone until the
    /// upload commits or gives up; the record is held until it is indexed,
    /// so the reclaimer leaves it alone too.
    async fn append_here(
        &self,
        buf: ChunkBuf,
        sha256: ChunkHash,
    ) -> Result<(BlobLocation, ChunkBuf), ShardError> {
        self.pins
            .claim(sha256, Instant::now() + self.gc_grace)
            .await;
        let peers = self.peer_addrs();
        if !self.offload_now(&peers).await {
            return self.append_inline(buf, sha256).await;
        }
        let hold = self.blob_log.hold();
        let (location, buf) = match &self.group {
            Group::Cluster(replicator) if !peers.is_empty() => {
                self.append_offloaded(replicator, peers, buf, sha256)
                    .await?
            }
            _ => self.blob_log.append(buf, sha256).await?,
        };
        // Unsynced: the commit's synced raft append makes it durable, and
        // until then no ref names it.
        self.meta
            .put_blob_locations(vec![(sha256, location.into())], false)
            .await?;
        drop(hold);
        Ok((location, buf))
    }

    /// Offload: appends here while pushing to every other member, then
    /// waits for as many acknowledgements as the ladder needs.
    async fn append_offloaded(
        &self,
        replicator: &Rc<Replicator>,
        peers: Vec<String>,
        buf: ChunkBuf,
        sha256: ChunkHash,
    ) -> Result<(BlobLocation, ChunkBuf), ShardError> {
        if !self.raft.is_leader() {
            return Err(self.not_leader());
        }
        let members = peers.len() + 1;
        let bytes = Bytes::copy_from_slice(buf.payload());
        let (acks, mut answers) = futures::channel::mpsc::unbounded();
        for addr in peers {
            let (replicator, bytes, acks) = (Rc::clone(replicator), bytes.clone(), acks.clone());
            let stats = Arc::clone(&self.stats);
            glommio::spawn_local(async move {
                let pushed = replicator.push(&addr, sha256, &bytes).await;
                match &pushed {
                    Ok(()) => {}
                    Err(PeerError::Backlog { .. }) => {
                        stats.chunk_push_backlog.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::debug!(peer = %addr, error = %e, "chunk push failed"),
                }
                let _ = acks.unbounded_send(pushed.is_ok());
            })
            .detach();
        }
        drop(acks);
        let stored_here = self.blob_log.append(buf, sha256).await?;
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
                    .chunk_replication_degraded
                    .fetch_add(1, Ordering::Relaxed);
                Ok(stored_here)
            }
            Durability::Insufficient => Err(ShardError::ReplicationFailed { stored, members }),
        }
    }

    /// Whether chunks go outside raft: this node and every other member
    /// advertise blob offload. Logs each change of mode, with its reason.
    async fn offload_now(&self, peers: &[String]) -> bool {
        let mode = self.write_mode(peers).await;
        if self.last_write_mode.replace(Some(mode.clone())).as_ref() != Some(&mode) {
            match &mode {
                WriteMode::Offload => {
                    tracing::info!(shard = self.index.get(), "writing chunks offloaded")
                }
                WriteMode::Inline(reason) => {
                    tracing::info!(shard = self.index.get(), %reason, "writing chunks inline")
                }
            }
        }
        mode == WriteMode::Offload
    }

    async fn write_mode(&self, peers: &[String]) -> WriteMode {
        if !self.blob_offload {
            return WriteMode::Inline("--blob-offload is false on this node".into());
        }
        match self
            .member_lacking(peers, replication::CAPABILITY_OFFLOAD)
            .await
        {
            None => WriteMode::Offload,
            Some(addr) => WriteMode::Inline(format!(
                "member {addr} does not advertise {} (or has not answered)",
                replication::CAPABILITY_OFFLOAD
            )),
        }
    }

    /// Inline mode: the chunk's bytes go into a raft entry, shared with
    /// up to two other chunks waiting at the same time (like a group
    /// commit: fewer, larger synced appends), and every member (this one
    /// included) appends them to its blob log as it applies the entry.
    /// Durable once committed, like any entry. At most
    /// [`crate::limits::INLINE_PROPOSALS_INFLIGHT_MAX`] such entries are
    /// proposed at once; a task whose chunk waits proposes the chunks at
    /// the front of the queue until its own is committed, by itself or
    /// another task.
    async fn append_inline(
        &self,
        buf: ChunkBuf,
        sha256: ChunkHash,
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
            self.propose_inline(batch).await;
            drop(permit);
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

    /// Proposes one entry with the chunks of `batch` and tells each waiter
    /// how it went.
    async fn propose_inline(&self, batch: Vec<InlinePending>) {
        let (chunks, waiters): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.chunk, p.done)).unzip();
        let proposed = self
            .propose(Op::StoreChunks(meta::InlineChunks { chunks }))
            .await
            .map(|_| ())
            .map_err(Rc::new);
        if proposed.is_ok() {
            self.stats
                .chunk_inline_writes
                .fetch_add(waiters.len() as u64, Ordering::Relaxed);
        }
        for waiter in waiters {
            let _ = waiter.send(proposed.clone());
        }
    }

    /// Stores a chunk another node sent (a push, or a fetch this node
    /// made), durably: fsync'd and indexed with a synced write. A pushed
    /// chunk's refs come in a later entry, so it is claimed for the grace
    /// period first.
    pub async fn store_chunk(&self, sha256: ChunkHash, bytes: &[u8]) -> Result<(), ShardError> {
        if bytes.len() > CHUNK_BYTES || ChunkHash::of(bytes) != sha256 {
            return Err(ShardError::ChunkMissing {
                sha256_hex: sha256.hex(),
            });
        }
        self.pins
            .claim(sha256, Instant::now() + self.gc_grace)
            .await;
        let mut buf = ChunkBuf::new();
        buf.fill_from(bytes);
        let hold = self.blob_log.hold();
        let (at, _) = self.blob_log.append(buf, sha256).await?;
        self.meta
            .put_blob_locations(vec![(sha256, at.into())], true)
            .await?;
        drop(hold);
        self.publish_stats();
        Ok(())
    }
}

/// `op` with each chunk ref's source hint set to the node that stored
/// the chunk.
fn with_sources(mut op: Op, chunks: &[(ChunkHash, ChunkPlacement)]) -> Op {
    let stored_by: HashMap<ChunkHash, NodeId> = chunks
        .iter()
        .map(|(hash, at)| (*hash, at.stored_by))
        .collect();
    for chunk in op_chunks_mut(&mut op).into_iter().flatten() {
        let hash = ChunkHash::from_slice(&chunk.sha256);
        if let Some(&node) = hash.and_then(|h| stored_by.get(&h)) {
            chunk.source_node = node.get();
        }
    }
    op
}
