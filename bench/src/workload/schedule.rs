//! Constant-rate mode (`--rate`): operation `i` of a step is meant to start
//! at `start + i / rate`, whatever happened to the ones before it. A worker
//! waits for its operation's time, and the operation's latency runs from
//! that intended time, not from when a worker got round to it: a server
//! that stalls makes every operation scheduled during the stall slow, as
//! its clients would see it, instead of hiding them by sending fewer
//! (coordinated omission). How many started late, and by how much, is
//! counted by [`crate::stats::late::LateStarts`].
//!
//! Pure: times are computed from the step's start.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    /// Operations per second, positive and finite (checked in spec.rs).
    rate: f64,
}

impl Schedule {
    pub fn new(start: Instant, rate: f64) -> Schedule {
        Schedule { start, rate }
    }

    /// When operation `index` (from 0) is meant to start.
    pub fn intended(&self, index: u64) -> Instant {
        let offset = Duration::try_from_secs_f64(index as f64 / self.rate).unwrap_or(Duration::MAX);
        self.start
            .checked_add(offset)
            .unwrap_or(self.start + Duration::from_secs(u32::MAX as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_spaced_evenly_from_the_start() {
        let start = Instant::now();
        let s = Schedule::new(start, 200.0);
        assert_eq!(s.intended(0), start);
        assert_eq!(s.intended(1) - start, Duration::from_millis(5));
        assert_eq!(s.intended(400) - start, Duration::from_secs(2));
        // No drift: the 1,000,000th is where it should be.
        let far = s.intended(1_000_000) - start;
        assert!((far.as_secs_f64() - 5000.0).abs() < 1e-6, "{far:?}");
    }

    #[test]
    fn slow_rates_and_far_indexes_do_not_overflow() {
        let start = Instant::now();
        let s = Schedule::new(start, 1e-300);
        assert!(s.intended(u64::MAX) > start);
    }
}
