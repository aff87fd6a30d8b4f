//! A devnet with a running bundler, and the workspace's JSON-RPC client pointed at it.

use alloy::primitives::{Address, Bytes};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tora_bundler::builder::BundlingMode;
use tora_bundler::{BundlerOptions, BundlerSettings, RunningBundler, ValidationSettings};
use tora_core::rpc_api::bundler::{SendUserOperation, SentOperation};
use tora_core::rpc_api::debug::{SendBundleNow, SendBundleNowResult};
use tora_core::strict_hex::Hex;
use tora_core::{ChainSpec, ENTRY_POINT_V07, UserOperation};
use tora_devnet::SmartWallet;
use tora_devnet::harness::Harness;
use tora_jsonrpc::{CallError, Client, ErrorObject};

/// The bundler's requests for the node's latest block, on its /metrics.
pub(crate) const HEAD_CALLS: &str = "bundler_node_requests_total{method=\"eth_getBlockByNumber\"}";

pub(crate) struct Stack {
    pub h: Harness,
    pub bundler: RunningBundler,
    pub url: String,
    /// The bundler's JSON-RPC endpoint.
    pub rpc: Client,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for task in &self.bundler.tasks {
            task.abort();
        }
    }
}

pub(crate) fn dev_spec(chain_id: u64) -> ChainSpec {
    ChainSpec::load("dev").unwrap().with_id(chain_id)
}

pub(crate) fn settings(h: &Harness) -> BundlerSettings {
    let options = BundlerOptions {
        bundling_mode: BundlingMode::Manual,
        debug_api: true,
        // Each test's verdicts follow the chain changes it just made.
        validation: ValidationSettings { head_max_age: Duration::ZERO, ..Default::default() },
        ..Default::default()
    };
    let listen = "127.0.0.1:0".parse().unwrap();
    let mut settings =
        BundlerSettings::for_deployment(&h.devnet.deployment, dev_spec(h.chain_id), listen, options).unwrap();
    // Not the node's head feed either: a pushed head can trail a test's own transaction by the
    // push's latency. The feed has its tests in head_feed.rs.
    settings.ws_url = None;
    settings
}

impl Stack {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A stack whose bundler settings `adjust` changes first.
    pub(crate) async fn start_with(adjust: impl FnOnce(&mut BundlerSettings)) -> Self {
        Self::start_on_harness(|_, settings| adjust(settings)).await
    }

    /// A stack whose bundler settings `adjust` changes first, knowing the devnet.
    pub(crate) async fn start_on_harness(adjust: impl FnOnce(&Harness, &mut BundlerSettings)) -> Self {
        let h = Harness::start().await;
        let mut settings = settings(&h);
        adjust(&h, &mut settings);
        let bundler = tora_bundler::start(settings).await.expect("bundler starts");
        let url = format!("http://{}/", bundler.address);
        let rpc = Client::new(url.clone());
        Self { h, bundler, url, rpc }
    }

    /// The value of one series on the bundler's /metrics (`name{labels}`), 0 when absent.
    pub(crate) async fn metric(&self, series: &str) -> f64 {
        let metrics = reqwest::get(format!("{}metrics", self.url)).await.unwrap().text().await.unwrap();
        let prefix = format!("{series} ");
        metrics.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0.0, |v| v.parse().unwrap())
    }

    /// The result of a call that must succeed.
    pub(crate) async fn ok(&self, method: &str, params: Value) -> Value {
        self.rpc.raw(method, params).await.unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// The error a call that must fail answered.
    pub(crate) async fn refusal(&self, method: &str, params: Value) -> ErrorObject {
        match self.rpc.raw(method, params).await {
            Err(CallError::Rpc(error)) => error,
            other => panic!("{method} should be refused: {other:?}"),
        }
    }

    /// The error code of a call that must fail.
    pub(crate) async fn error_code(&self, method: &str, params: Value) -> i64 {
        self.refusal(method, params).await.code
    }

    /// debug_bundler_sendBundleNow: the bundle's transaction hash, or null when there was none
    /// to send (the method answers the eth-infinitism shape, checked here once).
    pub(crate) async fn bundle_now(&self) -> Value {
        match self.rpc.call::<SendBundleNow>(()).await.expect("debug_bundler_sendBundleNow") {
            SendBundleNowResult::Sent { transaction_hash, .. } => json!(transaction_hash),
            SendBundleNowResult::Nothing(_) => Value::Null,
        }
    }

    /// Sends `op` and returns the userOpHash the bundler answered.
    pub(crate) async fn send(&self, op: &UserOperation) -> Value {
        let params = (SentOperation(op.clone()), Hex(ENTRY_POINT_V07));
        json!(self.rpc.call::<SendUserOperation>(params).await.expect("eth_sendUserOperation"))
    }

    /// A new ToraAccount (or SimpleAccount behind `factory`) with 1 ETH for its prefund.
    pub(crate) async fn funded_wallet(&self, factory: Address, salt: u64) -> SmartWallet {
        self.h.funded_wallet_of(factory, salt).await
    }

    /// The wallet's first operation (with initCode), signed.
    pub(crate) async fn first_op(&self, wallet: &SmartWallet) -> UserOperation {
        self.h.first_op(wallet, Bytes::new()).await
    }
}

/// Milliseconds since `start`, for the figures the tests print.
pub(crate) fn ms(start: Instant) -> f64 {
    Duration::as_secs_f64(&start.elapsed()) * 1e3
}
