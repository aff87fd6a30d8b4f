//! The in-memory pool: one lock over a bounded map of operations and the reputation table.
//! Scans are linear in the pool size, which the bound keeps small (thousands).

use super::replacement::{ShortFee, short_fee};
use super::reputation::{Reputation, ReputationEntry, ReputationStatus};
use super::{
    Expiry, Mempool, PoolBlock, PoolError, PoolOperation, SAME_SENDER_MEMPOOL_COUNT,
    THROTTLED_ENTITY_LIVE_BLOCKS, THROTTLED_ENTITY_MEMPOOL_COUNT,
};
use crate::validation::Phase;
use crate::validation::rules::check_mempool_roles;
use alloy::primitives::{Address, B256, U256};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Limits of the in-memory pool.
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
    /// The block number each operation arrived at (THROTTLED_ENTITY_LIVE_BLOCKS); set for
    /// every operation once a block is known.
    arrived_at: HashMap<B256, u64>,
    reputation: Reputation,
    /// Arrival counter: dump order, and the tie-break between equal fees (first come first).
    next_seq: u64,
    /// The newest block seen: effective fees and arrival blocks are read against it.
    block: PoolBlock,
}

/// The [`Mempool`] of one EntryPoint held in process memory, behind one lock.
pub struct InMemoryPool {
    settings: PoolSettings,
    inner: Mutex<Inner>,
}

impl InMemoryPool {
    /// An empty pool.
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
        self.ops.values().filter(|(_, p)| Some(p.hash) != except && p.references(entity)).count()
    }

    /// ERC-7562 reputation and per-entity limits (GREP-010, GREP-020, UREP-010, UREP-020).
    fn check_reputation(&self, op: &PoolOperation, replaced: Option<B256>) -> Result<(), PoolError> {
        for (role, entity) in op.entities_with_roles() {
            let count = || self.ops_with(entity.address, replaced);
            match self.reputation.status(entity.address) {
                ReputationStatus::Banned => return Err(PoolError::Banned { role, entity: entity.address }),
                ReputationStatus::Throttled => {
                    let count = count();
                    if count >= THROTTLED_ENTITY_MEMPOOL_COUNT {
                        return Err(PoolError::Throttled { role, entity: entity.address, count });
                    }
                }
                // SREP-040: an ok staked entity has no limit.
                ReputationStatus::Ok if entity.staked => {}
                ReputationStatus::Ok => match role {
                    Phase::Account if replaced.is_none() => {
                        let count = count();
                        if count >= SAME_SENDER_MEMPOOL_COUNT {
                            return Err(PoolError::SenderLimit { sender: entity.address, count });
                        }
                    }
                    Phase::Paymaster => {
                        let count = count();
                        let allowed = self.reputation.unstaked_allowance(entity.address);
                        if u64::try_from(count).unwrap_or(u64::MAX) >= allowed {
                            return Err(PoolError::UnstakedEntityLimit {
                                role,
                                entity: entity.address,
                                count,
                            });
                        }
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }

    /// ERC-7562 STO-040 against every other pending operation.
    fn check_roles(&self, op: &PoolOperation, replaced: Option<B256>) -> Result<(), PoolError> {
        let mut senders = HashSet::new();
        let mut entities = HashSet::new();
        for (_, other) in self.ops.values().filter(|(_, p)| Some(p.hash) != replaced) {
            senders.insert(other.sender.address);
            entities.extend(other.non_sender_entities());
        }
        let (factory, paymaster) = (op.factory.map(|f| f.address), op.paymaster.map(|p| p.address));
        check_mempool_roles(op.sender.address, factory, paymaster, &senders, &entities)?;
        Ok(())
    }

    /// ERC-7562 EREP-010: the paymaster's deposit covers the prefund of every pending operation
    /// it pays for, this one included.
    fn check_paymaster_deposit(&self, op: &PoolOperation, replaced: Option<B256>) -> Result<(), PoolError> {
        let (Some(paymaster), Some(deposit)) = (op.paymaster, op.paymaster_deposit) else {
            return Ok(());
        };
        let needed = self
            .ops
            .values()
            .filter(|(_, p)| {
                Some(p.hash) != replaced && p.paymaster.is_some_and(|pm| pm.address == paymaster.address)
            })
            .fold(op.prefund.0, |sum, (_, p)| sum.saturating_add(p.prefund.0));
        if needed > deposit.0 {
            return Err(PoolError::PaymasterDepositTooLow { paymaster: paymaster.address, deposit, needed });
        }
        Ok(())
    }

    /// The pending operation with the lowest effective fee (the latest arrival among equals).
    fn lowest(&self) -> Option<(u128, B256)> {
        self.ops
            .values()
            .map(|(seq, p)| (p.effective_fee(self.block.base_fee), std::cmp::Reverse(*seq), p.hash))
            .min()
            .map(|(fee, _, hash)| (fee, hash))
    }

    fn take(&mut self, hash: B256) -> Option<(u64, PoolOperation)> {
        let (seq, op) = self.ops.remove(&hash)?;
        self.by_sender_nonce.remove(&(op.op.sender, op.op.nonce));
        self.arrived_at.remove(&hash);
        Some((seq, op))
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
        if let Some((_, old)) = replaced.and_then(|hash| inner.ops.get(&hash))
            && let Some(short) = short_fee(&old.op, &op.op)
        {
            let ShortFee { fee, old, new, least } = short;
            return Err(PoolError::ReplacementUnderpriced { fee, old, new, min: least });
        }
        inner.check_roles(&op, replaced)?;
        inner.check_paymaster_deposit(&op, replaced)?;
        if replaced.is_none() && inner.ops.len() >= self.settings.max_operations.max(1) {
            let fee = op.effective_fee(inner.block.base_fee);
            match inner.lowest() {
                Some((lowest, hash)) if fee > lowest => {
                    inner.take(hash);
                    tracing::debug!(%hash, fee = lowest, "evicted the cheapest operation from a full mempool");
                }
                Some((lowest, _)) => return Err(PoolError::Full { fee, lowest }),
                None => {}
            }
        }
        // A replacement keeps its place in arrival order.
        let seq = match replaced.and_then(|old| inner.take(old)) {
            Some((seq, old)) => {
                // GREP-050: an entity the replacement no longer names gives back its opsSeen.
                for gone in old.entities().filter(|e| !op.references(e.address)) {
                    inner.reputation.unsee(gone.address);
                }
                seq
            }
            None => {
                inner.next_seq += 1;
                inner.next_seq - 1
            }
        };
        let addresses: Vec<Address> = op.entities().map(|e| e.address).collect();
        for address in addresses {
            inner.reputation.seen(address);
        }
        let hash = op.hash;
        inner.by_sender_nonce.insert(key, hash);
        // A replacement is a new operation: its wait starts now. Before the first block is
        // known, the first block read starts it.
        if inner.block != PoolBlock::default() {
            let arrived = inner.block.number;
            inner.arrived_at.insert(hash, arrived);
        }
        inner.ops.insert(hash, (seq, op));
        Ok(hash)
    }

    fn check_entities(&self, entities: &[(Phase, Address)]) -> Result<(), PoolError> {
        let inner = self.lock();
        match entities.iter().find(|(_, e)| inner.reputation.status(*e) == ReputationStatus::Banned) {
            Some(&(role, entity)) => Err(PoolError::Banned { role, entity }),
            None => Ok(()),
        }
    }

    fn get(&self, hash: B256) -> Option<PoolOperation> {
        self.lock().ops.get(&hash).map(|(_, op)| op.clone())
    }

    fn remove(&self, hash: B256) -> Option<PoolOperation> {
        self.lock().take(hash).map(|(_, op)| op)
    }

    fn mark_included(&self, hash: B256) -> Option<PoolOperation> {
        let mut inner = self.lock();
        let (_, op) = inner.take(hash)?;
        for entity in op.entities() {
            inner.reputation.included(entity.address);
        }
        Some(op)
    }

    fn on_block(&self, block: PoolBlock) -> Vec<(B256, Expiry)> {
        let mut inner = self.lock();
        inner.block = block;
        let inner = &mut *inner;
        for hash in inner.ops.keys() {
            inner.arrived_at.entry(*hash).or_insert(block.number);
        }
        let expired: Vec<(B256, Expiry)> = inner
            .ops
            .values()
            .filter_map(|(_, p)| {
                // The EntryPoint refuses an operation when block.timestamp > validUntil.
                if p.valid_until.is_some_and(|until| until < block.timestamp) {
                    return Some((p.hash, Expiry::ValidUntil));
                }
                let waited = inner.arrived_at.get(&p.hash).map_or(0, |at| block.number.saturating_sub(*at));
                let throttled = || {
                    p.entities().any(|e| inner.reputation.status(e.address) == ReputationStatus::Throttled)
                };
                (waited >= THROTTLED_ENTITY_LIVE_BLOCKS && throttled())
                    .then_some((p.hash, Expiry::ThrottledTooLong))
            })
            .collect();
        for (hash, _) in &expired {
            inner.take(*hash);
        }
        expired
    }

    fn best(&self, max: usize) -> Vec<PoolOperation> {
        let inner = self.lock();
        let mut all = inner.sorted();
        // Stable sort: equal fees keep arrival order.
        all.sort_by_key(|(_, p)| std::cmp::Reverse(p.effective_fee(inner.block.base_fee)));
        all.into_iter().take(max).map(|(_, p)| p.clone()).collect()
    }

    fn dump(&self) -> Vec<PoolOperation> {
        self.lock().sorted().into_iter().map(|(_, p)| p.clone()).collect()
    }

    fn senders(&self) -> HashSet<Address> {
        self.lock().ops.values().map(|(_, p)| p.op.sender).collect()
    }

    fn len(&self) -> usize {
        self.lock().ops.len()
    }

    fn clear(&self) {
        let mut inner = self.lock();
        inner.ops.clear();
        inner.by_sender_nonce.clear();
        inner.arrived_at.clear();
    }

    fn penalize(&self, entity: Address) -> Vec<B256> {
        let mut inner = self.lock();
        inner.reputation.crashed_handle_ops(entity);
        // GREP-010: a banned entity's operations leave the pool with it.
        let purged: Vec<B256> =
            inner.ops.values().filter(|(_, p)| p.references(entity)).map(|(_, p)| p.hash).collect();
        for hash in &purged {
            inner.take(*hash);
        }
        purged
    }

    fn unsee(&self, entity: Address) {
        self.lock().reputation.unsee(entity);
    }

    fn reputation_status(&self, entity: Address) -> ReputationStatus {
        self.lock().reputation.status(entity)
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
