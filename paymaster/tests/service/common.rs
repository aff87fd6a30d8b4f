//! Starting the paymaster service on a devnet and calling it, for every test of this binary.

use alloy::primitives::{Address, U128, U256};
use alloy::providers::Provider;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tora_core::money::ToraUnits;
use tora_core::pre_verification_gas::required_pre_verification_gas;
use tora_core::{ENTRY_POINT_V07, UserOperation};
use tora_devnet::harness::{Harness, tora};
use tora_devnet::keys;
use tora_paymaster::config::TokenLimits;
use tora_paymaster::gas_bounds::GasBounds;
use tora_paymaster::pricing::{CachedPrice, ChainlinkFeed, CrossChecked, Markup, Oracle};
use tora_paymaster::quote::Quoter;
use tora_paymaster::signer_key::SignerKey;
use tora_paymaster::sponsorship::MemoryStore;
use tora_paymaster::sponsorship::auth::{ApiKeys, Claims, Role, issue};
use tora_paymaster::{PaymasterConfig, PaymasterRpc, Sponsorship};

pub(crate) const KEY_ID: &str = "2026-11";
pub(crate) const KEY_SECRET: &[u8] = b"test api key secret";

pub(crate) fn api_key(sub: &str, role: Role) -> String {
    issue(KEY_ID, KEY_SECRET, &Claims { sub: sub.into(), exp: 4_000_000_000, role })
}

pub(crate) async fn start_service(h: &Harness, heartbeat: Duration) -> String {
    start_service_with(h, heartbeat, Arc::new(MemoryStore::default())).await
}

pub(crate) async fn start_service_with(h: &Harness, heartbeat: Duration, store: Arc<MemoryStore>) -> String {
    start_configured(h, Service { heartbeat, store, ..Service::default() }).await
}

/// What a test service is started with, beyond the devnet's deployment.
pub(crate) struct Service {
    pub heartbeat: Duration,
    pub store: Arc<MemoryStore>,
    /// A second feed and the largest deviation allowed from it.
    pub second_feed: Option<(Address, Decimal)>,
    pub token_limits: TokenLimits,
    pub limits: tora_jsonrpc::Limits,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(3_600),
            store: Arc::new(MemoryStore::default()),
            second_feed: None,
            token_limits: TokenLimits::none(),
            limits: Default::default(),
        }
    }
}

pub(crate) async fn start_configured(h: &Harness, service: Service) -> String {
    let d = &h.devnet.deployment;
    let heartbeat = service.heartbeat;
    let feed = |address| ChainlinkFeed::new(h.deployer.clone(), address, heartbeat);
    let oracle = match service.second_feed {
        None => Oracle::Single(feed(d.contracts.price_feed)),
        Some((second, max_deviation)) => Oracle::CrossChecked(CrossChecked {
            primary: feed(d.contracts.price_feed),
            secondary: feed(second),
            max_deviation,
        }),
    };
    let price = CachedPrice::new(oracle, Duration::from_millis(200), heartbeat);
    let config = PaymasterConfig {
        chain_id: d.chain_id,
        entry_point: ENTRY_POINT_V07,
        paymaster: d.contracts.paymaster,
        token: d.contracts.tora,
        gas_price_oracle: None,
        markup: Markup::new(Decimal::from_str("0.05").unwrap()).unwrap(),
        quote_validity: Duration::from_secs(120),
        max_token_cost_per_op: ToraUnits(tora(1_000)),
        gas_bounds: GasBounds::default(),
        token_limits: service.token_limits,
        verification_gas: PaymasterConfig::DEFAULT_VERIFICATION_GAS,
        verification_gas_with_permit: PaymasterConfig::DEFAULT_VERIFICATION_GAS_WITH_PERMIT,
        post_op_gas: PaymasterConfig::DEFAULT_POST_OP_GAS,
    };
    let signer = SignerKey::from_hex(&keys::PAYMASTER_SIGNER.to_string()).unwrap();
    let keys = ApiKeys::new(&HashMap::from([(KEY_ID.to_owned(), KEY_SECRET.to_vec())]));
    let sponsorship = Sponsorship { store: service.store, keys: Arc::new(keys) };
    let rpc = PaymasterRpc::new(Quoter::new(config, price, signer), h.deployer.clone(), sponsorship);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = tora_paymaster::app(Arc::new(rpc), service.limits);
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// The base fee of the newest block.
pub(crate) async fn base_fee(h: &Harness) -> u64 {
    let block = h.deployer.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await.unwrap().unwrap();
    block.header.base_fee_per_gas.unwrap()
}

/// Gives `op` what an honest wallet sends after estimation: a 1 gwei tip, a max fee of twice
/// the base fee plus the tip (what the bundler's own bundle offers, so it includes the op), and the bundler's own preVerificationGas for it carrying `paymaster_data_len` bytes of
/// paymaster data. Returns that preVerificationGas.
pub(crate) async fn fit_gas(h: &Harness, op: &mut UserOperation, paymaster_data_len: usize) -> U256 {
    let tip = 1_000_000_000u64;
    op.max_priority_fee_per_gas = U128::from(tip);
    op.max_fee_per_gas = U128::from(2 * base_fee(h).await + tip);
    op.pre_verification_gas = bundler_pre_verification_gas(h, op, paymaster_data_len);
    op.pre_verification_gas
}

/// `tora_core`'s formula, the bundler's and the paymaster's, for `op` pointed at the paymaster.
pub(crate) fn bundler_pre_verification_gas(
    h: &Harness,
    op: &UserOperation,
    paymaster_data_len: usize,
) -> U256 {
    let shaped = UserOperation {
        paymaster: Some(h.contracts().paymaster),
        paymaster_verification_gas_limit: Some(U128::from(1u8)),
        paymaster_post_op_gas_limit: Some(U128::from(1u8)),
        paymaster_data: Some(vec![0xff; paymaster_data_len].into()),
        ..op.clone()
    };
    required_pre_verification_gas(&shaped, None)
}

/// One JSON-RPC call through the workspace's client: `Ok(result)` or `Err(error object)`.
pub(crate) async fn call(url: &str, method: &str, params: Value) -> Result<Value, Value> {
    call_with_key(url, None, method, params).await
}

/// A hex string field of an answer, as bytes.
pub(crate) fn hex_bytes(value: &Value) -> alloy::primitives::Bytes {
    value.as_str().unwrap().parse().unwrap()
}

pub(crate) async fn call_with_key(
    url: &str,
    key: Option<&str>,
    method: &str,
    params: Value,
) -> Result<Value, Value> {
    let client = tora_jsonrpc::Client::new(url);
    let client = match key {
        Some(key) => client.with_api_key(key),
        None => client,
    };
    match client.raw(method, params).await {
        Ok(result) => Ok(result),
        Err(tora_jsonrpc::CallError::Rpc(error)) => Err(serde_json::to_value(error).unwrap()),
        Err(other) => panic!("{method}: {other}"),
    }
}

/// The deployer as a sponsor with 100 TORA deposited in the paymaster, and an open policy `id`
/// of its for dapp-1 in `store`; the sponsor's address.
pub(crate) async fn open_sponsorship<S: tora_core::sponsorship::SponsorshipStore>(
    h: &Harness,
    store: &S,
    id: &str,
) -> Address {
    use tora_core::sponsorship::{Budget, ResetInterval, SponsorshipPolicy};
    let sponsor = h.deployer_address();
    let paymaster = h.contracts().paymaster;
    let approve = h.tora().approve(paymaster, tora(100)).send().await.unwrap();
    tora_devnet::confirm(&h.deployer, "approve", approve).await.unwrap();
    let pending = h.paymaster().depositForSponsor(sponsor, tora(100)).send().await.unwrap();
    tora_devnet::confirm(&h.deployer, "deposit", pending).await.unwrap();
    let policy = SponsorshipPolicy {
        id: id.into(),
        name: id.into(),
        icon: None,
        dapp: "dapp-1".into(),
        sponsor,
        budget: Budget::default(),
        reset: ResetInterval::Never,
        allowed_targets: vec![],
        allowed_selectors: vec![],
        valid_after: 0,
        valid_until: 4_000_000_000,
    };
    store.put_policy(&policy).await.unwrap();
    sponsor
}
