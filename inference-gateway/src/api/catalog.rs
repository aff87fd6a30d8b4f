//! What the gateway offers and what it costs, and whether it is up.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::embeddings::MODEL_ID;
use super::{ApiError, Gateway};
use crate::payment::VoucherStore;

pub async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{ "id": MODEL_ID, "object": "model", "created": 0, "owned_by": "tensora" }],
    }))
}

/// Prices in TORA base units (18 decimals) as decimal strings, with what a client needs to
/// sign vouchers: the provider, the escrow and its chain.
pub async fn pricing<S: VoucherStore>(State(gateway): State<Arc<Gateway<S>>>) -> Json<Value> {
    let escrow = gateway.cashier.escrow();
    Json(json!({
        "object": "list",
        "currency": "TORA",
        "decimals": 18,
        "provider": escrow.provider(),
        "escrow": escrow.address(),
        "chain_id": escrow.chain_id(),
        "data": [{
            "model": MODEL_ID,
            "unit": "token",
            "price_per_token": gateway.cashier.per_token().0.0.to_string(),
        }],
    }))
}

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the embedding worker runs (the model is loaded before the server listens).
pub async fn ready<S: VoucherStore>(State(gateway): State<Arc<Gateway<S>>>) -> (StatusCode, Json<Value>) {
    if gateway.queue.is_running() {
        (StatusCode::OK, Json(json!({ "status": "ready", "queued": gateway.queue.waiting() })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "embedding worker stopped" })))
    }
}

pub async fn not_found() -> ApiError {
    ApiError::Rejected(StatusCode::NOT_FOUND, "no such endpoint".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::Rejected(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint".into())
}
