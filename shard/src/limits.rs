//! Every size and bound a shard relies on, in one place.
//!
//! Related limits are checked against each other at compile time, so a
//! change that breaks an invariant fails the build instead of a disk.

/// Bytes of object data in one chunk: the unit of hashing, hopping,
/// blob-log records and (later) admission charges.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Most bytes one raft entry may hold in inline mode.
pub const INLINE_ENTRY_BYTES_MAX: usize = 4 << 20;
/// Chunks one inline entry (`store_chunks`) carries at most: concurrent
/// inline writes share entries, hence synced log appends.
pub const INLINE_CHUNKS_PER_ENTRY: usize = 3;
const _: () = assert!(INLINE_CHUNKS_PER_ENTRY * (CHUNK_BYTES + 1024) <= INLINE_ENTRY_BYTES_MAX);
/// Inline entries a shard proposes at once.
pub const INLINE_PROPOSALS_INFLIGHT_MAX: usize = 4;

/// Alignment of every blob-log write and read (O_DIRECT). Devices that
/// report a smaller DIOALIGN still accept 4 KiB.
pub const IO_ALIGN_BYTES: usize = 4096;

/// Bytes of the fixed header in front of each blob-log record's payload.
pub const RECORD_HEADER_BYTES: usize = 64;

/// Capacity of one pooled chunk buffer: a record header plus a full chunk,
/// rounded up to the I/O alignment so the whole buffer can be written as is.
pub const CHUNK_BUF_BYTES: usize = align_up(RECORD_HEADER_BYTES + CHUNK_BYTES, IO_ALIGN_BYTES);

/// A blob-log segment is sealed and a new one started past this size.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;

/// Appends one shard's blob log runs at once, from offset reservation to
/// group-commit durability; further appends wait for a slot. Bounds the
/// commit group's waiter list and write window. 128 full chunks (128 MiB)
/// keep a disk that saturates at queue depth 1 far more than busy.
pub const BLOB_LOG_APPENDS_INFLIGHT_MAX: usize = 128;

/// Largest single object a PUT may carry (S3's limit).
pub const OBJECT_BYTES_MAX: u64 = 5 << 30;

/// Depth of each cross-core hop channel. A full channel makes the sender
/// wait; it never drops or buffers elsewhere.
pub const HOP_CHANNEL_DEPTH: usize = 64;

/// Chunk buffers kept for reuse per core; beyond this, returned buffers are
/// freed. Buffers in use are bounded by the admission budget; this bounds
/// what idles on top of it (8 MiB per core). A fresh buffer costs one
/// allocation per MiB, far below what the allocator sustains.
pub const CHUNK_POOL_BUFFERS_MAX: usize = 8;

/// Keys returned by one listing page (S3's maximum for max-keys).
pub const LIST_KEYS_MAX: usize = 1000;

/// Rounds `value` up to a multiple of `align` (a power of two).
pub const fn align_up(value: usize, align: usize) -> usize {
    (value + align - 1) & !(align - 1)
}

const _: () = assert!(CHUNK_BYTES.is_multiple_of(IO_ALIGN_BYTES));
const _: () = assert!(IO_ALIGN_BYTES.is_power_of_two());
const _: () = assert!(RECORD_HEADER_BYTES < IO_ALIGN_BYTES);
const _: () = assert!(CHUNK_BUF_BYTES >= RECORD_HEADER_BYTES + CHUNK_BYTES);
const _: () = assert!(SEGMENT_BYTES_MAX >= 64 * CHUNK_BUF_BYTES as u64);

/// Requests one shard serves at once; further ones wait in the hop channel.
pub const SHARD_OPS_INFLIGHT_MAX: usize = 512;

/// Chunk appends one upload keeps in flight while it reads the next chunk.
pub const PUT_CHUNKS_INFLIGHT_MAX: usize = 4;

/// Sealed chunks one upload may queue for the MD5 lanes behind the one they
/// hold, before it insists that the lanes run. Deeper queues let more
/// uploads' chunks share one SIMD pass, at one chunk buffer each.
pub const MD5_QUEUE_CHUNKS_MAX: usize = 3;

/// Bytes in one PUT admission unit: budgets are counted, charged and
/// released in whole chunks.
pub const ADMISSION_UNIT_BYTES: u64 = CHUNK_BYTES as u64;

/// Largest admission capacity, in units, of one shard slice or of the
/// shared pool: 2^40 MiB (1 EiB), far above any memory, so it also serves
/// as "unlimited", while unit arithmetic in bytes cannot overflow a `u64`.
pub const ADMISSION_CAPACITY_UNITS_MAX: u64 = 1 << 40;

/// Acquires one core may have waiting on one shard's budget at once; past
/// this an acquire is refused at once instead of queued, so the wait queue
/// never grows with client concurrency.
pub const ADMISSION_WAITERS_PER_GATE_MAX: usize = 1024;

/// Default longest wait for an admission unit (`--admission-timeout`):
/// a full 256 MiB budget drains in about 2 s at 1 Gbit/s; the rest covers
/// fsync stalls and raft elections.
pub const ADMISSION_WAIT_MS_DEFAULT: u64 = 30_000;

const _: () = assert!(ADMISSION_UNIT_BYTES == CHUNK_BYTES as u64);
// A slice and the shared pool together, in bytes, still fit a `u64`.
const _: () = assert!((2 * ADMISSION_CAPACITY_UNITS_MAX)
    .checked_mul(ADMISSION_UNIT_BYTES)
    .is_some());
// Charged on the owner core inside shard requests, a gate's queue can hold
// every request the shard serves at once.
const _: () = assert!(ADMISSION_WAITERS_PER_GATE_MAX >= SHARD_OPS_INFLIGHT_MAX);

/// Part numbers of a multipart upload run from 1 to this.
pub const PARTS_MAX: u32 = 10_000;

/// Largest part S3 accepts.
pub const PART_BYTES_MAX: u64 = 5 << 30;

/// Smallest part S3 accepts for every part but the last.
pub const PART_BYTES_MIN: u64 = 5 << 20;

/// Largest object a multipart upload may assemble.
pub const MULTIPART_OBJECT_BYTES_MAX: u64 = 5 << 40;

/// Largest CompleteMultipartUpload document: 10,000 parts with an ETag and
/// a SHA-256 checksum each fit in well under this.
pub const COMPLETE_BODY_BYTES_MAX: usize = 4 << 20;
