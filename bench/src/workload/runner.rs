//! Runs one step on the tokio runtime: an optional prepare phase (PUTs of
//! the objects a read, list or delete step needs), then the measured phase.
//! Each phase spawns its workers (one connection each) and one collector
//! task that owns the phase's [`Recorder`] and publishes running totals in
//! [`Live`] for the progress bar.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::SeedableRng;
use tokio::sync::mpsc;

use super::keys::{Ended, KeyPool};
use super::mix::MixOp;
use super::plan::{key, Next, Plan};
use super::progress::Progress;
use super::schedule::Schedule;
use super::spec::{StepSpec, WorkloadKind};
use crate::limits::{
    ATTEMPT_CHANNEL_DEPTH, LIST_MAX_KEYS, LIST_PAGE_BYTES_MAX, PREPARE_CONCURRENCY_MAX,
    RATE_TIMER_SLACK, RETRY_BACKOFF_FIRST, RETRY_BACKOFF_MAX,
};
use crate::payload::{Payload, PayloadPool};
use crate::s3::conn::{attempt, BodyCheck, Connection, Reply};
use crate::s3::request::{RequestSigner, SendOptions};
use crate::s3::{listing, Endpoint, Op, Outcome, PayloadMode};
use crate::server_usage::{self, ServerSample, ServerUsage};
use crate::sigv4::Credentials;
use crate::stats::{Attempt, Live, OpKind, Recorder, StatusClass};

/// Where requests go and as whom.
#[derive(Debug)]
pub struct Target {
    pub endpoint: Endpoint,
    pub credentials: Credentials,
    pub region: String,
    /// The bucket named by `--bucket` (or the scenario).
    pub bucket: String,
    /// Where the keys go, round-robin by key index: `bucket` itself, or
    /// with `--buckets N`, `<bucket>-0` to `<bucket>-<N-1>`.
    pub buckets: Vec<String>,
    /// Where the server's process metrics are (`--server-metrics`).
    pub server_metrics: Option<String>,
}

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
        &target.endpoint.authority,
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

/// One scrape of the server's metrics, if `--server-metrics` names them;
/// a failed one is reported and leaves the step without server figures.
async fn server_sample(target: &Target) -> Option<ServerSample> {
    let url = target.server_metrics.as_deref()?;
    match server_usage::sample(url).await {
        Ok(sample) => Some(sample),
        Err(why) => {
            eprintln!("shoal-bench: server metrics: {why}");
            None
        }
    }
}

struct Shared {
    target: Arc<Target>,
    plan: Plan,
    payload: Arc<Payload>,
    prefix: String,
    options: SendOptions,
    retries: u32,
    verify: bool,
    request_timeout: Duration,
    seed: u64,
    next: AtomicU64,
    total: Option<u64>,
    deadline: Option<Instant>,
    /// Which keys exist, for a mixed step.
    keys: Option<Mutex<KeyPool>>,
    /// When each operation is meant to start (`--rate`).
    schedule: Option<Schedule>,
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

/// One connection's loop: takes operation numbers until the step's count
/// or deadline, and reports every attempt to the collector.
struct Worker {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Attempt>,
    signer: RequestSigner,
    rng: rand::rngs::StdRng,
    slot: Option<Connection>,
    /// The intended start of the operation about to be sent (`--rate`).
    scheduled: Option<Instant>,
}

impl Worker {
    fn new(id: u64, shared: Arc<Shared>, tx: mpsc::Sender<Attempt>) -> Worker {
        let target = &shared.target;
        let signer = RequestSigner::new(
            &target.credentials,
            &target.region,
            &target.endpoint.authority,
            &target.bucket,
            shared.options.clone(),
        );
        let rng =
            rand::rngs::StdRng::seed_from_u64(shared.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Worker {
            shared,
            tx,
            signer,
            rng,
            slot: None,
            scheduled: None,
        }
    }

    async fn run(mut self) {
        loop {
            let index = self.shared.next.fetch_add(1, Ordering::Relaxed);
            if self.shared.total.is_some_and(|total| index >= total)
                || self.shared.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return;
            }
            if let Some(schedule) = self.shared.schedule {
                let intended = schedule.intended(index);
                if self.shared.deadline.is_some_and(|d| intended >= d) {
                    return;
                }
                // Bounded: the intended time is before the deadline, or
                // the step is bounded by its count, each 1/rate apart.
                let wake = intended.checked_sub(RATE_TIMER_SLACK).unwrap_or(intended);
                tokio::time::sleep_until(wake.into()).await;
                self.scheduled = Some(intended);
            }
            let next = self.shared.plan.next(index, &mut self.rng);
            let carry_on = match next {
                Next::Mixed(want) => self.mixed(want).await,
                Next::List => self.listing().await,
                next => self.send(next).await.is_some(),
            };
            if !carry_on {
                return;
            }
        }
    }

    /// One operation of a mixed step, on a key checked out of the pool for
    /// its duration. False when the worker should stop.
    async fn mixed(&mut self, want: MixOp) -> bool {
        let keys = self
            .shared
            .keys
            .as_ref()
            .expect("mixed steps have a key pool");
        let taken = keys
            .lock()
            .expect("never poisoned")
            .checkout(want, &mut self.rng);
        // Unreachable: a step has at least one key per worker (spec.rs).
        let Some(taken) = taken else { return false };
        let next = match taken.op {
            MixOp::Get => Next::Get(taken.key),
            MixOp::Stat => Next::Stat(taken.key),
            MixOp::Put => Next::Put(taken.key),
            MixOp::Delete => Next::Delete(taken.key),
        };
        let outcome = self.send(next).await;
        let ended = match &outcome {
            Some(Outcome::Response { status: 404, .. }) => Ended::NotFound,
            Some(Outcome::Response { status, .. })
                if StatusClass::of(*status) == StatusClass::Ok =>
            {
                Ended::Ok
            }
            _ => Ended::Failed,
        };
        let keys = self
            .shared
            .keys
            .as_ref()
            .expect("mixed steps have a key pool");
        keys.lock().expect("never poisoned").checkin(taken, ended);
        outcome.is_some()
    }

    /// The request of a planned operation.
    fn request_of(&self, next: Next) -> (OpKind, Op, BodyCheck) {
        let shared = &self.shared;
        let key = |k| key(&shared.prefix, k);
        match next {
            Next::Put(k) => (
                OpKind::Put,
                Op::Put {
                    key: key(k),
                    payload: shared.payload.clone(),
                },
                BodyCheck::Count,
            ),
            Next::Get(k) => (
                OpKind::Get,
                Op::Get { key: key(k) },
                if shared.verify {
                    BodyCheck::Verify(shared.payload.data.clone())
                } else {
                    BodyCheck::Count
                },
            ),
            Next::Stat(k) => (OpKind::Stat, Op::Head { key: key(k) }, BodyCheck::Count),
            Next::Delete(k) => (OpKind::Delete, Op::Delete { key: key(k) }, BodyCheck::Count),
            Next::List | Next::Mixed(_) => {
                unreachable!("listings and mixed operations are dispatched by run()")
            }
        }
    }

    /// Sends one keyed operation until it succeeds or its retries run out,
    /// reporting every attempt. Its last outcome; `None` when the
    /// collector is gone.
    async fn send(&mut self, next: Next) -> Option<Outcome> {
        let (kind, op, check) = self.request_of(next);
        // Keys go round-robin over the buckets.
        let bucket = match next {
            Next::Put(k) | Next::Get(k) | Next::Stat(k) | Next::Delete(k) => {
                (k % self.shared.target.buckets.len() as u64) as usize
            }
            Next::List | Next::Mixed(_) => 0,
        };
        let reply = self
            .send_op(kind, &op, check, bucket, &mut |_, _| Conclusion::DONE)
            .await?;
        Some(reply.outcome)
    }

    /// One full listing: every page of the step's prefix in every bucket,
    /// each page a request (with its retries), the listing one operation.
    /// It ends early when a page fails or cannot be read. False when the
    /// collector is gone.
    async fn listing(&mut self) -> bool {
        let started = match self.scheduled {
            Some(intended) => intended.min(Instant::now()),
            None => Instant::now(),
        };
        let buckets = self.shared.target.buckets.len();
        for bucket in 0..buckets {
            let last_bucket = bucket + 1 == buckets;
            let mut continuation = None;
            loop {
                let op = Op::List {
                    prefix: self.shared.prefix.clone(),
                    max_keys: LIST_MAX_KEYS,
                    continuation: continuation.take(),
                };
                let mut page = None;
                let mut conclude = |reply: &Reply, finished: Instant| {
                    page = reply.body.as_deref().and_then(|b| listing::parse(b).ok());
                    let (ends_op, complete) = match &page {
                        None => (true, false),
                        Some(p) if p.truncated => (false, false),
                        Some(_) => (last_bucket, last_bucket),
                    };
                    Conclusion {
                        ends_op,
                        keys_listed: page.as_ref().map_or(0, |p| p.keys),
                        listing: complete.then(|| finished.saturating_duration_since(started)),
                    }
                };
                let check = BodyCheck::Keep(LIST_PAGE_BYTES_MAX);
                if self
                    .send_op(OpKind::List, &op, check, bucket, &mut conclude)
                    .await
                    .is_none()
                {
                    return false;
                }
                match page {
                    Some(p) if p.truncated => continuation = p.next_token,
                    Some(_) => break,
                    None => return true,
                }
            }
        }
        true
    }

    /// Sends `op` to `bucket` until it succeeds or its retries run out,
    /// reporting every attempt; `conclude` says what the last attempt's
    /// reply means for the operation. The last reply; `None` when the
    /// collector is gone.
    async fn send_op(
        &mut self,
        kind: OpKind,
        op: &Op,
        check: BodyCheck,
        bucket: usize,
        conclude: &mut (dyn FnMut(&Reply, Instant) -> Conclusion + Send),
    ) -> Option<Reply> {
        let authority = self.shared.target.endpoint.authority.clone();
        let mut tries = 0u32;
        loop {
            let bucket_name = &self.shared.target.buckets[bucket];
            let request = self.signer.build_in(bucket_name, op, SystemTime::now());
            // A scheduled operation is timed from when it was meant to
            // start, so waiting for a free worker counts in its latency.
            let now = Instant::now();
            // (One woken a little early is timed from when it started.)
            let (began, start_delay) = match self.scheduled.take() {
                Some(intended) => (
                    intended.min(now),
                    Some(now.saturating_duration_since(intended)),
                ),
                None => (now, None),
            };
            let reply = attempt(
                &mut self.slot,
                &authority,
                request,
                check.clone(),
                self.shared.request_timeout,
            )
            .await;
            let finished = Instant::now();
            let retry = tries < self.shared.retries && retryable(&reply.outcome);
            let end = if retry {
                Conclusion::RETRIED
            } else {
                conclude(&reply, finished)
            };
            let payload_bytes = match (&reply.outcome, kind) {
                (_, OpKind::Put) => self.shared.payload.len(),
                (Outcome::Response { body_bytes, .. }, OpKind::Get | OpKind::List) => *body_bytes,
                _ => 0,
            };
            let report = Attempt {
                op: kind,
                finished,
                latency: finished - began,
                // Time to first byte matters for reads of object bodies.
                ttfb: reply
                    .first_byte
                    .filter(|_| kind == OpKind::Get)
                    .map(|at| at.saturating_duration_since(began)),
                start_delay,
                outcome: reply.outcome.clone(),
                payload_bytes,
                is_retry: tries > 0,
                is_last: end.ends_op,
                keys_listed: end.keys_listed,
                listing: end.listing,
            };
            self.tx.send(report).await.ok()?;
            if !retry {
                return Some(reply);
            }
            tokio::time::sleep(backoff(tries)).await;
            tries += 1;
        }
    }
}

/// What an operation's last attempt means for it.
struct Conclusion {
    /// It ends the operation (a listing page may not).
    ends_op: bool,
    /// Keys on a listing page.
    keys_listed: u64,
    /// A complete listing ended: how long it took.
    listing: Option<Duration>,
}

impl Conclusion {
    const DONE: Conclusion = Conclusion {
        ends_op: true,
        keys_listed: 0,
        listing: None,
    };
    const RETRIED: Conclusion = Conclusion {
        ends_op: false,
        keys_listed: 0,
        listing: None,
    };
}

fn retryable(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Transport { .. } => true,
        Outcome::Response { status, .. } => StatusClass::of(*status).retryable(*status),
    }
}

/// Wait before retry number `tries` (from 0): doubling, capped.
pub fn backoff(tries: u32) -> Duration {
    RETRY_BACKOFF_FIRST
        .saturating_mul(1u32.checked_shl(tries).unwrap_or(u32::MAX))
        .min(RETRY_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::TransportKind;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), RETRY_BACKOFF_FIRST);
        assert_eq!(backoff(1), RETRY_BACKOFF_FIRST * 2);
        assert_eq!(backoff(40), RETRY_BACKOFF_MAX);
    }

    #[test]
    fn only_busy_or_failed_servers_are_retried() {
        let status = |status| Outcome::Response {
            status,
            body_bytes: 0,
            error_code: None,
            verified: None,
        };
        assert!(retryable(&status(503)));
        assert!(retryable(&status(429)));
        assert!(retryable(&status(500)));
        assert!(!retryable(&status(403)));
        assert!(!retryable(&status(404)));
        assert!(!retryable(&status(200)));
        assert!(retryable(&Outcome::Transport {
            kind: TransportKind::Io,
            message: String::new()
        }));
    }

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
