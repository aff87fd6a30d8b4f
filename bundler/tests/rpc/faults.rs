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

/// A TCP relay to the node that the test can take down (the port refuses connections, and the
/// connections through it are cut) and bring back on the same port: a node that is down, not
/// frozen.
struct Relay {
    address: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        Self { address, upstream, serving: Some(tokio::spawn(relay(listener, upstream))) }
    }

    fn down(&mut self) {
        // Dropping the listener and every relayed connection: new connections are refused.
        if let Some(serving) = self.serving.take() {
            serving.abort();
        }
    }

    async fn up(&mut self) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.address).unwrap();
        self.serving = Some(tokio::spawn(relay(socket.listen(64).unwrap(), self.upstream)));
    }
}

async fn relay(listener: tokio::net::TcpListener, upstream: std::net::SocketAddr) {
    // Aborting this task drops the set, which aborts every connection in it.
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// While the node refuses connections, a send gets a JSON-RPC error naming the node and /ready
/// says not ready; when the node is back on the same address, the same operation is accepted
/// and bundled with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_refuses_connections_turns_sends_into_errors_and_the_bundler_recovers() {
    let s = Stack::start().await;
    // Stack's own bundler talks to anvil directly; this one goes through the relay.
    let mut relay = Relay::start(&s.h.devnet.deployment.rpc_url).await;
    let mut settings = crate::common::settings(&s.h);
    settings.rpc_url = format!("http://{}", relay.address);
    let bundler = tora_bundler::start(settings).await.expect("bundler starts through the relay");
    let rpc = tora_jsonrpc::Client::new(format!("http://{}/", bundler.address));

    let wallet = s.funded_wallet(s.h.contracts().tora_account_factory, 72).await;
    let op = s.first_op(&wallet).await;
    relay.down();
    let patience = NODE_TIMEOUT * 3;
    let send = rpc.raw("eth_sendUserOperation", json!([op, ENTRY_POINT_V07]));
    let refused =
        tokio::time::timeout(patience, send).await.expect("the send answered while the node was down");
    match refused {
        Err(CallError::Rpc(error)) => assert!(error.message.contains("node"), "{error:?}"),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    let ready = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("http://{}/ready", bundler.address)),
    )
    .await
    .expect("/ready answered while the node was down")
    .unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    relay.up().await;
    let hash = rpc
        .raw("eth_sendUserOperation", json!([op, ENTRY_POINT_V07]))
        .await
        .expect("accepted once the node is back");
    let bundled =
        rpc.raw("debug_bundler_sendBundleNow", json!([])).await.expect("bundled once the node is back");
    let receipt = rpc.raw("eth_getUserOperationReceipt", json!([hash])).await.unwrap();
    assert_eq!(receipt["success"], json!(true), "{receipt} after {bundled}");
    for task in &bundler.tasks {
        task.abort();
    }
}
