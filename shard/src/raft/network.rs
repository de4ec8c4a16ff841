//! How a shard's raft group reaches the same shard on other nodes: each
//! openraft client holds one authenticated peer connection to shard *i*
//! of its target (`peer address port + i`) and sends one request frame at
//! a time, the openraft message (bincode) as the frame's payload.
//!
//! A connection that fails is dropped and reopened on the next call;
//! openraft sees the failure as `Unreachable` and backs off. Without a
//! cluster secret (a single node) every call is `Unreachable`: a
//! single-member group never makes one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::tls::TcpOrTls;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shoal_proto::peer::{Kind, PeerFrame};

use super::types::{NodeId, TypeConfig};
use crate::ids::ShardIndex;
use crate::peer::client::{connect, request};
use crate::peer::{PeerAuth, PeerError};

/// When this shard last exchanged a frame with each member: an answer to
/// one of its raft RPCs, or a request from the member. What `shoal-ctl
/// cluster` shows as liveness, and how a follower knows its leader is
/// still there.
#[derive(Debug, Default)]
pub struct Contacts(RefCell<HashMap<NodeId, Instant>>);

impl Contacts {
    pub fn heard_from(&self, node: NodeId) {
        self.0.borrow_mut().insert(node, Instant::now());
    }

    /// How long ago `node` was last heard from; `None` if never.
    pub fn since(&self, node: NodeId) -> Option<Duration> {
        self.0.borrow().get(&node).map(Instant::elapsed)
    }
}

/// Makes one client per peer of this shard's group.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    shard_index: ShardIndex,
    node_id: NodeId,
    secret: Option<PeerAuth>,
    contacts: Rc<Contacts>,
}

impl NetworkFactory {
    pub fn new(
        shard_index: ShardIndex,
        node_id: NodeId,
        secret: Option<PeerAuth>,
        contacts: Rc<Contacts>,
    ) -> NetworkFactory {
        NetworkFactory {
            shard_index,
            node_id,
            secret,
            contacts,
        }
    }
}

/// A client for one peer.
pub struct PeerClient {
    shard_index: ShardIndex,
    node_id: NodeId,
    target: NodeId,
    target_addr: String,
    secret: Option<PeerAuth>,
    conn: Option<TcpOrTls>,
    next_request: u64,
    contacts: Rc<Contacts>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient")
            .field("shard_index", &self.shard_index)
            .field("target", &self.target)
            .field("target_addr", &self.target_addr)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl PeerClient {
    /// One RPC: the request as bincode out, the peer's `Result` back.
    async fn call<Req, Resp, E>(
        &mut self,
        kind: Kind,
        rpc: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload =
            bincode::serialize(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let attempt = self.exchange(kind, &payload);
        let outcome = glommio::timer::timeout(ttl, async { Ok(attempt.await) }).await;
        let answer = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.conn = None;
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Err(_) => {
                self.conn = None;
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "peer RPC timed out");
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        };
        self.contacts.heard_from(self.target);
        let result: Result<Resp, E> =
            bincode::deserialize(&answer).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn exchange(&mut self, kind: Kind, payload: &[u8]) -> Result<Vec<u8>, PeerError> {
        let secret = self.secret.clone().ok_or_else(|| {
            PeerError::Address(format!("no cluster secret to reach node {}", self.target))
        })?;
        if self.conn.is_none() {
            self.conn =
                Some(connect(&self.target_addr, self.shard_index, &secret, self.node_id).await?);
        }
        let stream = self.conn.as_mut().expect("connected above");
        self.next_request += 1;
        let header = PeerFrame {
            kind: kind as i32,
            ..Default::default()
        };
        let (_, payload) = request(stream, self.next_request, header, payload).await?;
        Ok(payload)
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            shard_index: self.shard_index,
            node_id: self.node_id,
            target,
            target_addr: node.addr.clone(),
            secret: self.secret.clone(),
            conn: None,
            next_request: 0,
            contacts: Rc::clone(&self.contacts),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Kind::RaftAppend, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Kind::RaftSnapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Kind::RaftVote, &rpc, option.hard_ttl()).await
    }
}
