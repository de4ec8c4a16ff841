//! Every bound and deadline of the node around its shards, in one place
//! (the shards' own are in `shoal_shard::limits`).

use std::time::Duration;

/// io_uring buffer memory per executor. Three rings register it, and the
/// memlock limit (8 MiB here, shared by all executors of the user) must
/// hold every core's share; chunk buffers are larger and never come from it.
pub const IO_MEMORY_BYTES: usize = 1 << 20;

/// Threads that run blocking rocksdb calls for one executor.
pub const BLOCKING_THREADS_PER_CORE: usize = 2;

/// Connections one core serves at once; more wait in the accept queue.
pub const CONNECTIONS_PER_CORE_MAX: u64 = 4096;

/// A client that has not finished the TLS handshake this long after its
/// connection was accepted is dropped (its connection slot is needed).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that takes longer than this to send its request headers is
/// dropped (an idle keep-alive connection waits for the next request's
/// headers, so it is closed after this long too).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Free connection slots of a core, as a fraction of
/// [`CONNECTIONS_PER_CORE_MAX`] (1/8), below which its slots count as
/// scarce.
pub const CONNECTION_SLOTS_SCARCE_BELOW: u64 = CONNECTIONS_PER_CORE_MAX / 8;

/// While slots are scarce, how long a connection may wait for a request's
/// headers (idle or half-sent) before it is dropped to make room.
pub const HEADER_WAIT_WHEN_SCARCE: Duration = Duration::from_secs(2);

/// The most one socket read asks for. hyper offers uninitialised buffer
/// space that must be zeroed before the kernel may fill it; 64 KiB keeps
/// that zeroing in cache and far below the cost of the receive copy.
pub const RECV_SLICE_MAX: usize = 64 * 1024;

/// How often a connection waiting for headers looks whether slots have
/// become scarce.
pub const SLOTS_SCARCE_CHECK: Duration = Duration::from_millis(500);

/// A response the client reads nothing of for this long (the socket stays
/// full) is abandoned and its connection closed, so a client that stops
/// reading cannot keep a GET's buffers and a connection slot.
pub const RESPONSE_WRITE_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// After a response that closes the connection, how long and how much of
/// the client's still-arriving body is read and dropped so it can see the
/// response (enough for a 64 MiB body on loopback).
pub const LINGER_TIME_MAX: Duration = Duration::from_secs(2);
pub const LINGER_BYTES_MAX: u64 = 128 << 20;
pub const LINGER_READ_BYTES: usize = 8 * 1024;

/// Largest read buffer hyper keeps per connection. Body bytes are copied
/// out of it into charged chunk buffers at once, so it only needs to be big
/// enough for efficient reads; left at hyper's default (~400 KiB, grown in
/// doublings) it would add up to far more than the admission budget with
/// hundreds of uploads in progress.
pub const HTTP_READ_BUFFER_BYTES_MAX: usize = 128 * 1024;

/// How long the check that nothing else listens on one of the node's
/// addresses waits for an answer.
pub const LISTEN_PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long an address must keep answering to count as another process's
/// (a listener of a process killed a moment ago answers for a few ms).
pub const LISTEN_TAKEN_AFTER: Duration = Duration::from_secs(1);

/// How long a joining node keeps asking to be added to each shard's group.
pub const JOIN_WAIT_MAX: Duration = Duration::from_secs(120);

/// How often each core looks whether a stop was asked for (a signal
/// thread cannot wake a glommio executor directly).
pub const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Longest a core waits, once the shutdown timeout has passed, for the
/// connections it cut to be gone (each goes at its next poll).
pub const CUT_CONNECTIONS_WAIT_MAX: Duration = Duration::from_secs(1);

/// Refused requests (auth failures, admission rejections) each core logs
/// per second at most; the rest are counted and the count is logged with
/// the next line.
pub const REFUSALS_LOGGED_PER_S_MAX: u32 = 10;

/// Log lines waiting for the writer thread at most. Executors never wait
/// on stderr: beyond this, lines are dropped (and counted).
pub const LOG_LINES_BUFFERED_MAX: usize = 65_536;

/// Largest body an admin request may carry (a key pair in JSON).
pub const ADMIN_BODY_BYTES_MAX: usize = 16 * 1024;
/// Longest an admin request's body may take to arrive.
pub const ADMIN_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

// ---- S3 request bodies and documents ----

/// Longest object key S3 accepts, in UTF-8 bytes.
pub const KEY_BYTES_MAX: usize = 1024;

/// Largest CreateBucket body we read (a CreateBucketConfiguration).
pub const CREATE_BUCKET_BODY_BYTES_MAX: usize = 64 * 1024;

/// Largest AccessControlPolicy document read.
pub const ACL_BODY_BYTES_MAX: usize = 64 * 1024;

/// Most tags on one object version, and on one bucket (S3's limits).
pub const OBJECT_TAGS_MAX: usize = 10;
pub const BUCKET_TAGS_MAX: usize = 50;
/// Longest tag key and value, in characters (S3's limits).
pub const TAG_KEY_CHARS_MAX: usize = 128;
pub const TAG_VALUE_CHARS_MAX: usize = 256;
/// Largest Tagging document read (50 tags of the longest keys and values,
/// UTF-8 and markup, fit).
pub const TAGGING_BODY_BYTES_MAX: usize = 256 * 1024;

/// Object versions and uploads the lifecycle worker reads per second on
/// each shard it leads: a pass over a million versions takes under two
/// minutes, and never crowds out requests.
pub const LIFECYCLE_EXAMINED_PER_S: usize = 10_000;

/// Most rules in one lifecycle configuration (S3's limit), and the
/// largest configuration document read.
pub const LIFECYCLE_RULES_MAX: usize = 1000;
pub const LIFECYCLE_BODY_BYTES_MAX: usize = 1024 * 1024;

/// Most bytes of a browser upload form before its file part (the fields,
/// the policy document, the part headers): read whole before the policy
/// is checked, so bounded like an XML document (S3 allows about 20 KB of
/// policy).
pub const POST_FORM_FIELDS_BYTES_MAX: usize = 64 * 1024;

/// Largest bucket policy document (S3's limit).
pub const POLICY_BODY_BYTES_MAX: usize = 20 * 1024;

/// Largest ServerSideEncryptionConfiguration document read (one rule
/// takes a few hundred bytes).
pub const ENCRYPTION_BODY_BYTES_MAX: usize = 16 * 1024;

/// Largest OwnershipControls document read (one rule).
pub const OWNERSHIP_BODY_BYTES_MAX: usize = 4 * 1024;

/// Most rules in one CORS configuration, and the largest configuration
/// document read (S3's limits).
pub const CORS_RULES_MAX: usize = 100;
pub const CORS_BODY_BYTES_MAX: usize = 64 * 1024;

/// Largest ObjectLockConfiguration, Retention or LegalHold document read.
pub const OBJECT_LOCK_BODY_BYTES_MAX: usize = 4 * 1024;

/// Largest VersioningConfiguration document read.
pub const VERSIONING_BODY_BYTES_MAX: usize = 4 * 1024;

/// Most grants one ACL may hold (S3's limit).
pub const GRANTS_MAX: usize = 100;

/// Most keys one DeleteObjects request may name (S3's limit).
pub const DELETE_KEYS_MAX: usize = 1000;

/// Largest DeleteObjects body read: 1000 keys of 1024 bytes with their
/// markup.
pub const DELETE_BODY_BYTES_MAX: usize = 2 << 20;

/// Longest chunk-size line without its CRLF. A signed line is at most 97
/// bytes (16 hex digits, `;chunk-signature=`, 64 hex); the rest is room for
/// extensions some unsigned clients add.
pub const CHUNK_LINE_BYTES_MAX: usize = 4096;

/// Longest trailer line without its CRLF.
pub const TRAILER_LINE_BYTES_MAX: usize = 4096;

/// Most trailer lines, the signature line included.
pub const TRAILER_LINES_MAX: usize = 16;

// ---- Authentication ----

/// Largest accepted gap between a header-signed request's time and the
/// server clock, and how far in the future a presigned URL may start (AWS
/// uses 15 minutes for both).
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(15 * 60);

/// Longest `X-Amz-Expires` of a presigned URL: seven days, as in AWS.
pub const PRESIGNED_EXPIRES_S_MAX: u64 = 7 * 24 * 60 * 60;

/// Client text quoted inside an authentication error is clipped to this many bytes.
pub const ECHO_BYTES_MAX: usize = 128;

// ---- Answers ----

/// `Retry-After` of a `SlowDown` is drawn from
/// `RETRY_AFTER_S_MIN..RETRY_AFTER_S_MIN + RETRY_AFTER_S_SPREAD` seconds.
pub const RETRY_AFTER_S_MIN: u64 = 1;
/// See [`RETRY_AFTER_S_MIN`]: spread so refused clients do not all come
/// back in the same second.
pub const RETRY_AFTER_S_SPREAD: u64 = 3;

/// A member heard from within this window counts as live (`shoal-ctl
/// cluster`): a few leader heartbeats, and within the shortest election
/// timeout.
pub const MEMBER_LIVE_WINDOW_MS: u64 = 1_500;

/// Size of the ballast file a node keeps in its data directory while space
/// allows, and deletes at start when the disk is full, so that its
/// metadata stores can open and record deletes (see `disk_space`).
pub const BALLAST_BYTES: u64 = 64 << 20;

/// How often the disk space watcher measures the data directory's
/// filesystem. A PUT admitted just before the disk fell below the reserve
/// may still use some of it: the reserve must cover what arrives in this
/// interval.
pub const DISK_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Metadata headroom in the default `--disk-reserve` (two segments plus
/// this).
pub const DISK_RESERVE_METADATA_BYTES: u64 = 256 << 20;

/// Default share of `--get-budget` per core: chunk bytes one core's GETs
/// may hold (each holds at most two chunks: one read ahead, one being
/// sent), so 32 downloads of large objects per core stream at full speed
/// and more wait or get 503 instead of growing memory.
pub const GET_BUDGET_PER_CORE_DEFAULT: u64 = 64 << 20;

/// Chunks up to this size take from the download budget's small lane (an
/// eighth of it), so small GETs never wait behind large ones.
pub const SMALL_CHUNK_BYTES_MAX: u64 = 64 << 10;

/// The smallest share of `--get-budget` a core may have: one GET's two
/// chunks for large ones (after the small lane's eighth), with room to spare.
pub const GET_BUDGET_PER_CORE_MIN: u64 = 4 * shoal_shard::limits::CHUNK_BYTES as u64;

/// Writes (each followed by `fdatasync`) `shoal preflight` times per data
/// directory for its sync latency figure.
pub const PREFLIGHT_SYNC_PROBES: usize = 200;
/// `shoal preflight`'s sync probe stops early after this long on a slow disk.
pub const PREFLIGHT_SYNC_PROBE_TIME_MAX: Duration = Duration::from_secs(5);
