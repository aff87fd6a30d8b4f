//! Turning what payers consumed into TORA: one `redeemBatch` transaction, sent with the
//! provider's key, claiming for every payer due exactly what its calls cost (under its latest
//! voucher), where that is more than the escrow already paid. The escrow skips a voucher that
//! fails (and says so in `RedeemFailed`): its payer is suspended until a later redemption of it
//! succeeds, so a payer whose wallet turned cannot run up more.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, TxHash, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use tora_core::contracts::{InferenceEscrow, RedeemFailure};
use tora_core::money::ToraUnits;

use super::escrow::Escrow;
use super::ledger::Change;
use super::ledger::unix_now;
use super::store::{StoreError, VoucherStore};
use super::voucher::SignedVoucher;

/// Why a redemption could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// The RPC URL does not parse.
    #[error("invalid RPC URL {0}")]
    RpcUrl(String),
    /// The voucher store could not be read or updated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading a payer's channel from the escrow failed.
    #[error("reading the escrow: {0}")]
    Chain(String),
    /// Sending `redeemBatch`, or getting its receipt, failed, or it reverted.
    #[error("redeemBatch: {0}")]
    Transaction(String),
}

/// Which payers a redemption claims for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Every payer with something to claim: the periodic redemption.
    All,
    /// Payers this provider is exposed to by at least `exposure` (consumed and not yet paid):
    /// checked often, so no payer's debt to the provider grows past it between the clock's
    /// redemptions. Costs no node call for a payer below it; skips suspended payers.
    Exposed {
        /// Least unredeemed amount, in TORA base units, that makes a payer due.
        exposure: U256,
    },
}

/// What one redemption did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    /// Vouchers put in the batch.
    pub vouchers: usize,
    /// TORA transferred to the provider, from the `Redeemed` events.
    pub paid: ToraUnits,
    /// Payers whose voucher the escrow refused (`RedeemFailed`); they are suspended.
    pub failed: Vec<Address>,
    /// The transaction, if there was anything to redeem.
    pub tx: Option<TxHash>,
}

/// Sends `redeemBatch` with the provider's key (the provider pays the gas).
pub struct Redeemer {
    rpc: DynProvider,
    escrow: Escrow,
}

impl Redeemer {
    /// A redeemer sending through `rpc_url`, signed with the provider's `key`.
    pub fn new(rpc_url: &str, key: PrivateKeySigner, escrow: Escrow) -> Result<Self, RedeemError> {
        let client =
            tora_core::node_client::client(rpc_url).map_err(|_| RedeemError::RpcUrl(rpc_url.to_owned()))?;
        let rpc = ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_client(client).erased();
        Ok(Self { rpc, escrow })
    }

    /// Every payer's claim: [`Redeemer::redeem`] with [`Due::All`].
    pub async fn redeem_latest<S: VoucherStore>(&self, store: &S) -> Result<Redemption, RedeemError> {
        self.redeem(store, Due::All).await
    }

    /// Claims, for every payer `due`, what it consumed, where that would pay something now. A
    /// claim the channel no longer covers is left out and stays in the store for a later try.
    pub async fn redeem<S: VoucherStore>(&self, store: &S, due: Due) -> Result<Redemption, RedeemError> {
        let now = unix_now();
        let mut batch: Vec<(SignedVoucher, U256)> = Vec::new();
        for ledger in store.ledgers().await? {
            let is_due = match due {
                Due::All => !ledger.unredeemed(now).is_zero(),
                // A suspended payer's wallet already refused once: retrying it every few seconds
                // would spend the provider's gas on each refusal, so only the periodic
                // redemption tries it again.
                Due::Exposed { exposure } => {
                    ledger.suspended.is_none() && ledger.unredeemed(now) >= exposure.max(U256::from(1))
                }
            };
            let claim = ledger.claimable(now);
            let Some(voucher) = ledger.latest.filter(|_| is_due) else { continue };
            let account =
                self.escrow.account(voucher.payer).await.map_err(|e| RedeemError::Chain(e.to_string()))?;
            if claim <= account.redeemed {
                continue;
            }
            if claim > account.covers_up_to() {
                tracing::warn!(payer = %voucher.payer, "the channel no longer covers what the payer consumed");
                continue;
            }
            batch.push((voucher, claim));
        }
        if batch.is_empty() {
            return Ok(Redemption { vouchers: 0, paid: ToraUnits::default(), failed: Vec::new(), tx: None });
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
        // Simulated first so a revert (of the whole batch: a bad length, the node) is reported
        // with its reason instead of costing gas.
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
        let outcome = BatchOutcome::of(&receipt, provider);
        for &(payer, cumulative) in &outcome.redeemed {
            store.change(payer, &Change::Redeemed { cumulative }).await?.ok();
        }
        for (payer, failure) in &outcome.failed {
            let reason =
                format!("its latest voucher failed on chain ({failure}); the provider could not redeem it");
            tracing::warn!(%payer, %failure, "a voucher failed on chain; its payer is suspended");
            store.change(*payer, &Change::Suspend { reason }).await?.ok();
        }
        Ok(Redemption {
            vouchers: batch.len(),
            paid: ToraUnits(outcome.paid),
            failed: outcome.failed.into_iter().map(|(payer, _)| payer).collect(),
            tx: Some(receipt.transaction_hash),
        })
    }
}

/// What the receipt of a `redeemBatch` for `provider` says happened.
struct BatchOutcome {
    /// The sum of the `Redeemed` payouts.
    paid: U256,
    /// Each payer paid, and the cumulative claim it was paid to.
    redeemed: Vec<(Address, U256)>,
    /// Each payer whose voucher the escrow skipped, and why.
    failed: Vec<(Address, String)>,
}

impl BatchOutcome {
    fn of(receipt: &alloy::rpc::types::TransactionReceipt, provider: Address) -> Self {
        let mut outcome = Self { paid: U256::ZERO, redeemed: Vec::new(), failed: Vec::new() };
        for log in receipt.inner.logs() {
            if let Ok(paid) = log.log_decode::<InferenceEscrow::Redeemed>()
                && paid.inner.data.provider == provider
            {
                let event = paid.inner.data;
                outcome.paid = outcome.paid.saturating_add(event.paid);
                outcome.redeemed.push((event.payer, event.cumulativeClaim));
            } else if let Ok(failed) = log.log_decode::<InferenceEscrow::RedeemFailed>()
                && failed.inner.data.provider == provider
            {
                outcome.failed.push((failed.inner.data.payer, failure_name(failed.inner.data.failure)));
            }
        }
        outcome
    }
}

/// `InferenceEscrow.Failure`, by name.
fn failure_name(failure: u8) -> String {
    RedeemFailure::try_from(failure)
        .map_or_else(|_| format!("unknown failure {failure}"), |f| format!("{f:?}"))
}
