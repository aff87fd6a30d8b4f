//! Running the bundler: from a node, a chain spec (EntryPoint, stake minimums) and a
//! listen address to an HTTP JSON-RPC server, the bundling loop and the hourly reputation
//! decay, on an in-memory pool or on one shared through Redis by every replica.

use crate::builder::{Builder, BuilderError, BuilderSettings, BundlingMode};
use crate::leases::SignerLeases;
use crate::pool::{InMemoryPool, Mempool, PoolError, PoolSettings, RedisPool};
use crate::rpc::BundlerRpc;
use crate::validation::{ValidationError, ValidationSettings, Validator};
use alloy::primitives::{Address, B256};
use alloy::providers::{Provider, ProviderBuilder};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tora_core::{ChainSpec, Deployment};
use tora_jsonrpc::Limits;
use tora_redis::{RedisTarget, replica_name};

/// What `tora bundler` / `tora up` pass in.
pub struct BundlerSettings {
    /// The node's JSON-RPC URL.
    pub rpc_url: String,
    /// The node's WebSocket URL, to follow its heads as they come (see
    /// [`ChainHead::follow`](crate::evm::head::ChainHead::follow)); `None` fetches them.
    pub ws_url: Option<String>,
    /// Signs bundles when `options.signer_keys` is empty: a devnet's `devKeys.bundler`.
    pub dev_signer_key: Option<B256>,
    /// The chain, its EntryPoint among it.
    pub chain: ChainSpec,
    /// Where the JSON-RPC server listens.
    pub listen: SocketAddr,
    /// The operator's knobs.
    pub options: BundlerOptions,
}

impl BundlerSettings {
    /// The bundler of a deployment file's chain: its node, and on a devnet its bundler key.
    /// Refuses a deployment whose EntryPoint is not the chain spec's.
    pub fn for_deployment(
        deployment: &Deployment,
        chain: ChainSpec,
        listen: SocketAddr,
        options: BundlerOptions,
    ) -> Result<Self, StartError> {
        let entry_point = deployment.contracts.entry_point;
        if entry_point != chain.entry_point {
            return Err(StartError::EntryPointMismatch { deployment: entry_point, spec: chain.entry_point });
        }
        Ok(Self {
            rpc_url: deployment.rpc_url.clone(),
            ws_url: deployment.ws_url.clone(),
            dev_signer_key: deployment.dev_keys.as_ref().map(|k| k.bundler),
            chain,
            listen,
            options,
        })
    }
}

/// Operator knobs, each with a working default.
#[derive(Clone, Debug)]
pub struct BundlerOptions {
    /// Sign bundles, one lane each (bundles in parallel, one nonce sequence per key); empty
    /// takes the deployment's `devKeys.bundler` (devnets only).
    pub signer_keys: Vec<B256>,
    /// ERC-7562 validation settings (stake minimums, time margin, EVM rules).
    pub validation: ValidationSettings,
    /// Mempool limits.
    pub pool: PoolSettings,
    /// Keep the mempool and reputation in this Redis (or Redis Cluster), shared with every
    /// replica naming the same chain and EntryPoint; `None` keeps them in this process.
    pub redis: Option<RedisTarget>,
    /// Bundle builder settings (its gas target is capped by the chain spec's max_bundle_gas).
    pub builder: BuilderSettings,
    /// The bundling mode at start: auto (on the interval) or manual (on request).
    pub bundling_mode: BundlingMode,
    /// How often auto mode tries a bundle.
    pub bundle_interval: Duration,
    /// Serve the `debug_bundler_` methods (never on a public endpoint).
    pub debug_api: bool,
    /// Validations at once; past it `eth_sendUserOperation` answers -32005 at once.
    pub max_concurrent_validations: usize,
    /// Body size, batch length and per-caller rate limits of the JSON-RPC server.
    pub limits: Limits,
}

impl Default for BundlerOptions {
    fn default() -> Self {
        Self {
            signer_keys: Vec::new(),
            validation: ValidationSettings::default(),
            pool: PoolSettings::default(),
            redis: None,
            builder: BuilderSettings::default(),
            bundling_mode: BundlingMode::Auto,
            bundle_interval: Duration::from_secs(1),
            debug_api: false,
            // Each validation holds a blocking thread for its EVM and waits on the node.
            max_concurrent_validations: 64,
            limits: Limits::default(),
        }
    }
}

/// Why the bundler could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No bundler key was given and the deployment has no devnet key.
    #[error("no bundler key: pass --bundler-key, or use a deployment file with devKeys")]
    NoSigningKey,
    /// The deployment file's EntryPoint differs from the chain spec's.
    #[error("the deployment's EntryPoint {deployment} is not the chain spec's {spec}")]
    EntryPointMismatch {
        /// The deployment file's EntryPoint.
        deployment: Address,
        /// The chain spec's EntryPoint.
        spec: Address,
    },
    /// The validator could not start (bad URL, unreachable node, wrong chain id).
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The builder could not start (bad URL or keys).
    #[error(transparent)]
    Builder(#[from] BuilderError),
    /// The shared mempool's Redis could not be reached or holds an unreadable pool.
    #[error("mempool: {0}")]
    Pool(#[source] Box<PoolError>),
    /// The server could not bind this address.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// A started bundler: where it listens and the tasks serving it (abort them to stop it).
pub struct RunningBundler {
    /// The address the JSON-RPC server is bound to.
    pub address: SocketAddr,
    /// The account of the first key: it signs bundles and collects their fees.
    pub bundler_address: Address,
    /// Every key's account, in the order of `signer_keys`.
    pub bundler_addresses: Vec<Address>,
    /// The HTTP server, the bundling loop and the reputation decay; aborting them stops the
    /// bundler at once ([`RunningBundler::stop`] drains first).
    pub tasks: Vec<JoinHandle<()>>,
    /// Stops the HTTP server taking requests.
    drain: tora_telemetry::Drain,
    /// The signer leases in Redis, given back on stop so another replica takes the keys.
    leases: Option<Arc<SignerLeases>>,
}

impl RunningBundler {
    /// Stops taking operations, lets calls in flight (a send validating, a sendBundleNow
    /// waiting for its bundle) finish, at most [`tora_telemetry::DRAIN_WAIT`], then stops
    /// bundling. Bundles already sent land without it; a restart finds them by the lanes'
    /// nonces.
    pub async fn stop(self) {
        let Self { mut tasks, drain, leases, .. } = self;
        let http = tasks.remove(0);
        tora_telemetry::stop_serving(&drain, http, &tasks).await;
        if let Some(leases) = leases {
            leases.give_back().await;
        }
    }
}

/// ERC-7562 reputation decays once an hour.
const REPUTATION_DECAY_INTERVAL: Duration = Duration::from_secs(3_600);

/// Checks the settings against the node (chain id, EntryPoint), then serves until the tasks
/// are aborted.
pub async fn start(settings: BundlerSettings) -> Result<RunningBundler, StartError> {
    match settings.options.redis.clone() {
        None => {
            let pool = Arc::new(InMemoryPool::new(settings.options.pool));
            start_on(settings, pool).await
        }
        Some(target) => {
            let pool = RedisPool::connect(
                &target,
                settings.chain.id,
                settings.chain.entry_point,
                settings.options.pool,
            )
            .await
            .map_err(|e| StartError::Pool(Box::new(e)))?;
            start_on(settings, pool).await
        }
    }
}

async fn start_on<P: Mempool>(settings: BundlerSettings, pool: Arc<P>) -> Result<RunningBundler, StartError> {
    let BundlerSettings { rpc_url, ws_url, dev_signer_key, chain, listen, options } = settings;
    let entry_point = chain.entry_point;
    let keys = match (&options.signer_keys[..], dev_signer_key) {
        ([], Some(dev)) => vec![dev],
        ([], None) => return Err(StartError::NoSigningKey),
        (keys, _) => keys.to_vec(),
    };
    // Refuses a node whose chain id is not the spec's: every userOpHash would be wrong.
    let validator = Arc::new(Validator::new(&rpc_url, &chain, options.validation.clone()).await?);
    let mut builder_settings = options.builder.clone();
    builder_settings.max_bundle_gas = builder_settings.max_bundle_gas.min(chain.max_bundle_gas);
    let mut builder = Builder::new(
        &rpc_url,
        &keys,
        entry_point,
        pool.clone(),
        validator.clone(),
        builder_settings,
        options.bundling_mode,
    )?;
    let leases = match &options.redis {
        Some(target) => {
            let leases = SignerLeases::in_redis(target, chain.id, replica_name(), &builder.addresses())
                .await
                .map_err(|e| StartError::Pool(Box::new(PoolError::Store(e.to_string()))))?;
            builder = builder.with_leases(leases.clone());
            Some(leases)
        }
        None => None,
    };
    let builder = Arc::new(builder);
    let client = crate::node::client(&rpc_url).map_err(|e| BuilderError::Url(e.0))?;
    let provider = ProviderBuilder::new().connect_client(client).erased();
    let head = validator.head().clone();
    let estimator =
        crate::estimation::Estimator::new(provider.clone(), &chain, &options.validation, head.clone());
    let rpc = Arc::new(BundlerRpc {
        chain_id: chain.id,
        entry_point,
        validator,
        pool: pool.clone(),
        builder: builder.clone(),
        estimator: Arc::new(estimator),
        provider,
        validations: Arc::new(Semaphore::new(options.max_concurrent_validations.max(1))),
        debug_api: options.debug_api,
        stake_rule: (&options.validation).into(),
    });
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| StartError::Listen(listen, e))?;
    let address = listener.local_addr().map_err(|e| StartError::Listen(listen, e))?;
    let router = tora_jsonrpc::router(rpc, options.limits);
    let (http, drain) = tora_telemetry::serve(listener, router, "bundler");
    let bundler_address = builder.address();
    let bundler_addresses = builder.addresses();
    let claims = tokio::spawn(builder.clone().keep_claims());
    let bundling = tokio::spawn(bundle_on_interval(builder, options.bundle_interval));
    let decay = tokio::spawn(decay_reputation(pool));
    let mut tasks = vec![http, bundling, claims, decay];
    if let Some(ws_url) = ws_url {
        tasks.push(tokio::spawn(async move { head.follow(&ws_url).await }));
    }
    tracing::info!(%address, %entry_point, bundler = %bundler_address, "bundler listening");
    Ok(RunningBundler { address, bundler_address, bundler_addresses, tasks, drain, leases })
}

async fn bundle_on_interval<P: Mempool>(builder: Arc<Builder<P>>, every: Duration) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // In manual mode too: bundles sent on request still need following block by block.
        if let Err(e) = builder.on_tick().await {
            tracing::warn!(error = %e, "bundle attempt failed");
        }
    }
}

async fn decay_reputation<P: Mempool>(pool: Arc<P>) {
    let mut ticks = tokio::time::interval(REPUTATION_DECAY_INTERVAL);
    // The first tick is immediate; decay starts an hour after start.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        pool.decay_reputation().await;
    }
}
