//! `shoal-ctl`: the operator's view of a running node, through its admin
//! endpoint: health, counters, metrics, budgets, users and their access
//! keys, buckets, and the cluster. Speaks plain HTTP to `--admin-addr`;
//! never touches a data directory. Secrets go in request bodies, never in
//! URLs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod local_cluster;

#[derive(Parser)]
#[command(
    name = "shoal-ctl",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SHOAL_COMMIT"), ")"),
    about = "Inspect and manage a running Shoal node"
)]
struct Cli {
    /// The node's admin endpoint.
    #[arg(long, env = "SHOAL_ADMIN_ADDR", default_value = "127.0.0.1:9001")]
    admin_addr: String,
    /// The node's `--admin-token`, if it has one.
    #[arg(long, env = "SHOAL_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exit 0 when the node answers `/healthz` with 200.
    Health,
    /// Per-shard blob-log and raft counters, with the group-commit ratio.
    Shards,
    /// Per-shard disk space: live and on-disk bytes, what was given back,
    /// chunks forgotten, waiting out their grace and pinned; and the data
    /// directory's free space against its reserve.
    Gc,
    /// The raw Prometheus metrics.
    Metrics,
    /// Users: list, add, delete, disable, enable, add-key.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys: delete, disable, enable.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Every shard group's leader and members, as this node sees them.
    Cluster,
    /// Cluster members: add, remove (through the groups this node leads).
    #[command(subcommand)]
    Member(MemberCommand),
    /// Buckets, whoever owns them: list, info, chown, delete.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Show the PUT admission budgets, or change them while the node runs.
    /// Changes last until the node restarts; its flags set them at start.
    Budgets {
        /// Each shard's budget (e.g. `256MiB`; `0` = unlimited).
        #[arg(long, alias = "put-budget-per-core")]
        put_budget_per_shard: Option<String>,
        /// The node's total budget, split over its shards.
        #[arg(long)]
        put_budget: Option<String>,
        /// The shared overflow pool.
        #[arg(long)]
        put_budget_shared: Option<String>,
    },
    /// Start a cluster of N local nodes (for development, tests and the
    /// bench) and keep it running until interrupted.
    LocalCluster {
        #[arg(long, default_value_t = 3)]
        nodes: u16,
        /// Data directories, logs and the generated cluster secret.
        #[arg(long, default_value = "./local-cluster")]
        dir: std::path::PathBuf,
        /// Node n serves S3 on base + 10(n-1), admin one above, peers from
        /// base + 100 + 10(n-1).
        #[arg(long, default_value_t = 9000)]
        base_port: u16,
        /// The `shoal` binary; default: next to this one.
        #[arg(long)]
        shoal_bin: Option<std::path::PathBuf>,
        /// `--cores` of each node: a count N gives node n its own N CPUs
        /// in turn (wrapping around the machine's), a list is used as is.
        #[arg(long)]
        cores: Option<String>,
        #[arg(long, default_value_t = 2)]
        shards: u16,
        /// `--blob-offload` of every node; `false` runs the cluster in
        /// inline mode (chunk bytes inside raft entries).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        blob_offload: bool,
    },
    /// Snapshot every shard group on the node now; prints each
    /// snapshot's size.
    Snapshot,
    /// The scrub (re-reading stored chunks to find damage): each shard's
    /// pace and progress, what it found and repaired, and the damaged
    /// chunks it could not repair with the objects they belong to.
    Scrub {
        /// Start a pass on every shard now (after the one running, if any).
        #[arg(long)]
        now: bool,
    },
}

#[derive(Subcommand)]
enum BucketCommand {
    /// Every bucket: owner, objects, bytes.
    List,
    /// One bucket: owner, creation time, objects, bytes.
    Info { name: String },
    /// Give a bucket to another user.
    Chown { name: String, user: String },
    /// Delete a bucket; `--force` first aborts its multipart uploads and
    /// deletes every object in it, each version and delete marker.
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Add node `node_id`, reachable at `peer_addr`, to every shard group.
    Add { node_id: u64, peer_addr: String },
    /// Remove node `node_id` from every shard group.
    Remove { node_id: u64 },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Every user, its id and its access keys (never secrets).
    List,
    /// Create a user with one key pair (generated unless given); prints
    /// the secret, which is shown only this once.
    Add {
        name: String,
        #[arg(long, requires = "secret_key")]
        access_key: Option<String>,
        #[arg(long, requires = "access_key")]
        secret_key: Option<String>,
    },
    /// Delete a user and its keys. Refused while it owns buckets, unless
    /// `--reassign-to` gives them to another user first.
    Delete {
        name: String,
        #[arg(long)]
        reassign_to: Option<String>,
    },
    /// Refuse every key of the user, at once, on every core.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Give a user another key pair (generated unless given).
    AddKey {
        name: String,
        #[arg(long, requires = "secret_key")]
        access_key: Option<String>,
        #[arg(long, requires = "access_key")]
        secret_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    Delete { access_key: String },
    Disable { access_key: String },
    Enable { access_key: String },
}

/// How long a command waits for the node's answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long `bucket delete --force` waits: it deletes one object at a
/// time through raft (a few hundred per second per shard).
const FORCE_DELETE_TIMEOUT: Duration = Duration::from_secs(3_600);

/// One admin request; the status and body of the answer.
fn request(
    method: &str,
    addr: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed status line")?;
    Ok((status, body.to_string()))
}

/// `(metric name, shard label, value)` for every sample with a shard label.
fn shard_samples(text: &str) -> Vec<(&str, u32, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, rest) = line.split_once("{shard=\"")?;
            let (shard, rest) = rest.split_once("\"}")?;
            Some((name, shard.parse().ok()?, rest.trim().parse().ok()?))
        })
        .collect()
}

/// Every shard's samples, by metric name.
struct ShardSamples<'a> {
    samples: Vec<(&'a str, u32, f64)>,
}

impl<'a> ShardSamples<'a> {
    fn parse(metrics: &'a str) -> Self {
        ShardSamples {
            samples: shard_samples(metrics),
        }
    }

    /// Shard numbers that have any sample, ascending.
    fn shards(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.samples.iter().map(|(_, s, _)| *s).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// `metric` of `shard`, 0 when absent.
    fn value(&self, metric: &str, shard: u32) -> f64 {
        self.samples
            .iter()
            .find(|(name, s, _)| *name == metric && *s == shard)
            .map_or(0.0, |(_, _, v)| *v)
    }
}

fn shards(metrics: &str) -> String {
    let samples = ShardSamples::parse(metrics);
    let value = |metric: &str, shard: u32| samples.value(metric, shard);
    let ids = samples.shards();
    let mut out = format!(
        "{:>5} {:>10} {:>10} {:>14} {:>12} {:>14}\n",
        "shard", "appends", "fsyncs", "appends/fsync", "raft entries", "raft bytes"
    );
    for shard in ids {
        let appends = value("shoal_blob_log_appends_total", shard);
        let fsyncs = value("shoal_blob_log_fsyncs_total", shard);
        let ratio = if fsyncs > 0.0 { appends / fsyncs } else { 0.0 };
        out += &format!(
            "{shard:>5} {appends:>10} {fsyncs:>10} {ratio:>14.1} {:>12} {:>14}\n",
            value("shoal_raft_entries_appended_total", shard),
            value("shoal_raft_log_appended_bytes_total", shard),
        );
    }
    out
}

/// The value of an unlabelled (or only-labelled-by-`dir`) node gauge.
fn node_gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once('}')?.1,
            None => rest,
        };
        rest.trim().parse().ok()
    })
}

fn gc(metrics: &str) -> String {
    let samples = ShardSamples::parse(metrics);
    let value = |metric: &str, shard: u32| samples.value(metric, shard);
    let mib = |bytes: f64| bytes / f64::from(1u32 << 20);
    let ids = samples.shards();
    let mut out = format!(
        "{:>5} {:>10} {:>10} {:>13} {:>9} {:>7} {:>10} {:>8} {:>7}\n",
        "shard",
        "live MiB",
        "disk MiB",
        "released MiB",
        "segs rm",
        "queued",
        "forgotten",
        "waiting",
        "pinned"
    );
    for shard in ids {
        out += &format!(
            "{shard:>5} {:>10.1} {:>10.1} {:>13.1} {:>9} {:>7} {:>10} {:>8} {:>7}\n",
            mib(value("shoal_blob_live_bytes", shard)),
            mib(value("shoal_blob_disk_bytes", shard)),
            mib(value("shoal_blob_released_bytes_total", shard)),
            value("shoal_blob_segments_removed_total", shard),
            value("shoal_gc_chunks_queued", shard),
            value("shoal_gc_chunks_forgotten_total", shard),
            value("shoal_gc_chunks_waiting", shard),
            value("shoal_gc_chunks_pinned", shard),
        );
    }
    // One line per data directory (one per device), each against the reserve.
    if let Some(reserve) = node_gauge(metrics, "shoal_data_dir_reserve_bytes") {
        for (dir, free) in data_dir_free(metrics) {
            out += &format!(
                "data dir {dir}: {:.1} MiB free, {:.1} MiB reserved{}\n",
                mib(free),
                mib(reserve),
                if free < reserve {
                    " (below: PUTs to its shards refused)"
                } else {
                    ""
                }
            );
        }
    }
    out
}

/// `(dir, free bytes)` of every `shoal_data_dir_free_bytes{dir=…}` sample.
fn data_dir_free(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("shoal_data_dir_free_bytes{dir=\"")?;
            let (dir, value) = rest.split_once("\"}")?;
            Some((dir.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Percent-encodes a path segment or query value (everything but the
/// unreserved characters: letters, digits and `-._~`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The JSON body that gives a key pair (empty: the node generates one).
fn key_body(access_key: &Option<String>, secret_key: &Option<String>) -> String {
    match (access_key, secret_key) {
        (Some(a), Some(s)) => serde_json::json!({ "access_key": a, "secret_key": s }).to_string(),
        _ => String::new(),
    }
}

/// What an admin request carries besides its method and path.
#[derive(Debug, PartialEq, Eq)]
struct AdminRequest {
    method: &'static str,
    path: String,
    body: String,
    timeout: Duration,
}

impl AdminRequest {
    fn new(method: &'static str, path: String) -> AdminRequest {
        AdminRequest {
            method,
            path,
            body: String::new(),
            timeout: TIMEOUT,
        }
    }
}

/// The admin request a command makes.
fn admin_request(command: &Command) -> AdminRequest {
    let (method, path) = match command {
        Command::Health => ("GET", "/healthz".into()),
        Command::Shards | Command::Gc | Command::Metrics => ("GET", "/metrics".into()),
        Command::User(user) => match user {
            UserCommand::List => ("GET", "/admin/users".into()),
            UserCommand::Add {
                name,
                access_key,
                secret_key,
            } => {
                return AdminRequest {
                    body: key_body(access_key, secret_key),
                    ..AdminRequest::new("POST", format!("/admin/users?name={}", encode(name)))
                }
            }
            UserCommand::Delete { name, reassign_to } => (
                "DELETE",
                match reassign_to {
                    Some(heir) => {
                        format!("/admin/users/{}?reassign_to={}", encode(name), encode(heir))
                    }
                    None => format!("/admin/users/{}", encode(name)),
                },
            ),
            UserCommand::Disable { name } => {
                ("POST", format!("/admin/users/{}/disable", encode(name)))
            }
            UserCommand::Enable { name } => {
                ("POST", format!("/admin/users/{}/enable", encode(name)))
            }
            UserCommand::AddKey {
                name,
                access_key,
                secret_key,
            } => {
                return AdminRequest {
                    body: key_body(access_key, secret_key),
                    ..AdminRequest::new("POST", format!("/admin/users/{}/keys", encode(name)))
                }
            }
        },
        Command::Bucket(bucket) => match bucket {
            BucketCommand::List => ("GET", "/admin/buckets".into()),
            BucketCommand::Info { name } => ("GET", format!("/admin/buckets/{}", encode(name))),
            BucketCommand::Chown { name, user } => (
                "POST",
                format!(
                    "/admin/buckets/{}/owner?user={}",
                    encode(name),
                    encode(user)
                ),
            ),
            BucketCommand::Delete { name, force: false } => {
                ("DELETE", format!("/admin/buckets/{}", encode(name)))
            }
            BucketCommand::Delete { name, force: true } => {
                return AdminRequest {
                    timeout: FORCE_DELETE_TIMEOUT,
                    ..AdminRequest::new(
                        "DELETE",
                        format!("/admin/buckets/{}?force=true", encode(name)),
                    )
                }
            }
        },
        Command::Budgets {
            put_budget_per_shard,
            put_budget,
            put_budget_shared,
        } => {
            let changes: Vec<String> = [
                ("put-budget-per-shard", put_budget_per_shard),
                ("put-budget", put_budget),
                ("put-budget-shared", put_budget_shared),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={}", encode(v))))
            .collect();
            if changes.is_empty() {
                ("GET", "/admin/budgets".into())
            } else {
                ("PUT", format!("/admin/budgets?{}", changes.join("&")))
            }
        }
        Command::Cluster => ("GET", "/admin/cluster".into()),
        Command::Snapshot => ("POST", "/admin/cluster/snapshot".into()),
        Command::Scrub { now: false } => ("GET", "/admin/scrub".into()),
        Command::Scrub { now: true } => ("POST", "/admin/scrub".into()),
        Command::Member(MemberCommand::Add { node_id, peer_addr }) => (
            "POST",
            format!(
                "/admin/cluster/members?node_id={node_id}&peer_addr={}",
                encode(peer_addr)
            ),
        ),
        Command::Member(MemberCommand::Remove { node_id }) => {
            ("DELETE", format!("/admin/cluster/members/{node_id}"))
        }
        Command::LocalCluster { .. } => unreachable!("handled before any request"),
        Command::Key(key) => match key {
            KeyCommand::Delete { access_key } => {
                ("DELETE", format!("/admin/keys/{}", encode(access_key)))
            }
            KeyCommand::Disable { access_key } => (
                "POST",
                format!("/admin/keys/{}/disable", encode(access_key)),
            ),
            KeyCommand::Enable { access_key } => {
                ("POST", format!("/admin/keys/{}/enable", encode(access_key)))
            }
        },
    };
    AdminRequest::new(method, path)
}

/// `user list` as a table: name, id, state, keys (`!` marks a disabled one).
fn users_table(json: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let users = value["users"].as_array().ok_or("no users in the answer")?;
    let mut out = format!("{:<20} {:<32} {:<9} keys\n", "name", "id", "state");
    for user in users {
        let keys: Vec<String> = user["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .map(|k| {
                        let mark = if k["disabled"].as_bool() == Some(true) {
                            "!"
                        } else {
                            ""
                        };
                        format!("{}{mark}", k["access_key"].as_str().unwrap_or("?"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let state = if user["disabled"].as_bool() == Some(true) {
            "disabled"
        } else {
            "enabled"
        };
        out += &format!(
            "{:<20} {:<32} {:<9} {}\n",
            user["name"].as_str().unwrap_or("?"),
            user["id"].as_str().unwrap_or("?"),
            state,
            keys.join(" ")
        );
    }
    Ok(out)
}

/// `cluster` as a table: shard, leader, quorum, write mode, members (`*`
/// marks a learner), each with its liveness and the seconds since this
/// node last heard from it (`?`: this node, a follower, does not talk to
/// it).
fn cluster_table(json: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let shards = value["shards"]
        .as_array()
        .ok_or("no shards in the answer")?;
    let mut out = format!(
        "{:>5} {:>7} {:<6} {:<7} members\n",
        "shard", "leader", "quorum", "mode"
    );
    for shard in shards {
        let members: Vec<String> = shard["members"]
            .as_array()
            .map(|members| {
                members
                    .iter()
                    .map(|m| {
                        let learner = if m["voter"].as_bool() == Some(false) {
                            "*"
                        } else {
                            ""
                        };
                        let contact = m["last_contact_ms"]
                            .as_u64()
                            .map(|ms| format!(" {:.1}s", ms as f64 / 1000.0))
                            .unwrap_or_default();
                        let state = match m["live"].as_bool() {
                            Some(true) => "live",
                            Some(false) => "DOWN",
                            None => "?",
                        };
                        format!(
                            "{}{learner}@{} ({state}{contact})",
                            m["node_id"],
                            m["peer_addr"].as_str().unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let leader = shard["leader"]
            .as_u64()
            .map_or("-".to_string(), |l| l.to_string());
        let mode = shard["mode"].as_str().unwrap_or("-");
        let quorum = match shard["quorum"].as_bool() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        out += &format!(
            "{:>5} {leader:>7} {quorum:<6} {mode:<7} {}\n",
            shard["shard"]
                .as_u64()
                .map_or("?".to_string(), |s| s.to_string()),
            members.join(" ")
        );
    }
    Ok(out)
}

/// Runs `local-cluster` until SIGINT or SIGTERM (or every node exited).
fn local_cluster(options: local_cluster::Options) -> ExitCode {
    let stop_asked = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop_asked)) {
            eprintln!("shoal-ctl: handling signals: {e}");
            return ExitCode::FAILURE;
        }
    }
    let healthy = |admin: u16| {
        matches!(
            request(
                "GET",
                &format!("127.0.0.1:{admin}"),
                "/healthz",
                None,
                "",
                TIMEOUT
            ),
            Ok((200, _))
        )
    };
    let interrupted = || stop_asked.load(Ordering::SeqCst);
    let mut children = match local_cluster::start(&options, &healthy, &interrupted) {
        Ok(children) => children,
        Err(e) => {
            eprintln!("shoal-ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let first = local_cluster::ports(options.base_port, 1);
    match local_cluster::credentials(&options.dir) {
        Ok((access_key, secret_key)) => {
            println!("# the cluster's key pair; every node takes it:");
            println!("export AWS_ACCESS_KEY_ID={access_key} AWS_SECRET_ACCESS_KEY={secret_key} AWS_DEFAULT_REGION=us-east-1");
            println!("export AWS_ENDPOINT_URL=http://127.0.0.1:{}", first.s3);
        }
        Err(e) => eprintln!("shoal-ctl: no key pair to show ({e})"),
    }
    println!(
        "cluster of {} nodes running (logs: {}/node-N.log); Ctrl-C stops it",
        options.nodes,
        options.dir.display()
    );
    let mut reported = vec![false; children.len()];
    while !stop_asked.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        for (n, child) in children.iter_mut().enumerate() {
            if let (Ok(Some(status)), false) = (child.try_wait(), reported[n]) {
                reported[n] = true;
                eprintln!(
                    "shoal-ctl: node {} exited ({status}); the others keep running",
                    n + 1
                );
            }
        }
        if reported.iter().all(|&gone| gone) {
            eprintln!("shoal-ctl: every node has exited");
            return ExitCode::FAILURE;
        }
    }
    println!("stopping the nodes");
    local_cluster::stop(&mut children);
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::LocalCluster {
        nodes,
        dir,
        base_port,
        shoal_bin,
        cores,
        shards,
        blob_offload,
    } = cli.command
    {
        let shoal_bin = shoal_bin.unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|d| d.join("shoal")))
                .unwrap_or_else(|| "shoal".into())
        });
        let dir = match std::path::absolute(&dir) {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("shoal-ctl: --dir {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        };
        return local_cluster(local_cluster::Options {
            nodes,
            dir,
            base_port,
            shoal_bin,
            cores_per_node: cores,
            shards,
            blob_offload,
        });
    }
    let admin = admin_request(&cli.command);
    let answer = request(
        admin.method,
        &cli.admin_addr,
        &admin.path,
        cli.token.as_deref(),
        &admin.body,
        admin.timeout,
    );
    match answer {
        Ok((200..=299, body)) => {
            let shown = match &cli.command {
                Command::Health => Ok("healthy\n".to_string()),
                Command::Shards => Ok(shards(&body)),
                Command::Gc => Ok(gc(&body)),
                Command::Scrub { .. } => scrub_table(&body),
                Command::User(UserCommand::List) => users_table(&body),
                Command::Cluster => cluster_table(&body),
                Command::Bucket(BucketCommand::List) => buckets_table(&body),
                Command::Bucket(BucketCommand::Info { .. }) => {
                    buckets_table(&format!("{{\"buckets\":[{body}]}}"))
                }
                Command::Budgets {
                    put_budget_per_shard,
                    put_budget,
                    put_budget_shared,
                } => budgets_table(&body).map(|table| {
                    let changed = put_budget_per_shard.is_some()
                        || put_budget.is_some()
                        || put_budget_shared.is_some();
                    if changed {
                        table + "changed until the node restarts; its flags set the budgets at start\n"
                    } else {
                        table
                    }
                }),
                Command::Metrics
                | Command::User(_)
                | Command::Key(_)
                | Command::Member(_)
                | Command::Bucket(_)
                | Command::Snapshot => Ok(body.clone()),
                Command::LocalCluster { .. } => unreachable!("handled before any request"),
            };
            match shown {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("shoal-ctl: unreadable answer ({e}): {body}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok((status, body)) => {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().to_string());
            eprintln!(
                "shoal-ctl: {} {} answered {status}: {message}",
                admin.method, admin.path
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("shoal-ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Bytes as a person reads them: `1.5 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `bucket list` (and `info`) as a table.
fn buckets_table(json: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let buckets = value["buckets"]
        .as_array()
        .ok_or("no buckets in the answer")?;
    let mut out = format!(
        "{:<32} {:<20} {:>10} {:>12}\n",
        "bucket", "owner", "objects", "bytes"
    );
    for bucket in buckets {
        out += &format!(
            "{:<32} {:<20} {:>10} {:>12}\n",
            bucket["name"].as_str().unwrap_or("?"),
            bucket["owner"].as_str().unwrap_or("?"),
            bucket["objects"].as_u64().unwrap_or(0),
            human_bytes(bucket["bytes"].as_u64().unwrap_or(0)),
        );
    }
    Ok(out)
}

/// `scrub` as a table: each shard's pace and progress, then the findings.
fn scrub_table(json: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let shards = value["shards"]
        .as_array()
        .ok_or("no shards in the answer")?;
    let mib = |v: &serde_json::Value| v.as_u64().unwrap_or(0) as f64 / f64::from(1u32 << 20);
    let mut out = format!(
        "{:>5} {:>8} {:<12} {:>6} {:>12} {:>7} {:>8} {:>10}\n",
        "shard", "MiB/s", "state", "passes", "checked MiB", "damaged", "repaired", "unrepaired"
    );
    let mut findings = Vec::new();
    for shard in shards {
        let state = if shard["rate_bytes_per_s"].as_u64() == Some(0) {
            "off".to_string()
        } else if shard["running"].as_bool() == Some(true) {
            // The live bytes are known once the sweeper has counted them.
            match shard["pass_live_bytes"].as_u64().unwrap_or(0) {
                0 => "pass".to_string(),
                live => {
                    let checked = shard["pass_checked_bytes"].as_u64().unwrap_or(0);
                    format!(
                        "pass {:.0}%",
                        (100.0 * checked as f64 / live as f64).min(100.0)
                    )
                }
            }
        } else {
            "waiting".to_string()
        };
        let count = |name: &str| shard[name].as_u64().unwrap_or(0);
        out += &format!(
            "{:>5} {:>8.1} {:<12} {:>6} {:>12.1} {:>7} {:>8} {:>10}\n",
            count("shard"),
            mib(&shard["rate_bytes_per_s"]),
            state,
            count("passes"),
            mib(&shard["checked_bytes"]),
            count("found"),
            count("repaired"),
            count("unrepaired"),
        );
        for finding in shard["findings"].as_array().into_iter().flatten() {
            findings.push((shard["shard"].clone(), finding.clone()));
        }
    }
    if !findings.is_empty() {
        out += "damaged chunks found (newest last):\n";
    }
    for (shard, finding) in findings {
        let outcome = if finding["repaired"].as_bool() == Some(true) {
            "repaired from a member".to_string()
        } else {
            let objects: Vec<&str> = finding["objects"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o.as_str())
                .collect();
            format!("NOT repaired; objects: {}", objects.join(", "))
        };
        out += &format!(
            "  shard {shard} segment {} offset {} sha256 {}: {outcome} ({})\n",
            finding["segment"],
            finding["offset_bytes"],
            finding["sha256"].as_str().unwrap_or("?"),
            finding["error"].as_str().unwrap_or("?"),
        );
    }
    Ok(out)
}

/// `budgets` as a table: each shard's budget and what is in flight.
fn budgets_table(json: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let shards = value["shards"]
        .as_array()
        .ok_or("no shards in the answer")?;
    let capacity = |v: &serde_json::Value| match v["capacity_bytes"].as_u64() {
        Some(u64::MAX) => "unlimited".to_string(),
        Some(bytes) => human_bytes(bytes),
        None => "?".to_string(),
    };
    let mut out = format!(
        "{:>6} {:>12} {:>12} {:>12}\n",
        "shard", "budget", "in flight", "borrowed"
    );
    for shard in shards {
        out += &format!(
            "{:>6} {:>12} {:>12} {:>12}\n",
            shard["shard"]
                .as_u64()
                .map_or("?".to_string(), |s| s.to_string()),
            capacity(shard),
            human_bytes(shard["inflight_bytes"].as_u64().unwrap_or(0)),
            human_bytes(shard["borrowed_bytes"].as_u64().unwrap_or(0)),
        );
    }
    let shared = &value["shared"];
    out += &format!(
        "{:>6} {:>12} {:>12}\n",
        "shared",
        capacity(shared),
        human_bytes(shared["inflight_bytes"].as_u64().unwrap_or(0)),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_table_reads_prometheus_text() {
        let text = "# HELP x\nshoal_blob_log_appends_total{shard=\"0\"} 10\nshoal_blob_log_fsyncs_total{shard=\"0\"} 4\nshoal_blob_log_appends_total{shard=\"1\"} 0\n";
        let table = shards(text);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 3);
        assert!(rows[1].contains("2.5"), "{table}");
        assert!(rows[2].trim_start().starts_with('1'));
    }

    #[test]
    fn scrub_table_shows_progress_and_names_what_was_not_repaired() {
        let json = r#"{"shards":[
            {"shard":0,"rate_bytes_per_s":8388608,"running":true,"pass_checked_bytes":25,
             "pass_live_bytes":100,"passes":2,"checked_bytes":3145728,"found":2,"repaired":1,
             "unrepaired":1,"findings":[
                {"sha256":"ab12","segment":3,"offset_bytes":4096,"error":"payload CRC32C","repaired":true,"objects":[]},
                {"sha256":"cd34","segment":4,"offset_bytes":0,"error":"bad magic","repaired":false,"objects":["b/cat.jpg","b/dog"]}]},
            {"shard":1,"rate_bytes_per_s":0,"running":false,"pass_checked_bytes":0,"pass_live_bytes":0,
             "passes":0,"checked_bytes":0,"found":0,"repaired":0,"unrepaired":0,"findings":[]}]}"#;
        let table = scrub_table(json).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[1].contains("pass 25%") && lines[1].contains("8.0"),
            "{table}"
        );
        assert!(lines[1].contains("3.0"), "{table}");
        assert!(lines[2].contains("off"), "{table}");
        assert!(
            table.contains("sha256 ab12: repaired from a member"),
            "{table}"
        );
        assert!(
            table.contains("sha256 cd34: NOT repaired; objects: b/cat.jpg, b/dog (bad magic)"),
            "{table}"
        );
    }

    #[test]
    fn gc_table_shows_space_per_shard_and_the_reserve() {
        let text = "shoal_blob_live_bytes{shard=\"0\"} 1048576\nshoal_blob_disk_bytes{shard=\"0\"} 3145728\nshoal_gc_chunks_waiting{shard=\"1\"} 7\nshoal_data_dir_free_bytes{dir=\"/d\"} 10485760\nshoal_data_dir_free_bytes{dir=\"/e\"} 31457280\nshoal_data_dir_reserve_bytes 20971520\nshoal_data_dir_below_reserve 1\n";
        let table = gc(text);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 5, "{table}");
        assert!(
            rows[1].contains("1.0") && rows[1].contains("3.0"),
            "{table}"
        );
        assert!(
            rows[2].trim_end().ends_with('0') && rows[2].contains(" 7 "),
            "{table}"
        );
        assert_eq!(
            rows[3],
            "data dir /d: 10.0 MiB free, 20.0 MiB reserved (below: PUTs to its shards refused)"
        );
        assert_eq!(rows[4], "data dir /e: 30.0 MiB free, 20.0 MiB reserved");
    }

    #[test]
    fn bucket_and_budget_requests() {
        let delete = admin_request(&Command::Bucket(BucketCommand::Delete {
            name: "logs".into(),
            force: true,
        }));
        assert_eq!(delete.path, "/admin/buckets/logs?force=true");
        assert_eq!(delete.timeout, FORCE_DELETE_TIMEOUT);
        let retune = admin_request(&Command::Budgets {
            put_budget_per_shard: Some("64MiB".into()),
            put_budget: None,
            put_budget_shared: None,
        });
        assert_eq!(
            (retune.method, retune.path.as_str()),
            ("PUT", "/admin/budgets?put-budget-per-shard=64MiB")
        );
        let table = budgets_table(
            r#"{"shared":{"capacity_bytes":0,"inflight_bytes":0},"shards":[{"shard":0,"capacity_bytes":268435456,"inflight_bytes":1048576,"borrowed_bytes":0}]}"#,
        )
        .unwrap();
        assert!(
            table.contains("256.0 MiB") && table.contains("1.0 MiB"),
            "{table}"
        );
    }

    #[test]
    fn user_requests_and_table() {
        let add = Command::User(UserCommand::Add {
            name: "app".into(),
            access_key: Some("AK1".into()),
            secret_key: Some("s+/=".into()),
        });
        let request = admin_request(&add);
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path, "/admin/users?name=app",
            "no secret in the URL"
        );
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body["secret_key"], "s+/=");
        assert_eq!(body["access_key"], "AK1");
        let disable = Command::Key(KeyCommand::Disable {
            access_key: "AK1".into(),
        });
        assert_eq!(
            admin_request(&disable),
            AdminRequest::new("POST", "/admin/keys/AK1/disable".to_string())
        );
        let json = r#"{"users":[{"name":"app","id":"abc","disabled":false,"keys":[{"access_key":"AK1","disabled":true},{"access_key":"AK2","disabled":false}]}]}"#;
        let table = users_table(json).unwrap();
        assert!(
            table.lines().nth(1).unwrap().ends_with("AK1! AK2"),
            "{table}"
        );
    }
}
