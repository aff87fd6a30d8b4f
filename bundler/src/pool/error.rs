//! Why the pool refuses an operation. What went wrong only: the RPC layer (`rpc::error`) gives
//! each its ERC-4337 code.

use crate::validation::{Phase, Violation, Wei};
use alloy::primitives::{Address, B256, U256};

/// Why the mempool refuses an operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// An operation with this userOpHash is already pending.
    #[error("operation {0} is already in the mempool")]
    AlreadyKnown(B256),
    /// Both fees must rise by MIN_PRICE_BUMP_PERCENT; `fee` names the first that did not.
    #[error(
        "Replacement UserOperation must have higher {fee} (old={old} new={new}); at least {min} replaces it"
    )]
    ReplacementUnderpriced {
        /// The fee's RPC name (`maxPriorityFeePerGas` or `maxFeePerGas`).
        fee: &'static str,
        /// The pending operation's fee, in wei per gas.
        old: U256,
        /// The replacement's fee, in wei per gas.
        new: U256,
        /// The least fee that replaces `old`, in wei per gas.
        min: U256,
    },
    /// ERC-7562 UREP-010.
    #[error(
        "account {sender} is unstaked and already has {count} operations in the mempool; stake to send more"
    )]
    SenderLimit {
        /// The unstaked sender.
        sender: Address,
        /// Its operations already pending.
        count: usize,
    },
    /// ERC-7562 UREP-020: an unstaked paymaster's share of the pool follows its inclusions.
    #[error(
        "{role} {entity} is unstaked and already in {count} mempool operations, the most its inclusions allow"
    )]
    UnstakedEntityLimit {
        /// The entity's role in the operation.
        role: Phase,
        /// The unstaked entity.
        entity: Address,
        /// Pending operations that already name it.
        count: usize,
    },
    /// ERC-7562 GREP-020.
    #[error("{role} {entity} is throttled and already in {count} mempool operations")]
    Throttled {
        /// The entity's role in the operation.
        role: Phase,
        /// The throttled entity.
        entity: Address,
        /// Pending operations that already name it.
        count: usize,
    },
    /// ERC-7562 GREP-010.
    #[error("{role} {entity} is banned")]
    Banned {
        /// The entity's role in the operation.
        role: Phase,
        /// The banned entity.
        entity: Address,
    },
    /// ERC-7562 STO-040: the operation's entities clash with the roles of pending operations.
    #[error(transparent)]
    Conflict(#[from] Violation),
    /// ERC-7562 EREP-010: the deposit must cover every pending operation's prefund.
    #[error(
        "paymaster deposit too low for all mempool UserOps: {paymaster} has {} wei, its operations need {needed}",
        .deposit.0
    )]
    PaymasterDepositTooLow {
        /// The paymaster.
        paymaster: Address,
        /// Its EntryPoint deposit at validation, in wei.
        deposit: Wei,
        /// The prefunds of its pending operations and this one together, in wei.
        needed: U256,
    },
    /// The pool is at `max_operations` and this operation pays no more than the cheapest.
    #[error("mempool is full and the effective fee {fee} is not above its lowest, {lowest}")]
    Full {
        /// The operation's effective fee at the newest base fee, in wei per gas.
        fee: u128,
        /// The lowest effective fee in the pool, in wei per gas.
        lowest: u128,
    },
    /// The shared pool's store (Redis) could not be reached or answered something unusable;
    /// nothing was written.
    #[error("mempool store: {0}")]
    Store(String),
}
