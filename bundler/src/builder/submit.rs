//! Building, simulating, signing and submitting one bundle at a time.

use super::select_bundle;
use crate::pool::{Mempool, PoolOperation};
use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolInterface};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tora_core::UserOperation;
use tora_core::contracts::EntryPoint;

/// auto: bundle on an interval; manual: only on debug_bundler_sendBundleNow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BundlingMode {
    Auto,
    Manual,
}

#[derive(Clone, Debug)]
pub struct BuilderSettings {
    /// Gas target of one bundle (the chain spec's max_bundle_gas).
    pub max_bundle_gas: u64,
    pub max_bundle_ops: usize,
    /// Gas the transaction needs on top of the operations' own limits (calldata, the loop).
    pub bundle_overhead_gas: u64,
    /// How long to wait for the bundle's receipt.
    pub receipt_timeout: Duration,
}

impl Default for BuilderSettings {
    fn default() -> Self {
        Self {
            max_bundle_gas: 15_000_000,
            max_bundle_ops: 256,
            bundle_overhead_gas: 100_000,
            receipt_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("invalid RPC URL {0}")]
    Url(String),
    #[error("node: {0}")]
    Node(String),
    #[error("bundle transaction {0} was not mined in time")]
    NotMined(B256),
    #[error("bundle transaction {0} reverted")]
    Reverted(B256),
}

fn node<E: std::fmt::Display>(e: E) -> BuilderError {
    BuilderError::Node(e.to_string())
}

/// A bundle that landed: its transaction and the fate of each operation in it.
#[derive(Clone, Debug)]
pub struct BundleOutcome {
    pub transaction_hash: B256,
    pub included: Vec<B256>,
    /// Operations the simulation refused, with the EntryPoint's reason.
    pub dropped: Vec<(B256, String)>,
}

pub struct Builder<P> {
    provider: DynProvider,
    address: Address,
    entry_point: Address,
    pool: Arc<P>,
    settings: BuilderSettings,
    auto: AtomicBool,
    /// One bundle at a time: the key's nonce and the pool's view stay consistent.
    busy: tokio::sync::Mutex<()>,
}

impl<P: Mempool> Builder<P> {
    pub fn new(
        rpc_url: &str,
        key: B256,
        entry_point: Address,
        pool: Arc<P>,
        settings: BuilderSettings,
        mode: BundlingMode,
    ) -> Result<Self, BuilderError> {
        let url = rpc_url.parse().map_err(|_| BuilderError::Url(rpc_url.to_owned()))?;
        let signer = PrivateKeySigner::from_bytes(&key)
            .map_err(|e| BuilderError::Node(format!("bundler key: {e}")))?;
        let address = signer.address();
        let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased();
        Ok(Self {
            provider,
            address,
            entry_point,
            pool,
            settings,
            auto: AtomicBool::new(mode == BundlingMode::Auto),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// The bundler's account: it signs bundles and receives the operations' fees.
    pub fn address(&self) -> Address {
        self.address
    }

    pub fn mode(&self) -> BundlingMode {
        if self.auto.load(Ordering::Relaxed) { BundlingMode::Auto } else { BundlingMode::Manual }
    }

    pub fn set_mode(&self, mode: BundlingMode) {
        self.auto.store(mode == BundlingMode::Auto, Ordering::Relaxed);
    }

    /// Builds and submits one bundle from the pool; `None` when nothing is pending.
    pub async fn send_bundle_now(&self) -> Result<Option<BundleOutcome>, BuilderError> {
        let _one_at_a_time = self.busy.lock().await;
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(node)?
            .ok_or_else(|| BuilderError::Node("the node has no latest block".to_owned()))?;
        let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
        self.pool.on_block(block.header.timestamp, base_fee);
        let gas_target = self.settings.max_bundle_gas.min(block.header.gas_limit);
        let candidates = self.pool.best(self.settings.max_bundle_ops.saturating_mul(4));
        let mut chosen = select_bundle(candidates, gas_target, self.settings.max_bundle_ops);
        let dropped = self.drop_failing(&mut chosen).await?;
        if chosen.is_empty() {
            return Ok(None);
        }
        let receipt = self.submit(&chosen, base_fee).await?;
        let landed: HashSet<B256> = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == self.entry_point)
            .filter_map(|log| log.log_decode::<EntryPoint::UserOperationEvent>().ok())
            .map(|log| log.inner.data.userOpHash)
            .collect();
        let mut included = Vec::new();
        for op in &chosen {
            if landed.contains(&op.hash) {
                self.pool.mark_included(op.hash);
                included.push(op.hash);
            } else {
                self.pool.remove(op.hash);
            }
        }
        tracing::info!(tx = %receipt.transaction_hash, ops = included.len(), "bundle included");
        Ok(Some(BundleOutcome { transaction_hash: receipt.transaction_hash, included, dropped }))
    }

    /// Simulates `handleOps` until the EntryPoint accepts the whole bundle, removing each
    /// operation it names in `FailedOp` from the bundle and the pool.
    async fn drop_failing(
        &self,
        chosen: &mut Vec<PoolOperation>,
    ) -> Result<Vec<(B256, String)>, BuilderError> {
        let mut dropped = Vec::new();
        while !chosen.is_empty() {
            let call = self.handle_ops_call(chosen);
            let request = TransactionRequest::default()
                .with_from(self.address)
                .with_to(self.entry_point)
                .with_input(call);
            let Err(err) = self.provider.call(request).await else {
                break;
            };
            let data = err.as_error_resp().and_then(|e| e.as_revert_data()).ok_or_else(|| node(&err))?;
            let (index, reason) = match EntryPoint::EntryPointErrors::abi_decode(&data) {
                Ok(EntryPoint::EntryPointErrors::FailedOp(e)) => (e.opIndex, e.reason),
                Ok(EntryPoint::EntryPointErrors::FailedOpWithRevert(e)) => (e.opIndex, e.reason),
                _ => return Err(BuilderError::Node(format!("handleOps simulation reverted: {data}"))),
            };
            let index: usize = index.saturating_to();
            if index >= chosen.len() {
                return Err(BuilderError::Node(format!("FailedOp names op {index} of {}", chosen.len())));
            }
            let failed = chosen.remove(index);
            tracing::info!(hash = %failed.hash, %reason, "dropped an operation that fails in the bundle");
            self.pool.remove(failed.hash);
            dropped.push((failed.hash, reason));
        }
        Ok(dropped)
    }

    fn handle_ops_call(&self, ops: &[PoolOperation]) -> Vec<u8> {
        let packed = ops.iter().map(|p| UserOperation::pack(&p.op)).collect();
        EntryPoint::handleOpsCall { ops: packed, beneficiary: self.address }.abi_encode()
    }

    /// Prices the transaction at twice the base fee plus the node's priority fee (room for the
    /// base fee to rise for a few blocks), sends it and waits for the receipt.
    async fn submit(
        &self,
        ops: &[PoolOperation],
        base_fee: u128,
    ) -> Result<TransactionReceipt, BuilderError> {
        let priority = self.provider.get_max_priority_fee_per_gas().await.map_err(node)?;
        let op_gas = ops.iter().fold(U256::ZERO, |sum, p| sum.saturating_add(p.gas_limit()));
        let gas = op_gas.saturating_add(U256::from(self.settings.bundle_overhead_gas)).saturating_to::<u64>();
        let request = TransactionRequest::default()
            .with_to(self.entry_point)
            .with_input(self.handle_ops_call(ops))
            .with_gas_limit(gas)
            .with_max_priority_fee_per_gas(priority)
            .with_max_fee_per_gas(base_fee.saturating_mul(2).saturating_add(priority));
        let pending = self.provider.send_transaction(request).await.map_err(node)?;
        let tx = *pending.tx_hash();
        let receipt = self.wait_for_receipt(tx).await?;
        if !receipt.status() {
            return Err(BuilderError::Reverted(tx));
        }
        Ok(receipt)
    }

    /// Polls briefly rather than through alloy's block watcher, which would add its poll
    /// interval (a quarter second or more) to every bundle on a fast chain.
    async fn wait_for_receipt(&self, tx: B256) -> Result<TransactionReceipt, BuilderError> {
        let deadline = tokio::time::Instant::now() + self.settings.receipt_timeout;
        while tokio::time::Instant::now() < deadline {
            if let Some(receipt) = self.provider.get_transaction_receipt(tx).await.map_err(node)? {
                return Ok(receipt);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(BuilderError::NotMined(tx))
    }
}
