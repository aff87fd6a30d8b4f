//! Driving anvil's block production from a test: automine off, mine on demand, look into its
//! transaction pool.

use crate::common::Stack;
use alloy::primitives::{Address, B256, U256};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A transaction waiting in anvil's pool, as the node reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingTx {
    pub hash: B256,
    pub from: Address,
    pub to: Option<Address>,
    pub nonce: u64,
    pub value: U256,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

fn quantity(v: &Value) -> u128 {
    let s = v.as_str().unwrap_or_else(|| panic!("quantity expected: {v}"));
    u128::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

impl PendingTx {
    fn parse(tx: &Value) -> Self {
        Self {
            hash: tx["hash"].as_str().unwrap().parse().unwrap(),
            from: tx["from"].as_str().unwrap().parse().unwrap(),
            to: tx["to"].as_str().map(|t| t.parse().unwrap()),
            nonce: quantity(&tx["nonce"]) as u64,
            value: tx["value"].as_str().unwrap().parse().unwrap(),
            max_fee_per_gas: quantity(&tx["maxFeePerGas"]),
            max_priority_fee_per_gas: quantity(&tx["maxPriorityFeePerGas"]),
        }
    }
}

pub(crate) async fn set_automine(s: &Stack, on: bool) {
    s.h.anvil("evm_setAutomine", json!([on])).await;
}

/// Mines `blocks` blocks with whatever anvil's pool holds.
pub(crate) async fn mine(s: &Stack, blocks: u64) {
    for _ in 0..blocks {
        s.h.anvil("evm_mine", json!([])).await;
    }
}

/// Every transaction in anvil's pool (pending and queued).
pub(crate) async fn pool_content(s: &Stack) -> Vec<PendingTx> {
    let content = s.h.anvil("txpool_content", json!([])).await;
    let mut txs = Vec::new();
    for section in ["pending", "queued"] {
        let Some(by_sender) = content[section].as_object() else { continue };
        for by_nonce in by_sender.values() {
            for tx in by_nonce.as_object().unwrap().values() {
                txs.push(PendingTx::parse(tx));
            }
        }
    }
    txs.sort_by_key(|t| (t.from, t.nonce));
    txs
}

/// Waits until anvil's pool satisfies `ready` (the bundler works in the background); returns
/// the pool then. Panics after 30 s: a deadline against a hang, not a timing assertion.
pub(crate) async fn wait_for_pool(s: &Stack, ready: impl Fn(&[PendingTx]) -> bool) -> Vec<PendingTx> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let txs = pool_content(s).await;
        if ready(&txs) {
            return txs;
        }
        assert!(Instant::now() < deadline, "anvil's pool never got there: {txs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The latest block's base fee and the node's suggested priority fee: what the bundler prices
/// a bundle from.
pub(crate) async fn base_and_priority_fee(s: &Stack) -> (u128, u128) {
    let block = s.h.anvil("eth_getBlockByNumber", json!(["latest", false])).await;
    let priority = s.h.anvil("eth_maxPriorityFeePerGas", json!([])).await;
    (quantity(&block["baseFeePerGas"]), quantity(&priority))
}

/// Polls `method` until its result is not null.
pub(crate) async fn wait_for_result(s: &Stack, method: &str, params: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = s.ok(method, params.clone()).await;
        if result != Value::Null {
            return result;
        }
        assert!(Instant::now() < deadline, "{method} stayed null");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
