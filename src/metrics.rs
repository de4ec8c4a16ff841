//! Node metrics in Prometheus text format.
//!
//! Each core writes only its own [`CoreMetrics`] (relaxed atomics on its
//! own cache lines; nothing shared on the hot path); shards publish
//! [`ShardStats`]. A scrape, served by the admin endpoint on one core, reads
//! and sums them. Label values are fixed sets resolved to array indexes, so
//! recording never formats or looks up a string.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::disk_space::Disks;
use std::time::Duration;

use shoal_shard::admission::{
    AdmissionStats, BudgetSnapshot, NodeBudgets, Protocol, Stage, WaitHistogram, WAIT_BOUNDS_S,
};
use shoal_shard::blob_log::GROUP_COMMIT_BATCH_BOUNDS;
use shoal_shard::meta::ReadCompactionStats;
use shoal_shard::shard::ShardStats;

/// How many operation labels the request counters keep: one per S3
/// operation Shoal serves, plus "NotImplemented" and "Unknown". The labels
/// themselves come with the [`Registry`] (the S3 front end owns them, in
/// `s3::op`, and checks their count against this at compile time).
pub const OPERATIONS: usize = 60;

/// Status codes S3 answers with, each its own label value; anything else
/// is counted as `other`.
const STATUS_CODES: [u16; 17] = [
    200, 204, 206, 304, 400, 403, 404, 405, 409, 411, 412, 413, 416, 429, 500, 501, 503,
];
const STATUS_SLOTS: usize = STATUS_CODES.len() + 1;

fn status_slot(status: u16) -> usize {
    STATUS_CODES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUS_CODES.len())
}

/// Upper bounds (seconds) of the request-duration histogram.
const LATENCY_BOUNDS_S: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const LATENCY_SLOTS: usize = LATENCY_BOUNDS_S.len() + 1;

const OPS: usize = OPERATIONS;

/// One core's request counters. Only its own core writes them.
pub struct CoreMetrics {
    requests: [[AtomicU64; STATUS_SLOTS]; OPS],
    /// Non-cumulative bucket counts; the scrape accumulates them.
    latency_buckets: [[AtomicU64; LATENCY_SLOTS]; OPS],
    latency_us_sum: [AtomicU64; OPS],
    bytes_in: AtomicU64,
    /// Objects whose bodies went into their manifests (`--embed-max`).
    embedded_objects: AtomicU64,
    bytes_out: AtomicU64,
    md5_batches: AtomicU64,
    md5_chunks: AtomicU64,
    /// Chunk bytes this core's GETs hold (`s3::downloads`).
    download_held_bytes: AtomicU64,
    download_refused: AtomicU64,
}

impl Default for CoreMetrics {
    fn default() -> Self {
        CoreMetrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency_buckets: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency_us_sum: std::array::from_fn(|_| AtomicU64::new(0)),
            bytes_in: AtomicU64::new(0),
            embedded_objects: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            md5_batches: AtomicU64::new(0),
            md5_chunks: AtomicU64::new(0),
            download_held_bytes: AtomicU64::new(0),
            download_refused: AtomicU64::new(0),
        }
    }
}

impl CoreMetrics {
    /// Counts one request; `latency` is the time to the response headers.
    /// One request answered; `operation` indexes the registry's labels.
    pub fn record_request(&self, operation: usize, status: u16, latency: Duration) {
        assert!(operation < OPS, "operation label {operation} out of range");
        let op = operation;
        self.requests[op][status_slot(status)].fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BOUNDS_S
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(LATENCY_BOUNDS_S.len());
        self.latency_buckets[op][bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_us_sum[op].fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Request body bytes received (as sent on the wire).
    pub fn add_bytes_in(&self, bytes: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One object body received whole for its manifest.
    pub fn add_embedded_object(&self) {
        self.embedded_objects.fetch_add(1, Ordering::Relaxed);
    }

    /// One MD5 lane batch of `chunks` chunks ran.
    pub fn record_md5_batch(&self, chunks: usize) {
        self.md5_batches.fetch_add(1, Ordering::Relaxed);
        self.md5_chunks.fetch_add(chunks as u64, Ordering::Relaxed);
    }

    /// (batches, chunks) the MD5 lanes of this core have run.
    pub fn md5_batches(&self) -> (u64, u64) {
        (
            self.md5_batches.load(Ordering::Relaxed),
            self.md5_chunks.load(Ordering::Relaxed),
        )
    }

    /// Response body bytes sent.
    pub fn add_bytes_out(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes taken from (positive) or given back to (negative) this
    /// core's download budget.
    pub fn add_download_held(&self, delta: i64) {
        // Wrapping add of the two's complement: a give-back never exceeds
        // what was taken, so the sum never goes below zero.
        self.download_held_bytes
            .fetch_add(delta as u64, Ordering::Relaxed);
    }

    pub fn download_held_bytes(&self) -> u64 {
        self.download_held_bytes.load(Ordering::Relaxed)
    }

    /// A GET found no download budget in time (503 SlowDown).
    pub fn count_download_refused(&self) {
        self.download_refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a scrape reads.
#[derive(Clone)]
pub struct Registry {
    /// Free space on the data directory, against the reserve.
    pub disks: Arc<Disks>,
    pub cores: Arc<Vec<Arc<CoreMetrics>>>,
    pub shards: Arc<Vec<Arc<ShardStats>>>,
    /// What each shard's metadata-store listings found, by shard.
    pub read_compactions: Arc<Vec<Arc<ReadCompactionStats>>>,
    pub budgets: Arc<NodeBudgets>,
    /// Admission stats by core, then shard (one per gate).
    pub admission: Arc<Vec<Vec<Arc<AdmissionStats>>>>,
    /// The `operation` label of each request counter, by index.
    pub operation_labels: &'static [&'static str; OPERATIONS],
}

/// Picks one gauge out of a shard's budget snapshot.
type SnapshotField = fn(&BudgetSnapshot) -> u64;

/// Picks one counter out of a shard's stats.
type StatField = fn(&ShardStats) -> &AtomicU64;

/// Writes one labelled histogram series from non-cumulative bucket counts
/// (one per bound, then the overflow bucket), as Prometheus wants it:
/// cumulative `_bucket`s up to `+Inf`, then `_sum` and `_count`.
fn write_histogram<B: std::fmt::Display>(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[B],
    buckets: &[u64],
    sum: impl std::fmt::Display,
) -> std::fmt::Result {
    assert_eq!(
        buckets.len(),
        bounds.len() + 1,
        "{name}: one bucket per bound plus +Inf"
    );
    let mut cumulative = 0;
    for (count, bound) in buckets.iter().zip(bounds.iter().map(Some).chain([None])) {
        cumulative += count;
        match bound {
            Some(le) => writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}")?,
            None => writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}")?,
        }
    }
    writeln!(out, "{name}_sum{{{labels}}} {sum}")?;
    writeln!(out, "{name}_count{{{labels}}} {cumulative}")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

impl Registry {
    fn write_read_compactions(&self, out: &mut String) -> std::fmt::Result {
        type Field = fn(&ReadCompactionStats) -> &AtomicU64;
        let counters: [(&str, &str, Field); 3] = [
            (
                "shoal_meta_listing_hidden_entries_total",
                "Overwritten or deleted metadata entries listings stepped over.",
                |s| &s.hidden_entries,
            ),
            (
                "shoal_meta_read_compactions_started_total",
                "Compactions listings started because they stepped over too many hidden entries.",
                |s| &s.started,
            ),
            (
                "shoal_meta_read_compactions_finished_total",
                "Compactions listings started that have finished.",
                |s| &s.finished,
            ),
        ];
        for (name, help, field) in counters {
            header(out, name, "counter", help)?;
            for (shard, stats) in self.read_compactions.iter().enumerate() {
                writeln!(
                    out,
                    "{name}{{shard=\"{shard}\"}} {}",
                    field(stats).load(Ordering::Relaxed)
                )?;
            }
        }
        Ok(())
    }

    fn write_admission(&self, out: &mut String) -> std::fmt::Result {
        let gauges: [(&str, &str, SnapshotField); 3] = [
            (
                "shoal_s3_put_admission_inflight_bytes",
                "PUT body bytes admitted and not yet released, by shard.",
                |s| s.inflight_bytes,
            ),
            (
                "shoal_s3_put_admission_capacity_bytes",
                "PUT admission budget of each shard's own slice.",
                |s| s.capacity_bytes,
            ),
            (
                "shoal_s3_put_admission_borrowed_bytes",
                "Bytes a shard holds of the node-wide shared pool.",
                |s| s.borrowed_bytes,
            ),
        ];
        let snapshots: Vec<_> = self.budgets.shards().iter().map(|b| b.snapshot()).collect();
        for (name, help, field) in gauges {
            header(out, name, "gauge", help)?;
            for snapshot in &snapshots {
                writeln!(
                    out,
                    "{name}{{shard=\"{}\"}} {}",
                    snapshot.shard,
                    field(snapshot)
                )?;
            }
        }
        let shared = self.budgets.shared();
        header(
            out,
            "shoal_s3_put_admission_shared_capacity_bytes",
            "gauge",
            "Capacity of the node-wide shared admission pool.",
        )?;
        writeln!(
            out,
            "shoal_s3_put_admission_shared_capacity_bytes {}",
            shared.capacity_bytes()
        )?;
        header(
            out,
            "shoal_s3_put_admission_shared_inflight_bytes",
            "gauge",
            "Bytes borrowed from the shared admission pool.",
        )?;
        writeln!(
            out,
            "shoal_s3_put_admission_shared_inflight_bytes {}",
            shared.inflight_bytes()
        )?;

        let name = "shoal_s3_put_admission_rejections_total";
        header(
            out,
            name,
            "counter",
            "PUTs answered 503 SlowDown by admission control, by shard, stage and protocol.",
        )?;
        for shard in 0..self.budgets.shards().len() {
            for stage in Stage::ALL {
                for protocol in Protocol::ALL {
                    let total: u64 = self
                        .admission
                        .iter()
                        .map(|core| core[shard].rejections(stage, protocol))
                        .sum();
                    writeln!(
                        out,
                        "{name}{{shard=\"{shard}\",stage=\"{}\",protocol=\"{}\"}} {total}",
                        stage.label(),
                        protocol.label()
                    )?;
                }
            }
        }

        let name = "shoal_s3_put_admission_wait_seconds";
        header(
            out,
            name,
            "histogram",
            "Time PUTs waited for admission budget, by stage and protocol.",
        )?;
        for stage in Stage::ALL {
            for protocol in Protocol::ALL {
                let mut merged: Option<WaitHistogram> = None;
                for stats in self.admission.iter().flatten() {
                    let h = stats.wait_histogram(stage, protocol);
                    match &mut merged {
                        Some(m) => m.merge(&h),
                        None => merged = Some(h),
                    }
                }
                let Some(h) = merged else { continue };
                let labels = format!(
                    "stage=\"{}\",protocol=\"{}\"",
                    stage.label(),
                    protocol.label()
                );
                write_histogram(
                    out,
                    name,
                    &labels,
                    &WAIT_BOUNDS_S,
                    &h.bucket_counts,
                    h.sum_seconds(),
                )?;
            }
        }
        Ok(())
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = self.write(&mut out);
        out
    }

    fn sum(&self, field: impl Fn(&CoreMetrics) -> &AtomicU64) -> u64 {
        self.cores
            .iter()
            .map(|c| field(c).load(Ordering::Relaxed))
            .sum()
    }

    fn write(&self, out: &mut String) -> std::fmt::Result {
        header(
            out,
            "shoal_s3_requests_total",
            "counter",
            "S3 requests answered, by operation and HTTP status.",
        )?;
        for (op, label) in self.operation_labels.iter().enumerate() {
            for slot in 0..STATUS_SLOTS {
                let total = self.sum(|c| &c.requests[op][slot]);
                if total == 0 && slot != 0 {
                    continue; // keep the exposition small; 200 is always present
                }
                let status = STATUS_CODES
                    .get(slot)
                    .map_or("other".to_string(), |s| s.to_string());
                writeln!(
                    out,
                    "shoal_s3_requests_total{{operation=\"{label}\",status=\"{status}\"}} {total}"
                )?;
            }
        }

        header(
            out,
            "shoal_s3_request_duration_seconds",
            "histogram",
            "Time from request head to response head, by operation.",
        )?;
        for (op, label) in self.operation_labels.iter().enumerate() {
            let buckets: Vec<u64> = (0..LATENCY_SLOTS)
                .map(|slot| self.sum(|c| &c.latency_buckets[op][slot]))
                .collect();
            let sum_s = self.sum(|c| &c.latency_us_sum[op]) as f64 / 1e6;
            let labels = format!("operation=\"{label}\"");
            let name = "shoal_s3_request_duration_seconds";
            write_histogram(out, name, &labels, &LATENCY_BOUNDS_S, &buckets, sum_s)?;
        }

        header(
            out,
            "shoal_s3_received_bytes_total",
            "counter",
            "Request body bytes received.",
        )?;
        writeln!(
            out,
            "shoal_s3_received_bytes_total {}",
            self.sum(|c| &c.bytes_in)
        )?;
        header(
            out,
            "shoal_s3_embedded_objects_total",
            "counter",
            "Object bodies received small enough (--embed-max) to be kept in their manifests instead of blob-log chunks.",
        )?;
        writeln!(
            out,
            "shoal_s3_embedded_objects_total {}",
            self.sum(|c| &c.embedded_objects)
        )?;
        header(
            out,
            "shoal_s3_sent_bytes_total",
            "counter",
            "Response body bytes sent.",
        )?;
        writeln!(
            out,
            "shoal_s3_sent_bytes_total {}",
            self.sum(|c| &c.bytes_out)
        )?;

        header(
            out,
            "shoal_get_budget_held_bytes",
            "gauge",
            "Chunk bytes the node's GETs hold (read ahead or not yet taken by their clients), against --get-budget.",
        )?;
        writeln!(
            out,
            "shoal_get_budget_held_bytes {}",
            self.sum(|c| &c.download_held_bytes)
        )?;
        header(
            out,
            "shoal_get_budget_refused_total",
            "counter",
            "GETs answered 503 SlowDown because the download budget stayed full for --admission-timeout.",
        )?;
        writeln!(
            out,
            "shoal_get_budget_refused_total {}",
            self.sum(|c| &c.download_refused)
        )?;

        header(
            out,
            "shoal_md5_lane_batches_total",
            "counter",
            "MD5 lane batches run (one SIMD pass over several uploads' chunks).",
        )?;
        writeln!(
            out,
            "shoal_md5_lane_batches_total {}",
            self.sum(|c| &c.md5_batches)
        )?;
        header(
            out,
            "shoal_md5_lane_chunks_total",
            "counter",
            "Chunks hashed by MD5 lane batches; divided by batches, the lane occupancy.",
        )?;
        writeln!(
            out,
            "shoal_md5_lane_chunks_total {}",
            self.sum(|c| &c.md5_chunks)
        )?;

        let shard_counters: [(&str, &str, &str, StatField); 43] = [
            (
                "shoal_lifecycle_expired_current_total",
                "counter",
                "Current versions lifecycle rules expired (a delete marker under versioning).",
                |s| &s.lifecycle_expired_current,
            ),
            (
                "shoal_lifecycle_expired_noncurrent_total",
                "counter",
                "Noncurrent versions lifecycle rules removed.",
                |s| &s.lifecycle_expired_noncurrent,
            ),
            (
                "shoal_lifecycle_delete_markers_removed_total",
                "counter",
                "Delete markers left alone that lifecycle rules removed.",
                |s| &s.lifecycle_markers_removed,
            ),
            (
                "shoal_lifecycle_uploads_aborted_total",
                "counter",
                "Incomplete multipart uploads lifecycle rules aborted.",
                |s| &s.lifecycle_uploads_aborted,
            ),
            (
                "shoal_lifecycle_examined_total",
                "counter",
                "Object versions and uploads the lifecycle worker examined.",
                |s| &s.lifecycle_examined,
            ),
            (
                "shoal_blob_log_appends_total",
                "counter",
                "Chunk records appended to the blob log.",
                |s| &s.blob_log_appends,
            ),
            (
                "shoal_blob_log_fsyncs_total",
                "counter",
                "fdatasync calls made by the blob log.",
                |s| &s.blob_log_fsyncs,
            ),
            (
                "shoal_blob_log_bytes_written_total",
                "counter",
                "Bytes written to the blob log, headers and padding included.",
                |s| &s.blob_log_bytes_written,
            ),
            (
                "shoal_raft_log_appended_bytes_total",
                "counter",
                "Bytes appended to the raft log (manifests and chunk refs).",
                |s| &s.raft_log_appended_bytes,
            ),
            (
                "shoal_raft_entries_appended_total",
                "counter",
                "Entries appended to the raft log.",
                |s| &s.raft_entries_appended,
            ),
            (
                "shoal_raft_entries_proposed_total",
                "counter",
                "Entries this node proposed as its groups' leader.",
                |s| &s.raft_entries_proposed,
            ),
            (
                "shoal_raft_commands_proposed_total",
                "counter",
                "Commands those entries carried (concurrent writes share an entry).",
                |s| &s.raft_commands_proposed,
            ),
            (
                "shoal_chunkblob_replication_degraded_total",
                "counter",
                "Chunks made durable on fewer nodes than --min-blob-replicas (two or more).",
                |s| &s.chunk_replication_degraded,
            ),
            (
                "shoal_chunkblob_unrecoverable_total",
                "counter",
                "Chunks a manifest names that no member could provide.",
                |s| &s.chunk_unrecoverable,
            ),
            (
                "shoal_chunkblob_damaged_total",
                "counter",
                "Indexed chunks whose record on this node was found damaged or lost (by recovery or a read).",
                |s| &s.chunk_damaged,
            ),
            (
                "shoal_chunkblob_repaired_total",
                "counter",
                "Damaged chunks a read replaced with a SHA-256-checked copy from another member.",
                |s| &s.chunk_repaired,
            ),
            (
                "shoal_scrub_checked_bytes_total",
                "counter",
                "Payload bytes the scrub re-read and found intact.",
                |s| &s.scrub.checked_bytes,
            ),
            (
                "shoal_scrub_passes_total",
                "counter",
                "Scrub passes finished (every indexed chunk re-read once).",
                |s| &s.scrub.passes,
            ),
            (
                "shoal_scrub_pass_checked_bytes",
                "gauge",
                "Payload bytes the current (or last) scrub pass has checked.",
                |s| &s.scrub.pass_checked_bytes,
            ),
            (
                "shoal_scrub_pass_live_bytes",
                "gauge",
                "Payload bytes indexed when the current (or last) scrub pass began.",
                |s| &s.scrub.pass_live_bytes,
            ),
            (
                "shoal_scrub_damaged_total",
                "counter",
                "Damaged chunks the scrub found.",
                |s| &s.scrub.found,
            ),
            (
                "shoal_scrub_repaired_total",
                "counter",
                "Damaged chunks the scrub replaced with a good copy from another member.",
                |s| &s.scrub.repaired,
            ),
            (
                "shoal_scrub_unrepaired_total",
                "counter",
                "Damaged chunks the scrub found that no member could replace.",
                |s| &s.scrub.unrepaired,
            ),
            (
                "shoal_chunkblob_push_backlog_total",
                "counter",
                "Chunk pushes not sent because too many to that member were in flight (it catches up instead).",
                |s| &s.chunk_push_backlog,
            ),
            (
                "shoal_chunkblob_catchup_fetched_total",
                "counter",
                "Chunks fetched in the background after their refs were applied.",
                |s| &s.chunk_catchup_fetched,
            ),
            (
                "shoal_chunkblob_catchup_failed_total",
                "counter",
                "Background chunk fetches no member could answer.",
                |s| &s.chunk_catchup_failed,
            ),
            (
                "shoal_chunkblob_catchup_pending",
                "gauge",
                "Chunks waiting for a background fetch.",
                |s| &s.chunk_catchup_pending,
            ),
            (
                "shoal_chunkblob_catchup_dropped_total",
                "counter",
                "Chunks not queued for a background fetch because the queue was full.",
                |s| &s.chunk_catchup_dropped,
            ),
            (
                "shoal_chunkblob_inline_writes_total",
                "counter",
                "Chunks this node wrote inside raft entries (inline mode) as leader.",
                |s| &s.chunk_inline_writes,
            ),
            (
                "shoal_raft_snapshot_bytes",
                "gauge",
                "Bytes of the latest raft snapshot built or installed on this node.",
                |s| &s.raft_snapshot_bytes,
            ),
            (
                "shoal_blob_live_bytes",
                "gauge",
                "Payload bytes of the chunks the blob index points at (as of the last sweep).",
                |s| &s.blob_live_bytes,
            ),
            (
                "shoal_blob_disk_bytes",
                "gauge",
                "Bytes the blob log's segment files take on disk (as of the last sweep); minus live bytes, what is dead or not yet released.",
                |s| &s.blob_disk_bytes,
            ),
            (
                "shoal_blob_released_bytes_total",
                "counter",
                "Bytes given back to the file system: holes punched over dead records, segments removed.",
                |s| &s.blob_released_bytes,
            ),
            (
                "shoal_blob_segments_removed_total",
                "counter",
                "Blob log segments deleted because none of their records was live.",
                |s| &s.blob_segments_removed,
            ),
            (
                "shoal_blob_compacted_bytes_total",
                "counter",
                "Payload bytes copied forward by compaction, which frees mostly dead segments where the file system cannot punch holes.",
                |s| &s.blob_compacted_bytes,
            ),
            (
                "shoal_gc_chunks_forgotten_total",
                "counter",
                "Chunks removed from the blob index: collected, or never referred to (orphans of failed uploads).",
                |s| &s.gc_chunks_forgotten,
            ),
            (
                "shoal_gc_chunks_waiting",
                "gauge",
                "Unreferenced chunks still within --gc-grace or pinned.",
                |s| &s.gc_chunks_waiting,
            ),
            (
                "shoal_gc_chunks_pinned",
                "gauge",
                "Chunks pinned by uploads, commits and reads in progress.",
                |s| &s.gc_chunks_pinned,
            ),
            (
                "shoal_gc_orphans_forgotten_total",
                "counter",
                "Of the forgotten chunks, those no object ever referred to (orphans of failed or cut-off uploads).",
                |s| &s.gc_orphans_forgotten,
            ),
            (
                "shoal_gc_chunks_queued",
                "gauge",
                "Chunks at zero references waiting out --gc-grace before their group collects them (counted up to 1048576).",
                |s| &s.gc_chunks_queued,
            ),
            (
                "shoal_gc_chunks_collected_total",
                "counter",
                "Chunks named in collect entries this node proposed as its group's leader (one referred to again meanwhile is kept).",
                |s| &s.gc_chunks_collected,
            ),
            (
                "shoal_shard_ops_inflight",
                "gauge",
                "Requests a shard is serving now.",
                |s| &s.ops_inflight,
            ),
            (
                "shoal_hop_queue_depth",
                "gauge",
                "Requests queued on cross-core hop channels toward a shard.",
                |s| &s.hop_queue_depth,
            ),
        ];
        for (name, kind, help, field) in shard_counters {
            header(out, name, kind, help)?;
            for (shard, stats) in self.shards.iter().enumerate() {
                writeln!(
                    out,
                    "{name}{{shard=\"{shard}\"}} {}",
                    field(stats).load(Ordering::Relaxed)
                )?;
            }
        }

        self.write_read_compactions(out)?;
        self.write_admission(out)?;

        let name = "shoal_blob_log_group_commit_batch_size";
        header(
            out,
            name,
            "histogram",
            "Appends made durable by one group commit (one fdatasync round).",
        )?;
        for (shard, stats) in self.shards.iter().enumerate() {
            let buckets: Vec<u64> = stats
                .group_commit_batches
                .iter()
                .map(|count| count.load(Ordering::Relaxed))
                .collect();
            // Every durable append was made durable by exactly one batch.
            let appends = stats.blob_log_appends.load(Ordering::Relaxed);
            let labels = format!("shard=\"{shard}\"");
            write_histogram(
                out,
                name,
                &labels,
                &GROUP_COMMIT_BATCH_BOUNDS,
                &buckets,
                appends,
            )?;
        }
        Ok(())
    }
}
