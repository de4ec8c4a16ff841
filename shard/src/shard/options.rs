//! What a shard is opened with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::directory::Directory;
use crate::ids::{NodeId, ShardIndex};
use crate::peer::PeerAuth;

/// Everything [`super::Shard::open`] needs besides the metadata store and
/// the stats it publishes into.
#[derive(Clone, Debug)]
pub struct ShardOptions {
    pub index: ShardIndex,
    pub node_id: NodeId,
    /// The directory of the shard's blob log segments.
    pub blob_dir: PathBuf,
    /// Largest size of one blob log segment (`--segment-size`).
    pub segment_bytes: u64,
    /// How long a chunk stays after it loses its last ref, and how long an
    /// unreferenced chunk must stay unreferenced before it is forgotten
    /// (`--gc-grace`).
    pub gc_grace: Duration,
    /// Pace of the scrub's reads, in bytes per second (`--scrub-rate`
    /// split over the shards; 0: no scrub).
    pub scrub_bytes_per_s: u64,
    /// The node's bucket and user directory, given to the metadata shard
    /// (shard 0) only: it publishes every applied bucket and user change
    /// there.
    pub directory: Option<Arc<Directory>>,
    pub cluster: ClusterOptions,
}

/// How a shard's raft group takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// This node's peer address (shard 0's port), as members record it;
    /// empty on a single node.
    pub peer_addr: String,
    /// The cluster secret; `None` on a single node.
    pub secret: Option<PeerAuth>,
    /// Whether an uninitialised group makes this node its first member.
    pub bootstrap: bool,
    /// Nodes (this one included) a chunk must be durable on before its
    /// refs are proposed; 0 means the raft quorum.
    pub min_blob_replicas: usize,
    /// Whether this node advertises (and, leading, uses) blob offload;
    /// without it chunk bytes travel inside raft entries.
    pub blob_offload: bool,
    /// Pace of background chunk fetches from each peer, in bytes per
    /// second (0: unpaced).
    pub catchup_bytes_per_s: u64,
    /// Entries applied since the last snapshot that trigger a new one.
    pub snapshot_logs_since_last: u64,
    /// Entries already in a snapshot kept in the log for slow followers.
    pub logs_kept_after_snapshot: u64,
}

impl ClusterOptions {
    /// A node on its own.
    pub fn single_node() -> ClusterOptions {
        ClusterOptions {
            peer_addr: String::new(),
            secret: None,
            bootstrap: true,
            min_blob_replicas: 0,
            blob_offload: true,
            catchup_bytes_per_s: 0,
            snapshot_logs_since_last: crate::raft::SNAPSHOT_LOGS_SINCE_LAST,
            logs_kept_after_snapshot: crate::raft::LOGS_KEPT_AFTER_SNAPSHOT,
        }
    }
}
