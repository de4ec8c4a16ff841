//! Requests a shard serves, as they travel over the cross-core hop.
//!
//! Every request carries its own reply channel. Everything in here is
//! `Send`: chunk buffers, manifests and `Bytes` move between cores without
//! being copied.

use bytes::Bytes;
use futures::channel::oneshot;
use shoal_proto::meta::{
    AddAccessKey, BucketRecord, CompleteUpload, MultipartUpload, ObjectManifest, PutBucketAcl,
    PutObjectAcl, SetBucketOwner, SetEnabled, UploadRef, UploadedPart, User, WriteCondition,
};

use crate::blob_log::BlobLocation;
use crate::chunk::ChunkBuf;
use crate::error::ShardError;
use crate::raft::ApplyOutcome;
use crate::usage::{Freshness, ShardUsage};

/// SHA-256 of a chunk: its address in the blob log.
pub type ChunkHash = [u8; 32];

/// Where a request's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, ShardError>>;

/// Changes to records of the metadata shard beyond creating and deleting
/// buckets. Each is one raft entry, checked when applied.
#[derive(Debug)]
pub enum MetaChange {
    CreateUser(User),
    /// Refused (`UserOwnsBuckets`) while the user owns a bucket.
    DeleteUser(String),
    AddAccessKey(AddAccessKey),
    SetUserEnabled(SetEnabled),
    SetKeyEnabled(SetEnabled),
    DeleteAccessKey(String),
    PutBucketAcl(PutBucketAcl),
    SetBucketOwner(SetBucketOwner),
}

/// A shard's raft group as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub shard: u16,
    pub leader: Option<u64>,
    /// `(node id, peer address, voter?)`.
    pub members: Vec<(u64, String, bool)>,
    /// `(node id, what it advertises)`; `None` for a member this node has
    /// not heard from.
    pub capabilities: Vec<(u64, Option<Vec<String>>)>,
    /// `(node id, milliseconds since this shard last exchanged a frame with
    /// it)`; `None` if never (this node itself included).
    pub last_contact_ms: Vec<(u64, Option<u64>)>,
    /// Whether the group can commit writes, as far as this node can tell.
    pub has_quorum: bool,
}

/// One listed object: what a listing shows, without chunk refs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size_bytes: u64,
    pub md5: Vec<u8>,
    pub part_count: u32,
    pub last_modified_unix_ms: u64,
    /// Empty for objects written before users existed.
    pub owner_id: String,
}

pub enum ShardRequest {
    /// Append one hashed chunk to the blob log and make it durable. The
    /// buffer comes back for reuse.
    AppendChunk {
        buf: ChunkBuf,
        sha256: ChunkHash,
        reply: Reply<(BlobLocation, ChunkBuf)>,
    },
    /// Index the object's chunks and commit its manifest through raft
    /// (only if `condition` holds when the entry is applied).
    CommitObject {
        manifest: ObjectManifest,
        blobs: Vec<(ChunkHash, BlobLocation)>,
        condition: Option<WriteCondition>,
        reply: Reply<ApplyOutcome>,
    },
    GetObject {
        bucket: String,
        key: String,
        reply: Reply<Option<ObjectManifest>>,
    },
    /// Read one chunk's bytes, checked against its hash; `source_node` is
    /// the ref's hint of who stored it first.
    ReadChunk {
        sha256: ChunkHash,
        source_node: u64,
        reply: Reply<Bytes>,
    },
    DeleteObject {
        bucket: String,
        key: String,
        reply: Reply<()>,
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
    /// Bucket records live on the metadata shard (shard 0) only.
    CreateBucket {
        record: BucketRecord,
        reply: Reply<ApplyOutcome>,
    },
    DeleteBucket {
        name: String,
        reply: Reply<ApplyOutcome>,
    },
    ListBuckets {
        reply: Reply<Vec<BucketRecord>>,
    },
    /// A bucket or user change (metadata shard only); see
    /// [`MetaChange`].
    ChangeMetadata {
        change: MetaChange,
        reply: Reply<ApplyOutcome>,
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
        node_id: u64,
        peer_addr: String,
        reply: Reply<()>,
    },
    /// Remove a node from the shard's group (leader only).
    RemoveMember {
        node_id: u64,
        reply: Reply<()>,
    },
    /// Replace an object's ACL (on the object's shard).
    PutObjectAcl {
        put: PutObjectAcl,
        reply: Reply<ApplyOutcome>,
    },
    /// Multipart uploads live on the shard that will own the object, so
    /// parts land in the blob log the object's manifest will point into.
    CreateUpload {
        upload: MultipartUpload,
        reply: Reply<ApplyOutcome>,
    },
    GetUpload {
        upload: UploadRef,
        reply: Reply<Option<MultipartUpload>>,
    },
    /// Index the part's chunks and commit the part through raft.
    PutPart {
        part: UploadedPart,
        blobs: Vec<(ChunkHash, BlobLocation)>,
        reply: Reply<ApplyOutcome>,
    },
    /// Up to `limit` parts numbered above `after`.
    ListParts {
        upload_id: String,
        after: u32,
        limit: usize,
        reply: Reply<Vec<UploadedPart>>,
    },
    CompleteUpload {
        complete: CompleteUpload,
        reply: Reply<ApplyOutcome>,
    },
    AbortUpload {
        upload: UploadRef,
        reply: Reply<ApplyOutcome>,
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
