//! Finding an operation on chain by its userOpHash: the EntryPoint's `UserOperationEvent` log
//! (indexed by hash), its transaction's receipt, and the `handleOps` input that carried it.
//! Works for bundles of any bundler, not only ours.

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, U64};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log, TransactionReceipt};
use alloy::sol_types::{SolCall, SolEvent};
use tora_core::contracts::EntryPoint;
use tora_core::rpc_api::Checksummed;
use tora_core::rpc_api::bundler::{
    OperationState, UserOperationByHash, UserOperationReceipt, UserOperationStatus,
};
use tora_core::{RpcError, UserOperation};

/// How far back, in blocks, a hash is looked for: nodes cap `eth_getLogs` ranges.
pub const LOOKBACK_BLOCKS: u64 = 10_000;

fn node<E: std::fmt::Display>(e: E) -> RpcError {
    RpcError::internal(format!("node: {e}"))
}

/// The `UserOperationEvent` for `hash`, if a bundle in the last [`LOOKBACK_BLOCKS`] has it.
async fn event_log(
    provider: &DynProvider,
    entry_point: Address,
    hash: B256,
) -> Result<Option<Log>, RpcError> {
    let latest = provider.get_block_number().await.map_err(node)?;
    let filter = Filter::new()
        .address(entry_point)
        .event_signature(EntryPoint::UserOperationEvent::SIGNATURE_HASH)
        .topic1(hash)
        .from_block(BlockNumberOrTag::Number(latest.saturating_sub(LOOKBACK_BLOCKS)))
        .to_block(BlockNumberOrTag::Latest);
    let logs = provider.get_logs(&filter).await.map_err(node)?;
    Ok(logs.into_iter().next())
}

/// `eth_getUserOperationReceipt`: null until the operation is in a block.
pub async fn receipt(
    provider: &DynProvider,
    entry_point: Address,
    hash: B256,
) -> Result<Option<UserOperationReceipt>, RpcError> {
    let Some(log) = event_log(provider, entry_point, hash).await? else {
        return Ok(None);
    };
    let Some(tx) = log.transaction_hash else {
        return Ok(None);
    };
    let Some(receipt) = provider.get_transaction_receipt(tx).await.map_err(node)? else {
        return Ok(None);
    };
    let event = log.log_decode::<EntryPoint::UserOperationEvent>().map_err(node)?.inner.data;
    let (logs, reason) = own_logs(&receipt, entry_point, log.log_index);
    Ok(Some(UserOperationReceipt {
        user_op_hash: hash,
        entry_point: Checksummed(entry_point),
        sender: event.sender,
        nonce: event.nonce,
        paymaster: event.paymaster,
        actual_gas_cost: event.actualGasCost,
        actual_gas_used: event.actualGasUsed,
        success: event.success,
        reason,
        logs,
        receipt,
    }))
}

/// The logs the operation's own execution emitted: those after the previous operation's
/// `UserOperationEvent` (or `BeforeExecution`) and before its own; and its revert reason.
fn own_logs(
    receipt: &TransactionReceipt,
    entry_point: Address,
    own_index: Option<u64>,
) -> (Vec<Log>, String) {
    let logs = receipt.inner.logs();
    let Some(end) = logs.iter().position(|l| l.log_index.is_some() && l.log_index == own_index) else {
        return (Vec::new(), String::new());
    };
    let is_boundary = |l: &Log| {
        l.address() == entry_point
            && l.topic0().is_some_and(|t| {
                *t == EntryPoint::UserOperationEvent::SIGNATURE_HASH
                    || *t == EntryPoint::BeforeExecution::SIGNATURE_HASH
            })
    };
    let start = logs[..end].iter().rposition(is_boundary).map_or(0, |i| i + 1);
    let own = &logs[start..end];
    let reason = own
        .iter()
        .filter(|l| l.address() == entry_point)
        .find_map(|l| l.log_decode::<EntryPoint::UserOperationRevertReason>().ok())
        .map(|l| l.inner.data.revertReason.to_string())
        .unwrap_or_default();
    (own.to_vec(), reason)
}

/// `eth_getUserOperationByHash` for an included operation: decoded from its bundle's input.
pub async fn included_operation(
    provider: &DynProvider,
    entry_point: Address,
    chain_id: u64,
    hash: B256,
) -> Result<Option<UserOperationByHash>, RpcError> {
    let Some(log) = event_log(provider, entry_point, hash).await? else {
        return Ok(None);
    };
    let Some(tx_hash) = log.transaction_hash else {
        return Ok(None);
    };
    let Some(tx) = provider.get_transaction_by_hash(tx_hash).await.map_err(node)? else {
        return Ok(None);
    };
    use alloy::consensus::Transaction;
    // A bundle sent through another contract has no handleOps input to decode.
    let Ok(call) = EntryPoint::handleOpsCall::abi_decode(tx.input()) else {
        return Ok(None);
    };
    let found = call
        .ops
        .iter()
        .filter_map(|packed| UserOperation::unpack(packed).ok())
        .find(|op| op.hash(entry_point, chain_id) == hash);
    Ok(found.map(|op| UserOperationByHash {
        user_operation: op,
        entry_point: Checksummed(entry_point),
        block_number: log.block_number.map(U64::from),
        block_hash: log.block_hash,
        transaction_hash: Some(tx_hash),
    }))
}

/// `tora_getUserOperationStatus` for an operation not in the pool: `included` or `failed`
/// (with the call's revert data as `reason`) when a bundle in the last [`LOOKBACK_BLOCKS`]
/// carried it, else `unknown`.
pub async fn chain_status(
    provider: &DynProvider,
    entry_point: Address,
    hash: B256,
) -> Result<UserOperationStatus, RpcError> {
    let Some(log) = event_log(provider, entry_point, hash).await? else {
        return Ok(UserOperationStatus::only(OperationState::Unknown));
    };
    let event = log.log_decode::<EntryPoint::UserOperationEvent>().map_err(node)?.inner.data;
    let mut status = UserOperationStatus {
        status: if event.success { OperationState::Included } else { OperationState::Failed },
        transaction_hash: log.transaction_hash,
        block_number: log.block_number.map(U64::from),
        reason: None,
    };
    if !event.success
        && let Some(tx) = log.transaction_hash
        && let Some(receipt) = provider.get_transaction_receipt(tx).await.map_err(node)?
    {
        status.reason = Some(own_logs(&receipt, entry_point, log.log_index).1);
    }
    Ok(status)
}
