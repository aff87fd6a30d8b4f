//! `tora up`: the whole stack on one machine, on embedded defaults, in the foreground.

use crate::devnet::{DevnetArgs, start};
use crate::paymaster::{PaymasterOptions, start_for};

#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub devnet: DevnetArgs,
    #[command(flatten)]
    pub paymaster: PaymasterOptions,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let devnet = start(&args.devnet).await?;
    let d = &devnet.deployment;
    let paymaster = start_for(d.clone(), &args.paymaster).await?;
    println!("Tensora stack is up. Ctrl-C stops it.");
    println!("  paymaster  http://{} (ERC-7677; /admin, /health, /ready, /metrics)", paymaster.address);
    println!("  chain      {} (chain id {})", d.rpc_url, d.chain_id);
    println!("  EntryPoint {}", d.contracts.entry_point);
    println!("  TORA       {}", d.contracts.tora);
    println!("  ToraPaymaster {}", d.contracts.paymaster);
    println!("  escrow     {}", d.contracts.inference_escrow);
    println!("  deployment {}", args.devnet.out.display());
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    devnet.anvil.stop().await;
    Ok(())
}
