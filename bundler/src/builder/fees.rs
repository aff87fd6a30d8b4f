//! What a bundle transaction pays per gas: the first price from the base fee, the bump a
//! resubmission needs to replace it in the node's pool, and which operations pay enough to ride
//! in it. All in integer wei.

use crate::pool::PoolOperation;

/// The replacement bump a node's pool needs (geth and anvil: 10%), in percent.
pub const REPLACEMENT_BUMP_PERCENT: u128 = 10;

/// The EIP-1559 fees of one bundle transaction, in wei per gas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleFees {
    /// EIP-1559 maxFeePerGas, in wei.
    pub max_fee_per_gas: u128,
    /// EIP-1559 maxPriorityFeePerGas (the tip), in wei.
    pub max_priority_fee_per_gas: u128,
}

impl BundleFees {
    /// `base_fee * (100 + margin) / 100 + priority`, the margin rounded up: room for the base
    /// fee to rise over the blocks the bundle may wait (12.5% a full block on Ethereum).
    pub fn price(base_fee: u128, priority: u128, base_fee_margin_percent: u128) -> Self {
        let with_margin =
            base_fee.saturating_mul(100u128.saturating_add(base_fee_margin_percent)).div_ceil(100);
        Self { max_fee_per_gas: with_margin.saturating_add(priority), max_priority_fee_per_gas: priority }
    }

    /// The fees of a resubmission at the same nonce: each fee the larger of its replacement
    /// minimum and today's price, so that the node accepts it as a replacement and it is not
    /// priced below the market. `None` when the max fee would pass `cap`: the bundle is stuck at
    /// any price the operator allows, and is cancelled instead.
    pub fn resubmission(self, today: BundleFees, cap: u128) -> Option<BundleFees> {
        let priority = bump(self.max_priority_fee_per_gas).max(today.max_priority_fee_per_gas);
        let max_fee = bump(self.max_fee_per_gas).max(today.max_fee_per_gas).max(priority);
        (max_fee <= cap)
            .then_some(BundleFees { max_fee_per_gas: max_fee, max_priority_fee_per_gas: priority })
    }

    /// The fees of the 0-value self-transfer that frees a stuck nonce: a plain replacement bump,
    /// not capped, since it costs 21,000 gas and leaving the nonce stuck blocks the signer.
    pub fn cancellation(self) -> BundleFees {
        BundleFees {
            max_fee_per_gas: bump(self.max_fee_per_gas),
            max_priority_fee_per_gas: bump(self.max_priority_fee_per_gas),
        }
    }

    /// Whether `op` pays at least what the bundle pays per gas, so that the bundler never pays
    /// for an operation more than it collects from it. An operation that does not is skipped
    /// for this bundle, not dropped: it may fit a later, cheaper one.
    pub fn covered_by(&self, op: &PoolOperation) -> bool {
        op.op.max_fee_per_gas.to::<u128>() >= self.max_fee_per_gas
            && op.op.max_priority_fee_per_gas.to::<u128>() >= self.max_priority_fee_per_gas
    }
}

/// What wallets are told to offer (`tora_getUserOperationGasPrice`): `slow` is what the next
/// bundle pays per gas, the least an operation must offer to ride in it; `standard` and `fast`
/// add a quarter and a half again to the tip (and the same to the max fee), for room when the
/// market moves before the operation lands.
pub fn suggested_tiers(base_fee: u128, priority: u128, base_fee_margin_percent: u128) -> [BundleFees; 3] {
    let slow = BundleFees::price(base_fee, priority, base_fee_margin_percent);
    let with_tip = |percent: u128| {
        let tip = priority.saturating_mul(percent).div_ceil(100);
        BundleFees {
            max_fee_per_gas: slow.max_fee_per_gas.saturating_add(tip.saturating_sub(priority)),
            max_priority_fee_per_gas: tip,
        }
    };
    [slow, with_tip(125), with_tip(150)]
}

/// The smallest fee that replaces `fee` in a node's pool: `fee * 110 / 100` rounded up, and at
/// least one wei more (a fee of 0 or a few wei would not move otherwise).
pub fn bump(fee: u128) -> u128 {
    let ten_percent = fee.saturating_mul(100 + REPLACEMENT_BUMP_PERCENT).div_ceil(100);
    ten_percent.max(fee.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U128;
    use tora_core::UserOperation;

    const GWEI: u128 = 1_000_000_000;

    #[test]
    fn first_price_is_base_fee_with_margin_plus_priority() {
        let fees = BundleFees::price(7 * GWEI, GWEI, 100);
        assert_eq!(fees, BundleFees { max_fee_per_gas: 15 * GWEI, max_priority_fee_per_gas: GWEI });
        // The margin rounds up: 3 wei * 1.25 = 3.75 -> 4.
        assert_eq!(BundleFees::price(3, 0, 25).max_fee_per_gas, 4);
        assert_eq!(BundleFees::price(u128::MAX, u128::MAX, 100).max_fee_per_gas, u128::MAX);
    }

    #[test]
    fn bump_is_ten_percent_rounded_up_and_at_least_one_wei() {
        assert_eq!(bump(1_000_000_000), 1_100_000_000);
        assert_eq!(bump(1_000_000_001), 1_100_000_002);
        assert_eq!(bump(0), 1);
        assert_eq!(bump(5), 6);
        assert_eq!(bump(u128::MAX), u128::MAX);
    }

    #[test]
    fn resubmission_bumps_both_fees_follows_a_rising_market_and_stops_at_the_cap() {
        let sent = BundleFees { max_fee_per_gas: 3 * GWEI, max_priority_fee_per_gas: GWEI };
        let calm = BundleFees { max_fee_per_gas: 2 * GWEI, max_priority_fee_per_gas: GWEI };
        assert_eq!(
            sent.resubmission(calm, 100 * GWEI),
            Some(BundleFees { max_fee_per_gas: 3_300_000_000, max_priority_fee_per_gas: 1_100_000_000 })
        );
        let rising = BundleFees { max_fee_per_gas: 9 * GWEI, max_priority_fee_per_gas: 2 * GWEI };
        assert_eq!(sent.resubmission(rising, 100 * GWEI), Some(rising));
        assert_eq!(sent.resubmission(calm, 3_299_999_999), None);
        assert_eq!(
            sent.cancellation(),
            BundleFees { max_fee_per_gas: 3_300_000_000, max_priority_fee_per_gas: 1_100_000_000 }
        );
    }

    #[test]
    fn an_operation_must_pay_both_fees_of_the_bundle() {
        let fees = BundleFees { max_fee_per_gas: 3 * GWEI, max_priority_fee_per_gas: GWEI };
        let op = |max_fee: u128, priority: u128| PoolOperation {
            op: UserOperation {
                max_fee_per_gas: U128::from(max_fee),
                max_priority_fee_per_gas: U128::from(priority),
                ..Default::default()
            },
            hash: Default::default(),
            sender: crate::validation::EntityInfo {
                address: Default::default(),
                stake: crate::validation::Wei(Default::default()),
                unstake_delay_secs: 0,
                staked: false,
            },
            factory: None,
            paymaster: None,
            valid_until: None,
            prefund: crate::validation::Wei(alloy::primitives::U256::ZERO),
            paymaster_deposit: None,
            code_hashes: Default::default(),
        };
        assert!(fees.covered_by(&op(3 * GWEI, GWEI)));
        assert!(!fees.covered_by(&op(3 * GWEI - 1, GWEI)));
        assert!(!fees.covered_by(&op(3 * GWEI, GWEI - 1)));
    }

    #[test]
    fn suggested_tiers_start_at_the_next_bundles_price_and_raise_the_tip() {
        // Base 7 gwei with a 100% margin, tip 1 gwei: the bundle pays 15 gwei max, 1 gwei tip.
        let [slow, standard, fast] = suggested_tiers(7 * GWEI, GWEI, 100);
        assert_eq!(slow, BundleFees::price(7 * GWEI, GWEI, 100));
        assert_eq!(
            standard,
            BundleFees { max_fee_per_gas: 15 * GWEI + GWEI / 4, max_priority_fee_per_gas: GWEI + GWEI / 4 }
        );
        assert_eq!(
            fast,
            BundleFees { max_fee_per_gas: 15 * GWEI + GWEI / 2, max_priority_fee_per_gas: GWEI + GWEI / 2 }
        );
        // Each is taken by the bundle priced now.
        for tier in [slow, standard, fast] {
            assert!(
                tier.max_fee_per_gas >= slow.max_fee_per_gas
                    && tier.max_priority_fee_per_gas >= slow.max_priority_fee_per_gas
            );
        }
        // A tip of 1 wei rounds up, and nothing overflows at the top.
        assert_eq!(suggested_tiers(0, 1, 100)[1].max_priority_fee_per_gas, 2);
        assert_eq!(suggested_tiers(u128::MAX, u128::MAX, 100)[2].max_fee_per_gas, u128::MAX);
    }
}
