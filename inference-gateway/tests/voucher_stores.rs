//! Both voucher stores against the same expectations, the Redis one on a real redis-server:
//! exact charges, headroom carried over, concurrent calls, restarts.

mod common;

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use tora_devnet::redis_server::{RedisCluster, RedisServer};
use tora_inference_gateway::payment::{
    Change, HOLD_LIFETIME_SECS, Ledger, MemoryVoucherStore, Outcome, RedisVoucherStore, Refusal,
    SignedVoucher, VoucherStore,
};

const PROVIDER: Address = Address::repeat_byte(0x9a);
const NOW: u64 = 1_800_000_000;

fn payer(n: u8) -> Address {
    Address::repeat_byte(n)
}

fn voucher(payer: u8, amount: U256) -> SignedVoucher {
    SignedVoucher {
        payer: Address::repeat_byte(payer),
        cumulative_amount: amount,
        signature: Bytes::from(vec![payer, amount.byte(0)]),
    }
}

fn n(v: u64) -> U256 {
    U256::from(v)
}

async fn hold(store: &impl VoucherStore, payer: u8, amount: U256, price: U256) -> Result<u64, Refusal> {
    let change = Change::Hold { voucher: voucher(payer, amount), price, redeemed: U256::ZERO, now: NOW };
    match store.change(Address::repeat_byte(payer), &change).await.unwrap()? {
        Outcome::Held { hold } => Ok(hold),
        other => panic!("a hold answered {other:?}"),
    }
}

async fn settle(store: &impl VoucherStore, payer: u8, hold: u64, exact: U256) -> Outcome {
    let change = Change::Settle { hold, exact, now: NOW };
    store.change(Address::repeat_byte(payer), &change).await.unwrap().unwrap()
}

fn settled(charged: u64, consumed: u64) -> Outcome {
    Outcome::Settled { charged: Some(n(charged)), consumed: n(consumed) }
}

fn underpaid(required: U256) -> Result<u64, Refusal> {
    Err(Refusal::Underpaid { required })
}

async fn charges_exact_prices_and_carries_the_headroom_over(store: &impl VoucherStore) {
    assert_eq!(store.ledger(payer(1)).await.unwrap(), Ledger::default());
    // A call that may cost 100 under a voucher of 100 and costs 37.
    assert_eq!(hold(store, 1, n(100), n(100)).await, Ok(0));
    assert_eq!(store.ledger(payer(1)).await.unwrap().held(), n(100));
    assert_eq!(settle(store, 1, 0, n(37)).await, settled(37, 37));
    // The same voucher again lets nothing in; the next voucher needs only to be newer while the
    // 63 left cover the next call's worst case.
    assert_eq!(hold(store, 1, n(100), n(50)).await, underpaid(n(101)));
    assert_eq!(hold(store, 1, n(101), n(50)).await, Ok(1));
    assert_eq!(settle(store, 1, 1, n(50)).await, settled(50, 87));
    // Beyond the headroom: consumed + worst case.
    assert_eq!(hold(store, 1, n(106), n(20)).await, underpaid(n(107)));
    assert_eq!(hold(store, 1, n(107), n(20)).await, Ok(2));
    // A call that failed before serving anything is released for nothing.
    assert_eq!(settle(store, 1, 2, U256::ZERO).await, settled(0, 87));
    // Payers are independent.
    assert_eq!(hold(store, 2, n(7), n(7)).await, Ok(0));
    assert_eq!(settle(store, 2, 0, n(7)).await, settled(7, 7));

    let ledger = store.ledger(payer(1)).await.unwrap();
    assert_eq!(
        (ledger.latest.clone(), ledger.consumed, ledger.held()),
        (Some(voucher(1, n(107))), n(87), U256::ZERO)
    );
    let mut all: Vec<(U256, Option<Address>)> = store
        .ledgers()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.claimable(NOW), l.latest.map(|v| v.payer)))
        .collect();
    all.sort();
    assert_eq!(all, vec![(n(7), Some(payer(2))), (n(87), Some(payer(1)))]);

    // Amounts past 2^64 and near 2^256 are exact.
    let huge = U256::MAX - n(5);
    assert_eq!(hold(store, 3, huge, huge - n(1)).await, Ok(0));
    assert_eq!(
        settle(store, 3, 0, huge - n(2)).await,
        Outcome::Settled { charged: Some(huge - n(2)), consumed: huge - n(2) }
    );
    // Consumed is 2^256 - 8: a worst case of 7 needs the very top.
    assert_eq!(hold(store, 3, U256::MAX - n(1), n(7)).await, underpaid(U256::MAX));
    assert_eq!(hold(store, 3, U256::MAX, n(7)).await, Ok(1));
    assert_eq!(
        hold(store, 3, U256::MAX, n(0)).await,
        Err(Refusal::Overflow),
        "nothing is newer than 2^256-1"
    );
}

/// 24 calls of one payer at once, each with its own newer voucher, where the headroom fits one
/// worst case: exactly one is let in. Then 24 calls carrying the same voucher: one again.
async fn concurrent_calls_never_spend_the_same_headroom<S: VoucherStore>(store: Arc<S>) {
    assert_eq!(hold(&*store, 9, n(100), n(100)).await, Ok(0));
    assert_eq!(settle(&*store, 9, 0, n(40)).await, settled(40, 40));
    // Two holds of 45 need 40 + 90 = 130; every voucher is below.
    let tasks: Vec<_> = (0..24u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { hold(&*store, 9, n(101 + i), n(45)).await })
        })
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        if let Ok(hold) = task.await.unwrap() {
            held.push(hold);
        }
    }
    assert_eq!(held, vec![1]);
    let ledger = store.ledger(payer(9)).await.unwrap();
    assert_eq!((ledger.consumed, ledger.held()), (n(40), n(45)));

    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { hold(&*store, 9, n(500), n(10)).await })
        })
        .collect();
    let mut let_in = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            let_in += 1;
        }
    }
    assert_eq!(let_in, 1);
    let ledger = store.ledger(payer(9)).await.unwrap();
    assert_eq!((ledger.consumed, ledger.held(), ledger.holds.len()), (n(40), n(55), 2));
}

#[tokio::test]
async fn memory_store_charges_exact_prices_and_carries_the_headroom_over() {
    charges_exact_prices_and_carries_the_headroom_over(&MemoryVoucherStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_never_lets_concurrent_calls_spend_the_same_headroom() {
    concurrent_calls_never_spend_the_same_headroom(Arc::new(MemoryVoucherStore::default())).await;
}

#[tokio::test]
async fn redis_store_charges_exact_prices_and_carries_the_headroom_over() {
    let redis = RedisServer::start();
    let store = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    charges_exact_prices_and_carries_the_headroom_over(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_never_lets_concurrent_calls_spend_the_same_headroom() {
    let redis = RedisServer::start();
    let store = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    concurrent_calls_never_spend_the_same_headroom(Arc::new(store)).await;
}

#[tokio::test]
async fn redis_store_keeps_ledgers_and_holds_across_a_restart_of_the_gateway() {
    let redis = RedisServer::start();
    let before = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    assert_eq!(hold(&before, 1, n(30), n(30)).await, Ok(0));
    assert_eq!(settle(&before, 1, 0, n(12)).await, settled(12, 12));
    // A call in flight when the gateway stops.
    assert_eq!(hold(&before, 1, n(31), n(15)).await, Ok(1));
    drop(before);

    let after = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    let ledger = after.ledger(payer(1)).await.unwrap();
    assert_eq!(
        (ledger.latest.clone(), ledger.consumed, ledger.held()),
        (Some(voucher(1, n(31))), n(12), n(15))
    );
    assert_eq!(ledger.claimable(NOW), n(12));
    // The call that never settled is charged in full once its hold expires.
    assert_eq!(ledger.claimable(NOW + HOLD_LIFETIME_SECS), n(27));
    assert_eq!(hold(&after, 1, n(31), n(1)).await, underpaid(n(32)), "a replay after the restart is refused");
    assert_eq!(hold(&after, 1, n(32), n(5)).await, Ok(2));
    // Settled late: hold 1 still pays only its price; hold 2 (taken at NOW too) has expired
    // meanwhile and is charged its 5 in full.
    let expired = Change::Settle { hold: 1, exact: n(3), now: NOW + HOLD_LIFETIME_SECS };
    assert_eq!(
        after.change(payer(1), &expired).await.unwrap(),
        Ok(settled(3, 20)),
        "a late settlement pays only its price"
    );
    let ledger = after.ledger(payer(1)).await.unwrap();
    assert_eq!((ledger.consumed, ledger.held()), (n(20), U256::ZERO));
    // Another provider on the same server has its own ledgers.
    let other = RedisVoucherStore::connect(&redis.url, Address::repeat_byte(0x9b)).await.unwrap();
    assert_eq!(other.ledger(payer(1)).await.unwrap(), Ledger::default());
}

#[tokio::test]
async fn redis_store_takes_over_the_vouchers_of_a_gateway_before_exact_metering_as_consumed() {
    let redis = RedisServer::start();
    let key = format!("tora:gw:{{{PROVIDER:#x}}}:voucher:{:#x}", payer(4));
    let old = serde_json::to_string(&voucher(4, n(70))).unwrap();
    let mut connection =
        redis::Client::open(redis.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let () = redis::AsyncCommands::hset_multiple(
        &mut connection,
        &key,
        &[("amount", "70"), ("voucher", old.as_str())],
    )
    .await
    .unwrap();

    let store = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    let ledger = store.ledger(payer(4)).await.unwrap();
    assert_eq!(
        (ledger.latest.clone(), ledger.consumed, ledger.held()),
        (Some(voucher(4, n(70))), n(70), U256::ZERO)
    );
    assert_eq!(hold(&store, 4, n(79), n(10)).await, underpaid(n(80)));
    assert_eq!(hold(&store, 4, n(80), n(10)).await, Ok(0));
    assert_eq!(settle(&store, 4, 0, n(4)).await, settled(4, 74));
}

/// Redis killed with SIGKILL and restarted on its append-only file (as the chart runs it): the
/// latest voucher, what was consumed and the hold of a call in flight are all still there.
#[tokio::test]
async fn redis_store_loses_no_voucher_or_hold_in_a_redis_crash() {
    let mut redis = RedisServer::start_persistent();
    let before = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    assert_eq!(hold(&before, 1, n(30), n(30)).await, Ok(0));
    assert_eq!(settle(&before, 1, 0, n(12)).await, settled(12, 12));
    assert_eq!(hold(&before, 1, n(31), n(15)).await, Ok(1));
    drop(before);
    redis.crash_and_restart();

    let after = RedisVoucherStore::connect(&redis.url, PROVIDER).await.unwrap();
    let ledger = after.ledger(payer(1)).await.unwrap();
    assert_eq!(
        (ledger.latest.clone(), ledger.consumed, ledger.held()),
        (Some(voucher(1, n(31))), n(12), n(15))
    );
    assert_eq!(hold(&after, 1, n(31), n(1)).await, underpaid(n(32)), "a replay after the crash is refused");
    assert_eq!(settle(&after, 1, 1, n(3)).await, settled(3, 15));
}

/// The same ledgers on a three-master Redis Cluster: each payer's ledger is one key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_charges_exact_prices_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let store = RedisVoucherStore::connect(&cluster.urls.join(","), PROVIDER).await.unwrap();
    charges_exact_prices_and_carries_the_headroom_over(&store).await;
    concurrent_calls_never_spend_the_same_headroom(Arc::new(store)).await;
}
