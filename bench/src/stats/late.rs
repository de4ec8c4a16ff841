//! Late starts of a constant-rate step (`--rate`): for every operation,
//! how long after its intended time it really started. An operation
//! starts late when every worker was still busy with earlier ones (the
//! server, or the client, cannot keep up with the rate), and its latency,
//! measured from the intended time, then includes the wait. Up to
//! `RATE_LATE_TOLERANCE` counts as on time: timers are not exact.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::limits::{LATENCY_SIGNIFICANT_DIGITS, LATENCY_US_MAX, RATE_LATE_TOLERANCE};

#[derive(Debug)]
pub struct LateStarts {
    /// Operations started on a schedule.
    pub started: u64,
    /// Those that started more than the tolerance late.
    pub late: u64,
    /// How late those were, microseconds.
    pub late_us: Histogram<u64>,
}

impl Default for LateStarts {
    fn default() -> LateStarts {
        LateStarts {
            started: 0,
            late: 0,
            late_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid"),
        }
    }
}

impl LateStarts {
    /// One operation started `delay` after its intended time.
    pub fn record(&mut self, delay: Duration) {
        self.started += 1;
        if delay > RATE_LATE_TOLERANCE {
            self.late += 1;
            let us = (delay.as_micros().min(u128::from(LATENCY_US_MAX)) as u64).max(1);
            self.late_us
                .record(us)
                .expect("delay clamped to the histogram bounds");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_starts_past_the_tolerance_are_late() {
        let mut late = LateStarts::default();
        late.record(Duration::ZERO);
        late.record(RATE_LATE_TOLERANCE);
        late.record(RATE_LATE_TOLERANCE + Duration::from_micros(1));
        late.record(Duration::from_millis(40));
        late.record(Duration::from_secs(7200));
        assert_eq!((late.started, late.late), (5, 3));
        assert_eq!(late.late_us.len(), 3);
        assert_eq!(
            late.late_us.min(),
            RATE_LATE_TOLERANCE.as_micros() as u64 + 1
        );
        // Beyond the histogram's hour: clamped, still counted.
        assert!(late.late_us.max() >= LATENCY_US_MAX * 999 / 1000);
    }

    #[test]
    fn nothing_started_is_nothing_late() {
        let late = LateStarts::default();
        assert_eq!((late.started, late.late), (0, 0));
        assert!(late.late_us.is_empty());
    }
}
