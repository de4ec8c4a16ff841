//! `shoal-ctl local-cluster`: N `shoal serve` processes on this host that
//! form one cluster, for development, tests and the bench. Node n (counted
//! from one) serves S3 on port `base + 10(n-1)`, its admin endpoint one
//! port above, and its peer ports from `base + 100 + 10(n-1)`; its data
//! lives in `<dir>/node-n`, its log in `<dir>/node-n.log`.
//!
//! The first node generates the cluster's key pair; the others join and
//! use it, and `shoal-ctl` prints it as `export AWS_…` lines. The cluster
//! secret is written 0600. A node that exits is reported and the others
//! keep running (so a failure can be tried out); SIGINT or SIGTERM stops
//! every node in order (SIGTERM, then SIGKILL after
//! [`STOP_WAIT_MAX`]). The nodes run in their own process group, so a
//! Ctrl-C reaches them only through `shoal-ctl`, once; they also get
//! SIGTERM if `shoal-ctl` dies however it dies (a parent-death signal),
//! so none is left holding its ports.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for one node to answer `/healthz`.
const START_WAIT_MAX: Duration = Duration::from_secs(120);
/// Longest wait for the nodes to stop after SIGTERM (their own
/// `--shutdown-timeout` is 30 s), before SIGKILL.
pub const STOP_WAIT_MAX: Duration = Duration::from_secs(40);

pub struct Options {
    pub nodes: u16,
    pub dir: PathBuf,
    pub base_port: u16,
    pub shoal_bin: PathBuf,
    pub cores_per_node: Option<String>,
    pub shards: u16,
    /// `--blob-offload` of every node (false: chunk bytes go through raft).
    pub blob_offload: bool,
}

pub struct Ports {
    pub s3: u16,
    pub admin: u16,
    pub peer: u16,
}

/// The ports of node `n` (from 1).
pub fn ports(base: u16, n: u16) -> Ports {
    let step = 10 * (n - 1);
    Ports {
        s3: base + step,
        admin: base + step + 1,
        peer: base + 100 + step,
    }
}

/// Starts the nodes one after another (each waits for its `/healthz`)
/// and returns their processes. Gives up, stopping what it started, when a
/// node exits or stays unhealthy, or once `interrupted` says so.
pub fn start(
    options: &Options,
    healthy: &dyn Fn(u16) -> bool,
    interrupted: &dyn Fn() -> bool,
) -> Result<Vec<Child>, String> {
    if options.nodes == 0 || options.nodes > 9 || options.shards > 9 {
        return Err("local clusters have 1 to 9 nodes of 1 to 9 shards".into());
    }
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("{}: {e}", options.dir.display()))?;
    let secret = options.dir.join("cluster-secret");
    if !secret.exists() {
        write_secret(&secret)?;
    }
    let mut children = Vec::new();
    for n in 1..=options.nodes {
        let child = spawn(options, n, &secret)?;
        children.push(child);
        let ports = ports(options.base_port, n);
        let deadline = Instant::now() + START_WAIT_MAX;
        while !healthy(ports.admin) {
            let log = log_path(&options.dir, n);
            let failure = if interrupted() {
                Some("interrupted while the nodes started".to_string())
            } else if let Ok(Some(status)) = children[usize::from(n) - 1].try_wait() {
                Some(format!("node {n} exited ({status}); see {}", log.display()))
            } else if Instant::now() > deadline {
                Some(format!(
                    "node {n} did not become healthy; see {}",
                    log.display()
                ))
            } else {
                None
            };
            if let Some(failure) = failure {
                stop(&mut children);
                return Err(failure);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!(
            "node {n}: s3 http://127.0.0.1:{}  admin 127.0.0.1:{}  peer 127.0.0.1:{}",
            ports.s3, ports.admin, ports.peer
        );
    }
    Ok(children)
}

/// A new random cluster secret in a file only its owner may read.
fn write_secret(path: &Path) -> Result<(), String> {
    let value = format!("{:032x}\n", rand::random::<u128>());
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The cluster's key pair, as the first node generated it:
/// `(access key, secret key)`.
pub fn credentials(dir: &Path) -> Result<(String, String), String> {
    let path = dir.join("node-1").join("credentials");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| format!("{} has no {name} line", path.display()))
    };
    Ok((field("access_key=")?, field("secret_key=")?))
}

fn spawn(options: &Options, n: u16, secret: &Path) -> Result<Child, String> {
    let ports = ports(options.base_port, n);
    let log = std::fs::File::create(log_path(&options.dir, n)).map_err(|e| e.to_string())?;
    let mut command = Command::new(&options.shoal_bin);
    command
        .arg("serve")
        .args([
            "--data-dir",
            &options.dir.join(format!("node-{n}")).display().to_string(),
        ])
        .args(["--s3-addr", &format!("127.0.0.1:{}", ports.s3)])
        .args(["--admin-addr", &format!("127.0.0.1:{}", ports.admin)])
        .args(["--node-id", &n.to_string()])
        .args(["--peer-addr", &format!("127.0.0.1:{}", ports.peer)])
        .args(["--cluster-secret-file", &secret.display().to_string()])
        .args(["--shards", &options.shards.to_string()])
        .args(["--blob-offload", &options.blob_offload.to_string()])
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log));
    if let Some(cores) = &options.cores_per_node {
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        command.args(["--cores", &node_cpus(cores, n, online)]);
    }
    if n > 1 {
        let first = ports_of_first(options.base_port);
        command.args(["--join", &format!("127.0.0.1:{first}")]);
    }
    // Its own process group, so a terminal's Ctrl-C reaches it only as
    // the one SIGTERM `shoal-ctl` forwards (a node takes a second signal as
    // "exit at once").
    command.process_group(0);
    // SAFETY: `prctl` is async-signal-safe, and the closure touches no
    // memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command
        .spawn()
        .map_err(|e| format!("starting {}: {e}", options.shoal_bin.display()))
}

/// `--cores` for node `n`: a bare count N gives each node its own N CPUs
/// in turn (node 1 the first N, node 2 the next N, wrapping around the
/// `online` CPUs), so the nodes do not all pin to the same ones; a list or
/// range is passed on as it is.
pub fn node_cpus(cores: &str, n: u16, online: usize) -> String {
    let Ok(count) = cores.trim().parse::<usize>() else {
        return cores.to_string();
    };
    let first = (usize::from(n) - 1) * count;
    let mut cpus: Vec<usize> = (first..first + count).map(|c| c % online.max(1)).collect();
    cpus.sort_unstable();
    cpus.dedup();
    // Each CPU as a range: `--cores 1` would be a count, `--cores 1-1` is
    // CPU 1.
    cpus.iter()
        .map(|cpu| format!("{cpu}-{cpu}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ports_of_first(base: u16) -> u16 {
    ports(base, 1).peer
}

fn log_path(dir: &Path, n: u16) -> PathBuf {
    dir.join(format!("node-{n}.log"))
}

/// Stops every node still running: SIGTERM, so each drains and hands its
/// groups over, then SIGKILL for any still there after [`STOP_WAIT_MAX`].
pub fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        if child.try_wait().ok().flatten().is_none() {
            // SAFETY: kill(2) on a child this process started and has not
            // reaped, so the pid is still ours.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + STOP_WAIT_MAX;
    for child in children.iter_mut() {
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ports_do_not_overlap() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 1..=9 {
            let p = ports(9000, n);
            for port in [p.s3, p.admin]
                .into_iter()
                .chain((0..9).map(|s| p.peer + s))
            {
                assert!(seen.insert(port), "port {port} used twice");
            }
        }
    }

    #[test]
    fn each_node_gets_its_own_cpus_in_turn() {
        assert_eq!(node_cpus("2", 1, 16), "0-0,1-1");
        assert_eq!(node_cpus("2", 3, 16), "4-4,5-5");
        // Two CPUs, one each: nodes alternate rather than share CPU 0.
        assert_eq!(node_cpus("1", 1, 2), "0-0");
        assert_eq!(node_cpus("1", 2, 2), "1-1");
        assert_eq!(node_cpus("1", 3, 2), "0-0");
        assert_eq!(node_cpus("2", 2, 2), "0-0,1-1");
        assert_eq!(node_cpus("0-1", 2, 2), "0-1");
    }
}
