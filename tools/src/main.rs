//! `shoal-ctl`: the operator's view of a running node, through its admin
//! endpoint. Speaks plain HTTP to `--admin-addr`; never touches a data
//! directory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "shoal-ctl", about = "Inspect a running Shoal node")]
struct Cli {
    /// The node's admin endpoint.
    #[arg(long, env = "SHOAL_ADMIN_ADDR", default_value = "127.0.0.1:9001")]
    admin_addr: String,
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
}

const TIMEOUT: Duration = Duration::from_secs(5);

fn get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = match cli.command {
        Command::Health => "/healthz",
        Command::Shards | Command::Metrics => "/metrics",
    };
    match get(&cli.admin_addr, path) {
        Ok((200, body)) => {
            match cli.command {
                Command::Health => println!("healthy"),
                Command::Shards => print!("{}", shards(&body)),
                Command::Metrics => print!("{body}"),
            }
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("shoal-ctl: {path} answered {status}: {body}");
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
}
