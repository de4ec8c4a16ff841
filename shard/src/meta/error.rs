//! Errors of the metadata store.

/// Why a metadata store operation failed.
///
/// All of these are operating errors (a disk, a corrupt record, a dead
/// helper thread); a caller that cannot retry turns them into a fatal shard
/// error.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// rocksdb refused an operation.
    #[error("rocksdb {op} failed: {source}")]
    Rocks {
        op: &'static str,
        source: rocksdb::Error,
    },

    /// rocksdb found one of its files damaged (a block checksum, a
    /// manifest): the store cannot serve what that file holds until it is
    /// rebuilt. Never wrong data: every block is checked when read.
    #[error(
        "the metadata store is damaged (rocksdb {op}: {source}); what it holds cannot be read until it is rebuilt: in a cluster, move this node's data directory aside and start it again with --join (it copies everything back from its peers); see \"Damaged data\" in docs/operations.md"
    )]
    Damaged {
        op: &'static str,
        source: rocksdb::Error,
    },

    /// A stored record does not decode: corruption, or a record written by
    /// a newer, incompatible version.
    #[error("cannot decode the {cf} record at key {key} (hex): {reason}")]
    Decode {
        cf: &'static str,
        /// The record's key, hex encoded.
        key: String,
        reason: String,
    },

    /// A snapshot was made by a format version this build cannot read.
    #[error(
        "snapshot format version {found} is not supported (this build reads version {supported})"
    )]
    SnapshotVersion { found: u32, supported: u32 },

    /// A raft snapshot file could not be written or read, or is damaged.
    #[error("raft snapshot file {path}: {op} failed: {source}")]
    SnapshotFile {
        op: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },

    /// The blocking pool that runs rocksdb calls failed (the call panicked).
    #[error("blocking pool failed during {op}: {reason}")]
    Blocking { op: &'static str, reason: String },

    /// An inline chunk entry could not be stored in the blob log: it failed
    /// its check (a leader only proposes checked chunks) or the log failed.
    #[error("cannot store the inline chunk of entry {index}: {reason}")]
    InlineChunk { index: u64, reason: String },
}

impl MetaError {
    /// Whether rocksdb failed for want of disk space (the write itself, or
    /// any write since, while rocksdb waits for space to resume).
    pub fn is_no_space(&self) -> bool {
        match self {
            MetaError::Rocks { source, .. } => {
                source.kind() == rocksdb::ErrorKind::IOError
                    && source.as_ref().contains("No space left on device")
            }
            MetaError::SnapshotFile { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }

    pub(crate) fn rocks(op: &'static str) -> impl FnOnce(rocksdb::Error) -> MetaError {
        move |source| match source.kind() {
            rocksdb::ErrorKind::Corruption => MetaError::Damaged { op, source },
            _ => MetaError::Rocks { op, source },
        }
    }

    pub(crate) fn decode(cf: &'static str, key: &[u8], reason: impl ToString) -> MetaError {
        MetaError::Decode {
            cf,
            key: hex::encode(key),
            reason: reason.to_string(),
        }
    }
}
