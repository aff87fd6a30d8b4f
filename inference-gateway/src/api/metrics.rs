//! The HTTP API's Prometheus figures: requests by route and status, and how long they took;
//! tokens run and TORA charged per model. Routes are the router's templates, so a scan of random
//! paths cannot multiply series.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tora_core::money::ToraUnits;
use tora_core::sponsorship::MicroTora;

pub(crate) async fn record(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("gateway_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("gateway_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A paid call of `model` ran `tokens` tokens and was charged `price`. The counter is in
/// micro-TORA rounded down (a u64 of base units would overflow at 18 TORA); the exact amounts
/// are the ledger's.
pub(crate) fn charged(model: &'static str, tokens: u64, price: ToraUnits) {
    metrics::counter!("gateway_tokens_total", "model" => model).increment(tokens);
    let micro = MicroTora::from_tora_floor(price);
    metrics::counter!("gateway_charged_micro_tora_total", "model" => model).increment(micro.0);
}
