//! `pm_getPaymasterData` in token mode, a distinct sender per request: the quote path with no
//! cache hit to lean on.

use crate::rpc::request;
use alloy::primitives::{Address, U256};
use serde_json::{Value, json};
use tora_core::Deployment;

/// Request `i`: a token-mode quote for a sender no other request uses.
pub fn quote_request(deployment: &Deployment, i: u64) -> Value {
    let mut sender = [0u8; 20];
    sender[..8].copy_from_slice(&i.to_be_bytes());
    sender[19] = 0x7a;
    let op = json!({
        "sender": Address::from(sender),
        "nonce": "0x0",
        "callData": "0x",
        "callGasLimit": "0x186a0",
        "verificationGasLimit": "0x30d40",
        "preVerificationGas": "0xea60",
        "maxFeePerGas": "0xb2d05e00",
        "maxPriorityFeePerGas": "0x3b9aca00",
        "signature": "0x",
    });
    let chain = format!("{:#x}", U256::from(deployment.chain_id));
    let context = json!({ "token": deployment.contracts.tora });
    request(i, "pm_getPaymasterData", json!([op, deployment.contracts.entry_point, chain, context]))
}
