//! The ERC-4337 `eth_` methods.

use super::{BundlerRpc, lookup};
use crate::pool::{Mempool, PoolOperation};
use crate::validation::Phase;
use alloy::primitives::{Address, B256, U128};
use alloy::rpc::types::state::StateOverride;
use tora_core::rpc_api::Checksummed;
use tora_core::rpc_api::bundler::{
    FeeTier, GasEstimate, GasPriceTiers, OperationState, UserOperationByHash, UserOperationStatus,
};
use tora_core::{ErrorCode, RpcError, UserOperation};

/// Fields that only make sense together: a client that sends half of a pair has a bug the
/// simulation would report far less clearly.
fn check_fields(op: &UserOperation) -> Result<(), RpcError> {
    if op.max_priority_fee_per_gas > op.max_fee_per_gas {
        return Err(RpcError::invalid_params("maxPriorityFeePerGas is above maxFeePerGas"));
    }
    if op.factory.is_none() && op.factory_data.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(RpcError::invalid_params("factoryData is set but factory is not"));
    }
    let paymaster_fields = op.paymaster_verification_gas_limit.is_some()
        || op.paymaster_post_op_gas_limit.is_some()
        || op.paymaster_data.as_ref().is_some_and(|d| !d.is_empty());
    if op.paymaster.is_none() && paymaster_fields {
        return Err(RpcError::invalid_params("paymaster fields are set but paymaster is not"));
    }
    if op.paymaster.is_some()
        && (op.paymaster_verification_gas_limit.is_none() || op.paymaster_post_op_gas_limit.is_none())
    {
        return Err(RpcError::invalid_params(
            "paymasterVerificationGasLimit and paymasterPostOpGasLimit are required with a paymaster",
        ));
    }
    Ok(())
}

impl<P: Mempool> BundlerRpc<P> {
    pub(super) async fn estimate_user_operation_gas(
        &self,
        op: UserOperation,
        entry_point: Address,
        overrides: Option<StateOverride>,
    ) -> Result<GasEstimate, RpcError> {
        self.check_entry_point(Some(entry_point))?;
        check_fields(&op)?;
        let Ok(_permit) = self.validations.try_acquire() else {
            return Err(RpcError::new(
                ErrorCode::LimitExceeded,
                "the bundler is at its simulation capacity; retry shortly",
            ));
        };
        Ok(self.estimator.estimate(&op, overrides).await?)
    }

    pub(super) async fn send_user_operation(
        &self,
        op: UserOperation,
        entry_point: Address,
    ) -> Result<B256, RpcError> {
        self.check_entry_point(Some(entry_point))?;
        check_fields(&op)?;
        // The same function that makes the estimate: an estimated operation always passes.
        let required = self.estimator.required_pre_verification_gas(&op).await?;
        if op.pre_verification_gas < required {
            return Err(RpcError::invalid_params(format!(
                "preVerificationGas too low: expected at least {required}, provided only {}",
                op.pre_verification_gas
            )));
        }
        // An operation that cannot pay the chain's base fee would wait in the pool forever.
        let least_fee = self.estimator.least_max_fee_per_gas().await?;
        if op.max_fee_per_gas.to::<u128>() < least_fee {
            return Err(RpcError::invalid_params(format!(
                "maxFeePerGas {} is below {least_fee}, the least the chain can include now",
                op.max_fee_per_gas
            )));
        }
        let entities: Vec<(Phase, Address)> = [
            (Phase::Account, Some(op.sender)),
            (Phase::Factory, op.factory),
            (Phase::Paymaster, op.paymaster),
        ]
        .into_iter()
        .filter_map(|(role, address)| address.map(|a| (role, a)))
        .collect();
        // A banned entity costs no simulation.
        self.pool.check_entities(&entities)?;
        let Ok(_permit) = self.validations.try_acquire() else {
            crate::metrics::validation_shed();
            return Err(RpcError::new(
                ErrorCode::LimitExceeded,
                "the bundler is validating as many operations as it can; retry shortly",
            ));
        };
        let outcome = self.validator.validate(&op).await?;
        Ok(self.pool.add(PoolOperation::new(op, &outcome)).await?)
    }

    pub(super) async fn user_operation_by_hash(
        &self,
        hash: B256,
    ) -> Result<Option<UserOperationByHash>, RpcError> {
        if let Some(pending) = self.pool.get(hash) {
            return Ok(Some(UserOperationByHash {
                user_operation: pending.op,
                entry_point: Checksummed(self.entry_point),
                block_number: None,
                block_hash: None,
                transaction_hash: None,
            }));
        }
        lookup::included_operation(&self.provider, self.entry_point, self.chain_id, hash).await
    }

    /// `tora_getUserOperationStatus`: `submitted` while a bundle carrying it is in flight,
    /// `pending` while in the pool, then what the chain says, else `dropped` with the
    /// builder's reason when it remembers one.
    pub(super) async fn user_operation_status(&self, hash: B256) -> Result<UserOperationStatus, RpcError> {
        if self.builder.is_submitted(&hash) {
            return Ok(UserOperationStatus::only(OperationState::Submitted));
        }
        if self.pool.get(hash).is_some() {
            return Ok(UserOperationStatus::only(OperationState::Pending));
        }
        let status = lookup::chain_status(&self.provider, self.entry_point, hash).await?;
        if status.status == OperationState::Unknown
            && let Some(reason) = self.builder.drop_reason(&hash)
        {
            return Ok(UserOperationStatus {
                reason: Some(reason),
                ..UserOperationStatus::only(OperationState::Dropped)
            });
        }
        Ok(status)
    }

    /// `tora_getUserOperationGasPrice`: the fees an operation needs to ride in this bundler's
    /// bundles now, in three tiers (the shape wallets know from Pimlico's method of the name).
    pub(super) async fn user_operation_gas_price(&self) -> Result<GasPriceTiers, RpcError> {
        let base_fee = self.estimator.base_fee().await?;
        let tiers =
            self.builder.suggested_fees(base_fee).await.map_err(|e| RpcError::internal(e.to_string()))?;
        let tier = |fees: crate::builder::BundleFees| FeeTier {
            max_fee_per_gas: U128::from(fees.max_fee_per_gas),
            max_priority_fee_per_gas: U128::from(fees.max_priority_fee_per_gas),
        };
        let [slow, standard, fast] = tiers;
        Ok(GasPriceTiers { slow: tier(slow), standard: tier(standard), fast: tier(fast) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Bytes;

    #[test]
    fn inconsistent_fields_are_invalid() {
        let base = UserOperation::default();
        assert!(check_fields(&base).is_ok());
        let tip_above_cap = UserOperation { max_priority_fee_per_gas: U128::from(2), ..base.clone() };
        assert_eq!(check_fields(&tip_above_cap).unwrap_err().code, ErrorCode::InvalidParams);
        let orphan_data = UserOperation { factory_data: Some(Bytes::from_static(&[1])), ..base.clone() };
        assert_eq!(check_fields(&orphan_data).unwrap_err().code, ErrorCode::InvalidParams);
        let no_limits = UserOperation { paymaster: Some(Address::repeat_byte(1)), ..base.clone() };
        assert_eq!(check_fields(&no_limits).unwrap_err().code, ErrorCode::InvalidParams);
        let orphan_limit = UserOperation { paymaster_post_op_gas_limit: Some(U128::from(1)), ..base.clone() };
        assert_eq!(check_fields(&orphan_limit).unwrap_err().code, ErrorCode::InvalidParams);
        let complete = UserOperation {
            paymaster: Some(Address::repeat_byte(1)),
            paymaster_verification_gas_limit: Some(U128::from(1)),
            paymaster_post_op_gas_limit: Some(U128::from(1)),
            ..base
        };
        assert!(check_fields(&complete).is_ok());
    }
}
