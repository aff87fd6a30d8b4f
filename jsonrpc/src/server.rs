//! The HTTP side: one POST route for JSON-RPC plus `/health`, `/ready` and `/metrics`.
//!
//! The body is read as bytes, not through axum's `Json` extractor, so that any content type
//! (`application/json; charset=utf-8` included) is accepted and every malformed request gets a
//! JSON-RPC error rather than a framework status page.

use crate::caller::CallMeta;
use crate::envelope::{Response, error_response, parse_call, recover_id};
use crate::params::Params;
use crate::rate_limit::{RateLimit, RateLimitLayer};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tora_core::{ErrorCode, RpcError};
use tracing::Instrument;
use tracing::field::Empty;

/// The longest a readiness check waits on each dependency (node, store): Kubernetes probes
/// time out after a few seconds, and a pod whose node froze must turn unready, not hang.
pub const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// What a service implements to be served over JSON-RPC.
pub trait RpcService: Send + Sync + 'static {
    /// Answers one call; unknown methods return `ErrorCode::MethodNotFound`.
    fn call(
        &self,
        meta: &CallMeta,
        method: &str,
        params: Params,
    ) -> impl Future<Output = Result<Value, RpcError>> + Send;
    /// Whether the service can take traffic now (its node and store answer).
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Who the caller's API key proves it is, to count its requests under; `None` (the
    /// default: a service that issues no keys) counts them under the client address.
    fn verified_caller(&self, _meta: &CallMeta) -> Option<String> {
        None
    }
}

/// Bounds on what one HTTP request, and one caller, may ask for.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most calls in one batch request.
    pub max_batch_len: usize,
    /// Requests per verified API key, and per client address for the rest; `None` for no limit.
    pub rate_per_key: Option<RateLimit>,
}

impl Default for Limits {
    fn default() -> Self {
        // A user operation with large callData and initCode fits many times over.
        Self { max_body_bytes: 1024 * 1024, max_batch_len: 100, rate_per_key: None }
    }
}

struct AppState<S> {
    service: Arc<S>,
    limits: Limits,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self { service: self.service.clone(), limits: self.limits }
    }
}

/// The routes of a JSON-RPC service.
pub fn router<S: RpcService>(service: Arc<S>, limits: Limits) -> Router {
    tora_telemetry::prometheus();
    let rpc = post(handle_rpc::<S>);
    let rpc = match limits.rate_per_key {
        Some(limit) => {
            let verifier = service.clone();
            rpc.layer(RateLimitLayer::new(limit, Arc::new(move |meta| verifier.verified_caller(meta))))
        }
        None => rpc,
    };
    Router::new()
        .route("/", rpc)
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/ready", get(handle_ready::<S>))
        .route("/metrics", get(tora_telemetry::render_metrics))
        .with_state(AppState { service, limits })
        .layer(tora_telemetry::http_trace_layer())
}

async fn handle_ready<S: RpcService>(State(state): State<AppState<S>>) -> HttpResponse {
    match state.service.ready().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not ready", "reason": reason })))
                .into_response()
        }
    }
}

/// A JSON-RPC error answer to the call with `id`.
fn answer(id: Value, code: ErrorCode, message: String) -> HttpResponse {
    Json(Response::new(id, Err(RpcError::new(code, message)))).into_response()
}

enum BodyError {
    /// Longer than the limit; `prefix` is what was read up to it.
    TooLarge {
        prefix: Vec<u8>,
    },
    Transport(axum::Error),
}

/// The body, read up to `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    use futures_core::Stream;
    let mut stream = body.into_data_stream();
    let mut read = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx)).await {
        let chunk = chunk.map_err(BodyError::Transport)?;
        let room = limit - read.len();
        if chunk.len() > room {
            read.extend_from_slice(&chunk[..room]);
            return Err(BodyError::TooLarge { prefix: read });
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read.into())
}

async fn handle_rpc<S: RpcService>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> HttpResponse {
    let meta = CallMeta::from_request(&headers, uri.query());
    let limit = state.limits.max_body_bytes;
    let bytes = match read_body(body, limit).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge { prefix }) => {
            let message = format!("request body is larger than {limit} bytes");
            // The id usually comes before the params: a caller that can be answered is.
            return match recover_id(&prefix) {
                Some(id) => answer(id, ErrorCode::InvalidParams, message),
                None => error_response(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::InvalidRequest, message),
            };
        }
        Err(BodyError::Transport(e)) => {
            let message = format!("could not read the request body: {e}");
            return error_response(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message);
        }
    };
    let request: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            // serde_json stops at 128 levels of nesting, so deep input is an error, not a
            // crash; the envelope around deep params is still readable, and its caller is
            // answered by id. (serde_json classifies this error only by its text.)
            let too_deep = e.to_string().starts_with("recursion limit exceeded");
            return match recover_id(&bytes).filter(|_| too_deep) {
                Some(id) => {
                    answer(id, ErrorCode::InvalidParams, "params are nested deeper than 128 levels".into())
                }
                None => error_response(StatusCode::OK, ErrorCode::ParseError, format!("parse error: {e}")),
            };
        }
    };
    match request {
        Value::Array(items) => {
            if items.is_empty() || items.len() > state.limits.max_batch_len {
                let message = format!("a batch must hold 1 to {} requests", state.limits.max_batch_len);
                return error_response(StatusCode::OK, ErrorCode::InvalidRequest, message);
            }
            let mut responses = Vec::with_capacity(items.len());
            for item in items {
                responses.extend(dispatch(&state, &meta, item).await);
            }
            if responses.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                Json(responses).into_response()
            }
        }
        single => match dispatch(&state, &meta, single).await {
            Some(response) => Json(response).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}

/// Runs one call; `None` for a notification.
async fn dispatch<S: RpcService>(state: &AppState<S>, meta: &CallMeta, request: Value) -> Option<Response> {
    let call = match parse_call(request) {
        Ok(call) => call,
        Err((id, error)) => return Some(Response::new(id, Err(error))),
    };
    // One span per call (a batch gets one per element) under the HTTP request's span, named
    // and attributed by the OpenTelemetry JSON-RPC conventions.
    let span = tracing::info_span!(
        "rpc.call",
        otel.name = bounded(&call.method),
        rpc.system = "jsonrpc",
        rpc.method = bounded(&call.method),
        rpc.jsonrpc.version = "2.0",
        rpc.jsonrpc.error_code = Empty,
    );
    let started = Instant::now();
    let outcome = state.service.call(meta, &call.method, Params(call.params)).instrument(span.clone()).await;
    let code = outcome.as_ref().err().map(|e| e.code);
    // Only known methods become label values and span names, so a client cannot grow the
    // metric set or the trace backend's index of operation names.
    let method = if code == Some(ErrorCode::MethodNotFound) { "unknown".to_owned() } else { call.method };
    if let Some(code) = code {
        tora_telemetry::rename_span(&span, method.clone());
        span.record("rpc.jsonrpc.error_code", code.code());
    }
    let code_label = code.map_or_else(|| "ok".to_owned(), |c| c.code().to_string());
    metrics::histogram!("rpc_request_duration_seconds", "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("rpc_requests_total", "method" => method.clone(), "code" => code_label).increment(1);
    if let Err(error) = &outcome {
        tracing::debug!(%method, code = error.code.code(), message = %error.message, "rpc error");
    }
    call.id.map(|id| Response::new(id, outcome))
}

/// A method name as a span attribute: at most 64 bytes, since it comes from the client.
fn bounded(method: &str) -> &str {
    &method[..method.floor_char_boundary(64)]
}
