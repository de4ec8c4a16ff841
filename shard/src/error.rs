//! What can go wrong inside a shard, as the front end sees it.

use crate::blob_log::BlobLogError;
use crate::ids::ShardIndex;
use crate::meta::MetaError;
use crate::raft::RaftError;

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("blob log: {0}")]
    BlobLog(#[from] BlobLogError),
    #[error("metadata: {0}")]
    Meta(#[from] MetaError),
    #[error("raft: {0}")]
    Raft(#[from] RaftError),
    /// A manifest names a chunk this node has no copy of.
    #[error("chunk {sha256_hex} is not in this shard's blob index")]
    ChunkMissing { sha256_hex: String },
    /// This node's copy of a chunk failed its checks twice (a damaged
    /// record, or one in a segment that is gone); its index entry is
    /// dropped, so a cluster fetches a good copy from another member.
    #[error("chunk {sha256_hex} is damaged on this node: {reason}")]
    ChunkDamaged {
        sha256_hex: String,
        reason: BlobLogError,
    },
    /// The member this node forwarded to (the leader) did not answer in
    /// time.
    #[error("the leader at {addr} did not answer a {what} request within {after:?}")]
    PeerSlow {
        addr: String,
        what: &'static str,
        after: std::time::Duration,
    },
    /// The leader this node forwarded to refused the request.
    #[error("the leader refused: {reason}")]
    PeerRefused { reason: String },
    /// A named fault point fired (tests only: `--features failpoints`).
    #[error("fault injected at {point}")]
    Injected { point: &'static str },
    /// A chunk reached too few nodes to be durable (one, in a cluster).
    #[error("chunk stored on {stored} of {members} nodes; too few to be durable")]
    ReplicationFailed { stored: usize, members: usize },
    /// This node could not confirm in time that it has applied every
    /// acknowledged write, so it does not answer the read.
    #[error("shard {shard} has not applied up to the read index {index} in time")]
    NotCurrent { shard: ShardIndex, index: u64 },
    /// An inline entry carrying the chunk could not be committed.
    #[error("writing a chunk inline failed: {reason}")]
    InlineWrite { reason: String },
    /// The shard's core is gone (shutting down) and dropped the request.
    #[error("shard {shard} stopped")]
    Stopped { shard: ShardIndex },
}
