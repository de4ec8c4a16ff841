//! Errors of a shard's raft group.

use openraft::error::{ChangeMembershipError, Fatal};

use super::types::NodeId;
use crate::ids::ShardIndex;
use crate::meta::MetaError;

/// Why a raft operation failed.
///
/// As in openraft, a moved leader ([`RaftError::NotLeader`]) is not a
/// client error: the caller proxies the request to the leader. A
/// [`RaftError::Fatal`] means the group has stopped; the shard must be
/// reported unhealthy.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// This node is not the group's leader; `leader` is the leader's node
    /// id when this node knows it.
    #[error("this node is not the shard's raft leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },

    /// The group stopped (storage failure, shutdown, panic). Boxed, as
    /// openraft's errors are large and this one is rare.
    #[error("shard raft group stopped: {0}")]
    Fatal(Box<Fatal<NodeId>>),

    /// The metadata store failed outside raft's own calls (at start).
    #[error("shard metadata store: {0}")]
    Storage(#[from] MetaError),

    /// The raft configuration is inconsistent (timeouts).
    #[error("invalid raft config for shard {shard_index}: {source}")]
    Config {
        shard_index: ShardIndex,
        source: Box<openraft::ConfigError>,
    },

    /// No leader emerged in time at start.
    #[error("shard {shard_index} (node {node_id}) saw no leader within {waited_ms} ms")]
    NoLeader {
        shard_index: ShardIndex,
        node_id: NodeId,
        waited_ms: u64,
    },

    /// A membership change was refused (another one is in progress).
    #[error("membership change refused: {0}")]
    Membership(Box<ChangeMembershipError<NodeId>>),
}

impl RaftError {
    /// The error for each command of a grouped entry that failed (the
    /// proposer's: a moved leader or a stopped group; anything else
    /// cannot come from a proposal, and stops the group as well).
    pub(crate) fn for_each_command(&self) -> RaftError {
        match self {
            RaftError::NotLeader { leader } => RaftError::NotLeader { leader: *leader },
            RaftError::Fatal(fatal) => RaftError::Fatal(fatal.clone()),
            other => {
                tracing::error!(error = %other, "a proposal failed unexpectedly");
                Fatal::Stopped.into()
            }
        }
    }
}

impl From<Fatal<NodeId>> for RaftError {
    fn from(fatal: Fatal<NodeId>) -> Self {
        RaftError::Fatal(Box::new(fatal))
    }
}
