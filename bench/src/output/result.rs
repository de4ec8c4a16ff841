//! The JSON result, schema `shoal-bench/result/v1`. These types are the
//! schema: `bench/schema/result-v1.json` describes the same fields and the
//! end-to-end tests validate real output against it. Add fields freely;
//! renaming or removing one, or changing a unit, makes a `v2`.
//!
//! Conventions: rates are `*_bytes_per_s` / `*_per_s` (floats), times are
//! `*_s` or `*_ms`, counts are integers, absent values are `null`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::ceiling::Ceiling;
use crate::limits::RATE_LATE_TOLERANCE;
use crate::s3::PayloadMode;
use crate::stats::intervals::IntervalStats;
use crate::stats::recorder::OpStats;
use crate::stats::summary::{cdf, per_second, LatencySummary};
use crate::stats::timeline::Bucket;
use crate::stats::Recorder;
use crate::workload::mix::{Mix, MixOp};
use crate::workload::runner::{BucketCheck, Phase, StepRun};
use crate::workload::spec::{StepSpec, WorkloadKind};

pub const SCHEMA: &str = "shoal-bench/result/v1";

#[derive(Debug, Serialize)]
pub struct RunResult {
    pub schema: &'static str,
    pub tool: Tool,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// The subcommand: put, get, mixed, list, delete or run.
    pub command: String,
    pub scenario: Option<ScenarioInfo>,
    /// Null for `ceiling`, which sends no requests.
    pub target: Option<TargetInfo>,
    pub bucket: Option<BucketResult>,
    pub ceiling: Option<Ceiling>,
    pub steps: Vec<StepResult>,
    pub sweeps: Vec<SweepResult>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Tool {
    pub fn this() -> Tool {
        Tool {
            name: "shoal-bench",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: Option<String>,
    pub file: String,
    pub scale: f64,
}

#[derive(Debug, Serialize)]
pub struct TargetInfo {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// Every bucket the keys are spread over (`--buckets`).
    pub buckets: Vec<String>,
    pub access_key: String,
}

#[derive(Debug, Serialize)]
pub struct BucketResult {
    /// HTTP status of the create-bucket request; null if none came back.
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    /// Created now, or already ours.
    pub usable: bool,
}

impl From<&BucketCheck> for BucketResult {
    fn from(check: &BucketCheck) -> BucketResult {
        BucketResult {
            status: check.status,
            error_code: check.error_code.clone(),
            message: check.message.clone(),
            usable: check.usable(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct WorkloadInfo {
    pub kind: WorkloadKind,
    pub object_bytes: u64,
    pub count: Option<u64>,
    pub duration_s: Option<f64>,
    pub concurrency: usize,
    pub objects: Option<u64>,
    pub prefix: String,
    pub payload: PayloadMode,
    pub expect_continue: bool,
    pub retries: u32,
    pub verify: bool,
    pub prepare: bool,
    /// Mixed steps only: the GET share of the mix.
    pub read_fraction: Option<f64>,
    /// Mixed steps only: each operation's share, fractions that sum to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix: Option<Mix>,
    pub request_timeout_s: f64,
}

#[derive(Debug, Serialize)]
pub struct PrepareResult {
    pub objects: u64,
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub elapsed_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Throughput {
    pub bytes_per_s: f64,
    pub ops_per_s: f64,
}

/// One operation kind's share of a step.
#[derive(Debug, Serialize)]
pub struct OpResult {
    /// HTTP attempts, retries included.
    pub requests: u64,
    /// 2xx responses.
    pub ok: u64,
    pub bytes: u64,
    /// `ok / elapsed_s` of the step.
    pub ops_per_s: f64,
    pub bytes_per_s: f64,
}

#[derive(Debug, Serialize)]
pub struct TransportErrors {
    pub connect: u64,
    pub io: u64,
    pub timeout: u64,
    pub total: u64,
}

#[derive(Debug, Serialize)]
pub struct TimelinePoint {
    /// Whole seconds since the step started; the bucket covers [t_s, t_s+1).
    pub t_s: u64,
    pub ok: u64,
    pub bytes: u64,
    pub rejected: u64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
pub struct CeilingFraction {
    /// Which ceiling: `disk_write_fdatasync` (PUT) or
    /// `min_disk_read_loopback_tcp` (GET).
    pub basis: &'static str,
    pub ceiling_bytes_per_s: f64,
    pub fraction: f64,
}

/// How a constant-rate step (`--rate`) kept to its schedule.
#[derive(Debug, Serialize)]
pub struct ScheduleResult {
    /// The rate asked for.
    pub target_ops_per_s: f64,
    /// Operations started on the schedule.
    pub started: u64,
    /// Those started more than `late_tolerance_ms` after their time.
    pub late: u64,
    pub late_tolerance_ms: f64,
    /// How late those were; `None` when none was.
    pub late_by_ms: Option<LatencySummary>,
}

/// Full listings of a list step.
#[derive(Debug, Serialize)]
pub struct ListResult {
    /// Listings that reached the last page of every bucket.
    pub listings: u64,
    /// Listings that ended early (a page failed or could not be read).
    pub incomplete: u64,
    /// Keys on 2xx pages.
    pub keys: u64,
    /// `keys / elapsed_s`.
    pub keys_per_s: f64,
    /// How long a complete listing took; `None` without one.
    pub listing_ms: Option<LatencySummary>,
}

/// What the server spent on the measured phase (`--server-metrics`).
#[derive(Debug, Serialize)]
pub struct ServerResult {
    /// CPU seconds (user and system) the server process used.
    pub cpu_s: f64,
    /// Per GB (10^9 bytes) of payload moved; `None` when none moved.
    pub cpu_s_per_gb: Option<f64>,
    /// Per 1,000 successful operations; `None` without any.
    pub cpu_s_per_1000_ops: Option<f64>,
    /// The most the server process has had resident since it started, as
    /// read after the phase; `None` where the server does not say.
    pub resident_max_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct StepResult {
    pub name: String,
    pub sweep: Option<String>,
    pub workload: WorkloadInfo,
    pub prepare: Option<PrepareResult>,
    pub elapsed_s: f64,
    /// HTTP attempts, retries included: the sum of `status_counts` plus
    /// `transport_errors.total`.
    pub requests: u64,
    /// Operations finished (an operation may take several attempts).
    pub operations: u64,
    /// 2xx responses.
    pub ok: u64,
    /// Payload bytes moved by 2xx responses (PUT: object bytes sent; GET,
    /// LIST: body bytes received; DELETE: 0).
    pub bytes: u64,
    pub throughput: Throughput,
    /// Requests, successes and rates per operation kind (get, stat, put,
    /// list, delete): a mixed step's real mix.
    pub per_op: BTreeMap<String, OpResult>,
    /// Complete responses by HTTP status, keys are three-digit codes.
    pub status_counts: BTreeMap<String, u64>,
    /// 503 responses (S3 `SlowDown`).
    pub slow_down: u64,
    /// 429 responses.
    pub too_many_requests: u64,
    /// Every other non-2xx response.
    pub other_errors: u64,
    pub transport_errors: TransportErrors,
    /// Non-2xx responses by the `<Code>` in their body.
    pub error_codes: BTreeMap<String, u64>,
    /// Non-2xx responses with no code, or past the distinct-code cap.
    pub error_codes_other: u64,
    /// A few transport error messages.
    pub error_samples: Vec<String>,
    pub retries: u64,
    /// GETs whose body differed from what was written (`verify`).
    pub verify_failures: u64,
    /// 2xx latency per operation (put, get, stat, list, delete).
    pub latency_ms: BTreeMap<String, LatencySummary>,
    /// Time to first byte of 2xx GETs, from the same start as their
    /// latency: how soon a reader sees data.
    pub ttfb_ms: BTreeMap<String, LatencySummary>,
    /// 503/429 latency per operation: how fast load is shed.
    pub rejected_latency_ms: BTreeMap<String, LatencySummary>,
    /// 2xx latency CDF per operation: `[latency_ms, fraction]` points.
    pub latency_cdf_ms: BTreeMap<String, Vec<[f64; 2]>>,
    pub timeline: Vec<TimelinePoint>,
    /// Slowest, median and fastest throughput over the complete
    /// `--interval`s; `None` for a step shorter than one.
    pub intervals: Option<IntervalStats>,
    pub ceiling_fraction: Option<CeilingFraction>,
    pub server: Option<ServerResult>,
    /// Constant-rate steps: late starts; `None` for a closed loop.
    pub schedule: Option<ScheduleResult>,
    /// List steps: full listings and keys listed per second.
    pub list: Option<ListResult>,
}

/// Throughput against concurrency, for steps expanded from one sweep.
#[derive(Debug, Serialize)]
pub struct SweepResult {
    pub name: String,
    pub kind: WorkloadKind,
    pub object_bytes: u64,
    pub points: Vec<SweepPoint>,
}

#[derive(Debug, Serialize)]
pub struct SweepPoint {
    pub step: String,
    pub concurrency: usize,
    pub bytes_per_s: f64,
    pub ops_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub slow_down: u64,
}

impl StepResult {
    pub fn new(spec: &StepSpec, run: &StepRun, ceiling: Option<&Ceiling>) -> StepResult {
        let Phase {
            recorder: r,
            elapsed,
        } = &run.measured;
        let elapsed_s = elapsed.as_secs_f64();
        let (ok, bytes) = r.ok_totals();
        let bytes_per_s = per_second(bytes, elapsed_s);
        StepResult {
            name: spec.name.clone(),
            sweep: spec.sweep.clone(),
            workload: WorkloadInfo::of(spec),
            prepare: run.prepare.as_ref().map(|p| {
                let (ok, _) = p.recorder.ok_totals();
                PrepareResult {
                    objects: spec.objects.unwrap_or(0),
                    requests: p.recorder.requests,
                    ok,
                    failed: p.recorder.operations.saturating_sub(ok),
                    elapsed_s: p.elapsed.as_secs_f64(),
                }
            }),
            elapsed_s,
            requests: r.requests,
            operations: r.operations,
            ok,
            bytes,
            throughput: Throughput {
                bytes_per_s,
                ops_per_s: per_second(ok, elapsed_s),
            },
            per_op: per_op(r, elapsed_s),
            status_counts: r
                .status_counts
                .iter()
                .map(|(status, n)| (status.to_string(), *n))
                .collect(),
            slow_down: r.slow_down,
            too_many_requests: r.too_many_requests,
            other_errors: r.other_errors,
            transport_errors: TransportErrors {
                connect: r.transport.connect,
                io: r.transport.io,
                timeout: r.transport.timeout,
                total: r.transport.total(),
            },
            error_codes: r.error_codes.clone(),
            error_codes_other: r.error_codes_other,
            error_samples: r.error_samples.clone(),
            retries: r.retries,
            verify_failures: r.verify_failures,
            latency_ms: summaries(r, |s| &s.ok_latency_us),
            ttfb_ms: summaries(r, |s| &s.ttfb_us),
            rejected_latency_ms: summaries(r, |s| &s.rejected_latency_us),
            latency_cdf_ms: r
                .per_op
                .iter()
                .filter(|(_, s)| !s.ok_latency_us.is_empty())
                .map(|(op, s)| (op.name().to_string(), cdf(&s.ok_latency_us)))
                .collect(),
            timeline: timeline(r.timeline.buckets()),
            intervals: IntervalStats::of(&r.intervals, *elapsed),
            ceiling_fraction: ceiling.and_then(|c| ceiling_fraction(spec.kind, c, bytes_per_s)),
            server: run.server.map(|usage| ServerResult {
                cpu_s: usage.cpu_s,
                cpu_s_per_gb: (bytes > 0).then(|| usage.cpu_s / (bytes as f64 / 1e9)),
                cpu_s_per_1000_ops: (ok > 0).then(|| usage.cpu_s / (ok as f64 / 1000.0)),
                resident_max_bytes: usage.resident_max_bytes,
            }),
            list: (spec.kind == WorkloadKind::List).then(|| ListResult {
                listings: r.list.complete,
                incomplete: r.list.incomplete,
                keys: r.list.keys,
                keys_per_s: per_second(r.list.keys, elapsed_s),
                listing_ms: LatencySummary::of(&r.list.listing_us),
            }),
            schedule: spec.rate.map(|rate| ScheduleResult {
                target_ops_per_s: rate,
                started: r.late.started,
                late: r.late.late,
                late_tolerance_ms: RATE_LATE_TOLERANCE.as_secs_f64() * 1e3,
                late_by_ms: LatencySummary::of(&r.late.late_us),
            }),
        }
    }
}

impl WorkloadInfo {
    fn of(spec: &StepSpec) -> WorkloadInfo {
        let mixed = spec.kind == WorkloadKind::Mixed;
        WorkloadInfo {
            kind: spec.kind,
            object_bytes: spec.object_bytes,
            count: spec.count,
            duration_s: spec.duration.map(|d| d.as_secs_f64()),
            concurrency: spec.concurrency,
            objects: spec.objects,
            prefix: spec.prefix.clone(),
            payload: spec.payload,
            expect_continue: spec.expect_continue,
            retries: spec.retries,
            verify: spec.verify,
            prepare: spec.prepare && spec.kind.reads_existing(),
            read_fraction: mixed.then(|| spec.mix.share(MixOp::Get)),
            mix: mixed.then_some(spec.mix),
            request_timeout_s: spec.request_timeout.as_secs_f64(),
        }
    }
}

/// The summary of one histogram of each operation that has any.
fn summaries(
    r: &Recorder,
    histogram: impl Fn(&OpStats) -> &Histogram<u64>,
) -> BTreeMap<String, LatencySummary> {
    r.per_op
        .iter()
        .filter_map(|(op, s)| LatencySummary::of(histogram(s)).map(|l| (op.name().to_string(), l)))
        .collect()
}

fn per_op(r: &Recorder, elapsed_s: f64) -> BTreeMap<String, OpResult> {
    r.per_op
        .iter()
        .map(|(op, s)| {
            let result = OpResult {
                requests: s.requests,
                ok: s.ok,
                bytes: s.ok_bytes,
                ops_per_s: per_second(s.ok, elapsed_s),
                bytes_per_s: per_second(s.ok_bytes, elapsed_s),
            };
            (op.name().to_string(), result)
        })
        .collect()
}

fn timeline(buckets: &[Bucket]) -> Vec<TimelinePoint> {
    buckets
        .iter()
        .enumerate()
        .map(|(t, b)| TimelinePoint {
            t_s: t as u64,
            ok: b.ok,
            bytes: b.bytes,
            rejected: b.rejected,
            errors: b.errors,
        })
        .collect()
}

/// PUT throughput against the disk's, GET against what disk and network
/// allow; no other kind has one ceiling.
fn ceiling_fraction(kind: WorkloadKind, c: &Ceiling, bytes_per_s: f64) -> Option<CeilingFraction> {
    let (basis, ceiling_bytes_per_s) = match kind {
        WorkloadKind::Put => ("disk_write_fdatasync", c.put_bytes_per_s()),
        WorkloadKind::Get => ("min_disk_read_loopback_tcp", c.get_bytes_per_s()),
        _ => return None,
    };
    (ceiling_bytes_per_s > 0.0).then(|| CeilingFraction {
        basis,
        ceiling_bytes_per_s,
        fraction: bytes_per_s / ceiling_bytes_per_s,
    })
}

/// Groups swept steps, in the order their sweeps first appear.
pub fn sweeps(steps: &[StepResult]) -> Vec<SweepResult> {
    let mut out: Vec<SweepResult> = Vec::new();
    for step in steps {
        let Some(name) = &step.sweep else { continue };
        let point = SweepPoint {
            step: step.name.clone(),
            concurrency: step.workload.concurrency,
            bytes_per_s: step.throughput.bytes_per_s,
            ops_per_s: step.throughput.ops_per_s,
            p50_ms: step
                .latency_ms
                .get(primary_op(step.workload.kind))
                .map(|l| l.p50_ms),
            p99_ms: step
                .latency_ms
                .get(primary_op(step.workload.kind))
                .map(|l| l.p99_ms),
            slow_down: step.slow_down,
        };
        match out.iter_mut().find(|s| &s.name == name) {
            Some(sweep) => sweep.points.push(point),
            None => out.push(SweepResult {
                name: name.clone(),
                kind: step.workload.kind,
                object_bytes: step.workload.object_bytes,
                points: vec![point],
            }),
        }
    }
    out
}

/// The operation whose latency stands for a step (reads, for mixed).
pub fn primary_op(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Put => "put",
        WorkloadKind::Get | WorkloadKind::Mixed => "get",
        WorkloadKind::List => "list",
        WorkloadKind::Delete => "delete",
    }
}
