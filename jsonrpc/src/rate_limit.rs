//! Per-API-key rate limiting as a token bucket: each key gets `burst` requests at once and
//! `per_second` more every second. Requests without a key share one bucket.

use crate::server::CallMeta;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

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
