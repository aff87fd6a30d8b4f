//! Issue 13, node faults: a node that stops answering without refusing (anvil frozen with
//! SIGSTOP). Before, every node call waited forever: a send, an estimate and /ready hung with no
//! answer for as long as the node stayed frozen.

use crate::common::Stack;
use serde_json::json;
use std::process::Command;
use std::time::Duration;
use tora_core::ENTRY_POINT_V07;
use tora_core::node_client::NODE_TIMEOUT;
use tora_jsonrpc::CallError;

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").args([name, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {name} {pid}");
}

/// While the node is frozen, a send gets a JSON-RPC error once the node request times out, and
/// /ready says not ready within its second; once the node thaws, the same operation is accepted
/// and bundled with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_turns_sends_into_errors_and_the_bundler_recovers_when_it_thaws() {
    let s = Stack::start().await;
    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 71).await;
    let op = s.first_op(&wallet).await;
    let pid = s.h.devnet.anvil.pid().expect("anvil runs");
    signal(pid, "-STOP");
    // Bounded by more than one node timeout: a send that hangs fails the test here.
    let patience = NODE_TIMEOUT * 3;
    let send = s.rpc.raw("eth_sendUserOperation", json!([op, ENTRY_POINT_V07]));
    let refused = tokio::time::timeout(patience, send).await;
    let ready = tokio::time::timeout(Duration::from_secs(5), reqwest::get(format!("{}ready", s.url))).await;
    signal(pid, "-CONT");
    match refused.expect("the send answered while the node was frozen") {
        Err(CallError::Rpc(error)) => assert!(error.message.contains("node"), "{error:?}"),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    let ready = ready.expect("/ready answered while the node was frozen").unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    // Thawed: the same operation goes through, and lands.
    let hash = s.send(&op).await;
    s.bundle_now().await;
    let receipt = s.ok("eth_getUserOperationReceipt", json!([hash])).await;
    assert_eq!(receipt["success"], json!(true), "{receipt}");
}
