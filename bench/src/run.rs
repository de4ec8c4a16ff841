//! Runs an [`Invocation`]: the ceiling (if asked), the bucket, every step
//! in order on one tokio runtime, then the outputs. Steps never overlap;
//! a step's failed requests are results, not errors: only a bad setup
//! (no runtime, unwritable output, a refused ceiling directory) stops it.

use std::path::Path;
use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ceiling::{self, Ceiling, CeilingConfig};
use crate::error::BenchError;
use crate::limits::REQUEST_TIMEOUT_DEFAULT;
use crate::output::result::{
    self, BucketResult, RunResult, ScenarioInfo, StepResult, TargetInfo, Tool,
};
use crate::output::{human, write_json, Outputs};
use crate::payload::PayloadPool;
use crate::report;
use crate::workload::progress::Progress;
use crate::workload::runner::{ensure_buckets, run_step, Target};
use crate::workload::spec::StepSpec;

/// Everything one load command or scenario run needs.
#[derive(Debug)]
pub struct Invocation {
    pub command: String,
    pub target: Target,
    pub steps: Vec<StepSpec>,
    pub scenario: Option<ScenarioInfo>,
    pub ceiling: Option<CeilingConfig>,
    pub outputs: Outputs,
}

pub fn execute(inv: Invocation) -> Result<RunResult, BenchError> {
    let started_at = now_rfc3339();
    raise_open_files_limit();
    let ceiling = inv.ceiling.as_ref().map(ceiling::measure).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let target = Arc::new(inv.target);
    let (bucket, steps) = runtime.block_on(async {
        let bucket = ensure_buckets(&target, REQUEST_TIMEOUT_DEFAULT).await;
        let progress = Progress::for_stderr();
        let mut payloads = PayloadPool::default();
        let mut steps = Vec::with_capacity(inv.steps.len());
        for (i, spec) in inv.steps.iter().enumerate() {
            let run = run_step(&target, spec, &mut payloads, &progress, i as u64 + 1).await;
            steps.push(StepResult::new(spec, &run, ceiling.as_ref()));
        }
        (bucket, steps)
    });
    let result = RunResult {
        schema: result::SCHEMA,
        tool: Tool::this(),
        started_at,
        command: inv.command,
        scenario: inv.scenario,
        target: Some(TargetInfo {
            endpoint: target.endpoint.url.clone(),
            region: target.region.clone(),
            bucket: target.bucket.clone(),
            buckets: target.buckets.clone(),
            access_key: target.credentials.access_key.clone(),
        }),
        bucket: Some(BucketResult::from(&bucket)),
        ceiling,
        sweeps: result::sweeps(&steps),
        steps,
    };
    emit(&result, &inv.outputs)?;
    Ok(result)
}

/// `shoal-bench ceiling`.
pub fn execute_ceiling(config: &CeilingConfig, json: Option<&Path>) -> Result<Ceiling, BenchError> {
    let started_at = now_rfc3339();
    let measured = ceiling::measure(config)?;
    let result = RunResult {
        schema: result::SCHEMA,
        tool: Tool::this(),
        started_at,
        command: "ceiling".into(),
        scenario: None,
        target: None,
        bucket: None,
        ceiling: Some(measured.clone()),
        steps: Vec::new(),
        sweeps: Vec::new(),
    };
    emit(
        &result,
        &Outputs {
            json: json.map(Path::to_path_buf),
            report: None,
        },
    )?;
    Ok(measured)
}

/// The summary, then the JSON and the report if asked for.
fn emit(result: &RunResult, outputs: &Outputs) -> Result<(), BenchError> {
    let summary = human::render(result);
    if outputs.json_on_stdout() {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    if let Some(path) = &outputs.json {
        write_json(result, path)?;
    }
    if let Some(dir) = &outputs.report {
        let written = report::write(result, dir)?;
        eprintln!("report: {} files in {}", written.len(), dir.display());
    }
    Ok(())
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("every UTC time formats")
}

/// A 1024-connection step needs more descriptors than some defaults allow:
/// raise the soft limit to the hard one.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill in and then to read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
