//! How a shard's raft group reaches the same shard on other nodes.
//!
//! Not wired yet: peer RPCs (append, vote, snapshot over the framed peer
//! protocol, shard *i* to shard *i*) arrive with the replication issue.
//! Until then every client answers [`Unreachable`], which openraft treats
//! as a peer that is down and retries with backoff. A single-member group
//! never calls these clients; a multi-member group started today would
//! simply never reach its peers.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::types::{NodeId, TypeConfig};

/// Why a peer RPC failed: there is no transport yet.
#[derive(Debug, thiserror::Error)]
#[error("peer RPCs are not wired yet (shard {shard_index}, target node {target})")]
pub struct PeerRpcUnavailable {
    pub shard_index: u16,
    pub target: NodeId,
}

/// Makes one client per peer of this shard's group.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    shard_index: u16,
}

impl NetworkFactory {
    pub fn new(shard_index: u16) -> NetworkFactory {
        NetworkFactory { shard_index }
    }
}

/// A client for one peer; every call fails as [`Unreachable`].
#[derive(Debug)]
pub struct PeerClient {
    shard_index: u16,
    target: NodeId,
}

impl PeerClient {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Unreachable(Unreachable::new(&PeerRpcUnavailable {
            shard_index: self.shard_index,
            target: self.target,
        }))
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> PeerClient {
        PeerClient {
            shard_index: self.shard_index,
            target,
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}
