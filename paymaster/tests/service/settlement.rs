//! Issue 12, item 8: settlement keeps a cursor in the store and resumes from it, and releases a
//! reservation only once the blocks up to its quote's expiry are read.

use crate::common::{api_key, call_with_key, fit_gas, hex_bytes};
use crate::running::{CONFIRMATIONS, settings, start_on_redis, stop};
use alloy::primitives::{Address, Bytes, U128, U256};
use serde_json::json;
use std::time::Duration;
use tora_core::ENTRY_POINT_V07;
use tora_core::UserOperation;
use tora_core::contracts::ToraPaymaster;
use tora_core::money::ToraUnits;
use tora_core::paymaster_quote::{PaymasterData, QUOTE_DATA_LEN, QUOTE_WITH_PERMIT_LEN};
use tora_core::sponsorship::{Budget, MicroTora, Reservation, ResetInterval, Spend, SponsorshipStore};
use tora_devnet::SmartWallet;
use tora_devnet::harness::{Harness, event, tora};
use tora_devnet::redis_server::RedisServer;
use tora_paymaster::PaymasterConfig;
use tora_paymaster::config::TokenLimits;
use tora_paymaster::server::start;
use tora_paymaster::settlement::{self, SettlementSettings};
use tora_paymaster::sponsorship::auth::Role;
use tora_paymaster::sponsorship::{MemoryStore, RedisStore};

#[tokio::test]
async fn quotes_that_would_outlive_a_sponsors_withdrawal_delay_are_refused_at_start() {
    let h = Harness::start().await;
    let redis = RedisServer::start();
    let mut long = settings(&h, &redis.url);
    // ToraPaymaster.SPONSOR_WITHDRAWAL_DELAY is an hour: a quote valid that long could still be
    // used after the sponsor's balance left.
    long.quote_validity = Duration::from_secs(3_600);
    match start(long).await {
        Err(e) => {
            assert!(e.to_string().contains("would outlive a sponsor's withdrawal delay of 3600 s"), "{e}")
        }
        Ok(_) => panic!("a paymaster with hour-long quotes started"),
    }
    let mut short = settings(&h, &redis.url);
    short.quote_validity = Duration::from_secs(3_599);
    stop(start(short).await.expect("a quote shorter than the delay is fine"));
}

/// Stop the service, land sponsored operations, start it: the policy's spend equals the chain's
/// GasChargedInToken charges to the micro-TORA. Before, a restart began at the head, the
/// charges mined while it was down were never read, and the spend kept the quotes' maxima
/// until they expired and were released to nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_mined_while_the_service_was_down_are_settled_exactly_after_a_restart() {
    let h = Harness::start().await;
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url).await.unwrap();
    let c = h.contracts().clone();
    crate::common::open_sponsorship(&h, &store, "restart").await;

    let running = start_on_redis(&h, &redis.url).await;
    let url = format!("http://{}", running.address);
    let key = api_key("dapp-1", Role::Dapp);
    let mut signed = Vec::new();
    for salt in 51..54 {
        let wallet = h.new_wallet(salt).await;
        let mut op = h.op(&wallet, true, Bytes::new()).await;
        fit_gas(&h, &mut op, QUOTE_DATA_LEN).await;
        let params =
            json!([op, ENTRY_POINT_V07, format!("{:#x}", h.chain_id), { "sponsorshipPolicyId": "restart" }]);
        let data = call_with_key(&url, Some(&key), "pm_getPaymasterData", params).await.unwrap();
        op.paymaster = Some(c.paymaster);
        op.paymaster_verification_gas_limit = Some(U128::from(PaymasterConfig::DEFAULT_VERIFICATION_GAS));
        op.paymaster_post_op_gas_limit = Some(U128::from(PaymasterConfig::DEFAULT_POST_OP_GAS));
        op.paymaster_data = Some(data["paymasterData"].as_str().unwrap().parse().unwrap());
        signed.push((wallet, op));
    }
    let reserved = store.spend("restart", 0).await.unwrap();
    assert_eq!(reserved.ops, 3);
    stop(running);

    // While it is down: the operations land, and the chain moves past the confirmation depth.
    let mut charged = MicroTora(0);
    for (wallet, op) in signed {
        let receipt = h.sign_and_handle(&wallet, op).await.unwrap();
        let charge: ToraPaymaster::GasChargedInToken = event(&receipt);
        charged = MicroTora(charged.0 + MicroTora::from_tora_ceil(ToraUnits(charge.charge)).unwrap().0);
    }
    h.anvil("anvil_mine", json!([CONFIRMATIONS])).await;
    assert!(charged < reserved.total);

    let running = start_on_redis(&h, &redis.url).await;
    let mut spend = Spend::default();
    for _ in 0..100 {
        spend = store.spend("restart", 0).await.unwrap();
        if spend.total == charged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(spend, Spend { total: charged, ops: 3 });
    stop(running);
}

fn reservation(hash: u8, expires_at: u64) -> Reservation {
    Reservation {
        policy_id: "p".into(),
        period: 0,
        user: alloy::primitives::Address::repeat_byte(1),
        nonce: alloy::primitives::U256::from(hash),
        user_op_hash: alloy::primitives::B256::repeat_byte(hash),
        amount: MicroTora(1_000),
        expires_at,
        cover: None,
    }
}

/// A tick that cannot read the chain releases nothing, and a reservation whose quote expires at
/// the last block read (an operation may still land in that block's second) stays until a
/// later block is read. Before, each tick released by the wall clock whatever its read did.
#[tokio::test]
async fn reservations_are_released_only_past_the_last_block_read() {
    let h = Harness::start().await;
    let store = MemoryStore::default();
    let settings = SettlementSettings {
        paymaster: h.contracts().paymaster,
        interval: Duration::from_millis(100),
        confirmations: 0,
    };
    settlement::start_cursor(&store, &h.deployer, 0).await.unwrap();
    let head = h.now().await;
    let budget = Budget::default();
    store.reserve(&budget, &reservation(1, 1)).await.unwrap();
    store.reserve(&budget, &reservation(2, head + 1_000)).await.unwrap();

    // The node is unreachable: an error, and both reservations stay.
    let dead = alloy::providers::Provider::erased(
        alloy::providers::ProviderBuilder::new().connect_http("http://127.0.0.1:1".parse().unwrap()),
    );
    assert!(settlement::tick(&store, &dead, &settings).await.is_err());
    assert_eq!(store.spend("p", 0).await.unwrap(), Spend { total: MicroTora(2_000), ops: 2 });

    // A new block, read: the long-expired one goes, the other stays until a block after it.
    h.anvil("evm_mine", json!([])).await;
    let done = settlement::tick(&store, &h.deployer, &settings).await.unwrap();
    assert_eq!(done.released, 1);
    assert_eq!(store.spend("p", 0).await.unwrap(), Spend { total: MicroTora(1_000), ops: 1 });
    h.anvil("evm_mine", json!([head + 1_000])).await; // a block at exactly its expiry
    assert_eq!(settlement::tick(&store, &h.deployer, &settings).await.unwrap().released, 0);
    h.anvil("evm_mine", json!([head + 1_001])).await;
    assert_eq!(settlement::tick(&store, &h.deployer, &settings).await.unwrap().released, 1);
    assert_eq!(store.spend("p", 0).await.unwrap(), Spend::default());
}

/// Token mode on Redis, end to end: a wallet quotes one operation twice (other calldata, same
/// nonce), so one maximum is held; the second lands with its permit, and settlement replaces
/// the hold by the charge the chain logged, to the micro-TORA. Before, each quote held its own
/// maximum, and the one that did not land stayed held until it expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_mode_operation_quoted_twice_holds_one_maximum_and_settles_to_its_charge() {
    let h = Harness::start().await;
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url).await.unwrap();
    let c = h.contracts().clone();
    let mut configured = settings(&h, &redis.url);
    configured.token_limits = TokenLimits {
        per_sender: Some(MicroTora(1_000_000_000)),
        global: Some(MicroTora(100_000_000_000)),
        reset: ResetInterval::Daily,
    };
    let running = start(configured).await.unwrap();
    let url = format!("http://{}", running.address);
    let id = TokenLimits::BUDGET_ID;
    // The metrics recorder is global to the test process: compare with what it held before.
    let counters_before = counters(&url, id).await;
    let wallet = h.new_wallet(61).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let mut first = h.op(&wallet, true, Bytes::new()).await;
    fit_gas(&h, &mut first, QUOTE_WITH_PERMIT_LEN).await;
    let second = UserOperation {
        call_data: SmartWallet::execute(Address::ZERO, U256::ZERO, Bytes::new()),
        ..first.clone()
    };
    let permit = h.permit(&wallet, tora(100)).await;
    let context = json!({ "token": c.tora, "permit": {
        "value": tora(100), "deadline": permit.deadline, "signature": Bytes::from(permit.signature.to_vec()) } });
    let mut quoted = Vec::new();
    for op in [&first, &second] {
        let params = json!([op, ENTRY_POINT_V07, format!("{:#x}", h.chain_id), context]);
        quoted.push(call_with_key(&url, None, "pm_getPaymasterData", params).await.unwrap());
    }
    let period = ResetInterval::Daily.period(h.now().await);
    let held = store.spend(id, period).await.unwrap();
    let quote = PaymasterData::decode(&hex_bytes(&quoted[1]["paymasterData"])).unwrap().quote;
    assert_eq!(
        held,
        Spend { total: MicroTora::from_tora_ceil(ToraUnits(quote.max_token_cost)).unwrap(), ops: 1 }
    );

    let mut op = second;
    op.paymaster = Some(c.paymaster);
    op.paymaster_verification_gas_limit =
        Some(U128::from(PaymasterConfig::DEFAULT_VERIFICATION_GAS_WITH_PERMIT));
    op.paymaster_post_op_gas_limit = Some(U128::from(PaymasterConfig::DEFAULT_POST_OP_GAS));
    op.paymaster_data = Some(hex_bytes(&quoted[1]["paymasterData"]));
    let receipt = h.sign_and_handle(&wallet, op).await.unwrap();
    let charge: ToraPaymaster::GasChargedInToken = event(&receipt);
    let charged = MicroTora::from_tora_ceil(ToraUnits(charge.charge)).unwrap();
    assert!(charged < held.total);
    h.anvil("anvil_mine", json!([CONFIRMATIONS])).await;
    let mut spend = held;
    for _ in 0..100 {
        spend = store.spend(id, period).await.unwrap();
        if spend.total == charged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(spend, Spend { total: charged, ops: 1 });
    assert_eq!(store.user_spend(id, period, wallet.address).await.unwrap(), charged);
    // The dashboard's figures: one maximum reserved (not two), then the charge settled.
    let (reserved, settled) = counters(&url, id).await;
    assert_eq!(reserved - counters_before.0, held.total.0);
    assert_eq!(settled - counters_before.1, charged.0);
    stop(running);
}

/// The reserved and settled micro-TORA counters of `budget` on `/metrics` (0 before any).
async fn counters(url: &str, budget: &str) -> (u64, u64) {
    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    let counter = |name: &str| -> u64 {
        let series = format!("{name}{{budget=\"{budget}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.parse().unwrap())
    };
    (counter("paymaster_reserved_micro_tora_total"), counter("paymaster_settled_micro_tora_total"))
}
