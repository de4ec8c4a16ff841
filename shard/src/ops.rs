//! Requests a shard serves, as they travel over the cross-core hop.
//!
//! Every request carries its own reply channel. Everything in here is
//! `Send`: chunk buffers, manifests and `Bytes` move between cores without
//! being copied.

use bytes::Bytes;
use futures::channel::oneshot;
use shoal_proto::meta::{BucketRecord, ObjectManifest};

use crate::blob_log::BlobLocation;
use crate::chunk::ChunkBuf;
use crate::error::ShardError;
use crate::raft::ApplyOutcome;

/// SHA-256 of a chunk: its address in the blob log.
pub type ChunkHash = [u8; 32];

/// Where a request's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, ShardError>>;

/// One listed object: what a listing shows, without chunk refs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size_bytes: u64,
    pub md5: Vec<u8>,
    pub last_modified_unix_ms: u64,
}

pub enum ShardRequest {
    /// Append one hashed chunk to the blob log and make it durable. The
    /// buffer comes back for reuse.
    AppendChunk {
        buf: ChunkBuf,
        sha256: ChunkHash,
        reply: Reply<(BlobLocation, ChunkBuf)>,
    },
    /// Index the object's chunks and commit its manifest through raft.
    CommitObject {
        manifest: ObjectManifest,
        blobs: Vec<(ChunkHash, BlobLocation)>,
        reply: Reply<()>,
    },
    GetObject {
        bucket: String,
        key: String,
        reply: Reply<Option<ObjectManifest>>,
    },
    /// Read one chunk's bytes, checked against its hash.
    ReadChunk {
        sha256: ChunkHash,
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
}
