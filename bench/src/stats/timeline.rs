//! Throughput over time: what finished in each one-second bucket since the
//! step started, up to `TIMELINE_BUCKETS_MAX` buckets (later completions
//! land in the last one).

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

#[derive(Debug, Clone, Default)]
pub struct Timeline {
    buckets: Vec<Bucket>,
}

impl Timeline {
    /// The bucket of something that finished `second` whole seconds in.
    pub fn at(&mut self, second: u64) -> &mut Bucket {
        let index = usize::try_from(second)
            .unwrap_or(usize::MAX)
            .min(TIMELINE_BUCKETS_MAX - 1);
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Bucket::default());
        }
        &mut self.buckets[index]
    }

    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fill_gaps_and_cap() {
        let mut t = Timeline::default();
        t.at(2).ok += 1;
        t.at(0).bytes += 5;
        assert_eq!(t.buckets().len(), 3);
        assert_eq!(t.buckets()[1], Bucket::default());
        t.at(u64::MAX).errors += 1;
        assert_eq!(t.buckets().len(), TIMELINE_BUCKETS_MAX);
        assert_eq!(t.buckets()[TIMELINE_BUCKETS_MAX - 1].errors, 1);
    }
}
