//! One traced run of `simulateValidation`: the EVM set up as [`crate::evm::simulation`] says,
//! with the ERC-7562 tracer watching every step.

use super::tracer::{ValidationTrace, ValidationTracer};
use crate::evm::bindings::{EntryPointSimulations, ValidationResult};
use crate::evm::simulation::{SimulationEnv, SimulationRevert, decode_revert, evm_error};
use crate::evm::state::{RpcState, StateError};
use alloy::primitives::{Address, Bytes};
use alloy::sol_types::SolCall;
use revm::context::result::{ExecutionResult, Output};
use revm::context::{BlockEnv, Context};
use revm::{InspectEvm, MainBuilder, MainContext};
use tora_core::user_operation::PackedUserOperation;

/// What one simulation produced.
#[derive(Debug)]
pub struct SimulationOutput {
    /// `simulateValidation`'s decoded result, or how the EntryPoint refused the operation.
    pub result: Result<ValidationResult, SimulationRevert>,
    /// What the tracer recorded for the ERC-7562 rules.
    pub trace: ValidationTrace,
    /// Gas the simulation transaction used.
    pub gas_used: u64,
}

/// Runs `simulateValidation(op)` against `state` with the ERC-7562 tracer attached. Blocks on the
/// node through `state`: call it from a blocking thread.
pub fn simulate_validation(
    state: &RpcState,
    env: &SimulationEnv,
    op: &PackedUserOperation,
    sender: Address,
    paymaster: Option<Address>,
) -> Result<SimulationOutput, StateError> {
    let calldata = EntryPointSimulations::simulateValidationCall { userOp: op.clone().into() }.abi_encode();
    let ctx = Context::mainnet()
        .with_ref_db(state)
        .modify_cfg_chained(|cfg| env.configure(cfg))
        .modify_block_chained(|b: &mut BlockEnv| env.configure_block(b));
    let tracer = ValidationTracer::new(env.entry_point, env.sender_creator, sender, paymaster);
    let mut evm = ctx.build_mainnet_with_inspector(tracer).with_precompiles(env.precompiles());
    let executed = evm.inspect_one_tx(env.transaction(calldata)).map_err(evm_error)?;
    let trace = std::mem::take(&mut evm.inspector.trace);
    let (result, gas_used) = match executed {
        ExecutionResult::Success { output, gas, .. } => {
            let bytes = match output {
                Output::Call(bytes) => bytes,
                Output::Create(bytes, _) => bytes,
            };
            let decoded =
                EntryPointSimulations::simulateValidationCall::abi_decode_returns(&bytes).map_err(|e| {
                    SimulationRevert {
                        reason: format!("undecodable simulateValidation result: {e}"),
                        inner: bytes.clone(),
                    }
                });
            (decoded, gas.tx_gas_used())
        }
        ExecutionResult::Revert { output, gas, .. } => (Err(decode_revert(&output)), gas.tx_gas_used()),
        ExecutionResult::Halt { reason, gas, .. } => (
            Err(SimulationRevert { reason: format!("simulation halted: {reason:?}"), inner: Bytes::new() }),
            gas.tx_gas_used(),
        ),
    };
    Ok(SimulationOutput { result, trace, gas_used })
}
