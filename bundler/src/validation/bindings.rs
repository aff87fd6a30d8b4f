//! `EntryPointSimulations` from the npm package's artifact: the EntryPoint plus
//! `simulateValidation`, whose runtime code is placed at the EntryPoint's address in the
//! simulation overlay (the same storage layout, so deposits, nonces and stakes are real).

#![allow(missing_docs, clippy::too_many_arguments)]

// The generated interfaces look for `PackedUserOperation` in this scope.
use EntryPointSimulations::PackedUserOperation;

alloy::sol!(
    #[sol(all_derives)]
    EntryPointSimulations,
    "../contracts/artifacts/EntryPointSimulations.json"
);

/// Every artifact generates its own copy of the struct; this moves the EntryPoint's into the
/// simulations contract's.
impl From<tora_core::user_operation::PackedUserOperation> for EntryPointSimulations::PackedUserOperation {
    fn from(op: tora_core::user_operation::PackedUserOperation) -> Self {
        Self {
            sender: op.sender,
            nonce: op.nonce,
            initCode: op.initCode,
            callData: op.callData,
            accountGasLimits: op.accountGasLimits,
            preVerificationGas: op.preVerificationGas,
            gasFees: op.gasFees,
            paymasterAndData: op.paymasterAndData,
            signature: op.signature,
        }
    }
}

pub use IEntryPointSimulations::{ExecutionResult, ValidationResult};
pub use IStakeManager::StakeInfo;
