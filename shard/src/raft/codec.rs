//! bincode encoding of the raft records kept in the metadata store (log
//! entries, vote, log ids, membership, snapshot images), and the mapping of
//! store errors to openraft's storage errors. Pure code, no I/O.
//!
//! bincode 1 with its default (legacy) options: fixed-width little-endian
//! integers, `Vec<u8>` as a `u64` length plus the raw bytes. This is a
//! storage format: changing the options would make old logs unreadable.

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::NodeId;
use super::types::StorageError;
use crate::meta::keys::Cf;
use crate::meta::MetaError;

/// Encodes a raft record. The records are plain data (integers, byte
/// vectors, maps with string keys), which bincode always encodes, so a
/// failure is a bug.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("bincode encodes every raft record")
}

/// Decodes a raft record read from `cf` at `key`.
pub(crate) fn decode<T: DeserializeOwned>(
    cf: Cf,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, MetaError> {
    bincode::deserialize(bytes).map_err(|e| MetaError::decode(cf.name(), key, e))
}

/// Wraps a store error as openraft's storage error about `subject`.
pub(crate) fn storage_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    error: MetaError,
) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(&error)).into()
}
