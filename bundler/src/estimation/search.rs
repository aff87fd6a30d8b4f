//! The smallest gas limit that makes a simulation succeed, by binary search.

use std::future::Future;

/// Searches `[low, high]` for the smallest gas at which `succeeds` holds, to within
/// `tolerance`; `succeeds` must be monotone (more gas never hurts). `Ok(None)` when even
/// `high` fails.
pub async fn min_gas<F, Fut, E>(
    low: u64,
    high: u64,
    tolerance: u64,
    mut succeeds: F,
) -> Result<Option<u64>, E>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    if !succeeds(high).await? {
        return Ok(None);
    }
    // In i128 so that "just below low" exists even when low is 0.
    let (mut failing, mut passing) = (i128::from(low) - 1, i128::from(high));
    while passing - failing > i128::from(tolerance.max(1)) {
        let mid = failing + (passing - failing) / 2;
        // mid lies in [low, high], so it fits a u64.
        if succeeds(mid as u64).await? {
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
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let found = rt
            .block_on(min_gas(0, 10_000_000, tolerance, |gas| {
                calls += 1;
                async move { Ok::<_, ()>(gas >= need) }
            }))
            .unwrap();
        (found, calls)
    }

    #[test]
    fn finds_the_threshold_within_tolerance_in_logarithmic_calls() {
        let (found, calls) = search(123_456, 1);
        assert_eq!(found, Some(123_456));
        assert!(calls <= 25, "{calls} calls");
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
}
