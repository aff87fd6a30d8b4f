//! A bundle that the chain does not take at once: resubmitted with bumped fees block by block,
//! or cancelled at its nonce with its operations back in the pool. Automine is off, so the
//! tests decide when blocks come, and anvil_dropTransaction keeps a sent bundle out of them.

use crate::chain::{PendingTx, base_and_priority_fee, mine, set_automine, wait_for_pool};
use crate::common::Stack;
use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, Bytes, U128, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use serde_json::{Value, json};
use std::sync::Arc;
use tora_bundler::builder::bump;
use tora_core::ENTRY_POINT_V07;

const GWEI: u64 = 1_000_000_000;

/// Sends one first operation, asks for a bundle in the background, and returns the bundle
/// transaction as it sits in anvil's pool, checked against the first price (base fee times
/// two plus the node's priority fee), with the request's task.
async fn stuck_bundle(
    s: &Arc<Stack>,
    salt: u64,
) -> (Value, PendingTx, tokio::task::JoinHandle<Result<Value, tora_jsonrpc::CallError>>) {
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, salt).await;
    // Fees above what the bundles pay even after bumps: the node's suggested tip follows the
    // tips it last mined, and an operation must pay at least the bundle's.
    let mut op = s.h.op(&wallet, true, Bytes::new()).await;
    op.max_fee_per_gas = U128::from(5 * GWEI);
    op.max_priority_fee_per_gas = U128::from(2 * GWEI);
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    let hash = s.send(&op).await;
    set_automine(s, false).await;
    let (base_fee, priority) = base_and_priority_fee(s).await;
    let request = tokio::spawn({
        let s = s.clone();
        async move { s.rpc.raw("debug_bundler_sendBundleNow", json!([])).await }
    });
    let bundler = s.bundler.bundler_address;
    let pool = wait_for_pool(s, |txs| txs.iter().any(|t| t.from == bundler)).await;
    let first = pool.into_iter().find(|t| t.from == bundler).unwrap();
    assert_eq!(first.to, Some(s.h.contracts().entry_point));
    assert_eq!(first.max_fee_per_gas, 2 * base_fee + priority);
    assert_eq!(first.max_priority_fee_per_gas, priority);
    (hash, first, request)
}

/// Keeps `sent` out of the next blocks, as a congested chain would, and mines `blocks`.
async fn skip_blocks(s: &Stack, sent: &PendingTx, blocks: u64) {
    s.h.anvil("anvil_dropTransaction", json!([sent.hash])).await;
    mine(s, blocks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_not_mined_in_three_blocks_is_resubmitted_with_bumped_fees_and_lands() {
    let s = Arc::new(Stack::start().await);
    let (hash, first, request) = stuck_bundle(&s, 40).await;
    // Two blocks without it: not yet (the default waits three).
    skip_blocks(&s, &first, 2).await;
    assert_eq!(crate::chain::pool_content(&s).await, vec![]);
    mine(&s, 1).await;
    let bundler = s.bundler.bundler_address;
    let pool = wait_for_pool(&s, |txs| txs.iter().any(|t| t.from == bundler)).await;
    let second = &pool[0];
    assert_eq!(pool.len(), 1);
    assert_ne!(second.hash, first.hash);
    assert_eq!(second.nonce, first.nonce);
    // Both fees 10% up, rounded up: the base fee fell over the empty blocks, so the bump and
    // not today's price decides.
    assert_eq!(second.max_fee_per_gas, bump(first.max_fee_per_gas));
    assert_eq!(second.max_priority_fee_per_gas, bump(first.max_priority_fee_per_gas));
    assert_eq!(second.max_priority_fee_per_gas, first.max_priority_fee_per_gas * 11 / 10);
    mine(&s, 1).await;
    let response = request.await.unwrap().expect("the resubmitted bundle lands");
    assert_eq!(response["transactionHash"], json!(second.hash), "{response}");
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(receipt["success"], json!(true), "{receipt}");
    assert_eq!(receipt["receipt"]["transactionHash"], json!(second.hash));
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_out_of_resubmissions_is_cancelled_and_its_operation_lands_in_the_next() {
    let s = Arc::new(
        Stack::start_with(|settings| {
            settings.options.builder.max_resubmissions = 0;
        })
        .await,
    );
    let (hash, first, request) = stuck_bundle(&s, 41).await;
    skip_blocks(&s, &first, 3).await;
    let bundler = s.bundler.bundler_address;
    let pool = wait_for_pool(&s, |txs| txs.iter().any(|t| t.from == bundler)).await;
    // A 0-value transfer to itself at the bundle's nonce, outbidding the bundle by 10%+.
    let cancel = &pool[0];
    assert_eq!(pool.len(), 1);
    assert_eq!(cancel.to, Some(bundler));
    assert_eq!(cancel.value, alloy::primitives::U256::ZERO);
    assert_eq!(cancel.nonce, first.nonce);
    assert_eq!(cancel.max_fee_per_gas, bump(first.max_fee_per_gas));
    assert_eq!(cancel.max_priority_fee_per_gas, bump(first.max_priority_fee_per_gas));
    // Pending while the cancellation waits: no other bundle may take it yet.
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await.as_array().unwrap().len(), 1);
    mine(&s, 1).await;
    let refusal = request.await.unwrap().unwrap_err();
    let refusal = refusal.rpc().expect("a JSON-RPC error");
    assert_eq!(refusal.code, -32603, "{refusal:?}");
    assert!(refusal.message.contains("cancelled"), "{refusal:?}");
    assert_eq!(s.ok("eth_getUserOperationReceipt", json!([hash])).await, Value::Null);
    // The operation is free again and lands in the next bundle, at the next nonce.
    set_automine(&s, true).await;
    let next = s.bundle_now().await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(receipt["success"], json!(true), "{receipt}");
    assert_eq!(receipt["receipt"]["transactionHash"], next);
    let tx = s.h.anvil("eth_getTransactionByHash", json!([next])).await;
    assert_eq!(tx["nonce"], json!(format!("{:#x}", first.nonce + 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_bundle_whose_operation_another_bundler_landed_is_cancelled_not_resubmitted() {
    // Our bundler signs with a key of its own; the harness's bundler key plays the other one.
    let ours = B256::repeat_byte(0x43);
    let s = Arc::new(Stack::start_with(|settings| settings.options.signer_keys = vec![ours]).await);
    let bundler = s.bundler.bundler_address;
    let fund =
        TransactionRequest::default().with_to(bundler).with_value(U256::from(10u64).pow(U256::from(18)));
    let pending = s.h.deployer.send_transaction(fund).await.unwrap();
    tora_devnet::confirm(&s.h.deployer, "fund", pending).await.unwrap();
    let (hash, first, request) = stuck_bundle(&s, 42).await;
    let op = s.ok("eth_getUserOperationByHash", json!([hash])).await["userOperation"].clone();
    let op: tora_core::UserOperation = serde_json::from_value(op).unwrap();
    s.h.anvil("anvil_dropTransaction", json!([first.hash])).await;
    let theirs = tokio::spawn({
        let s = s.clone();
        async move { s.h.handle_ops(&[op]).await.map(|r| r.transaction_hash).ok() }
    });
    wait_for_pool(&s, |txs| txs.len() == 1 && txs[0].from != bundler).await;
    mine(&s, 3).await;
    let theirs = theirs.await.unwrap().expect("the other bundler lands it");
    // Three blocks later ours no longer passes handleOps: a cancellation, not a resubmission.
    let pool = wait_for_pool(&s, |txs| txs.iter().any(|t| t.from == bundler)).await;
    assert_eq!(pool.len(), 1);
    assert_eq!((pool[0].to, pool[0].nonce, pool[0].value), (Some(bundler), first.nonce, U256::ZERO));
    mine(&s, 1).await;
    let refusal = request.await.unwrap().unwrap_err();
    assert!(refusal.rpc().expect("a JSON-RPC error").message.contains("cancelled"), "{refusal:?}");
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(receipt["receipt"]["transactionHash"], json!(theirs));
    // The next bundle's second validation drops it (the account exists now): no bundle.
    set_automine(&s, true).await;
    assert_eq!(s.bundle_now().await, Value::Null);
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}
