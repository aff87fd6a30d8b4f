//! The in-memory pool: one lock over a bounded map of operations and the reputation table.
//! Scans are linear in the pool size, which the bound keeps small (thousands).

use super::replacement::{bumped, is_replacement_priced};
use super::reputation::{Reputation, ReputationEntry, ReputationStatus};
use super::{Mempool, PoolError, PoolOperation, SAME_SENDER_MEMPOOL_COUNT, THROTTLED_ENTITY_MEMPOOL_COUNT};
use crate::validation::rules::check_mempool_conflicts;
use alloy::primitives::{Address, B256, U256};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// The most operations the pool holds; past it the lowest effective fee is evicted.
    pub max_operations: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_operations: 4_096 }
    }
}

#[derive(Default)]
struct Inner {
    ops: HashMap<B256, (u64, PoolOperation)>,
    by_sender_nonce: HashMap<(Address, U256), B256>,
    reputation: Reputation,
    /// Arrival counter: dump order, and the tie-break between equal fees (first come first).
    next_seq: u64,
    base_fee: u128,
}

pub struct InMemoryPool {
    settings: PoolSettings,
    inner: Mutex<Inner>,
}

impl InMemoryPool {
    pub fn new(settings: PoolSettings) -> Self {
        Self { settings, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update below leaves the maps consistent before it can panic, so a poisoned
        // lock still guards valid state.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn ops_with(&self, entity: Address, except: Option<B256>) -> usize {
        self.ops
            .values()
            .filter(|(_, p)| Some(p.hash) != except && p.entities().any(|e| e.address == entity))
            .count()
    }

    fn check_reputation(&self, op: &PoolOperation, replaced: Option<B256>) -> Result<(), PoolError> {
        for entity in op.entities() {
            match self.reputation.status(entity.address) {
                ReputationStatus::Ok => {}
                ReputationStatus::Banned => return Err(PoolError::Banned(entity.address)),
                ReputationStatus::Throttled => {
                    let count = self.ops_with(entity.address, replaced);
                    if count >= THROTTLED_ENTITY_MEMPOOL_COUNT {
                        return Err(PoolError::Throttled { entity: entity.address, count });
                    }
                }
            }
        }
        Ok(())
    }

    /// ERC-7562 STO-040/041 against every other pending operation.
    fn check_conflicts(&self, op: &PoolOperation, replaced: Option<B256>) -> Result<(), PoolError> {
        let others = self.ops.values().map(|(_, p)| p).filter(|p| Some(p.hash) != replaced);
        let mut senders = HashSet::new();
        let mut entities = HashSet::new();
        for other in others {
            senders.insert(other.sender.address);
            entities.extend(other.non_sender_entities());
        }
        let own = op.non_sender_entities();
        check_mempool_conflicts(op.sender.address, &own, &op.associated_storage, &senders, &entities)?;
        Ok(())
    }

    /// The pending operation with the lowest effective fee (the latest arrival among equals).
    fn lowest(&self) -> Option<(u128, B256)> {
        self.ops
            .values()
            .map(|(seq, p)| (p.effective_fee(self.base_fee), std::cmp::Reverse(*seq), p.hash))
            .min()
            .map(|(fee, _, hash)| (fee, hash))
    }

    fn take(&mut self, hash: B256) -> Option<PoolOperation> {
        let (_, op) = self.ops.remove(&hash)?;
        self.by_sender_nonce.remove(&(op.op.sender, op.op.nonce));
        Some(op)
    }

    fn sorted(&self) -> Vec<&(u64, PoolOperation)> {
        let mut all: Vec<_> = self.ops.values().collect();
        all.sort_by_key(|(seq, _)| *seq);
        all
    }
}

impl Mempool for InMemoryPool {
    fn add(&self, op: PoolOperation) -> Result<B256, PoolError> {
        let mut inner = self.lock();
        if inner.ops.contains_key(&op.hash) {
            return Err(PoolError::AlreadyKnown(op.hash));
        }
        let key = (op.op.sender, op.op.nonce);
        let replaced = inner.by_sender_nonce.get(&key).copied();
        inner.check_reputation(&op, replaced)?;
        match replaced.and_then(|hash| inner.ops.get(&hash)) {
            Some((_, old)) if !is_replacement_priced(&old.op, &op.op) => {
                return Err(PoolError::ReplacementUnderpriced {
                    min_max_fee: bumped(old.op.max_fee_per_gas),
                    min_priority_fee: bumped(old.op.max_priority_fee_per_gas),
                });
            }
            Some(_) => {}
            None if !op.sender.staked => {
                let count = inner.ops.values().filter(|(_, p)| p.op.sender == op.op.sender).count();
                if count >= SAME_SENDER_MEMPOOL_COUNT {
                    return Err(PoolError::SenderLimit { sender: op.op.sender, count });
                }
            }
            None => {}
        }
        inner.check_conflicts(&op, replaced)?;
        if replaced.is_none() && inner.ops.len() >= self.settings.max_operations.max(1) {
            let fee = op.effective_fee(inner.base_fee);
            match inner.lowest() {
                Some((lowest, hash)) if fee > lowest => {
                    inner.take(hash);
                    tracing::debug!(%hash, fee = lowest, "evicted the cheapest operation from a full mempool");
                }
                Some((lowest, _)) => return Err(PoolError::Full { fee, lowest }),
                None => {}
            }
        }
        if let Some(old) = replaced {
            inner.take(old);
        }
        let addresses: Vec<Address> = op.entities().map(|e| e.address).collect();
        for address in addresses {
            inner.reputation.seen(address);
        }
        let hash = op.hash;
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.by_sender_nonce.insert(key, hash);
        inner.ops.insert(hash, (seq, op));
        Ok(hash)
    }

    fn check_entities(&self, entities: &[Address]) -> Result<(), PoolError> {
        let inner = self.lock();
        match entities.iter().find(|e| inner.reputation.status(**e) == ReputationStatus::Banned) {
            Some(&banned) => Err(PoolError::Banned(banned)),
            None => Ok(()),
        }
    }

    fn get(&self, hash: B256) -> Option<PoolOperation> {
        self.lock().ops.get(&hash).map(|(_, op)| op.clone())
    }

    fn remove(&self, hash: B256) -> Option<PoolOperation> {
        self.lock().take(hash)
    }

    fn mark_included(&self, hash: B256) -> Option<PoolOperation> {
        let mut inner = self.lock();
        let op = inner.take(hash)?;
        for entity in op.entities() {
            inner.reputation.included(entity.address);
        }
        Some(op)
    }

    fn on_block(&self, timestamp: u64, base_fee: u128) -> Vec<B256> {
        let mut inner = self.lock();
        inner.base_fee = base_fee;
        // The EntryPoint refuses an operation when block.timestamp > validUntil.
        let expired: Vec<B256> = inner
            .ops
            .values()
            .filter(|(_, p)| p.valid_until.is_some_and(|until| until < timestamp))
            .map(|(_, p)| p.hash)
            .collect();
        for hash in &expired {
            inner.take(*hash);
        }
        expired
    }

    fn best(&self, max: usize) -> Vec<PoolOperation> {
        let inner = self.lock();
        let mut all = inner.sorted();
        // Stable sort: equal fees keep arrival order.
        all.sort_by_key(|(_, p)| std::cmp::Reverse(p.effective_fee(inner.base_fee)));
        all.into_iter().take(max).map(|(_, p)| p.clone()).collect()
    }

    fn dump(&self) -> Vec<PoolOperation> {
        self.lock().sorted().into_iter().map(|(_, p)| p.clone()).collect()
    }

    fn clear(&self) {
        let mut inner = self.lock();
        inner.ops.clear();
        inner.by_sender_nonce.clear();
    }

    fn penalize(&self, entity: Address) {
        self.lock().reputation.crashed_handle_ops(entity);
    }

    fn dump_reputation(&self) -> Vec<ReputationEntry> {
        self.lock().reputation.dump()
    }

    fn set_reputation(&self, entries: &[ReputationEntry]) {
        let mut inner = self.lock();
        for entry in entries {
            inner.reputation.set(entry);
        }
    }

    fn clear_reputation(&self) {
        self.lock().reputation.clear();
    }

    fn decay_reputation(&self) {
        self.lock().reputation.decay();
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
