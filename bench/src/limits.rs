//! Every bound the tool enforces, in one place: sizes of the buffers it
//! reuses, caps on what it keeps per run, and the waits it allows. Related
//! limits are checked against each other at compile time below.

use std::time::Duration;

/// Payload bytes per aws-chunked chunk (`--payload chunked`).
pub const CHUNK_PAYLOAD_BYTES: usize = 64 << 10;

/// Largest object one step may PUT or GET: S3's single-PUT maximum.
pub const OBJECT_BYTES_MAX: u64 = 5 << 30;

/// Most concurrent connections one step may open.
pub const CONCURRENCY_MAX: usize = 4096;

/// Most steps one scenario may expand to (after concurrency sweeps).
pub const SCENARIO_STEPS_MAX: usize = 64;

/// Most objects a step may prepare (PUT before it reads, lists or deletes):
/// enough for a listing over 10 million (keys follow from their index, so
/// the bench holds nothing per object).
pub const PREPARE_OBJECTS_MAX: u64 = 1 << 24;

/// Most retries of one operation (`--retries`).
pub const RETRIES_MAX: u32 = 16;
/// First retry backoff; each later one doubles, up to the max.
pub const RETRY_BACKOFF_FIRST: Duration = Duration::from_millis(50);
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How long a PUT with `Expect: 100-continue` waits for `100 Continue`
/// before sending its body anyway (as curl does).
pub const EXPECT_CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// Default limit on one request, connect included (`--request-timeout`).
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(120);

/// Bytes of an error response kept to find its `<Code>`; the rest is drained.
pub const ERROR_BODY_BYTES_MAX: usize = 16 << 10;

/// Distinct S3 error codes counted by name; later ones count as `other`.
pub const ERROR_CODES_DISTINCT_MAX: usize = 32;

/// Transport error messages kept as samples per step.
pub const ERROR_SAMPLES_MAX: usize = 8;

/// One-second throughput buckets kept per step: one hour.
pub const TIMELINE_BUCKETS_MAX: usize = 3600;

/// Highest latency the histograms track, in microseconds: one hour.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant decimal digits the latency histograms keep.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Points of a latency CDF written to the JSON result.
pub const CDF_POINTS_MAX: usize = 256;

/// How often the live progress bar redraws.
pub const PROGRESS_TICK: Duration = Duration::from_millis(250);

/// Default scratch file size of the disk probe (`ceiling --size`).
pub const DISK_PROBE_BYTES_DEFAULT: u64 = 1 << 30;

/// Hash probe: bytes hashed per update call, and how long each measure runs.
pub const HASH_BLOCK_BYTES: usize = 1 << 20;
pub const CPU_PROBE_TIME: Duration = Duration::from_millis(700);

/// Loopback probe: bytes per `write(2)` and read, and how long it runs.
pub const LOOPBACK_IO_BYTES: usize = 1 << 20;
pub const LOOPBACK_PROBE_TIME: Duration = Duration::from_millis(1500);

/// The sink reads request bodies into nothing; GETs get this many bytes at
/// most from one reused buffer (`sink --object-size`).
pub const SINK_OBJECT_BYTES_MAX: u64 = 1 << 30;

/// Attempts in flight from the workers to the step's collector task.
pub const ATTEMPT_CHANNEL_DEPTH: usize = 4096;

/// Most connections a prepare phase (PUTs before a read step) opens.
pub const PREPARE_CONCURRENCY_MAX: usize = 32;

/// Longest a scrape of the server's metrics (`--server-metrics`) may
/// take, before and after each step.
pub const SERVER_METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys one ListObjectsV2 request asks for.
pub const LIST_MAX_KEYS: u32 = 1000;
/// Most bytes of one listing page kept to read its keys and token: a
/// 1,000-key page with 1 KiB keys and their metadata fits; a larger one
/// ends its listing as incomplete.
pub const LIST_PAGE_BYTES_MAX: usize = 4 << 20;

/// Width of the intervals whose slowest, median and fastest throughput a
/// step reports (`--interval`): the default, and the narrowest allowed
/// (timer and scheduling noise dominate below it; with
/// `TIMELINE_BUCKETS_MAX` buckets it covers six minutes).
pub const INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
pub const INTERVAL_MIN: Duration = Duration::from_millis(100);

/// Constant-rate mode (`--rate`): the highest rate a step may ask for; how
/// long before an operation's intended time its worker's timer is set
/// (tokio's timers have a 1 ms grain and fire up to a grain late); and how
/// late after its intended time an operation may start and still count as
/// on time.
pub const RATE_MAX: f64 = 1_000_000.0;
pub const RATE_TIMER_SLACK: Duration = Duration::from_millis(1);
pub const RATE_LATE_TOLERANCE: Duration = Duration::from_millis(1);

/// Most buckets a run spreads its keys over (`--buckets`).
pub const BUCKETS_MAX: u32 = 1024;

/// Largest weight of one operation in a mixed step's `--mix`.
pub const MIX_WEIGHT_MAX: u32 = 1_000_000;

const _: () = assert!(DISK_PROBE_BYTES_DEFAULT.is_multiple_of(shoal_disk_probe::IO_BYTES as u64));
const _: () = assert!(RETRY_BACKOFF_FIRST.as_nanos() <= RETRY_BACKOFF_MAX.as_nanos());
const _: () = assert!(
    CHUNK_PAYLOAD_BYTES >= 8 << 10,
    "S3 wants aws-chunked chunks of at least 8 KiB"
);
const _: () = assert!(CDF_POINTS_MAX >= 2);
const _: () = assert!(INTERVAL_MIN.as_nanos() <= INTERVAL_DEFAULT.as_nanos());
const _: () = assert!(PREPARE_CONCURRENCY_MAX <= CONCURRENCY_MAX);
