//! Money as types: wei of the native coin, TORA base units, and the rate between them, so the
//! compiler catches a mix-up and every conversion rounds in one stated direction.

use alloy::primitives::U256;
use serde::{Deserialize, Serialize};

/// An amount of the chain's native coin (BNB, or TORA as Tensora's gas coin) in wei.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Wei(pub U256);

/// An amount of the TORA ERC-20 in base units (18 decimals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ToraUnits(pub U256);

/// TORA base units per 1e18 wei: the `exchangeRate` a paymaster quote signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExchangeRate(pub U256);

/// 1e18: wei per native coin, and the scale of [`ExchangeRate`].
pub const ONE_COIN: u128 = 1_000_000_000_000_000_000;

impl ExchangeRate {
    /// TORA for `wei`, rounded up: the paymaster never receives less than the gas it pays for
    /// (the contract's `Math.mulDiv(.., Ceil)`). `None` on overflow.
    pub fn tora_for(self, wei: Wei) -> Option<ToraUnits> {
        let product = wei.0.checked_mul(self.0)?;
        Some(ToraUnits(product.div_ceil(U256::from(ONE_COIN))))
    }
}

impl std::fmt::Display for ToraUnits {
    /// Whole TORA with all 18 decimals, trailing zeros trimmed, for people and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = U256::from(ONE_COIN);
        let (whole, frac) = (self.0 / one, self.0 % one);
        if frac.is_zero() {
            return write!(f, "{whole} TORA");
        }
        let frac = format!("{frac:0>18}");
        write!(f, "{whole}.{} TORA", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_rounds_up_only_when_inexact() {
        let rate = ExchangeRate(U256::from(3 * ONE_COIN / 2)); // 1.5 TORA per coin
        assert_eq!(rate.tora_for(Wei(U256::from(2))), Some(ToraUnits(U256::from(3))));
        assert_eq!(rate.tora_for(Wei(U256::from(3))), Some(ToraUnits(U256::from(5))));
        assert_eq!(rate.tora_for(Wei(U256::ZERO)), Some(ToraUnits(U256::ZERO)));
        assert_eq!(ExchangeRate(U256::MAX).tora_for(Wei(U256::from(2))), None);
    }

    #[test]
    fn display_is_exact() {
        assert_eq!(
            ToraUnits(U256::from(1_500_000_000_000_000_001u128)).to_string(),
            "1.500000000000000001 TORA"
        );
        assert_eq!(ToraUnits(U256::from(2 * ONE_COIN)).to_string(), "2 TORA");
    }
}
