//! What the gateway offers and what it costs, and whether it is up.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::embeddings::MODEL_ID;
use super::{ApiError, Gateway};
use crate::models::llama::worker::TEXT_MODEL_ID;
use crate::payment::{PricePerToken, VoucherStore};

/// Which models this gateway serves besides the embeddings model, at what price per token.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Served {
    pub text: Option<PricePerToken>,
}

impl Served {
    fn ids(self) -> Vec<&'static str> {
        let mut ids = vec![MODEL_ID];
        if self.text.is_some() {
            ids.push(TEXT_MODEL_ID);
        }
        ids
    }
}

pub(crate) async fn models(served: Served) -> Json<Value> {
    let data: Vec<Value> = served
        .ids()
        .into_iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "tensora" }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// Prices in TORA base units (18 decimals) as decimal strings, with what a client needs to
/// sign vouchers: the provider, the escrow and its chain.
/// Each model has its price per token (prompt and generated tokens alike).
pub(crate) async fn pricing<S: VoucherStore>(
    State(gateway): State<Arc<Gateway<S>>>,
    served: Served,
) -> Json<Value> {
    let escrow = gateway.cashier.escrow();
    let price = |model: &str, per_token: PricePerToken| json!({ "model": model, "unit": "token", "price_per_token": per_token.0.0.to_string() });
    let mut data = vec![price(MODEL_ID, gateway.cashier.per_token())];
    data.extend(served.text.map(|per_token| price(TEXT_MODEL_ID, per_token)));
    Json(json!({
        "object": "list",
        "currency": "TORA",
        "decimals": 18,
        "provider": escrow.provider(),
        "escrow": escrow.address(),
        "chain_id": escrow.chain_id(),
        "data": data,
    }))
}

pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the embedding worker runs (the model is loaded before the server listens).
pub(crate) async fn ready<S: VoucherStore>(
    State(gateway): State<Arc<Gateway<S>>>,
) -> (StatusCode, Json<Value>) {
    if gateway.queue.is_running() {
        (StatusCode::OK, Json(json!({ "status": "ready", "queued": gateway.queue.waiting() })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "embedding worker stopped" })))
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::Rejected(StatusCode::NOT_FOUND, "no such endpoint".into())
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::Rejected(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint".into())
}
