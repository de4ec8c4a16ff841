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

/// A client that takes longer than this to send its request headers is
/// dropped.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
