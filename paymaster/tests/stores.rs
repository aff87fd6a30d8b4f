//! Both sponsorship stores against the same expectations, the Redis one on a real
//! redis-server over a real connection.

use alloy::primitives::{Address, B256, U256};
use std::sync::Arc;
use tora_core::sponsorship::{
    Budget, BudgetError, MicroTora, Reservation, ResetInterval, Spend, SponsorshipPolicy, SponsorshipStore,
};
use tora_devnet::redis_server::{RedisCluster, RedisServer};
use tora_paymaster::sponsorship::{MemoryStore, RedisStore};

fn policy(budget: Budget) -> SponsorshipPolicy {
    SponsorshipPolicy {
        id: "game-1".into(),
        name: "Game".into(),
        icon: None,
        dapp: "dapp-1".into(),
        sponsor: Address::repeat_byte(0xd0),
        budget,
        reset: ResetInterval::Daily,
        allowed_targets: vec![],
        allowed_selectors: vec![],
        valid_after: 0,
        valid_until: u64::MAX,
    }
}

fn reservation(n: u8, user: u8, amount: u64, expires_at: u64) -> Reservation {
    Reservation {
        policy_id: "game-1".into(),
        period: 7,
        user: Address::repeat_byte(user),
        nonce: U256::from(n),
        user_op_hash: B256::repeat_byte(n),
        amount: MicroTora(amount),
        expires_at,
        cover: None,
    }
}

/// Another quote of operation `n` (same user and nonce), with its own hash.
fn requote(n: u8, user: u8, hash: u8, amount: u64, expires_at: u64) -> Reservation {
    Reservation { user_op_hash: B256::repeat_byte(hash), ..reservation(n, user, amount, expires_at) }
}

async fn behaves_as_a_budget_store(store: &impl SponsorshipStore) {
    let budget = Budget {
        global: Some(MicroTora(100)),
        per_user: Some(MicroTora(40)),
        per_op: Some(MicroTora(30)),
        max_ops: Some(5),
    };
    let p = policy(budget.clone());
    store.put_policy(&p).await.unwrap();
    assert_eq!(store.policy("game-1").await.unwrap(), Some(p));
    assert_eq!(store.policy("nope").await.unwrap(), None);

    store.reserve(&budget, &reservation(1, 1, 30, 1_000)).await.unwrap();
    let err = store.reserve(&budget, &reservation(2, 1, 11, 1_000)).await.unwrap_err();
    assert_eq!(err, BudgetError::PerUser { spent: MicroTora(30), limit: MicroTora(40) });
    let err = store.reserve(&budget, &reservation(2, 2, 31, 1_000)).await.unwrap_err();
    assert_eq!(err, BudgetError::PerOp { limit: MicroTora(30) });
    store.reserve(&budget, &reservation(2, 2, 30, 1_000)).await.unwrap();
    store.reserve(&budget, &reservation(3, 3, 30, 10)).await.unwrap();
    let err = store.reserve(&budget, &reservation(4, 4, 11, 1_000)).await.unwrap_err();
    assert_eq!(err, BudgetError::Global { spent: MicroTora(90), limit: MicroTora(100) });
    assert_eq!(store.spend("game-1", 7).await.unwrap(), Spend { total: MicroTora(90), ops: 3 });

    // The operation cost less than reserved: the difference returns to every budget.
    assert_eq!(store.settle(B256::repeat_byte(1), MicroTora(12)).await.unwrap().as_deref(), Some("game-1"));
    assert_eq!(store.settle(B256::repeat_byte(1), MicroTora(12)).await.unwrap(), None, "settles once");
    assert_eq!(store.settle(B256::repeat_byte(9), MicroTora(1)).await.unwrap(), None);
    assert_eq!(store.user_spend("game-1", 7, Address::repeat_byte(1)).await.unwrap(), MicroTora(12));
    // Reservation 3's quote expired unused: released, op count included.
    assert_eq!(store.release_expired(11).await.unwrap(), 1);
    assert_eq!(store.release_expired(11).await.unwrap(), 0);
    assert_eq!(store.spend("game-1", 7).await.unwrap(), Spend { total: MicroTora(42), ops: 2 });
    assert_eq!(store.user_spend("game-1", 7, Address::repeat_byte(3)).await.unwrap(), MicroTora(0));

    // The operation count: 2 used, 3 more fit.
    for n in 10..13 {
        store.reserve(&budget, &reservation(n, n, 1, 1_000)).await.unwrap();
    }
    let err = store.reserve(&budget, &reservation(13, 13, 1, 1_000)).await.unwrap_err();
    assert_eq!(err, BudgetError::OpCount { limit: 5 });
    // A new period starts from zero.
    let next = Reservation { period: 8, ..reservation(14, 1, 30, 1_000) };
    store.reserve(&budget, &next).await.unwrap();
    assert_eq!(store.spend("game-1", 8).await.unwrap(), Spend { total: MicroTora(30), ops: 1 });
}

/// Quotes of one operation (one user, one nonce) share one hold: asking again, with a later
/// expiry or a different maximum, never reserves twice, and whichever quote lands settles it.
/// Before, each quote was a hold of its own, so re-quoting one operation filled any budget.
async fn quotes_of_one_operation_share_one_hold(store: &impl SponsorshipStore) {
    let period = |r: Reservation| Reservation { period: 9, ..r };
    let budget = Budget { global: Some(MicroTora(100)), per_user: Some(MicroTora(40)), ..Budget::default() };
    let added = store.reserve(&budget, &period(requote(1, 1, 0xa1, 30, 1_000))).await.unwrap();
    assert_eq!(added, MicroTora(30));
    let added = store.reserve(&budget, &period(requote(1, 1, 0xa2, 25, 2_000))).await.unwrap();
    assert_eq!(added, MicroTora(0));
    let added = store.reserve(&budget, &period(requote(1, 1, 0xa1, 30, 1_000))).await.unwrap();
    assert_eq!(added, MicroTora(0), "the same quote again");
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(30), ops: 1 });
    // A larger maximum raises the hold by the difference only (35 of the user's 40).
    let added = store.reserve(&budget, &period(requote(1, 1, 0xa3, 35, 1_000))).await.unwrap();
    assert_eq!(added, MicroTora(5));
    assert_eq!(store.user_spend("game-1", 9, Address::repeat_byte(1)).await.unwrap(), MicroTora(35));
    let err = store.reserve(&budget, &period(reservation(2, 1, 6, 1_000))).await.unwrap_err();
    assert_eq!(err, BudgetError::PerUser { spent: MicroTora(35), limit: MicroTora(40) });
    // The second quote landed: its charge replaces the hold; the others settle nothing more.
    assert_eq!(
        store.settle(B256::repeat_byte(0xa2), MicroTora(12)).await.unwrap(),
        Some("game-1".to_owned())
    );
    assert_eq!(store.settle(B256::repeat_byte(0xa1), MicroTora(12)).await.unwrap(), None);
    assert_eq!(store.settle(B256::repeat_byte(0xa3), MicroTora(12)).await.unwrap(), None);
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(12), ops: 1 });

    // The hold lasts until the latest of its quotes expires.
    store.reserve(&budget, &period(requote(3, 3, 0xb1, 10, 1_000))).await.unwrap();
    store.reserve(&budget, &period(requote(3, 3, 0xb2, 10, 2_000))).await.unwrap();
    assert_eq!(store.release_expired(1_500).await.unwrap(), 0);
    assert_eq!(store.release_expired(2_001).await.unwrap(), 1);
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(12), ops: 1 });
    assert_eq!(store.settle(B256::repeat_byte(0xb1), MicroTora(1)).await.unwrap(), None, "released");

    // A cover (the sender's balance) bounds all of its open holds, whatever their nonces. A
    // quote that does not fit displaces the sender's oldest other holds (anyone can ask for a
    // quote naming any sender, so refusing would let a stranger block the wallet); a displaced
    // quote that lands is still counted.
    let covered = |r: Reservation| Reservation { cover: Some(MicroTora(50)), ..period(r) };
    let user9 = || store.user_spend("game-1", 9, Address::repeat_byte(9));
    let open = Budget::default();
    store.reserve(&open, &covered(requote(10, 9, 0xc1, 30, 1_000))).await.unwrap();
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(42), ops: 2 });
    let added = store.reserve(&open, &covered(requote(11, 9, 0xc2, 30, 1_000))).await.unwrap();
    assert_eq!(added, MicroTora(30));
    assert_eq!(
        store.spend("game-1", 9).await.unwrap(),
        Spend { total: MicroTora(42), ops: 2 },
        "10 displaced"
    );
    assert_eq!(user9().await.unwrap(), MicroTora(30));
    // The displaced quote of operation 10 lands anyway: its charge counts, once.
    assert_eq!(
        store.settle(B256::repeat_byte(0xc1), MicroTora(20)).await.unwrap(),
        Some("game-1".to_owned())
    );
    assert_eq!(store.settle(B256::repeat_byte(0xc1), MicroTora(20)).await.unwrap(), None);
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(62), ops: 3 });
    assert_eq!(user9().await.unwrap(), MicroTora(50));
    // A quote the balance cannot cover alone is refused and displaces nothing.
    let err = store.reserve(&open, &covered(requote(12, 9, 0xcf, 60, 1_000))).await.unwrap_err();
    assert_eq!(err, BudgetError::Uncovered { held: MicroTora(60), balance: MicroTora(50) });
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(62), ops: 3 });
    // Holds that fit are kept; the one expiring first is displaced first.
    store.reserve(&open, &covered(requote(13, 9, 0xc4, 20, 900))).await.unwrap();
    store.reserve(&open, &covered(requote(14, 9, 0xc5, 10, 1_200))).await.unwrap();
    assert_eq!(
        store.spend("game-1", 9).await.unwrap(),
        Spend { total: MicroTora(72), ops: 4 },
        "13 displaced"
    );
    // Operation 13 quoted again: held again, displacing 11 (expiring at 1,000) and not 14.
    store.reserve(&open, &covered(requote(13, 9, 0xc6, 20, 1_300))).await.unwrap();
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(62), ops: 4 });
    assert_eq!(user9().await.unwrap(), MicroTora(50));
    // Operation 13 lands under its displaced quote: that settles its new hold.
    assert_eq!(
        store.settle(B256::repeat_byte(0xc4), MicroTora(15)).await.unwrap(),
        Some("game-1".to_owned())
    );
    assert_eq!(store.settle(B256::repeat_byte(0xc6), MicroTora(15)).await.unwrap(), None);
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(57), ops: 4 });
    // Past their expiry, 14's hold is released and 11's displaced quote forgotten.
    assert_eq!(store.release_expired(1_250).await.unwrap(), 1);
    assert_eq!(store.settle(B256::repeat_byte(0xc2), MicroTora(5)).await.unwrap(), None);
    assert_eq!(store.spend("game-1", 9).await.unwrap(), Spend { total: MicroTora(47), ops: 3 });
    assert_eq!(user9().await.unwrap(), MicroTora(35));
}

/// 64 concurrent reservations of 7 against a budget of 100: exactly 14 fit, never 15.
async fn never_overspends_in_parallel<S: SponsorshipStore + 'static>(store: Arc<S>) {
    let budget = Budget { global: Some(MicroTora(100)), ..Budget::default() };
    let tasks: Vec<_> = (0..64u8)
        .map(|n| {
            let (store, budget) = (store.clone(), budget.clone());
            tokio::spawn(async move { store.reserve(&budget, &reservation(n, n, 7, 1_000)).await })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => granted += 1,
            Err(BudgetError::Global { .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(granted, 14);
    assert_eq!(store.spend("game-1", 7).await.unwrap(), Spend { total: MicroTora(98), ops: 14 });
}

#[tokio::test]
async fn memory_store_keeps_budgets() {
    behaves_as_a_budget_store(&MemoryStore::default()).await;
    quotes_of_one_operation_share_one_hold(&MemoryStore::default()).await;
    never_overspends_in_parallel(Arc::new(MemoryStore::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_keeps_budgets_over_a_real_connection() {
    let server = RedisServer::start();
    behaves_as_a_budget_store(&RedisStore::connect(&server.url).await.unwrap()).await;
    let fresh = RedisServer::start();
    quotes_of_one_operation_share_one_hold(&RedisStore::connect(&fresh.url).await.unwrap()).await;
    let fresh = RedisServer::start();
    never_overspends_in_parallel(Arc::new(RedisStore::connect(&fresh.url).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_replicas_sharing_redis_never_overspend() {
    let server = RedisServer::start();
    let budget = Budget { global: Some(MicroTora(1_000)), ..Budget::default() };
    // Eight replicas, each with its own connection, 40 requests each.
    let mut tasks = Vec::new();
    for replica in 0..8u8 {
        let store = RedisStore::connect(&server.url).await.unwrap();
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let mut granted = 0u64;
            for i in 0..40u8 {
                let mut r = reservation(0, replica, 9, 1_000);
                let mut hash = [0u8; 32];
                hash[0] = replica;
                hash[1] = i;
                r.user_op_hash = B256::from(hash);
                r.nonce = U256::from(i);
                if store.reserve(&budget, &r).await.is_ok() {
                    granted += 1;
                }
            }
            granted
        }));
    }
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap();
    }
    assert_eq!(granted, 111, "floor(1000 / 9)");
    let store = RedisStore::connect(&server.url).await.unwrap();
    assert_eq!(store.spend("game-1", 7).await.unwrap(), Spend { total: MicroTora(999), ops: 111 });
}

/// Redis killed with SIGKILL and restarted on its append-only file (as the chart runs it): every
/// reservation, settlement and spend the store acknowledged is still there, exactly.
#[tokio::test]
async fn a_redis_crash_loses_no_reservation_or_spend() {
    let mut server = RedisServer::start_persistent();
    let budget = Budget { global: Some(MicroTora(100)), ..Budget::default() };
    let store = RedisStore::connect(&server.url).await.unwrap();
    store.put_policy(&policy(budget.clone())).await.unwrap();
    store.reserve(&budget, &reservation(1, 1, 30, 1_000)).await.unwrap();
    store.reserve(&budget, &reservation(2, 2, 20, 1_000)).await.unwrap();
    assert_eq!(store.settle(B256::repeat_byte(1), MicroTora(12)).await.unwrap().as_deref(), Some("game-1"));
    drop(store);
    server.crash_and_restart();

    let store = RedisStore::connect(&server.url).await.unwrap();
    assert_eq!(store.policy("game-1").await.unwrap(), Some(policy(budget.clone())));
    assert_eq!(store.spend("game-1", 7).await.unwrap(), Spend { total: MicroTora(32), ops: 2 });
    assert_eq!(store.user_spend("game-1", 7, Address::repeat_byte(1)).await.unwrap(), MicroTora(12));
    // Reservation 2 is still held: it settles once, after the crash.
    assert_eq!(store.settle(B256::repeat_byte(2), MicroTora(20)).await.unwrap().as_deref(), Some("game-1"));
    assert_eq!(
        store.settle(B256::repeat_byte(1), MicroTora(12)).await.unwrap(),
        None,
        "settled before the crash"
    );
    let err = store.reserve(&budget, &reservation(3, 3, 69, 1_000)).await.unwrap_err();
    assert_eq!(err, BudgetError::Global { spent: MicroTora(32), limit: MicroTora(100) });
}

/// The same budget rules on a three-master Redis Cluster: a policy's keys share a hash tag, so
/// its scripts run in one slot; the quote index and the policy list live in others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_keeps_budgets_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let url = cluster.urls.join(",");
    behaves_as_a_budget_store(&RedisStore::connect(&url).await.unwrap()).await;
    // Holds of several quotes: their index entries, each in its own slot, go when they settle.
    let fresh = RedisCluster::start();
    quotes_of_one_operation_share_one_hold(&RedisStore::connect(&fresh.urls.join(",")).await.unwrap()).await;
    let store = RedisStore::connect(&url).await.unwrap();
    let requotes = Reservation { policy_id: "game-2".into(), ..requote(1, 1, 0xb1, 30, 1_000) };
    let budget = Budget { global: Some(MicroTora(100)), ..Budget::default() };
    assert_eq!(store.reserve(&budget, &requotes).await.unwrap(), MicroTora(30));
    assert_eq!(store.settle(B256::repeat_byte(0xb1), MicroTora(7)).await.unwrap().as_deref(), Some("game-2"));
    assert_eq!(store.spend("game-2", 7).await.unwrap(), Spend { total: MicroTora(7), ops: 1 });
}
