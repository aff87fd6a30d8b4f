//! The chain's head as validations pin it, fetched at most once per `max_age`: at hundreds of
//! operations a second, asking the node for its latest block before each one would cost a
//! node call per operation for a block that changes once a second (or four times, on opBNB).
//!
//! A head up to `max_age` old is safe for accepting operations: the bundle-time validation
//! pins a fresh block, and a validation that fails on a cached head is retried on a fresh one
//! (see `Validator::validate`), so a wallet never sees a rejection for state it already sees.

use super::state::PinnedBlock;
use alloy::providers::DynProvider;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How the head was obtained: a rejection on a cached head is worth a second try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Fetched from the node just now.
    Fetched,
    /// Taken from the cache, up to `max_age` old.
    Cached,
}

/// The node's latest block, cached for `max_age` and fetched by one caller at a time.
pub struct ChainHead {
    provider: DynProvider,
    max_age: Duration,
    latest: Mutex<Option<(Instant, PinnedBlock)>>,
    /// One fetch at a time: callers that find the head stale while a fetch is in flight wait
    /// for it instead of each asking the node.
    fetching: tokio::sync::Mutex<()>,
}

impl ChainHead {
    /// A head read through `provider`, fetched again once the cached one is `max_age` old.
    pub fn new(provider: DynProvider, max_age: Duration) -> Self {
        Self { provider, max_age, latest: Mutex::new(None), fetching: tokio::sync::Mutex::new(()) }
    }

    /// The newest head fetched within `max_age`, else a fetched one.
    pub async fn latest(&self) -> Result<(PinnedBlock, Freshness), String> {
        if let Some(block) = self.cached() {
            return Ok((block, Freshness::Cached));
        }
        let _turn = self.fetching.lock().await;
        // Fetched by the caller we waited for.
        if let Some(block) = self.cached() {
            return Ok((block, Freshness::Cached));
        }
        self.fetch().await.map(|block| (block, Freshness::Fetched))
    }

    /// The node's latest block now, remembered for the callers that follow.
    pub async fn fetch(&self) -> Result<PinnedBlock, String> {
        let block = PinnedBlock::latest(&self.provider).await?;
        let mut slot = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        // A slower concurrent fetch must not replace a newer head with an older one.
        if slot.is_none_or(|(_, held)| held.number <= block.number) {
            *slot = Some((Instant::now(), block));
        }
        Ok(block)
    }

    fn cached(&self) -> Option<PinnedBlock> {
        let slot = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        slot.filter(|(at, _)| at.elapsed() < self.max_age).map(|(_, block)| block)
    }
}
