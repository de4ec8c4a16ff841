//! `--report DIR`: `report.md` with the run's tables, the JSON result as
//! `result.json`, and PNG plots beside them: throughput over time (bytes
//! and operations per second, one line per step), the latency CDF of each
//! step's main operation, and throughput against concurrency for each
//! sweep. Built from the [`RunResult`] alone, so it says exactly what the
//! JSON says.

pub mod chart;
pub mod glyphs;
pub mod ticks;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chart::{LineChart, Series, XTicks};

use crate::error::BenchError;
use crate::output::human;
use crate::output::result::{primary_op, RunResult, StepResult};
use crate::units::{rate, ByteSize};

const MIB: f64 = (1u64 << 20) as f64;

/// Writes the report; returns the files written.
pub fn write(result: &RunResult, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let mut figures = String::new();

    if !result.steps.is_empty() {
        let path = dir.join("throughput.png");
        chart::render(
            &LineChart {
                title: "Throughput over time".into(),
                x_title: "seconds since step start".into(),
                y_title: "MiB/s".into(),
                x_ticks: XTicks::Auto,
                y_max: None,
                series: per_step(&result.steps, |s| {
                    s.timeline
                        .iter()
                        .map(|p| (p.t_s as f64, p.bytes as f64 / MIB))
                        .collect()
                }),
            },
            &path,
        )?;
        written.push(path);
        let _ = writeln!(
            figures,
            "## Throughput over time\n\n![throughput](throughput.png)\n\n\
             x: seconds since the step started (1 s buckets; the last one is partial); \
             y: MiB/s of payload moved by 2xx responses; one line per step.\n"
        );

        let path = dir.join("ops.png");
        chart::render(
            &LineChart {
                title: "Operations over time".into(),
                x_title: "seconds since step start".into(),
                y_title: "2xx responses/s".into(),
                x_ticks: XTicks::Auto,
                y_max: None,
                series: per_step(&result.steps, |s| {
                    s.timeline
                        .iter()
                        .map(|p| (p.t_s as f64, p.ok as f64))
                        .collect()
                }),
            },
            &path,
        )?;
        written.push(path);
        let _ = writeln!(
            figures,
            "![operations](ops.png)\n\nx: seconds since the step started; y: 2xx responses per second.\n"
        );

        let path = dir.join("latency-cdf.png");
        chart::render(
            &LineChart {
                title: "Latency CDF (2xx)".into(),
                x_title: "latency ms".into(),
                y_title: "fraction at or below".into(),
                x_ticks: XTicks::Auto,
                y_max: Some(1.0),
                series: per_step(&result.steps, |s| {
                    s.latency_cdf_ms
                        .get(primary_op(s.workload.kind))
                        .map(|points| points.iter().map(|p| (p[0], p[1])).collect())
                        .unwrap_or_default()
                }),
            },
            &path,
        )?;
        written.push(path);
        let _ = writeln!(
            figures,
            "## Latency CDF\n\n![latency CDF](latency-cdf.png)\n\n\
             x: latency in ms of 2xx responses of each step's main operation (GET for mixed); \
             y: fraction of responses at or below it.\n"
        );
    }

    for sweep in &result.sweeps {
        let file = format!("sweep-{}.png", slug(&sweep.name));
        let path = dir.join(&file);
        let at: Vec<(f64, String)> = sweep
            .points
            .iter()
            .map(|p| ((p.concurrency as f64).log2(), p.concurrency.to_string()))
            .collect();
        chart::render(
            &LineChart {
                title: format!("{}: throughput vs concurrency", sweep.name),
                x_title: "concurrency (log scale)".into(),
                y_title: "MiB/s".into(),
                x_ticks: XTicks::At(at),
                y_max: None,
                series: vec![Series {
                    label: format!("{} {}", sweep.kind.name(), ByteSize(sweep.object_bytes)),
                    points: sweep
                        .points
                        .iter()
                        .map(|p| ((p.concurrency as f64).log2(), p.bytes_per_s / MIB))
                        .collect(),
                }],
            },
            &path,
        )?;
        written.push(path);
        let _ = writeln!(
            figures,
            "## Sweep {}\n\n![sweep {}]({file})\n\n\
             x: concurrent connections (log2 scale); y: MiB/s of 2xx payload.\n",
            sweep.name, sweep.name
        );
    }

    let path = dir.join("result.json");
    crate::output::write_json(result, &path)?;
    written.push(path);

    let path = dir.join("report.md");
    let text = markdown(result, &figures);
    std::fs::write(&path, text).map_err(|source| BenchError::Write {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(written)
}

fn per_step(steps: &[StepResult], points: impl Fn(&StepResult) -> Vec<(f64, f64)>) -> Vec<Series> {
    steps
        .iter()
        .map(|s| Series {
            label: s.name.clone(),
            points: points(s),
        })
        .collect()
}

fn markdown(result: &RunResult, figures: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# shoal-bench report\n");
    let _ = writeln!(md, "- command: `{}`", result.command);
    let _ = writeln!(md, "- started: {}", result.started_at);
    if let Some(t) = &result.target {
        let _ = writeln!(
            md,
            "- endpoint: {} (region {}, bucket `{}`)",
            t.endpoint, t.region, t.bucket
        );
    }
    if let Some(s) = &result.scenario {
        let _ = writeln!(
            md,
            "- scenario: `{}` from `{}`, scale {}",
            s.name, s.file, s.scale
        );
        if let Some(d) = &s.description {
            let _ = writeln!(md, "- {d}");
        }
    }
    let _ = writeln!(
        md,
        "- schema: `{}` full result in [`result.json`](result.json)\n",
        result.schema
    );

    if let Some(c) = &result.ceiling {
        let _ = writeln!(md, "## Machine ceiling\n\n```\n{}```\n", human::ceiling(c));
    }

    let _ = writeln!(md, "## Steps\n");
    let _ = writeln!(
        md,
        "| step | workload | size | conc | ok / requests | throughput | ops/s | p50 ms | p99 ms | p99.9 ms | max ms | 503 | 429 | other errors | transport | of ceiling |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for s in &result.steps {
        let l = s.latency_ms.get(primary_op(s.workload.kind));
        let ms = |f: fn(&crate::stats::summary::LatencySummary) -> f64| {
            l.map_or("-".into(), |l| format!("{:.2}", f(l)))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} / {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.name,
            s.workload.kind.name(),
            ByteSize(s.workload.object_bytes),
            s.workload.concurrency,
            s.ok,
            s.requests,
            rate(s.throughput.bytes_per_s),
            s.throughput.ops_per_s,
            ms(|l| l.p50_ms),
            ms(|l| l.p99_ms),
            ms(|l| l.p999_ms),
            ms(|l| l.max_ms),
            s.slow_down,
            s.too_many_requests,
            s.other_errors,
            s.transport_errors.total,
            s.ceiling_fraction.as_ref().map_or("-".into(), |f| format!("{:.1}%", f.fraction * 100.0)),
        );
    }
    md.push('\n');
    let _ = writeln!(md, "### Status codes\n");
    for s in &result.steps {
        let statuses: Vec<String> = s
            .status_counts
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let codes: Vec<String> = s
            .error_codes
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let _ = writeln!(
            md,
            "- **{}**: {}{}",
            s.name,
            if statuses.is_empty() {
                "no responses".into()
            } else {
                statuses.join(", ")
            },
            if codes.is_empty() {
                String::new()
            } else {
                format!(" (S3 codes: {})", codes.join(", "))
            },
        );
        for sample in &s.error_samples {
            let _ = writeln!(md, "  - `{sample}`");
        }
    }
    md.push('\n');
    md.push_str(figures);
    md
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
