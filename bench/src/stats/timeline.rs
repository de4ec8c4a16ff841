//! Throughput over time: what finished in each fixed-width bucket since
//! the step started (one second for the JSON timeline, `--interval` for
//! the interval statistics), up to `TIMELINE_BUCKETS_MAX` buckets (later
//! completions land in the last one, which then says so).

use std::time::Duration;

use serde::Serialize;

use crate::limits::TIMELINE_BUCKETS_MAX;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Successful (2xx) attempts.
    pub ok: u64,
    /// Payload bytes those moved.
    pub bytes: u64,
    /// 503 and 429 replies.
    pub rejected: u64,
    /// Every other failure, transport failures included.
    pub errors: u64,
}

impl Bucket {
    pub fn add(&mut self, other: &Bucket) {
        self.ok += other.ok;
        self.bytes += other.bytes;
        self.rejected += other.rejected;
        self.errors += other.errors;
    }
}

#[derive(Debug, Clone)]
pub struct Timeline {
    width: Duration,
    buckets: Vec<Bucket>,
    /// Something finished past the last bucket and was counted in it.
    overflowed: bool,
}

impl Timeline {
    /// Buckets `width` wide (not zero: the caller checks).
    pub fn new(width: Duration) -> Timeline {
        Timeline {
            width: width.max(Duration::from_nanos(1)),
            buckets: Vec::new(),
            overflowed: false,
        }
    }

    pub fn per_second() -> Timeline {
        Timeline::new(Duration::from_secs(1))
    }

    /// The bucket of something that finished `since_start` into the step.
    pub fn at(&mut self, since_start: Duration) -> &mut Bucket {
        let index =
            usize::try_from(since_start.as_nanos() / self.width.as_nanos()).unwrap_or(usize::MAX);
        if index >= TIMELINE_BUCKETS_MAX {
            self.overflowed = true;
        }
        let index = index.min(TIMELINE_BUCKETS_MAX - 1);
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Bucket::default());
        }
        &mut self.buckets[index]
    }

    pub fn width(&self) -> Duration {
        self.width
    }

    /// Buckets up to the last one anything finished in.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// Whether the last bucket also holds what finished after it.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_buckets_split_a_second() {
        let mut t = Timeline::new(Duration::from_millis(250));
        t.at(Duration::from_millis(240)).ok += 1;
        t.at(Duration::from_millis(260)).ok += 1;
        t.at(Duration::from_millis(1000)).ok += 1;
        let oks: Vec<u64> = t.buckets().iter().map(|b| b.ok).collect();
        assert_eq!(oks, [1, 1, 0, 0, 1]);
    }

    #[test]
    fn buckets_fill_gaps_and_cap() {
        let mut t = Timeline::per_second();
        t.at(Duration::from_millis(2500)).ok += 1;
        t.at(Duration::ZERO).bytes += 5;
        assert_eq!(t.buckets().len(), 3);
        assert_eq!(t.buckets()[1], Bucket::default());
        assert!(!t.overflowed());
        t.at(Duration::MAX).errors += 1;
        assert_eq!(t.buckets().len(), TIMELINE_BUCKETS_MAX);
        assert_eq!(t.buckets()[TIMELINE_BUCKETS_MAX - 1].errors, 1);
        assert!(t.overflowed());
    }
}
