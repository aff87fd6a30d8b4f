//! What a call costs: tokens times the model's price per token, in TORA base units, exactly.

use alloy::primitives::U256;
use tora_core::money::ToraUnits;

/// TORA base units charged for each token a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PricePerToken(pub ToraUnits);

impl PricePerToken {
    /// The price of `tokens` tokens; `None` when it does not fit 256 bits.
    pub fn price(self, tokens: u64) -> Option<ToraUnits> {
        self.0.0.checked_mul(U256::from(tokens)).map(ToraUnits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_is_tokens_times_the_price_per_token_exactly() {
        let per_token = PricePerToken(ToraUnits(U256::from(1_000_000_000_007u64)));
        assert_eq!(per_token.price(6), Some(ToraUnits(U256::from(6_000_000_000_042u64))));
        assert_eq!(per_token.price(0), Some(ToraUnits(U256::ZERO)));
        assert_eq!(PricePerToken(ToraUnits(U256::MAX)).price(2), None);
    }
}
