//! A devnet with a running bundler, and a JSON-RPC client for it.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tora_bundler::builder::BundlingMode;
use tora_bundler::{BundlerOptions, BundlerSettings, RunningBundler, ValidationSettings};
use tora_core::{ChainSpec, ENTRY_POINT_V07, UserOperation};
use tora_devnet::harness::Harness;
use tora_devnet::{SmartWallet, confirm};

pub(crate) struct Stack {
    pub h: Harness,
    pub bundler: RunningBundler,
    pub url: String,
    client: reqwest::Client,
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
    BundlerSettings::for_deployment(&h.devnet.deployment, dev_spec(h.chain_id), listen, options).unwrap()
}

impl Stack {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A stack whose bundler settings `adjust` changes first.
    pub(crate) async fn start_with(adjust: impl FnOnce(&mut BundlerSettings)) -> Self {
        let h = Harness::start().await;
        let mut settings = settings(&h);
        adjust(&mut settings);
        let bundler = tora_bundler::start(settings).await.expect("bundler starts");
        let url = format!("http://{}/", bundler.address);
        Self { h, bundler, url, client: reqwest::Client::new() }
    }

    /// The whole JSON-RPC response object.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response = self.client.post(&self.url).json(&body).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// The result of a call that must succeed.
    pub(crate) async fn ok(&self, method: &str, params: Value) -> Value {
        let response = self.call(method, params).await;
        assert!(response.get("error").is_none(), "{method} failed: {response}");
        response["result"].clone()
    }

    /// The error code of a call that must fail.
    pub(crate) async fn error_code(&self, method: &str, params: Value) -> i64 {
        let response = self.call(method, params).await;
        response["error"]["code"].as_i64().unwrap_or_else(|| panic!("{method} should fail: {response}"))
    }

    /// debug_bundler_sendBundleNow: the bundle's transaction hash, or null when there was none
    /// to send (the method answers the eth-infinitism shape, checked here once).
    pub(crate) async fn bundle_now(&self) -> Value {
        let answer = self.ok("debug_bundler_sendBundleNow", json!([])).await;
        if answer == json!("ok") {
            return Value::Null;
        }
        assert!(answer["userOpHashes"].is_array(), "{answer}");
        answer["transactionHash"].clone()
    }

    /// Sends `op` and returns the userOpHash the bundler answered.
    pub(crate) async fn send(&self, op: &UserOperation) -> Value {
        self.ok("eth_sendUserOperation", json!([op, ENTRY_POINT_V07])).await
    }

    /// A new ToraAccount (or SimpleAccount behind `factory`) with 1 ETH for its prefund.
    pub(crate) async fn funded_wallet(&self, factory: Address, salt: u64) -> SmartWallet {
        let owner = tora_devnet::keys::signer(tora_devnet::keys::WALLET_OWNER);
        let wallet = SmartWallet::at(&self.h.deployer, factory, owner, U256::from(salt)).await.unwrap();
        let tx = TransactionRequest::default()
            .with_to(wallet.address)
            .with_value(U256::from(10u64).pow(U256::from(18)));
        let pending = self.h.deployer.send_transaction(tx).await.unwrap();
        confirm(&self.h.deployer, "fund", pending).await.unwrap();
        wallet
    }

    /// The wallet's first operation (with initCode), signed.
    pub(crate) async fn first_op(&self, wallet: &SmartWallet) -> UserOperation {
        let mut op = self.h.op(wallet, true, Bytes::new()).await;
        wallet.sign_user_op(&mut op, ENTRY_POINT_V07, self.h.chain_id);
        op
    }
}

/// Milliseconds since `start`, for the figures the tests print.
pub(crate) fn ms(start: Instant) -> f64 {
    Duration::as_secs_f64(&start.elapsed()) * 1e3
}
