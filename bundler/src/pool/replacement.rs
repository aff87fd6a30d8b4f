//! Replacing a pending operation (same sender and nonce) needs both fees raised, so that a
//! sender cannot churn the pool for free.

use alloy::primitives::{U128, U256};
use tora_core::UserOperation;

/// The bump both maxFeePerGas and maxPriorityFeePerGas need, in percent (as geth's txpool and
/// the eth-infinitism bundler spec use).
pub const MIN_PRICE_BUMP_PERCENT: u128 = 10;

/// The lowest fee that replaces `fee`: `fee * 110 / 100`, rounded up. In 256 bits, so a fee
/// near 2^128 cannot wrap into a cheap replacement.
pub(crate) fn bumped(fee: U128) -> U256 {
    (U256::from(fee) * U256::from(100 + MIN_PRICE_BUMP_PERCENT)).div_ceil(U256::from(100))
}

/// A fee of a replacement below the bump over the fee it replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortFee {
    /// The field's RPC name.
    pub fee: &'static str,
    /// The pending operation's fee, in wei per gas.
    pub old: U256,
    /// The replacement's fee, in wei per gas.
    pub new: U256,
    /// The least that replaces `old`.
    pub least: U256,
}

/// The first fee of `new` too low to replace `old`, the priority fee checked first (as the
/// reference bundler does); `None` when `new` may replace `old`.
pub fn short_fee(old: &UserOperation, new: &UserOperation) -> Option<ShortFee> {
    let short = |fee, old: U128, new: U128| {
        let least = bumped(old);
        (U256::from(new) < least).then_some(ShortFee {
            fee,
            old: U256::from(old),
            new: U256::from(new),
            least,
        })
    };
    short("maxPriorityFeePerGas", old.max_priority_fee_per_gas, new.max_priority_fee_per_gas)
        .or_else(|| short("maxFeePerGas", old.max_fee_per_gas, new.max_fee_per_gas))
}

/// Whether `new` may replace `old`: both fees at least 10% higher.
pub fn is_replacement_priced(old: &UserOperation, new: &UserOperation) -> bool {
    short_fee(old, new).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(max_fee: u64, priority: u64) -> UserOperation {
        UserOperation {
            max_fee_per_gas: U128::from(max_fee),
            max_priority_fee_per_gas: U128::from(priority),
            ..Default::default()
        }
    }

    #[test]
    fn replacement_needs_ten_percent_higher_fees() {
        let old = op(5_000_000_000, 1_000_000_000);
        assert!(is_replacement_priced(&old, &op(5_500_000_000, 1_100_000_000)));
        // 9.99…% on either fee is not enough.
        assert!(!is_replacement_priced(&old, &op(5_499_999_999, 1_100_000_000)));
        assert!(!is_replacement_priced(&old, &op(5_500_000_000, 1_099_999_999)));
        // Only one fee bumped (the spec test "only priority fee bump").
        assert!(!is_replacement_priced(&old, &op(5_000_000_000, 1_100_000_000)));
        assert!(!is_replacement_priced(&old, &op(4_500_000_000, 900_000_000)));
        // The priority fee is named first when both are short.
        let short = short_fee(&old, &op(5_000_000_000, 1_000_000_000)).unwrap();
        assert_eq!(short.fee, "maxPriorityFeePerGas");
        assert_eq!(short.least, U256::from(1_100_000_000u64));
        assert_eq!(short_fee(&old, &op(5_000_000_000, 1_100_000_000)).unwrap().fee, "maxFeePerGas");
    }

    #[test]
    fn bump_rounds_up_and_never_wraps() {
        assert_eq!(bumped(U128::from(1)), U256::from(2));
        assert_eq!(bumped(U128::from(10)), U256::from(11));
        assert_eq!(bumped(U128::ZERO), U256::ZERO);
        // Above u128: no fee can replace an operation already at the maximum.
        assert!(bumped(U128::MAX) > U256::from(U128::MAX));
        let top = op(0, 0);
        let top = UserOperation { max_fee_per_gas: U128::MAX, max_priority_fee_per_gas: U128::MAX, ..top };
        assert!(!is_replacement_priced(&top, &top.clone()));
    }
}
