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
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tora_core::{ErrorCode, RpcError};
use tora_jsonrpc::{CallMeta, Params, READY_WITHIN, RpcService};

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
            "eth_chainId" => params.none().map(|()| Value::String(format!("{:#x}", self.chain_id))),
            "eth_supportedEntryPoints" => {
                params.none().map(|()| serde_json::json!([self.entry_point.to_checksum(None)]))
            }
            "eth_sendUserOperation" => self.send_user_operation(params).await,
            "eth_getUserOperationByHash" => self.user_operation_by_hash(params).await,
            "eth_getUserOperationReceipt" => self.user_operation_receipt(params).await,
            "eth_estimateUserOperationGas" => self.estimate_user_operation_gas(params).await,
            "tora_getUserOperationStatus" => self.user_operation_status(params).await,
            "tora_getUserOperationGasPrice" => self.user_operation_gas_price(params).await,
            m if m.starts_with("debug_bundler_") && self.debug_api => self.debug(m, params).await,
            _ => Err(method_not_found(method)),
        }
    }

    /// The node answers within [`READY_WITHIN`]: a frozen node must turn the pod unready, not
    /// hang its probe.
    async fn ready(&self) -> Result<(), String> {
        let node = tokio::time::timeout(READY_WITHIN, self.provider.get_block_number());
        node.await
            .map_err(|_| "node did not answer".to_owned())?
            .map(|_| ())
            .map_err(|e| format!("node: {e}"))
    }
}
