//! A reorg that drops a bundle's block puts its operations back in the pool, and they land
//! again in a new bundle.

use crate::chain::wait_for_result;
use crate::common::Stack;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_of_a_bundle_a_reorg_dropped_go_back_to_the_pool_and_land_again() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 60).await;
    let op = s.first_op(&wallet).await;
    let hash = s.send(&op).await;
    let snapshot = s.h.anvil("evm_snapshot", json!([])).await;
    let first = s.bundle_now().await;
    let before = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(before["receipt"]["transactionHash"], first);
    // The bundle's block leaves the chain, and its transaction with it.
    s.h.anvil("evm_revert", json!([snapshot])).await;
    assert_eq!(s.ok("eth_getUserOperationReceipt", json!([hash])).await, Value::Null);
    // The bundler's loop sees the new head (once a second in manual mode too).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pool = s.ok("debug_bundler_dumpMempool", json!([])).await;
        if pool != json!([]) {
            assert_eq!(pool, json!([op]));
            break;
        }
        assert!(Instant::now() < deadline, "the operation never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.bundle_now().await;
    let after = wait_for_result(&s, "eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(after["success"], json!(true), "{after}");
    assert_eq!(after["receipt"]["blockNumber"], before["receipt"]["blockNumber"]);
    assert_ne!(after["receipt"]["blockHash"], before["receipt"]["blockHash"]);
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_a_reorg_moved_to_another_block_stays_included_and_watched() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 61).await;
    let op = s.first_op(&wallet).await;
    let hash = s.send(&op).await;
    let snapshot = s.h.anvil("evm_snapshot", json!([])).await;
    let tx = s.bundle_now().await;
    let before = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    // The bundle's block is replaced by one that holds the same transaction.
    let raw = s.h.anvil("eth_getRawTransactionByHash", json!([tx])).await;
    s.h.anvil("anvil_reorg", json!([1, [[raw, 0]]])).await;
    let moved = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(moved["receipt"]["transactionHash"], tx);
    assert_ne!(moved["receipt"]["blockHash"], before["receipt"]["blockHash"]);
    // The next request reads the new head first: the bundle is still in the chain, so nothing
    // comes back to the pool and there is nothing to bundle.
    assert_eq!(s.bundle_now().await, Value::Null);
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
    // The bundler follows it in its new block: when that block goes too, the operation is back.
    s.h.anvil("evm_revert", json!([snapshot])).await;
    assert_eq!(s.bundle_now().await, tx);
    let landed = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(landed["success"], json!(true), "{landed}");
    assert_ne!(landed["receipt"]["blockHash"], moved["receipt"]["blockHash"]);
}
