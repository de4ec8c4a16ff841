//! Blob offload: chunk bytes travel to the replicas' same shard on the
//! peer transport, never through raft.
//!
//! The leader appends a chunk to its own blob log and pushes it to every
//! other member at the same time. The chunk is durable once the local
//! fsync and enough replica acknowledgements (each sent after the replica's
//! own fsync and synced index write) are in: [`ladder`] decides. Pushes
//! still running when that happens go on in the background, so a slow
//! replica usually ends up with the chunk too. A replica that lacks a chunk
//! a manifest names fetches it from the other members ([`Replicator::fetch`]).
//!
//! Offload needs every member to take part: each advertises what it
//! supports in its cluster overview ([`Replicator::capabilities`], cached
//! for [`CAPABILITIES_TTL`]), and a leader writes inline (chunk bytes in the
//! raft entry) while any member does not advertise [`CAPABILITY_OFFLOAD`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::tls::TcpOrTls;
use bytes::Bytes;
use prost::Message;
use rand::seq::SliceRandom;
use shoal_proto::meta::MetaCommand;
use shoal_proto::peer::{Kind, PeerFrame};

use crate::blob_log::BlobLocation;
use crate::chunk_hash::ChunkHash;
use crate::raft::ApplyOutcome;

use crate::ids::{NodeId, ShardIndex};
use crate::limits::{
    CAPABILITIES_TTL, IDLE_CONNECTIONS_PER_PEER_MAX, PEER_DATA_CALL_TIMEOUT, PEER_POOLED_IDLE_MAX,
    PEER_QUERY_TIMEOUT, PUSHES_INFLIGHT_PER_PEER_MAX,
};
use crate::peer::client::{connect, request};
use crate::peer::{PeerAuth, PeerError};

/// What enough acknowledgements mean for one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On at least the required number of nodes.
    Durable,
    /// Fewer than required, but on two nodes or more: proceed, and count
    /// it (`shoal_chunkblob_replication_degraded_total`).
    Degraded,
    /// On one node only in a multi-node cluster: refuse the write.
    Insufficient,
}

/// The degradation ladder. `members` counts this node; `stored` counts the
/// nodes (this one included) that made the chunk durable; `required` is
/// `--min-blob-replicas`, 0 meaning the raft quorum of `members`.
pub fn ladder(members: usize, stored: usize, required: usize) -> Durability {
    let required = match required {
        0 => members / 2 + 1,
        n => n.min(members),
    };
    if stored >= required {
        Durability::Durable
    } else if stored >= 2 {
        Durability::Degraded
    } else {
        Durability::Insufficient
    }
}

/// Whether waiting for more acknowledgements can change the outcome:
/// stop once the chunk is durable, or once no answer is outstanding.
pub fn settled(members: usize, stored: usize, answered: usize, required: usize) -> bool {
    ladder(members, stored, required) == Durability::Durable || answered + 1 >= members
}

/// The capability a member advertises when it accepts chunks whose bytes
/// travel outside raft (`--blob-offload`, on by default).
pub const CAPABILITY_OFFLOAD: &str = "blob-offload";

/// What a member advertises when it can apply `CollectChunks` entries. A
/// leader collects only while every member does: a member built before
/// them would stop its group on the first one.
pub const CAPABILITY_COLLECT: &str = "chunk-collect";

/// Whether a member's advertised capabilities include blob offload.
pub fn advertises_offload(capabilities: &[String]) -> bool {
    capabilities.iter().any(|c| c == CAPABILITY_OFFLOAD)
}

/// Longest a peer call of `kind` may take, connecting included.
pub fn call_deadline(kind: Kind) -> Duration {
    match kind {
        Kind::ClusterOverview | Kind::ReadIndex => PEER_QUERY_TIMEOUT,
        _ => PEER_DATA_CALL_TIMEOUT,
    }
}

/// One shard's pushes and fetches, with a few idle connections per peer.
pub struct Replicator {
    shard: ShardIndex,
    node_id: NodeId,
    secret: PeerAuth,
    /// Peer address → connections not in use, with when each was last used.
    idle: RefCell<HashMap<String, Vec<(TcpOrTls, Instant)>>>,
    /// Peer address → what it advertises.
    capabilities: RefCell<HashMap<String, Advertised>>,
    /// Peer address → pushes to it in flight (see [`PUSHES_INFLIGHT_PER_PEER_MAX`]).
    pushes: RefCell<HashMap<String, usize>>,
}

/// What a member last said it supports, and when it was last asked.
#[derive(Clone, Debug)]
struct Advertised {
    /// `None` while it has never answered.
    said: Option<Vec<String>>,
    asked: Instant,
    /// A background ask is under way.
    asking: bool,
}

impl Replicator {
    pub fn new(shard: ShardIndex, node_id: NodeId, secret: PeerAuth) -> Replicator {
        Replicator {
            shard,
            node_id,
            secret,
            idle: RefCell::new(HashMap::new()),
            capabilities: RefCell::new(HashMap::new()),
            pushes: RefCell::new(HashMap::new()),
        }
    }

    /// What the member at `addr` advertises. The first time it is asked
    /// for, the call waits for the member's answer (at most
    /// [`PEER_QUERY_TIMEOUT`]); after that it answers from the cache at
    /// once and, when the cache is older than [`CAPABILITIES_TTL`], asks
    /// again in the background, so a member that is down never slows the
    /// chunk path. A member that cannot be asked keeps what it last said;
    /// `None` for one never heard from (failures are cached too, so a dead
    /// member is asked once per TTL, not once per chunk).
    pub async fn capabilities(self: &Rc<Self>, addr: &str) -> Option<Vec<String>> {
        let known = self.capabilities.borrow().get(addr).cloned();
        let Some(known) = known else {
            return self.ask_capabilities(addr).await;
        };
        if known.asked.elapsed() >= CAPABILITIES_TTL && !known.asking {
            if let Some(entry) = self.capabilities.borrow_mut().get_mut(addr) {
                entry.asking = true;
            }
            let (replicator, addr) = (Rc::clone(self), addr.to_string());
            glommio::spawn_local(async move {
                replicator.ask_capabilities(&addr).await;
            })
            .detach();
        }
        known.said
    }

    async fn ask_capabilities(&self, addr: &str) -> Option<Vec<String>> {
        let header = PeerFrame {
            kind: Kind::ClusterOverview as i32,
            ..Default::default()
        };
        let answer = match self.call_full(addr, header, &[]).await {
            Ok((answer, _)) => Some(answer.overview.unwrap_or_default().capabilities),
            Err(e) => {
                tracing::debug!(shard = self.shard.get(), peer = %addr, error = %e, "capabilities unknown");
                None
            }
        };
        let mut cache = self.capabilities.borrow_mut();
        let entry = cache.entry(addr.to_string()).or_insert(Advertised {
            said: None,
            asked: Instant::now(),
            asking: false,
        });
        if answer.is_some() {
            entry.said = answer;
        }
        entry.asked = Instant::now();
        entry.asking = false;
        entry.said.clone()
    }

    /// Asks the leader at `addr` for the index to apply before a read is
    /// current ([`crate::raft::ShardRaft::read_index`]).
    pub async fn read_index(&self, addr: &str) -> Result<u64, PeerError> {
        let header = PeerFrame {
            kind: Kind::ReadIndex as i32,
            ..Default::default()
        };
        let (answer, _) = self.call_full(addr, header, &[]).await?;
        Ok(answer.log_index)
    }

    /// One request to shard `self.shard` at `addr` on a pooled connection;
    /// the answer's payload.
    async fn call(
        &self,
        addr: &str,
        header: PeerFrame,
        payload: &[u8],
    ) -> Result<Vec<u8>, PeerError> {
        self.call_full(addr, header, payload)
            .await
            .map(|(_, body)| body)
    }

    /// One request on a pooled connection; the answer's header and
    /// payload. Gives up after the kind's deadline ([`call_deadline`]),
    /// dropping the connection (its answer may still come).
    async fn call_full(
        &self,
        addr: &str,
        header: PeerFrame,
        payload: &[u8],
    ) -> Result<(PeerFrame, Vec<u8>), PeerError> {
        let kind = Kind::try_from(header.kind).unwrap_or(Kind::Unspecified);
        let after = call_deadline(kind);
        // Boxed: connecting and the handshake make this future tens of KiB,
        // and every shard request that might forward (a write, a current
        // read) would otherwise carry, and move, that much on one node too.
        let call = Box::pin(async {
            let pooled = self.idle.borrow_mut().get_mut(addr).and_then(|idle| {
                // Drop those idle long enough that the peer may close them.
                idle.retain(|(_, since)| since.elapsed() < PEER_POOLED_IDLE_MAX);
                idle.pop().map(|(stream, _)| stream)
            });
            let mut stream = match pooled {
                Some(stream) => stream,
                None => connect(addr, self.shard, &self.secret, self.node_id).await?,
            };
            let answer = request(&mut stream, 1, header, payload).await?;
            Ok::<_, PeerError>((stream, answer))
        });
        let (stream, answer) = glommio::timer::timeout(after, async { Ok(call.await) })
            .await
            .map_err(|_| PeerError::TimedOut {
                addr: addr.to_string(),
                what: kind.as_str_name(),
                after,
            })??;
        let mut idle = self.idle.borrow_mut();
        let slot = idle.entry(addr.to_string()).or_default();
        if slot.len() < IDLE_CONNECTIONS_PER_PEER_MAX {
            slot.push((stream, Instant::now()));
        }
        Ok(answer)
    }

    /// Pushes one chunk to the member at `addr`; returns once it is
    /// durable there. Refused at once while
    /// [`PUSHES_INFLIGHT_PER_PEER_MAX`] pushes to that member are in
    /// flight: a slow member gets the chunk by catch-up instead, and the
    /// copies held for it stay bounded.
    pub async fn push(
        &self,
        addr: &str,
        sha256: ChunkHash,
        bytes: &Bytes,
    ) -> Result<(), PeerError> {
        {
            let mut pushes = self.pushes.borrow_mut();
            let inflight = pushes.entry(addr.to_string()).or_default();
            if *inflight >= PUSHES_INFLIGHT_PER_PEER_MAX {
                return Err(PeerError::Backlog {
                    addr: addr.to_string(),
                    inflight: *inflight,
                });
            }
            *inflight += 1;
        }
        let header = PeerFrame {
            kind: Kind::PushChunkBlob as i32,
            sha256: sha256.to_vec(),
            ..Default::default()
        };
        let pushed = self.call(addr, header, bytes).await.map(|_| ());
        if let Some(inflight) = self.pushes.borrow_mut().get_mut(addr) {
            *inflight -= 1;
        }
        pushed
    }

    /// Asks the leader at `addr` to propose `command` (a follower's
    /// write); returns the outcome and the entry's log index.
    pub async fn forward_propose(
        &self,
        addr: &str,
        command: &MetaCommand,
    ) -> Result<(ApplyOutcome, u64), PeerError> {
        let header = PeerFrame {
            kind: Kind::Propose as i32,
            ..Default::default()
        };
        let (response, body) = self
            .call_full(addr, header, &command.encode_to_vec())
            .await?;
        let outcome = bincode::deserialize(&body)
            .map_err(|e| PeerError::Malformed(format!("apply outcome: {e}")))?;
        Ok((outcome, response.log_index))
    }

    /// Hands a new chunk to the leader at `addr`, which stores and
    /// replicates it; returns where the leader stored it.
    pub async fn forward_append(
        &self,
        addr: &str,
        sha256: ChunkHash,
        bytes: &[u8],
    ) -> Result<BlobLocation, PeerError> {
        let header = PeerFrame {
            kind: Kind::AppendChunk as i32,
            sha256: sha256.to_vec(),
            ..Default::default()
        };
        let body = self.call(addr, header, bytes).await?;
        let location = shoal_proto::meta::BlobLocation::decode(body.as_slice())
            .map_err(|e| PeerError::Malformed(format!("blob location: {e}")))?;
        Ok(location.into())
    }

    /// Fetches a chunk from the members at `addrs`: `first` (the source
    /// hint) when it is one of them, then the others in random order,
    /// checking its SHA-256; `None` when no member has it intact.
    pub async fn fetch(
        &self,
        mut addrs: Vec<String>,
        first: Option<&str>,
        sha256: ChunkHash,
    ) -> Option<Vec<u8>> {
        addrs.shuffle(&mut rand::thread_rng());
        if let Some(at) = first.and_then(|first| addrs.iter().position(|a| a == first)) {
            addrs.swap(0, at);
        }
        for addr in addrs {
            let header = PeerFrame {
                kind: Kind::FetchChunkBlob as i32,
                sha256: sha256.to_vec(),
                ..Default::default()
            };
            match self.call(&addr, header, &[]).await {
                Ok(bytes) if ChunkHash::of(&bytes) == sha256 => return Some(bytes),
                Ok(_) => {
                    tracing::warn!(shard = self.shard.get(), peer = %addr, "fetched chunk failed its check")
                }
                Err(e) => {
                    tracing::debug!(shard = self.shard.get(), peer = %addr, error = %e, "chunk fetch failed")
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_degradation_ladder() {
        // One node: the local copy is all there is.
        assert_eq!(ladder(1, 1, 0), Durability::Durable);
        // Three nodes, quorum 2.
        assert_eq!(ladder(3, 2, 0), Durability::Durable);
        assert_eq!(ladder(3, 1, 0), Durability::Insufficient);
        // Asking for all three: two is degraded, one refused.
        assert_eq!(ladder(3, 3, 3), Durability::Durable);
        assert_eq!(ladder(3, 2, 3), Durability::Degraded);
        assert_eq!(ladder(3, 1, 3), Durability::Insufficient);
        // More than there are members means all of them.
        assert_eq!(ladder(2, 2, 5), Durability::Durable);
        // Five nodes, quorum 3.
        assert_eq!(ladder(5, 2, 0), Durability::Degraded);
        assert_eq!(ladder(5, 3, 0), Durability::Durable);
    }

    #[test]
    fn waiting_stops_when_nothing_can_change() {
        assert!(settled(3, 2, 1, 0));
        assert!(!settled(3, 1, 1, 0));
        assert!(settled(3, 1, 2, 0));
        assert!(!settled(3, 2, 1, 3));
        assert!(settled(3, 2, 2, 3));
    }
}
