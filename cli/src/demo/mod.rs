//! `tora demo`: the whole story on a running `tora up`, told step by step and checked to the
//! wei. A new smart wallet holding TORA and no BNB gets its first operation sponsored by a dapp,
//! pays for its next one in TORA with a permit (it never approves the paymaster), and pays the
//! inference gateway with vouchers that the provider redeems. A step that does not add up ends
//! the command with an error.

mod funding;
mod gateway;
mod inference;
mod sponsored;
mod stack;
mod token;
mod wallet;

use alloy::primitives::{Address, U256};
use anyhow::{bail, ensure};
use stack::Stack;
use std::path::PathBuf;
use std::time::Instant;
use tora_core::money::ONE_COIN;

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// The deployment file `tora up` wrote; the demo signs with its devKeys, so a devnet's.
    #[arg(long, default_value = ".tora/devnet.json", env = "TORA_DEPLOYMENT")]
    deployment: PathBuf,
    /// The bundler's JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4337")]
    bundler_url: String,
    /// The paymaster's JSON-RPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4338")]
    paymaster_url: String,
    /// Where the paymaster serves /admin, when `tora up` ran with --admin-listen (default: the
    /// paymaster's endpoint).
    #[arg(long)]
    admin_url: Option<String>,
    /// The inference gateway.
    #[arg(long, default_value = "http://127.0.0.1:4339")]
    gateway_url: String,
    /// Admin API key for the paymaster's /admin (default: one signed with the devnet's secret).
    #[arg(long)]
    admin_api_key: Option<String>,
    /// API key of the dapp the demo's policy names (default: the devnet dapp key `tora up` prints).
    #[arg(long)]
    dapp_api_key: Option<String>,
}

/// `n` whole TORA, in base units.
fn tora(n: u64) -> U256 {
    U256::from(n) * U256::from(ONE_COIN)
}

pub(crate) async fn run(args: DemoArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    tokio::select! {
        told = tell(args) => told,
        signal = stop.requested() => bail!("stopped ({signal}) before the story ended"),
    }
}

async fn tell(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let stack = Stack::connect(args).await?;
    // Before anything is spent: every service answers, and the gateway serves both models and
    // redeems as the devnet's provider.
    stack.check_services().await?;
    let terms = stack.gateway_terms().await?;
    stack.fund_wallet().await?;
    stack.sponsored_first_operation().await?;
    stack.deposit_paid_in_tora(terms.provider).await?;
    stack.paid_inference(&terms).await?;
    println!(
        "\nEvery step added up, to the wei, in {:.1} s. Run it again: each run makes a new wallet.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints a value before and after a step, exactly, and fails unless it ended at `expected`.
fn check(what: &str, before: U256, after: U256, expected: U256) -> anyhow::Result<()> {
    let change =
        if after >= before { format!("+{}", after - before) } else { format!("-{}", before - after) };
    println!("     {what:<46} {before} -> {after} ({change})");
    ensure!(after == expected, "{what}: expected {expected} after this step, found {after}");
    Ok(())
}

/// The checks every step makes of the wallet, each under one name in every step's output.
impl Stack {
    /// [`check`]s the wallet's TORA now against `expected`, from `before` the step.
    async fn check_wallet_tora(&self, before: U256, expected: U256) -> anyhow::Result<()> {
        check("wallet TORA", before, self.tora_of(self.wallet.address).await?, expected)
    }

    /// [`check`]s that the wallet still holds no BNB: every step's gas is paid for it.
    async fn check_wallet_bnb(&self, before: U256) -> anyhow::Result<()> {
        check("wallet BNB (wei)", before, self.bnb_of(self.wallet.address).await?, U256::ZERO)
    }

    /// [`check`]s the wallet's escrow channel to `provider` now against `expected`, from
    /// `before` the step.
    async fn check_channel(&self, provider: Address, before: U256, expected: U256) -> anyhow::Result<()> {
        check("wallet's escrow channel to the provider", before, self.channel_of(provider).await?, expected)
    }
}
