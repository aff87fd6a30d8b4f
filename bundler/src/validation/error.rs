//! Why an operation is refused, and the ERC-4337 JSON-RPC code for each reason, mapped here
//! and nowhere else.

use super::outcome::TimeRange;
use super::rules::Violation;
use super::state::StateError;
use alloy::primitives::{Address, Bytes};
use serde_json::json;
use tora_core::{ErrorCode, RpcError};

/// Why an operation is refused, or could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The EntryPoint's simulation reverted (`AAxx` reason).
    #[error("{reason}")]
    Rejected { code: ErrorCode, reason: String, inner: Bytes },
    #[error(transparent)]
    Rule(#[from] Violation),
    #[error("{} signature check failed", if *.paymaster { "paymaster" } else { "account" })]
    Signature { paymaster: bool },
    #[error("aggregator {0} is not supported")]
    UnsupportedAggregator(Address),
    #[error(
        "operation is valid from {} until {:?}, outside the window needed at block time {now}",
        .range.valid_after, .range.valid_until
    )]
    OutOfTimeRange { range: TimeRange, now: u64 },
    #[error("node: {0}")]
    Node(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the node's chain id is {node}, but the chain spec says {spec}")]
    ChainIdMismatch { node: u64, spec: u64 },
    #[error("invalid RPC URL {0}")]
    Url(String),
}

impl ValidationError {
    /// Whether the same operation could pass at a newer block: every verdict but a
    /// misconfiguration comes from the chain's state or time.
    pub fn depends_on_state(&self) -> bool {
        !matches!(self, ValidationError::ChainIdMismatch { .. } | ValidationError::Url(_))
    }

    /// The ERC-4337 JSON-RPC code, mapped here and nowhere else.
    pub fn code(&self) -> ErrorCode {
        match self {
            ValidationError::Rejected { code, .. } => *code,
            ValidationError::Rule(violation) => violation.code(),
            ValidationError::Signature { .. } => ErrorCode::InvalidSignature,
            ValidationError::UnsupportedAggregator(_) => ErrorCode::UnsupportedAggregator,
            ValidationError::OutOfTimeRange { .. } => ErrorCode::OutOfTimeRange,
            ValidationError::Node(_)
            | ValidationError::State(_)
            | ValidationError::ChainIdMismatch { .. }
            | ValidationError::Url(_) => ErrorCode::Internal,
        }
    }

    /// The error as `eth_sendUserOperation` returns it.
    pub fn to_rpc(&self) -> RpcError {
        let err = RpcError::new(self.code(), self.to_string());
        match self {
            ValidationError::Rule(v) => err.with_data(json!({ "rule": v.rule() })),
            ValidationError::Rejected { inner, .. } if !inner.is_empty() => {
                err.with_data(json!({ "revertData": inner }))
            }
            _ => err,
        }
    }
}

/// The ERC-4337 code for an EntryPoint `AAxx` reason: AA1x/AA2x are the factory's or account's,
/// AA3x the paymaster's.
pub fn rejection_code(reason: &str) -> ErrorCode {
    match reason.get(..4) {
        Some("AA22" | "AA32") => ErrorCode::OutOfTimeRange,
        Some("AA24" | "AA34") => ErrorCode::InvalidSignature,
        Some("AA31") => ErrorCode::PaymasterDepositTooLow,
        Some(p) if p.starts_with("AA3") => ErrorCode::RejectedByPaymaster,
        _ => ErrorCode::RejectedByEntryPointOrAccount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::tracer::Phase;

    #[test]
    fn entry_point_reasons_map_to_the_entity_that_failed() {
        assert_eq!(rejection_code("AA13 initCode failed or OOG"), ErrorCode::RejectedByEntryPointOrAccount);
        assert_eq!(rejection_code("AA23 reverted"), ErrorCode::RejectedByEntryPointOrAccount);
        assert_eq!(rejection_code("AA33 reverted"), ErrorCode::RejectedByPaymaster);
        assert_eq!(rejection_code("AA31 paymaster deposit too low"), ErrorCode::PaymasterDepositTooLow);
        assert_eq!(rejection_code("AA22 expired or not due"), ErrorCode::OutOfTimeRange);
        assert_eq!(rejection_code("AA24 signature error"), ErrorCode::InvalidSignature);
        // Not an AA reason at all (or shorter than one): the EntryPoint/account code.
        assert_eq!(rejection_code(""), ErrorCode::RejectedByEntryPointOrAccount);
        assert_eq!(rejection_code("é"), ErrorCode::RejectedByEntryPointOrAccount);
    }

    #[test]
    fn rule_violations_carry_their_rule_id_on_the_wire() {
        let err =
            ValidationError::Rule(Violation::OutOfGas { phase: Phase::Account, contract: Address::ZERO });
        let rpc = err.to_rpc();
        assert_eq!(rpc.code, ErrorCode::BannedOpcode);
        assert_eq!(rpc.data.unwrap()["rule"], "OP-020");
    }
}
