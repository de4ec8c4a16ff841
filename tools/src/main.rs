//! `shoal-ctl`: the operator's view of a running node, through its admin
//! endpoint: health, counters, metrics, and users and their access keys.
//! Speaks plain HTTP to `--admin-addr`; never touches a data directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod local_cluster;

#[derive(Parser)]
#[command(name = "shoal-ctl", about = "Inspect a running Shoal node")]
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
    /// Delete a user and its keys (its buckets and objects stay).
    Delete {
        name: String,
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

const TIMEOUT: Duration = Duration::from_secs(5);

fn request(
    method: &str,
    addr: &str,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
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

fn shards(metrics: &str) -> String {
    let samples = shard_samples(metrics);
    let value = |metric: &str, shard: u32| {
        samples
            .iter()
            .find(|(name, s, _)| *name == metric && *s == shard)
            .map_or(0.0, |(_, _, v)| *v)
    };
    let mut ids: Vec<u32> = samples.iter().map(|(_, s, _)| *s).collect();
    ids.sort_unstable();
    ids.dedup();
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

/// Percent-encodes a query value (everything but letters and digits).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn key_query(access_key: Option<String>, secret_key: Option<String>) -> String {
    match (access_key, secret_key) {
        (Some(a), Some(s)) => format!("access_key={}&secret_key={}", encode(&a), encode(&s)),
        _ => String::new(),
    }
}

/// The admin request a command makes: method and path.
fn admin_request(command: &Command) -> (&'static str, String) {
    match command {
        Command::Health => ("GET", "/healthz".into()),
        Command::Shards | Command::Metrics => ("GET", "/metrics".into()),
        Command::User(user) => match user {
            UserCommand::List => ("GET", "/admin/users".into()),
            UserCommand::Add {
                name,
                access_key,
                secret_key,
            } => (
                "POST",
                format!(
                    "/admin/users?name={}&{}",
                    encode(name),
                    key_query(access_key.clone(), secret_key.clone())
                ),
            ),
            UserCommand::Delete { name } => ("DELETE", format!("/admin/users/{}", encode(name))),
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
            } => (
                "POST",
                format!(
                    "/admin/users/{}/keys?{}",
                    encode(name),
                    key_query(access_key.clone(), secret_key.clone())
                ),
            ),
        },
        Command::Cluster => ("GET", "/admin/cluster".into()),
        Command::Snapshot => ("POST", "/admin/cluster/snapshot".into()),
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
    }
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

/// `cluster` as a table: shard, leader, write mode, members (`*` marks a
/// learner).
fn cluster_table(json: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let shards = value["shards"]
        .as_array()
        .ok_or("no shards in the answer")?;
    let mut out = format!("{:>5} {:>7} {:<7} members\n", "shard", "leader", "mode");
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
                        format!(
                            "{}{learner}@{}",
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
        out += &format!(
            "{:>5} {leader:>7} {mode:<7} {}\n",
            shard["shard"],
            members.join(" ")
        );
    }
    Ok(out)
}

/// Runs `local-cluster` until a node exits (or the user interrupts the
/// whole process group).
fn local_cluster(options: local_cluster::Options) -> ExitCode {
    let healthy = |admin: u16| {
        matches!(
            request("GET", &format!("127.0.0.1:{admin}"), "/healthz", None),
            Ok((200, _))
        )
    };
    let mut children = match local_cluster::start(&options, &healthy) {
        Ok(children) => children,
        Err(e) => {
            eprintln!("shoal-ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "cluster of {} nodes running; Ctrl-C stops it",
        options.nodes
    );
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(n) = children
            .iter_mut()
            .position(|c| c.try_wait().ok().flatten().is_some())
        {
            eprintln!("shoal-ctl: node {} exited; stopping the cluster", n + 1);
            local_cluster::stop(&mut children);
            return ExitCode::FAILURE;
        }
    }
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
    let (method, path) = admin_request(&cli.command);
    match request(method, &cli.admin_addr, &path, cli.token.as_deref()) {
        Ok((200..=299, body)) => {
            match cli.command {
                Command::Health => println!("healthy"),
                Command::Shards => print!("{}", shards(&body)),
                Command::User(UserCommand::List) => match users_table(&body) {
                    Ok(table) => print!("{table}"),
                    Err(e) => {
                        eprintln!("shoal-ctl: unreadable answer ({e}): {body}");
                        return ExitCode::FAILURE;
                    }
                },
                Command::Cluster => match cluster_table(&body) {
                    Ok(table) => print!("{table}"),
                    Err(e) => {
                        eprintln!("shoal-ctl: unreadable answer ({e}): {body}");
                        return ExitCode::FAILURE;
                    }
                },
                Command::Metrics
                | Command::User(_)
                | Command::Key(_)
                | Command::Member(_)
                | Command::Snapshot => print!("{body}"),
                Command::LocalCluster { .. } => unreachable!("handled before any request"),
            }
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("shoal-ctl: {method} {path} answered {status}: {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("shoal-ctl: {e}");
            ExitCode::FAILURE
        }
    }
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
    fn user_requests_and_table() {
        let add = Command::User(UserCommand::Add {
            name: "app".into(),
            access_key: Some("AK1".into()),
            secret_key: Some("s+/=".into()),
        });
        assert_eq!(
            admin_request(&add),
            (
                "POST",
                "/admin/users?name=app&access_key=AK1&secret_key=s%2B%2F%3D".to_string()
            )
        );
        let disable = Command::Key(KeyCommand::Disable {
            access_key: "AK1".into(),
        });
        assert_eq!(
            admin_request(&disable),
            ("POST", "/admin/keys/AK1/disable".to_string())
        );
        let json = r#"{"users":[{"name":"app","id":"abc","disabled":false,"keys":[{"access_key":"AK1","disabled":true},{"access_key":"AK2","disabled":false}]}]}"#;
        let table = users_table(json).unwrap();
        assert!(
            table.lines().nth(1).unwrap().ends_with("AK1! AK2"),
            "{table}"
        );
    }
}
