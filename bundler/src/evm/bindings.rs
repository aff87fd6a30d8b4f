//! `EntryPointSimulations` from the npm package's artifact: the EntryPoint plus
//! `simulateValidation`, whose runtime code is placed at the EntryPoint's address in the
//! simulation overlay (the same storage layout, so deposits, nonces and stakes are real).

// Generated code: `sol!` turns every ABI function, event and error into types with no doc
// comments (the artifacts carry none), and Solidity functions take as many arguments as they do.
#![allow(missing_docs, clippy::too_many_arguments)]

// The generated interfaces look for `PackedUserOperation` in this scope.
use EntryPointSimulations::PackedUserOperation;

alloy::sol!(
    #[sol(all_derives)]
    EntryPointSimulations,
    "../contracts/artifacts/EntryPointSimulations.json"
);

tora_core::packed_user_operation_from_entry_point!(EntryPointSimulations::PackedUserOperation);

pub use IEntryPointSimulations::{ExecutionResult, ValidationResult};
pub use IStakeManager::StakeInfo;

/// The EntryPoint v0.7's `deposits` mapping (StakeManager's first variable) is at slot 0;
/// `DepositInfo.deposit` is the first word of an entry.
pub fn deposit_slot(account: alloy::primitives::Address) -> alloy::primitives::B256 {
    use alloy::sol_types::SolValue;
    alloy::primitives::keccak256((account, alloy::primitives::U256::ZERO).abi_encode())
}
