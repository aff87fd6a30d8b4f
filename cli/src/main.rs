//! `tora`: one binary for the whole stack. Each subcommand lives in its own file and only wires
//! library crates together.

mod devnet;
mod paymaster;
mod up;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "tora", version, about = "Tensora account-abstraction stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local chain with EntryPoint v0.7 and the Tensora contracts deployed.
    Devnet(devnet::DevnetArgs),
    /// Run the ERC-7677 TORA paymaster service for a deployment.
    Paymaster(paymaster::PaymasterArgs),
    /// Run the whole stack locally (devnet and services) until Ctrl-C.
    Up(up::UpArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match Cli::parse().command {
        Command::Devnet(args) => devnet::run(args).await,
        Command::Paymaster(args) => paymaster::run(args).await,
        Command::Up(args) => up::run(args).await,
    }
}
