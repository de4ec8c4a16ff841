//! What a shard answers on its peer port: raft RPCs, joins, chunk pushes
//! and fetches, writes forwarded by a member that does not lead, read
//! indexes, handovers and the cluster overview.

use std::rc::Rc;

use prost::Message;
use shoal_proto::meta::MetaCommand;
use shoal_proto::peer::{ClusterOverview, JoinRequest, Kind, Member, PeerFrame};

use super::Shard;
use crate::chunk::ChunkBuf;
use crate::chunk_hash::ChunkHash;
use crate::error::ShardError;
use crate::ids::NodeId;
use crate::limits::CHUNK_BYTES;
use crate::peer::server::{PeerHandler, NOT_LEADER};
use crate::raft::RaftError;

/// A shard as its peer port serves it.
pub struct PeerRequests {
    pub shard: Rc<Shard>,
    /// Shards per node in this cluster; a joining node must have as many.
    pub shard_count: u16,
}

impl PeerHandler for PeerRequests {
    fn heard_from(&self, peer: NodeId) {
        self.shard.raft.heard_from(peer);
    }

    async fn answer(&self, header: PeerFrame, payload: &[u8]) -> (PeerFrame, Vec<u8>) {
        let mut response = PeerFrame {
            request_id: header.request_id,
            kind: header.kind,
            ..Default::default()
        };
        match self.result(&header, payload, &mut response).await {
            Ok(body) => (response, body),
            Err(message) => {
                response.error = message;
                (response, Vec::new())
            }
        }
    }
}

impl PeerRequests {
    /// The answer's payload, or the error it carries; fills in header
    /// fields of `response` some kinds answer with.
    async fn result(
        &self,
        header: &PeerFrame,
        payload: &[u8],
        response: &mut PeerFrame,
    ) -> Result<Vec<u8>, String> {
        let shard = &self.shard;
        let kind = Kind::try_from(header.kind).unwrap_or(Kind::Unspecified);
        let sha256 = || {
            ChunkHash::from_slice(&header.sha256)
                .ok_or_else(|| "a chunk request needs a 32-byte sha256".to_string())
        };
        match kind {
            Kind::RaftAppend | Kind::RaftVote | Kind::RaftSnapshot => {
                shard.raft.serve_rpc(kind, payload).await
            }
            Kind::Join => match &header.join {
                None => Err("join without a JoinRequest".into()),
                Some(join) => self.join(join).await,
            },
            Kind::PushChunkBlob => shard
                .store_chunk(sha256()?, payload)
                .await
                .map(|()| Vec::new())
                .map_err(|e| e.to_string()),
            Kind::FetchChunkBlob => shard
                .read_local_chunk(sha256()?)
                .await
                .map(|bytes| bytes.to_vec())
                .map_err(|e| e.to_string()),
            Kind::Propose => {
                let command = MetaCommand::decode(payload)
                    .map_err(|e| format!("undecodable command: {e}"))?;
                let (outcome, index) = shard
                    .propose_as_leader(command)
                    .await
                    .map_err(|e| refusal(e, response))?;
                response.log_index = index;
                bincode::serialize(&outcome).map_err(|e| e.to_string())
            }
            Kind::AppendChunk => {
                let sha256 = sha256()?;
                if payload.len() > CHUNK_BYTES {
                    return Err("chunk too large".into());
                }
                let mut buf = ChunkBuf::new();
                buf.fill_from(payload);
                let (at, _) = shard
                    .append_as_leader(buf, sha256)
                    .await
                    .map_err(|e| refusal(e, response))?;
                Ok(shoal_proto::meta::BlobLocation::from(at).encode_to_vec())
            }
            Kind::ReadIndex => {
                response.log_index = shard
                    .raft
                    .read_index()
                    .await
                    .map_err(|e| refusal(e.into(), response))?;
                Ok(Vec::new())
            }
            Kind::StandForLeader => {
                tracing::info!(
                    shard = shard.index.get(),
                    "the leader hands this shard's group over: standing for election"
                );
                shard
                    .raft
                    .stand_for_leader()
                    .await
                    .map(|()| Vec::new())
                    .map_err(|e| e.to_string())
            }
            Kind::ClusterOverview => {
                response.overview = Some(self.overview());
                Ok(Vec::new())
            }
            Kind::Unspecified => Err(format!("unknown request kind {}", header.kind)),
        }
    }

    /// Adds a node to the group (the leader does; a follower answers
    /// [`NOT_LEADER`] and the leader's address).
    async fn join(&self, join: &JoinRequest) -> Result<Vec<u8>, String> {
        let raft = &self.shard.raft;
        if join.shard_count != u32::from(self.shard_count) {
            return Err(format!(
                "the cluster has {} shards; the joining node has {}",
                self.shard_count, join.shard_count
            ));
        }
        match raft.add_member(NodeId(join.node_id), &join.peer_addr).await {
            Ok(()) => {
                tracing::info!(
                    shard = self.shard.index.get(),
                    node = join.node_id,
                    addr = %join.peer_addr,
                    "node joined the shard's group"
                );
                Ok(Vec::new())
            }
            Err(RaftError::NotLeader { leader }) => {
                let addr = leader
                    .and_then(|id| raft.member_addr(id))
                    .unwrap_or_default();
                Err(format!("{NOT_LEADER} {addr}"))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// This shard's view of the cluster.
    fn overview(&self) -> ClusterOverview {
        let raft = &self.shard.raft;
        ClusterOverview {
            shard_count: u32::from(self.shard_count),
            members: raft
                .membership()
                .into_iter()
                .map(|(node_id, peer_addr, voter)| Member {
                    node_id: node_id.get(),
                    peer_addr,
                    voter,
                })
                .collect(),
            shard_leaders: vec![raft.leader().map_or(0, NodeId::get)],
            capabilities: self.shard.capabilities(),
        }
    }
}

/// The error text of a refused request, marking `response` when the
/// refusal means this node does not lead (the caller looks for the leader).
fn refusal(e: ShardError, response: &mut PeerFrame) -> String {
    response.not_leader = matches!(e, ShardError::Raft(RaftError::NotLeader { .. }));
    e.to_string()
}
