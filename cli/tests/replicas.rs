//! Issue 13: two `tora bundler` processes on one Redis and one anvil are one bundler. Operations
//! sent alternately to both all land, none twice; after one replica is killed with SIGKILL
//! right after taking operations, they land through the other.

use alloy::primitives::B256;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use serde_json::json;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tora_core::contracts::EntryPoint;
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::harness::{Harness, ether};
use tora_devnet::keys;
use tora_devnet::redis_server::RedisServer;
use tora_jsonrpc::Client;

/// A `tora bundler` child process, killed on drop.
struct Replica {
    child: Child,
    url: String,
    rpc: Client,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn replica(deployment: &std::path::Path, redis: &str, key: B256) -> Replica {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tora"))
        .args(["bundler", "--deployment"])
        .arg(deployment)
        .args(["--bundler-listen", &format!("127.0.0.1:{port}"), "--bundler-redis-url", redis])
        .args(["--bundler-key", &format!("{key:#x}"), "--debug-api"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("tora bundler starts");
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{url}health")).await.is_err() {
        assert!(Instant::now() < deadline, "tora bundler did not come up on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Replica { child, rpc: Client::new(url.clone()), url }
}

/// First operations of fresh wallets, signed (each a new counterfactual account).
async fn first_ops(h: &Harness, salts: std::ops::Range<u64>) -> Vec<UserOperation> {
    let mut ops = Vec::new();
    for salt in salts {
        let wallet = h.funded_wallet_of(h.contracts().tora_account_factory, salt).await;
        ops.push(h.first_op(&wallet, Default::default()).await);
    }
    ops
}

async fn send(replica: &Replica, op: &UserOperation) -> B256 {
    let hash =
        replica.rpc.raw("eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await.expect("accepted");
    serde_json::from_value(hash).unwrap()
}

/// How many UserOperationEvents the chain holds for each hash: every one must be exactly 1.
async fn landed(h: &Harness, hashes: &[B256], patience: Duration) -> HashMap<B256, usize> {
    let deadline = Instant::now() + patience;
    loop {
        let filter = Filter::new()
            .address(h.contracts().entry_point)
            .event_signature(EntryPoint::UserOperationEvent::SIGNATURE_HASH)
            .from_block(0);
        let mut counts: HashMap<B256, usize> = hashes.iter().map(|h| (*h, 0)).collect();
        for log in h.deployer.get_logs(&filter).await.unwrap() {
            let event = log.log_decode::<EntryPoint::UserOperationEvent>().unwrap();
            if let Some(count) = counts.get_mut(&event.inner.data.userOpHash) {
                *count += 1;
            }
        }
        if counts.values().all(|n| *n > 0) || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_land_every_operation_once_and_survive_a_kill() {
    let h = Harness::start().await;
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("tora-replicas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let deployment = dir.join("devnet.json");
    std::fs::write(&deployment, serde_json::to_vec(&h.devnet.deployment).unwrap()).unwrap();
    // Two keys, one per replica: the devnet's bundler and a fresh funded one.
    let second = PrivateKeySigner::random();
    h.fund(second.address(), ether(10)).await;
    let mut a = replica(&deployment, &redis.url, keys::BUNDLER).await;
    let b = replica(&deployment, &redis.url, second.to_bytes()).await;

    // Alternately to both.
    let ops = first_ops(&h, 9_100..9_110).await;
    let mut hashes = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        hashes.push(send(if i % 2 == 0 { &a } else { &b }, op).await);
    }
    let counts = landed(&h, &hashes, Duration::from_secs(60)).await;
    let twice = counts.values().filter(|n| **n > 1).count();
    let missing = counts.values().filter(|n| **n == 0).count();
    println!("alternating: sent {}, landed {}, twice {twice}", hashes.len(), hashes.len() - missing);
    assert_eq!((missing, twice), (0, 0), "{counts:?}");
    // Mid-bundle: both on manual bundling, blocks held back, a sends a bundle and is killed
    // with SIGKILL while it is pending; the node then loses the transaction. Its operations
    // are claimed by a dead builder: b takes them once the claims lapse, and lands them.
    for replica in [&a, &b] {
        replica.rpc.raw("debug_bundler_setBundlingMode", json!(["manual"])).await.unwrap();
    }
    let ops = first_ops(&h, 9_200..9_206).await;
    let mut hashes = Vec::new();
    for op in &ops {
        hashes.push(send(&a, op).await);
    }
    h.anvil("evm_setAutomine", json!([false])).await;
    let a_rpc = Client::new(a.url.clone());
    let pending = tokio::spawn(async move { a_rpc.raw("debug_bundler_sendBundleNow", json!([])).await });
    let a_signer = tora_devnet::keys::signer(keys::BUNDLER).address();
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.deployer.get_transaction_count(a_signer).pending().await.unwrap()
        == h.deployer.get_transaction_count(a_signer).await.unwrap()
    {
        assert!(Instant::now() < deadline, "a never sent its bundle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    pending.abort();
    h.anvil("anvil_dropAllTransactions", json!([])).await;
    h.anvil("evm_setAutomine", json!([true])).await;
    let killed = Instant::now();
    let mut refused_while_claimed = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = b.rpc.raw("debug_bundler_sendBundleNow", json!([])).await;
        let counts = landed(&h, &hashes, Duration::ZERO).await;
        if counts.values().all(|n| *n > 0) || Instant::now() > deadline {
            break;
        }
        refused_while_claimed += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let counts = landed(&h, &hashes, Duration::ZERO).await;
    let twice = counts.values().filter(|n| **n > 1).count();
    let missing = counts.values().filter(|n| **n == 0).count();
    println!(
        "after kill -9 mid-bundle: sent {}, landed {} through b {:.1} s after the kill ({refused_while_claimed} tries found them still claimed), twice {twice}",
        hashes.len(),
        hashes.len() - missing,
        killed.elapsed().as_secs_f64()
    );
    assert_eq!((missing, twice), (0, 0), "{counts:?}");
    assert!(refused_while_claimed > 0, "b must not take operations a dead builder still claims");
    let receipt = b.rpc.raw("eth_getUserOperationReceipt", json!([hashes[0]])).await.unwrap();
    assert_eq!(receipt["success"], json!(true), "{receipt}");
    let bundle = receipt["receipt"]["from"].as_str().unwrap_or_default().to_lowercase();
    assert_eq!(bundle, format!("{:#x}", second.address()), "landed through b: {receipt}");

    // Leases: c and d both name a's key (a is dead and its lease has lapsed). One of them
    // holds it; when that one is killed, the other takes the key and bundles with it.
    let c = replica(&deployment, &redis.url, keys::BUNDLER).await;
    let d = replica(&deployment, &redis.url, keys::BUNDLER).await;
    let lease = format!("{{tora:lease:{}:{a_signer:#x}}}", h.chain_id);
    let holder = |lease: &str| {
        let out = Command::new("redis-cli").args(["-u", &redis.url, "GET", lease]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // a's lease may outlive it by up to its TTL, and a new replica takes the key on its first
    // tick: wait for one of c and d to hold it.
    let ours = |held: &str| [&c, &d].iter().any(|r| held.contains(&format!("/{}/", r.child.id())));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut first = holder(&lease);
    while !ours(&first) {
        assert!(Instant::now() < deadline, "neither c nor d took the lapsed lease: {first}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        first = holder(&lease);
    }
    let (mut holding, standby) = if first.contains(&format!("/{}/", c.child.id())) { (c, d) } else { (d, c) };
    assert!(first.contains(&format!("/{}/", holding.child.id())), "one replica holds the key: {first}");
    holding.child.kill().unwrap();
    holding.child.wait().unwrap();
    let killed = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holder(&lease).contains(&format!("/{}/", standby.child.id())) {
        assert!(Instant::now() < deadline, "the standby never took the lease: {}", holder(&lease));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("lease taken over {:.1} s after its holder was killed", killed.elapsed().as_secs_f64());
    let op = first_ops(&h, 9_300..9_301).await.remove(0);
    let hash = send(&standby, &op).await;
    let counts = landed(&h, &[hash], Duration::from_secs(30)).await;
    assert_eq!(counts[&hash], 1);
    let receipt = standby.rpc.raw("eth_getUserOperationReceipt", json!([hash])).await.unwrap();
    let bundle = receipt["receipt"]["from"].as_str().unwrap_or_default().to_lowercase();
    assert_eq!(bundle, format!("{a_signer:#x}"), "bundled with the leased key: {receipt}");
    let _ = std::fs::remove_dir_all(&dir);
}
