//! Running the service: from settings (a deployment file, the model, a price, the provider's
//! key) to a listening HTTP server, the embedding worker and the redemption loop, on the
//! in-memory voucher store or Redis.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use tokio::task::JoinHandle;
use tora_core::Deployment;
use tora_core::money::ToraUnits;

use crate::api::{self, Gateway, HttpLimits};
use crate::metering::Meter;
use crate::models::bert::embedder::Embedder;
use crate::models::bert::queue::EmbedQueue;
use crate::models::bert::tokenizer::SentenceTokenizer;
use crate::models::llama::worker::WorkerThread;
use crate::payment::{
    Cashier, Due, Escrow, MemoryVoucherStore, PricePerToken, Redeemer, RedisVoucherStore, VoucherStore,
};

/// Everything [`start`] needs to run a gateway; [`GatewaySettings::new`] fills in defaults.
pub struct GatewaySettings {
    /// The chain and contracts to serve against: RPC URL, chain id, the `InferenceEscrow` address.
    pub deployment: Deployment,
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// all-MiniLM-L6-v2's folder (config.json, tokenizer.json, model.safetensors).
    pub model_dir: PathBuf,
    /// TORA base units per token.
    pub price_per_token: ToraUnits,
    /// The provider: vouchers name its address, and it sends (and pays gas for) redemptions.
    pub provider_key: PrivateKeySigner,
    /// Vouchers in Redis when set (kept across restarts), in process memory otherwise.
    pub redis_url: Option<String>,
    /// Requests waiting for the model before new ones get 429.
    pub queue_capacity: usize,
    /// Bounds on each HTTP request: body size and timeout.
    pub http: HttpLimits,
    /// How often the latest vouchers are redeemed on-chain; `None` leaves it to the operator.
    /// At most half the escrow's notice period, so that what a payer consumed before it asked
    /// for its deposit back is claimed before it may take it, even when one redemption fails.
    pub redeem_interval: Option<Duration>,
    /// A payer is redeemed as soon as it owes the provider this much (checked every
    /// [`EXPOSURE_CHECK`]): the most the provider is ever owed by one payer, calls in flight
    /// aside. `None` redeems on the clock only.
    pub redeem_exposure: Option<ToraUnits>,
    /// A Llama GGUF (SmolLM2) to serve `/v1/completions` and `/v1/chat/completions` with.
    pub text_model: Option<PathBuf>,
    /// TORA base units per token of the text model; `price_per_token` when unset.
    pub text_price_per_token: Option<ToraUnits>,
    /// Text generations decoded together, each with a KV-cache slot of its own.
    pub text_batch: usize,
}

impl GatewaySettings {
    /// Defaults for everything but what must be chosen.
    pub fn new(
        deployment: Deployment,
        listen: SocketAddr,
        model_dir: PathBuf,
        price_per_token: ToraUnits,
        provider_key: PrivateKeySigner,
    ) -> Self {
        Self {
            deployment,
            listen,
            model_dir,
            price_per_token,
            provider_key,
            redis_url: None,
            queue_capacity: 64,
            http: HttpLimits::default(),
            redeem_interval: Some(Duration::from_secs(3_600)),
            // 10 TORA.
            redeem_exposure: Some(ToraUnits(U256::from(DEFAULT_REDEEM_EXPOSURE))),
            text_model: None,
            text_price_per_token: None,
            text_batch: crate::models::llama::DEFAULT_BATCH,
        }
    }
}

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The deployment's RPC URL does not parse.
    #[error("invalid RPC URL {0}")]
    RpcUrl(String),
    /// The node could not be asked (chain id, escrow code, notice period).
    #[error("chain: {0}")]
    Chain(String),
    /// The node serves another chain than the deployment names.
    #[error("the chain at {url} has id {actual}, the deployment says {expected}")]
    WrongChain {
        /// The RPC URL asked.
        url: String,
        /// The chain id in the deployment.
        expected: u64,
        /// The chain id the node reported.
        actual: u64,
    },
    /// No contract code at the deployment's `InferenceEscrow` address.
    #[error("no InferenceEscrow at {0}")]
    NoEscrow(Address),
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::error::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The Redis store at `redis_url` could not be opened or reached.
    #[error("redis: {0}")]
    Redis(String),
    /// The redemption interval is over half the escrow's notice period.
    #[error(
        "redemptions every {interval:?} leave no room for one that fails: two must fit in the escrow's notice period of {notice} s, or a payer could withdraw before the provider claims"
    )]
    RedeemTooRarely {
        /// The configured redemption interval.
        interval: Duration,
        /// The escrow's notice period, in seconds.
        notice: u64,
    },
}

/// How often payers are checked against `redeem_exposure`.
pub const EXPOSURE_CHECK: Duration = Duration::from_secs(10);
/// 10 TORA: the default most a payer may owe before it is redeemed at once.
pub const DEFAULT_REDEEM_EXPOSURE: u128 = 10 * tora_core::money::ONE_COIN;

/// A started gateway: its address and the tasks serving it (HTTP, the embedding worker, the
/// redemption loop when enabled).
pub struct RunningGateway {
    /// The address the HTTP API is bound to (the port chosen when listening on port 0).
    pub address: SocketAddr,
    /// The address vouchers must name as `provider`.
    pub provider: Address,
    /// The HTTP server, the embedding worker and, when enabled, the redemption loop.
    pub tasks: Vec<JoinHandle<()>>,
    /// Stops the HTTP server taking requests, letting those in flight finish.
    drain: tora_telemetry::Drain,
    /// The text model's worker thread, when one is served.
    text_worker: Option<WorkerThread>,
}

impl RunningGateway {
    /// Stops taking requests and lets those in flight finish and settle their charges (at most
    /// [`tora_telemetry::DRAIN_WAIT`]), then stops the workers and waits (at most
    /// [`STOP_WAIT`]) for the text model's thread, so that the GPU devices they own are released
    /// before the process exits.
    pub async fn stop(self) {
        let Self { mut tasks, drain, text_worker, .. } = self;
        let http = tasks.remove(0);
        tora_telemetry::stop_serving(&drain, http, &tasks).await;
        let stopped = async {
            for task in tasks {
                let _ = task.await;
            }
            if let Some(worker) = text_worker {
                let _ = tokio::task::spawn_blocking(move || worker.join()).await;
            }
        };
        if tokio::time::timeout(STOP_WAIT, stopped).await.is_err() {
            tracing::warn!("the gateway's model workers did not stop in time");
        }
    }
}

/// How long [`RunningGateway::stop`] waits for a generation in progress to end.
pub const STOP_WAIT: Duration = Duration::from_secs(5);

/// Checks the deployment against the chain, loads the model, then serves until the tasks are
/// aborted.
pub async fn start(settings: GatewaySettings) -> Result<RunningGateway, ServeError> {
    let d = &settings.deployment;
    let client =
        tora_core::node_client::client(&d.rpc_url).map_err(|_| ServeError::RpcUrl(d.rpc_url.clone()))?;
    let rpc = ProviderBuilder::new().connect_client(client).erased();
    // Vouchers are signed for one chain id and escrow: a mismatch would make every one of
    // them worthless, so refuse to start instead.
    let actual = rpc.get_chain_id().await.map_err(|e| ServeError::Chain(e.to_string()))?;
    if actual != d.chain_id {
        return Err(ServeError::WrongChain { url: d.rpc_url.clone(), expected: d.chain_id, actual });
    }
    let code =
        rpc.get_code_at(d.contracts.inference_escrow).await.map_err(|e| ServeError::Chain(e.to_string()))?;
    if code.is_empty() {
        return Err(ServeError::NoEscrow(d.contracts.inference_escrow));
    }
    let provider = settings.provider_key.address();
    if let Some(interval) = settings.redeem_interval {
        let notice = tora_core::contracts::InferenceEscrow::new(d.contracts.inference_escrow, &rpc)
            .noticePeriod()
            .call()
            .await
            .map_err(|e| ServeError::Chain(e.to_string()))?;
        // A payer may ask for its deposit back right after being served. The redemption due
        // next may fail (node down, a gas spike), so the one after it must still land before
        // the notice ends.
        if interval.as_secs().saturating_mul(2) > notice {
            return Err(ServeError::RedeemTooRarely { interval, notice });
        }
    } else {
        tracing::warn!(
            "no redemption interval: what a payer owes below the exposure threshold is claimed only \
             when the operator redeems, and is lost if it withdraws first"
        );
    }
    let escrow = Escrow::new(rpc, d.chain_id, d.contracts.inference_escrow, provider);
    match settings.redis_url.clone() {
        Some(url) => {
            let store = RedisVoucherStore::connect(&url, provider)
                .await
                .map_err(|e| ServeError::Redis(e.to_string()))?;
            serve(settings, escrow, store).await
        }
        None => serve(settings, escrow, MemoryVoucherStore::default()).await,
    }
}

async fn serve<S: VoucherStore>(
    settings: GatewaySettings,
    escrow: Escrow,
    store: S,
) -> Result<RunningGateway, ServeError> {
    let dir = settings.model_dir.clone();
    // Loading reads 90 MB and compiles the kernels: off the async threads.
    let (embedder, tokenizer) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::error::Error>((Embedder::load(&dir)?, SentenceTokenizer::load(&dir)?))
    })
    .await
    .map_err(|e| crate::error::Error::Gpu(format!("model loading task failed: {e}")))??;
    let dim = embedder.dim();
    let text = match settings.text_model.clone() {
        Some(path) => {
            let (capacity, batch) = (settings.queue_capacity, settings.text_batch);
            let model = tokio::task::spawn_blocking(move || api::TextModel::load(&path, capacity, batch))
                .await
                .map_err(|e| crate::error::Error::Gpu(format!("text model loading task failed: {e}")))??;
            let price = PricePerToken(settings.text_price_per_token.unwrap_or(settings.price_per_token));
            Some(api::TextEndpoint { model: Arc::new(model), price })
        }
        None => None,
    };
    let text_worker = text.as_ref().map(|t| t.model.worker());
    let (queue, worker) = EmbedQueue::start(embedder, settings.queue_capacity);
    let redeemer = Redeemer::new(&settings.deployment.rpc_url, settings.provider_key.clone(), escrow.clone())
        .map_err(|_| ServeError::RpcUrl(settings.deployment.rpc_url.clone()))?;
    let cashier = Cashier::new(store, escrow, PricePerToken(settings.price_per_token));
    let gateway = Arc::new(Gateway { meter: Meter::new(tokenizer), queue, cashier, dim });

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| ServeError::Listen(settings.listen, e))?;
    let address = listener.local_addr().map_err(|e| ServeError::Listen(settings.listen, e))?;
    let router =
        api::router_with_text(gateway.clone(), text, settings.http).layer(tora_telemetry::http_trace_layer());
    let (http, drain) = tora_telemetry::serve(listener, router, "gateway");
    let mut tasks = vec![http, worker];
    if settings.redeem_interval.is_some() || settings.redeem_exposure.is_some() {
        let schedule = RedeemSchedule {
            every: settings.redeem_interval,
            exposure: settings.redeem_exposure.map(|e| e.0),
        };
        tasks.push(tokio::spawn(redeem_on(schedule, redeemer, gateway)));
    }
    let provider = settings.provider_key.address();
    tracing::info!(%address, %provider, "inference gateway listening");
    Ok(RunningGateway { address, provider, tasks, drain, text_worker })
}

/// When the gateway redeems: all payers every `every`, and between those, every
/// [`EXPOSURE_CHECK`], the payers owing at least `exposure`.
#[derive(Clone, Copy, Debug)]
struct RedeemSchedule {
    every: Option<Duration>,
    exposure: Option<U256>,
}

/// One loop for both kinds of redemption: they send with the same key, so two loops could
/// race for its nonce or claim the same payers twice.
async fn redeem_on<S: VoucherStore>(schedule: RedeemSchedule, redeemer: Redeemer, gateway: Arc<Gateway<S>>) {
    let tick = match (schedule.every, schedule.exposure) {
        (Some(every), None) => every,
        (every, Some(_)) => every.map_or(EXPOSURE_CHECK, |every| every.min(EXPOSURE_CHECK)),
        (None, None) => return,
    };
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; nothing to redeem yet
    let mut last_all = tokio::time::Instant::now();
    loop {
        ticks.tick().await;
        let due = match (schedule.every, schedule.exposure) {
            (Some(every), _) if last_all.elapsed() >= every => {
                last_all = tokio::time::Instant::now();
                Due::All
            }
            (_, Some(exposure)) => Due::Exposed { exposure },
            _ => continue,
        };
        match redeemer.redeem(gateway.cashier.store(), due).await {
            Ok(r) if r.vouchers > 0 => {
                tracing::info!(vouchers = r.vouchers, paid = %r.paid, failed = r.failed.len(), ?due, "redeemed vouchers")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "redemption failed; retrying next round"),
        }
    }
}
