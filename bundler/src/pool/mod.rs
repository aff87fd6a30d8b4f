//! The mempool: validated operations waiting for a bundle, per EntryPoint, with the ERC-7562
//! mempool rules (replacement, per-sender and per-entity limits, reputation, STO-040, EREP-010).
//!
//! The RPC layer and the builder see only the [`Mempool`] trait. Its rules live once, in
//! [`PoolState`]; two stores hold that state: [`InMemoryPool`] (one process, `tora up`'s
//! default) and [`RedisPool`] (every replica on one Redis or Redis Cluster shares one pool and
//! one reputation table).

mod error;
mod memory;
mod operation;
mod redis;
mod replacement;
mod reputation;
mod state;
#[cfg(test)]
mod store_tests;

pub use error::PoolError;
pub use memory::InMemoryPool;
pub use operation::PoolOperation;
pub use redis::{RedisPool, SYNC_INTERVAL};
pub use replacement::{MIN_PRICE_BUMP_PERCENT, ShortFee, is_replacement_priced, short_fee};
pub use reputation::{
    BAN_SLACK, CRASHED_HANDLE_OPS_SEEN, MIN_INCLUSION_RATE_DENOMINATOR, Reputation, ReputationEntry,
    ReputationStatus, SAME_UNSTAKED_ENTITY_MEMPOOL_COUNT, THROTTLING_SLACK, unstaked_ops_allowed,
};
pub use state::{Applied, PoolEvent, PoolSettings, PoolSnapshot, PoolState};

use crate::validation::Phase;
use alloy::primitives::{Address, B256};
use std::collections::HashSet;

/// ERC-7562: an unstaked sender may have this many operations in the mempool.
pub const SAME_SENDER_MEMPOOL_COUNT: usize = 4;
/// ERC-7562: a throttled entity may appear in this many operations in the mempool.
pub const THROTTLED_ENTITY_MEMPOOL_COUNT: usize = 4;
/// ERC-7562 GREP-020: a throttled entity may appear in this many operations of one bundle.
pub const THROTTLED_ENTITY_BUNDLE_COUNT: usize = 4;
/// How long a builder's claim on an operation lasts unless it claims it again (the builder
/// does so every quarter of it while the bundle is in flight): how long a dead replica's
/// operations wait before another builder takes them.
pub const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(10);
/// ERC-7562 THROTTLED_ENTITY_LIVE_BLOCKS: an operation naming a throttled entity leaves the
/// mempool once it has waited this many blocks.
pub const THROTTLED_ENTITY_LIVE_BLOCKS: u64 = 10;

/// The newest block, as the pool's rules read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolBlock {
    /// The block number.
    pub number: u64,
    /// The block timestamp, in seconds.
    pub timestamp: u64,
    /// The block's base fee, in wei per gas.
    pub base_fee: u128,
}

/// Why a new block dropped a pending operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The block's timestamp passed the operation's validUntil: the EntryPoint would refuse it.
    ValidUntil,
    /// It names a throttled entity and waited THROTTLED_ENTITY_LIVE_BLOCKS (ERC-7562 GREP-020).
    ThrottledTooLong,
}

impl Expiry {
    /// The drop reason `tora_getUserOperationStatus` reports.
    pub fn reason(self) -> &'static str {
        match self {
            Self::ValidUntil => "expired: the block passed its validUntil",
            Self::ThrottledTooLong => {
                "expired: it names a throttled entity and waited THROTTLED_ENTITY_LIVE_BLOCKS blocks"
            }
        }
    }
}

/// The pool of one EntryPoint, over a store of its [`PoolState`]. A store provides reads of
/// the state, atomic writes of events and claims; every rule and every method callers use is
/// written once, here and in `state`, on top of those.
pub trait Mempool: Send + Sync + 'static {
    /// Runs `f` on the state as this process knows it now (a replica's copy may trail other
    /// replicas' writes by the store's sync interval; [`Mempool::sync`] catches up).
    fn read<R>(&self, f: impl FnOnce(&PoolState) -> R) -> R;
    /// Builds an event from the current state with `make` and applies it, atomically with
    /// respect to every other writer of the pool: the event is applied only to the state `make`
    /// saw, so a rule checked there still holds. `make` may run more than once.
    fn write(
        &self,
        make: impl FnMut(&PoolState) -> Result<PoolEvent, PoolError> + Send,
    ) -> impl Future<Output = Result<Applied, PoolError>> + Send;
    /// Catches up with every write made so far, by any replica.
    fn sync(&self) -> impl Future<Output = ()> + Send;
    /// Claims operations for a bundle of this process: returns those it now holds. One held
    /// by another live builder is left out; a claim lapses after [`CLAIM_TTL`] unless claimed
    /// again, so a builder that dies gives its operations back.
    fn claim(&self, hashes: &[B256]) -> impl Future<Output = HashSet<B256>> + Send;
    /// Gives claimed operations back (their bundle settled, or they left it).
    fn release(&self, hashes: &[B256]) -> impl Future<Output = ()> + Send;
    /// How long a claim lasts unless claimed again.
    fn claim_ttl(&self) -> std::time::Duration;
    /// Whether the store answers (for /ready): a replica whose Redis is gone must leave the
    /// Service, since every send would fail.
    fn store_ready(&self) -> impl Future<Output = Result<(), String>> + Send;

    /// Adds a validated operation, or refuses it by the pool's rules; returns its userOpHash.
    fn add(&self, op: PoolOperation) -> impl Future<Output = Result<B256, PoolError>> + Send {
        let hash = op.hash;
        async move {
            self.write(|state| state.admit(op.clone())).await?;
            Ok(hash)
        }
    }
    /// Refuses early an operation naming a banned entity, before a validation is spent on it.
    fn check_entities(&self, entities: &[(Phase, Address)]) -> Result<(), PoolError> {
        self.read(|state| state.check_entities(entities))
    }
    /// The pending operation with this userOpHash.
    fn get(&self, hash: B256) -> Option<PoolOperation> {
        self.read(|state| state.get(hash))
    }
    /// Drops an operation (a failed bundle simulation, or on request); returns it.
    fn remove(&self, hash: B256) -> impl Future<Output = Option<PoolOperation>> + Send {
        async move { self.record(PoolEvent::Remove(hash)).await.taken }
    }
    /// Drops an operation that a bundle included, counting opsIncluded for its entities.
    fn mark_included(&self, hash: B256) -> impl Future<Output = Option<PoolOperation>> + Send {
        async move {
            // Every replica scans the same logs: only the first to see an inclusion counts it.
            self.get(hash)?;
            self.record(PoolEvent::Include(hash)).await.taken
        }
    }
    /// Records the newest block: drops operations past validUntil at its timestamp and those
    /// naming a throttled entity that waited THROTTLED_ENTITY_LIVE_BLOCKS, and orders by the
    /// effective fee at its base fee from now on; returns the dropped hashes and why.
    fn on_block(&self, block: PoolBlock) -> impl Future<Output = Vec<(B256, Expiry)>> + Send {
        async move { self.record(PoolEvent::Block(block)).await.expired }
    }
    /// Pending operations, highest effective fee first.
    fn best(&self, max: usize) -> Vec<PoolOperation> {
        self.read(|state| state.best(max))
    }
    /// Every pending operation, in the order they arrived.
    fn dump(&self) -> Vec<PoolOperation> {
        self.read(PoolState::dump)
    }
    /// Every sender with a pending operation (STO-041 when a bundle is built).
    fn senders(&self) -> HashSet<Address> {
        self.read(PoolState::senders)
    }
    /// How many operations are pending.
    fn len(&self) -> usize {
        self.read(PoolState::len)
    }
    /// Whether no operation is pending.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Drops every pending operation (debug_bundler_clearMempool).
    fn clear(&self) -> impl Future<Output = ()> + Send {
        async move {
            self.record(PoolEvent::Clear).await;
        }
    }
    /// Bans `entity` for making a bundle's handleOps fail after its operation passed
    /// validation (ERC-7562 GREP-040), and drops every pending operation that names it
    /// (GREP-010); returns the dropped hashes.
    fn penalize(&self, entity: Address) -> impl Future<Output = Vec<B256>> + Send {
        async move { self.record(PoolEvent::Penalize(entity)).await.purged }
    }
    /// Takes back one opsSeen of `entity` (EREP-015: the operation failed through no fault
    /// of it).
    fn unsee(&self, entity: Address) -> impl Future<Output = ()> + Send {
        async move {
            self.record(PoolEvent::Unsee(entity)).await;
        }
    }
    /// The entity's reputation now.
    fn reputation_status(&self, entity: Address) -> ReputationStatus {
        self.read(|state| state.reputation_status(entity))
    }
    /// Every entity with a reputation record.
    fn dump_reputation(&self) -> Vec<ReputationEntry> {
        self.read(PoolState::dump_reputation)
    }
    /// Overwrites reputation records (debug_bundler_setReputation).
    fn set_reputation(&self, entries: &[ReputationEntry]) -> impl Future<Output = ()> + Send {
        let entries = entries.to_vec();
        async move {
            self.record(PoolEvent::SetReputation(entries)).await;
        }
    }
    /// Forgets every reputation record.
    fn clear_reputation(&self) -> impl Future<Output = ()> + Send {
        async move {
            self.record(PoolEvent::ClearReputation).await;
        }
    }
    /// Applies the hourly ERC-7562 decay (value * 23 / 24) to every record.
    fn decay_reputation(&self) -> impl Future<Output = ()> + Send {
        async move {
            self.record(PoolEvent::DecayReputation).await;
        }
    }
    /// Writes an event that needs no rule: a store failure is logged and changes nothing (the
    /// operations it concerns are validated again before any bundle, so nothing is lost).
    fn record(&self, event: PoolEvent) -> impl Future<Output = Applied> + Send {
        async move {
            match self.write(|_| Ok(event.clone())).await {
                Ok(applied) => applied,
                Err(e) => {
                    tracing::warn!(error = %e, ?event, "the pool store refused a write");
                    Applied::default()
                }
            }
        }
    }
}
