//! The pool's rules with exact numbers, on both stores: each test runs on an in-memory pool
//! and on a Redis pool over a real redis-server.

use super::*;
use crate::validation::{EntityInfo, Phase, Wei};
use alloy::primitives::{U128, U256};
use tora_core::{ErrorCode, RpcError, UserOperation};
use tora_redis::RedisTarget;

pub(super) const GWEI: u64 = 1_000_000_000;
const PAYMASTER: Address = Address::repeat_byte(0x9a);

fn entity(address: Address, staked: bool) -> EntityInfo {
    EntityInfo { address, stake: Wei(U256::ZERO), unstake_delay_secs: 0, staked }
}

/// An unstaked sender's operation with these fees and a prefund of 1,000 wei (the redis
/// store's own tests use it too).
pub(super) fn op(sender: u8, nonce: u64, max_fee: u64, priority: u64) -> PoolOperation {
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
        prefund: Wei(U256::from(1_000)),
        paymaster_deposit: None,
        code_hashes: Default::default(),
        op,
    }
}

fn block(number: u64, timestamp: u64, base_fee: u128) -> PoolBlock {
    PoolBlock { number, timestamp, base_fee }
}

fn with_paymaster(mut p: PoolOperation) -> PoolOperation {
    p.paymaster = Some(entity(PAYMASTER, false));
    p
}

fn code(err: PoolError) -> ErrorCode {
    RpcError::from(err).code
}

/// A kind of store that makes fresh, empty pools.
trait Store {
    type Pool: Mempool;
    async fn pool(&self, max_operations: usize) -> std::sync::Arc<Self::Pool>;
}

struct Memory;

impl Store for Memory {
    type Pool = InMemoryPool;
    async fn pool(&self, max_operations: usize) -> std::sync::Arc<InMemoryPool> {
        std::sync::Arc::new(InMemoryPool::new(PoolSettings { max_operations, ..Default::default() }))
    }
}

/// Pools on one redis-server, each under its own EntryPoint.
struct InRedis {
    server: tora_devnet::redis_server::RedisServer,
    pools: std::sync::atomic::AtomicU8,
}

impl InRedis {
    fn start() -> Self {
        Self { server: tora_devnet::redis_server::RedisServer::start(), pools: Default::default() }
    }
}

impl Store for InRedis {
    type Pool = RedisPool;
    async fn pool(&self, max_operations: usize) -> std::sync::Arc<RedisPool> {
        let n = self.pools.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let target = RedisTarget::Server(self.server.url.clone());
        RedisPool::connect(
            &target,
            1,
            Address::repeat_byte(n),
            PoolSettings { max_operations, ..Default::default() },
        )
        .await
        .unwrap()
    }
}

fn hashes(ops: Vec<PoolOperation>) -> Vec<B256> {
    ops.into_iter().map(|p| p.hash).collect()
}

async fn replacement_needs_ten_percent_on_both_fees<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    pool.add(op(1, 0, 5 * GWEI, GWEI)).await.unwrap();
    // +10% on maxFeePerGas, +9% on maxPriorityFeePerGas: refused, with the fees it needs.
    let err = pool.add(op(1, 0, 5_500_000_000, 1_090_000_000)).await.unwrap_err();
    assert_eq!(
        err,
        PoolError::ReplacementUnderpriced {
            fee: "maxPriorityFeePerGas",
            old: U256::from(GWEI),
            new: U256::from(1_090_000_000u64),
            min: U256::from(1_100_000_000u64)
        }
    );
    assert!(err.to_string().starts_with("Replacement UserOperation must have higher maxPriorityFeePerGas"));
    assert_eq!(code(err), ErrorCode::InvalidParams);
    assert_eq!(pool.dump().len(), 1);
    // Exactly +10% on both replaces it.
    let replacement = op(1, 0, 5_500_000_000, 1_100_000_000);
    let hash = pool.add(replacement.clone()).await.unwrap();
    assert_eq!(hashes(pool.dump()), vec![hash]);
    assert_eq!(pool.get(hash).unwrap().op, replacement.op);
}

async fn unstaked_sender_holds_at_most_four_operations<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    for nonce in 0..4 {
        pool.add(op(1, nonce, GWEI, GWEI)).await.unwrap();
    }
    let err = pool.add(op(1, 4, GWEI, GWEI)).await.unwrap_err();
    assert_eq!(err, PoolError::SenderLimit { sender: Address::repeat_byte(1), count: 4 });
    assert_eq!(code(err), ErrorCode::StakeTooLow);
    // A replacement does not count as a fifth.
    pool.add(op(1, 3, 2 * GWEI, 2 * GWEI)).await.unwrap();
    // A staked sender has no such limit.
    for nonce in 0..6 {
        let mut staked = op(2, nonce, GWEI, GWEI);
        staked.sender.staked = true;
        pool.add(staked).await.unwrap();
    }
    assert_eq!(pool.dump().len(), 10);
}

/// Sets the paymaster's reputation to `ops_seen` operations seen and none included.
async fn paymaster_seen(pool: &impl Mempool, ops_seen: u64) {
    pool.set_reputation(&[ReputationEntry { address: PAYMASTER, ops_seen, ops_included: 0, status: None }])
        .await;
}

async fn throttled_entity_holds_at_most_four_operations_and_banned_none<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    // 110 seen, 0 included: 110 / 10 > 0 + 10, throttled.
    paymaster_seen(&*pool, 110).await;
    for sender in 1..=4 {
        pool.add(with_paymaster(op(sender, 0, GWEI, GWEI))).await.unwrap();
    }
    let err = pool.add(with_paymaster(op(5, 0, GWEI, GWEI))).await.unwrap_err();
    assert_eq!(err, PoolError::Throttled { role: Phase::Paymaster, entity: PAYMASTER, count: 4 });
    assert_eq!(
        err.to_string(),
        format!("paymaster {PAYMASTER} is throttled and already in 4 mempool operations")
    );
    assert_eq!(code(err), ErrorCode::ThrottledOrBanned);
    assert_eq!(pool.check_entities(&[(Phase::Paymaster, PAYMASTER)]), Ok(()));
    // 510 seen: 510 / 10 > 0 + 50, banned outright, and refused before validation.
    pool.clear().await;
    paymaster_seen(&*pool, 510).await;
    let banned = PoolError::Banned { role: Phase::Paymaster, entity: PAYMASTER };
    assert_eq!(pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).await, Err(banned.clone()));
    let entities = [(Phase::Account, Address::ZERO), (Phase::Paymaster, PAYMASTER)];
    assert_eq!(pool.check_entities(&entities), Err(banned));
}

async fn adding_counts_ops_seen_and_inclusion_counts_ops_included<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    let a = pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).await.unwrap();
    pool.add(with_paymaster(op(2, 0, GWEI, GWEI))).await.unwrap();
    assert!(pool.mark_included(a).await.is_some());
    assert!(pool.mark_included(a).await.is_none(), "only once");
    let paymaster = pool.dump_reputation().into_iter().find(|e| e.address == PAYMASTER).unwrap();
    assert_eq!((paymaster.ops_seen, paymaster.ops_included), (2, 1));
    assert_eq!(paymaster.status, Some(ReputationStatus::Ok));
    assert_eq!(pool.dump().len(), 1);
    pool.decay_reputation().await;
    // 2 * 23 / 24 = 1, 1 * 23 / 24 = 0.
    let paymaster = pool.dump_reputation().into_iter().find(|e| e.address == PAYMASTER).unwrap();
    assert_eq!((paymaster.ops_seen, paymaster.ops_included), (1, 0));
    pool.clear_reputation().await;
    assert!(pool.dump_reputation().is_empty());
}

async fn an_entity_that_is_another_pending_sender_conflicts<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).await.unwrap();
    // STO-040: the paymaster of a pending operation sends its own.
    let err = pool.add(op(0x9a, 0, GWEI, GWEI)).await.unwrap_err();
    assert!(err.to_string().contains("is used as a different entity in another UserOperation"), "{err}");
    let rpc = RpcError::from(err);
    assert_eq!(rpc.code, ErrorCode::BannedOpcode);
    assert_eq!(rpc.data.unwrap()["rule"], "STO-040");
    // ...and the other way: a pending sender named as this operation's paymaster.
    let mut pays_with_sender_1 = op(3, 0, GWEI, GWEI);
    pays_with_sender_1.paymaster = Some(entity(Address::repeat_byte(1), false));
    let err = pool.add(pays_with_sender_1).await.unwrap_err();
    assert!(err.to_string().contains("is used as a sender entity in another UserOperation"), "{err}");
}

async fn a_paymaster_deposit_must_cover_every_pending_prefund<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    // EREP-010: a deposit of 2,999 wei covers two prefunds of 1,000 and not a third (3,000).
    let paid = |sender| {
        let mut p = with_paymaster(op(sender, 0, GWEI, GWEI));
        p.paymaster_deposit = Some(Wei(U256::from(2_999)));
        p
    };
    pool.add(paid(1)).await.unwrap();
    pool.add(paid(2)).await.unwrap();
    let err = pool.add(paid(3)).await.unwrap_err();
    assert_eq!(
        err,
        PoolError::PaymasterDepositTooLow {
            paymaster: PAYMASTER,
            deposit: Wei(U256::from(2_999)),
            needed: U256::from(3_000)
        }
    );
    assert_eq!(code(err), ErrorCode::PaymasterDepositTooLow);
    // A replacement counts its own prefund instead of the one it replaces.
    let mut bumped = paid(2);
    bumped.op.max_fee_per_gas = U128::from(2 * GWEI);
    bumped.op.max_priority_fee_per_gas = U128::from(2 * GWEI);
    bumped.hash = bumped.op.hash(Address::repeat_byte(0xe0), 1);
    pool.add(bumped).await.unwrap();
    assert_eq!(pool.dump().len(), 2);
}

async fn an_unstaked_paymaster_is_limited_by_its_inclusions<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    // UREP-020: a new unstaked paymaster appears in at most 10 pending operations.
    for sender in 1..=10 {
        pool.add(with_paymaster(op(sender, 0, GWEI, GWEI))).await.unwrap();
    }
    let err = pool.add(with_paymaster(op(11, 0, GWEI, GWEI))).await.unwrap_err();
    assert_eq!(err, PoolError::UnstakedEntityLimit { role: Phase::Paymaster, entity: PAYMASTER, count: 10 });
    assert_eq!(code(err), ErrorCode::StakeTooLow);
    // Every inclusion earns room: 20 seen, 20 included allows 10 + 20 * 20 / 20 = 30.
    let record = |ops_seen| ReputationEntry { address: PAYMASTER, ops_seen, ops_included: 20, status: None };
    pool.set_reputation(&[record(20)]).await;
    pool.add(with_paymaster(op(11, 0, GWEI, GWEI))).await.unwrap();
    // A low inclusion rate earns little (and still short of throttling): 290 seen, 20 included
    // allows 10 + 400 / 290 = 11, which the 11 pending already fill.
    pool.set_reputation(&[record(290)]).await;
    assert!(matches!(
        pool.add(with_paymaster(op(12, 0, GWEI, GWEI))).await,
        Err(PoolError::UnstakedEntityLimit { count: 11, .. })
    ));
    // A staked paymaster has no such limit.
    let mut staked = op(31, 0, GWEI, GWEI);
    staked.paymaster = Some(entity(PAYMASTER, true));
    pool.add(staked).await.unwrap();
}

async fn a_replacement_that_drops_the_paymaster_gives_back_its_ops_seen<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).await.unwrap();
    let seen = |pool: &S::Pool| {
        pool.dump_reputation().into_iter().find(|e| e.address == PAYMASTER).unwrap().ops_seen
    };
    assert_eq!(seen(&pool), 1);
    // GREP-050: the replacement pays its own gas; the paymaster it no longer names is unseen.
    let mut replacement = op(1, 0, 2 * GWEI, 2 * GWEI);
    replacement.hash = replacement.op.hash(Address::repeat_byte(0xe0), 2);
    pool.add(replacement).await.unwrap();
    assert_eq!(seen(&pool), 0);
}

async fn a_penalized_entity_is_banned_and_its_pending_operations_leave<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    let a = pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).await.unwrap();
    let b = pool.add(with_paymaster(op(2, 0, GWEI, GWEI))).await.unwrap();
    let other = pool.add(op(3, 0, GWEI, GWEI)).await.unwrap();
    let mut purged = pool.penalize(PAYMASTER).await;
    purged.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(purged, expected);
    assert_eq!(hashes(pool.dump()), vec![other]);
    assert_eq!(pool.reputation_status(PAYMASTER), ReputationStatus::Banned);
    // EREP-015's unsee takes back one opsSeen: 2 + 10,000 - 1.
    pool.unsee(PAYMASTER).await;
    assert_eq!(pool.dump_reputation().into_iter().find(|e| e.address == PAYMASTER).unwrap().ops_seen, 10_001);
}

async fn operations_past_valid_until_are_dropped<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    let mut expiring = op(1, 0, GWEI, GWEI);
    expiring.valid_until = Some(1_000);
    let hash = pool.add(expiring).await.unwrap();
    pool.add(op(2, 0, GWEI, GWEI)).await.unwrap();
    // Still valid at its validUntil (the EntryPoint checks timestamp > validUntil).
    assert!(pool.on_block(block(1, 1_000, 0)).await.is_empty());
    assert_eq!(pool.on_block(block(2, 1_001, 0)).await, vec![(hash, Expiry::ValidUntil)]);
    assert!(pool.get(hash).is_none());
    assert_eq!(pool.dump().len(), 1);
}

async fn operations_naming_a_throttled_entity_leave_after_ten_blocks<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    // Added before any block is known: the first block read (100) starts its wait.
    let early = pool.add(with_paymaster(op(1, 0, GWEI, GWEI))).await.unwrap();
    assert!(pool.on_block(block(100, 0, 0)).await.is_empty());
    assert!(pool.on_block(block(105, 0, 0)).await.is_empty());
    let late = pool.add(with_paymaster(op(2, 0, GWEI, GWEI))).await.unwrap();
    let unrelated = pool.add(op(3, 0, GWEI, GWEI)).await.unwrap();
    // 110 seen, 0 included: throttled.
    paymaster_seen(&*pool, 110).await;
    // early has waited 9 blocks at 109, 10 at 110; late (from 105) 10 at 115.
    assert!(pool.on_block(block(109, 0, 0)).await.is_empty());
    assert_eq!(pool.on_block(block(110, 0, 0)).await, vec![(early, Expiry::ThrottledTooLong)]);
    assert!(pool.on_block(block(114, 0, 0)).await.is_empty());
    assert_eq!(pool.on_block(block(115, 0, 0)).await, vec![(late, Expiry::ThrottledTooLong)]);
    // An operation naming no throttled entity stays however long it waits.
    assert!(pool.on_block(block(500, 0, 0)).await.is_empty());
    assert_eq!(hashes(pool.dump()), vec![unrelated]);
}

async fn a_full_pool_evicts_the_lowest_fee_first<S: Store>(store: &S) {
    let pool = store.pool(2).await;
    let low = pool.add(op(1, 0, GWEI, GWEI)).await.unwrap();
    let mid = pool.add(op(2, 0, 2 * GWEI, 2 * GWEI)).await.unwrap();
    let high = pool.add(op(3, 0, 3 * GWEI, 3 * GWEI)).await.unwrap();
    assert_eq!(hashes(pool.dump()), vec![mid, high]);
    assert!(pool.get(low).is_none());
    // Not above the lowest left (2 gwei): refused, nothing evicted.
    let err = pool.add(op(4, 0, 2 * GWEI, 2 * GWEI)).await.unwrap_err();
    assert_eq!(err, PoolError::Full { fee: 2 * GWEI as u128, lowest: 2 * GWEI as u128 });
    assert_eq!(hashes(pool.dump()), vec![mid, high]);
}

async fn best_orders_by_effective_fee_at_the_base_fee<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    // a: maxFee 10, tip 1; b: maxFee 3, tip 3.
    let a = pool.add(op(1, 0, 10, 1)).await.unwrap();
    let b = pool.add(op(2, 0, 3, 3)).await.unwrap();
    // Base fee 0: a earns 1, b earns 3.
    assert_eq!(hashes(pool.best(10)), vec![b, a]);
    // Base fee 5: a earns min(10, 6) = 6, b min(3, 8) = 3.
    pool.on_block(block(1, 0, 5)).await;
    assert_eq!(hashes(pool.best(10)), vec![a, b]);
    assert_eq!(hashes(pool.best(1)), vec![a]);
}

async fn duplicates_are_refused_and_removal_is_by_hash<S: Store>(store: &S) {
    let pool = store.pool(100).await;
    let first = op(1, 0, GWEI, GWEI);
    let hash = pool.add(first.clone()).await.unwrap();
    assert_eq!(pool.add(first).await, Err(PoolError::AlreadyKnown(hash)));
    assert_eq!(pool.remove(hash).await.map(|p| p.hash), Some(hash));
    assert!(pool.remove(hash).await.is_none());
    // The sender+nonce slot is free again: no replacement fee needed.
    pool.add(op(1, 0, GWEI, GWEI)).await.unwrap();
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            $(#[tokio::test] async fn $name() { super::$name(&super::Memory).await })*
        }
        mod in_redis {
            $(#[tokio::test] async fn $name() { super::$name(&super::InRedis::start()).await })*
        }
    };
}

on_both_stores!(
    replacement_needs_ten_percent_on_both_fees,
    unstaked_sender_holds_at_most_four_operations,
    throttled_entity_holds_at_most_four_operations_and_banned_none,
    adding_counts_ops_seen_and_inclusion_counts_ops_included,
    an_entity_that_is_another_pending_sender_conflicts,
    a_paymaster_deposit_must_cover_every_pending_prefund,
    an_unstaked_paymaster_is_limited_by_its_inclusions,
    a_replacement_that_drops_the_paymaster_gives_back_its_ops_seen,
    a_penalized_entity_is_banned_and_its_pending_operations_leave,
    operations_past_valid_until_are_dropped,
    operations_naming_a_throttled_entity_leave_after_ten_blocks,
    a_full_pool_evicts_the_lowest_fee_first,
    best_orders_by_effective_fee_at_the_base_fee,
    duplicates_are_refused_and_removal_is_by_hash
);
