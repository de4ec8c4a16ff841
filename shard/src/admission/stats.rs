//! Admission counters for the metrics endpoint: rejections and wait times,
//! by stage and protocol.
//!
//! One [`AdmissionStats`] per core: that core's gates and entry peeks write
//! it with relaxed atomics on its own cache lines, and a scrape on any core
//! reads and sums all of them. Labels are fixed enums resolved to array
//! indexes, so recording never formats or looks up a string. Sizes are
//! fixed at compile time: `STAGES × PROTOCOLS` counters and histograms of
//! [`WAIT_BOUNDS_S`]`.len() + 1` buckets each.
//!
//! The gauges (in-flight, capacity, borrowed bytes per shard) are not here:
//! they are read straight from the budgets (see `ShardBudget::snapshot`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where a PUT was refused or waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The entry peek before the body is read (and any charge the caller
    /// chooses to label as its first).
    PreReserve = 0,
    /// A per-chunk charge while the body streams.
    PerBatch = 1,
}

impl Stage {
    pub const ALL: [Stage; 2] = [Stage::PreReserve, Stage::PerBatch];

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Stage::PreReserve => "prereserve",
            Stage::PerBatch => "perbatch",
        }
    }
}

/// How the PUT body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// A plain body of `Content-Length` bytes.
    FixedLength = 0,
    /// `aws-chunked` (streaming SigV4 or unsigned with trailer): the
    /// decoded length is known only as it decodes.
    Chunked = 1,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::FixedLength, Protocol::Chunked];

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::FixedLength => "fixed-length",
            Protocol::Chunked => "chunked",
        }
    }
}

/// Upper bounds, in seconds, of the wait-time histogram buckets; a last
/// bucket (`+Inf`) takes the rest. From half a millisecond (a wake-up on a
/// busy core) to the default 30 s timeout.
pub const WAIT_BOUNDS_S: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of the wait-time histogram, `+Inf` included.
pub const WAIT_BUCKETS: usize = WAIT_BOUNDS_S.len() + 1;

const STAGES: usize = Stage::ALL.len();
const PROTOCOLS: usize = Protocol::ALL.len();

/// One core's admission counters.
#[derive(Debug)]
pub struct AdmissionStats {
    rejections: [[AtomicU64; PROTOCOLS]; STAGES],
    /// Non-cumulative bucket counts; [`WaitHistogram::cumulative`] adds
    /// them up for rendering.
    wait_buckets: [[[AtomicU64; WAIT_BUCKETS]; PROTOCOLS]; STAGES],
    wait_us_sum: [[AtomicU64; PROTOCOLS]; STAGES],
}

impl Default for AdmissionStats {
    fn default() -> Self {
        AdmissionStats {
            rejections: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            wait_buckets: std::array::from_fn(|_| {
                std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
            }),
            wait_us_sum: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl AdmissionStats {
    /// Counts one PUT refused with `503 SlowDown`.
    pub fn record_rejection(&self, stage: Stage, protocol: Protocol) {
        self.rejections[stage as usize][protocol as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long one charge waited, granted or not (zero when a
    /// unit was free at once).
    pub fn record_wait(&self, stage: Stage, protocol: Protocol, waited: Duration) {
        let (s, p) = (stage as usize, protocol as usize);
        self.wait_buckets[s][p][wait_bucket(waited)].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.wait_us_sum[s][p].fetch_add(micros, Ordering::Relaxed);
    }

    pub fn rejections(&self, stage: Stage, protocol: Protocol) -> u64 {
        self.rejections[stage as usize][protocol as usize].load(Ordering::Relaxed)
    }

    pub fn wait_histogram(&self, stage: Stage, protocol: Protocol) -> WaitHistogram {
        let (s, p) = (stage as usize, protocol as usize);
        WaitHistogram {
            bucket_counts: std::array::from_fn(|b| {
                self.wait_buckets[s][p][b].load(Ordering::Relaxed)
            }),
            sum_us: self.wait_us_sum[s][p].load(Ordering::Relaxed),
        }
    }
}

/// The bucket a wait of `waited` is counted in.
fn wait_bucket(waited: Duration) -> usize {
    let seconds = waited.as_secs_f64();
    WAIT_BOUNDS_S
        .iter()
        .position(|&bound| seconds <= bound)
        .unwrap_or(WAIT_BOUNDS_S.len())
}

/// A read of one stage and protocol's wait-time histogram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitHistogram {
    /// Waits per bucket, not cumulative: `bucket_counts[i]` counts waits of
    /// at most `WAIT_BOUNDS_S[i]` seconds that no smaller bound covers; the
    /// last counts the rest.
    pub bucket_counts: [u64; WAIT_BUCKETS],
    pub sum_us: u64,
}

impl WaitHistogram {
    pub fn count(&self) -> u64 {
        self.bucket_counts.iter().sum()
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_us as f64 / 1e6
    }

    /// Cumulative counts as Prometheus wants them (`le` = the bound); the
    /// last is `+Inf` and equals [`WaitHistogram::count`].
    pub fn cumulative(&self) -> [u64; WAIT_BUCKETS] {
        let mut total = 0;
        std::array::from_fn(|b| {
            total += self.bucket_counts[b];
            total
        })
    }

    /// Adds another core's histogram into this one.
    pub fn merge(&mut self, other: &WaitHistogram) {
        for (mine, theirs) in self.bucket_counts.iter_mut().zip(other.bucket_counts) {
            *mine += theirs;
        }
        self.sum_us += other.sum_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_metric_interface() {
        assert_eq!(Stage::PreReserve.label(), "prereserve");
        assert_eq!(Stage::PerBatch.label(), "perbatch");
        assert_eq!(Protocol::FixedLength.label(), "fixed-length");
        assert_eq!(Protocol::Chunked.label(), "chunked");
        for (i, stage) in Stage::ALL.iter().enumerate() {
            assert_eq!(*stage as usize, i);
        }
        for (i, protocol) in Protocol::ALL.iter().enumerate() {
            assert_eq!(*protocol as usize, i);
        }
    }

    #[test]
    fn bounds_increase() {
        assert!(WAIT_BOUNDS_S.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn waits_land_in_their_bucket_and_sum() {
        let stats = AdmissionStats::default();
        let (s, p) = (Stage::PerBatch, Protocol::Chunked);
        stats.record_wait(s, p, Duration::ZERO);
        stats.record_wait(s, p, Duration::from_micros(500));
        stats.record_wait(s, p, Duration::from_micros(501));
        stats.record_wait(s, p, Duration::from_secs(30));
        stats.record_wait(s, p, Duration::from_secs(31));
        let h = stats.wait_histogram(s, p);
        assert_eq!(h.bucket_counts[0], 2, "0 and exactly 0.5 ms");
        assert_eq!(h.bucket_counts[1], 1, "just above 0.5 ms");
        assert_eq!(h.bucket_counts[WAIT_BOUNDS_S.len() - 1], 1, "exactly 30 s");
        assert_eq!(h.bucket_counts[WAIT_BOUNDS_S.len()], 1, "+Inf");
        assert_eq!(h.count(), 5);
        assert_eq!(h.cumulative()[WAIT_BUCKETS - 1], 5);
        assert_eq!(h.cumulative()[0], 2);
        assert_eq!(h.sum_us, 500 + 501 + 61_000_000);
        assert_eq!(stats.wait_histogram(s, Protocol::FixedLength).count(), 0);
        assert_eq!(stats.wait_histogram(Stage::PreReserve, p).count(), 0);

        let mut merged = h.clone();
        merged.merge(&h);
        assert_eq!(merged.count(), 10);
        assert_eq!(merged.sum_us, 2 * h.sum_us);
    }

    #[test]
    fn rejections_count_per_label() {
        let stats = AdmissionStats::default();
        stats.record_rejection(Stage::PreReserve, Protocol::FixedLength);
        stats.record_rejection(Stage::PreReserve, Protocol::FixedLength);
        stats.record_rejection(Stage::PerBatch, Protocol::Chunked);
        assert_eq!(
            stats.rejections(Stage::PreReserve, Protocol::FixedLength),
            2
        );
        assert_eq!(stats.rejections(Stage::PerBatch, Protocol::Chunked), 1);
        assert_eq!(stats.rejections(Stage::PerBatch, Protocol::FixedLength), 0);
        assert_eq!(stats.rejections(Stage::PreReserve, Protocol::Chunked), 0);
    }
}
