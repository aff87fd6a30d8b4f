//! Turning what payers consumed into TORA: one `redeemBatch` transaction, sent with the
//! provider's key, claiming for every payer exactly what its calls cost (under its latest
//! voucher), where that is more than the escrow already paid.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, TxHash, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use tora_core::contracts::InferenceEscrow;
use tora_core::money::ToraUnits;

use super::escrow::Escrow;
use super::ledger::unix_now;
use super::store::{StoreError, VoucherStore};
use super::voucher::SignedVoucher;

#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("invalid RPC URL {0}")]
    RpcUrl(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the escrow: {0}")]
    Chain(String),
    #[error("redeemBatch: {0}")]
    Transaction(String),
}

/// What one redemption did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    /// Vouchers put in the batch.
    pub vouchers: usize,
    /// TORA transferred to the provider, from the `Redeemed` events.
    pub paid: ToraUnits,
    /// The transaction, if there was anything to redeem.
    pub tx: Option<TxHash>,
}

/// Sends `redeemBatch` with the provider's key (the provider pays the gas).
pub struct Redeemer {
    rpc: DynProvider,
    escrow: Escrow,
}

impl Redeemer {
    pub fn new(rpc_url: &str, key: PrivateKeySigner, escrow: Escrow) -> Result<Self, RedeemError> {
        let url = rpc_url.parse().map_err(|_| RedeemError::RpcUrl(rpc_url.to_owned()))?;
        let rpc = ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_http(url).erased();
        Ok(Self { rpc, escrow })
    }

    /// Claims, for every payer in `store`, what it consumed, where that would pay something
    /// now. A claim the payer's deposit no longer covers is left out (it would revert the whole
    /// batch) and stays in the store for a later try.
    pub async fn redeem_latest<S: VoucherStore>(&self, store: &S) -> Result<Redemption, RedeemError> {
        let now = unix_now();
        let mut batch: Vec<(SignedVoucher, U256)> = Vec::new();
        for ledger in store.ledgers().await? {
            let claim = ledger.claimable(now);
            let Some(voucher) = ledger.latest else { continue };
            let account =
                self.escrow.account(voucher.payer).await.map_err(|e| RedeemError::Chain(e.to_string()))?;
            if claim <= account.redeemed {
                continue;
            }
            if claim > account.covers_up_to() {
                tracing::warn!(payer = %voucher.payer, "deposit no longer covers what the payer consumed");
                continue;
            }
            batch.push((voucher, claim));
        }
        if batch.is_empty() {
            return Ok(Redemption { vouchers: 0, paid: ToraUnits::default(), tx: None });
        }
        let provider = self.escrow.provider();
        let vouchers = batch
            .iter()
            .map(|(v, _)| InferenceEscrow::Voucher {
                payer: v.payer,
                provider,
                cumulativeAmount: v.cumulative_amount,
            })
            .collect();
        let signatures = batch.iter().map(|(v, _)| v.signature.clone()).collect();
        let claims = batch.iter().map(|(_, claim)| *claim).collect();
        let escrow = InferenceEscrow::new(self.escrow.address(), &self.rpc);
        let call = escrow.redeemBatch(vouchers, signatures, claims);
        let tx_err = |e: &dyn std::fmt::Display| RedeemError::Transaction(e.to_string());
        // Simulated first so a revert is reported with its reason instead of costing gas.
        call.call().await.map_err(|e| tx_err(&e))?;
        let pending = call.send().await.map_err(|e| tx_err(&e))?;
        let receipt = pending
            .with_timeout(Some(Duration::from_secs(120)))
            .get_receipt()
            .await
            .map_err(|e| tx_err(&e))?;
        if !receipt.status() {
            return Err(RedeemError::Transaction(format!("{} reverted", receipt.transaction_hash)));
        }
        Ok(Redemption {
            vouchers: batch.len(),
            paid: ToraUnits(paid_to(&receipt, provider)),
            tx: Some(receipt.transaction_hash),
        })
    }
}

/// The sum of the receipt's `Redeemed` events that paid `provider`.
fn paid_to(receipt: &alloy::rpc::types::TransactionReceipt, provider: Address) -> U256 {
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|log| log.log_decode::<InferenceEscrow::Redeemed>().ok())
        .filter(|log| log.inner.data.provider == provider)
        .fold(U256::ZERO, |sum, log| sum.saturating_add(log.inner.data.paid))
}
