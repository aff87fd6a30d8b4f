//! The in-memory store: the pool's state behind one lock in this process. Scans are linear in
//! the pool size, which the bound keeps small (thousands).

use super::{Applied, Mempool, PoolError, PoolEvent, PoolSettings, PoolState};
use alloy::primitives::B256;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The [`Mempool`] of one EntryPoint held in process memory: `tora up`'s default.
pub struct InMemoryPool {
    state: Mutex<PoolState>,
    claim_ttl: std::time::Duration,
}

impl InMemoryPool {
    /// An empty pool.
    pub fn new(settings: PoolSettings) -> Self {
        Self { state: Mutex::new(PoolState::new(settings)), claim_ttl: settings.claim_ttl }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Every event leaves the maps consistent before it can panic, so a poisoned lock
        // still guards valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Mempool for InMemoryPool {
    fn read<R>(&self, f: impl FnOnce(&PoolState) -> R) -> R {
        f(&self.lock())
    }

    async fn write(
        &self,
        mut make: impl FnMut(&PoolState) -> Result<PoolEvent, PoolError> + Send,
    ) -> Result<Applied, PoolError> {
        let mut state = self.lock();
        let event = make(&state)?;
        Ok(state.apply(event))
    }

    async fn sync(&self) {}

    /// One process has one builder, which never puts an operation in two of its bundles: every
    /// claim succeeds.
    async fn claim(&self, hashes: &[B256]) -> HashSet<B256> {
        hashes.iter().copied().collect()
    }

    async fn release(&self, _hashes: &[B256]) {}

    fn claim_ttl(&self) -> std::time::Duration {
        self.claim_ttl
    }

    async fn store_ready(&self) -> Result<(), String> {
        Ok(())
    }
}
