//! `tora devnet`: anvil plus the deployed contracts, with the deployment file written for the
//! services, until Ctrl-C.

use anyhow::Context;
use std::path::PathBuf;
use tora_devnet::{AnvilConfig, AnvilError, Devnet};

#[derive(clap::Args, Clone)]
pub(crate) struct DevnetArgs {
    /// Port for anvil's JSON-RPC (0 picks a free one).
    #[arg(long, default_value_t = 8545, env = "TORA_DEVNET_PORT")]
    pub port: u16,
    #[arg(long, default_value_t = 31337)]
    pub chain_id: u64,
    /// Also mine a block every this many seconds (a chain that moves like opBNB's); each
    /// transaction is still mined as it arrives. 0: only a block per transaction.
    #[arg(long, default_value_t = 1)]
    pub block_time: u64,
    /// Where to write the deployment file the services read.
    #[arg(long, default_value = ".tora/devnet.json", env = "TORA_DEPLOYMENT")]
    pub out: PathBuf,
    /// anvil binary (default: contracts/node_modules, installed with `npm ci` if missing).
    #[arg(long, env = "TORA_ANVIL")]
    pub anvil: Option<PathBuf>,
}

/// Starts the chain, installing anvil through npm on a first run, and writes the deployment.
pub(crate) async fn start(args: &DevnetArgs) -> anyhow::Result<Devnet> {
    let binary = match args.anvil.clone() {
        Some(path) => path,
        None => match tora_devnet::locate_anvil() {
            Ok(path) => path,
            Err(AnvilError::NotFound { .. }) => tora_devnet::install_anvil().await?,
            Err(e) => return Err(e.into()),
        },
    };
    let config = AnvilConfig {
        binary: Some(binary),
        port: args.port,
        chain_id: args.chain_id,
        block_time: (args.block_time > 0).then_some(args.block_time),
    };
    let devnet = Devnet::start(config).await.context("starting the devnet")?;
    devnet.deployment.write(&args.out)?;
    let c = &devnet.deployment.contracts;
    tracing::info!(
        rpc = %devnet.deployment.rpc_url,
        chain_id = devnet.deployment.chain_id,
        entry_point = %c.entry_point,
        paymaster = %c.paymaster,
        tora = %c.tora,
        escrow = %c.inference_escrow,
        deployment = %args.out.display(),
        "devnet ready: EntryPoint v0.7 at its canonical address with the canonical code hash"
    );
    Ok(devnet)
}

pub(crate) async fn run(args: DevnetArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    let devnet = start(&args).await?;
    println!("devnet: {} (chain {})", devnet.deployment.rpc_url, devnet.deployment.chain_id);
    println!("deployment file: {}", args.out.display());
    let signal = stop.requested().await;
    tracing::info!(signal, "stopping");
    devnet.anvil.stop().await;
    Ok(())
}
