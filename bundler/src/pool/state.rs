//! The pool's state and its one rule implementation, shared by both stores.
//!
//! Every change to the pool is a [`PoolEvent`], and the state is a pure fold of the events
//! applied to it. The in-memory pool applies them under its lock; the Redis pool appends them
//! to a shared log in Redis and every replica folds the same log into the same state. Admission
//! is split in two: [`PoolState::admit`] checks an operation against the ERC-7562 mempool rules
//! and says what adding it takes (an eviction), then [`PoolState::apply`] makes the change. A
//! store applies an admitted operation only on the state it was checked against, so the rules
//! hold exactly across replicas.

use super::replacement::{ShortFee, short_fee};
use super::reputation::{Reputation, ReputationEntry, ReputationStatus};
use super::{
    Expiry, PoolBlock, PoolError, PoolOperation, SAME_SENDER_MEMPOOL_COUNT, THROTTLED_ENTITY_LIVE_BLOCKS,
    THROTTLED_ENTITY_MEMPOOL_COUNT,
};
use crate::validation::Phase;
use crate::validation::rules::check_mempool_roles;
use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Limits of the pool, and how the shared store keeps it.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// The most operations the pool holds; past it the lowest effective fee is evicted.
    pub max_operations: usize,
    /// How long a builder's claim on an operation lasts unless renewed (shared store).
    pub claim_ttl: std::time::Duration,
    /// Events between two snapshots of the shared store: its log holds about this many.
    pub snapshot_every: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_operations: 4_096, claim_ttl: super::CLAIM_TTL, snapshot_every: 10_000 }
    }
}

/// One change to the pool. Applying the same events in the same order to the same state gives
/// the same state, on any replica.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PoolEvent {
    /// An operation admitted by [`PoolState::admit`]; `evict` is the one it pushes out of a
    /// full pool.
    Add {
        /// The operation.
        op: Box<PoolOperation>,
        /// The operation evicted to make room, if any.
        evict: Option<B256>,
    },
    /// Dropped (a failed bundle simulation, a failed second validation, or on request).
    Remove(B256),
    /// Included by a bundle: opsIncluded for its entities.
    Include(B256),
    /// A new block: expiries, and effective fees at its base fee.
    Block(PoolBlock),
    /// debug_bundler_clearMempool.
    Clear,
    /// GREP-040 for this entity, and GREP-010 for its operations.
    Penalize(Address),
    /// EREP-015: one opsSeen taken back.
    Unsee(Address),
    /// debug_bundler_setReputation.
    SetReputation(Vec<ReputationEntry>),
    /// debug_bundler_clearReputation.
    ClearReputation,
    /// The hourly decay.
    DecayReputation,
}

/// What applying an event changed, for the caller that asked for it.
#[derive(Debug, Default)]
pub struct Applied {
    /// The operation a Remove or Include took out.
    pub taken: Option<PoolOperation>,
    /// Operations a Block expired, and why.
    pub expired: Vec<(B256, Expiry)>,
    /// Operations a Penalize purged.
    pub purged: Vec<B256>,
}

/// The pending operations of one EntryPoint and the reputation table.
#[derive(Default)]
pub struct PoolState {
    settings: PoolSettings,
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
    /// Counts kept as operations come and go, so that admission never scans the pool.
    index: EntityIndex,
}

/// Per address: pending operations that name it at all, as their sender, and as their factory
/// or paymaster; per paymaster, the sum of its operations' prefunds.
#[derive(Default)]
struct EntityIndex {
    referencing: HashMap<Address, usize>,
    as_sender: HashMap<Address, usize>,
    as_factory_or_paymaster: HashMap<Address, usize>,
    paymaster_prefunds: HashMap<Address, U256>,
}

impl EntityIndex {
    fn count(map: &mut HashMap<Address, usize>, address: Address, add: bool) {
        let n = map.entry(address).or_default();
        *n = if add { *n + 1 } else { n.saturating_sub(1) };
        if *n == 0 {
            map.remove(&address);
        }
    }

    /// Counts `op` in (`add`) or out.
    fn update(&mut self, op: &PoolOperation, add: bool) {
        let mut named: Vec<Address> = op.entities().map(|e| e.address).collect();
        named.sort_unstable();
        named.dedup();
        for address in named {
            Self::count(&mut self.referencing, address, add);
        }
        Self::count(&mut self.as_sender, op.sender.address, add);
        let mut others = op.non_sender_entities();
        others.sort_unstable();
        others.dedup();
        for address in others {
            Self::count(&mut self.as_factory_or_paymaster, address, add);
        }
        if let Some(paymaster) = op.paymaster {
            let sum = self.paymaster_prefunds.entry(paymaster.address).or_default();
            *sum = if add { sum.saturating_add(op.prefund.0) } else { sum.saturating_sub(op.prefund.0) };
            if !add && sum.is_zero() {
                self.paymaster_prefunds.remove(&paymaster.address);
            }
        }
    }

    fn get(map: &HashMap<Address, usize>, address: Address) -> usize {
        map.get(&address).copied().unwrap_or_default()
    }
}

/// A [`PoolState`] written out whole: the Redis pool's snapshot, from which a replica starts
/// instead of replaying the whole log.
#[derive(Debug, Serialize, Deserialize)]
pub struct PoolSnapshot {
    ops: Vec<(u64, PoolOperation, Option<u64>)>,
    reputation: Vec<ReputationEntry>,
    next_seq: u64,
    block: PoolBlock,
}

impl PoolState {
    /// An empty pool with these limits.
    pub fn new(settings: PoolSettings) -> Self {
        Self { settings, ..Self::default() }
    }

    /// Checks `op` against every mempool rule; returns the event that adds it.
    pub fn admit(&self, op: PoolOperation) -> Result<PoolEvent, PoolError> {
        if self.ops.contains_key(&op.hash) {
            return Err(PoolError::AlreadyKnown(op.hash));
        }
        let replaced = self.by_sender_nonce.get(&(op.op.sender, op.op.nonce)).copied();
        self.check_reputation(&op, replaced)?;
        if let Some((_, old)) = replaced.and_then(|hash| self.ops.get(&hash))
            && let Some(short) = short_fee(&old.op, &op.op)
        {
            let ShortFee { fee, old, new, least } = short;
            return Err(PoolError::ReplacementUnderpriced { fee, old, new, min: least });
        }
        self.check_roles(&op, replaced)?;
        self.check_paymaster_deposit(&op, replaced)?;
        let mut evict = None;
        if replaced.is_none() && self.ops.len() >= self.settings.max_operations.max(1) {
            let fee = op.effective_fee(self.block.base_fee);
            match self.lowest() {
                Some((lowest, hash)) if fee > lowest => evict = Some(hash),
                Some((lowest, _)) => return Err(PoolError::Full { fee, lowest }),
                None => {}
            }
        }
        Ok(PoolEvent::Add { op: Box::new(op), evict })
    }

    /// Makes the change `event` describes.
    pub fn apply(&mut self, event: PoolEvent) -> Applied {
        let mut applied = Applied::default();
        match event {
            PoolEvent::Add { op, evict } => self.insert(*op, evict),
            PoolEvent::Remove(hash) => applied.taken = self.take(hash).map(|(_, op)| op),
            PoolEvent::Include(hash) => {
                applied.taken = self.take(hash).map(|(_, op)| op);
                for entity in applied.taken.iter().flat_map(|op| op.entities()) {
                    self.reputation.included(entity.address);
                }
            }
            PoolEvent::Block(block) => applied.expired = self.on_block(block),
            PoolEvent::Clear => {
                self.index = EntityIndex::default();
                self.ops.clear();
                self.by_sender_nonce.clear();
                self.arrived_at.clear();
            }
            PoolEvent::Penalize(entity) => {
                self.reputation.crashed_handle_ops(entity);
                // GREP-010: a banned entity's operations leave the pool with it.
                applied.purged =
                    self.ops.values().filter(|(_, p)| p.references(entity)).map(|(_, p)| p.hash).collect();
                for hash in &applied.purged {
                    self.take(*hash);
                }
            }
            PoolEvent::Unsee(entity) => self.reputation.unsee(entity),
            PoolEvent::SetReputation(entries) => {
                for entry in &entries {
                    self.reputation.set(entry);
                }
            }
            PoolEvent::ClearReputation => self.reputation.clear(),
            PoolEvent::DecayReputation => self.reputation.decay(),
        }
        applied
    }

    fn insert(&mut self, op: PoolOperation, evict: Option<B256>) {
        // Admitted on this very state, so only a replayed event can find it here already.
        if self.ops.contains_key(&op.hash) {
            return;
        }
        if let Some(hash) = evict.and_then(|hash| self.take(hash).map(|_| hash)) {
            tracing::debug!(%hash, "evicted the cheapest operation from a full mempool");
        }
        let key = (op.op.sender, op.op.nonce);
        let replaced = self.by_sender_nonce.get(&key).copied();
        // A replacement keeps its place in arrival order.
        let seq = match replaced.and_then(|old| self.take(old)) {
            Some((seq, old)) => {
                // GREP-050: an entity the replacement no longer names gives back its opsSeen.
                for gone in old.entities().filter(|e| !op.references(e.address)) {
                    self.reputation.unsee(gone.address);
                }
                seq
            }
            None => {
                self.next_seq += 1;
                self.next_seq - 1
            }
        };
        for entity in op.entities() {
            self.reputation.seen(entity.address);
        }
        let hash = op.hash;
        self.by_sender_nonce.insert(key, hash);
        // A replacement is a new operation: its wait starts now. Before the first block is
        // known, the first block read starts it.
        if self.block != PoolBlock::default() {
            self.arrived_at.insert(hash, self.block.number);
        }
        self.index.update(&op, true);
        self.ops.insert(hash, (seq, op));
    }

    fn on_block(&mut self, block: PoolBlock) -> Vec<(B256, Expiry)> {
        // Replicas report the heads they see in their own time: an older head, arriving after
        // a newer one, changes nothing.
        if block.number < self.block.number {
            return Vec::new();
        }
        self.block = block;
        for hash in self.ops.keys() {
            self.arrived_at.entry(*hash).or_insert(block.number);
        }
        let expired: Vec<(B256, Expiry)> = self
            .ops
            .values()
            .filter_map(|(_, p)| {
                // The EntryPoint refuses an operation when block.timestamp > validUntil.
                if p.valid_until.is_some_and(|until| until < block.timestamp) {
                    return Some((p.hash, Expiry::ValidUntil));
                }
                let waited = self.arrived_at.get(&p.hash).map_or(0, |at| block.number.saturating_sub(*at));
                let throttled =
                    || p.entities().any(|e| self.reputation.status(e.address) == ReputationStatus::Throttled);
                (waited >= THROTTLED_ENTITY_LIVE_BLOCKS && throttled())
                    .then_some((p.hash, Expiry::ThrottledTooLong))
            })
            .collect();
        for (hash, _) in &expired {
            self.take(*hash);
        }
        expired
    }

    /// Refuses early an operation naming a banned entity.
    pub fn check_entities(&self, entities: &[(Phase, Address)]) -> Result<(), PoolError> {
        match entities.iter().find(|(_, e)| self.reputation.status(*e) == ReputationStatus::Banned) {
            Some(&(role, entity)) => Err(PoolError::Banned { role, entity }),
            None => Ok(()),
        }
    }

    /// The pending operation with this userOpHash.
    pub fn get(&self, hash: B256) -> Option<PoolOperation> {
        self.ops.get(&hash).map(|(_, op)| op.clone())
    }

    /// Pending operations, highest effective fee first (arrival order among equals).
    pub fn best(&self, max: usize) -> Vec<PoolOperation> {
        let mut all = self.sorted();
        // Stable sort: equal fees keep arrival order.
        all.sort_by_key(|(_, p)| std::cmp::Reverse(p.effective_fee(self.block.base_fee)));
        all.into_iter().take(max).map(|(_, p)| p.clone()).collect()
    }

    /// Every pending operation, in the order they arrived.
    pub fn dump(&self) -> Vec<PoolOperation> {
        self.sorted().into_iter().map(|(_, p)| p.clone()).collect()
    }

    /// Every sender with a pending operation.
    pub fn senders(&self) -> HashSet<Address> {
        self.ops.values().map(|(_, p)| p.op.sender).collect()
    }

    /// How many operations are pending.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation is pending.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The entity's reputation now.
    pub fn reputation_status(&self, entity: Address) -> ReputationStatus {
        self.reputation.status(entity)
    }

    /// Every reputation record.
    pub fn dump_reputation(&self) -> Vec<ReputationEntry> {
        self.reputation.dump()
    }

    /// The whole state, to be restored with [`PoolState::restore`].
    pub fn snapshot(&self) -> PoolSnapshot {
        PoolSnapshot {
            ops: self
                .sorted()
                .into_iter()
                .map(|(seq, op)| (*seq, op.clone(), self.arrived_at.get(&op.hash).copied()))
                .collect(),
            reputation: self.reputation.dump(),
            next_seq: self.next_seq,
            block: self.block,
        }
    }

    /// The state a snapshot was taken of, with these limits.
    pub fn restore(settings: PoolSettings, snapshot: PoolSnapshot) -> Self {
        let mut state = Self::new(settings);
        for (seq, op, arrived) in snapshot.ops {
            state.index.update(&op, true);
            state.by_sender_nonce.insert((op.op.sender, op.op.nonce), op.hash);
            if let Some(at) = arrived {
                state.arrived_at.insert(op.hash, at);
            }
            state.ops.insert(op.hash, (seq, op));
        }
        for entry in &snapshot.reputation {
            state.reputation.set(entry);
        }
        state.next_seq = snapshot.next_seq;
        state.block = snapshot.block;
        state
    }

    /// The pending operation `hash`, if any.
    fn pending(&self, hash: Option<B256>) -> Option<&PoolOperation> {
        hash.and_then(|hash| self.ops.get(&hash)).map(|(_, op)| op)
    }

    /// Pending operations naming `entity`, the one `except` (being replaced) left out.
    fn ops_with(&self, entity: Address, except: Option<B256>) -> usize {
        let own = self.pending(except).is_some_and(|p| p.references(entity));
        EntityIndex::get(&self.index.referencing, entity) - usize::from(own)
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

    /// ERC-7562 STO-040 against every other pending operation. Only the memberships the rule
    /// asks about are looked up: whether this operation's factory or paymaster is another's
    /// sender, and whether its sender is another's factory or paymaster.
    fn check_roles(&self, op: &PoolOperation, replaced: Option<B256>) -> Result<(), PoolError> {
        let old = self.pending(replaced);
        let is_pool_sender = |address: Address| {
            let own = old.is_some_and(|p| p.sender.address == address);
            EntityIndex::get(&self.index.as_sender, address) > usize::from(own)
        };
        let is_pool_entity = |address: Address| {
            let own = old.is_some_and(|p| p.non_sender_entities().contains(&address));
            EntityIndex::get(&self.index.as_factory_or_paymaster, address) > usize::from(own)
        };
        let (factory, paymaster) = (op.factory.map(|f| f.address), op.paymaster.map(|p| p.address));
        let senders: HashSet<Address> =
            factory.into_iter().chain(paymaster).filter(|a| is_pool_sender(*a)).collect();
        let entities: HashSet<Address> =
            Some(op.sender.address).filter(|a| is_pool_entity(*a)).into_iter().collect();
        check_mempool_roles(op.sender.address, factory, paymaster, &senders, &entities)?;
        Ok(())
    }

    /// ERC-7562 EREP-010: the paymaster's deposit covers the prefund of every pending operation
    /// it pays for, this one included.
    fn check_paymaster_deposit(&self, op: &PoolOperation, replaced: Option<B256>) -> Result<(), PoolError> {
        let (Some(paymaster), Some(deposit)) = (op.paymaster, op.paymaster_deposit) else {
            return Ok(());
        };
        let pending = self.index.paymaster_prefunds.get(&paymaster.address).copied().unwrap_or_default();
        let replaced_prefund = self
            .pending(replaced)
            .filter(|p| p.paymaster.is_some_and(|pm| pm.address == paymaster.address))
            .map_or(U256::ZERO, |p| p.prefund.0);
        let needed = pending.saturating_sub(replaced_prefund).saturating_add(op.prefund.0);
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
        self.index.update(&op, false);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::{EntityInfo, Wei};
    use alloy::primitives::U128;
    use tora_core::UserOperation;

    fn entity(byte: u8) -> EntityInfo {
        EntityInfo {
            address: Address::repeat_byte(byte),
            stake: Wei(U256::ZERO),
            unstake_delay_secs: 0,
            staked: true,
        }
    }

    fn op(sender: u8, nonce: u64, fee: u64, paymaster: Option<u8>, factory: Option<u8>) -> PoolOperation {
        let op = UserOperation {
            sender: Address::repeat_byte(sender),
            nonce: U256::from(nonce),
            max_fee_per_gas: U128::from(fee),
            max_priority_fee_per_gas: U128::from(fee),
            ..Default::default()
        };
        let mut hash = op.hash(Address::repeat_byte(0xe0), 1).0;
        hash[31] ^= fee.to_be_bytes()[7];
        PoolOperation {
            hash: B256::from(hash),
            sender: entity(sender),
            factory: factory.map(entity),
            paymaster: paymaster.map(entity),
            valid_until: None,
            prefund: Wei(U256::from(100 + nonce)),
            paymaster_deposit: Some(Wei(U256::MAX)),
            code_hashes: Default::default(),
            op,
        }
    }

    /// The counts admission reads, as a scan of the pool finds them.
    fn scanned(state: &PoolState) -> EntityIndex {
        let mut index = EntityIndex::default();
        for (_, op) in state.ops.values() {
            index.update(op, true);
        }
        index
    }

    fn same(a: &EntityIndex, b: &EntityIndex) -> bool {
        a.referencing == b.referencing
            && a.as_sender == b.as_sender
            && a.as_factory_or_paymaster == b.as_factory_or_paymaster
            && a.paymaster_prefunds == b.paymaster_prefunds
    }

    #[test]
    fn the_entity_index_always_matches_a_scan_of_the_pool() {
        let mut state = PoolState::new(PoolSettings { max_operations: 6, ..Default::default() });
        let step = |state: &mut PoolState, event: PoolEvent| {
            state.apply(event);
            assert!(same(&state.index, &scanned(state)), "after a step the counts drifted");
        };
        let mut added = Vec::new();
        for (i, (sender, paymaster, factory)) in [
            (1, Some(9), None),
            (2, Some(9), Some(8)),
            (3, None, Some(8)),
            (4, Some(7), None),
            (5, Some(9), None),
        ]
        .into_iter()
        .enumerate()
        {
            let p = op(sender, 0, 10 + i as u64, paymaster, factory);
            added.push(p.hash);
            let event = state.admit(p).unwrap();
            step(&mut state, event);
        }
        // A replacement that drops its paymaster and names a factory.
        let event = state.admit(op(1, 0, 100, None, Some(8))).unwrap();
        step(&mut state, event);
        // Two more fill the pool and evict the cheapest.
        for sender in [6, 10] {
            let event = state.admit(op(sender, 0, 1_000, Some(7), None)).unwrap();
            step(&mut state, event);
        }
        assert_eq!(state.len(), 6);
        step(&mut state, PoolEvent::Remove(added[3]));
        step(&mut state, PoolEvent::Include(added[2]));
        step(&mut state, PoolEvent::Penalize(Address::repeat_byte(7)));
        let restored = PoolState::restore(state.settings, state.snapshot());
        assert!(same(&restored.index, &state.index), "a snapshot restores the counts");
        step(&mut state, PoolEvent::Clear);
        assert!(state.index.referencing.is_empty() && state.index.paymaster_prefunds.is_empty());
    }
}
