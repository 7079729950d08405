//! Slow start: a server that has just recovered gets a share of new
//! sessions that grows linearly with time, so a cold backend (empty caches,
//! fresh queue runners) is not flooded the instant it passes its checks.

use std::time::Duration;

/// The weight of a server `elapsed` after it came back up, for a ramp of
/// `slow_start`: from `max(1, weight / 10)` up to `weight`, linearly.
/// A zero `slow_start` or a finished ramp gives `weight`; weight 0 stays 0.
pub fn ramp_weight(weight: u32, slow_start: Duration, elapsed: Duration) -> u32 {
    if weight == 0 || slow_start.is_zero() || elapsed >= slow_start {
        return weight;
    }
    let floor = (weight / 10).max(1);
    let span = u128::from(weight - floor);
    let step = span * elapsed.as_nanos() / slow_start.as_nanos();
    // step < span, so this fits in u32 and stays below weight
    floor + u32::try_from(step).unwrap_or(weight - floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(100);

    #[test]
    fn ramps_linearly_from_a_tenth() {
        assert_eq!(ramp_weight(100, S, Duration::ZERO), 10);
        assert_eq!(ramp_weight(100, S, Duration::from_secs(50)), 55);
        assert_eq!(ramp_weight(100, S, Duration::from_secs(99)), 99);
        assert_eq!(ramp_weight(100, S, S), 100);
        assert_eq!(ramp_weight(100, S, S * 2), 100);
    }

    #[test]
    fn small_weights_start_at_one() {
        assert_eq!(ramp_weight(5, S, Duration::ZERO), 1);
        assert_eq!(ramp_weight(5, S, Duration::from_secs(50)), 3);
        assert_eq!(ramp_weight(1, S, Duration::ZERO), 1);
    }

    #[test]
    fn off_or_zero_weight_is_unchanged() {
        assert_eq!(ramp_weight(100, Duration::ZERO, Duration::ZERO), 100);
        assert_eq!(ramp_weight(0, S, Duration::ZERO), 0);
    }
}
