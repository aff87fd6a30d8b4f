//! eth_estimateUserOperationGas: preVerificationGas from the operation's calldata and fixed
//! overheads; verificationGasLimit from the validation gas `simulateHandleOp` reports, with a
//! margin; callGasLimit by binary search over `simulateHandleOp` with the operation's callData
//! as its target call. Every simulation is an `eth_call` with the EntryPoint's code replaced by
//! EntryPointSimulations, with the caller's state overrides on top.

mod pre_verification;
mod search;

pub use pre_verification::{calldata_cost, pre_verification_gas};
pub use search::min_gas;

use crate::validation::simulation::decode_revert;
use crate::validation::{EntryPointSimulations, ExecutionResult};
use crate::validation::{SimulationRevert, rejection_code};
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U128, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::rpc::types::state::StateOverride;
use alloy::sol_types::SolCall;
use serde::Serialize;
use tora_core::{ErrorCode, RpcError, UserOperation};

/// The gas ceiling of one estimation simulation.
pub const SIMULATION_GAS: u64 = 10_000_000;
/// Binary-search precision.
const SEARCH_TOLERANCE: u64 = 1_000;

/// What eth_estimateUserOperationGas answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GasEstimate {
    pub pre_verification_gas: U256,
    pub verification_gas_limit: U128,
    pub call_gas_limit: U128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paymaster_verification_gas_limit: Option<U128>,
}

/// Margins over what the simulation measured: verification by 50% (its gas depends on
/// calldata and warm/cold state that differ in a bundle), execution by 10% plus a floor.
fn with_margin(verification: u64, call: u64) -> (u64, u64) {
    let scale = |gas: u64, num: u128, den: u128| {
        u64::try_from((u128::from(gas) * num).div_ceil(den)).unwrap_or(u64::MAX)
    };
    (scale(verification, 3, 2), scale(call, 11, 10).saturating_add(5_000))
}

pub struct Estimator {
    provider: DynProvider,
    entry_point: Address,
}

/// One simulateHandleOp run: None when it reverted or ran out of gas.
type Run = Option<ExecutionResult>;

impl Estimator {
    pub fn new(provider: DynProvider, entry_point: Address) -> Self {
        Self { provider, entry_point }
    }

    /// Estimates `op`'s gas fields; its own gas fields and fees are ignored.
    pub async fn estimate(
        &self,
        op: &UserOperation,
        overrides: Option<StateOverride>,
    ) -> Result<GasEstimate, RpcError> {
        let mut overrides = overrides.unwrap_or_default();
        let entry = overrides.entry(self.entry_point).or_default();
        entry.code = Some(EntryPointSimulations::DEPLOYED_BYTECODE.clone());
        // Fees of zero: no prefund, so an account without funds yet can be estimated. The
        // execution moves to the target call, so its gas can be searched on its own.
        let probe = UserOperation {
            call_data: Bytes::new(),
            call_gas_limit: U128::ZERO,
            verification_gas_limit: U128::from(SIMULATION_GAS / 2),
            pre_verification_gas: U256::ZERO,
            max_fee_per_gas: U128::ZERO,
            max_priority_fee_per_gas: U128::ZERO,
            ..op.clone()
        };
        let base = self.run(&probe, Address::ZERO, Bytes::new(), SIMULATION_GAS, &overrides).await?;
        let verification: u64 = base.preOpGas.saturating_to();
        let call = if op.call_data.is_empty() { 0 } else { self.call_gas(&probe, op, &overrides).await? };
        let (verification, call) = with_margin(verification, call);
        Ok(GasEstimate {
            pre_verification_gas: U256::from(pre_verification_gas(op)),
            verification_gas_limit: U128::from(verification),
            call_gas_limit: U128::from(call),
            paymaster_verification_gas_limit: op.paymaster.map(|_| U128::from(verification)),
        })
    }

    /// The execution's gas: the least total gas with the operation's callData as the target
    /// call, minus the least without. The target call gets 63/64 of what is left, so the
    /// difference slightly overstates what the call needs, which is the safe side.
    async fn call_gas(
        &self,
        probe: &UserOperation,
        op: &UserOperation,
        overrides: &StateOverride,
    ) -> Result<u64, RpcError> {
        let target_ok = |run: &Run| run.as_ref().is_some_and(|r| r.targetSuccess);
        let full = self.try_run(probe, op.sender, op.call_data.clone(), SIMULATION_GAS, overrides).await?;
        if !target_ok(&full) {
            let data = full.map(|r| r.targetResult).unwrap_or_default();
            return Err(RpcError::new(ErrorCode::ExecutionReverted, "the operation's callData reverts")
                .with_data(serde_json::json!({ "revertData": data })));
        }
        let with = min_gas(0, SIMULATION_GAS, SEARCH_TOLERANCE, |gas| async move {
            self.try_run(probe, op.sender, op.call_data.clone(), gas, overrides).await.map(|r| target_ok(&r))
        })
        .await?
        .unwrap_or(SIMULATION_GAS);
        let without = min_gas(0, SIMULATION_GAS, SEARCH_TOLERANCE, |gas| async move {
            self.try_run(probe, Address::ZERO, Bytes::new(), gas, overrides).await.map(|r| r.is_some())
        })
        .await?
        .unwrap_or(0);
        Ok(with.saturating_sub(without))
    }

    /// A run that must succeed: a revert is the EntryPoint's refusal, with its AAxx code.
    async fn run(
        &self,
        op: &UserOperation,
        target: Address,
        data: Bytes,
        gas: u64,
        overrides: &StateOverride,
    ) -> Result<ExecutionResult, RpcError> {
        match self.call(op, target, data, gas, overrides).await? {
            Ok(result) => Ok(result),
            Err(revert) => {
                let SimulationRevert { reason, inner } = decode_revert(&revert);
                let message = if inner.is_empty() { reason.clone() } else { format!("{reason} {inner}") };
                Err(RpcError::new(rejection_code(&reason), message))
            }
        }
    }

    async fn try_run(
        &self,
        op: &UserOperation,
        target: Address,
        data: Bytes,
        gas: u64,
        overrides: &StateOverride,
    ) -> Result<Run, RpcError> {
        Ok(self.call(op, target, data, gas, overrides).await?.ok())
    }

    /// `simulateHandleOp` through eth_call: Ok(Err(revert data)) when it reverted (or ran out
    /// of gas, with empty data); Err only when the node could not answer.
    async fn call(
        &self,
        op: &UserOperation,
        target: Address,
        data: Bytes,
        gas: u64,
        overrides: &StateOverride,
    ) -> Result<Result<ExecutionResult, Bytes>, RpcError> {
        let call = EntryPointSimulations::simulateHandleOpCall {
            op: op.pack().into(),
            target,
            targetCallData: data,
        };
        let request = TransactionRequest::default()
            .with_to(self.entry_point)
            .with_input(call.abi_encode())
            .with_gas_limit(gas);
        match self.provider.call(request).overrides(overrides.clone()).await {
            Ok(output) => EntryPointSimulations::simulateHandleOpCall::abi_decode_returns(&output)
                .map(Ok)
                .map_err(|e| RpcError::internal(format!("undecodable simulateHandleOp result: {e}"))),
            Err(err) => match err.as_error_resp() {
                Some(resp) => Ok(Err(resp.as_revert_data().unwrap_or_default())),
                None => Err(RpcError::internal(format!("node: {err}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_are_half_again_for_verification_and_a_tenth_plus_5000_for_execution() {
        assert_eq!(with_margin(100_000, 50_000), (150_000, 60_000));
        assert_eq!(with_margin(1, 1), (2, 5_002));
        // Saturates instead of wrapping.
        assert_eq!(with_margin(u64::MAX, u64::MAX), (u64::MAX, u64::MAX));
    }
}
