//! Both voucher stores against the same expectations, the Redis one on a real redis-server.

mod common;

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use tora_core::money::ToraUnits;
use tora_devnet::redis_server::RedisServer;
use tora_inference_gateway::payment::{
    Acceptance, MemoryVoucherStore, RedisVoucherStore, SignedVoucher, VoucherStore,
};

const PROVIDER: Address = Address::repeat_byte(0x9a);

fn voucher(payer: u8, amount: u64) -> SignedVoucher {
    SignedVoucher {
        payer: Address::repeat_byte(payer),
        cumulative_amount: U256::from(amount),
        signature: Bytes::from(vec![payer, amount as u8]),
    }
}

fn units(n: u64) -> ToraUnits {
    ToraUnits(U256::from(n))
}

async fn takes_only_raises_of_at_least_the_price(store: &impl VoucherStore) {
    assert_eq!(store.latest(Address::repeat_byte(1)).await.unwrap(), None);
    let accepted = |previous: u64| Acceptance::Accepted { previous: U256::from(previous) };
    let stale = |latest: u64| Acceptance::Stale { latest: U256::from(latest) };

    assert_eq!(store.accept(&voucher(1, 10), units(10)).await.unwrap(), accepted(0));
    // The same voucher again, and one short by a unit: neither pays for another call.
    assert_eq!(store.accept(&voucher(1, 10), units(10)).await.unwrap(), stale(10));
    assert_eq!(store.accept(&voucher(1, 19), units(10)).await.unwrap(), stale(10));
    assert_eq!(store.accept(&voucher(1, 5), units(10)).await.unwrap(), stale(10), "below the price itself");
    assert_eq!(store.accept(&voucher(1, 20), units(10)).await.unwrap(), accepted(10));
    // Paying more than the price is the payer's choice; the next floor rises with it.
    assert_eq!(store.accept(&voucher(1, 100), units(3)).await.unwrap(), accepted(20));
    assert_eq!(store.accept(&voucher(1, 102), units(3)).await.unwrap(), stale(100));
    // Payers are independent.
    assert_eq!(store.accept(&voucher(2, 7), units(7)).await.unwrap(), accepted(0));

    assert_eq!(store.latest(Address::repeat_byte(1)).await.unwrap(), Some(voucher(1, 100)));
    let mut all = store.all_latest().await.unwrap();
    all.sort_by_key(|v| v.payer);
    assert_eq!(all, vec![voucher(1, 100), voucher(2, 7)]);

    // Amounts past 2^64 and near 2^256 compare exactly.
    let big = |amount: U256| SignedVoucher { cumulative_amount: amount, ..voucher(3, 0) };
    let huge = U256::MAX - U256::from(5);
    assert_eq!(store.accept(&big(huge), units(1)).await.unwrap(), accepted(0));
    assert_eq!(
        store.accept(&big(U256::MAX), ToraUnits(U256::from(6))).await.unwrap(),
        Acceptance::Stale { latest: huge }
    );
    assert!(matches!(store.accept(&big(U256::MAX), units(5)).await.unwrap(), Acceptance::Accepted { .. }));
}

/// 24 requests carrying the same voucher at once: exactly one is paid by it.
async fn a_voucher_sent_in_parallel_counts_once<S: VoucherStore>(store: Arc<S>) {
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.accept(&voucher(9, 50), units(50)).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Acceptance::Accepted { .. }) {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn memory_store_takes_only_raises_of_at_least_the_price() {
    takes_only_raises_of_at_least_the_price(&MemoryVoucherStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_counts_a_voucher_sent_in_parallel_once() {
    a_voucher_sent_in_parallel_counts_once(Arc::new(MemoryVoucherStore::default())).await;
}

#[tokio::test]
async fn redis_store_takes_only_raises_of_at_least_the_price() {
    let redis = RedisServer::start();
    takes_only_raises_of_at_least_the_price(&RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_counts_a_voucher_sent_in_parallel_once() {
    let redis = RedisServer::start();
    a_voucher_sent_in_parallel_counts_once(Arc::new(
        RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn redis_store_keeps_vouchers_across_a_restart_of_the_gateway() {
    let redis = RedisServer::start();
    let before = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    before.accept(&voucher(1, 30), units(30)).await.unwrap();
    drop(before);

    let after = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    assert_eq!(after.latest(Address::repeat_byte(1)).await.unwrap(), Some(voucher(1, 30)));
    assert_eq!(after.all_latest().await.unwrap(), vec![voucher(1, 30)]);
    assert_eq!(
        after.accept(&voucher(1, 30), units(30)).await.unwrap(),
        Acceptance::Stale { latest: U256::from(30) },
        "a replay after the restart is still refused"
    );
    // Another provider on the same server has its own vouchers.
    let other = RedisVoucherStore::connect(&redis.url, Address::repeat_byte(0x9b)).await.unwrap();
    assert_eq!(other.latest(Address::repeat_byte(1)).await.unwrap(), None);
}
