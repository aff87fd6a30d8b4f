//! Reads the oracle at most once per `ttl`: a quote must not cost a node round trip, and a
//! feed updates far less often than we are asked. Staleness is still checked against the
//! feed's own `updatedAt` on every use.

use super::feed::{check_fresh, unix_now};
use std::sync::RwLock;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tora_core::price::{PriceError, PricePoint, PriceSource};

/// A price source whose answer is reused for `ttl` and refused once older than the heartbeat.
pub struct CachedPrice<S> {
    inner: S,
    ttl: Duration,
    heartbeat: Duration,
    /// Read by every quote without waiting; written once per `ttl`.
    last: RwLock<Option<(Instant, PricePoint)>>,
    /// Held while one request refreshes, so concurrent misses do not all hit the node.
    refreshing: Mutex<()>,
}

impl<S: PriceSource> CachedPrice<S> {
    /// Caches `inner` for `ttl`; answers whose `updatedAt` is older than `heartbeat` are refused,
    /// cached or not.
    pub fn new(inner: S, ttl: Duration, heartbeat: Duration) -> Self {
        Self { inner, ttl, heartbeat, last: RwLock::new(None), refreshing: Mutex::new(()) }
    }

    fn fresh_cached(&self) -> Option<PricePoint> {
        let last = *self.last.read().unwrap_or_else(|p| p.into_inner());
        last.filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, point)| point)
    }
}

impl<S: PriceSource> PriceSource for CachedPrice<S> {
    async fn price(&self) -> Result<PricePoint, PriceError> {
        if let Some(point) = self.fresh_cached() {
            check_fresh(point.updated_at, self.heartbeat, unix_now())?;
            return Ok(point);
        }
        let _refresh = self.refreshing.lock().await;
        // Another request may have refreshed while this one waited.
        if let Some(point) = self.fresh_cached() {
            check_fresh(point.updated_at, self.heartbeat, unix_now())?;
            return Ok(point);
        }
        let point = self.inner.price().await?;
        *self.last.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), point));
        check_fresh(point.updated_at, self.heartbeat, unix_now())?;
        Ok(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tora_core::money::ExchangeRate;

    struct Counting {
        calls: Arc<AtomicU64>,
        updated_at: u64,
    }

    impl PriceSource for Counting {
        async fn price(&self) -> Result<PricePoint, PriceError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(PricePoint { rate: ExchangeRate(U256::from(n + 1)), updated_at: self.updated_at })
        }
    }

    #[tokio::test]
    async fn concurrent_quotes_share_one_oracle_read_per_ttl() {
        let calls = Arc::new(AtomicU64::new(0));
        let source = Counting { calls: calls.clone(), updated_at: unix_now() };
        let cache =
            Arc::new(CachedPrice::new(source, Duration::from_secs(3_600), Duration::from_secs(3_600)));
        let reads: Vec<_> = (0..32)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.price().await.unwrap().rate })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap(), ExchangeRate(U256::from(1)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_expired_ttl_reads_again_and_a_stale_answer_is_refused_even_from_cache() {
        let source = Counting { calls: Arc::default(), updated_at: unix_now() };
        let cache = CachedPrice::new(source, Duration::ZERO, Duration::from_secs(3_600));
        cache.price().await.unwrap();
        assert_eq!(cache.price().await.unwrap().rate, ExchangeRate(U256::from(2)));
        let old = Counting { calls: Arc::default(), updated_at: 1 };
        let cache = CachedPrice::new(old, Duration::from_secs(3_600), Duration::from_secs(60));
        assert!(matches!(cache.price().await, Err(PriceError::Stale { .. })));
    }
}
