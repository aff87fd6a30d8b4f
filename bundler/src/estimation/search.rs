//! The smallest gas limit that makes a simulation succeed, by binary search. The probes run
//! in-process (revm over cached state), so the search is synchronous and a tight tolerance
//! costs microseconds, not node calls.

/// Searches `[low, high]` for the smallest gas at which `succeeds` holds, to within
/// `tolerance`; `succeeds` must be monotone (more gas never hurts). `Ok(None)` when even
/// `high` fails. Probes `high` first, then about log2((high − low) / tolerance) more.
pub fn min_gas<F, E>(low: u64, high: u64, tolerance: u64, mut succeeds: F) -> Result<Option<u64>, E>
where
    F: FnMut(u64) -> Result<bool, E>,
{
    if !succeeds(high)? {
        return Ok(None);
    }
    // In i128 so that "just below low" exists even when low is 0.
    let (mut failing, mut passing) = (i128::from(low) - 1, i128::from(high));
    while passing - failing > i128::from(tolerance.max(1)) {
        let mid = failing + (passing - failing) / 2;
        // mid lies in [low, high], so it fits a u64.
        if succeeds(mid as u64)? {
            passing = mid;
        } else {
            failing = mid;
        }
    }
    Ok(Some(passing as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(need: u64, tolerance: u64) -> (Option<u64>, u32) {
        let mut calls = 0;
        let found = min_gas(0, 10_000_000, tolerance, |gas| {
            calls += 1;
            Ok::<_, ()>(gas >= need)
        })
        .unwrap();
        (found, calls)
    }

    #[test]
    fn finds_the_threshold_within_tolerance_in_logarithmic_calls() {
        let (found, calls) = search(123_456, 1);
        assert_eq!(found, Some(123_456));
        // The ceiling, then at most ceil(log2(10,000,001)) = 24 halvings (23 here).
        assert_eq!(calls, 24);
        let (found, calls) = search(123_456, 1_000);
        let found = found.unwrap();
        assert!((123_456..123_456 + 1_000).contains(&found), "{found}");
        assert!(calls <= 15, "{calls} calls");
    }

    #[test]
    fn reports_none_when_even_the_ceiling_fails() {
        assert_eq!(search(20_000_000, 1).0, None);
        assert_eq!(search(0, 1).0, Some(0));
    }

    #[test]
    fn stops_at_the_first_error() {
        let mut calls = 0;
        let result = min_gas(0, 100, 1, |gas| {
            calls += 1;
            if gas < 100 { Err("node down") } else { Ok(true) }
        });
        assert_eq!(result, Err("node down"));
        assert_eq!(calls, 2);
    }
}
