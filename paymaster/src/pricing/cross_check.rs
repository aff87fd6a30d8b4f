//! A second opinion on the price: two sources must agree within a maximum deviation, and the
//! higher rate (more TORA per wei) is used.

use alloy::primitives::U256;
use rust_decimal::Decimal;
use tora_core::money::ExchangeRate;
use tora_core::price::{PriceError, PricePoint, PriceSource};

/// Two price sources that must agree within `max_deviation`; the higher rate is quoted.
pub struct CrossChecked<A, B> {
    /// The main source, e.g. the deployment's own feed.
    pub primary: A,
    /// The source it is checked against, e.g. Chainlink's feed.
    pub secondary: B,
    /// Largest accepted `|a − b| / min(a, b)`, e.g. `0.02` for 2%.
    pub max_deviation: Decimal,
}

/// Whether `a` and `b` differ by more than `max` relative to the smaller one (exact).
pub fn deviates(a: ExchangeRate, b: ExchangeRate, max: Decimal) -> bool {
    let (low, high) = if a.0 <= b.0 { (a.0, b.0) } else { (b.0, a.0) };
    let mantissa = U256::from(max.mantissa().unsigned_abs());
    let scale = U256::from(10u8).pow(U256::from(max.scale()));
    // (high − low) / low > mantissa / scale, without division.
    (high - low).saturating_mul(scale) > low.saturating_mul(mantissa)
}

impl<A: PriceSource, B: PriceSource> PriceSource for CrossChecked<A, B> {
    async fn price(&self) -> Result<PricePoint, PriceError> {
        let (primary, secondary) = tokio::join!(self.primary.price(), self.secondary.price());
        let (primary, secondary) = (primary?, secondary?);
        if deviates(primary.rate, secondary.rate, self.max_deviation) {
            return Err(PriceError::Deviation { primary: primary.rate, secondary: secondary.rate });
        }
        Ok(PricePoint {
            rate: primary.rate.max(secondary.rate),
            updated_at: primary.updated_at.min(secondary.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    struct Fixed(Result<PricePoint, PriceError>);

    impl PriceSource for Fixed {
        async fn price(&self) -> Result<PricePoint, PriceError> {
            self.0.clone()
        }
    }

    fn point(rate: u64, updated_at: u64) -> Fixed {
        Fixed(Ok(PricePoint { rate: ExchangeRate(U256::from(rate)), updated_at }))
    }

    #[test]
    fn deviation_boundary_is_inclusive() {
        let two_percent = Decimal::from_str("0.02").unwrap();
        let r = |n: u64| ExchangeRate(U256::from(n));
        assert!(!deviates(r(10_000), r(10_200), two_percent));
        assert!(deviates(r(10_000), r(10_201), two_percent));
        assert!(deviates(r(10_201), r(10_000), two_percent));
    }

    #[tokio::test]
    async fn agreeing_sources_give_the_higher_rate_and_older_time() {
        let checked = CrossChecked {
            primary: point(10_000, 50),
            secondary: point(10_100, 40),
            max_deviation: Decimal::from_str("0.02").unwrap(),
        };
        let price = checked.price().await.unwrap();
        assert_eq!(price, PricePoint { rate: ExchangeRate(U256::from(10_100)), updated_at: 40 });
    }

    #[tokio::test]
    async fn disagreeing_or_failing_sources_refuse() {
        let max = Decimal::from_str("0.02").unwrap();
        let far = CrossChecked { primary: point(10_000, 1), secondary: point(11_000, 1), max_deviation: max };
        assert!(matches!(far.price().await, Err(PriceError::Deviation { .. })));
        let stale = Fixed(Err(PriceError::Stale { updated_at: 0, heartbeat_secs: 1, now: 9 }));
        let broken = CrossChecked { primary: point(10_000, 1), secondary: stale, max_deviation: max };
        assert!(matches!(broken.price().await, Err(PriceError::Stale { .. })));
    }
}
