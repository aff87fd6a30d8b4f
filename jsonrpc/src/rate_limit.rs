//! Per-API-key rate limiting as a token bucket: each key gets `burst` requests at once and
//! `per_second` more every second. Requests without a key share one bucket.
//!
//! It runs as a tower layer in front of the JSON-RPC route, before the body is read, so a
//! caller over its limit costs one header lookup. `/health`, `/ready` and `/metrics` are not
//! limited: probes and scrapers carry no key and must not starve each other.

use crate::server::{CallMeta, error_response};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tora_core::ErrorCode;
use tower::{Layer, Service};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// Buckets idle this long are forgotten, so the map stays bounded by active keys.
const IDLE_SECS: f64 = 600.0;
/// Past this many keys, idle buckets are pruned before a new one is added.
const MAX_KEYS: usize = 100_000;

pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for the caller; false when its bucket is empty.
    pub(crate) fn admit(&self, meta: &CallMeta) -> bool {
        let key = meta.api_key.as_deref().unwrap_or("");
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < IDLE_SECS);
            if buckets.len() >= MAX_KEYS {
                return false;
            }
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.limit.burst, now));
        let refill = now.duration_since(*at).as_secs_f64() * self.limit.per_second;
        *tokens = (*tokens + refill).min(self.limit.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Answers 429 with JSON-RPC error -32005 once the caller's bucket is empty.
#[derive(Clone)]
pub(crate) struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
}

impl RateLimitLayer {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limiter: Arc::new(RateLimiter::new(limit)) }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited { inner, limiter: self.limiter.clone() }
    }
}

#[derive(Clone)]
pub(crate) struct RateLimited<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
}

impl<S> Service<Request> for RateLimited<S>
where
    S: Service<Request, Response = Response>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let meta = CallMeta::from_request(request.headers(), request.uri().query());
        if self.limiter.admit(&meta) {
            Box::pin(self.inner.call(request))
        } else {
            let message = "too many requests for this API key".to_owned();
            let response = error_response(StatusCode::TOO_MANY_REQUESTS, ErrorCode::LimitExceeded, message);
            Box::pin(std::future::ready(Ok(response)))
        }
    }
}
