//! Requests a shard serves, as they travel over the cross-core hop.
//!
//! Every request carries its own reply channel. Everything in here is
//! `Send`: chunk buffers, manifests and `Bytes` move between cores without
//! being copied.

use bytes::Bytes;
use futures::channel::oneshot;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{
    BucketRecord, DefaultRetention, MultipartUpload, ObjectManifest, UploadRef, UploadedPart,
    Versioning, WriteCondition,
};

use crate::blob_log::BlobLocation;
use crate::chunk::ChunkBuf;
use crate::chunk_hash::ChunkHash;
use crate::error::ShardError;
use crate::ids::{NodeId, ShardIndex};
use crate::meta::{VersionCursor, VersionSummary};
use crate::raft::ApplyOutcome;
use crate::usage::{Freshness, ShardUsage};

/// Where a chunk was made durable first: a location in the blob log of
/// node `stored_by` (this node, or the leader a follower forwarded the
/// chunk to). Only a node's own locations enter its blob index; the
/// others name the chunk refs' source node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlacement {
    pub location: BlobLocation,
    pub stored_by: NodeId,
}

/// Where a request's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, ShardError>>;

/// A shard's raft group as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub shard: ShardIndex,
    pub leader: Option<NodeId>,
    /// `(node id, peer address, voter?)`.
    pub members: Vec<(NodeId, String, bool)>,
    /// `(node id, what it advertises)`; `None` for a member this node has
    /// not heard from.
    pub capabilities: Vec<(NodeId, Option<Vec<String>>)>,
    /// `(node id, milliseconds since this shard last exchanged a frame with
    /// it)`; `None` if never (this node itself included).
    pub last_contact_ms: Vec<(NodeId, Option<u64>)>,
    /// Whether the group can commit writes, as far as this node can tell.
    pub has_quorum: bool,
}

/// One listed object: what a listing shows of its manifest (decoded
/// without the chunk refs, metadata or embedded body).
pub type ObjectSummary = shoal_proto::meta::ObjectListed;

pub enum ShardRequest {
    /// Commit one metadata command through the shard's group and answer
    /// how it applied. Every change that carries no chunk bytes goes this
    /// way: deletes, buckets (on the metadata shard, shard 0), users and
    /// keys, ACLs, multipart create/complete/abort. Multipart uploads live
    /// on the shard that will own the object, so parts land in the blob
    /// log its manifest will point into.
    Propose {
        op: Op,
        reply: Reply<ApplyOutcome>,
    },
    /// Append one hashed chunk to the blob log and make it durable. The
    /// buffer comes back for reuse.
    AppendChunk {
        buf: ChunkBuf,
        sha256: ChunkHash,
        reply: Reply<(ChunkPlacement, ChunkBuf)>,
    },
    /// Index the object's chunks and commit its manifest through raft
    /// (only if `condition` holds when the entry is applied), as a new
    /// version under the bucket's `versioning` (with its default
    /// retention when the manifest has none of its own).
    CommitObject {
        manifest: ObjectManifest,
        chunks: Vec<(ChunkHash, ChunkPlacement)>,
        condition: Option<WriteCondition>,
        versioning: Versioning,
        default_retention: Option<DefaultRetention>,
        reply: Reply<ApplyOutcome>,
    },
    /// A version of the object: the one `version_id` names, else the
    /// current one or, when the newest version is a delete marker, that
    /// marker (`MetaStore::get_version`).
    GetObject {
        bucket: String,
        key: String,
        version_id: Option<String>,
        reply: Reply<Option<ObjectManifest>>,
    },
    /// Up to `limit` versions of objects whose keys start with `prefix`,
    /// after `after`, in key order, each key's newest first.
    ListVersions {
        bucket: String,
        prefix: String,
        after: Option<VersionCursor>,
        limit: usize,
        reply: Reply<Vec<VersionSummary>>,
    },
    /// Read one chunk's bytes, checked against its hash; `source_node` is
    /// the ref's hint of who stored it first.
    ReadChunk {
        sha256: ChunkHash,
        source_node: NodeId,
        reply: Reply<Bytes>,
    },
    /// Up to `limit` objects whose keys start with `prefix` and sort after
    /// `after` (exclusive, raw bytes), in key order.
    ListObjects {
        bucket: String,
        prefix: String,
        after: Option<Vec<u8>>,
        limit: usize,
        reply: Reply<Vec<ObjectSummary>>,
    },
    BucketHasObjects {
        bucket: String,
        reply: Reply<bool>,
    },
    /// Objects and bytes of every bucket on this shard (approximate: see
    /// [`crate::usage`]), or with `bucket` of that one only, counted now.
    BucketUsage {
        bucket: Option<String>,
        freshness: Freshness,
        reply: Reply<ShardUsage>,
    },
    ListBuckets {
        reply: Reply<Vec<BucketRecord>>,
    },
    /// The shard's group: members and leader.
    ClusterView {
        reply: Reply<GroupView>,
    },
    /// Snapshot the shard's applied state now; answers the snapshot's size
    /// (`None` if it was not built in time).
    Snapshot {
        reply: Reply<Option<u64>>,
    },
    /// Add a node to the shard's group (leader only).
    AddMember {
        node_id: NodeId,
        peer_addr: String,
        reply: Reply<()>,
    },
    /// Remove a node from the shard's group (leader only).
    RemoveMember {
        node_id: NodeId,
        reply: Reply<()>,
    },
    GetUpload {
        upload: UploadRef,
        reply: Reply<Option<MultipartUpload>>,
    },
    /// Index the part's chunks and commit the part through raft.
    PutPart {
        part: UploadedPart,
        chunks: Vec<(ChunkHash, ChunkPlacement)>,
        reply: Reply<ApplyOutcome>,
    },
    /// Up to `limit` parts numbered above `after`.
    ListParts {
        upload_id: String,
        after: u32,
        limit: usize,
        reply: Reply<Vec<UploadedPart>>,
    },
    /// Up to `limit` uploads of `bucket` under `prefix`, after the
    /// `(key, upload id)` marker.
    ListUploads {
        bucket: String,
        prefix: String,
        after: Option<(String, Option<String>)>,
        limit: usize,
        reply: Reply<Vec<MultipartUpload>>,
    },
}
