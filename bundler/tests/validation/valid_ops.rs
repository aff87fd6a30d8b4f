//! Operations that follow every rule pass, and the outcome carries what the mempool needs.

use crate::common::ValidationHarness;
use alloy::primitives::{Bytes, U256};
use tora_devnet::harness::tora;
use tora_devnet::keys;

#[tokio::test]
async fn first_op_with_init_code_passes() {
    let v = ValidationHarness::start().await;
    let wallet = v.h.funded_wallet(1).await;
    let op = v.h.first_op(&wallet, Bytes::new()).await;

    let outcome = v.validator.validate(&op).await.expect("valid first op");
    eprintln!(
        "first op: {:?}, {} node calls in {} round trips",
        outcome.elapsed, outcome.rpc_calls, outcome.rpc_round_trips
    );

    assert_eq!(outcome.user_op_hash, op.hash(v.validator.entry_point(), v.h.chain_id));
    assert_eq!(outcome.prefund.0, op.max_cost_wei());
    assert_eq!(outcome.time_range.valid_after, 0);
    assert_eq!(outcome.time_range.valid_until, None);
    let factory = outcome.factory.expect("factory info");
    assert_eq!(factory.address, wallet.factory);
    // The devnet stakes ToraAccountFactory (1 ETH, one day), so new wallets may pay in TORA.
    assert!(factory.staked, "the devnet stakes ToraAccountFactory");
    assert!(outcome.paymaster.is_none());
    // The sender has no code yet at the pinned block; the factory has.
    assert!(outcome.code_hashes.contains_key(&wallet.factory));
    assert!(!outcome.code_hashes.contains_key(&wallet.address));
    // The factory wrote the new account's storage (owner, initializer, implementation).
    assert!(outcome.storage.get(&wallet.address).is_some_and(|s| !s.is_empty()));
    assert!(outcome.pre_op_gas > U256::ZERO);

    // The verdict holds on chain: the EntryPoint accepts the same operation.
    v.h.handle_ops(&[op]).await.expect("the EntryPoint accepts it");
}

#[tokio::test]
async fn simple_account_first_op_passes() {
    let v = ValidationHarness::start().await;
    let factory = v.h.contracts().simple_account_factory;
    let wallet = v.h.funded_wallet_of(factory, 1).await;
    let op = v.h.first_op(&wallet, Bytes::new()).await;
    let outcome = v.validator.validate(&op).await.expect("valid first op");
    assert_eq!(outcome.factory.unwrap().address, factory);
    assert!(!outcome.factory.unwrap().staked, "the npm SimpleAccountFactory is not staked");
    v.h.handle_ops(&[op]).await.expect("the EntryPoint accepts it");
}

#[tokio::test]
async fn validation_at_the_same_block_reuses_cached_state() {
    let v = ValidationHarness::start().await;
    let wallet = v.h.funded_wallet(2).await;
    let op = v.h.first_op(&wallet, Bytes::new()).await;

    let first = v.validator.validate(&op).await.unwrap();
    let second = v.validator.validate(&op).await.unwrap();
    eprintln!(
        "cold: {:?} / {} node calls; warm: {:?} / {} node calls",
        first.elapsed, first.rpc_calls, second.elapsed, second.rpc_calls
    );
    assert_eq!(first.block_hash, second.block_hash);
    assert_eq!(first.pre_op_gas, second.pre_op_gas);
    assert!(first.rpc_calls > 1);
    // Only the block lookup: every account, code and slot came from the block's cache.
    assert_eq!(second.rpc_calls, 1);
    assert_eq!(second.rpc_round_trips, 1);
    assert!(first.rpc_round_trips < first.rpc_calls, "accounts load concurrently");
}

#[tokio::test]
async fn token_quote_from_staked_paymaster_passes() {
    let v = ValidationHarness::start().await;
    let wallet = v.h.wallet_paying_in_tora(7).await;
    let (op, quote) = v.h.token_quote_op(&wallet, tora(100), keys::PAYMASTER_SIGNER).await;

    let outcome = v.validator.validate(&op).await.expect("valid paymaster op");
    eprintln!(
        "paymaster op: {:?}, {} node calls in {} round trips",
        outcome.elapsed, outcome.rpc_calls, outcome.rpc_round_trips
    );

    let paymaster = outcome.paymaster.expect("paymaster info");
    assert_eq!(paymaster.address, v.h.contracts().paymaster);
    assert!(paymaster.staked, "the devnet stakes the paymaster");
    assert!(outcome.factory.is_none());
    assert_eq!(outcome.time_range.valid_until, Some(quote.valid_until));
    assert!(!outcome.paymaster_context.is_empty());
    // TORA balances of the sender and the paymaster are associated storage in TORA.
    assert!(outcome.associated_storage.contains(&v.h.contracts().tora));

    v.h.handle_ops(&[op]).await.expect("the EntryPoint accepts it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_validations_share_one_validator_and_agree() {
    let v = ValidationHarness::start().await;
    let first = v.h.funded_wallet(4).await;
    let second = v.h.funded_wallet(5).await;
    let op_a = v.h.first_op(&first, Bytes::new()).await;
    let op_b = v.h.first_op(&second, Bytes::new()).await;

    // Both EVMs run at once on blocking threads, filling the same block cache.
    let (a, b) = tokio::join!(v.validator.validate(&op_a), v.validator.validate(&op_b));
    let (a, b) = (a.expect("first valid"), b.expect("second valid"));
    assert_eq!(a.block_hash, b.block_hash);
    // Same factory, same code path: the same gas, whichever filled the cache first.
    assert_eq!(a.pre_op_gas, b.pre_op_gas);
    let again = v.validator.validate(&op_a).await.unwrap();
    assert_eq!(again.pre_op_gas, a.pre_op_gas);
    assert_eq!(again.rpc_calls, 1);
}

/// A validator that keeps its head for the whole test: what it caches and predicts is then
/// the same on every run.
async fn harness_with_a_lasting_head() -> ValidationHarness {
    let settings = tora_bundler::ValidationSettings {
        head_max_age: std::time::Duration::from_secs(3_600),
        ..Default::default()
    };
    ValidationHarness::start_with(settings).await
}

#[tokio::test]
async fn a_second_sender_of_the_same_shape_is_validated_in_one_round_trip() {
    let v = harness_with_a_lasting_head().await;
    let (first, second) = (v.h.funded_wallet(21).await, v.h.funded_wallet(22).await);
    let op_a = v.h.first_op(&first, Bytes::new()).await;
    let op_b = v.h.first_op(&second, Bytes::new()).await;

    let a = v.validator.validate(&op_a).await.expect("first valid");
    let b = v.validator.validate(&op_b).await.expect("second valid");
    eprintln!(
        "learning: {} calls / {} round trips; predicted: {} calls / {} round trips",
        a.rpc_calls, a.rpc_round_trips, b.rpc_calls, b.rpc_round_trips
    );
    assert_eq!(a.block_hash, b.block_hash, "the head is kept");
    assert!(a.rpc_round_trips > 2, "the first validation discovers its reads one by one");
    // The head came from the cache, and everything the second sender's validation read was
    // predicted from the first one's and fetched in a single batch.
    assert_eq!(b.rpc_round_trips, 1);
    // One eth_getProof per address read anew: the new sender's account, and its deposit slot
    // in the EntryPoint (whose account is cached). Before, 3 calls per account and 1 per slot.
    assert_eq!(b.rpc_calls, 2);
    assert_eq!(a.pre_op_gas, b.pre_op_gas);
    v.h.handle_ops(&[op_a, op_b]).await.expect("the EntryPoint accepts it");
}

#[tokio::test]
async fn a_rejection_on_a_cached_head_is_retried_on_the_latest_block() {
    let v = harness_with_a_lasting_head().await;
    let early = v.h.funded_wallet(23).await;
    let pinned = v.validator.validate(&v.h.first_op(&early, Bytes::new()).await).await.unwrap();

    // Funded after the head was cached: on that head the new wallet cannot pay its prefund.
    let late = v.h.funded_wallet(24).await;
    let op = v.h.first_op(&late, Bytes::new()).await;
    let outcome = v.validator.validate(&op).await.expect("valid at the latest block");
    assert!(outcome.block_number > pinned.block_number, "validated again on a newer block");
    v.h.handle_ops(&[op]).await.expect("the EntryPoint accepts it");
}

/// A burst of a shape never seen: the first operation learns what it reads while the others
/// wait for it, then each of those fetches its reads in one round trip. Before, every
/// operation of the burst discovered the same reads one round trip at a time, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_new_shape_waits_for_its_first_operation_to_learn() {
    let v = harness_with_a_lasting_head().await;
    let mut ops = Vec::new();
    for salt in 31..35 {
        let wallet = v.h.funded_wallet(salt).await;
        ops.push(v.h.first_op(&wallet, Bytes::new()).await);
    }
    let (a, b, c, d) = tokio::join!(
        v.validator.validate(&ops[0]),
        v.validator.validate(&ops[1]),
        v.validator.validate(&ops[2]),
        v.validator.validate(&ops[3]),
    );
    let mut trips: Vec<u64> = [a, b, c, d].into_iter().map(|o| o.expect("valid").rpc_round_trips).collect();
    eprintln!("round trips of a burst of four: {trips:?}");
    trips.sort_unstable();
    assert!(trips[3] > 2, "one of them discovers the shape's reads: {trips:?}");
    assert_eq!(&trips[..3], &[1, 1, 1], "the others were taught");
}
