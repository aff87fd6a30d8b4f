//! `tora bundler`: the ERC-4337 bundler for a deployment.

use alloy::primitives::{B256, U256};
use std::net::SocketAddr;
use std::path::PathBuf;
use tora_bundler::builder::BuilderSettings;
use tora_bundler::evm::StateReads;
use tora_bundler::validation::Wei;
use tora_bundler::{BundlerOptions, BundlerSettings, RunningBundler, ValidationSettings};
use tora_core::{ChainSpec, Deployment};

#[derive(clap::Args, Clone)]
pub(crate) struct BundlerFlags {
    #[arg(long = "bundler-listen", default_value = "127.0.0.1:4337", env = "TORA_BUNDLER_LISTEN")]
    pub bundler_listen: SocketAddr,
    /// Serve the debug_bundler_* methods (never on a public endpoint).
    #[arg(long, env = "TORA_BUNDLER_DEBUG_API")]
    pub debug_api: bool,
    /// Bundle only on debug_bundler_sendBundleNow instead of on an interval.
    #[arg(long)]
    pub manual_bundling: bool,
    /// Keys that sign bundles, comma-separated or repeated; each sends its own bundles in
    /// parallel. Default: the deployment's devKeys.bundler.
    #[arg(long = "bundler-key", env = "TORA_BUNDLER_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub bundler_keys: Vec<B256>,
    /// How often auto mode builds bundles, in milliseconds: shorter sends smaller bundles
    /// sooner, at the cost of more transactions (each pays its own intrinsic gas).
    #[arg(long, default_value_t = BundlerOptions::default().bundle_interval.as_millis() as u64, env = "TORA_BUNDLE_INTERVAL_MS")]
    pub bundle_interval_ms: u64,
    /// Resubmit a bundle with 10%+ higher fees when this many blocks pass without it.
    #[arg(long, default_value_t = BuilderSettings::default().resubmit_after_blocks)]
    pub resubmit_after_blocks: u64,
    /// Resubmissions of a stuck bundle before it is cancelled.
    #[arg(long, default_value_t = BuilderSettings::default().max_resubmissions)]
    pub max_resubmissions: u32,
    /// The highest maxFeePerGas a resubmission may pay, in wei.
    #[arg(long, default_value_t = BuilderSettings::default().max_fee_per_gas_cap)]
    pub max_fee_per_gas_cap: u128,
    /// ERC-7562 MIN_STAKE_VALUE in wei of the native coin (default: the chain spec's).
    #[arg(long, env = "TORA_MIN_STAKE_WEI")]
    pub min_stake_wei: Option<U256>,
    /// ERC-7562 MIN_UNSTAKE_DELAY in seconds (default: the chain spec's).
    #[arg(long, env = "TORA_MIN_UNSTAKE_DELAY")]
    pub min_unstake_delay: Option<u64>,
    /// Accept an unstaked paymaster that returns a context, as the v0.7-era ERC-7562 did (the
    /// current text's EREP-050 refuses it; the v0.7 compatibility suite expects acceptance).
    #[arg(long)]
    pub allow_unstaked_paymaster_context: bool,
    /// How simulations read the node's state: `proofs` (one eth_getProof per address, the fewest
    /// calls, for nodes billed per call) or `fields` (balance, nonce, code and each slot apart:
    /// more calls, each cheaper for the node to answer). Default: the chain spec's
    /// `state_proofs` (proofs on every chain but the anvil devnet).
    #[arg(long, value_enum, env = "TORA_NODE_READS")]
    pub node_reads: Option<NodeReads>,
    /// Keep the mempool and reputation in Redis, shared by every bundler replica on it:
    /// `redis://host:port`, or a Redis Cluster as `redis+cluster://host:port` or several
    /// comma-separated seed URLs. Default: in this process.
    #[arg(long = "bundler-redis-url", env = "TORA_BUNDLER_REDIS_URL")]
    pub bundler_redis_url: Option<String>,
    /// The most operations the mempool holds; past it the lowest effective fee is evicted.
    #[arg(long, default_value_t = tora_bundler::pool::PoolSettings::default().max_operations)]
    pub max_pool_operations: usize,
}

/// `--node-reads`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum NodeReads {
    /// One eth_getProof per address.
    Proofs,
    /// One call per field and slot.
    Fields,
}

#[derive(clap::Args)]
pub(crate) struct BundlerArgs {
    /// The deployment file (`tora devnet` writes one): its node, and on a devnet its bundler key.
    #[arg(long, default_value = ".tora/devnet.json", env = "TORA_DEPLOYMENT")]
    pub deployment: PathBuf,
    /// Run against this node instead of a deployment file's (any chain with the EntryPoint;
    /// needs --bundler-key).
    #[arg(long, env = "TORA_NODE_URL")]
    pub node_url: Option<String>,
    /// The node's WebSocket endpoint, where the bundler follows new heads as they come instead
    /// of asking for them before validations (default: the deployment file's `wsUrl`; none
    /// with --node-url).
    #[arg(long, env = "TORA_NODE_WS_URL")]
    pub node_ws_url: Option<String>,
    /// Chain spec: dev, opbnb, opbnb-testnet, bsc, tensora, or a path to a .toml file.
    #[arg(long, default_value = "dev", env = "TORA_CHAIN")]
    pub chain: String,
    /// Override the chain spec's id (Tensora's is set per deployment).
    #[arg(long, env = "TORA_CHAIN_ID")]
    pub chain_id: Option<u64>,
    #[command(flatten)]
    pub flags: BundlerFlags,
}

/// The operator's settings over the chain spec's.
fn options(chain: &ChainSpec, flags: &BundlerFlags) -> BundlerOptions {
    let builder = BuilderSettings {
        resubmit_after_blocks: flags.resubmit_after_blocks,
        max_resubmissions: flags.max_resubmissions,
        max_fee_per_gas_cap: flags.max_fee_per_gas_cap,
        ..Default::default()
    };
    let mut validation = ValidationSettings::for_chain(chain);
    if let Some(wei) = flags.min_stake_wei {
        validation.min_stake = Wei(wei);
    }
    if let Some(secs) = flags.min_unstake_delay {
        validation.min_unstake_delay_secs = secs;
    }
    validation.unstaked_paymaster_context = flags.allow_unstaked_paymaster_context;
    match flags.node_reads {
        Some(NodeReads::Proofs) => validation.state_reads = StateReads::Proofs,
        Some(NodeReads::Fields) => validation.state_reads = StateReads::Fields,
        None => {}
    }
    let mut options = BundlerOptions {
        debug_api: flags.debug_api,
        signer_keys: flags.bundler_keys.clone(),
        redis: flags.bundler_redis_url.as_deref().map(tora_bundler::RedisTarget::parse),
        pool: tora_bundler::pool::PoolSettings {
            max_operations: flags.max_pool_operations,
            ..Default::default()
        },
        builder,
        validation,
        bundle_interval: std::time::Duration::from_millis(flags.bundle_interval_ms),
        ..Default::default()
    };
    if flags.manual_bundling {
        options.bundling_mode = tora_bundler::builder::BundlingMode::Manual;
    }
    options
}

/// The bundler of a deployment (`tora up`, or `tora bundler` with a deployment file).
pub(crate) async fn start_for(
    deployment: Deployment,
    chain: ChainSpec,
    flags: &BundlerFlags,
) -> anyhow::Result<RunningBundler> {
    let mut options = options(&chain, flags);
    // A devnet of ours (its dev bundler key is anvil's account 1): four lanes, unless keys
    // were given.
    if options.signer_keys.is_empty()
        && deployment.dev_keys.as_ref().is_some_and(|k| k.bundler == tora_devnet::keys::BUNDLER)
    {
        options.signer_keys = std::iter::once(tora_devnet::keys::BUNDLER)
            .chain(tora_devnet::keys::MORE_BUNDLER_LANES)
            .collect();
    }
    let settings = BundlerSettings::for_deployment(&deployment, chain, flags.bundler_listen, options)?;
    Ok(tora_bundler::start(settings).await?)
}

pub(crate) async fn run(args: BundlerArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    let mut chain = ChainSpec::load(&args.chain)?;
    if let Some(id) = args.chain_id {
        chain = chain.with_id(id);
    }
    let running = match args.node_url {
        Some(rpc_url) => {
            let options = options(&chain, &args.flags);
            let listen = args.flags.bundler_listen;
            let settings = BundlerSettings {
                rpc_url,
                ws_url: args.node_ws_url,
                dev_signer_key: None,
                chain,
                listen,
                options,
            };
            tora_bundler::start(settings).await?
        }
        None => {
            let mut deployment = Deployment::read(&args.deployment)?;
            if args.node_ws_url.is_some() {
                deployment.ws_url = args.node_ws_url;
            }
            start_for(deployment, chain, &args.flags).await?
        }
    };
    let signers: Vec<String> = running.bundler_addresses.iter().map(|a| a.to_string()).collect();
    println!("bundler: http://{} (bundles signed by {})", running.address, signers.join(", "));
    let signal = stop.requested().await;
    tracing::info!(signal, "stopping");
    running.stop().await;
    Ok(())
}
