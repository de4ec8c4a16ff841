//! The summary a person reads at the end of a run: the machine ceiling if
//! measured, then per step its throughput, status counts (503 and 429
//! apart from other errors), transport failures and latency percentiles.
//! Pure: renders a [`RunResult`] to text.

use std::fmt::Write;

use super::result::{RunResult, StepResult};
use crate::ceiling::Ceiling;
use crate::units::{rate, ByteSize};
use crate::workload::mix::MixOp;
use crate::workload::spec::WorkloadKind;

pub fn render(result: &RunResult) -> String {
    let mut out = String::new();
    match &result.target {
        Some(t) => {
            let _ = writeln!(
                out,
                "shoal-bench {} -> {} bucket {}",
                result.command, t.endpoint, t.bucket
            );
        }
        None => {
            let _ = writeln!(out, "shoal-bench {}", result.command);
        }
    }
    if let Some(s) = &result.scenario {
        let _ = writeln!(out, "scenario {} ({}, scale {})", s.name, s.file, s.scale);
    }
    if let Some(bucket) = result.bucket.as_ref().filter(|b| !b.usable) {
        let why = match (&bucket.status, &bucket.error_code, &bucket.message) {
            (Some(status), code, _) => format!("HTTP {status} {}", code.as_deref().unwrap_or("")),
            (None, _, Some(message)) => message.clone(),
            (None, _, None) => "no response".into(),
        };
        let _ = writeln!(out, "warning: creating the bucket failed: {}", why.trim());
    }
    if let Some(c) = &result.ceiling {
        out.push_str(&ceiling(c));
    }
    for step in &result.steps {
        out.push('\n');
        out.push_str(&self::step(step));
    }
    for sweep in &result.sweeps {
        let _ = writeln!(out, "\nsweep {}: throughput by concurrency", sweep.name);
        for p in &sweep.points {
            let _ = writeln!(
                out,
                "  c={:<5} {:>12}  {:>9.1} ops/s  p99 {}",
                p.concurrency,
                rate(p.bytes_per_s),
                p.ops_per_s,
                p.p99_ms.map_or("-".into(), |ms| format!("{ms:.1} ms"))
            );
        }
    }
    out
}

pub fn ceiling(c: &Ceiling) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "machine ceiling ({} in {}, {:.1} s):",
        ByteSize(c.disk_probe_bytes),
        c.dir,
        c.elapsed_s
    );
    let _ = writeln!(
        out,
        "  disk O_DIRECT write+fdatasync (4 MiB)  {}",
        rate(c.disk_write_fdatasync_bytes_per_s)
    );
    let _ = writeln!(
        out,
        "  disk O_DIRECT read (4 MiB)             {}",
        rate(c.disk_read_bytes_per_s)
    );
    let _ = writeln!(
        out,
        "  loopback TCP (1 MiB writes)            {}",
        rate(c.loopback_tcp_bytes_per_s)
    );
    for (name, h) in [("SHA-256", &c.sha256), ("MD5", &c.md5)] {
        let _ = writeln!(
            out,
            "  {name:<7} one core {}, {} cores {}{}",
            rate(h.per_core_bytes_per_s),
            h.cores,
            rate(h.all_cores_bytes_per_s),
            if h.pinned { " (pinned)" } else { "" }
        );
    }
    out
}

fn step(s: &StepResult) -> String {
    let mut out = heading(s);
    counts(s, &mut out);
    timings(s, &mut out);
    out
}

/// The step's name and what it ran.
fn heading(s: &StepResult) -> String {
    let mut out = String::new();
    let w = &s.workload;
    let amount = match (w.count, w.duration_s) {
        (Some(n), Some(d)) => format!("{n} ops or {d} s"),
        (Some(n), None) => format!("{n} ops"),
        (None, Some(d)) => format!("{d} s"),
        (None, None) => String::new(),
    };
    let writes = matches!(w.kind, WorkloadKind::Put | WorkloadKind::Mixed);
    let _ = writeln!(
        out,
        "step {}: {} {} x {amount}, concurrency {}{}{}{}",
        s.name,
        w.kind.name(),
        ByteSize(w.object_bytes),
        w.concurrency,
        if writes {
            format!(", payload {}", w.payload.name())
        } else {
            String::new()
        },
        if writes && w.expect_continue {
            ", expect 100-continue"
        } else {
            ""
        },
        w.mix.map_or(String::new(), |m| format!(
            ", mix GET {:.0}% STAT {:.0}% PUT {:.0}% DELETE {:.0}%",
            m.share(MixOp::Get) * 100.0,
            m.share(MixOp::Stat) * 100.0,
            m.share(MixOp::Put) * 100.0,
            m.share(MixOp::Delete) * 100.0
        )),
    );
    out
}

/// Throughput and what the responses were.
fn counts(s: &StepResult, out: &mut String) {
    let w = &s.workload;
    if let Some(p) = &s.prepare {
        let _ = writeln!(
            out,
            "  prepare: {} of {} objects written in {:.2} s",
            p.ok, p.objects, p.elapsed_s
        );
    }
    let _ = writeln!(
        out,
        "  {} ok of {} requests in {:.2} s: {}, {:.1} ops/s",
        s.ok,
        s.requests,
        s.elapsed_s,
        rate(s.throughput.bytes_per_s),
        s.throughput.ops_per_s
    );
    if let Some(l) = &s.list {
        let _ = writeln!(
            out,
            "  {} full listings ({} incomplete), {} keys: {:.0} keys/s{}",
            l.listings,
            l.incomplete,
            l.keys,
            l.keys_per_s,
            l.listing_ms.as_ref().map_or(String::new(), |t| format!(
                ", a listing p50 {:.1} ms, max {:.1} ms",
                t.p50_ms, t.max_ms
            )),
        );
    }
    if let Some(sc) = &s.schedule {
        let _ = writeln!(
            out,
            "  constant rate {} ops/s: {} started, {} late by over {} ms{}",
            sc.target_ops_per_s,
            sc.started,
            sc.late,
            sc.late_tolerance_ms,
            sc.late_by_ms.as_ref().map_or(String::new(), |l| format!(
                " (p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms)",
                l.p50_ms, l.p99_ms, l.max_ms
            )),
        );
    }
    if let Some(i) = &s.intervals {
        let _ = writeln!(
            out,
            "  per {} s interval ({} complete), slowest / median / fastest: {:.1} / {:.1} / {:.1} ops/s, {} / {} / {}",
            i.interval_s,
            i.complete,
            i.ops_per_s.slowest,
            i.ops_per_s.median,
            i.ops_per_s.fastest,
            rate(i.bytes_per_s.slowest),
            rate(i.bytes_per_s.median),
            rate(i.bytes_per_s.fastest),
        );
    }
    if s.per_op.len() > 1 {
        let ops: Vec<String> = s
            .per_op
            .iter()
            .map(|(op, o)| format!("{op} {:.1}", o.ops_per_s))
            .collect();
        let _ = writeln!(out, "  ops/s by kind: {}", ops.join(", "));
    }
    let statuses: Vec<String> = s
        .status_counts
        .iter()
        .map(|(code, n)| format!("{code} x{n}"))
        .collect();
    let _ = writeln!(
        out,
        "  status: {} | 503 SlowDown {} | 429 {} | other errors {} | transport {} (connect {}, io {}, timeout {})",
        if statuses.is_empty() { "none".into() } else { statuses.join(", ") },
        s.slow_down,
        s.too_many_requests,
        s.other_errors,
        s.transport_errors.total,
        s.transport_errors.connect,
        s.transport_errors.io,
        s.transport_errors.timeout,
    );
    if !s.error_codes.is_empty() {
        let codes: Vec<String> = s
            .error_codes
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        let _ = writeln!(out, "  error codes: {}", codes.join(", "));
    }
    if s.retries > 0 || s.verify_failures > 0 || w.verify {
        let _ = writeln!(
            out,
            "  retries {} | verify failures {}",
            s.retries, s.verify_failures
        );
    }
}

/// Latencies, the ceiling, the server's spend, error samples.
fn timings(s: &StepResult, out: &mut String) {
    for (op, l) in &s.latency_ms {
        let _ = writeln!(
            out,
            "  {op} latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
        );
    }
    for (op, l) in &s.ttfb_ms {
        let _ = writeln!(
            out,
            "  {op} time to first byte ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        );
    }
    for (op, l) in &s.rejected_latency_ms {
        let _ = writeln!(
            out,
            "  {op} 503/429 latency ms: p50 {:.2}  p99 {:.2}  max {:.2}",
            l.p50_ms, l.p99_ms, l.max_ms
        );
    }
    if let Some(f) = &s.ceiling_fraction {
        let _ = writeln!(
            out,
            "  {:.1}% of the {} ceiling ({})",
            f.fraction * 100.0,
            f.basis,
            rate(f.ceiling_bytes_per_s)
        );
    }
    if let Some(server) = &s.server {
        let per = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            out,
            "  server: {:.2} CPU-s, {} per GB, {} per 1,000 ops, peak RSS {}",
            server.cpu_s,
            per(server.cpu_s_per_gb),
            per(server.cpu_s_per_1000_ops),
            server
                .resident_max_bytes
                .map_or("-".to_string(), |b| format!("{} MiB", b >> 20)),
        );
    }
    for sample in &s.error_samples {
        let _ = writeln!(out, "  e.g. {sample}");
    }
}
