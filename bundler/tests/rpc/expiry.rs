//! An operation past its validUntil leaves the pool at the first block that passes it, before
//! any bundle could waste a simulation on it.

use crate::common::Stack;
use alloy::primitives::Bytes;
use serde_json::{Value, json};
use tora_core::ENTRY_POINT_V07;
use tora_devnet::harness::tora;

#[tokio::test]
async fn an_operation_past_valid_until_is_dropped_at_the_next_block() {
    let s = Stack::start().await;
    let h = &s.h;
    let wallet = h.new_wallet(80).await;
    h.send_tora(wallet.address, tora(1_000)).await;
    let mut op = h.op(&wallet, true, Bytes::new()).await;
    let permit = h.permit(&wallet, tora(100)).await;
    // The paymaster's quote bounds the operation: valid for 60 s from now.
    let mut quote = h.token_quote(tora(100)).await;
    let now = h.now().await;
    quote.valid_until = now + 60;
    h.attach_quote(&mut op, quote, Some(permit));
    wallet.sign_user_op(&mut op, ENTRY_POINT_V07, h.chain_id);
    let hash = s.send(&op).await;
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([op]));
    // A block one second past validUntil, where the EntryPoint refuses it (AA32).
    h.anvil("evm_setNextBlockTimestamp", json!([now + 61])).await;
    h.anvil("evm_mine", json!([])).await;
    assert_eq!(s.bundle_now().await, Value::Null);
    assert_eq!(s.ok("debug_bundler_dumpMempool", json!([])).await, json!([]));
    assert_eq!(s.ok("eth_getUserOperationByHash", json!([hash])).await, Value::Null);
    assert_eq!(
        s.ok("tora_getUserOperationStatus", json!([hash])).await,
        json!({ "status": "dropped", "reason": "expired: the block passed its validUntil" })
    );
}
