//! Several bundler keys: each has its own nonce and its own bundle in flight, so two bundles go
//! out at once, from two accounts, without sharing an operation.

use crate::chain::{mine, set_automine, wait_for_pool};
use crate::common::Stack;
use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keys_send_two_bundles_at_once_without_sharing_an_operation() {
    let second_key = B256::repeat_byte(0x42);
    let s = Arc::new(
        Stack::start_with(|settings| {
            settings.options.signer_keys = vec![tora_devnet::keys::BUNDLER, second_key];
            settings.options.builder.max_bundle_ops = 2;
        })
        .await,
    );
    let lanes = s.bundler.bundler_addresses.clone();
    assert_eq!(lanes.len(), 2);
    let fund =
        TransactionRequest::default().with_to(lanes[1]).with_value(U256::from(10u64).pow(U256::from(18)));
    let pending = s.h.deployer.send_transaction(fund).await.unwrap();
    tora_devnet::confirm(&s.h.deployer, "fund", pending).await.unwrap();
    let factory = s.h.contracts().tora_account_factory;
    let mut hashes = Vec::new();
    for salt in 50..54 {
        let wallet = s.funded_wallet(factory, salt).await;
        hashes.push(s.send(&s.first_op(&wallet).await).await);
    }
    set_automine(&s, false).await;
    let requests: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.bundle_now().await })
        })
        .collect();
    let pool = wait_for_pool(&s, |txs| txs.len() == 2).await;
    // One bundle per key, each at its key's first nonce.
    assert_eq!(pool.iter().map(|t| t.from).collect::<BTreeSet<_>>(), lanes.iter().copied().collect());
    for tx in &pool {
        let sent_before = s.h.deployer.get_transaction_count(tx.from).await.unwrap();
        assert_eq!(tx.nonce, sent_before);
    }
    mine(&s, 1).await;
    let mut answered = BTreeSet::new();
    for request in requests {
        answered.insert(request.await.unwrap().as_str().unwrap().parse::<B256>().unwrap());
    }
    assert_eq!(answered, pool.iter().map(|t| t.hash).collect());
    // The first key takes the two operations that came first; the second the other two.
    let by_key = |key| pool.iter().find(|t| t.from == key).unwrap().hash;
    for (i, hash) in hashes.iter().enumerate() {
        let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
        assert_eq!(receipt["success"], json!(true), "{receipt}");
        let lane = lanes[i / 2];
        assert_eq!(receipt["receipt"]["transactionHash"], json!(by_key(lane)), "op {i}");
    }
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}
