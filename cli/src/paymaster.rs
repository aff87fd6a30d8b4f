//! `tora paymaster`: the ERC-7677 TORA paymaster service for a deployment.

use anyhow::{Context, bail};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tora_core::Deployment;
use tora_core::money::{ONE_COIN, ToraUnits};
use tora_core::sponsorship::{MicroTora, ResetInterval};
use tora_paymaster::config::TokenLimits;
use tora_paymaster::gas_bounds::GasBounds;
use tora_paymaster::pricing::Markup;
use tora_paymaster::server::{PaymasterSettings, RunningPaymaster, SecondFeed, start};
use tora_paymaster::signer_key::SignerKey;
use tora_paymaster::sponsorship::auth::{Claims, Role, issue};

/// Key id and secret of API keys on a devnet, where nobody configured any.
const DEVNET_KEY_ID: &str = "devnet";
const DEVNET_KEY_SECRET: &str = "tora devnet api keys";
/// The dapp of the devnet dapp key `tora up` prints (and `tora demo` sponsors for).
pub(crate) const DEVNET_DAPP: &str = "demo-dapp";

/// An API key that a paymaster on a devnet with no configured secrets accepts (issued, not
/// stored: the secret is public, like the devnet's keys).
pub(crate) fn devnet_api_key(sub: &str, role: Role) -> String {
    issue(DEVNET_KEY_ID, DEVNET_KEY_SECRET.as_bytes(), &Claims { sub: sub.into(), exp: 4_102_444_800, role })
}

#[derive(clap::Args, Clone)]
pub(crate) struct PaymasterOptions {
    #[arg(long = "paymaster-listen", default_value = "127.0.0.1:4338", env = "TORA_PAYMASTER_LISTEN")]
    pub paymaster_listen: SocketAddr,
    /// Serve /admin on this address only, not on the public one (a public load balancer then
    /// never routes it); unset: /admin shares the public address.
    #[arg(long = "admin-listen", env = "TORA_PAYMASTER_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Margin on the oracle rate, as a fraction (0.05 = 5%).
    #[arg(long, default_value = "0.05", env = "TORA_PAYMASTER_MARKUP")]
    pub markup: Decimal,
    /// Refuse oracle answers older than this (default: an hour; a devnet's feed, which nobody
    /// updates, a day).
    #[arg(long)]
    pub heartbeat_secs: Option<u64>,
    /// How long a signed quote may be used: the price risk the paymaster takes on each one.
    #[arg(long, default_value_t = 120)]
    pub quote_validity_secs: u64,
    /// A second AggregatorV3 feed (TORA in BNB) the price must agree with.
    #[arg(long, env = "TORA_PAYMASTER_SECOND_FEED")]
    pub second_price_feed: Option<alloy::primitives::Address>,
    /// How far the two feeds may differ, as a fraction (0.02 = 2%).
    #[arg(long, default_value = "0.02")]
    pub max_price_deviation: Decimal,
    /// Token mode: the most TORA one sender may exchange for gas a day (0: no limit).
    #[arg(long, default_value_t = 1_000)]
    pub token_limit_per_sender: u64,
    /// Token mode: the most TORA all senders together may exchange for gas a day (0: no limit).
    #[arg(long, default_value_t = 100_000)]
    pub token_limit_global: u64,
    /// The most priority fee per gas a quote signs, in wei.
    #[arg(long, default_value_t = GasBounds::DEFAULT_MAX_PRIORITY_FEE_PER_GAS)]
    pub max_priority_fee_per_gas: u128,
    /// Blocks settlement waits below the head before reading one (default 2; 0 on a devnet,
    /// whose anvil never reorganises and mines only when sent a transaction).
    #[arg(long)]
    pub settlement_confirmations: Option<u64>,
    /// Refuse to quote an operation that could cost more TORA than this.
    #[arg(long, default_value_t = 1_000)]
    pub max_tora_per_op: u64,
    /// Keep sponsorship budgets in Redis (shared by replicas) instead of in memory. With
    /// `tora up`, the bundler's pool and the gateway's ledger go there too unless
    /// --bundler-redis-url or --gateway-redis-url name their own.
    #[arg(long, env = "TORA_REDIS_URL")]
    pub redis_url: Option<String>,
    /// File holding the quote-signing key (else TORA_PAYMASTER_SIGNER_KEY, else the devnet's).
    #[arg(long, env = "TORA_PAYMASTER_SIGNER_KEY_FILE")]
    pub signer_key_file: Option<PathBuf>,
    /// Requests per second per API key (twice that in a burst); 0 for no limit.
    #[arg(long, default_value_t = 50.0)]
    pub rate_per_key: f64,
    /// API key secrets as `kid=secret,kid2=secret2`; several ids allow rotation.
    #[arg(long, env = "TORA_API_KEY_SECRETS", hide_env_values = true)]
    pub api_key_secrets: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct PaymasterArgs {
    /// The deployment file (`tora devnet` writes one).
    #[arg(long, default_value = ".tora/devnet.json", env = "TORA_DEPLOYMENT")]
    pub deployment: PathBuf,
    #[command(flatten)]
    pub options: PaymasterOptions,
}

fn signer(options: &PaymasterOptions, deployment: &Deployment) -> anyhow::Result<SignerKey> {
    if let Some(path) = &options.signer_key_file {
        return Ok(SignerKey::from_file(path)?);
    }
    if let Ok(key) = SignerKey::from_env() {
        return Ok(key);
    }
    match &deployment.dev_keys {
        Some(keys) => Ok(SignerKey::from_hex(&keys.paymaster_signer.to_string())?),
        None => bail!("no signer key: pass --signer-key-file or set TORA_PAYMASTER_SIGNER_KEY"),
    }
}

fn api_key_secrets(
    options: &PaymasterOptions,
    deployment: &Deployment,
) -> anyhow::Result<HashMap<String, Vec<u8>>> {
    match &options.api_key_secrets {
        Some(list) => list
            .split(',')
            .map(|pair| {
                let (kid, secret) = pair.split_once('=').context("API key secrets are kid=secret pairs")?;
                Ok((kid.trim().to_owned(), secret.trim().as_bytes().to_vec()))
            })
            .collect(),
        None if deployment.dev_keys.is_some() => {
            Ok(HashMap::from([(DEVNET_KEY_ID.to_owned(), DEVNET_KEY_SECRET.as_bytes().to_vec())]))
        }
        None => bail!("no API key secrets: set TORA_API_KEY_SECRETS"),
    }
}

/// Whole TORA a day, as the store counts them; 0 is no limit.
fn daily_limit(tora: u64) -> Option<MicroTora> {
    (tora > 0).then(|| MicroTora(tora.saturating_mul(1_000_000)))
}

/// Starts the service for `deployment`; on a devnet, prints API keys to try it with.
pub(crate) async fn start_for(
    deployment: Deployment,
    options: &PaymasterOptions,
) -> anyhow::Result<RunningPaymaster> {
    let markup = Markup::new(options.markup)?;
    let settings = PaymasterSettings {
        signer: signer(options, &deployment)?,
        api_key_secrets: api_key_secrets(options, &deployment)?,
        listen: options.paymaster_listen,
        admin_listen: options.admin_listen,
        markup,
        heartbeat: Duration::from_secs(options.heartbeat_secs.unwrap_or(if deployment.dev_keys.is_some() {
            86_400
        } else {
            3_600
        })),
        second_feed: options
            .second_price_feed
            .map(|address| SecondFeed { address, max_deviation: options.max_price_deviation }),
        gas_bounds: GasBounds {
            max_priority_fee_per_gas: options.max_priority_fee_per_gas,
            ..GasBounds::default()
        },
        token_limits: TokenLimits {
            per_sender: daily_limit(options.token_limit_per_sender),
            global: daily_limit(options.token_limit_global),
            reset: ResetInterval::Daily,
        },
        confirmations: options.settlement_confirmations.unwrap_or(if deployment.dev_keys.is_some() {
            0
        } else {
            2
        }),
        price_ttl: Duration::from_millis(500),
        quote_validity: Duration::from_secs(options.quote_validity_secs),
        max_token_cost_per_op: ToraUnits(
            alloy::primitives::U256::from(options.max_tora_per_op) * alloy::primitives::U256::from(ONE_COIN),
        ),
        redis_url: options.redis_url.clone(),
        settlement_interval: Duration::from_secs(2),
        limits: tora_jsonrpc::Limits {
            rate_per_key: (options.rate_per_key > 0.0).then_some(tora_jsonrpc::RateLimit {
                per_second: options.rate_per_key,
                burst: options.rate_per_key * 2.0,
            }),
            ..Default::default()
        },
        deployment: deployment.clone(),
    };
    let running = start(settings).await?;
    if deployment.dev_keys.is_some() && options.api_key_secrets.is_none() {
        println!("  devnet admin API key: {}", devnet_api_key("devnet-admin", Role::Admin));
        println!(
            "  devnet dapp API key (sub \"{DEVNET_DAPP}\"): {}",
            devnet_api_key(DEVNET_DAPP, Role::Dapp)
        );
    }
    Ok(running)
}

pub(crate) async fn run(args: PaymasterArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    let deployment = Deployment::read(&args.deployment)?;
    let running = start_for(deployment, &args.options).await?;
    println!("paymaster: http://{}", running.address);
    let signal = stop.requested().await;
    tracing::info!(signal, "stopping");
    running.stop().await;
    Ok(())
}
