//! Which pending operations go into the next bundle.

use crate::pool::{PoolOperation, THROTTLED_ENTITY_BUNDLE_COUNT};
use alloy::primitives::{Address, B256, U256};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Takes `candidates` (best fee first) while they fit `max_gas`: one operation per sender unless
/// the sender is staked, since a second operation of an unstaked sender was validated against
/// state the first one may change; and at most THROTTLED_ENTITY_BUNDLE_COUNT operations naming
/// each entity in `throttled` (ERC-7562 GREP-020).
pub fn select_bundle(
    candidates: Vec<PoolOperation>,
    max_gas: u64,
    max_ops: usize,
    throttled: &HashSet<Address>,
) -> Vec<PoolOperation> {
    let mut senders = HashSet::<Address>::new();
    let mut throttled_uses = HashMap::<Address, usize>::new();
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
        let limited: Vec<Address> =
            candidate.entities().map(|e| e.address).filter(|a| throttled.contains(a)).collect();
        if limited
            .iter()
            .any(|a| throttled_uses.get(a).copied().unwrap_or(0) >= THROTTLED_ENTITY_BUNDLE_COUNT)
        {
            continue;
        }
        if !senders.insert(candidate.op.sender) && !candidate.sender.staked {
            continue;
        }
        for address in limited {
            *throttled_uses.entry(address).or_default() += 1;
        }
        gas = with;
        chosen.push(candidate);
    }
    chosen
}

/// ERC-7562 STO-041, judged when a bundle is built: an operation whose validation used the
/// storage of a contract that is the sender of another pending operation stays out of this
/// bundle (and in the pool), since that sender's own validation may change what it read.
/// `touched` is each operation's storage from its second validation; `pending_senders` every
/// sender in the pool. Returns the hashes held back.
pub fn hold_back_storage_conflicts(
    chosen: &mut Vec<PoolOperation>,
    touched: &HashMap<B256, BTreeSet<Address>>,
    pending_senders: &HashSet<Address>,
) -> Vec<B256> {
    let mut held = Vec::new();
    chosen.retain(|p| {
        let conflict = touched.get(&p.hash).is_some_and(|contracts| {
            contracts.iter().any(|c| *c != p.op.sender && pending_senders.contains(c))
        });
        if conflict {
            held.push(p.hash);
        }
        !conflict
    });
    held
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
            prefund: Wei(U256::ZERO),
            paymaster_deposit: None,
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
        assert_eq!(
            picked(&select_bundle(candidates, 1_000, 10, &HashSet::new())),
            vec![(1, 0), (2, 0), (2, 1)]
        );
    }

    #[test]
    fn stops_at_the_gas_target_but_fills_with_smaller_operations() {
        let candidates =
            vec![candidate(1, 0, 600, false), candidate(2, 0, 500, false), candidate(3, 0, 400, false)];
        // 600 fits, 600 + 500 does not, 600 + 400 = 1,000 does.
        assert_eq!(
            picked(&select_bundle(candidates.clone(), 1_000, 10, &HashSet::new())),
            vec![(1, 0), (3, 0)]
        );
        assert_eq!(picked(&select_bundle(candidates, 1_000, 1, &HashSet::new())), vec![(1, 0)]);
    }

    #[test]
    fn a_throttled_entity_rides_in_at_most_four_operations_of_a_bundle() {
        let paymaster = Address::repeat_byte(0x9a);
        let candidates: Vec<PoolOperation> = (1..=6)
            .map(|sender| {
                let mut c = candidate(sender, 0, 10, false);
                c.paymaster = Some(EntityInfo {
                    address: paymaster,
                    stake: Wei(U256::ZERO),
                    unstake_delay_secs: 0,
                    staked: false,
                });
                c
            })
            .collect();
        let throttled = HashSet::from([paymaster]);
        assert_eq!(select_bundle(candidates.clone(), 1_000, 10, &throttled).len(), 4);
        assert_eq!(select_bundle(candidates, 1_000, 10, &HashSet::new()).len(), 6);
    }

    #[test]
    fn an_operation_using_another_pending_senders_storage_is_held_back() {
        let (reader, writer) = (candidate(2, 0, 10, false), candidate(1, 0, 10, false));
        let mut chosen = vec![writer.clone(), reader.clone()];
        // The reader's validation read the writer's (sender 1's) storage; its own is fine.
        let touched = HashMap::from([
            (reader.hash, BTreeSet::from([Address::repeat_byte(1), Address::repeat_byte(2)])),
            (writer.hash, BTreeSet::from([Address::repeat_byte(1)])),
        ]);
        let pending = HashSet::from([Address::repeat_byte(1), Address::repeat_byte(2)]);
        assert_eq!(hold_back_storage_conflicts(&mut chosen, &touched, &pending), vec![reader.hash]);
        assert_eq!(picked(&chosen), vec![(1, 0)]);
        // Once the writer is no longer pending, the reader goes.
        let mut chosen = vec![reader.clone()];
        assert!(
            hold_back_storage_conflicts(&mut chosen, &touched, &HashSet::from([Address::repeat_byte(2)]))
                .is_empty()
        );
    }
}
