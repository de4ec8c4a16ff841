//! Axis ticks: "nice" steps (1, 2 or 5 times a power of ten) covering a
//! range, and tick labels with as many decimals as the step needs. Pure.

/// Tick step for `0..=max` with about `target` ticks.
pub fn nice_step(max: f64, target: usize) -> f64 {
    if !(max > 0.0 && max.is_finite()) {
        return 1.0;
    }
    let rough = max / target.max(1) as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let fraction = rough / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Ticks from 0 to the first multiple of the step at or above `max`.
pub fn ticks(max: f64, target: usize) -> Vec<f64> {
    let step = nice_step(max, target);
    let count = (max / step).ceil().max(1.0) as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// `value` with the decimals `step` needs.
pub fn label(value: f64, step: f64) -> String {
    // The fewest decimals (at most six) that write the step exactly.
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-9 * scaled.max(1.0)
        })
        .unwrap_or(6);
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(100.0, 5), 20.0);
        assert_eq!(nice_step(812.0, 6), 200.0);
        assert_eq!(nice_step(1.0, 4), 0.5);
        assert_eq!(nice_step(7.0, 7), 1.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
        assert_eq!(nice_step(f64::NAN, 5), 1.0);
    }

    #[test]
    fn ticks_cover_the_range() {
        assert_eq!(ticks(95.0, 5), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let t = ticks(1.0, 4);
        assert_eq!(t.first(), Some(&0.0));
        assert!(*t.last().unwrap() >= 1.0);
    }

    #[test]
    fn labels_carry_the_needed_decimals() {
        assert_eq!(label(200.0, 50.0), "200");
        assert_eq!(label(0.5, 0.25), "0.50");
        assert_eq!(label(0.2, 0.1), "0.2");
    }
}
