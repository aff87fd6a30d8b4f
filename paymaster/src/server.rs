//! Running the service: from settings (a deployment file, keys, pricing knobs) to a listening
//! HTTP server plus the settlement loop, on the in-memory store or Redis.

use crate::config::PaymasterConfig;
use crate::pricing::{CachedPrice, ChainlinkFeed, Markup};
use crate::quote::Quoter;
use crate::rpc::{PaymasterRpc, Sponsorship};
use crate::signer_key::SignerKey;
use crate::sponsorship::auth::ApiKeys;
use crate::sponsorship::{MemoryStore, RedisStore};
use crate::{app, settlement};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tora_core::Deployment;
use tora_core::sponsorship::SponsorshipStore;

pub struct PaymasterSettings {
    pub deployment: Deployment,
    pub listen: SocketAddr,
    pub markup: Markup,
    /// The feed's heartbeat: older answers are refused.
    pub heartbeat: Duration,
    /// How long one oracle read is reused.
    pub price_ttl: Duration,
    pub quote_validity: Duration,
    pub max_token_cost_per_op: tora_core::money::ToraUnits,
    /// Budgets in Redis when set, in process memory otherwise.
    pub redis_url: Option<String>,
    pub signer: SignerKey,
    /// API key secrets by key id.
    pub api_key_secrets: HashMap<String, Vec<u8>>,
    pub settlement_interval: Duration,
    /// Body, batch and per-API-key request limits of the HTTP surface.
    pub limits: tora_jsonrpc::Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid RPC URL {0}")]
    RpcUrl(String),
    #[error("the signer key {signer} is not the paymaster's signer {expected} (ToraPaymaster.signer)")]
    WrongSigner { signer: alloy::primitives::Address, expected: alloy::primitives::Address },
    #[error("cannot read the paymaster's signer from the chain: {0}")]
    Chain(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("redis: {0}")]
    Redis(String),
}

/// A started paymaster: its address and the tasks serving it.
pub struct RunningPaymaster {
    pub address: SocketAddr,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Checks the settings against the chain, then serves until the tasks are aborted.
pub async fn start(settings: PaymasterSettings) -> Result<RunningPaymaster, ServeError> {
    let d = &settings.deployment;
    let url = d.rpc_url.parse().map_err(|_| ServeError::RpcUrl(d.rpc_url.clone()))?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    // A quote signed by the wrong key would be refused on-chain: refuse to start instead.
    let expected = tora_core::contracts::ToraPaymaster::new(d.contracts.paymaster, provider.clone())
        .signer()
        .call()
        .await
        .map_err(|e| ServeError::Chain(e.to_string()))?;
    if expected != settings.signer.address() {
        return Err(ServeError::WrongSigner { signer: settings.signer.address(), expected });
    }
    match settings.redis_url.clone() {
        Some(url) => {
            let store = RedisStore::connect(&url).await.map_err(|e| ServeError::Redis(e.to_string()))?;
            serve(settings, provider, store).await
        }
        None => serve(settings, provider, MemoryStore::default()).await,
    }
}

async fn serve<S: SponsorshipStore + 'static>(
    settings: PaymasterSettings,
    provider: DynProvider,
    store: S,
) -> Result<RunningPaymaster, ServeError> {
    let d = &settings.deployment;
    let feed = ChainlinkFeed::new(provider.clone(), d.contracts.price_feed, settings.heartbeat);
    let config = PaymasterConfig {
        chain_id: d.chain_id,
        entry_point: d.contracts.entry_point,
        paymaster: d.contracts.paymaster,
        token: d.contracts.tora,
        markup: settings.markup,
        quote_validity: settings.quote_validity,
        max_token_cost_per_op: settings.max_token_cost_per_op,
        verification_gas: PaymasterConfig::DEFAULT_VERIFICATION_GAS,
        verification_gas_with_permit: PaymasterConfig::DEFAULT_VERIFICATION_GAS_WITH_PERMIT,
        post_op_gas: PaymasterConfig::DEFAULT_POST_OP_GAS,
    };
    let quoter =
        Quoter::new(config, CachedPrice::new(feed, settings.price_ttl, settings.heartbeat), settings.signer);
    let store = Arc::new(store);
    let keys = Arc::new(ApiKeys::new(&settings.api_key_secrets));
    let rpc =
        Arc::new(PaymasterRpc::new(quoter, provider.clone(), Sponsorship { store: store.clone(), keys }));
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| ServeError::Listen(settings.listen, e))?;
    let address = listener.local_addr().map_err(|e| ServeError::Listen(settings.listen, e))?;
    let router = app(rpc, settings.limits);
    let http = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "paymaster HTTP server stopped");
        }
    });
    let paymaster = d.contracts.paymaster;
    let interval = settings.settlement_interval;
    let settle =
        tokio::spawn(async move { settlement::run(store.as_ref(), &provider, paymaster, interval).await });
    tracing::info!(%address, %paymaster, "paymaster listening");
    Ok(RunningPaymaster { address, tasks: vec![http, settle] })
}
