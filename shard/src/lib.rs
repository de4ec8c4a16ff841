//! Everything one Shoal core owns.
//!
//! A *shard* is the unit of ownership: objects hash to a shard, and each
//! shard lives on exactly one core (one glommio executor). It owns
//!
//! - a [`blob_log`]: append-only O_DIRECT segment files holding chunk bytes,
//!   with group commit (concurrent appends share one `fdatasync`);
//! - a [`meta`] store: rocksdb holding the raft log and vote, the applied
//!   state (buckets, manifests) and the blob index (SHA-256 → location);
//! - a [`raft`] group: openraft, through which every metadata change is
//!   committed. Raft entries carry chunk *refs*; chunk bytes go to the
//!   other members beside raft ([`replication`]), or inside entries only
//!   in inline mode, when some member cannot take part in offload.
//!
//! The PUT path as a shard sees it: chunks arrive (already hashed by the
//! ingress core) in [`chunk::ChunkBuf`]s, are appended to the blob log and
//! made durable, their locations are indexed, and then one raft entry with
//! the object manifest is proposed and applied. Only after that does the
//! front end answer 200.

pub mod admission;
pub mod blob_log;
pub mod catchup;
pub mod chunk;
pub mod chunk_hash;
pub mod clock;
pub mod crash_point;
pub mod directory;
pub mod error;
pub mod fuzz_targets;
#[cfg(test)]
mod gc_model;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod meta;
#[cfg(test)]
mod multi_node;
pub mod object_lock;
pub mod ops;
pub mod peer;
pub mod pins;
pub mod raft;
pub mod replication;
pub mod shard;
pub mod sweep;
#[cfg(test)]
mod test_util;
pub mod tls;
pub mod usage;
pub mod version_id;
