//! Command-line flags and their validation into a typed [`NodeConfig`].
//!
//! Configuration flows one way: clap parses raw [`ServeFlags`] (each flag
//! also reads a `SHOAL_*` environment variable), [`ServeFlags::validate`]
//! turns them into a [`NodeConfig`] with typed values, and each core gets a
//! read-only copy at start. A validation error names the flag and its value.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use shoal_shard::ids::NodeId;
use shoal_shard::limits::CHUNK_BYTES;

use crate::limits::{GET_BUDGET_PER_CORE_DEFAULT, GET_BUDGET_PER_CORE_MIN};

/// `--version`: the package version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SHOAL_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "shoal", version = VERSION, about = "Thread-per-core S3 storage node")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: one executor per core, one S3 listener per core.
    Serve(ServeFlags),
    /// Check this host and its data directories before deploying a node:
    /// filesystem, O_DIRECT, io_uring, limits, free space, the disk's rates
    /// and sync latency, CPU governor. Exits 1 when a check fails.
    Preflight(PreflightFlags),
}

#[derive(Debug, Args)]
pub struct PreflightFlags {
    /// The node's config file: its `data-dir`, `disk-reserve` and
    /// `segment-size` are checked (other keys are ignored).
    #[arg(long, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Data directories to check, as `shoal serve` takes them.
    #[arg(long, env = "SHOAL_DATA_DIR", default_value = "./data", action = clap::ArgAction::Append, value_delimiter = ',')]
    pub data_dir: Vec<PathBuf>,

    /// Free space the node will keep; default as `shoal serve`'s.
    #[arg(long, env = "SHOAL_DISK_RESERVE", value_parser = parse_bytes)]
    pub disk_reserve: Option<u64>,

    /// Segment size the node will use (sets the default reserve).
    #[arg(long, env = "SHOAL_SEGMENT_SIZE", default_value = "1GiB", value_parser = parse_bytes)]
    pub segment_size: u64,

    /// Bytes the rate probe writes, then reads, in each data directory.
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes)]
    pub probe_size: u64,
}

impl PreflightFlags {
    /// The reserve `shoal serve` would keep with the same settings.
    pub fn reserve_bytes(&self) -> u64 {
        self.disk_reserve
            .unwrap_or(default_reserve_bytes(self.segment_size))
    }
}

#[derive(Debug, Args)]
pub struct ServeFlags {
    /// TOML file of settings: each key is a long flag without its dashes
    /// (`s3-addr = "0.0.0.0:9000"`). Flags and `SHOAL_*` variables
    /// override it. See `docs/shoal.example.toml`.
    #[arg(long, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Directory for blob logs, metadata and generated credentials. Give it
    /// once per NVMe device (or comma-separated): shards are spread over
    /// the directories, each shard on one, fixed when the node is created.
    /// A missing one is created when its parent exists (or with `--init`).
    #[arg(long, env = "SHOAL_DATA_DIR", default_value = "./data", action = clap::ArgAction::Append, value_delimiter = ',')]
    pub data_dir: Vec<PathBuf>,

    /// Create the data directory and any missing parents.
    #[arg(long, env = "SHOAL_INIT")]
    pub init: bool,

    /// Address of the S3 API (one SO_REUSEPORT listener per core).
    #[arg(long, env = "SHOAL_S3_ADDR", default_value = "127.0.0.1:9000")]
    pub s3_addr: SocketAddr,

    /// Address of the admin endpoint (`/healthz`, `/metrics`).
    #[arg(long, env = "SHOAL_ADMIN_ADDR", default_value = "127.0.0.1:9001")]
    pub admin_addr: SocketAddr,

    /// Region this node signs and answers for.
    #[arg(long, env = "SHOAL_REGION", default_value = "us-east-1")]
    pub region: String,

    /// CPUs to run on: a count (`4`), a list (`0,2`) or ranges (`0-3`).
    /// Default: every CPU this process may use.
    #[arg(long, env = "SHOAL_CORES")]
    pub cores: Option<String>,

    /// Number of shards (fixed when the data directory is created).
    /// Default: the number of cores.
    #[arg(long, env = "SHOAL_SHARDS")]
    pub shards: Option<u16>,

    /// Access key id. Without one (and no secret), a key pair is generated on
    /// first start, kept in the data directory and printed once.
    #[arg(long, env = "SHOAL_ACCESS_KEY")]
    pub access_key: Option<String>,

    /// Secret access key belonging to `--access-key`.
    #[arg(long, env = "SHOAL_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// TOML file of users to create at start when missing:
    /// `[[user]] name = "…" access_key = "…" secret_key = "…"` entries.
    /// Existing users and keys are left as they are.
    #[arg(long, env = "SHOAL_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Bearer token the admin endpoint requires for `/admin/*` (users,
    /// budgets). Without one, anyone who reaches `--admin-addr` may manage
    /// users: keep that address private.
    #[arg(long, env = "SHOAL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Id of this node in its cluster (unique, not 0).
    #[arg(long, env = "SHOAL_NODE_ID", default_value_t = 1)]
    pub node_id: u64,

    /// Address other nodes reach this one at: shard i listens on this
    /// port + i. Needs `--cluster-secret-file`. Without it the node runs
    /// on its own.
    #[arg(long, env = "SHOAL_PEER_ADDR")]
    pub peer_addr: Option<SocketAddr>,

    /// Peer address of any member of the cluster to join. The first node
    /// of a cluster starts without it.
    #[arg(long, env = "SHOAL_JOIN")]
    pub join: Option<String>,

    /// File holding the secret (16 bytes or more) every peer connection
    /// proves.
    #[arg(long, env = "SHOAL_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,

    /// Nodes (this one included) a chunk must be durable on before its
    /// refs are committed; 0 = the raft quorum. With fewer reachable (but
    /// at least 2) the write proceeds and is counted as degraded.
    #[arg(long, env = "SHOAL_MIN_BLOB_REPLICAS", default_value_t = 0)]
    pub min_blob_replicas: usize,

    /// Keep chunk bytes out of raft (true): a leader pushes them to the
    /// replicas beside the log, and raft carries refs only. With false this
    /// node does not advertise the capability, and any leader of a group it
    /// belongs to writes chunk bytes inside raft entries (inline mode).
    #[arg(long, env = "SHOAL_BLOB_OFFLOAD", default_value_t = true, action = clap::ArgAction::Set)]
    pub blob_offload: bool,

    /// Pace of the background fetches a node makes from each peer for
    /// chunks it missed (e.g. `128MiB` per second; `0` = unpaced).
    #[arg(long, env = "SHOAL_CATCHUP_RATE", default_value = "128MiB", value_parser = parse_bytes)]
    pub catchup_rate: u64,

    /// Pace at which the node re-reads its stored chunks to find damage
    /// (e.g. `16MiB` per second, split over the shards; `0` = no scrub).
    /// The first pass starts 5 minutes after start, then one a day at most.
    #[arg(long, env = "SHOAL_SCRUB_RATE", default_value = "16MiB", value_parser = parse_bytes)]
    pub scrub_rate: u64,

    /// Raft entries applied since a shard's last snapshot before it takes a
    /// new one (and purges the log); a shard also waits until its log grew
    /// by half its last snapshot's size, so a large one does not rewrite
    /// its whole metadata over and over.
    #[arg(long, env = "SHOAL_SNAPSHOT_EVERY", default_value_t = shoal_shard::raft::SNAPSHOT_LOGS_SINCE_LAST)]
    pub snapshot_every: u64,

    /// Entries already in a snapshot that stay in the log, so a follower
    /// slightly behind catches up from the log rather than a snapshot.
    #[arg(long, env = "SHOAL_SNAPSHOT_LOGS_KEPT", default_value_t = shoal_shard::raft::LOGS_KEPT_AFTER_SNAPSHOT)]
    pub snapshot_logs_kept: u64,

    /// PUT admission budget of each shard: body bytes read but not yet
    /// durable and committed (e.g. `256MiB`; `0` = unlimited). Ignored when
    /// `--put-budget` is given. Default 256MiB. Its old name
    /// `--put-budget-per-core` (`SHOAL_PUT_BUDGET_PER_CORE`) still works.
    #[arg(long, alias = "put-budget-per-core", env = "SHOAL_PUT_BUDGET_PER_SHARD", value_parser = parse_bytes)]
    pub put_budget_per_shard: Option<u64>,

    /// PUT admission budget of the whole node, split evenly over the shards.
    #[arg(long, env = "SHOAL_PUT_BUDGET", value_parser = parse_bytes)]
    pub put_budget: Option<u64>,

    /// Node-wide overflow pool a shard may borrow from when its own slice is
    /// full, so one hot shard does not refuse PUTs while memory sits idle.
    #[arg(long, env = "SHOAL_PUT_BUDGET_SHARED", default_value = "0", value_parser = parse_bytes)]
    pub put_budget_shared: u64,

    /// Longest a PUT waits for budget before it is answered 503 SlowDown
    /// (e.g. `30s`, `500ms`).
    #[arg(long, env = "SHOAL_ADMISSION_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub admission_timeout: std::time::Duration,

    /// Chunk bytes the node's GETs may hold in memory at once (read ahead,
    /// or sent but not yet taken by the client), split evenly over the
    /// cores (e.g. `1GiB`). A GET that finds none free waits up to
    /// `--admission-timeout`, then is answered 503 SlowDown. Default
    /// 64MiB per core.
    #[arg(long, env = "SHOAL_GET_BUDGET", value_parser = parse_bytes)]
    pub get_budget: Option<u64>,

    /// Charge aws-chunked bodies per decoded MiB (true) rather than only a
    /// first unit at entry (false).
    #[arg(long, env = "SHOAL_CHUNKED_INCREMENTAL", default_value_t = true, action = clap::ArgAction::Set)]
    pub chunked_incremental: bool,

    /// Multipart uploads neither completed nor aborted this long after they
    /// were created are aborted and their parts dropped (e.g. `24h`, `7d`).
    #[arg(long, env = "SHOAL_MULTIPART_EXPIRY", default_value = "24h", value_parser = parse_duration)]
    pub multipart_expiry: std::time::Duration,

    /// How long a chunk stays after the last object or part that referred
    /// to it is gone, before it is collected and its disk space given back
    /// (e.g. `1h`, `30s`). A ref that comes back meanwhile (a PUT of the
    /// same bytes) keeps it. Also how long a chunk that no object ever
    /// referred to (an upload that failed or was cut off) stays.
    #[arg(long, env = "SHOAL_GC_GRACE", default_value = "1h", value_parser = parse_duration)]
    pub gc_grace: std::time::Duration,

    /// How often each shard's leader looks for object versions and
    /// uploads that its buckets' lifecycle rules make due (e.g. `1h`,
    /// `10m`). Each pass reads every version of buckets with rules, at a
    /// bounded rate.
    #[arg(long, env = "SHOAL_LIFECYCLE_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub lifecycle_interval: std::time::Duration,

    /// The length of a lifecycle day. For tests only, which shorten it so
    /// that rules counted in days act within seconds.
    #[arg(long, env = "SHOAL_LIFECYCLE_DAY", default_value = "24h", value_parser = parse_duration, hide = true)]
    pub lifecycle_day: std::time::Duration,

    /// Largest size of one blob log segment file (e.g. `1GiB`, `64MiB`).
    /// Space is given back by punching holes in sealed segments and by
    /// deleting segments with nothing live; a newest segment that is
    /// mostly dead is sealed early.
    #[arg(long, env = "SHOAL_SEGMENT_SIZE", default_value = "1GiB", value_parser = parse_bytes)]
    pub segment_size: u64,

    /// Free space the data directory's filesystem keeps: below it, PUTs,
    /// part uploads and copies are refused (507 InsufficientStorage)
    /// before their bodies are read, while reads, listings and deletes go
    /// on. Default: two segments plus 256MiB of metadata headroom.
    #[arg(long, env = "SHOAL_DISK_RESERVE", value_parser = parse_bytes)]
    pub disk_reserve: Option<u64>,

    /// PEM certificate chain of the S3 port: with `--tls-key`, the port
    /// speaks HTTPS only. Both files are read again on SIGHUP.
    #[arg(long, env = "SHOAL_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SHOAL_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM certificate this node presents on its peer links; with
    /// `--peer-tls-key` and `--peer-tls-ca`, every peer link is mutual TLS.
    /// It must name the IP of `--peer-addr` (subjectAltName).
    #[arg(long, env = "SHOAL_PEER_TLS_CERT")]
    pub peer_tls_cert: Option<PathBuf>,

    /// PEM private key of `--peer-tls-cert`.
    #[arg(long, env = "SHOAL_PEER_TLS_KEY")]
    pub peer_tls_key: Option<PathBuf>,

    /// PEM certificate of the cluster's CA: peers must present a
    /// certificate it signed.
    #[arg(long, env = "SHOAL_PEER_TLS_CA")]
    pub peer_tls_ca: Option<PathBuf>,

    /// Domain for virtual-hosted-style requests: `Host: bucket.<domain>`
    /// addresses `bucket`. Path-style requests keep working.
    #[arg(long, env = "SHOAL_DOMAIN")]
    pub domain: Option<String>,

    /// Also accept AWS Signature Version 2 (HMAC-SHA1) where clients still
    /// send it: `Authorization: AWS key:signature` headers, presigned URLs
    /// with `AWSAccessKeyId`, and browser upload forms (s3cmd, old SDKs).
    /// Off by default: SigV2 signs less of a request than SigV4.
    #[arg(long, env = "SHOAL_SIGV2")]
    pub sigv2: bool,

    /// File holding the SSE-S3 master key: 64 hex digits, mode 0600 (or
    /// stricter). It seals every SSE-S3 object's data key, so every node
    /// of a cluster needs the same one, and losing it loses those objects.
    /// Default: derived from `--cluster-secret-file` in a cluster; on a
    /// node on its own, `<data-dir>/sse-master-key`, created on first start.
    #[arg(long, env = "SHOAL_SSE_MASTER_KEY_FILE")]
    pub sse_master_key_file: Option<PathBuf>,

    /// Take SSE-C keys over plain HTTP. SSE-C sends the key with every
    /// request, so without `--tls-cert` such requests are refused unless
    /// TLS ends in front of the node (a proxy) or the network is trusted.
    #[arg(long, env = "SHOAL_SSE_C_OVER_HTTP")]
    pub sse_c_over_http: bool,

    /// Objects up to this size (e.g. `4KiB`; `0` turns it off) keep their
    /// bytes in their manifest, inside the raft entry and the metadata
    /// store, instead of in a blob-log chunk: one synced append per PUT
    /// instead of two. At most 64 KiB.
    #[arg(long, env = "SHOAL_EMBED_MAX", default_value = "4KiB", value_parser = parse_bytes)]
    pub embed_max: u64,

    /// Longest a request body may go without a byte arriving before the
    /// request is answered `400 RequestTimeout` and its admission budget
    /// returned, and a response without the client reading a byte before
    /// the connection is dropped (e.g. `20s`).
    #[arg(long, env = "SHOAL_BODY_IDLE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub body_idle_timeout: std::time::Duration,

    /// On SIGTERM or SIGINT, how long requests in progress may take to
    /// finish before the node stops anyway (e.g. `30s`). A second signal
    /// stops it at once.
    #[arg(long, env = "SHOAL_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,

    /// Log line format on stderr.
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level (`error`, `warn`, `info`, `debug`, `trace`) or a filter
    /// such as `info,shoal_shard::raft=debug`. openraft logs at `warn`
    /// unless the filter names it. `SHOAL_LOG` is read too.
    #[arg(long, env = "SHOAL_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log one line per S3 request (method, bucket, key, status, bytes,
    /// duration, request id, user, client address), at info on the
    /// `shoal::access` target.
    #[arg(long, env = "SHOAL_ACCESS_LOG")]
    pub access_log: bool,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses a byte size: a number with an optional unit (`B`, `KiB`, `MiB`,
/// `GiB`, `TiB`, or decimal `KB`, `MB`, `GB`, `TB`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (number, unit) =
        number_and_unit(text).ok_or_else(|| format!("{text:?} is not a size such as 256MiB"))?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{:?} is too large", text.trim()))
}

/// Splits `"256MiB"` into `(256, "MiB")`; `None` without leading digits.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    Some((digits.parse().ok()?, unit.trim()))
}

/// Parses a duration: a number with a unit (`ms`, `s`, `m`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) =
        number_and_unit(text).ok_or_else(|| format!("{text:?} is not a duration such as 30s"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(number)),
        "s" => Ok(std::time::Duration::from_secs(number)),
        "m" => Ok(std::time::Duration::from_secs(number * 60)),
        "h" => Ok(std::time::Duration::from_secs(number * 3_600)),
        "d" => Ok(std::time::Duration::from_secs(number * 86_400)),
        _ => Err(format!("{text:?} needs a unit: ms, s, m, h or d")),
    }
}

/// A flag whose value cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid --{flag} {value:?}: {reason}")]
pub struct FlagError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

/// Access key pair as configured or generated.
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub access_key: String,
    pub secret_key: String,
}

/// Validated node configuration, shared read-only by every core.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The `--config` file the settings came from, if any (for the log).
    pub config_file: Option<PathBuf>,
    /// One per device, in the order given; absolute: glommio opens files
    /// relative to nothing. The first also holds the generated credentials.
    pub data_dirs: Vec<PathBuf>,
    /// Create the data directory and its missing parents.
    pub init: bool,
    pub s3_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub region: String,
    /// CPU ids, one executor each, in shard-placement order.
    pub cpus: Vec<usize>,
    pub shards: u16,
    /// Explicit keys; `None` means load or generate them in the data dir.
    pub keys: Option<KeyPair>,
    pub node_id: NodeId,
    pub admission: AdmissionConfig,
    /// Each core's share of `--get-budget`.
    pub get_budget_per_core_bytes: u64,
    pub multipart_expiry: std::time::Duration,
    pub gc_grace: std::time::Duration,
    /// `--lifecycle-interval` and `--lifecycle-day`.
    pub lifecycle_interval: std::time::Duration,
    pub lifecycle_day: std::time::Duration,
    /// Largest size of one blob log segment.
    pub segment_bytes: u64,
    /// Free space below which requests that store bytes are refused.
    pub disk_reserve_bytes: u64,
    /// Lower-case, without a leading dot or port.
    pub domain: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub admin_token: Option<String>,
    /// `None` for a node on its own.
    pub cluster: Option<ClusterConfig>,
    /// The S3 port's certificate and key; `None`: plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    pub blob_offload: bool,
    pub catchup_bytes_per_s: u64,
    /// Each shard's share of `--scrub-rate` (0: no scrub).
    pub scrub_bytes_per_shard_s: u64,
    pub snapshot_every: u64,
    pub snapshot_logs_kept: u64,
    pub shutdown_timeout: std::time::Duration,
    /// Longest a request body may go without a byte arriving.
    pub body_idle_timeout: std::time::Duration,
    /// Largest object PutObject embeds in its manifest (0: none).
    pub embed_max_bytes: u64,
    pub access_log: bool,
    /// Accept AWS Signature Version 2 where Shoal reads it.
    pub sigv2: bool,
    /// `--sse-master-key-file`, absolute; `None`: the default.
    pub sse_master_key_file: Option<PathBuf>,
    /// Take SSE-C keys without TLS.
    pub sse_c_over_http: bool,
}

/// How the node takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub peer_addr: SocketAddr,
    /// A member to join through; `None` on the first node.
    pub join: Option<String>,
    pub secret_file: PathBuf,
    pub min_blob_replicas: usize,
    /// Mutual TLS on every peer link; `None`: plain TCP.
    pub tls: Option<PeerTlsFiles>,
}

/// This node's peer certificate and key, and the cluster's CA.
#[derive(Clone, Debug)]
pub struct PeerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// PUT admission settings, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Each shard's budget; `None` is unlimited.
    pub shard_budget_bytes: Option<u64>,
    pub shared_budget_bytes: u64,
    pub timeout: std::time::Duration,
    pub chunked_incremental: bool,
}

impl ServeFlags {
    pub fn validate(self) -> Result<NodeConfig, FlagError> {
        if same_endpoint(self.admin_addr, self.s3_addr) {
            return Err(FlagError {
                flag: "admin-addr",
                value: self.admin_addr.to_string(),
                reason: "is also --s3-addr; give each its own port".into(),
            });
        }
        let online = available_cpus();
        let cpus = match &self.cores {
            None => online.clone(),
            Some(spec) => parse_cores(spec, &online).map_err(|reason| FlagError {
                flag: "cores",
                value: spec.clone(),
                reason,
            })?,
        };
        let shards = self.shards.unwrap_or(cpus.len() as u16);
        if shards == 0 {
            return Err(FlagError {
                flag: "shards",
                value: shards.to_string(),
                reason: "must be at least 1".into(),
            });
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(FlagError {
                flag: "region",
                value: self.region,
                reason: "must be letters, digits and '-'".into(),
            });
        }
        let keys = match (self.access_key, self.secret_key) {
            (None, None) => None,
            (Some(access_key), Some(secret_key)) => {
                if access_key.is_empty() || secret_key.is_empty() {
                    return Err(FlagError {
                        flag: "access-key",
                        value: access_key,
                        reason: "access and secret key must not be empty".into(),
                    });
                }
                Some(KeyPair {
                    access_key,
                    secret_key,
                })
            }
            (Some(access_key), None) => {
                return Err(FlagError {
                    flag: "secret-key",
                    value: String::new(),
                    reason: format!("--access-key {access_key} needs a --secret-key"),
                })
            }
            (None, Some(_)) => {
                return Err(FlagError {
                    flag: "access-key",
                    value: String::new(),
                    reason: "--secret-key needs an --access-key".into(),
                })
            }
        };
        let per_shard = match self.put_budget_per_shard {
            Some(bytes) => bytes,
            None => per_shard_budget_from_old_env()?,
        };
        let shard_budget_bytes = match self.put_budget {
            Some(total) => Some(total / u64::from(shards)),
            None => Some(per_shard),
        }
        .filter(|&bytes| bytes > 0);
        if let Some(bytes) = shard_budget_bytes {
            if bytes < CHUNK_BYTES as u64 {
                let (flag, value) = match self.put_budget {
                    Some(total) => ("put-budget", total),
                    None => ("put-budget-per-shard", per_shard),
                };
                return Err(FlagError {
                    flag,
                    value: value.to_string(),
                    reason: format!("each of the {shards} shards needs at least 1MiB"),
                });
            }
        }
        let admission = AdmissionConfig {
            shard_budget_bytes,
            shared_budget_bytes: self.put_budget_shared,
            timeout: self.admission_timeout,
            chunked_incremental: self.chunked_incremental,
        };
        if self.node_id == 0 {
            return Err(FlagError {
                flag: "node-id",
                value: "0".into(),
                reason: "node ids start at 1".into(),
            });
        }
        let peer_tls = match (self.peer_tls_cert, self.peer_tls_key, self.peer_tls_ca) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(ca)) => Some(PeerTlsFiles {
                cert: absolute("peer-tls-cert", cert)?,
                key: absolute("peer-tls-key", key)?,
                ca: absolute("peer-tls-ca", ca)?,
            }),
            _ => {
                return Err(FlagError {
                    flag: "peer-tls-cert",
                    value: String::new(),
                    reason: "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together".into(),
                })
            }
        };
        if peer_tls.is_some() && self.peer_addr.is_none() {
            return Err(FlagError {
                flag: "peer-tls-cert",
                value: String::new(),
                reason: "peer TLS needs a --peer-addr (a node on its own has no peer links)".into(),
            });
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                cert: absolute("tls-cert", cert)?,
                key: absolute("tls-key", key)?,
            }),
            (Some(_), None) | (None, Some(_)) => {
                return Err(FlagError {
                    flag: "tls-cert",
                    value: String::new(),
                    reason: "--tls-cert and --tls-key go together".into(),
                })
            }
        };
        let cluster = match (self.peer_addr, self.join, self.cluster_secret_file) {
            (None, None, None) => None,
            (Some(peer_addr), join, Some(secret_file)) => {
                let last_port = peer_addr.port().checked_add(shards - 1).ok_or_else(|| FlagError {
                    flag: "peer-addr",
                    value: peer_addr.to_string(),
                    reason: format!("shard i listens on this port + i: {shards} ports do not fit below 65536"),
                })?;
                let peer_ports = peer_addr.port()..=last_port;
                for (flag, addr) in [("s3-addr", self.s3_addr), ("admin-addr", self.admin_addr)] {
                    let taken = peer_ports
                        .clone()
                        .any(|port| same_endpoint(addr, SocketAddr::new(peer_addr.ip(), port)));
                    if taken {
                        return Err(FlagError {
                            flag,
                            value: addr.to_string(),
                            reason: format!(
                                "shard peer ports {}-{} of --peer-addr {peer_addr} include it",
                                peer_ports.start(),
                                peer_ports.end()
                            ),
                        });
                    }
                }
                Some(ClusterConfig {
                    peer_addr,
                    join,
                    secret_file: absolute("cluster-secret-file", secret_file)?,
                    min_blob_replicas: self.min_blob_replicas,
                    tls: peer_tls,
                })
            }
            (None, _, _) => {
                return Err(FlagError {
                    flag: "peer-addr",
                    value: String::new(),
                    reason: "--join and --cluster-secret-file need a --peer-addr".into(),
                })
            }
            (Some(addr), _, None) => {
                return Err(FlagError {
                    flag: "cluster-secret-file",
                    value: String::new(),
                    reason: format!("--peer-addr {addr} needs a --cluster-secret-file"),
                })
            }
        };
        if self.snapshot_every == 0 || self.snapshot_logs_kept >= self.snapshot_every {
            return Err(FlagError {
                flag: "snapshot-logs-kept",
                value: self.snapshot_logs_kept.to_string(),
                reason: format!(
                    "must be below --snapshot-every ({}), which must be at least 1",
                    self.snapshot_every
                ),
            });
        }
        for (flag, duration) in [
            ("gc-grace", self.gc_grace),
            ("lifecycle-interval", self.lifecycle_interval),
            ("lifecycle-day", self.lifecycle_day),
        ] {
            if duration.is_zero() {
                return Err(FlagError {
                    flag,
                    value: "0".into(),
                    reason: "must be longer than zero".into(),
                });
            }
        }
        let segment_min = shoal_shard::limits::CHUNK_BUF_BYTES as u64;
        let align = shoal_shard::limits::IO_ALIGN_BYTES as u64;
        if self.segment_size < segment_min || !self.segment_size.is_multiple_of(align) {
            return Err(FlagError {
                flag: "segment-size",
                value: self.segment_size.to_string(),
                reason: format!(
                    "must be at least {segment_min} bytes (one chunk record) and a multiple of {align}"
                ),
            });
        }
        if self.multipart_expiry.is_zero() {
            return Err(FlagError {
                flag: "multipart-expiry",
                value: "0".into(),
                reason: "must be longer than zero".into(),
            });
        }
        let domain = match self.domain {
            None => None,
            Some(domain) => {
                let normalized = domain.trim().trim_matches('.').to_ascii_lowercase();
                if normalized.is_empty()
                    || !normalized
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err(FlagError {
                        flag: "domain",
                        value: domain,
                        reason: "must be a DNS name such as s3.example.com".into(),
                    });
                }
                Some(normalized)
            }
        };
        if self.embed_max > shoal_shard::limits::EMBEDDED_BYTES_MAX {
            return Err(FlagError {
                flag: "embed-max",
                value: self.embed_max.to_string(),
                reason: format!(
                    "must be at most {} bytes (an embedded body travels in raft entries and snapshots)",
                    shoal_shard::limits::EMBEDDED_BYTES_MAX
                ),
            });
        }
        if self.body_idle_timeout.is_zero() {
            return Err(FlagError {
                flag: "body-idle-timeout",
                value: "0".into(),
                reason: "must be longer than zero".into(),
            });
        }
        if self.shutdown_timeout.is_zero() {
            return Err(FlagError {
                flag: "shutdown-timeout",
                value: "0".into(),
                reason: "must be longer than zero".into(),
            });
        }
        let get_budget_per_core_bytes = match self.get_budget {
            None => GET_BUDGET_PER_CORE_DEFAULT,
            Some(total) => total / cpus.len() as u64,
        };
        if get_budget_per_core_bytes < GET_BUDGET_PER_CORE_MIN {
            return Err(FlagError {
                flag: "get-budget",
                value: self.get_budget.unwrap_or_default().to_string(),
                reason: format!(
                    "must give each of the {} cores at least {GET_BUDGET_PER_CORE_MIN} bytes (a GET reads one chunk while the last is sent)",
                    cpus.len()
                ),
            });
        }
        let credentials_file = self
            .credentials_file
            .map(|path| absolute("credentials-file", path))
            .transpose()?;
        let data_dirs = self
            .data_dir
            .into_iter()
            .map(|dir| absolute("data-dir", dir))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, dir) in data_dirs.iter().enumerate() {
            if data_dirs[..i].contains(dir) {
                return Err(FlagError {
                    flag: "data-dir",
                    value: dir.display().to_string(),
                    reason: "is given twice".into(),
                });
            }
        }
        Ok(NodeConfig {
            config_file: self.config,
            data_dirs,
            init: self.init,
            shutdown_timeout: self.shutdown_timeout,
            body_idle_timeout: self.body_idle_timeout,
            embed_max_bytes: self.embed_max,
            access_log: self.access_log,
            sigv2: self.sigv2,
            sse_master_key_file: self
                .sse_master_key_file
                .map(|path| absolute("sse-master-key-file", path))
                .transpose()?,
            sse_c_over_http: self.sse_c_over_http,
            admission,
            get_budget_per_core_bytes,
            multipart_expiry: self.multipart_expiry,
            gc_grace: self.gc_grace,
            lifecycle_interval: self.lifecycle_interval,
            lifecycle_day: self.lifecycle_day,
            segment_bytes: self.segment_size,
            disk_reserve_bytes: self
                .disk_reserve
                .unwrap_or(default_reserve_bytes(self.segment_size)),
            domain,
            credentials_file,
            admin_token: self.admin_token.filter(|t| !t.is_empty()),
            cluster,
            tls,
            blob_offload: self.blob_offload,
            catchup_bytes_per_s: self.catchup_rate,
            scrub_bytes_per_shard_s: match self.scrub_rate {
                0 => 0,
                total => (total / u64::from(shards)).max(1),
            },
            snapshot_every: self.snapshot_every,
            snapshot_logs_kept: self.snapshot_logs_kept,
            s3_addr: self.s3_addr,
            admin_addr: self.admin_addr,
            region: self.region,
            cpus,
            shards,
            keys,
            node_id: NodeId(self.node_id),
        })
    }
}

/// `--disk-reserve` when not given: two segments plus metadata headroom.
pub fn default_reserve_bytes(segment_bytes: u64) -> u64 {
    2 * segment_bytes + crate::limits::DISK_RESERVE_METADATA_BYTES
}

/// Each shard's PUT budget when `--put-budget-per-shard` is not given:
/// `SHOAL_PUT_BUDGET_PER_CORE` (the flag's old environment name, still
/// honoured), else 256MiB.
fn per_shard_budget_from_old_env() -> Result<u64, FlagError> {
    const DEFAULT_BYTES: u64 = 256 << 20;
    match std::env::var("SHOAL_PUT_BUDGET_PER_CORE") {
        Ok(text) => parse_bytes(&text).map_err(|reason| FlagError {
            flag: "put-budget-per-shard",
            value: text,
            reason: format!("{reason} (from SHOAL_PUT_BUDGET_PER_CORE)"),
        }),
        Err(_) => Ok(DEFAULT_BYTES),
    }
}

/// Whether listeners on `a` and `b` would take the same port: the same
/// port on the same address, or on any address when one is a wildcard.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// `path` made absolute against the working directory, as it is at start:
/// glommio and rocksdb must never resolve a relative path later.
fn absolute(flag: &'static str, path: PathBuf) -> Result<PathBuf, FlagError> {
    std::path::absolute(&path).map_err(|e| FlagError {
        flag,
        value: path.display().to_string(),
        reason: format!("cannot be made absolute: {e}"),
    })
}

/// CPUs this process may run on (its affinity mask).
fn available_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bitmask that sched_getaffinity fills in.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
                .collect();
            if !cpus.is_empty() {
                return cpus;
            }
        }
    }
    (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
}

/// Parses `--cores`: a bare count takes the first N available CPUs; a list of
/// ids and ranges (`0,2-3`) names them.
fn parse_cores(spec: &str, online: &[usize]) -> Result<Vec<usize>, String> {
    let spec = spec.trim();
    if !spec.contains([',', '-']) {
        let count: usize = spec
            .parse()
            .map_err(|_| "not a number or CPU list".to_string())?;
        if count == 0 || count > online.len() {
            return Err(format!("need 1..={} cores", online.len()));
        }
        return Ok(online[..count].to_vec());
    }
    let mut cpus = Vec::new();
    for part in spec.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part.trim(), part.trim()),
        };
        let lo: usize = lo.parse().map_err(|_| format!("bad CPU id {lo:?}"))?;
        let hi: usize = hi.parse().map_err(|_| format!("bad CPU id {hi:?}"))?;
        if lo > hi {
            return Err(format!("empty range {lo}-{hi}"));
        }
        for cpu in lo..=hi {
            if !online.contains(&cpu) {
                return Err(format!("CPU {cpu} is not available to this process"));
            }
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_accepts_counts_lists_and_ranges() {
        let online = [0, 1, 2, 3];
        assert_eq!(parse_cores("2", &online).unwrap(), vec![0, 1]);
        assert_eq!(parse_cores("0,2-3", &online).unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_cores("1-1", &online).unwrap(), vec![1]);
    }

    #[test]
    fn cores_rejects_what_cannot_run() {
        let online = [0, 1];
        assert!(parse_cores("0", &online).is_err());
        assert!(parse_cores("3", &online).is_err());
        assert!(parse_cores("0-5", &online).is_err());
        assert!(parse_cores("x", &online).is_err());
        assert!(parse_cores("2-1", &online).is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5XB").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
        assert_eq!(
            parse_duration("30s"),
            Ok(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("250ms"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert!(parse_duration("30").is_err());
    }

    /// Flags as clap would give them with no arguments, keys aside.
    fn defaults(ak: Option<&str>, sk: Option<&str>) -> ServeFlags {
        let mut argv = vec!["serve"];
        if let Some(ak) = ak {
            argv.extend(["--access-key", ak]);
        }
        if let Some(sk) = sk {
            argv.extend(["--secret-key", sk]);
        }
        #[derive(Parser)]
        struct Wrapper {
            #[command(subcommand)]
            command: Command,
        }
        match Wrapper::try_parse_from(std::iter::once("shoal").chain(argv))
            .expect("defaults parse")
            .command
        {
            Command::Serve(flags) => flags,
            Command::Preflight(_) => unreachable!("parsed a serve command"),
        }
    }

    #[test]
    fn keys_must_come_in_pairs() {
        assert!(defaults(Some("a"), None).validate().is_err());
        assert!(defaults(None, Some("b")).validate().is_err());
        assert!(defaults(None, None).validate().unwrap().keys.is_none());
        assert!(defaults(Some("a"), Some("b"))
            .validate()
            .unwrap()
            .keys
            .is_some());
    }

    #[test]
    fn relative_paths_become_absolute_at_start() {
        let config = defaults(None, None).validate().unwrap();
        assert!(config.data_dirs[0].is_absolute(), "{:?}", config.data_dirs);
        assert_eq!(
            config.data_dirs,
            vec![std::env::current_dir().unwrap().join("data")],
            "./data resolves against the working directory"
        );
    }

    #[test]
    fn one_address_per_endpoint() {
        let mut flags = defaults(None, None);
        flags.admin_addr = flags.s3_addr;
        let error = flags.validate().unwrap_err();
        assert_eq!(error.flag, "admin-addr");
        assert!(error.to_string().contains("127.0.0.1:9000"), "{error}");

        let mut flags = defaults(None, None);
        flags.admin_addr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(
            flags.validate().unwrap_err().flag,
            "admin-addr",
            "a wildcard takes the port too"
        );

        let mut flags = defaults(None, None);
        flags.peer_addr = Some("127.0.0.1:65535".parse().unwrap());
        flags.cluster_secret_file = Some("secret".into());
        flags.shards = Some(2);
        assert_eq!(
            flags.validate().unwrap_err().flag,
            "peer-addr",
            "ports past 65535"
        );

        let mut flags = defaults(None, None);
        flags.peer_addr = Some("127.0.0.1:8999".parse().unwrap());
        flags.cluster_secret_file = Some("secret".into());
        flags.shards = Some(2);
        let error = flags.validate().unwrap_err();
        assert_eq!(
            error.flag, "s3-addr",
            "peer ports 8999 and 9000 take the S3 port"
        );
    }
}

#[cfg(test)]
mod docs_tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The flag table of `docs/operations.md` and clap's flags (and their
    /// aliases) are the same set: a flag added, renamed or dropped without
    /// the docs fails here.
    #[test]
    fn the_operations_guide_lists_every_serve_flag() {
        let guide = include_str!("../docs/operations.md");
        let table: std::collections::BTreeSet<String> = guide
            .lines()
            .filter(|line| line.starts_with("| `--"))
            .flat_map(|line| {
                let first_cell = line.split('|').nth(1).unwrap_or_default();
                first_cell
                    .split('`')
                    .filter(|part| part.starts_with("--"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").expect("a serve command");
        let flags: std::collections::BTreeSet<String> = serve
            .get_arguments()
            // Hidden flags are test knobs, not an operator's settings.
            .filter(|arg| !arg.is_hide_set())
            .flat_map(|arg| {
                let aliases = arg.get_all_aliases().unwrap_or_default();
                arg.get_long().into_iter().chain(aliases)
            })
            .filter(|long| *long != "help")
            .map(|long| format!("--{long}"))
            .collect();
        let undocumented: Vec<_> = flags.difference(&table).collect();
        let unknown: Vec<_> = table.difference(&flags).collect();
        assert!(
            undocumented.is_empty(),
            "flags missing from docs/operations.md: {undocumented:?}"
        );
        assert!(
            unknown.is_empty(),
            "docs/operations.md lists flags shoal lacks: {unknown:?}"
        );
    }
}
