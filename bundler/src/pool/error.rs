//! Why the pool refuses an operation, and the ERC-4337 code for each reason.

use crate::validation::Violation;
use alloy::primitives::{Address, B256, U256};
use serde_json::json;
use tora_core::{ErrorCode, RpcError};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("operation {0} is already in the mempool")]
    AlreadyKnown(B256),
    #[error(
        "replacement underpriced: needs maxFeePerGas >= {min_max_fee} and maxPriorityFeePerGas >= {min_priority_fee}"
    )]
    ReplacementUnderpriced { min_max_fee: U256, min_priority_fee: U256 },
    #[error("sender {sender} already has {count} operations in the mempool; stake to send more")]
    SenderLimit { sender: Address, count: usize },
    #[error("entity {entity} is throttled and already in {count} mempool operations")]
    Throttled { entity: Address, count: usize },
    #[error("entity {0} is banned by reputation")]
    Banned(Address),
    #[error(transparent)]
    Conflict(#[from] Violation),
    #[error("mempool is full and the effective fee {fee} is not above its lowest, {lowest}")]
    Full { fee: u128, lowest: u128 },
}

impl PoolError {
    /// The ERC-4337 JSON-RPC code, mapped here and nowhere else.
    pub fn code(&self) -> ErrorCode {
        match self {
            // The eth-infinitism bundler spec tests expect -32602 for an underpriced
            // replacement; a duplicate and a full pool are likewise "fix your fields".
            PoolError::AlreadyKnown(_)
            | PoolError::ReplacementUnderpriced { .. }
            | PoolError::Full { .. } => ErrorCode::InvalidParams,
            // A stake lifts the per-sender limit.
            PoolError::SenderLimit { .. } => ErrorCode::StakeTooLow,
            PoolError::Throttled { .. } | PoolError::Banned(_) => ErrorCode::ThrottledOrBanned,
            PoolError::Conflict(v) => v.code(),
        }
    }

    pub fn to_rpc(&self) -> RpcError {
        let err = RpcError::new(self.code(), self.to_string());
        match self {
            PoolError::Conflict(v) => err.with_data(json!({ "rule": v.rule() })),
            _ => err,
        }
    }
}
