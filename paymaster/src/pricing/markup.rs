//! The paymaster's margin on top of the oracle rate, as an exact decimal fraction.

use alloy::primitives::U256;
use rust_decimal::Decimal;
use tora_core::money::ExchangeRate;

/// A fraction added to the rate: `0.05` quotes 5% more TORA per wei.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Markup(Decimal);

/// A markup fraction outside 0 to 1; holds the value given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("markup must be between 0 and 1 (0% to 100%), got {0}")]
pub struct MarkupOutOfRange(pub Decimal);

impl Markup {
    /// A markup of `fraction`, refused unless it is between 0 and 1 inclusive.
    pub fn new(fraction: Decimal) -> Result<Self, MarkupOutOfRange> {
        if fraction.is_sign_negative() || fraction > Decimal::ONE {
            return Err(MarkupOutOfRange(fraction));
        }
        Ok(Self(fraction))
    }

    /// `rate × (1 + markup)`, rounded up.
    pub fn apply(self, rate: ExchangeRate) -> ExchangeRate {
        let factor = Decimal::ONE + self.0;
        // A decimal is mantissa / 10^scale; both fit U256 many times over.
        let mantissa = U256::from(factor.mantissa().unsigned_abs());
        let scale = U256::from(10u8).pow(U256::from(factor.scale()));
        ExchangeRate((rate.0 * mantissa).div_ceil(scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn markup(text: &str) -> Markup {
        Markup::new(Decimal::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn applies_exactly_and_rounds_up() {
        let rate = ExchangeRate(U256::from(5_000u64) * U256::from(10u64).pow(U256::from(18)));
        assert_eq!(
            markup("0.05").apply(rate).0,
            U256::from(5_250u64) * U256::from(10u64).pow(U256::from(18))
        );
        assert_eq!(markup("0").apply(rate), rate);
        assert_eq!(markup("0.001").apply(ExchangeRate(U256::from(999))).0, U256::from(1_000)); // 999.999
        assert_eq!(markup("0.0333").apply(ExchangeRate(U256::from(3))).0, U256::from(4)); // 3.0999
        assert_eq!(markup("1").apply(ExchangeRate(U256::from(7))).0, U256::from(14));
    }

    #[test]
    fn negative_or_over_100_percent_is_refused() {
        assert!(Markup::new(Decimal::from_str("-0.01").unwrap()).is_err());
        assert!(Markup::new(Decimal::from_str("1.0001").unwrap()).is_err());
    }
}
