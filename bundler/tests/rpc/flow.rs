//! The happy path and the pool's rules, through HTTP.

use crate::common::{HEAD_CALLS, Stack, ms};
use alloy::primitives::{B256, U128};
use alloy::providers::Provider;
use serde_json::json;
use std::time::Instant;
use tora_core::ENTRY_POINT_V07;

#[tokio::test]
async fn new_wallets_created_through_init_code_are_bundled_and_get_receipts() {
    let s = Stack::start().await;
    assert_eq!(s.ok("eth_chainId", json!([])).await, json!(format!("{:#x}", s.h.chain_id)));
    assert_eq!(s.ok("eth_supportedEntryPoints", json!([])).await, json!([ENTRY_POINT_V07.to_checksum(None)]));
    let tora = s.funded_wallet(s.h.contracts().tora_account_factory, 1).await;
    let simple = s.funded_wallet(s.h.contracts().simple_account_factory, 1).await;
    let mut hashes = Vec::new();
    for wallet in [&tora, &simple] {
        let op = s.first_op(wallet).await;
        let started = Instant::now();
        let hash = s.send(&op).await;
        eprintln!("eth_sendUserOperation of a first op: {:.1} ms", ms(started));
        assert_eq!(hash, json!(op.hash(ENTRY_POINT_V07, s.h.chain_id)));
        hashes.push(hash);
    }
    // Pending: known, not in a block yet, no receipt.
    let pending = s.ok("eth_getUserOperationByHash", json!([hashes[0]])).await;
    assert_eq!(pending["transactionHash"], json!(null));
    assert_eq!(pending["userOperation"]["sender"], json!(tora.address));
    assert_eq!(s.ok("eth_getUserOperationReceipt", json!([hashes[0]])).await, json!(null));
    assert_eq!(
        s.ok("debug_bundler_dumpMempool", json!([ENTRY_POINT_V07])).await.as_array().unwrap().len(),
        2
    );

    let tx = s.bundle_now().await;
    assert!(tx.is_string(), "a bundle was sent: {tx}");
    for (hash, wallet) in hashes.iter().zip([&tora, &simple]) {
        let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
        assert_eq!(receipt["success"], json!(true), "{receipt}");
        assert_eq!(receipt["userOpHash"], *hash);
        assert_eq!(receipt["sender"], json!(wallet.address));
        assert_eq!(receipt["receipt"]["transactionHash"], tx);
        let included = s.ok("eth_getUserOperationByHash", json!([hash])).await;
        assert_eq!(included["transactionHash"], tx);
        assert_eq!(included["userOperation"]["sender"], json!(wallet.address));
        // Deployed through initCode.
        assert!(!s.h.deployer.get_code_at(wallet.address).await.unwrap().is_empty());
    }
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
    // Nothing left: the next bundle is empty.
    assert_eq!(s.bundle_now().await, json!(null));
    // Each factory was seen once and included once.
    let reputation = s.ok("debug_bundler_dumpReputation", json!([ENTRY_POINT_V07])).await;
    let factory = reputation
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == json!(s.h.contracts().tora_account_factory))
        .unwrap_or_else(|| panic!("factory in {reputation}"))
        .clone();
    assert_eq!((factory["opsSeen"].clone(), factory["opsIncluded"].clone()), (json!("0x1"), json!("0x1")));
    // Unknown hashes are null, not errors.
    assert_eq!(s.ok("eth_getUserOperationReceipt", json!([B256::repeat_byte(7)])).await, json!(null));
    assert_eq!(s.ok("eth_getUserOperationByHash", json!([B256::repeat_byte(7)])).await, json!(null));
}

#[tokio::test]
async fn replacement_over_http_needs_ten_percent_on_both_fees() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 2).await;
    let op = s.first_op(&wallet).await;
    s.send(&op).await;
    let replace = |max_fee: u64, priority: u64| {
        let mut replacement = op.clone();
        replacement.max_fee_per_gas = U128::from(max_fee);
        replacement.max_priority_fee_per_gas = U128::from(priority);
        wallet.sign_user_op(&mut replacement, ENTRY_POINT_V07, s.h.chain_id);
        replacement
    };
    // The original pays 3 gwei / 1 gwei. Only maxFeePerGas raised: refused (-32602, as the
    // eth-infinitism bundler spec tests expect).
    let only_max_fee = replace(3_300_000_000, 1_000_000_000);
    assert_eq!(s.error_code("eth_sendUserOperation", json!([only_max_fee, ENTRY_POINT_V07])).await, -32602);
    let nine_percent = replace(3_270_000_000, 1_090_000_000);
    assert_eq!(s.error_code("eth_sendUserOperation", json!([nine_percent, ENTRY_POINT_V07])).await, -32602);
    // +10% on both replaces it.
    let ten_percent = replace(3_300_000_000, 1_100_000_000);
    let hash = s.send(&ten_percent).await;
    let pool = s.ok("debug_bundler_dumpMempool", json!([ENTRY_POINT_V07])).await;
    assert_eq!(pool, json!([ten_percent]));
    s.bundle_now().await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(receipt["success"], json!(true), "{receipt}");
}

/// An operation arriving after a quiet spell (the cached head has expired) asks the node for
/// its latest block once: the send's fee checks and the validation read the same cached head.
/// Before, each kept its own and the node was asked twice.
#[tokio::test]
async fn an_operation_after_a_quiet_spell_asks_the_node_for_its_head_once() {
    let max_age = std::time::Duration::from_millis(300);
    let s = Stack::start_with(|settings| {
        settings.options.validation.head_max_age = max_age;
        // The builder's ticks ask for the head too: only the one at start, so that the count
        // below is the send's alone.
        settings.options.bundle_interval = std::time::Duration::from_secs(3_600);
    })
    .await;
    let wallet = s.funded_wallet(s.h.contracts().simple_account_factory, 31).await;
    let op = s.first_op(&wallet).await;
    tokio::time::sleep(max_age * 2).await;
    let before = s.metric(HEAD_CALLS).await;
    s.send(&op).await;
    assert_eq!(s.metric(HEAD_CALLS).await - before, 1.0);
}
