//! Running the service: from settings (a deployment file, keys, pricing knobs) to a listening
//! HTTP server plus the settlement loop, on the in-memory store or Redis.

use crate::config::{PaymasterConfig, TokenLimits};
use crate::gas_bounds::GasBounds;
use crate::pricing::{CachedPrice, ChainlinkFeed, CrossChecked, Markup, Oracle};
use crate::quote::Quoter;
use crate::rpc::{PaymasterRpc, Sponsorship};
use crate::settlement::SettlementSettings;
use crate::signer_key::SignerKey;
use crate::sponsorship::auth::ApiKeys;
use crate::sponsorship::{MemoryStore, RedisStore};
use crate::{admin_app, app, public_app, settlement};
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tora_core::chain_spec::DaFee;
use tora_core::sponsorship::SponsorshipStore;
use tora_core::{ChainSpec, Deployment};

/// Everything [`start`] needs to run one paymaster: the deployment, keys and operator settings.
pub struct PaymasterSettings {
    /// The deployed contracts, chain and node URL served.
    pub deployment: Deployment,
    /// The address the HTTP server binds.
    pub listen: SocketAddr,
    /// Where `/admin` listens on its own; `None` serves it on `listen` with the rest.
    pub admin_listen: Option<SocketAddr>,
    /// The margin added to the oracle rate.
    pub markup: Markup,
    /// The feed's heartbeat: older answers are refused.
    pub heartbeat: Duration,
    /// A second source the price must agree with.
    pub second_feed: Option<SecondFeed>,
    /// How long one oracle read is reused.
    pub price_ttl: Duration,
    /// How long a signed quote stays valid; must be shorter than ToraPaymaster's sponsor
    /// withdrawal delay.
    pub quote_validity: Duration,
    /// The most TORA (base units) one operation may be quoted.
    pub max_token_cost_per_op: tora_core::money::ToraUnits,
    /// Caps on the gas fields and fees a quote signs.
    pub gas_bounds: GasBounds,
    /// Token mode's per-sender and global limits.
    pub token_limits: TokenLimits,
    /// Budgets in Redis when set, in process memory otherwise.
    pub redis_url: Option<String>,
    /// The quote-signing key; must be ToraPaymaster's `signer` on chain.
    pub signer: SignerKey,
    /// API key secrets by key id.
    pub api_key_secrets: HashMap<String, Vec<u8>>,
    /// How often settlement reads new blocks for charges and expired quotes.
    pub settlement_interval: Duration,
    /// Blocks settlement waits below the head before reading one.
    pub confirmations: u64,
    /// Body, batch and per-API-key request limits of the HTTP surface.
    pub limits: tora_jsonrpc::Limits,
}

/// A second AggregatorV3 feed (TORA in the native coin, the same as the first) and how far
/// the two may differ.
#[derive(Clone, Copy, Debug)]
pub struct SecondFeed {
    /// The second feed's contract.
    pub address: Address,
    /// Largest accepted relative difference, e.g. `0.02` for 2%.
    pub max_deviation: Decimal,
}

/// Why the paymaster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The deployment's node URL does not parse.
    #[error("invalid RPC URL {0}")]
    RpcUrl(String),
    /// The signer key is not the one ToraPaymaster checks quotes against.
    #[error("the signer key {signer} is not the paymaster's signer {expected} (ToraPaymaster.signer)")]
    WrongSigner {
        /// The configured key's address.
        signer: alloy::primitives::Address,
        /// ToraPaymaster's `signer` on chain.
        expected: alloy::primitives::Address,
    },
    /// Reading ToraPaymaster's signer or withdrawal delay from the node failed.
    #[error("cannot read the paymaster's signer from the chain: {0}")]
    Chain(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// Connecting to the Redis sponsorship store failed.
    #[error("redis: {0}")]
    Redis(String),
    /// The deployment's chain spec (its name) could not be loaded.
    #[error("chain spec {0:?} of the deployment: {1}")]
    ChainSpec(String, String),
    /// Settlement could not set its starting block cursor.
    #[error("settlement cannot start: {0}")]
    Settlement(String),
    /// Quotes would stay valid as long as ToraPaymaster's sponsor withdrawal delay or longer.
    #[error(
        "quotes valid for {validity:?} would outlive a sponsor's withdrawal delay of {delay} s: an operation quoted before the request could then fail in a bundle"
    )]
    QuotesOutliveWithdrawal {
        /// The configured quote validity.
        validity: std::time::Duration,
        /// ToraPaymaster's SPONSOR_WITHDRAWAL_DELAY, in seconds.
        delay: u64,
    },
}

/// A started paymaster: its address and the tasks serving it.
pub struct RunningPaymaster {
    /// The address the HTTP server listens on.
    pub address: SocketAddr,
    /// The address `/admin` listens on, when it has its own.
    pub admin_address: Option<SocketAddr>,
    /// Stop the public server (and the admin one) taking requests.
    drains: Vec<tora_telemetry::Drain>,
    /// The public HTTP server first, then the admin one and the settlement loop; aborting them
    /// stops the service at once ([`RunningPaymaster::stop`] drains first).
    pub tasks: Vec<JoinHandle<()>>,
}

impl RunningPaymaster {
    /// Stops taking requests, lets those in flight finish (at most
    /// [`tora_telemetry::DRAIN_WAIT`]), then stops settlement: it resumes from its cursor on
    /// the next start.
    pub async fn stop(self) {
        let Self { mut tasks, drains, .. } = self;
        for drain in &drains[1..] {
            drain.start();
        }
        let http = tasks.remove(0);
        tora_telemetry::stop_serving(&drains[0], http, &tasks).await;
    }
}

/// Checks the settings against the chain, then serves until the tasks are aborted.
pub async fn start(settings: PaymasterSettings) -> Result<RunningPaymaster, ServeError> {
    let d = &settings.deployment;
    let client =
        tora_core::node_client::client(&d.rpc_url).map_err(|_| ServeError::RpcUrl(d.rpc_url.clone()))?;
    let provider = ProviderBuilder::new().connect_client(client).erased();
    // A quote signed by the wrong key would be refused on-chain: refuse to start instead.
    let expected = tora_core::contracts::ToraPaymaster::new(d.contracts.paymaster, provider.clone())
        .signer()
        .call()
        .await
        .map_err(|e| ServeError::Chain(e.to_string()))?;
    if expected != settings.signer.address() {
        return Err(ServeError::WrongSigner { signer: settings.signer.address(), expected });
    }
    let delay: u64 = tora_core::contracts::ToraPaymaster::new(d.contracts.paymaster, provider.clone())
        .SPONSOR_WITHDRAWAL_DELAY()
        .call()
        .await
        .map_err(|e| ServeError::Chain(e.to_string()))?
        .saturating_to();
    if settings.quote_validity.as_secs() >= delay {
        return Err(ServeError::QuotesOutliveWithdrawal { validity: settings.quote_validity, delay });
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
    let chain =
        ChainSpec::load(&d.chain).map_err(|e| ServeError::ChainSpec(d.chain.clone(), e.to_string()))?;
    let config = PaymasterConfig {
        chain_id: d.chain_id,
        entry_point: d.contracts.entry_point,
        paymaster: d.contracts.paymaster,
        token: d.contracts.tora,
        gas_price_oracle: match chain.da_fee {
            DaFee::None => None,
            DaFee::OpStack { gas_price_oracle } => Some(gas_price_oracle),
        },
        markup: settings.markup,
        quote_validity: settings.quote_validity,
        max_token_cost_per_op: settings.max_token_cost_per_op,
        gas_bounds: settings.gas_bounds,
        token_limits: settings.token_limits,
        verification_gas: PaymasterConfig::DEFAULT_VERIFICATION_GAS,
        verification_gas_with_permit: PaymasterConfig::DEFAULT_VERIFICATION_GAS_WITH_PERMIT,
        post_op_gas: PaymasterConfig::DEFAULT_POST_OP_GAS,
    };
    let oracle = oracle(&settings, &provider);
    let quoter = Quoter::new(
        config,
        CachedPrice::new(oracle, settings.price_ttl, settings.heartbeat),
        settings.signer,
    );
    let store = Arc::new(store);
    let settlement = SettlementSettings {
        paymaster: d.contracts.paymaster,
        interval: settings.settlement_interval,
        confirmations: settings.confirmations,
    };
    // Before the first quote: a store without a cursor starts it here, one with a cursor
    // resumes after it.
    settlement::start_cursor(store.as_ref(), &provider, settlement.confirmations)
        .await
        .map_err(ServeError::Settlement)?;
    let keys = Arc::new(ApiKeys::new(&settings.api_key_secrets));
    let rpc =
        Arc::new(PaymasterRpc::new(quoter, provider.clone(), Sponsorship { store: store.clone(), keys }));
    let mut tasks = Vec::new();
    let (router, admin) = match settings.admin_listen {
        None => (app(rpc, settings.limits), None),
        Some(admin_listen) => {
            let (admin_address, admin, admin_drain) =
                serve_http(admin_listen, admin_app(&rpc), "admin").await?;
            tasks.push(admin);
            (public_app(rpc, settings.limits), Some((admin_address, admin_drain)))
        }
    };
    let (address, http, drain) = serve_http(settings.listen, router, "public").await?;
    tasks.insert(0, http);
    let paymaster = d.contracts.paymaster;
    tasks.push(tokio::spawn(async move { settlement::run(store.as_ref(), &provider, settlement).await }));
    let (admin_address, admin_drain) = admin.unzip();
    tracing::info!(%address, ?admin_address, %paymaster, "paymaster listening");
    Ok(RunningPaymaster {
        address,
        admin_address,
        tasks,
        drains: std::iter::once(drain).chain(admin_drain).collect(),
    })
}

/// Binds `listen` and serves `router` there until drained.
async fn serve_http(
    listen: SocketAddr,
    router: axum::Router,
    surface: &'static str,
) -> Result<(SocketAddr, JoinHandle<()>, tora_telemetry::Drain), ServeError> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| ServeError::Listen(listen, e))?;
    let address = listener.local_addr().map_err(|e| ServeError::Listen(listen, e))?;
    let (task, drain) = tora_telemetry::serve(listener, router, surface);
    Ok((address, task, drain))
}

/// The deployment's feed, cross-checked against the second one when configured.
fn oracle(settings: &PaymasterSettings, provider: &DynProvider) -> Oracle {
    let feed = |address| ChainlinkFeed::new(provider.clone(), address, settings.heartbeat);
    let primary = feed(settings.deployment.contracts.price_feed);
    match settings.second_feed {
        None => Oracle::Single(primary),
        Some(second) => Oracle::CrossChecked(CrossChecked {
            primary,
            secondary: feed(second.address),
            max_deviation: second.max_deviation,
        }),
    }
}
