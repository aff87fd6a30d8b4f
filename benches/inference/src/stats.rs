//! Turning timed runs into the figures the report prints.

use std::time::Duration;

/// The median by nearest rank (the lower of the two middle values for an even count), in
/// milliseconds; `None` for no samples.
pub(crate) fn p50_ms(samples: &[Duration]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = sorted.len().div_ceil(2).checked_sub(1)?;
    sorted.get(rank).map(|d| d.as_secs_f64() * 1e3)
}

/// Items per second over `elapsed`; 0 when nothing was timed, so a report never holds NaN.
pub(crate) fn per_second(items: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { items as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p50_takes_the_lower_middle_of_an_even_count() {
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(p50_ms(&[ms(40), ms(10), ms(30), ms(20)]), Some(20.0));
        assert_eq!(p50_ms(&[ms(5), ms(1), ms(3)]), Some(3.0));
        assert_eq!(p50_ms(&[]), None);
    }

    #[test]
    fn per_second_of_nothing_timed_is_zero() {
        assert_eq!(per_second(32, Duration::from_millis(500)), 64.0);
        assert_eq!(per_second(32, Duration::ZERO), 0.0);
    }
}
