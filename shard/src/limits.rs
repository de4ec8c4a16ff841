//! Every size, deadline and bound a shard relies on, in one place, each
//! with its reason.
//!
//! Related limits are checked against each other at compile time, so a
//! change that breaks an invariant fails the build instead of a disk.

use std::time::Duration;

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

/// Bytes one shard's metadata store may hold in memtables, over all its
/// column families, before rocksdb flushes the largest. Bounds a node's
/// metadata memory at this times its shards (plus rocksdb's caches); a
/// flush writes an L0 file in the background.
pub const SHARD_MEMTABLES_BYTES_MAX: usize = 32 << 20;

/// Largest object body `--embed-max` lets a manifest carry. An embedded
/// body travels in raft entries, the metadata store and snapshots (which
/// are built in memory), so it stays small: past a few KiB a chunk's
/// record costs less than the metadata store's write amplification.
pub const EMBEDDED_BYTES_MAX: u64 = 64 << 10;

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
/// freed. A buffer is only ever allocated when the pool is empty, so
/// buffers in use plus idle never exceed the most ever in use at once
/// (bounded by the admission budget); this bounds what stays resident after
/// a burst (64 MiB per core). A fresh buffer is a new mapping: 256 page
/// faults, zeroing and a later unmap, which at 8 idle buffers cost 16
/// uploads of 64 MiB on 2 cores 6 % of the server's CPU.
pub const CHUNK_POOL_BUFFERS_MAX: usize = 64;

/// Keys returned by one listing page (S3's maximum for max-keys).
pub const LIST_KEYS_MAX: usize = 1000;

/// A listing page asks for a compaction of its bucket's range when it
/// stepped over at least one overwritten or deleted entry for every this
/// many keys it returned (`meta/read_compaction.rs`). One hidden entry per
/// two keys listed costs a listing about 5 % (the ~15 % measured at up to
/// four per key, `docs/benchmarks.md`); below that, rocksdb's own
/// compactions are cheaper than ours.
pub const READ_COMPACTION_LISTED_PER_HIDDEN: u64 = 2;
/// Pages shorter than this never ask (too few keys to judge by).
pub const READ_COMPACTION_LISTED_MIN: u64 = 100;
/// Least time between two compactions listings of one store ask for: a
/// bucket listed in a loop while it is rewritten must not keep rocksdb
/// compacting. A compaction of a million keys' range takes seconds.
pub const READ_COMPACTION_INTERVAL_MIN: Duration = Duration::from_secs(300);

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

/// Scheduler shares of a shard's background task queue (catch-up, audit,
/// reaper, quorum watch) against the request queue's 1,000: under load
/// background work gets about a tenth of the core, and all of it when idle.
pub const BACKGROUND_TASK_SHARES: usize = 100;

/// Longest a stopping shard waits for background work in progress (one
/// chunk fetch, one page of the audit, one reaped upload) to finish.
pub const BACKGROUND_STOP_WAIT_MAX: Duration = Duration::from_secs(5);

// ---- Deadlines: how long a shard waits for its group ----

/// How long a read waits for this node to apply up to the read index
/// before it gives up with [`crate::error::ShardError::NotCurrent`].
pub const READ_APPLY_WAIT_MAX: Duration = Duration::from_secs(5);

/// How long a follower waits to apply a write it forwarded to the leader.
pub const FORWARDED_APPLY_WAIT_MAX: Duration = Duration::from_secs(5);

/// How long [`crate::ops::ShardRequest::Snapshot`] waits for the snapshot.
pub const SNAPSHOT_WAIT_MAX: Duration = Duration::from_secs(60);

/// How long [`crate::raft::ShardRaft::start`] waits for a leader. A single member
/// elects itself at once; a restarted one resumes leadership at once.
pub const LEADER_WAIT_MAX: Duration = Duration::from_secs(10);

/// Deadline of one install-snapshot RPC: one chunk, or the last one and
/// the install it triggers on the receiver. Two shards of 5 million
/// objects each were received and installed in 15 s on 2 cores, so this
/// leaves room for shards several times larger.
pub const INSTALL_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Bytes of one snapshot chunk: what one install-snapshot RPC carries and
/// the most either end holds of a snapshot being sent or received.
pub const SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;

/// Bytes of records an installing snapshot writes per rocksdb batch (one
/// blocking job): what an install holds in memory, whatever the shard's
/// size.
pub const SNAPSHOT_INSTALL_BATCH_BYTES: usize = 8 << 20;

/// Largest record (key and value) a snapshot file may hold: a 5 TiB
/// multipart object's manifest names ~5.2 million chunks of ~44 bytes.
/// A longer length in a file is damage, not a record to allocate for.
pub const SNAPSHOT_RECORD_BYTES_MAX: usize = 256 << 20;

/// Share of the last snapshot's size the raft log must grow by before the
/// next snapshot (see `raft::snapshot_pace`): at one half, snapshots cost
/// at most twice the log bytes they let go of.
pub const SNAPSHOT_LOG_SHARE: f64 = 0.5;

/// How often each group checks whether a snapshot is due.
pub const SNAPSHOT_PACE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a group keeps serving its previous snapshot, without trying to
/// build a new one, after a build found the disk full.
pub const SNAPSHOT_NO_SPACE_PAUSE: Duration = Duration::from_secs(60);

/// Longest a leader that stops waits for the member it hands the group
/// to to hold every entry it has, before it asks it to stand.
pub const HANDOVER_CATCH_UP_MAX: Duration = Duration::from_secs(2);

/// Longest a leader that stops waits for that member to win the election;
/// past it the node stops anyway and the group elects on its own.
pub const HANDOVER_ELECTION_MAX: Duration = Duration::from_secs(3);

/// How long [`crate::raft::ShardRaft::shutdown`] waits for openraft's tasks to drop
/// their store handles after the raft core has stopped.
pub const SHUTDOWN_RELEASE_WAIT_MAX: Duration = Duration::from_secs(5);

/// How often a handover looks whether the proposals in flight are done.
pub const PROPOSALS_SETTLE_POLL: Duration = Duration::from_millis(5);

/// Entries a shard's proposer keeps in openraft at once. openraft 0.9
/// syncs each entry's log write by itself, one after another; a second
/// entry lets the next sync start while the first is replicated and
/// applied, and more than a few only split the waiting commands into
/// smaller entries.
pub const PROPOSAL_ENTRIES_IN_FLIGHT_MAX: usize = 2;

/// Commands one entry carries at most when concurrent proposals are
/// grouped (`raft::proposer`): far above what the connection slots of a
/// core send at once, so in practice every waiting command joins.
pub const PROPOSAL_BATCH_COMMANDS_MAX: usize = 256;

/// Encoded bytes of the commands one grouped entry carries at most (a
/// single command may be larger, and goes alone): a follower decodes and
/// applies the whole entry at once, and replication sends up to
/// `crate::raft::REPLICATION_ENTRIES_MAX` entries per message, sized for
/// entries of at most [`INLINE_ENTRY_BYTES_MAX`].
pub const PROPOSAL_BATCH_BYTES_MAX: usize = 1 << 20;
const _: () = assert!(PROPOSAL_BATCH_BYTES_MAX <= INLINE_ENTRY_BYTES_MAX);
// A manifest with the largest embedded body still fits a batch.
const _: () = assert!(EMBEDDED_BYTES_MAX as usize * 4 <= PROPOSAL_BATCH_BYTES_MAX);

// ---- Peers: connections, retries and caches ----

/// Longest wait for a TCP connection and its handshake.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest a new connection may take to prove the secret.
pub const PEER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a question a live peer answers from memory (its capabilities,
/// a read index) may take, connecting included.
pub const PEER_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest a data call to a peer may take, connecting included: a push or
/// fetch (1 MiB over the wire and the peer's fdatasync), a forwarded
/// append (the leader's own replication) or proposal (a commit). Past it
/// the peer counts as slow: a push counts as not stored there, a forward
/// answers 503, a fetch tries the next member.
pub const PEER_DATA_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Pushes one shard keeps in flight to one member (each holds a 1 MiB
/// copy): past it, chunks reach that member by catch-up instead, so a
/// stalled member cannot make a leader hold copies without bound.
pub const PUSHES_INFLIGHT_PER_PEER_MAX: usize = 16;

/// Connections one shard's peer port keeps open at most; more are closed
/// as they arrive. Each member needs a few (raft, pooled pushes and
/// fetches, up to [`PUSHES_INFLIGHT_PER_PEER_MAX`] pushes at once), so
/// this is room for dozens of members, not a tuning knob.
pub const PEER_CONNECTIONS_PER_SHARD_MAX: usize = 512;

/// A peer connection that sends no frame (or stops within one) this long
/// is closed by the port.
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A pooled connection idle this long is closed instead of reused, well
/// before the other side's [`PEER_IDLE_TIMEOUT`] closes it under a request.
pub const PEER_POOLED_IDLE_MAX: Duration = Duration::from_secs(60);

/// Pause between attempts of a node to join through its contact.
pub const JOIN_RETRY_PAUSE: Duration = Duration::from_millis(300);

/// How often a node that cannot get in says why, at warn.
pub const JOIN_WARN_INTERVAL: Duration = Duration::from_secs(5);

/// How long a peer's advertised capabilities are trusted before they are
/// asked again (a member restarted with other flags is noticed this late;
/// meanwhile it still accepts both forms).
pub const CAPABILITIES_TTL: Duration = Duration::from_secs(5);

/// Idle connections to one peer address kept for reuse by pushes,
/// fetches and forwards; more are closed when returned.
pub const IDLE_CONNECTIONS_PER_PEER_MAX: usize = 8;

// ---- Background work: catch-up, audit, reaper, usage ----

/// How long an offered chunk waits before a worker looks for it: pushes
/// to a slow replica finish meanwhile.
pub const CATCHUP_DELAY: Duration = Duration::from_secs(2);

/// Chunks waiting at most (~40 bytes each: 1 TiB of chunks in 40 MiB).
/// Offers beyond it are dropped and counted; reads still fetch them.
pub const CATCHUP_QUEUE_MAX: usize = 1 << 20;

/// Fetches one shard runs at once.
pub const CATCHUP_WORKERS: usize = 4;

/// How long after start the chunk audit begins (the group settles first).
pub const AUDIT_DELAY: Duration = Duration::from_secs(5);

/// Manifests and parts the audit reads per page.
pub const AUDIT_RECORDS_PER_PAGE: usize = 256;

/// Queue length above which the audit waits for the fetches.
pub const AUDIT_QUEUE_HIGH: usize = 4096;

/// How often a cluster shard checks that its group has a quorum.
pub const QUORUM_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// How often a follower looks whether its leader has been silent past its
/// lease (`crate::raft::leadership`): the failover's resolution.
pub const LEADER_WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// How often a request forwarded to the leader looks whether the group
/// has moved on to another (then it gives up, and the client retries).
pub const LEADER_CHANGE_POLL: Duration = Duration::from_millis(50);

/// How often a leader looks whether its group's preferred leader could
/// take over (balance after a member returns).
pub const LEADER_BALANCE_INTERVAL: Duration = Duration::from_secs(5);

/// Uploads the reaper reads per scan of the store.
pub const REAP_BATCH_MAX: usize = 256;

/// Oldest bucket-usage scan a metrics scrape takes without starting a
/// new one.
pub const USAGE_AGE_MAX: Duration = Duration::from_secs(60);

// ---- Scrub ----

/// How long after start a shard's first scrub pass begins, unless one is
/// asked for sooner (`shoal-ctl scrub --now`).
pub const SCRUB_START_DELAY: Duration = Duration::from_secs(300);

/// Least time from the start of one scrub pass to the start of the next:
/// a small store is not re-read over and over; a large one is read
/// continuously at `--scrub-rate`.
pub const SCRUB_PASS_INTERVAL_MIN: Duration = Duration::from_secs(24 * 3600);

/// How often a waiting scrub looks whether a pass was asked for.
pub const SCRUB_REQUEST_POLL: Duration = Duration::from_secs(1);

/// Index records the scrub reads per page.
pub const SCRUB_RECORDS_PER_PAGE: usize = 256;

/// Findings (damage found by the scrub) each shard keeps for `shoal-ctl
/// scrub`, newest last; older ones stay in the log only.
pub const SCRUB_FINDINGS_KEPT: usize = 64;

/// Objects named per unrepaired chunk in its log line and finding.
pub const SCRUB_NAMES_MAX: usize = 8;

// ---- Garbage collection ----

/// Chunks one collect entry names at most: 1,000 hashes with their indexes
/// are ~42 KiB, one small raft entry.
pub const GC_COLLECT_PER_ENTRY_MAX: usize = 1000;

/// How often a leader looks for chunks whose grace has passed, at most
/// (a quarter of `--gc-grace` when that is shorter).
pub const GC_SCAN_INTERVAL_MAX: Duration = Duration::from_secs(60);

/// Default `--gc-grace`: how long a chunk stays after its last ref is
/// dropped before it is collected.
pub const GC_GRACE_DEFAULT: Duration = Duration::from_secs(3600);

/// Chunks a shard keeps pinned at most (`crate::pins`): ~100 bytes each,
/// so 100 MiB at most. In-flight PUTs pin far fewer (their chunks are
/// bounded by the admission budget); the rest are claims of PUTs that never
/// committed, until they lapse.
pub const PINS_MAX: usize = 1 << 20;

/// Index entries the sweeper reads per step (one rocksdb call each).
pub const SWEEP_PAGE_ENTRIES: usize = 1024;

/// Unreferenced chunks the sweeper remembers between passes at most; more
/// wait for a later pass.
pub const SWEEP_CANDIDATES_MAX: usize = 1 << 18;

/// Sealed segments the reclaimer looks at per pass at most, so one pass
/// stays short beside requests.
pub const RECLAIM_SEGMENTS_PER_PASS_MAX: usize = 64;

/// Dead bytes the newest segment must hold (and at least half of what
/// was written to it) before the reclaimer seals it early, so a lightly
/// written shard does not keep up to a whole `--segment-size` of dead
/// bytes.
pub const TAIL_SEAL_DEAD_BYTES_MIN: u64 = 16 << 20;

/// Dead bytes a sealed segment must still hold allocated before the
/// reclaimer punches it again: below this the syscalls cost more than the
/// space is worth.
pub const RECLAIM_DEAD_BYTES_MIN: u64 = 1 << 20;

/// Zero-reference chunks counted per sweep for `shoal_gc_chunks_queued`
/// at most: the count is a scan of the zero list, so it stays bounded (a
/// gauge at this value means "at least").
pub const GC_QUEUED_COUNT_MAX: u64 = 1 << 20;

/// Where holes cannot be punched, the share of a sealed segment's bytes
/// (percent) that must be dead before its live records are copied
/// forward: at half, copying costs at most as much as it frees.
pub const COMPACT_DEAD_PERCENT_MIN: u64 = 50;

/// Segments compacted per reclaimer pass at most, so copying stays a
/// background trickle beside PUTs.
pub const COMPACT_SEGMENTS_PER_PASS_MAX: u64 = 1;

/// How often a shard whose blob log found the disk full tries to take
/// appends again (each try truncates the newest segment after its last
/// valid record, a scan of at most one segment).
pub const OUT_OF_SPACE_RETRY: Duration = Duration::from_secs(2);

/// How long a raft write (log append, vote, applied batch) waits for disk
/// space before the group gives up and stops: long enough for an operator
/// to delete their way out, short of hiding a node that never recovers.
pub const META_OUT_OF_SPACE_WAIT_MAX: Duration = Duration::from_secs(3600);
