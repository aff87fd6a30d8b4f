//! Starting the paymaster service on a devnet and calling it, for every test of this binary.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tora_core::ENTRY_POINT_V07;
use tora_core::money::ToraUnits;
use tora_devnet::harness::{Harness, tora};
use tora_devnet::keys;
use tora_paymaster::pricing::{CachedPrice, ChainlinkFeed, Markup};
use tora_paymaster::quote::Quoter;
use tora_paymaster::signer_key::SignerKey;
use tora_paymaster::sponsorship::MemoryStore;
use tora_paymaster::sponsorship::auth::{ApiKeys, Claims, Role, issue};
use tora_paymaster::{PaymasterConfig, PaymasterRpc, Sponsorship};

const KEY_ID: &str = "2026-11";
const KEY_SECRET: &[u8] = b"test api key secret";

pub fn api_key(sub: &str, role: Role) -> String {
    issue(KEY_ID, KEY_SECRET, &Claims { sub: sub.into(), exp: 4_000_000_000, role })
}

pub async fn start_service(h: &Harness, heartbeat: Duration) -> String {
    start_service_with(h, heartbeat, Arc::new(MemoryStore::default())).await
}

pub async fn start_service_with(h: &Harness, heartbeat: Duration, store: Arc<MemoryStore>) -> String {
    let d = &h.devnet.deployment;
    let feed = ChainlinkFeed::new(h.deployer.clone(), d.contracts.price_feed, heartbeat);
    let price = CachedPrice::new(feed, Duration::from_millis(200), heartbeat);
    let config = PaymasterConfig {
        chain_id: d.chain_id,
        entry_point: ENTRY_POINT_V07,
        paymaster: d.contracts.paymaster,
        token: d.contracts.tora,
        markup: Markup::new(Decimal::from_str("0.05").unwrap()).unwrap(),
        quote_validity: Duration::from_secs(600),
        max_token_cost_per_op: ToraUnits(tora(1_000)),
        verification_gas: PaymasterConfig::DEFAULT_VERIFICATION_GAS,
        verification_gas_with_permit: PaymasterConfig::DEFAULT_VERIFICATION_GAS_WITH_PERMIT,
        post_op_gas: PaymasterConfig::DEFAULT_POST_OP_GAS,
    };
    let signer = SignerKey::from_hex(&keys::PAYMASTER_SIGNER.to_string()).unwrap();
    let keys = ApiKeys::new(&HashMap::from([(KEY_ID.to_owned(), KEY_SECRET.to_vec())]));
    let sponsorship = Sponsorship { store, keys: Arc::new(keys) };
    let rpc = PaymasterRpc::new(Quoter::new(config, price, signer), h.deployer.clone(), sponsorship);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = tora_paymaster::app(Arc::new(rpc), Default::default());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// One JSON-RPC call: `Ok(result)` or `Err(error object)`.
pub async fn call(url: &str, method: &str, params: Value) -> Result<Value, Value> {
    call_with_key(url, None, method, params).await
}

pub async fn call_with_key(
    url: &str,
    key: Option<&str>,
    method: &str,
    params: Value,
) -> Result<Value, Value> {
    let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let mut builder = reqwest::Client::new().post(url).json(&request);
    if let Some(key) = key {
        builder = builder.bearer_auth(key);
    }
    let response: Value = builder.send().await.unwrap().json().await.unwrap();
    match response.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(response["result"].clone()),
    }
}
