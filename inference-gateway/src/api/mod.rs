//! The HTTP surface, in the shape the OpenAI SDKs speak: `POST /v1/embeddings`,
//! `POST /v1/completions` and `POST /v1/chat/completions` (when a text model is loaded),
//! `GET /v1/models`, `GET /v1/pricing`, plus `/health` and `/ready`. Handlers parse, call the
//! domain (metering, payment, the queue, a paid generation) and map its errors; limits are
//! tower layers.

mod catalog;
mod completions;
mod embeddings;
pub mod error;
mod json;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower::ServiceBuilder;

use crate::metering::Meter;
use crate::models::bert::queue::EmbedQueue;
use crate::payment::{Cashier, PricePerToken, VoucherStore};

pub use crate::models::llama::worker::{Generated, MAX_COMPLETION_TOKENS, TEXT_MODEL_ID, TextModel};
pub use completions::TextState;
pub use embeddings::{EncodingFormat, MODEL_ID};
pub use error::ApiError;

/// Everything a handler needs, shared by all of them.
pub struct Gateway<S> {
    /// Counts each text's tokens, to price a call before it runs.
    pub meter: Meter,
    /// The embedding worker's bounded request queue.
    pub queue: EmbedQueue,
    /// Checks vouchers, holds and charges what calls cost, in TORA base units.
    pub cashier: Cashier<S>,
    /// Length of the model's embeddings.
    pub dim: usize,
}

/// Bounds on one HTTP request.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Largest request body accepted, in bytes; a larger one gets 413.
    pub max_body_bytes: usize,
    /// From the first byte to the answer, queueing and payment checks included.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        // 64 texts of a few thousand characters each fit in 1 MiB.
        Self { max_body_bytes: 1 << 20, request_timeout: Duration::from_secs(60) }
    }
}

/// The embeddings API alone, behind `limits`.
pub fn router<S: VoucherStore>(gateway: Arc<Gateway<S>>, limits: HttpLimits) -> Router {
    router_with_text(gateway, None, limits)
}

/// The text model served and what a token of it costs.
pub struct TextEndpoint {
    /// The loaded text model and its worker.
    pub model: Arc<TextModel>,
    /// What one token of it costs, prompt and generated alike.
    pub price: PricePerToken,
}

/// The API with the text endpoints too when `text` is given; both models share the cashier.
pub fn router_with_text<S: VoucherStore>(
    gateway: Arc<Gateway<S>>,
    text: Option<TextEndpoint>,
    limits: HttpLimits,
) -> Router {
    let timeout = limits.request_timeout;
    let served = catalog::Served { text: text.as_ref().map(|t| t.price) };
    tora_telemetry::prometheus();
    let mut router = Router::new()
        .route("/v1/embeddings", post(embeddings::create::<S>))
        .route("/v1/models", get(move || catalog::models(served)))
        .route("/v1/pricing", get(move |state| catalog::pricing::<S>(state, served)))
        .route("/health", get(catalog::health))
        .route("/ready", get(catalog::ready::<S>))
        .route("/metrics", get(tora_telemetry::render_metrics))
        .with_state(gateway.clone());
    if let Some(TextEndpoint { model, price }) = text {
        let state = Arc::new(TextState { gateway, model, price });
        router = router.merge(
            Router::new()
                .route("/v1/completions", post(completions::completion::<S>))
                .route("/v1/chat/completions", post(completions::chat::<S>))
                .with_state(state),
        );
    }
    router
        .fallback(catalog::not_found)
        .method_not_allowed_fallback(catalog::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(
                    move |_: tower::BoxError| async move { ApiError::Timeout(timeout) },
                ))
                .timeout(timeout),
        )
        // Outermost, so refusals by the limits above (413, 408) are counted too.
        .layer(axum::middleware::from_fn(metrics::record))
}
