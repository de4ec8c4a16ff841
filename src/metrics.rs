//! Node metrics in Prometheus text format.
//!
//! Each core writes only its own [`CoreMetrics`] (relaxed atomics, no
//! sharing on the hot path); shards publish [`ShardStats`]. A scrape, served
//! by the admin endpoint on one core, reads and sums them.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_shard::shard::ShardStats;

/// S3 operations, as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    ListObjects,
    PutObject,
    GetObject,
    HeadObject,
    DeleteObject,
    Unknown,
}

impl Operation {
    pub const ALL: [Operation; 10] = [
        Operation::ListBuckets,
        Operation::CreateBucket,
        Operation::HeadBucket,
        Operation::DeleteBucket,
        Operation::ListObjects,
        Operation::PutObject,
        Operation::GetObject,
        Operation::HeadObject,
        Operation::DeleteObject,
        Operation::Unknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Operation::ListBuckets => "ListBuckets",
            Operation::CreateBucket => "CreateBucket",
            Operation::HeadBucket => "HeadBucket",
            Operation::DeleteBucket => "DeleteBucket",
            Operation::ListObjects => "ListObjects",
            Operation::PutObject => "PutObject",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::DeleteObject => "DeleteObject",
            Operation::Unknown => "Unknown",
        }
    }
}

/// Status classes kept apart: what operators alert on.
const STATUS_CLASSES: [&str; 4] = ["2xx", "4xx", "5xx", "other"];

fn status_class(status: u16) -> usize {
    match status {
        200..=299 => 0,
        400..=499 => 1,
        500..=599 => 2,
        _ => 3,
    }
}

/// One core's request counters.
#[derive(Default)]
pub struct CoreMetrics {
    requests: [[AtomicU64; STATUS_CLASSES.len()]; Operation::ALL.len()],
    latency_us_sum: [AtomicU64; Operation::ALL.len()],
}

impl CoreMetrics {
    pub fn record_request(&self, operation: Operation, status: u16, latency: Duration) {
        let op = operation as usize;
        self.requests[op][status_class(status)].fetch_add(1, Ordering::Relaxed);
        self.latency_us_sum[op].fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Picks one counter out of a shard's stats.
type StatField = fn(&ShardStats) -> &AtomicU64;

/// Everything a scrape reads.
#[derive(Clone)]
pub struct Registry {
    pub cores: Arc<Vec<Arc<CoreMetrics>>>,
    pub shards: Arc<Vec<Arc<ShardStats>>>,
}

impl Registry {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP shoal_s3_requests_total S3 requests by operation and status class."
        )?;
        writeln!(out, "# TYPE shoal_s3_requests_total counter")?;
        for op in Operation::ALL {
            for (class_index, class) in STATUS_CLASSES.iter().enumerate() {
                let total: u64 = self
                    .cores
                    .iter()
                    .map(|c| c.requests[op as usize][class_index].load(Ordering::Relaxed))
                    .sum();
                writeln!(
                    out,
                    "shoal_s3_requests_total{{operation=\"{}\",status=\"{class}\"}} {total}",
                    op.label()
                )?;
            }
        }
        writeln!(
            out,
            "# HELP shoal_s3_request_seconds_sum Time spent serving S3 requests."
        )?;
        writeln!(out, "# TYPE shoal_s3_request_seconds_sum counter")?;
        for op in Operation::ALL {
            let us: u64 = self
                .cores
                .iter()
                .map(|c| c.latency_us_sum[op as usize].load(Ordering::Relaxed))
                .sum();
            writeln!(
                out,
                "shoal_s3_request_seconds_sum{{operation=\"{}\"}} {}",
                op.label(),
                us as f64 / 1e6
            )?;
        }
        let shard_counters: [(&str, &str, StatField); 5] = [
            (
                "shoal_blob_log_appends_total",
                "Records appended to the blob log.",
                |s| &s.blob_log_appends,
            ),
            (
                "shoal_blob_log_fsyncs_total",
                "fdatasync calls made by the blob log (group commit).",
                |s| &s.blob_log_fsyncs,
            ),
            (
                "shoal_blob_log_bytes_written_total",
                "Bytes written to the blob log, padding included.",
                |s| &s.blob_log_bytes_written,
            ),
            (
                "shoal_raft_log_appended_bytes_total",
                "Bytes appended to the raft log.",
                |s| &s.raft_log_appended_bytes,
            ),
            (
                "shoal_raft_entries_appended_total",
                "Entries appended to the raft log.",
                |s| &s.raft_entries_appended,
            ),
        ];
        for (name, help, field) in shard_counters {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} counter")?;
            for (shard, stats) in self.shards.iter().enumerate() {
                writeln!(
                    out,
                    "{name}{{shard=\"{shard}\"}} {}",
                    field(stats).load(Ordering::Relaxed)
                )?;
            }
        }
        writeln!(
            out,
            "# HELP shoal_shard_ops_inflight Requests a shard is serving now."
        )?;
        writeln!(out, "# TYPE shoal_shard_ops_inflight gauge")?;
        for (shard, stats) in self.shards.iter().enumerate() {
            writeln!(
                out,
                "shoal_shard_ops_inflight{{shard=\"{shard}\"}} {}",
                stats.ops_inflight.load(Ordering::Relaxed)
            )?;
        }
        Ok(())
    }
}
