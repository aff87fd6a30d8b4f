//! The mempool: validated operations waiting for a bundle, per EntryPoint, with the ERC-7562
//! mempool rules (replacement, per-sender and per-entity limits, reputation, STO-040, EREP-010).
//!
//! The RPC layer and the builder see only the [`Mempool`] trait, so a Redis-backed pool can
//! replace [`InMemoryPool`] without touching them. (The house style would put the trait in
//! `tora-core`; it stays here until a second implementation needs it there.)

mod error;
mod memory;
mod operation;
mod replacement;
mod reputation;

pub use error::PoolError;
pub use memory::{InMemoryPool, PoolSettings};
pub use operation::PoolOperation;
pub use replacement::{MIN_PRICE_BUMP_PERCENT, ShortFee, is_replacement_priced, short_fee};
pub use reputation::{
    BAN_SLACK, CRASHED_HANDLE_OPS_SEEN, MIN_INCLUSION_RATE_DENOMINATOR, Reputation, ReputationEntry,
    ReputationStatus, SAME_UNSTAKED_ENTITY_MEMPOOL_COUNT, THROTTLING_SLACK, unstaked_ops_allowed,
};

use crate::validation::Phase;
use alloy::primitives::{Address, B256};
use std::collections::HashSet;

/// ERC-7562: an unstaked sender may have this many operations in the mempool.
pub const SAME_SENDER_MEMPOOL_COUNT: usize = 4;
/// ERC-7562: a throttled entity may appear in this many operations in the mempool.
pub const THROTTLED_ENTITY_MEMPOOL_COUNT: usize = 4;
/// ERC-7562 GREP-020: a throttled entity may appear in this many operations of one bundle.
pub const THROTTLED_ENTITY_BUNDLE_COUNT: usize = 4;
/// ERC-7562 THROTTLED_ENTITY_LIVE_BLOCKS: an operation naming a throttled entity leaves the
/// mempool once it has waited this many blocks.
pub const THROTTLED_ENTITY_LIVE_BLOCKS: u64 = 10;

/// The newest block, as the pool's rules read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// The pool of one EntryPoint. Methods are synchronous: the in-memory pool answers in
/// microseconds under one lock; a networked pool would make them async.
pub trait Mempool: Send + Sync + 'static {
    /// Adds a validated operation, or refuses it by the pool's rules; returns its userOpHash.
    fn add(&self, op: PoolOperation) -> Result<B256, PoolError>;
    /// Refuses early an operation naming a banned entity, before a validation is spent on it.
    fn check_entities(&self, entities: &[(Phase, Address)]) -> Result<(), PoolError>;
    /// The pending operation with this userOpHash.
    fn get(&self, hash: B256) -> Option<PoolOperation>;
    /// Drops an operation (a failed bundle simulation, or on request); returns it.
    fn remove(&self, hash: B256) -> Option<PoolOperation>;
    /// Drops an operation that a bundle included, counting opsIncluded for its entities.
    fn mark_included(&self, hash: B256) -> Option<PoolOperation>;
    /// Records the newest block: drops operations past validUntil at its timestamp and those
    /// naming a throttled entity that waited THROTTLED_ENTITY_LIVE_BLOCKS, and orders by the
    /// effective fee at its base fee from now on; returns the dropped hashes and why.
    fn on_block(&self, block: PoolBlock) -> Vec<(B256, Expiry)>;
    /// Pending operations, highest effective fee first.
    fn best(&self, max: usize) -> Vec<PoolOperation>;
    /// Every pending operation, in the order they arrived.
    fn dump(&self) -> Vec<PoolOperation>;
    /// Every sender with a pending operation (STO-041 when a bundle is built).
    fn senders(&self) -> HashSet<Address>;
    /// How many operations are pending.
    fn len(&self) -> usize;
    /// Whether no operation is pending.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Drops every pending operation (debug_bundler_clearMempool).
    fn clear(&self);
    /// Bans `entity` for making a bundle's handleOps fail after its operation passed
    /// validation (ERC-7562 GREP-040), and drops every pending operation that names it
    /// (GREP-010); returns the dropped hashes.
    fn penalize(&self, entity: Address) -> Vec<B256>;
    /// Takes back one opsSeen of `entity` (EREP-015: the operation failed through no fault
    /// of it).
    fn unsee(&self, entity: Address);
    /// The entity's reputation now.
    fn reputation_status(&self, entity: Address) -> ReputationStatus;
    /// Every entity with a reputation record.
    fn dump_reputation(&self) -> Vec<ReputationEntry>;
    /// Overwrites reputation records (debug_bundler_setReputation).
    fn set_reputation(&self, entries: &[ReputationEntry]);
    /// Forgets every reputation record.
    fn clear_reputation(&self);
    /// Applies the hourly ERC-7562 decay (value * 23 / 24) to every record.
    fn decay_reputation(&self);
}
