//! Per-interval statistics, as warp reports them: the step's time cut into
//! fixed intervals (`--interval`, 1 s by default), and of the complete
//! ones the slowest, median and fastest throughput, in operations and in
//! bytes per second (each ranked on its own). A steady server shows three
//! close figures; stalls show as a slowest far below the median.
//!
//! An operation counts in the interval it finished in, like the timeline.
//! Only complete intervals count: the last, cut short by the step's end,
//! would look slow. An interval in which nothing finished is a real zero.
//! Pure: works on a [`Timeline`] and the step's elapsed time.

use std::time::Duration;

use serde::Serialize;

use super::timeline::Timeline;

/// Slowest, median and fastest of one measure over the intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub slowest: f64,
    pub median: f64,
    pub fastest: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalStats {
    pub interval_s: f64,
    /// Complete intervals the figures are over.
    pub complete: u64,
    pub ops_per_s: Spread,
    pub bytes_per_s: Spread,
}

impl Spread {
    /// `None` for no values.
    fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => values[n / 2],
            _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Some(Spread {
            slowest: values[0],
            median,
            fastest: values[n - 1],
        })
    }
}

impl IntervalStats {
    /// Over the complete intervals of a step that ran `elapsed`; `None`
    /// when it ran shorter than one interval.
    pub fn of(timeline: &Timeline, elapsed: Duration) -> Option<IntervalStats> {
        let width = timeline.width();
        let mut complete = usize::try_from(elapsed.as_nanos() / width.as_nanos()).ok()?;
        if timeline.overflowed() {
            // The last bucket holds everything after it too.
            complete = complete.min(timeline.buckets().len().saturating_sub(1));
        }
        let width_s = width.as_secs_f64();
        let bucket = |i: usize| timeline.buckets().get(i).copied().unwrap_or_default();
        let rates = |f: &dyn Fn(usize) -> u64| -> Vec<f64> {
            (0..complete).map(|i| f(i) as f64 / width_s).collect()
        };
        Some(IntervalStats {
            interval_s: width_s,
            complete: complete as u64,
            ops_per_s: Spread::of(rates(&|i| bucket(i).ok))?,
            bytes_per_s: Spread::of(rates(&|i| bucket(i).bytes))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::TIMELINE_BUCKETS_MAX;

    fn timeline(width_ms: u64, oks: &[u64]) -> Timeline {
        let mut t = Timeline::new(Duration::from_millis(width_ms));
        for (i, &ok) in oks.iter().enumerate() {
            let bucket = t.at(Duration::from_millis(width_ms * i as u64));
            bucket.ok = ok;
            bucket.bytes = ok * 1000;
        }
        t
    }

    #[test]
    fn slowest_median_and_fastest_of_the_complete_intervals() {
        // Five whole seconds and a partial sixth, which does not count
        // (its 1 op would be the slowest).
        let t = timeline(1000, &[30, 10, 50, 20, 40, 1]);
        let s = IntervalStats::of(&t, Duration::from_millis(5500)).unwrap();
        assert_eq!(s.complete, 5);
        assert_eq!(
            s.ops_per_s,
            Spread {
                slowest: 10.0,
                median: 30.0,
                fastest: 50.0
            }
        );
        assert_eq!(s.bytes_per_s.fastest, 50_000.0);
    }

    #[test]
    fn rates_are_per_second_and_empty_intervals_count_as_zero() {
        // 250 ms intervals; nothing finished in the third, nothing after
        // the fourth though the step ran for five.
        let t = timeline(250, &[5, 10, 0, 20]);
        let s = IntervalStats::of(&t, Duration::from_millis(1250)).unwrap();
        assert_eq!(s.complete, 5);
        assert_eq!(s.interval_s, 0.25);
        assert_eq!(
            s.ops_per_s,
            Spread {
                slowest: 0.0,
                median: 20.0,
                fastest: 80.0
            }
        );
    }

    #[test]
    fn an_even_count_takes_the_middle_two() {
        let t = timeline(1000, &[1, 2, 3, 10]);
        let s = IntervalStats::of(&t, Duration::from_secs(4)).unwrap();
        assert_eq!(s.ops_per_s.median, 2.5);
    }

    #[test]
    fn a_step_shorter_than_one_interval_has_none() {
        let t = timeline(1000, &[7]);
        assert_eq!(IntervalStats::of(&t, Duration::from_millis(999)), None);
    }

    #[test]
    fn the_overflow_bucket_is_left_out() {
        let mut t = Timeline::new(Duration::from_millis(1));
        t.at(Duration::ZERO).ok = 1;
        t.at(Duration::from_secs(3600)).ok = 1000;
        assert!(t.overflowed());
        let s = IntervalStats::of(&t, Duration::from_secs(3600)).unwrap();
        assert_eq!(s.complete as usize, TIMELINE_BUCKETS_MAX - 1);
        assert_eq!(s.ops_per_s.fastest, 1000.0, "1 op in 1 ms");
    }
}
