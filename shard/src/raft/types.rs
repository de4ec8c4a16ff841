//! The types one shard's raft group is made of: what an entry carries
//! ([`RaftCommand`]), what applying it returns ([`ApplyOutcome`]), and the
//! openraft type configuration that ties them to the glommio runtime.

use std::fmt;

use prost::Message;
use serde::{Deserialize, Serialize};
use shoal_proto::meta::MetaCommand;

use super::runtime::GlommioRuntime;
pub use crate::version_id::VersionStamp;

pub use crate::ids::NodeId;

openraft::declare_raft_types!(
    /// openraft type configuration of a shard's group.
    pub TypeConfig:
        D = RaftCommand,
        R = EntryOutcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = super::snapshot_file::SnapshotFile,
        AsyncRuntime = GlommioRuntime,
);

/// A log entry as openraft sees it.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id of this group.
pub type LogId = openraft::LogId<NodeId>;
/// A vote of this group.
pub type Vote = openraft::Vote<NodeId>;
/// A membership as stored with the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
/// openraft's storage error for this group.
pub type StorageError = openraft::StorageError<NodeId>;

/// The application payload of a raft entry: one prost-encoded
/// [`MetaCommand`].
///
/// Kept as bytes so the log stores exactly what was proposed and the state
/// machine decodes it once, at apply time. bincode writes them as a length
/// and the raw bytes, so the entry costs only ~8 bytes more than the
/// command itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftCommand {
    #[serde(with = "byte_string")]
    pub meta_command: Vec<u8>,
}

/// Serde for a `Vec<u8>` as one byte string rather than a sequence of
/// `u8`s. bincode writes both as a `u64` length and the bytes (so the log
/// format is unchanged), but a sequence goes through the serializer one
/// byte at a time: for a megabyte of inline chunk, every encode and
/// decode of an entry (log append, replication, log read) cost
/// milliseconds of CPU.
mod byte_string {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(ByteString)
    }

    struct ByteString;

    impl<'de> Visitor<'de> for ByteString {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        // Formats without byte strings send a sequence.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
}

impl RaftCommand {
    pub fn encode(command: &MetaCommand) -> RaftCommand {
        RaftCommand {
            meta_command: command.encode_to_vec(),
        }
    }

    pub fn decode(&self) -> Result<MetaCommand, prost::DecodeError> {
        MetaCommand::decode(self.meta_command.as_slice())
    }
}

impl fmt::Debug for RaftCommand {
    // Manifests run to tens of KiB; logs get the size, not the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftCommand")
            .field("meta_command_bytes", &self.meta_command.len())
            .finish()
    }
}

/// What applying one entry did: one outcome per command it carries (a
/// `batch` entry carries several, any other entry one).
pub type EntryOutcome = Vec<ApplyOutcome>;

/// What applying one command did. Deterministic: every replica computes the
/// same outcome for the same entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The command took effect (or, for a blank or membership entry, there
    /// was nothing to do).
    Applied,
    /// `create_bucket` found the bucket already there; nothing changed.
    BucketAlreadyExists,
    /// `delete_bucket` found no such bucket; nothing changed.
    NoSuchBucket,
    /// A part, completion or abort named an upload that is not in
    /// progress (never was, or completed, aborted or reaped).
    NoSuchUpload,
    /// A conditional write found the object not as the condition required.
    PreconditionFailed,
    /// A write conditioned on the object's ETag found no object.
    NoSuchKey,
    /// A completion named a part that is missing or was uploaded again
    /// after the client's list was checked.
    InvalidPart,
    /// `create_user` found the name taken.
    UserExists,
    /// A user op named no such user.
    NoSuchUser,
    /// A new access key is already some user's.
    AccessKeyExists,
    /// A key op named no such access key.
    NoSuchAccessKey,
    /// An ACL op named a bucket or object that does not exist.
    NoSuchResource,
    /// `delete_user` found buckets the user still owns; nothing changed.
    UserOwnsBuckets,
    /// A write to a bucket with versioning enabled made this version.
    Versioned(VersionStamp),
    /// A DELETE without a version id wrote a delete marker: this version,
    /// or the null one (`None`) while versioning is suspended.
    DeleteMarkerWritten(Option<VersionStamp>),
    /// A DELETE of one version removed a delete marker.
    DeleteMarkerRemoved,
    /// An op on one version named a version the key does not have.
    NoSuchVersion,
    /// Object Lock keeps the version: a legal hold, or retention that has
    /// not ended (and may not be bypassed, or shortened as asked).
    ObjectLocked,
    /// The bucket is not in a state the op needs: Object Lock without
    /// versioning enabled, or versioning suspended under Object Lock.
    InvalidBucketState,
    /// A lifecycle expiration found its version or upload no longer due
    /// (written again, rule changed, locked) when its entry applied;
    /// nothing changed.
    NotDue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_encodes_as_before_and_round_trips() {
        // What the log held before the byte-string encoding: a plain
        // `Vec<u8>` field, which bincode writes as a sequence.
        #[derive(Serialize)]
        struct Sequence {
            meta_command: Vec<u8>,
        }
        let bytes: Vec<u8> = (0..=255).cycle().take(70_000).collect();
        let command = RaftCommand {
            meta_command: bytes.clone(),
        };
        let encoded = bincode::serialize(&command).unwrap();
        let sequence = bincode::serialize(&Sequence {
            meta_command: bytes,
        })
        .unwrap();
        assert_eq!(encoded, sequence);
        let decoded: RaftCommand = bincode::deserialize(&encoded).unwrap();
        assert!(decoded == command);
    }
}
