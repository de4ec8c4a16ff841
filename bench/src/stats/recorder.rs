//! Folds attempts into counts and histograms. Bounded: histograms have
//! fixed bounds, status codes are at most the 500 three-digit values, S3
//! error codes are capped at `ERROR_CODES_DISTINCT_MAX`, error samples at
//! `ERROR_SAMPLES_MAX`, the timeline at `TIMELINE_BUCKETS_MAX`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::late::LateStarts;
use super::timeline::{Bucket, Timeline};
use super::{Attempt, OpKind, StatusClass};
use crate::limits::{
    ERROR_CODES_DISTINCT_MAX, ERROR_SAMPLES_MAX, LATENCY_SIGNIFICANT_DIGITS, LATENCY_US_MAX,
};
use crate::s3::{Outcome, TransportKind};

/// Full listings of a list step.
#[derive(Debug)]
pub struct ListStats {
    /// Listings that reached the last page of the last bucket.
    pub complete: u64,
    /// Listings that ended early: a page failed or could not be read.
    pub incomplete: u64,
    /// Keys on 2xx pages, complete listings or not.
    pub keys: u64,
    /// How long each complete listing took, microseconds.
    pub listing_us: Histogram<u64>,
}

/// One operation's counts and latencies.
#[derive(Debug)]
pub struct OpStats {
    pub requests: u64,
    pub ok: u64,
    pub ok_bytes: u64,
    /// Latency of 2xx attempts, microseconds.
    pub ok_latency_us: Histogram<u64>,
    /// Latency of 503 and 429 attempts (how fast the server sheds load).
    pub rejected_latency_us: Histogram<u64>,
    /// Time to first byte of 2xx attempts that have one (GETs).
    pub ttfb_us: Histogram<u64>,
}

/// A duration as the histograms take it: microseconds, within bounds.
fn micros(d: std::time::Duration) -> u64 {
    (d.as_micros().min(u128::from(LATENCY_US_MAX)) as u64).max(1)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            requests: 0,
            ok: 0,
            ok_bytes: 0,
            ok_latency_us: new_histogram(),
            rejected_latency_us: new_histogram(),
            ttfb_us: new_histogram(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TransportCounts {
    pub connect: u64,
    pub io: u64,
    pub timeout: u64,
}

impl TransportCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.io + self.timeout
    }
}

#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    pub per_op: BTreeMap<OpKind, OpStats>,
    /// Every complete response by status code.
    pub status_counts: BTreeMap<u16, u64>,
    pub transport: TransportCounts,
    /// Non-2xx responses by S3 error code.
    pub error_codes: BTreeMap<String, u64>,
    /// Non-2xx responses whose code was missing or beyond the cap.
    pub error_codes_other: u64,
    pub error_samples: Vec<String>,
    /// Constant-rate steps: operations that started late.
    pub late: LateStarts,
    /// List steps: full listings and the keys they listed.
    pub list: ListStats,
    /// One-second buckets, for the JSON timeline.
    pub timeline: Timeline,
    /// `--interval` buckets, for the interval statistics.
    pub intervals: Timeline,
    /// HTTP attempts, retries included.
    pub requests: u64,
    /// Operations finished (their last attempt done).
    pub operations: u64,
    pub retries: u64,
    pub verify_failures: u64,
    pub slow_down: u64,
    pub too_many_requests: u64,
    pub other_errors: u64,
}

impl Recorder {
    /// `start`: the step's start; timeline seconds and intervals (of
    /// `interval`) count from it.
    pub fn new(start: Instant, interval: Duration) -> Recorder {
        Recorder {
            start,
            per_op: BTreeMap::new(),
            status_counts: BTreeMap::new(),
            transport: TransportCounts::default(),
            error_codes: BTreeMap::new(),
            error_codes_other: 0,
            error_samples: Vec::new(),
            late: LateStarts::default(),
            list: ListStats {
                complete: 0,
                incomplete: 0,
                keys: 0,
                listing_us: new_histogram(),
            },
            timeline: Timeline::per_second(),
            intervals: Timeline::new(interval),
            requests: 0,
            operations: 0,
            retries: 0,
            verify_failures: 0,
            slow_down: 0,
            too_many_requests: 0,
            other_errors: 0,
        }
    }

    pub fn record(&mut self, attempt: &Attempt) {
        self.requests += 1;
        self.retries += u64::from(attempt.is_retry);
        self.operations += u64::from(attempt.is_last);
        if let Some(delay) = attempt.start_delay {
            self.late.record(delay);
        }
        self.list.keys += attempt.keys_listed;
        if attempt.op == OpKind::List && attempt.is_last {
            match attempt.listing {
                Some(took) => {
                    self.list.complete += 1;
                    self.list
                        .listing_us
                        .record(micros(took))
                        .expect("latency clamped to the histogram bounds");
                }
                None => self.list.incomplete += 1,
            }
        }
        let since_start = attempt.finished.saturating_duration_since(self.start);
        let latency_us = micros(attempt.latency);
        let op = self.per_op.entry(attempt.op).or_insert_with(OpStats::new);
        op.requests += 1;
        // What this attempt adds to its second and to its interval.
        let mut bucket = Bucket::default();
        match &attempt.outcome {
            Outcome::Response {
                status,
                error_code,
                verified,
                ..
            } => {
                *self.status_counts.entry(*status).or_insert(0) += 1;
                if *verified == Some(false) {
                    self.verify_failures += 1;
                }
                match StatusClass::of(*status) {
                    StatusClass::Ok => {
                        op.ok += 1;
                        op.ok_bytes += attempt.payload_bytes;
                        op.ok_latency_us
                            .record(latency_us)
                            .expect("latency clamped to the histogram bounds");
                        if let Some(ttfb) = attempt.ttfb {
                            op.ttfb_us
                                .record(micros(ttfb))
                                .expect("latency clamped to the histogram bounds");
                        }
                        bucket.ok += 1;
                        bucket.bytes += attempt.payload_bytes;
                    }
                    class => {
                        match class {
                            StatusClass::SlowDown => self.slow_down += 1,
                            StatusClass::TooManyRequests => self.too_many_requests += 1,
                            _ => self.other_errors += 1,
                        }
                        if matches!(class, StatusClass::SlowDown | StatusClass::TooManyRequests) {
                            op.rejected_latency_us
                                .record(latency_us)
                                .expect("latency clamped to the histogram bounds");
                            bucket.rejected += 1;
                        } else {
                            bucket.errors += 1;
                        }
                        self.count_error_code(error_code.as_deref());
                    }
                }
            }
            Outcome::Transport { kind, message } => {
                bucket.errors += 1;
                match kind {
                    TransportKind::Connect => self.transport.connect += 1,
                    TransportKind::Io => self.transport.io += 1,
                    TransportKind::Timeout => self.transport.timeout += 1,
                }
                if self.error_samples.len() < ERROR_SAMPLES_MAX {
                    self.error_samples
                        .push(format!("{} {message}", attempt.op.name()));
                }
            }
        }
        self.timeline.at(since_start).add(&bucket);
        self.intervals.at(since_start).add(&bucket);
    }

    fn count_error_code(&mut self, code: Option<&str>) {
        match code {
            Some(code) if self.error_codes.contains_key(code) => {
                *self.error_codes.get_mut(code).expect("present") += 1;
            }
            Some(code) if self.error_codes.len() < ERROR_CODES_DISTINCT_MAX => {
                self.error_codes.insert(code.to_string(), 1);
            }
            _ => self.error_codes_other += 1,
        }
    }

    /// Successful attempts and the bytes they moved, over all operations.
    pub fn ok_totals(&self) -> (u64, u64) {
        self.per_op
            .values()
            .fold((0, 0), |(n, b), op| (n + op.ok, b + op.ok_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, code: Option<&str>) -> Outcome {
        Outcome::Response {
            status,
            body_bytes: 0,
            error_code: code.map(Into::into),
            verified: None,
        }
    }

    fn attempt(start: Instant, at_ms: u64, op: OpKind, outcome: Outcome) -> Attempt {
        Attempt {
            op,
            finished: start + Duration::from_millis(at_ms),
            latency: Duration::from_millis(3),
            ttfb: (op == OpKind::Get).then_some(Duration::from_millis(1)),
            start_delay: None,
            keys_listed: 0,
            listing: None,
            outcome,
            payload_bytes: 100,
            is_retry: false,
            is_last: true,
        }
    }

    #[test]
    fn statuses_and_transport_failures_add_up_to_the_requests() {
        let start = Instant::now();
        let mut r = Recorder::new(start, Duration::from_secs(1));
        let outcomes = [
            response(200, None),
            response(200, None),
            response(503, Some("SlowDown")),
            response(429, None),
            response(403, Some("SignatureDoesNotMatch")),
            response(500, Some("InternalError")),
            Outcome::Transport {
                kind: TransportKind::Timeout,
                message: "late".into(),
            },
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            r.record(&attempt(start, i as u64 * 400, OpKind::Put, outcome));
        }
        let statuses: u64 = r.status_counts.values().sum();
        assert_eq!(statuses + r.transport.total(), r.requests);
        assert_eq!(r.requests, 7);
        assert_eq!(
            (r.slow_down, r.too_many_requests, r.other_errors),
            (1, 1, 2)
        );
        assert_eq!(r.transport.timeout, 1);
        assert_eq!(r.error_codes["SlowDown"], 1);
        assert_eq!(r.error_codes["SignatureDoesNotMatch"], 1);
        assert_eq!(r.error_codes_other, 1, "the 429 had no code");
        assert_eq!(r.ok_totals(), (2, 200));
        let put = &r.per_op[&OpKind::Put];
        assert_eq!(put.ok_latency_us.len(), 2);
        assert_eq!(put.rejected_latency_us.len(), 2);
        assert!(put.ttfb_us.is_empty(), "PUTs have no first byte");
        assert_eq!(r.error_samples, vec!["put late".to_string()]);
        // 0, 400 ms in second 0; 800 in 0; 1200, 1600 in 1; 2000, 2400 in 2.
        let t = r.timeline.buckets();
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].ok, t[0].rejected, t[0].bytes), (2, 1, 200));
        assert_eq!((t[1].rejected, t[1].errors), (1, 1));
        assert_eq!(t[2].errors, 2);
    }

    #[test]
    fn error_codes_are_capped() {
        let start = Instant::now();
        let mut r = Recorder::new(start, Duration::from_secs(1));
        for i in 0..ERROR_CODES_DISTINCT_MAX + 5 {
            let code = format!("Code{i}");
            r.record(&attempt(start, 0, OpKind::Get, response(400, Some(&code))));
        }
        assert_eq!(r.error_codes.len(), ERROR_CODES_DISTINCT_MAX);
        assert_eq!(r.error_codes_other, 5);
    }

    #[test]
    fn retries_and_operations_are_counted_apart() {
        let start = Instant::now();
        let mut r = Recorder::new(start, Duration::from_secs(1));
        let mut first = attempt(start, 0, OpKind::Put, response(503, Some("SlowDown")));
        first.is_last = false;
        let mut second = attempt(start, 10, OpKind::Put, response(200, None));
        second.is_retry = true;
        r.record(&first);
        r.record(&second);
        assert_eq!((r.requests, r.operations, r.retries), (2, 1, 1));
    }

    #[test]
    fn listings_count_keys_of_every_page_and_time_the_complete_ones() {
        let start = Instant::now();
        let mut r = Recorder::new(start, Duration::from_secs(1));
        let page = |is_last, keys, listing| Attempt {
            is_last,
            keys_listed: keys,
            listing,
            ..attempt(start, 0, OpKind::List, response(200, None))
        };
        // A complete listing of three pages, then one cut short by a 500.
        r.record(&page(false, 1000, None));
        r.record(&page(false, 1000, None));
        r.record(&page(true, 17, Some(Duration::from_millis(40))));
        r.record(&page(false, 1000, None));
        r.record(&Attempt {
            is_last: true,
            ..attempt(start, 0, OpKind::List, response(500, None))
        });
        assert_eq!((r.list.complete, r.list.incomplete), (1, 1));
        assert_eq!(r.list.keys, 3017);
        assert_eq!(r.operations, 2);
        assert_eq!(r.list.listing_us.len(), 1);
        assert!((r.list.listing_us.max() as i64 - 40_000).abs() < 50);
    }

    #[test]
    fn failed_verification_is_counted() {
        let start = Instant::now();
        let mut r = Recorder::new(start, Duration::from_secs(1));
        let outcome = Outcome::Response {
            status: 200,
            body_bytes: 100,
            error_code: None,
            verified: Some(false),
        };
        r.record(&attempt(start, 0, OpKind::Get, outcome));
        assert_eq!(r.verify_failures, 1);
        // A 2xx GET's time to first byte is kept beside its latency; a
        // failed one's is not.
        let get = &r.per_op[&OpKind::Get];
        assert_eq!((get.ttfb_us.len(), get.ttfb_us.max()), (1, 1000));
        r.record(&attempt(start, 0, OpKind::Get, response(500, None)));
        assert_eq!(r.per_op[&OpKind::Get].ttfb_us.len(), 1);
    }
}
