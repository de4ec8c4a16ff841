//! Numbers people read off a histogram: percentiles in milliseconds, the
//! latency CDF as points, and rates. Pure math over `hdrhistogram`.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::limits::CDF_POINTS_MAX;

/// Latency percentiles of one operation, milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

impl LatencySummary {
    /// From a histogram of microseconds; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<LatencySummary> {
        if h.is_empty() {
            return None;
        }
        Some(LatencySummary {
            count: h.len(),
            mean_ms: h.mean() / 1e3,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        })
    }
}

/// The latency CDF as `[latency_ms, fraction at or below]` points, at most
/// `CDF_POINTS_MAX`: evenly spaced fractions, then the tail (99.x %).
pub fn cdf(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    const TAIL: [f64; 6] = [0.9925, 0.995, 0.9975, 0.999, 0.9995, 0.9999];
    let even = CDF_POINTS_MAX - TAIL.len() - 1;
    let mut quantiles: Vec<f64> = (0..=even).map(|i| i as f64 / even as f64).collect();
    quantiles.extend(TAIL);
    quantiles.sort_by(f64::total_cmp);
    let mut points: Vec<[f64; 2]> = quantiles
        .into_iter()
        .map(|q| [ms(h.value_at_quantile(q)), q])
        .collect();
    // The last point is the maximum at 100 %.
    if let Some(last) = points.last_mut() {
        *last = [ms(h.max()), 1.0];
    }
    points
}

/// `amount` per second over `elapsed_s`; zero for an empty interval.
pub fn per_second(amount: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        amount as f64 / elapsed_s
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values_us: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        // 1..=1000 ms, one each.
        let h = histogram((1..=1000).map(|ms| ms * 1000));
        let s = LatencySummary::of(&h).unwrap();
        assert_eq!(s.count, 1000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50_ms, 500.0), "{}", s.p50_ms);
        assert!(close(s.p90_ms, 900.0), "{}", s.p90_ms);
        assert!(close(s.p99_ms, 990.0), "{}", s.p99_ms);
        assert!(close(s.p999_ms, 999.0), "{}", s.p999_ms);
        assert!(close(s.max_ms, 1000.0), "{}", s.max_ms);
        assert!(close(s.mean_ms, 500.5), "{}", s.mean_ms);
    }

    #[test]
    fn one_slow_request_moves_only_the_tail() {
        let h = histogram(std::iter::repeat_n(2_000, 999).chain([5_000_000]));
        let s = LatencySummary::of(&h).unwrap();
        assert!((s.p99_ms - 2.0).abs() < 0.01);
        assert!((s.max_ms - 5000.0).abs() < 5.0);
        assert!(s.p999_ms <= 2.01, "999 of 1000 are fast: {}", s.p999_ms);
    }

    #[test]
    fn empty_histograms_summarise_to_nothing() {
        let h = histogram([]);
        assert_eq!(LatencySummary::of(&h), None);
        assert!(cdf(&h).is_empty());
    }

    #[test]
    fn cdf_is_monotone_bounded_and_ends_at_the_max() {
        let h = histogram((1..=500).map(|v| v * 37));
        let points = cdf(&h);
        assert!(points.len() <= CDF_POINTS_MAX);
        assert!(points
            .windows(2)
            .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1]));
        assert_eq!(points.last().unwrap()[1], 1.0);
        assert!((points.last().unwrap()[0] - h.max() as f64 / 1e3).abs() < 1e-9);
        assert_eq!(points[0][1], 0.0);
    }

    #[test]
    fn rates() {
        assert_eq!(per_second(10, 2.0), 5.0);
        assert_eq!(per_second(10, 0.0), 0.0);
    }
}
