//! What the server spent on a step: its CPU seconds and its peak resident
//! memory, read from its Prometheus endpoint (`--server-metrics`) just
//! before and just after the measured phase. CPU-seconds per GB (and per
//! 1,000 operations) is the figure that holds across machines: on shared
//! cores it decides throughput, on a large host how many disks one node
//! can feed.
//!
//! The node exports `process_cpu_seconds_total` (user plus system time)
//! and `process_resident_memory_max_bytes`; any server with the first is
//! measured, the second is optional. A server on the same host that
//! exports neither (a peer store in a comparison) is measured from
//! `/proc/<pid>` instead (`--server-pid`): the same two figures.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::SERVER_METRICS_TIMEOUT;

/// Where the server's usage is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerProbe {
    /// Its Prometheus endpoint (`--server-metrics`).
    Metrics(String),
    /// Its process on this host (`--server-pid`).
    Pid(u32),
}

impl ServerProbe {
    pub async fn sample(&self) -> Result<ServerSample, String> {
        match self {
            ServerProbe::Metrics(url) => sample(url).await,
            ServerProbe::Pid(pid) => {
                let pid = *pid;
                // Two small /proc reads, off the runtime's workers anyway.
                tokio::task::spawn_blocking(move || sample_process(pid))
                    .await
                    .map_err(|e| format!("reading /proc/{pid}: {e}"))?
            }
        }
    }
}

/// The CPU time (user plus system, every thread) and peak resident memory
/// of process `pid`, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample_process(pid: u32) -> Result<ServerSample, String> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|e| format!("--server-pid {pid}: /proc/{pid}/{file}: {e}"))
    };
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_s <= 0 {
        return Err("sysconf(_SC_CLK_TCK) failed".into());
    }
    let ticks = cpu_ticks(&read("stat")?)
        .ok_or_else(|| format!("--server-pid {pid}: /proc/{pid}/stat has no utime and stime"))?;
    Ok(ServerSample {
        cpu_s: ticks as f64 / ticks_per_s as f64,
        resident_max_bytes: peak_resident_bytes(&read("status")?),
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM` of a `/proc/<pid>/status`, in bytes.
fn peak_resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One scrape of the server's process metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerSample {
    pub cpu_s: f64,
    pub resident_max_bytes: Option<u64>,
}

/// The server's usage over one measured phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerUsage {
    pub cpu_s: f64,
    /// Peak resident memory since the server started, read at the end.
    pub resident_max_bytes: Option<u64>,
}

impl ServerUsage {
    pub fn between(before: ServerSample, after: ServerSample) -> ServerUsage {
        ServerUsage {
            cpu_s: (after.cpu_s - before.cpu_s).max(0.0),
            resident_max_bytes: after.resident_max_bytes,
        }
    }
}

/// Scrapes `url` (`http://host:port/path`); the error says why not.
pub async fn sample(url: &str) -> Result<ServerSample, String> {
    let scrape = async {
        let (authority, path) = split_url(url)?;
        let mut stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect to {authority}: {e}"))?;
        // HTTP/1.0: the answer ends when the connection closes.
        let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send to {authority}: {e}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read from {authority}: {e}"))?;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or("no HTTP header in the answer")?;
        if head.split_whitespace().nth(1) != Some("200") {
            let status = head.lines().next().unwrap_or("").to_string();
            return Err(format!("{url} answered {status}"));
        }
        parse(body).ok_or_else(|| format!("{url} has no process_cpu_seconds_total"))
    };
    match tokio::time::timeout(SERVER_METRICS_TIMEOUT, scrape).await {
        Ok(sampled) => sampled,
        Err(_) => Err(format!(
            "{url} did not answer within {}",
            secs(SERVER_METRICS_TIMEOUT)
        )),
    }
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

/// `(host:port, /path)` of a plain-HTTP URL.
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--server-metrics {url}: only http:// URLs"))?;
    Ok(match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/metrics"),
    })
}

/// The sample in a Prometheus text exposition (each metric summed over
/// its series); `None` without the CPU counter.
pub fn parse(exposition: &str) -> Option<ServerSample> {
    let sum = |name: &str| -> Option<f64> {
        let values: Vec<f64> = exposition
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let metric = series.split('{').next()?;
                (metric == name).then(|| value.parse().ok())?
            })
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    Some(ServerSample {
        cpu_s: sum("process_cpu_seconds_total")?,
        resident_max_bytes: sum("process_resident_memory_max_bytes").map(|b| b as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_process_counters_and_ignores_the_rest() {
        let text =
            "# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\n\
                    process_cpu_seconds_total 12.5\nprocess_cpu_seconds_total_other 99\n\
                    process_resident_memory_max_bytes 1048576\nshoal_x{shard=\"0\"} 3\n";
        assert_eq!(
            parse(text),
            Some(ServerSample {
                cpu_s: 12.5,
                resident_max_bytes: Some(1 << 20)
            })
        );
        assert_eq!(parse("shoal_x 1\n"), None);
        let usage = ServerUsage::between(
            parse(text).unwrap(),
            parse(&text.replace("12.5", "20")).unwrap(),
        );
        assert_eq!(usage.cpu_s, 7.5);
    }

    #[test]
    fn proc_files_give_cpu_ticks_and_peak_resident_memory() {
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    1500 250 0 0 20 0 9 0 100 1000000 2000";
        assert_eq!(cpu_ticks(stat), Some(1750));
        assert_eq!(cpu_ticks("4242 (cut"), None);
        let status = "Name:\tshoal\nVmPeak:\t 900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(peak_resident_bytes(status), Some(2 << 20));
        assert_eq!(peak_resident_bytes("Name:\tx\n"), None);
        // This very process: some CPU spent, some memory resident.
        let me = sample_process(std::process::id()).unwrap();
        assert!(me.cpu_s >= 0.0 && me.resident_max_bytes.unwrap() > 0);
    }

    #[test]
    fn urls_name_host_port_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:9001/metrics"),
            Ok(("127.0.0.1:9001", "/metrics"))
        );
        assert_eq!(split_url("http://h:1"), Ok(("h:1", "/metrics")));
        assert!(split_url("https://h:1/metrics").is_err());
    }
}
