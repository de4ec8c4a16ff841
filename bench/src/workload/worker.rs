//! One worker of a phase: its connection, signer and random generator,
//! and the loop that takes operation numbers from the phase's counter
//! until its count or deadline, waits for each one's slot in constant-rate
//! mode, runs it (a keyed request, a mixed operation on a checked-out key,
//! or a full listing) and reports every attempt to the collector.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::SeedableRng;
use tokio::sync::mpsc;

use super::keys::{Ended, KeyPool};
use super::mix::MixOp;
use super::plan::{key, Next, Plan};
use super::retry::{backoff, retryable};
use super::schedule::Schedule;
use super::target::Target;
use crate::limits::{LIST_MAX_KEYS, LIST_PAGE_BYTES_MAX, RATE_TIMER_SLACK};
use crate::payload::Payload;
use crate::s3::conn::{attempt, BodyCheck, Connection, Reply};
use crate::s3::request::{RequestSigner, SendOptions};
use crate::s3::{listing, Op, Outcome};
use crate::stats::{Attempt, OpKind, StatusClass};

/// What every worker of one phase shares.
pub(super) struct Shared {
    pub(super) target: Arc<Target>,
    pub(super) plan: Plan,
    pub(super) payload: Arc<Payload>,
    pub(super) prefix: String,
    pub(super) options: SendOptions,
    pub(super) retries: u32,
    pub(super) verify: bool,
    pub(super) request_timeout: Duration,
    pub(super) seed: u64,
    pub(super) next: AtomicU64,
    pub(super) total: Option<u64>,
    pub(super) deadline: Option<Instant>,
    /// Which keys exist, for a mixed step.
    pub(super) keys: Option<Mutex<KeyPool>>,
    /// When each operation is meant to start (`--rate`).
    pub(super) schedule: Option<Schedule>,
}

/// One connection's loop: takes operation numbers until the step's count
/// or deadline, and reports every attempt to the collector.
pub(super) struct Worker {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Attempt>,
    signer: RequestSigner,
    rng: rand::rngs::StdRng,
    slot: Option<Connection>,
    /// The intended start of the operation about to be sent (`--rate`).
    scheduled: Option<Instant>,
}

impl Worker {
    pub(super) fn new(id: u64, shared: Arc<Shared>, tx: mpsc::Sender<Attempt>) -> Worker {
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

    pub(super) async fn run(mut self) {
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
        let endpoint = self.shared.target.endpoint.clone();
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
                &endpoint,
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
