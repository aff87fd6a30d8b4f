//! Why the pool refuses an operation. What went wrong only: the RPC layer (`rpc::error`) gives
//! each its ERC-4337 code.

use crate::validation::{Phase, Violation, Wei};
use alloy::primitives::{Address, B256, U256};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("operation {0} is already in the mempool")]
    AlreadyKnown(B256),
    /// Both fees must rise by MIN_PRICE_BUMP_PERCENT; `fee` names the first that did not.
    #[error(
        "Replacement UserOperation must have higher {fee} (old={old} new={new}); at least {min} replaces it"
    )]
    ReplacementUnderpriced { fee: &'static str, old: U256, new: U256, min: U256 },
    /// ERC-7562 UREP-010.
    #[error(
        "account {sender} is unstaked and already has {count} operations in the mempool; stake to send more"
    )]
    SenderLimit { sender: Address, count: usize },
    /// ERC-7562 UREP-020: an unstaked paymaster's share of the pool follows its inclusions.
    #[error(
        "{role} {entity} is unstaked and already in {count} mempool operations, the most its inclusions allow"
    )]
    UnstakedEntityLimit { role: Phase, entity: Address, count: usize },
    /// ERC-7562 GREP-020.
    #[error("{role} {entity} is throttled and already in {count} mempool operations")]
    Throttled { role: Phase, entity: Address, count: usize },
    /// ERC-7562 GREP-010.
    #[error("{role} {entity} is banned")]
    Banned { role: Phase, entity: Address },
    #[error(transparent)]
    Conflict(#[from] Violation),
    /// ERC-7562 EREP-010: the deposit must cover every pending operation's prefund.
    #[error(
        "paymaster deposit too low for all mempool UserOps: {paymaster} has {} wei, its operations need {needed}",
        .deposit.0
    )]
    PaymasterDepositTooLow { paymaster: Address, deposit: Wei, needed: U256 },
    #[error("mempool is full and the effective fee {fee} is not above its lowest, {lowest}")]
    Full { fee: u128, lowest: u128 },
}
