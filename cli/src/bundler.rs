//! `tora bundler`: the ERC-4337 bundler for a deployment.

use alloy::primitives::B256;
use std::net::SocketAddr;
use std::path::PathBuf;
use tora_bundler::builder::BuilderSettings;
use tora_bundler::{BundlerOptions, BundlerSettings, RunningBundler};
use tora_core::{ChainSpec, Deployment};

#[derive(clap::Args, Clone)]
pub struct BundlerFlags {
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
    /// Resubmit a bundle with 10%+ higher fees when this many blocks pass without it.
    #[arg(long, default_value_t = BuilderSettings::default().resubmit_after_blocks)]
    pub resubmit_after_blocks: u64,
    /// Resubmissions of a stuck bundle before it is cancelled.
    #[arg(long, default_value_t = BuilderSettings::default().max_resubmissions)]
    pub max_resubmissions: u32,
    /// The highest maxFeePerGas a resubmission may pay, in wei.
    #[arg(long, default_value_t = BuilderSettings::default().max_fee_per_gas_cap)]
    pub max_fee_per_gas_cap: u128,
}

#[derive(clap::Args)]
pub struct BundlerArgs {
    /// The deployment file (`tora devnet` writes one).
    #[arg(long, default_value = ".tora/devnet.json", env = "TORA_DEPLOYMENT")]
    pub deployment: PathBuf,
    /// Chain spec: dev, opbnb, opbnb-testnet, bsc, tensora, or a path to a .toml file.
    #[arg(long, default_value = "dev", env = "TORA_CHAIN")]
    pub chain: String,
    /// Override the chain spec's id (Tensora's is set per deployment).
    #[arg(long, env = "TORA_CHAIN_ID")]
    pub chain_id: Option<u64>,
    #[command(flatten)]
    pub flags: BundlerFlags,
}

pub async fn start_for(
    deployment: Deployment,
    chain: ChainSpec,
    flags: &BundlerFlags,
) -> anyhow::Result<RunningBundler> {
    let builder = BuilderSettings {
        resubmit_after_blocks: flags.resubmit_after_blocks,
        max_resubmissions: flags.max_resubmissions,
        max_fee_per_gas_cap: flags.max_fee_per_gas_cap,
        ..Default::default()
    };
    let mut options = BundlerOptions {
        debug_api: flags.debug_api,
        signer_keys: flags.bundler_keys.clone(),
        builder,
        ..Default::default()
    };
    if flags.manual_bundling {
        options.bundling_mode = tora_bundler::builder::BundlingMode::Manual;
    }
    let settings = BundlerSettings { deployment, chain, listen: flags.bundler_listen, options };
    Ok(tora_bundler::start(settings).await?)
}

pub async fn run(args: BundlerArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    let deployment = Deployment::read(&args.deployment)?;
    let mut chain = ChainSpec::load(&args.chain)?;
    if let Some(id) = args.chain_id {
        chain = chain.with_id(id);
    }
    let running = start_for(deployment, chain, &args.flags).await?;
    let signers: Vec<String> = running.bundler_addresses.iter().map(|a| a.to_string()).collect();
    println!("bundler: http://{} (bundles signed by {})", running.address, signers.join(", "));
    let signal = stop.requested().await;
    tracing::info!(signal, "stopping");
    Ok(())
}
