//! Reads the oracle at most once per `ttl`: a quote must not cost a node round trip, and a
//! feed updates far less often than we are asked. Staleness is still checked against the
//! feed's own `updatedAt` on every use.

use super::feed::{check_fresh, unix_now};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tora_core::price::{PriceError, PricePoint, PriceSource};

pub struct CachedPrice<S> {
    inner: S,
    ttl: Duration,
    heartbeat: Duration,
    last: Mutex<Option<(Instant, PricePoint)>>,
}

impl<S: PriceSource> CachedPrice<S> {
    pub fn new(inner: S, ttl: Duration, heartbeat: Duration) -> Self {
        Self { inner, ttl, heartbeat, last: Mutex::new(None) }
    }
}

impl<S: PriceSource> PriceSource for CachedPrice<S> {
    async fn price(&self) -> Result<PricePoint, PriceError> {
        // One fetch at a time: concurrent quotes wait for it instead of all hitting the node.
        let mut last = self.last.lock().await;
        if let Some((at, point)) = *last
            && at.elapsed() < self.ttl
        {
            check_fresh(point.updated_at, self.heartbeat, unix_now())?;
            return Ok(point);
        }
        let point = self.inner.price().await?;
        *last = Some((Instant::now(), point));
        Ok(point)
    }
}
