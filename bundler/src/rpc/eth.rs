//! The ERC-4337 `eth_` methods.

use super::{BundlerRpc, lookup};
use crate::pool::{Mempool, PoolOperation};
use crate::validation::Phase;
use alloy::primitives::{Address, B256};
use alloy::rpc::types::state::StateOverride;
use serde_json::Value;
use tora_core::strict_hex::Hex;
use tora_core::{ErrorCode, RpcError, UserOperation};
use tora_jsonrpc::Params;

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

/// Gas fields and fees a wallet may leave out when it asks for an estimate: they are what it
/// is asking for, and the estimate ignores them.
const ESTIMATE_OPTIONAL: [&str; 6] = [
    "callGasLimit",
    "verificationGasLimit",
    "preVerificationGas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "signature",
];

/// The operation of an estimate request, with the fields it may omit set to zero.
fn operation_to_estimate(mut value: Value) -> Result<UserOperation, RpcError> {
    if let Value::Object(fields) = &mut value {
        for name in ESTIMATE_OPTIONAL {
            let zero = if name == "signature" { "0x" } else { "0x0" };
            let field = fields.entry(name).or_insert(Value::Null);
            if field.is_null() {
                *field = Value::String(zero.to_owned());
            }
        }
    }
    UserOperation::from_rpc(value).map_err(RpcError::invalid_params)
}

/// The userOpHash parameter of the lookup methods, in the reference bundler's words when it is
/// not a 0x-prefixed 32-byte hash.
fn user_op_hash(params: Params) -> Result<B256, RpcError> {
    let invalid = || RpcError::invalid_params("Missing/invalid userOpHash");
    let Hex(hash) = params.positional::<Hex<B256>>(1).map_err(|_| invalid())?;
    Ok(hash)
}

impl<P: Mempool> BundlerRpc<P> {
    pub(super) async fn estimate_user_operation_gas(&self, params: Params) -> Result<Value, RpcError> {
        let (op, Hex(entry_point), overrides): (Value, Hex<Address>, Option<StateOverride>) =
            params.positional(3)?;
        self.check_entry_point(Some(entry_point))?;
        let op = operation_to_estimate(op)?;
        check_fields(&op)?;
        let Ok(_permit) = self.validations.try_acquire() else {
            return Err(RpcError::new(
                ErrorCode::LimitExceeded,
                "the bundler is at its simulation capacity; retry shortly",
            ));
        };
        let estimate = self.estimator.estimate(&op, overrides).await?;
        Ok(serde_json::json!(estimate))
    }

    pub(super) async fn send_user_operation(&self, params: Params) -> Result<Value, RpcError> {
        let (op, Hex(entry_point)): (Value, Hex<Address>) = params.positional(2)?;
        self.check_entry_point(Some(entry_point))?;
        let op = UserOperation::from_rpc(op).map_err(RpcError::invalid_params)?;
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
        let hash = self.pool.add(PoolOperation::new(op, &outcome))?;
        Ok(serde_json::json!(hash))
    }

    pub(super) async fn user_operation_by_hash(&self, params: Params) -> Result<Value, RpcError> {
        let hash = user_op_hash(params)?;
        if let Some(pending) = self.pool.get(hash) {
            return Ok(serde_json::json!({
                "userOperation": pending.op,
                "entryPoint": self.entry_point.to_checksum(None),
                "blockNumber": null,
                "blockHash": null,
                "transactionHash": null,
            }));
        }
        lookup::included_operation(&self.provider, self.entry_point, self.chain_id, hash).await
    }

    /// `tora_getUserOperationStatus`: `submitted` while a bundle carrying it is in flight,
    /// `pending` while in the pool, then what the chain says, else `dropped` with the
    /// builder's reason when it remembers one.
    pub(super) async fn user_operation_status(&self, params: Params) -> Result<Value, RpcError> {
        let hash = user_op_hash(params)?;
        if self.builder.is_submitted(&hash) {
            return Ok(serde_json::json!({ "status": "submitted" }));
        }
        if self.pool.get(hash).is_some() {
            return Ok(serde_json::json!({ "status": "pending" }));
        }
        let status = lookup::chain_status(&self.provider, self.entry_point, hash).await?;
        if status["status"] == "unknown"
            && let Some(reason) = self.builder.drop_reason(&hash)
        {
            return Ok(serde_json::json!({ "status": "dropped", "reason": reason }));
        }
        Ok(status)
    }

    /// `tora_getUserOperationGasPrice`: the fees an operation needs to ride in this bundler's
    /// bundles now, in three tiers (the shape wallets know from Pimlico's method of the name).
    pub(super) async fn user_operation_gas_price(&self, params: Params) -> Result<Value, RpcError> {
        params.none()?;
        let base_fee = self.estimator.base_fee().await?;
        let tiers =
            self.builder.suggested_fees(base_fee).await.map_err(|e| RpcError::internal(e.to_string()))?;
        let tier = |fees: crate::builder::BundleFees| {
            serde_json::json!({
                "maxFeePerGas": format!("{:#x}", fees.max_fee_per_gas),
                "maxPriorityFeePerGas": format!("{:#x}", fees.max_priority_fee_per_gas),
            })
        };
        let [slow, standard, fast] = tiers;
        Ok(serde_json::json!({ "slow": tier(slow), "standard": tier(standard), "fast": tier(fast) }))
    }

    pub(super) async fn user_operation_receipt(&self, params: Params) -> Result<Value, RpcError> {
        let hash = user_op_hash(params)?;
        lookup::receipt(&self.provider, self.entry_point, hash).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, U128};

    #[test]
    fn estimates_may_omit_gas_fields_and_fees_but_not_the_rest() {
        let op = serde_json::json!({ "sender": Address::repeat_byte(1), "nonce": "0x0", "callData": "0x" });
        let parsed = operation_to_estimate(op.clone()).unwrap();
        assert_eq!(parsed.call_gas_limit, U128::ZERO);
        assert!(parsed.signature.is_empty());
        let mut no_sender = op;
        no_sender.as_object_mut().unwrap().remove("sender");
        assert_eq!(operation_to_estimate(no_sender).unwrap_err().code, ErrorCode::InvalidParams);
        assert_eq!(operation_to_estimate(Value::Null).unwrap_err().code, ErrorCode::InvalidParams);
        // Fields given as null are omitted ones.
        let mut nulls =
            serde_json::json!({ "sender": Address::repeat_byte(1), "nonce": "0x0", "callData": "0x" });
        nulls["maxFeePerGas"] = Value::Null;
        nulls["paymaster"] = Value::Null;
        assert_eq!(operation_to_estimate(nulls).unwrap().max_fee_per_gas, U128::ZERO);
    }

    #[test]
    fn a_hash_param_must_be_a_prefixed_32_byte_hash() {
        let hash = B256::repeat_byte(7);
        assert_eq!(user_op_hash(Params(serde_json::json!([hash]))).unwrap(), hash);
        for bad in [
            serde_json::json!([""]),
            serde_json::json!([format!("{hash:x}")]),
            serde_json::json!([]),
            serde_json::json!(["0x12"]),
        ] {
            let err = user_op_hash(Params(bad)).unwrap_err();
            assert_eq!(
                (err.code, err.message.as_str()),
                (ErrorCode::InvalidParams, "Missing/invalid userOpHash")
            );
        }
    }

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
