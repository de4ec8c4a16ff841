//! The shard's raft group as the rest of the shard uses it: whether there
//! are other members at all, proposing a command (here, or through the
//! leader), and the group as `shoal-ctl cluster` shows it.

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;

use futures::future::{select, Either};
use prost::Message;
use shoal_proto::meta::{meta_command::Op, MetaCommand};

use super::Shard;
use crate::error::ShardError;
use crate::ids::NodeId;
use crate::limits::{FORWARDED_APPLY_WAIT_MAX, LEADER_CHANGE_POLL};
use crate::ops::GroupView;
use crate::peer::PeerError;
use crate::raft::{ApplyOutcome, RaftError};
use crate::replication::{self, Replicator};

/// Whether a shard's raft group can have other members.
pub enum Group {
    /// A node on its own: it leads its one-member group, never forwards,
    /// pushes or fetches, and every read is current.
    Single,
    /// A member of a cluster (started with a cluster secret), and how it
    /// reaches the others. It may be the only member for now.
    Cluster(Rc<Replicator>),
}

impl Group {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Group::Cluster(_))
    }
}

/// Where a write goes when this member does not lead: the leader's peer
/// address and the replicator that reaches it.
pub(super) struct Forward<'a> {
    pub replicator: &'a Rc<Replicator>,
    pub leader: NodeId,
    pub leader_addr: String,
}

impl Shard {
    /// Commits a command through the group: here when this node leads,
    /// else (in a cluster) through the leader, then waits until this node
    /// has applied the entry too, so the caller reads its own write.
    pub(super) async fn propose(&self, op: Op) -> Result<ApplyOutcome, ShardError> {
        let command = MetaCommand {
            op: Some(op),
            ..Default::default()
        };
        debug_assert!(command.encoded_len() > 0);
        if let Some(forward) = self.forward_target() {
            let call = forward
                .replicator
                .forward_propose(&forward.leader_addr, &command);
            let (outcome, index) = self.forwarded(forward.leader, call).await?;
            if !self
                .raft
                .wait_applied(index, FORWARDED_APPLY_WAIT_MAX)
                .await
            {
                tracing::warn!(
                    shard = self.index.get(),
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

    /// Where writes must go instead of here: set on a cluster member that
    /// does not lead and knows who does.
    pub(super) fn forward_target(&self) -> Option<Forward<'_>> {
        let Group::Cluster(replicator) = &self.group else {
            return None;
        };
        if self.raft.is_leader() {
            return None;
        }
        let leader = self
            .raft
            .leader()
            .filter(|&leader| leader != self.raft.node_id())?;
        let leader_addr = self.raft.member_addr(leader)?;
        Some(Forward {
            replicator,
            leader,
            leader_addr,
        })
    }

    /// This node does not lead (and cannot reach the leader): the client
    /// may retry, and learns who leads if this node knows.
    pub(super) fn not_leader(&self) -> ShardError {
        RaftError::NotLeader {
            leader: self.raft.leader(),
        }
        .into()
    }

    /// The answer of a call to `leader`, or "not leader" as soon as this
    /// node learns the group has another leader or none: a frozen or cut-off
    /// leader would otherwise keep the client until the peer deadline long
    /// after the group moved on (the client retries, and reaches the new
    /// leader). Failures map as [`Shard::forward_failed`] says.
    pub(super) async fn forwarded<T>(
        &self,
        leader: NodeId,
        call: impl Future<Output = Result<T, PeerError>>,
    ) -> Result<T, ShardError> {
        let moved = async {
            while self.raft.leader() == Some(leader) {
                glommio::timer::sleep(LEADER_CHANGE_POLL).await;
            }
        };
        match select(pin!(call), pin!(moved)).await {
            Either::Left((answer, _)) => answer.map_err(|e| self.forward_failed(e)),
            Either::Right(_) => {
                tracing::info!(
                    shard = self.index.get(),
                    was = leader.get(),
                    "the leader changed while a forwarded request waited on it; the client retries"
                );
                Err(self.not_leader())
            }
        }
    }

    /// A forwarded write that failed on the way: the client may retry.
    pub(super) fn forward_failed(&self, e: PeerError) -> ShardError {
        tracing::warn!(shard = self.index.get(), error = %e, "forwarding to the leader failed");
        match e {
            PeerError::TimedOut { addr, what, after } => ShardError::PeerSlow { addr, what, after },
            PeerError::Remote(reason) => ShardError::PeerRefused { reason },
            // It does not lead (any more), or cannot be reached: either way
            // this node does not know a leader that answers.
            _ => self.not_leader(),
        }
    }

    /// Peer addresses of the other members of this shard's group.
    pub(super) fn peer_addrs(&self) -> Vec<String> {
        if !self.group.is_cluster() {
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

    /// What this node advertises to the other members.
    pub fn capabilities(&self) -> Vec<String> {
        let mut capabilities = vec![replication::CAPABILITY_COLLECT.to_string()];
        if self.blob_offload {
            capabilities.push(replication::CAPABILITY_OFFLOAD.to_string());
        }
        capabilities
    }

    /// The first of `peers` that does not advertise `capability` (or has
    /// not answered within [`crate::limits::CAPABILITIES_TTL`]); `None`
    /// when all do, and always on a single node.
    pub(super) async fn member_lacking(
        &self,
        peers: &[String],
        capability: &str,
    ) -> Option<String> {
        let Group::Cluster(replicator) = &self.group else {
            return None;
        };
        for addr in peers {
            let advertised = replicator.capabilities(addr).await.unwrap_or_default();
            if !advertised.iter().any(|c| c == capability) {
                return Some(addr.clone());
            }
        }
        None
    }

    /// The group as this node sees it, with what each member advertises
    /// (asked again once the cached answer is older than
    /// [`crate::limits::CAPABILITIES_TTL`]).
    pub(super) async fn group_view(&self) -> GroupView {
        let me = self.raft.node_id();
        let members = self.raft.membership();
        let mut capabilities = Vec::with_capacity(members.len());
        for (id, addr, _) in &members {
            let advertised = match &self.group {
                _ if *id == me => Some(self.capabilities()),
                Group::Cluster(replicator) => replicator.capabilities(addr).await,
                Group::Single => None,
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
}
