//! `tora bundler`: the ERC-4337 bundler for a deployment.

use std::net::SocketAddr;
use std::path::PathBuf;
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
    let mut options = BundlerOptions { debug_api: flags.debug_api, ..Default::default() };
    if flags.manual_bundling {
        options.bundling_mode = tora_bundler::builder::BundlingMode::Manual;
    }
    let settings = BundlerSettings { deployment, chain, listen: flags.bundler_listen, options };
    Ok(tora_bundler::start(settings).await?)
}

pub async fn run(args: BundlerArgs) -> anyhow::Result<()> {
    let deployment = Deployment::read(&args.deployment)?;
    let mut chain = ChainSpec::load(&args.chain)?;
    if let Some(id) = args.chain_id {
        chain = chain.with_id(id);
    }
    let running = start_for(deployment, chain, &args.flags).await?;
    println!("bundler: http://{} (bundles signed by {})", running.address, running.bundler_address);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
