//! `EntryPointSimulations.simulateHandleOp` in revm over the node's state, with its logs: the
//! EntryPoint v0.7 does not revert when the operation's call or the paymaster's postOp fails
//! (it emits `UserOperationRevertReason` / `PostOpRevertReason` and `UserOperationEvent` with
//! `success = false`), so only the logs, which `eth_call` does not return, say whether the
//! operation would succeed.

use crate::evm::simulation::{decode_revert, evm_error};
use crate::evm::{EntryPointSimulations, ExecutionResult, SimulationEnv, SimulationRevert, StateError};
use alloy::primitives::{Bytes, Log};
use alloy::sol_types::{SolCall, SolEvent};
use revm::context::result::{ExecutionResult as EvmResult, Output};
use revm::context::{BlockEnv, Context};
use revm::{DatabaseRef, ExecuteEvm, MainBuilder, MainContext};
use tora_core::user_operation::PackedUserOperation;

use EntryPointSimulations::{PostOpRevertReason, UserOperationEvent, UserOperationRevertReason};

/// What one `simulateHandleOp` run of an operation did.
#[derive(Clone, Debug)]
pub struct HandleOpRun {
    /// What `simulateHandleOp` returned: preOpGas, the amount paid and the validation data.
    pub result: ExecutionResult,
    /// `UserOperationEvent.success`: the call and the paymaster's postOp both succeeded.
    pub success: bool,
    /// The call's revert data, when it reverted (`UserOperationRevertReason`).
    pub call_revert: Option<Bytes>,
    /// The paymaster's postOp revert data, when it reverted (`PostOpRevertReason`).
    pub post_op_revert: Option<Bytes>,
}

impl HandleOpRun {
    fn from_logs(result: ExecutionResult, logs: &[Log]) -> Self {
        let mut run = Self { result, success: false, call_revert: None, post_op_revert: None };
        for log in logs {
            let Some(topic) = log.topics().first() else { continue };
            if *topic == UserOperationEvent::SIGNATURE_HASH {
                if let Ok(event) = UserOperationEvent::decode_log_data(&log.data) {
                    run.success = event.success;
                }
            } else if *topic == UserOperationRevertReason::SIGNATURE_HASH {
                run.call_revert =
                    UserOperationRevertReason::decode_log_data(&log.data).ok().map(|e| e.revertReason);
            } else if *topic == PostOpRevertReason::SIGNATURE_HASH {
                run.post_op_revert =
                    PostOpRevertReason::decode_log_data(&log.data).ok().map(|e| e.revertReason);
            }
        }
        run
    }
}

/// Runs `simulateHandleOp(op, 0, "")` over `db` (which must hold the simulation code at the
/// EntryPoint). `Ok(Err(..))`: the EntryPoint refused the operation (`FailedOp`, AAxx).
/// Blocks on the node through `db`: call it from a blocking thread.
pub fn simulate_handle_op<D: DatabaseRef<Error = StateError>>(
    db: &D,
    env: &SimulationEnv,
    op: &PackedUserOperation,
) -> Result<Result<HandleOpRun, SimulationRevert>, StateError> {
    let calldata = EntryPointSimulations::simulateHandleOpCall {
        op: op.clone().into(),
        target: alloy::primitives::Address::ZERO,
        targetCallData: Bytes::new(),
    }
    .abi_encode();
    let ctx = Context::mainnet()
        .with_ref_db(db)
        .modify_cfg_chained(|cfg| env.configure(cfg))
        .modify_block_chained(|b: &mut BlockEnv| env.configure_block(b));
    let mut evm = ctx.build_mainnet().with_precompiles(env.precompiles());
    let executed = evm.transact_one(env.transaction(calldata)).map_err(evm_error)?;
    Ok(match executed {
        EvmResult::Success { output, logs, .. } => {
            let bytes = match output {
                Output::Call(bytes) => bytes,
                Output::Create(bytes, _) => bytes,
            };
            match EntryPointSimulations::simulateHandleOpCall::abi_decode_returns(&bytes) {
                Ok(result) => Ok(HandleOpRun::from_logs(result, &logs)),
                Err(e) => Err(SimulationRevert {
                    reason: format!("undecodable simulateHandleOp result: {e}"),
                    inner: bytes,
                }),
            }
        }
        EvmResult::Revert { output, .. } => Err(decode_revert(&output)),
        EvmResult::Halt { reason, .. } => {
            Err(SimulationRevert { reason: format!("simulation halted: {reason:?}"), inner: Bytes::new() })
        }
    })
}
