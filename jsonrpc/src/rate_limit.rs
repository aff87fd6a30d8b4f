//! Rate limiting as token buckets: each caller gets `burst` requests at once and `per_second`
//! more every second. A caller is its API key only once the service has verified the key
//! (random key strings would otherwise each get a fresh bucket); every other request counts
//! against its client address (IPv6 by /64, what one host is given).
//!
//! It runs as a tower layer in front of the JSON-RPC route, before the body is read, so a
//! caller over its limit costs a header lookup and a key check. `/health`, `/ready` and
//! `/metrics` are not limited: probes and scrapers carry no key and must not starve each other.
//!
//! Both tables are bounded. Verified keys are few (the operator issues them), so when their
//! table is full the longest-idle one is forgotten; addresses are anyone's, so when theirs is
//! full of active ones a new address is refused, which never locks out a verified key.

use crate::caller::CallMeta;
use crate::envelope::error_response;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tora_core::ErrorCode;
use tower::{Layer, Service};

/// One token bucket's size and refill rate, the same for every caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests a caller regains per second.
    pub per_second: f64,
    /// Requests a caller may make at once (the bucket's size).
    pub burst: f64,
}

/// Buckets idle this long are forgotten first when a table is full.
const IDLE_SECS: f64 = 600.0;
/// The most buckets each table holds.
pub(crate) const MAX_CALLERS: usize = 100_000;

/// What a service tells the limiter about a caller's API key: the identity to count it under
/// when the key is genuine, `None` otherwise.
pub(crate) type VerifyKey = Arc<dyn Fn(&CallMeta) -> Option<String> + Send + Sync>;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One table of buckets; `evict` says whether a full table forgets its longest-idle bucket
/// (true) or refuses the newcomer (false).
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    evict: bool,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(evict: bool) -> Self {
        Self { map: HashMap::new(), evict }
    }

    /// Makes room for `key` if it is new; false when there is none.
    fn room_for(&mut self, key: &K, now: Instant) -> bool {
        if self.map.len() < MAX_CALLERS || self.map.contains_key(key) {
            return true;
        }
        self.map.retain(|_, b| now.duration_since(b.at).as_secs_f64() < IDLE_SECS);
        if self.map.len() < MAX_CALLERS {
            return true;
        }
        if !self.evict {
            return false;
        }
        let oldest = self.map.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| k.clone());
        oldest.is_some_and(|k| self.map.remove(&k).is_some())
    }

    fn take(&mut self, key: K, limit: RateLimit, now: Instant) -> bool {
        if !self.room_for(&key, now) {
            return false;
        }
        let bucket = self.map.entry(key).or_insert(Bucket { tokens: limit.burst, at: now });
        let refill = now.duration_since(bucket.at).as_secs_f64() * limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(limit.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The part of a client address that counts as one caller: an IPv4 address, or an IPv6 /64.
/// `None` (no connection info) is one shared caller.
fn address_key(address: Option<IpAddr>) -> Option<IpAddr> {
    address.map(|ip| match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    })
}

pub(crate) struct RateLimiter {
    limit: RateLimit,
    verify: VerifyKey,
    tables: Mutex<(Buckets<String>, Buckets<Option<IpAddr>>)>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit, verify: VerifyKey) -> Self {
        let tables = Mutex::new((Buckets::new(true), Buckets::new(false)));
        Self { limit, verify, tables }
    }

    /// Takes one token for the caller; false when its bucket is empty (or, for an unknown
    /// address, when the address table is full of active callers).
    pub(crate) fn admit(&self, meta: &CallMeta, address: Option<IpAddr>) -> bool {
        let identity = (self.verify)(meta);
        let now = Instant::now();
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let (keys, addresses) = &mut *tables;
        match identity {
            Some(identity) => keys.take(identity, self.limit, now),
            None => addresses.take(address_key(address), self.limit, now),
        }
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        (tables.0.map.len(), tables.1.map.len())
    }
}

/// Answers 429 with JSON-RPC error -32005 once the caller's bucket is empty.
#[derive(Clone)]
pub(crate) struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
}

impl RateLimitLayer {
    pub(crate) fn new(limit: RateLimit, verify: VerifyKey) -> Self {
        Self { limiter: Arc::new(RateLimiter::new(limit, verify)) }
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
        // Present when the server was started with `into_make_service_with_connect_info`.
        let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if self.limiter.admit(&meta, address) {
            Box::pin(self.inner.call(request))
        } else {
            let message = "too many requests for this API key or client address".to_owned();
            let response = error_response(StatusCode::TOO_MANY_REQUESTS, ErrorCode::LimitExceeded, message);
            Box::pin(std::future::ready(Ok(response)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Keys that start with "good-" verify, as the subject after the prefix.
    fn limiter(burst: f64) -> RateLimiter {
        let verify: VerifyKey =
            Arc::new(|meta| meta.api_key.as_deref().and_then(|k| k.strip_prefix("good-")).map(str::to_owned));
        RateLimiter::new(RateLimit { per_second: 1.0 / 86_400.0, burst }, verify)
    }

    fn with_key(key: &str) -> CallMeta {
        CallMeta { api_key: Some(key.to_owned()) }
    }

    fn v4(n: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn unverified_keys_count_against_their_address() {
        let limiter = limiter(2.0);
        assert!(limiter.admit(&with_key("random-1"), v4(1)));
        assert!(limiter.admit(&with_key("random-2"), v4(1)));
        assert!(!limiter.admit(&with_key("random-3"), v4(1)), "a fresh string is not a fresh bucket");
        assert!(!limiter.admit(&CallMeta::default(), v4(1)));
        assert!(limiter.admit(&with_key("good-dapp"), v4(1)), "a verified key has its own bucket");
        assert!(limiter.admit(&CallMeta::default(), v4(2)), "another address is not affected");
    }

    #[test]
    fn one_ipv6_host_is_its_64_prefix() {
        let limiter = limiter(1.0);
        let host =
            |low: u64| Some(IpAddr::V6(Ipv6Addr::from((0x2001_0db8_0000_0001u128 << 64) | u128::from(low))));
        assert!(limiter.admit(&CallMeta::default(), host(1)));
        assert!(!limiter.admit(&CallMeta::default(), host(2)), "same /64");
    }

    #[test]
    fn a_full_address_table_never_locks_out_a_verified_key_and_tables_stay_bounded() {
        let limiter = limiter(1.0);
        for n in 0..MAX_CALLERS as u32 {
            assert!(limiter.admit(&with_key(&format!("random-{n}")), v4(n)));
        }
        assert!(!limiter.admit(&CallMeta::default(), v4(u32::MAX)), "no room for a new address");
        assert!(limiter.admit(&with_key("good-new-dapp"), v4(u32::MAX)));
        for n in 0..MAX_CALLERS + 10 {
            limiter.admit(&with_key(&format!("good-{n}")), v4(0));
        }
        assert_eq!(limiter.sizes(), (MAX_CALLERS, MAX_CALLERS));
        // The newest verified key got a bucket: the longest idle one made room.
        assert!(!limiter.admit(&with_key(&format!("good-{}", MAX_CALLERS + 9)), v4(0)), "its bucket is used");
    }
}
