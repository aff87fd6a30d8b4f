//! The pool's rules with exact numbers.

use super::*;
use crate::validation::{EntityInfo, Wei};
use alloy::primitives::U128;
use std::collections::BTreeSet;
use tora_core::{ErrorCode, UserOperation};

const GWEI: u64 = 1_000_000_000;
const PAYMASTER: Address = Address::repeat_byte(0x9a);

fn entity(address: Address, staked: bool) -> EntityInfo {
    EntityInfo { address, stake: Wei(U256::ZERO), unstake_delay_secs: 0, staked }
}

fn op(sender: u8, nonce: u64, max_fee: u64, priority: u64) -> PoolOperation {
    let op = UserOperation {
        sender: Address::repeat_byte(sender),
        nonce: U256::from(nonce),
        max_fee_per_gas: U128::from(max_fee),
        max_priority_fee_per_gas: U128::from(priority),
        ..Default::default()
    };
    PoolOperation {
        hash: op.hash(Address::repeat_byte(0xe0), 1),
        sender: entity(op.sender, false),
        factory: None,
        paymaster: None,
        valid_until: None,
        associated_storage: BTreeSet::new(),
        code_hashes: Default::default(),
        op,
    }
}

fn with_paymaster(mut p: PoolOperation) -> PoolOperation {
    p.paymaster = Some(entity(PAYMASTER, false));
    p
}

fn pool(max_operations: usize) -> InMemoryPool {
    InMemoryPool::new(PoolSettings { max_operations })
}

fn hashes(ops: Vec<PoolOperation>) -> Vec<B256> {
    ops.into_iter().map(|p| p.hash).collect()
}

#[test]
fn replacement_needs_ten_percent_on_both_fees() {
    let pool = pool(100);
    pool.add(op(1, 0, 5 * GWEI, GWEI)).unwrap();
    // +10% on maxFeePerGas, +9% on maxPriorityFeePerGas: refused, with the fees it needs.
    let err = pool.add(op(1, 0, 5_500_000_000, 1_090_000_000)).unwrap_err();
    assert_eq!(
        err,
        PoolError::ReplacementUnderpriced {
            min_max_fee: U256::from(5_500_000_000u64),
            min_priority_fee: U256::from(1_100_000_000u64)
        }
    );
    assert_eq!(err.code(), ErrorCode::InvalidParams);
    assert_eq!(pool.dump().len(), 1);
    // Exactly +10% on both replaces it.
    let replacement = op(1, 0, 5_500_000_000, 1_100_000_000);
    let hash = pool.add(replacement.clone()).unwrap();
    assert_eq!(hashes(pool.dump()), vec![hash]);
    assert_eq!(pool.get(hash).unwrap().op, replacement.op);
}

#[test]
fn unstaked_sender_holds_at_most_four_operations() {
    let pool = pool(100);
    for nonce in 0..4 {
        pool.add(op(1, nonce, GWEI, GWEI)).unwrap();
    }
    let err = pool.add(op(1, 4, GWEI, GWEI)).unwrap_err();
    assert_eq!(err, PoolError::SenderLimit { sender: Address::repeat_byte(1), count: 4 });
    assert_eq!(err.code(), ErrorCode::StakeTooLow);
    // A replacement does not count as a fifth.
    pool.add(op(1, 3, 2 * GWEI, 2 * GWEI)).unwrap();
    // A staked sender has no such limit.
    for nonce in 0..6 {
        let mut staked = op(2, nonce, GWEI, GWEI);
        staked.sender.staked = true;
        pool.add(staked).unwrap();
    }
    assert_eq!(pool.dump().len(), 10);
}

#[test]
fn throttled_entity_holds_at_most_four_operations_and_banned_none() {
    let pool = pool(100);
    // 101 seen, 0 included: 101 > (0 + 10) * 10, throttled.
    pool.set_reputation(&[ReputationEntry {
        address: PAYMASTER,
        ops_seen: 101,
        ops_included: 0,
        status: None,
    }]);
    for sender in 1..=4 {
        pool.add(with_paymaster(op(sender, 0, GWEI, GWEI))).unwrap();
    }
    let err = pool.add(with_paymaster(op(5, 0, GWEI, GWEI))).unwrap_err();
    assert_eq!(err, PoolError::Throttled { entity: PAYMASTER, count: 4 });
    assert_eq!(err.code(), ErrorCode::ThrottledOrBanned);
    assert_eq!(pool.check_entities(&[PAYMASTER]), Ok(()));
    // 501 seen: past (0 + 50) * 10, banned outright, and refused before validation.
    pool.clear();
    pool.set_reputation(&[ReputationEntry {
        address: PAYMASTER,
        ops_seen: 501,
        ops_included: 0,
        status: None,
    }]);
    assert_eq!(pool.add(with_paymaster(op(1, 0, GWEI, GWEI))), Err(PoolError::Banned(PAYMASTER)));
    assert_eq!(pool.check_entities(&[Address::ZERO, PAYMASTER]), Err(PoolError::Banned(PAYMASTER)));
}

#[test]
fn adding_counts_ops_seen_and_inclusion_counts_ops_included() {
    let pool = pool(100);
    let a = pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).unwrap();
    pool.add(with_paymaster(op(2, 0, GWEI, GWEI))).unwrap();
    assert!(pool.mark_included(a).is_some());
    assert!(pool.mark_included(a).is_none(), "only once");
    let paymaster = pool.dump_reputation().into_iter().find(|e| e.address == PAYMASTER).unwrap();
    assert_eq!((paymaster.ops_seen, paymaster.ops_included), (2, 1));
    assert_eq!(paymaster.status, Some(ReputationStatus::Ok));
    assert_eq!(pool.dump().len(), 1);
    pool.decay_reputation();
    // 2 * 23 / 24 = 1, 1 * 23 / 24 = 0.
    let paymaster = pool.dump_reputation().into_iter().find(|e| e.address == PAYMASTER).unwrap();
    assert_eq!((paymaster.ops_seen, paymaster.ops_included), (1, 0));
    pool.clear_reputation();
    assert!(pool.dump_reputation().is_empty());
}

#[test]
fn an_entity_that_is_another_pending_sender_conflicts() {
    let pool = pool(100);
    pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).unwrap();
    // STO-040: the paymaster of a pending operation sends its own.
    let err = pool.add(op(0x9a, 0, GWEI, GWEI)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BannedOpcode);
    assert_eq!(err.to_rpc().data.unwrap()["rule"], "STO-040");
    // STO-041: associated storage in a pending sender's contract.
    let mut uses_storage_of_1 = op(3, 0, GWEI, GWEI);
    uses_storage_of_1.associated_storage.insert(Address::repeat_byte(1));
    assert_eq!(pool.add(uses_storage_of_1).unwrap_err().to_rpc().data.unwrap()["rule"], "STO-041");
}

#[test]
fn operations_past_valid_until_are_dropped() {
    let pool = pool(100);
    let mut expiring = op(1, 0, GWEI, GWEI);
    expiring.valid_until = Some(1_000);
    let hash = pool.add(expiring).unwrap();
    pool.add(op(2, 0, GWEI, GWEI)).unwrap();
    // Still valid at its validUntil (the EntryPoint checks timestamp > validUntil).
    assert!(pool.on_block(1_000, 0).is_empty());
    assert_eq!(pool.on_block(1_001, 0), vec![hash]);
    assert!(pool.get(hash).is_none());
    assert_eq!(pool.dump().len(), 1);
}

#[test]
fn a_full_pool_evicts_the_lowest_fee_first() {
    let pool = pool(2);
    let low = pool.add(op(1, 0, GWEI, GWEI)).unwrap();
    let mid = pool.add(op(2, 0, 2 * GWEI, 2 * GWEI)).unwrap();
    let high = pool.add(op(3, 0, 3 * GWEI, 3 * GWEI)).unwrap();
    assert_eq!(hashes(pool.dump()), vec![mid, high]);
    assert!(pool.get(low).is_none());
    // Not above the lowest left (2 gwei): refused, nothing evicted.
    let err = pool.add(op(4, 0, 2 * GWEI, 2 * GWEI)).unwrap_err();
    assert_eq!(err, PoolError::Full { fee: 2 * GWEI as u128, lowest: 2 * GWEI as u128 });
    assert_eq!(hashes(pool.dump()), vec![mid, high]);
}

#[test]
fn best_orders_by_effective_fee_at_the_base_fee() {
    let pool = pool(100);
    // a: maxFee 10, tip 1; b: maxFee 3, tip 3.
    let a = pool.add(op(1, 0, 10, 1)).unwrap();
    let b = pool.add(op(2, 0, 3, 3)).unwrap();
    // Base fee 0: a earns 1, b earns 3.
    assert_eq!(hashes(pool.best(10)), vec![b, a]);
    // Base fee 5: a earns min(10, 6) = 6, b min(3, 8) = 3.
    pool.on_block(0, 5);
    assert_eq!(hashes(pool.best(10)), vec![a, b]);
    assert_eq!(hashes(pool.best(1)), vec![a]);
}

#[test]
fn duplicates_are_refused_and_removal_is_by_hash() {
    let pool = pool(100);
    let first = op(1, 0, GWEI, GWEI);
    let hash = pool.add(first.clone()).unwrap();
    assert_eq!(pool.add(first), Err(PoolError::AlreadyKnown(hash)));
    assert_eq!(pool.remove(hash).map(|p| p.hash), Some(hash));
    assert!(pool.remove(hash).is_none());
    // The sender+nonce slot is free again: no replacement fee needed.
    pool.add(op(1, 0, GWEI, GWEI)).unwrap();
}
