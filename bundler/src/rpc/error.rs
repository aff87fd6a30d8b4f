//! The one place where what went wrong becomes an ERC-4337 JSON-RPC error. Domain errors
//! (validation, pool, estimation) say what happened; here each gets its code, its message from
//! its own `Display`, and in `data` what a client can act on: the ERC-7562 rule id, or the
//! entity's own revert data.

use crate::estimation::EstimationError;
use crate::evm::SimulationRevert;
use crate::pool::PoolError;
use crate::validation::{ValidationError, Violation};
use serde_json::json;
use tora_core::{ErrorCode, RpcError};

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

/// An EntryPoint refusal: its code from the reason, the entity's revert data beside it.
fn rejected(revert: &SimulationRevert) -> RpcError {
    let err = RpcError::new(rejection_code(&revert.reason), revert.to_string());
    if revert.inner.is_empty() { err } else { err.with_data(json!({ "revertData": revert.inner })) }
}

/// Every ERC-7562 rule broken is -32502, whichever entity's stake would have lifted it (the
/// reference bundler's and the compatibility suite's reading); the rule id goes in `data`.
fn violation(v: &Violation) -> RpcError {
    RpcError::new(ErrorCode::BannedOpcode, v.to_string()).with_data(json!({ "rule": v.rule() }))
}

impl From<&ValidationError> for RpcError {
    fn from(e: &ValidationError) -> Self {
        let code = match e {
            ValidationError::Rejected(revert) => return rejected(revert),
            ValidationError::Rule(v) => return violation(v),
            ValidationError::Signature { .. } => ErrorCode::InvalidSignature,
            ValidationError::UnsupportedAggregator(_) => ErrorCode::UnsupportedAggregator,
            ValidationError::OutOfTimeRange { .. } => ErrorCode::OutOfTimeRange,
            ValidationError::Node(_)
            | ValidationError::State(_)
            | ValidationError::ChainIdMismatch { .. }
            | ValidationError::Url(_) => ErrorCode::Internal,
        };
        RpcError::new(code, e.to_string())
    }
}

impl From<&PoolError> for RpcError {
    fn from(e: &PoolError) -> Self {
        let code = match e {
            // The compatibility suite expects -32602 for an underpriced replacement; a
            // duplicate and a full pool are likewise "fix your fields".
            PoolError::AlreadyKnown(_)
            | PoolError::ReplacementUnderpriced { .. }
            | PoolError::Full { .. } => ErrorCode::InvalidParams,
            // A stake lifts these limits.
            PoolError::SenderLimit { .. } | PoolError::UnstakedEntityLimit { .. } => ErrorCode::StakeTooLow,
            PoolError::Throttled { .. } | PoolError::Banned { .. } => ErrorCode::ThrottledOrBanned,
            PoolError::Conflict(v) => return violation(v),
            PoolError::PaymasterDepositTooLow { .. } => ErrorCode::PaymasterDepositTooLow,
            PoolError::Store(_) => ErrorCode::Internal,
        };
        RpcError::new(code, e.to_string())
    }
}

/// A revert in the operation's execution, its data beside the decoded reason.
fn reverted(code: ErrorCode, e: &EstimationError, revert: &alloy::primitives::Bytes) -> RpcError {
    RpcError::new(code, e.to_string()).with_data(json!({ "revertData": revert }))
}

impl From<&EstimationError> for RpcError {
    fn from(e: &EstimationError) -> Self {
        let code = match e {
            EstimationError::Rejected(revert) => return rejected(revert),
            EstimationError::CallReverted { revert } => {
                return reverted(ErrorCode::ExecutionReverted, e, revert);
            }
            EstimationError::PostOpReverted { revert } => {
                return reverted(ErrorCode::RejectedByPaymaster, e, revert);
            }
            EstimationError::NeverSucceeds => ErrorCode::ExecutionReverted,
            EstimationError::InvalidOverride(_) => ErrorCode::InvalidParams,
            EstimationError::Node(_) => ErrorCode::Internal,
        };
        RpcError::new(code, e.to_string())
    }
}

macro_rules! by_value {
    ($($error:ty),*) => {$(
        impl From<$error> for RpcError {
            fn from(e: $error) -> Self {
                RpcError::from(&e)
            }
        }
    )*};
}
by_value!(ValidationError, PoolError, EstimationError);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::{Phase, Wei};
    use alloy::primitives::{Address, Bytes, U256};
    use alloy::sol_types::{Revert, SolError};

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
    fn every_rule_is_32502_with_its_id_whoever_needed_the_stake() {
        let oog = RpcError::from(ValidationError::Rule(Violation::OutOfGas {
            phase: Phase::Account,
            contract: Address::ZERO,
        }));
        assert_eq!((oog.code, oog.data.unwrap()["rule"].clone()), (ErrorCode::BannedOpcode, json!("OP-020")));
        let stake = Violation::NeedsStake {
            rule: "STO-031",
            phase: Phase::Paymaster,
            entity: Address::ZERO,
            contract: Address::ZERO,
            slot: U256::from(1),
            write: false,
            transient: false,
        };
        let rpc = RpcError::from(PoolError::Conflict(stake));
        assert_eq!(
            (rpc.code, rpc.data.unwrap()["rule"].clone()),
            (ErrorCode::BannedOpcode, json!("STO-031"))
        );
        let opcode = RpcError::from(ValidationError::Rule(Violation::UnstakedOpcode {
            phase: Phase::Account,
            entity: Address::ZERO,
            contract: Address::ZERO,
            opcode: 0x31,
        }));
        assert_eq!(opcode.code, ErrorCode::BannedOpcode);
        assert!(
            opcode.message.starts_with("unstaked account uses banned opcode: BALANCE"),
            "{}",
            opcode.message
        );
    }

    #[test]
    fn a_rejection_carries_the_entitys_revert_data_and_reason() {
        let inner: Bytes = Revert::from("testWallet: dead signature").abi_encode().into();
        let revert = SimulationRevert { reason: "AA23 reverted".into(), inner: inner.clone() };
        let rpc = RpcError::from(ValidationError::Rejected(revert.clone()));
        assert_eq!(rpc.code, ErrorCode::RejectedByEntryPointOrAccount);
        assert_eq!(rpc.message, "AA23 reverted: testWallet: dead signature");
        assert_eq!(rpc.data.unwrap()["revertData"], json!(inner));
        assert_eq!(
            RpcError::from(EstimationError::Rejected(revert)).code,
            ErrorCode::RejectedByEntryPointOrAccount
        );
        let reverted = RpcError::from(EstimationError::CallReverted {
            revert: Revert::from("test fail").abi_encode().into(),
        });
        assert_eq!(
            (reverted.code, reverted.message.as_str()),
            (ErrorCode::ExecutionReverted, "execution reverted: test fail")
        );
    }

    #[test]
    fn pool_refusals_map_to_their_codes() {
        let deposit = PoolError::PaymasterDepositTooLow {
            paymaster: Address::ZERO,
            deposit: Wei(U256::from(9)),
            needed: U256::from(10),
        };
        let rpc = RpcError::from(&deposit);
        assert_eq!(rpc.code, ErrorCode::PaymasterDepositTooLow);
        assert!(rpc.message.contains("too low"), "{}", rpc.message);
        assert_eq!(
            RpcError::from(PoolError::Banned { role: Phase::Paymaster, entity: Address::ZERO }).code,
            ErrorCode::ThrottledOrBanned
        );
        assert_eq!(
            RpcError::from(PoolError::SenderLimit { sender: Address::ZERO, count: 4 }).code,
            ErrorCode::StakeTooLow
        );
        assert_eq!(
            RpcError::from(EstimationError::InvalidOverride("x".into())).code,
            ErrorCode::InvalidParams
        );
    }
}
