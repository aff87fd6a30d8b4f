//! Why an estimate could not be made. What went wrong only: the RPC layer (`rpc::error`) gives
//! each its ERC-4337 code.

use super::CALL_GAS_CEILING;
use crate::evm::{SimulationRevert, StateError, revert_reason};
use alloy::primitives::Bytes;

/// Why eth_estimateUserOperationGas could not estimate an operation.
#[derive(Debug, thiserror::Error)]
pub enum EstimationError {
    /// The EntryPoint refused the operation in validation (`AAxx`).
    #[error("{0}")]
    Rejected(SimulationRevert),
    /// The operation's callData reverts, whatever gas it gets.
    #[error("execution reverted: {}", revert_reason(.revert))]
    CallReverted {
        /// The call's revert data, from `UserOperationRevertReason`.
        revert: Bytes,
    },
    /// The paymaster's postOp reverts.
    #[error("the paymaster's postOp reverts: {}", revert_reason(.revert))]
    PostOpReverted {
        /// The postOp's revert data, from `PostOpRevertReason`.
        revert: Bytes,
    },
    /// Neither reverted, yet the operation does not succeed even at the search's ceiling.
    #[error("the operation does not succeed with callGasLimit {CALL_GAS_CEILING}")]
    NeverSucceeds,
    /// A state override the estimate cannot apply.
    #[error("{0}")]
    InvalidOverride(String),
    /// A node call failed, or the state could not be read.
    #[error("node: {0}")]
    Node(String),
}

impl From<StateError> for EstimationError {
    fn from(e: StateError) -> Self {
        EstimationError::Node(e.to_string())
    }
}

/// A node failure, worded once.
pub(super) fn node<E: std::fmt::Display>(e: E) -> EstimationError {
    EstimationError::Node(e.to_string())
}
