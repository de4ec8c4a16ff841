//! What the server spent on a step: its CPU seconds and its peak resident
//! memory, read from its Prometheus endpoint (`--server-metrics`) just
//! before and just after the measured phase. CPU-seconds per GB (and per
//! 1,000 operations) is the figure that holds across machines: on shared
//! cores it decides throughput, on a large host how many disks one node
//! can feed.
//!
//! The node exports `process_cpu_seconds_total` (user plus system time)
//! and `process_resident_memory_max_bytes`; any server with the first is
//! measured, the second is optional.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::SERVER_METRICS_TIMEOUT;

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
    fn urls_name_host_port_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:9001/metrics"),
            Ok(("127.0.0.1:9001", "/metrics"))
        );
        assert_eq!(split_url("http://h:1"), Ok(("h:1", "/metrics")));
        assert!(split_url("https://h:1/metrics").is_err());
    }
}
