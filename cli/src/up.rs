//! `tora up`: the whole stack on one machine, on embedded defaults, in the foreground.

use crate::bundler::BundlerFlags;
use crate::devnet::{DevnetArgs, start};
use crate::gateway::GatewayFlags;
use crate::paymaster::{PaymasterOptions, start_for};

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub devnet: DevnetArgs,
    #[command(flatten)]
    pub paymaster: PaymasterOptions,
    #[command(flatten)]
    pub bundler: BundlerFlags,
    #[command(flatten)]
    pub gateway: GatewayFlags,
}

pub(crate) async fn run(mut args: UpArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    // One --redis-url puts every service's shared state there, unless a service names its own.
    if let Some(url) = &args.paymaster.redis_url {
        args.bundler.bundler_redis_url.get_or_insert_with(|| url.clone());
        args.gateway.gateway_redis_url.get_or_insert_with(|| url.clone());
    }
    let devnet = start(&args.devnet).await?;
    let d = &devnet.deployment;
    let paymaster = start_for(d.clone(), &args.paymaster).await?;
    let dev_chain = tora_core::ChainSpec::load("dev")?.with_id(d.chain_id);
    let bundler = crate::bundler::start_for(d.clone(), dev_chain, &args.bundler).await?;
    println!("Tensora stack is up. Ctrl-C stops it.");
    println!(
        "  bundler    http://{} (ERC-4337 v0.7; bundles signed by {} and {} more keys)",
        bundler.address,
        bundler.bundler_address,
        bundler.bundler_addresses.len().saturating_sub(1)
    );
    // The gateway needs the model files and a Vulkan driver: without them the rest still runs.
    crate::gateway::fetch_default_models(&args.gateway).await;
    let gateway = match crate::gateway::start_for(d.clone(), &args.gateway).await {
        Ok(gateway) => {
            println!(
                "  gateway    http://{} (OpenAI-style /v1/models, embeddings, completions; provider {})",
                gateway.address, gateway.provider
            );
            Some(gateway)
        }
        Err(e) => {
            println!("  gateway    not started: {e:#}");
            None
        }
    };
    println!("  paymaster  http://{} (ERC-7677; /admin, /health, /ready, /metrics)", paymaster.address);
    println!("  chain      {} (chain id {})", d.rpc_url, d.chain_id);
    println!("  EntryPoint {}", d.contracts.entry_point);
    println!("  TORA       {}", d.contracts.tora);
    println!("  ToraPaymaster {}", d.contracts.paymaster);
    println!("  escrow     {}", d.contracts.inference_escrow);
    println!("  deployment {}", args.devnet.out.display());
    let signal = stop.requested().await;
    println!("stopping ({signal})");
    // Each drains its requests in flight; the gateway then releases its GPU.
    tokio::join!(bundler.stop(), paymaster.stop(), async {
        if let Some(gateway) = gateway {
            gateway.stop().await;
        }
    });
    devnet.anvil.stop().await;
    Ok(())
}
