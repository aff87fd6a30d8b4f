//! `tora`: one binary for the whole stack. Each subcommand lives in its own file and only wires
//! library crates together.

mod bundler;
mod demo;
mod devnet;
mod gateway;
mod paymaster;
mod shutdown;
mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tora", version, about = "Tensora account-abstraction stack")]
struct Cli {
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, global = true, env = "TORA_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ERC-4337 bundler for a deployment.
    Bundler(bundler::BundlerArgs),
    /// Tell the whole story on a running `tora up`, checked to the wei: a new wallet's first
    /// operation sponsored, its next paid in TORA with a permit, inference paid with vouchers.
    Demo(demo::DemoArgs),
    /// Run a local chain with EntryPoint v0.7 and the Tensora contracts deployed.
    Devnet(devnet::DevnetArgs),
    /// Run the inference gateway (embeddings on wgpu, paid with escrow vouchers).
    Gateway(gateway::GatewayArgs),
    /// Run the ERC-7677 TORA paymaster service for a deployment.
    Paymaster(paymaster::PaymasterArgs),
    /// Run the whole stack locally (devnet and services) until Ctrl-C.
    Up(Box<up::UpArgs>),
}

impl Command {
    /// The `service.name` of this process's traces (OTEL_SERVICE_NAME overrides it).
    fn service_name(&self) -> &'static str {
        match self {
            Command::Bundler(_) => "tora-bundler",
            Command::Demo(_) => "tora-demo",
            Command::Devnet(_) => "tora-devnet",
            Command::Gateway(_) => "tora-gateway",
            Command::Paymaster(_) => "tora-paymaster",
            Command::Up(_) => "tora-up",
        }
    }
}

fn main() -> anyhow::Result<()> {
    quiet_graphics_stack();
    tokio::runtime::Runtime::new()?.block_on(run())
}

/// Mesa's Vulkan loader prints "error: XDG_RUNTIME_DIR is invalid or not set" on every device
/// probe when the variable is missing (servers, containers, CI); a temporary directory is
/// what it wants. Set before any thread exists, which `set_var` requires.
fn quiet_graphics_stack() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: no other thread runs yet: the tokio runtime is built after this.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Held to the end of main: dropping it flushes the spans not yet exported.
    let _telemetry = tora_telemetry::init(cli.command.service_name(), cli.log_json);
    let stop = shutdown::StopSignals::install()?;
    match cli.command {
        Command::Bundler(args) => bundler::run(args, stop).await,
        Command::Demo(args) => demo::run(args, stop).await,
        Command::Devnet(args) => devnet::run(args, stop).await,
        Command::Gateway(args) => gateway::run(args, stop).await,
        Command::Paymaster(args) => paymaster::run(args, stop).await,
        Command::Up(args) => up::run(*args, stop).await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommands_flags_are_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
