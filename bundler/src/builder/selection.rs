//! Which pending operations go into the next bundle.

use crate::pool::PoolOperation;
use alloy::primitives::{Address, U256};
use std::collections::HashSet;

/// Takes `candidates` (best fee first) while they fit `max_gas`: one operation per sender unless
/// the sender is staked, since a second operation of an unstaked sender was validated against
/// state the first one may change.
pub fn select_bundle(candidates: Vec<PoolOperation>, max_gas: u64, max_ops: usize) -> Vec<PoolOperation> {
    let mut senders = HashSet::<Address>::new();
    let mut gas = U256::ZERO;
    let mut chosen = Vec::new();
    for candidate in candidates {
        if chosen.len() >= max_ops {
            break;
        }
        let with = gas.saturating_add(candidate.gas_limit());
        if with > U256::from(max_gas) {
            // A smaller operation further down may still fit.
            continue;
        }
        if !senders.insert(candidate.op.sender) && !candidate.sender.staked {
            continue;
        }
        gas = with;
        chosen.push(candidate);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::{EntityInfo, Wei};
    use alloy::primitives::{B256, U128};
    use tora_core::UserOperation;

    fn candidate(sender: u8, nonce: u64, gas: u64, staked: bool) -> PoolOperation {
        let op = UserOperation {
            sender: Address::repeat_byte(sender),
            nonce: U256::from(nonce),
            call_gas_limit: U128::from(gas),
            ..Default::default()
        };
        PoolOperation {
            hash: B256::repeat_byte(sender ^ nonce as u8),
            sender: EntityInfo { address: op.sender, stake: Wei(U256::ZERO), unstake_delay_secs: 0, staked },
            factory: None,
            paymaster: None,
            valid_until: None,
            associated_storage: Default::default(),
            code_hashes: Default::default(),
            op,
        }
    }

    fn picked(chosen: &[PoolOperation]) -> Vec<(u8, u64)> {
        chosen.iter().map(|p| (p.op.sender.0[0], p.op.nonce.to::<u64>())).collect()
    }

    #[test]
    fn one_operation_per_unstaked_sender_any_number_per_staked() {
        let candidates = vec![
            candidate(1, 0, 10, false),
            candidate(1, 1, 10, false),
            candidate(2, 0, 10, true),
            candidate(2, 1, 10, true),
        ];
        assert_eq!(picked(&select_bundle(candidates, 1_000, 10)), vec![(1, 0), (2, 0), (2, 1)]);
    }

    #[test]
    fn stops_at_the_gas_target_but_fills_with_smaller_operations() {
        let candidates =
            vec![candidate(1, 0, 600, false), candidate(2, 0, 500, false), candidate(3, 0, 400, false)];
        // 600 fits, 600 + 500 does not, 600 + 400 = 1,000 does.
        assert_eq!(picked(&select_bundle(candidates.clone(), 1_000, 10)), vec![(1, 0), (3, 0)]);
        assert_eq!(picked(&select_bundle(candidates, 1_000, 1)), vec![(1, 0)]);
    }
}
