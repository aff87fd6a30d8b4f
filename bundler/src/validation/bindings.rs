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

tora_core::packed_user_operation_from_entry_point!(EntryPointSimulations::PackedUserOperation);

pub use IEntryPointSimulations::{ExecutionResult, ValidationResult};
pub use IStakeManager::StakeInfo;
