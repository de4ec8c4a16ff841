//! Errors of the blob log: what a caller of [`super::BlobLog`] can be told,
//! and why a stored record was refused ([`RecordError`]).
//!
//! Operating errors only (disk failures, damaged bytes, bad locations); a
//! broken invariant inside the log is an `assert!`, not a variant here.

use std::path::PathBuf;

/// Why a blob-log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobLogError {
    /// A file-system call failed.
    #[error("blob log: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A write returned fewer bytes than the record holds.
    #[error(
        "blob log: short write to segment {segment} at offset {offset_bytes}: \
         {written_bytes} of {expected_bytes} bytes"
    )]
    ShortWrite {
        segment: u64,
        offset_bytes: u64,
        written_bytes: u64,
        expected_bytes: u64,
    },

    /// The bytes at a location are not a valid record (or not the one asked for).
    #[error("blob log: corrupt record in segment {segment} at offset {offset_bytes}: {reason}")]
    Corrupt {
        segment: u64,
        offset_bytes: u64,
        #[source]
        reason: RecordError,
    },

    /// A valid record whose stored SHA-256 is not the one the caller expected.
    #[error("blob log: record in segment {segment} at offset {offset_bytes} has another SHA-256")]
    HashMismatch { segment: u64, offset_bytes: u64 },

    /// The location names a segment this log does not have.
    #[error("blob log: no segment {segment}")]
    UnknownSegment { segment: u64 },

    /// A payload larger than one chunk.
    #[error("blob log: payload of {size_bytes} bytes exceeds {max} bytes")]
    TooLarge { size_bytes: u64, max: u64 },

    /// `segment_bytes_max` cannot hold the largest record or is not aligned.
    #[error(
        "blob log: segment_bytes_max {segment_bytes_max} must be at least {min_bytes} \
         and a multiple of {align_bytes}"
    )]
    BadSegmentSize {
        segment_bytes_max: u64,
        min_bytes: u64,
        align_bytes: u64,
    },

    /// The device wants an O_DIRECT alignment the record layout cannot meet.
    #[error(
        "blob log: {} needs O_DIRECT alignment {device_align_bytes}, records are aligned to {io_align_bytes}",
        path.display()
    )]
    Alignment {
        path: PathBuf,
        device_align_bytes: u64,
        io_align_bytes: u64,
    },

    /// The log refuses all appends after a failed write, fsync or segment
    /// roll: what reached the disk is unknown, so nothing more may be
    /// acknowledged. Reads still work.
    #[error("blob log is poisoned: {cause}")]
    Fatal { cause: PoisonCause },
}

/// What poisoned the log (see [`BlobLogError::Fatal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoisonCause {
    #[error("fdatasync of segment {segment} failed")]
    SyncFailed { segment: u64 },
    #[error("write to segment {segment} at offset {offset_bytes} failed")]
    WriteFailed { segment: u64, offset_bytes: u64 },
    #[error("creating segment {segment} failed")]
    RollFailed { segment: u64 },
    /// A write or a segment creation found the disk full. Unlike the other
    /// causes this one passes: [`super::BlobLog::recover_from_no_space`]
    /// takes the log back to its last acknowledged record.
    #[error("the disk was full writing segment {segment} at offset {offset_bytes}")]
    NoSpace { segment: u64, offset_bytes: u64 },
}

impl BlobLogError {
    /// Whether the bytes a location names are bad or gone (as opposed to
    /// the disk failing to answer): the record must be fetched again.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            BlobLogError::Corrupt { .. }
                | BlobLogError::HashMismatch { .. }
                | BlobLogError::UnknownSegment { .. }
        )
    }

    /// Whether this failure means the disk is full (rather than failing).
    pub fn is_no_space(&self) -> bool {
        match self {
            BlobLogError::Io { source, .. } => is_no_space(source),
            // O_DIRECT writes come up short when the file system runs out
            // of blocks part of the way.
            BlobLogError::ShortWrite { .. } => true,
            BlobLogError::Fatal {
                cause: PoisonCause::NoSpace { .. },
            } => true,
            _ => false,
        }
    }
}

/// ENOSPC, or EDQUOT (a quota is a full disk as far as we are concerned).
/// glommio wraps the OS error in one of its own, keeping its kind.
pub fn is_no_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// Why bytes on disk are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record needs {needed_bytes} bytes, only {available_bytes} present")]
    Truncated {
        needed_bytes: u64,
        available_bytes: u64,
    },
    #[error("bad magic {found:#010x}")]
    BadMagic { found: u32 },
    #[error("format version {found}, this build reads {supported}")]
    BadVersion { found: u16, supported: u16 },
    #[error("header CRC32C {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc { stored: u32, computed: u32 },
    #[error("unknown flags {flags:#06x}")]
    UnknownFlags { flags: u16 },
    #[error("reserved header field is {found:#010x}, not zero")]
    ReservedNotZero { found: u32 },
    #[error("payload length {payload_bytes} exceeds {max} bytes")]
    TooLong { payload_bytes: u64, max: u64 },
    #[error("record of {record_bytes} bytes overruns the {space_bytes} bytes left in the segment")]
    Overruns { record_bytes: u64, space_bytes: u64 },
    #[error("record says it lives at offset {stored_offset_bytes}")]
    Misplaced { stored_offset_bytes: u64 },
    #[error("offset {offset_bytes} is not aligned to {align_bytes} bytes")]
    Misaligned { offset_bytes: u64, align_bytes: u64 },
    #[error("payload is {stored_bytes} bytes, the location says {expected_bytes}")]
    SizeMismatch {
        stored_bytes: u64,
        expected_bytes: u64,
    },
    #[error("payload CRC32C {stored:#010x}, computed {computed:#010x}")]
    PayloadCrc { stored: u32, computed: u32 },
}
