//! Runs one step on the tokio runtime: an optional prepare phase (PUTs of
//! the objects a read, list or delete step needs), then the measured phase
//! (its workers are in `worker.rs`).
//! Each phase spawns its workers (one connection each) and one collector
//! task that owns the phase's [`Recorder`] and publishes running totals in
//! [`Live`] for the progress bar.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::keys::KeyPool;
use super::plan::Plan;
use super::progress::Progress;
use super::schedule::Schedule;
use super::spec::{StepSpec, WorkloadKind};
pub use super::target::Target;
use super::worker::{Shared, Worker};
use crate::limits::{ATTEMPT_CHANNEL_DEPTH, PREPARE_CONCURRENCY_MAX};
use crate::payload::{Payload, PayloadPool};
use crate::s3::conn::{attempt, BodyCheck, Connection};
use crate::s3::request::{RequestSigner, SendOptions};
use crate::s3::{Op, Outcome, PayloadMode};
use crate::server_usage::{ServerSample, ServerUsage};
use crate::stats::{Attempt, Live, Recorder};

/// What one phase measured.
pub struct Phase {
    pub recorder: Recorder,
    /// From the first request to the last response.
    pub elapsed: Duration,
}

pub struct StepRun {
    pub prepare: Option<Phase>,
    pub measured: Phase,
    /// What the server spent on the measured phase, when asked and read.
    pub server: Option<ServerUsage>,
}

/// How the bucket's creation went: created, already ours, or refused.
#[derive(Debug, Clone)]
pub struct BucketCheck {
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub message: Option<String>,
}

impl BucketCheck {
    /// 200, or 409 `BucketAlreadyOwnedByYou`.
    pub fn usable(&self) -> bool {
        match self.status {
            Some(200..=299) => true,
            Some(409) => self.error_code.as_deref() == Some("BucketAlreadyOwnedByYou"),
            _ => false,
        }
    }
}

/// Creates every bucket that is missing; the first refusal, if any, else
/// the first bucket's answer.
pub async fn ensure_buckets(target: &Target, request_timeout: Duration) -> BucketCheck {
    let mut first = None;
    for bucket in &target.buckets {
        let check = ensure_bucket(target, bucket, request_timeout).await;
        if !check.usable() {
            return check;
        }
        first.get_or_insert(check);
    }
    first.unwrap_or(BucketCheck {
        status: None,
        error_code: None,
        message: Some("no bucket".into()),
    })
}

/// Creates `bucket` if it is missing.
pub async fn ensure_bucket(
    target: &Target,
    bucket: &str,
    request_timeout: Duration,
) -> BucketCheck {
    let mut signer = RequestSigner::new(
        &target.credentials,
        &target.region,
        &target.endpoint.authority,
        bucket,
        SendOptions {
            payload: PayloadMode::Signed,
            expect_continue: false,
        },
    );
    let request = signer.build(&Op::CreateBucket, SystemTime::now());
    let mut slot: Option<Connection> = None;
    match attempt(
        &mut slot,
        &target.endpoint,
        request,
        BodyCheck::Count,
        request_timeout,
    )
    .await
    .outcome
    {
        Outcome::Response {
            status, error_code, ..
        } => BucketCheck {
            status: Some(status),
            error_code: error_code.map(String::from),
            message: None,
        },
        Outcome::Transport { message, .. } => BucketCheck {
            status: None,
            error_code: None,
            message: Some(message),
        },
    }
}

/// Runs `spec`: its prepare phase when it has one, then the measured phase.
pub async fn run_step(
    target: &Arc<Target>,
    spec: &StepSpec,
    payloads: &mut PayloadPool,
    progress: &Progress,
    seed: u64,
) -> StepRun {
    let payload = payloads.get(spec.object_bytes);
    let prepare = match spec.objects {
        Some(objects) if spec.kind.reads_existing() && spec.prepare => {
            let put = StepSpec {
                kind: WorkloadKind::Put,
                count: Some(objects),
                duration: None,
                // A listing step may run at concurrency 1 over a million
                // keys: write them at the most the prepare phase allows.
                concurrency: match spec.kind {
                    WorkloadKind::List => PREPARE_CONCURRENCY_MAX,
                    _ => spec.concurrency.min(PREPARE_CONCURRENCY_MAX),
                },
                objects: None,
                payload: PayloadMode::Unsigned,
                expect_continue: false,
                verify: false,
                ..spec.clone()
            };
            let label = format!("{} (prepare)", spec.name);
            Some(run_phase(target, &put, payload.clone(), progress, &label, seed).await)
        }
        _ => None,
    };
    let before = server_sample(target).await;
    let measured = run_phase(target, spec, payload, progress, &spec.name, seed).await;
    let server = match (before, server_sample(target).await) {
        (Some(before), Some(after)) => Some(ServerUsage::between(before, after)),
        _ => None,
    };
    StepRun {
        prepare,
        measured,
        server,
    }
}

/// One sample of the server's usage, if `--server-metrics` or
/// `--server-pid` says where; a failed one is reported and leaves the step
/// without server figures.
async fn server_sample(target: &Target) -> Option<ServerSample> {
    match target.server.as_ref()?.sample().await {
        Ok(sample) => Some(sample),
        Err(why) => {
            eprintln!("shoal-bench: server metrics: {why}");
            None
        }
    }
}

async fn run_phase(
    target: &Arc<Target>,
    spec: &StepSpec,
    payload: Arc<Payload>,
    progress: &Progress,
    label: &str,
    seed: u64,
) -> Phase {
    let plan = Plan::of(spec);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target: target.clone(),
        total: plan.total(),
        plan,
        payload,
        prefix: spec.prefix.clone(),
        options: SendOptions {
            payload: spec.payload,
            expect_continue: spec.expect_continue,
        },
        retries: spec.retries,
        verify: spec.verify,
        request_timeout: spec.request_timeout,
        seed,
        next: AtomicU64::new(0),
        deadline: spec.duration.map(|d| start + d),
        schedule: spec.rate.map(|rate| Schedule::new(start, rate)),
        keys: (spec.kind == WorkloadKind::Mixed)
            .then(|| Mutex::new(KeyPool::all_present(spec.objects.unwrap_or(1)))),
    });
    let live = Arc::new(Live::default());
    let bar = progress.phase(label, shared.total, spec.duration, live.clone());

    let (tx, mut rx) = mpsc::channel::<Attempt>(ATTEMPT_CHANNEL_DEPTH);
    let interval = spec.interval;
    let collector = tokio::spawn(async move {
        let mut recorder = Recorder::new(start, interval);
        while let Some(attempt) = rx.recv().await {
            live.add(&attempt);
            recorder.record(&attempt);
        }
        recorder
    });
    let workers: Vec<_> = (0..spec.concurrency as u64)
        .map(|id| tokio::spawn(Worker::new(id, shared.clone(), tx.clone()).run()))
        .collect();
    drop(tx);
    for w in workers {
        w.await.expect("workers do not panic");
    }
    let elapsed = start.elapsed();
    let recorder = collector.await.expect("the collector does not panic");
    bar.finish();
    Phase { recorder, elapsed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_conflicts_are_usable_only_when_ours() {
        let check = |status, code: Option<&str>| BucketCheck {
            status: Some(status),
            error_code: code.map(String::from),
            message: None,
        };
        assert!(check(200, None).usable());
        assert!(check(409, Some("BucketAlreadyOwnedByYou")).usable());
        assert!(!check(409, Some("BucketAlreadyExists")).usable());
        assert!(!check(403, Some("SignatureDoesNotMatch")).usable());
    }
}
