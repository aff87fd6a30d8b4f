//! The JSON-RPC surface, served by `tora-jsonrpc`: the `eth_` user-operation methods and, behind
//! a flag, the eth-infinitism `debug_bundler_` methods. Handlers parse, call one component
//! (validator, pool, builder, chain lookup) and map its error.

mod debug;
pub mod error;
mod eth;
pub mod lookup;

use crate::builder::Builder;
use crate::estimation::Estimator;
use crate::pool::Mempool;
use crate::validation::{ValidationSettings, Validator, Wei};
use alloy::primitives::{Address, B256, U64};
use alloy::providers::{DynProvider, Provider};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tora_core::rpc_api::bundler::{
    ChainId, EstimateUserOperationGas, GetUserOperationByHash, GetUserOperationGasPrice,
    GetUserOperationReceipt, GetUserOperationStatus, SendUserOperation, SupportedEntryPoints,
};
use tora_core::rpc_api::{Checksummed, Method};
use tora_core::strict_hex::Hex;
use tora_core::{ErrorCode, RpcError};
use tora_jsonrpc::{CallMeta, Params, READY_WITHIN, RpcService, answer, encode};

/// Everything the handlers reach; one per EntryPoint.
pub struct BundlerRpc<P> {
    /// The chain id `eth_chainId` answers and userOpHashes are computed with.
    pub chain_id: u64,
    /// The one EntryPoint served; requests naming another are refused.
    pub entry_point: Address,
    /// Validates each sent operation by ERC-7562.
    pub validator: Arc<Validator>,
    /// The mempool operations are added to.
    pub pool: Arc<P>,
    /// The bundle builder: sendBundleNow, the bundling mode, statuses and gas prices.
    pub builder: Arc<Builder<P>>,
    /// Gas estimates and the preVerificationGas an operation must carry.
    pub estimator: Arc<Estimator>,
    /// Reads only: receipts and lookups.
    pub provider: DynProvider,
    /// Validations allowed at once; past it `eth_sendUserOperation` refuses at once instead of
    /// queueing work the node cannot keep up with.
    pub validations: Arc<Semaphore>,
    /// Whether the `debug_bundler_` methods are served.
    pub debug_api: bool,
    /// What `debug_bundler_getStakeStatus` calls staked.
    pub stake_rule: StakeRule,
}

/// ERC-7562's staked: at least MIN_STAKE_VALUE locked for at least MIN_UNSTAKE_DELAY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StakeRule {
    /// ERC-7562 MIN_STAKE_VALUE, in wei.
    pub min_stake: Wei,
    /// ERC-7562 MIN_UNSTAKE_DELAY, in seconds.
    pub min_unstake_delay_secs: u64,
}

impl From<&ValidationSettings> for StakeRule {
    fn from(settings: &ValidationSettings) -> Self {
        Self { min_stake: settings.min_stake, min_unstake_delay_secs: settings.min_unstake_delay_secs }
    }
}

/// The userOpHash parameter of the lookup methods, in the reference bundler's words when it is
/// not a 0x-prefixed 32-byte hash.
fn user_op_hash<M: Method<Params = (Hex<B256>,)>>(params: Params) -> Result<B256, RpcError> {
    let (Hex(hash),) =
        params.of::<M>().map_err(|_| RpcError::invalid_params("Missing/invalid userOpHash"))?;
    Ok(hash)
}

fn method_not_found(method: &str) -> RpcError {
    RpcError::new(ErrorCode::MethodNotFound, format!("method {method} does not exist"))
}

impl<P: Mempool> BundlerRpc<P> {
    /// Refuses an entry point other than ours with -32602, in the reference bundler's words.
    fn check_entry_point(&self, entry_point: Option<Address>) -> Result<(), RpcError> {
        match entry_point {
            Some(ep) if ep != self.entry_point => Err(RpcError::invalid_params(format!(
                "The EntryPoint at \"{ep}\" is not supported. This bundler uses {}",
                self.entry_point
            ))),
            _ => Ok(()),
        }
    }
}

impl<P: Mempool> RpcService for BundlerRpc<P> {
    async fn call(&self, _meta: &CallMeta, method: &str, params: Params) -> Result<Value, RpcError> {
        match method {
            ChainId::NAME => {
                answer::<ChainId, _, _>(params, |()| async { Ok(U64::from(self.chain_id)) }).await
            }
            SupportedEntryPoints::NAME => {
                answer::<SupportedEntryPoints, _, _>(params, |()| async {
                    Ok(vec![Checksummed(self.entry_point)])
                })
                .await
            }
            SendUserOperation::NAME => {
                answer::<SendUserOperation, _, _>(params, |(op, ep)| self.send_user_operation(op.0, ep.0))
                    .await
            }
            EstimateUserOperationGas::NAME => {
                answer::<EstimateUserOperationGas, _, _>(params, |(op, ep, overrides)| {
                    self.estimate_user_operation_gas(op.0, ep.0, overrides)
                })
                .await
            }
            GetUserOperationByHash::NAME => {
                let hash = user_op_hash::<GetUserOperationByHash>(params)?;
                encode::<GetUserOperationByHash>(self.user_operation_by_hash(hash).await?)
            }
            GetUserOperationReceipt::NAME => {
                let hash = user_op_hash::<GetUserOperationReceipt>(params)?;
                encode::<GetUserOperationReceipt>(
                    lookup::receipt(&self.provider, self.entry_point, hash).await?,
                )
            }
            GetUserOperationStatus::NAME => {
                let hash = user_op_hash::<GetUserOperationStatus>(params)?;
                encode::<GetUserOperationStatus>(self.user_operation_status(hash).await?)
            }
            GetUserOperationGasPrice::NAME => {
                answer::<GetUserOperationGasPrice, _, _>(params, |()| self.user_operation_gas_price()).await
            }
            m if m.starts_with("debug_bundler_") && self.debug_api => self.debug(m, params).await,
            _ => Err(method_not_found(method)),
        }
    }

    /// The node and the mempool's store (Redis, for replicas) answer within [`READY_WITHIN`]
    /// each: a frozen node or a lost Redis must turn the pod unready, not hang its probe.
    async fn ready(&self) -> Result<(), String> {
        let node = tokio::time::timeout(READY_WITHIN, self.provider.get_block_number());
        node.await.map_err(|_| "node did not answer".to_owned())?.map_err(|e| format!("node: {e}"))?;
        let store = tokio::time::timeout(READY_WITHIN, self.pool.store_ready());
        store.await.map_err(|_| "mempool store did not answer".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tora_core::rpc_api::bundler::GetUserOperationReceipt;

    #[test]
    fn a_hash_param_must_be_a_prefixed_32_byte_hash() {
        let hash = B256::repeat_byte(7);
        let read = |params| user_op_hash::<GetUserOperationReceipt>(Params(params));
        assert_eq!(read(serde_json::json!([hash])).unwrap(), hash);
        for bad in [
            serde_json::json!([""]),
            serde_json::json!([format!("{hash:x}")]),
            serde_json::json!([]),
            serde_json::json!(["0x12"]),
        ] {
            let err = read(bad).unwrap_err();
            assert_eq!(
                (err.code, err.message.as_str()),
                (ErrorCode::InvalidParams, "Missing/invalid userOpHash")
            );
        }
    }
}
