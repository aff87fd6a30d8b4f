//! Bundling: the gas target splits a full pool, and auto mode bundles on its own.

use crate::common::{Stack, ms};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tora_core::ENTRY_POINT_V07;

// Multi-threaded, as `tora` runs: the figures it prints are then the server's, not one
// thread's queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_is_split_at_the_bundle_gas_target() {
    let s = Arc::new(Stack::start().await);
    let factory = s.h.contracts().tora_account_factory;
    // Each first op may use 400k + 120k + 60k = 580k gas: as many as fit the dev chain's bundle
    // gas target go in the first bundle, and 3 more wait for the next.
    let fit = (crate::common::dev_spec(s.h.chain_id).max_bundle_gas / 580_000) as usize;
    let mut ops = Vec::new();
    for salt in 100..(100 + fit as u64 + 3) {
        let wallet = s.funded_wallet(factory, salt).await;
        ops.push(s.first_op(&wallet).await);
    }
    // Distinct senders, all at once.
    let mut sends = JoinSet::new();
    for op in ops.clone() {
        let s = s.clone();
        sends.spawn(async move {
            let started = Instant::now();
            let hash = s.send(&op).await;
            (hash, ms(started))
        });
    }
    let mut latencies = Vec::new();
    let mut hashes = Vec::new();
    while let Some(joined) = sends.join_next().await {
        let (hash, latency) = joined.unwrap();
        hashes.push(hash);
        latencies.push(latency);
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "{} concurrent eth_sendUserOperation (first ops): p50 {:.1} ms, max {:.1} ms",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    let first = s.bundle_now().await;
    assert_eq!(
        s.ok("debug_bundler_dumpMempool", json!([ENTRY_POINT_V07])).await.as_array().unwrap().len(),
        3
    );
    let second = s.bundle_now().await;
    assert_ne!(first, second);
    let mut per_bundle = BTreeMap::<String, usize>::new();
    for hash in &hashes {
        let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
        assert_eq!(receipt["success"], json!(true), "{receipt}");
        *per_bundle.entry(receipt["receipt"]["transactionHash"].to_string()).or_default() += 1;
    }
    assert_eq!(per_bundle.get(&first.to_string()), Some(&fit));
    assert_eq!(per_bundle.get(&second.to_string()), Some(&3));

    // What an operator's dashboard reads: two bundles, their sizes, every operation included.
    let metrics = reqwest::get(format!("{}metrics", s.url)).await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        let line =
            metrics.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("bundler_bundle_operations_count"), 2.0);
    assert_eq!(value("bundler_bundle_operations_sum"), (fit + 3) as f64);
    assert_eq!(value("bundler_operations_included_total"), (fit + 3) as f64);
    assert_eq!(value("bundler_inclusion_seconds_count"), 2.0);
}

#[tokio::test]
async fn auto_mode_bundles_without_being_asked() {
    let s = Stack::start().await;
    s.ok("debug_bundler_setBundlingMode", json!(["auto"])).await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 9).await;
    let hash = s.send(&s.first_op(&wallet).await).await;
    // The bundler tries once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let receipt = loop {
        let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
        if receipt != Value::Null || Instant::now() > deadline {
            break receipt;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(receipt["success"], json!(true), "{receipt}");
}

#[tokio::test]
async fn an_operation_front_run_by_another_bundler_is_dropped_and_the_rest_land() {
    let s = Stack::start().await;
    let factory = s.h.contracts().tora_account_factory;
    let front_run = s.first_op(&s.funded_wallet(factory, 10).await).await;
    let honest = s.first_op(&s.funded_wallet(factory, 11).await).await;
    let front_run_hash = s.send(&front_run).await;
    let honest_hash = s.send(&honest).await;
    // Another bundler lands the first operation: ours now fails in handleOps (AA10, the
    // sender exists already) and must not sink the bundle.
    let theirs = s.h.handle_ops(std::slice::from_ref(&front_run)).await.expect("front-run lands");
    let ours = s.bundle_now().await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([honest_hash])).await;
    assert_eq!(receipt["success"], json!(true), "{receipt}");
    assert_eq!(receipt["receipt"]["transactionHash"], ours);
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
    // The receipt of the front-run operation is found in the other bundler's transaction.
    let receipt = s.ok("eth_getUserOperationReceipt", json!([front_run_hash])).await;
    assert_eq!(receipt["receipt"]["transactionHash"], json!(theirs.transaction_hash));
    // Its UserOperationEvent counts for the entities we saw it name (ERC-7562 opsIncluded is
    // every inclusion, not our bundles' only): the shared factory is included twice and stays
    // ok, instead of being blamed for the AA10 our bundle would have met.
    let reputation = s.ok("debug_bundler_dumpReputation", json!([ENTRY_POINT_V07])).await;
    let factory_entry =
        reputation.as_array().unwrap().iter().find(|e| e["address"] == json!(factory)).cloned();
    assert_eq!(
        factory_entry.unwrap(),
        json!({ "address": factory, "opsSeen": "0x2", "opsIncluded": "0x2", "status": "ok" })
    );
}

#[tokio::test]
async fn an_operation_at_the_suggested_slow_price_rides_in_the_next_bundle() {
    let s = Stack::start().await;
    let prices = s.ok("tora_getUserOperationGasPrice", json!([])).await;
    let quantity = |tier: &str, field: &str| -> u128 {
        u128::from_str_radix(prices[tier][field].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    // Each tier raises the tip, and the max fee by the same.
    let tips: Vec<u128> =
        ["slow", "standard", "fast"].iter().map(|t| quantity(t, "maxPriorityFeePerGas")).collect();
    assert!(tips[0] < tips[1] && tips[1] < tips[2], "{prices}");
    let spread = |t: &str| quantity(t, "maxFeePerGas") - quantity(t, "maxPriorityFeePerGas");
    assert_eq!((spread("slow"), spread("standard")), (spread("fast"), spread("fast")), "{prices}");
    // The least tier is enough for the bundle priced now.
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 12).await;
    let mut op = s.h.op(&wallet, true, alloy::primitives::Bytes::new()).await;
    op.max_fee_per_gas = alloy::primitives::U128::from(quantity("slow", "maxFeePerGas"));
    op.max_priority_fee_per_gas = alloy::primitives::U128::from(quantity("slow", "maxPriorityFeePerGas"));
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, s.h.chain_id);
    let hash = s.send(&op).await;
    let tx = s.bundle_now().await;
    assert_ne!(tx, Value::Null, "a bundle was sent");
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(receipt["receipt"]["transactionHash"], tx);
    assert_eq!(receipt["success"], json!(true), "{receipt}");
    assert_eq!(s.error_code("tora_getUserOperationGasPrice", json!([1])).await, -32602);
}
